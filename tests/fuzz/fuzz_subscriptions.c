/* subscriptions: parse (first byte picks the old-format separator), format
 * the v2 file, parse again: the same names in the same order. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "maildir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	char sep = (data[0] & 1) ? '.' : '/';
	struct subscriptions a, b;
	if (subscriptions_parse_sep(data + 1, size - 1, sep, &a, NULL) != 0)
		return 0;
	struct abuf f = ABUF_INIT;
	if (subscriptions_format(&a, &f) != 0 ||
	    subscriptions_parse(f.data, f.len, &b, NULL) != 0 || a.count != b.count)
		abort();
	for (size_t i = 0; i < a.count; i++)
		if (strcmp(a.names[i], b.names[i]) != 0)
			abort();
	abuf_release(&f);
	subscriptions_release(&a);
	subscriptions_release(&b);
	return 0;
}
