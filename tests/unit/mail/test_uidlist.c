/* dovecot-uidlist parse/format. */
#include <stdint.h>
#include <string.h>

#include "maildir.h"
#include "harness.h"

static int parse_str(const char *s, struct uidlist *ul)
{
	struct arca_err err = { 0 };
	int rc = uidlist_parse((const uint8_t *)s, strlen(s), ul, &err);
	if (rc == 0)
		CHECK(err.msg[0] == '\0');
	else
		CHECK(err.msg[0] != '\0');
	return rc;
}

/* As written by Dovecot 2.3.19.1 (doveadm save into INBOX twice). */
static const char dovecot_v3[] =
	"3 V1795846960 N3 G1d59b0362e730a6bac25000083ecc375\n"
	"1 :1795846959.M98297P9666.vm,S=28,W=32\n"
	"2 :1795846959.M187950P9676.vm,S=28,W=32\n";

static void test_parse_dovecot_v3(void)
{
	struct uidlist ul;
	REQUIRE(parse_str(dovecot_v3, &ul) == 0);
	CHECK_EQ_INT(ul.version, 3);
	CHECK_EQ_INT(ul.uidvalidity, 1795846960u);
	CHECK_EQ_INT(ul.nextuid, 3);
	CHECK_STR(ul.guid, "1d59b0362e730a6bac25000083ecc375");
	CHECK_STR(ul.header_extra, "");
	REQUIRE(ul.count == 2);
	CHECK_EQ_INT(ul.recs[1].uid, 2);
	CHECK_STR(ul.recs[1].base, "1795846959.M187950P9676.vm,S=28,W=32");
	CHECK_STR(ul.recs[1].ext, "");
	const struct uidlist_rec *r = uidlist_find_base(&ul, "1795846959.M98297P9666.vm,S=28,W=32");
	CHECK(r != NULL && r->uid == 1);
	r = uidlist_find_base(&ul, "1795846959.M187950P9676.vm,S=28,W=32:2,FRSabc");
	CHECK(r != NULL && r->uid == 2);
	CHECK(uidlist_find_base(&ul, "1795846959.M187950P9676.vm") == NULL);
	CHECK(uidlist_find_base(&ul, "zzz") == NULL);
	CHECK_EQ_INT(uidlist_next_uid(&ul), 3);
	struct abuf b = ABUF_INIT;
	REQUIRE(uidlist_format(&ul, &b) == 0);
	CHECK(b.len == strlen(dovecot_v3) && memcmp(b.data, dovecot_v3, b.len) == 0);
	abuf_release(&b);
	uidlist_release(&ul);
	uidlist_release(&ul); /* released twice is fine */
}

static void test_ext_fields_and_extra_header(void)
{
	static const char in[] =
		"3 V42 X9 N7 Gabcdef0123456789ABCDEF0123456789 Zfoo\n"
		"3 W1234 S1200 :100.M1P1.h\n"
		"5 :101.M1P1.h:2,S\n";
	struct uidlist ul;
	REQUIRE(parse_str(in, &ul) == 0);
	CHECK_STR(ul.header_extra, "X9 Zfoo");
	CHECK_STR(ul.guid, "abcdef0123456789abcdef0123456789");
	REQUIRE(ul.count == 2);
	CHECK_STR(ul.recs[0].ext, "W1234 S1200");
	CHECK_STR(ul.recs[0].base, "100.M1P1.h");
	CHECK_STR(ul.recs[1].base, "101.M1P1.h"); /* the base without the info */
	CHECK_STR(ul.recs[1].info, ":2,S");        /* which is kept apart */
	CHECK_STR(ul.recs[0].info, "");
	struct abuf b = ABUF_INIT;
	REQUIRE(uidlist_format(&ul, &b) == 0);
	REQUIRE(abuf_cstr(&b) == 0);
	CHECK_STR((const char *)b.data,
		  "3 V42 N7 Gabcdef0123456789abcdef0123456789 X9 Zfoo\n"
		  "3 W1234 S1200 :100.M1P1.h\n"
		  "5 :101.M1P1.h:2,S\n");   /* named as it was (Dovecot's APPEND with flags) */
	abuf_release(&b);
	uidlist_release(&ul);
}

/* Records built for a restore: by base, or by the whole name. */
static void test_add_info(void)
{
	struct uidlist ul;
	uidlist_init(&ul);
	ul.uidvalidity = 7;
	CHECK_EQ_INT(uidlist_add_info(&ul, 1, "1.M1.h", "", ":2,RS"), 0);
	CHECK_EQ_INT(uidlist_add_info(&ul, 2, "2.M1.h", NULL, NULL), 0);
	CHECK_EQ_INT(uidlist_add_info(&ul, 3, "3.M1.h", "", ""), 0);
	CHECK(uidlist_add_info(&ul, 4, "4.M1.h", "", "2,S") != 0);      /* not from a ':' */
	CHECK(uidlist_add_info(&ul, 4, "4.M1.h", "", ":2,S/x") != 0);   /* not a file name */
	CHECK(uidlist_add_info(&ul, 4, "4.M1.h", "", ":2,\nS") != 0);
	CHECK(uidlist_add_info(&ul, 4, "4.M1.h:2,S", "", "") != 0);     /* base with info */
	struct abuf b = ABUF_INIT;
	REQUIRE(uidlist_format(&ul, &b) == 0);
	REQUIRE(abuf_cstr(&b) == 0);
	CHECK_STR((const char *)b.data, "3 V7 N4\n1 :1.M1.h:2,RS\n2 :2.M1.h\n3 :3.M1.h\n");
	CHECK(uidlist_find_base(&ul, "1.M1.h:2,S") == &ul.recs[0]);
	abuf_release(&b);
	uidlist_release(&ul);
	/* a record's rest that can't be part of a file name is dropped, not fatal */
	static const char odd[] = "3 V1 N3\n1 :a.M1.h:2,S/x\n2 :b.M1.h:\n";
	REQUIRE(parse_str(odd, &ul) == 0);
	CHECK_STR(ul.recs[0].info, "");
	CHECK_STR(ul.recs[1].info, ":");
	uidlist_release(&ul);
}

static void test_v1_and_stale_next(void)
{
	struct uidlist ul;
	REQUIRE(parse_str("1 1168284932 3\n1 1168284932.P1.h:2,S\n9 1168284933.P2.h\n", &ul) == 0);
	CHECK_EQ_INT(ul.version, 1);
	CHECK_EQ_INT(ul.uidvalidity, 1168284932u);
	CHECK_EQ_INT(ul.nextuid, 3);
	CHECK_EQ_INT(uidlist_next_uid(&ul), 10); /* header was stale */
	CHECK_STR(ul.recs[0].base, "1168284932.P1.h");
	struct abuf b = ABUF_INIT;
	REQUIRE(uidlist_format(&ul, &b) == 0);
	REQUIRE(abuf_cstr(&b) == 0);
	CHECK_STR((const char *)b.data,
		  "3 V1168284932 N10\n1 :1168284932.P1.h:2,S\n9 :1168284933.P2.h\n");
	abuf_release(&b);
	uidlist_release(&ul);
}

static void test_build_and_find_many(void)
{
	struct uidlist ul;
	uidlist_init(&ul);
	CHECK_STR(ul.header_extra, "");
	ul.uidvalidity = 7;
	char name[64];
	for (uint32_t i = 1; i <= 20000; i++) {
		snprintf(name, sizeof(name), "%u.M%uP1.host,S=%u", 9999999u - i, i, i);
		REQUIRE(uidlist_add(&ul, i * 2, name, i % 3 ? "" : "W1") == 0);
	}
	CHECK_EQ_INT(uidlist_add(&ul, 40000, "x", ""), ARCA_EINVAL);   /* not ascending */
	CHECK_EQ_INT(uidlist_add(&ul, 40001, "a:b", ""), ARCA_EINVAL);
	CHECK_EQ_INT(uidlist_add(&ul, 40001, "a", "x :y"), ARCA_EINVAL);
	CHECK_EQ_INT(uidlist_add(&ul, 40001, "a", "x\ny"), ARCA_EINVAL);
	for (uint32_t i = 1; i <= 20000; i++) {
		snprintf(name, sizeof(name), "%u.M%uP1.host,S=%u:2,S", 9999999u - i, i, i);
		const struct uidlist_rec *r = uidlist_find_base(&ul, name);
		REQUIRE(r != NULL && r->uid == i * 2);
	}
	/* find after a later add sees the new record */
	REQUIRE(uidlist_add(&ul, 50000, "late", "") == 0);
	CHECK(uidlist_find_base(&ul, "late") != NULL);
	struct abuf b = ABUF_INIT;
	REQUIRE(uidlist_format(&ul, &b) == 0);
	struct uidlist back;
	REQUIRE(uidlist_parse(b.data, b.len, &back, NULL) == 0);
	CHECK_EQ_INT(back.count, ul.count);
	CHECK_EQ_INT(back.nextuid, 50001);
	CHECK_STR(back.recs[2].ext, "W1");
	uidlist_release(&back);
	/* a repeated base is refused on output */
	REQUIRE(uidlist_add(&ul, 50001, "late", "") == 0);
	CHECK_EQ_INT(uidlist_format(&ul, &b), ARCA_EINVAL);
	abuf_release(&b);
	uidlist_release(&ul);
}

static void test_hostile(void)
{
	static const char *const bad[] = {
		"",
		"3 V1 N2\n1 :a\n2 :b",                 /* truncated: no final newline */
		"3 V1 N2\n2 :a\n1 :b\n",               /* descending */
		"3 V1 N2\n1 :a\n1 :b\n",               /* duplicate uid */
		"3 V1 N2\n1 :a\n2 :a\n",               /* duplicate base */
		"3 V1 N2\n0 :a\n",                     /* uid 0 */
		"3 V1 N2\n4294967296 :a\n",            /* uid > 32 bits */
		"3 V1 N2\n99999999999999999999 :a\n",
		"3 V1 N2\n-1 :a\n",
		"3 V1 N2\n1 a\n",                      /* v3 without ':' */
		"3 V1 N2\n1 :\n",                      /* empty base */
		"3 V1 N2\n1 :a/b\n",                   /* slash */
		"3 V1 N2\n1 :.a\n",
		"3 V1 N2\n1\n",
		"3 V1 N2\n1 :a\r\n",
		"3 N2\n",                              /* no V */
		"3 V0 N2\n",                           /* V 0 */
		"3 V1\n",                              /* no N */
		"3 V1 V2 N2\n",
		"3 V1 N2 Gxyz\n",
		"3 V1 N2 G1d59b0362e730a6bac25000083ecc37\n",
		"3 V1  N2\n",
		"3 V4294967296 N2\n",
		"1 1\n",
		"1 1 2 3\n",
		"x\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct uidlist ul;
		int rc = parse_str(bad[i], &ul);
		if (rc != ARCA_EFORMAT)
			fprintf(stderr, "  case %zu: rc %d\n", i, rc);
		CHECK_EQ_INT(rc, ARCA_EFORMAT);
		CHECK(ul.count == 0 && ul.recs == NULL);
		uidlist_release(&ul);
	}
	struct uidlist ul;
	CHECK_EQ_INT(parse_str("2 V1 N2\n", &ul), ARCA_EVERSION);
	/* NUL in the middle */
	static const char nul[] = "3 V1 N2\n1 :a\0b\n";
	CHECK_EQ_INT(uidlist_parse((const uint8_t *)nul, sizeof(nul) - 1, &ul, NULL), ARCA_EFORMAT);
	/* overlong line */
	size_t n = MAILDIR_LINE_MAX + 100;
	char *big = malloc(n + 1);
	REQUIRE(big != NULL);
	memset(big, 'a', n);
	memcpy(big, "3 V1 N2\n1 :", 11);
	big[n - 1] = '\n';
	big[n] = '\0';
	CHECK_EQ_INT(parse_str(big, &ul), ARCA_EFORMAT);
	free(big);
	/* largest uid is fine; next uid saturates */
	REQUIRE(parse_str("3 V4294967295 N4294967295\n4294967295 :a\n", &ul) == 0);
	CHECK_EQ_INT(uidlist_next_uid(&ul), UINT32_MAX);
	uidlist_release(&ul);
}

static void test_zeroed_struct(void)
{
	struct uidlist ul;
	memset(&ul, 0, sizeof(ul));
	ul.uidvalidity = 9;
	REQUIRE(uidlist_add(&ul, 3, "m1", NULL) == 0);
	struct abuf b = ABUF_INIT;
	REQUIRE(uidlist_format(&ul, &b) == 0);
	REQUIRE(abuf_cstr(&b) == 0);
	CHECK_STR((const char *)b.data, "3 V9 N4\n3 :m1\n");
	abuf_release(&b);
	uidlist_release(&ul);
	CHECK_STR(ul.header_extra, "");
}

int main(void)
{
	RUN(test_zeroed_struct);
	RUN(test_parse_dovecot_v3);
	RUN(test_ext_fields_and_extra_header);
	RUN(test_add_info);
	RUN(test_v1_and_stale_next);
	RUN(test_build_and_find_many);
	RUN(test_hostile);
	HARNESS_EXIT();
}
