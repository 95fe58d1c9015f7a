/*
 * idx.h - the local index (LMDB): a cache, rebuildable from the log and the
 * packs' plaintext trailers, that holds no message content.
 *
 * Tables (docs/format/index.md):
 *   obj   object id -> where it is (pack, offset, sizes, type)
 *   pack  pack hash -> size, cipher, sealed key (saves reading headers)
 *   snap  log seq (big-endian) -> snapshot log payload
 *   file  ingest cache: (account, folder, file base) -> size, mtime, content
 *   meta  "logstate" -> the log state this index has taken in
 * LMDB allows one write transaction at a time across processes; Arca holds it
 * while appending to the log, which serializes log writers for free.
 */
#ifndef ARCA_IDX_H
#define ARCA_IDX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "buf.h"
#include "crypto.h"

struct idx;
struct idx_txn;

struct idx_obj {
	uint8_t pack[ARCA_ID_LEN];
	uint64_t offset;
	uint32_t stored_len;
	uint64_t raw_len;
	uint8_t type;
	uint8_t comp;
};

struct idx_pack {
	uint64_t size;
	uint8_t cipher;
	uint8_t sealed_key[ARCA_SEALED_KEY_LEN];
};

/* Ingest cache record of one Maildir file. */
struct idx_file {
	uint64_t size;
	int64_t mtime_sec;
	int32_t mtime_nsec;
	uint8_t content_type;          /* OBJ_BLOB or OBJ_CHUNKLIST */
	uint8_t content_id[ARCA_ID_LEN];
};

int idx_open(const char *dir, struct idx **ix_r, struct arca_err *err);
void idx_close(struct idx *ix);

int idx_begin(struct idx *ix, bool write, struct idx_txn **t_r, struct arca_err *err);
int idx_commit(struct idx_txn *t, struct arca_err *err);
void idx_abort(struct idx_txn *t);

/*
 * Cheap repeated reads: a read transaction kept per thread and renewed for
 * each lookup (LMDB's reset/renew keeps the reader slot, so no lock is taken;
 * a fresh mdb_txn_begin per lookup serializes threads on the reader table).
 * *cache starts NULL; idx_read_end after each use; idx_read_free at the end.
 */
int idx_read_begin(struct idx *ix, struct idx_txn **cache, struct arca_err *err);
void idx_read_end(struct idx_txn *t);
void idx_read_free(struct idx_txn *t);

/* Gets return 0, ARCA_ENOENT, or an error. */
int idx_obj_get(struct idx_txn *t, const uint8_t id[ARCA_ID_LEN], struct idx_obj *o);
int idx_obj_put(struct idx_txn *t, const uint8_t id[ARCA_ID_LEN], const struct idx_obj *o);
int idx_pack_get(struct idx_txn *t, const uint8_t hash[ARCA_ID_LEN], struct idx_pack *p);
int idx_pack_put(struct idx_txn *t, const uint8_t hash[ARCA_ID_LEN], const struct idx_pack *p);
int idx_meta_get(struct idx_txn *t, const char *key, struct abuf *out);
int idx_meta_put(struct idx_txn *t, const char *key, const void *val, size_t len);
int idx_snap_put(struct idx_txn *t, uint64_t seq, const void *payload, size_t len);
/* Calls fn for every snapshot in log order; fn returning non-zero stops. */
int idx_snap_foreach(struct idx_txn *t,
		     int (*fn)(uint64_t seq, const uint8_t *payload, size_t len, void *ctx),
		     void *ctx);
int idx_file_get(struct idx_txn *t, const void *key, size_t klen, struct idx_file *f);
int idx_file_put(struct idx_txn *t, const void *key, size_t klen, const struct idx_file *f);

/* Raw values in the ingest cache table (folder records, any length). */
int idx_cache_get(struct idx_txn *t, const void *key, size_t klen, struct abuf *out);
int idx_cache_put(struct idx_txn *t, const void *key, size_t klen, const void *val, size_t vlen);
/* Removes a record of `file` (absent: nothing to do).  Write transaction. */
int idx_cache_del(struct idx_txn *t, const void *key, size_t klen);
/* Every cache record whose key starts with prefix, in key order. */
int idx_cache_foreach(struct idx_txn *t, const void *prefix, size_t plen,
		      int (*fn)(const uint8_t *key, size_t klen, const uint8_t *val,
				size_t vlen, void *ctx),
		      void *ctx);

/* Dictionaries: zstd dictionary id -> the object holding it. */
int idx_dict_put(struct idx_txn *t, uint32_t dict_id, const uint8_t id[ARCA_ID_LEN]);
int idx_dict_get(struct idx_txn *t, uint32_t dict_id, uint8_t id_r[ARCA_ID_LEN]);
int idx_dict_foreach(struct idx_txn *t,
		     int (*fn)(uint32_t dict_id, const uint8_t id[ARCA_ID_LEN], void *ctx),
		     void *ctx);

/* Counts for status output. */
size_t idx_obj_count(struct idx_txn *t);

/* Journal records (docs/format/journal.md): key = account, NUL, time and
 * position; value = the record's plaintext form.  foreach visits keys
 * starting with prefix (all when plen is 0) in key order; fn returning
 * non-zero stops and is returned. */
int idx_jrnl_put(struct idx_txn *t, const void *key, size_t klen, const void *val, size_t vlen);
int idx_jrnl_foreach(struct idx_txn *t, const void *prefix, size_t plen,
		     int (*fn)(const uint8_t *key, size_t klen, const uint8_t *val,
			       size_t vlen, void *ctx),
		     void *ctx);

#endif
