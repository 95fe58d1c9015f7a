#include "compress.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "banned.h"

struct compressor {
	ZSTD_CCtx *cctx;
	int level;
};

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

int compressor_run(struct compressor *c, const void *in, size_t len,
		   struct abuf *out, uint8_t *comp_r)
{
	abuf_reset(out);
	size_t bound = ZSTD_compressBound(len);
	int rc = abuf_reserve(out, bound > len ? bound : len);
	if (rc)
		return rc;
	size_t n = ZSTD_compressCCtx(c->cctx, out->data, out->cap, in, len, c->level);
	if (!ZSTD_isError(n) && n < len) {
		out->len = n;
		*comp_r = ARCA_COMP_ZSTD;
		return 0;
	}
	if (len)
		memcpy(out->data, in, len);
	out->len = len;
	*comp_r = ARCA_COMP_NONE;
	return 0;
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
	case ARCA_COMP_ZSTD: {
		unsigned long long fsz = ZSTD_getFrameContentSize(in, len);
		if (fsz != raw_len)
			return arca_err_set(err, ARCA_ECORRUPT,
					    "zstd frame size does not match the recorded size");
		size_t n = ZSTD_decompress(out->data, raw_len, in, len);
		if (ZSTD_isError(n) || n != raw_len)
			return arca_err_set(err, ARCA_ECORRUPT, "zstd: %s",
					    ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short output");
		out->len = n;
		return 0;
	}
	}
	return arca_err_set(err, ARCA_EVERSION, "unknown compression %u", comp);
}
