/*
 * repo.h - an Arca repository: config, keys, packs, log and index together.
 *
 * On disk (local backend, docs/format/repository.md):
 *   REPO/config               write-once: public keys, repository id
 *   REPO/data/xx/<hash>.pack  write-once packs
 *   REPO/log/<...>/<seq>      write-once log entries
 *   REPO/keys/ingest.key      ingest secrets (vault host only, 0600)
 *   REPO/index/               LMDB cache, rebuildable from log + packs
 *   REPO/tmp/                 packs being written
 *
 * A repository opened for writing needs keys/ingest.key and never needs the
 * restore key: it can add objects and snapshots but not read them back.
 * Reading objects needs the restore key (repo_set_restore_key).
 * Ownership: a struct repo owns everything it points to.  Not thread-safe.
 */
#ifndef ARCA_REPO_H
#define ARCA_REPO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "buf.h"
#include "crypto.h"
#include "idx.h"
#include "mlog.h"

struct repo;

/* Wall-clock time in nanoseconds since the epoch (snapshot and log times). */
uint64_t arca_now_ns(void);
/* A monotonic clock in nanoseconds, for intervals. */
uint64_t arca_mono_ns(void);

#define CONFIG_MAGIC "ARCACONF"
#define CONFIG_VERSION 1
/* Messages up to this size are one object; larger ones are chunked. */
#define REPO_BLOB_MAX (1u << 20)
#define REPO_CHUNK_MIN (256u << 10)
#define REPO_CHUNK_AVG_BITS 20           /* ~1 MiB average chunk */
#define REPO_CHUNK_MAX (4u << 20)

struct repo_create_opts {
	const char *restore_key_path;   /* written, must not exist */
	const char *passphrase;
	bool fast_kdf;                  /* tests only */
	int id_alg;                     /* enum arca_id_alg; 0: the faster one here */
	int *id_alg_r;                  /* if set: receives the one chosen */
};

int repo_create(const char *path, const struct repo_create_opts *o,
		struct arca_err *err);

/* Parse a `config` file's bytes (docs/format/repository.md); for fuzzing and
 * tools.  Checks magic, version, length and the id algorithm. */
int repo_config_parse(const uint8_t *p, size_t len, struct arca_public_keys *pub_r,
		      struct arca_err *err);

enum repo_open_flags {
	REPO_OPEN_READ = 0,
	REPO_OPEN_WRITE = 1,    /* needs keys/ingest.key */
	REPO_OPEN_NOSYNC = 2,   /* don't read the log into the index (verify) */
};

int repo_open(const char *path, int flags, struct repo **r_r, struct arca_err *err);
/* Seals a pack still being written?  No: unsealed data is dropped; call
 * repo_flush or repo_commit_snapshot first. */
void repo_close(struct repo *r);

const struct arca_public_keys *repo_public_keys(const struct repo *r);
struct backend *repo_backend(struct repo *r);
struct idx *repo_index(struct repo *r);
const char *repo_path(const struct repo *r);
/* Keys held, or NULL: ingest keys (from keys/ingest.key or, once the restore
 * key is set, from the config) and the restore key. */
const struct arca_ingest_keys *repo_ingest_keys(const struct repo *r);
const struct arca_restore_key *repo_restore_key(const struct repo *r);
/* Entries in the log as far as the index has read it. */
uint64_t repo_log_count(const struct repo *r);
/* BLAKE2b-256 of the config file as read (log entry 0 records it). */
const uint8_t *repo_config_hash(const struct repo *r);

/* Warnings gathered while opening read-only (damage the read could work
 * around: a damaged log entry or pack), one per line; NULL if none. */
const char *repo_warnings(const struct repo *r);

/* A snapshot time for t_ns: t_ns, or one nanosecond after the last time
 * this handle answered if t_ns is not later, so snapshots stored through
 * one handle are in time order.  The caller's thread must own r. */
uint64_t repo_snapshot_time(struct repo *r, uint64_t t_ns);

/* Append an alarm or alarm-clear entry (alarm.h) and apply it to the index. */
int repo_log_append(struct repo *r, uint8_t kind, const void *payload, size_t len,
		    uint64_t *seq_r, struct arca_err *err);

/* Take in log entries written by others since we last looked. */
int repo_sync(struct repo *r, struct arca_err *err);

/* ---- writing ---- */

/* Store an object (deduplicated by its id). *new_r says whether it was new. */
int repo_put(struct repo *r, uint8_t type, const void *data, size_t len,
	     uint8_t id_r[ARCA_ID_LEN], bool *new_r, struct arca_err *err);

/* Store a message or file read from fd (size bytes, read sequentially, with
 * bounded memory): one BLOB up to REPO_BLOB_MAX, else content-defined chunks
 * and a CHUNKLIST.  *type_r gets OBJ_BLOB or OBJ_CHUNKLIST.  `what` names the
 * file in errors.  Fails with ARCA_EFORMAT if the file changed size. */
int repo_put_stream(struct repo *r, int fd, uint64_t size, const char *what,
		    uint8_t *type_r, uint8_t id_r[ARCA_ID_LEN], struct arca_err *err);

/*
 * Parallel ingest: workers compute ids and compress on their own
 * (repo_prepare is thread-safe: it reads only the keys and the index), then
 * hand the result to repo_put_prepared, which the caller serializes (one
 * thread at a time, e.g. under a mutex) together with every other repo_*
 * call.  Each worker thread has its own struct repo_worker.
 */
struct repo_worker;
struct repo_prepared {
	uint8_t id[ARCA_ID_LEN];
	uint8_t type;
	uint8_t comp;
	bool dup;               /* already in the index: nothing to store */
	uint64_t raw_len;
	struct abuf data;       /* stored form; owned, reused across calls */
};
struct repo_worker *repo_worker_new(struct repo *r);
void repo_worker_free(struct repo_worker *w);
/* Is the object in the index?  With a worker, its read transaction only (what
 * is in a pack not sealed yet is not seen: callers must only lose time by
 * that); without one, repo_has_object. */
bool repo_indexed_w(struct repo *r, struct repo_worker *w, const uint8_t id[ARCA_ID_LEN]);
int repo_prepare(struct repo *r, struct repo_worker *w, uint8_t type,
		 const void *data, size_t len, struct repo_prepared *p,
		 struct arca_err *err);
int repo_put_prepared(struct repo *r, const struct repo_prepared *p,
		      bool *new_r, struct arca_err *err);
void repo_prepared_release(struct repo_prepared *p);
/* repo_put_stream from a reader thread: reads, hashes and compresses
 * outside `lock`, stores under it. */
int repo_put_stream_mt(struct repo *r, struct repo_worker *w, pthread_mutex_t *lock,
		       int fd, uint64_t size, const char *what, uint8_t *type_r,
		       uint8_t id_r[ARCA_ID_LEN], struct arca_err *err);

/*
 * The zstd dictionary of this run (docs/format/objects.md): writers offer
 * small messages as samples (thread-safe); when repo_dict_offer returns true
 * the caller trains (repo_dict_build, thread-safe, outside any lock) and then
 * installs it (repo_dict_install, serialized like repo_put), after which
 * messages are compressed with it.  The dictionary lives only in memory on
 * the ingest host (it is made of message text) and in the repository
 * encrypted like any object.
 */
bool repo_dict_offer(struct repo *r, const void *data, size_t len);
int repo_dict_build(struct repo *r, struct abuf *dict_r);
int repo_dict_install(struct repo *r, const struct abuf *dict, struct arca_err *err);

/* Seal the pack being written, store it, record it in the log. */
int repo_flush(struct repo *r, struct arca_err *err);
/* A pack write, seal or flush failed since the last commit (so an EIO from a
 * put is the repository's, not the input's).  Under the writers' lock. */
bool repo_write_failed(const struct repo *r);

/*
 * Journal mode (arcad's store process, docs/format/journal.md): packs are
 * written in `dir` as journal segments and sealed only by
 * repo_flush_journal.  After objects are put, repo_commit_mark appends a
 * commit mark with `payload` and fdatasyncs: from then on those objects
 * survive a crash (repo_seal_segment finds them).  A failure poisons the
 * segment: call repo_journal_abandon (the file stays, for
 * repo_seal_segment) and never acknowledge what was not committed.
 */
int repo_set_journal_dir(struct repo *r, const char *dir, struct arca_err *err);
int repo_commit_mark(struct repo *r, const void *payload, size_t len, struct arca_err *err);
/* Seal the segment, store it, log it as MLOG_JOURNAL with `marks` (the
 * concatenated u32le length + payload of every mark written to it). */
int repo_flush_journal(struct repo *r, const struct abuf *marks, struct arca_err *err);
void repo_journal_abandon(struct repo *r);
/* Path of the segment being written, or NULL. */
const char *repo_journal_segment(const struct repo *r);
/* Bytes in the pack being written (0 if none). */
uint64_t repo_pack_size(const struct repo *r);
/* Recover a segment left by a crash or an abandoned write: keep what its
 * last valid commit mark covers, seal, store and log it; appends its marks
 * to *marks_r.  An empty segment is removed.  *dropped_r = bytes cut. */
int repo_seal_segment(struct repo *r, const char *path, struct abuf *marks_r,
		      uint64_t *dropped_r, struct arca_err *err);
/* Store a whole message held in memory: one BLOB up to REPO_BLOB_MAX, else
 * content-defined chunks and a CHUNKLIST (the same ids as repo_put_stream). */
int repo_put_content(struct repo *r, const void *data, size_t len, uint8_t *type_r,
		     uint8_t id_r[ARCA_ID_LEN], struct arca_err *err);

/* Ingest cache entries.  repo_file_cache_check is the once-per-index check
 * of the cache (docs/format/index.md, `file`): run it on r's owner thread
 * before repo_file_cache_get_w, which never runs it (until it has succeeded,
 * entries are looked up in `obj` one by one).  w: the calling thread's read
 * transaction (NULL: r's own, on its owner thread). */
void repo_file_cache_check(struct repo *r);
int repo_file_cache_get_w(struct repo *r, struct repo_worker *w, const void *key, size_t klen,
			  struct idx_file *f);
int repo_file_cache_add(struct repo *r, const void *key, size_t klen,
			const struct idx_file *f);

/* Raw ingest cache records (e.g. unchanged folders), recorded with the next
 * snapshot commit like repo_file_cache_add. */
int repo_cache_get(struct repo *r, const void *key, size_t klen, struct abuf *out);
/* The same, on a thread of its own: w's read transaction (w NULL: as above). */
int repo_cache_get_w(struct repo *r, struct repo_worker *w, const void *key, size_t klen,
		     struct abuf *out);
int repo_cache_add(struct repo *r, const void *key, size_t klen, const void *val, size_t vlen);

/* What a snapshot log entry says (the payload is plaintext: listing
 * snapshots needs no key). */
struct snap_info {
	uint64_t seq;
	uint8_t root[ARCA_ID_LEN];
	uint64_t time_ns;
	char *account;
	char *source;
	uint64_t messages;
	uint64_t bytes;
	uint64_t folders;
};
void snap_info_release(struct snap_info *s);
int snap_info_encode(const struct snap_info *s, struct abuf *out);
int snap_info_decode(const uint8_t *p, size_t len, struct snap_info *s);

/* Flush, then log the snapshot (root object already stored) and record the
 * pending ingest cache entries, atomically.  s->seq is set. */
int repo_commit_snapshot(struct repo *r, struct snap_info *s, struct arca_err *err);
/* The same in batches: stage snapshots (roots already stored), then commit
 * them all, with the pending ingest cache, in one index transaction.  `done`
 * (may be NULL) is called for each committed snapshot, seq set.  Nothing
 * staged is in the repository until the commit returns 0. */
int repo_stage_snapshot(struct repo *r, const struct snap_info *s, struct arca_err *err);
size_t repo_staged_count(const struct repo *r);
int repo_commit_staged(struct repo *r,
		       void (*done)(void *ctx, const struct snap_info *s), void *ctx,
		       struct arca_err *err);

/* Every snapshot, oldest first (array of count, caller frees with
 * snap_infos_free). */
int repo_snapshots(struct repo *r, struct snap_info **list_r, size_t *count_r,
		   struct arca_err *err);
void snap_infos_free(struct snap_info *list, size_t count);

/* ---- reading (needs the restore key) ---- */

/* Takes ownership of rk.  Also opens the ingest secrets sealed in the config,
 * so reads check every object's id. */
int repo_set_restore_key(struct repo *r, struct arca_restore_key *rk,
			 struct arca_err *err);
bool repo_has_object(struct repo *r, const uint8_t id[ARCA_ID_LEN]);
/* Read one object; its type must be `type`. */
int repo_get(struct repo *r, const uint8_t id[ARCA_ID_LEN], uint8_t type,
	     struct abuf *out, struct arca_err *err);
/* Write the content (BLOB or CHUNKLIST) to fd; *size_r gets its length. */
int repo_get_stream(struct repo *r, uint8_t type, const uint8_t id[ARCA_ID_LEN],
		    int fd, const char *what, uint64_t *size_r, struct arca_err *err);

/* Counters since open, for progress and the final line. */
struct repo_stats {
	uint64_t objects_new, objects_dup;
	uint64_t bytes_raw_new, bytes_stored_new;
	uint64_t packs;
};
const struct repo_stats *repo_stats(const struct repo *r);

#endif
