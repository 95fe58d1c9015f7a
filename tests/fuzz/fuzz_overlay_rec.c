/* A flag overlay record's plaintext (lib/overlay.c): a decoded record
 * encodes to the very same bytes (the format has one spelling), and what
 * the encoder accepts decodes again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "overlay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct overlay_rec r;
	if (overlay_rec_decode(data, size, &r) != 0)
		return 0;
	struct abuf b = ABUF_INIT;
	if (overlay_rec_encode(&r, &b) != 0 || b.len != size || memcmp(b.data, data, size) != 0)
		abort();
	struct overlay_rec again;
	if (overlay_rec_decode(b.data, b.len, &again) != 0 || again.n != r.n || again.nkw != r.nkw)
		abort();
	overlay_rec_release(&again);
	overlay_rec_release(&r);
	abuf_release(&b);
	return 0;
}
