/*
 * mail_private.h - helpers shared by lib/mail's parsers; not a public API.
 */
#ifndef ARCA_MAIL_PRIVATE_H
#define ARCA_MAIL_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Next newline-terminated line of [*pos, end): sets *line_r and *len_r (without the
 * newline) and advances *pos.  Returns 1 for a line, 0 at the end of input,
 * -1 for a last line without newline (truncated file), a line longer than
 * max, or a NUL or CR byte in it.
 */
int mail_next_line(const uint8_t **pos, const uint8_t *end, size_t max,
		   const char **line_r, size_t *len_r);

/* A valid Maildir base name of n bytes: 1..MAILDIR_NAME_MAX bytes, no '/',
 * ':', NUL or '\n', not starting with '.'. */
bool mail_base_valid(const char *s, size_t n);

/* Decimal u32 of exactly n bytes (1..10 digits, no sign); false otherwise. */
bool mail_parse_u32(const char *s, size_t n, uint32_t *v_r);

/* Strict UTF-8 check of n bytes (no overlong, surrogates, > U+10FFFF, NUL). */
bool mail_utf8_valid(const char *s, size_t n);

/* strndup that returns NULL on ENOMEM. */
char *mail_strndup(const char *s, size_t n);

#endif
