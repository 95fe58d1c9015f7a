/*
 * serve_proto.c - frames between serve-imap's session processes, the
 * acceptor and the keeper (serve_proto.h, docs/protocol/serve.md).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan.h"
#include "serve_proto.h"
#include "banned.h"

/* ---- stream I/O ---- */

int serve_send(int fd, const struct abuf *frame, struct arca_err *err)
{
	if (chan_send(fd, frame) != 0) {
		int e = errno;    /* kept for the caller: EAGAIN is a send timeout */
		arca_err_errno(err, ARCA_EIO, e, "serve channel: the other side is gone");
		errno = e;
		return ARCA_EIO;
	}
	return 0;
}

int serve_recv(int fd, uint8_t *type_r, struct abuf *payload, struct arca_err *err)
{
	switch (chan_recv(fd, SERVE_FRAME_MAX, type_r, payload)) {
	case 0:
		return 0;
	case ARCA_ENOENT:
		return arca_err_set(err, ARCA_ENOENT, "serve channel: the other side hung up");
	case ARCA_EFORMAT:
		return arca_err_set(err, ARCA_EFORMAT, "serve channel: a frame of a length over %u or of 0",
				    (unsigned)SERVE_FRAME_MAX);
	case ARCA_ENOMEM:
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	default:
		return arca_err_set(err, ARCA_EIO, "serve channel: a frame cut short");
	}
}

/* ---- encoders ---- */

#define FLAGS_ALL (VV_SEEN | VV_ANSWERED | VV_FLAGGED | VV_DELETED | VV_DRAFT)

static int frame_start(struct abuf *out, uint8_t type)
{
	return chan_frame_start(out, type);
}

static int frame_end(struct abuf *out)
{
	return chan_frame_end(out, SERVE_FRAME_MAX);
}

static int add_str_max(struct abuf *out, const char *s, size_t max)
{
	if (strlen(s) > max)
		return ARCA_ELIMIT;
	return abuf_add_str(out, s);
}

int serve_encode_login(struct abuf *out, const char *user, const char *password)
{
	int rc = frame_start(out, SERVE_LOGIN);
	rc = rc ? rc : add_str_max(out, user, SERVE_USER_MAX);
	rc = rc ? rc : add_str_max(out, password, SERVE_PASSWORD_MAX);
	return rc ? rc : frame_end(out);
}

int serve_encode_folders(struct abuf *out)
{
	int rc = frame_start(out, SERVE_FOLDERS);
	return rc ? rc : frame_end(out);
}

int serve_encode_open(struct abuf *out, size_t folder)
{
	if (folder >= SERVE_FOLDERS_MAX)
		return ARCA_ELIMIT;
	int rc = frame_start(out, SERVE_OPEN);
	rc = rc ? rc : abuf_add_varint(out, folder);
	return rc ? rc : frame_end(out);
}

int serve_encode_body(struct abuf *out, size_t folder, uint32_t uid)
{
	if (folder >= SERVE_FOLDERS_MAX || uid == 0)
		return ARCA_ELIMIT;
	int rc = frame_start(out, SERVE_BODY);
	rc = rc ? rc : abuf_add_varint(out, folder);
	rc = rc ? rc : abuf_add_u32(out, uid);
	return rc ? rc : frame_end(out);
}

int serve_encode_ok(struct abuf *out, uint8_t flags)
{
	if (flags & ~SERVE_OK_STORE)
		return ARCA_ELIMIT;
	int rc = frame_start(out, SERVE_OK);
	rc = rc ? rc : abuf_add_u8(out, flags);
	return rc ? rc : frame_end(out);
}

static bool uids_ok(const uint32_t *u, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (u[i] == 0 || (i > 0 && u[i] <= u[i - 1]))
			return false;
	return true;
}

int serve_encode_store(struct abuf *out, size_t folder, const struct vv_store *req)
{
	if (folder >= SERVE_FOLDERS_MAX || req->nuids == 0 || req->nuids > SERVE_STORE_UIDS_MAX ||
	    req->nkeywords > SERVE_KEYWORDS_MAX || (req->flags & ~(uint32_t)FLAGS_ALL) != 0 ||
	    req->mode < VV_STORE_REMOVE || req->mode > VV_STORE_ADD || !uids_ok(req->uids, req->nuids))
		return ARCA_ELIMIT;
	int rc = frame_start(out, SERVE_STORE);
	rc = rc ? rc : abuf_add_varint(out, folder);
	rc = rc ? rc : abuf_add_u8(out, (uint8_t)(req->mode + 1));
	rc = rc ? rc : abuf_add_u8(out, (uint8_t)req->flags);
	rc = rc ? rc : abuf_add_varint(out, req->nkeywords);
	for (size_t i = 0; rc == 0 && i < req->nkeywords; i++)
		rc = vv_keyword_ok(req->keywords[i]) ? abuf_add_str(out, req->keywords[i]) : ARCA_ELIMIT;
	rc = rc ? rc : abuf_add_u8(out, req->has_unchangedsince ? 1 : 0);
	rc = rc ? rc : abuf_add_u64(out, req->has_unchangedsince ? req->unchangedsince : 0);
	rc = rc ? rc : abuf_add_varint(out, req->nuids);
	for (size_t i = 0; rc == 0 && i < req->nuids; i++)
		rc = abuf_add_u32(out, req->uids[i]);
	return rc ? rc : frame_end(out);
}

int serve_encode_changes(struct abuf *out, size_t folder, uint64_t since)
{
	if (folder >= SERVE_FOLDERS_MAX)
		return ARCA_ELIMIT;
	int rc = frame_start(out, SERVE_CHANGES);
	rc = rc ? rc : abuf_add_varint(out, folder);
	rc = rc ? rc : abuf_add_u64(out, since);
	return rc ? rc : frame_end(out);
}

int serve_encode_stored(struct abuf *out, char *const *kw, size_t nkw, const uint32_t *modified,
			size_t nmodified, size_t nmsgs)
{
	if (nkw > SERVE_KEYWORDS_MAX || nmodified > SERVE_STORE_UIDS_MAX || nmsgs > SERVE_MSGS_MAX ||
	    !uids_ok(modified, nmodified))
		return ARCA_ELIMIT;
	int rc = frame_start(out, SERVE_STORED);
	rc = rc ? rc : abuf_add_varint(out, nkw);
	for (size_t i = 0; rc == 0 && i < nkw; i++)
		rc = kw[i][0] && strlen(kw[i]) <= SERVE_KEYWORD_MAX ? abuf_add_str(out, kw[i]) : ARCA_ELIMIT;
	rc = rc ? rc : abuf_add_varint(out, nmodified);
	for (size_t i = 0; rc == 0 && i < nmodified; i++)
		rc = abuf_add_u32(out, modified[i]);
	rc = rc ? rc : abuf_add_varint(out, nmsgs);
	return rc ? rc : frame_end(out);
}

/* Texts are cut (not refused) at the limit: they are for humans. */
static int add_text(struct abuf *out, const char *text)
{
	size_t n = strlen(text);
	if (n > SERVE_TEXT_MAX)
		n = SERVE_TEXT_MAX;
	return abuf_add_bytes(out, text, n);
}

int serve_encode_no(struct abuf *out, uint8_t reason, const char *text)
{
	if (reason < SERVE_NO_BAD || reason > SERVE_NO_UNAVAILABLE)
		return ARCA_ELIMIT;
	int rc = frame_start(out, SERVE_NO);
	rc = rc ? rc : abuf_add_u8(out, reason);
	rc = rc ? rc : add_text(out, text);
	return rc ? rc : frame_end(out);
}

static bool separator_ok(unsigned c)
{
	return c == '.' || c == '/';
}

static bool folder_attrs_ok(uint32_t a)
{
	return (a & ~(uint32_t)(VV_SELECTABLE | VV_SUBSCRIBED | VV_NONEXISTENT)) == 0 &&
	       (a & (VV_SELECTABLE | VV_NONEXISTENT)) != (VV_SELECTABLE | VV_NONEXISTENT);
}

int serve_encode_folder_list(struct abuf *out, bool last, char separator,
			     const struct vv_folder *folders, size_t n)
{
	if (n > SERVE_FOLDERS_PER_FRAME || (n == 0 && !last) || !separator_ok((unsigned char)separator))
		return ARCA_ELIMIT;
	int rc = frame_start(out, SERVE_FOLDER_LIST);
	rc = rc ? rc : abuf_add_u8(out, last ? 1 : 0);
	rc = rc ? rc : abuf_add_u8(out, (uint8_t)separator);
	rc = rc ? rc : abuf_add_varint(out, n);
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct vv_folder *f = &folders[i];
		if (f->name[0] == '\0' || !folder_attrs_ok(f->attrs))
			return ARCA_ELIMIT;
		rc = add_str_max(out, f->name, SERVE_FOLDER_NAME_MAX);
		rc = rc ? rc : abuf_add_u8(out, (uint8_t)f->attrs);
		rc = rc ? rc : add_str_max(out, f->special_use, SERVE_SPECIAL_USE_MAX);
		rc = rc ? rc : abuf_add_u32(out, f->uidvalidity);
		rc = rc ? rc : abuf_add_u32(out, f->uidnext);
		rc = rc ? rc : abuf_add_u64(out, f->highestmodseq);
		rc = rc ? rc : abuf_add_u32(out, f->messages);
		rc = rc ? rc : abuf_add_u32(out, f->unseen);
	}
	return rc ? rc : frame_end(out);
}

int serve_encode_gone_subs(struct abuf *out, bool last, char *const *names, size_t n)
{
	if (n > SERVE_SUBS_PER_FRAME || (n == 0 && !last))
		return ARCA_ELIMIT;
	int rc = frame_start(out, SERVE_GONE_SUBS);
	rc = rc ? rc : abuf_add_u8(out, last ? 1 : 0);
	rc = rc ? rc : abuf_add_varint(out, n);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = names[i][0] == '\0' ? ARCA_ELIMIT : add_str_max(out, names[i], SERVE_FOLDER_NAME_MAX);
	return rc ? rc : frame_end(out);
}

int serve_encode_mailbox(struct abuf *out, char *const *keywords, size_t nkeywords, uint64_t nmsgs)
{
	if (nkeywords > SERVE_KEYWORDS_MAX || nmsgs > SERVE_MSGS_MAX)
		return ARCA_ELIMIT;
	int rc = frame_start(out, SERVE_MAILBOX);
	rc = rc ? rc : abuf_add_varint(out, nkeywords);
	for (size_t i = 0; i < nkeywords && rc == 0; i++)
		rc = keywords[i][0] == '\0' ? ARCA_ELIMIT : add_str_max(out, keywords[i], SERVE_KEYWORD_MAX);
	rc = rc ? rc : abuf_add_varint(out, nmsgs);
	return rc ? rc : frame_end(out);
}


int serve_encode_msgs(struct abuf *out, const struct vv_msg *msgs, size_t n)
{
	if (n == 0 || n > SERVE_MSGS_PER_FRAME)
		return ARCA_ELIMIT;
	int rc = frame_start(out, SERVE_MSGS);
	rc = rc ? rc : abuf_add_varint(out, n);
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct vv_msg *m = &msgs[i];
		if (m->uid == 0 || m->modseq == 0 || (m->flags & ~(uint32_t)FLAGS_ALL) != 0 ||
		    m->size > SERVE_BODY_MAX)
			return ARCA_ELIMIT;
		rc = abuf_add_u32(out, m->uid);
		rc = rc ? rc : abuf_add_u64(out, m->modseq);
		rc = rc ? rc : abuf_add_u8(out, (uint8_t)m->flags);
		rc = rc ? rc : abuf_add_u64(out, m->keywords);
		rc = rc ? rc : abuf_add_u64(out, (uint64_t)m->date);
		rc = rc ? rc : abuf_add_u64(out, m->size);
		rc = rc ? rc : abuf_add_u8(out, m->recent ? 1 : 0);
	}
	return rc ? rc : frame_end(out);
}

int serve_encode_body_r(struct abuf *out, uint64_t size)
{
	if (size > SERVE_BODY_MAX)
		return ARCA_ELIMIT;
	int rc = frame_start(out, SERVE_BODY_R);
	rc = rc ? rc : abuf_add_u64(out, size);
	return rc ? rc : frame_end(out);
}

int serve_encode_data(struct abuf *out, const void *p, size_t n)
{
	if (n == 0 || n > SERVE_DATA_MAX)
		return ARCA_ELIMIT;
	int rc = frame_start(out, SERVE_DATA);
	rc = rc ? rc : abuf_add(out, p, n);
	return rc ? rc : frame_end(out);
}

int serve_encode_err(struct abuf *out, int code, const char *text)
{
	if (code >= 0)
		code = ARCA_EIO;
	int rc = frame_start(out, SERVE_ERR);
	rc = rc ? rc : abuf_add_u32(out, (uint32_t)-code);
	rc = rc ? rc : add_text(out, text);
	return rc ? rc : frame_end(out);
}

/* ---- decoders ---- */

/* A length-prefixed string of 0..max bytes without NUL into buf. */
static void dec_str_buf(struct adec *d, char *buf, size_t max)
{
	size_t n = 0;
	const uint8_t *s = adec_bytes(d, &n, max);
	if (s == NULL || memchr(s, '\0', n) != NULL) {
		d->failed = true;
		buf[0] = '\0';
		return;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
}

int serve_decode_login(const uint8_t *p, size_t len, char user[SERVE_USER_MAX + 1],
		       char password[SERVE_PASSWORD_MAX + 1])
{
	struct adec d;
	adec_init(&d, p, len);
	dec_str_buf(&d, user, SERVE_USER_MAX);
	dec_str_buf(&d, password, SERVE_PASSWORD_MAX);
	if (adec_finish(&d) != 0 || user[0] == '\0') {
		user[0] = '\0';
		password[0] = '\0';
		return ARCA_EFORMAT;
	}
	return 0;
}

int serve_decode_empty(const uint8_t *p, size_t len)
{
	(void)p;
	return len == 0 ? 0 : ARCA_EFORMAT;
}

int serve_decode_open(const uint8_t *p, size_t len, size_t *folder_r)
{
	struct adec d;
	adec_init(&d, p, len);
	uint64_t f = adec_varint(&d);
	if (adec_finish(&d) != 0 || f >= SERVE_FOLDERS_MAX)
		return ARCA_EFORMAT;
	*folder_r = (size_t)f;
	return 0;
}

int serve_decode_body(const uint8_t *p, size_t len, size_t *folder_r, uint32_t *uid_r)
{
	struct adec d;
	adec_init(&d, p, len);
	uint64_t f = adec_varint(&d);
	uint32_t uid = adec_u32(&d);
	if (adec_finish(&d) != 0 || f >= SERVE_FOLDERS_MAX || uid == 0)
		return ARCA_EFORMAT;
	*folder_r = (size_t)f;
	*uid_r = uid;
	return 0;
}

int serve_decode_no(const uint8_t *p, size_t len, uint8_t *reason_r, char text[SERVE_TEXT_MAX + 1])
{
	struct adec d;
	adec_init(&d, p, len);
	uint8_t reason = adec_u8(&d);
	dec_str_buf(&d, text, SERVE_TEXT_MAX);
	if (adec_finish(&d) != 0 || reason < SERVE_NO_BAD || reason > SERVE_NO_UNAVAILABLE)
		return ARCA_EFORMAT;
	*reason_r = reason;
	return 0;
}

void serve_folder_list_release(struct serve_folder_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].special_use);
	}
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
	l->separator = '\0';
}

/* The least a folder record takes: empty strings can't be (name >= 1). */
#define FOLDER_RECORD_MIN (2 + 1 + 1 + 4 + 4 + 8 + 4 + 4)

int serve_decode_folder_list(const uint8_t *p, size_t len, struct serve_folder_list *l, bool *last_r)
{
	struct adec d;
	adec_init(&d, p, len);
	uint8_t last = adec_u8(&d);
	uint8_t sep = adec_u8(&d);
	uint64_t n = adec_varint(&d);
	if (d.failed || last > 1 || n > SERVE_FOLDERS_PER_FRAME || (n == 0 && !last) ||
	    n > adec_left(&d) / FOLDER_RECORD_MIN || l->n + n > SERVE_FOLDERS_MAX ||
	    !separator_ok(sep) || (l->separator != '\0' && l->separator != (char)sep))
		return ARCA_EFORMAT;
	if (l->n + n > l->cap) {
		size_t cap = l->cap ? l->cap : 16;
		while (cap < l->n + n)
			cap *= 2;
		struct vv_folder *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL)
			return ARCA_ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	size_t start = l->n;
	int rc = 0;
	for (uint64_t i = 0; i < n && rc == 0; i++) {
		struct vv_folder f = { 0 };
		f.name = adec_strdup(&d, SERVE_FOLDER_NAME_MAX);
		f.attrs = adec_u8(&d);
		f.special_use = adec_strdup(&d, SERVE_SPECIAL_USE_MAX);
		f.uidvalidity = adec_u32(&d);
		f.uidnext = adec_u32(&d);
		f.highestmodseq = adec_u64(&d);
		f.messages = adec_u32(&d);
		f.unseen = adec_u32(&d);
		if (d.failed || f.name == NULL || f.special_use == NULL || f.name[0] == '\0' ||
		    !folder_attrs_ok(f.attrs) ||
		    f.unseen > f.messages || f.highestmodseq == 0 || f.uidnext == 0) {
			free(f.name);
			free(f.special_use);
			rc = ARCA_EFORMAT;
			break;
		}
		l->v[l->n++] = f;
	}
	if (rc == 0 && adec_finish(&d) != 0)
		rc = ARCA_EFORMAT;
	if (rc) {
		/* the frame counts whole or not at all */
		for (size_t i = start; i < l->n; i++) {
			free(l->v[i].name);
			free(l->v[i].special_use);
		}
		l->n = start;
		return rc;
	}
	l->separator = (char)sep;
	*last_r = last == 1;
	return 0;
}

void serve_name_list_release(struct serve_name_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

int serve_decode_gone_subs(const uint8_t *p, size_t len, struct serve_name_list *l, bool *last_r)
{
	struct adec d;
	adec_init(&d, p, len);
	uint8_t last = adec_u8(&d);
	uint64_t n = adec_varint(&d);
	/* a name takes 2 bytes at least (length and one byte) */
	if (d.failed || last > 1 || n > SERVE_SUBS_PER_FRAME || (n == 0 && !last) ||
	    n > adec_left(&d) / 2 || l->n + n > SERVE_SUBS_MAX)
		return ARCA_EFORMAT;
	if (l->n + n > l->cap) {
		size_t cap = l->cap ? l->cap : 16;
		while (cap < l->n + n)
			cap *= 2;
		char **v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL)
			return ARCA_ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	size_t start = l->n;
	int rc = 0;
	for (uint64_t i = 0; i < n; i++) {
		char *name = adec_strdup(&d, SERVE_FOLDER_NAME_MAX);
		if (d.failed || name == NULL || name[0] == '\0') {
			free(name);
			rc = ARCA_EFORMAT;
			break;
		}
		l->v[l->n++] = name;
	}
	if (rc == 0 && adec_finish(&d) != 0)
		rc = ARCA_EFORMAT;
	if (rc) {
		for (size_t i = start; i < l->n; i++)
			free(l->v[i]);
		l->n = start;
		return rc;
	}
	*last_r = last == 1;
	return 0;
}

/* A count of keywords (at most 64), then them: into a calloc'ed array
 * (MAILBOX, STORED; atoms: a STORE request's, IMAP atoms each once). */
static char **decode_keywords(struct adec *d, bool atoms, size_t *n_r, int *rc_r)
{
	uint64_t n = adec_varint(d);
	*n_r = 0;
	if (d->failed || n > SERVE_KEYWORDS_MAX || n > adec_left(d) / 2) {
		*rc_r = ARCA_EFORMAT;
		return NULL;
	}
	char **kw = calloc(n ? (size_t)n : 1, sizeof(*kw));
	if (kw == NULL) {
		*rc_r = ARCA_ENOMEM;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		kw[i] = adec_strdup(d, SERVE_KEYWORD_MAX);
		bool ok = kw[i] != NULL && kw[i][0] != '\0' && (!atoms || vv_keyword_ok(kw[i]));
		/* a request names each once; a folder's list is as the
		 * snapshot had it (as MAILBOX sends it) */
		for (size_t j = 0; ok && atoms && j < i; j++)
			ok = strcasecmp(kw[j], kw[i]) != 0;
		if (!ok) {
			for (size_t j = 0; j <= i; j++)
				free(kw[j]);
			free(kw);
			*rc_r = ARCA_EFORMAT;
			return NULL;
		}
	}
	*n_r = (size_t)n;
	return kw;
}

int serve_decode_mailbox(const uint8_t *p, size_t len, struct vv_mailbox *mb, uint64_t *nmsgs_r)
{
	struct adec d;
	adec_init(&d, p, len);
	int rc = 0;
	size_t nk = 0;
	char **kw = decode_keywords(&d, false, &nk, &rc);
	if (kw == NULL)
		return rc;
	uint64_t nmsgs = adec_varint(&d);
	if (adec_finish(&d) != 0 || nmsgs > SERVE_MSGS_MAX) {
		for (size_t i = 0; i < nk; i++)
			free(kw[i]);
		free(kw);
		return ARCA_EFORMAT;
	}
	mb->keywords = kw;
	mb->nkeywords = nk;
	*nmsgs_r = nmsgs;
	return 0;
}

int serve_decode_msgs(const uint8_t *p, size_t len, struct vv_msg *out, size_t room, size_t *n_r)
{
	struct adec d;
	adec_init(&d, p, len);
	uint64_t n = adec_varint(&d);
	if (d.failed || n == 0 || n > SERVE_MSGS_PER_FRAME || n > room ||
	    adec_left(&d) != n * SERVE_MSG_RECORD)
		return ARCA_EFORMAT;
	for (uint64_t i = 0; i < n; i++) {
		struct vv_msg m;
		m.uid = adec_u32(&d);
		m.modseq = adec_u64(&d);
		m.flags = adec_u8(&d);
		m.keywords = adec_u64(&d);
		m.date = (int64_t)adec_u64(&d);
		m.size = adec_u64(&d);
		uint8_t recent = adec_u8(&d);
		if (d.failed || m.uid == 0 || m.modseq == 0 || (m.flags & ~(uint32_t)FLAGS_ALL) != 0 ||
		    m.size > SERVE_BODY_MAX || recent > 1)
			return ARCA_EFORMAT;
		m.recent = recent == 1;
		out[i] = m;
	}
	if (adec_finish(&d) != 0)
		return ARCA_EFORMAT;
	*n_r = (size_t)n;
	return 0;
}

int serve_decode_ok(const uint8_t *p, size_t len, uint8_t *flags_r)
{
	struct adec d;
	adec_init(&d, p, len);
	uint8_t f = adec_u8(&d);
	if (adec_finish(&d) != 0 || (f & ~SERVE_OK_STORE) != 0)
		return ARCA_EFORMAT;
	*flags_r = f;
	return 0;
}

void serve_store_release(struct vv_store *req)
{
	for (size_t i = 0; i < req->nkeywords; i++)
		free(req->keywords[i]);
	free((void *)req->keywords);
	free((void *)req->uids);
	memset(req, 0, sizeof(*req));
}

/* A count of u32 UIDs, then them, strictly ascending and not 0. */
static uint32_t *decode_uids(struct adec *d, size_t min, size_t *n_r, int *rc_r)
{
	uint64_t n = adec_varint(d);
	*n_r = 0;
	if (d->failed || n < min || n > SERVE_STORE_UIDS_MAX || n > adec_left(d) / 4) {
		*rc_r = ARCA_EFORMAT;
		return NULL;
	}
	if (n == 0)
		return NULL;
	uint32_t *u = malloc((size_t)n * sizeof(*u));
	if (u == NULL) {
		*rc_r = ARCA_ENOMEM;
		return NULL;
	}
	for (uint64_t i = 0; i < n; i++)
		u[i] = adec_u32(d);
	if (d->failed || !uids_ok(u, (size_t)n)) {
		free(u);
		*rc_r = ARCA_EFORMAT;
		return NULL;
	}
	*n_r = (size_t)n;
	return u;
}


int serve_decode_store(const uint8_t *p, size_t len, size_t *folder_r, struct vv_store *req)
{
	memset(req, 0, sizeof(*req));
	struct adec d;
	adec_init(&d, p, len);
	uint64_t folder = adec_varint(&d);
	uint8_t mode = adec_u8(&d);
	uint8_t flags = adec_u8(&d);
	if (d.failed || folder >= SERVE_FOLDERS_MAX || mode > 2 || (flags & ~FLAGS_ALL) != 0)
		return ARCA_EFORMAT;
	req->mode = (int)mode - 1;
	req->flags = flags;
	int rc = 0;
	char **kw = decode_keywords(&d, true, &req->nkeywords, &rc);
	if (kw == NULL)
		return rc;
	req->keywords = kw;
	uint8_t has = adec_u8(&d);
	req->unchangedsince = adec_u64(&d);
	if (d.failed || has > 1 || (has == 0 && req->unchangedsince != 0) ||
	    req->unchangedsince > (uint64_t)INT64_MAX) {
		serve_store_release(req);
		return ARCA_EFORMAT;
	}
	req->has_unchangedsince = has == 1;
	req->uids = decode_uids(&d, 1, &req->nuids, &rc);
	if (req->uids == NULL || adec_finish(&d) != 0) {
		serve_store_release(req);
		return rc ? rc : ARCA_EFORMAT;
	}
	*folder_r = (size_t)folder;
	return 0;
}

int serve_decode_changes(const uint8_t *p, size_t len, size_t *folder_r, uint64_t *since_r)
{
	struct adec d;
	adec_init(&d, p, len);
	uint64_t folder = adec_varint(&d);
	uint64_t since = adec_u64(&d);
	if (adec_finish(&d) != 0 || folder >= SERVE_FOLDERS_MAX)
		return ARCA_EFORMAT;
	*folder_r = (size_t)folder;
	*since_r = since;
	return 0;
}

int serve_decode_stored(const uint8_t *p, size_t len, struct vv_store_result *res, size_t *nmsgs_r,
			size_t max_msgs)
{
	struct adec d;
	adec_init(&d, p, len);
	int rc = 0;
	size_t nkw;
	char **kw = decode_keywords(&d, false, &nkw, &rc);
	if (kw == NULL)
		return rc;
	size_t nmod = 0;
	uint32_t *mod = decode_uids(&d, 0, &nmod, &rc);
	uint64_t nmsgs = adec_varint(&d);
	if (rc != 0 || adec_finish(&d) != 0 || nmsgs > max_msgs || max_msgs > SERVE_MSGS_MAX) {
		for (size_t i = 0; i < nkw; i++)
			free(kw[i]);
		free(kw);
		free(mod);
		return rc ? rc : ARCA_EFORMAT;
	}
	res->keywords = kw;
	res->nkeywords = nkw;
	res->modified = mod;
	res->nmodified = nmod;
	*nmsgs_r = (size_t)nmsgs;
	return 0;
}

int serve_decode_body_r(const uint8_t *p, size_t len, uint64_t *size_r)
{
	struct adec d;
	adec_init(&d, p, len);
	uint64_t size = adec_u64(&d);
	if (adec_finish(&d) != 0 || size > SERVE_BODY_MAX)
		return ARCA_EFORMAT;
	*size_r = size;
	return 0;
}

int serve_decode_err(const uint8_t *p, size_t len, struct arca_err *err)
{
	struct adec d;
	adec_init(&d, p, len);
	uint32_t code = adec_u32(&d);
	char text[SERVE_TEXT_MAX + 1];
	dec_str_buf(&d, text, SERVE_TEXT_MAX);
	/* a code this build doesn't know is still an error, just unnamed */
	if (adec_finish(&d) != 0 || code == 0 || code > 1000)
		return arca_err_set(err, ARCA_EFORMAT, "serve channel: a malformed ERR");
	return arca_err_set(err, -(int)code, "%s", text);
}

/* ---- the control socket ---- */

#define CTL_VERSION 1

int serve_ctl_encode(struct abuf *out, const char *peer, uint16_t port)
{
	abuf_reset(out);
	int rc = abuf_add_u8(out, CTL_VERSION);
	rc = rc ? rc : add_str_max(out, peer, SERVE_PEER_MAX);
	rc = rc ? rc : abuf_add_u16(out, port);
	return rc;
}

int serve_ctl_decode(const uint8_t *p, size_t len, char peer[SERVE_PEER_MAX + 1], uint16_t *port_r)
{
	struct adec d;
	adec_init(&d, p, len);
	uint8_t v = adec_u8(&d);
	dec_str_buf(&d, peer, SERVE_PEER_MAX);
	uint16_t port = adec_u16(&d);
	if (adec_finish(&d) != 0 || v != CTL_VERSION) {
		peer[0] = '\0';
		return ARCA_EFORMAT;
	}
	/* only a numeric address: it names the peer in logs and throttling */
	unsigned char bin[16];
	if (inet_pton(AF_INET, peer, bin) != 1 && inet_pton(AF_INET6, peer, bin) != 1) {
		peer[0] = '\0';
		return ARCA_EFORMAT;
	}
	*port_r = port;
	return 0;
}

int serve_ctl_send(int sock, int fd, const char *peer, uint16_t port, struct arca_err *err)
{
	struct abuf b = ABUF_INIT;
	if (serve_ctl_encode(&b, peer, port) != 0) {
		abuf_release(&b);
		return arca_err_set(err, ARCA_ELIMIT, "peer address too long");
	}
	struct iovec iov = { .iov_base = b.data, .iov_len = b.len };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	ssize_t w;
	do
		w = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	int e = errno;
	size_t want = b.len;
	abuf_release(&b);
	if (w < 0 || (size_t)w != want)
		return arca_err_errno(err, ARCA_EIO, e, "control socket: the keeper is gone");
	return 0;
}

#define CTL_MSG_MAX (1 + 2 + SERVE_PEER_MAX + 2)
#define CTL_FDS_MAX 8

int serve_ctl_recv(int sock, int *fd_r, char peer[SERVE_PEER_MAX + 1], uint16_t *port_r,
		   struct arca_err *err)
{
	*fd_r = -1;
	uint8_t buf[CTL_MSG_MAX + 1];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	/* room for more descriptors than allowed, so extra ones are seen
	 * (and closed) rather than silently truncated */
	union {
		char buf[CMSG_SPACE(CTL_FDS_MAX * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	ssize_t r;
	do
		r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return arca_err_set(err, ARCA_ENOENT, "control socket: the acceptor hung up");
	if (r < 0)
		return arca_err_errno(err, ARCA_EIO, errno, "control socket");
	int fds[CTL_FDS_MAX];
	size_t nfds = 0;
	bool odd = false;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			odd = true;
			continue;
		}
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (nfds < CTL_FDS_MAX)
				fds[nfds++] = f;
			else
				close(f);
		}
	}
	int rc = 0;
	if (!odd && nfds == 0 && (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) == MSG_CTRUNC &&
	    serve_ctl_decode(buf, (size_t)r, peer, port_r) == 0) {
		/* a well-formed message whose descriptor the kernel could not
		 * install here (the keeper's descriptor table is full): that
		 * one connection is lost, the acceptor did nothing wrong */
		return arca_err_set(err, ARCA_EBUSY, "control socket: no descriptor left for a new channel");
	}
	if (odd || nfds != 1 || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 ||
	    serve_ctl_decode(buf, (size_t)r, peer, port_r) != 0)
		rc = arca_err_set(err, ARCA_EFORMAT, "control socket: a malformed message");
	if (rc == 0) {
		/* it must be a stream socket: anything else is not a channel */
		int type = 0;
		socklen_t tl = sizeof(type);
		if (getsockopt(fds[0], SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM)
			rc = arca_err_set(err, ARCA_EFORMAT, "control socket: the descriptor is not a stream socket");
	}
	if (rc) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		return rc;
	}
	*fd_r = fds[0];
	return 0;
}
