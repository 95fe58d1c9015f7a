/* LMTP command lines: splitting, parsing, replies, path formatting. */
#include <stdint.h>
#include <string.h>

#include "lmtp.h"
#include "harness.h"

static struct lmtp_cmd cmd;   /* 3 KiB; one for every test */

/* Parse n bytes; checks the contract between rc, cmd->error, reply, err. */
static int parse_n(const char *s, size_t n)
{
	struct arca_err err = { 0 };
	int rc = lmtp_parse_command(s, n, &cmd, &err);
	if (rc == 0) {
		CHECK(err.msg[0] == '\0');
		CHECK(cmd.error == LMTP_PE_NONE);
		CHECK(cmd.reply == NULL);
	} else {
		CHECK(rc == ARCA_EFORMAT || rc == ARCA_ELIMIT);
		CHECK(err.code == rc);
		CHECK(err.msg[0] != '\0');
		CHECK(strncmp(err.msg, "LMTP: ", 6) == 0);
		CHECK(cmd.error != LMTP_PE_NONE);
		CHECK(cmd.reply != NULL && cmd.reply == lmtp_reply_for(cmd.error));
	}
	return rc;
}

static int parse(const char *s)
{
	return parse_n(s, strlen(s));
}

/* The line must parse. */
#define OK(line)                                                            \
	do {                                                                \
		if (parse(line) != 0) {                                     \
			fprintf(stderr, "  %s:%d: \"%s\" failed: %s\n",     \
				__FILE__, __LINE__, line, cmd.reply);       \
			harness_failed_current = 1;                         \
		}                                                           \
	} while (0)

/* The line must fail with this kind (and the rc implied by it). */
#define BAD(line, kind)                                                     \
	do {                                                                \
		int rc_ = parse(line);                                      \
		if (rc_ == 0 || cmd.error != (kind)) {                      \
			fprintf(stderr, "  %s:%d: \"%s\": rc %d error %d, want %d\n", \
				__FILE__, __LINE__, line, rc_, (int)cmd.error, (int)(kind)); \
			harness_failed_current = 1;                         \
		}                                                           \
	} while (0)

/* ---- replies ----------------------------------------------------------- */

static void test_reply_table(void)
{
	for (int k = 0; k < LMTP_PE_COUNT; k++) {
		const char *r = lmtp_reply_for(k);
		REQUIRE(r != NULL);
		/* "ddd c.d.d text": class digit of the enhanced code matches */
		CHECK(strlen(r) > 10);
		CHECK(r[0] >= '2' && r[0] <= '5' && r[3] == ' ' && r[5] == '.');
		CHECK(r[4] == r[0]);
		CHECK(strchr(r, '\r') == NULL && strchr(r, '\n') == NULL);
	}
	CHECK_STR(lmtp_reply_for(LMTP_PE_PARAM_UNKNOWN), "555 5.5.4 Unsupported parameter");
	CHECK_STR(lmtp_reply_for(LMTP_PE_BAD_SENDER), "501 5.1.7 Bad sender address syntax");
	CHECK_STR(lmtp_reply_for(LMTP_PE_BAD_RCPT), "501 5.1.3 Bad recipient address syntax");
	CHECK_STR(lmtp_reply_for(LMTP_PE_MSG_TOO_BIG), "552 5.3.4 Message size exceeds fixed limit");
	CHECK_STR(lmtp_reply_for(LMTP_PE_NOT_JOURNAL), "550 5.1.1 Not a journal address");
	CHECK_STR(lmtp_reply_for(LMTP_PE_USE_LHLO), "500 5.5.1 This is LMTP: use LHLO");
	CHECK_STR(lmtp_reply_for(-1), "500 5.5.2 Syntax error");
	CHECK_STR(lmtp_reply_for(LMTP_PE_COUNT), "500 5.5.2 Syntax error");
	CHECK_STR(lmtp_reply_for(10000), "500 5.5.2 Syntax error");
}

/* ---- a Postfix session --------------------------------------------------- */

/* As sent by Postfix 3.7 lmtp(8) to a server announcing SIZE, 8BITMIME,
 * DSN, SMTPUTF8 and PIPELINING. */
static void test_postfix_session(void)
{
	OK("LHLO mail.example.test");
	CHECK_EQ_INT(cmd.verb, LMTP_LHLO);
	CHECK_STR(cmd.arg, "mail.example.test");

	OK("MAIL FROM:<alice@example.test> SIZE=1234 BODY=8BITMIME");
	CHECK_EQ_INT(cmd.verb, LMTP_MAIL);
	CHECK_STR(cmd.path.addr, "alice@example.test");
	CHECK_STR(cmd.path.local, "alice");
	CHECK_STR(cmd.path.domain, "example.test");
	CHECK(!cmd.path.null && !cmd.path.quoted && !cmd.path.utf8);
	CHECK(cmd.has_size);
	CHECK_EQ_INT(cmd.size, 1234);
	CHECK_EQ_INT(cmd.body, LMTP_BODY_8BITMIME);
	CHECK(!cmd.smtputf8 && !cmd.has_envid && cmd.ret == LMTP_RET_NONE);

	OK("MAIL FROM:<alice@example.test> SIZE=1234 BODY=8BITMIME RET=HDRS ENVID=1C6F3A0A21");
	CHECK_EQ_INT(cmd.ret, LMTP_RET_HDRS);
	CHECK(cmd.has_envid);

	OK("MAIL FROM:<> SIZE=2048");
	CHECK(cmd.path.null);
	CHECK_STR(cmd.path.addr, "");
	CHECK_EQ_INT(cmd.size, 2048);

	OK("RCPT TO:<bob=example.test@journal.invalid>");
	CHECK_EQ_INT(cmd.verb, LMTP_RCPT);
	CHECK_STR(cmd.path.addr, "bob=example.test@journal.invalid");
	CHECK_STR(cmd.path.local, "bob=example.test");
	CHECK_EQ_INT(cmd.notify, 0);
	CHECK(!cmd.has_orcpt);

	OK("RCPT TO:<bob=example.test@journal.invalid> NOTIFY=FAILURE,DELAY ORCPT=rfc822;bob+3Dexample.test@journal.invalid");
	CHECK_EQ_INT(cmd.notify, LMTP_NOTIFY_FAILURE | LMTP_NOTIFY_DELAY);
	CHECK(cmd.has_orcpt);
	CHECK_STR(cmd.orcpt_type, "rfc822");
	CHECK_STR(cmd.orcpt, "bob=example.test@journal.invalid");

	OK("RCPT TO:<\"first last=example.test\"@journal.invalid>");
	CHECK_STR(cmd.path.local, "first last=example.test");
	CHECK_STR(cmd.path.addr, "first last=example.test@journal.invalid");
	CHECK(cmd.path.quoted);

	OK("DATA");
	CHECK_EQ_INT(cmd.verb, LMTP_DATA);
	OK("RSET");
	CHECK_EQ_INT(cmd.verb, LMTP_RSET);
	OK("NOOP");
	CHECK_EQ_INT(cmd.verb, LMTP_NOOP);
	CHECK_STR(cmd.arg, "");
	OK("QUIT");
	CHECK_EQ_INT(cmd.verb, LMTP_QUIT);
}

static void test_other_clients(void)
{
	/* space after the colon (swaks, Python smtplib's callers, Exim) */
	OK("MAIL FROM: <a@b.test>");
	CHECK_STR(cmd.path.addr, "a@b.test");
	OK("MAIL FROM:   <a@b.test>   SIZE=5   BODY=7BIT   ");
	CHECK_EQ_INT(cmd.size, 5);
	CHECK_EQ_INT(cmd.body, LMTP_BODY_7BIT);
	OK("MAIL  FROM:<a@b.test>");
	OK("RCPT TO: <x=b.test@journal.invalid>");
	CHECK_STR(cmd.path.addr, "x=b.test@journal.invalid");
	/* case-insensitive verbs, keywords and values */
	OK("mail from:<a@b.test> size=7 body=8bitmime smtputf8 ret=full");
	CHECK_EQ_INT(cmd.verb, LMTP_MAIL);
	CHECK_EQ_INT(cmd.size, 7);
	CHECK_EQ_INT(cmd.body, LMTP_BODY_8BITMIME);
	CHECK(cmd.smtputf8);
	CHECK_EQ_INT(cmd.ret, LMTP_RET_FULL);
	OK("Rcpt To:<x@y.test> notify=never");
	CHECK_EQ_INT(cmd.notify, LMTP_NOTIFY_NEVER);
	OK("lhlo localhost");
	OK("LHLO [127.0.0.1]");
	CHECK_STR(cmd.arg, "[127.0.0.1]");
	OK("LHLO host.example.test   ");
	CHECK_STR(cmd.arg, "host.example.test");
	OK("quit");
	OK("QUIT ");
	OK("DATA   ");
	OK("noop hello there  ");
	CHECK_STR(cmd.arg, "hello there");
	OK("VRFY postmaster");
	CHECK_EQ_INT(cmd.verb, LMTP_VRFY);
	CHECK_STR(cmd.arg, "postmaster");
	OK("VRFY <a@b.test>");
	CHECK_STR(cmd.arg, "<a@b.test>");
	OK("STARTTLS");
	CHECK_EQ_INT(cmd.verb, LMTP_STARTTLS);
}

static void test_verb_errors(void)
{
	BAD("", LMTP_PE_UNKNOWN_VERB);
	BAD(" ", LMTP_PE_UNKNOWN_VERB);
	BAD(" NOOP", LMTP_PE_UNKNOWN_VERB);
	BAD("FOO", LMTP_PE_UNKNOWN_VERB);
	BAD("DATAX", LMTP_PE_UNKNOWN_VERB);
	BAD("MAIL:FROM:<a@b>", LMTP_PE_UNKNOWN_VERB);
	BAD("GET / HTTP/1.0", LMTP_PE_UNKNOWN_VERB);
	CHECK_EQ_INT(cmd.verb, LMTP_VERB_NONE);
	BAD("EXPN staff", LMTP_PE_NOT_IMPL);
	BAD("HELP", LMTP_PE_NOT_IMPL);
	BAD("auth PLAIN AGFAAGI=", LMTP_PE_NOT_IMPL);
	CHECK_STR(cmd.reply, "502 5.5.1 Command not implemented");
	BAD("HELO mail.example.test", LMTP_PE_USE_LHLO);
	CHECK_EQ_INT(cmd.verb, LMTP_HELO);
	BAD("EHLO mail.example.test", LMTP_PE_USE_LHLO);
	CHECK_EQ_INT(cmd.verb, LMTP_EHLO);
	BAD("ehlo", LMTP_PE_USE_LHLO);
	CHECK_STR(cmd.reply, "500 5.5.1 This is LMTP: use LHLO");

	BAD("DATA x", LMTP_PE_NO_ARGS);
	CHECK_EQ_INT(cmd.verb, LMTP_DATA);
	BAD("RSET now", LMTP_PE_NO_ARGS);
	BAD("QUIT please", LMTP_PE_NO_ARGS);
	BAD("STARTTLS x", LMTP_PE_NO_ARGS);
	BAD("LHLO", LMTP_PE_LHLO_SYNTAX);
	BAD("LHLO ", LMTP_PE_LHLO_SYNTAX);
	BAD("LHLO a b", LMTP_PE_LHLO_SYNTAX);
	BAD("VRFY", LMTP_PE_VRFY_SYNTAX);
	BAD("VRFY   ", LMTP_PE_VRFY_SYNTAX);

	BAD("MAIL", LMTP_PE_MAIL_SYNTAX);
	BAD("MAIL FROM", LMTP_PE_MAIL_SYNTAX);
	BAD("MAIL FROM:", LMTP_PE_MAIL_SYNTAX);
	BAD("MAIL FROM:   ", LMTP_PE_MAIL_SYNTAX);
	BAD("MAIL TO:<a@b.test>", LMTP_PE_MAIL_SYNTAX);
	BAD("MAIL FROM :<a@b.test>", LMTP_PE_MAIL_SYNTAX);
	BAD("MAILFROM:<a@b.test>", LMTP_PE_UNKNOWN_VERB);
	BAD("MAIL FROM:<a@b.test>x", LMTP_PE_MAIL_SYNTAX);
	BAD("RCPT", LMTP_PE_RCPT_SYNTAX);
	BAD("RCPT FROM:<a@b.test>", LMTP_PE_RCPT_SYNTAX);
	BAD("RCPT TO:", LMTP_PE_RCPT_SYNTAX);
	BAD("RCPT TO:<a@b.test>,<c@d.test>", LMTP_PE_RCPT_SYNTAX);
	CHECK_STR(cmd.reply, "501 5.5.4 Syntax: RCPT TO:<address>");
}

static void test_bdat(void)
{
	OK("BDAT 100");
	CHECK_EQ_INT(cmd.verb, LMTP_BDAT);
	CHECK_EQ_INT(cmd.bdat_size, 100);
	CHECK(!cmd.bdat_last);
	OK("BDAT 0 LAST");
	CHECK_EQ_INT(cmd.bdat_size, 0);
	CHECK(cmd.bdat_last);
	OK("bdat 5 last ");
	CHECK(cmd.bdat_last);
	OK("BDAT  7   LAST");
	CHECK(cmd.bdat_last);
	OK("BDAT 18446744073709551615");
	CHECK(cmd.bdat_size == UINT64_MAX);
	OK("BDAT 00000000000000000001");     /* 20 digits */
	CHECK_EQ_INT(cmd.bdat_size, 1);
	BAD("BDAT 000000000000000000001", LMTP_PE_BDAT_SYNTAX);  /* 21 */
	BAD("BDAT 18446744073709551616", LMTP_PE_BDAT_SYNTAX);
	BAD("BDAT 99999999999999999999", LMTP_PE_BDAT_SYNTAX);
	BAD("BDAT", LMTP_PE_BDAT_SYNTAX);
	BAD("BDAT ", LMTP_PE_BDAT_SYNTAX);
	BAD("BDAT x", LMTP_PE_BDAT_SYNTAX);
	BAD("BDAT -1", LMTP_PE_BDAT_SYNTAX);
	BAD("BDAT +1", LMTP_PE_BDAT_SYNTAX);
	BAD("BDAT 5LAST", LMTP_PE_BDAT_SYNTAX);
	BAD("BDAT 5 LASTX", LMTP_PE_BDAT_SYNTAX);
	BAD("BDAT 5 LAST x", LMTP_PE_BDAT_SYNTAX);
	BAD("BDAT 5 FIRST", LMTP_PE_BDAT_SYNTAX);
	BAD("BDAT 5 LAS", LMTP_PE_BDAT_SYNTAX);
}

static void test_bad_chars(void)
{
	BAD("NOOP \001", LMTP_PE_BAD_CHAR);
	BAD("NOOP\t", LMTP_PE_BAD_CHAR);
	BAD("NOOP \177", LMTP_PE_BAD_CHAR);
	BAD("NOOP\r", LMTP_PE_BAD_CHAR);
	BAD("NO\nOP", LMTP_PE_BAD_CHAR);
	BAD("MAIL FROM:<a\033[31m@b.test>", LMTP_PE_BAD_CHAR);
	parse_n("NOOP\0x", 6);
	CHECK_EQ_INT(cmd.error, LMTP_PE_BAD_CHAR);
	parse_n("\0", 1);
	CHECK_EQ_INT(cmd.error, LMTP_PE_BAD_CHAR);
	/* bad UTF-8: overlong, surrogate, > U+10FFFF, truncated, lone
	 * continuation, 5-byte lead */
	BAD("NOOP \xc0\x80", LMTP_PE_BAD_CHAR);
	BAD("NOOP \xc1\xbf", LMTP_PE_BAD_CHAR);
	BAD("NOOP \xe0\x80\x80", LMTP_PE_BAD_CHAR);
	BAD("NOOP \xed\xa0\x80", LMTP_PE_BAD_CHAR);
	BAD("NOOP \xf4\x90\x80\x80", LMTP_PE_BAD_CHAR);
	BAD("NOOP \xf0\x80\x80\x80", LMTP_PE_BAD_CHAR);
	BAD("NOOP \xe2\x82", LMTP_PE_BAD_CHAR);
	BAD("NOOP \x80", LMTP_PE_BAD_CHAR);
	BAD("NOOP \xf8\x88\x80\x80\x80", LMTP_PE_BAD_CHAR);
	BAD("NOOP \xff", LMTP_PE_BAD_CHAR);
	/* the edges that are valid */
	OK("NOOP \xc2\x80 \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80 \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf");
	CHECK(cmd.utf8);
	/* the error message never carries the peer's bytes */
	struct arca_err err = { 0 };
	CHECK(lmtp_parse_command("MAIL FROM:<\033]0;x\007@b>", 20, &cmd, &err) != 0);
	CHECK(strchr(err.msg, '\033') == NULL && strchr(err.msg, '\007') == NULL);
	arca_err_clear(&err);
	CHECK(lmtp_parse_command("XYZZY \033[2J", 10, &cmd, &err) != 0);
	CHECK(strstr(err.msg, "XYZZY") == NULL);
	/* NULL arguments */
	arca_err_clear(&err);
	CHECK_EQ_INT(lmtp_parse_command("NOOP", 4, NULL, &err), ARCA_EINVAL);
	CHECK_EQ_INT(lmtp_parse_command(NULL, 4, &cmd, NULL), ARCA_EINVAL);
	CHECK_EQ_INT(lmtp_parse_command(NULL, 0, &cmd, NULL), ARCA_EFORMAT);
	CHECK_EQ_INT(cmd.error, LMTP_PE_UNKNOWN_VERB);
}

static void test_line_length(void)
{
	static char line[2000];
	memset(line, 'x', sizeof(line));
	memcpy(line, "NOOP ", 5);
	CHECK(parse_n(line, LMTP_CMD_MAX) == 0);
	CHECK_EQ_INT(strlen(cmd.arg), LMTP_CMD_MAX - 5);
	CHECK(parse_n(line, LMTP_CMD_MAX + 1) == ARCA_ELIMIT);
	CHECK_EQ_INT(cmd.error, LMTP_PE_LINE_TOO_LONG);
	CHECK_STR(cmd.reply, "500 5.5.2 Line too long");
	CHECK(parse_n(line, sizeof(line)) == ARCA_ELIMIT);
	/* the NUL after the limit is not looked at */
	line[LMTP_CMD_MAX + 1] = '\0';
	CHECK(parse_n(line, LMTP_CMD_MAX + 2) == ARCA_ELIMIT);
}

/* ---- paths --------------------------------------------------------------- */

static void test_paths(void)
{
	/* source route: checked, dropped */
	OK("MAIL FROM:<@relay1.test,@relay2.test:alice@example.test>");
	CHECK_STR(cmd.path.addr, "alice@example.test");
	CHECK(cmd.path.source_route);
	OK("RCPT TO:<@[192.0.2.1]:bob=example.test@journal.invalid>");
	CHECK_STR(cmd.path.addr, "bob=example.test@journal.invalid");
	BAD("MAIL FROM:<@relay1.test,alice@example.test>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<@relay1.test:>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<@:a@b.test>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<@a.test,:a@b.test>", LMTP_PE_BAD_SENDER);

	/* quoted local parts */
	OK("MAIL FROM:<\"a b\"@example.test>");
	CHECK_STR(cmd.path.local, "a b");
	CHECK_STR(cmd.path.addr, "a b@example.test");
	CHECK(cmd.path.quoted);
	OK("MAIL FROM:<\"a\\\"b\\\\c\"@example.test>");
	CHECK_STR(cmd.path.local, "a\"b\\c");
	OK("MAIL FROM:<\"a@b>c\"@example.test>");
	CHECK_STR(cmd.path.local, "a@b>c");
	CHECK_STR(cmd.path.domain, "example.test");
	OK("MAIL FROM:<\"\\x\"@example.test>");   /* quoted-pair of a plain char */
	CHECK_STR(cmd.path.local, "x");
	OK("MAIL FROM:<\"\"@example.test>");      /* empty quoted string */
	CHECK_STR(cmd.path.local, "");
	CHECK_STR(cmd.path.addr, "@example.test");
	BAD("MAIL FROM:<\"abc@example.test>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<\"abc\\\"@example.test>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<\"a\"b@example.test>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a\"b\"@example.test>", LMTP_PE_BAD_SENDER);

	/* dot-strings, leniently */
	OK("MAIL FROM:<john..doe.@example.test>");
	CHECK_STR(cmd.path.local, "john..doe.");
	CHECK(!cmd.path.quoted);
	OK("MAIL FROM:<.x@example.test>");
	OK("MAIL FROM:<!#$%&'*+-/=?^_`{|}~@example.test>");
	CHECK_STR(cmd.path.local, "!#$%&'*+-/=?^_`{|}~");
	BAD("MAIL FROM:<a b@example.test>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a(b)@example.test>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a,b@example.test>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a\\b@example.test>", LMTP_PE_BAD_SENDER);

	/* domains */
	OK("MAIL FROM:<a@Example.TEST>");
	CHECK_STR(cmd.path.domain, "Example.TEST");   /* case kept */
	OK("MAIL FROM:<a@mail_1.example.test>");   /* '_' allowed */
	OK("MAIL FROM:<a@-x-.test>");              /* lenient hyphens */
	OK("MAIL FROM:<a@localhost>");
	OK("MAIL FROM:<a@[192.0.2.1]>");
	CHECK_STR(cmd.path.domain, "[192.0.2.1]");
	OK("MAIL FROM:<a@[IPv6:2001:db8::1]>");
	OK("MAIL FROM:<a@[ipv6:::ffff:192.0.2.1]>");
	OK("MAIL FROM:<a@[x-tag:some-thing]>");    /* General-address-literal */
	BAD("MAIL FROM:<a@>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a@.example.test>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a@example..test>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a@example.test.>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a@exa mple.test>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a@b@example.test>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a@[192.0.2]>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a@[192.0.2.01]>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a@[192.0.2.256]>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a@[IPv6:2001:db8::g]>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a@[IPv6:1:2:3:4:5:6:7:8:9]>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a@[]>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a@[tag-:x]>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a@[tag:]>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a@[1.2.3.4>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a@[a[b]>", LMTP_PE_BAD_SENDER);

	/* no domain: accepted (RFC 5321's <Postmaster>; some local senders) */
	OK("RCPT TO:<Postmaster>");
	CHECK_STR(cmd.path.addr, "Postmaster");
	CHECK_STR(cmd.path.domain, "");
	OK("MAIL FROM:<root>");
	CHECK_STR(cmd.path.addr, "root");

	/* brackets and the null path */
	OK("MAIL FROM:<>");
	CHECK(cmd.path.null);
	OK("MAIL FROM:<> BODY=7BIT");
	BAD("RCPT TO:<>", LMTP_PE_BAD_RCPT);
	BAD("MAIL FROM:a@example.test", LMTP_PE_BAD_SENDER);
	BAD("RCPT TO:b@example.test", LMTP_PE_BAD_RCPT);
	BAD("MAIL FROM:<a@example.test", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<<a@example.test>>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a@example.test> >", LMTP_PE_PARAM_SYNTAX);
	BAD("MAIL FROM:<", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<@>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:< a@example.test>", LMTP_PE_BAD_SENDER);
	BAD("MAIL FROM:<a@example.test >", LMTP_PE_BAD_SENDER);
	BAD("RCPT TO:<@example.test>", LMTP_PE_BAD_RCPT);
	CHECK_STR(cmd.reply, "501 5.1.3 Bad recipient address syntax");
	BAD("MAIL FROM:<>x", LMTP_PE_MAIL_SYNTAX);
}

static void test_utf8_paths(void)
{
	OK("MAIL FROM:<j\xc3\xb6rg@b\xc3\xbc" "cher.example> SMTPUTF8");
	CHECK(cmd.path.utf8 && cmd.utf8 && cmd.smtputf8);
	CHECK_STR(cmd.path.addr, "j\xc3\xb6rg@b\xc3\xbc" "cher.example");
	BAD("MAIL FROM:<j\xc3\xb6rg@example.test>", LMTP_PE_NEED_SMTPUTF8);
	CHECK_STR(cmd.reply, "553 5.6.7 Non-ASCII address requires SMTPUTF8");
	BAD("MAIL FROM:<a@example.test> ENVID=\xc3\xb6", LMTP_PE_PARAM_SYNTAX);
	/* RCPT: the server checks cmd.utf8 against the transaction */
	OK("RCPT TO:<j\xc3\xb6rg=example.test@journal.invalid>");
	CHECK(cmd.path.utf8 && cmd.utf8);
	OK("RCPT TO:<\"j\xc3\xb6rg x\"@journal.invalid>");
	CHECK_STR(cmd.path.local, "j\xc3\xb6rg x");
	CHECK(cmd.path.utf8);
	OK("RCPT TO:<\"\\\xc3\xb6\"@journal.invalid>");   /* "\ö": lenient */
	CHECK_STR(cmd.path.local, "\xc3\xb6");
	OK("RCPT TO:<x=example.test@journal.invalid> NOTIFY=NEVER");
	CHECK(!cmd.utf8 && !cmd.path.utf8);
	/* a CJK local part and a Cyrillic domain */
	OK("RCPT TO:<\xe7\x94\xa8\xe6\x88\xb7@\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.\xd1\x80\xd1\x84>");
	CHECK(cmd.path.utf8);
}

static void test_path_limits(void)
{
	char line[LMTP_CMD_MAX + 1];
	char local[LMTP_LOCAL_MAX + 2];
	char domain[300];
	memset(local, 'l', sizeof(local));
	/* local part: 256 ok, 257 too long (also when quoted) */
	snprintf(line, sizeof(line), "RCPT TO:<%.*s@example.test>", LMTP_LOCAL_MAX, local);
	OK(line);
	CHECK_EQ_INT(strlen(cmd.path.local), LMTP_LOCAL_MAX);
	snprintf(line, sizeof(line), "RCPT TO:<%.*s@example.test>", LMTP_LOCAL_MAX + 1, local);
	BAD(line, LMTP_PE_RCPT_TOO_LONG);
	CHECK_STR(cmd.reply, "501 5.1.3 Recipient address too long");
	snprintf(line, sizeof(line), "MAIL FROM:<\"%.*s\"@example.test>", LMTP_LOCAL_MAX + 1, local);
	BAD(line, LMTP_PE_SENDER_TOO_LONG);
	CHECK_STR(cmd.reply, "501 5.1.7 Sender address too long");
	/* 2 * 256 escaped bytes decode to 256: fits the path limit just so */
	char q[2 * LMTP_LOCAL_MAX + 1];
	for (int i = 0; i < LMTP_LOCAL_MAX; i++)
		memcpy(q + 2 * i, "\\\"", 2);
	q[2 * LMTP_LOCAL_MAX] = '\0';
	snprintf(line, sizeof(line), "MAIL FROM:<\"%s\">", q);
	BAD(line, LMTP_PE_SENDER_TOO_LONG);   /* 516 bytes with <""> */
	snprintf(line, sizeof(line), "MAIL FROM:<\"%s\">", q + 8);
	OK(line);
	CHECK_EQ_INT(strlen(cmd.path.local), LMTP_LOCAL_MAX - 4);
	/* domain: 255 ok, 256 too long */
	for (size_t i = 0; i < sizeof(domain); i++)
		domain[i] = i % 64 == 63 ? '.' : 'd';
	snprintf(line, sizeof(line), "RCPT TO:<a@%.*s>", LMTP_DOMAIN_MAX, domain);
	OK(line);
	CHECK_EQ_INT(strlen(cmd.path.domain), LMTP_DOMAIN_MAX);
	snprintf(line, sizeof(line), "RCPT TO:<a@%.*s>", LMTP_DOMAIN_MAX + 1, domain);
	BAD(line, LMTP_PE_RCPT_TOO_LONG);
	/* whole path: 256 local + 255 domain + "<@>" = 514 > 512 */
	snprintf(line, sizeof(line), "RCPT TO:<%.*s@%.*s>", LMTP_LOCAL_MAX, local,
		 LMTP_DOMAIN_MAX, domain);
	BAD(line, LMTP_PE_RCPT_TOO_LONG);
	snprintf(line, sizeof(line), "RCPT TO:<%.*s@%.*s>", LMTP_LOCAL_MAX, local,
		 LMTP_DOMAIN_MAX - 2, domain);
	OK(line);   /* exactly 512 */
	CHECK_EQ_INT(strlen(cmd.path.addr), LMTP_PATH_MAX - 2);
	/* a long source route counts against the path */
	char route[600];
	size_t n = 0;
	while (n + 20 < sizeof(route))
		n += (size_t)snprintf(route + n, sizeof(route) - n, "@relay%03zu.test,", n);
	route[n - 1] = ':';
	snprintf(line, sizeof(line), "MAIL FROM:<%.*sa@b.test>", (int)n, route);
	BAD(line, LMTP_PE_SENDER_TOO_LONG);
	/* garbage that runs into the limit is too long, garbage before it bad */
	memset(line, 0, sizeof(line));
	snprintf(line, sizeof(line), "RCPT TO:<%.*s", LMTP_LOCAL_MAX, local);
	BAD(line, LMTP_PE_BAD_RCPT);
}

/* ---- parameters ---------------------------------------------------------- */

static void test_mail_params(void)
{
	OK("MAIL FROM:<a@b.test> SIZE=0");
	CHECK(cmd.has_size && cmd.size == 0);
	OK("MAIL FROM:<a@b.test> SIZE=18446744073709551615");
	CHECK(cmd.size == UINT64_MAX);
	BAD("MAIL FROM:<a@b.test> SIZE=18446744073709551616", LMTP_PE_PARAM_SYNTAX);
	CHECK_STR(cmd.reply, "501 5.5.4 Invalid parameter");
	BAD("MAIL FROM:<a@b.test> SIZE=123456789012345678901", LMTP_PE_PARAM_SYNTAX);
	BAD("MAIL FROM:<a@b.test> SIZE=abc", LMTP_PE_PARAM_SYNTAX);
	BAD("MAIL FROM:<a@b.test> SIZE=-1", LMTP_PE_PARAM_SYNTAX);
	BAD("MAIL FROM:<a@b.test> SIZE=1k", LMTP_PE_PARAM_SYNTAX);
	BAD("MAIL FROM:<a@b.test> SIZE=", LMTP_PE_PARAM_SYNTAX);
	BAD("MAIL FROM:<a@b.test> SIZE", LMTP_PE_PARAM_SYNTAX);
	BAD("MAIL FROM:<a@b.test> SIZE=1 SIZE=1", LMTP_PE_PARAM_SYNTAX);
	BAD("MAIL FROM:<a@b.test> SIZE=1=2", LMTP_PE_PARAM_SYNTAX);
	BAD("MAIL FROM:<a@b.test> SIZE==1", LMTP_PE_PARAM_SYNTAX);
	BAD("MAIL FROM:<a@b.test> =1", LMTP_PE_PARAM_SYNTAX);
	BAD("MAIL FROM:<a@b.test> -X=1", LMTP_PE_PARAM_SYNTAX);
	BAD("MAIL FROM:<a@b.test> SI_ZE=1", LMTP_PE_PARAM_SYNTAX);
	BAD("MAIL FROM:<a@b.test> SIZE:1", LMTP_PE_PARAM_SYNTAX);
	BAD("MAIL FROM:<a@b.test> XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX=1", LMTP_PE_PARAM_SYNTAX);

	OK("MAIL FROM:<a@b.test> BODY=7BIT");
	CHECK_EQ_INT(cmd.body, LMTP_BODY_7BIT);
	OK("MAIL FROM:<a@b.test> BODY=BINARYMIME");
	CHECK_EQ_INT(cmd.body, LMTP_BODY_BINARYMIME);
	BAD("MAIL FROM:<a@b.test> BODY=8BIT", LMTP_PE_PARAM_SYNTAX);
	BAD("MAIL FROM:<a@b.test> BODY", LMTP_PE_PARAM_SYNTAX);
	BAD("MAIL FROM:<a@b.test> BODY=7BIT BODY=7BIT", LMTP_PE_PARAM_SYNTAX);

	OK("MAIL FROM:<a@b.test> SMTPUTF8");
	CHECK(cmd.smtputf8);
	BAD("MAIL FROM:<a@b.test> SMTPUTF8=yes", LMTP_PE_PARAM_SYNTAX);
	CHECK(!cmd.smtputf8);

	OK("MAIL FROM:<a@b.test> RET=FULL");
	CHECK_EQ_INT(cmd.ret, LMTP_RET_FULL);
	BAD("MAIL FROM:<a@b.test> RET=NONE", LMTP_PE_PARAM_SYNTAX);
	BAD("MAIL FROM:<a@b.test> RET", LMTP_PE_PARAM_SYNTAX);

	OK("MAIL FROM:<a@b.test> ENVID=QQ314159+2B+2b");
	CHECK(cmd.has_envid);
	OK("MAIL FROM:<a@b.test> ENVID=<1234@host.test>");
	BAD("MAIL FROM:<a@b.test> ENVID=a+2", LMTP_PE_PARAM_SYNTAX);
	BAD("MAIL FROM:<a@b.test> ENVID=a+", LMTP_PE_PARAM_SYNTAX);
	BAD("MAIL FROM:<a@b.test> ENVID=a+ZZ", LMTP_PE_PARAM_SYNTAX);
	BAD("MAIL FROM:<a@b.test> ENVID", LMTP_PE_PARAM_SYNTAX);
	char line[300], v[LMTP_ENVID_MAX + 2];
	memset(v, 'e', sizeof(v));
	snprintf(line, sizeof(line), "MAIL FROM:<a@b.test> ENVID=%.*s", LMTP_ENVID_MAX, v);
	OK(line);
	snprintf(line, sizeof(line), "MAIL FROM:<a@b.test> ENVID=%.*s", LMTP_ENVID_MAX + 1, v);
	BAD(line, LMTP_PE_PARAM_SYNTAX);

	OK("MAIL FROM:<a@b.test> AUTH=<>");
	CHECK(cmd.has_auth);
	OK("MAIL FROM:<a@b.test> AUTH=e+3Dmc2@example.com");
	BAD("MAIL FROM:<a@b.test> AUTH=e+3", LMTP_PE_PARAM_SYNTAX);

	/* RCPT parameters are unknown on MAIL and the other way round */
	BAD("MAIL FROM:<a@b.test> NOTIFY=NEVER", LMTP_PE_PARAM_UNKNOWN);
	BAD("MAIL FROM:<a@b.test> ORCPT=rfc822;a@b", LMTP_PE_PARAM_UNKNOWN);
	BAD("MAIL FROM:<a@b.test> XCLIENT=1", LMTP_PE_PARAM_UNKNOWN);
	BAD("MAIL FROM:<a@b.test> MT-PRIORITY=3", LMTP_PE_PARAM_UNKNOWN);
	BAD("MAIL FROM:<a@b.test> REQUIRETLS", LMTP_PE_PARAM_UNKNOWN);
	CHECK_STR(cmd.reply, "555 5.5.4 Unsupported parameter");
	struct arca_err err = { 0 };
	const char *l = "MAIL FROM:<a@b.test> SIZE=1 FUTURE-EXT=x";
	CHECK(lmtp_parse_command(l, strlen(l), &cmd, &err) == ARCA_EFORMAT);
	CHECK(strstr(err.msg, "FUTURE-EXT") != NULL);   /* the keyword is named */

	/* all at once, every order */
	OK("MAIL FROM:<a@b.test> AUTH=<> ENVID=x RET=HDRS SMTPUTF8 BODY=8BITMIME SIZE=99");
	CHECK(cmd.has_auth && cmd.has_envid && cmd.smtputf8 && cmd.size == 99);
}

static void test_param_count(void)
{
	char line[LMTP_CMD_MAX + 1];
	size_t n = (size_t)snprintf(line, sizeof(line), "RCPT TO:<a@b.test>");
	for (int i = 0; i < LMTP_PARAMS_MAX; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, " X%d=1", i);
	BAD(line, LMTP_PE_PARAM_UNKNOWN);   /* 16: looked at, unknown */
	snprintf(line + n, sizeof(line) - n, " Y");
	BAD(line, LMTP_PE_TOO_MANY_PARAMS); /* 17: refused before */
	CHECK_STR(cmd.reply, "501 5.5.4 Too many parameters");
	/* spaces do not count */
	OK("RCPT TO:<a@b.test>                 NOTIFY=NEVER                  ");
}

static void test_rcpt_params(void)
{
	OK("RCPT TO:<a@b.test> NOTIFY=NEVER");
	CHECK_EQ_INT(cmd.notify, LMTP_NOTIFY_NEVER);
	OK("RCPT TO:<a@b.test> NOTIFY=SUCCESS,FAILURE,DELAY");
	CHECK_EQ_INT(cmd.notify, LMTP_NOTIFY_SUCCESS | LMTP_NOTIFY_FAILURE | LMTP_NOTIFY_DELAY);
	OK("RCPT TO:<a@b.test> NOTIFY=delay,success");
	CHECK_EQ_INT(cmd.notify, LMTP_NOTIFY_SUCCESS | LMTP_NOTIFY_DELAY);
	BAD("RCPT TO:<a@b.test> NOTIFY=NEVER,SUCCESS", LMTP_PE_PARAM_SYNTAX);
	BAD("RCPT TO:<a@b.test> NOTIFY=SUCCESS,", LMTP_PE_PARAM_SYNTAX);
	BAD("RCPT TO:<a@b.test> NOTIFY=,SUCCESS", LMTP_PE_PARAM_SYNTAX);
	BAD("RCPT TO:<a@b.test> NOTIFY=SUCCESS,,DELAY", LMTP_PE_PARAM_SYNTAX);
	BAD("RCPT TO:<a@b.test> NOTIFY=ALWAYS", LMTP_PE_PARAM_SYNTAX);
	BAD("RCPT TO:<a@b.test> NOTIFY", LMTP_PE_PARAM_SYNTAX);
	BAD("RCPT TO:<a@b.test> NOTIFY=NEVER NOTIFY=NEVER", LMTP_PE_PARAM_SYNTAX);

	OK("RCPT TO:<a@b.test> ORCPT=rfc822;bob+2Bsales@example.test");
	CHECK_STR(cmd.orcpt, "bob+sales@example.test");
	CHECK_STR(cmd.orcpt_type, "rfc822");
	OK("RCPT TO:<a@b.test> ORCPT=RFC822;a+40b+3Dc");
	CHECK_STR(cmd.orcpt, "a@b=c");
	CHECK_STR(cmd.orcpt_type, "RFC822");
	OK("RCPT TO:<a@b.test> ORCPT=rfc822;a+c3+b6b");   /* lower-case hex, UTF-8 */
	CHECK_STR(cmd.orcpt, "a\xc3\xb6" "b");
	OK("RCPT TO:<a@b.test> ORCPT=x-custom;anything");
	CHECK_STR(cmd.orcpt_type, "x-custom");
	OK("RCPT TO:<a@b.test> ORCPT=rfc822;");
	CHECK(cmd.has_orcpt);
	CHECK_STR(cmd.orcpt, "");
	/* RFC 6533 utf-8 address type: \x{HEX}, and raw UTF-8 (unitext) */
	OK("RCPT TO:<a@b.test> ORCPT=utf-8;j\\x{F6}rg@b\\x{00FC}cher.example");
	CHECK_STR(cmd.orcpt, "j\xc3\xb6rg@b\xc3\xbc" "cher.example");
	OK("RCPT TO:<a@b.test> ORCPT=utf-8;\\x{1F600}@x.test");
	CHECK_STR(cmd.orcpt, "\xf0\x9f\x98\x80@x.test");
	OK("RCPT TO:<a@b.test> ORCPT=UTF-8;j\xc3\xb6rg@x.test");
	CHECK_STR(cmd.orcpt, "j\xc3\xb6rg@x.test");
	CHECK(cmd.utf8);
	OK("RCPT TO:<a@b.test> ORCPT=utf-8;a\\x{2B}b+2Bc");
	CHECK_STR(cmd.orcpt, "a+b+c");
	BAD("RCPT TO:<a@b.test> ORCPT=utf-8;\\x{D800}", LMTP_PE_PARAM_SYNTAX);
	BAD("RCPT TO:<a@b.test> ORCPT=utf-8;\\x{110000}", LMTP_PE_PARAM_SYNTAX);
	BAD("RCPT TO:<a@b.test> ORCPT=utf-8;\\x{1234567}", LMTP_PE_PARAM_SYNTAX);
	BAD("RCPT TO:<a@b.test> ORCPT=utf-8;\\x{F}", LMTP_PE_PARAM_SYNTAX);
	BAD("RCPT TO:<a@b.test> ORCPT=utf-8;\\x{00}", LMTP_PE_PARAM_SYNTAX);
	BAD("RCPT TO:<a@b.test> ORCPT=utf-8;\\x{0A}", LMTP_PE_PARAM_SYNTAX);
	BAD("RCPT TO:<a@b.test> ORCPT=utf-8;\\x{41", LMTP_PE_PARAM_SYNTAX);
	BAD("RCPT TO:<a@b.test> ORCPT=utf-8;\\y{41}", LMTP_PE_PARAM_SYNTAX);
	BAD("RCPT TO:<a@b.test> ORCPT=utf-8;\\x{GG}", LMTP_PE_PARAM_SYNTAX);
	BAD("RCPT TO:<a@b.test> ORCPT=utf-8;a+4", LMTP_PE_PARAM_SYNTAX);
	BAD("RCPT TO:<a@b.test> ORCPT=rfc822;j\xc3\xb6rg@x.test", LMTP_PE_PARAM_SYNTAX);
	BAD("RCPT TO:<a@b.test> ORCPT=rfc822", LMTP_PE_PARAM_SYNTAX);
	BAD("RCPT TO:<a@b.test> ORCPT=rfc822;a=b@c", LMTP_PE_PARAM_SYNTAX);  /* '=' raw */
	BAD("RCPT TO:<a@b.test> ORCPT=;a@b", LMTP_PE_PARAM_SYNTAX);
	BAD("RCPT TO:<a@b.test> ORCPT=rf(c;a@b", LMTP_PE_PARAM_SYNTAX);
	BAD("RCPT TO:<a@b.test> ORCPT=rfc822;a+0Ab", LMTP_PE_PARAM_SYNTAX);  /* LF */
	BAD("RCPT TO:<a@b.test> ORCPT=rfc822;a+00b", LMTP_PE_PARAM_SYNTAX);  /* NUL */
	BAD("RCPT TO:<a@b.test> ORCPT=rfc822;a+7Fb", LMTP_PE_PARAM_SYNTAX);  /* DEL */
	BAD("RCPT TO:<a@b.test> ORCPT=rfc822;a+FFb", LMTP_PE_PARAM_SYNTAX);  /* bad UTF-8 */
	BAD("RCPT TO:<a@b.test> ORCPT=rfc822;a+C3", LMTP_PE_PARAM_SYNTAX);   /* cut UTF-8 */
	CHECK(!cmd.has_orcpt);
	CHECK_STR(cmd.orcpt, "");
	BAD("RCPT TO:<a@b.test> ORCPT=rfc822;a ORCPT=rfc822;b", LMTP_PE_PARAM_SYNTAX);
	/* the type: 32 atext ok, 33 not */
	OK("RCPT TO:<a@b.test> ORCPT=abcdefghijklmnopqrstuvwxyz012345;x");
	BAD("RCPT TO:<a@b.test> ORCPT=abcdefghijklmnopqrstuvwxyz0123456;x", LMTP_PE_PARAM_SYNTAX);
	/* decoded ORCPT: 512 bytes ok, 513 not */
	char line[LMTP_CMD_MAX + 1], v[LMTP_ORCPT_MAX + 2];
	memset(v, 'o', sizeof(v));
	snprintf(line, sizeof(line), "RCPT TO:<a@b.test> ORCPT=rfc822;%.*s", LMTP_ORCPT_MAX, v);
	OK(line);
	CHECK_EQ_INT(strlen(cmd.orcpt), LMTP_ORCPT_MAX);
	snprintf(line, sizeof(line), "RCPT TO:<a@b.test> ORCPT=rfc822;%.*s", LMTP_ORCPT_MAX + 1, v);
	BAD(line, LMTP_PE_PARAM_SYNTAX);
	snprintf(line, sizeof(line), "RCPT TO:<a@b.test> ORCPT=utf-8;%.*s", LMTP_ORCPT_MAX + 1, v);
	BAD(line, LMTP_PE_PARAM_SYNTAX);

	BAD("RCPT TO:<a@b.test> SIZE=1", LMTP_PE_PARAM_UNKNOWN);
	BAD("RCPT TO:<a@b.test> BODY=7BIT", LMTP_PE_PARAM_UNKNOWN);
	BAD("RCPT TO:<a@b.test> SMTPUTF8", LMTP_PE_PARAM_UNKNOWN);
}

/* ---- line splitting ------------------------------------------------------ */

static void test_lines(void)
{
	struct lmtp_lines s;
	lmtp_lines_init(&s);
	size_t len, used;
	const uint8_t *in = (const uint8_t *)"LHLO x\r\nMAIL FROM:<>\nRC";
	size_t inlen = strlen((const char *)in);
	CHECK_EQ_INT(lmtp_line_next(&s, in, inlen, &len, &used), LMTP_LINE_OK);
	CHECK_EQ_INT(len, 6);
	CHECK_EQ_INT(used, 8);
	CHECK(!s.bare_lf);
	in += used;
	inlen -= used;
	CHECK_EQ_INT(lmtp_line_next(&s, in, inlen, &len, &used), LMTP_LINE_OK);
	CHECK_EQ_INT(len, 12);
	CHECK_EQ_INT(used, 13);
	CHECK(s.bare_lf);
	in += used;
	inlen -= used;
	CHECK_EQ_INT(lmtp_line_next(&s, in, inlen, &len, &used), LMTP_LINE_NEED);
	CHECK_EQ_INT(used, 0);
	CHECK(!s.bare_lf);
	CHECK_EQ_INT(lmtp_line_next(&s, in, 0, &len, &used), LMTP_LINE_NEED);
	CHECK_EQ_INT(lmtp_line_next(&s, NULL, 0, &len, &used), LMTP_LINE_NEED);
	/* "\r" alone is not an end, "\r\r\n" leaves one CR in the line */
	CHECK_EQ_INT(lmtp_line_next(&s, (const uint8_t *)"NOOP\r", 5, &len, &used), LMTP_LINE_NEED);
	CHECK_EQ_INT(lmtp_line_next(&s, (const uint8_t *)"NOOP\r\r\n", 7, &len, &used), LMTP_LINE_OK);
	CHECK_EQ_INT(len, 5);
	CHECK(parse_n("NOOP\r", len) != 0 && cmd.error == LMTP_PE_BAD_CHAR);
	/* empty lines */
	CHECK_EQ_INT(lmtp_line_next(&s, (const uint8_t *)"\r\n", 2, &len, &used), LMTP_LINE_OK);
	CHECK_EQ_INT(len, 0);
	CHECK_EQ_INT(used, 2);
	CHECK_EQ_INT(lmtp_line_next(&s, (const uint8_t *)"\n", 1, &len, &used), LMTP_LINE_OK);
	CHECK_EQ_INT(len, 0);
	CHECK(s.bare_lf);
	CHECK_EQ_INT(lmtp_line_next(NULL, in, 1, &len, &used), ARCA_EINVAL);
	CHECK_EQ_INT(lmtp_line_next(&s, NULL, 1, &len, &used), ARCA_EINVAL);
	CHECK_EQ_INT(lmtp_line_next(&s, in, 1, NULL, &used), ARCA_EINVAL);
	CHECK_EQ_INT(lmtp_line_next(&s, in, 1, &len, NULL), ARCA_EINVAL);
}

static void test_lines_too_long(void)
{
	static uint8_t buf[3000];
	struct lmtp_lines s;
	size_t len, used;
	lmtp_lines_init(&s);
	/* 998 + CRLF: the longest line */
	memset(buf, 'x', sizeof(buf));
	buf[998] = '\r';
	buf[999] = '\n';
	CHECK_EQ_INT(lmtp_line_next(&s, buf, 1000, &len, &used), LMTP_LINE_OK);
	CHECK_EQ_INT(len, 998);
	CHECK_EQ_INT(used, 1000);
	/* 998 + LF ok, 999 + LF not */
	buf[998] = '\n';
	CHECK_EQ_INT(lmtp_line_next(&s, buf, 999, &len, &used), LMTP_LINE_OK);
	CHECK_EQ_INT(len, 998);
	buf[998] = 'x';
	buf[999] = '\n';
	CHECK_EQ_INT(lmtp_line_next(&s, buf, 1000, &len, &used), LMTP_LINE_TOOLONG);
	CHECK_EQ_INT(used, 1000);
	CHECK(!s.skipping);
	/* 999 + CRLF, all in one buffer */
	buf[999] = '\r';
	buf[1000] = '\n';
	memcpy(buf + 1001, "QUIT\r\n", 6);
	CHECK_EQ_INT(lmtp_line_next(&s, buf, 1007, &len, &used), LMTP_LINE_TOOLONG);
	CHECK_EQ_INT(used, 1001);
	CHECK_EQ_INT(lmtp_line_next(&s, buf + used, 6, &len, &used), LMTP_LINE_OK);
	CHECK_EQ_INT(len, 4);
	/* a 2500-byte line arriving in a 1000-byte buffer, 1000 at a time */
	memset(buf, 'y', sizeof(buf));
	memcpy(buf + 2500, "\r\nNOOP\r\n", 8);
	CHECK_EQ_INT(lmtp_line_next(&s, buf, 999, &len, &used), LMTP_LINE_NEED);
	CHECK_EQ_INT(used, 0);   /* 999 bytes could still be a line */
	CHECK_EQ_INT(lmtp_line_next(&s, buf, 1000, &len, &used), LMTP_LINE_NEED);
	CHECK_EQ_INT(used, 1000);
	CHECK(s.skipping);
	CHECK_EQ_INT(lmtp_line_next(&s, buf + 1000, 1000, &len, &used), LMTP_LINE_NEED);
	CHECK_EQ_INT(used, 1000);
	CHECK_EQ_INT(lmtp_line_next(&s, buf + 2000, 1000, &len, &used), LMTP_LINE_TOOLONG);
	CHECK_EQ_INT(used, 502);
	CHECK(!s.skipping);
	CHECK_EQ_INT(lmtp_line_next(&s, buf + 2502, 6, &len, &used), LMTP_LINE_OK);
	CHECK_EQ_INT(len, 4);
	CHECK(memcmp(buf + 2502, "NOOP", 4) == 0);
	/* all at once */
	lmtp_lines_init(&s);
	CHECK_EQ_INT(lmtp_line_next(&s, buf, 2508, &len, &used), LMTP_LINE_TOOLONG);
	CHECK_EQ_INT(used, 2502);
	CHECK(!s.skipping);
}

/* ---- formatting ---------------------------------------------------------- */

static void roundtrip(const char *line, const char *want)
{
	struct abuf b = ABUF_INIT;
	REQUIRE(parse(line) == 0);
	struct lmtp_path p = cmd.path;
	REQUIRE(lmtp_path_format(&p, &b) == 0);
	CHECK_STR((const char *)b.data, want);
	char again[LMTP_CMD_MAX + 1];
	snprintf(again, sizeof(again), "%s%s%s",
		 cmd.verb == LMTP_MAIL ? "MAIL FROM:" : "RCPT TO:",
		 (const char *)b.data,
		 cmd.verb == LMTP_MAIL && p.utf8 ? " SMTPUTF8" : "");
	REQUIRE(parse(again) == 0);
	CHECK_STR(cmd.path.local, p.local);
	CHECK_STR(cmd.path.domain, p.domain);
	CHECK_STR(cmd.path.addr, p.addr);
	CHECK(cmd.path.null == p.null);
	abuf_release(&b);
}

static void test_path_format(void)
{
	roundtrip("MAIL FROM:<a@b.test>", "<a@b.test>");
	roundtrip("MAIL FROM:<>", "<>");
	roundtrip("MAIL FROM:<@r.test:a.b@[192.0.2.1]>", "<a.b@[192.0.2.1]>");
	roundtrip("RCPT TO:<\"a b\"@x.test>", "<\"a b\"@x.test>");
	roundtrip("RCPT TO:<\"ab\"@x.test>", "<ab@x.test>");
	roundtrip("RCPT TO:<\"a\\\"b\\\\\"@x.test>", "<\"a\\\"b\\\\\"@x.test>");
	roundtrip("RCPT TO:<a..b@x.test>", "<\"a..b\"@x.test>");
	roundtrip("RCPT TO:<.a@x.test>", "<\".a\"@x.test>");
	roundtrip("RCPT TO:<a.@x.test>", "<\"a.\"@x.test>");
	roundtrip("RCPT TO:<\"\"@x.test>", "<\"\"@x.test>");
	roundtrip("RCPT TO:<\"a@b\"@x.test>", "<\"a@b\"@x.test>");
	roundtrip("RCPT TO:<Postmaster>", "<Postmaster>");
	roundtrip("MAIL FROM:<j\xc3\xb6rg@x.test> SMTPUTF8", "<j\xc3\xb6rg@x.test>");
	roundtrip("RCPT TO:<\"j\xc3\xb6 rg\"@x.test>", "<\"j\xc3\xb6 rg\"@x.test>");
	/* out of memory is reported */
	struct abuf full = { NULL, SIZE_MAX / 2, SIZE_MAX / 2 };
	CHECK_EQ_INT(lmtp_path_format(&cmd.path, &full), ARCA_ENOMEM);
}

int main(void)
{
	RUN(test_reply_table);
	RUN(test_postfix_session);
	RUN(test_other_clients);
	RUN(test_verb_errors);
	RUN(test_bdat);
	RUN(test_bad_chars);
	RUN(test_line_length);
	RUN(test_paths);
	RUN(test_utf8_paths);
	RUN(test_path_limits);
	RUN(test_mail_params);
	RUN(test_param_count);
	RUN(test_rcpt_params);
	RUN(test_lines);
	RUN(test_lines_too_long);
	RUN(test_path_format);
	HARNESS_EXIT();
}
