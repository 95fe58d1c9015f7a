/*
 * sieve_names.h - the names a restored Sieve script may take.  A restore
 * never writes over a script the account has under the same name with
 * other bytes (made since the attack): the snapshot's then goes in as
 * NAME-restored, or NAME-restored-2 ... NAME-restored-9 when those are
 * taken too, the first that is free or already holds the same bytes.
 */
#ifndef ARCA_SIEVE_NAMES_H
#define ARCA_SIEVE_NAMES_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define SIEVE_RESTORED_SUFFIX "-restored"
#define SIEVE_NAME_TRIES 10     /* k = 0 (the name itself) .. 9 */

/* Candidate k for base into out: k 0 base, 1 base-restored, else
 * base-restored-k.  false when it does not fit. */
static inline bool sieve_restored_name(const char *base, unsigned k, char *out, size_t cap)
{
	int n = k == 0 ? snprintf(out, cap, "%s", base)
		: k == 1 ? snprintf(out, cap, "%s%s", base, SIEVE_RESTORED_SUFFIX)
		: snprintf(out, cap, "%s%s-%u", base, SIEVE_RESTORED_SUFFIX, k);
	return n >= 0 && (size_t)n < cap;
}

#endif
