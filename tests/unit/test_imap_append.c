/*
 * test_imap_append.c - the pure parts of `arca restore imap`
 * (lib/imap/imap_append.c) and of `arca export` (lib/export.c): answer
 * lines, Message-ID, wire names, message keys and the multiset, flags and
 * dates, whole APPEND / MULTIAPPEND dialogues against a canned server, and
 * the escaping of folder paths, mboxrd quoting (in every chunking) and the
 * index lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sodium.h>

#include "harness.h"
#include "export.h"
#include "imap_append.h"

static int parse(const char *line, const char *tag, struct iapp_line *l)
{
	struct arca_err err = { 0 };
	int rc = iapp_parse_line((const uint8_t *)line, strlen(line), tag, l, &err);
	if (rc && err.msg[0] == '\0')
		return 99;
	return rc;
}

static void test_parse_line(void)
{
	struct iapp_line l;
	CHECK_EQ_INT(parse("+ go ahead", "R1", &l), 0);
	CHECK_EQ_INT(l.kind, IAPP_CONTINUE);
	CHECK_STR(l.text, "go ahead");
	CHECK_EQ_INT(parse("+", "R1", &l), 0);
	CHECK_EQ_INT(l.kind, IAPP_CONTINUE);
	CHECK_EQ_INT(parse("R1 OK [APPENDUID 1712 5] Append completed.", "R1", &l), 0);
	CHECK_EQ_INT(l.kind, IAPP_TAGGED);
	CHECK_EQ_INT(l.status, IAPP_OK);
	CHECK_STR(l.code, "APPENDUID");
	CHECK_EQ_INT(l.appenduid_validity, 1712);
	CHECK_EQ_INT(l.appenduid_first, 5);
	CHECK_EQ_INT(l.appenduid_last, 5);
	CHECK_EQ_INT(parse("R1 ok [appenduid 9 3:7] done", "R1", &l), 0);
	CHECK_EQ_INT(l.appenduid_first, 3);
	CHECK_EQ_INT(l.appenduid_last, 7);
	CHECK_EQ_INT(parse("R1 OK [APPENDUID 9 3,5] done", "R1", &l), 0);
	CHECK_EQ_INT(l.appenduid_validity, 0);   /* a set: not kept */
	CHECK_EQ_INT(parse("R7 NO [TRYCREATE] Mailbox doesn't exist: x", "R7", &l), 0);
	CHECK_EQ_INT(l.status, IAPP_NO);
	CHECK_STR(l.code, "TRYCREATE");
	CHECK_EQ_INT(parse("R7 BAD \x01\xff", "R7", &l), 0);
	CHECK_EQ_INT(l.status, IAPP_BAD);
	CHECK_STR(l.text, "??");
	CHECK_EQ_INT(parse("* 3 EXISTS", "R1", &l), 0);
	CHECK_EQ_INT(l.kind, IAPP_UNTAGGED);
	CHECK(!l.has_literal);
	CHECK_EQ_INT(parse("* 1 FETCH (BODY[] {12}", "R1", &l), 0);
	CHECK(l.has_literal);
	CHECK_EQ_INT(l.literal, 12);
	CHECK_EQ_INT(parse("* BYE going down", "R1", &l), 0);
	CHECK_EQ_INT(l.status, IAPP_BYE);
	/* malformed */
	CHECK_EQ_INT(parse("", "R1", &l), ARCA_EFORMAT);
	CHECK_EQ_INT(parse("R1", "R1", &l), ARCA_EFORMAT);
	CHECK_EQ_INT(parse("R2 OK done", "R1", &l), ARCA_EFORMAT);
	CHECK_EQ_INT(parse("R1 MAYBE", "R1", &l), ARCA_EFORMAT);
	CHECK_EQ_INT(parse("* x {12345678901234567890}", "R1", &l), ARCA_EFORMAT);
}

static int msgid(const char *hdr, char *out, size_t cap)
{
	struct abuf b = ABUF_INIT;
	int r = iapp_message_id((const uint8_t *)hdr, strlen(hdr), &b);
	snprintf(out, cap, "%.*s", (int)b.len, b.data ? (const char *)b.data : "");
	abuf_release(&b);
	return r;
}

static void test_message_id(void)
{
	char v[1100];
	CHECK_EQ_INT(msgid("From: a\r\nMessage-ID: <x@y>\r\n\r\nbody", v, sizeof(v)), 1);
	CHECK_STR(v, "<x@y>");
	CHECK_EQ_INT(msgid("message-id:   <x@y>  \n\n", v, sizeof(v)), 1);
	CHECK_STR(v, "<x@y>");
	/* folded, and the same value from CRLF and LF forms */
	CHECK_EQ_INT(msgid("Message-Id:\r\n <folded@y>\r\n\r\n", v, sizeof(v)), 1);
	CHECK_STR(v, "<folded@y>");
	CHECK_EQ_INT(msgid("Message-Id:\n\t<folded@y>\nX: 1\n\n", v, sizeof(v)), 1);
	CHECK_STR(v, "<folded@y>");
	/* the first one counts; one in the body does not */
	CHECK_EQ_INT(msgid("Message-ID: <1>\nMessage-ID: <2>\n\n", v, sizeof(v)), 1);
	CHECK_STR(v, "<1>");
	CHECK_EQ_INT(msgid("From: a\n\nMessage-ID: <body>\n", v, sizeof(v)), 0);
	CHECK_EQ_INT(msgid("Message-IDs: <no>\nMessage-ID : <obs>\n\n", v, sizeof(v)), 1);
	CHECK_STR(v, "<obs>");
	CHECK_EQ_INT(msgid("Message-ID:\n\n", v, sizeof(v)), 0);
	CHECK_EQ_INT(msgid("", v, sizeof(v)), 0);
	CHECK_EQ_INT(msgid("\r\n", v, sizeof(v)), 0);
	/* what Dovecot answers to BODY[HEADER.FIELDS (MESSAGE-ID)] */
	CHECK_EQ_INT(msgid("Message-ID: <x@y>\r\n\r\n", v, sizeof(v)), 1);
	/* very long values are cut at IAPP_MSGID_MAX */
	char big[3000] = "Message-ID: <";
	memset(big + 13, 'a', 2000);
	memcpy(big + 2013, ">\n\n", 4);
	CHECK_EQ_INT(msgid(big, v, sizeof(v)), 1);
	CHECK_EQ_INT(strlen(v), IAPP_MSGID_MAX);
}

static int wire(const char *name, char delim, char *out, size_t cap)
{
	struct abuf b = ABUF_INIT;
	int r = iapp_wire_name(name, delim, &b);
	snprintf(out, cap, "%s", r == 0 ? (const char *)b.data : "");
	abuf_release(&b);
	return r;
}

static void test_wire_name(void)
{
	char w[200];
	CHECK_EQ_INT(wire("INBOX", '.', w, sizeof(w)), 0);
	CHECK_STR(w, "INBOX");
	CHECK_EQ_INT(wire("Archiv/2019/\xc3\x9c" "bersicht", '.', w, sizeof(w)), 0);
	CHECK_STR(w, "Archiv.2019.&ANw-bersicht");
	CHECK_EQ_INT(wire("Archiv/2019", '/', w, sizeof(w)), 0);
	CHECK_STR(w, "Archiv/2019");
	CHECK_EQ_INT(wire("Family & Friends", '/', w, sizeof(w)), 0);
	CHECK_STR(w, "Family &- Friends");
	CHECK_EQ_INT(wire("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", '/', w, sizeof(w)), 0);
	CHECK_STR(w, "&ZeVnLIqe-");
	/* a level holding the server's delimiter can't be made */
	CHECK_EQ_INT(wire("a.b/c", '.', w, sizeof(w)), ARCA_EFORMAT);
	CHECK_EQ_INT(wire("a/b", '\0', w, sizeof(w)), ARCA_EFORMAT);
	CHECK_EQ_INT(wire("a//b", '/', w, sizeof(w)), ARCA_EFORMAT);
	CHECK_EQ_INT(wire("/a", '/', w, sizeof(w)), ARCA_EFORMAT);
	CHECK_EQ_INT(wire("", '/', w, sizeof(w)), ARCA_EFORMAT);
	CHECK_EQ_INT(wire("bad\xff", '/', w, sizeof(w)), ARCA_EFORMAT);
	struct abuf q = ABUF_INIT;
	CHECK_EQ_INT(iapp_quote("a\"b\\c", &q), 0);
	CHECK(q.len == 9 && memcmp(q.data, "\"a\\\"b\\\\c\"", 9) == 0);
	abuf_release(&q);
}

/* A memfd holding s. */
static int mfd(const void *p, size_t n)
{
	int fd = memfd_create("t", MFD_CLOEXEC);
	if (fd >= 0 && n > 0 && write(fd, p, n) != (ssize_t)n) {
		close(fd);
		return -1;
	}
	return fd;
}

static void test_content_keys(void)
{
	static const char lf[] = "From: a\nMessage-ID: <k@x>\n\nbody\nline\n";
	static const char crlf[] = "From: a\r\nMessage-ID: <k@x>\r\n\r\nbody\r\nline\r\n";
	int a = mfd(lf, sizeof(lf) - 1), b = mfd(crlf, sizeof(crlf) - 1);
	REQUIRE(a >= 0 && b >= 0);
	struct iapp_content ca, cb;
	struct arca_err err = { 0 };
	CHECK_EQ_INT(iapp_content_scan(a, 0, sizeof(lf) - 1, 1000, &ca, &err), 0);
	CHECK_EQ_INT(iapp_content_scan(b, 0, sizeof(crlf) - 1, 1000, &cb, &err), 0);
	CHECK_EQ_INT(ca.raw_len, sizeof(lf) - 1);
	CHECK_EQ_INT(ca.wire_len, sizeof(crlf) - 1);
	CHECK_EQ_INT(cb.wire_len, sizeof(crlf) - 1);
	CHECK_EQ_INT(ca.key.kind, 1);
	CHECK(iapp_key_cmp(&ca.key, &cb.key) == 0);
	CHECK(!ca.has_nul);
	/* the server's view: RFC822.SIZE and the Message-ID of the header */
	uint8_t h[16];
	crypto_generichash(h, 16, (const uint8_t *)"<k@x>", 5, NULL, 0);
	CHECK(memcmp(h, ca.key.hash, 16) == 0);
	close(a);
	close(b);
	/* without Message-ID: the first KB of the CRLF form */
	static const char noid[] = "Subject: x\n\nsame\0size\n";
	a = mfd(noid, sizeof(noid) - 1);
	CHECK_EQ_INT(iapp_content_scan(a, 0, sizeof(noid) - 1, 5, &ca, &err), 0);
	CHECK_EQ_INT(ca.key.kind, 2);
	CHECK(ca.has_nul);
	static const char served[] = "Subject: x\r\n\r\nsame\0size\r\n";
	crypto_generichash(h, 16, (const uint8_t *)served, sizeof(served) - 1, NULL, 0);
	CHECK(memcmp(h, ca.key.hash, 16) == 0);
	/* at an offset in a file */
	static const char two[] = "XXXXSubject: x\n\nsame\0size\n";
	b = mfd(two, sizeof(two) - 1);
	CHECK_EQ_INT(iapp_content_scan(b, 4, sizeof(two) - 5, 5, &cb, &err), 0);
	CHECK(iapp_key_cmp(&ca.key, &cb.key) == 0);
	close(a);
	close(b);
}

static void test_holdings(void)
{
	struct iapp_holdings h = { 0 };
	h.v = calloc(4, sizeof(*h.v));
	REQUIRE(h.v != NULL);
	struct iapp_key k1 = { .date = 10, .size = 100, .kind = 1, .hash = { 1 } };
	struct iapp_key k2 = { .date = 5, .size = 50, .kind = 2, .hash = { 2 } };
	struct iapp_key unknown = { .date = 7, .size = 70, .kind = 0 };
	h.v[0] = k1;
	h.v[1] = k2;
	h.v[2] = k1;   /* the same message twice */
	h.v[3] = unknown;
	h.n = 4;
	CHECK_EQ_INT(iapp_holdings_index(&h), 0);
	CHECK(iapp_holdings_take(&h, &k1));
	CHECK(iapp_holdings_take(&h, &k1));
	CHECK(!iapp_holdings_take(&h, &k1));   /* a multiset: only twice */
	CHECK(iapp_holdings_take(&h, &k2));
	CHECK(!iapp_holdings_take(&h, &k2));
	CHECK(!iapp_holdings_take(&h, &unknown));   /* kind 0 never matches */
	struct iapp_key other = k1;
	other.size = 101;
	CHECK(!iapp_holdings_take(&h, &other));
	iapp_holdings_release(&h);
	/* empty */
	CHECK_EQ_INT(iapp_holdings_index(&h), 0);
	CHECK(!iapp_holdings_take(&h, &k1));
	iapp_holdings_release(&h);
}

static void test_flags_dates(void)
{
	struct abuf b = ABUF_INIT;
	const char *kw[] = { "$Forwarded", "bad word", "custom_kw", "\\Seen", "x(y" };
	size_t skipped = 0;
	uint32_t fl = (1u << ('S' - 'A')) | (1u << ('R' - 'A')) | (1u << ('T' - 'A')) |
		      (1u << ('P' - 'A'));
	CHECK_EQ_INT(iapp_flag_list(fl, kw, 5, &b, &skipped), 0);
	CHECK(b.len == strlen("(\\Seen \\Answered \\Deleted $Forwarded custom_kw)") &&
	      memcmp(b.data, "(\\Seen \\Answered \\Deleted $Forwarded custom_kw)", b.len) == 0);
	CHECK_EQ_INT(skipped, 3);
	abuf_reset(&b);
	CHECK_EQ_INT(iapp_flag_list(0, NULL, 0, &b, NULL), 0);
	CHECK(b.len == 2 && memcmp(b.data, "()", 2) == 0);
	abuf_reset(&b);
	CHECK_EQ_INT(iapp_date_time(1614772800, &b), 0);
	CHECK(b.len == 28 && memcmp(b.data, "\"03-Mar-2021 12:00:00 +0000\"", 28) == 0);
	abuf_reset(&b);
	CHECK_EQ_INT(iapp_date_time(0, &b), 0);
	CHECK(memcmp(b.data, "\"01-Jan-1970 00:00:00 +0000\"", 28) == 0);
	CHECK_EQ_INT(iapp_date_time(INT64_C(400000000000), &b), ARCA_EINVAL);
	abuf_release(&b);
}

/* ---- APPEND dialogues ---- */

struct dia {
	struct iapp_memio m;
	struct iapp_io io;
	struct iapp_line ans;
	struct arca_err err;
	int fd;
	struct iapp_msg msg[3];
	int hooked;
};

static void hook(void *ctx)
{
	((struct dia *)ctx)->hooked++;
}

static const char M1[] = "Subject: one\n\nbody\n";
static const char M2[] = "Subject: two\r\n\r\nx";

static void dia_init(struct dia *d, const char *server)
{
	memset(d, 0, sizeof(*d));
	iapp_memio_init(&d->m, server, strlen(server), &d->io);
	d->m.max_read = 3;   /* the answers arrive in small pieces */
	d->io.sent_hook = hook;
	d->io.hook_ctx = d;
	char all[64];
	memcpy(all, M1, sizeof(M1) - 1);
	memcpy(all + sizeof(M1) - 1, M2, sizeof(M2) - 1);
	d->fd = mfd(all, sizeof(M1) + sizeof(M2) - 2);
	struct arca_err e = { 0 };
	static const char *const kw[] = { "$label1" };
	iapp_content_scan(d->fd, 0, sizeof(M1) - 1, 1614772800, &d->msg[0].content, &e);
	iapp_content_scan(d->fd, sizeof(M1) - 1, sizeof(M2) - 1, 0, &d->msg[1].content, &e);
	d->msg[0] = (struct iapp_msg){ .fd = d->fd, .off = 0, .content = d->msg[0].content,
				       .flags = 1u << ('S' - 'A'), .keywords = kw, .nkeywords = 1,
				       .date = 1614772800 };
	d->msg[1] = (struct iapp_msg){ .fd = d->fd, .off = sizeof(M1) - 1, .content = d->msg[1].content,
				       .date = 0 };
}

static void dia_free(struct dia *d)
{
	iapp_memio_release(&d->m);
	close(d->fd);
}

static bool sent(const struct dia *d, const char *want)
{
	size_t n = strlen(want);
	if (d->m.sent.len == n && memcmp(d->m.sent.data, want, n) == 0)
		return true;
	fprintf(stderr, "  sent \"%.*s\"\n  want \"%s\"\n", (int)d->m.sent.len,
		(const char *)d->m.sent.data, want);
	return false;
}

static void test_append(void)
{
	struct dia d;
	struct iapp_caps lp = { .literal_plus = true, .multiappend = true };
	struct iapp_caps sync = { .multiappend = true };
	/* LITERAL+: no waiting; an untagged answer with a literal is skipped */
	dia_init(&d, "* 1 FETCH (BODY[] {3}\r\nabc)\r\n* 4 EXISTS\r\nR1 OK [APPENDUID 7 4] Append completed.\r\n");
	CHECK_EQ_INT(iapp_append(&d.io, &lp, "INBOX", d.msg, 1, &d.ans, &d.err), 0);
	CHECK_EQ_INT(d.ans.status, IAPP_OK);
	CHECK_EQ_INT(d.ans.appenduid_first, 4);
	CHECK_EQ_INT(d.hooked, 1);
	CHECK(sent(&d, "R1 APPEND \"INBOX\" (\\Seen $label1) \"03-Mar-2021 12:00:00 +0000\" {22+}\r\n"
		       "Subject: one\r\n\r\nbody\r\n\r\n"));
	dia_free(&d);
	/* synchronizing literals, MULTIAPPEND: "+" before each message */
	dia_init(&d, "+ Ready\r\n+ Ready\r\nR1 OK done\r\n");
	CHECK_EQ_INT(iapp_append(&d.io, &sync, "A \"b\"", d.msg, 2, &d.ans, &d.err), 0);
	CHECK_EQ_INT(d.ans.status, IAPP_OK);
	CHECK(sent(&d, "R1 APPEND \"A \\\"b\\\"\" (\\Seen $label1) \"03-Mar-2021 12:00:00 +0000\" {22}\r\n"
		       "Subject: one\r\n\r\nbody\r\n () \"01-Jan-1970 00:00:00 +0000\" {17}\r\n"
		       "Subject: two\r\n\r\nx\r\n"));
	CHECK_EQ_INT(d.m.pos, d.m.len);
	dia_free(&d);
	/* refused before the bytes: no literal sent */
	dia_init(&d, "R1 NO [TOOBIG] too large\r\n");
	CHECK_EQ_INT(iapp_append(&d.io, &sync, "INBOX", d.msg, 1, &d.ans, &d.err), 0);
	CHECK_EQ_INT(d.ans.status, IAPP_NO);
	CHECK_STR(d.ans.code, "TOOBIG");
	CHECK_EQ_INT(d.hooked, 0);
	CHECK(d.m.sent.len < 80);
	dia_free(&d);
	/* MULTIAPPEND refused as a whole */
	dia_init(&d, "R1 NO [OVERQUOTA] quota\r\n");
	CHECK_EQ_INT(iapp_append(&d.io, &lp, "INBOX", d.msg, 2, &d.ans, &d.err), 0);
	CHECK_EQ_INT(d.ans.status, IAPP_NO);
	dia_free(&d);
	/* BYE, a closed connection, another tag, a huge untagged literal */
	const char *bad[] = { "* BYE shutting down\r\n", "", "R9 OK\r\n",
			      "* 1 FETCH (BODY[] {99999999}\r\n", "+ more?\r\n+ again\r\n" };
	int want[] = { ARCA_EIO, ARCA_EIO, ARCA_EFORMAT, ARCA_ELIMIT, ARCA_EFORMAT };
	for (size_t i = 0; i < 5; i++) {
		dia_init(&d, bad[i]);
		int rc = iapp_append(&d.io, &lp, "INBOX", d.msg, 1, &d.ans, &d.err);
		CHECK_EQ_INT(rc, want[i]);
		CHECK(d.err.msg[0] != '\0');
		dia_free(&d);
	}
	/* no MULTIAPPEND, no batch */
	struct iapp_caps none = { 0 };
	dia_init(&d, "");
	CHECK_EQ_INT(iapp_append(&d.io, &none, "INBOX", d.msg, 2, &d.ans, &d.err), ARCA_EINVAL);
	CHECK_EQ_INT(d.m.sent.len, 0);
	dia_free(&d);
	/* a file shorter than announced: an error, never a short literal
	 * taken for a complete one */
	dia_init(&d, "R1 OK\r\n");
	d.msg[1].content.raw_len = 40;
	CHECK_EQ_INT(iapp_append(&d.io, &lp, "INBOX", &d.msg[1], 1, &d.ans, &d.err), ARCA_EIO);
	dia_free(&d);
	/* CREATE with and without USE; [ALREADYEXISTS] is fine */
	dia_init(&d, "R1 NO [ALREADYEXISTS] exists\r\nR2 OK\r\n");
	struct iapp_caps su = { .create_special_use = true };
	CHECK_EQ_INT(iapp_create(&d.io, &su, "Sent", "\\Sent", &d.ans, &d.err), 0);
	CHECK_EQ_INT(d.ans.status, IAPP_OK);
	CHECK_EQ_INT(iapp_create(&d.io, &none, "Sent", "\\Sent", &d.ans, &d.err), 0);
	CHECK(sent(&d, "R1 CREATE \"Sent\" (USE (\\Sent))\r\nR2 CREATE \"Sent\"\r\n"));
	CHECK_EQ_INT(iapp_create(&d.io, &su, "x", "\\Sent) (X", &d.ans, &d.err), ARCA_EINVAL);
	dia_free(&d);
}

/* ---- export ---- */

static int fpath(const char *name, char *out, size_t cap)
{
	struct abuf b = ABUF_INIT;
	int r = export_folder_path(name, &b);
	snprintf(out, cap, "%s", r == 0 ? (const char *)b.data : "");
	abuf_release(&b);
	return r;
}

static void test_folder_path(void)
{
	char p[200];
	CHECK_EQ_INT(fpath("INBOX", p, sizeof(p)), 0);
	CHECK_STR(p, "INBOX");
	CHECK_EQ_INT(fpath("Archiv/2019/\xc3\x9c" "bersicht", p, sizeof(p)), 0);
	CHECK_STR(p, "Archiv/2019/\xc3\x9c" "bersicht");
	CHECK_EQ_INT(fpath("../../etc", p, sizeof(p)), 0);
	CHECK_STR(p, "%2E./%2E./etc");
	CHECK_EQ_INT(fpath("./.hidden/a.b", p, sizeof(p)), 0);
	CHECK_STR(p, "%2E/%2Ehidden/a.b");
	CHECK_EQ_INT(fpath("a//b", p, sizeof(p)), 0);
	CHECK_STR(p, "a/%/b");
	CHECK_EQ_INT(fpath("x/1.eml/index.tsv/y.MBOX", p, sizeof(p)), 0);
	CHECK_STR(p, "x/1%2Eeml/index%2Etsv/y%2EMBOX");
	CHECK_EQ_INT(fpath("100%\x01\x7f", p, sizeof(p)), 0);
	CHECK_STR(p, "100%25%01%7F");
	CHECK_EQ_INT(fpath("", p, sizeof(p)), ARCA_EINVAL);
}

/* The mboxrd quoting of s, fed in pieces of `step` bytes. */
static void quote_in(const char *s, size_t n, size_t step, struct abuf *out)
{
	struct mboxrd q;
	mboxrd_init(&q);
	for (size_t i = 0; i < n; i += step)
		mboxrd_feed(&q, (const uint8_t *)s + i, n - i < step ? n - i : step, out);
	mboxrd_finish(&q, out);
}

static void test_mboxrd(void)
{
	static const char in[] = "From the start\nx\n>From a\n>>From b\nFrom\n>From\nFro\n\nFrom z";
	static const char want[] = ">From the start\nx\n>>From a\n>>>From b\nFrom\n>From\nFro\n\n>From z";
	for (size_t step = 1; step <= sizeof(in); step++) {
		struct abuf out = ABUF_INIT;
		quote_in(in, sizeof(in) - 1, step, &out);
		CHECK(out.len == sizeof(want) - 1 && memcmp(out.data, want, out.len) == 0);
		abuf_release(&out);
	}
	/* a line of many '>' ends without holding them all in memory */
	struct abuf out = ABUF_INIT;
	char *gts = malloc(200001);
	REQUIRE(gts != NULL);
	memset(gts, '>', 200000);
	memcpy(gts + 195000, "From ", 5);
	quote_in(gts, 200000, 4096, &out);
	CHECK_EQ_INT(out.len, 200001);
	free(gts);
	abuf_release(&out);
	/* the From line and the status headers */
	struct abuf b = ABUF_INIT;
	CHECK_EQ_INT(export_from_line(1614772800, &b), 0);
	CHECK(b.len == 44 && memcmp(b.data, "From MAILER-DAEMON Wed Mar  3 12:00:00 2021\n", 44) == 0);
	abuf_reset(&b);
	const char *kw[] = { "$label1", "bad kw", "Work" };
	struct export_meta m = { .flags = (1u << ('S' - 'A')) | (1u << ('R' - 'A')) | (1u << ('T' - 'A')),
				 .keywords = kw, .nkeywords = 3 };
	CHECK_EQ_INT(export_status_headers(&m, &b), 0);
	static const char sh[] = "Status: RO\nX-Status: AD\nX-Keywords: $label1 Work\n";
	CHECK(b.len == sizeof(sh) - 1 && memcmp(b.data, sh, b.len) == 0);
	abuf_reset(&b);
	m.uid = 17;
	m.date_sec = 1614772800;
	m.date_nsec = 5;
	m.size = 1234;
	CHECK_EQ_INT(export_index_line(&m, &b), 0);
	static const char il[] = "17\t\\Seen \\Answered \\Deleted\t$label1 bad\\skw Work\t2021-03-03T12:00:00.000000005Z\t1234\n";
	CHECK(b.len == sizeof(il) - 1 && memcmp(b.data, il, b.len) == 0);
	abuf_release(&b);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(test_parse_line);
	RUN(test_message_id);
	RUN(test_wire_name);
	RUN(test_content_keys);
	RUN(test_holdings);
	RUN(test_flags_dates);
	RUN(test_append);
	RUN(test_folder_path);
	RUN(test_mboxrd);
	HARNESS_EXIT();
}
