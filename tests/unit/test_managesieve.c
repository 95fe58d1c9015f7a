/*
 * test_managesieve.c - the ManageSieve client (lib/imap/managesieve.c):
 * every pure parser on good input, every malformed form and every limit;
 * then whole sessions against a canned server in memory, checking the bytes
 * sent (STARTTLS, AUTHENTICATE, LISTSCRIPTS, GETSCRIPT quoting, LOGOUT).
 *
 * With arguments it is the live client of tests/integration/
 * managesieve_fetch.sh:
 *   test_managesieve --fetch HOST PORT AUTHCID PASSWORD [--authzid ID]
 *                    [--starttls] [--out DIR]
 * prints one line per script, "NNNN ACTIVE LEN NAME" (ACTIVE 0 or 1), writes
 * the script to DIR/NNNN.sieve, and exits 0; on failure prints the error
 * line to stderr and exits 2.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "managesieve.h"

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

/* ---- literal headers --------------------------------------------------- */

static int lith(const char *s, size_t max, size_t *len, bool *plus)
{
	struct arca_err err = { 0 };
	int rc = msieve_parse_literal_header((const uint8_t *)s, strlen(s), max, len, plus, &err);
	if (rc != 0 && err.msg[0] == '\0')
		return 99;   /* every failure explains itself */
	return rc;
}

static void test_literal_header(void)
{
	size_t n = 7;
	bool plus = true;
	CHECK_EQ_INT(lith("{0}", 10, &n, &plus), 0);
	CHECK_EQ_INT(n, 0);
	CHECK(!plus);
	CHECK_EQ_INT(lith("{123}", 1000, &n, &plus), 0);
	CHECK_EQ_INT(n, 123);
	CHECK_EQ_INT(lith("{123+}", 1000, &n, &plus), 0);
	CHECK_EQ_INT(n, 123);
	CHECK(plus);
	CHECK_EQ_INT(lith("{016}", 16, &n, NULL), 0);
	CHECK_EQ_INT(n, 16);
	CHECK_EQ_INT(lith("{4294967295}", SIZE_MAX, &n, NULL), 0);
	CHECK_EQ_INT(n, 4294967295u);
	CHECK_EQ_INT(lith("{9999999999}", SIZE_MAX, &n, NULL), 0);
	/* the limit */
	CHECK_EQ_INT(lith("{17}", 16, &n, NULL), ARCA_ELIMIT);
	CHECK_EQ_INT(lith("{16777217}", MSIEVE_SCRIPT_MAX, &n, NULL), ARCA_ELIMIT);
	CHECK_EQ_INT(lith("{16777216}", MSIEVE_SCRIPT_MAX, &n, NULL), 0);
	/* malformed */
	static const char *const bad[] = {
		"", "{", "}", "{}", "{+}", "{12", "12}", "{12}x", "x{12}", "{1 2}", "{-1}",
		"{ 1}", "{1++}", "{+1}", "{1+2}", "{12345678901}", "{0x10}", "{1}\r\n",
		"[12]", "{１}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = lith(bad[i], SIZE_MAX, &n, NULL);
		if (rc != ARCA_EFORMAT)
			fprintf(stderr, "  \"%s\" -> %d\n", bad[i], rc);
		CHECK_EQ_INT(rc, ARCA_EFORMAT);
	}
}

static int linelit(const char *s, size_t max, size_t *len)
{
	struct arca_err err = { 0 };
	return msieve_line_literal((const uint8_t *)s, strlen(s), max, len, &err);
}

static void test_line_literal(void)
{
	size_t n = 0;
	CHECK_EQ_INT(linelit("\"IMPLEMENTATION\" {5}", 100, &n), 1);
	CHECK_EQ_INT(n, 5);
	CHECK_EQ_INT(linelit("{3}", 100, &n), 1);
	CHECK_EQ_INT(n, 3);
	CHECK_EQ_INT(linelit("NO {7+}", 100, &n), 1);
	CHECK_EQ_INT(n, 7);
	CHECK_EQ_INT(linelit("NO (TAG {0}", 100, &n), 1);
	CHECK_EQ_INT(n, 0);
	/* not literals: left to the grammar */
	CHECK_EQ_INT(linelit("OK", 100, &n), 0);
	CHECK_EQ_INT(linelit("", 100, &n), 0);
	CHECK_EQ_INT(linelit("}", 100, &n), 0);
	CHECK_EQ_INT(linelit("OK \"{3}\"", 100, &n), 0);
	CHECK_EQ_INT(linelit("abc}", 100, &n), 0);
	CHECK_EQ_INT(linelit("x{}", 100, &n), 0);
	CHECK_EQ_INT(linelit("x{+}", 100, &n), 0);
	CHECK_EQ_INT(linelit("x{a3}", 100, &n), 0);
	CHECK_EQ_INT(linelit("5}", 100, &n), 0);
	/* literals that fail */
	CHECK_EQ_INT(linelit("NO {99999999999}", SIZE_MAX, &n), ARCA_EFORMAT);
	CHECK_EQ_INT(linelit("NO {101}", 100, &n), ARCA_ELIMIT);
}

static void test_line_kind(void)
{
	CHECK(msieve_line_is_data(S("\"SASL\"")));
	CHECK(msieve_line_is_data(S("{4}\r\nSASL")));
	CHECK(!msieve_line_is_data(S("OK")));
	CHECK(!msieve_line_is_data(S("")));
	CHECK(!msieve_line_is_data(S(" \"x\"")));
	/* empty input, even without a buffer */
	struct msieve_response r;
	struct msieve_caps c;
	struct abuf b = ABUF_INIT;
	char name[MSIEVE_NAME_MAX + 1];
	size_t n;
	bool a;
	msieve_caps_init(&c);
	CHECK(!msieve_line_is_data(NULL, 0));
	CHECK_EQ_INT(msieve_parse_response(NULL, 0, &r, NULL), ARCA_EFORMAT);
	CHECK_EQ_INT(msieve_parse_capability(NULL, 0, &c, NULL), ARCA_EFORMAT);
	CHECK_EQ_INT(msieve_parse_listscripts(NULL, 0, name, &n, &a, NULL), ARCA_EFORMAT);
	CHECK_EQ_INT(msieve_parse_string_line(NULL, 0, 10, &b, NULL), ARCA_EFORMAT);
	CHECK_EQ_INT(msieve_parse_literal_header(NULL, 0, 10, &n, NULL, NULL), ARCA_EFORMAT);
	CHECK_EQ_INT(msieve_line_literal(NULL, 0, 10, &n, NULL), 0);
	CHECK_EQ_INT(msieve_name_check(NULL, 0, NULL), ARCA_EFORMAT);
}

/* ---- responses --------------------------------------------------------- */

static int resp(const uint8_t *p, size_t n, struct msieve_response *r)
{
	struct arca_err err = { 0 };
	int rc = msieve_parse_response(p, n, r, &err);
	if (rc != 0 && (err.msg[0] == '\0' || err.code != rc))
		return 99;
	return rc;
}

static void test_response_good(void)
{
	struct msieve_response r;
	CHECK_EQ_INT(resp(S("OK"), &r), 0);
	CHECK_EQ_INT(r.status, MSIEVE_OK);
	CHECK_STR(r.code, "");
	CHECK_STR(r.text, "");
	CHECK_EQ_INT(resp(S("ok"), &r), 0);
	CHECK_EQ_INT(resp(S("Ok \"Logged in.\""), &r), 0);
	CHECK_EQ_INT(r.status, MSIEVE_OK);
	CHECK_STR(r.text, "Logged in.");
	CHECK_EQ_INT(resp(S("NO \"Authentication failed.\""), &r), 0);
	CHECK_EQ_INT(r.status, MSIEVE_NO);
	CHECK_STR(r.text, "Authentication failed.");
	CHECK_EQ_INT(resp(S("BYE \"Disconnected for inactivity.\""), &r), 0);
	CHECK_EQ_INT(r.status, MSIEVE_BYE);
	CHECK_EQ_INT(resp(S("bye"), &r), 0);
	CHECK_EQ_INT(r.status, MSIEVE_BYE);
	CHECK_EQ_INT(resp(S("NO (TRYLATER) \"Try again later\""), &r), 0);
	CHECK_STR(r.code, "TRYLATER");
	CHECK_STR(r.text, "Try again later");
	CHECK_EQ_INT(resp(S("NO (quota/maxsize) \"too big\""), &r), 0);
	CHECK_STR(r.code, "QUOTA/MAXSIZE");
	CHECK_EQ_INT(resp(S("OK (WARNINGS) {5}\r\nhello"), &r), 0);
	CHECK_STR(r.code, "WARNINGS");
	CHECK_STR(r.text, "hello");
	CHECK_EQ_INT(resp(S("OK (ACTIVE)"), &r), 0);
	CHECK_STR(r.code, "ACTIVE");
	CHECK_EQ_INT(resp(S("OK (SASL \"cnNwYXV0aD1lYTQw\")"), &r), 0);
	CHECK_STR(r.code, "SASL");
	CHECK_EQ_INT(resp(S("NO (TAG {3}\r\nabc) \"x\""), &r), 0);
	CHECK_STR(r.code, "TAG");
	CHECK_STR(r.text, "x");
	CHECK_EQ_INT(resp(S("BYE (REFERRAL sieve://other.example.test:4190/) \"go\""), &r), 0);
	CHECK_STR(r.code, "REFERRAL");
	CHECK_EQ_INT(resp(S("NO (X-EXT 1 \"a\" (b (c d)) {1}\r\n)) \"t\""), &r), 0);
	CHECK_STR(r.code, "X-EXT");
	CHECK_STR(r.text, "t");
	CHECK_EQ_INT(resp(S("NO (A ((((((((x))))))))) \"8 deep\""), &r), 0);
	/* text: escapes decoded, controls and bad UTF-8 shown as '?' */
	CHECK_EQ_INT(resp(S("NO \"a\\\"b\\\\c\""), &r), 0);
	CHECK_STR(r.text, "a\"b\\c");
	CHECK_EQ_INT(resp(S("NO {7}\r\na\x01" "b\x7f" "c\r\n"), &r), 0);
	CHECK_STR(r.text, "a?b?c??");
	CHECK_EQ_INT(resp(S("NO \"\xc3\xa9t\xc3\xa9 \xff\xc0\x80 \xe2\x80\xa8\""), &r), 0);
	CHECK_STR(r.text, "\xc3\xa9t\xc3\xa9 ??? ?");
	CHECK_EQ_INT(resp(S("NO {3}\r\na\0b"), &r), 0);
	CHECK_STR(r.text, "a?b");
	/* long text: cut on a character boundary */
	struct abuf b = ABUF_INIT;
	abuf_add(&b, "NO \"", 4);
	for (int i = 0; i < 300; i++)
		abuf_add(&b, "\xc3\xa9", 2);
	abuf_add(&b, "\"", 1);
	CHECK_EQ_INT(resp(b.data, b.len, &r), 0);
	CHECK_EQ_INT(strlen(r.text), MSIEVE_TEXT_MAX);
	CHECK(((uint8_t)r.text[MSIEVE_TEXT_MAX - 1] & 0xc0) == 0x80);
	abuf_reset(&b);
	abuf_add(&b, "NO \"x", 5);
	for (int i = 0; i < 300; i++)
		abuf_add(&b, "\xc3\xa9", 2);
	abuf_add(&b, "\"", 1);
	CHECK_EQ_INT(resp(b.data, b.len, &r), 0);
	CHECK_EQ_INT(strlen(r.text), MSIEVE_TEXT_MAX - 1);
	/* a code of exactly MSIEVE_CODE_MAX bytes */
	abuf_reset(&b);
	abuf_add(&b, "NO (", 4);
	for (int i = 0; i < MSIEVE_CODE_MAX; i++)
		abuf_add(&b, "a", 1);
	abuf_add(&b, ")", 1);
	CHECK_EQ_INT(resp(b.data, b.len, &r), 0);
	CHECK_EQ_INT(strlen(r.code), MSIEVE_CODE_MAX);
	CHECK(r.code[0] == 'A');
	abuf_release(&b);
}

static void test_response_bad(void)
{
	struct msieve_response r;
	static const struct {
		const char *s;
		size_t n;
	} bad[] = {
#define B(x) { x, sizeof(x) - 1 }
		B(""), B("OKAY"), B("O"), B("* OK"), B(" OK"), B("OK "), B("OK  \"x\""),
		B("OK\"x\""), B("OK x"), B("OK Logged in"), B("OK \"x\" y"), B("OK \"x\" "),
		B("OK \"unterminated"), B("OK \"bad \\x escape\""), B("OK \"trailing \\"),
		B("OK \"a\rb\""), B("OK \"a\nb\""), B("OK \"a\0b\""), B("OK ()"),
		B("OK (TRYLATER"), B("OK (TRYLATER)\"x\""), B("OK (TRYLATER) "),
		B("OK ( TRYLATER)"), B("OK (TRYLATER )"), B("OK (X  1)"), B("OK (X \"a\" )"),
		B("OK (X (a)"), B("OK (X ())"), B("OK (X \"a)"), B("OK (X {5}\r\nab)"),
		B("OK (X {2}ab)"), B("OK (\"X\")"), B("OK (X\x01)"),
		B("NO (A (((((((((x)))))))))) \"9 deep\""),
		B("OK {5}\r\nabc"), B("OK {3}abc"), B("OK {3}\nabc"), B("OK {3}\r\nabcd"),
		B("OK {}\r\n"), B("OK {99999999999}\r\n"), B("OK \"a\" \"b\""),
		B("OK\t\"x\""), B("NO\r\n"), B("OK\0"),
#undef B
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = resp((const uint8_t *)bad[i].s, bad[i].n, &r);
		if (rc != ARCA_EFORMAT)
			fprintf(stderr, "  bad response %zu -> %d\n", i, rc);
		CHECK_EQ_INT(rc, ARCA_EFORMAT);
		CHECK_STR(r.code, "");
	}
	/* a response code one byte too long */
	struct abuf b = ABUF_INIT;
	abuf_add(&b, "NO (", 4);
	for (int i = 0; i < MSIEVE_CODE_MAX + 1; i++)
		abuf_add(&b, "a", 1);
	abuf_add(&b, ")", 1);
	CHECK_EQ_INT(resp(b.data, b.len, &r), ARCA_EFORMAT);
	abuf_release(&b);
}

/* ---- capabilities ------------------------------------------------------ */

static int cap(struct msieve_caps *c, const uint8_t *p, size_t n)
{
	struct arca_err err = { 0 };
	int rc = msieve_parse_capability(p, n, c, &err);
	if (rc != 0 && err.msg[0] == '\0')
		return 99;
	return rc;
}

static void test_capabilities(void)
{
	struct msieve_caps c;
	msieve_caps_init(&c);
	/* Dovecot 2.3's greeting */
	CHECK_EQ_INT(cap(&c, S("\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"")), 0);
	CHECK_EQ_INT(cap(&c, S("\"SIEVE\" \"fileinto reject envelope encoded-character vacation\"")), 0);
	CHECK_EQ_INT(cap(&c, S("\"NOTIFY\" \"mailto\"")), 0);
	CHECK_EQ_INT(cap(&c, S("\"SASL\" \"PLAIN LOGIN\"")), 0);
	CHECK_EQ_INT(cap(&c, S("\"STARTTLS\"")), 0);
	CHECK_EQ_INT(cap(&c, S("\"VERSION\" \"1.0\"")), 0);
	CHECK(c.starttls && c.sasl && c.sasl_plain && c.version);
	CHECK_STR(c.implementation, "Dovecot Pigeonhole");
	CHECK_STR(c.sasl_list, "PLAIN LOGIN");
	CHECK_EQ_INT(c.lines, 6);

	msieve_caps_init(&c);
	CHECK(!c.starttls && !c.sasl && !c.sasl_plain);
	CHECK_EQ_INT(cap(&c, S("\"sasl\" \"login plain\"")), 0);
	CHECK(c.sasl_plain);
	CHECK_EQ_INT(cap(&c, S("\"SASL\" \"PLAINX LOGIN\"")), 0);   /* the last SASL line counts */
	CHECK(c.sasl && !c.sasl_plain);
	CHECK_EQ_INT(cap(&c, S("\"SASL\" \"XPLAIN PLAI\"")), 0);
	CHECK(!c.sasl_plain);
	CHECK_EQ_INT(cap(&c, S("\"SASL\" \"\"")), 0);
	CHECK(c.sasl && !c.sasl_plain);
	CHECK_EQ_INT(cap(&c, S("\"SASL\" \"  PLAIN  \"")), 0);
	CHECK(c.sasl_plain);
	CHECK_EQ_INT(cap(&c, S("\"SASL\"")), 0);
	CHECK(c.sasl && !c.sasl_plain);
	CHECK_EQ_INT(cap(&c, S("{4}\r\nSASL {11}\r\nLOGIN PLAIN")), 0);
	CHECK(c.sasl_plain);
	CHECK_EQ_INT(cap(&c, S("\"StartTLS\"")), 0);
	CHECK(c.starttls);
	CHECK_EQ_INT(cap(&c, S("\"X-SOME-VERY-LONG-CAPABILITY-NAME-NOBODY-KNOWS\" \"v\"")), 0);
	CHECK_EQ_INT(cap(&c, S("\"IMPLEMENTATION\" \"evil\x1b[2J\"")), 0);
	CHECK_STR(c.implementation, "evil?[2J");
	CHECK_EQ_INT(cap(&c, S("\"MAXREDIRECTS\" {1}\r\n5")), 0);

	static const struct {
		const char *s;
		size_t n;
	} bad[] = {
#define B(x) { x, sizeof(x) - 1 }
		B("SASL \"PLAIN\""), B("\"SASL\"  \"PLAIN\""), B("\"SASL\" \"PLAIN\" \"X\""),
		B("\"\""), B("\"SASL\" PLAIN"), B("\"SASL\" \"PLAIN"), B("\"SASL"),
		B("\"SASL\" "), B("\"SASL\"\"PLAIN\""), B("{4}\r\nSAS"), B("{4}\r\nSASL{5}\r\nPLAIN"),
		B("\"SA\nSL\""), B("\"SASL\" \"PL\\AIN\""), B("\"STARTTLS\" x"),
#undef B
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msieve_caps_init(&c);
		int rc = cap(&c, (const uint8_t *)bad[i].s, bad[i].n);
		if (rc != ARCA_EFORMAT)
			fprintf(stderr, "  bad capability %zu -> %d\n", i, rc);
		CHECK_EQ_INT(rc, ARCA_EFORMAT);
	}
	/* at most MSIEVE_CAPLINES_MAX lines in one block */
	msieve_caps_init(&c);
	for (int i = 0; i < MSIEVE_CAPLINES_MAX; i++)
		CHECK_EQ_INT(cap(&c, S("\"NOTIFY\" \"mailto\"")), 0);
	CHECK_EQ_INT(cap(&c, S("\"NOTIFY\" \"mailto\"")), ARCA_ELIMIT);
}

/* ---- LISTSCRIPTS lines and names --------------------------------------- */

static char g_name[MSIEVE_NAME_MAX + 1];

static int ls(const uint8_t *p, size_t n, size_t *len, bool *active)
{
	struct arca_err err = { 0 };
	int rc = msieve_parse_listscripts(p, n, g_name, len, active, &err);
	if (rc != 0 && (err.msg[0] == '\0' || g_name[0] != '\0' || *len != 0 || *active))
		return 99;
	return rc;
}

static void test_listscripts_good(void)
{
	size_t n;
	bool a;
	CHECK_EQ_INT(ls(S("\"summer_script\""), &n, &a), 0);
	CHECK_STR(g_name, "summer_script");
	CHECK_EQ_INT(n, 13);
	CHECK(!a);
	CHECK_EQ_INT(ls(S("\"vacation\" ACTIVE"), &n, &a), 0);
	CHECK_STR(g_name, "vacation");
	CHECK(a);
	CHECK_EQ_INT(ls(S("\"vacation\" active"), &n, &a), 0);
	CHECK(a);
	CHECK_EQ_INT(ls(S("\"a\\\"b\\\\c\""), &n, &a), 0);
	CHECK_STR(g_name, "a\"b\\c");
	CHECK_EQ_INT(ls(S("{6}\r\nab\"\\ c ACTIVE"), &n, &a), 0);
	CHECK_STR(g_name, "ab\"\\ c");
	CHECK(a);
	CHECK_EQ_INT(ls(S("{6}\r\n\xc3\x9c" "bung"), &n, &a), 0);
	CHECK_STR(g_name, "\xc3\x9c" "bung");
	CHECK_EQ_INT(ls(S("\"\xf0\x9f\x93\xa7 mail \xe2\x82\xac\""), &n, &a), 0);
	CHECK_EQ_INT(ls(S("\"../../etc/passwd\""), &n, &a), 0);   /* legal; callers beware */
	CHECK_EQ_INT(ls(S("\" \""), &n, &a), 0);
	/* exactly MSIEVE_NAME_MAX bytes, quoted and literal */
	struct abuf b = ABUF_INIT;
	abuf_add(&b, "\"", 1);
	for (int i = 0; i < MSIEVE_NAME_MAX; i++)
		abuf_add(&b, "n", 1);
	abuf_add(&b, "\" ACTIVE", 8);
	CHECK_EQ_INT(ls(b.data, b.len, &n, &a), 0);
	CHECK_EQ_INT(n, MSIEVE_NAME_MAX);
	CHECK_EQ_INT(strlen(g_name), MSIEVE_NAME_MAX);
	CHECK(a);
	abuf_reset(&b);
	abuf_printf(&b, "{%d}\r\n", MSIEVE_NAME_MAX);
	for (int i = 0; i < MSIEVE_NAME_MAX / 2; i++)
		abuf_add(&b, "\xc3\xa9", 2);
	CHECK_EQ_INT(ls(b.data, b.len, &n, &a), 0);
	CHECK_EQ_INT(n, MSIEVE_NAME_MAX);
	abuf_release(&b);
}

static void test_listscripts_bad(void)
{
	size_t n;
	bool a;
	static const struct {
		const char *s;
		size_t n;
		int rc;
	} bad[] = {
#define B(x, rc) { x, sizeof(x) - 1, rc }
		B("", ARCA_EFORMAT), B("\"\"", ARCA_EFORMAT), B("{0}\r\n", ARCA_EFORMAT),
		B("summer", ARCA_EFORMAT), B("\"x\" ACTIVEX", ARCA_EFORMAT),
		B("\"x\" ", ARCA_EFORMAT), B("\"x\"  ACTIVE", ARCA_EFORMAT),
		B("\"x\" ACTIVE extra", ARCA_EFORMAT), B("\"x\" ACTIVE ", ARCA_EFORMAT),
		B("\"x\" \"ACTIVE\"", ARCA_EFORMAT), B("\"x\"ACTIVE", ARCA_EFORMAT),
		B("\"x\" INACTIVE", ARCA_EFORMAT), B("\"x", ARCA_EFORMAT),
		B("{1}\r\n\x01", ARCA_EFORMAT), B("{3}\r\na\x7f" "b", ARCA_EFORMAT),
		B("{2}\r\n\xc2\x85", ARCA_EFORMAT),          /* U+0085 NEL */
		B("{2}\r\n\xc2\x9f", ARCA_EFORMAT),          /* U+009F */
		B("{3}\r\n\xe2\x80\xa8", ARCA_EFORMAT),      /* U+2028 */
		B("{3}\r\n\xe2\x80\xa9", ARCA_EFORMAT),      /* U+2029 */
		B("{2}\r\n\xc0\x80", ARCA_EFORMAT),          /* overlong NUL */
		B("{3}\r\n\xe0\x80\xaf", ARCA_EFORMAT),      /* overlong '/' */
		B("{4}\r\n\xf0\x80\x80\xaf", ARCA_EFORMAT),  /* overlong '/' */
		B("{3}\r\n\xed\xa0\x80", ARCA_EFORMAT),      /* a surrogate */
		B("{4}\r\n\xf4\x90\x80\x80", ARCA_EFORMAT),  /* above U+10FFFF */
		B("{1}\r\n\x80", ARCA_EFORMAT), B("{1}\r\n\xff", ARCA_EFORMAT),
		B("{2}\r\n\xe2\x82", ARCA_EFORMAT),          /* cut short */
		B("{3}\r\nab\xc3", ARCA_EFORMAT), B("\"\xe9t\xe9\"", ARCA_EFORMAT),
		B("{3}\r\na\nb", ARCA_EFORMAT), B("{3}\r\na\rb", ARCA_EFORMAT),
		B("{3}\r\na\0b", ARCA_EFORMAT), B("{3}\r\na\tb", ARCA_EFORMAT),
		B("\"a\0b\"", ARCA_EFORMAT), B("{3}\r\nab", ARCA_EFORMAT),
		B("{1025}\r\n", ARCA_ELIMIT), B("{99999999999}\r\n", ARCA_EFORMAT),
#undef B
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		g_name[0] = 'x';
		int rc = ls((const uint8_t *)bad[i].s, bad[i].n, &n, &a);
		if (rc != bad[i].rc)
			fprintf(stderr, "  bad LISTSCRIPTS line %zu -> %d\n", i, rc);
		CHECK_EQ_INT(rc, bad[i].rc);
	}
	/* one byte too long, quoted */
	struct abuf b = ABUF_INIT;
	abuf_add(&b, "\"", 1);
	for (int i = 0; i < MSIEVE_NAME_MAX + 1; i++)
		abuf_add(&b, "n", 1);
	abuf_add(&b, "\"", 1);
	CHECK_EQ_INT(ls(b.data, b.len, &n, &a), ARCA_ELIMIT);
	abuf_release(&b);
}

static void test_name_check(void)
{
	struct arca_err err = { 0 };
	CHECK_EQ_INT(msieve_name_check(S("vacation"), NULL), 0);
	CHECK_EQ_INT(msieve_name_check(S("\xf4\x8f\xbf\xbf"), NULL), 0);   /* U+10FFFF */
	CHECK_EQ_INT(msieve_name_check(S("\xc2\xa0"), NULL), 0);           /* U+00A0 */
	CHECK_EQ_INT(msieve_name_check(S("\xef\xbb\xbf"), NULL), 0);       /* BOM: allowed */
	CHECK_EQ_INT(msieve_name_check(S(""), &err), ARCA_EFORMAT);
	CHECK(strstr(err.msg, "empty") != NULL);
	arca_err_clear(&err);
	CHECK_EQ_INT(msieve_name_check(S("ab\x01"), &err), ARCA_EFORMAT);
	CHECK(strstr(err.msg, "U+0001") != NULL);
	arca_err_clear(&err);
	CHECK_EQ_INT(msieve_name_check(S("ab\xff"), &err), ARCA_EFORMAT);
	CHECK(strstr(err.msg, "UTF-8") != NULL);
	static uint8_t big[MSIEVE_NAME_MAX + 1];
	memset(big, 'a', sizeof(big));
	CHECK_EQ_INT(msieve_name_check(big, sizeof(big), NULL), ARCA_ELIMIT);
	CHECK_EQ_INT(msieve_name_check(big, sizeof(big) - 1, NULL), 0);
}

/* ---- string lines and quoting ------------------------------------------ */

static void test_string_line(void)
{
	struct abuf b = ABUF_INIT;
	struct arca_err err = { 0 };
	CHECK_EQ_INT(msieve_parse_string_line(S("{3}\r\nabc"), 100, &b, &err), 0);
	CHECK(b.len == 3 && memcmp(b.data, "abc", 3) == 0);
	abuf_reset(&b);
	CHECK_EQ_INT(msieve_parse_string_line(S("{7}\r\na\0\r\nb\r\n"), 100, &b, &err), 0);
	CHECK(b.len == 7 && memcmp(b.data, "a\0\r\nb\r\n", 7) == 0);
	abuf_reset(&b);
	CHECK_EQ_INT(msieve_parse_string_line(S("\"keep; \\\"x\\\" \\\\\""), 100, &b, &err), 0);
	CHECK(b.len == 11 && memcmp(b.data, "keep; \"x\" \\", 11) == 0);
	abuf_reset(&b);
	CHECK_EQ_INT(msieve_parse_string_line(S("{0}\r\n"), 100, &b, &err), 0);
	CHECK_EQ_INT(b.len, 0);
	CHECK_EQ_INT(msieve_parse_string_line(S("\"\""), 100, &b, &err), 0);
	CHECK_EQ_INT(b.len, 0);
	/* appended after what the buffer held */
	abuf_add(&b, "x", 1);
	CHECK_EQ_INT(msieve_parse_string_line(S("\"yz\""), 100, &b, &err), 0);
	CHECK(b.len == 3 && memcmp(b.data, "xyz", 3) == 0);
	abuf_reset(&b);
	CHECK_EQ_INT(msieve_parse_string_line(S("{3}\r\nabcd"), 100, &b, NULL), ARCA_EFORMAT);
	CHECK_EQ_INT(msieve_parse_string_line(S("{3}\r\nab"), 100, &b, NULL), ARCA_EFORMAT);
	CHECK_EQ_INT(msieve_parse_string_line(S("\"ab\" "), 100, &b, NULL), ARCA_EFORMAT);
	CHECK_EQ_INT(msieve_parse_string_line(S("OK"), 100, &b, NULL), ARCA_EFORMAT);
	CHECK_EQ_INT(msieve_parse_string_line(S(""), 100, &b, NULL), ARCA_EFORMAT);
	CHECK_EQ_INT(msieve_parse_string_line(S("{4}\r\nabcd"), 3, &b, NULL), ARCA_ELIMIT);
	CHECK_EQ_INT(msieve_parse_string_line(S("\"abcd\""), 3, &b, NULL), ARCA_ELIMIT);
	CHECK_EQ_INT(msieve_parse_string_line(S("\"a\\\"c\""), 3, &b, NULL), 0);
	CHECK_EQ_INT(b.len, 3);
	abuf_release(&b);
}

static void test_quote(void)
{
	struct abuf b = ABUF_INIT;
	CHECK_EQ_INT(msieve_quote("abc", 3, &b), 0);
	CHECK(b.len == 5 && memcmp(b.data, "\"abc\"", 5) == 0);
	abuf_reset(&b);
	CHECK_EQ_INT(msieve_quote("a\"b\\c", 5, &b), 0);
	CHECK(b.len == 9 && memcmp(b.data, "\"a\\\"b\\\\c\"", 9) == 0);
	/* what was quoted parses back to itself */
	struct abuf back = ABUF_INIT;
	CHECK_EQ_INT(msieve_parse_string_line(b.data, b.len, 100, &back, NULL), 0);
	CHECK(back.len == 5 && memcmp(back.data, "a\"b\\c", 5) == 0);
	/* 1024 plain bytes stay quoted, 1024 with escapes become a literal */
	char name[MSIEVE_NAME_MAX];
	memset(name, 'n', sizeof(name));
	abuf_reset(&b);
	CHECK_EQ_INT(msieve_quote(name, sizeof(name), &b), 0);
	CHECK(b.len == sizeof(name) + 2 && b.data[0] == '"');
	name[10] = '"';
	abuf_reset(&b);
	CHECK_EQ_INT(msieve_quote(name, sizeof(name), &b), 0);
	CHECK(b.len == sizeof(name) + 9 && memcmp(b.data, "{1024+}\r\n", 9) == 0);
	CHECK(memcmp(b.data + 9, name, sizeof(name)) == 0);
	abuf_reset(&back);
	CHECK_EQ_INT(msieve_parse_string_line(b.data, b.len, 2000, &back, NULL), 0);
	CHECK(back.len == sizeof(name) && memcmp(back.data, name, sizeof(name)) == 0);
	/* NUL, CR and LF cannot be quoted */
	abuf_reset(&b);
	CHECK_EQ_INT(msieve_quote("a\nb", 3, &b), 0);
	CHECK(b.len == 9 && memcmp(b.data, "{3+}\r\na\nb", 9) == 0);
	abuf_reset(&b);
	CHECK_EQ_INT(msieve_quote("a\0b", 3, &b), 0);
	CHECK(b.len == 9 && memcmp(b.data, "{3+}\r\na\0b", 9) == 0);
	abuf_reset(&b);
	CHECK_EQ_INT(msieve_quote("", 0, &b), 0);
	CHECK(b.len == 2 && memcmp(b.data, "\"\"", 2) == 0);
	abuf_release(&b);
	abuf_release(&back);
}

/* ---- whole sessions against a canned server ---------------------------- */

#define GREETING                                                              \
	"\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n"                       \
	"\"SIEVE\" \"fileinto reject envelope vacation\"\r\n"                 \
	"\"NOTIFY\" \"mailto\"\r\n"                                           \
	"\"SASL\" \"PLAIN LOGIN\"\r\n"                                        \
	"\"VERSION\" \"1.0\"\r\n"                                             \
	"OK \"Dovecot ready.\"\r\n"

/* base64("\0alice\0pw") and base64("alice@example.test\0admin\0masterpw") */
#define AUTH_ALICE "AUTHENTICATE \"PLAIN\" \"AGFsaWNlAHB3\"\r\n"
#define AUTH_ZID "AUTHENTICATE \"PLAIN\" \"YWxpY2VAZXhhbXBsZS50ZXN0AGFkbWluAG1hc3RlcnB3\"\r\n"

struct run {
	struct msieve_memio m;
	struct sieve_scripts s;
	struct arca_err err;
	int rc;
};

static void run_session(struct run *r, const void *in, size_t n, enum netconn_tls tls,
			const char *authzid, const char *authcid, const char *pw)
{
	struct msieve_io io;
	struct managesieve_opts o = { .net = { .host = "sieve.example.test", .port = 4190,
					       .tls = tls },
				      .authzid = authzid, .authcid = authcid, .password = pw };
	memset(r, 0, sizeof(*r));
	msieve_memio_init(&r->m, in, n, &io);
	r->rc = msieve_session(&io, &o, "sieve.example.test:4190", &r->s, &r->err);
	if (r->rc != 0) {
		/* failures leave nothing behind and always explain themselves */
		if (r->s.v != NULL || r->s.n != 0 || r->err.code != r->rc ||
		    strstr(r->err.msg, "sieve.example.test:4190") == NULL) {
			fprintf(stderr, "  bad failure: rc %d, \"%s\"\n", r->rc, r->err.msg);
			r->rc = 99;
		}
	}
}

static void run_free(struct run *r)
{
	sieve_scripts_release(&r->s);
	msieve_memio_release(&r->m);
}

static bool sent_is(const struct run *r, const char *want)
{
	size_t n = strlen(want);
	if (r->m.sent.len == n && (n == 0 || memcmp(r->m.sent.data, want, n) == 0))
		return true;
	fprintf(stderr, "  sent \"%.*s\"\n  want \"%s\"\n", (int)r->m.sent.len,
		(const char *)r->m.sent.data, want);
	return false;
}

#define RUN_S(r, lit, tls, zid, cid, pw) run_session(r, lit, sizeof(lit) - 1, tls, zid, cid, pw)

static void test_session_plain(void)
{
	static const char in[] =
		GREETING
		"OK \"Logged in.\"\r\n"
		"\"one\"\r\n"
		"{8}\r\nvacation ACTIVE\r\n"
		"\"a\\\"b\"\r\n"
		"OK \"Listscripts completed.\"\r\n"
		"{7}\r\nkeep;\r\n\r\n"
		"OK \"Getscript completed.\"\r\n"
		"{11}\r\nbin\0ary\r\n\xff\r\n"
		"OK\r\n"
		"\"discard;\"\r\n"
		"OK \"Getscript completed.\"\r\n"
		"OK \"Logout completed.\"\r\n";
	struct run r;
	RUN_S(&r, in, NETCONN_PLAIN, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, 0);
	if (r.err.code)
		fprintf(stderr, "  %s\n", r.err.msg);
	REQUIRE(r.s.n == 3);
	CHECK_STR(r.s.v[0].name, "one");
	CHECK(!r.s.v[0].active);
	CHECK(r.s.v[0].len == 7 && memcmp(r.s.v[0].data, "keep;\r\n", 7) == 0);
	CHECK_STR(r.s.v[1].name, "vacation");
	CHECK(r.s.v[1].active);
	CHECK(r.s.v[1].len == 11 && memcmp(r.s.v[1].data, "bin\0ary\r\n\xff\r", 11) == 0);
	CHECK_STR(r.s.v[2].name, "a\"b");
	CHECK(!r.s.v[2].active);
	CHECK(r.s.v[2].len == 8 && memcmp(r.s.v[2].data, "discard;", 8) == 0);
	CHECK(sent_is(&r, AUTH_ALICE "LISTSCRIPTS\r\nGETSCRIPT \"one\"\r\n"
			  "GETSCRIPT \"vacation\"\r\nGETSCRIPT \"a\\\"b\"\r\nLOGOUT\r\n"));
	CHECK_EQ_INT(r.m.tls_started, 0);
	CHECK_EQ_INT(r.m.pos, r.m.len);
	run_free(&r);

	/* authzid + authcid; bare LF line ends; lower-case keywords; no
	 * scripts; the LOGOUT answer missing does not matter */
	static const char in2[] =
		"\"SASL\" \"PLAIN\"\n"
		"ok\n"
		"ok\n"
		"ok\n";
	RUN_S(&r, in2, NETCONN_PLAIN, "alice@example.test", "admin", "masterpw");
	CHECK_EQ_INT(r.rc, 0);
	CHECK_EQ_INT(r.s.n, 0);
	CHECK(sent_is(&r, AUTH_ZID "LISTSCRIPTS\r\nLOGOUT\r\n"));
	run_free(&r);

	/* an empty authzid is none */
	RUN_S(&r, in2, NETCONN_PLAIN, "", "alice", "pw");
	CHECK_EQ_INT(r.rc, 0);
	CHECK(sent_is(&r, AUTH_ALICE "LISTSCRIPTS\r\nLOGOUT\r\n"));
	run_free(&r);
}

static void test_session_starttls(void)
{
	/* SASL offered only over TLS, as servers with plaintext auth off do */
	static const char in[] =
		"\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n"
		"\"SASL\" \"\"\r\n"
		"\"STARTTLS\"\r\n"
		"OK \"Dovecot ready.\"\r\n"
		"OK \"Begin TLS negotiation now.\"\r\n"
		"\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n"
		"\"SASL\" \"PLAIN LOGIN\"\r\n"
		"OK \"TLS negotiation successful.\"\r\n"
		"OK \"Logged in.\"\r\n"
		"\"s\" ACTIVE\r\n"
		"OK\r\n"
		"{5}\r\nkeep;\r\n"
		"OK\r\n"
		"OK\r\n";
	struct run r;
	RUN_S(&r, in, NETCONN_STARTTLS, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, 0);
	CHECK_EQ_INT(r.m.tls_started, 1);
	REQUIRE(r.s.n == 1);
	CHECK(r.s.v[0].active && r.s.v[0].len == 5);
	CHECK(sent_is(&r, "STARTTLS\r\n" AUTH_ALICE "LISTSCRIPTS\r\nGETSCRIPT \"s\"\r\nLOGOUT\r\n"));
	run_free(&r);

	/* the same server without TLS asked for: no PLAIN, nothing sent */
	RUN_S(&r, in, NETCONN_PLAIN, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, ARCA_EIO);
	CHECK(strstr(r.err.msg, "SASL PLAIN") != NULL);
	CHECK(sent_is(&r, ""));
	run_free(&r);

	/* STARTTLS asked for but not offered: stop before anything is sent */
	static const char notls[] = GREETING;
	RUN_S(&r, notls, NETCONN_STARTTLS, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, ARCA_EIO);
	CHECK(strstr(r.err.msg, "STARTTLS") != NULL);
	CHECK(sent_is(&r, ""));
	CHECK_EQ_INT(r.m.tls_started, 0);
	run_free(&r);

	/* STARTTLS refused */
	static const char refused[] =
		"\"SASL\" \"PLAIN\"\r\n\"STARTTLS\"\r\nOK\r\nNO \"TLS unavailable\"\r\n";
	RUN_S(&r, refused, NETCONN_STARTTLS, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, ARCA_EIO);
	CHECK(strstr(r.err.msg, "TLS unavailable") != NULL);
	CHECK(sent_is(&r, "STARTTLS\r\n"));
	CHECK_EQ_INT(r.m.tls_started, 0);
	run_free(&r);

	/* capabilities from before the handshake are forgotten: PLAIN offered
	 * in the clear but not over TLS is not used */
	static const char forget[] =
		"\"SASL\" \"PLAIN\"\r\n\"STARTTLS\"\r\nOK\r\nOK\r\n"
		"\"SASL\" \"SCRAM-SHA-256\"\r\nOK\r\n";
	RUN_S(&r, forget, NETCONN_STARTTLS, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, ARCA_EIO);
	CHECK(strstr(r.err.msg, "SCRAM-SHA-256") != NULL);
	CHECK(sent_is(&r, "STARTTLS\r\n"));
	run_free(&r);

	/* no capabilities again after the handshake (the connection ends) */
	static const char silent[] = "\"SASL\" \"PLAIN\"\r\n\"STARTTLS\"\r\nOK\r\nOK\r\n";
	RUN_S(&r, silent, NETCONN_STARTTLS, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, ARCA_EIO);
	CHECK(sent_is(&r, "STARTTLS\r\n"));
	run_free(&r);
}

static void test_session_refusals(void)
{
	struct run r;
	static const char nosasl[] = "\"IMPLEMENTATION\" \"x\"\r\nOK\r\n";
	RUN_S(&r, nosasl, NETCONN_PLAIN, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, ARCA_EIO);
	CHECK(strstr(r.err.msg, "no SASL capability") != NULL);
	CHECK(sent_is(&r, ""));
	run_free(&r);

	static const char bye[] = "BYE \"Too many connections\"\r\n";
	RUN_S(&r, bye, NETCONN_PLAIN, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, ARCA_EIO);
	CHECK(strstr(r.err.msg, "greeting") && strstr(r.err.msg, "BYE \"Too many connections\""));
	run_free(&r);

	static const char later[] = "\"SASL\" \"PLAIN\"\r\nNO (TRYLATER) \"maintenance\"\r\n";
	RUN_S(&r, later, NETCONN_PLAIN, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, ARCA_EBUSY);
	CHECK(strstr(r.err.msg, "NO (TRYLATER) \"maintenance\"") != NULL);
	run_free(&r);

	static const char authno[] = GREETING "NO \"Authentication failed.\"\r\n";
	RUN_S(&r, authno, NETCONN_PLAIN, "alice@example.test", "admin", "wrong");
	CHECK_EQ_INT(r.rc, ARCA_EKEY);
	CHECK(strstr(r.err.msg, "\"admin\"") && strstr(r.err.msg, "alice@example.test") &&
	      strstr(r.err.msg, "Authentication failed."));
	run_free(&r);

	static const char authbye[] = GREETING "BYE \"go away\"\r\n";
	RUN_S(&r, authbye, NETCONN_PLAIN, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, ARCA_EIO);
	run_free(&r);

	static const char challenge[] = GREETING "\"\"\r\nOK\r\n";
	RUN_S(&r, challenge, NETCONN_PLAIN, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, ARCA_EFORMAT);
	CHECK(strstr(r.err.msg, "challenge") != NULL);
	run_free(&r);

	static const char listno[] = GREETING "OK\r\n\"a\"\r\nNO \"Internal error\"\r\n";
	RUN_S(&r, listno, NETCONN_PLAIN, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, ARCA_EIO);
	CHECK(strstr(r.err.msg, "LISTSCRIPTS") && strstr(r.err.msg, "Internal error"));
	run_free(&r);

	static const char gone[] = GREETING "OK\r\n\"a\"\r\nOK\r\n"
				   "NO (NONEXISTENT) \"Script does not exist.\"\r\n";
	RUN_S(&r, gone, NETCONN_PLAIN, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, ARCA_ENOENT);
	CHECK(strstr(r.err.msg, "GETSCRIPT \"a\"") != NULL);
	run_free(&r);

	static const char getno[] = GREETING "OK\r\n\"a\"\r\nOK\r\n{1}\r\nx\r\nNO \"oops\"\r\n";
	RUN_S(&r, getno, NETCONN_PLAIN, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, ARCA_EIO);
	run_free(&r);

	static const char getok[] = GREETING "OK\r\n\"a\"\r\nOK\r\nOK\r\n";
	RUN_S(&r, getok, NETCONN_PLAIN, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, ARCA_EFORMAT);
	CHECK(strstr(r.err.msg, "without the script") != NULL);
	run_free(&r);
}

static void test_session_malformed(void)
{
	struct run r;
	static const struct {
		const char *s;
		size_t n;
		int rc;
	} cases[] = {
#define C(x, rc) { x, sizeof(x) - 1, rc }
		C("", ARCA_EIO),                                   /* closed at once */
		C("\r\n", ARCA_EFORMAT),                           /* an empty line */
		C("\"SASL\" \"PLAIN\"\r\n\n", ARCA_EFORMAT),
		C("\"SASL\" \"PLAIN\"\r\n", ARCA_EIO),             /* closed mid-greeting */
		C("* OK IMAP4rev1\r\n", ARCA_EFORMAT),             /* not ManageSieve */
		C("220 smtp ESMTP\r\n", ARCA_EFORMAT),
		C("\"SASL\" PLAIN\r\nOK\r\n", ARCA_EFORMAT),
		C(GREETING "\"x\" ACTIVE\r\n", ARCA_EFORMAT),      /* a string where OK was due */
		C(GREETING "OK\r\n\"a\" ACTIVE\r\n\"b\" ACTIVE\r\nOK\r\n", ARCA_EFORMAT),
		C(GREETING "OK\r\n\"a\"\r\n\"b\"\r\n\"a\"\r\nOK\r\n", ARCA_EFORMAT),
		C(GREETING "OK\r\n\"\"\r\nOK\r\n", ARCA_EFORMAT),
		C(GREETING "OK\r\n{1}\r\n\n\r\nOK\r\n", ARCA_EFORMAT),
		C(GREETING "OK\r\n\"a\"\r\nOK\r\n{1}\r\nxy\r\nOK\r\n", ARCA_EFORMAT),
		C(GREETING "OK\r\n\"a\"\r\nOK\r\n{1}x\r\n", ARCA_EFORMAT),
		C(GREETING "OK\r\n\"a\"\r\nOK\r\n{5}\r\nab", ARCA_EIO),
		C(GREETING "OK\r\n\"a\"\r\nOK\r\n{16777217}\r\n", ARCA_ELIMIT),
		C(GREETING "OK\r\n\"a\"\r\nOK\r\n{99999999999}\r\n", ARCA_EFORMAT),
		C(GREETING "OK\r\n\"a\"\r\nOK\r\n\"abc\" \"d\"\r\nOK\r\n", ARCA_EFORMAT),
		C(GREETING "OK\r\n\"a\"\r\nOK\r\n{2}\r\nab\r\n\"x\"\r\n", ARCA_EFORMAT),
		C(GREETING "OK\r\n\"a\"\r\nOK\r\n{2}\r\nab\r\n", ARCA_EIO),
		C(GREETING "OK (X\r\n", ARCA_EFORMAT),
		C(GREETING "OK {99999}\r\n", ARCA_ELIMIT),         /* literal above the response limit */
#undef C
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_session(&r, cases[i].s, cases[i].n, NETCONN_PLAIN, NULL, "alice", "pw");
		if (r.rc != cases[i].rc)
			fprintf(stderr, "  case %zu -> %d (%s)\n", i, r.rc, r.err.msg);
		CHECK_EQ_INT(r.rc, cases[i].rc);
		run_free(&r);
	}
}

static void test_session_limits(void)
{
	struct run r;
	struct abuf in = ABUF_INIT;

	/* a line of MSIEVE_LINE_MAX bytes is fine, one more is not */
	for (int extra = 0; extra <= 1; extra++) {
		abuf_reset(&in);
		abuf_add(&in, "\"X-PAD\" \"", 9);
		for (int i = 0; i < MSIEVE_LINE_MAX - 10 + extra; i++)
			abuf_add(&in, "p", 1);
		abuf_add(&in, "\"\r\n" GREETING "OK\r\nOK\r\nOK\r\n", 3 + sizeof(GREETING) - 1 + 12);
		run_session(&r, in.data, in.len, NETCONN_PLAIN, NULL, "alice", "pw");
		CHECK_EQ_INT(r.rc, extra ? ARCA_ELIMIT : 0);
		run_free(&r);
	}

	/* a response reassembled from literals beyond MSIEVE_RESPONSE_MAX */
	abuf_reset(&in);
	abuf_add(&in, S(GREETING "OK\r\nOK"));
	for (int i = 0; i < 70; i++) {
		abuf_add(&in, " {1000}\r\n", 9);
		for (int j = 0; j < 1000; j++)
			abuf_add(&in, "t", 1);
	}
	abuf_add(&in, "\r\n", 2);
	run_session(&r, in.data, in.len, NETCONN_PLAIN, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, ARCA_ELIMIT);
	CHECK(strstr(r.err.msg, "a response longer than 65536 bytes") != NULL);
	run_free(&r);

	/* exactly MSIEVE_SCRIPTS_MAX scripts, then one more */
	for (int extra = 0; extra <= 1; extra++) {
		abuf_reset(&in);
		abuf_add(&in, S(GREETING "OK\r\n"));
		int n = MSIEVE_SCRIPTS_MAX + extra;
		for (int i = 0; i < n; i++)
			abuf_printf(&in, "\"s%04d\"%s\r\n", i, i == 7 ? " ACTIVE" : "");
		abuf_add(&in, "OK\r\n", 4);
		for (int i = 0; i < n; i++)
			abuf_printf(&in, "{5}\r\n%05d\r\nOK\r\n", i);
		abuf_add(&in, "OK\r\n", 4);
		run_session(&r, in.data, in.len, NETCONN_PLAIN, NULL, "alice", "pw");
		if (extra) {
			CHECK_EQ_INT(r.rc, ARCA_ELIMIT);
			CHECK(strstr(r.err.msg, "more than 1024 scripts") != NULL);
		} else {
			CHECK_EQ_INT(r.rc, 0);
			CHECK_EQ_INT(r.s.n, MSIEVE_SCRIPTS_MAX);
			if (r.s.n == MSIEVE_SCRIPTS_MAX) {
				CHECK(r.s.v[7].active && !r.s.v[8].active);
				CHECK(memcmp(r.s.v[1023].data, "01023", 5) == 0);
				CHECK_STR(r.s.v[1023].name, "s1023");
			}
		}
		run_free(&r);
	}

	/* a 16 MiB script is fine; four of them reach the total; one byte more
	 * is refused before it is read */
	abuf_reset(&in);
	abuf_add(&in, S(GREETING "OK\r\n\"a\"\r\n\"b\"\r\n\"c\"\r\n\"d\"\r\n\"e\"\r\nOK\r\n"));
	for (int i = 0; i < 4; i++) {
		abuf_printf(&in, "{%u}\r\n", MSIEVE_SCRIPT_MAX);
		REQUIRE(abuf_reserve(&in, MSIEVE_SCRIPT_MAX) == 0);
		memset(in.data + in.len, 'a' + i, MSIEVE_SCRIPT_MAX);
		in.len += MSIEVE_SCRIPT_MAX;
		abuf_add(&in, "\r\nOK\r\n", 6);
	}
	size_t before_e = in.len;
	abuf_add(&in, "{1}\r\n", 5);   /* the data never comes */
	run_session(&r, in.data, in.len, NETCONN_PLAIN, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, ARCA_ELIMIT);
	CHECK(strstr(r.err.msg, "GETSCRIPT \"e\"") && strstr(r.err.msg, "together"));
	run_free(&r);
	/* and without the fifth script, all four arrive */
	in.len = before_e;
	abuf_add(&in, "{0}\r\n\r\nOK\r\nOK\r\n", 15);
	run_session(&r, in.data, in.len, NETCONN_PLAIN, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, 0);
	if (r.rc == 0 && r.s.n == 5) {
		CHECK(r.s.v[3].len == MSIEVE_SCRIPT_MAX && r.s.v[3].data[12345] == 'd');
		CHECK_EQ_INT(r.s.v[4].len, 0);
		CHECK(r.s.v[4].data != NULL);
	}
	run_free(&r);
	abuf_release(&in);
}

static void test_session_names(void)
{
	/* a name whose quoted form passes 1024 octets goes as a literal */
	struct abuf in = ABUF_INIT, want = ABUF_INIT, name = ABUF_INIT;
	for (int i = 0; i < 1000; i++)
		abuf_add(&name, i % 20 ? "n" : "\"", 1);
	abuf_add(&in, S(GREETING "OK\r\n"));
	abuf_printf(&in, "{%zu}\r\n", name.len);
	abuf_add(&in, name.data, name.len);
	abuf_add(&in, S("\r\nOK\r\n{1}\r\nx\r\nOK\r\nOK\r\n"));
	abuf_add(&want, S(AUTH_ALICE "LISTSCRIPTS\r\nGETSCRIPT {1000+}\r\n"));
	abuf_add(&want, name.data, name.len);
	abuf_add(&want, S("\r\nLOGOUT\r\n"));
	abuf_cstr(&want);
	struct run r;
	run_session(&r, in.data, in.len, NETCONN_PLAIN, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, 0);
	CHECK(sent_is(&r, (const char *)want.data));
	run_free(&r);
	abuf_release(&in);
	abuf_release(&want);
	abuf_release(&name);
}

static void test_session_options(void)
{
	struct run r;
	static const char in[] = GREETING "OK\r\nOK\r\nOK\r\n";
	RUN_S(&r, in, NETCONN_PLAIN, NULL, "", "pw");
	CHECK_EQ_INT(r.rc, ARCA_EINVAL);
	CHECK_EQ_INT(r.m.pos, 0);
	run_free(&r);
	RUN_S(&r, in, NETCONN_PLAIN, NULL, NULL, "pw");
	CHECK_EQ_INT(r.rc, ARCA_EINVAL);
	run_free(&r);
	RUN_S(&r, in, NETCONN_PLAIN, NULL, "alice", NULL);
	CHECK_EQ_INT(r.rc, ARCA_EINVAL);
	run_free(&r);
	char big[MSIEVE_SASL_FIELD_MAX + 2];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	RUN_S(&r, in, NETCONN_PLAIN, NULL, "alice", big);
	CHECK_EQ_INT(r.rc, ARCA_EINVAL);
	run_free(&r);
	RUN_S(&r, in, NETCONN_PLAIN, big, "alice", "pw");
	CHECK_EQ_INT(r.rc, ARCA_EINVAL);
	run_free(&r);
	/* 255 bytes each is fine */
	big[MSIEVE_SASL_FIELD_MAX] = '\0';
	RUN_S(&r, in, NETCONN_PLAIN, big, big, big);
	CHECK_EQ_INT(r.rc, 0);
	run_free(&r);
	RUN_S(&r, in, (enum netconn_tls)7, NULL, "alice", "pw");
	CHECK_EQ_INT(r.rc, ARCA_EINVAL);
	run_free(&r);

	struct sieve_scripts s = { NULL, 0 };
	struct arca_err err = { 0 };
	struct managesieve_opts o = { .net = { .host = "", .port = 4190 }, .authcid = "a",
				      .password = "p" };
	CHECK_EQ_INT(managesieve_fetch_all(&o, &s, &err), ARCA_EINVAL);
	sieve_scripts_release(&s);
	sieve_scripts_release(NULL);
}

/* ---- the live client for the integration test -------------------------- */

/* ---- restoring: PUTSCRIPT and SETACTIVE -------------------------------- */

static int put_session(const char *in, size_t n, const struct msieve_put *v, size_t nv,
		       struct msieve_put_result *res, struct msieve_memio *m, struct arca_err *err)
{
	struct msieve_io io;
	struct managesieve_opts o = { .net = { .tls = NETCONN_PLAIN }, .authcid = "alice",
				      .password = "pw" };
	msieve_memio_init(m, in, n, &io);
	int rc = msieve_put_session(&io, &o, "sieve.example.test:4190", v, nv, res, err);
	if (rc != 0 && (err->code != rc || strstr(err->msg, "sieve.example.test:4190") == NULL))
		rc = 99;
	return rc;
}

static bool sent_eq(const struct msieve_memio *m, const char *want, size_t n)
{
	if (m->sent.len == n && memcmp(m->sent.data, want, n) == 0)
		return true;
	fprintf(stderr, "  sent \"%.*s\"\n  want \"%.*s\"\n", (int)m->sent.len,
		(const char *)m->sent.data, (int)n, want);
	return false;
}

static void test_put_session(void)
{
	/* the server has "old" (other content, active: made since the
	 * attack) and "same" (equal): "old" stays and ours goes in as
	 * "old-restored", "same" is left alone, "new" is put; the server's
	 * active script stays active */
	static const char in[] =
		GREETING
		"OK \"Logged in.\"\r\n"
		"\"old\" ACTIVE\r\n"
		"\"same\"\r\n"
		"\"other\"\r\n"
		"OK \"Listscripts completed.\"\r\n"
		"{5}\r\nstop;\r\n"
		"OK\r\n"
		"{6}\r\nkeep;\n\r\n"
		"OK\r\n"
		"OK\r\n"
		"OK (WARNINGS) \"line 1: something\"\r\n"
		"OK \"Logout completed.\"\r\n";
	static const uint8_t d_old[] = "keep;\n", d_same[] = "keep;\n", d_new[] = "bin\0\r\n";
	struct msieve_put v[3] = {
		{ .name = "old", .data = d_old, .len = 6 },
		{ .name = "same", .data = d_same, .len = 6 },
		{ .name = "n\"ew", .data = d_new, .len = 6, .active = true },
	};
	struct msieve_memio m;
	struct msieve_put_result res;
	struct arca_err err = { 0 };
	CHECK_EQ_INT(put_session(in, sizeof(in) - 1, v, 3, &res, &m, &err), 0);
	if (err.code)
		fprintf(stderr, "  %s\n", err.msg);
	CHECK_EQ_INT(res.put, 2);
	CHECK_EQ_INT(res.same, 1);
	CHECK_EQ_INT(res.renamed, 1);
	CHECK(!res.activated);
	CHECK(!res.active_already);
	CHECK(res.active_kept);
	CHECK_STR(res.server_active, "old");
	static const char want[] =
		AUTH_ALICE "LISTSCRIPTS\r\nGETSCRIPT \"old\"\r\nGETSCRIPT \"same\"\r\n"
		"PUTSCRIPT \"old-restored\" {6+}\r\nkeep;\n\r\n"
		"PUTSCRIPT \"n\\\"ew\" {6+}\r\nbin\0\r\n\r\n"
		"LOGOUT\r\n";
	CHECK(sent_eq(&m, want, sizeof(want) - 1));
	msieve_memio_release(&m);

	/* a re-run: "old-restored" is there with our bytes; nothing active on
	 * the server: ours is activated */
	static const char in1[] =
		GREETING
		"OK\r\n"
		"\"old\"\r\n"
		"\"old-restored\"\r\n"
		"OK\r\n"
		"{5}\r\nstop;\r\n"
		"OK\r\n"
		"{6}\r\nkeep;\n\r\n"
		"OK\r\n"
		"OK\r\n"
		"OK\r\n";
	struct msieve_put act = { .name = "old", .data = d_old, .len = 6, .active = true };
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(put_session(in1, sizeof(in1) - 1, &act, 1, &res, &m, &err), 0);
	CHECK_EQ_INT(res.put, 0);
	CHECK_EQ_INT(res.same, 1);
	CHECK_EQ_INT(res.renamed, 1);
	CHECK(res.activated && !res.active_kept);
	static const char want1[] = AUTH_ALICE "LISTSCRIPTS\r\nGETSCRIPT \"old\"\r\nGETSCRIPT \"old-restored\"\r\n"
				    "SETACTIVE \"old-restored\"\r\nLOGOUT\r\n";
	CHECK(sent_eq(&m, want1, sizeof(want1) - 1));
	msieve_memio_release(&m);

	/* ours is never renamed onto another of ours, nor onto a script of
	 * the server with other bytes: x goes in as x-restored-3 (x-restored
	 * is ours, x-restored-2 the server's own) */
	static const char in3[] = GREETING "OK\r\n\"x\"\r\n\"x-restored-2\"\r\nOK\r\n{5}\r\nstop;\r\nOK\r\n"
				  "{5}\r\nmine;\r\nOK\r\nOK\r\nOK\r\nOK\r\n";
	struct msieve_put clash[2] = { { .name = "x", .data = d_old, .len = 6 },
				       { .name = "x-restored", .data = d_same, .len = 6 } };
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(put_session(in3, sizeof(in3) - 1, clash, 2, &res, &m, &err), 0);
	CHECK_EQ_INT(res.put, 2);
	CHECK_EQ_INT(res.renamed, 1);
	static const char want3[] = AUTH_ALICE "LISTSCRIPTS\r\nGETSCRIPT \"x\"\r\nGETSCRIPT \"x-restored-2\"\r\n"
				    "PUTSCRIPT \"x-restored-3\" {6+}\r\nkeep;\n\r\n"
				    "PUTSCRIPT \"x-restored\" {6+}\r\nkeep;\n\r\nLOGOUT\r\n";
	CHECK(sent_eq(&m, want3, sizeof(want3) - 1));
	msieve_memio_release(&m);

	/* everything already there and active: nothing put, no SETACTIVE */
	static const char in2[] =
		GREETING
		"OK\r\n"
		"\"same\" ACTIVE\r\n"
		"OK\r\n"
		"{6}\r\nkeep;\n\r\n"
		"OK\r\n"
		"OK\r\n";
	struct msieve_put one = { .name = "same", .data = d_same, .len = 6, .active = true };
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(put_session(in2, sizeof(in2) - 1, &one, 1, &res, &m, &err), 0);
	CHECK_EQ_INT(res.put, 0);
	CHECK_EQ_INT(res.same, 1);
	CHECK(!res.activated);
	CHECK(res.active_already);
	static const char want2[] = AUTH_ALICE "LISTSCRIPTS\r\nGETSCRIPT \"same\"\r\nLOGOUT\r\n";
	CHECK(sent_eq(&m, want2, sizeof(want2) - 1));
	msieve_memio_release(&m);
}

static void test_put_refusals(void)
{
	static const uint8_t d[] = "keep;";
	struct msieve_put v = { .name = "x", .data = d, .len = 5, .active = true };
	struct msieve_memio m;
	struct msieve_put_result res;
	struct arca_err err = { 0 };
	/* a script the server's Sieve rejects: the error names it and the
	 * server's words; no SETACTIVE after it */
	static const char in[] = GREETING "OK\r\nOK\r\nNO \"line 1: unknown command 'kep'\"\r\n";
	CHECK_EQ_INT(put_session(in, sizeof(in) - 1, &v, 1, &res, &m, &err), ARCA_EIO);
	CHECK(strstr(err.msg, "PUTSCRIPT \"x\"") != NULL);
	CHECK(strstr(err.msg, "unknown command") != NULL);
	CHECK(memmem(m.sent.data, m.sent.len, "SETACTIVE", 9) == NULL);
	msieve_memio_release(&m);
	/* SETACTIVE refused */
	static const char in2[] = GREETING "OK\r\nOK\r\nOK\r\nNO (NONEXISTENT) \"no such\"\r\n";
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(put_session(in2, sizeof(in2) - 1, &v, 1, &res, &m, &err), ARCA_EIO);
	CHECK(strstr(err.msg, "SETACTIVE") != NULL);
	CHECK_EQ_INT(res.put, 1);
	msieve_memio_release(&m);
	/* over quota, TRYLATER */
	static const char in3[] = GREETING "OK\r\nOK\r\nNO (QUOTA/MAXSIZE) \"too big\"\r\n";
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(put_session(in3, sizeof(in3) - 1, &v, 1, &res, &m, &err), ARCA_EIO);
	CHECK(strstr(err.msg, "QUOTA/MAXSIZE") != NULL);
	msieve_memio_release(&m);
	/* bad arguments are refused before a byte is sent */
	struct msieve_put two[2] = { v, v };
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(put_session(in, sizeof(in) - 1, two, 2, &res, &m, &err), ARCA_EINVAL);
	CHECK_EQ_INT(m.sent.len, 0);
	msieve_memio_release(&m);
	struct msieve_put bad = { .name = "a\nb", .data = d, .len = 5 };
	CHECK_EQ_INT(put_session(in, sizeof(in) - 1, &bad, 1, &res, &m, &err), ARCA_EINVAL);
	msieve_memio_release(&m);
	two[1].name = "y";
	CHECK_EQ_INT(put_session(in, sizeof(in) - 1, two, 2, &res, &m, &err), ARCA_EINVAL);   /* two active */
	msieve_memio_release(&m);
	/* the connection closing half-way */
	static const char in4[] = GREETING "OK\r\nOK\r\n";
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(put_session(in4, sizeof(in4) - 1, &v, 1, &res, &m, &err), ARCA_EIO);
	msieve_memio_release(&m);
}

static int live(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: %s --fetch HOST PORT AUTHCID PASSWORD [--authzid ID] "
				"[--starttls] [--out DIR]\n", argv[0]);
		return 2;
	}
	struct managesieve_opts o = { .net = { .host = argv[2], .port = (uint16_t)atoi(argv[3]),
					       .tls = NETCONN_PLAIN, .timeout_ms = 10000 },
				      .authcid = argv[4], .password = argv[5] };
	const char *out = NULL;
	for (int i = 6; i < argc; i++) {
		if (strcmp(argv[i], "--authzid") == 0 && i + 1 < argc)
			o.authzid = argv[++i];
		else if (strcmp(argv[i], "--starttls") == 0)
			o.net.tls = NETCONN_STARTTLS;
		else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out = argv[++i];
		else {
			fprintf(stderr, "unknown option %s\n", argv[i]);
			return 2;
		}
	}
	struct sieve_scripts s = { NULL, 0 };
	struct arca_err err = { 0 };
	int rc = managesieve_fetch_all(&o, &s, &err);
	if (rc) {
		fprintf(stderr, "error %d (%s): %s\n", rc, arca_strerror(rc), err.msg);
		return 2;
	}
	for (size_t i = 0; i < s.n; i++) {
		printf("%04zu %d %zu %s\n", i, s.v[i].active ? 1 : 0, s.v[i].len, s.v[i].name);
		if (out != NULL) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%04zu.sieve", out, i);
			FILE *f = fopen(path, "wb");
			if (f == NULL || (s.v[i].len && fwrite(s.v[i].data, s.v[i].len, 1, f) != 1) ||
			    fclose(f) != 0) {
				fprintf(stderr, "cannot write %s\n", path);
				sieve_scripts_release(&s);
				return 2;
			}
		}
	}
	sieve_scripts_release(&s);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--fetch") == 0)
		return live(argc, argv);
	RUN(test_literal_header);
	RUN(test_line_literal);
	RUN(test_line_kind);
	RUN(test_response_good);
	RUN(test_response_bad);
	RUN(test_capabilities);
	RUN(test_listscripts_good);
	RUN(test_listscripts_bad);
	RUN(test_name_check);
	RUN(test_string_line);
	RUN(test_quote);
	RUN(test_session_plain);
	RUN(test_session_starttls);
	RUN(test_session_refusals);
	RUN(test_session_malformed);
	RUN(test_session_limits);
	RUN(test_session_names);
	RUN(test_session_options);
	RUN(test_put_session);
	RUN(test_put_refusals);
	HARNESS_EXIT();
}
