/*
 * Fuzz lib/imapd/imapd_mime.c: any bytes are a message a sender could
 * have written.  Each input is parsed and every form is produced
 * (BODYSTRUCTURE, BODY, ENVELOPE) with a few sections: the whole message,
 * HEADER, TEXT, HEADER.FIELDS (FROM TO SUBJECT), HEADER.FIELDS.NOT, and
 * part numbers 1, 1.MIME, 2.1, 1.2.HEADER, 2.TEXT, and one path of
 * IMAPD_MIME_DEPTH_MAX 1s.
 *
 * Checked: no crash, no leak, no undefined behaviour (ASan+UBSan); every
 * call returns 0 (nothing fails on a malformed message); each form is
 * balanced parentheses outside strings and literals, starts with "(" and
 * ends with ")"; a section is never longer than the message; BODY[] is the
 * message with NULs as 0x80.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "imapd_mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walks an IMAP form: quoted strings with \ escapes, literals {n}\r\n,
 * parentheses; aborts on anything unbalanced or truncated. */
static void check_form(const struct abuf *b)
{
	const uint8_t *p = b->data, *e = b->data + b->len;
	if (b->len < 2 || p[0] != '(' || e[-1] != ')')
		abort();
	long depth = 0;
	while (p < e) {
		if (*p == '"') {
			for (p++; p < e && *p != '"'; p++) {
				if (*p == '\\')
					p++;
				if (p < e && (*p == '\r' || *p == '\n' || *p == 0 || *p >= 0x80))
					abort();
			}
			if (p >= e)
				abort();
			p++;
		} else if (*p == '{') {
			size_t n = 0;
			for (p++; p < e && *p >= '0' && *p <= '9'; p++)
				n = n * 10 + (size_t)(*p - '0');
			if (e - p < 3 || p[0] != '}' || p[1] != '\r' || p[2] != '\n')
				abort();
			p += 3;
			if ((size_t)(e - p) < n || memchr(p, 0, n) != NULL)
				abort();
			p += n;
		} else {
			if (*p == '(')
				depth++;
			else if (*p == ')' && --depth < 0)
				abort();
			else if (*p == '\r' || *p == '\n' || *p == 0)
				abort();
			p++;
		}
	}
	if (depth != 0)
		abort();
}

static void section(const struct imapd_mime *m, size_t size, const uint32_t *parts,
		    size_t nparts, enum imapd_section_kind kind, char **fields, size_t nfields)
{
	struct imapd_section s;
	memset(&s, 0, sizeof(s));
	if (nparts > 0)
		memcpy(s.part, parts, nparts * sizeof(uint32_t));
	s.nparts = nparts;
	s.kind = kind;
	s.fields = fields;
	s.nfields = nfields;
	struct abuf b = ABUF_INIT;
	if (imapd_mime_section(m, &s, &b) != 0)
		abort();
	/* HEADER.FIELDS may add the final CRLF (and one per unterminated
	 * last field) */
	if (b.len > size + 4)
		abort();
	abuf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imapd_mime *m = NULL;
	if (imapd_mime_parse((const char *)data, size, &m) != 0)
		abort();
	struct abuf b = ABUF_INIT;
	if (imapd_mime_bodystructure(m, true, &b) != 0)
		abort();
	check_form(&b);
	abuf_reset(&b);
	if (imapd_mime_bodystructure(m, false, &b) != 0)
		abort();
	check_form(&b);
	abuf_reset(&b);
	if (imapd_mime_envelope(m, &b) != 0)
		abort();
	check_form(&b);
	abuf_reset(&b);

	/* BODY[]: the message, NUL as 0x80 */
	struct imapd_section all;
	memset(&all, 0, sizeof(all));
	if (imapd_mime_section(m, &all, &b) != 0 || b.len != size)
		abort();
	for (size_t i = 0; i < size; i++)
		if (b.data[i] != (data[i] ? data[i] : 0x80))
			abort();
	abuf_release(&b);

	char f1[] = "FROM", f2[] = "to", f3[] = "Subject", f4[] = "Content-Type";
	char *fields[] = { f1, f2, f3, f4 };
	static const uint32_t one[] = { 1 }, two_one[] = { 2, 1 }, one_two[] = { 1, 2 },
		two[] = { 2 };
	section(m, size, NULL, 0, IMAPD_SECTION_HEADER, NULL, 0);
	section(m, size, NULL, 0, IMAPD_SECTION_TEXT, NULL, 0);
	section(m, size, NULL, 0, IMAPD_SECTION_HEADER_FIELDS, fields, 4);
	section(m, size, NULL, 0, IMAPD_SECTION_HEADER_FIELDS_NOT, fields, 3);
	section(m, size, one, 1, IMAPD_SECTION_ALL, NULL, 0);
	section(m, size, one, 1, IMAPD_SECTION_MIME, NULL, 0);
	section(m, size, two_one, 2, IMAPD_SECTION_ALL, NULL, 0);
	section(m, size, one_two, 2, IMAPD_SECTION_HEADER, NULL, 0);
	section(m, size, two, 1, IMAPD_SECTION_TEXT, NULL, 0);
	uint32_t deep[IMAPD_MIME_DEPTH_MAX];
	for (size_t i = 0; i < IMAPD_MIME_DEPTH_MAX; i++)
		deep[i] = 1;
	section(m, size, deep, IMAPD_MIME_DEPTH_MAX, IMAPD_SECTION_MIME, NULL, 0);
	imapd_mime_free(m);
	return 0;
}
