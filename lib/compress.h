/*
 * compress.h - zstd for stored objects.
 *
 * An object is stored compressed only when that makes it smaller; the pack
 * entry's `comp` byte says which (docs/format/pack.md).  Contexts are reused
 * across calls (one per thread: a struct compressor is not shared).
 */
#ifndef ARCA_COMPRESS_H
#define ARCA_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "buf.h"

enum arca_comp {
	ARCA_COMP_NONE = 0,
	ARCA_COMP_ZSTD = 1,
	ARCA_COMP_ZSTD_DICT = 2,    /* zstd with a trained dictionary (frame names its id) */
};

/* Largest object body Arca writes or accepts (raw); larger content is chunked. */
#define ARCA_OBJECT_MAX (16u << 20)

struct compressor;

struct compressor *compressor_new(int level);
void compressor_free(struct compressor *c);

/* out is reset; *comp_r says whether out holds zstd or the raw bytes.
 * With `dict` (may be NULL) the frame uses that dictionary. */
struct zdict;
int compressor_run(struct compressor *c, const struct zdict *dict, const void *in,
		   size_t len, struct abuf *out, uint8_t *comp_r);

/*
 * Dictionaries (docs/format/objects.md, "Dictionaries"): trained on a sample
 * of the messages of one ingest run, stored as an object, named in the log.
 * A struct zdict is immutable once made and may be shared by threads.
 */
#define ZDICT_MAX_BYTES (112u << 10)
#define ZDICT_SAMPLES 1000          /* messages a dictionary is trained on */
#define ZDICT_SAMPLE_MAX (64u << 10) /* larger messages are not sampled */
/* Train from samples (concatenated, with their sizes), under dict_id. */
int zdict_train(const void *samples, const size_t *sizes, unsigned count,
		uint32_t dict_id, int level, struct abuf *out);
/* Make a dictionary usable from its bytes (checks its id).  NULL on error. */
struct zdict *zdict_new(const void *bytes, size_t len, int level);
void zdict_free(struct zdict *d);
uint32_t zdict_id(const struct zdict *d);

/*
 * Readers find dictionaries by the id in each frame.  The registry is per
 * process; decompress_object fails with ARCA_ENOENT (and *dict_id_r set, if
 * given) when a frame names one that was not registered yet.
 */
int zdict_register(const void *bytes, size_t len);
bool zdict_registered(uint32_t dict_id);
void zdict_registry_clear(void);
/* The dictionary id a stored object's frame names, or 0. */
uint32_t zdict_frame_id(const void *in, size_t len);

/* Decode `in` (as stored with `comp`) into out, which must come to exactly
 * raw_len bytes (<= ARCA_OBJECT_MAX).  ARCA_ECORRUPT otherwise. */
int decompress_object(uint8_t comp, const void *in, size_t len,
		      uint64_t raw_len, struct abuf *out, struct arca_err *err);

#endif
