/* dovecot-keywords and subscriptions. */
#include <stdint.h>
#include <string.h>

#include "maildir.h"
#include "harness.h"

static int kw_parse(const char *s, struct maildir_keywords *kw)
{
	return keywords_parse((const uint8_t *)s, strlen(s), kw, NULL);
}

static void test_keywords_dovecot(void)
{
	/* As written by Dovecot 2.3.19.1. */
	static const char in[] = "0 $Forwarded\n1 custom1\n2 zeta\n";
	struct maildir_keywords kw;
	REQUIRE(kw_parse(in, &kw) == 0);
	CHECK_STR(kw.names[0], "$Forwarded");
	CHECK_STR(kw.names[2], "zeta");
	CHECK(kw.names[3] == NULL);
	CHECK_EQ_INT(keywords_index(&kw, "CUSTOM1", false), 1);
	CHECK_EQ_INT(keywords_index(&kw, "nope", false), -1);
	CHECK_EQ_INT(keywords_index(&kw, "nope", true), 3);
	CHECK_EQ_INT(keywords_index(&kw, "bad name", true), -1);
	CHECK_EQ_INT(keywords_index(&kw, "\\Seen", true), -1);
	struct abuf b = ABUF_INIT;
	REQUIRE(keywords_format(&kw, &b) == 0);
	CHECK_STR((const char *)b.data, "0 $Forwarded\n1 custom1\n2 zeta\n3 nope\n");
	keywords_release(&kw);
	/* sparse, out of order (Dovecot renumbers freely) */
	REQUIRE(kw_parse("25 last\n3 $Junk\n", &kw) == 0);
	CHECK_STR(kw.names[25], "last");
	REQUIRE(keywords_format(&kw, &b) == 0);
	CHECK_STR((const char *)b.data, "3 $Junk\n25 last\n");
	/* fill to 26 */
	char nm[16];
	for (int i = 0; i < 30; i++) {
		snprintf(nm, sizeof(nm), "k%d", i);
		keywords_index(&kw, nm, true);
	}
	for (int i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
		CHECK(kw.names[i] != NULL);
	CHECK_EQ_INT(keywords_index(&kw, "another", true), -1);
	keywords_release(&kw);
	REQUIRE(kw_parse("", &kw) == 0);
	keywords_release(&kw);
	abuf_release(&b);
}

static void test_keywords_hostile(void)
{
	static const char *const bad[] = {
		"0 a\n0 b\n", "0 a\n1 A\n", "26 a\n", "-1 a\n", "0  a\n", "0 a b\n", "0\n", "0 \n",
		"0 a", "x a\n", "0 (a\n", "0 a\r\n", "4294967296 a\n", "0 \xc3\xbc\n", "00000000001 a\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct maildir_keywords kw;
		struct arca_err err = { 0 };
		int rc = keywords_parse((const uint8_t *)bad[i], strlen(bad[i]), &kw, &err);
		if (rc != ARCA_EFORMAT)
			fprintf(stderr, "  case %zu accepted\n", i);
		CHECK_EQ_INT(rc, ARCA_EFORMAT);
		CHECK(err.msg[0] != '\0');
		for (int k = 0; k < MAILDIR_KEYWORDS_MAX; k++)
			CHECK(kw.names[k] == NULL);
	}
	static const char nul[] = "0 a\0b\n";
	struct maildir_keywords kw;
	CHECK_EQ_INT(keywords_parse((const uint8_t *)nul, sizeof(nul) - 1, &kw, NULL), ARCA_EFORMAT);
}

/* Byte for byte what Dovecot 2.3.19.1 wrote after
 * `doveadm mailbox subscribe Entwürfe Archive/2019/Q1 A&B INBOX 日本語/子 a.b`
 * (LAYOUT=fs). */
static const char dovecot_subs[] =
	"V\t2\n\nEntw&APw-rfe\nArchive\t2019\tQ1\nA&-B\nINBOX\n&ZeVnLIqe-\t&W1A-\na.b\n";

static void test_subscriptions_dovecot(void)
{
	struct subscriptions s;
	struct arca_err err = { 0 };
	REQUIRE(subscriptions_parse((const uint8_t *)dovecot_subs, strlen(dovecot_subs), &s,
				    &err) == 0);
	REQUIRE(s.count == 6);
	CHECK_STR(s.names[0], "Entwürfe");
	CHECK_STR(s.names[1], "Archive/2019/Q1");
	CHECK_STR(s.names[2], "A&B");
	CHECK_STR(s.names[3], "INBOX");
	CHECK_STR(s.names[4], "日本語/子");
	CHECK_STR(s.names[5], "a.b");
	struct abuf b = ABUF_INIT;
	REQUIRE(subscriptions_format(&s, &b) == 0);
	CHECK_STR((const char *)b.data, dovecot_subs);
	CHECK_EQ_INT(subscriptions_add(&s, "INBOX"), 0);
	CHECK_EQ_INT(s.count, 6);
	CHECK_EQ_INT(subscriptions_add(&s, "a//b"), ARCA_EINVAL);
	CHECK_EQ_INT(subscriptions_add(&s, "\xff"), ARCA_EINVAL);
	subscriptions_release(&s);
	subscriptions_init(&s);
	REQUIRE(subscriptions_format(&s, &b) == 0);
	CHECK_STR((const char *)b.data, "V\t2\n\n");
	abuf_release(&b);
}

static void test_subscriptions_old_and_escapes(void)
{
	struct subscriptions s;
	static const char old[] = "INBOX\nArchive.2019\n\nEntw&APw-rfe\nINBOX\n";
	REQUIRE(subscriptions_parse_sep((const uint8_t *)old, strlen(old), '.', &s, NULL) == 0);
	REQUIRE(s.count == 3);
	CHECK_STR(s.names[1], "Archive/2019");
	CHECK_STR(s.names[2], "Entwürfe");
	subscriptions_release(&s);
	REQUIRE(subscriptions_parse((const uint8_t *)old, strlen(old), &s, NULL) == 0);
	CHECK_STR(s.names[1], "Archive.2019");
	subscriptions_release(&s);
	/* tab escapes decode, but a control character is not valid mUTF-7 */
	static const char esc[] = "V\t2\n\na\001tb\n";
	CHECK_EQ_INT(subscriptions_parse((const uint8_t *)esc, strlen(esc), &s, NULL), ARCA_EFORMAT);
}

static void test_subscriptions_hostile(void)
{
	static const char *const bad[] = {
		"V\t2\n\nfoo",          /* truncated */
		"V\t2\n\na\t\tb\n",     /* empty level */
		"V\t2\n\n\tb\n",
		"V\t2\n\n&Jjo\n",       /* bad mUTF-7 */
		"V\t2\n\na\001\n",      /* bad escape */
		"V\t2\n\na\001x\n",
		"V\t2\n\n&AC8-\n",      /* decodes to "/" */
		"INBOX\r\n",
		"a\xff\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct subscriptions s;
		struct arca_err err = { 0 };
		int rc = subscriptions_parse((const uint8_t *)bad[i], strlen(bad[i]), &s, &err);
		if (rc != ARCA_EFORMAT)
			fprintf(stderr, "  case %zu rc %d\n", i, rc);
		CHECK_EQ_INT(rc, ARCA_EFORMAT);
		CHECK(s.count == 0 && s.names == NULL);
	}
	struct subscriptions s;
	CHECK_EQ_INT(subscriptions_parse((const uint8_t *)"V\t3\n\n", 5, &s, NULL), ARCA_EVERSION);
	static const char nul[] = "V\t2\n\na\0b\n";
	CHECK_EQ_INT(subscriptions_parse((const uint8_t *)nul, sizeof(nul) - 1, &s, NULL),
		     ARCA_EFORMAT);
}

int main(void)
{
	RUN(test_keywords_dovecot);
	RUN(test_keywords_hostile);
	RUN(test_subscriptions_dovecot);
	RUN(test_subscriptions_old_and_escapes);
	RUN(test_subscriptions_hostile);
	HARNESS_EXIT();
}
