/*
 * test_imapd_mime - BODYSTRUCTURE, BODY, ENVELOPE and BODY[section] of
 * hand-made messages (lib/imapd/imapd_mime.c), checked against exact
 * strings.  The expected strings are what Dovecot 2.3.19 sends for the same
 * bytes (tests/integration/imapd_mime_dovecot.sh checks that against a
 * running Dovecot, for these messages and for real corpus mail).
 *
 *   test_imapd_mime                 the unit tests
 *   test_imapd_mime --dump FILE     print every form and a set of sections
 *                                   of FILE (used by the Dovecot comparison)
 *   test_imapd_mime --write-samples DIR
 *                                   write the hand-made messages as files
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "arca_err.h"
#include "buf.h"
#include "imapd_mime.h"
#include "harness.h"

/* ---- helpers ---------------------------------------------------------- */

static int add_str(struct abuf *b, const char *s)
{
	return abuf_add(b, s, strlen(s));
}

static char *form(const char *msg, size_t len, int which)
{
	struct imapd_mime *m = NULL;
	struct abuf b = ABUF_INIT;
	if (imapd_mime_parse(msg, len, &m) != 0)
		return NULL;
	int r = which == 0 ? imapd_mime_bodystructure(m, true, &b)
	      : which == 1 ? imapd_mime_bodystructure(m, false, &b)
	      : imapd_mime_envelope(m, &b);
	imapd_mime_free(m);
	if (r != 0 || abuf_cstr(&b) != 0) {
		abuf_release(&b);
		return NULL;
	}
	return (char *)b.data;
}

static char *bs(const char *msg) { return form(msg, strlen(msg), 0); }
static char *body(const char *msg) { return form(msg, strlen(msg), 1); }
static char *env(const char *msg) { return form(msg, strlen(msg), 2); }

/* A section from text like "1.2.MIME", "HEADER.FIELDS (FROM TO)", "". */
static int parse_section(const char *spec, struct imapd_section *s, char ***names_r)
{
	memset(s, 0, sizeof(*s));
	*names_r = NULL;
	const char *p = spec;
	while (*p >= '0' && *p <= '9') {
		char *e;
		unsigned long n = strtoul(p, &e, 10);
		if (s->nparts == IMAPD_MIME_DEPTH_MAX)
			return -1;
		s->part[s->nparts++] = (uint32_t)n;
		p = e;
		if (*p == '.')
			p++;
	}
	if (*p == '\0')
		s->kind = IMAPD_SECTION_ALL;
	else if (strcmp(p, "MIME") == 0)
		s->kind = IMAPD_SECTION_MIME;
	else if (strcmp(p, "HEADER") == 0)
		s->kind = IMAPD_SECTION_HEADER;
	else if (strcmp(p, "TEXT") == 0)
		s->kind = IMAPD_SECTION_TEXT;
	else if (strncmp(p, "HEADER.FIELDS ", 14) == 0 || strncmp(p, "HEADER.FIELDS.NOT ", 18) == 0) {
		bool not = strncmp(p, "HEADER.FIELDS.NOT ", 18) == 0;
		s->kind = not ? IMAPD_SECTION_HEADER_FIELDS_NOT : IMAPD_SECTION_HEADER_FIELDS;
		p = strchr(p, '(');
		if (p == NULL)
			return -1;
		p++;
		char **names = calloc(IMAPD_SECTION_FIELDS_MAX, sizeof(char *));
		if (names == NULL)
			abort();
		while (*p && *p != ')') {
			while (*p == ' ')
				p++;
			size_t n = strcspn(p, " )");
			if (n == 0)
				break;
			if (s->nfields == IMAPD_SECTION_FIELDS_MAX)
				return -1;
			names[s->nfields++] = strndup(p, n);
			p += n;
		}
		s->fields = names;
		*names_r = names;
	} else {
		return -1;
	}
	return 0;
}

static void free_names(char **names)
{
	if (names == NULL)
		return;
	for (size_t i = 0; i < IMAPD_SECTION_FIELDS_MAX && names[i]; i++)
		free(names[i]);
	free(names);
}

/* The section's bytes, NUL-terminated (NULL on error). */
static char *sect(const char *msg, const char *spec)
{
	struct imapd_mime *m = NULL;
	struct imapd_section s;
	char **names;
	struct abuf b = ABUF_INIT;
	if (parse_section(spec, &s, &names) != 0)
		return NULL;
	if (imapd_mime_parse(msg, strlen(msg), &m) != 0) {
		free_names(names);
		return NULL;
	}
	int r = imapd_mime_section(m, &s, &b);
	imapd_mime_free(m);
	free_names(names);
	if (r != 0 || abuf_cstr(&b) != 0) {
		abuf_release(&b);
		return NULL;
	}
	if (b.data == NULL)
		return strdup("");
	return (char *)b.data;
}

#define CHECK_FORM(expr, want)                       \
	do {                                         \
		char *got_ = (expr);                 \
		CHECK_STR(got_, want);               \
		free(got_);                          \
	} while (0)

/* ---- hand-made messages ----------------------------------------------- */

static const char MSG_SIMPLE[] =
	"From: Alice <alice@example.test>\r\n"
	"To: bob@example.test\r\n"
	"Subject: hello\r\n"
	"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
	"Message-ID: <1@example.test>\r\n"
	"\r\n"
	"Hello Bob.\r\n"
	"Bye.\r\n";

static const char MSG_ALTERNATIVE[] =
	"From: alice@example.test\r\n"
	"Subject: alt\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/alternative; boundary=\"b1\"\r\n"
	"\r\n"
	"This is a multi-part message.\r\n"
	"--b1\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"plain =C3=A9\r\n"
	"--b1\r\n"
	"Content-Type: text/html; charset=\"utf-8\"\r\n"
	"\r\n"
	"<p>html</p>\r\n"
	"--b1--\r\n"
	"epilogue\r\n";

static const char MSG_MIXED[] =
	"From: alice@example.test\r\n"
	"To: bob@example.test, \"Carol C.\" <carol@other.test>\r\n"
	"Subject: report\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"=_outer\"\r\n"
	"\r\n"
	"--=_outer\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"See attached.\r\n"
	"--=_outer\r\n"
	"Content-Type: application/pdf; name=\"report.pdf\"\r\n"
	"Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"Content-ID: <pdf1@example.test>\r\n"
	"Content-Description: The report\r\n"
	"Content-Language: en, de\r\n"
	"Content-Location: http://example.test/r.pdf\r\n"
	"\r\n"
	"JVBERi0xLjQK\r\n"
	"--=_outer--\r\n";

static const char MSG_RFC822[] =
	"From: alice@example.test\r\n"
	"Subject: fwd\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"x\"\r\n"
	"\r\n"
	"--x\r\n"
	"Content-Type: text/plain; charset=us-ascii\r\n"
	"\r\n"
	"Forwarded below.\r\n"
	"--x\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"From: Dave <dave@example.test>\r\n"
	"To: alice@example.test\r\n"
	"Subject: inner\r\n"
	"Message-ID: <inner@example.test>\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/alternative; boundary=\"y\"\r\n"
	"\r\n"
	"--y\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"inner text\r\n"
	"--y\r\n"
	"Content-Type: text/html\r\n"
	"\r\n"
	"<b>inner</b>\r\n"
	"--y--\r\n"
	"\r\n"
	"--x--\r\n";

static const char MSG_GROUPS[] =
	"From: \"Doe, John\" <john@example.test>\r\n"
	"Sender: secretary@example.test\r\n"
	"Reply-To: =?utf-8?q?J=C3=B6rg?= <joerg@example.test>\r\n"
	"To: undisclosed-recipients:;\r\n"
	"Cc: friends: ann@example.test, Bob <bob@example.test>;, eve@example.test\r\n"
	"Bcc: \"quote\\\"d\" <q@example.test>\r\n"
	"In-Reply-To: <parent@example.test>\r\n"
	"Subject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n"
	"\r\n"
	"body\r\n";

static const char MSG_MISSING[] =
	"X-Nothing: here\r\n"
	"\r\n"
	"no usual headers\r\n";

static const char MSG_8BIT[] =
	"From: J\xc3\xb6rg <joerg@example.test>\r\n"
	"Subject: Gr\xc3\xbc\xc3\x9f" "e\r\n"
	"\r\n"
	"b\xc3\xa4r\r\n";

static const char MSG_NO_BLANK[] =
	"From: alice@example.test\r\n"
	"Subject: only a header\r\n";

static const char MSG_FOLDED[] =
	"From: alice@example.test\r\n"
	"Subject: a folded\r\n"
	"\tsubject  with   spaces\r\n"
	"To: bob@example.test,\r\n"
	" carol@other.test\r\n"
	"Date: Tue, 2 Jan 2024\r\n"
	"  10:00:00 +0000\r\n"
	"\r\n"
	"x\r\n";

static const char MSG_DUP[] =
	"Subject: first\r\n"
	"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
	"To: a@example.test\r\n"
	"Subject: second\r\n"
	"To: b@example.test\r\n"
	"Date: Tue, 2 Jan 2024 10:00:00 +0000\r\n"
	"Sender:\r\n"
	"From: \"\" <f@example.test>, g@example.test (Gee  Whiz)\r\n"
	"Content-Type: text/plain; charset=us-ascii; format=flowed\r\n"
	"\r\n"
	"x";

/* A multipart without boundary parameter, and one whose boundary never
 * comes: no parts. */
static const char MSG_NOPARTS[] =
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=zz\r\n"
	"\r\n"
	"--z\r\n"
	"never\r\n";

static const char MSG_NOBOUNDARY[] =
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed\r\n"
	"\r\n"
	"text\r\n";

/* Parts that end without line end, an empty part, a part with no header,
 * a close boundary with padding and a missing close of an inner multipart
 * (the outer boundary ends it). */
static const char MSG_EDGES[] =
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"o\"\r\n"
	"\r\n"
	"--o\r\n"
	"\r\n"
	"no header\r\n"
	"--o\r\n"
	"--o  \r\n"
	"Content-Type: multipart/alternative; boundary=i\r\n"
	"\r\n"
	"--i\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"inner not closed\r\n"
	"--o\r\n"
	"Content-Type: text/plain\r\n"
	"--o-- trailing\r\n"
	"epilogue\r\n";

/* ---- the tests -------------------------------------------------------- */

static void test_simple(void)
{
	CHECK_FORM(bs(MSG_SIMPLE),
		   "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 18 2 NIL NIL NIL NIL)");
	CHECK_FORM(body(MSG_SIMPLE),
		   "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 18 2)");
	CHECK_FORM(env(MSG_SIMPLE),
		   "(\"Mon, 1 Jan 2024 10:00:00 +0000\" \"hello\" "
		   "((\"Alice\" NIL \"alice\" \"example.test\")) "
		   "((\"Alice\" NIL \"alice\" \"example.test\")) "
		   "((\"Alice\" NIL \"alice\" \"example.test\")) "
		   "((NIL NIL \"bob\" \"example.test\")) NIL NIL NIL \"<1@example.test>\")");
	CHECK_FORM(sect(MSG_SIMPLE, ""), MSG_SIMPLE);
	CHECK_FORM(sect(MSG_SIMPLE, "1"), "Hello Bob.\r\nBye.\r\n");
	CHECK_FORM(sect(MSG_SIMPLE, "TEXT"), "Hello Bob.\r\nBye.\r\n");
	CHECK_FORM(sect(MSG_SIMPLE, "2"), "");
	CHECK_FORM(sect(MSG_SIMPLE, "1.1"), "");
	CHECK_FORM(sect(MSG_SIMPLE, "HEADER.FIELDS (SUBJECT from)"),
		   "From: Alice <alice@example.test>\r\nSubject: hello\r\n\r\n");
	CHECK_FORM(sect(MSG_SIMPLE, "HEADER.FIELDS.NOT (SUBJECT FROM Date Message-ID)"),
		   "To: bob@example.test\r\n\r\n");
}

static void test_alternative(void)
{
	CHECK_FORM(bs(MSG_ALTERNATIVE),
		   "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 12 0 NIL NIL NIL NIL)"
		   "(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 11 0 NIL NIL NIL NIL)"
		   " \"alternative\" (\"boundary\" \"b1\") NIL NIL NIL)");
	CHECK_FORM(body(MSG_ALTERNATIVE),
		   "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 12 0)"
		   "(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 11 0) \"alternative\")");
	CHECK_FORM(sect(MSG_ALTERNATIVE, "1"), "plain =C3=A9");
	CHECK_FORM(sect(MSG_ALTERNATIVE, "2"), "<p>html</p>");
	CHECK_FORM(sect(MSG_ALTERNATIVE, "1.MIME"),
		   "Content-Type: text/plain; charset=utf-8\r\n"
		   "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	CHECK_FORM(sect(MSG_ALTERNATIVE, "3"), "");
	CHECK_FORM(sect(MSG_ALTERNATIVE, "1.HEADER"), "");
}

static void test_mixed_attachment(void)
{
	CHECK_FORM(bs(MSG_MIXED),
		   "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 13 0 NIL NIL NIL NIL)"
		   "(\"application\" \"pdf\" (\"name\" \"report.pdf\") \"<pdf1@example.test>\" \"The report\" "
		   "\"base64\" 12 NIL (\"attachment\" (\"filename\" \"report.pdf\")) (\"en\" \"de\") "
		   "\"http://example.test/r.pdf\")"
		   " \"mixed\" (\"boundary\" \"=_outer\") NIL NIL NIL)");
	CHECK_FORM(sect(MSG_MIXED, "2"), "JVBERi0xLjQK");
	CHECK_FORM(env(MSG_MIXED),
		   "(NIL \"report\" ((NIL NIL \"alice\" \"example.test\")) "
		   "((NIL NIL \"alice\" \"example.test\")) ((NIL NIL \"alice\" \"example.test\")) "
		   "((NIL NIL \"bob\" \"example.test\")(\"Carol C.\" NIL \"carol\" \"other.test\")) "
		   "NIL NIL NIL NIL)");
}

static void test_rfc822(void)
{
	CHECK_FORM(bs(MSG_RFC822),
		   "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 16 0 NIL NIL NIL NIL)"
		   "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 276 "
		   "(NIL \"inner\" ((\"Dave\" NIL \"dave\" \"example.test\")) "
		   "((\"Dave\" NIL \"dave\" \"example.test\")) ((\"Dave\" NIL \"dave\" \"example.test\")) "
		   "((NIL NIL \"alice\" \"example.test\")) NIL NIL NIL \"<inner@example.test>\") "
		   "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0 NIL NIL NIL NIL)"
		   "(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 0 NIL NIL NIL NIL)"
		   " \"alternative\" (\"boundary\" \"y\") NIL NIL NIL) 16 NIL NIL NIL NIL)"
		   " \"mixed\" (\"boundary\" \"x\") NIL NIL NIL)");
	CHECK_FORM(sect(MSG_RFC822, "2.HEADER.FIELDS (Subject)"), "Subject: inner\r\n\r\n");
	CHECK_FORM(sect(MSG_RFC822, "2.TEXT"),
		   "--y\r\nContent-Type: text/plain\r\n\r\ninner text\r\n--y\r\n"
		   "Content-Type: text/html\r\n\r\n<b>inner</b>\r\n--y--\r\n");
	CHECK_FORM(sect(MSG_RFC822, "2.1"), "inner text");
	CHECK_FORM(sect(MSG_RFC822, "2.2.MIME"), "Content-Type: text/html\r\n\r\n");
	CHECK_FORM(sect(MSG_RFC822, "2.MIME"), "Content-Type: message/rfc822\r\n\r\n");
	CHECK_FORM(sect(MSG_RFC822, "2.3"), "");
	char *whole = sect(MSG_RFC822, "2");
	REQUIRE(whole != NULL);
	CHECK(strncmp(whole, "From: Dave", 10) == 0);
	CHECK_EQ_INT(strlen(whole), 276);
	free(whole);
}

static void test_groups_and_odd_addresses(void)
{
	CHECK_FORM(env(MSG_GROUPS),
		   "(NIL \"=?utf-8?q?gr=C3=BC=C3=9Fe?=\" ((\"Doe, John\" NIL \"john\" \"example.test\")) "
		   "((NIL NIL \"secretary\" \"example.test\")) "
		   "((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"joerg\" \"example.test\")) "
		   "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
		   "((NIL NIL \"friends\" NIL)(NIL NIL \"ann\" \"example.test\")"
		   "(\"Bob\" NIL \"bob\" \"example.test\")(NIL NIL NIL NIL)(NIL NIL \"eve\" \"example.test\")) "
		   "(({7}\r\nquote\"d NIL \"q\" \"example.test\")) \"<parent@example.test>\" NIL)");
}

static void test_missing_headers(void)
{
	CHECK_FORM(env(MSG_MISSING), "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	CHECK_FORM(bs(MSG_MISSING),
		   "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 18 1 NIL NIL NIL NIL)");
}

static void test_8bit_headers(void)
{
	CHECK_FORM(env(MSG_8BIT),
		   "(NIL {7}\r\nGr\xc3\xbc\xc3\x9f" "e "
		   "(({5}\r\nJ\xc3\xb6rg NIL \"joerg\" \"example.test\")) "
		   "(({5}\r\nJ\xc3\xb6rg NIL \"joerg\" \"example.test\")) "
		   "(({5}\r\nJ\xc3\xb6rg NIL \"joerg\" \"example.test\")) NIL NIL NIL NIL NIL)");
}

static void test_no_blank_line(void)
{
	CHECK_FORM(bs(MSG_NO_BLANK),
		   "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)");
	CHECK_FORM(sect(MSG_NO_BLANK, "HEADER"), MSG_NO_BLANK);
	CHECK_FORM(sect(MSG_NO_BLANK, "TEXT"), "");
	CHECK_FORM(sect(MSG_NO_BLANK, "HEADER.FIELDS (SUBJECT)"), "Subject: only a header\r\n\r\n");
}

static void test_folded(void)
{
	/* folded values are unfolded; the subject's blanks collapse */
	CHECK_FORM(env(MSG_FOLDED),
		   "(\"Tue, 2 Jan 2024  10:00:00 +0000\" {28}\r\na folded subject with spaces "
		   "((NIL NIL \"alice\" \"example.test\")) ((NIL NIL \"alice\" \"example.test\")) "
		   "((NIL NIL \"alice\" \"example.test\")) "
		   "((NIL NIL \"bob\" \"example.test\")(NIL NIL \"carol\" \"other.test\")) NIL NIL NIL NIL)");
	CHECK_FORM(sect(MSG_FOLDED, "HEADER.FIELDS (To Date)"),
		   "To: bob@example.test,\r\n carol@other.test\r\n"
		   "Date: Tue, 2 Jan 2024\r\n  10:00:00 +0000\r\n\r\n");
}

static void test_empty_message(void)
{
	CHECK_FORM(bs(""), "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)");
	CHECK_FORM(env(""), "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	CHECK_FORM(sect("", ""), "");
	CHECK_FORM(sect("", "1"), "");
	CHECK_FORM(sect("", "HEADER"), "");
	CHECK_FORM(sect("", "HEADER.FIELDS (FROM)"), "\r\n");
}

/* Nesting far past IMAPD_MIME_DEPTH_MAX, and huge header counts: bounded
 * work, no crash, and the structure still says something sane. */
static void test_deep_nesting(void)
{
	struct abuf b = ABUF_INIT;
	int depth = 5000;
	CHECK(add_str(&b, "MIME-Version: 1.0\r\n") == 0);
	for (int i = 0; i < depth; i++)
		CHECK(abuf_printf(&b, "Content-Type: multipart/mixed; boundary=\"=%d=\"\r\n\r\n--=%d=\r\n", i, i) == 0);
	CHECK(add_str(&b, "Content-Type: text/plain\r\n\r\nleaf\r\n") == 0);
	struct imapd_mime *m = NULL;
	REQUIRE(imapd_mime_parse((const char *)b.data, b.len, &m) == 0);
	struct abuf o = ABUF_INIT;
	CHECK(imapd_mime_bodystructure(m, true, &o) == 0);
	CHECK(o.len > 0 && o.len < 100000);
	if (o.len >= 100000 || o.len == 0)
		fprintf(stderr, "  deep: %zu bytes\n", o.len);
	/* the deepest numbers the parser allows still resolve or give "" */
	struct imapd_section s;
	memset(&s, 0, sizeof(s));
	s.nparts = IMAPD_MIME_DEPTH_MAX;
	for (size_t i = 0; i < s.nparts; i++)
		s.part[i] = 1;
	struct abuf sb = ABUF_INIT;
	CHECK(imapd_mime_section(m, &s, &sb) == 0);
	abuf_release(&sb);
	abuf_release(&o);
	imapd_mime_free(m);
	abuf_release(&b);

	/* message/rfc822 inside message/rfc822, 100,000 times */
	CHECK(add_str(&b, "MIME-Version: 1.0\r\n") == 0);
	for (int i = 0; i < 100000; i++)
		CHECK(add_str(&b, "Content-Type: message/rfc822\r\n\r\n") == 0);
	REQUIRE(imapd_mime_parse((const char *)b.data, b.len, &m) == 0);
	CHECK(imapd_mime_bodystructure(m, true, &o) == 0);
	CHECK(imapd_mime_envelope(m, &o) == 0);
	abuf_release(&o);
	imapd_mime_free(m);
	abuf_release(&b);

	/* 200,000 header fields and 20,000 parts */
	for (int i = 0; i < 200000; i++)
		CHECK(add_str(&b, "Content-Type: text/plain\r\n") == 0);
	CHECK(add_str(&b, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n") == 0);
	for (int i = 0; i < 20000; i++)
		CHECK(add_str(&b, "--q\r\n\r\nx\r\n") == 0);
	REQUIRE(imapd_mime_parse((const char *)b.data, b.len, &m) == 0);
	CHECK(imapd_mime_bodystructure(m, true, &o) == 0);
	abuf_release(&o);
	imapd_mime_free(m);
	abuf_release(&b);
}

/* ---- --dump and --write-samples --------------------------------------- */

static const char *const DUMP_SECTIONS[] = {
	"1", "1.MIME", "HEADER.FIELDS (FROM TO SUBJECT)", "TEXT", "HEADER",
	"2", "2.MIME", "1.1", "2.1", "2.HEADER", "2.TEXT",
	"HEADER.FIELDS.NOT (FROM TO SUBJECT RECEIVED)", "",
};

static void dump_item(const char *name, const struct abuf *b)
{
	printf("%s %zu\n", name, b->len);
	fwrite(b->data ? (const void *)b->data : "", 1, b->len, stdout);
	printf("\n");
}

/* Prints "NAME LEN\nBYTES\n" for BODYSTRUCTURE, BODY, ENVELOPE and each
 * of DUMP_SECTIONS as "BODY[SPEC]". */
static int dump(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "test_imapd_mime: cannot open %s: %s\n", path, strerror(errno));
		return 1;
	}
	struct abuf msg = ABUF_INIT;
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (abuf_add(&msg, chunk, n) != 0)
			abort();
	fclose(f);
	struct imapd_mime *m = NULL;
	if (imapd_mime_parse(msg.data ? (const char *)msg.data : "", msg.len, &m) != 0) {
		fprintf(stderr, "test_imapd_mime: parse %s failed\n", path);
		return 1;
	}
	struct abuf b = ABUF_INIT;
	int rc = 0;
	if (imapd_mime_bodystructure(m, true, &b) != 0)
		rc = 1;
	dump_item("BODYSTRUCTURE", &b);
	abuf_reset(&b);
	if (imapd_mime_bodystructure(m, false, &b) != 0)
		rc = 1;
	dump_item("BODY", &b);
	abuf_reset(&b);
	if (imapd_mime_envelope(m, &b) != 0)
		rc = 1;
	dump_item("ENVELOPE", &b);
	for (size_t i = 0; i < sizeof(DUMP_SECTIONS) / sizeof(DUMP_SECTIONS[0]); i++) {
		struct imapd_section s;
		char **names;
		char name[128];
		abuf_reset(&b);
		if (parse_section(DUMP_SECTIONS[i], &s, &names) != 0 ||
		    imapd_mime_section(m, &s, &b) != 0)
			rc = 1;
		free_names(names);
		snprintf(name, sizeof(name), "BODY[%s]", DUMP_SECTIONS[i]);
		dump_item(name, &b);
	}
	abuf_release(&b);
	imapd_mime_free(m);
	abuf_release(&msg);
	return rc;
}

static const struct { const char *name; const char *msg; } SAMPLES[] = {
	{ "simple", MSG_SIMPLE }, { "alternative", MSG_ALTERNATIVE },
	{ "mixed", MSG_MIXED }, { "rfc822", MSG_RFC822 }, { "groups", MSG_GROUPS },
	{ "missing", MSG_MISSING }, { "8bit", MSG_8BIT }, { "noblank", MSG_NO_BLANK },
	{ "folded", MSG_FOLDED }, { "dup", MSG_DUP }, { "noparts", MSG_NOPARTS },
	{ "noboundary", MSG_NOBOUNDARY }, { "edges", MSG_EDGES },
};

static int write_samples(const char *dir)
{
	for (size_t i = 0; i < sizeof(SAMPLES) / sizeof(SAMPLES[0]); i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%02zu-%s.eml", dir, i + 1, SAMPLES[i].name);
		FILE *f = fopen(path, "wb");
		if (f == NULL || fwrite(SAMPLES[i].msg, 1, strlen(SAMPLES[i].msg), f) !=
				     strlen(SAMPLES[i].msg) || fclose(f) != 0) {
			fprintf(stderr, "test_imapd_mime: cannot write %s\n", path);
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--dump") == 0)
		return dump(argv[2]);
	if (argc == 3 && strcmp(argv[1], "--write-samples") == 0)
		return write_samples(argv[2]);
	RUN(test_simple);
	RUN(test_alternative);
	RUN(test_mixed_attachment);
	RUN(test_rfc822);
	RUN(test_groups_and_odd_addresses);
	RUN(test_missing_headers);
	RUN(test_8bit_headers);
	RUN(test_no_blank_line);
	RUN(test_folded);
	RUN(test_empty_message);
	RUN(test_deep_nesting);
	HARNESS_EXIT();
}
