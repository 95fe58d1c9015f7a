/*
 * pull_ipc.c - frames between the pull's two processes (pull_ipc.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pack.h"
#include "maildir.h"
#include "chan.h"
#include "pull_ipc.h"

int pull_ipc_send(int fd, const struct abuf *frame, struct arca_err *err)
{
	if (chan_send(fd, frame) != 0)
		return arca_err_set(err, ARCA_EIO, "pull: the other process is gone (%s)", strerror(errno));
	return 0;
}

int pull_ipc_recv(int fd, uint8_t *type_r, struct abuf *payload, struct arca_err *err)
{
	switch (chan_recv(fd, PULL_IPC_FRAME_MAX, type_r, payload)) {
	case 0:
		return 0;
	case ARCA_EFORMAT:
		return arca_err_set(err, ARCA_EFORMAT, "pull: a frame of a length over %u or of 0",
				    (unsigned)PULL_IPC_FRAME_MAX);
	case ARCA_ENOMEM:
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	case ARCA_ENOENT:
		return arca_err_set(err, ARCA_EIO, "pull: the other process hung up");
	default:
		return arca_err_set(err, ARCA_EIO, "pull: a frame cut short");
	}
}

/* ---- encoders ---- */

static int frame_start(struct abuf *out, uint8_t type)
{
	return chan_frame_start(out, type);
}

static int frame_end(struct abuf *out)
{
	return chan_frame_end(out, PULL_IPC_FRAME_MAX);
}

int pull_ipc_encode_begin(struct abuf *out, uint32_t index)
{
	int rc = frame_start(out, PULL_IPC_BEGIN);
	rc = rc ? rc : abuf_add_u32(out, index);
	return rc ? rc : frame_end(out);
}

int pull_ipc_encode_known(struct abuf *out, const char *guid, uint32_t size)
{
	if (strlen(guid) > 255)
		return ARCA_ELIMIT;
	int rc = frame_start(out, PULL_IPC_KNOWN);
	rc = rc ? rc : abuf_add_str(out, guid);
	rc = rc ? rc : abuf_add_u32(out, size);
	return rc ? rc : frame_end(out);
}

int pull_ipc_encode_put(struct abuf *out, bool sieve, const char *guid, uint32_t size,
			bool stripped, uint64_t total)
{
	if (strlen(guid) > 255 || total > PULL_IPC_PUT_MAX)
		return ARCA_ELIMIT;
	int rc = frame_start(out, PULL_IPC_PUT);
	rc = rc ? rc : abuf_add_u8(out, sieve ? 1 : 0);
	rc = rc ? rc : abuf_add_str(out, guid);
	rc = rc ? rc : abuf_add_u32(out, size);
	rc = rc ? rc : abuf_add_u8(out, stripped ? 1 : 0);
	rc = rc ? rc : abuf_add_u64(out, total);
	return rc ? rc : frame_end(out);
}

int pull_ipc_encode_data(struct abuf *out, const void *p, size_t n)
{
	if (n == 0 || n > PULL_IPC_CHUNK)
		return ARCA_ELIMIT;
	int rc = frame_start(out, PULL_IPC_DATA);
	rc = rc ? rc : abuf_add(out, p, n);
	return rc ? rc : frame_end(out);
}

int pull_ipc_encode_warn(struct abuf *out, const char *what)
{
	char buf[1025];
	snprintf(buf, sizeof(buf), "%s", what);
	int rc = frame_start(out, PULL_IPC_WARN);
	rc = rc ? rc : abuf_add_str(out, buf);
	return rc ? rc : frame_end(out);
}

/* Folder kinds in a FINISH state. */
enum { FK_PARENT = 0, FK_UNCHANGED = 1, FK_FULL = 2 };

int pull_ipc_encode_finish(struct abuf *out, const struct snapshot *s, bool gone, uint64_t examined)
{
	int rc = frame_start(out, PULL_IPC_FINISH);
	rc = rc ? rc : abuf_add_u8(out, gone ? 1 : 0);
	rc = rc ? rc : abuf_add_varint(out, examined);
	if (gone || rc)
		return rc ? rc : frame_end(out);
	if (strlen(s->account) > SNAP_ACCOUNT_MAX)
		return ARCA_ELIMIT;
	rc = abuf_add_str(out, s->account);
	rc = rc ? rc : abuf_add_u64(out, s->time_ns);
	if (s->layout != MAILDIR_LAYOUT_MAILDIRPP && s->layout != MAILDIR_LAYOUT_FS)
		rc = rc ? rc : ARCA_ELIMIT;
	rc = rc ? rc : abuf_add_u8(out, s->layout);
	rc = rc ? rc : abuf_add_varint(out, s->nsubscriptions);
	for (size_t i = 0; i < s->nsubscriptions && rc == 0; i++)
		rc = strlen(s->subscriptions[i]) > SNAP_NAME_MAX ? ARCA_ELIMIT : abuf_add_str(out, s->subscriptions[i]);
	rc = rc ? rc : abuf_add_u8(out, s->has_sieve ? 1 : 0);
	rc = rc ? rc : abuf_add_varint(out, s->nsieve);
	for (size_t i = 0; i < s->nsieve && rc == 0; i++) {
		const struct snap_sieve *v = &s->sieve[i];
		rc = strlen(v->name) > SNAP_SIEVE_NAME_MAX ? ARCA_ELIMIT : abuf_add_str(out, v->name);
		rc = rc ? rc : abuf_add_u8(out, v->active ? 1 : 0);
		rc = rc ? rc : abuf_add_u8(out, v->content_type);
		rc = rc ? rc : abuf_add(out, v->content_id, ARCA_ID_LEN);
		rc = rc ? rc : abuf_add_varint(out, v->size);
	}
	rc = rc ? rc : abuf_add_varint(out, s->nfolders);
	struct abuf fb = ABUF_INIT;
	for (size_t i = 0; i < s->nfolders && rc == 0; i++) {
		const struct snap_folder *f = &s->folders[i];
		bool sel = f->attrs & SNAP_FOLDER_SELECTABLE;
		if (!sel || f->pages_reused) {
			if (strlen(f->name) > SNAP_NAME_MAX || strlen(f->special_use) > 64)
				rc = ARCA_ELIMIT;
			rc = rc ? rc : abuf_add_u8(out, sel ? FK_UNCHANGED : FK_PARENT);
			rc = rc ? rc : abuf_add_str(out, f->name);
			rc = rc ? rc : abuf_add_varint(out, f->attrs);
			rc = rc ? rc : abuf_add_str(out, f->special_use);
			continue;
		}
		/* the records travel; the pages are the store side's business */
		struct snap_folder g = *f;
		g.pages = NULL;
		g.npages = 0;
		g.message_count = 0;
		g.bytes = 0;
		abuf_reset(&fb);
		rc = snap_folder_encode_full(&g, &fb);
		rc = rc ? rc : abuf_add_u8(out, FK_FULL);
		rc = rc ? rc : abuf_add_varint(out, fb.len);
		rc = rc ? rc : abuf_add(out, fb.data, fb.len);
	}
	abuf_release(&fb);
	return rc ? rc : frame_end(out);
}

int pull_ipc_encode_fail(struct abuf *out, int code, const char *msg)
{
	char buf[ARCA_ERR_MSG_MAX];
	snprintf(buf, sizeof(buf), "%s", msg);
	int rc = frame_start(out, PULL_IPC_FAIL);
	rc = rc ? rc : abuf_add_u32(out, (uint32_t)(code < 0 ? -code : code));
	rc = rc ? rc : abuf_add_str(out, buf);
	return rc ? rc : frame_end(out);
}

int pull_ipc_encode_prev(struct abuf *out, const struct pull_prev_blobs *b)
{
	int rc = frame_start(out, PULL_IPC_PREV);
	rc = rc ? rc : abuf_add_varint(out, b->acct.len);
	rc = rc ? rc : abuf_add(out, b->acct.data, b->acct.len);
	rc = rc ? rc : abuf_add_varint(out, b->nfolders);
	for (size_t i = 0; i < b->nfolders && rc == 0; i++) {
		rc = abuf_add_varint(out, b->folders[i].len);
		rc = rc ? rc : abuf_add(out, b->folders[i].data, b->folders[i].len);
	}
	return rc ? rc : frame_end(out);
}

int pull_ipc_encode_content(struct abuf *out, bool known, const struct pull_content *c)
{
	int rc = frame_start(out, PULL_IPC_KNOWN_R);
	rc = rc ? rc : abuf_add_u8(out, known ? 1 : 0);
	if (known) {
		rc = rc ? rc : abuf_add_u8(out, c->type);
		rc = rc ? rc : abuf_add(out, c->id, ARCA_ID_LEN);
		rc = rc ? rc : abuf_add_u64(out, c->size);
		rc = rc ? rc : abuf_add_u8(out, c->stripped ? 1 : 0);
	}
	return rc ? rc : frame_end(out);
}

int pull_ipc_encode_err(struct abuf *out, int code, const char *msg)
{
	int rc = pull_ipc_encode_fail(out, code, msg);
	if (rc == 0)
		out->data[4] = PULL_IPC_ERR;
	return rc;
}

int pull_ipc_encode_ok(struct abuf *out)
{
	int rc = frame_start(out, PULL_IPC_OK);
	return rc ? rc : frame_end(out);
}

/* ---- decoders ---- */

int pull_ipc_decode_begin(const uint8_t *p, size_t len, uint32_t *index_r)
{
	struct adec d;
	adec_init(&d, p, len);
	*index_r = adec_u32(&d);
	return adec_finish(&d) ? ARCA_EFORMAT : 0;
}

/* A string into a fixed buffer: no NUL inside, at most max bytes. */
static int take_str(struct adec *d, char *out, size_t outlen)
{
	size_t n;
	const uint8_t *s = adec_bytes(d, &n, outlen - 1);
	if (s == NULL || memchr(s, 0, n) != NULL)
		return ARCA_EFORMAT;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

int pull_ipc_decode_known(const uint8_t *p, size_t len, char guid[256], uint32_t *size_r)
{
	struct adec d;
	adec_init(&d, p, len);
	if (take_str(&d, guid, 256) != 0)
		return ARCA_EFORMAT;
	*size_r = adec_u32(&d);
	return adec_finish(&d) ? ARCA_EFORMAT : 0;
}

int pull_ipc_decode_put(const uint8_t *p, size_t len, struct pull_ipc_put *put)
{
	struct adec d;
	adec_init(&d, p, len);
	uint8_t sieve = adec_u8(&d);
	if (sieve > 1 || take_str(&d, put->guid, sizeof(put->guid)) != 0)
		return ARCA_EFORMAT;
	put->rfc822_size = adec_u32(&d);
	uint8_t stripped = adec_u8(&d);
	put->total = adec_u64(&d);
	if (adec_finish(&d) != 0 || stripped > 1 || put->total > PULL_IPC_PUT_MAX ||
	    (sieve && (put->guid[0] != '\0' || stripped || put->total > PULL_IPC_SIEVE_MAX)))
		return ARCA_EFORMAT;
	put->sieve = sieve == 1;
	put->stripped = stripped == 1;
	return 0;
}

int pull_ipc_decode_warn(const uint8_t *p, size_t len, char *out, size_t outlen)
{
	struct adec d;
	adec_init(&d, p, len);
	if (take_str(&d, out, outlen) != 0 || adec_finish(&d) != 0)
		return ARCA_EFORMAT;
	/* it is printed: no control characters */
	for (char *c = out; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	return 0;
}

int pull_ipc_decode_finish(const uint8_t *p, size_t len, const char *account,
			   struct snapshot **s_r, bool *gone_r, uint64_t *examined_r)
{
	*s_r = NULL;
	struct adec d;
	adec_init(&d, p, len);
	uint8_t gone = adec_u8(&d);
	*examined_r = adec_varint(&d);
	if (d.failed || gone > 1 || *examined_r > SNAP_FOLDERS_MAX)
		return ARCA_EFORMAT;
	*gone_r = gone == 1;
	if (gone)
		return adec_finish(&d) ? ARCA_EFORMAT : 0;
	char *acct = adec_strdup(&d, SNAP_ACCOUNT_MAX);
	if (acct == NULL || strcmp(acct, account) != 0) {
		free(acct);
		return ARCA_EFORMAT;
	}
	free(acct);
	struct snapshot *s = snapshot_new(account, "imap");
	if (s == NULL)
		return ARCA_ENOMEM;
	int rc = ARCA_EFORMAT;
	s->time_ns = adec_u64(&d);
	/* the layout the server's hierarchy separator says: the network
	 * process may pick either (it names the folders anyway); it only
	 * decides how restore lays them out and what serve-imap shows */
	s->layout = adec_u8(&d);
	uint64_t nsubs = adec_varint(&d);
	if (d.failed || (s->layout != MAILDIR_LAYOUT_MAILDIRPP && s->layout != MAILDIR_LAYOUT_FS) ||
	    nsubs > SNAP_FOLDERS_MAX || nsubs > adec_left(&d))
		goto fail;
	for (uint64_t i = 0; i < nsubs; i++) {
		char *name = adec_strdup(&d, SNAP_NAME_MAX);
		int arc = name ? snapshot_add_subscription(s, name) : ARCA_EFORMAT;
		free(name);
		if (arc) {
			rc = arc;
			goto fail;
		}
	}
	uint8_t has_sieve = adec_u8(&d);
	uint64_t nsieve = adec_varint(&d);
	if (d.failed || has_sieve > 1 || nsieve > SNAP_SIEVE_MAX || (nsieve && !has_sieve) ||
	    nsieve > adec_left(&d) / (ARCA_ID_LEN + 4))
		goto fail;
	s->has_sieve = has_sieve == 1;
	for (uint64_t i = 0; i < nsieve; i++) {
		struct snap_sieve v = { 0 };
		v.name = adec_strdup(&d, SNAP_SIEVE_NAME_MAX);
		uint8_t active = adec_u8(&d);
		v.content_type = adec_u8(&d);
		adec_fixed(&d, v.content_id, ARCA_ID_LEN);
		v.size = adec_varint(&d);
		int arc = ARCA_EFORMAT;
		if (!d.failed && v.name && active <= 1 &&
		    (v.content_type == OBJ_BLOB || v.content_type == OBJ_CHUNKLIST)) {
			v.active = active == 1;
			arc = snapshot_add_sieve(s, &v);
		}
		free(v.name);
		if (arc) {
			rc = arc;
			goto fail;
		}
	}
	uint64_t nf = adec_varint(&d);
	if (d.failed || nf > SNAP_FOLDERS_MAX || nf > adec_left(&d))
		goto fail;
	for (uint64_t i = 0; i < nf; i++) {
		uint8_t kind = adec_u8(&d);
		if (d.failed)
			goto fail;
		if (kind == FK_FULL) {
			size_t flen;
			const uint8_t *fb = adec_bytes(&d, &flen, PULL_IPC_FRAME_MAX);
			if (fb == NULL)
				goto fail;
			size_t before = s->nfolders;
			int frc = snap_folder_decode_full(fb, flen, s);
			if (frc) {
				rc = frc == ARCA_ENOMEM ? frc : ARCA_EFORMAT;
				goto fail;
			}
			struct snap_folder *f = &s->folders[before];
			if (!(f->attrs & SNAP_FOLDER_SELECTABLE) || f->npages != 0 || f->pages_reused)
				goto fail;
			continue;
		}
		if (kind != FK_PARENT && kind != FK_UNCHANGED)
			goto fail;
		char *name = adec_strdup(&d, SNAP_NAME_MAX);
		uint64_t attrs = adec_varint(&d);
		char *su = adec_strdup(&d, 64);
		struct snap_folder *f = NULL;
		bool sel = attrs & SNAP_FOLDER_SELECTABLE;
		if (!d.failed && name && su && !(attrs & ~(uint64_t)(SNAP_FOLDER_SELECTABLE | SNAP_FOLDER_SUBSCRIBED)) &&
		    sel == (kind == FK_UNCHANGED))
			f = snapshot_add_folder(s, name);
		free(name);
		if (f == NULL) {
			free(su);
			goto fail;
		}
		f->attrs = (uint32_t)attrs;
		free(f->special_use);
		f->special_use = su;
		f->pages_reused = kind == FK_UNCHANGED;
	}
	if (adec_finish(&d) != 0)
		goto fail;
	*s_r = s;
	return 0;
fail:
	snapshot_free(s);
	return rc;
}

int pull_ipc_decode_fail(const uint8_t *p, size_t len, int *code_r, char *msg, size_t msglen)
{
	struct adec d;
	adec_init(&d, p, len);
	uint32_t code = adec_u32(&d);
	if (d.failed || code == 0 || code > 64 || take_str(&d, msg, msglen) != 0 || adec_finish(&d) != 0)
		return ARCA_EFORMAT;
	for (char *c = msg; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	*code_r = -(int)code;
	return 0;
}

int pull_ipc_decode_prev(const uint8_t *p, size_t len, struct pull_prev_blobs *b)
{
	memset(b, 0, sizeof(*b));
	struct adec d;
	adec_init(&d, p, len);
	size_t n;
	const uint8_t *a = adec_bytes(&d, &n, PULL_IPC_FRAME_MAX);
	uint64_t nf = adec_varint(&d);
	if (a == NULL || d.failed || nf > SNAP_FOLDERS_MAX || nf > adec_left(&d))
		return ARCA_EFORMAT;
	if (abuf_add(&b->acct, a, n) != 0)
		return ARCA_ENOMEM;
	b->folders = calloc(nf ? nf : 1, sizeof(*b->folders));
	if (b->folders == NULL) {
		pull_prev_blobs_release(b);
		return ARCA_ENOMEM;
	}
	for (; b->nfolders < nf; b->nfolders++) {
		const uint8_t *f = adec_bytes(&d, &n, PULL_IPC_FRAME_MAX);
		if (f == NULL || abuf_add(&b->folders[b->nfolders], f, n) != 0) {
			b->nfolders++;
			pull_prev_blobs_release(b);
			return ARCA_EFORMAT;
		}
	}
	if (adec_finish(&d) != 0) {
		pull_prev_blobs_release(b);
		return ARCA_EFORMAT;
	}
	return 0;
}

int pull_ipc_decode_content(const uint8_t *p, size_t len, int *known_r, struct pull_content *c)
{
	struct adec d;
	adec_init(&d, p, len);
	uint8_t known = adec_u8(&d);
	memset(c, 0, sizeof(*c));
	if (d.failed || known > 1)
		return ARCA_EFORMAT;
	if (known) {
		c->type = adec_u8(&d);
		adec_fixed(&d, c->id, ARCA_ID_LEN);
		c->size = adec_u64(&d);
		uint8_t st = adec_u8(&d);
		if (d.failed || st > 1 || (c->type != OBJ_BLOB && c->type != OBJ_CHUNKLIST))
			return ARCA_EFORMAT;
		c->stripped = st == 1;
	}
	*known_r = known;
	return adec_finish(&d) ? ARCA_EFORMAT : 0;
}

int pull_ipc_decode_err(const uint8_t *p, size_t len, struct arca_err *err)
{
	int code;
	char msg[ARCA_ERR_MSG_MAX];
	if (pull_ipc_decode_fail(p, len, &code, msg, sizeof(msg)) != 0)
		return arca_err_set(err, ARCA_EFORMAT, "store process: malformed error");
	return arca_err_set(err, code, "%s", msg);
}
