/* Maildir file names and modified UTF-7. */
#include <stdint.h>
#include <string.h>

#include "maildir.h"
#include "harness.h"

static void test_parse_dovecot_names(void)
{
	struct maildir_name n;
	struct arca_err err = { 0 };
	/* Written by Dovecot 2.3.19.1 (doveadm save + flags add). */
	REQUIRE(maildir_name_parse("1795846959.M187950P9676.vm,S=28,W=32:2,FRSabc", &n, &err) == 0);
	CHECK_STR(n.base, "1795846959.M187950P9676.vm,S=28,W=32");
	CHECK(n.has_info);
	CHECK_EQ_INT(n.flags, MAILDIR_FLAG_FLAGGED | MAILDIR_FLAG_REPLIED | MAILDIR_FLAG_SEEN);
	CHECK_EQ_INT(n.keywords, 7);
	uint64_t size = 0;
	CHECK(maildir_name_size(n.base, &size));
	CHECK_EQ_INT(size, 28);
	maildir_name_release(&n);
	CHECK(n.base == NULL);

	REQUIRE(maildir_name_parse("1795846959.M277092P9684.vm,S=30,W=34", &n, &err) == 0);
	CHECK(!n.has_info);
	CHECK_EQ_INT(n.flags, 0);
	maildir_name_release(&n);

	REQUIRE(maildir_name_parse("x:2,", &n, &err) == 0);
	CHECK(n.has_info);
	CHECK_EQ_INT(n.flags | n.keywords, 0);
	maildir_name_release(&n);

	/* unusual order and repeats are read; Z and z bits kept */
	REQUIRE(maildir_name_parse("x:2,zSSAa", &n, &err) == 0);
	CHECK_EQ_INT(n.flags, MAILDIR_FLAG('S') | MAILDIR_FLAG('A'));
	CHECK_EQ_INT(n.keywords, (1u << 25) | 1u);
	maildir_name_release(&n);
}

static void test_parse_rejects(void)
{
	static const char *const bad[] = {
		"", ":2,S", ".hidden", "a/b:2,S", "x:1,S", "x:2", "x:", "x:2,S,W=1",
		"x:2,S1", "x:2,S:2,S", "x:2, S", "x:2,S\xff",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct maildir_name n;
		struct arca_err err = { 0 };
		int rc = maildir_name_parse(bad[i], &n, &err);
		if (rc != ARCA_EFORMAT)
			fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
		CHECK_EQ_INT(rc, ARCA_EFORMAT);
		CHECK(err.msg[0] != '\0');
		CHECK(n.base == NULL);
	}
	char longname[400];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	struct maildir_name n;
	CHECK_EQ_INT(maildir_name_parse(longname, &n, NULL), ARCA_EFORMAT);
}

static void test_format(void)
{
	struct abuf b = ABUF_INIT;
	REQUIRE(maildir_name_format("123.M1P2.host,S=5", MAILDIR_FLAG_SEEN | MAILDIR_FLAG_DRAFT |
				    MAILDIR_FLAG_FLAGGED, (1u << 2) | 1u, &b) == 0);
	CHECK_STR((const char *)b.data, "123.M1P2.host,S=5:2,DFSac");
	REQUIRE(maildir_name_format("b", 0, 0, &b) == 0);
	CHECK_STR((const char *)b.data, "b:2,");
	CHECK_EQ_INT(maildir_name_format("a:b", 0, 0, &b), ARCA_EINVAL);
	CHECK_EQ_INT(maildir_name_format("a/b", 0, 0, &b), ARCA_EINVAL);
	CHECK_EQ_INT(maildir_name_format("", 0, 0, &b), ARCA_EINVAL);
	CHECK_EQ_INT(maildir_name_format("a", 1u << 26, 0, &b), ARCA_EINVAL);
	abuf_release(&b);
}

static void test_size_field(void)
{
	uint64_t s = 0;
	CHECK(maildir_name_size("1.M2.h,S=1200,W=1234", &s) && s == 1200);
	CHECK(maildir_name_size("1.M2.h,W=1234,S=7", &s) && s == 7);
	CHECK(maildir_name_size("1.M2.h,S=18446744073709551615", &s) && s == UINT64_MAX);
	CHECK(!maildir_name_size("1.M2.h,S=18446744073709551616", &s));
	CHECK(!maildir_name_size("1.M2.h,S=", &s));
	CHECK(!maildir_name_size("1.M2.h,S=12x", &s));
	CHECK(!maildir_name_size("1.M2.h", &s));
	CHECK(maildir_name_size("1.M2.h,S=x,S=9", &s) && s == 9);
}

static void check_mutf7(const char *utf8, const char *mutf7)
{
	struct abuf b = ABUF_INIT;
	CHECK(utf8_to_mutf7(utf8, &b) == 0);
	CHECK_STR((const char *)b.data, mutf7);
	CHECK(mutf7_to_utf8(mutf7, &b) == 0);
	CHECK_STR((const char *)b.data, utf8);
	abuf_release(&b);
}

static void test_mutf7_vectors(void)
{
	/* Directory names Dovecot 2.3.19.1 created for these folders. */
	check_mutf7("Entwürfe", "Entw&APw-rfe");
	check_mutf7("日本語", "&ZeVnLIqe-");
	check_mutf7("子", "&W1A-");
	check_mutf7("A&B", "A&-B");
	/* RFC 3501 5.1.3 example */
	check_mutf7("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
	check_mutf7("", "");
	check_mutf7("&&", "&-&-");
	/* astral plane: surrogate pair */
	check_mutf7("\xf0\x9f\x98\x80", "&2D3eAA-");
	/* control characters are encoded */
	check_mutf7("a\tb", "a&AAk-b");
}

static void test_mutf7_rejects(void)
{
	static const char *const bad[] = {
		"&", "&Jjo", "&Jjo!-", "&AGE-",      /* 'a' encoded */
		"&2D0-",                             /* lone high surrogate */
		"&3gA-",                             /* lone low surrogate */
		"&AAA-",                             /* U+0000 */
		"&U,BTF2-",                          /* non-zero padding bits */
		"&Jjo-&Jjo-",                        /* two runs back to back */
		"\xc3\xbc", "a\tb", "&AOQ",          /* raw 8-bit, control, open run */
		"&AOQA-",                            /* 18+ bits: 6 leftover */
	};
	struct abuf b = ABUF_INIT;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = mutf7_to_utf8(bad[i], &b);
		if (rc != ARCA_EFORMAT)
			fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
		CHECK_EQ_INT(rc, ARCA_EFORMAT);
	}
	static const char *const badutf8[] = {
		"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc3", "\xff", "a\x80",
	};
	for (size_t i = 0; i < sizeof(badutf8) / sizeof(badutf8[0]); i++)
		CHECK_EQ_INT(utf8_to_mutf7(badutf8[i], &b), ARCA_EFORMAT);
	abuf_release(&b);
}

int main(void)
{
	RUN(test_parse_dovecot_names);
	RUN(test_parse_rejects);
	RUN(test_format);
	RUN(test_size_field);
	RUN(test_mutf7_vectors);
	RUN(test_mutf7_rejects);
	HARNESS_EXIT();
}
