#include "journal_restore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "pack.h"
#include "repo.h"
#include "banned.h"

/* End of the header section: offset of the body, or len if none. */
static size_t body_start(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (p[i] != '\n')
			continue;
		if (p[i + 1] == '\n')
			return i + 2;
		if (p[i + 1] == '\r' && i + 2 < len && p[i + 2] == '\n')
			return i + 3;
	}
	return len;
}

/* The Message-ID header's value, unfolded and trimmed, into out (at most
 * cap - 1 bytes); false if there is none. */
static bool message_id(const uint8_t *p, size_t hlen, char *out, size_t cap)
{
	size_t i = 0;
	while (i < hlen) {
		size_t e = i;
		while (e < hlen && p[e] != '\n')
			e++;
		if (e - i >= 11 && strncasecmp((const char *)p + i, "Message-ID:", 11) == 0) {
			size_t o = 0;
			size_t j = i + 11;
			/* the value, with continuation lines */
			for (;;) {
				for (; j < e; j++)
					if (p[j] != ' ' && p[j] != '\t' && p[j] != '\r' && o + 1 < cap)
						out[o++] = (char)p[j];
				if (e + 1 < hlen && (p[e + 1] == ' ' || p[e + 1] == '\t')) {
					j = e + 1;
					e = j;
					while (e < hlen && p[e] != '\n')
						e++;
					continue;
				}
				break;
			}
			out[o] = '\0';
			return o > 0;
		}
		i = e + 1;
	}
	return false;
}

void mkey_of(const uint8_t *p, size_t len, uint8_t key_r[ARCA_ID_LEN])
{
	size_t b = body_start(p, len);
	char mid[1000];
	struct acrypto_hash_state st;
	acrypto_hash_init(&st);
	if (message_id(p, b, mid, sizeof(mid))) {
		acrypto_hash_update(&st, "m", 1);
		acrypto_hash_update(&st, mid, strlen(mid));
	} else {
		acrypto_hash_update(&st, "b", 1);
		/* CRLF -> LF, so the journal's copy and the mail server's match */
		size_t run = b;
		for (size_t i = b; i < len; i++) {
			if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n') {
				acrypto_hash_update(&st, p + run, i - run);
				run = i + 1;
			}
		}
		acrypto_hash_update(&st, p + run, len - run);
	}
	acrypto_hash_final(&st, key_r);
}

int mkey_add_file(struct idset *keys, const char *path, struct arca_err *err)
{
	struct abuf b = ABUF_INIT;
	int rc = fs_read_file(path, 1ull << 30, &b, err);
	if (rc == 0) {
		uint8_t key[ARCA_ID_LEN];
		mkey_of(b.data, b.len, key);
		rc = idset_add(keys, key);
		if (rc)
			arca_err_set(err, rc, "out of memory");
	}
	abuf_release(&b);
	return rc;
}

struct collect {
	struct journal_rec *recs;
	size_t n, cap;
};

static int collect_one(const struct journal_rec *rec, void *ctx)
{
	struct collect *c = ctx;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct journal_rec *nr = realloc(c->recs, cap * sizeof(*nr));
		if (nr == NULL)
			return ARCA_ENOMEM;
		c->recs = nr;
		c->cap = cap;
	}
	c->recs[c->n++] = *rec;
	return 0;
}

int journal_restore_collect(struct repo *r, const char *account, uint64_t since_ns,
			    struct journal_rec **recs_r, size_t *n_r, struct arca_err *err)
{
	struct collect c = { 0 };
	int rc = journal_list(r, account, since_ns, collect_one, &c, err);
	if (rc) {
		free(c.recs);
		return rc == ARCA_ENOMEM ? arca_err_set(err, rc, "out of memory") : rc;
	}
	*recs_r = c.recs;
	*n_r = c.n;
	return 0;
}

/* The message's bytes in memory (a chunked one through a memfd). */
static int load_content(struct repo *r, const struct journal_rec *rec, struct abuf *out,
			struct arca_err *err)
{
	if (rec->content_type == OBJ_BLOB)
		return repo_get(r, rec->content_id, OBJ_BLOB, out, err);
	int fd = memfd_create("arca-journal", MFD_CLOEXEC);
	if (fd < 0)
		return arca_err_errno(err, ARCA_EIO, errno, "memfd");
	uint64_t size = 0;
	int rc = repo_get_stream(r, rec->content_type, rec->content_id, fd, "journaled message", &size, err);
	if (rc == 0) {
		abuf_reset(out);
		rc = abuf_reserve(out, (size_t)size + 1);
		if (rc)
			rc = arca_err_set(err, rc, "out of memory");
		else
			rc = fs_pread_exact(fd, out->data, (size_t)size, 0, "journaled message", err);
		if (rc == 0)
			out->len = (size_t)size;
	}
	close(fd);
	return rc;
}

int journal_restore_render(struct repo *r, const struct journal_rec *rec, const char *rcpt,
			   const struct idset *seen, struct abuf *out, uint8_t key_r[ARCA_ID_LEN], bool *skip_r,
			   struct arca_err *err)
{
	*skip_r = false;
	abuf_reset(out);
	struct abuf msg = ABUF_INIT, env = ABUF_INIT;
	struct journal_envelope e = { 0 };
	int rc = load_content(r, rec, &msg, err);
	if (rc)
		goto out;
	if (msg.len != rec->size) {
		rc = arca_err_set(err, ARCA_ECORRUPT, "journaled message for %s: %zu bytes, the record says %llu",
				  rec->account, msg.len, (unsigned long long)rec->size);
		goto out;
	}
	mkey_of(msg.data, msg.len, key_r);
	if (seen != NULL && idset_has(seen, key_r)) {
		*skip_r = true;
		goto out;
	}
	rc = repo_get(r, rec->envelope_id, OBJ_JOURNAL, &env, err);
	if (rc)
		goto out;
	if (journal_envelope_decode(env.data, env.len, &e) != 0) {
		rc = arca_err_set(err, ARCA_ECORRUPT, "the envelope of a message journaled for %s is malformed",
				  rec->account);
		goto out;
	}
	/* Mail in: what Dovecot's LMTP puts first; mail out (a copy for Sent)
	 * as the client would have saved it.  Then the message, LF line ends. */
	rc = rec->direction == JOURNAL_DIR_OUT ? 0
		: abuf_printf(out, "Return-Path: <%s>\nDelivered-To: %s\n", e.mail_from,
			      rcpt ? rcpt : rec->account);
	size_t run = 0;
	for (size_t i = 0; i < msg.len && rc == 0; i++) {
		if (msg.data[i] == '\r' && i + 1 < msg.len && msg.data[i + 1] == '\n') {
			rc = abuf_add(out, msg.data + run, i - run);
			run = i + 1;
		}
	}
	rc = rc ? rc : abuf_add(out, msg.data + run, msg.len - run);
	if (rc)
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
out:
	journal_envelope_release(&e);
	abuf_release(&msg);
	abuf_release(&env);
	return rc;
}

int journal_restore_message(struct repo *r, const struct journal_rec *rec, const char *fdir,
			    int owner_uid, int owner_gid, const struct idset *snap, struct idset *added,
			    bool *added_r, struct arca_err *err)
{
	*added_r = false;
	struct abuf out = ABUF_INIT, path = ABUF_INIT;
	uint8_t key[ARCA_ID_LEN];
	bool skip = false;
	int rc = journal_restore_render(r, rec, NULL, snap, &out, key, &skip, err);
	if (rc || skip || idset_has(added, key))
		goto out;
	/* a unique Maildir name, stable for the record (a re-run with --force
	 * replaces rather than duplicates) */
	char hex[2 * ARCA_ID_LEN + 1];
	hex_encode(hex, rec->envelope_id, ARCA_ID_LEN);
	uint64_t sec = rec->time_ns / 1000000000ull;
	bool in = rec->direction != JOURNAL_DIR_OUT;
	rc = abuf_printf(&path, "%s/%s/%llu.M%lluJ%.16s.arca-journal,S=%zu%s", fdir,
			 in ? "new" : "cur", (unsigned long long)sec,
			 (unsigned long long)(rec->time_ns % 1000000000ull / 1000), hex,
			 out.len, in ? "" : ":2,S");
	rc = rc ? rc : abuf_cstr(&path);
	if (rc) {
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		goto out;
	}
	const char *fpath = (const char *)path.data;
	unlink(fpath);
	int fd = open(fpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = arca_err_errno(err, arca_errno_code(errno), errno, "create %s", fpath);
		goto out;
	}
	rc = fs_write_all(fd, out.data, out.len, fpath, err);
	struct timespec ts[2] = { { (time_t)sec, (long)(rec->time_ns % 1000000000ull) },
				  { (time_t)sec, (long)(rec->time_ns % 1000000000ull) } };
	if (rc == 0 && futimens(fd, ts) != 0)
		rc = arca_err_errno(err, ARCA_EIO, errno, "set the date of %s", fpath);
	if (rc == 0 && owner_uid >= 0 && fchown(fd, (uid_t)owner_uid, (gid_t)owner_gid) != 0)
		rc = arca_err_errno(err, ARCA_EIO, errno, "chown %s", fpath);
	if (close(fd) != 0 && rc == 0)
		rc = arca_err_errno(err, ARCA_EIO, errno, "close %s", fpath);
	if (rc) {
		unlink(fpath);
		goto out;
	}
	rc = idset_add(added, key);
	if (rc)
		rc = arca_err_set(err, rc, "out of memory");
	else
		*added_r = true;
out:
	abuf_release(&out);
	abuf_release(&path);
	return rc;
}
