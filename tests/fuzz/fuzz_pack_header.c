/* Fuzz pack_parse_header: the fixed 112-byte header of a pack file. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size copy so ASan catches any read past the input */
	uint8_t *p = malloc(size ? size : 1);
	if (p == NULL)
		return 0;
	memcpy(p, data, size);
	struct pack_header hdr;
	struct arca_err err = { 0 };
	int rc = pack_parse_header(p, size, &hdr, &err);
	if (rc == 0) {
		/* what a successful parse promises */
		if (size < PACK_HEADER_LEN || hdr.version != PACK_VERSION ||
		    (hdr.cipher != ARCA_CIPHER_XCHACHA20POLY1305 &&
		     hdr.cipher != ARCA_CIPHER_AES256GCM) ||
		    memcmp(hdr.repo_id, p + 16, ARCA_REPO_ID_LEN) != 0 ||
		    memcmp(hdr.sealed_key, p + 32, ARCA_SEALED_KEY_LEN) != 0)
			abort();
	} else if (err.code != rc || err.msg[0] == '\0') {
		abort(); /* every failure explains itself */
	}
	free(p);
	return 0;
}
