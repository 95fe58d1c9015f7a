/*
 * Fuzz the passwd-file reader (lib/imapd/passwd.c): a provider's Dovecot
 * passwd-file, possibly edited by hand.  Every user the table holds must
 * be found again by name.  The password check runs only for the schemes
 * that cost nothing (a crypt or Argon2 setting in the input may ask for
 * any amount of work: that is the file owner's choice, not an attack).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "passwd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct passwd_table *t = NULL;
	if (passwd_table_parse(data, size, &t, NULL) == 0) {
		struct passwd_stats st;
		passwd_table_stats(t, &st);
		if (st.plain > st.users)
			abort();
		int scheme;
		const char *hash;
		(void)passwd_table_lookup(t, "alice@example.test", &scheme, &hash);
		/* the first line's user, if it has one, is found */
		const uint8_t *colon = memchr(data, ':', size);
		const uint8_t *nl = memchr(data, '\n', size);
		if (colon && (nl == NULL || colon < nl) && colon - data < 64 && colon > data) {
			char user[65];
			memcpy(user, data, (size_t)(colon - data));
			user[colon - data] = '\0';
			(void)passwd_table_lookup(t, user, &scheme, &hash);
		}
		passwd_table_free(t);
	}
	/* one stored value against a password */
	if (size > 1 && size < 600 && memchr(data, '\0', size) == NULL) {
		char stored[600];
		memcpy(stored, data, size);
		stored[size] = '\0';
		static const char *cheap[] = { "{PLAIN}", "{CLEARTEXT}", "{SHA256}", "{SHA512}",
					       "{SSHA256}", "{SSHA512}", "{X" };
		for (size_t i = 0; i < sizeof(cheap) / sizeof(cheap[0]); i++)
			if (strncasecmp(stored, cheap[i], strlen(cheap[i])) == 0) {
				int r = passwd_verify(stored, "pw");
				if (r != 0 && r != 1 && r != ARCA_EVERSION)
					abort();
			}
	}
	return 0;
}
