/*
 * Fuzz the journal's record parsers (docs/format/journal.md): the commit
 * marks of an MLOG_JOURNAL log entry (plaintext, anyone who can write a file
 * into the log directory controls them) and the envelope object.  An
 * accepted record or envelope must encode back to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)journal_marks_check(data, size);
	/* one record alone */
	struct adec d;
	adec_init(&d, data, size);
	struct journal_rec r;
	if (journal_rec_decode(&d, &r) == 0 && adec_finish(&d) == 0) {
		struct abuf b = ABUF_INIT;
		if (journal_rec_encode(&r, &b) != 0 || b.len != size || memcmp(b.data, data, size) != 0)
			abort();
		abuf_release(&b);
	}
	struct journal_envelope e;
	if (journal_envelope_decode(data, size, &e) == 0) {
		struct abuf b = ABUF_INIT;
		if (journal_envelope_encode(&e, &b) != 0 || b.len != size || memcmp(b.data, data, size) != 0)
			abort();
		abuf_release(&b);
		journal_envelope_release(&e);
	} else if (e.rcpts != NULL || e.client != NULL) {
		abort();   /* a refused envelope leaves nothing to free */
	}
	return 0;
}
