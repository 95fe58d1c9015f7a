/* lib/doveadm_parse: doveadm's answers as Dovecot 2.3.19 printed them (the
 * strings below were copied from its output). */
#include <stdint.h>
#include <string.h>

#include "arca_err.h"
#include "doveadm_parse.h"
#include "harness.h"

static void test_split_lines(void)
{
	char buf[] = "Trash\nSent\r\n\nProjects.Alpha\nlast";
	char *lines[8];
	size_t n = 0;
	REQUIRE(dva_split_lines(buf, sizeof(buf) - 1, lines, 8, &n) == 0);
	CHECK_EQ_INT(n, 4);
	CHECK_STR(lines[0], "Trash");
	CHECK_STR(lines[1], "Sent");
	CHECK_STR(lines[2], "Projects.Alpha");
	CHECK_STR(lines[3], "last");
	char two[] = "a\nb\nc\n";
	CHECK_EQ_INT(dva_split_lines(two, sizeof(two) - 1, lines, 2, &n), ARCA_ELIMIT);
	char nul[] = "a\0b\n";
	CHECK_EQ_INT(dva_split_lines(nul, sizeof(nul) - 1, lines, 8, &n), ARCA_EFORMAT);
	CHECK_EQ_INT(dva_split_lines(NULL, 0, lines, 8, &n), 0);
	CHECK_EQ_INT(n, 0);
}

static void test_status_line(void)
{
	char l1[] = "Projects.Alpha.Contracts messages=21 uidnext=55 uidvalidity=1427056565 highestmodseq=4";
	struct dva_status st;
	REQUIRE(dva_status_line(l1, &st) == 0);
	CHECK_STR(l1, "Projects.Alpha.Contracts");
	CHECK(st.messages == 21 && st.uidnext == 55 && st.uidvalidity == 1427056565 && st.highestmodseq == 4);
	/* a name with spaces and with something like a field in it */
	char l2[] = "My messages=1 box highestmodseq=18446744073709551615 uidvalidity=3 messages=0 uidnext=1";
	REQUIRE(dva_status_line(l2, &st) == 0);
	CHECK_STR(l2, "My messages=1 box");
	CHECK(st.highestmodseq == UINT64_MAX && st.messages == 0);
	/* refused, and left as they were */
	const char *bad[] = {
		"messages=1 uidnext=2 uidvalidity=3 highestmodseq=4",          /* no name */
		" messages=1 uidnext=2 uidvalidity=3 highestmodseq=4",         /* empty name */
		"A messages=1 uidnext=2 uidvalidity=3",                        /* three */
		"A messages=1 uidnext=2 uidnext=3 highestmodseq=4",            /* twice */
		"A messages=1 uidnext=2 uidvalidity=3 highestmodseq=-4",       /* sign */
		"A messages=1 uidnext=2 uidvalidity=3 highestmodseq=",         /* empty */
		"A messages=1 uidnext=2 uidvalidity=3 highestmodseq=18446744073709551616",
		"A messages=1 uidnext=2 uidvalidity=3 highestmodseq=4 ",       /* trailing space */
		"A messages=1 uidnext=2 uidvalidity=3 recent=4",
		"A messages=1  uidnext=2 uidvalidity=3 highestmodseq=4",       /* empty field */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char b[128];
		snprintf(b, sizeof(b), "%s", bad[i]);
		CHECK_EQ_INT(dva_status_line(b, &st), ARCA_EFORMAT);
		CHECK_STR(b, bad[i]);
	}
}

static void test_status_find(void)
{
	char l1[] = "INBOX messages=813 uidnext=1066 uidvalidity=1427056549 highestmodseq=5";
	char l2[] = "Sent messages=237 uidnext=1483 uidvalidity=1427056550 highestmodseq=2";
	char *names[2] = { l1, l2 };
	struct dva_status st[2], got;
	REQUIRE(dva_status_line(l1, &st[0]) == 0 && dva_status_line(l2, &st[1]) == 0);
	CHECK_EQ_INT(dva_status_find(names, st, 2, "Sent", &got), 0);
	CHECK(got.uidnext == 1483);
	CHECK_EQ_INT(dva_status_find(names, st, 2, "Sen", &got), ARCA_ENOENT);
	names[1] = l1;
	CHECK_EQ_INT(dva_status_find(names, st, 2, "INBOX", &got), ARCA_ECORRUPT);
}

static void test_detect_sep(void)
{
	char a[] = "INBOX", b[] = "Archive.2016", c[] = "Lists/dev";
	char *lines[] = { a, b, c };
	const char *f1[] = { "INBOX", "Archive/2016" };
	CHECK_EQ_INT(dva_detect_sep(f1, 2, lines, 3), '.');
	const char *f2[] = { "Lists/dev" };
	CHECK_EQ_INT(dva_detect_sep(f2, 1, lines, 3), '/');
	const char *f3[] = { "INBOX", "Archive" };
	CHECK_EQ_INT(dva_detect_sep(f3, 2, lines, 3), 0);
	/* two levels must use the same separator */
	char d[] = "a.b/c";
	char *l2[] = { d };
	const char *f4[] = { "a/b/c" };
	CHECK_EQ_INT(dva_detect_sep(f4, 1, l2, 1), 0);
	struct abuf v = ABUF_INIT;
	REQUIRE(dva_vname("Projects/Alpha/Contracts", '.', &v) == 0);
	CHECK_STR((const char *)v.data, "Projects.Alpha.Contracts");
	abuf_release(&v);
}

static void test_sieve_list(void)
{
	/* Dovecot 2.3.19: "NAME " for an inactive script, "NAME ACTIVE" */
	char a[] = "two words ", b[] = "main ACTIVE", c[] = "x ACTIVE ";
	char *lines[] = { a, b, c };
	long act = -2;
	REQUIRE(dva_sieve_list(lines, 3, &act) == 0);
	CHECK_EQ_INT(act, 1);
	CHECK_STR(lines[0], "two words");
	CHECK_STR(lines[1], "main");
	CHECK_STR(lines[2], "x ACTIVE");
	char d[] = "plain";
	char *l2[] = { d };
	REQUIRE(dva_sieve_list(l2, 1, &act) == 0);
	CHECK_EQ_INT(act, -1);
	CHECK_STR(l2[0], "plain");
	char e[] = "a ACTIVE", f[] = "b ACTIVE";
	char *l3[] = { e, f };
	CHECK_EQ_INT(dva_sieve_list(l3, 2, &act), ARCA_EFORMAT);
	char g[] = " ";
	char *l4[] = { g };
	CHECK_EQ_INT(dva_sieve_list(l4, 1, &act), ARCA_EFORMAT);
}

static void test_mail_location(void)
{
	bool known, fs;
	CHECK_EQ_INT(dva_mail_location("maildir:~/Maildir\n", &known, &fs), 0);
	CHECK(known && !fs);
	CHECK_EQ_INT(dva_mail_location("maildir:~/Maildir:LAYOUT=fs\n", &known, &fs), 0);
	CHECK(known && fs);
	CHECK_EQ_INT(dva_mail_location("maildir:/m/%d/%n:INDEX=/i/%u:LAYOUT=fs", &known, &fs), 0);
	CHECK(fs);
	/* a path (not an option) that says LAYOUT=fs, and an escaped ':' */
	CHECK_EQ_INT(dva_mail_location("maildir:LAYOUT=fs", &known, &fs), 0);
	CHECK(!fs);
	CHECK_EQ_INT(dva_mail_location("maildir:/a::LAYOUT=fs", &known, &fs), 0);
	CHECK(!fs);
	CHECK_EQ_INT(dva_mail_location("maildir:~/M:LAYOUT=fsx", &known, &fs), 0);
	CHECK(!fs);
	CHECK_EQ_INT(dva_mail_location("\n", &known, &fs), 0);
	CHECK(!known);
	CHECK_EQ_INT(dva_mail_location("mdbox:~/mdbox\n", &known, &fs), ARCA_EINVAL);
	CHECK_EQ_INT(dva_mail_location("maildirx:~/M", &known, &fs), ARCA_EINVAL);
}

static void test_line_user(void)
{
	CHECK(dva_user_ok("alice@example.test"));
	CHECK(!dva_user_ok(""));
	CHECK(!dva_user_ok("a b"));
	CHECK(!dva_user_ok("a\tb"));
	CHECK(!dva_user_ok("a\nb"));
	CHECK(!dva_user_ok("a\x7f"));
	const char *users[] = { "al", "alice", "bob" };
	char l1[] = "alice INBOX messages=1 uidnext=2 uidvalidity=3 highestmodseq=4";
	char *p = l1;
	size_t who = 9;
	CHECK_EQ_INT(dva_line_user(&p, users, 3, &who), 0);
	CHECK_EQ_INT((int)who, 1);
	CHECK_STR(p, "INBOX messages=1 uidnext=2 uidvalidity=3 highestmodseq=4");
	/* the shorter name, when that is whose line it is (a box "ice x") */
	char l2[] = "al ice x messages=1";
	p = l2;
	CHECK_EQ_INT(dva_line_user(&p, users, 3, &who), 0);
	CHECK_EQ_INT((int)who, 0);
	CHECK_STR(p, "ice x messages=1");
	/* a name must be followed by a space: "alicex" is nobody's */
	char l3[] = "alicex INBOX messages=1";
	p = l3;
	CHECK_EQ_INT(dva_line_user(&p, users, 3, &who), ARCA_EFORMAT);
	CHECK(p == l3);
	char l4[] = "carol INBOX messages=1", l5[] = "bob", l6[] = "";
	p = l4;
	CHECK_EQ_INT(dva_line_user(&p, users, 3, &who), ARCA_EFORMAT);
	p = l5;
	CHECK_EQ_INT(dva_line_user(&p, users, 3, &who), ARCA_EFORMAT);
	p = l6;
	CHECK_EQ_INT(dva_line_user(&p, users, 3, &who), ARCA_EFORMAT);
	CHECK_EQ_INT(dva_line_user(&p, users, 0, &who), ARCA_EFORMAT);
}

/* as Dovecot 2.3.19 printed them (od -c of doveadm sieve get) */
static void test_sieve_get(void)
{
	static const uint8_t crlf[] = "sieve script:\nrequire \"fileinto\";\r\nkeep;\r\n";
	static const uint8_t oneline[] = "sieve script:\nkeep;";
	static const uint8_t empty[] = "sieve script:\n";
	size_t off = 0;
	REQUIRE(dva_sieve_get(crlf, sizeof(crlf) - 1, &off) == 0);
	CHECK(sizeof(crlf) - 1 - off == 28 && memcmp(crlf + off, "require", 7) == 0);
	REQUIRE(dva_sieve_get(oneline, sizeof(oneline) - 1, &off) == 0);
	CHECK(sizeof(oneline) - 1 - off == 5);
	REQUIRE(dva_sieve_get(empty, sizeof(empty) - 1, &off) == 0);
	CHECK_EQ_INT(off, sizeof(empty) - 1);
	/* another formatter, or another version */
	static const uint8_t flow[] = "sieve script=keep;\n";
	CHECK_EQ_INT(dva_sieve_get(flow, sizeof(flow) - 1, &off), ARCA_EFORMAT);
	CHECK_EQ_INT(dva_sieve_get(empty, 5, &off), ARCA_EFORMAT);
	CHECK_EQ_INT(dva_sieve_get(NULL, 0, &off), ARCA_EFORMAT);
}

int main(void)
{
	RUN(test_sieve_get);
	RUN(test_line_user);
	RUN(test_split_lines);
	RUN(test_status_line);
	RUN(test_status_find);
	RUN(test_detect_sep);
	RUN(test_sieve_list);
	RUN(test_mail_location);
	HARNESS_EXIT();
}
