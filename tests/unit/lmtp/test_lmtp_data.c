/* DATA and BDAT decoding. */
#include <stdint.h>
#include <string.h>

#include "lmtp.h"
#include "harness.h"

#define NOLIMIT UINT64_MAX

struct result {
	int rc;
	size_t consumed;
	struct lmtp_data d;
	struct abuf out;
};

/* Feed in[0..n) in pieces of `step` bytes (0: all at once); stops at done. */
static void run(const char *in, size_t n, size_t step, uint64_t max,
		struct result *r)
{
	lmtp_data_init(&r->d, max);
	abuf_init(&r->out);
	r->consumed = 0;
	r->rc = LMTP_DATA_MORE;
	while (r->consumed < n) {
		size_t len = n - r->consumed;
		if (step != 0 && len > step)
			len = step;
		size_t used = 99999;
		r->rc = lmtp_data_feed(&r->d, (const uint8_t *)in + r->consumed, len,
				       &used, &r->out);
		CHECK(used <= len);
		r->consumed += used;
		if (r->rc != LMTP_DATA_MORE)
			break;
		CHECK(used == len);
	}
}

static bool out_is(const struct result *r, const char *want, size_t n)
{
	return r->out.len == n && (n == 0 || memcmp(r->out.data, want, n) == 0);
}

#define OUT_IS(r, s) CHECK(out_is((r), (s), sizeof(s) - 1))

static void test_simple(void)
{
	static const char in[] =
		"Subject: hi\r\n"
		"\r\n"
		"body\r\n"
		".\r\n";
	struct result r;
	run(in, sizeof(in) - 1, 0, NOLIMIT, &r);
	CHECK_EQ_INT(r.rc, LMTP_DATA_DONE);
	CHECK_EQ_INT(r.consumed, sizeof(in) - 1);
	OUT_IS(&r, "Subject: hi\r\n\r\nbody\r\n");
	CHECK_EQ_INT(r.d.size, 21);
	CHECK_EQ_INT(r.d.lines, 3);
	CHECK(r.d.done && !r.d.too_big && !r.d.long_line && !r.d.nomem);
	CHECK_EQ_INT(r.d.bare_lf + r.d.bare_cr + r.d.nul, 0);
	CHECK(lmtp_data_reply(&r.d) == NULL);
	/* a feed after the end is refused */
	size_t used = 5;
	CHECK_EQ_INT(lmtp_data_feed(&r.d, (const uint8_t *)"x", 1, &used, &r.out), ARCA_ESTATE);
	CHECK_EQ_INT(used, 0);
	abuf_release(&r.out);
}

static void test_empty_and_pipelining(void)
{
	struct result r;
	run(".\r\n", 3, 0, 0, &r);
	CHECK_EQ_INT(r.rc, LMTP_DATA_DONE);
	CHECK_EQ_INT(r.consumed, 3);
	CHECK_EQ_INT(r.d.size, 0);
	CHECK_EQ_INT(r.d.lines, 0);
	CHECK(!r.d.too_big);       /* max 0 fits the empty message */
	CHECK(lmtp_data_reply(&r.d) == NULL);
	abuf_release(&r.out);

	/* what follows the end belongs to the next command */
	static const char in[] = "a\r\n.\r\nQUIT\r\n";
	for (size_t step = 0; step < 8; step++) {
		run(in, sizeof(in) - 1, step, NOLIMIT, &r);
		CHECK_EQ_INT(r.rc, LMTP_DATA_DONE);
		CHECK_EQ_INT(r.consumed, 6);
		OUT_IS(&r, "a\r\n");
		abuf_release(&r.out);
	}
	/* no end yet */
	run("a\r\n.\r", 5, 0, NOLIMIT, &r);
	CHECK_EQ_INT(r.rc, LMTP_DATA_MORE);
	CHECK_EQ_INT(r.consumed, 5);
	OUT_IS(&r, "a\r\n");   /* ".\r" held back */
	size_t used;
	CHECK_EQ_INT(lmtp_data_feed(&r.d, (const uint8_t *)"\nNOOP", 5, &used, &r.out),
		     LMTP_DATA_DONE);
	CHECK_EQ_INT(used, 1);
	OUT_IS(&r, "a\r\n");
	abuf_release(&r.out);
	/* empty feeds are fine */
	lmtp_data_init(&r.d, 10);
	CHECK_EQ_INT(lmtp_data_feed(&r.d, NULL, 0, &used, NULL), LMTP_DATA_MORE);
	CHECK_EQ_INT(used, 0);
	CHECK_EQ_INT(lmtp_data_feed(NULL, NULL, 0, &used, NULL), ARCA_EINVAL);
	CHECK_EQ_INT(lmtp_data_feed(&r.d, NULL, 1, &used, NULL), ARCA_EINVAL);
	CHECK_EQ_INT(lmtp_data_feed(&r.d, (const uint8_t *)"x", 1, NULL, NULL), ARCA_EINVAL);
}

static void test_dot_stuffing(void)
{
	static const char in[] =
		"..hello\r\n"
		"...\r\n"
		"..\r\n"
		"a.\r\n"
		". \r\n"
		".x.\r\n"
		".\r\n";
	struct result r;
	run(in, sizeof(in) - 1, 0, NOLIMIT, &r);
	CHECK_EQ_INT(r.rc, LMTP_DATA_DONE);
	OUT_IS(&r, ".hello\r\n..\r\n.\r\na.\r\n \r\nx.\r\n");
	CHECK_EQ_INT(r.d.lines, 6);
	abuf_release(&r.out);
}

/* The end marker and every other sequence, split at every byte. */
static void test_every_split(void)
{
	static const char in[] =
		"From: a\r\n..x\r\n.\ry\r\nz\n.\n\r\r\n\0.\r\n.\r\n..\r\nrest";
	size_t n = sizeof(in) - 1;
	struct result whole, part;
	run(in, n, 0, NOLIMIT, &whole);
	REQUIRE(whole.rc == LMTP_DATA_DONE);
	for (size_t step = 1; step <= n; step++) {
		run(in, n, step, NOLIMIT, &part);
		CHECK_EQ_INT(part.rc, LMTP_DATA_DONE);
		CHECK_EQ_INT(part.consumed, whole.consumed);
		CHECK(part.out.len == whole.out.len &&
		      memcmp(part.out.data, whole.out.data, whole.out.len) == 0);
		CHECK(part.d.size == whole.d.size && part.d.bare_lf == whole.d.bare_lf &&
		      part.d.bare_cr == whole.d.bare_cr && part.d.nul == whole.d.nul &&
		      part.d.lines == whole.d.lines);
		abuf_release(&part.out);
	}
	/* two pieces, split anywhere */
	for (size_t cut = 0; cut <= n; cut++) {
		struct lmtp_data d;
		struct abuf out = ABUF_INIT;
		size_t u1 = 0, u2 = 0;
		lmtp_data_init(&d, NOLIMIT);
		int rc = lmtp_data_feed(&d, (const uint8_t *)in, cut, &u1, &out);
		if (rc == LMTP_DATA_MORE)
			rc = lmtp_data_feed(&d, (const uint8_t *)in + cut, n - cut, &u2, &out);
		CHECK_EQ_INT(rc, LMTP_DATA_DONE);
		CHECK_EQ_INT(u1 + u2, whole.consumed);
		CHECK(out.len == whole.out.len && memcmp(out.data, whole.out.data, out.len) == 0);
		abuf_release(&out);
	}
	static const char want[] = "From: a\r\n.x\r\n\ry\r\nz\n.\n\r\r\n\0.\r\n";
	CHECK(out_is(&whole, want, sizeof(want) - 1));
	CHECK_EQ_INT(whole.consumed, n - strlen("..\r\nrest"));
	CHECK_EQ_INT(whole.d.bare_lf, 2);
	CHECK_EQ_INT(whole.d.bare_cr, 2);
	CHECK_EQ_INT(whole.d.nul, 1);
	CHECK_EQ_INT(whole.d.lines, 5);
	abuf_release(&whole.out);
}

/* Only CRLF "." CRLF ends the message (no SMTP smuggling through bare LF). */
static void test_bare_endings(void)
{
	static const char *const not_end[] = {
		"a\n.\nb", "a\n.\r\nb", "a\r\n.\nb", "a\r.\r\nb", "a\r\n.\r.\r\nb",
		"a\r\n .\r\nb", "a\r\n\0.\r\nb",
	};
	for (size_t i = 0; i < sizeof(not_end) / sizeof(not_end[0]); i++) {
		struct result r;
		size_t n = strlen(not_end[i]);
		if (i == 6)
			n = 8;   /* with its NUL */
		run(not_end[i], n, 1, NOLIMIT, &r);
		CHECK_EQ_INT(r.rc, LMTP_DATA_MORE);
		CHECK_EQ_INT(r.consumed, n);
		CHECK(!r.d.done);
		abuf_release(&r.out);
	}
	struct result r;
	static const char in[] = "a\n.\r\n.\r\n";
	run(in, sizeof(in) - 1, 0, NOLIMIT, &r);
	CHECK_EQ_INT(r.rc, LMTP_DATA_DONE);
	OUT_IS(&r, "a\n.\r\n");   /* the dot after a bare LF is text */
	CHECK_EQ_INT(r.d.bare_lf, 1);
	abuf_release(&r.out);
	/* a dot line ending in a bare LF is unstuffed text */
	run(".\n.\r\n", 5, 0, NOLIMIT, &r);
	CHECK_EQ_INT(r.rc, LMTP_DATA_MORE);
	OUT_IS(&r, "\n.\r\n");
	abuf_release(&r.out);
}

static void test_long_lines(void)
{
	static char in[3000];
	struct result r;
	/* 998 + CRLF is fine, a stuffed dot counts */
	memset(in, 'x', sizeof(in));
	memcpy(in + 998, "\r\n.\r\n", 5);
	run(in, 1003, 0, NOLIMIT, &r);
	CHECK_EQ_INT(r.rc, LMTP_DATA_DONE);
	CHECK(!r.d.long_line);
	abuf_release(&r.out);
	in[0] = '.';
	run(in, 1003, 0, NOLIMIT, &r);
	CHECK(!r.d.long_line);
	CHECK_EQ_INT(r.out.len, 999);
	abuf_release(&r.out);
	memset(in, 'x', sizeof(in));
	memcpy(in + 999, "\r\n.\r\n", 5);
	run(in, 1004, 7, NOLIMIT, &r);
	CHECK_EQ_INT(r.rc, LMTP_DATA_DONE);
	CHECK(r.d.long_line);
	CHECK_EQ_INT(r.out.len, 1001);
	abuf_release(&r.out);
	/* bare LFs do not end a line */
	memset(in, 'x', sizeof(in));
	for (int i = 0; i < 1100; i += 100)
		in[i] = '\n';
	memcpy(in + 1100, "\r\n.\r\n", 5);
	run(in, 1105, 0, NOLIMIT, &r);
	CHECK(r.d.long_line);
	CHECK_EQ_INT(r.d.bare_lf, 11);
	abuf_release(&r.out);
}

static void test_max_size(void)
{
	static const char in[] = "0123456789\r\n..\r\n.\r\nQUIT\r\n";
	size_t n = sizeof(in) - 1;
	/* message: "0123456789\r\n.\r\n" = 15 bytes */
	for (uint64_t max = 0; max <= 16; max++) {
		for (size_t step = 0; step < 4; step++) {
			struct result r;
			run(in, n, step, max, &r);
			CHECK_EQ_INT(r.rc, LMTP_DATA_DONE);
			CHECK_EQ_INT(r.consumed, n - 6);   /* still in sync */
			CHECK_EQ_INT(r.d.size, 15);
			CHECK(r.d.too_big == (max < 15));
			size_t keep = max < 15 ? (size_t)max : 15;
			CHECK(out_is(&r, "0123456789\r\n.\r\n", keep));
			if (max < 15)
				CHECK_STR(lmtp_data_reply(&r.d),
					  "552 5.3.4 Message size exceeds fixed limit");
			else
				CHECK(lmtp_data_reply(&r.d) == NULL);
			abuf_release(&r.out);
		}
	}
	/* counting only */
	struct lmtp_data d;
	size_t used;
	lmtp_data_init(&d, 3);
	CHECK_EQ_INT(lmtp_data_feed(&d, (const uint8_t *)in, n, &used, NULL), LMTP_DATA_DONE);
	CHECK_EQ_INT(d.size, 15);
	CHECK(d.too_big);
}

static void test_nomem(void)
{
	struct lmtp_data d;
	struct abuf full = { NULL, SIZE_MAX / 2, SIZE_MAX / 2 };
	size_t used;
	static const char in[] = "abc\r\n.\r\n";
	lmtp_data_init(&d, NOLIMIT);
	CHECK_EQ_INT(lmtp_data_feed(&d, (const uint8_t *)in, 8, &used, &full), LMTP_DATA_DONE);
	CHECK_EQ_INT(used, 8);
	CHECK(d.nomem);
	CHECK(!d.too_big);
	CHECK_STR(lmtp_data_reply(&d), "451 4.3.0 Local error, try again later");
	CHECK_EQ_INT(full.len, SIZE_MAX / 2);
}

/* ---- BDAT ---------------------------------------------------------------- */

static void test_bdat_chunks(void)
{
	struct lmtp_bdat b;
	struct abuf out = ABUF_INIT;
	size_t used;
	lmtp_bdat_init(&b, NOLIMIT);
	/* "BDAT 7" then "abc\r\nde", "BDAT 4 LAST" then "f\r\n." */
	static const char wire[] = "abc\r\ndeBDAT 4 LAST\r\n";
	CHECK_EQ_INT(lmtp_bdat_feed(&b, (const uint8_t *)wire, 3, &used, &out), ARCA_ESTATE);
	CHECK_EQ_INT(lmtp_bdat_begin(&b, 7, false), 0);
	CHECK_EQ_INT(lmtp_bdat_begin(&b, 7, false), ARCA_ESTATE);
	CHECK_EQ_INT(lmtp_bdat_feed(&b, (const uint8_t *)wire, 4, &used, &out), LMTP_BDAT_MORE);
	CHECK_EQ_INT(used, 4);
	CHECK_EQ_INT(b.remaining, 3);
	CHECK_EQ_INT(lmtp_bdat_feed(&b, (const uint8_t *)wire + 4, sizeof(wire) - 5, &used, &out),
		     LMTP_BDAT_CHUNK_DONE);
	CHECK_EQ_INT(used, 3);   /* "BDAT 4 LAST" is left for the command parser */
	CHECK(!b.done);
	CHECK_EQ_INT(lmtp_bdat_begin(&b, 4, true), 0);
	CHECK_EQ_INT(lmtp_bdat_feed(&b, (const uint8_t *)"f\r\n.", 4, &used, &out),
		     LMTP_BDAT_CHUNK_DONE);
	CHECK(b.done && b.last);
	CHECK(out.len == 11 && memcmp(out.data, "abc\r\ndef\r\n.", 11) == 0);
	CHECK_EQ_INT(b.size, 11);
	CHECK_EQ_INT(b.bare_cr + b.bare_lf + b.nul, 0);
	CHECK(lmtp_bdat_reply(&b) == NULL);
	CHECK_EQ_INT(lmtp_bdat_begin(&b, 1, true), ARCA_ESTATE);
	CHECK_EQ_INT(lmtp_bdat_feed(&b, (const uint8_t *)"x", 1, &used, &out), ARCA_ESTATE);
	abuf_release(&out);
	CHECK_EQ_INT(lmtp_bdat_begin(NULL, 1, true), ARCA_EINVAL);
	CHECK_EQ_INT(lmtp_bdat_feed(NULL, NULL, 0, &used, NULL), ARCA_EINVAL);
}

static void test_bdat_zero_and_counts(void)
{
	struct lmtp_bdat b;
	struct abuf out = ABUF_INIT;
	size_t used;
	lmtp_bdat_init(&b, NOLIMIT);
	/* a CR ending one chunk and an LF starting the next make a CRLF */
	CHECK_EQ_INT(lmtp_bdat_begin(&b, 2, false), 0);
	CHECK_EQ_INT(lmtp_bdat_feed(&b, (const uint8_t *)"a\r", 2, &used, &out), LMTP_BDAT_CHUNK_DONE);
	CHECK_EQ_INT(lmtp_bdat_begin(&b, 0, false), 0);
	CHECK_EQ_INT(lmtp_bdat_feed(&b, NULL, 0, &used, &out), LMTP_BDAT_CHUNK_DONE);
	CHECK_EQ_INT(used, 0);
	CHECK_EQ_INT(lmtp_bdat_begin(&b, 6, false), 0);
	CHECK_EQ_INT(lmtp_bdat_feed(&b, (const uint8_t *)"\nb\n\0\rc", 6, &used, &out),
		     LMTP_BDAT_CHUNK_DONE);
	CHECK_EQ_INT(lmtp_bdat_begin(&b, 1, true), 0);
	CHECK_EQ_INT(lmtp_bdat_feed(&b, (const uint8_t *)"\rX", 2, &used, &out),
		     LMTP_BDAT_CHUNK_DONE);
	CHECK_EQ_INT(used, 1);
	CHECK(b.done);
	CHECK_EQ_INT(b.bare_lf, 1);
	CHECK_EQ_INT(b.bare_cr, 2);   /* "\rc" and the final "\r" */
	CHECK_EQ_INT(b.nul, 1);
	CHECK(out.len == 9 && memcmp(out.data, "a\r\nb\n\0\rc\r", 9) == 0);
	abuf_release(&out);

	/* BDAT 0 LAST: an empty message */
	lmtp_bdat_init(&b, 0);
	CHECK_EQ_INT(lmtp_bdat_begin(&b, 0, true), 0);
	CHECK_EQ_INT(lmtp_bdat_feed(&b, (const uint8_t *)"QUIT", 4, &used, NULL), LMTP_BDAT_CHUNK_DONE);
	CHECK_EQ_INT(used, 0);
	CHECK(b.done && !b.too_big);

	/* long lines over chunk boundaries */
	static uint8_t big[1200];
	memset(big, 'x', sizeof(big));
	lmtp_bdat_init(&b, NOLIMIT);
	CHECK_EQ_INT(lmtp_bdat_begin(&b, 600, false), 0);
	CHECK_EQ_INT(lmtp_bdat_feed(&b, big, 600, &used, NULL), LMTP_BDAT_CHUNK_DONE);
	CHECK(!b.long_line);
	CHECK_EQ_INT(lmtp_bdat_begin(&b, 401, true), 0);
	CHECK_EQ_INT(lmtp_bdat_feed(&b, big, 401, &used, NULL), LMTP_BDAT_CHUNK_DONE);
	CHECK(b.long_line);
	big[998] = '\r';
	big[999] = '\n';
	lmtp_bdat_init(&b, NOLIMIT);
	CHECK_EQ_INT(lmtp_bdat_begin(&b, 1200, true), 0);
	CHECK_EQ_INT(lmtp_bdat_feed(&b, big, 1200, &used, NULL), LMTP_BDAT_CHUNK_DONE);
	CHECK(!b.long_line);
}

static void test_bdat_max_size(void)
{
	struct lmtp_bdat b;
	struct abuf out = ABUF_INIT;
	size_t used;
	lmtp_bdat_init(&b, 5);
	CHECK_EQ_INT(lmtp_bdat_begin(&b, 3, false), 0);
	CHECK(!b.too_big);
	CHECK_EQ_INT(lmtp_bdat_feed(&b, (const uint8_t *)"abc", 3, &used, &out), LMTP_BDAT_CHUNK_DONE);
	CHECK_EQ_INT(lmtp_bdat_begin(&b, 4, true), 0);
	CHECK(b.too_big);          /* known before the bytes arrive */
	CHECK_EQ_INT(lmtp_bdat_feed(&b, (const uint8_t *)"de", 2, &used, &out), LMTP_BDAT_MORE);
	CHECK_EQ_INT(lmtp_bdat_feed(&b, (const uint8_t *)"fgQUIT", 6, &used, &out),
		     LMTP_BDAT_CHUNK_DONE);
	CHECK_EQ_INT(used, 2);
	CHECK(b.done);
	CHECK(out.len == 5 && memcmp(out.data, "abcde", 5) == 0);
	CHECK_STR(lmtp_bdat_reply(&b), "552 5.3.4 Message size exceeds fixed limit");
	abuf_release(&out);
	/* a huge announced size saturates, and is too big */
	lmtp_bdat_init(&b, NOLIMIT - 1);
	CHECK_EQ_INT(lmtp_bdat_begin(&b, UINT64_MAX, false), 0);
	CHECK(b.too_big && b.size == UINT64_MAX);
	CHECK_EQ_INT(lmtp_bdat_feed(&b, (const uint8_t *)"abc", 3, &used, NULL), LMTP_BDAT_MORE);
	CHECK(b.remaining == UINT64_MAX - 3);
	/* out of memory */
	struct abuf full = { NULL, SIZE_MAX / 2, SIZE_MAX / 2 };
	lmtp_bdat_init(&b, NOLIMIT);
	CHECK_EQ_INT(lmtp_bdat_begin(&b, 2, true), 0);
	CHECK_EQ_INT(lmtp_bdat_feed(&b, (const uint8_t *)"ab", 2, &used, &full), LMTP_BDAT_CHUNK_DONE);
	CHECK(b.nomem);
	CHECK_STR(lmtp_bdat_reply(&b), "451 4.3.0 Local error, try again later");
}

int main(void)
{
	RUN(test_simple);
	RUN(test_empty_and_pipelining);
	RUN(test_dot_stuffing);
	RUN(test_every_split);
	RUN(test_bare_endings);
	RUN(test_long_lines);
	RUN(test_max_size);
	RUN(test_nomem);
	RUN(test_bdat_chunks);
	RUN(test_bdat_zero_and_counts);
	RUN(test_bdat_max_size);
	HARNESS_EXIT();
}
