#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "fsutil.h"
#include "pack.h"
#include "repo.h"
#include "banned.h"

/* ---- records ---- */

static bool account_ok(const uint8_t *p, size_t n)
{
	if (n == 0 || n > JOURNAL_REC_ACCOUNT_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return false;
	return true;
}

int journal_rec_encode(const struct journal_rec *r, struct abuf *out)
{
	size_t al = strnlen(r->account, JOURNAL_REC_ACCOUNT_MAX + 1);
	if (!account_ok((const uint8_t *)r->account, al))
		return ARCA_EINVAL;
	int rc = abuf_add_u8(out, JOURNAL_REC_VERSION);
	rc = rc ? rc : abuf_add_u64(out, r->time_ns);
	rc = rc ? rc : abuf_add_u8(out, r->direction);
	rc = rc ? rc : abuf_add_u8(out, r->content_type);
	rc = rc ? rc : abuf_add(out, r->content_id, ARCA_ID_LEN);
	rc = rc ? rc : abuf_add(out, r->envelope_id, ARCA_ID_LEN);
	rc = rc ? rc : abuf_add_u64(out, r->size);
	rc = rc ? rc : abuf_add_u16(out, (uint16_t)al);
	rc = rc ? rc : abuf_add(out, r->account, al);
	return rc;
}

int journal_rec_decode(struct adec *d, struct journal_rec *r)
{
	memset(r, 0, sizeof(*r));
	uint8_t v = adec_u8(d);
	r->time_ns = adec_u64(d);
	r->direction = adec_u8(d);
	r->content_type = adec_u8(d);
	adec_fixed(d, r->content_id, ARCA_ID_LEN);
	adec_fixed(d, r->envelope_id, ARCA_ID_LEN);
	r->size = adec_u64(d);
	uint16_t al = adec_u16(d);
	const uint8_t *a = adec_raw(d, al);
	if (d->failed || a == NULL || v != JOURNAL_REC_VERSION ||
	    (r->direction != JOURNAL_DIR_IN && r->direction != JOURNAL_DIR_OUT) ||
	    (r->content_type != OBJ_BLOB && r->content_type != OBJ_CHUNKLIST) ||
	    !account_ok(a, al)) {
		d->failed = true;
		return ARCA_ECORRUPT;
	}
	memcpy(r->account, a, al);
	r->account[al] = '\0';
	return 0;
}

/* Calls fn for every record of the marks; 0, ARCA_ECORRUPT or fn's code. */
static int marks_walk(const uint8_t *p, size_t len,
		      int (*fn)(const struct journal_rec *r, uint32_t pos, void *ctx), void *ctx)
{
	struct adec d;
	adec_init(&d, p, len);
	uint32_t pos = 0;
	while (adec_left(&d) > 0) {
		uint32_t ml = adec_u32(&d);
		const uint8_t *m = adec_raw(&d, ml);
		if (m == NULL || ml > PACK_MARK_MAX)
			return ARCA_ECORRUPT;
		struct adec md;
		adec_init(&md, m, ml);
		uint32_t count = adec_u32(&md);
		if (md.failed || count == 0)
			return ARCA_ECORRUPT;
		for (uint32_t i = 0; i < count; i++) {
			struct journal_rec r;
			if (journal_rec_decode(&md, &r) != 0)
				return ARCA_ECORRUPT;
			if (fn) {
				int rc = fn(&r, pos, ctx);
				if (rc)
					return rc;
			}
			pos++;
		}
		if (adec_finish(&md) != 0)
			return ARCA_ECORRUPT;
	}
	return d.failed ? ARCA_ECORRUPT : 0;
}

int journal_marks_check(const uint8_t *p, size_t len)
{
	return marks_walk(p, len, NULL, NULL);
}

struct index_ctx {
	struct idx_txn *t;
	uint64_t seq;
	struct abuf key, val;
};

static void put_be64(struct abuf *b, uint64_t v)
{
	uint8_t x[8];
	for (int i = 7; i >= 0; i--, v >>= 8)
		x[i] = (uint8_t)v;
	abuf_add(b, x, 8);
}

static int index_one(const struct journal_rec *r, uint32_t pos, void *vctx)
{
	struct index_ctx *c = vctx;
	abuf_reset(&c->key);
	abuf_reset(&c->val);
	/* account NUL time seq pos: one account's records in time order */
	int rc = abuf_add(&c->key, r->account, strlen(r->account) + 1);
	if (rc)
		return rc;
	put_be64(&c->key, r->time_ns);
	put_be64(&c->key, c->seq);
	uint8_t pb[4] = { (uint8_t)(pos >> 24), (uint8_t)(pos >> 16), (uint8_t)(pos >> 8), (uint8_t)pos };
	rc = abuf_add(&c->key, pb, 4);
	rc = rc ? rc : journal_rec_encode(r, &c->val);
	return rc ? rc : idx_jrnl_put(c->t, c->key.data, c->key.len, c->val.data, c->val.len);
}

int journal_marks_index(struct idx_txn *t, uint64_t seq, const uint8_t *p, size_t len)
{
	struct index_ctx c = { .t = t, .seq = seq, .key = ABUF_INIT, .val = ABUF_INIT };
	int rc = marks_walk(p, len, index_one, &c);
	abuf_release(&c.key);
	abuf_release(&c.val);
	return rc;
}

/* ---- envelopes ---- */

static int add_str(struct abuf *b, const char *s)
{
	size_t n = s ? strnlen(s, JOURNAL_ADDR_MAX + 1) : 0;
	if (n > JOURNAL_ADDR_MAX)
		return ARCA_ELIMIT;
	int rc = abuf_add_u16(b, (uint16_t)n);
	return rc ? rc : abuf_add(b, s, n);
}

static char *get_str(struct adec *d)
{
	uint16_t n = adec_u16(d);
	const uint8_t *p = adec_raw(d, n);
	if (p == NULL || n > JOURNAL_ADDR_MAX || memchr(p, '\0', n) != NULL) {
		d->failed = true;
		return NULL;
	}
	char *s = malloc((size_t)n + 1);
	if (s == NULL) {
		d->failed = true;
		return NULL;
	}
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

int journal_envelope_encode(const struct journal_envelope *e, struct abuf *out)
{
	if (e->nrcpt == 0 || e->nrcpt > JOURNAL_RCPT_MAX)
		return ARCA_ELIMIT;
	int rc = abuf_add_u8(out, JOURNAL_REC_VERSION);
	rc = rc ? rc : abuf_add_u64(out, e->time_ns);
	rc = rc ? rc : add_str(out, e->client);
	rc = rc ? rc : add_str(out, e->helo);
	rc = rc ? rc : add_str(out, e->mail_from);
	rc = rc ? rc : abuf_add_u8(out, e->flags);
	rc = rc ? rc : abuf_add_u8(out, e->content_type);
	rc = rc ? rc : abuf_add(out, e->content_id, ARCA_ID_LEN);
	rc = rc ? rc : abuf_add_u64(out, e->size);
	rc = rc ? rc : abuf_add_u16(out, (uint16_t)e->nrcpt);
	for (size_t i = 0; i < e->nrcpt && rc == 0; i++) {
		rc = add_str(out, e->rcpts[i].address);
		rc = rc ? rc : add_str(out, e->rcpts[i].account);
		rc = rc ? rc : abuf_add_u8(out, e->rcpts[i].direction);
	}
	return rc;
}

int journal_envelope_decode(const uint8_t *p, size_t len, struct journal_envelope *e)
{
	memset(e, 0, sizeof(*e));
	struct adec d;
	adec_init(&d, p, len);
	uint8_t v = adec_u8(&d);
	e->time_ns = adec_u64(&d);
	e->client = get_str(&d);
	e->helo = get_str(&d);
	e->mail_from = get_str(&d);
	e->flags = adec_u8(&d);
	e->content_type = adec_u8(&d);
	adec_fixed(&d, e->content_id, ARCA_ID_LEN);
	e->size = adec_u64(&d);
	uint16_t n = adec_u16(&d);
	if (d.failed || v != JOURNAL_REC_VERSION || n == 0 || n > JOURNAL_RCPT_MAX ||
	    (e->content_type != OBJ_BLOB && e->content_type != OBJ_CHUNKLIST))
		goto bad;
	e->rcpts = calloc(n, sizeof(*e->rcpts));
	if (e->rcpts == NULL)
		goto bad;
	e->nrcpt = n;
	for (size_t i = 0; i < n; i++) {
		e->rcpts[i].address = get_str(&d);
		e->rcpts[i].account = get_str(&d);
		e->rcpts[i].direction = adec_u8(&d);
		if (d.failed || (e->rcpts[i].direction != JOURNAL_DIR_IN &&
				 e->rcpts[i].direction != JOURNAL_DIR_OUT))
			goto bad;
	}
	if (adec_finish(&d) != 0)
		goto bad;
	return 0;
bad:
	journal_envelope_release(e);
	return ARCA_ECORRUPT;
}

void journal_envelope_release(struct journal_envelope *e)
{
	free(e->client);
	free(e->helo);
	free(e->mail_from);
	for (size_t i = 0; i < e->nrcpt; i++) {
		free(e->rcpts[i].address);
		free(e->rcpts[i].account);
	}
	free(e->rcpts);
	memset(e, 0, sizeof(*e));
}

/* ---- writing ---- */

struct journal {
	struct repo *r;
	struct journal_opts o;
	char *dir;
	int lock_fd;
	bool healthy;
	uint64_t opened_ns;           /* when the open segment got its first message */
	struct abuf pending;          /* records added since the last commit */
	uint32_t npending;
	size_t pending_msgs;
	struct abuf marks;            /* every committed mark of the open segment */
};

/* Seal every segment file left in the journal directory. */
static int recover_all(struct journal *j, struct journal_recovery *rec, struct arca_err *err)
{
	DIR *d = opendir(j->dir);
	if (d == NULL)
		return arca_err_errno(err, ARCA_EIO, errno, "open %s", j->dir);
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "pack-", 5) != 0)
			continue;
		char *path = fs_join(j->dir, de->d_name);
		if (path == NULL) {
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			break;
		}
		struct abuf marks = ABUF_INIT;
		uint64_t dropped = 0;
		rc = repo_seal_segment(j->r, path, &marks, &dropped, err);
		if (rc == 0 && rec != NULL) {
			rec->segments++;
			rec->bytes_dropped += dropped;
			struct adec md;
			adec_init(&md, marks.data, marks.len);
			while (adec_left(&md) > 0) {
				uint32_t ml = adec_u32(&md);
				const uint8_t *m = adec_raw(&md, ml);
				if (m == NULL || ml < 4)
					break;
				rec->records += get_u32le(m);
			}
		}
		abuf_release(&marks);
		free(path);
	}
	closedir(d);
	return rc;
}

int journal_open(struct repo *r, const struct journal_opts *o, struct journal **j_r,
		 struct journal_recovery *rec_r, struct arca_err *err)
{
	struct journal *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	j->r = r;
	j->lock_fd = -1;
	j->o.seal_bytes = o && o->seal_bytes ? o->seal_bytes : JOURNAL_SEAL_BYTES;
	j->o.seal_after_ns = o && o->seal_after_ns ? o->seal_after_ns : 60ull * 1000000000ull;
	abuf_init(&j->pending);
	abuf_init(&j->marks);
	if (rec_r)
		memset(rec_r, 0, sizeof(*rec_r));
	int rc = 0;
	j->dir = fs_join(repo_path(r), JOURNAL_SUBDIR);
	char *lock = j->dir ? fs_join(j->dir, "lock") : NULL;
	if (lock == NULL) {
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		goto fail;
	}
	rc = fs_mkdirs(j->dir, 0700, err);
	if (rc)
		goto fail;
	j->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (j->lock_fd < 0) {
		rc = arca_err_errno(err, ARCA_EIO, errno, "open %s", lock);
		goto fail;
	}
	if (flock(j->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK
			? arca_err_set(err, ARCA_EBUSY, "another process writes the journal of %s (%s is locked)",
				       repo_path(r), lock)
			: arca_err_errno(err, ARCA_EIO, errno, "lock %s", lock);
		goto fail;
	}
	rc = repo_set_journal_dir(r, j->dir, err);
	rc = rc ? rc : recover_all(j, rec_r, err);
	if (rc)
		goto fail;
	j->healthy = true;
	free(lock);
	*j_r = j;
	return 0;
fail:
	free(lock);
	if (j->lock_fd >= 0)
		close(j->lock_fd);
	free(j->dir);
	free(j);
	return rc;
}

int journal_add(struct journal *j, const struct journal_envelope *env,
		const void *body, size_t len, struct arca_err *err)
{
	if (!j->healthy)
		return arca_err_set(err, ARCA_ESTATE, "the journal is not writable since an earlier failure");
	if (env->nrcpt == 0 || env->nrcpt > JOURNAL_RCPT_MAX)
		return arca_err_set(err, ARCA_EINVAL, "a message needs 1 to %d recipients", JOURNAL_RCPT_MAX);
	struct journal_envelope e = *env;
	int rc = repo_put_content(j->r, body, len, &e.content_type, e.content_id, err);
	if (rc)
		goto fail;
	e.size = len;
	struct abuf eb = ABUF_INIT;
	uint8_t eid[ARCA_ID_LEN];
	rc = journal_envelope_encode(&e, &eb);
	if (rc)
		arca_err_set(err, rc, "journal envelope: %s", arca_strerror(rc));
	else
		rc = repo_put(j->r, OBJ_JOURNAL, eb.data, eb.len, eid, NULL, err);
	abuf_release(&eb);
	if (rc)
		goto fail;
	size_t mark = j->pending.len;
	uint32_t added = 0;
	for (size_t i = 0; i < e.nrcpt && rc == 0; i++) {
		/* one record per recipient, as the mail server delivered it
		 * (two addresses of one account: two deliveries, two records) */
		struct journal_rec rec = { .time_ns = e.time_ns, .direction = e.rcpts[i].direction,
					   .content_type = e.content_type, .size = len };
		memcpy(rec.content_id, e.content_id, ARCA_ID_LEN);
		memcpy(rec.envelope_id, eid, ARCA_ID_LEN);
		size_t al = strnlen(e.rcpts[i].account, JOURNAL_REC_ACCOUNT_MAX + 1);
		if (al == 0 || al > JOURNAL_REC_ACCOUNT_MAX) {
			rc = arca_err_set(err, ARCA_EINVAL, "bad account name for recipient %zu", i);
			break;
		}
		memcpy(rec.account, e.rcpts[i].account, al + 1);
		rc = journal_rec_encode(&rec, &j->pending);
		if (rc)
			arca_err_set(err, rc, "journal record for %s: %s", rec.account, arca_strerror(rc));
		added++;
	}
	if (rc) {
		j->pending.len = mark;   /* the objects stay: harmless, unreferenced */
		return rc;
	}
	if (j->pending_msgs == 0 && j->marks.len == 0)
		j->opened_ns = arca_mono_ns();
	j->npending += added;
	j->pending_msgs++;
	return 0;
fail:
	if (rc == ARCA_EIO || rc == ARCA_ENOSPC) {
		/* the segment is poisoned: what it committed is recovered by
		 * journal_heal */
		j->healthy = false;
		repo_journal_abandon(j->r);
	}
	return rc;
}

int journal_commit(struct journal *j, struct arca_err *err)
{
	if (!j->healthy)
		return arca_err_set(err, ARCA_ESTATE, "the journal is not writable since an earlier failure");
	if (j->npending == 0)
		return 0;
	struct abuf m = ABUF_INIT;
	int rc = abuf_add_u32(&m, j->npending);
	rc = rc ? rc : abuf_add(&m, j->pending.data, j->pending.len);
	if (rc) {
		abuf_release(&m);
		return arca_err_set(err, rc, "out of memory");
	}
	rc = repo_commit_mark(j->r, m.data, m.len, err);
	if (rc == 0) {
		rc = abuf_add_u32(&j->marks, (uint32_t)m.len);
		rc = rc ? rc : abuf_add(&j->marks, m.data, m.len);
		if (rc) {
			/* committed on disk but not remembered for the log entry:
			 * the recovery path reads the marks back from the file */
			arca_err_set(err, rc, "out of memory");
		}
	}
	abuf_release(&m);
	abuf_reset(&j->pending);
	j->npending = 0;
	j->pending_msgs = 0;
	if (rc) {
		j->healthy = false;
		repo_journal_abandon(j->r);
		abuf_reset(&j->marks);
	}
	return rc;
}

int journal_maybe_seal(struct journal *j, bool force, struct arca_err *err)
{
	if (!j->healthy || j->marks.len == 0 || j->npending != 0)
		return 0;
	bool due = force || repo_pack_size(j->r) >= j->o.seal_bytes ||
		   j->marks.len >= JOURNAL_MARKS_MAX ||
		   arca_mono_ns() - j->opened_ns >= j->o.seal_after_ns;
	if (!due)
		return 0;
	int rc = repo_flush_journal(j->r, &j->marks, err);
	abuf_reset(&j->marks);
	if (rc) {
		/* the segment file stays (repo_flush_journal abandoned it, or
		 * it is stored and only the log entry failed): heal seals it */
		j->healthy = false;
	}
	return rc;
}

bool journal_healthy(const struct journal *j)
{
	return j->healthy;
}

size_t journal_pending(const struct journal *j)
{
	return j->pending_msgs;
}

int journal_heal(struct journal *j, struct arca_err *err)
{
	if (j->healthy)
		return 0;
	repo_journal_abandon(j->r);
	abuf_reset(&j->pending);
	abuf_reset(&j->marks);
	j->npending = 0;
	j->pending_msgs = 0;
	int rc = recover_all(j, NULL, err);
	if (rc == 0)
		j->healthy = true;
	return rc;
}

int journal_close(struct journal *j, struct arca_err *err)
{
	if (j == NULL)
		return 0;
	int rc = 0;
	if (j->healthy) {
		/* uncommitted messages were never acknowledged */
		if (j->npending)
			abuf_reset(&j->pending);
		j->npending = 0;
		rc = journal_maybe_seal(j, true, err);
	}
	/* anything still in the directory is sealed by the next open */
	repo_journal_abandon(j->r);
	abuf_release(&j->pending);
	abuf_release(&j->marks);
	if (j->lock_fd >= 0)
		close(j->lock_fd);
	free(j->dir);
	free(j);
	return rc;
}

/* ---- reading ---- */

struct list_ctx {
	uint64_t since;
	int (*fn)(const struct journal_rec *, void *);
	void *ctx;
};

static int list_one(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *vctx)
{
	struct list_ctx *c = vctx;
	struct journal_rec r;
	struct adec d;
	adec_init(&d, val, vlen);
	if (journal_rec_decode(&d, &r) != 0 || adec_finish(&d) != 0 || klen < 20)
		return ARCA_ECORRUPT;
	uint64_t seq = 0;
	for (size_t i = klen - 12; i < klen - 4; i++)
		seq = seq << 8 | key[i];
	r.seq = seq;
	if (r.time_ns < c->since)
		return 0;
	return c->fn(&r, c->ctx);
}

int journal_list(struct repo *r, const char *account, uint64_t since_ns,
		 int (*fn)(const struct journal_rec *rec, void *ctx), void *ctx,
		 struct arca_err *err)
{
	struct idx_txn *t;
	int rc = idx_begin(repo_index(r), false, &t, err);
	if (rc)
		return rc;
	struct list_ctx c = { since_ns, fn, ctx };
	size_t plen = account ? strlen(account) + 1 : 0;   /* with the NUL */
	rc = idx_jrnl_foreach(t, account, plen, list_one, &c);
	idx_abort(t);
	if (rc == ARCA_ECORRUPT || rc == ARCA_EIO)
		return arca_err_set(err, rc, "index: damaged journal records (delete %s/index to rebuild it)",
				    repo_path(r));
	return rc;
}
