/* journal_addr_map on any string: a success maps back to itself, a
 * failure leaves an empty account; nothing is read past the NUL. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the first line is the journal domain, the rest the recipient */
	const uint8_t *nl = memchr(data, '\n', size);
	char jd[300] = "journal.invalid";
	if (nl != NULL && (size_t)(nl - data) < sizeof(jd)) {
		memcpy(jd, data, (size_t)(nl - data));
		jd[nl - data] = '\0';
		size -= (size_t)(nl - data) + 1;
		data = nl + 1;
	}
	char *rcpt = malloc(size + 1);
	if (rcpt == NULL)
		return 0;
	memcpy(rcpt, data, size);
	rcpt[size] = '\0';
	char acct[JOURNAL_ACCOUNT_MAX + 1], acct2[JOURNAL_ACCOUNT_MAX + 1];
	char again[2 * JOURNAL_ACCOUNT_MAX];
	enum journal_dir dir, dir2;
	struct arca_err err = { 0 };
	int rc = journal_addr_map(rcpt, jd, acct, sizeof(acct), &dir, &err);
	if (rc != 0) {
		if (acct[0] != '\0' || err.code != rc || err.msg[0] == '\0')
			abort();
	} else {
		const char *at = strrchr(acct, '@');
		if (at == NULL || strlen(acct) > JOURNAL_ACCOUNT_MAX)
			abort();
		for (const char *p = acct; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
		snprintf(again, sizeof(again), "%.*s=%s@%s%s", (int)(at - acct), acct,
			 at + 1, dir == JOURNAL_OUT ? "out." : "", jd);
		if (journal_addr_map(again, jd, acct2, sizeof(acct2), &dir2, NULL) != 0 ||
		    strcmp(acct, acct2) != 0 || dir != dir2)
			abort();
	}
	free(rcpt);
	return 0;
}
