/*
 * Fuzz the alarm payloads (lib/alarm.c, docs/alarms.md): alarm_decode and
 * alarm_clear_decode on the same input.  An accepted payload respects the
 * limits and encodes back to the input byte for byte (one encoding per
 * value); a rejected one leaves nothing allocated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alarm.h"
#include "buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_bytes(const struct abuf *b, const uint8_t *data, size_t size)
{
	if (b->len != size || (size && memcmp(b->data, data, size) != 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct alarm a;
	struct abuf b = ABUF_INIT;
	int rc = alarm_decode(data, size, &a);
	if (rc == 0) {
		if (a.kind == 0 || a.kind > ALARM_KIND_MAX || a.account == NULL || a.text == NULL ||
		    strlen(a.account) > SNAP_ACCOUNT_MAX || strlen(a.text) > ALARM_TEXT_MAX ||
		    a.nsuspects > ALARM_SUSPECTS_MAX || (a.nsuspects && a.suspects == NULL) ||
		    a.cleared || a.cleared_reason != NULL)
			abort();
		for (size_t i = 0; i < a.nsuspects; i++)
			if (a.suspects[i].account == NULL || strlen(a.suspects[i].account) > SNAP_ACCOUNT_MAX)
				abort();
		if (alarm_encode(&a, &b) != 0)
			abort();
		same_bytes(&b, data, size);
		alarm_release(&a);
	} else {
		if ((rc != ARCA_EFORMAT && rc != ARCA_EVERSION && rc != ARCA_ENOMEM) ||
		    a.account != NULL || a.text != NULL || a.suspects != NULL || a.nsuspects != 0)
			abort();
		if (rc == ARCA_EVERSION && (size == 0 || data[0] == 1))
			abort();
	}

	uint64_t seq = 0;
	char *reason = NULL;
	rc = alarm_clear_decode(data, size, &seq, &reason);
	if (rc == 0) {
		if (reason == NULL || strlen(reason) > ALARM_TEXT_MAX)
			abort();
		if (alarm_clear_encode(seq, reason, &b) != 0)
			abort();
		same_bytes(&b, data, size);
		free(reason);
	} else if (reason != NULL || (rc != ARCA_EFORMAT && rc != ARCA_EVERSION)) {
		abort();
	}
	abuf_release(&b);
	return 0;
}
