/*
 * test_pull.c - the pure parts of the pull side and the codecs it writes:
 *  - the X-GUID fetch item (lib/imap/imap_xguid.c), alone and inside
 *    libetpan's parser;
 *  - FETCH responses to record fields (lib/imap/imap_fetch.c), from real
 *    response bytes parsed by libetpan over an in-memory stream, and from
 *    structures built with libetpan's constructors;
 *  - pull.h's helpers: un-serving CRLF, base names, folder names;
 *  - the alarm payloads (lib/alarm.c);
 *  - a folder record with its messages and the root v2 with Sieve scripts
 *    (lib/snapshot.c).
 * Every decoder is also fed each truncation of a good input: it must fail
 * cleanly (ASan+UBSan, leak detection on).
 *
 * Two tests fail until their bugs are fixed (each says how):
 * test_conn_eof_inside_literal (lib/imap/imap_conn.c) and
 * test_base_ok_restorable (pull_base_ok in lib/imap/pull.c).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libetpan/mailimap.h>
#include <libetpan/qresync.h>

#include "alarm.h"
#include "buf.h"
#include "harness.h"
#include "imap_conn.h"
#include "imap_fetch.h"
#include "imap_xguid.h"
#include "maildir.h"
#include "pack.h"
#include "pull.h"
#include "snapshot.h"

/* ---- X-GUID --------------------------------------------------------------- */

/* imap_xguid_parse on s from pos; on success *end is where it stopped. */
static int xg(const char *s, size_t pos, char **guid, size_t *end)
{
	size_t p = pos;
	*guid = NULL;
	int rc = imap_xguid_parse(s, strlen(s), &p, guid);
	if (rc != 0 && (p != pos || *guid != NULL))
		return 99;   /* a failure consumes nothing and sets nothing */
	if (end)
		*end = p;
	return rc;
}

static void test_xguid_atom(void)
{
	char *g;
	size_t end;
	CHECK_EQ_INT(xg("X-GUID 1795867224.M925824P9877.host,S=247,W=258)", 0, &g, &end), 0);
	CHECK_STR(g, "1795867224.M925824P9877.host,S=247,W=258");
	CHECK_EQ_INT(end, strlen("X-GUID 1795867224.M925824P9877.host,S=247,W=258"));
	free(g);
	/* at the end of the buffer, and followed by another item */
	CHECK_EQ_INT(xg("X-GUID abc", 0, &g, &end), 0);
	CHECK_STR(g, "abc");
	CHECK_EQ_INT(end, 10);
	free(g);
	CHECK_EQ_INT(xg("(UID 7 X-GUID abc FLAGS ())", 7, &g, &end), 0);
	CHECK_STR(g, "abc");
	CHECK_EQ_INT(end, 17);
	free(g);
	/* the item name is case-insensitive */
	CHECK_EQ_INT(xg("x-guid abc)", 0, &g, NULL), 0);
	CHECK_STR(g, "abc");
	free(g);
	CHECK_EQ_INT(xg("X-Guid abc)", 0, &g, NULL), 0);
	free(g);
	/* atom characters that are not atom-specials: '[', '+', '&', '=', ',' */
	CHECK_EQ_INT(xg("X-GUID a[b+c&d=e,f)", 0, &g, NULL), 0);
	CHECK_STR(g, "a[b+c&d=e,f");
	free(g);
	/* a GUID that merely starts with NIL is one */
	CHECK_EQ_INT(xg("X-GUID NILS)", 0, &g, NULL), 0);
	CHECK_STR(g, "NILS");
	free(g);
}

static void test_xguid_quoted(void)
{
	char *g;
	size_t end;
	CHECK_EQ_INT(xg("X-GUID \"abc def\")", 0, &g, &end), 0);
	CHECK_STR(g, "abc def");
	CHECK_EQ_INT(end, 16);
	free(g);
	CHECK_EQ_INT(xg("X-GUID \"a\\\"b\\\\c\"", 0, &g, &end), 0);
	CHECK_STR(g, "a\"b\\c");
	CHECK_EQ_INT(end, 16);
	free(g);
	/* atom-specials are fine inside quotes */
	CHECK_EQ_INT(xg("X-GUID \"(){%*]\" ", 0, &g, NULL), 0);
	CHECK_STR(g, "(){%*]");
	free(g);
	/* a quoted "NIL" is a string, not NIL */
	CHECK_EQ_INT(xg("X-GUID \"NIL\")", 0, &g, NULL), 0);
	CHECK_STR(g, "NIL");
	free(g);
	/* malformed quoting */
	static const char *const bad[] = {
		"X-GUID \"abc",              /* unterminated */
		"X-GUID \"abc\\",            /* ends inside an escape */
		"X-GUID \"a\\bc\"",          /* only \" and \\ may be escaped */
		"X-GUID \"a\\nb\"",
		"X-GUID \"\"",               /* empty */
		"X-GUID \"\" ",
		"X-GUID \"abc\"def",         /* bad terminator after the quote */
		"X-GUID \"abc\"\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = xg(bad[i], 0, &g, NULL);
		if (rc != -1)
			fprintf(stderr, "  accepted: %s\n", bad[i]);
		CHECK_EQ_INT(rc, -1);
	}
}

static void test_xguid_rejects(void)
{
	char *g;
	static const char *const bad[] = {
		"X-GUID NIL", "X-GUID NIL)", "X-GUID nil ", "X-GUID Nil)",  /* NIL */
		"", "X-GUID", "X-GUID ", "X-GUI", "X-GUIDabc", "X-GUID  abc",
		"XGUID abc", "X-GUID-X abc", "GUID abc", " X-GUID abc",
		"X-GUID abc(", "X-GUID abc\r\n", "X-GUID abc\"", "X-GUID abc]",
		"X-GUID abc{", "X-GUID abc%", "X-GUID abc*", "X-GUID abc\\",
		"X-GUID (abc)", "X-GUID {3}\r\nabc",     /* no lists, no literals */
		"X-GUID ab\x01", "X-GUID ab\x7f", "X-GUID ab\xc3\xa9",   /* non-printable */
		"X-GUID \"ab\x01\"", "X-GUID \"ab\x7f\"", "X-GUID \"ab\xc3\xa9\"",
		"X-GUID \"ab\tc\"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = xg(bad[i], 0, &g, NULL);
		if (rc != -1)
			fprintf(stderr, "  accepted: \"%s\"\n", bad[i]);
		CHECK_EQ_INT(rc, -1);
		free(g);
	}
	/* not at pos */
	CHECK_EQ_INT(xg("UID 7 X-GUID abc", 0, &g, NULL), -1);
	/* pos == len */
	CHECK_EQ_INT(xg("X-GUID abc", 10, &g, NULL), -1);
	/* a NUL ends nothing: it is not printable */
	size_t p = 0;
	g = NULL;
	CHECK_EQ_INT(imap_xguid_parse("X-GUID \"a\0b\"", 12, &p, &g), -1);
	CHECK(p == 0 && g == NULL);
	CHECK_EQ_INT(imap_xguid_parse("X-GUID ab\0", 10, &p, &g), -1);
	CHECK(p == 0 && g == NULL);
}

static void test_xguid_length(void)
{
	char s[600], *g;
	/* IMAP_XGUID_MAX bytes: taken; one more: refused (atom and quoted) */
	for (int quoted = 0; quoted < 2; quoted++) {
		for (size_t n = IMAP_XGUID_MAX - 1; n <= IMAP_XGUID_MAX + 1; n++) {
			size_t k = (size_t)snprintf(s, sizeof(s), "X-GUID %s", quoted ? "\"" : "");
			memset(s + k, 'g', n);
			k += n;
			snprintf(s + k, sizeof(s) - k, "%s)", quoted ? "\"" : "");
			int rc = xg(s, 0, &g, NULL);
			CHECK_EQ_INT(rc, n <= IMAP_XGUID_MAX ? 0 : -1);
			if (rc == 0)
				CHECK_EQ_INT(strlen(g), n);
			free(g);
		}
	}
	/* an escape counts as the one byte it stands for */
	size_t k = (size_t)snprintf(s, sizeof(s), "X-GUID \"");
	for (size_t i = 0; i < IMAP_XGUID_MAX; i++) {
		s[k++] = '\\';
		s[k++] = '"';
	}
	snprintf(s + k, sizeof(s) - k, "\")");
	CHECK_EQ_INT(xg(s, 0, &g, NULL), 0);
	CHECK(g != NULL && strlen(g) == IMAP_XGUID_MAX && strspn(g, "\"") == IMAP_XGUID_MAX);
	free(g);
}

/* ---- libetpan over an in-memory server ------------------------------------ */

/* The server's side: a greeting, then `responses`, then end of stream;
 * what the client writes is kept (to check the command sent). */
struct canned {
	const char *in;
	size_t len, pos;
	struct abuf sent;
};

static ssize_t canned_read(mailstream_low *s, void *buf, size_t len)
{
	struct canned *c = s->data;
	size_t n = c->len - c->pos < len ? c->len - c->pos : len;
	memcpy(buf, c->in + c->pos, n);
	c->pos += n;
	return (ssize_t)n;
}

static ssize_t canned_write(mailstream_low *s, const void *buf, size_t len)
{
	struct canned *c = s->data;
	return abuf_add(&c->sent, buf, len) == 0 ? (ssize_t)len : -1;
}

static int canned_close(mailstream_low *s)
{
	(void)s;
	return 0;
}

static int canned_fd(mailstream_low *s)
{
	(void)s;
	return -1;
}

static void canned_free(mailstream_low *s)
{
	free(s);
}

static void canned_cancel(mailstream_low *s)
{
	(void)s;
}

static struct mailstream_cancel *canned_get_cancel(mailstream_low *s)
{
	(void)s;
	return NULL;
}

static carray *canned_chain(mailstream_low *s)
{
	(void)s;
	return NULL;
}

static mailstream_low_driver canned_driver = {
	.mailstream_read = canned_read,
	.mailstream_write = canned_write,
	.mailstream_close = canned_close,
	.mailstream_get_fd = canned_fd,
	.mailstream_free = canned_free,
	.mailstream_cancel = canned_cancel,
	.mailstream_get_cancel = canned_get_cancel,
	.mailstream_get_certificate_chain = canned_chain,
};

struct fetch_run {
	struct canned c;
	char *in;
	mailimap *imap;
	clist *result;
	struct mailimap_qresync_vanished *van;
	int r;
};

/* pull.c's meta_fetch_type with CONDSTORE on a Dovecot */
static struct mailimap_fetch_type *meta_type(bool body)
{
	struct mailimap_fetch_type *t = mailimap_fetch_type_new_fetch_att_list_empty();
	struct mailimap_fetch_att *atts[] = {
		mailimap_fetch_att_new_uid(), mailimap_fetch_att_new_flags(),
		mailimap_fetch_att_new_internaldate(), mailimap_fetch_att_new_rfc822_size(),
		mailimap_fetch_att_new_modseq(), mailimap_fetch_att_new_extension(strdup("X-GUID")),
		body ? mailimap_fetch_att_new_body_peek_section(mailimap_section_new(NULL)) : NULL,
	};
	for (size_t i = 0; i < sizeof(atts) / sizeof(atts[0]); i++)
		if (atts[i] != NULL && mailimap_fetch_type_new_fetch_att_list_add(t, atts[i]) != 0)
			abort();
	return t;
}

/* UID FETCH 1:* (or with CHANGEDSINCE 1 VANISHED) against `responses`,
 * which must end with the tagged answer ("1 OK ..."). */
static void fetch_run(struct fetch_run *f, const char *responses, bool qresync, bool body)
{
	memset(f, 0, sizeof(*f));
	imap_xguid_register();
	static const char greet[] = "* OK [CAPABILITY IMAP4rev1 CONDSTORE QRESYNC] Dovecot ready.\r\n";
	size_t n = strlen(greet) + strlen(responses);
	f->in = malloc(n + 1);
	if (f->in == NULL)
		abort();
	snprintf(f->in, n + 1, "%s%s", greet, responses);
	f->c.in = f->in;
	f->c.len = n;
	f->imap = mailimap_new(0, NULL);
	mailstream_low *low = mailstream_low_new(&f->c, &canned_driver);
	mailstream *stream = mailstream_new(low, 8192);
	if (f->imap == NULL || low == NULL || stream == NULL)
		abort();
	f->r = mailimap_connect(f->imap, stream);
	if (f->r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED)
		return;
	f->imap->imap_state = MAILIMAP_STATE_SELECTED;   /* as after EXAMINE */
	f->imap->imap_selection_info = mailimap_selection_info_new();
	struct mailimap_set *set = mailimap_set_new_interval(1, 0);
	struct mailimap_fetch_type *ft = meta_type(body);
	if (qresync)
		f->r = mailimap_uid_fetch_qresync(f->imap, set, ft, 1, &f->result, &f->van);
	else
		f->r = mailimap_uid_fetch(f->imap, set, ft, &f->result);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	if (f->r != MAILIMAP_NO_ERROR) {
		/* libetpan freed them, and may have left the pointers dangling */
		f->result = NULL;
		f->van = NULL;
	}
}

static void fetch_release(struct fetch_run *f)
{
	if (f->result)
		mailimap_fetch_list_free(f->result);
	if (f->van)
		mailimap_qresync_vanished_free(f->van);
	if (f->imap)
		mailimap_free(f->imap);
	abuf_release(&f->c.sent);
	free(f->in);
}

static struct mailimap_msg_att *nth(clist *l, int i)
{
	clistiter *it = clist_begin(l);
	while (it && i-- > 0)
		it = clist_next(it);
	return it ? clist_content(it) : NULL;
}

#define FL(c) (1u << ((c) - 'A'))

static void test_fetch_parsed(void)
{
	struct fetch_run f;
	fetch_run(&f,
		  "* 1 FETCH (UID 7 FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft \\Recent $Junk \\Custom NonJunk)"
		  " INTERNALDATE \"01-Jan-2024 10:00:00 +0100\" RFC822.SIZE 1234 MODSEQ (99)"
		  " X-GUID 1795867224.M925824P9877.host,S=1200,W=1234)\r\n"
		  "* 2 FETCH (UID 8 X-GUID \"q\\\"uoted\" FLAGS () RFC822.SIZE 0"
		  " INTERNALDATE \" 2-Feb-2024 23:30:00 -0530\" MODSEQ (4294967296))\r\n"
		  "* 3 FETCH (FLAGS (\\Seen))\r\n"
		  "1 OK Fetch completed.\r\n",
		  false, false);
	CHECK_EQ_INT(f.r, MAILIMAP_NO_ERROR);
	REQUIRE(f.result != NULL && clist_count(f.result) == 3);
	/* the command pull.c sends */
	static const char cmd[] = "1 UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ X-GUID)\r\n";
	CHECK(f.c.sent.len > 0 && memmem(f.c.sent.data, f.c.sent.len, cmd, strlen(cmd)) != NULL);

	struct imap_fetched fe;
	imap_fetched_parse(nth(f.result, 0), &fe);
	CHECK(fe.has_uid && fe.has_size && fe.has_date && fe.has_flags && !fe.has_body);
	CHECK_EQ_INT(fe.uid, 7);
	CHECK_EQ_INT(fe.size, 1234);
	CHECK_EQ_INT(fe.date, 1704099600);   /* 2024-01-01 09:00:00 UTC */
	CHECK_EQ_INT(fe.modseq, 99);
	CHECK_EQ_INT(fe.flags, FL('S') | FL('R') | FL('F') | FL('T') | FL('D'));
	CHECK_EQ_INT(fe.nkw, 2);
	CHECK(!fe.kw_overflow);
	if (fe.nkw == 2) {
		CHECK_STR(fe.keywords[0], "$Junk");
		CHECK_STR(fe.keywords[1], "NonJunk");
	}
	CHECK_STR(fe.guid, "1795867224.M925824P9877.host,S=1200,W=1234");

	imap_fetched_parse(nth(f.result, 1), &fe);
	CHECK(fe.has_uid && fe.has_size && fe.has_date && fe.has_flags);
	CHECK_EQ_INT(fe.uid, 8);
	CHECK_EQ_INT(fe.size, 0);
	CHECK_EQ_INT(fe.flags, 0);
	CHECK_EQ_INT(fe.nkw, 0);
	CHECK_EQ_INT(fe.date, 1706936400);   /* 2024-02-03 05:00:00 UTC */
	CHECK_EQ_INT(fe.modseq, UINT64_C(4294967296));
	CHECK_STR(fe.guid, "q\"uoted");

	/* an unsolicited flag change: no UID, no GUID (pull.c skips it) */
	imap_fetched_parse(nth(f.result, 2), &fe);
	CHECK(!fe.has_uid && !fe.has_size && !fe.has_date && fe.has_flags && fe.guid == NULL);
	CHECK_EQ_INT(fe.flags, FL('S'));
	fetch_release(&f);
}

static void test_fetch_parsed_body(void)
{
	struct fetch_run f;
	fetch_run(&f,
		  "* 1 FETCH (UID 7 BODY[] {8}\r\nab\r\ncd\r\n)\r\n"
		  "* 2 FETCH (UID 8 BODY[] NIL)\r\n"
		  "* 3 FETCH (UID 9 BODY[] \"\")\r\n"
		  "1 OK done\r\n", false, true);
	CHECK_EQ_INT(f.r, MAILIMAP_NO_ERROR);
	REQUIRE(f.result != NULL && clist_count(f.result) == 3);
	struct imap_fetched fe;
	imap_fetched_parse(nth(f.result, 0), &fe);
	CHECK(fe.has_uid && fe.has_body && !fe.has_flags);
	CHECK_EQ_INT(fe.uid, 7);
	CHECK(fe.body_len == 8 && fe.body != NULL && memcmp(fe.body, "ab\r\ncd\r\n", 8) == 0);
	imap_fetched_parse(nth(f.result, 1), &fe);
	CHECK(fe.has_body && fe.body_len == 0);
	imap_fetched_parse(nth(f.result, 2), &fe);
	CHECK(fe.has_body && fe.body_len == 0);
	fetch_release(&f);
}

static void test_fetch_parsed_qresync(void)
{
	struct fetch_run f;
	fetch_run(&f,
		  "* VANISHED (EARLIER) 3:5,9\r\n"
		  "* 1 FETCH (UID 10 MODSEQ (12) FLAGS (\\Seen) X-GUID g10 RFC822.SIZE 5"
		  " INTERNALDATE \"01-Jan-1970 00:00:00 +0000\")\r\n"
		  "1 OK done\r\n", true, false);
	CHECK_EQ_INT(f.r, MAILIMAP_NO_ERROR);
	CHECK(f.c.sent.len > 0 && memmem(f.c.sent.data, f.c.sent.len, "(CHANGEDSINCE 1 VANISHED)\r\n", 27) != NULL);
	REQUIRE(f.result != NULL && clist_count(f.result) == 1);
	struct imap_fetched fe;
	imap_fetched_parse(nth(f.result, 0), &fe);
	CHECK_EQ_INT(fe.uid, 10);
	CHECK_EQ_INT(fe.modseq, 12);
	CHECK_EQ_INT(fe.date, 0);
	CHECK(fe.has_date);
	CHECK_STR(fe.guid, "g10");
	REQUIRE(f.van != NULL && f.van->qr_known_uids != NULL);
	CHECK_EQ_INT(clist_count(f.van->qr_known_uids->set_list), 2);
	fetch_release(&f);
}

static void test_fetch_keyword_overflow(void)
{
	struct abuf r = ABUF_INIT;
	abuf_printf(&r, "* 1 FETCH (UID 1 FLAGS (\\Seen");
	for (int i = 0; i < SNAP_KEYWORDS_MAX + 6; i++)
		abuf_printf(&r, " kw%d", i);
	abuf_printf(&r, "))\r\n1 OK done\r\n");
	abuf_cstr(&r);
	struct fetch_run f;
	fetch_run(&f, (const char *)r.data, false, false);
	CHECK_EQ_INT(f.r, MAILIMAP_NO_ERROR);
	REQUIRE(f.result != NULL && clist_count(f.result) == 1);
	struct imap_fetched fe;
	imap_fetched_parse(nth(f.result, 0), &fe);
	CHECK_EQ_INT(fe.nkw, SNAP_KEYWORDS_MAX);
	CHECK(fe.kw_overflow);
	CHECK_EQ_INT(fe.flags, FL('S'));
	CHECK_STR(fe.keywords[0], "kw0");
	CHECK_STR(fe.keywords[SNAP_KEYWORDS_MAX - 1], "kw63");
	fetch_release(&f);
	abuf_release(&r);
}

/* A malformed X-GUID makes the whole answer unparseable: pull stops on
 * "answer not understood" rather than taking a record without its GUID. */
static void test_fetch_bad_xguid(void)
{
	static const char *const bad[] = {
		"* 1 FETCH (UID 1 X-GUID NIL)\r\n1 OK done\r\n",
		"* 1 FETCH (UID 1 X-GUID \"\")\r\n1 OK done\r\n",
		"* 1 FETCH (UID 1 X-GUID \"a\\x\")\r\n1 OK done\r\n",
		"* 1 FETCH (UID 1 X-GUID {3}\r\nabc)\r\n1 OK done\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct fetch_run f;
		fetch_run(&f, bad[i], false, false);
		if (f.r == MAILIMAP_NO_ERROR)
			fprintf(stderr, "  accepted: %s", bad[i]);
		CHECK(f.r != MAILIMAP_NO_ERROR);
		fetch_release(&f);
	}
	/* and a good one between two of them is still fine */
	struct fetch_run f;
	fetch_run(&f, "* 1 FETCH (X-GUID a UID 1 X-GUID b)\r\n1 OK done\r\n", false, false);
	CHECK_EQ_INT(f.r, MAILIMAP_NO_ERROR);
	if (f.result && clist_count(f.result) == 1) {
		struct imap_fetched fe;
		imap_fetched_parse(nth(f.result, 0), &fe);
		CHECK_STR(fe.guid, "b");   /* the last one wins */
		CHECK_EQ_INT(fe.uid, 1);
	}
	fetch_release(&f);
}

/* libetpan 1.9's UID FETCH (plain and QRESYNC) reports success whenever at
 * least one FETCH response came before a tagged NO: a server that answers
 * some messages and then "NO" (Dovecot: "Some messages could not be
 * FETCHed") looks like a complete answer to pull.c, which then takes the
 * missing records as absent (metadata) or expunged (bodies).  This pins
 * the behaviour pull.c must guard against (see the report).  A NO without
 * any FETCH, and a BAD, are errors. */
static void test_fetch_tagged_no_after_results(void)
{
	for (int qr = 0; qr < 2; qr++) {
		struct fetch_run f;
		fetch_run(&f, "* 1 FETCH (UID 1 FLAGS ())\r\n1 NO Some messages could not be FETCHed\r\n",
			  qr, false);
		CHECK_EQ_INT(f.r, MAILIMAP_NO_ERROR);
		CHECK(f.result != NULL && clist_count(f.result) == 1);
		fetch_release(&f);
		fetch_run(&f, "1 NO Some messages could not be FETCHed\r\n", qr, false);
		CHECK(f.r != MAILIMAP_NO_ERROR);
		fetch_release(&f);
		fetch_run(&f, "* 1 FETCH (UID 1 FLAGS ())\r\n1 BAD [SERVERBUG] Internal error\r\n", qr, false);
		CHECK(f.r != MAILIMAP_NO_ERROR);
		fetch_release(&f);
	}
}

/* The connection pull really uses (lib/imap/imap_conn.c over a netconn),
 * against a server on 127.0.0.1 that answers LOGIN, CAPABILITY and EXAMINE,
 * then starts a FETCH body literal and closes the connection inside it.
 * The client must fail, not spin: libetpan 1.9 reads a literal in a loop
 * that takes a read of 0 as "nothing yet", and imap_conn.c's driver passes
 * netconn_read's 0 at EOF through (fix: return -1 for 0 in nc_read).
 * FAILS today (the client is killed by its alarm after 10 s). */
static bool serve_line(int fd, char *line, size_t max)
{
	size_t n = 0;
	while (n + 1 < max) {
		char c;
		if (recv(fd, &c, 1, 0) != 1)
			return false;
		if (c == '\n')
			break;
		if (c != '\r')
			line[n++] = c;
	}
	line[n] = '\0';
	return true;
}

static void serve_send(int fd, const char *s)
{
	(void)!send(fd, s, strlen(s), MSG_NOSIGNAL);
}

/*
 * A scripted IMAP server on loopback against a forked client.  The client
 * logs in, EXAMINEs INBOX and runs a metadata UID FETCH; check(c, r) turns
 * what libetpan returned into its exit status (0: as it must).  The server
 * answers UID FETCH with fetch_answer, then closes the connection
 * (close_after) or waits until the client closes it.  *st_r: the
 * client's wait status (-1 if it never ran).
 */
static void conn_fetch_against(const char *fetch_answer, bool close_after, int timeout_ms,
			       int (*check)(struct imap_conn *c, int r), int *st_r)
{
	*st_r = -1;
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t salen = sizeof(sa);
	REQUIRE(ls >= 0 && bind(ls, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(ls, 1) == 0 &&
		getsockname(ls, (struct sockaddr *)&sa, &salen) == 0);
	fflush(NULL);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		close(ls);
		alarm(10);
		struct imap_conn_opts o = {
			.net = { .host = "127.0.0.1", .port = ntohs(sa.sin_port), .tls = NETCONN_PLAIN,
				 .timeout_ms = timeout_ms },
			.user = "alice", .password = "pw",
		};
		struct imap_conn *c = NULL;
		struct arca_err err = { 0 };
		if (imap_conn_open(&o, &c, &err) != 0) {
			fprintf(stderr, "  imap_conn_open: %s\n", err.msg);
			_exit(3);
		}
		if (mailimap_examine(c->imap, "INBOX") != MAILIMAP_NO_ERROR)
			_exit(4);
		struct mailimap_set *set = mailimap_set_new_interval(1, 0);
		struct mailimap_fetch_type *ft = meta_type(true);
		clist *result = NULL;
		_exit(check(c, mailimap_uid_fetch(c->imap, set, ft, &result)));
	}
	struct pollfd pfd = { .fd = ls, .events = POLLIN };
	int fd = poll(&pfd, 1, 10000) == 1 ? accept4(ls, NULL, NULL, SOCK_CLOEXEC) : -1;
	close(ls);
	if (fd >= 0) {
		struct timeval tv = { .tv_sec = 10 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		serve_send(fd, "* OK ready\r\n");
		char line[1024], reply[1200];
		while (serve_line(fd, line, sizeof(line))) {
			char tag[32];
			if (sscanf(line, "%31s", tag) != 1)
				break;
			if (strstr(line, "UID FETCH")) {
				serve_send(fd, fetch_answer);
				if (close_after)
					break;
				continue;
			}
			if (strstr(line, "CAPABILITY"))
				serve_send(fd, "* CAPABILITY IMAP4rev1\r\n");
			snprintf(reply, sizeof(reply), "%s OK%s done\r\n", tag,
				 strstr(line, "EXAMINE") ? " [READ-ONLY]" : "");
			serve_send(fd, reply);
		}
		close(fd);
	}
	CHECK(waitpid(pid, st_r, 0) == pid);
}

static int fetch_failed(struct imap_conn *c, int r)
{
	(void)c;
	return r == MAILIMAP_NO_ERROR ? 5 : 0;   /* failed, as it must */
}

static void test_conn_eof_inside_literal(void)
{
	/* and close inside the literal */
	int st;
	conn_fetch_against("* 1 FETCH (UID 7 BODY[] {6}\r\nab", true, 3000, fetch_failed, &st);
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
		fprintf(stderr, "  the client spun on EOF inside a literal (imap_conn.c nc_read returns 0 at EOF)\n");
	CHECK(WIFEXITED(st));
	CHECK_EQ_INT(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0);
}

/* The bytes of one answer are bounded (IMAP_ANSWER_MAX): unasked-for
 * literals of 32 MiB each are refused once they add up to more, "+" lines
 * between them or not, and a tagged line in between starts the count
 * again; a folder's size raises the bound (imap_conn_expect_records). */
static void test_answer_guard(void)
{
	static uint8_t chunk[1 << 16];
	memset(chunk, 'x', sizeof(chunk));
	for (int tagged = 0; tagged <= 1; tagged++) {
		struct imap_tagwatch w;
		imap_tagwatch_init(&w);
		int rc = 0, i;
		for (i = 0; i < 6 && rc == 0; i++) {
			char head[64];
			snprintf(head, sizeof(head), "* %d FETCH (BODY[] {%u}\r\n", i + 1, 32u << 20);
			rc = imap_tagwatch_take(&w, (const uint8_t *)head, strlen(head));
			for (size_t k = 0; k < (32u << 20) / sizeof(chunk) && rc == 0; k++)
				rc = imap_tagwatch_take(&w, chunk, sizeof(chunk));
			if (rc == 0)
				rc = imap_tagwatch_take(&w, (const uint8_t *)")\r\n", 3);
			if (rc == 0 && tagged)
				rc = imap_tagwatch_take(&w, (const uint8_t *)"7 OK done\r\n", 11);
			else if (rc == 0)   /* a "+" amid the answer does not start it again */
				rc = imap_tagwatch_take(&w, (const uint8_t *)"+ x\r\n", 5);
		}
		if (tagged) {
			CHECK_EQ_INT(rc, 0);
			CHECK(w.refused == NULL);
		} else {
			CHECK(rc != 0);
			CHECK(w.refused != NULL && strstr(w.refused, "answer over"));
			CHECK_EQ_INT(i, 4);   /* the fourth literal crosses 128 MiB */
		}
	}
}

/* A server that answers UID FETCH with a literal of 4 GiB and then waits:
 * the client must not hand it to libetpan (which would allocate it whole)
 * and must fail at once with a message that says why. */
static int fetch_refused_huge(struct imap_conn *c, int r)
{
	if (r == MAILIMAP_NO_ERROR)
		return 5;
	struct arca_err err = { 0 };
	imap_conn_fail(c, r, "UID FETCH", &err);
	fprintf(stderr, "  (as expected) %s\n", err.msg);
	return strstr(err.msg, "UID FETCH refused: the server announced a literal of 4294967296 bytes") ? 0 : 6;
}

static void test_conn_huge_literal(void)
{
	/* 2^32 + 0: libetpan would read it as {0}; the server then waits
	 * for the client to give up */
	int st;
	conn_fetch_against("* 1 FETCH (UID 7 BODY[] {4294967296}\r\nabc", false, 8000, fetch_refused_huge,
			   &st);
	CHECK(WIFEXITED(st));
	CHECK_EQ_INT(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0);
}

/* Structures libetpan's parser never makes but its constructors allow. */
static void test_fetch_constructed(void)
{
	clist *items = clist_new();
	clist *flags = clist_new();
	REQUIRE(items && flags);
	clist_append(flags, mailimap_flag_fetch_new(MAILIMAP_FLAG_FETCH_OTHER, mailimap_flag_new_seen()));
	clist_append(flags, mailimap_flag_fetch_new(MAILIMAP_FLAG_FETCH_RECENT, NULL));
	clist_append(flags, mailimap_flag_fetch_new(MAILIMAP_FLAG_FETCH_OTHER, NULL));   /* no flag */
	clist_append(flags, mailimap_flag_fetch_new(MAILIMAP_FLAG_FETCH_OTHER,
						    mailimap_flag_new_flag_extension(strdup("Foo"))));
	clist_append(flags, mailimap_flag_fetch_new(MAILIMAP_FLAG_FETCH_OTHER,
						    mailimap_flag_new_flag_keyword(strdup("work"))));
	clist_append(items, mailimap_msg_att_item_new(MAILIMAP_MSG_ATT_ITEM_DYNAMIC,
						      mailimap_msg_att_dynamic_new(flags), NULL, NULL));
	/* FLAGS with no list at all */
	clist_append(items, mailimap_msg_att_item_new(MAILIMAP_MSG_ATT_ITEM_DYNAMIC,
						      mailimap_msg_att_dynamic_new(NULL), NULL, NULL));
	clist_append(items, mailimap_msg_att_item_new(MAILIMAP_MSG_ATT_ITEM_STATIC, NULL,
		mailimap_msg_att_static_new(MAILIMAP_MSG_ATT_UID, NULL, NULL, NULL, NULL, NULL,
					    0, 0, NULL, NULL, NULL, 42), NULL));
	/* INTERNALDATE without a date */
	clist_append(items, mailimap_msg_att_item_new(MAILIMAP_MSG_ATT_ITEM_STATIC, NULL,
		mailimap_msg_att_static_new(MAILIMAP_MSG_ATT_INTERNALDATE, NULL, NULL, NULL, NULL, NULL,
					    0, 0, NULL, NULL, NULL, 0), NULL));
	clist_append(items, mailimap_msg_att_item_new(MAILIMAP_MSG_ATT_ITEM_STATIC, NULL,
		mailimap_msg_att_static_new(MAILIMAP_MSG_ATT_RFC822_SIZE, NULL, NULL, NULL, NULL, NULL,
					    0, 77, NULL, NULL, NULL, 0), NULL));
	struct mailimap_msg_att *ma = mailimap_msg_att_new(items);
	REQUIRE(ma != NULL);
	struct imap_fetched fe;
	imap_fetched_parse(ma, &fe);
	CHECK(fe.has_flags && fe.has_uid && fe.has_size && !fe.has_date && !fe.has_body);
	CHECK_EQ_INT(fe.flags, FL('S'));
	CHECK_EQ_INT(fe.nkw, 1);
	CHECK_STR(fe.keywords[0], "work");
	CHECK_EQ_INT(fe.uid, 42);
	CHECK_EQ_INT(fe.size, 77);
	CHECK(fe.guid == NULL && fe.modseq == 0);
	mailimap_msg_att_free(ma);

	/* an empty FETCH */
	ma = mailimap_msg_att_new(clist_new());
	REQUIRE(ma != NULL);
	memset(&fe, 0xa5, sizeof(fe));
	imap_fetched_parse(ma, &fe);
	CHECK(!fe.has_flags && !fe.has_uid && !fe.has_size && !fe.has_date && !fe.has_body);
	CHECK(fe.guid == NULL && fe.nkw == 0 && fe.flags == 0);
	mailimap_msg_att_free(ma);
}

static int64_t date_of(int d, int mo, int y, int h, int mi, int s, int zone)
{
	struct mailimap_date_time *dt = mailimap_date_time_new(d, mo, y, h, mi, s, zone);
	if (dt == NULL)
		abort();
	int64_t t = imap_date_to_epoch(dt);
	mailimap_date_time_free(dt);
	return t;
}

static void test_date_to_epoch(void)
{
	CHECK_EQ_INT(date_of(1, 1, 1970, 0, 0, 0, 0), 0);
	CHECK_EQ_INT(date_of(1, 1, 2024, 10, 0, 0, 0), 1704103200);
	CHECK_EQ_INT(date_of(1, 1, 2024, 10, 0, 0, 100), 1704099600);     /* +0100 */
	CHECK_EQ_INT(date_of(1, 1, 2024, 10, 0, 0, -530), 1704123000);    /* -0530 */
	CHECK_EQ_INT(date_of(1, 1, 2024, 10, 0, 0, 545), 1704103200 - 20700);   /* +0545 */
	CHECK_EQ_INT(date_of(1, 1, 2024, 10, 0, 0, -1200), 1704103200 + 43200);
	CHECK_EQ_INT(date_of(1, 1, 2024, 10, 0, 0, 1400), 1704103200 - 50400);
	/* before the epoch, and a leap day */
	CHECK_EQ_INT(date_of(31, 12, 1969, 23, 59, 59, 0), -1);
	CHECK_EQ_INT(date_of(29, 2, 2024, 12, 0, 0, 0), 1709208000);
	/* a zone that crosses midnight backwards */
	CHECK_EQ_INT(date_of(1, 1, 1970, 0, 30, 0, 100), -1800);
}

/* ---- pull.h helpers --------------------------------------------------------- */

static int unserve(const char *base, const char *served, size_t len, struct abuf *out, bool *strip)
{
	*strip = true;   /* must be set either way */
	return pull_unserve_crlf(base, (const uint8_t *)served, len, out, strip);
}

static void test_unserve_crlf(void)
{
	struct abuf out = ABUF_INIT;
	bool strip;
	/* a file with bare LFs, served with CRLF: the exact file comes back */
	static const char file[] = "From: a\nSubject: b\n\nbody\n";
	static const char served[] = "From: a\r\nSubject: b\r\n\r\nbody\r\n";
	char base[128];
	snprintf(base, sizeof(base), "1700000000.M1P2.host,S=%zu,W=%zu", strlen(file), strlen(served));
	CHECK_EQ_INT(unserve(base, served, strlen(served), &out, &strip), 1);
	CHECK(!strip);
	CHECK(out.len == strlen(file) && memcmp(out.data, file, out.len) == 0);

	/* a file already CRLF (S= is what was served): kept as is */
	snprintf(base, sizeof(base), "1700000000.M1P2.host,S=%zu", strlen(served));
	CHECK_EQ_INT(unserve(base, served, strlen(served), &out, &strip), 0);
	CHECK(!strip);

	/* CRLF and bare LF mixed in the file: can't be undone, S= must go */
	static const char mixed_file[] = "a\r\nb\n";
	static const char mixed_served[] = "a\r\nb\r\n";
	snprintf(base, sizeof(base), "1700000000.M1P2.host,S=%zu", strlen(mixed_file));
	CHECK_EQ_INT(unserve(base, mixed_served, strlen(mixed_served), &out, &strip), 0);
	CHECK(strip);
	CHECK_EQ_INT(out.len, 0);

	/* no S=: nothing known, nothing stripped */
	CHECK_EQ_INT(unserve("1700000000.M1P2.host", served, strlen(served), &out, &strip), 0);
	CHECK(!strip);
	CHECK_EQ_INT(unserve("1700000000.M1P2.host,W=30", served, strlen(served), &out, &strip), 0);
	CHECK(!strip);
	/* a malformed S= is no S= */
	CHECK_EQ_INT(unserve("1700000000.M1P2.host,S=x", served, strlen(served), &out, &strip), 0);
	CHECK(!strip);

	/* S= larger than what was served: S= lies, strip it */
	CHECK_EQ_INT(unserve("1.M1.host,S=1000", served, strlen(served), &out, &strip), 0);
	CHECK(strip);
	/* S= smaller than even the unserved bytes */
	CHECK_EQ_INT(unserve("1.M1.host,S=3", served, strlen(served), &out, &strip), 0);
	CHECK(strip);

	/* empty message, S=0 */
	CHECK_EQ_INT(unserve("1.M1.host,S=0", "", 0, &out, &strip), 0);
	CHECK(!strip);
	/* served "\r\n" for a file "\n" */
	CHECK_EQ_INT(unserve("1.M1.host,S=1", "\r\n", 2, &out, &strip), 1);
	CHECK(!strip && out.len == 1 && out.data[0] == '\n');
	/* a CR not before LF stays; "\r\r\n" is CR then a served LF */
	CHECK_EQ_INT(unserve("1.M1.host,S=4", "a\r\r\nb\r", 6, &out, &strip), 0);
	CHECK(strip);   /* unserved "a\r\nb\r" is 5 bytes, not 4 */
	CHECK_EQ_INT(unserve("1.M1.host,S=5", "a\r\r\nb\r", 6, &out, &strip), 1);
	CHECK(!strip && out.len == 5 && memcmp(out.data, "a\r\nb\r", 5) == 0);
	abuf_release(&out);
}

static void test_base_ok(void)
{
	CHECK(pull_base_ok("1795867224.M925824P9877.host,S=247,W=258"));
	CHECK(pull_base_ok("a"));
	CHECK(pull_base_ok("~!@#$%^&*()_+{}|\"<>?[]\\;',=-`"));
	CHECK(!pull_base_ok(""));
	CHECK(!pull_base_ok("."));
	CHECK(!pull_base_ok(".."));
	CHECK(!pull_base_ok("a/b"));
	CHECK(!pull_base_ok("/"));
	CHECK(!pull_base_ok("a:2,S"));   /* the info separator */
	CHECK(!pull_base_ok("a b"));
	CHECK(!pull_base_ok("a\tb"));
	CHECK(!pull_base_ok("a\x7f"));
	CHECK(!pull_base_ok("caf\xc3\xa9"));
	CHECK(!pull_base_ok("\x80"));
	char s[300];
	/* ":2," and 26 letters must still fit in a 255-byte file name */
	memset(s, 'x', PULL_BASE_MAX);
	s[PULL_BASE_MAX] = '\0';
	CHECK(pull_base_ok(s));
	s[PULL_BASE_MAX] = 'x';
	s[PULL_BASE_MAX + 1] = '\0';
	CHECK(!pull_base_ok(s));
}

static void strip_is(const char *in, const char *want)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", in);
	pull_base_strip_sizes(buf);
	if (strcmp(buf, want) != 0)
		fprintf(stderr, "  strip(\"%s\") = \"%s\", want \"%s\"\n", in, buf, want);
	CHECK(strcmp(buf, want) == 0);
}

static void test_base_strip_sizes(void)
{
	strip_is("1795867224.M925824P9877.host,S=247,W=258", "1795867224.M925824P9877.host");
	strip_is("1795867224.M925824P9877.host,W=258,S=247", "1795867224.M925824P9877.host");
	strip_is("1.M2.host,S=247,W=258,X=1", "1.M2.host,X=1");
	strip_is("1.M2.host,X=1,S=247", "1.M2.host,X=1");
	strip_is("1.M2.host,S=1,S=2,W=3", "1.M2.host");
	strip_is("1.M2.host,S=", "1.M2.host");
	strip_is("1.M2.host", "1.M2.host");
	strip_is("1.M2.host,Sx=1,s=2,w=3", "1.M2.host,Sx=1,s=2,w=3");
	strip_is("1.M2.host,,S=1", "1.M2.host,");
	strip_is("S=1,W=2", "S=1");
	strip_is("", "");
	strip_is(",", ",");
	strip_is(",S", ",S");
}

/* A base pull_base_ok accepts must be one the restore can write back, as
 * it is and after pull.c strips its S=/W= (store_body and known_content do,
 * after take_meta checked the X-GUID): restore_msg formats the name with
 * maildir_name_format and skips the message when it can't be a file name
 * ("", ".", ".."), and a name starting with '.' is written as a dotfile,
 * which Dovecot never lists.
 * FAILS today (see the report): pull_base_ok takes ".x" and ",S=5"; the
 * fix is one line in pull_base_ok, refusing a leading '.' or ','. */
static void test_base_ok_restorable(void)
{
	static const char *const bases[] = {
		"1700000000.M1P2.host,S=5,W=6", "x,S=5", "x", "a,b", "a,Sx=1",
		",S=5", ",S=5,W=6", ",W=1", ".,S=5", "..,W=9", ".hidden", "...", ",x",
	};
	struct abuf name = ABUF_INIT;
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		char buf[64];
		snprintf(buf, sizeof(buf), "%s", bases[i]);
		if (!pull_base_ok(buf))
			continue;
		for (int stripped = 0; stripped < 2; stripped++) {
			if (stripped)
				pull_base_strip_sizes(buf);
			int rc = maildir_name_format(buf, FL('S'), 0, &name);
			if (rc != 0)
				fprintf(stderr, "  X-GUID \"%s\" passes pull_base_ok, but %s\"%s\" can't be restored (%d)\n",
					bases[i], stripped ? "stripped " : "", buf, rc);
			CHECK_EQ_INT(rc, 0);
		}
	}
	abuf_release(&name);
}

static struct abuf fname_out = ABUF_INIT;

static int fname(const char *mutf7, char delim, const char **out_r)
{
	int rc = pull_folder_name(mutf7, delim, &fname_out);
	*out_r = rc == 0 ? (const char *)fname_out.data : NULL;
	return rc;
}

static void test_folder_name(void)
{
	const char *o;
	CHECK_EQ_INT(fname("INBOX", '.', &o), 0);
	CHECK_STR(o, "INBOX");
	CHECK_EQ_INT(fname("inbox", '/', &o), 0);
	CHECK_STR(o, "INBOX");
	CHECK_EQ_INT(fname("InBoX", '\0', &o), 0);
	CHECK_STR(o, "INBOX");
	CHECK_EQ_INT(fname("INBOX.&ANw-bersicht", '.', &o), 0);
	CHECK_STR(o, "INBOX/\xc3\x9c" "bersicht");
	CHECK_EQ_INT(fname("&ANw-bersicht", '/', &o), 0);
	CHECK_STR(o, "\xc3\x9c" "bersicht");
	CHECK_EQ_INT(fname("Archive.2024.Q1", '.', &o), 0);
	CHECK_STR(o, "Archive/2024/Q1");
	CHECK_EQ_INT(fname("Archive/2024/Q1", '/', &o), 0);
	CHECK_STR(o, "Archive/2024/Q1");
	/* the other separator inside a level */
	CHECK_EQ_INT(fname("Archive.2024", '/', &o), 0);
	CHECK_STR(o, "Archive.2024");
	CHECK_EQ_INT(fname("a/b.c", '.', &o), ARCA_EFORMAT);   /* '/' inside a level */
	CHECK_EQ_INT(fname("a/b", '\0', &o), ARCA_EFORMAT);    /* flat (NIL delimiter) */
	CHECK_EQ_INT(fname("a.b", '\0', &o), 0);
	CHECK_STR(o, "a.b");
	CHECK_EQ_INT(fname("&-Co", '.', &o), 0);
	CHECK_STR(o, "&Co");
	/* empty levels, leading and trailing separators, empty names */
	static const char *const empty_level[] = { "", "a..b", ".a", "a.", ".", "..", "INBOX." };
	for (size_t i = 0; i < sizeof(empty_level) / sizeof(empty_level[0]); i++)
		CHECK_EQ_INT(fname(empty_level[i], '.', &o), ARCA_EFORMAT);
	CHECK_EQ_INT(fname("a//b", '/', &o), ARCA_EFORMAT);
	CHECK_EQ_INT(fname("/a", '/', &o), ARCA_EFORMAT);
	CHECK_EQ_INT(fname("a/", '/', &o), ARCA_EFORMAT);
	/* invalid modified UTF-7 */
	static const char *const bad[] = {
		"&ANw", "&ANw-bersicht&", "&-&", "caf\xc3\xa9", "a\tb", "&AGE-",  /* encoded 'a' */
		"&2D0-",                                                           /* a high surrogate alone */
		"&2D3eAA-x&3gA-",                                                  /* a low one alone */
		"&AAA-",                                                           /* U+0000 */
		"&ANw-&ANw-",                                                      /* two runs back to back */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = fname(bad[i], '.', &o);
		if (rc != ARCA_EFORMAT)
			fprintf(stderr, "  accepted: %s\n", bad[i]);
		CHECK_EQ_INT(rc, ARCA_EFORMAT);
	}
	/* a valid pair is fine */
	CHECK_EQ_INT(fname("&2D3eAA-", '.', &o), 0);
	CHECK_STR(o, "\xf0\x9f\x98\x80");
	abuf_release(&fname_out);
}

/* ---- alarms ----------------------------------------------------------------- */

static void alarm_sample(struct alarm *a, size_t nsuspects)
{
	memset(a, 0, sizeof(*a));
	a->kind = ALARM_MASS_DELETION;
	a->account = strdup("alice@example.test");
	a->text = strdup("lost 90 of 100 messages and 0 of 5 folders since the last snapshot");
	a->suspects = calloc(nsuspects ? nsuspects : 1, sizeof(*a->suspects));
	if (!a->account || !a->text || !a->suspects)
		abort();
	for (size_t i = 0; i < nsuspects; i++) {
		char acc[32];
		snprintf(acc, sizeof(acc), "user%zu@example.test", i);
		a->suspects[i].account = strdup(acc);
		if (a->suspects[i].account == NULL)
			abort();
		memset(a->suspects[i].root, (int)(0x11 * (i + 1)), ARCA_ID_LEN);
	}
	a->nsuspects = nsuspects;
}

static bool alarm_same(const struct alarm *a, const struct alarm *b)
{
	if (a->kind != b->kind || strcmp(a->account, b->account) || strcmp(a->text, b->text) ||
	    a->nsuspects != b->nsuspects)
		return false;
	for (size_t i = 0; i < a->nsuspects; i++)
		if (strcmp(a->suspects[i].account, b->suspects[i].account) ||
		    memcmp(a->suspects[i].root, b->suspects[i].root, ARCA_ID_LEN))
			return false;
	return true;
}

/* The layout a pull records from the separator LIST showed. */
static void test_layout_of_separator(void)
{
	CHECK_EQ_INT(pull_layout_of_separator('.', false, false), MAILDIR_LAYOUT_MAILDIRPP);
	CHECK_EQ_INT(pull_layout_of_separator('/', false, false), MAILDIR_LAYOUT_FS);
	/* what can't be told apart stays Maildir++ (the pull warns) */
	CHECK_EQ_INT(pull_layout_of_separator('\0', false, false), MAILDIR_LAYOUT_MAILDIRPP);
	CHECK_EQ_INT(pull_layout_of_separator('\0', true, false), MAILDIR_LAYOUT_MAILDIRPP);
	CHECK_EQ_INT(pull_layout_of_separator('\\', false, false), MAILDIR_LAYOUT_MAILDIRPP);
	CHECK_EQ_INT(pull_layout_of_separator('/', true, false), MAILDIR_LAYOUT_MAILDIRPP);
	CHECK_EQ_INT(pull_layout_of_separator('/', false, true), MAILDIR_LAYOUT_MAILDIRPP);
}

static void test_alarm_round_trip(void)
{
	for (size_t ns = 0; ns <= 3; ns++) {
		struct alarm a, b;
		alarm_sample(&a, ns);
		struct abuf e = ABUF_INIT, e2 = ABUF_INIT;
		CHECK_EQ_INT(alarm_encode(&a, &e), 0);
		CHECK_EQ_INT(e.data[0], 1);
		CHECK_EQ_INT(e.data[1], ALARM_MASS_DELETION);
		CHECK_EQ_INT(alarm_decode(e.data, e.len, &b), 0);
		CHECK(alarm_same(&a, &b));
		CHECK(!b.cleared && b.cleared_reason == NULL && b.seq == 0);
		CHECK_EQ_INT(alarm_encode(&b, &e2), 0);
		CHECK(e.len == e2.len && memcmp(e.data, e2.data, e.len) == 0);
		alarm_release(&b);
		abuf_release(&e2);
		abuf_release(&e);
		alarm_release(&a);
	}
	/* the whole server: account "" and every kind */
	for (uint8_t k = 1; k <= ALARM_KIND_MAX; k++) {
		struct alarm a = { .kind = k, .account = "", .text = "" }, b;
		struct abuf e = ABUF_INIT;
		CHECK_EQ_INT(alarm_encode(&a, &e), 0);
		CHECK_EQ_INT(e.len, 5);
		CHECK_EQ_INT(alarm_decode(e.data, e.len, &b), 0);
		CHECK(alarm_same(&a, &b));
		CHECK(strcmp(alarm_kind_name(k), "unknown") != 0);
		alarm_release(&b);
		abuf_release(&e);
	}
	CHECK_STR(alarm_kind_name(0), "unknown");
	CHECK_STR(alarm_kind_name(ALARM_KIND_MAX + 1), "unknown");
}

static void test_alarm_decode_rejects(void)
{
	struct alarm a, b;
	alarm_sample(&a, 2);
	struct abuf e = ABUF_INIT;
	REQUIRE(alarm_encode(&a, &e) == 0);
	/* every truncation */
	for (size_t n = 0; n < e.len; n++) {
		int rc = alarm_decode(e.data, n, &b);
		if (rc != ARCA_EFORMAT)
			fprintf(stderr, "  truncated to %zu: %d\n", n, rc);
		CHECK_EQ_INT(rc, ARCA_EFORMAT);
		CHECK(b.account == NULL && b.text == NULL && b.suspects == NULL && b.nsuspects == 0);
	}
	/* a trailing byte */
	uint8_t *buf = malloc(e.len + 1);
	REQUIRE(buf != NULL);
	memcpy(buf, e.data, e.len);
	buf[e.len] = 0;
	CHECK_EQ_INT(alarm_decode(buf, e.len + 1, &b), ARCA_EFORMAT);
	/* versions */
	for (int v = 0; v < 256; v += 1) {
		if (v == 1)
			continue;
		buf[0] = (uint8_t)v;
		CHECK_EQ_INT(alarm_decode(buf, e.len, &b), ARCA_EVERSION);
	}
	buf[0] = 1;
	/* kinds 0 and past the last */
	static const uint8_t bad_kinds[] = { 0, ALARM_KIND_MAX + 1, 255 };
	for (size_t i = 0; i < sizeof(bad_kinds); i++) {
		buf[1] = bad_kinds[i];
		CHECK_EQ_INT(alarm_decode(buf, e.len, &b), ARCA_EFORMAT);
	}
	buf[1] = ALARM_MASS_DELETION;
	CHECK_EQ_INT(alarm_decode(buf, e.len, &b), 0);
	alarm_release(&b);
	/* a NUL inside the account */
	buf[2 + 3] = '\0';
	CHECK_EQ_INT(alarm_decode(buf, e.len, &b), ARCA_EFORMAT);
	free(buf);

	/* hand-made: more suspects announced than the bytes can hold */
	struct abuf h = ABUF_INIT;
	abuf_add_u8(&h, 1);
	abuf_add_u8(&h, ALARM_ACCOUNT_GONE);
	abuf_add_str(&h, "a");
	abuf_add_str(&h, "t");
	abuf_add_varint(&h, 2);
	abuf_add_str(&h, "a");
	uint8_t root[ARCA_ID_LEN] = { 0 };
	abuf_add(&h, root, sizeof(root));
	CHECK_EQ_INT(alarm_decode(h.data, h.len, &b), ARCA_EFORMAT);
	/* a huge count */
	abuf_reset(&h);
	abuf_add_u8(&h, 1);
	abuf_add_u8(&h, ALARM_ACCOUNT_GONE);
	abuf_add_str(&h, "a");
	abuf_add_str(&h, "t");
	abuf_add_varint(&h, UINT64_MAX);
	CHECK_EQ_INT(alarm_decode(h.data, h.len, &b), ARCA_EFORMAT);
	/* a text over ALARM_TEXT_MAX, and one at it */
	char *t = malloc(ALARM_TEXT_MAX + 2);
	REQUIRE(t != NULL);
	memset(t, 't', ALARM_TEXT_MAX + 1);
	t[ALARM_TEXT_MAX + 1] = '\0';
	for (int over = 0; over < 2; over++) {
		t[ALARM_TEXT_MAX + over] = '\0';
		abuf_reset(&h);
		abuf_add_u8(&h, 1);
		abuf_add_u8(&h, ALARM_JOURNAL_SILENT);
		abuf_add_str(&h, "");
		abuf_add_str(&h, t);
		abuf_add_varint(&h, 0);
		int rc = alarm_decode(h.data, h.len, &b);
		CHECK_EQ_INT(rc, over ? ARCA_EFORMAT : 0);
		if (rc == 0)
			alarm_release(&b);
		t[ALARM_TEXT_MAX + over] = 't';
	}
	free(t);
	abuf_release(&h);
	abuf_release(&e);
	alarm_release(&a);
}

static void test_alarm_encode_limits(void)
{
	struct abuf e = ABUF_INIT;
	struct alarm a = { .kind = 0, .account = "", .text = "" };
	CHECK_EQ_INT(alarm_encode(&a, &e), ARCA_ELIMIT);
	a.kind = ALARM_KIND_MAX + 1;
	CHECK_EQ_INT(alarm_encode(&a, &e), ARCA_ELIMIT);
	a.kind = ALARM_UIDVALIDITY;
	char *big = malloc(SNAP_ACCOUNT_MAX + ALARM_TEXT_MAX + 2);
	REQUIRE(big != NULL);
	memset(big, 'x', SNAP_ACCOUNT_MAX + ALARM_TEXT_MAX + 1);
	big[SNAP_ACCOUNT_MAX + 1] = '\0';
	a.account = big;
	CHECK_EQ_INT(alarm_encode(&a, &e), ARCA_ELIMIT);
	a.account = "";
	big[SNAP_ACCOUNT_MAX + 1] = 'x';
	big[ALARM_TEXT_MAX + 1] = '\0';
	a.text = big;
	CHECK_EQ_INT(alarm_encode(&a, &e), ARCA_ELIMIT);
	a.text = "";
	big[SNAP_ACCOUNT_MAX + 1] = '\0';
	struct alarm_suspect s = { .account = big };
	a.suspects = &s;
	a.nsuspects = 1;
	CHECK_EQ_INT(alarm_encode(&a, &e), ARCA_ELIMIT);
	a.nsuspects = ALARM_SUSPECTS_MAX + 1;
	CHECK_EQ_INT(alarm_encode(&a, &e), ARCA_ELIMIT);
	free(big);
	abuf_release(&e);
}

static void test_alarm_clear_codec(void)
{
	struct abuf e = ABUF_INIT;
	uint64_t seq = 0;
	char *reason = NULL;
	CHECK_EQ_INT(alarm_clear_encode(UINT64_C(0x0102030405060708), "checked with the admin", &e), 0);
	CHECK_EQ_INT(e.len, 1 + 8 + 1 + strlen("checked with the admin"));
	CHECK_EQ_INT(alarm_clear_decode(e.data, e.len, &seq, &reason), 0);
	CHECK_EQ_INT(seq, UINT64_C(0x0102030405060708));
	CHECK_STR(reason, "checked with the admin");
	struct abuf e2 = ABUF_INIT;
	CHECK_EQ_INT(alarm_clear_encode(seq, reason, &e2), 0);
	CHECK(e.len == e2.len && memcmp(e.data, e2.data, e.len) == 0);
	free(reason);
	abuf_release(&e2);
	/* reason_r may be NULL */
	CHECK_EQ_INT(alarm_clear_decode(e.data, e.len, &seq, NULL), 0);
	/* every truncation */
	for (size_t n = 0; n < e.len; n++) {
		reason = NULL;
		CHECK_EQ_INT(alarm_clear_decode(e.data, n, &seq, &reason), ARCA_EFORMAT);
		CHECK(reason == NULL);
	}
	/* trailing byte, other versions, a NUL in the reason */
	uint8_t *buf = malloc(e.len + 1);
	REQUIRE(buf != NULL);
	memcpy(buf, e.data, e.len);
	buf[e.len] = 'x';
	CHECK_EQ_INT(alarm_clear_decode(buf, e.len + 1, &seq, NULL), ARCA_EFORMAT);
	buf[0] = 2;
	CHECK_EQ_INT(alarm_clear_decode(buf, e.len, &seq, NULL), ARCA_EVERSION);
	buf[0] = 0;
	CHECK_EQ_INT(alarm_clear_decode(buf, e.len, &seq, NULL), ARCA_EVERSION);
	buf[0] = 1;
	buf[12] = '\0';
	CHECK_EQ_INT(alarm_clear_decode(buf, e.len, &seq, NULL), ARCA_EFORMAT);
	free(buf);
	/* the reason's limit, both ways */
	char *t = malloc(ALARM_TEXT_MAX + 2);
	REQUIRE(t != NULL);
	memset(t, 'r', ALARM_TEXT_MAX + 1);
	t[ALARM_TEXT_MAX + 1] = '\0';
	CHECK_EQ_INT(alarm_clear_encode(1, t, &e), ARCA_ELIMIT);
	t[ALARM_TEXT_MAX] = '\0';
	CHECK_EQ_INT(alarm_clear_encode(1, t, &e), 0);
	CHECK_EQ_INT(alarm_clear_decode(e.data, e.len, &seq, NULL), 0);
	/* hand-made, one byte over */
	abuf_reset(&e);
	t[ALARM_TEXT_MAX] = 'r';
	abuf_add_u8(&e, 1);
	abuf_add_u64(&e, 1);
	abuf_add_str(&e, t);
	CHECK_EQ_INT(alarm_clear_decode(e.data, e.len, &seq, NULL), ARCA_EFORMAT);
	free(t);
	/* empty reason */
	CHECK_EQ_INT(alarm_clear_encode(0, "", &e), 0);
	reason = NULL;
	CHECK_EQ_INT(alarm_clear_decode(e.data, e.len, &seq, &reason), 0);
	CHECK_STR(reason, "");
	free(reason);
	abuf_release(&e);
}

/* ---- snapshot: a folder with its messages; the root v2 ------------------- */

static void folder_sample(struct snapshot *s)
{
	struct snap_folder *f = snapshot_add_folder(s, "Archive/2024");
	if (f == NULL)
		abort();
	f->attrs = SNAP_FOLDER_SELECTABLE | SNAP_FOLDER_SUBSCRIBED;
	free(f->special_use);
	f->special_use = strdup("\\Archive");
	f->uidvalidity = 1700000000;
	f->nextuid = 12;
	f->highestmodseq = UINT64_C(1) << 40;
	free(f->guid);
	f->guid = strdup("0123456789abcdef0123456789abcdef");
	if (!f->special_use || !f->guid || snap_folder_keyword(f, "$Junk") != 0 ||
	    snap_folder_keyword(f, "work") != 1)
		abort();
	for (uint32_t i = 0; i < 3; i++) {
		char base[64];
		snprintf(base, sizeof(base), "17000000%02u.M%uP1.host,S=%u", i, i, 100 + i);
		struct snap_msg m = {
			.uid = 9 + i, .modseq = 100 + i, .content_type = i == 2 ? OBJ_CHUNKLIST : OBJ_BLOB,
			.size = 100 + i, .date_sec = i == 1 ? -5 : (int64_t)1700000000 + i, .date_nsec = (int32_t)(i * 1000),
			.flags = FL('S') | (i ? FL('F') : 0), .keywords = i, .base = base,
			.uidlist_ext = i == 0 ? "W1234" : "", .in_new = i == 2,
		};
		memset(m.content_id, 0xc0 + (int)i, ARCA_ID_LEN);
		if (snap_folder_add_msg(f, &m) != 0)
			abort();
	}
	/* as after snapshot_store: one page of the three */
	f->message_count = 3;
	f->bytes = 303;
	f->pages = calloc(1, sizeof(*f->pages));
	if (f->pages == NULL)
		abort();
	memset(f->pages[0].id, 0x77, ARCA_ID_LEN);
	f->pages[0].count = 3;
	f->npages = 1;
}

static bool msg_same(const struct snap_msg *a, const struct snap_msg *b)
{
	return a->uid == b->uid && a->modseq == b->modseq && a->content_type == b->content_type &&
	       memcmp(a->content_id, b->content_id, ARCA_ID_LEN) == 0 && a->size == b->size &&
	       a->date_sec == b->date_sec && a->date_nsec == b->date_nsec && a->flags == b->flags &&
	       a->keywords == b->keywords && strcmp(a->base, b->base) == 0 &&
	       strcmp(a->uidlist_ext, b->uidlist_ext) == 0 && a->in_new == b->in_new;
}

static bool folder_same(const struct snap_folder *a, const struct snap_folder *b)
{
	if (strcmp(a->name, b->name) || a->attrs != b->attrs || strcmp(a->special_use, b->special_use) ||
	    a->uidvalidity != b->uidvalidity || a->nextuid != b->nextuid ||
	    a->highestmodseq != b->highestmodseq || strcmp(a->guid, b->guid) ||
	    strcmp(a->uidlist_extra, b->uidlist_extra) || a->nkeywords != b->nkeywords ||
	    a->message_count != b->message_count || a->bytes != b->bytes || a->npages != b->npages ||
	    a->nmsgs != b->nmsgs)
		return false;
	for (size_t k = 0; k < a->nkeywords; k++)
		if (strcmp(a->keywords[k], b->keywords[k]))
			return false;
	for (size_t p = 0; p < a->npages; p++)
		if (memcmp(a->pages[p].id, b->pages[p].id, ARCA_ID_LEN) || a->pages[p].count != b->pages[p].count)
			return false;
	for (size_t i = 0; i < a->nmsgs; i++)
		if (!msg_same(&a->msgs[i], &b->msgs[i]))
			return false;
	return true;
}

static void test_folder_full_round_trip(void)
{
	struct snapshot *s = snapshot_new("alice", "imap");
	REQUIRE(s != NULL);
	folder_sample(s);
	struct abuf e = ABUF_INIT, e2 = ABUF_INIT;
	CHECK_EQ_INT(snap_folder_encode_full(&s->folders[0], &e), 0);
	struct snapshot *t = snapshot_new("alice", "imap");
	REQUIRE(t != NULL);
	CHECK_EQ_INT(snap_folder_decode_full(e.data, e.len, t), 0);
	REQUIRE(t->nfolders == 1);
	CHECK(folder_same(&s->folders[0], &t->folders[0]));
	CHECK_EQ_INT(snap_folder_encode_full(&t->folders[0], &e2), 0);
	CHECK(e.len == e2.len && memcmp(e.data, e2.data, e.len) == 0);
	/* a second decode appends a second folder */
	CHECK_EQ_INT(snap_folder_decode_full(e.data, e.len, t), 0);
	CHECK_EQ_INT(t->nfolders, 2);
	snapshot_free(t);

	/* the same record without messages is the root's folder form + a 0 */
	struct abuf plain = ABUF_INIT;
	CHECK_EQ_INT(snap_folder_encode(&s->folders[0], &plain), 0);
	CHECK(plain.len < e.len && memcmp(plain.data, e.data, plain.len) == 0);
	abuf_add_varint(&plain, 0);
	t = snapshot_new("alice", "imap");
	CHECK_EQ_INT(snap_folder_decode_full(plain.data, plain.len, t), 0);
	CHECK(t->nfolders == 1 && t->folders[0].nmsgs == 0 && t->folders[0].message_count == 3);
	snapshot_free(t);
	abuf_release(&plain);
	abuf_release(&e2);
	abuf_release(&e);
	snapshot_free(s);
}

static void test_folder_full_rejects(void)
{
	struct snapshot *s = snapshot_new("alice", "imap");
	REQUIRE(s != NULL);
	folder_sample(s);
	struct abuf e = ABUF_INIT;
	REQUIRE(snap_folder_encode_full(&s->folders[0], &e) == 0);
	/* every truncation fails, and the snapshot is still freed cleanly */
	for (size_t n = 0; n < e.len; n++) {
		struct snapshot *t = snapshot_new("alice", "imap");
		REQUIRE(t != NULL);
		int rc = snap_folder_decode_full(e.data, n, t);
		if (rc == 0)
			fprintf(stderr, "  truncated to %zu bytes of %zu: accepted\n", n, e.len);
		CHECK(rc != 0);
		snapshot_free(t);
	}
	uint8_t *buf = malloc(e.len + 1);
	REQUIRE(buf != NULL);
	memcpy(buf, e.data, e.len);
	buf[e.len] = 0;
	struct snapshot *t = snapshot_new("alice", "imap");
	CHECK_EQ_INT(snap_folder_decode_full(buf, e.len + 1, t), ARCA_EFORMAT);
	snapshot_free(t);
	free(buf);

	/* the message count, the last message's fields */
	struct abuf h = ABUF_INIT;
	snap_folder_encode(&s->folders[0], &h);
	size_t head = h.len;
	abuf_add_varint(&h, 2);   /* says 2, holds 1 */
	abuf_add(&h, e.data + head + 1, e.len - head - 1);
	t = snapshot_new("alice", "imap");
	CHECK(snap_folder_decode_full(h.data, h.len, t) != 0);
	snapshot_free(t);
	abuf_reset(&h);
	snap_folder_encode(&s->folders[0], &h);
	abuf_add_varint(&h, UINT64_MAX);
	t = snapshot_new("alice", "imap");
	CHECK_EQ_INT(snap_folder_decode_full(h.data, h.len, t), ARCA_EFORMAT);
	snapshot_free(t);

	/* a message whose keyword bit has no keyword in the folder's table */
	struct snap_folder *f = &s->folders[0];
	f->msgs[2].keywords = UINT64_C(1) << 2;
	abuf_reset(&h);
	REQUIRE(snap_folder_encode_full(f, &h) == 0);
	t = snapshot_new("alice", "imap");
	CHECK_EQ_INT(snap_folder_decode_full(h.data, h.len, t), ARCA_EFORMAT);
	snapshot_free(t);
	f->msgs[2].keywords = 2;
	/* a content type that is neither BLOB nor CHUNKLIST; in_new 2 */
	f->msgs[1].content_type = 2;
	abuf_reset(&h);
	REQUIRE(snap_folder_encode_full(f, &h) == 0);
	t = snapshot_new("alice", "imap");
	CHECK_EQ_INT(snap_folder_decode_full(h.data, h.len, t), ARCA_EFORMAT);
	snapshot_free(t);
	f->msgs[1].content_type = OBJ_BLOB;
	/* nanoseconds of a whole second */
	f->msgs[0].date_nsec = 1000000000;
	abuf_reset(&h);
	REQUIRE(snap_folder_encode_full(f, &h) == 0);
	t = snapshot_new("alice", "imap");
	CHECK_EQ_INT(snap_folder_decode_full(h.data, h.len, t), ARCA_EFORMAT);
	snapshot_free(t);
	f->msgs[0].date_nsec = 0;
	/* page counts that don't add up to message_count */
	f->message_count = 4;
	abuf_reset(&h);
	REQUIRE(snap_folder_encode_full(f, &h) == 0);
	t = snapshot_new("alice", "imap");
	CHECK_EQ_INT(snap_folder_decode_full(h.data, h.len, t), ARCA_EFORMAT);
	snapshot_free(t);
	f->message_count = 3;
	/* attrs this version doesn't know */
	f->attrs = 4;
	abuf_reset(&h);
	REQUIRE(snap_folder_encode_full(f, &h) == 0);
	t = snapshot_new("alice", "imap");
	CHECK_EQ_INT(snap_folder_decode_full(h.data, h.len, t), ARCA_EFORMAT);
	snapshot_free(t);
	/* encode refuses a base over SNAP_FIELD_MAX */
	f->attrs = SNAP_FOLDER_SELECTABLE;
	char *big = malloc(SNAP_FIELD_MAX + 2);
	REQUIRE(big != NULL);
	memset(big, 'b', SNAP_FIELD_MAX + 1);
	big[SNAP_FIELD_MAX + 1] = '\0';
	char *keep = f->msgs[0].base;
	f->msgs[0].base = big;
	abuf_reset(&h);
	CHECK_EQ_INT(snap_folder_encode_full(f, &h), ARCA_ELIMIT);
	f->msgs[0].base = keep;
	free(big);
	abuf_release(&h);
	abuf_release(&e);
	snapshot_free(s);
}

static struct snapshot *root_sample(int nsieve)
{
	struct snapshot *s = snapshot_new("alice@example.test", "imap");
	if (s == NULL || snapshot_add_subscription(s, "Archive/2024") != 0)
		abort();
	s->time_ns = UINT64_C(1700000000123456789);
	folder_sample(s);
	if (snapshot_add_folder(s, "INBOX") == NULL)
		abort();
	static const char *const names[] = { "main", "vacation", "spam filter \xc3\xbc" };
	for (int i = 0; i < nsieve; i++) {
		struct snap_sieve sv = { .name = (char *)names[i % 3], .active = i == 1,
					 .content_type = i == 2 ? OBJ_CHUNKLIST : OBJ_BLOB,
					 .size = (uint64_t)1000 * (i + 1) };
		memset(sv.content_id, 0x50 + i, ARCA_ID_LEN);
		if (snapshot_add_sieve(s, &sv) != 0)
			abort();
	}
	return s;
}

static void root_round_trip(struct snapshot *s, uint8_t want_version)
{
	struct abuf e = ABUF_INIT, e2 = ABUF_INIT;
	CHECK_EQ_INT(snapshot_encode_root(s, &e), 0);
	REQUIRE(e.len > 0);
	CHECK_EQ_INT(e.data[0], want_version);
	struct snapshot *t = NULL;
	CHECK_EQ_INT(snapshot_decode_root(e.data, e.len, &t), 0);
	REQUIRE(t != NULL);
	CHECK_STR(t->account, s->account);
	CHECK_STR(t->source, s->source);
	CHECK(t->time_ns == s->time_ns && t->nfolders == s->nfolders &&
	      t->nsubscriptions == s->nsubscriptions);
	CHECK(t->has_sieve == s->has_sieve);
	CHECK_EQ_INT(t->nsieve, s->nsieve);
	for (size_t i = 0; i < t->nsieve && i < s->nsieve; i++) {
		CHECK_STR(t->sieve[i].name, s->sieve[i].name);
		CHECK(t->sieve[i].active == s->sieve[i].active);
		CHECK(t->sieve[i].content_type == s->sieve[i].content_type);
		CHECK(memcmp(t->sieve[i].content_id, s->sieve[i].content_id, ARCA_ID_LEN) == 0);
		CHECK(t->sieve[i].size == s->sieve[i].size);
	}
	CHECK_EQ_INT(snapshot_encode_root(t, &e2), 0);
	CHECK(e.len == e2.len && memcmp(e.data, e2.data, e.len) == 0);
	snapshot_free(t);
	/* every truncation */
	for (size_t n = 0; n < e.len; n++) {
		t = NULL;
		int rc = snapshot_decode_root(e.data, n, &t);
		if (rc == 0)
			fprintf(stderr, "  root truncated to %zu of %zu bytes: accepted\n", n, e.len);
		CHECK(rc != 0 && t == NULL);
		if (rc == 0)
			snapshot_free(t);
	}
	/* a trailing byte */
	uint8_t *buf = malloc(e.len + 1);
	REQUIRE(buf != NULL);
	memcpy(buf, e.data, e.len);
	buf[e.len] = 0;
	t = NULL;
	CHECK_EQ_INT(snapshot_decode_root(buf, e.len + 1, &t), ARCA_EFORMAT);
	free(buf);
	abuf_release(&e2);
	abuf_release(&e);
}

static void test_root_sieve(void)
{
	/* no Sieve captured: version 1, as before */
	struct snapshot *s = root_sample(0);
	CHECK(!s->has_sieve);
	root_round_trip(s, 1);
	/* captured, and there were none: version 2 with an empty list */
	s->has_sieve = true;
	root_round_trip(s, 2);
	snapshot_free(s);
	/* three scripts, one active */
	s = root_sample(3);
	CHECK(s->has_sieve && s->nsieve == 3);
	root_round_trip(s, 2);
	/* the digest tells "no Sieve captured" from "none there" */
	uint8_t d1[ARCA_ID_LEN], d2[ARCA_ID_LEN];
	snapshot_free(s);
	s = root_sample(0);
	CHECK_EQ_INT(snapshot_digest(s, d1), 0);
	s->has_sieve = true;
	CHECK_EQ_INT(snapshot_digest(s, d2), 0);
	CHECK(memcmp(d1, d2, ARCA_ID_LEN) != 0);
	snapshot_free(s);
}

static void test_root_sieve_rejects(void)
{
	struct snapshot *s = root_sample(1);
	struct abuf e = ABUF_INIT;
	REQUIRE(snapshot_encode_root(s, &e) == 0);
	/* the script is the last 1+4+1+1+32+2 bytes: name "main", active,
	 * type, id, size 1000 (two varint bytes) */
	size_t at = e.len - (1 + 4 + 1 + 1 + ARCA_ID_LEN + 2);
	CHECK_EQ_INT(e.data[at - 1], 1);   /* the count */
	CHECK_EQ_INT(e.data[at], 4);
	struct snapshot *t = NULL;
	e.data[at + 5] = 2;                /* active must be 0 or 1 */
	CHECK_EQ_INT(snapshot_decode_root(e.data, e.len, &t), ARCA_EFORMAT);
	e.data[at + 5] = 1;
	e.data[at + 6] = 2;                /* content type */
	CHECK_EQ_INT(snapshot_decode_root(e.data, e.len, &t), ARCA_EFORMAT);
	e.data[at + 6] = OBJ_BLOB;
	e.data[at + 1] = '\0';             /* NUL in the name */
	CHECK_EQ_INT(snapshot_decode_root(e.data, e.len, &t), ARCA_EFORMAT);
	e.data[at + 1] = 'm';
	e.data[at - 1] = 2;                /* two announced, one there */
	CHECK_EQ_INT(snapshot_decode_root(e.data, e.len, &t), ARCA_EFORMAT);
	e.data[at - 1] = 1;
	CHECK_EQ_INT(snapshot_decode_root(e.data, e.len, &t), 0);
	snapshot_free(t);
	t = NULL;
	/* versions 0 and 3 */
	e.data[0] = 3;
	CHECK_EQ_INT(snapshot_decode_root(e.data, e.len, &t), ARCA_EVERSION);
	e.data[0] = 0;
	CHECK_EQ_INT(snapshot_decode_root(e.data, e.len, &t), ARCA_EVERSION);
	/* a v2 body read as v1 has trailing bytes */
	e.data[0] = 1;
	CHECK_EQ_INT(snapshot_decode_root(e.data, e.len, &t), ARCA_EFORMAT);
	CHECK(t == NULL);
	/* a v1 body read as v2 lacks the count */
	snapshot_free(s);
	s = root_sample(0);
	abuf_reset(&e);
	REQUIRE(snapshot_encode_root(s, &e) == 0);
	e.data[0] = 2;
	CHECK_EQ_INT(snapshot_decode_root(e.data, e.len, &t), ARCA_EFORMAT);
	/* a script name over the limit: encode refuses */
	char *big = malloc(SNAP_SIEVE_NAME_MAX + 2);
	REQUIRE(big != NULL);
	memset(big, 'n', SNAP_SIEVE_NAME_MAX + 1);
	big[SNAP_SIEVE_NAME_MAX + 1] = '\0';
	struct snap_sieve sv = { .name = big, .content_type = OBJ_BLOB };
	CHECK_EQ_INT(snapshot_add_sieve(s, &sv), 0);
	CHECK_EQ_INT(snapshot_encode_root(s, &e), ARCA_ELIMIT);
	free(big);
	snapshot_free(s);
	/* at most SNAP_SIEVE_MAX scripts */
	s = snapshot_new("a", "imap");
	REQUIRE(s != NULL);
	struct snap_sieve one = { .name = "s", .content_type = OBJ_BLOB };
	int rc = 0;
	for (int i = 0; i < SNAP_SIEVE_MAX && rc == 0; i++)
		rc = snapshot_add_sieve(s, &one);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(snapshot_add_sieve(s, &one), ARCA_ELIMIT);
	CHECK_EQ_INT(s->nsieve, SNAP_SIEVE_MAX);
	abuf_reset(&e);
	CHECK_EQ_INT(snapshot_encode_root(s, &e), 0);
	t = NULL;
	CHECK_EQ_INT(snapshot_decode_root(e.data, e.len, &t), 0);
	CHECK(t != NULL && t->nsieve == SNAP_SIEVE_MAX);
	snapshot_free(t);
	snapshot_free(s);
	abuf_release(&e);
}

/* The tagged-status watcher: a NO after FETCH answers is seen, a "NO"
 * inside a literal is not, and the split of the bytes doesn't matter. */
static void test_tagwatch(void)
{
	static const char in[] =
		"* OK ready\r\n"
		"* 1 FETCH (UID 3 BODY[] {12}\r\n9 NO fake\r\n UID 3)\r\n"
		"9 NO Some messages could not be FETCHed\r\n";
	for (size_t piece = 1; piece <= sizeof(in); piece++) {
		struct imap_tagwatch w;
		imap_tagwatch_init(&w);
		for (size_t i = 0; i < sizeof(in) - 1; i += piece)
			imap_tagwatch_feed(&w, (const uint8_t *)in + i,
					   sizeof(in) - 1 - i < piece ? sizeof(in) - 1 - i : piece);
		CHECK(w.last == IMAP_TAG_NO);
		CHECK(strcmp(w.last_text, "NO Some messages could not be FETCHed") == 0);
	}
	static const char lit[] = "* 1 FETCH (BODY[] {11}\r\n10 OK fake)\r\n";
	struct imap_tagwatch w;
	imap_tagwatch_init(&w);
	imap_tagwatch_feed(&w, (const uint8_t *)lit, sizeof(lit) - 1);
	CHECK(w.last == IMAP_TAG_NONE);
	static const char *const more[] = { "10 OK done\r\n", "11 BAD what\r\n" };
	imap_tagwatch_feed(&w, (const uint8_t *)more[0], strlen(more[0]));
	CHECK(w.last == IMAP_TAG_OK);
	imap_tagwatch_feed(&w, (const uint8_t *)more[1], strlen(more[1]));
	CHECK(w.last == IMAP_TAG_BAD);
	CHECK(w.refused == NULL);
}

/* The literal guard: what libetpan would allocate or read another way is
 * refused before it gets the bytes; what it reads as text or a quoted
 * string is not a literal; a literal's data is skipped whatever it holds. */
static void test_literal_guard(void)
{
	static const struct {
		const char *in;
		bool refused;
		uint64_t oversize;
	} cases[] = {
		/* over the limit, wrapping, saturating, leading zeros */
		{ "* 1 FETCH (BODY[] {67108865}\r\n", true, 67108865 },
		{ "* 1 FETCH (BODY[] {4294967301}\r\nhello", true, 4294967301ull },
		{ "* 1 FETCH (BODY[] {44444444444444444448}\r\n", true, UINT64_MAX },
		{ "* 1 FETCH (BODY[] {0000000000000000000000000000000067108865}\r\n", true, 67108865 },
		{ "* 1 FETCH (BODY[] {000000000000000000000000000000000000012}\r\nhello world!)\r\n1 OK y\r\n", false, 0 },
		{ "* 1 FETCH (BODY[] {67108864}\r\n", true, 67108864 },
		{ "* 1 FETCH (BODY[] {67108863}\r\n", false, 0 },
		/* the size in any later segment, and split anywhere */
		{ "* 1 FETCH (BODY[] {3}\r\nabc BODY[1] {99999999}\r\n", true, 99999999 },
		/* libetpan would take these as literals all the same */
		{ "* 1 FETCH (BODY[] {4294967295}x\r\n", true, 4294967295ull },
		{ "* 1 FETCH (BODY[] {5}\rab\r\n", true, 0 },
		{ "* 1 FETCH (BODY[] {5}  abcde)\r\n", true, 0 },
		{ "* 1 FETCH (BODY[] {5+}\r\nabcde)\r\n", true, 0 },
		{ "* 1 FETCH (BODY[] {}\r\n", true, 0 },
		{ "* 1 FETCH (BODY[] {12\r\n", true, 0 },
		/* "{-N}" is libetpan's {0} (a Free workaround) */
		{ "* 1 FETCH (BODY[] {-99999999999}\r\n)\r\n1 OK y\r\n", false, 0 },
		/* in status text braces are text, unless too large or at the end */
		{ "* OK {5} is not a literal {6} either\r\n1 OK y\r\n", false, 0 },
		{ "+ {5}\r\n", true, 0 },
		{ "2 NO no {99999999999} here\r\n", true, 99999999999ull },
		{ "* BYE {5}\r\n", true, 0 },
		/* a quoted string holds anything, escapes included */
		{ "* LIST () \"/\" \"a{99999999999}\\\"{1}\"\r\n1 OK y\r\n", false, 0 },
		/* the data of a literal is skipped, whatever it holds */
		{ "* 1 FETCH (BODY[] {20}\r\n{4294967295}\r\n* OK {)\r\n1 OK y\r\n", false, 0 },
		/* a tag that is too long to read the status word after it */
		{ "0123456789012345678901234567890123 OK y\r\n", true, 0 },
		/* libetpan parses a response code's astrings: a literal there
		 * needs no CRLF and may hide the next line (review findings) */
		{ "* OK [BADCHARSET ({ 200000000}x)] hi\r\n", true, 0 },
		{ "* OK [BADCHARSET ({33}x\r\n* 1 FETCH (UID 1 BODY[] {43}\r\n)] t\r\n", true, 0 },
		{ "* OK [BADCHARSET (\"a]{\\\"\")] x y\r\n1 OK y\r\n", false, 0 },
		/* a ']' in an astring doesn't end the code for libetpan */
		{ "* OK [BADCHARSET (a] {5} x\r\n", true, 0 },
		{ "* OK [ALERT] then {5} x\r\n", true, 0 },
		{ "* OK fine {5} text\r\n1 OK y\r\n", false, 0 },
		/* runs of blanks, tabs, a leading blank, "+" with no space:
		 * libetpan still reads status text */
		{ "*\tOK hi {38}\r\n", true, 0 },
		{ "*  OK hi {38}\r\n", true, 0 },
		{ " * OK hi {38}\r\n", true, 0 },
		{ "* OK\thi {38}\r\n", true, 0 },
		{ "*\tBYE {38}\r\n", true, 0 },
		{ "+hi {38}\r\n", true, 0 },
		{ "+\thi {38}\r\n", true, 0 },
		{ "1  OK\tdone\r\n", false, 0 },
		/* a literal inside a FETCH after a tab-separated start */
		{ "*\t1 FETCH (BODY[] {5}\r\nabcde)\r\n1 OK y\r\n", false, 0 },
		{ "* 1 FETCH (BODY[] { 200000000}\r\n", true, 0 },
		{ "* 1 FETCH (BODY[] {200000000 }\r\n", true, 0 },
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		size_t len = strlen(cases[k].in);
		for (size_t piece = 1; piece <= len; piece++) {
			struct imap_tagwatch w;
			imap_tagwatch_init(&w);
			int rc = 0;
			for (size_t i = 0; i < len && rc == 0; i += piece)
				rc = imap_tagwatch_take(&w, (const uint8_t *)cases[k].in + i,
							len - i < piece ? len - i : piece);
			if ((rc != 0) != cases[k].refused || (w.refused != NULL) != cases[k].refused ||
			    w.oversize != cases[k].oversize) {
				fprintf(stderr, "case %zu piece %zu: rc %d refused %s oversize %llu\n", k, piece, rc,
					w.refused ? w.refused : "-", (unsigned long long)w.oversize);
				CHECK(0);
				break;
			}
			if (!cases[k].refused && strstr(cases[k].in, "1 OK y"))
				CHECK(w.last == IMAP_TAG_OK);
		}
	}
}

int main(void)
{
	RUN(test_tagwatch);
	RUN(test_literal_guard);
	RUN(test_answer_guard);
	RUN(test_xguid_atom);
	RUN(test_xguid_quoted);
	RUN(test_xguid_rejects);
	RUN(test_xguid_length);
	RUN(test_fetch_parsed);
	RUN(test_fetch_parsed_body);
	RUN(test_fetch_parsed_qresync);
	RUN(test_fetch_keyword_overflow);
	RUN(test_fetch_bad_xguid);
	RUN(test_fetch_tagged_no_after_results);
	RUN(test_conn_eof_inside_literal);
	RUN(test_conn_huge_literal);
	RUN(test_fetch_constructed);
	RUN(test_date_to_epoch);
	RUN(test_unserve_crlf);
	RUN(test_base_ok);
	RUN(test_base_strip_sizes);
	RUN(test_base_ok_restorable);
	RUN(test_folder_name);
	RUN(test_layout_of_separator);
	RUN(test_alarm_round_trip);
	RUN(test_alarm_decode_rejects);
	RUN(test_alarm_encode_limits);
	RUN(test_alarm_clear_codec);
	RUN(test_folder_full_round_trip);
	RUN(test_folder_full_rejects);
	RUN(test_root_sieve);
	RUN(test_root_sieve_rejects);
	HARNESS_EXIT();
}
