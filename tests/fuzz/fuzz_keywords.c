/* dovecot-keywords: parse, format, parse again gives the same table. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "maildir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct maildir_keywords a, b;
	if (keywords_parse(data, size, &a, NULL) != 0)
		return 0;
	struct abuf f = ABUF_INIT;
	if (keywords_format(&a, &f) != 0 || keywords_parse(f.data, f.len, &b, NULL) != 0)
		abort();
	for (int i = 0; i < MAILDIR_KEYWORDS_MAX; i++) {
		if ((a.names[i] == NULL) != (b.names[i] == NULL))
			abort();
		if (a.names[i] != NULL) {
			if (strcmp(a.names[i], b.names[i]) != 0 ||
			    keywords_index(&a, b.names[i], false) != i)
				abort();
		}
	}
	(void)keywords_index(&b, "$Fuzz", true);
	abuf_release(&f);
	keywords_release(&a);
	keywords_release(&b);
	return 0;
}
