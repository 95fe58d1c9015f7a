/* Maildir file names: parse, and what parses formats back to the same. */
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
	uint64_t sz;
	(void)maildir_name_size(s, &sz);
	struct maildir_name n;
	if (maildir_name_parse(s, &n, NULL) == 0) {
		struct abuf b = ABUF_INIT;
		int rc = maildir_name_format(n.base, n.flags, n.keywords, &b);
		if (rc == 0) {
			struct maildir_name m;
			if (maildir_name_parse((const char *)b.data, &m, NULL) != 0 ||
			    strcmp(m.base, n.base) != 0 || m.flags != n.flags ||
			    m.keywords != n.keywords || !m.has_info)
				abort();
			maildir_name_release(&m);
		} else if (n.has_info || rc != ARCA_EINVAL) {
			abort(); /* only a name without info can grow past the limit */
		}
		abuf_release(&b);
		maildir_name_release(&n);
	}
	free(s);
	return 0;
}
