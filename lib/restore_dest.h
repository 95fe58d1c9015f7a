/*
 * restore_dest.h - where a restore of many accounts puts each one: the
 * expansion of a directory pattern (`--maildir /srv/mail/%d/%n/Maildir`,
 * `--pattern`, `--sieve-home`) for an account, and the check, before
 * anything is written, that no two accounts end up in one directory.
 */
#ifndef ARCA_RESTORE_DEST_H
#define ARCA_RESTORE_DEST_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* PATTERN with %u (whole address), %n (local part) and %d (domain)
 * replaced for one account; out NUL-terminated.  ARCA_EINVAL when the
 * account can't be a directory name (empty, ".", "..", holding '/' or NUL,
 * in any of its parts). */
int restore_expand(const char *pattern, const char *account, struct abuf *out);

/* Does a pattern name a directory per account (holds %u, or %n)? */
bool restore_pattern_ok(const char *pattern);

/*
 * The accounts that can't be restored where the patterns put them:
 *   - two accounts whose Maildirs (maildir_pattern) are one directory
 *     (`/srv/%n` for a@x and a@y; "//" and a trailing '/' don't count);
 *   - an account whose Maildir is inside another's (an account without a
 *     domain makes `/srv/%d/%n` "/srv//bob");
 *   - with stage_suffix (may be NULL): an account whose Maildir is another's
 *     Maildir followed by the suffix, the name of that one's staging
 *     directory, or inside it;
 *   - with home_pattern (may be NULL): two accounts with one Sieve home.
 * Both accounts of each such pair get refused_r[i] set and a line on
 * stderr (prog: ...).  Accounts whose names can't be expanded are left to
 * the caller (restore_expand's error).  Returns how many are refused, or
 * -1 when out of memory.
 */
long restore_dest_conflicts(const char *prog, const char *const *accounts, size_t n,
			    const char *maildir_pattern, const char *stage_suffix,
			    const char *home_pattern, bool *refused_r);

#endif
