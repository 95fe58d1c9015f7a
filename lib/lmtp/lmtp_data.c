/*
 * lmtp_data.c - message bodies: DATA (dot-stuffed, ended by CRLF.CRLF) and
 * BDAT chunks (raw, counted).
 *
 * Both decoders hold a few bytes of state and nothing of the message: bytes
 * go to the caller's abuf as they are decoded, at most max_size of them.
 */
#include "lmtp.h"

#include <string.h>

#include "lmtp_private.h"
#include "banned.h"

enum {
	ST_BOL = 0,   /* at the start of a line (after CRLF, or at the start) */
	ST_MID,       /* inside a line, the last byte not CR */
	ST_CR,        /* inside a line, the last byte CR (already emitted) */
	ST_DOT,       /* a line started with '.' (held back) */
	ST_DOTCR,     /* a line started with ".\r" (both held back) */
	ST_DONE,
};

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/*
 * Append n message bytes when they fit: the first max_size bytes of the
 * message reach out, the rest are only counted.  kept is how many bytes of
 * the message were offered before these.
 */
static void emit(uint64_t kept, uint64_t max_size, bool *too_big, bool *nomem,
		 struct abuf *out, const uint8_t *p, size_t n)
{
	uint64_t room = kept < max_size ? max_size - kept : 0;
	size_t take = (uint64_t)n <= room ? n : (size_t)room;
	if (take > 0 && out != NULL && !*nomem && abuf_add(out, p, take) != 0)
		*nomem = true;
	if ((uint64_t)n > room)
		*too_big = true;
}

static void data_emit(struct lmtp_data *d, struct abuf *out, const uint8_t *p,
		      size_t n)
{
	emit(d->size, d->max_size, &d->too_big, &d->nomem, out, p, n);
	d->size = sat_add(d->size, n);
}

static void line_add(uint64_t *line_len, bool *long_line, uint64_t n)
{
	*line_len = sat_add(*line_len, n);
	if (*line_len > LMTP_LINE_MAX)
		*long_line = true;
}

void lmtp_data_init(struct lmtp_data *d, uint64_t max_size)
{
	memset(d, 0, sizeof(*d));
	d->max_size = max_size;
	d->state = ST_BOL;
}

int lmtp_data_feed(struct lmtp_data *d, const uint8_t *in, size_t inlen,
		   size_t *consumed_r, struct abuf *out)
{
	static const uint8_t cr = '\r', lf = '\n';
	if (d == NULL || consumed_r == NULL || (in == NULL && inlen > 0))
		return ARCA_EINVAL;
	*consumed_r = 0;
	if (d->state == ST_DONE)
		return ARCA_ESTATE;
	size_t i = 0;
	while (i < inlen) {
		uint8_t c = in[i];
		switch (d->state) {
		case ST_BOL:
			if (c == '.') {
				line_add(&d->line_len, &d->long_line, 1);
				d->state = ST_DOT;
				i++;
			} else {
				d->state = ST_MID;
			}
			break;
		case ST_DOT:
			if (c == '\r') {
				line_add(&d->line_len, &d->long_line, 1);
				d->state = ST_DOTCR;
				i++;
			} else {
				d->state = ST_MID;   /* the dot was stuffing */
			}
			break;
		case ST_DOTCR:
			if (c == '\n') {
				i++;
				d->state = ST_DONE;
				d->done = true;
				*consumed_r = i;
				return LMTP_DATA_DONE;
			}
			/* ".\r" then not LF: the dot was stuffing, the CR is
			 * message text; c is looked at again after it. */
			data_emit(d, out, &cr, 1);
			d->state = ST_CR;
			break;
		case ST_CR:
			if (c == '\n') {
				data_emit(d, out, &lf, 1);
				line_add(&d->line_len, &d->long_line, 1);
				d->line_len = 0;
				d->lines = sat_add(d->lines, 1);
				d->state = ST_BOL;
				i++;
			} else {
				d->bare_cr++;
				d->state = ST_MID;
			}
			break;
		case ST_MID: {
			size_t j = i;
			uint64_t nul = 0;
			while (j < inlen && in[j] != '\r' && in[j] != '\n') {
				nul += in[j] == 0;
				j++;
			}
			if (j > i) {
				data_emit(d, out, in + i, j - i);
				line_add(&d->line_len, &d->long_line, j - i);
				d->nul += nul;
				i = j;
				break;
			}
			data_emit(d, out, in + i, 1);
			line_add(&d->line_len, &d->long_line, 1);
			if (c == '\r')
				d->state = ST_CR;
			else
				d->bare_lf++;
			i++;
			break;
		}
		default:
			return ARCA_ESTATE;
		}
	}
	*consumed_r = inlen;
	return LMTP_DATA_MORE;
}

const char *lmtp_data_reply(const struct lmtp_data *d)
{
	if (d->nomem)
		return lmtp_reply_for(LMTP_PE_LOCAL_ERROR);
	if (d->too_big)
		return lmtp_reply_for(LMTP_PE_MSG_TOO_BIG);
	return NULL;
}

/* ---- BDAT -------------------------------------------------------------- */

void lmtp_bdat_init(struct lmtp_bdat *b, uint64_t max_size)
{
	memset(b, 0, sizeof(*b));
	b->max_size = max_size;
}

int lmtp_bdat_begin(struct lmtp_bdat *b, uint64_t chunk_size, bool last)
{
	if (b == NULL)
		return ARCA_EINVAL;
	if (b->in_chunk || b->done)
		return ARCA_ESTATE;
	b->in_chunk = true;
	b->remaining = chunk_size;
	b->last = last;
	b->size = sat_add(b->size, chunk_size);
	if (b->size > b->max_size)
		b->too_big = true;
	return 0;
}

int lmtp_bdat_feed(struct lmtp_bdat *b, const uint8_t *in, size_t inlen,
		   size_t *consumed_r, struct abuf *out)
{
	if (b == NULL || consumed_r == NULL || (in == NULL && inlen > 0))
		return ARCA_EINVAL;
	*consumed_r = 0;
	if (!b->in_chunk)
		return ARCA_ESTATE;
	size_t n = (uint64_t)inlen < b->remaining ? inlen : (size_t)b->remaining;
	bool too_big = false;
	emit(b->taken, b->max_size, &too_big, &b->nomem, out, in, n);
	b->taken = sat_add(b->taken, n);
	for (size_t i = 0; i < n; i++) {
		uint8_t c = in[i];
		if (b->prev_cr && c != '\n')
			b->bare_cr++;
		line_add(&b->line_len, &b->long_line, 1);
		if (c == '\n') {
			if (b->prev_cr)
				b->line_len = 0;
			else
				b->bare_lf++;
		} else if (c == 0) {
			b->nul++;
		}
		b->prev_cr = c == '\r';
	}
	b->remaining -= n;
	*consumed_r = n;
	if (b->remaining > 0)
		return LMTP_BDAT_MORE;
	b->in_chunk = false;
	if (b->last) {
		b->done = true;
		if (b->prev_cr)
			b->bare_cr++;   /* the message ends in a CR */
		b->prev_cr = false;
	}
	return LMTP_BDAT_CHUNK_DONE;
}

const char *lmtp_bdat_reply(const struct lmtp_bdat *b)
{
	if (b->nomem)
		return lmtp_reply_for(LMTP_PE_LOCAL_ERROR);
	if (b->too_big)
		return lmtp_reply_for(LMTP_PE_MSG_TOO_BIG);
	return NULL;
}
