/* Journal address -> account mapping. */
#include <stdint.h>
#include <string.h>

#include "lmtp.h"
#include "harness.h"

static const char jd[] = "journal.invalid";

/* Maps rcpt; on success the account must be want and the direction dir. */
static void ok_map(const char *rcpt, const char *want, enum journal_dir dir, int line)
{
	char acct[JOURNAL_ACCOUNT_MAX + 1];
	enum journal_dir d = 0;
	struct arca_err err = { 0 };
	int rc = journal_addr_map(rcpt, jd, acct, sizeof(acct), &d, &err);
	if (rc != 0 || strcmp(acct, want) != 0 || d != dir) {
		fprintf(stderr, "  line %d: \"%s\" -> rc %d \"%s\" dir %d (%s), want \"%s\" dir %d\n",
			line, rcpt, rc, acct, (int)d, err.msg, want, (int)dir);
		harness_failed_current = 1;
	}
	CHECK(err.msg[0] == '\0');
}

static void bad_map(const char *rcpt, int want_rc, int line)
{
	char acct[JOURNAL_ACCOUNT_MAX + 1];
	enum journal_dir d = 0;
	struct arca_err err = { 0 };
	memset(acct, 'z', sizeof(acct));
	int rc = journal_addr_map(rcpt, jd, acct, sizeof(acct), &d, &err);
	if (rc != want_rc) {
		fprintf(stderr, "  line %d: \"%s\" -> rc %d, want %d\n", line, rcpt, rc, want_rc);
		harness_failed_current = 1;
	}
	CHECK(acct[0] == '\0');
	CHECK(err.code == rc && err.msg[0] != '\0');
	CHECK(strncmp(err.msg, "journal address: ", 17) == 0);
}

#define OKMAP(r, w, d) ok_map((r), (w), (d), __LINE__)
#define BADMAP(r, rc) bad_map((r), (rc), __LINE__)

static void test_in_out(void)
{
	OKMAP("bob=example.test@journal.invalid", "bob@example.test", JOURNAL_IN);
	OKMAP("bob=example.test@out.journal.invalid", "bob@example.test", JOURNAL_OUT);
	/* the journal domain is compared case-insensitively, the account's
	 * domain lower-cased, the local part kept */
	OKMAP("Bob.Smith=Example.TEST@JOURNAL.Invalid", "Bob.Smith@example.test", JOURNAL_IN);
	OKMAP("bob=example.test@OUT.journal.INVALID", "bob@example.test", JOURNAL_OUT);
	/* the last '=' splits: a local part may hold '=' */
	OKMAP("a=b=example.test@journal.invalid", "a=b@example.test", JOURNAL_IN);
	OKMAP("==example.test@journal.invalid", "=@example.test", JOURNAL_IN);
	/* decoded quoted local parts: spaces, '@', quotes */
	OKMAP("first last=example.test@journal.invalid", "first last@example.test", JOURNAL_IN);
	OKMAP("a@b=example.test@journal.invalid", "a@b@example.test", JOURNAL_IN);
	OKMAP("\"q\"=example.test@journal.invalid", "\"q\"@example.test", JOURNAL_IN);
	/* UTF-8: kept, only ASCII letters lower-cased */
	OKMAP("j\xc3\xb6rg=B\xc3\x9c" "CHER.example@journal.invalid",
	      "j\xc3\xb6rg@b\xc3\x9c" "cher.example", JOURNAL_IN);
	OKMAP("x=xn--bcher-kva.example@journal.invalid", "x@xn--bcher-kva.example", JOURNAL_IN);
	/* address literals */
	OKMAP("a=[192.0.2.1]@journal.invalid", "a@[192.0.2.1]", JOURNAL_IN);
	OKMAP("a=[ipv6:2001:DB8::1]@journal.invalid", "a@[IPv6:2001:db8::1]", JOURNAL_IN);
	OKMAP("a=[IPv6:::1]@out.journal.invalid", "a@[IPv6:::1]", JOURNAL_OUT);
	/* single-label and numeric labels that are not the TLD */
	OKMAP("root=localhost@journal.invalid", "root@localhost", JOURNAL_IN);
	OKMAP("a=123.example@journal.invalid", "a@123.example", JOURNAL_IN);
	OKMAP("a=x-y.example@journal.invalid", "a@x-y.example", JOURNAL_IN);
}

static void test_not_journal(void)
{
	BADMAP("bob@example.test", ARCA_ENOENT);
	BADMAP("bob=example.test", ARCA_ENOENT);
	BADMAP("bob=example.test@journal.invalid.", ARCA_ENOENT);
	BADMAP("bob=example.test@x.journal.invalid", ARCA_ENOENT);
	BADMAP("bob=example.test@out.out.journal.invalid", ARCA_ENOENT);
	BADMAP("bob=example.test@outjournal.invalid", ARCA_ENOENT);
	BADMAP("bob=example.test@journal.invalid.example", ARCA_ENOENT);
	BADMAP("bob=example.test@", ARCA_ENOENT);
	BADMAP("bob@journal.invalid", ARCA_ENOENT);
	BADMAP("", ARCA_ENOENT);
	BADMAP("Postmaster", ARCA_ENOENT);
}

static void test_bad_parts(void)
{
	BADMAP("=example.test@journal.invalid", ARCA_EFORMAT);
	BADMAP("bob=@journal.invalid", ARCA_EFORMAT);
	BADMAP("=@journal.invalid", ARCA_EFORMAT);
	BADMAP("bob=exa mple.test@journal.invalid", ARCA_EFORMAT);
	BADMAP("bob=-example.test@journal.invalid", ARCA_EFORMAT);
	BADMAP("bob=example-.test@journal.invalid", ARCA_EFORMAT);
	BADMAP("bob=example..test@journal.invalid", ARCA_EFORMAT);
	BADMAP("bob=.example.test@journal.invalid", ARCA_EFORMAT);
	BADMAP("bob=example.test.@journal.invalid", ARCA_EFORMAT);
	BADMAP("bob=ex_ample.test@journal.invalid", ARCA_EFORMAT);
	BADMAP("bob=ex/ample.test@journal.invalid", ARCA_EFORMAT);
	BADMAP("bob=192.0.2.1@journal.invalid", ARCA_EFORMAT);   /* numeric TLD */
	BADMAP("bob=example.123@journal.invalid", ARCA_EFORMAT);
	BADMAP("bob=[192.0.2]@journal.invalid", ARCA_EFORMAT);
	BADMAP("bob=[tag:x]@journal.invalid", ARCA_EFORMAT);
	BADMAP("bob=[IPv6:zz]@journal.invalid", ARCA_EFORMAT);
	BADMAP("bob=[192.0.2.1@journal.invalid", ARCA_EFORMAT);
	BADMAP("bob=ex\x01" "ample.test@journal.invalid", ARCA_EFORMAT);
	BADMAP("bob=ex\xff" "ample.test@journal.invalid", ARCA_EFORMAT);
	BADMAP("b\x7f" "ob=example.test@journal.invalid", ARCA_EFORMAT);
	BADMAP("b\tob=example.test@journal.invalid", ARCA_EFORMAT);
	BADMAP("b\rob=example.test@journal.invalid", ARCA_EFORMAT);
	BADMAP("b\xc3ob=example.test@journal.invalid", ARCA_EFORMAT);
	BADMAP("b\xed\xa0\x80ob=example.test@journal.invalid", ARCA_EFORMAT);

	/* labels: 63 ok, 64 not; domain 255 ok, 256 not; local 256 ok, 257 not */
	char rcpt[1200], want[1200], l[300], d[300];
	memset(l, 'l', sizeof(l));
	memset(d, 'd', sizeof(d));
	snprintf(rcpt, sizeof(rcpt), "a=%.63s.test@journal.invalid", d);
	snprintf(want, sizeof(want), "a@%.63s.test", d);
	OKMAP(rcpt, want, JOURNAL_IN);
	snprintf(rcpt, sizeof(rcpt), "a=%.64s.test@journal.invalid", d);
	BADMAP(rcpt, ARCA_EFORMAT);
	char dom[300];
	for (size_t i = 0; i < sizeof(dom); i++)
		dom[i] = i % 50 == 49 ? '.' : 'd';
	snprintf(rcpt, sizeof(rcpt), "a=%.255s@journal.invalid", dom);
	snprintf(want, sizeof(want), "a@%.255s", dom);
	OKMAP(rcpt, want, JOURNAL_IN);
	snprintf(rcpt, sizeof(rcpt), "a=%.256s@journal.invalid", dom);
	BADMAP(rcpt, ARCA_EFORMAT);
	snprintf(rcpt, sizeof(rcpt), "%.256s=x.test@journal.invalid", l);
	snprintf(want, sizeof(want), "%.256s@x.test", l);
	OKMAP(rcpt, want, JOURNAL_IN);
	snprintf(rcpt, sizeof(rcpt), "%.257s=x.test@journal.invalid", l);
	BADMAP(rcpt, ARCA_EFORMAT);
	/* longer than any path */
	memset(rcpt, 'r', sizeof(rcpt));
	rcpt[sizeof(rcpt) - 1] = '\0';
	BADMAP(rcpt, ARCA_ELIMIT);
}

static void test_args(void)
{
	char acct[64];
	enum journal_dir d;
	struct arca_err err = { 0 };
	const char *r = "bob=example.test@journal.invalid";
	/* "bob@example.test" is 16 bytes: cap 17 fits, 16 does not */
	CHECK_EQ_INT(journal_addr_map(r, jd, acct, 17, &d, &err), 0);
	CHECK_STR(acct, "bob@example.test");
	CHECK_EQ_INT(journal_addr_map(r, jd, acct, 16, &d, &err), ARCA_ELIMIT);
	CHECK_STR(acct, "");
	arca_err_clear(&err);
	CHECK_EQ_INT(journal_addr_map(r, jd, acct, 0, &d, &err), ARCA_EINVAL);
	CHECK_EQ_INT(journal_addr_map(NULL, jd, acct, sizeof(acct), &d, NULL), ARCA_EINVAL);
	CHECK_EQ_INT(journal_addr_map(r, NULL, acct, sizeof(acct), &d, NULL), ARCA_EINVAL);
	CHECK_EQ_INT(journal_addr_map(r, jd, NULL, sizeof(acct), &d, NULL), ARCA_EINVAL);
	CHECK_EQ_INT(journal_addr_map(r, jd, acct, sizeof(acct), NULL, NULL), ARCA_EINVAL);
	/* the configured journal domain must be a host name */
	CHECK_EQ_INT(journal_addr_map(r, "", acct, sizeof(acct), &d, NULL), ARCA_EINVAL);
	CHECK_EQ_INT(journal_addr_map(r, "journal..invalid", acct, sizeof(acct), &d, NULL), ARCA_EINVAL);
	CHECK_EQ_INT(journal_addr_map(r, "[192.0.2.1]", acct, sizeof(acct), &d, NULL), ARCA_EINVAL);
	CHECK_EQ_INT(journal_addr_map(r, "journal.invalid.", acct, sizeof(acct), &d, NULL), ARCA_EINVAL);
	/* another journal domain, in any case */
	CHECK_EQ_INT(journal_addr_map("x=y.test@Arca.Example.NET", "arca.example.net", acct,
				      sizeof(acct), &d, NULL), 0);
	CHECK_STR(acct, "x@y.test");
	CHECK_EQ_INT(d, JOURNAL_IN);
	CHECK_EQ_INT(journal_addr_map("x=y.test@out.arca.example.net", "ARCA.example.net", acct,
				      sizeof(acct), &d, NULL), 0);
	CHECK_EQ_INT(d, JOURNAL_OUT);
	CHECK_EQ_INT(journal_addr_map(r, "arca.example.net", acct, sizeof(acct), &d, NULL),
		     ARCA_ENOENT);
}

/* From the wire: RCPT TO line -> parser -> map. */
static void test_from_wire(void)
{
	static struct lmtp_cmd cmd;
	char acct[JOURNAL_ACCOUNT_MAX + 1];
	enum journal_dir d;
	const char *line = "RCPT TO:<\"first \\\"last\\\"=Example.TEST\"@Journal.Invalid> NOTIFY=NEVER";
	REQUIRE(lmtp_parse_command(line, strlen(line), &cmd, NULL) == 0);
	REQUIRE(journal_addr_map(cmd.path.addr, jd, acct, sizeof(acct), &d, NULL) == 0);
	CHECK_STR(acct, "first \"last\"@example.test");
	CHECK_EQ_INT(d, JOURNAL_IN);
	line = "RCPT TO:<@relay.test:alice=example.test@out.journal.invalid>";
	REQUIRE(lmtp_parse_command(line, strlen(line), &cmd, NULL) == 0);
	REQUIRE(journal_addr_map(cmd.path.addr, jd, acct, sizeof(acct), &d, NULL) == 0);
	CHECK_STR(acct, "alice@example.test");
	CHECK_EQ_INT(d, JOURNAL_OUT);
	/* the longest parsed address fits the account buffer */
	CHECK(JOURNAL_ACCOUNT_MAX >= LMTP_ADDR_MAX);
}

int main(void)
{
	RUN(test_in_out);
	RUN(test_not_journal);
	RUN(test_bad_parts);
	RUN(test_args);
	RUN(test_from_wire);
	HARNESS_EXIT();
}
