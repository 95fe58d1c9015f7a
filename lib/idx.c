#include "idx.h"

#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statvfs.h>

#include "faultinject.h"
#include "fsutil.h"
#include "banned.h"

struct idx {
	MDB_env *env;
	char *dir;
	MDB_dbi obj, pack, snap, file, meta, dict, jrnl;
};

struct idx_txn {
	struct idx *ix;
	MDB_txn *txn;
};

#define OBJ_VAL_LEN (ARCA_ID_LEN + 8 + 4 + 8 + 1 + 1)
#define PACK_VAL_LEN (8 + 1 + ARCA_SEALED_KEY_LEN)
#define FILE_VAL_LEN (8 + 8 + 4 + 1 + ARCA_ID_LEN)

static int lmdb_err(struct arca_err *err, int rc, const char *what)
{
	int code = rc == ENOSPC || rc == MDB_MAP_FULL ? ARCA_ENOSPC
		 : rc == ENOMEM ? ARCA_ENOMEM : ARCA_EIO;
	return arca_err_set(err, code, "index: %s: %s", what, mdb_strerror(rc));
}

/* LMDB reports a short write on a full disk as EIO: say which it was. */
static int commit_err(struct idx *ix, struct arca_err *err, int rc)
{
	struct statvfs sv;
	if ((rc == EIO || rc == ENOSPC) && ix->dir != NULL && statvfs(ix->dir, &sv) == 0 &&
	    (uint64_t)sv.f_bavail * sv.f_frsize < (1u << 20))
		return arca_err_set(err, ARCA_ENOSPC, "index %s/data.mdb: commit: No space left on device",
				    ix->dir);
	return arca_err_set(err, rc == ENOSPC ? ARCA_ENOSPC : ARCA_EIO, "index %s/data.mdb: commit: %s",
			    ix->dir ? ix->dir : "", mdb_strerror(rc));
}

int idx_open(const char *dir, struct idx **ix_r, struct arca_err *err)
{
	int rc = fs_mkdirs(dir, 0700, err);
	if (rc)
		return rc;
	struct idx *ix = calloc(1, sizeof(*ix));
	if (ix == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	int mrc = mdb_env_create(&ix->env);
	if (mrc == 0)
		mrc = mdb_env_set_maxdbs(ix->env, 8);
	/* Sparse map: only what is used takes disk. 1 TiB of index is far
	 * beyond any repository we expect. */
	if (mrc == 0)
		mrc = mdb_env_set_mapsize(ix->env, (size_t)1 << 40);
	if (mrc == 0)
		mrc = mdb_env_set_maxreaders(ix->env, 256);
	/* NOTLS: read transactions are tied to our structs, not threads. */
	if (mrc == 0)
		mrc = mdb_env_open(ix->env, dir, MDB_NOTLS, 0600);
	if (mrc != 0) {
		lmdb_err(err, mrc, dir);
		if (ix->env)
			mdb_env_close(ix->env);
		free(ix);
		return err ? err->code : ARCA_EIO;
	}
	MDB_txn *txn;
	mrc = mdb_txn_begin(ix->env, NULL, 0, &txn);
	if (mrc == 0) {
		mrc = mdb_dbi_open(txn, "obj", MDB_CREATE, &ix->obj);
		mrc = mrc ? mrc : mdb_dbi_open(txn, "pack", MDB_CREATE, &ix->pack);
		mrc = mrc ? mrc : mdb_dbi_open(txn, "snap", MDB_CREATE, &ix->snap);
		mrc = mrc ? mrc : mdb_dbi_open(txn, "file", MDB_CREATE, &ix->file);
		mrc = mrc ? mrc : mdb_dbi_open(txn, "meta", MDB_CREATE, &ix->meta);
		mrc = mrc ? mrc : mdb_dbi_open(txn, "dict", MDB_CREATE, &ix->dict);
		mrc = mrc ? mrc : mdb_dbi_open(txn, "jrnl", MDB_CREATE, &ix->jrnl);
		if (mrc == 0)
			mrc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	if (mrc != 0) {
		int code = lmdb_err(err, mrc, dir);
		mdb_env_close(ix->env);
		free(ix);
		return code;
	}
	ix->dir = strdup(dir);
	*ix_r = ix;
	return 0;
}

void idx_close(struct idx *ix)
{
	if (ix == NULL)
		return;
	mdb_env_close(ix->env);
	free(ix->dir);
	free(ix);
}

int idx_begin(struct idx *ix, bool write, struct idx_txn **t_r, struct arca_err *err)
{
	struct idx_txn *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	t->ix = ix;
	int mrc = mdb_txn_begin(ix->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
	if (mrc != 0) {
		free(t);
		return lmdb_err(err, mrc, "begin transaction");
	}
	*t_r = t;
	return 0;
}

int idx_read_begin(struct idx *ix, struct idx_txn **cache, struct arca_err *err)
{
	if (*cache == NULL)
		return idx_begin(ix, false, cache, err);
	int mrc = mdb_txn_renew((*cache)->txn);
	return mrc ? lmdb_err(err, mrc, "renew read transaction") : 0;
}

void idx_read_end(struct idx_txn *t)
{
	if (t != NULL)
		mdb_txn_reset(t->txn);
}

void idx_read_free(struct idx_txn *t)
{
	idx_abort(t);   /* aborting a reset read transaction is allowed */
}

int idx_commit(struct idx_txn *t, struct arca_err *err)
{
	fault_crash_point();
	struct idx *ix = t->ix;
	int mrc = mdb_txn_commit(t->txn);
	free(t);
	if (mrc)
		return commit_err(ix, err, mrc);
	/* LMDB reads through a read-only map of the whole index: every page
	 * ever looked at counts in our resident size though the kernel's page
	 * cache holds it anyway.  Let go of them after each commit; pages are
	 * faulted back in when read (any reader's pointers stay valid). */
	MDB_envinfo info;
	MDB_stat st;
	if (mdb_env_info(ix->env, &info) == 0 && mdb_env_stat(ix->env, &st) == 0 &&
	    info.me_mapaddr != NULL)
		madvise(info.me_mapaddr, (size_t)(info.me_last_pgno + 1) * st.ms_psize, MADV_DONTNEED);
	return 0;
}

void idx_abort(struct idx_txn *t)
{
	if (t == NULL)
		return;
	mdb_txn_abort(t->txn);
	free(t);
}

static int get(struct idx_txn *t, MDB_dbi dbi, const void *k, size_t klen, MDB_val *v)
{
	MDB_val key = { klen, (void *)k };
	int mrc = mdb_get(t->txn, dbi, &key, v);
	if (mrc == MDB_NOTFOUND)
		return ARCA_ENOENT;
	return mrc ? ARCA_EIO : 0;
}

static int put(struct idx_txn *t, MDB_dbi dbi, const void *k, size_t klen,
	       const void *v, size_t vlen)
{
	MDB_val key = { klen, (void *)k }, val = { vlen, (void *)v };
	int mrc = mdb_put(t->txn, dbi, &key, &val, 0);
	if (mrc == MDB_MAP_FULL || mrc == ENOSPC)
		return ARCA_ENOSPC;
	return mrc ? ARCA_EIO : 0;
}

int idx_obj_get(struct idx_txn *t, const uint8_t id[ARCA_ID_LEN], struct idx_obj *o)
{
	MDB_val v;
	int rc = get(t, t->ix->obj, id, ARCA_ID_LEN, &v);
	if (rc)
		return rc;
	if (v.mv_size != OBJ_VAL_LEN)
		return ARCA_ECORRUPT;
	const uint8_t *p = v.mv_data;
	memcpy(o->pack, p, ARCA_ID_LEN);
	o->offset = get_u64le(p + 32);
	o->stored_len = get_u32le(p + 40);
	o->raw_len = get_u64le(p + 44);
	o->type = p[52];
	o->comp = p[53];
	return 0;
}

int idx_obj_put(struct idx_txn *t, const uint8_t id[ARCA_ID_LEN], const struct idx_obj *o)
{
	uint8_t p[OBJ_VAL_LEN];
	memcpy(p, o->pack, ARCA_ID_LEN);
	put_u64le(p + 32, o->offset);
	put_u32le(p + 40, o->stored_len);
	put_u64le(p + 44, o->raw_len);
	p[52] = o->type;
	p[53] = o->comp;
	return put(t, t->ix->obj, id, ARCA_ID_LEN, p, sizeof(p));
}

int idx_pack_get(struct idx_txn *t, const uint8_t hash[ARCA_ID_LEN], struct idx_pack *pk)
{
	MDB_val v;
	int rc = get(t, t->ix->pack, hash, ARCA_ID_LEN, &v);
	if (rc)
		return rc;
	if (v.mv_size != PACK_VAL_LEN)
		return ARCA_ECORRUPT;
	const uint8_t *p = v.mv_data;
	pk->size = get_u64le(p);
	pk->cipher = p[8];
	memcpy(pk->sealed_key, p + 9, ARCA_SEALED_KEY_LEN);
	return 0;
}

int idx_pack_put(struct idx_txn *t, const uint8_t hash[ARCA_ID_LEN], const struct idx_pack *pk)
{
	uint8_t p[PACK_VAL_LEN];
	put_u64le(p, pk->size);
	p[8] = pk->cipher;
	memcpy(p + 9, pk->sealed_key, ARCA_SEALED_KEY_LEN);
	return put(t, t->ix->pack, hash, ARCA_ID_LEN, p, sizeof(p));
}

int idx_meta_get(struct idx_txn *t, const char *key, struct abuf *out)
{
	MDB_val v;
	int rc = get(t, t->ix->meta, key, strlen(key), &v);
	if (rc)
		return rc;
	abuf_reset(out);
	return abuf_add(out, v.mv_data, v.mv_size);
}

int idx_meta_put(struct idx_txn *t, const char *key, const void *val, size_t len)
{
	return put(t, t->ix->meta, key, strlen(key), val, len);
}

int idx_snap_put(struct idx_txn *t, uint64_t seq, const void *payload, size_t len)
{
	uint8_t k[8];
	for (int i = 0; i < 8; i++)
		k[i] = (uint8_t)(seq >> (56 - 8 * i));   /* big-endian: sorted */
	return put(t, t->ix->snap, k, 8, payload, len);
}

int idx_snap_foreach(struct idx_txn *t,
		     int (*fn)(uint64_t seq, const uint8_t *payload, size_t len, void *ctx),
		     void *ctx)
{
	MDB_cursor *c;
	if (mdb_cursor_open(t->txn, t->ix->snap, &c) != 0)
		return ARCA_EIO;
	MDB_val k, v;
	int rc = 0;
	int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	while (mrc == 0 && rc == 0) {
		if (k.mv_size != 8) {
			rc = ARCA_ECORRUPT;
			break;
		}
		uint64_t seq = 0;
		for (int i = 0; i < 8; i++)
			seq = seq << 8 | ((const uint8_t *)k.mv_data)[i];
		rc = fn(seq, v.mv_data, v.mv_size, ctx);
		mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (rc == 0 && mrc != MDB_NOTFOUND)
		rc = ARCA_EIO;
	return rc;
}

int idx_file_get(struct idx_txn *t, const void *key, size_t klen, struct idx_file *f)
{
	MDB_val v;
	if (klen == 0 || klen > 511)
		return ARCA_ENOENT; /* LMDB's key limit; such files are re-read */
	int rc = get(t, t->ix->file, key, klen, &v);
	if (rc)
		return rc;
	if (v.mv_size != FILE_VAL_LEN)
		return ARCA_ECORRUPT;
	const uint8_t *p = v.mv_data;
	f->size = get_u64le(p);
	f->mtime_sec = (int64_t)get_u64le(p + 8);
	f->mtime_nsec = (int32_t)get_u32le(p + 16);
	f->content_type = p[20];
	memcpy(f->content_id, p + 21, ARCA_ID_LEN);
	return 0;
}

int idx_file_put(struct idx_txn *t, const void *key, size_t klen, const struct idx_file *f)
{
	if (klen == 0 || klen > 511)
		return 0;
	uint8_t p[FILE_VAL_LEN];
	put_u64le(p, f->size);
	put_u64le(p + 8, (uint64_t)f->mtime_sec);
	put_u32le(p + 16, (uint32_t)f->mtime_nsec);
	p[20] = f->content_type;
	memcpy(p + 21, f->content_id, ARCA_ID_LEN);
	return put(t, t->ix->file, key, klen, p, sizeof(p));
}

int idx_dict_put(struct idx_txn *t, uint32_t dict_id, const uint8_t id[ARCA_ID_LEN])
{
	uint8_t k[4] = { (uint8_t)(dict_id >> 24), (uint8_t)(dict_id >> 16),
			 (uint8_t)(dict_id >> 8), (uint8_t)dict_id };
	return put(t, t->ix->dict, k, 4, id, ARCA_ID_LEN);
}

int idx_dict_get(struct idx_txn *t, uint32_t dict_id, uint8_t id_r[ARCA_ID_LEN])
{
	uint8_t k[4] = { (uint8_t)(dict_id >> 24), (uint8_t)(dict_id >> 16),
			 (uint8_t)(dict_id >> 8), (uint8_t)dict_id };
	MDB_val v;
	int rc = get(t, t->ix->dict, k, 4, &v);
	if (rc)
		return rc;
	if (v.mv_size != ARCA_ID_LEN)
		return ARCA_ECORRUPT;
	memcpy(id_r, v.mv_data, ARCA_ID_LEN);
	return 0;
}

int idx_dict_foreach(struct idx_txn *t,
		     int (*fn)(uint32_t dict_id, const uint8_t id[ARCA_ID_LEN], void *ctx),
		     void *ctx)
{
	MDB_cursor *c;
	if (mdb_cursor_open(t->txn, t->ix->dict, &c) != 0)
		return ARCA_EIO;
	MDB_val k, v;
	int rc = 0;
	int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	while (mrc == 0 && rc == 0) {
		if (k.mv_size != 4 || v.mv_size != ARCA_ID_LEN) {
			rc = ARCA_ECORRUPT;
			break;
		}
		const uint8_t *p = k.mv_data;
		rc = fn((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3],
			v.mv_data, ctx);
		mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (rc == 0 && mrc != MDB_NOTFOUND)
		rc = ARCA_EIO;
	return rc;
}

int idx_cache_get(struct idx_txn *t, const void *key, size_t klen, struct abuf *out)
{
	if (klen == 0 || klen > 511)
		return ARCA_ENOENT;
	MDB_val v;
	int rc = get(t, t->ix->file, key, klen, &v);
	if (rc)
		return rc;
	abuf_reset(out);
	return abuf_add(out, v.mv_data, v.mv_size);
}

int idx_cache_put(struct idx_txn *t, const void *key, size_t klen, const void *val, size_t vlen)
{
	if (klen == 0 || klen > 511)
		return 0;   /* too long a name for LMDB: simply not cached */
	return put(t, t->ix->file, key, klen, val, vlen);
}

int idx_cache_del(struct idx_txn *t, const void *key, size_t klen)
{
	if (klen == 0 || klen > 511)
		return 0;
	MDB_val k = { .mv_size = klen, .mv_data = (void *)key };
	int mrc = mdb_del(t->txn, t->ix->file, &k, NULL);
	return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : ARCA_EIO;
}

size_t idx_obj_count(struct idx_txn *t)
{
	MDB_stat st;
	if (mdb_stat(t->txn, t->ix->obj, &st) != 0)
		return 0;
	return st.ms_entries;
}

int idx_jrnl_put(struct idx_txn *t, const void *key, size_t klen, const void *val, size_t vlen)
{
	if (klen == 0 || klen > 511)
		return ARCA_ELIMIT;
	return put(t, t->ix->jrnl, key, klen, val, vlen);
}

static int table_foreach(struct idx_txn *t, MDB_dbi dbi, const void *prefix, size_t plen,
		     int (*fn)(const uint8_t *key, size_t klen, const uint8_t *val,
			       size_t vlen, void *ctx),
		     void *ctx)
{
	MDB_cursor *c;
	if (mdb_cursor_open(t->txn, dbi, &c) != 0)
		return ARCA_EIO;
	MDB_val k = { .mv_size = plen, .mv_data = (void *)prefix }, v;
	int rc = 0;
	int mrc = mdb_cursor_get(c, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
	while (mrc == 0 && rc == 0) {
		if (plen > 0 && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0))
			break;
		rc = fn(k.mv_data, k.mv_size, v.mv_data, v.mv_size, ctx);
		mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = ARCA_EIO;
	return rc;
}

int idx_jrnl_foreach(struct idx_txn *t, const void *prefix, size_t plen,
		     int (*fn)(const uint8_t *key, size_t klen, const uint8_t *val,
			       size_t vlen, void *ctx),
		     void *ctx)
{
	return table_foreach(t, t->ix->jrnl, prefix, plen, fn, ctx);
}

int idx_cache_foreach(struct idx_txn *t, const void *prefix, size_t plen,
		      int (*fn)(const uint8_t *key, size_t klen, const uint8_t *val,
				size_t vlen, void *ctx),
		      void *ctx)
{
	return table_foreach(t, t->ix->file, prefix, plen, fn, ctx);
}
