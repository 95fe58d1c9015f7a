#include "compress.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#define ZDICT_STATIC_LINKING_ONLY
#include <zdict.h>
#include <zstd.h>

#include "banned.h"

struct compressor {
	ZSTD_CCtx *cctx;
	int level;
};

struct zdict {
	uint32_t id;
	ZSTD_CDict *cdict;   /* NULL in the reader's registry */
	ZSTD_DDict *ddict;
};

/* The reader's registry: few dictionaries (one per large ingest run), so a
 * small array searched linearly is enough.  Not thread-safe: readers are
 * single-threaded per process. */
static struct zdict *registry;
static size_t registry_n, registry_cap;

static const struct zdict *registry_find(uint32_t id)
{
	for (size_t i = 0; i < registry_n; i++)
		if (registry[i].id == id)
			return &registry[i];
	return NULL;
}

bool zdict_registered(uint32_t dict_id)
{
	return registry_find(dict_id) != NULL;
}

int zdict_register(const void *bytes, size_t len)
{
	uint32_t id = ZDICT_getDictID(bytes, len);
	if (id == 0 || len > ZDICT_MAX_BYTES)
		return ARCA_ECORRUPT;
	if (registry_find(id) != NULL)
		return 0;
	if (registry_n == registry_cap) {
		size_t cap = registry_cap ? registry_cap * 2 : 8;
		struct zdict *v = realloc(registry, cap * sizeof(*v));
		if (v == NULL)
			return ARCA_ENOMEM;
		registry = v;
		registry_cap = cap;
	}
	ZSTD_DDict *dd = ZSTD_createDDict(bytes, len);
	if (dd == NULL)
		return ARCA_ECORRUPT;
	registry[registry_n++] = (struct zdict){ .id = id, .ddict = dd };
	return 0;
}

void zdict_registry_clear(void)
{
	for (size_t i = 0; i < registry_n; i++)
		ZSTD_freeDDict(registry[i].ddict);
	free(registry);
	registry = NULL;
	registry_n = registry_cap = 0;
}

uint32_t zdict_frame_id(const void *in, size_t len)
{
	return ZSTD_getDictID_fromFrame(in, len);
}

int zdict_train(const void *samples, const size_t *sizes, unsigned count,
		uint32_t dict_id, int level, struct abuf *out)
{
	abuf_reset(out);
	int rc = abuf_reserve(out, ZDICT_MAX_BYTES);
	if (rc)
		return rc;
	/* fastCover with fixed parameters: a second, not the many seconds of
	 * the parameter search ZDICT_trainFromBuffer does. */
	ZDICT_fastCover_params_t p;
	memset(&p, 0, sizeof(p));
	p.k = 200;
	p.d = 8;
	p.f = 20;
	p.accel = 4;
	p.zParams.compressionLevel = level;
	p.zParams.dictID = dict_id;
	size_t n = ZDICT_trainFromBuffer_fastCover(out->data, ZDICT_MAX_BYTES, samples, sizes,
						   count, p);
	if (ZDICT_isError(n))
		return ARCA_EFORMAT;   /* too few or too uniform samples */
	out->len = n;
	return 0;
}

struct zdict *zdict_new(const void *bytes, size_t len, int level)
{
	struct zdict *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->id = ZDICT_getDictID(bytes, len);
	d->cdict = ZSTD_createCDict(bytes, len, level);
	d->ddict = ZSTD_createDDict(bytes, len);
	if (d->id == 0 || d->cdict == NULL || d->ddict == NULL) {
		zdict_free(d);
		return NULL;
	}
	return d;
}

void zdict_free(struct zdict *d)
{
	if (d == NULL)
		return;
	ZSTD_freeCDict(d->cdict);
	ZSTD_freeDDict(d->ddict);
	free(d);
}

uint32_t zdict_id(const struct zdict *d)
{
	return d->id;
}

struct compressor *compressor_new(int level)
{
	struct compressor *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->cctx = ZSTD_createCCtx();
	if (c->cctx == NULL) {
		free(c);
		return NULL;
	}
	c->level = level;
	return c;
}

void compressor_free(struct compressor *c)
{
	if (c == NULL)
		return;
	ZSTD_freeCCtx(c->cctx);
	free(c);
}

int compressor_run(struct compressor *c, const struct zdict *dict, const void *in,
		   size_t len, struct abuf *out, uint8_t *comp_r)
{
	abuf_reset(out);
	size_t bound = ZSTD_compressBound(len);
	int rc = abuf_reserve(out, bound > len ? bound : len);
	if (rc)
		return rc;
	size_t n = dict != NULL && dict->cdict != NULL
		? ZSTD_compress_usingCDict(c->cctx, out->data, out->cap, in, len, dict->cdict)
		: ZSTD_compressCCtx(c->cctx, out->data, out->cap, in, len, c->level);
	if (!ZSTD_isError(n) && n < len) {
		out->len = n;
		*comp_r = dict != NULL && dict->cdict != NULL ? ARCA_COMP_ZSTD_DICT : ARCA_COMP_ZSTD;
		return 0;
	}
	if (len)
		memcpy(out->data, in, len);
	out->len = len;
	*comp_r = ARCA_COMP_NONE;
	return 0;
}

/* One decompression context per thread, kept for the thread's life:
 * creating one per object (what ZSTD_decompress does) cost 8% of a restore's
 * CPU time in its allocation and clearing. */
static pthread_key_t dctx_key;
static pthread_once_t dctx_once = PTHREAD_ONCE_INIT;

static void dctx_free(void *p)
{
	ZSTD_freeDCtx(p);
}

static void dctx_key_init(void)
{
	(void)pthread_key_create(&dctx_key, dctx_free);
}

static ZSTD_DCtx *thread_dctx(void)
{
	pthread_once(&dctx_once, dctx_key_init);
	ZSTD_DCtx *dc = pthread_getspecific(dctx_key);
	if (dc == NULL) {
		dc = ZSTD_createDCtx();
		if (dc != NULL && pthread_setspecific(dctx_key, dc) != 0) {
			ZSTD_freeDCtx(dc);
			dc = NULL;
		}
	}
	return dc;
}

int decompress_object(uint8_t comp, const void *in, size_t len,
		      uint64_t raw_len, struct abuf *out, struct arca_err *err)
{
	abuf_reset(out);
	if (raw_len > ARCA_OBJECT_MAX)
		return arca_err_set(err, ARCA_ECORRUPT, "object claims %llu bytes, over the limit",
				    (unsigned long long)raw_len);
	int rc = abuf_reserve(out, raw_len ? raw_len : 1);
	if (rc)
		return arca_err_set(err, rc, "out of memory");
	switch (comp) {
	case ARCA_COMP_NONE:
		if (len != raw_len)
			return arca_err_set(err, ARCA_ECORRUPT, "stored length %zu != %llu",
					    len, (unsigned long long)raw_len);
		if (len)
			memcpy(out->data, in, len);
		out->len = len;
		return 0;
	case ARCA_COMP_ZSTD:
	case ARCA_COMP_ZSTD_DICT: {
		unsigned long long fsz = ZSTD_getFrameContentSize(in, len);
		if (fsz != raw_len)
			return arca_err_set(err, ARCA_ECORRUPT,
					    "zstd frame size does not match the recorded size");
		uint32_t id = ZSTD_getDictID_fromFrame(in, len);
		if ((comp == ARCA_COMP_ZSTD) != (id == 0))
			return arca_err_set(err, ARCA_ECORRUPT, "zstd frame and compression byte disagree on a dictionary");
		const struct zdict *zd = NULL;
		if (id != 0 && (zd = registry_find(id)) == NULL)
			return arca_err_set(err, ARCA_ENOENT, "zstd dictionary %08x is not loaded", id);
		ZSTD_DCtx *dc = thread_dctx();
		if (dc == NULL)
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		size_t n = zd != NULL
			? ZSTD_decompress_usingDDict(dc, out->data, raw_len, in, len, zd->ddict)
			: ZSTD_decompressDCtx(dc, out->data, raw_len, in, len);
		if (ZSTD_isError(n) || n != raw_len)
			return arca_err_set(err, ARCA_ECORRUPT, "zstd: %s",
					    ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short output");
		out->len = n;
		return 0;
	}
	}
	return arca_err_set(err, ARCA_EVERSION, "unknown compression %u", comp);
}
