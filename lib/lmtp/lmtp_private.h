/*
 * lmtp_private.h - helpers shared by the lib/lmtp files; not for callers.
 */
#ifndef ARCA_LMTP_PRIVATE_H
#define ARCA_LMTP_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length (2..4) of the well-formed non-ASCII UTF-8 sequence at p (shortest
 * form, no surrogates, at most U+10FFFF), or 0 if there is none before end.
 * p[0] must be >= 0x80. */
size_t lmtp_utf8_len(const uint8_t *p, const uint8_t *end);

/* True if p[0..n) is valid UTF-8 without control characters (< 0x20, 0x7f). */
bool lmtp_text_ok(const uint8_t *p, size_t n);

/*
 * Domain checks, on p[0..n) with n <= LMTP_DOMAIN_MAX.
 * Host name: labels separated by single dots, none empty; a label holds
 * ASCII letters, digits, '-' and well-formed UTF-8.  strict: no '_', no '-'
 * at either end of a label, an ASCII-only label is 1..63 bytes, and the last
 * label is not all digits; otherwise '_' is allowed and only empty labels are
 * refused.
 * Address literal: "[" IPv4 "]", "[IPv6:" IPv6 "]" (tag case-insensitive)
 * checked with inet_pton, or, unless strict, "[" tag ":" 1*dcontent "]".
 */
bool lmtp_domain_ok(const char *p, size_t n, bool strict);

/* ASCII case-insensitive equality of a[0..n) and b[0..n). */
bool lmtp_ci_eq(const char *a, const char *b, size_t n);

#endif
