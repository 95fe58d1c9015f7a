/*
 * compress.h - zstd for stored objects.
 *
 * An object is stored compressed only when that makes it smaller; the pack
 * entry's `comp` byte says which (docs/format/pack.md).  Contexts are reused
 * across calls (one per thread: a struct compressor is not shared).
 */
#ifndef ARCA_COMPRESS_H
#define ARCA_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "buf.h"

enum arca_comp {
	ARCA_COMP_NONE = 0,
	ARCA_COMP_ZSTD = 1,
};

/* Largest object body Arca writes or accepts (raw); larger content is chunked. */
#define ARCA_OBJECT_MAX (16u << 20)

struct compressor;

struct compressor *compressor_new(int level);
void compressor_free(struct compressor *c);

/* out is reset; *comp_r says whether out holds zstd or the raw bytes. */
int compressor_run(struct compressor *c, const void *in, size_t len,
		   struct abuf *out, uint8_t *comp_r);

/* Decode `in` (as stored with `comp`) into out, which must come to exactly
 * raw_len bytes (<= ARCA_OBJECT_MAX).  ARCA_ECORRUPT otherwise. */
int decompress_object(uint8_t comp, const void *in, size_t len,
		      uint64_t raw_len, struct abuf *out, struct arca_err *err);

#endif
