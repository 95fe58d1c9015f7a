/*
 * imapd_mime.h - what IMAP FETCH derives from a message's bytes (RFC 3501
 * 6.4.5, 7.4.2): BODYSTRUCTURE, BODY, ENVELOPE, and the bytes of
 * BODY[section].  Parsing is libetpan's MIME parser; this file only maps its
 * tree to IMAP's forms.  Messages are the served bytes (CRLF line ends).
 *
 * Hostile input: a message is whatever a sender wrote.  Nesting deeper than
 * IMAPD_MIME_DEPTH_MAX is served as an opaque part; nothing here fails on a
 * malformed message except for lack of memory (a message that can't be
 * parsed is one text/plain part, as Dovecot does).
 */
#ifndef ARCA_IMAPD_MIME_H
#define ARCA_IMAPD_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define IMAPD_MIME_DEPTH_MAX 32       /* also the most part numbers in a section */
#define IMAPD_SECTION_FIELDS_MAX 256  /* names in HEADER.FIELDS (...) */

enum imapd_section_kind {
	IMAPD_SECTION_ALL = 0,        /* BODY[] or BODY[1.2]: the whole part */
	IMAPD_SECTION_HEADER,         /* BODY[HEADER], BODY[1.HEADER] (message/rfc822 part) */
	IMAPD_SECTION_HEADER_FIELDS,
	IMAPD_SECTION_HEADER_FIELDS_NOT,
	IMAPD_SECTION_TEXT,
	IMAPD_SECTION_MIME,           /* only with part numbers */
};

/* A parsed BODY[...] section (imapd_parse.c fills it). */
struct imapd_section {
	uint32_t part[IMAPD_MIME_DEPTH_MAX];  /* 1-based part numbers */
	size_t nparts;
	enum imapd_section_kind kind;
	char **fields;                /* HEADER.FIELDS names, as given */
	size_t nfields;
};

struct imapd_mime;

/* Parse msg (not copied: it must outlive *m_r).  0 or ARCA_ENOMEM. */
int imapd_mime_parse(const char *msg, size_t len, struct imapd_mime **m_r);
void imapd_mime_free(struct imapd_mime *m);

/* Append the parenthesized BODYSTRUCTURE (extended) or BODY (not) form. */
int imapd_mime_bodystructure(const struct imapd_mime *m, bool extended, struct abuf *out);
/* Append the parenthesized ENVELOPE. */
int imapd_mime_envelope(const struct imapd_mime *m, struct abuf *out);
/* Append the bytes of a section (before any <partial> cut).  A part that
 * doesn't exist gives empty bytes (RFC 3501: NIL/""), not an error. */
int imapd_mime_section(const struct imapd_mime *m, const struct imapd_section *s,
		       struct abuf *out);

#endif
