/*
 * Fuzz snap_info_decode: the plaintext payload of a snapshot log entry
 * (docs/format/objects.md, "Snapshot log payload").  Anyone can write bytes
 * into a log entry's payload position, so this parser sees hostile input
 * before any key is used.  An accepted payload must encode back to exactly
 * the same bytes and decode again to the same values.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap_info s;
	if (snap_info_decode(data, size, &s) != 0) {
		if (s.account != NULL || s.source != NULL)
			abort();   /* a refused payload leaves nothing to free */
		return 0;
	}
	if (s.account == NULL || s.source == NULL)
		abort();
	struct abuf b = ABUF_INIT;
	if (snap_info_encode(&s, &b) != 0 || b.len != size || memcmp(b.data, data, size) != 0)
		abort();
	struct snap_info t;
	if (snap_info_decode(b.data, b.len, &t) != 0 || strcmp(s.account, t.account) != 0 ||
	    strcmp(s.source, t.source) != 0 || memcmp(s.root, t.root, ARCA_ID_LEN) != 0 ||
	    s.time_ns != t.time_ns || s.messages != t.messages || s.bytes != t.bytes ||
	    s.folders != t.folders)
		abort();
	snap_info_release(&t);
	snap_info_release(&s);
	abuf_release(&b);
	return 0;
}
