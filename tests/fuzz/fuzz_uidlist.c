/* dovecot-uidlist: parse; a parsed list formats to a file that parses to
 * the same list, and formatting is then a fixed point. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "maildir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct uidlist a, b;
	if (uidlist_parse(data, size, &a, NULL) != 0) {
		uidlist_release(&a);
		return 0;
	}
	for (size_t i = 0; i < a.count; i++) {
		const struct uidlist_rec *r = uidlist_find_base(&a, a.recs[i].base);
		if (r == NULL || r->uid != a.recs[i].uid)
			abort();
	}
	struct abuf f1 = ABUF_INIT, f2 = ABUF_INIT;
	if (uidlist_format(&a, &f1) != 0)
		abort();
	if (uidlist_parse(f1.data, f1.len, &b, NULL) != 0)
		abort();
	if (b.version != 3 || b.uidvalidity != a.uidvalidity ||
	    b.nextuid != uidlist_next_uid(&a) || strcmp(b.guid, a.guid) != 0 ||
	    strcmp(b.header_extra, a.header_extra) != 0 || b.count != a.count)
		abort();
	for (size_t i = 0; i < a.count; i++)
		if (a.recs[i].uid != b.recs[i].uid || strcmp(a.recs[i].base, b.recs[i].base) ||
		    strcmp(a.recs[i].ext, b.recs[i].ext) || strcmp(a.recs[i].info, b.recs[i].info))
			abort();
	if (uidlist_format(&b, &f2) != 0 || f1.len != f2.len ||
	    memcmp(f1.data, f2.data, f1.len) != 0)
		abort();
	abuf_release(&f1);
	abuf_release(&f2);
	uidlist_release(&a);
	uidlist_release(&b);
	return 0;
}
