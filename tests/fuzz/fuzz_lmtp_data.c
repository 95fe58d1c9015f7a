/* DATA and BDAT decoding.  The first two bytes pick max_size and how the
 * rest is cut into feeds.  DATA: every cutting gives the same result as one
 * feed, and a done message matches a plain line-by-line decoder (RFC 5321
 * 4.5.2).  BDAT: the rest, cut into chunks, comes out unchanged up to
 * max_size with the same counts as a plain scan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lmtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ref {
	struct abuf out;
	size_t consumed;
	uint64_t bare_lf, bare_cr, nul, lines;
	bool long_line, done;
};

/* Line by line: a line ends at CRLF; "." ends the message; one leading dot
 * is removed.  Inside a line every CR and LF is bare. */
static void ref_data(const uint8_t *in, size_t n, struct ref *r)
{
	size_t pos = 0;
	memset(r, 0, sizeof(*r));
	for (;;) {
		size_t e = pos;
		while (e + 1 < n && !(in[e] == '\r' && in[e + 1] == '\n'))
			e++;
		if (e + 1 >= n)
			return;
		if (e - pos == 1 && in[pos] == '.') {
			r->consumed = e + 2;
			r->done = true;
			return;
		}
		if (e + 2 - pos > LMTP_LINE_MAX)
			r->long_line = true;
		size_t s = pos + (e > pos && in[pos] == '.');
		for (size_t i = s; i < e; i++) {
			r->bare_lf += in[i] == '\n';
			r->bare_cr += in[i] == '\r';
			r->nul += in[i] == 0;
		}
		if (abuf_add(&r->out, in + s, e - s) != 0 || abuf_add(&r->out, "\r\n", 2) != 0)
			abort();
		r->lines++;
		pos = e + 2;
	}
}

static uint32_t next_step(uint32_t *seed, size_t left)
{
	*seed = *seed * 1103515245u + 12345u;
	uint32_t s = (*seed >> 16) % 9;
	size_t step = s == 8 ? left : (size_t)1 << s;   /* 1..128, or the rest */
	return (uint32_t)(step < left ? step : left);
}

static void run_data(const uint8_t *in, size_t n, uint64_t max, uint32_t seed,
		     struct lmtp_data *d, struct abuf *out, size_t *consumed_r)
{
	lmtp_data_init(d, max);
	size_t pos = 0;
	int rc = LMTP_DATA_MORE;
	while (pos < n && rc == LMTP_DATA_MORE) {
		size_t len = seed == 0 ? n - pos : next_step(&seed, n - pos), used;
		rc = lmtp_data_feed(d, in + pos, len, &used, out);
		if (rc < 0 || used > len || (rc == LMTP_DATA_MORE && used != len))
			abort();
		pos += used;
	}
	if ((rc == LMTP_DATA_DONE) != d->done)
		abort();
	*consumed_r = pos;
}

static void check_data(const uint8_t *in, size_t n, uint64_t max, uint32_t seed)
{
	struct lmtp_data d1, d2;
	struct abuf o1 = ABUF_INIT, o2 = ABUF_INIT;
	size_t c1, c2;
	run_data(in, n, max, 0, &d1, &o1, &c1);
	run_data(in, n, max, seed | 1, &d2, &o2, &c2);
	if (c1 != c2 || d1.done != d2.done || d1.size != d2.size || o1.len != o2.len ||
	    (o1.len && memcmp(o1.data, o2.data, o1.len) != 0) ||
	    d1.bare_lf != d2.bare_lf || d1.bare_cr != d2.bare_cr || d1.nul != d2.nul ||
	    d1.lines != d2.lines || d1.long_line != d2.long_line || d1.too_big != d2.too_big)
		abort();
	if (o1.len > max || d1.too_big != (d1.size > max) ||
	    o1.len != (d1.size < max ? d1.size : max))
		abort();
	struct ref r;
	ref_data(in, n, &r);
	if (r.done != d1.done)
		abort();
	if (r.done) {
		if (r.consumed != c1 || r.out.len != d1.size ||
		    (o1.len && memcmp(r.out.data, o1.data, o1.len) != 0) ||
		    r.bare_lf != d1.bare_lf || r.bare_cr != d1.bare_cr || r.nul != d1.nul ||
		    r.lines != d1.lines || r.long_line != d1.long_line)
			abort();
		if ((lmtp_data_reply(&d1) == NULL) != !d1.too_big)
			abort();
	} else if (c1 != n) {
		abort();
	}
	abuf_release(&o1);
	abuf_release(&o2);
	abuf_release(&r.out);
}

static void check_bdat(const uint8_t *in, size_t n, uint64_t max, uint32_t seed)
{
	struct lmtp_bdat b;
	struct abuf out = ABUF_INIT;
	lmtp_bdat_init(&b, max);
	size_t pos = 0;
	while (!b.done) {
		seed = seed * 1103515245u + 12345u;
		size_t chunk = (seed >> 16) % 300;
		if (chunk > n - pos)
			chunk = n - pos;
		bool last = pos + chunk == n;
		if (lmtp_bdat_begin(&b, chunk, last) != 0)
			abort();
		size_t end = pos + chunk;
		int rc = LMTP_BDAT_MORE;
		while (rc == LMTP_BDAT_MORE) {
			/* offer more than the chunk: the rest is not taken */
			size_t len = next_step(&seed, n - pos), used;
			rc = lmtp_bdat_feed(&b, in + pos, len, &used, &out);
			if (rc < 0 || used > len || pos + used > end)
				abort();
			pos += used;
		}
		if (pos != end || b.done != last)
			abort();
	}
	if (lmtp_bdat_begin(&b, 0, true) != ARCA_ESTATE)
		abort();
	uint64_t lf = 0, cr = 0, nul = 0, line = 0;
	bool long_line = false;
	for (size_t i = 0; i < n; i++) {
		bool crlf_lf = in[i] == '\n' && i > 0 && in[i - 1] == '\r';
		lf += in[i] == '\n' && !crlf_lf;
		cr += in[i] == '\r' && (i + 1 == n || in[i + 1] != '\n');
		nul += in[i] == 0;
		line++;
		if (line > LMTP_LINE_MAX)
			long_line = true;
		if (crlf_lf)
			line = 0;
	}
	size_t keep = n < max ? n : (size_t)max;
	if (b.size != n || b.too_big != (n > max) || out.len != keep ||
	    (keep && memcmp(out.data, in, keep) != 0) || b.bare_lf != lf ||
	    b.bare_cr != cr || b.nul != nul || b.long_line != long_line)
		abort();
	abuf_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	static const uint64_t maxes[8] = { 0, 1, 5, 16, 100, 1000, 4096, UINT64_MAX };
	uint64_t max = maxes[data[0] & 7];
	uint32_t seed = (uint32_t)data[1] << 8 | data[0];
	check_data(data + 2, size - 2, max, seed);
	check_bdat(data + 2, size - 2, max, seed);
	return 0;
}
