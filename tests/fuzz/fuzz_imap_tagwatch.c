/*
 * Fuzz the tagged-status watcher (lib/imap/imap_conn.c): whatever the
 * server sends, it must not read out of bounds, and feeding the bytes in
 * any split must give the same result as feeding them at once (libetpan
 * hands us the stream in arbitrary pieces), the literal guard included.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	/* the first byte chooses the piece size */
	size_t piece = (size_t)data[0] % 17 + 1;
	data++;
	size--;
	struct imap_tagwatch whole, split;
	imap_tagwatch_init(&whole);
	imap_tagwatch_init(&split);
	imap_tagwatch_feed(&whole, data, size);
	for (size_t i = 0; i < size; i += piece)
		imap_tagwatch_feed(&split, data + i, size - i < piece ? size - i : piece);
	if (whole.last != split.last || strcmp(whole.last_text, split.last_text) != 0 ||
	    whole.literal_left != split.literal_left || whole.oversize != split.oversize ||
	    (whole.refused == NULL) != (split.refused == NULL) ||
	    (whole.refused && strcmp(whole.refused, split.refused) != 0))
		abort();
	/* refused exactly when a literal over the limit was seen, or for a reason */
	if (whole.oversize > IMAP_LITERAL_MAX ? whole.refused == NULL : whole.oversize != 0)
		abort();
	if (whole.last < IMAP_TAG_NONE || whole.last > IMAP_TAG_BAD ||
	    strlen(whole.last_text) >= sizeof(whole.last_text))
		abort();
	return 0;
}
