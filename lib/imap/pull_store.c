/*
 * pull_store.c - the trusted half of a pull (pull.h): the only part that
 * touches the repository.  The engine (pull.c), which talks to the mail
 * server, asks it for what the vault remembers of an account, whether a
 * message's content is known, to store bodies and Sieve scripts, and
 * finally hands it the account's new state.  Everything the engine sends
 * is checked here as if hostile: content ids must name stored objects,
 * folder states it says are unchanged come from our own cache, and the
 * alarm figures are computed here, not taken from the engine.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "alarm.h"
#include "idset.h"
#include "pack.h"
#include "pull.h"
#include "pull_store.h"
#include "snapshot.h"

/* X-GUID -> content of the bodies stored in this run (the cache's copy is
 * readable only after the next commit); open addressing. */
struct guidmap_ent {
	char *guid;                     /* NULL: empty slot */
	uint32_t rfc822_size;
	struct pull_content c;
};
struct guidmap {
	struct guidmap_ent *v;
	size_t cap, n;
};

static uint64_t guid_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static const struct guidmap_ent *guidmap_find(const struct guidmap *m, const char *guid)
{
	if (m->cap == 0)
		return NULL;
	for (size_t i = guid_hash(guid) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->v[i].guid == NULL)
			return NULL;
		if (strcmp(m->v[i].guid, guid) == 0)
			return &m->v[i];
	}
}

static int guidmap_put(struct guidmap *m, const char *guid, uint32_t rfc822_size,
		       const struct pull_content *c)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		struct guidmap_ent *v = calloc(cap, sizeof(*v));
		if (v == NULL)
			return ARCA_ENOMEM;
		for (size_t i = 0; i < m->cap; i++) {
			if (m->v[i].guid == NULL)
				continue;
			size_t k = guid_hash(m->v[i].guid) & (cap - 1);
			while (v[k].guid)
				k = (k + 1) & (cap - 1);
			v[k] = m->v[i];
		}
		free(m->v);
		m->v = v;
		m->cap = cap;
	}
	size_t k = guid_hash(guid) & (m->cap - 1);
	while (m->v[k].guid && strcmp(m->v[k].guid, guid) != 0)
		k = (k + 1) & (m->cap - 1);
	if (m->v[k].guid == NULL) {
		if ((m->v[k].guid = strdup(guid)) == NULL)
			return ARCA_ENOMEM;
		m->n++;
	}
	m->v[k].rfc822_size = rfc822_size;
	m->v[k].c = *c;
	return 0;
}

static void guidmap_free(struct guidmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->v[i].guid);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

/* ---- the run ---- */

struct pull_store {
	struct repo *r;
	const struct pull_opts *o;
	pull_stage_fn *stage;
	pthread_mutex_t lock;           /* every repo_* call, staging, committing */
	uint64_t fetched_since_commit;
	struct pull_account_result **staged;
	size_t nstaged, staged_cap;
	/* every account the batch finished (staged, unchanged or gone): the
	 * alarms judge the server on all of them, not only on the changed */
	struct pull_account_result **seen;
	size_t nseen, seen_cap;
	int fatal;                      /* the repository could not be written */
	struct arca_err fatal_err;
};

struct pull_conn {
	struct pull_store *st;
	struct repo_worker *worker;
	struct repo_prepared prep;
	struct abuf key, val, put;
	struct pull_account_result *res;   /* the account being pulled, or NULL */
	struct pull_prev prev;             /* our own copy, as the cache says */
	struct pull_prev_blobs blobs;
	struct guidmap seen;
	/* content this account may name: its previous records, what known()
	 * answered and what it stored in this pull; anything else in its new
	 * state is refused (no taking another account's mail) */
	struct idset allowed;
	uint64_t t0;
};

static void lock(struct pull_store *st)
{
	pthread_mutex_lock(&st->lock);
}

static void unlock(struct pull_store *st)
{
	pthread_mutex_unlock(&st->lock);
}

struct pull_store *pull_store_new(struct repo *r, const struct pull_opts *o, pull_stage_fn *stage)
{
	struct pull_store *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NULL;
	st->r = r;
	st->o = o;
	st->stage = stage;
	pthread_mutex_init(&st->lock, NULL);
	return st;
}

void pull_store_free(struct pull_store *st)
{
	if (st == NULL)
		return;
	free(st->staged);
	free(st->seen);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

bool pull_store_failed(struct pull_store *st, struct arca_err *err)
{
	lock(st);
	bool f = st->fatal != 0;
	if (f && err)
		*err = st->fatal_err;
	unlock(st);
	return f;
}

void pull_store_alarm(struct pull_store *st, uint8_t kind, const char *account, const char *text,
		      struct pull_account_result *const *suspects, size_t nsuspects)
{
	struct alarm a = { .kind = kind, .account = (char *)account, .text = (char *)text };
	/* the snapshots of this run are marked suspect with it */
	struct alarm_suspect *sv = calloc(nsuspects ? nsuspects : 1, sizeof(*sv));
	for (size_t i = 0; sv && i < nsuspects && a.nsuspects < ALARM_SUSPECTS_MAX; i++) {
		static const uint8_t zero[ARCA_ID_LEN];
		if (memcmp(suspects[i]->info.root, zero, ARCA_ID_LEN) == 0 || suspects[i]->unchanged)
			continue;
		sv[a.nsuspects].account = (char *)suspects[i]->account;
		memcpy(sv[a.nsuspects].root, suspects[i]->info.root, ARCA_ID_LEN);
		a.nsuspects++;
	}
	a.suspects = sv;
	struct arca_err e = { 0 }, hook = { 0 };
	lock(st);
	int rc = alarm_raise(st->r, &a, st->o->alarm_exec, &hook, &e);
	unlock(st);
	if (rc == 0 && st->o->alarm_raised)
		st->o->alarm_raised(st->o->ctx, &a, hook.code ? hook.msg : NULL);
	else if (rc && st->o->warn)
		st->o->warn(st->o->ctx, account[0] ? account : "(all accounts)", e.msg);
	free(sv);
}

/* "pull1:" KIND "\0" ACCOUNT "\0" [NAME]; when that would pass 480 bytes
 * (LMDB keys stop at 511), "pull1:" KIND "\0#" and the BLAKE2b-256 of
 * ACCOUNT "\0" NAME in hex (docs/format/index.md). */
static int key_of(struct abuf *k, const char *kind, const char *account, const char *name)
{
	abuf_reset(k);
	size_t an = strlen(account), nn = name ? strlen(name) : 0;
	int rc = abuf_add(k, "pull1:", 6);
	rc = rc ? rc : abuf_add(k, kind, strlen(kind) + 1);
	if (rc == 0 && k->len + an + 1 + nn > 480) {
		crypto_generichash_state h;
		uint8_t d[ARCA_ID_LEN];
		char hex[2 * ARCA_ID_LEN + 1];
		crypto_generichash_init(&h, NULL, 0, sizeof(d));
		crypto_generichash_update(&h, (const uint8_t *)account, an + 1);
		if (name)
			crypto_generichash_update(&h, (const uint8_t *)name, nn);
		crypto_generichash_final(&h, d, sizeof(d));
		sodium_bin2hex(hex, sizeof(hex), d, sizeof(d));
		rc = abuf_add(k, "#", 1);
		return rc ? rc : abuf_add(k, hex, 2 * ARCA_ID_LEN);
	}
	rc = rc ? rc : abuf_add(k, account, an + 1);
	if (name)
		rc = rc ? rc : abuf_add(k, name, nn);
	return rc;
}

/* Bytes fetched between checkpoint commits. */
static uint64_t commit_every(const struct pull_store *st)
{
	return st->o->commit_every ? st->o->commit_every : (256u << 20);
}

/* Commit what is staged (the caller holds the lock).  The stage hook runs
 * first: alarms must be in the log before the snapshots they mark. */
static int commit_batch(struct pull_store *st, struct arca_err *err)
{
	int rc = 0;
	if (st->stage && st->nseen > 0)
		rc = st->stage(st->o->ctx, st->r, st->seen, st->nseen, err);
	if (rc == 0)
		rc = repo_commit_staged(st->r, NULL, NULL, err);
	if (rc == 0 && st->nstaged > 0) {
		struct snap_info *list = NULL;
		size_t n = 0;
		if (repo_snapshots(st->r, &list, &n, NULL) == 0) {
			for (size_t i = 0; i < st->nstaged; i++)
				for (size_t k = n; k-- > 0;)
					if (memcmp(list[k].root, st->staged[i]->info.root, ARCA_ID_LEN) == 0) {
						st->staged[i]->info.seq = list[k].seq;
						break;
					}
			snap_infos_free(list, n);
		}
	}
	st->nstaged = 0;
	st->nseen = 0;
	st->fetched_since_commit = 0;
	if (rc && st->fatal == 0) {
		st->fatal = rc;
		st->fatal_err = *err;
	}
	return rc;
}

int pull_store_commit(struct pull_store *st, struct arca_err *err)
{
	lock(st);
	int rc = st->fatal;
	if (rc)
		*err = st->fatal_err;
	else
		rc = commit_batch(st, err);
	unlock(st);
	return rc;
}

/* Note an account for the batch's alarm check (under the lock). */
static int note_seen(struct pull_store *st, struct pull_account_result *res)
{
	if (st->nseen == st->seen_cap) {
		size_t cap = st->seen_cap ? st->seen_cap * 2 : 64;
		struct pull_account_result **v = realloc(st->seen, cap * sizeof(*v));
		if (v == NULL)
			return ARCA_ENOMEM;
		st->seen = v;
		st->seen_cap = cap;
	}
	st->seen[st->nseen++] = res;
	return 0;
}

/* ---- one worker's connection ---- */

struct pull_conn *pull_conn_new(struct pull_store *st)
{
	struct pull_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->st = st;
	c->worker = repo_worker_new(st->r);
	if (c->worker == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

static void conn_reset(struct pull_conn *c)
{
	pull_prev_release(&c->prev);
	pull_prev_blobs_release(&c->blobs);
	guidmap_free(&c->seen);
	idset_free(&c->allowed);
	c->res = NULL;
}

void pull_conn_free(struct pull_conn *c)
{
	if (c == NULL)
		return;
	conn_reset(c);
	repo_worker_free(c->worker);
	repo_prepared_release(&c->prep);
	abuf_release(&c->key);
	abuf_release(&c->val);
	abuf_release(&c->put);
	free(c);
}

static void store_warn(struct pull_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void store_warn(struct pull_conn *c, const char *fmt, ...)
{
	if (c->st->o->warn == NULL || c->res == NULL)
		return;
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->st->o->warn(c->st->o->ctx, c->res->account, msg);
}

static void prev_warn(void *ctx, const char *what)
{
	store_warn(ctx, "%s", what);
}

int pull_conn_begin(struct pull_conn *c, struct pull_account_result *res,
		    const struct pull_prev_blobs **blobs_r, struct arca_err *err)
{
	conn_reset(c);
	c->res = res;
	c->t0 = arca_now_ns();
	struct pull_store *st = c->st;
	const char *account = res->account;
	int rc = key_of(&c->key, "a", account, NULL);
	if (rc)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	lock(st);
	rc = repo_cache_get(st->r, c->key.data, c->key.len, &c->blobs.acct);
	unlock(st);
	if (rc == ARCA_ENOENT) {
		abuf_reset(&c->blobs.acct);
		*blobs_r = &c->blobs;
		return 0;
	}
	if (rc)
		return arca_err_set(err, rc, "%s: cannot read the pull cache", account);
	/* the folder states the root names */
	struct snapshot *root = NULL;
	if (c->blobs.acct.len < ARCA_ID_LEN ||
	    snapshot_decode_root(c->blobs.acct.data + ARCA_ID_LEN, c->blobs.acct.len - ARCA_ID_LEN, &root) != 0) {
		store_warn(c, "pull cache entry damaged: pulling everything again");
		abuf_reset(&c->blobs.acct);
		*blobs_r = &c->blobs;
		return 0;
	}
	c->blobs.folders = calloc(root->nfolders ? root->nfolders : 1, sizeof(struct abuf));
	if (c->blobs.folders == NULL) {
		snapshot_free(root);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < root->nfolders && rc == 0; i++) {
		if (!(root->folders[i].attrs & SNAP_FOLDER_SELECTABLE))
			continue;
		if (key_of(&c->key, "f", account, root->folders[i].name) != 0) {
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			break;
		}
		struct abuf *b = &c->blobs.folders[c->blobs.nfolders];
		lock(st);
		int g = repo_cache_get(st->r, c->key.data, c->key.len, b);
		unlock(st);
		if (g == 0)
			c->blobs.nfolders++;
		else if (g != ARCA_ENOENT)
			rc = arca_err_set(err, g, "%s: cannot read the pull cache", account);
		else
			abuf_release(b);
	}
	snapshot_free(root);
	if (rc == 0)
		rc = pull_prev_decode(&c->blobs, account, &c->prev, prev_warn, c, err);
	for (size_t i = 0; rc == 0 && i < c->prev.nfolders; i++) {
		const struct snap_folder *f = &c->prev.folders[i]->folders[0];
		for (size_t k = 0; k < f->nmsgs && rc == 0; k++)
			if (idset_add(&c->allowed, f->msgs[k].content_id) != 0)
				rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	for (size_t i = 0; rc == 0 && c->prev.root && i < c->prev.root->nsieve; i++)
		if (idset_add(&c->allowed, c->prev.root->sieve[i].content_id) != 0)
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	if (rc == 0)
		*blobs_r = &c->blobs;
	return rc;
}

int pull_conn_known(struct pull_conn *c, const char *guid, uint32_t rfc822_size,
		    struct pull_content *out)
{
	if (c->res == NULL || guid[0] == '\0')
		return 0;
	const struct guidmap_ent *e = guidmap_find(&c->seen, guid);
	if (e && e->rfc822_size == rfc822_size) {
		*out = e->c;
		return idset_add(&c->allowed, out->id) == 0 ? 1 : 0;
	}
	if (key_of(&c->key, "c", c->res->account, guid) != 0)
		return 0;
	lock(c->st);
	int rc = repo_cache_get(c->st->r, c->key.data, c->key.len, &c->val);
	unlock(c->st);
	/* u8 type, id, u64 stored size, u32 rfc822 size, u8 stripped */
	if (rc != 0 || c->val.len != 1 + ARCA_ID_LEN + 8 + 4 + 1)
		return 0;
	const uint8_t *v = c->val.data;
	if ((v[0] != OBJ_BLOB && v[0] != OBJ_CHUNKLIST) || get_u32le(v + 41) != rfc822_size || v[45] > 1)
		return 0;
	out->type = v[0];
	memcpy(out->id, v + 1, ARCA_ID_LEN);
	out->size = get_u64le(v + 33);
	out->stripped = v[45] == 1;
	return idset_add(&c->allowed, out->id) == 0 ? 1 : 0;
}

static int remember_content(struct pull_conn *c, const char *guid, uint32_t rfc822_size,
			    const struct pull_content *pc)
{
	if (guid[0] == '\0')
		return 0;
	if (guidmap_put(&c->seen, guid, rfc822_size, pc) != 0)
		return ARCA_ENOMEM;
	uint8_t v[1 + ARCA_ID_LEN + 8 + 4 + 1];
	v[0] = pc->type;
	memcpy(v + 1, pc->id, ARCA_ID_LEN);
	put_u64le(v + 33, pc->size);
	put_u32le(v + 41, rfc822_size);
	v[45] = pc->stripped ? 1 : 0;
	if (key_of(&c->key, "c", c->res->account, guid) != 0)
		return ARCA_ENOMEM;
	return repo_cache_add(c->st->r, c->key.data, c->key.len, v, sizeof(v));
}

static int fail_repo(struct pull_conn *c, int rc, struct arca_err *err)
{
	lock(c->st);
	if (c->st->fatal == 0) {
		c->st->fatal = rc;
		c->st->fatal_err = *err;
	}
	unlock(c->st);
	return rc;
}

/* A body is stored: remember it for this account, count it, and commit
 * a checkpoint when enough was fetched (a killed pull then keeps it). */
static int stored(struct pull_conn *c, const char *guid, uint32_t rfc822_size, bool stripped,
		  uint64_t size, struct pull_content *out, struct arca_err *err)
{
	struct pull_store *st = c->st;
	out->size = size;
	out->stripped = stripped;
	if (idset_add(&c->allowed, out->id) != 0)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	c->res->messages_fetched++;
	c->res->bytes_fetched += size;
	lock(st);
	int rc = guid ? remember_content(c, guid, rfc822_size, out) : 0;
	if (rc)
		arca_err_set(err, rc, "out of memory");
	st->fetched_since_commit += size;
	if (rc == 0 && st->fatal == 0 && st->fetched_since_commit >= commit_every(st))
		rc = commit_batch(st, err);
	unlock(st);
	return rc;
}

int pull_conn_put(struct pull_conn *c, const char *guid, uint32_t rfc822_size, bool stripped,
		  const uint8_t *data, size_t len, struct pull_content *out, struct arca_err *err)
{
	struct pull_store *st = c->st;
	if (c->res == NULL)
		return arca_err_set(err, ARCA_ESTATE, "a message before the account");
	if (pull_store_failed(st, err))
		return ARCA_ESTATE;
	int rc;
	memset(out, 0, sizeof(*out));
	if (len <= REPO_BLOB_MAX) {
		/* hash and compress outside the lock */
		rc = repo_prepare(st->r, c->worker, OBJ_BLOB, data, len, &c->prep, err);
		if (rc == 0) {
			lock(st);
			rc = repo_put_prepared(st->r, &c->prep, NULL, err);
			unlock(st);
		}
		if (rc == 0) {
			out->type = OBJ_BLOB;
			memcpy(out->id, c->prep.id, ARCA_ID_LEN);
		}
	} else {
		lock(st);
		rc = repo_put_content(st->r, data, len, &out->type, out->id, err);
		unlock(st);
	}
	if (rc)
		return fail_repo(c, rc, err);
	return stored(c, guid, rfc822_size, stripped, len, out, err);
}

int pull_conn_put_fd(struct pull_conn *c, const char *guid, uint32_t rfc822_size, bool stripped,
		     int fd, uint64_t total, struct pull_content *out, struct arca_err *err)
{
	struct pull_store *st = c->st;
	if (c->res == NULL)
		return arca_err_set(err, ARCA_ESTATE, "a message before the account");
	if (pull_store_failed(st, err))
		return ARCA_ESTATE;
	memset(out, 0, sizeof(*out));
	if (lseek(fd, 0, SEEK_SET) != 0)
		return arca_err_set(err, ARCA_EIO, "%s: a large message's spool file: cannot rewind", c->res->account);
	/* reads, hashes and compresses outside the lock, stores under it */
	int rc = repo_put_stream_mt(st->r, c->worker, &st->lock, fd, total, c->res->account,
				    &out->type, out->id, err);
	if (rc)
		return fail_repo(c, rc, err);
	return stored(c, guid, rfc822_size, stripped, total, out, err);
}

int pull_conn_put_sieve(struct pull_conn *c, const uint8_t *data, size_t len,
			struct pull_content *out, struct arca_err *err)
{
	if (c->res == NULL)
		return arca_err_set(err, ARCA_ESTATE, "a Sieve script before the account");
	if (pull_store_failed(c->st, err))
		return ARCA_ESTATE;
	memset(out, 0, sizeof(*out));
	lock(c->st);
	int rc = repo_put_content(c->st->r, data, len, &out->type, out->id, err);
	unlock(c->st);
	if (rc)
		return fail_repo(c, rc, err);
	out->size = len;
	c->res->sieve_scripts++;
	return idset_add(&c->allowed, out->id) ? arca_err_set(err, ARCA_ENOMEM, "out of memory") : 0;
}

/* ---- the account's new state ---- */

static size_t prev_index(const struct pull_conn *c, const struct snap_folder *cf)
{
	for (size_t i = 0; i < c->prev.nfolders; i++)
		if (&c->prev.folders[i]->folders[0] == cf)
			return i;
	return 0;
}

static struct snap_folder *prev_folder_state(struct pull_conn *c, const char *name)
{
	for (size_t i = 0; i < c->prev.nfolders; i++)
		if (strcmp(c->prev.folders[i]->folders[0].name, name) == 0)
			return &c->prev.folders[i]->folders[0];
	return NULL;
}

/* Folders the engine says are unchanged take our cached records and pages;
 * every other record must name content the repository holds. */
static int take_state(struct pull_conn *c, struct snapshot *s, struct arca_err *err)
{
	const char *account = c->res->account;
	if (strcmp(s->account, account) != 0)
		return arca_err_set(err, ARCA_EFORMAT, "%s: the puller sent the state of another account", account);
	for (size_t i = 0; i < s->nfolders; i++) {
		struct snap_folder *f = &s->folders[i];
		for (size_t k = 0; k < i; k++)
			if (strcmp(s->folders[k].name, f->name) == 0)
				return arca_err_set(err, ARCA_EFORMAT, "%s: folder %s listed twice", account, f->name);
		if (!(f->attrs & SNAP_FOLDER_SELECTABLE)) {
			if (f->nmsgs || f->npages)
				return arca_err_set(err, ARCA_EFORMAT, "%s: folder %s has messages but can't be selected", account, f->name);
			continue;
		}
		if (f->pages_reused) {
			struct snap_folder *cf = prev_folder_state(c, f->name);
			if (cf == NULL || f->nmsgs != 0)
				return arca_err_set(err, ARCA_EFORMAT, "%s: folder %s: unchanged, but the vault has no state for it", account, f->name);
			/* everything but the name, attributes and special-use */
			for (size_t k = 0; k < f->nkeywords; k++)
				free(f->keywords[k]);
			f->nkeywords = 0;
			for (size_t k = 0; k < cf->nkeywords; k++)
				if (snap_folder_keyword(f, cf->keywords[k]) < 0)
					return arca_err_set(err, ARCA_ENOMEM, "out of memory");
			f->uidvalidity = cf->uidvalidity;
			f->nextuid = cf->nextuid;
			f->highestmodseq = cf->highestmodseq;
			f->message_count = cf->message_count;
			f->bytes = cf->bytes;
			free(f->pages);
			f->pages = cf->pages;
			f->npages = cf->npages;
			cf->pages = NULL;
			cf->npages = 0;
			free(f->msgs);
			/* copies: the cache folder keeps its records for the alarms */
			f->msgs = NULL;
			f->nmsgs = f->msgs_cap = 0;
			for (size_t k = 0; k < cf->nmsgs; k++)
				if (snap_folder_add_msg(f, &cf->msgs[k]) != 0)
					return arca_err_set(err, ARCA_ENOMEM, "out of memory");
			c->prev.taken[prev_index(c, cf)] = true;
			continue;
		}
		for (size_t k = 0; k < f->nmsgs; k++) {
			const struct snap_msg *m = &f->msgs[k];
			if (k > 0 && m->uid <= f->msgs[k - 1].uid)
				return arca_err_set(err, ARCA_EFORMAT, "%s: folder %s: UIDs out of order", account, f->name);
			if (!idset_has(&c->allowed, m->content_id))
				return arca_err_set(err, ARCA_EFORMAT, "%s: folder %s uid %u: content this account's pull didn't store or name",
						    account, f->name, m->uid);
		}
	}
	for (size_t i = 0; i < s->nsieve; i++)
		if (!idset_has(&c->allowed, s->sieve[i].content_id))
			return arca_err_set(err, ARCA_EFORMAT, "%s: Sieve script %s: content this account's pull didn't store",
					    account, s->sieve[i].name);
	return 0;
}

/* What the previous snapshot had that this one lacks: for the alarms. */
static int compare_with_prev(struct pull_conn *c, const struct snapshot *s)
{
	struct pull_account_result *res = c->res;
	const struct snapshot *prev = c->prev.root;
	if (prev == NULL)
		return 0;
	res->had_previous = true;
	int rc = 0;
	for (size_t i = 0; i < prev->nfolders; i++) {
		const struct snap_folder *pf = &prev->folders[i];
		if (!(pf->attrs & SNAP_FOLDER_SELECTABLE))
			continue;
		res->prev_folders++;
		res->prev_messages += pf->message_count;
		const struct snap_folder *nf = NULL;
		for (size_t k = 0; s && k < s->nfolders && nf == NULL; k++)
			if (strcmp(s->folders[k].name, pf->name) == 0)
				nf = &s->folders[k];
		if (nf == NULL)
			res->lost_folders++;
		else if (pf->uidvalidity != 0 && nf->uidvalidity != pf->uidvalidity)
			res->uidvalidity_changed++;
	}
	if (s == NULL) {
		res->lost_messages = res->prev_messages;
		return 0;
	}
	/* the previous content of every folder that changed or went (unchanged
	 * ones were marked) that is nowhere in the new state */
	bool any = false;
	for (size_t i = 0; i < c->prev.nfolders && !any; i++)
		any = !c->prev.taken[i] && c->prev.folders[i]->folders[0].nmsgs > 0;
	if (!any)
		return 0;   /* nothing changed that held mail: nothing lost */
	struct idset now = IDSET_INIT;
	for (size_t i = 0; i < s->nfolders && rc == 0; i++)
		for (size_t k = 0; k < s->folders[i].nmsgs && rc == 0; k++)
			rc = idset_add(&now, s->folders[i].msgs[k].content_id);
	for (size_t i = 0; i < c->prev.nfolders && rc == 0; i++) {
		const struct snap_folder *cf = &c->prev.folders[i]->folders[0];
		if (c->prev.taken[i])
			continue;   /* taken over unchanged */
		for (size_t k = 0; k < cf->nmsgs; k++)
			if (!idset_has(&now, cf->msgs[k].content_id))
				res->lost_messages++;
	}
	idset_free(&now);
	return rc;
}

/* Store pages, and unless the state is the same as last time, the root;
 * stage it with the cache entries that describe it.  Under the lock. */
static int stage_account(struct pull_conn *c, struct snapshot *s, struct arca_err *err)
{
	struct pull_store *st = c->st;
	struct pull_account_result *res = c->res;
	const char *account = res->account;
	int rc = snapshot_store_pages(st->r, s, err);
	uint8_t digest[ARCA_ID_LEN];
	if (rc == 0 && snapshot_digest(s, digest) != 0)
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	if (rc == 0 && c->prev.root && memcmp(digest, c->prev.digest, ARCA_ID_LEN) == 0) {
		res->unchanged = true;
		return 0;
	}
	uint64_t msgs = 0, bytes = 0;
	if (rc == 0)
		rc = snapshot_store(st->r, s, res->info.root, &msgs, &bytes, err);
	/* the cache entries: each selectable folder's state, then the root */
	for (size_t i = 0; i < s->nfolders && rc == 0; i++) {
		struct snap_folder *f = &s->folders[i];
		if (!(f->attrs & SNAP_FOLDER_SELECTABLE))
			continue;
		abuf_reset(&c->val);
		/* STATUS numbers as the server reports them while nothing
		 * changes: MESSAGES = records, UIDNEXT = nextuid */
		rc = abuf_add_u32(&c->val, (uint32_t)f->nmsgs);
		rc = rc ? rc : abuf_add_u32(&c->val, f->nextuid);
		rc = rc ? rc : snap_folder_encode_full(f, &c->val);
		rc = rc ? rc : key_of(&c->key, "f", account, f->name);
		rc = rc ? rc : repo_cache_add(st->r, c->key.data, c->key.len, c->val.data, c->val.len);
		if (rc)
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	if (rc == 0) {
		abuf_reset(&c->val);
		rc = abuf_add(&c->val, digest, ARCA_ID_LEN);
		struct abuf root = ABUF_INIT;
		rc = rc ? rc : snapshot_encode_root(s, &root);
		rc = rc ? rc : abuf_add(&c->val, root.data, root.len);
		abuf_release(&root);
		rc = rc ? rc : key_of(&c->key, "a", account, NULL);
		rc = rc ? rc : repo_cache_add(st->r, c->key.data, c->key.len, c->val.data, c->val.len);
		if (rc)
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	if (rc == 0) {
		struct snap_info *si = &res->info;
		si->time_ns = s->time_ns;
		si->messages = msgs;
		si->bytes = bytes;
		si->folders = s->nfolders;
		si->account = strdup(account);
		si->source = strdup("imap");
		if (si->account == NULL || si->source == NULL)
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		rc = rc ? rc : repo_stage_snapshot(st->r, si, err);
	}
	if (rc == 0 && st->nstaged == st->staged_cap) {
		size_t cap = st->staged_cap ? st->staged_cap * 2 : 64;
		struct pull_account_result **v = realloc(st->staged, cap * sizeof(*v));
		if (v == NULL)
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		else {
			st->staged = v;
			st->staged_cap = cap;
		}
	}
	if (rc == 0)
		st->staged[st->nstaged++] = res;
	/* an account too large for a snapshot fails alone; a repository
	 * that can't be written stops the run */
	if (rc && rc != ARCA_ELIMIT && st->fatal == 0) {
		st->fatal = rc;
		st->fatal_err = *err;
	}
	return rc;
}

int pull_conn_finish(struct pull_conn *c, struct snapshot *s, bool gone, uint64_t folders_examined,
		     struct arca_err *err)
{
	struct pull_account_result *res = c->res;
	if (res == NULL)
		return arca_err_set(err, ARCA_ESTATE, "a state before the account");
	res->folders_examined = folders_examined;
	if (gone) {
		/* pulled before, refused now: deleted or locked out (the alarm
		 * decides what that means for the whole server) */
		res->gone = c->prev.root != NULL;
		compare_with_prev(c, NULL);
		lock(c->st);
		int rc = res->gone ? note_seen(c->st, res) : 0;
		unlock(c->st);
		return rc ? arca_err_set(err, rc, "out of memory") : 0;
	}
	if (s == NULL)
		return arca_err_set(err, ARCA_EINVAL, "no state");
	/* the snapshot's time is ours, not the network process's */
	s->time_ns = c->t0;
	free(s->source);
	s->source = strdup("imap");
	if (s->source == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	int rc = take_state(c, s, err);
	if (rc)
		return rc;
	res->folders = s->nfolders;
	for (size_t i = 0; i < s->nfolders; i++)
		res->messages += s->folders[i].nmsgs;
	if (compare_with_prev(c, s) != 0)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	lock(c->st);
	rc = c->st->fatal;
	if (rc)
		*err = c->st->fatal_err;
	else
		rc = stage_account(c, s, err);
	if (rc == 0 && note_seen(c->st, res) != 0)
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	if (rc == 0 && (c->st->fetched_since_commit >= commit_every(c->st) || c->st->nstaged >= 1000))
		rc = commit_batch(c->st, err);
	unlock(c->st);
	res->seconds_ms = (arca_now_ns() - c->t0) / 1000000;
	return rc;
}

void pull_conn_end(struct pull_conn *c)
{
	conn_reset(c);
}
