/* Modified UTF-7: both directions are strict, so each round-trips exactly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "maildir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	struct abuf a = ABUF_INIT, b = ABUF_INIT;
	if (mutf7_to_utf8(s, &a) == 0) {
		if (utf8_to_mutf7((const char *)a.data, &b) != 0 ||
		    strcmp((const char *)b.data, s) != 0)
			abort();
	}
	if (utf8_to_mutf7(s, &a) == 0) {
		if (mutf7_to_utf8((const char *)a.data, &b) != 0 ||
		    strcmp((const char *)b.data, s) != 0)
			abort();
	}
	abuf_release(&a);
	abuf_release(&b);
	free(s);
	return 0;
}
