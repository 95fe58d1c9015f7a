#include "repo.h"
#include "alarm.h"
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "compress.h"
#include "faultinject.h"
#include "fsutil.h"
#include "idset.h"
#include "pack.h"
#include "banned.h"

#define CONFIG_SEALED_LEN (32 + ARCA_SIGN_SK_LEN + 48)
#define CONFIG_LEN (8 + 4 + ARCA_REPO_ID_LEN + ARCA_BOX_PK_LEN + ARCA_SIGN_PK_LEN + \
		    4 + 8 + CONFIG_SEALED_LEN)
/* zstd level 1: on the benchmark corpus (bench/zstd-dict, 20,000 messages
 * with the trained dictionary) level 3 stores 0.357 of the raw size at 205
 * MB/s, level 2 0.370 at 244 MB/s, level 1 0.395 at 299 MB/s.  A whole first
 * ingest of 100 x 2,000 messages (2 CPUs, cold cache, runs alternating) took
 * 19.7-20.3 s at level 3; 15.9 and 16.6 s at level 2 (repository 1,034 MiB)
 * against 15.4 and 14.1 s at level 1 (1,076 MiB): zstd is the largest part
 * of an ingest's CPU time, and 4% more bytes is still far under restic's. */
#define ZSTD_LEVEL 1

struct cache_rec {
	size_t off, klen;        /* key bytes at off in file_keys */
	struct idx_file f;
};

struct repo {
	char *path;
	char *tmpdir;
	bool journal_mode;          /* packs are journal segments: sealed only by repo_flush_journal */
	struct backend *be;
	struct idx *ix;
	struct arca_public_keys pub;
	uint8_t config_hash[ARCA_ID_LEN];
	uint8_t id_alg;             /* enum arca_id_alg, from the config */
	uint8_t sealed_secrets[CONFIG_SEALED_LEN];
	struct arca_ingest_keys *ik;
	struct arca_restore_key *rk;
	struct mlog_state log;
	uint64_t gear[256];

	struct pack_writer *pw;
	struct idset pending;       /* ids in the pack being written */

	/* A full pack is sealed (trailer, fsync, rename, log entry) on a thread
	 * of its own while the next one fills: under the ingest readers' lock,
	 * sealing took half the time the lock was held and left the CPUs idle.
	 * One at a time; everything else that writes the log or the index, or
	 * must see the pack logged, waits for it first (seal_wait). */
	pthread_t sealer;
	bool sealer_running;        /* a seal to collect (seal_wait) */
	bool sealer_thread;         /* ... on the thread `sealer` (else done already) */
	struct pack_writer *sealing_pw;
	struct idset sealing;       /* its ids: stored, as far as puts go, until indexed */
	pthread_mutex_t seal_lock;  /* `sealing` against repo_has_object's look */
	int seal_rc;
	struct arca_err seal_err;
	/* A pack was lost since the last commit: what was staged (and the
	 * ingest cache) may name its objects, so none of it is committed. */
	bool pack_lost;
	bool lost_told;             /* ... and a put or flush returned that error to its caller */
	char lost_msg[ARCA_ERR_MSG_MAX];
	bool file_audited;          /* this handle checked the ingest cache (file_cache_audit) */
	bool file_trusted;          /* ... and it holds no entry naming a missing object */
	struct compressor *comp;
	struct abuf zbuf;
	enum arca_cipher cipher;

	struct abuf file_keys;
	struct cache_rec *cache;
	size_t cache_count, cache_cap;

	/* the last pack key opened, for runs of reads from one pack */
	uint8_t key_pack[ARCA_ID_LEN];
	uint8_t *key;                   /* sodium_malloc */
	bool key_valid;
	struct repo_stats stats;
	struct idx_txn *rtxn;           /* renewed per lookup (idx_read_begin) */
	bool readonly;                  /* opened without REPO_OPEN_WRITE */
	struct abuf warnings;           /* lines for the caller (repo_warnings) */
	uint64_t last_snapshot_ns;      /* repo_snapshot_time's last answer */

	/* this run's dictionary: samples until trained, then the dictionary */
	pthread_mutex_t dict_lock;
	struct abuf dict_samples;
	size_t *dict_sizes;
	unsigned dict_nsamples;
	bool dict_training;             /* samples taken by a trainer */
	_Atomic(struct zdict *) dict;

	/* raw cache records waiting for the next commit: key, then value */
	struct abuf raw_cache;          /* [u32 klen][u32 vlen][key][val]... */

	/* snapshots stored but not yet logged (encoded log payloads) */
	struct abuf *staged;
	size_t nstaged, staged_cap;
};

uint64_t arca_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t arca_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- config ---- */

static int config_encode(const struct arca_public_keys *pub,
			 const struct arca_ingest_keys *ik, uint8_t id_alg, struct abuf *out)
{
	uint8_t secrets[32 + ARCA_SIGN_SK_LEN], sealed[CONFIG_SEALED_LEN];
	memcpy(secrets, ik->id_key, 32);
	memcpy(secrets + 32, ik->sign_sk, ARCA_SIGN_SK_LEN);
	int rc = acrypto_seal(pub->box_pk, secrets, sizeof(secrets), sealed);
	sodium_memzero(secrets, sizeof(secrets));
	if (rc)
		return rc;
	rc = abuf_add(out, CONFIG_MAGIC, 8);
	rc = rc ? rc : abuf_add_u32(out, CONFIG_VERSION);
	rc = rc ? rc : abuf_add(out, pub->repo_id, ARCA_REPO_ID_LEN);
	rc = rc ? rc : abuf_add(out, pub->box_pk, ARCA_BOX_PK_LEN);
	rc = rc ? rc : abuf_add(out, pub->sign_pk, ARCA_SIGN_PK_LEN);
	rc = rc ? rc : abuf_add_u8(out, id_alg);
	rc = rc ? rc : abuf_add(out, "\0\0\0", 3);
	rc = rc ? rc : abuf_add_u64(out, arca_now_ns());
	rc = rc ? rc : abuf_add(out, sealed, sizeof(sealed));
	return rc;
}

static int config_decode(struct repo *r, const uint8_t *p, size_t len,
			 struct arca_err *err)
{
	if (len < 12 || memcmp(p, CONFIG_MAGIC, 8) != 0)
		return arca_err_set(err, ARCA_EFORMAT, "%s/config: not an Arca repository config (bad magic)", r->path);
	uint32_t v = get_u32le(p + 8);
	if (v != CONFIG_VERSION)
		return arca_err_set(err, ARCA_EVERSION,
				    "%s/config: repository format version %u is not supported by this arca", r->path, v);
	if (len != CONFIG_LEN)
		return arca_err_set(err, ARCA_ECORRUPT, "%s/config is damaged (length %zu)", r->path, len);
	const uint8_t *q = p + 12;
	memcpy(r->pub.repo_id, q, ARCA_REPO_ID_LEN);
	q += ARCA_REPO_ID_LEN;
	memcpy(r->pub.box_pk, q, ARCA_BOX_PK_LEN);
	q += ARCA_BOX_PK_LEN;
	memcpy(r->pub.sign_pk, q, ARCA_SIGN_PK_LEN);
	q += ARCA_SIGN_PK_LEN;
	if ((q[0] != ARCA_ID_BLAKE2B && q[0] != ARCA_ID_HMAC_SHA256) || q[1] || q[2] || q[3])
		return arca_err_set(err, ARCA_EVERSION, "%s/config: unknown id algorithm %u", r->path, q[0]);
	r->id_alg = q[0];
	q += 4 + 8;
	memcpy(r->sealed_secrets, q, CONFIG_SEALED_LEN);
	acrypto_hash(p, len, r->config_hash);
	return 0;
}

int repo_config_parse(const uint8_t *p, size_t len, struct arca_public_keys *pub_r,
		      struct arca_err *err)
{
	struct repo tmp;
	memset(&tmp, 0, sizeof(tmp));
	tmp.path = (char *)"config";
	int rc = config_decode(&tmp, p, len, err);
	if (rc == 0)
		*pub_r = tmp.pub;
	return rc;
}

/* Chunk boundaries depend on a table derived from the secret id key, so
 * chunk sizes reveal nothing an outsider could match against known files. */
static void gear_init(struct repo *r)
{
	for (unsigned i = 0; i < 256; i++) {
		uint8_t in[8], out[32];
		memcpy(in, "gear", 4);
		put_u32le(in + 4, i);
		acrypto_object_id(r->ik, in, sizeof(in), out);
		r->gear[i] = get_u64le(out);
	}
}

/* ---- open / create ---- */

static int seal_wait(struct repo *r, struct arca_err *err);

static void repo_free(struct repo *r)
{
	if (r == NULL)
		return;
	struct arca_err ignored = { 0 };
	(void)seal_wait(r, &ignored);   /* a pack sealed and logged, no snapshot names it yet: harmless */
	idset_free(&r->sealing);
	pthread_mutex_destroy(&r->seal_lock);
	pack_writer_free(r->pw);
	idx_read_free(r->rtxn);
	zdict_free(atomic_load(&r->dict));
	for (size_t i = 0; i < r->nstaged; i++)
		abuf_release(&r->staged[i]);
	free(r->staged);
	abuf_release(&r->raw_cache);
	abuf_release(&r->warnings);
	abuf_release(&r->dict_samples);
	free(r->dict_sizes);
	pthread_mutex_destroy(&r->dict_lock);
	idset_free(&r->pending);
	compressor_free(r->comp);
	abuf_release(&r->zbuf);
	abuf_release(&r->file_keys);
	free(r->cache);
	idx_close(r->ix);
	backend_close(r->be);
	acrypto_ingest_keys_free(r->ik);
	acrypto_restore_key_free(r->rk);
	sodium_free(r->key);
	free(r->tmpdir);
	free(r->path);
	free(r);
}

void repo_close(struct repo *r)
{
	repo_free(r);
}

static struct repo *repo_alloc(const char *path)
{
	struct repo *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->path = strdup(path);
	r->tmpdir = fs_join(path, "tmp");
	r->key = sodium_malloc(ARCA_PACK_KEY_LEN);
	r->cipher = acrypto_best_cipher();
	mlog_state_init(&r->log);
	pthread_mutex_init(&r->dict_lock, NULL);
	pthread_mutex_init(&r->seal_lock, NULL);
	if (r->path == NULL || r->tmpdir == NULL || r->key == NULL) {
		repo_free(r);
		return NULL;
	}
	return r;
}

static int open_index(struct repo *r, struct arca_err *err)
{
	char *dir = fs_join(r->path, "index");
	if (dir == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	int rc = idx_open(dir, &r->ix, err);
	free(dir);
	return rc;
}

int repo_create(const char *path, const struct repo_create_opts *o,
		struct arca_err *err)
{
	int rc = acrypto_setup();
	if (rc)
		return arca_err_set(err, rc, "libsodium failed to initialize");
	struct stat st;
	if (stat(path, &st) == 0) {
		char *cfg = fs_join(path, "config");
		bool exists = cfg && access(cfg, F_OK) == 0;
		free(cfg);
		if (exists)
			return arca_err_set(err, ARCA_EEXIST, "%s already holds a repository", path);
	}
	if (access(o->restore_key_path, F_OK) == 0)
		return arca_err_set(err, ARCA_EEXIST,
				    "%s already exists; refusing to overwrite a restore key",
				    o->restore_key_path);
	rc = fs_mkdirs(path, 0700, err);
	if (rc)
		return rc;
	struct repo *r = repo_alloc(path);
	if (r == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	struct arca_restore_key *rk = NULL;
	struct abuf cfg = ABUF_INIT;
	char *keysdir = fs_join(path, "keys");
	char *ikpath = fs_join(path, "keys/ingest.key");
	if (keysdir == NULL || ikpath == NULL) {
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		goto out;
	}
	rc = acrypto_generate(&r->pub, &r->ik, &rk, err);
	if (rc)
		goto out;
	r->ik->id_alg = (uint8_t)(o->id_alg ? o->id_alg : (int)acrypto_fastest_id_alg());
	if (o->id_alg_r)
		*o->id_alg_r = r->ik->id_alg;
	/* The restore key first: without it nothing stored could ever be read. */
	rc = keyfile_write(o->restore_key_path, rk, o->passphrase, o->fast_kdf, err);
	if (rc)
		goto out;
	rc = fs_mkdirs(keysdir, 0700, err);
	rc = rc ? rc : fs_mkdirs(r->tmpdir, 0700, err);
	rc = rc ? rc : ingestkey_write(ikpath, r->pub.repo_id, r->ik, err);
	if (rc)
		goto out;
	rc = config_encode(&r->pub, r->ik, r->ik->id_alg, &cfg);
	if (rc) {
		arca_err_set(err, rc, "cannot encode the config");
		goto out;
	}
	rc = backend_local_open(path, &r->be, err);
	rc = rc ? rc : r->be->ops->put(r->be, "config", cfg.data, cfg.len, err);
	rc = rc ? rc : config_decode(r, cfg.data, cfg.len, err);
	rc = rc ? rc : open_index(r, err);
	if (rc)
		goto out;
	uint64_t seq;
	rc = mlog_append(r->be, &r->log, r->ik, r->pub.sign_pk, MLOG_INIT,
			 r->config_hash, ARCA_ID_LEN, arca_now_ns(), NULL, NULL, &seq, err);
out:
	acrypto_restore_key_free(rk);
	abuf_release(&cfg);
	free(keysdir);
	free(ikpath);
	repo_free(r);
	return rc;
}

static void load_log_state(struct repo *r);

static void repo_warn(struct repo *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void repo_warn(struct repo *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char line[1024];
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	abuf_add(&r->warnings, line, strlen(line));
	abuf_add(&r->warnings, "\n", 1);
	abuf_cstr(&r->warnings);
}

const char *repo_warnings(const struct repo *r)
{
	return r->warnings.len ? (const char *)r->warnings.data : NULL;
}

uint64_t repo_snapshot_time(struct repo *r, uint64_t t_ns)
{
	if (t_ns <= r->last_snapshot_ns)
		t_ns = r->last_snapshot_ns + 1;
	r->last_snapshot_ns = t_ns;
	return t_ns;
}

int repo_open(const char *path, int flags, struct repo **r_r, struct arca_err *err)
{
	int rc = acrypto_setup();
	if (rc)
		return arca_err_set(err, rc, "libsodium failed to initialize");
	struct repo *r = repo_alloc(path);
	if (r == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	struct abuf cfg = ABUF_INIT;
	r->readonly = !(flags & REPO_OPEN_WRITE);
	rc = backend_local_open(path, &r->be, err);
	if (rc)
		goto fail;
	struct arca_err sub = { 0 };
	rc = r->be->ops->get(r->be, "config", 4096, &cfg, &sub);
	if (rc == ARCA_ENOENT) {
		rc = arca_err_set(err, ARCA_ENOENT, "%s is not an Arca repository (no config; create one with 'arca init')", path);
		goto fail;
	}
	if (rc) {
		arca_err_set(err, rc, "%s", sub.msg);
		goto fail;
	}
	rc = config_decode(r, cfg.data, cfg.len, err);
	if (rc)
		goto fail;
	char *ikpath = fs_join(path, "keys/ingest.key");
	if (ikpath == NULL) {
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		goto fail;
	}
	/* Only writers need it; readers get the id key from the restore key,
	 * and a damaged or foreign ingest key must not block a restore. */
	if (flags & REPO_OPEN_WRITE)
		rc = ingestkey_read(ikpath, r->pub.repo_id, &r->ik, err);
	free(ikpath);
	if (rc)
		goto fail;
	if (r->ik) {
		r->ik->id_alg = r->id_alg;
		gear_init(r);
	}
	if (flags & REPO_OPEN_WRITE) {
		rc = fs_mkdirs(r->tmpdir, 0700, err);
		r->comp = compressor_new(ZSTD_LEVEL);
		if (rc == 0 && r->comp == NULL)
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		if (rc)
			goto fail;
	}
	rc = open_index(r, err);
	if (rc == 0 && !(flags & REPO_OPEN_NOSYNC))
		rc = repo_sync(r, err);
	if (rc == 0 && (flags & REPO_OPEN_NOSYNC))
		load_log_state(r);   /* how long the log was when the index last saw it */
	if (rc)
		goto fail;
	abuf_release(&cfg);
	*r_r = r;
	return 0;
fail:
	abuf_release(&cfg);
	repo_free(r);
	return rc;
}

static void load_log_state(struct repo *r)
{
	struct idx_txn *t;
	struct abuf b = ABUF_INIT;
	if (idx_begin(r->ix, false, &t, NULL) != 0)
		return;
	if (idx_meta_get(t, "logstate", &b) == 0 && mlog_state_decode(b.data, b.len, &r->log) != 0)
		mlog_state_init(&r->log);
	idx_abort(t);
	abuf_release(&b);
}

const struct arca_public_keys *repo_public_keys(const struct repo *r)
{
	return &r->pub;
}

struct backend *repo_backend(struct repo *r)
{
	return r->be;
}

struct idx *repo_index(struct repo *r)
{
	return r->ix;
}

const char *repo_path(const struct repo *r)
{
	return r->path;
}

const struct arca_ingest_keys *repo_ingest_keys(const struct repo *r)
{
	return r->ik;
}

const struct arca_restore_key *repo_restore_key(const struct repo *r)
{
	return r->rk;
}

const uint8_t *repo_config_hash(const struct repo *r)
{
	return r->config_hash;
}

uint64_t repo_log_count(const struct repo *r)
{
	return r->log.count;
}

const struct repo_stats *repo_stats(const struct repo *r)
{
	return &r->stats;
}

/* ---- log -> index ---- */

struct apply_ctx {
	struct repo *r;
	struct idx_txn *t;
	struct arca_err *err;
};

/* Bring one log entry into the index. */
static int apply_entry(const struct mlog_entry *e, void *vctx)
{
	struct apply_ctx *c = vctx;
	struct repo *r = c->r;
	char name[48];
	mlog_name(e->seq, name);
	switch (e->kind) {
	case MLOG_INIT:
		if (e->seq != 0 || e->payload_len != ARCA_ID_LEN ||
		    memcmp(e->payload, r->config_hash, ARCA_ID_LEN) != 0)
			return arca_err_set(c->err, ARCA_ECORRUPT,
					    "%s: the log does not belong to this config", name);
		return 0;
	case MLOG_JOURNAL:
	case MLOG_PACK: {
		struct adec d;
		adec_init(&d, e->payload, e->payload_len);
		uint8_t hash[ARCA_ID_LEN];
		adec_fixed(&d, hash, ARCA_ID_LEN);
		uint64_t size = adec_u64(&d);
		uint32_t count = adec_u32(&d);
		size_t marks_at = ARCA_ID_LEN + 12;
		if (e->kind == MLOG_JOURNAL) {
			if (d.failed || e->payload_len < marks_at || e->seq == 0 ||
			    journal_marks_check(e->payload + marks_at, e->payload_len - marks_at) != 0)
				return arca_err_set(c->err, ARCA_ECORRUPT, "%s: malformed journal record", name);
		} else if (adec_finish(&d) != 0 || e->seq == 0)
			return arca_err_set(c->err, ARCA_ECORRUPT, "%s: malformed pack record", name);
		char pname[80];
		pack_name(hash, pname);
		struct pack_header hdr;
		struct pack_entry *es = NULL;
		size_t n = 0;
		int rc = pack_read_index(r->be, pname, size, &hdr, &es, &n, c->err);
		if (rc)
			return rc;
		if (n != count || memcmp(hdr.repo_id, r->pub.repo_id, ARCA_REPO_ID_LEN) != 0) {
			free(es);
			return arca_err_set(c->err, ARCA_ECORRUPT, "%s does not match its log record", pname);
		}
		struct idx_pack ip = { .size = size, .cipher = hdr.cipher };
		memcpy(ip.sealed_key, hdr.sealed_key, ARCA_SEALED_KEY_LEN);
		rc = idx_pack_put(c->t, hash, &ip);
		for (size_t i = 0; i < n && rc == 0; i++) {
			if (es[i].type == PACK_MARK_TYPE)
				continue;   /* a journal commit mark, not an object */
			struct idx_obj o = { .offset = es[i].offset, .stored_len = es[i].stored_len,
					     .raw_len = es[i].raw_len, .type = es[i].type,
					     .comp = es[i].comp };
			memcpy(o.pack, hash, ARCA_ID_LEN);
			rc = idx_obj_put(c->t, es[i].id, &o);
		}
		free(es);
		if (rc == 0 && e->kind == MLOG_JOURNAL)
			rc = journal_marks_index(c->t, e->seq, e->payload + marks_at,
						 e->payload_len - marks_at);
		if (rc)
			return arca_err_set(c->err, rc, "index: cannot record %s", pname);
		return 0;
	}
	case MLOG_DICT: {
		if (e->payload_len != ARCA_ID_LEN + 4)
			return arca_err_set(c->err, ARCA_ECORRUPT, "%s: malformed dictionary record", name);
		int rc = idx_dict_put(c->t, get_u32le(e->payload + ARCA_ID_LEN), e->payload);
		return rc ? arca_err_set(c->err, rc, "index: cannot record %s", name) : 0;
	}
	case MLOG_ALARM:
	case MLOG_ALARM_CLEAR: {
		int rc = alarm_index_entry(c->t, e->kind, e->seq, e->time_ns, e->payload, e->payload_len);
		if (rc == ARCA_ECORRUPT || rc == ARCA_EFORMAT || rc == ARCA_EVERSION)
			return arca_err_set(c->err, ARCA_ECORRUPT, "%s: malformed alarm record", name);
		return rc ? arca_err_set(c->err, rc, "index: cannot record %s", name) : 0;
	}
	case MLOG_SNAPSHOT: {
		struct snap_info s;
		if (snap_info_decode(e->payload, e->payload_len, &s) != 0)
			return arca_err_set(c->err, ARCA_ECORRUPT, "%s: malformed snapshot record", name);
		snap_info_release(&s);
		int rc = idx_snap_put(c->t, e->seq, e->payload, e->payload_len);
		return rc ? arca_err_set(c->err, rc, "index: cannot record %s", name) : 0;
	}
	}
	return arca_err_set(c->err, ARCA_EVERSION, "%s: unknown entry kind %u", name, e->kind);
}

/* Read the log past what t's index has, applying entries; leaves r->log at
 * the end of the log.  Runs inside a write transaction. */
static int sync_in_txn(struct repo *r, struct idx_txn *t, struct arca_err *err)
{
	struct abuf b = ABUF_INIT;
	int rc = idx_meta_get(t, "logstate", &b);
	if (rc == 0) {
		if (mlog_state_decode(b.data, b.len, &r->log) != 0)
			rc = arca_err_set(err, ARCA_ECORRUPT, "index: bad log state (delete %s/index to rebuild it)", r->path);
	} else if (rc == ARCA_ENOENT) {
		mlog_state_init(&r->log);
		rc = 0;
	} else {
		rc = arca_err_set(err, rc, "index: cannot read the log state");
	}
	uint64_t start = r->log.count;
	bool degraded = false;
	while (rc == 0) {
		struct mlog_entry e;
		struct arca_err sub = { 0 };
		struct apply_ctx c = { r, t, &sub };
		rc = mlog_read(r->be, r->log.count, r->pub.sign_pk, &b, &e, &sub);
		if (rc == ARCA_ENOENT) {
			rc = 0;
			break;
		}
		rc = rc ? rc : mlog_state_apply(&r->log, &e, &sub);
		if (rc && r->readonly) {
			/* A reader uses the log up to the damage: what it names
			 * stays restorable.  Writers can't append after it. */
			repo_warn(r, "%s (using the log before it; run arca verify)", sub.msg);
			degraded = true;
			rc = 0;
			break;
		}
		if (rc == 0) {
			rc = apply_entry(&e, &c);
			if (rc && r->readonly && e.kind == MLOG_PACK) {
				/* its objects stay unknown; everything else is usable */
				repo_warn(r, "%s (its messages can't be restored; run arca verify)", sub.msg);
				degraded = true;
				rc = 0;
			}
		}
		if (rc)
			arca_err_set(err, rc, "%s", sub.msg);
	}
	/* A degraded view is not saved as the log state: once the damage is
	 * repaired, the next open reads those entries again. */
	if (rc == 0 && r->log.count != start && !degraded) {
		rc = mlog_state_encode(&r->log, &b);
		rc = rc ? rc : idx_meta_put(t, "logstate", b.data, b.len);
		if (rc)
			arca_err_set(err, rc, "index: cannot save the log state");
	}
	if (rc == 0 && r->log.count == 0)
		rc = arca_err_set(err, ARCA_ECORRUPT, "%s: the log is empty (log/000000000000/0000000000000000 is missing)", r->path);
	abuf_release(&b);
	return rc;
}

int repo_sync(struct repo *r, struct arca_err *err)
{
	(void)seal_wait(r, NULL);   /* its failure is kept for the next commit */
	struct idx_txn *t;
	int rc = idx_begin(r->ix, true, &t, err);
	if (rc)
		return rc;
	rc = sync_in_txn(r, t, err);
	if (rc) {
		idx_abort(t);
		return rc;
	}
	return idx_commit(t, err);
}

/* Append an entry and apply it, inside one index write transaction (which
 * also keeps other Arca processes from appending meanwhile). */
static int log_append_txn(struct repo *r, struct idx_txn *t, uint8_t kind,
			  const uint8_t *payload, size_t len, uint64_t *seq_r,
			  struct arca_err *err)
{
	int rc = sync_in_txn(r, t, err);
	if (rc)
		return rc;
	struct apply_ctx c = { r, t, err };
	uint64_t now = arca_now_ns();
	rc = mlog_append(r->be, &r->log, r->ik, r->pub.sign_pk, kind, payload, len,
			 now, apply_entry, &c, seq_r, err);
	if (rc)
		return rc;
	struct mlog_entry e = { .seq = *seq_r, .kind = kind, .payload = payload,
				.payload_len = len, .time_ns = now };
	rc = apply_entry(&e, &c);
	if (rc)
		return rc;
	struct abuf b = ABUF_INIT;
	rc = mlog_state_encode(&r->log, &b);
	rc = rc ? rc : idx_meta_put(t, "logstate", b.data, b.len);
	abuf_release(&b);
	return rc ? arca_err_set(err, rc, "index: cannot save the log state") : 0;
}

int repo_log_append(struct repo *r, uint8_t kind, const void *payload, size_t len,
		    uint64_t *seq_r, struct arca_err *err)
{
	if (r->ik == NULL)
		return arca_err_set(err, ARCA_ESTATE, "repository not opened for writing");
	if (kind != MLOG_ALARM && kind != MLOG_ALARM_CLEAR)
		return arca_err_set(err, ARCA_EINVAL, "log entry kind %u is written by its own module", kind);
	(void)seal_wait(r, NULL);
	struct idx_txn *t;
	int rc = idx_begin(r->ix, true, &t, err);
	if (rc)
		return rc;
	rc = log_append_txn(r, t, kind, payload, len, seq_r, err);
	if (rc) {
		idx_abort(t);
		return rc;
	}
	return idx_commit(t, err);
}

/* ---- writing ---- */

static int need_writer(struct repo *r, struct arca_err *err)
{
	if (r->ik == NULL || r->comp == NULL)
		return arca_err_set(err, ARCA_ESTATE, "repository not opened for writing");
	if (r->pw == NULL)
		return pack_writer_new(r->tmpdir, r->cipher, &r->pub, &r->pw, err);
	return 0;
}

bool repo_dict_offer(struct repo *r, const void *data, size_t len)
{
	if (len == 0 || len > ZDICT_SAMPLE_MAX || atomic_load(&r->dict) != NULL)
		return false;
	bool train = false;
	pthread_mutex_lock(&r->dict_lock);
	if (!r->dict_training && r->dict_nsamples < ZDICT_SAMPLES) {
		if (r->dict_sizes == NULL)
			r->dict_sizes = calloc(ZDICT_SAMPLES, sizeof(size_t));
		if (r->dict_sizes != NULL && abuf_add(&r->dict_samples, data, len) == 0) {
			r->dict_sizes[r->dict_nsamples++] = len;
			if (r->dict_nsamples == ZDICT_SAMPLES)
				train = r->dict_training = true;
		}
	}
	pthread_mutex_unlock(&r->dict_lock);
	return train;
}

int repo_dict_build(struct repo *r, struct abuf *dict_r)
{
	/* a zstd dictionary id: random, outside the range zstd reserves */
	uint32_t id = 32768 + randombytes_uniform(0x7fffffffu - 32768);
	int rc = zdict_train(r->dict_samples.data, r->dict_sizes, r->dict_nsamples, id,
			     ZSTD_LEVEL, dict_r);
	/* the samples are message text: drop them as soon as they served */
	sodium_memzero(r->dict_samples.data, r->dict_samples.len);
	abuf_release(&r->dict_samples);
	return rc;
}

int repo_dict_install(struct repo *r, const struct abuf *dict, struct arca_err *err)
{
	struct zdict *z = zdict_new(dict->data, dict->len, ZSTD_LEVEL);
	if (z == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "cannot load the trained dictionary");
	uint8_t payload[ARCA_ID_LEN + 4];
	bool fresh;
	int rc = repo_put(r, OBJ_DICT, dict->data, dict->len, payload, &fresh, err);
	/* its own pack, logged before any object compressed with it */
	rc = rc ? rc : repo_flush(r, err);
	if (rc) {
		zdict_free(z);
		return rc;
	}
	put_u32le(payload + ARCA_ID_LEN, zdict_id(z));
	struct idx_txn *t;
	rc = idx_begin(r->ix, true, &t, err);
	if (rc) {
		zdict_free(z);
		return rc;
	}
	uint64_t seq;
	rc = log_append_txn(r, t, MLOG_DICT, payload, sizeof(payload), &seq, err);
	if (rc)
		idx_abort(t);
	else
		rc = idx_commit(t, err);
	if (rc) {
		zdict_free(z);
		return rc;
	}
	atomic_store(&r->dict, z);
	return 0;
}

/* Log a sealed pack: MLOG_PACK, or MLOG_JOURNAL with the segment's commit
 * marks (`marks`, NULL for a plain pack). */
static int log_pack(struct repo *r, const uint8_t hash[ARCA_ID_LEN], uint64_t size,
		    size_t count, const struct abuf *marks, struct arca_err *err)
{
	struct abuf payload = ABUF_INIT;
	int rc = abuf_add(&payload, hash, ARCA_ID_LEN);
	rc = rc ? rc : abuf_add_u64(&payload, size);
	rc = rc ? rc : abuf_add_u32(&payload, (uint32_t)count);
	if (marks != NULL)
		rc = rc ? rc : abuf_add(&payload, marks->data, marks->len);
	if (rc) {
		abuf_release(&payload);
		return arca_err_set(err, rc, "out of memory");
	}
	struct idx_txn *t;
	rc = idx_begin(r->ix, true, &t, err);
	if (rc == 0) {
		uint64_t seq;
		rc = log_append_txn(r, t, marks ? MLOG_JOURNAL : MLOG_PACK, payload.data,
				    payload.len, &seq, err);
		if (rc)
			idx_abort(t);
		else
			rc = idx_commit(t, err);
	}
	abuf_release(&payload);
	return rc;
}

int repo_set_journal_dir(struct repo *r, const char *dir, struct arca_err *err)
{
	(void)seal_wait(r, NULL);
	if (r->pw != NULL)
		return arca_err_set(err, ARCA_ESTATE, "a pack is being written");
	char *d = strdup(dir);
	if (d == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	free(r->tmpdir);
	r->tmpdir = d;
	r->journal_mode = true;
	return 0;
}

uint64_t repo_pack_size(const struct repo *r)
{
	return r->pw ? pack_writer_size(r->pw) : 0;
}

int repo_commit_mark(struct repo *r, const void *payload, size_t len, struct arca_err *err)
{
	if (!r->journal_mode)
		return arca_err_set(err, ARCA_ESTATE, "not a journal repository handle");
	int rc = need_writer(r, err);
	rc = rc ? rc : pack_writer_mark(r->pw, payload, len, err);
	fault_crash_point();
	return rc ? rc : pack_writer_sync(r->pw, err);
}

void repo_journal_abandon(struct repo *r)
{
	if (r->pw == NULL)
		return;
	/* The file stays for repo_seal_segment: what was committed in it
	 * was acknowledged. */
	pack_writer_forget(r->pw);
	r->pw = NULL;
	idset_clear(&r->pending);
}

const char *repo_journal_segment(const struct repo *r)
{
	return r->pw ? pack_writer_path(r->pw) : NULL;
}

/*
 * Store a sealed journal segment and log it, crash-safe: put_file moves the
 * file out of journal/, so a second name for it stays in journal/ until the
 * log entry is committed.  A crash at any point leaves a name there, and
 * the next recovery finishes the job (the pack already in data/ gives
 * EEXIST; the log is written unless the index already knows the pack).
 */
static int store_segment(struct repo *r, const char *path, const uint8_t hash[ARCA_ID_LEN],
			 uint64_t size, size_t count, const struct abuf *marks,
			 struct arca_err *err)
{
	char hex[2 * ARCA_ID_LEN + 1], name[80];
	hex_encode(hex, hash, ARCA_ID_LEN);
	pack_name(hash, name);
	char *dir = fs_dirname(path);
	struct abuf keep = ABUF_INIT;
	int rc = dir ? abuf_printf(&keep, "%s/pack-sealed-%s", dir, hex) : ARCA_ENOMEM;
	rc = rc ? rc : abuf_cstr(&keep);
	if (rc) {
		free(dir);
		abuf_release(&keep);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	const char *kp = (const char *)keep.data;
	if (strcmp(kp, path) != 0 && link(path, kp) != 0 && errno != EEXIST)
		rc = arca_err_errno(err, arca_errno_code(errno), errno, "link %s", kp);
	if (rc == 0)
		rc = fs_fsync_dir(dir, err);
	fault_crash_point();
	if (rc == 0) {
		rc = r->be->ops->put_file(r->be, name, path, err);
		if (rc == ARCA_EEXIST) {
			/* stored by an earlier attempt (same bytes: same name) */
			arca_err_clear(err);
			rc = 0;
		}
	}
	fault_crash_point();
	bool known = false;
	if (rc == 0) {
		struct idx_txn *t;
		rc = idx_begin(r->ix, true, &t, err);
		if (rc == 0) {
			rc = sync_in_txn(r, t, err);
			struct idx_pack ip;
			known = rc == 0 && idx_pack_get(t, hash, &ip) == 0;
			if (rc == 0)
				rc = idx_commit(t, err);
			else
				idx_abort(t);
		}
	}
	if (rc == 0 && !known) {
		rc = log_pack(r, hash, size, count, marks, err);
		if (rc == 0)
			r->stats.packs++;
	}
	fault_crash_point();
	if (rc == 0) {
		/* logged: the journal names can go */
		unlink(kp);
		unlink(path);
		rc = fs_fsync_dir(dir, err);
	}
	free(dir);
	abuf_release(&keep);
	return rc;
}

int repo_seal_segment(struct repo *r, const char *path, struct abuf *marks_r,
		      uint64_t *dropped_r, struct arca_err *err)
{
	struct pack_recovered pr;
	*dropped_r = 0;
	(void)seal_wait(r, NULL);
	int rc = pack_recover(path, &pr, err);
	if (rc == ARCA_ENOENT) {
		/* another name of a segment finished a moment ago */
		arca_err_clear(err);
		return 0;
	}
	if (rc)
		return rc;
	*dropped_r = pr.dropped;
	if (pr.empty) {
		pack_recovered_release(&pr);
		/* nothing in it was ever acknowledged */
		if (unlink(path) != 0 && errno != ENOENT)
			return arca_err_errno(err, ARCA_EIO, errno, "remove %s", path);
		return 0;
	}
	rc = store_segment(r, path, pr.hash, pr.size, pr.count, &pr.marks, err);
	if (rc == 0 && abuf_add(marks_r, pr.marks.data, pr.marks.len) != 0)
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	pack_recovered_release(&pr);
	return rc;
}

int repo_flush_journal(struct repo *r, const struct abuf *marks, struct arca_err *err)
{
	if (r->pw == NULL)
		return 0;
	if (pack_writer_failed(r->pw))
		return arca_err_set(err, ARCA_EIO, "the journal segment could not be written");
	uint8_t hash[ARCA_ID_LEN];
	uint64_t size;
	const char *tmp;
	int rc = pack_writer_finish(r->pw, hash, &size, &tmp, err);
	if (rc) {
		repo_journal_abandon(r);
		return rc;
	}
	size_t count = pack_writer_count(r->pw);
	char *path = strdup(tmp);
	/* from here the file is the recovery's, whatever happens */
	repo_journal_abandon(r);
	if (path == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	rc = store_segment(r, path, hash, size, count, marks, err);
	free(path);
	return rc;
}

/* Seal a full pack: trailer, fsync, store under its hash, log.  Touches
 * nothing of r but the backend and (in its write transaction) the log and
 * index, so it can run beside puts into the next pack. */
static int seal_pack(struct repo *r, struct pack_writer *pw, struct arca_err *err)
{
	uint8_t hash[ARCA_ID_LEN];
	uint64_t size;
	const char *tmp;
	int rc = pack_writer_finish(pw, hash, &size, &tmp, err);
	char name[80];
	pack_name(hash, name);
	if (rc == 0) {
		/* what is logged must be exactly what was written */
		struct stat st;
		if (stat(tmp, &st) != 0 || (uint64_t)st.st_size != size)
			rc = arca_err_set(err, ARCA_EIO, "pack %s is not the size written; not stored", tmp);
	}
	if (rc == 0) {
		rc = r->be->ops->put_file(r->be, name, tmp, err);
		if (rc == ARCA_EEXIST) /* same bytes already stored: impossible with random keys, but harmless */
			rc = 0;
	}
	if (rc)
		return rc;
	fault_crash_point();
	return log_pack(r, hash, size, pack_writer_count(pw), NULL, err);
}

static void note_lost(struct repo *r, const char *why)
{
	r->pack_lost = true;
	if (r->lost_msg[0] == '\0')
		snprintf(r->lost_msg, sizeof(r->lost_msg), "%s", why);
}

static void *sealer_main(void *arg)
{
	struct repo *r = arg;
	r->seal_rc = seal_pack(r, r->sealing_pw, &r->seal_err);
	return NULL;
}

/* Wait for the pack being sealed, if any.  Its failure is returned here
 * once (err may be NULL) and kept in pack_lost for the next commit. */
static int seal_wait(struct repo *r, struct arca_err *err)
{
	if (!r->sealer_running)
		return 0;
	if (r->sealer_thread)
		pthread_join(r->sealer, NULL);
	r->sealer_running = false;
	int rc = r->seal_rc;
	pack_writer_free(r->sealing_pw);   /* removes the temporary file if it was not stored */
	r->sealing_pw = NULL;
	pthread_mutex_lock(&r->seal_lock);
	idset_clear(&r->sealing);   /* indexed now, or lost: stored again if put again */
	pthread_mutex_unlock(&r->seal_lock);
	if (rc == 0) {
		r->stats.packs++;
		return 0;
	}
	note_lost(r, r->seal_err.msg);
	return err ? arca_err_set(err, rc, "%s", r->seal_err.msg) : rc;
}

/* Hand the full pack r->pw to the sealer; the next put starts a new one. */
static int seal_start(struct repo *r, struct arca_err *err)
{
	int rc = seal_wait(r, err);
	if (rc) {
		r->lost_told = true;
		return rc;
	}
	r->sealing_pw = r->pw;
	r->pw = NULL;
	r->seal_rc = 0;
	memset(&r->seal_err, 0, sizeof(r->seal_err));
	pthread_mutex_lock(&r->seal_lock);
	struct idset t = r->sealing;   /* empty, with its memory */
	r->sealing = r->pending;
	r->pending = t;
	pthread_mutex_unlock(&r->seal_lock);
	r->sealer_thread = pthread_create(&r->sealer, NULL, sealer_main, r) == 0;
	if (!r->sealer_thread)
		sealer_main(r);   /* no thread: seal here */
	r->sealer_running = true;
	return 0;
}

bool repo_write_failed(const struct repo *r)
{
	return r->pack_lost || (r->pw != NULL && pack_writer_failed(r->pw));
}

/* repo_flush, without counting its failure as told (repo_commit_staged
 * reports it itself). */
static int flush_packs(struct repo *r, struct arca_err *err)
{
	int rc = seal_wait(r, err);
	if (rc)
		return rc;
	if (r->pw == NULL)
		return 0;
	if (pack_writer_failed(r->pw)) {
		/* its objects were never logged: drop the file and forget them,
		 * so a later put stores them again */
		pack_writer_free(r->pw);
		r->pw = NULL;
		idset_clear(&r->pending);
		note_lost(r, "a pack could not be written");
		r->lost_told = true;   /* the put that failed it returned the cause */
		return arca_err_set(err, ARCA_EIO, "a pack could not be written; nothing of it was kept");
	}
	if (pack_writer_count(r->pw) == 0) {
		pack_writer_free(r->pw);
		r->pw = NULL;
		return 0;
	}
	rc = seal_pack(r, r->pw, err);
	pack_writer_free(r->pw);
	r->pw = NULL;
	idset_clear(&r->pending);
	if (rc) {
		note_lost(r, err->msg);
		return rc;
	}
	r->stats.packs++;
	return 0;
}

int repo_flush(struct repo *r, struct arca_err *err)
{
	int rc = flush_packs(r, err);
	if (rc && r->pack_lost)
		r->lost_told = true;
	return rc;
}

/* In the index?  `cache` is the calling thread's read transaction. */
static bool indexed(struct repo *r, struct idx_txn **cache, const uint8_t id[ARCA_ID_LEN])
{
	if (idx_read_begin(r->ix, cache, NULL) != 0)
		return false;
	struct idx_obj o;
	int rc = idx_obj_get(*cache, id, &o);
	idx_read_end(*cache);
	return rc == 0;
}

bool repo_has_object(struct repo *r, const uint8_t id[ARCA_ID_LEN])
{
	if (idset_has(&r->pending, id))
		return true;
	pthread_mutex_lock(&r->seal_lock);
	bool sealing = idset_has(&r->sealing, id);
	pthread_mutex_unlock(&r->seal_lock);
	return sealing || indexed(r, &r->rtxn, id);
}

struct repo_worker {
	struct compressor *comp;
	struct idx_txn *rtxn;
};

bool repo_indexed_w(struct repo *r, struct repo_worker *w, const uint8_t id[ARCA_ID_LEN])
{
	return w ? indexed(r, &w->rtxn, id) : repo_has_object(r, id);
}

struct repo_worker *repo_worker_new(struct repo *r)
{
	(void)r;
	struct repo_worker *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	w->comp = compressor_new(ZSTD_LEVEL);
	if (w->comp == NULL) {
		free(w);
		return NULL;
	}
	return w;
}

void repo_worker_free(struct repo_worker *w)
{
	if (w == NULL)
		return;
	compressor_free(w->comp);
	idx_read_free(w->rtxn);
	free(w);
}

void repo_prepared_release(struct repo_prepared *p)
{
	abuf_release(&p->data);
}

int repo_prepare(struct repo *r, struct repo_worker *w, uint8_t type,
		 const void *data, size_t len, struct repo_prepared *p,
		 struct arca_err *err)
{
	if (r->ik == NULL)
		return arca_err_set(err, ARCA_ESTATE, "repository not opened for writing");
	if (len > ARCA_OBJECT_MAX)
		return arca_err_set(err, ARCA_ELIMIT, "object of %zu bytes is over the limit", len);
	acrypto_object_id(r->ik, data, len, p->id);
	p->type = type;
	p->raw_len = len;
	p->dup = indexed(r, &w->rtxn, p->id);
	if (p->dup)
		return 0;
	const struct zdict *d = type == OBJ_BLOB ? atomic_load(&r->dict) : NULL;
	int rc = compressor_run(w->comp, d, data, len, &p->data, &p->comp);
	return rc ? arca_err_set(err, rc, "out of memory compressing") : 0;
}

int repo_put_prepared(struct repo *r, const struct repo_prepared *p,
		      bool *new_r, struct arca_err *err)
{
	/* another worker may have stored the same content meanwhile */
	if (p->dup || repo_has_object(r, p->id)) {
		r->stats.objects_dup++;
		if (new_r)
			*new_r = false;
		return 0;
	}
	int rc = need_writer(r, err);
	if (rc)
		return rc;
	rc = pack_writer_add(r->pw, p->type, p->comp, p->id, p->data.data, p->data.len,
			     p->raw_len, err);
	if (rc)
		return rc;
	rc = idset_add(&r->pending, p->id);
	if (rc)
		return arca_err_set(err, rc, "out of memory");
	r->stats.objects_new++;
	r->stats.bytes_raw_new += p->raw_len;
	r->stats.bytes_stored_new += p->data.len + PACK_ENTRY_HEADER_LEN + ARCA_AEAD_TAG_LEN;
	if (new_r)
		*new_r = true;
	if (!r->journal_mode && pack_writer_size(r->pw) >= PACK_TARGET_SIZE)
		return seal_start(r, err);
	return 0;
}

static int put_with_id(struct repo *r, uint8_t type, const void *data, size_t len,
		       const uint8_t id[ARCA_ID_LEN], bool *new_r, struct arca_err *err)
{
	if (repo_has_object(r, id)) {
		r->stats.objects_dup++;
		if (new_r)
			*new_r = false;
		return 0;
	}
	struct repo_prepared p = { .type = type, .raw_len = len };
	memcpy(p.id, id, ARCA_ID_LEN);
	uint8_t comp;
	const struct zdict *d = type == OBJ_BLOB ? atomic_load(&r->dict) : NULL;
	int rc = compressor_run(r->comp, d, data, len, &r->zbuf, &comp);
	if (rc)
		return arca_err_set(err, rc, "out of memory compressing");
	p.comp = comp;
	p.data = r->zbuf;   /* borrowed: not released here */
	return repo_put_prepared(r, &p, new_r, err);
}

int repo_put(struct repo *r, uint8_t type, const void *data, size_t len,
	     uint8_t id_r[ARCA_ID_LEN], bool *new_r, struct arca_err *err)
{
	if (r->ik == NULL)
		return arca_err_set(err, ARCA_ESTATE, "repository not opened for writing");
	if (len > ARCA_OBJECT_MAX)
		return arca_err_set(err, ARCA_ELIMIT, "object of %zu bytes is over the limit", len);
	acrypto_object_id(r->ik, data, len, id_r);
	return put_with_id(r, type, data, len, id_r, new_r, err);
}

static int read_full(int fd, uint8_t *p, size_t n, const char *what, size_t *got_r,
		     struct arca_err *err)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = read(fd, p + got, n - got);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return arca_err_errno(err, ARCA_EIO, errno, "read %s", what);
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	*got_r = got;
	return 0;
}

/* Cut point in p[0..n): gear rolling hash, boundary where the top bits are
 * zero, never before REPO_CHUNK_MIN, always by REPO_CHUNK_MAX. */
static size_t chunk_cut(const struct repo *r, const uint8_t *p, size_t n)
{
	if (n <= REPO_CHUNK_MIN)
		return n;
	size_t end = n < REPO_CHUNK_MAX ? n : REPO_CHUNK_MAX;
	const uint64_t mask = ((1ULL << REPO_CHUNK_AVG_BITS) - 1) << (64 - REPO_CHUNK_AVG_BITS);
	uint64_t h = 0;
	for (size_t i = REPO_CHUNK_MIN - 64; i < end; i++) {
		h = (h << 1) + r->gear[p[i]];
		if (i >= REPO_CHUNK_MIN && (h & mask) == 0)
			return i + 1;
	}
	return end;
}

static int repo_put_stream_locked(struct repo *r, struct repo_worker *w, pthread_mutex_t *lock,
				  struct repo_prepared *prep, int fd, uint64_t size,
				  const char *what, uint8_t *type_r,
				  uint8_t id_r[ARCA_ID_LEN], struct arca_err *err);

/* Store one object, from a reader thread when w and lock are given (the
 * hashing and compression then run outside the lock). */
static int put_obj(struct repo *r, struct repo_worker *w, pthread_mutex_t *lock,
		   struct repo_prepared *prep, uint8_t type, const void *data,
		   size_t len, uint8_t id_r[ARCA_ID_LEN], struct arca_err *err)
{
	if (w == NULL)
		return repo_put(r, type, data, len, id_r, NULL, err);
	int rc = repo_prepare(r, w, type, data, len, prep, err);
	if (rc)
		return rc;
	memcpy(id_r, prep->id, ARCA_ID_LEN);
	pthread_mutex_lock(lock);
	rc = repo_put_prepared(r, prep, NULL, err);
	pthread_mutex_unlock(lock);
	return rc;
}

int repo_put_stream(struct repo *r, int fd, uint64_t size, const char *what,
		    uint8_t *type_r, uint8_t id_r[ARCA_ID_LEN], struct arca_err *err)
{
	return repo_put_stream_mt(r, NULL, NULL, fd, size, what, type_r, id_r, err);
}

int repo_put_stream_mt(struct repo *r, struct repo_worker *w, pthread_mutex_t *lock,
		       int fd, uint64_t size, const char *what, uint8_t *type_r,
		       uint8_t id_r[ARCA_ID_LEN], struct arca_err *err)
{
	struct repo_prepared prep = { 0 };
	int rc = repo_put_stream_locked(r, w, lock, &prep, fd, size, what, type_r, id_r, err);
	repo_prepared_release(&prep);
	return rc;
}

static int repo_put_stream_locked(struct repo *r, struct repo_worker *w, pthread_mutex_t *lock,
				  struct repo_prepared *prep, int fd, uint64_t size,
				  const char *what, uint8_t *type_r,
				  uint8_t id_r[ARCA_ID_LEN], struct arca_err *err)
{
	if (r->ik == NULL)
		return arca_err_set(err, ARCA_ESTATE, "repository not opened for writing");
	int rc;
	if (size <= REPO_BLOB_MAX) {
		uint8_t *buf = malloc(size + 1);
		if (buf == NULL)
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		size_t got;
		/* read one byte more than expected to notice growth */
		rc = read_full(fd, buf, (size_t)size + 1, what, &got, err);
		if (rc == 0 && got != size)
			rc = arca_err_set(err, ARCA_EFORMAT, "%s changed size while being read (%llu -> %zu bytes)",
					  what, (unsigned long long)size, got);
		if (rc == 0) {
			*type_r = OBJ_BLOB;
			rc = put_obj(r, w, lock, prep, OBJ_BLOB, buf, got, id_r, err);
		}
		free(buf);
		return rc;
	}
	/* Large: stream through a window of REPO_CHUNK_MAX bytes. */
	uint8_t *win = malloc(REPO_CHUNK_MAX);
	struct abuf list = ABUF_INIT;
	if (win == NULL) {
		free(win);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	size_t have = 0;
	uint64_t total = 0;
	bool eof = false;
	rc = abuf_add(&list, "\x01", 1); /* chunklist format version */
	while (rc == 0) {
		if (!eof && have < REPO_CHUNK_MAX) {
			size_t got;
			rc = read_full(fd, win + have, REPO_CHUNK_MAX - have, what, &got, err);
			if (rc)
				break;
			if (got < REPO_CHUNK_MAX - have)
				eof = true;
			have += got;
		}
		if (have == 0)
			break;
		size_t cut = eof && have <= REPO_CHUNK_MIN ? have : chunk_cut(r, win, have);
		uint8_t cid[ARCA_ID_LEN];
		rc = put_obj(r, w, lock, prep, OBJ_CHUNK, win, cut, cid, err);
		if (rc)
			break;
		rc = abuf_add(&list, cid, ARCA_ID_LEN);
		rc = rc ? rc : abuf_add_varint(&list, cut);
		if (rc) {
			arca_err_set(err, rc, "out of memory");
			break;
		}
		total += cut;
		memmove(win, win + cut, have - cut);
		have -= cut;
		if (total > size)
			break;
	}
	if (rc == 0 && total != size)
		rc = arca_err_set(err, ARCA_EFORMAT, "%s changed size while being read (%llu -> %llu bytes)",
				  what, (unsigned long long)size, (unsigned long long)total);
	if (rc == 0 && list.len > ARCA_OBJECT_MAX)
		rc = arca_err_set(err, ARCA_ELIMIT, "%s is too large", what);
	if (rc == 0) {
		*type_r = OBJ_CHUNKLIST;
		rc = put_obj(r, w, lock, prep, OBJ_CHUNKLIST, list.data, list.len, id_r, err);
	}
	free(win);
	abuf_release(&list);
	return rc;
}

int repo_put_content(struct repo *r, const void *data, size_t len, uint8_t *type_r,
		     uint8_t id_r[ARCA_ID_LEN], struct arca_err *err)
{
	if (r->ik == NULL)
		return arca_err_set(err, ARCA_ESTATE, "repository not opened for writing");
	if (len <= REPO_BLOB_MAX) {
		*type_r = OBJ_BLOB;
		return repo_put(r, OBJ_BLOB, data, len, id_r, NULL, err);
	}
	/* The same cuts as repo_put_stream (its window holds up to
	 * REPO_CHUNK_MAX bytes of what remains), so the same ids. */
	const uint8_t *p = data;
	struct abuf list = ABUF_INIT;
	int rc = abuf_add(&list, "\x01", 1); /* chunklist format version */
	size_t pos = 0;
	while (rc == 0 && pos < len) {
		size_t have = len - pos < REPO_CHUNK_MAX ? len - pos : REPO_CHUNK_MAX;
		size_t cut = chunk_cut(r, p + pos, have);
		uint8_t cid[ARCA_ID_LEN];
		rc = repo_put(r, OBJ_CHUNK, p + pos, cut, cid, NULL, err);
		if (rc)
			break;
		rc = abuf_add(&list, cid, ARCA_ID_LEN);
		rc = rc ? rc : abuf_add_varint(&list, cut);
		if (rc)
			arca_err_set(err, rc, "out of memory");
		pos += cut;
	}
	if (rc == 0 && list.len > ARCA_OBJECT_MAX)
		rc = arca_err_set(err, ARCA_ELIMIT, "message of %zu bytes is too large", len);
	if (rc == 0) {
		*type_r = OBJ_CHUNKLIST;
		rc = repo_put(r, OBJ_CHUNKLIST, list.data, list.len, id_r, NULL, err);
	}
	abuf_release(&list);
	return rc;
}

/*
 * The ingest trusts a `file` entry without looking its content up in `obj`
 * (docs/format/index.md).  Indexes written before 2026-11-29 could hold
 * entries naming objects of a pack that failed (a put's flush failed, and a
 * later commit of the same run committed the cache); once per index, such
 * entries are dropped here, so their messages are read and stored again.
 */
#define FILE_AUDIT_KEY "filecache-trusted"

struct audit {
	struct idx_txn *t;
	struct abuf drop;       /* [u32 klen][key]... */
	int rc;
};

static int audit_one(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *ctx)
{
	struct audit *a = ctx;
	/* ingest entries only: not the pull cache ("pull1:") nor folder records ("\0F\0") */
	if (vlen != 53 || (klen >= 6 && memcmp(key, "pull1:", 6) == 0) ||
	    (klen >= 3 && memcmp(key, "\0F\0", 3) == 0))
		return 0;
	struct idx_obj o;
	if (idx_obj_get(a->t, val + 21, &o) == 0)
		return 0;
	if (abuf_add_u32(&a->drop, (uint32_t)klen) != 0 || abuf_add(&a->drop, key, klen) != 0)
		return a->rc = ARCA_ENOMEM;
	return 0;
}

static int file_cache_audit(struct repo *r)
{
	r->file_audited = true;
	(void)seal_wait(r, NULL);
	struct arca_err err = { 0 };
	struct idx_txn *t;
	if (idx_begin(r->ix, true, &t, &err) != 0)
		return ARCA_EIO;
	struct abuf v = ABUF_INIT;
	int rc = idx_meta_get(t, FILE_AUDIT_KEY, &v);
	bool done = rc == 0 && v.len == 1 && v.data[0] == '1';
	abuf_release(&v);
	if (done) {
		idx_abort(t);
		r->file_trusted = true;
		return 0;
	}
	struct audit a = { .t = t, .drop = ABUF_INIT };
	rc = idx_cache_foreach(t, NULL, 0, audit_one, &a);
	rc = rc ? rc : a.rc;
	for (size_t off = 0; rc == 0 && off + 4 <= a.drop.len;) {
		uint32_t kl = get_u32le(a.drop.data + off);
		rc = idx_cache_del(t, a.drop.data + off + 4, kl);
		off += 4 + (size_t)kl;
	}
	rc = rc ? rc : idx_meta_put(t, FILE_AUDIT_KEY, "1", 1);
	abuf_release(&a.drop);
	if (rc) {
		idx_abort(t);
		return rc;
	}
	if (idx_commit(t, &err) != 0)
		return ARCA_EIO;
	r->file_trusted = true;
	return 0;
}

void repo_file_cache_check(struct repo *r)
{
	if (!r->file_audited)
		(void)file_cache_audit(r);   /* failed: entries are checked one by one */
}

int repo_file_cache_get_w(struct repo *r, struct repo_worker *w, const void *key, size_t klen,
			  struct idx_file *f)
{
	struct idx_txn **txn = w ? &w->rtxn : &r->rtxn;
	if (idx_read_begin(r->ix, txn, NULL) != 0)
		return ARCA_EIO;
	int rc = idx_file_get(*txn, key, klen, f);
	idx_read_end(*txn);
	/* not checked yet (or the check failed): each entry is */
	if (rc == 0 && !r->file_trusted && !repo_indexed_w(r, w, f->content_id))
		rc = ARCA_ENOENT;
	return rc;
}

int repo_file_cache_add(struct repo *r, const void *key, size_t klen,
			const struct idx_file *f)
{
	if (r->cache_count == r->cache_cap) {
		size_t cap = r->cache_cap ? r->cache_cap * 2 : 1024;
		struct cache_rec *c = realloc(r->cache, cap * sizeof(*c));
		if (c == NULL)
			return ARCA_ENOMEM;
		r->cache = c;
		r->cache_cap = cap;
	}
	struct cache_rec *c = &r->cache[r->cache_count];
	c->off = r->file_keys.len;
	c->klen = klen;
	c->f = *f;
	int rc = abuf_add(&r->file_keys, key, klen);
	if (rc)
		return rc;
	r->cache_count++;
	return 0;
}

int repo_cache_get(struct repo *r, const void *key, size_t klen, struct abuf *out)
{
	return repo_cache_get_w(r, NULL, key, klen, out);
}

int repo_cache_get_w(struct repo *r, struct repo_worker *w, const void *key, size_t klen,
		     struct abuf *out)
{
	struct idx_txn **txn = w ? &w->rtxn : &r->rtxn;
	if (idx_read_begin(r->ix, txn, NULL) != 0)
		return ARCA_EIO;
	int rc = idx_cache_get(*txn, key, klen, out);
	idx_read_end(*txn);
	return rc;
}

int repo_cache_add(struct repo *r, const void *key, size_t klen, const void *val, size_t vlen)
{
	int rc = abuf_add_u32(&r->raw_cache, (uint32_t)klen);
	rc = rc ? rc : abuf_add_u32(&r->raw_cache, (uint32_t)vlen);
	rc = rc ? rc : abuf_add(&r->raw_cache, key, klen);
	rc = rc ? rc : abuf_add(&r->raw_cache, val, vlen);
	return rc;
}

void snap_info_release(struct snap_info *s)
{
	free(s->account);
	free(s->source);
	s->account = s->source = NULL;
}

int snap_info_encode(const struct snap_info *s, struct abuf *out)
{
	abuf_reset(out);
	/* the same limits snap_info_decode applies: never log what can't be read */
	if (strlen(s->account) > 1024 || strlen(s->source) > 256)
		return ARCA_ELIMIT;
	int rc = abuf_add_u8(out, 1); /* payload version */
	rc = rc ? rc : abuf_add(out, s->root, ARCA_ID_LEN);
	rc = rc ? rc : abuf_add_u64(out, s->time_ns);
	rc = rc ? rc : abuf_add_str(out, s->account);
	rc = rc ? rc : abuf_add_str(out, s->source);
	rc = rc ? rc : abuf_add_varint(out, s->messages);
	rc = rc ? rc : abuf_add_varint(out, s->bytes);
	rc = rc ? rc : abuf_add_varint(out, s->folders);
	return rc;
}

int snap_info_decode(const uint8_t *p, size_t len, struct snap_info *s)
{
	memset(s, 0, sizeof(*s));
	struct adec d;
	adec_init(&d, p, len);
	if (adec_u8(&d) != 1)
		return ARCA_EVERSION;
	adec_fixed(&d, s->root, ARCA_ID_LEN);
	s->time_ns = adec_u64(&d);
	s->account = adec_strdup(&d, 1024);
	s->source = adec_strdup(&d, 256);
	s->messages = adec_varint(&d);
	s->bytes = adec_varint(&d);
	s->folders = adec_varint(&d);
	if (adec_finish(&d) != 0 || s->account == NULL || s->source == NULL) {
		snap_info_release(s);
		return ARCA_EFORMAT;
	}
	return 0;
}

int repo_stage_snapshot(struct repo *r, const struct snap_info *s, struct arca_err *err)
{
	if (!repo_has_object(r, s->root))
		return arca_err_set(err, ARCA_ESTATE, "snapshot root is not stored");
	struct abuf p = ABUF_INIT;
	int rc = snap_info_encode(s, &p);
	struct snap_info check;
	if (rc == 0 && snap_info_decode(p.data, p.len, &check) == 0)
		snap_info_release(&check);   /* a record the log's readers accept */
	else if (rc == 0)
		rc = ARCA_ELIMIT;
	if (rc == 0 && r->nstaged == r->staged_cap) {
		size_t cap = r->staged_cap ? r->staged_cap * 2 : 16;
		struct abuf *v = realloc(r->staged, cap * sizeof(*v));
		if (v == NULL)
			rc = ARCA_ENOMEM;
		else {
			r->staged = v;
			r->staged_cap = cap;
		}
	}
	if (rc) {
		abuf_release(&p);
		return arca_err_set(err, rc, rc == ARCA_ELIMIT ? "account name %.64s... is too long" : "out of memory",
				    s->account);
	}
	r->staged[r->nstaged++] = p;
	return 0;
}

size_t repo_staged_count(const struct repo *r)
{
	return r->nstaged;
}

int repo_commit_staged(struct repo *r,
		       void (*done)(void *ctx, const struct snap_info *s), void *ctx,
		       struct arca_err *err)
{
	if (r->nstaged == 0 && r->cache_count == 0 && r->raw_cache.len == 0)
		return 0;
	/* the packs first: every object a snapshot names is logged before it */
	struct arca_err ferr = { 0 };
	int rc = flush_packs(r, &ferr);
	if (rc == 0 && r->pack_lost) {
		/* lost earlier in the run */
		rc = ARCA_EIO;
		arca_err_set(&ferr, rc, "%s", r->lost_msg);
	}
	if (rc) {
		bool told = r->lost_told;
		r->pack_lost = false;
		r->lost_told = false;
		r->lost_msg[0] = '\0';
		/* Objects were lost with the failed pack: nothing staged may be
		 * committed (it could name them), nor any cache entry. */
		size_t lost = r->nstaged;
		for (size_t i = 0; i < r->nstaged; i++)
			abuf_release(&r->staged[i]);
		r->nstaged = 0;
		r->cache_count = 0;
		abuf_reset(&r->file_keys);
		abuf_reset(&r->raw_cache);
		if (lost == 0 && told)
			return rc;   /* the put or flush that failed returned the cause */
		if (lost == 0)
			return arca_err_set(err, rc, "%s", ferr.msg);
		return arca_err_set(err, rc, "%zu snapshot(s) of this run since the last commit were not saved: %s",
				    lost, ferr.msg);
	}
	struct idx_txn *t;
	rc = idx_begin(r->ix, true, &t, err);
	if (rc)
		return rc;
	uint64_t *seqs = calloc(r->nstaged ? r->nstaged : 1, sizeof(uint64_t));
	if (seqs == NULL)
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	/* One index transaction for the whole batch: a few fsyncs for many
	 * accounts instead of a few per account. */
	for (size_t i = 0; i < r->nstaged && rc == 0; i++)
		rc = log_append_txn(r, t, MLOG_SNAPSHOT, r->staged[i].data, r->staged[i].len,
				    &seqs[i], err);
	for (size_t i = 0; i < r->cache_count && rc == 0; i++) {
		rc = idx_file_put(t, r->file_keys.data + r->cache[i].off, r->cache[i].klen,
				  &r->cache[i].f);
		if (rc)
			arca_err_set(err, rc, "index: cannot record the ingest cache");
	}
	for (size_t off = 0; off + 8 <= r->raw_cache.len && rc == 0;) {
		uint32_t kl = get_u32le(r->raw_cache.data + off), vl = get_u32le(r->raw_cache.data + off + 4);
		const uint8_t *k = r->raw_cache.data + off + 8;
		rc = idx_cache_put(t, k, kl, k + kl, vl);
		if (rc)
			arca_err_set(err, rc, "index: cannot record the ingest cache");
		off += 8 + (size_t)kl + vl;
	}
	if (rc) {
		idx_abort(t);
		free(seqs);
		return rc;
	}
	rc = idx_commit(t, err);
	for (size_t i = 0; i < r->nstaged; i++) {
		struct snap_info si;
		if (rc == 0 && done != NULL && snap_info_decode(r->staged[i].data, r->staged[i].len, &si) == 0) {
			si.seq = seqs[i];
			done(ctx, &si);
			snap_info_release(&si);
		}
		abuf_release(&r->staged[i]);
	}
	r->nstaged = 0;
	r->cache_count = 0;
	abuf_reset(&r->file_keys);
	abuf_reset(&r->raw_cache);
	free(seqs);
	return rc;
}

static void note_seq(void *ctx, const struct snap_info *s)
{
	*(uint64_t *)ctx = s->seq;
}

int repo_commit_snapshot(struct repo *r, struct snap_info *s, struct arca_err *err)
{
	int rc = repo_stage_snapshot(r, s, err);
	return rc ? rc : repo_commit_staged(r, note_seq, &s->seq, err);
}

struct snaplist {
	struct snap_info *v;
	size_t n, cap;
	int rc;
};

static int collect_snap(uint64_t seq, const uint8_t *payload, size_t len, void *ctx)
{
	struct snaplist *l = ctx;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct snap_info *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL)
			return l->rc = ARCA_ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	if (snap_info_decode(payload, len, &l->v[l->n]) != 0)
		return l->rc = ARCA_ECORRUPT;
	l->v[l->n++].seq = seq;
	return 0;
}

int repo_snapshots(struct repo *r, struct snap_info **list_r, size_t *count_r,
		   struct arca_err *err)
{
	struct idx_txn *t;
	int rc = idx_begin(r->ix, false, &t, err);
	if (rc)
		return rc;
	struct snaplist l = { 0 };
	rc = idx_snap_foreach(t, collect_snap, &l);
	idx_abort(t);
	if (rc) {
		snap_infos_free(l.v, l.n);
		return arca_err_set(err, rc, "index: cannot list snapshots");
	}
	*list_r = l.v;
	*count_r = l.n;
	return 0;
}

void snap_infos_free(struct snap_info *list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		snap_info_release(&list[i]);
	free(list);
}

/* ---- reading ---- */

struct dict_ids {
	uint8_t (*ids)[ARCA_ID_LEN];
	size_t n, cap;
};

static int collect_dict(uint32_t dict_id, const uint8_t id[ARCA_ID_LEN], void *ctx)
{
	struct dict_ids *d = ctx;
	(void)dict_id;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		void *v = realloc(d->ids, cap * ARCA_ID_LEN);
		if (v == NULL)
			return ARCA_ENOMEM;
		d->ids = v;
		d->cap = cap;
	}
	memcpy(d->ids[d->n++], id, ARCA_ID_LEN);
	return 0;
}

/* Readers register every dictionary of the repository: there are few (one
 * per large ingest run) and any object may need one. */
static int load_dicts(struct repo *r, struct arca_err *err)
{
	struct dict_ids d = { 0 };
	struct idx_txn *t;
	int rc = idx_begin(r->ix, false, &t, err);
	if (rc)
		return rc;
	rc = idx_dict_foreach(t, collect_dict, &d);
	idx_abort(t);
	if (rc)
		rc = arca_err_set(err, rc, "index: cannot list dictionaries");
	struct abuf b = ABUF_INIT;
	for (size_t i = 0; i < d.n && rc == 0; i++) {
		rc = repo_get(r, d.ids[i], OBJ_DICT, &b, err);
		if (rc == 0 && zdict_register(b.data, b.len) != 0) {
			char hex[2 * ARCA_ID_LEN + 1];
			hex_encode(hex, d.ids[i], ARCA_ID_LEN);
			rc = arca_err_set(err, ARCA_ECORRUPT, "dictionary %s is not a zstd dictionary", hex);
		}
	}
	abuf_release(&b);
	free(d.ids);
	return rc;
}

int repo_set_restore_key(struct repo *r, struct arca_restore_key *rk,
			 struct arca_err *err)
{
	if (memcmp(rk->repo_id, r->pub.repo_id, ARCA_REPO_ID_LEN) != 0 ||
	    memcmp(rk->box_pk, r->pub.box_pk, ARCA_BOX_PK_LEN) != 0) {
		acrypto_restore_key_free(rk);
		return arca_err_set(err, ARCA_EKEY, "this restore key belongs to another repository");
	}
	acrypto_restore_key_free(r->rk);
	r->rk = rk;
	struct arca_ingest_keys *ik = acrypto_ingest_keys_alloc();
	uint8_t *secrets = sodium_malloc(32 + ARCA_SIGN_SK_LEN);
	int rc = 0;
	if (ik == NULL || secrets == NULL) {
		rc = arca_err_set(err, ARCA_ENOMEM, "cannot allocate secure memory");
	} else if (acrypto_seal_open(rk, r->sealed_secrets, CONFIG_SEALED_LEN, secrets) != 0) {
		rc = arca_err_set(err, ARCA_ECORRUPT, "%s/config: sealed secrets do not open with the restore key", r->path);
	} else {
		memcpy(ik->id_key, secrets, 32);
		memcpy(ik->sign_sk, secrets + 32, ARCA_SIGN_SK_LEN);
		ik->id_alg = r->id_alg;
		uint8_t pk[ARCA_SIGN_PK_LEN];
		crypto_sign_ed25519_sk_to_pk(pk, ik->sign_sk);
		if (memcmp(pk, r->pub.sign_pk, ARCA_SIGN_PK_LEN) != 0)
			rc = arca_err_set(err, ARCA_ECORRUPT, "%s/config: the sealed signing key does not match the public one", r->path);
		else if (r->ik != NULL && sodium_memcmp(ik->id_key, r->ik->id_key, 32) != 0)
			rc = arca_err_set(err, ARCA_ECORRUPT, "keys/ingest.key does not match the config");
		if (rc == 0 && r->ik == NULL) {
			r->ik = ik;
			ik = NULL;
			gear_init(r);
		}
	}
	acrypto_ingest_keys_free(ik);
	sodium_free(secrets);
	if (rc == 0)
		rc = load_dicts(r, err);
	if (rc) {
		acrypto_restore_key_free(r->rk);
		r->rk = NULL;
	}
	return rc;
}

int repo_get(struct repo *r, const uint8_t id[ARCA_ID_LEN], uint8_t type,
	     struct abuf *out, struct arca_err *err)
{
	char hex[2 * ARCA_ID_LEN + 1];
	hex_encode(hex, id, ARCA_ID_LEN);
	if (r->rk == NULL)
		return arca_err_set(err, ARCA_EKEY, "reading objects needs the restore key");
	int rc = idx_read_begin(r->ix, &r->rtxn, err);
	if (rc)
		return rc;
	struct idx_obj o;
	struct idx_pack p;
	rc = idx_obj_get(r->rtxn, id, &o);
	if (rc == 0)
		rc = idx_pack_get(r->rtxn, o.pack, &p);
	idx_read_end(r->rtxn);
	if (rc == ARCA_ENOENT)
		return arca_err_set(err, ARCA_ENOENT, "object %s is not in the repository", hex);
	if (rc)
		return arca_err_set(err, rc, "index: cannot look up object %s", hex);
	if (o.type != type)
		return arca_err_set(err, ARCA_ECORRUPT, "object %s has type %u, expected %u", hex, o.type, type);
	char name[80];
	pack_name(o.pack, name);
	if (!r->key_valid || memcmp(r->key_pack, o.pack, ARCA_ID_LEN) != 0) {
		r->key_valid = false;
		if (acrypto_seal_open(r->rk, p.sealed_key, ARCA_SEALED_KEY_LEN, r->key) != 0)
			return arca_err_set(err, ARCA_EKEY, "%s: the pack key does not open with this restore key", name);
		memcpy(r->key_pack, o.pack, ARCA_ID_LEN);
		r->key_valid = true;
	}
	struct pack_entry e = { .type = o.type, .comp = o.comp, .stored_len = o.stored_len,
				.offset = o.offset, .raw_len = o.raw_len };
	memcpy(e.id, id, ARCA_ID_LEN);
	return pack_read_object(r->be, name, p.cipher, r->key, &e, r->ik, out, err);
}

int repo_get_stream(struct repo *r, uint8_t type, const uint8_t id[ARCA_ID_LEN],
		    int fd, const char *what, uint64_t *size_r, struct arca_err *err)
{
	struct abuf b = ABUF_INIT, chunk = ABUF_INIT;
	int rc = repo_get(r, id, type, &b, err);
	uint64_t total = 0;
	if (rc == 0 && type == OBJ_BLOB) {
		rc = fs_write_all(fd, b.data, b.len, what, err);
		total = b.len;
	} else if (rc == 0 && type == OBJ_CHUNKLIST) {
		struct adec d;
		adec_init(&d, b.data, b.len);
		if (adec_u8(&d) != 1)
			rc = arca_err_set(err, ARCA_ECORRUPT, "chunk list of %s: unknown version", what);
		while (rc == 0 && adec_left(&d) > 0) {
			const uint8_t *cid = adec_raw(&d, ARCA_ID_LEN);
			uint64_t len = adec_varint(&d);
			if (d.failed) {
				rc = arca_err_set(err, ARCA_ECORRUPT, "chunk list of %s is malformed", what);
				break;
			}
			rc = repo_get(r, cid, OBJ_CHUNK, &chunk, err);
			if (rc == 0 && chunk.len != len)
				rc = arca_err_set(err, ARCA_ECORRUPT, "chunk of %s has the wrong length", what);
			if (rc == 0)
				rc = fs_write_all(fd, chunk.data, chunk.len, what, err);
			total += len;
		}
	} else if (rc == 0) {
		rc = arca_err_set(err, ARCA_EINVAL, "not a content type: %u", type);
	}
	abuf_release(&b);
	abuf_release(&chunk);
	if (rc == 0 && size_r)
		*size_r = total;
	return rc;
}
