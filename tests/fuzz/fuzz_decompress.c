/*
 * Fuzz decompress_object: input = comp (1 byte), raw_len (8 bytes LE), then
 * the stored bytes.  Success must produce exactly raw_len bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "compress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 9)
		return 0;
	uint8_t comp = data[0];
	uint64_t raw_len = get_u64le(data + 1);
	size_t len = size - 9;
	uint8_t *p = malloc(len ? len : 1);
	if (p == NULL)
		return 0;
	memcpy(p, data + 9, len);
	struct abuf out = ABUF_INIT;
	struct arca_err err = { 0 };
	int rc = decompress_object(comp, p, len, raw_len, &out, &err);
	if (rc == 0) {
		if (out.len != raw_len || raw_len > ARCA_OBJECT_MAX ||
		    comp > ARCA_COMP_ZSTD_DICT || (comp == ARCA_COMP_NONE &&
					      (len != raw_len || (len && memcmp(out.data, p, len) != 0))))
			abort();
	} else if (err.code != rc || err.msg[0] == '\0') {
		abort();
	}
	abuf_release(&out);
	free(p);
	return 0;
}
