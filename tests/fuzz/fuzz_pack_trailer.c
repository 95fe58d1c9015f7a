/*
 * Fuzz pack_parse_trailer.  The input is treated as a whole pack file: the
 * trailer offset and length come from its footer, as pack_read_index reads
 * them; a second call takes the offset from the input's first 8 bytes and
 * the rest as the trailer, so any offset is tried.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "compress.h"
#include "pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Invariants of a trailer that parsed: contiguous entries, in bounds. */
static void check(const struct pack_entry *es, size_t n, uint64_t toff)
{
	uint64_t expect = PACK_HEADER_LEN;
	for (size_t i = 0; i < n; i++) {
		if (es[i].type == PACK_MARK_TYPE) {
			if (es[i].offset != expect || es[i].stored_len > PACK_MARK_MAX ||
			    es[i].comp != 0 || es[i].raw_len != es[i].stored_len)
				abort();
		} else if (es[i].offset != expect || es[i].stored_len < ARCA_AEAD_TAG_LEN ||
		    es[i].raw_len > ARCA_OBJECT_MAX || es[i].comp > ARCA_COMP_ZSTD_DICT ||
		    es[i].type < OBJ_BLOB || es[i].type > OBJ_TYPE_MAX)
			abort();
		expect += PACK_ENTRY_HEADER_LEN + (uint64_t)es[i].stored_len;
	}
	if (expect != toff)
		abort();
}

static void parse(const uint8_t *t, size_t tlen, uint64_t toff)
{
	uint8_t *p = malloc(tlen ? tlen : 1);
	if (p == NULL)
		return;
	memcpy(p, t, tlen);
	struct pack_entry *es = NULL;
	size_t n = 0;
	struct arca_err err = { 0 };
	int rc = pack_parse_trailer(p, tlen, toff, &es, &n, &err);
	if (rc == 0) {
		if (n != tlen / PACK_TRAILER_ENTRY_LEN)
			abort();
		check(es, n, toff);
		free(es);
	} else if (err.msg[0] == '\0') {
		abort();
	}
	free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size >= PACK_HEADER_LEN + PACK_FOOTER_LEN) {
		const uint8_t *f = data + size - PACK_FOOTER_LEN;
		uint64_t toff = get_u64le(f);
		uint32_t tlen = get_u32le(f + 8);
		uint64_t body = size - PACK_FOOTER_LEN;
		if (toff >= PACK_HEADER_LEN && toff <= body && tlen == body - toff)
			parse(data + toff, tlen, toff);
	}
	if (size >= 8)
		parse(data + 8, size - 8, get_u64le(data));
	return 0;
}
