#include "ipc.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "arca_err.h"
#include "banned.h"

/* ---- encoding ---- */

static int add_str(struct abuf *b, const char *s)
{
	size_t n = s ? strnlen(s, IPC_STR_MAX + 1) : 0;
	if (n > IPC_STR_MAX)
		return ARCA_ELIMIT;
	int rc = abuf_add_u16(b, (uint16_t)n);
	return rc ? rc : abuf_add(b, s, n);
}

/* Frame = u32le length | type | payload: reserve the length, fill it at
 * the end. */
static size_t frame_begin(struct abuf *out, uint8_t type, int *rc)
{
	size_t at = out->len;
	*rc = abuf_add_u32(out, 0);
	*rc = *rc ? *rc : abuf_add_u8(out, type);
	return at;
}

static int frame_end(struct abuf *out, size_t at, int rc)
{
	if (rc) {
		out->len = at;
		return rc;
	}
	size_t n = out->len - at - 4;
	if (n > IPC_FRAME_MAX) {
		out->len = at;
		return ARCA_ELIMIT;
	}
	put_u32le(out->data + at, (uint32_t)n);
	return 0;
}

int ipc_deliver_encode(const struct ipc_deliver *d, struct abuf *out)
{
	if (d->nrcpt == 0 || d->nrcpt > IPC_RCPT_MAX || d->body_len > IPC_BODY_MAX)
		return ARCA_ELIMIT;
	int rc;
	size_t at = frame_begin(out, IPC_DELIVER, &rc);
	rc = rc ? rc : abuf_add_u64(out, d->txn);
	rc = rc ? rc : abuf_add_u64(out, d->time_ns);
	rc = rc ? rc : add_str(out, d->client);
	rc = rc ? rc : add_str(out, d->helo);
	rc = rc ? rc : add_str(out, d->mail_from);
	rc = rc ? rc : abuf_add_u8(out, d->flags);
	rc = rc ? rc : abuf_add_u16(out, d->nrcpt);
	for (size_t i = 0; i < d->nrcpt && rc == 0; i++)
		rc = add_str(out, d->rcpts[i]);
	rc = rc ? rc : abuf_add_u64(out, d->body_len);
	rc = rc ? rc : abuf_add(out, d->body, (size_t)d->body_len);
	return frame_end(out, at, rc);
}

int ipc_result_encode(const struct ipc_result *r, struct abuf *out)
{
	if (r->n == 0 || r->n > IPC_RCPT_MAX)
		return ARCA_ELIMIT;
	int rc;
	size_t at = frame_begin(out, IPC_RESULT, &rc);
	rc = rc ? rc : abuf_add_u64(out, r->txn);
	rc = rc ? rc : abuf_add_u16(out, r->n);
	for (size_t i = 0; i < r->n && rc == 0; i++)
		rc = add_str(out, r->text[i]);
	return frame_end(out, at, rc);
}

int ipc_status_encode(const struct ipc_status *s, struct abuf *out)
{
	int rc;
	size_t at = frame_begin(out, IPC_STATUS, &rc);
	rc = rc ? rc : abuf_add_u8(out, s->accepting ? 1 : 0);
	rc = rc ? rc : add_str(out, s->text);
	return frame_end(out, at, rc);
}

int ipc_event_encode(const struct ipc_event *e, struct abuf *out)
{
	int rc;
	size_t at = frame_begin(out, IPC_EVENT, &rc);
	rc = rc ? rc : abuf_add_u8(out, e->alarm ? 1 : 0);
	rc = rc ? rc : add_str(out, e->text);
	return frame_end(out, at, rc);
}

/* ---- decoding ---- */

/* A printable line: no CR, LF or NUL (a reply or log text must not smuggle
 * a second line). */
static bool line_ok(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0')
			return false;
	return true;
}

/* Copies a u16-prefixed string into `strings`; returns its offset there or
 * (size_t)-1. */
static size_t get_str(struct adec *d, struct abuf *strings)
{
	uint16_t n = adec_u16(d);
	const uint8_t *p = adec_raw(d, n);
	if (p == NULL || n > IPC_STR_MAX || !line_ok(p, n)) {
		d->failed = true;
		return (size_t)-1;
	}
	size_t at = strings->len;
	if (abuf_add(strings, p, n) != 0 || abuf_add_u8(strings, 0) != 0) {
		d->failed = true;
		return (size_t)-1;
	}
	return at;
}

static bool get_text(struct adec *d, char out[IPC_TEXT_MAX])
{
	uint16_t n = adec_u16(d);
	const uint8_t *p = adec_raw(d, n);
	if (p == NULL || n >= IPC_TEXT_MAX || !line_ok(p, n)) {
		d->failed = true;
		out[0] = '\0';
		return false;
	}
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

int ipc_deliver_decode(const uint8_t *p, size_t len, struct ipc_deliver *d,
		       struct abuf *strings)
{
	memset(d, 0, sizeof(*d));
	abuf_reset(strings);
	struct adec in;
	adec_init(&in, p, len);
	d->txn = adec_u64(&in);
	d->time_ns = adec_u64(&in);
	size_t offs[3 + IPC_RCPT_MAX];
	offs[0] = get_str(&in, strings);
	offs[1] = get_str(&in, strings);
	offs[2] = get_str(&in, strings);
	d->flags = adec_u8(&in);
	d->nrcpt = adec_u16(&in);
	if (in.failed || d->nrcpt == 0 || d->nrcpt > IPC_RCPT_MAX)
		return ARCA_EFORMAT;
	for (size_t i = 0; i < d->nrcpt; i++) {
		offs[3 + i] = get_str(&in, strings);
		if (in.failed || strings->len == offs[3 + i] + 1)   /* empty recipient */
			return ARCA_EFORMAT;
	}
	d->body_len = adec_u64(&in);
	if (in.failed || d->body_len > IPC_BODY_MAX)
		return ARCA_EFORMAT;
	d->body = adec_raw(&in, (size_t)d->body_len);
	if (d->body == NULL || adec_finish(&in) != 0)
		return ARCA_EFORMAT;
	if (d->body_len == 0)
		d->body = (const uint8_t *)"";
	/* pointers only now: `strings` may have moved while growing */
	const char *base = (const char *)strings->data;
	d->client = base + offs[0];
	d->helo = base + offs[1];
	d->mail_from = base + offs[2];
	for (size_t i = 0; i < d->nrcpt; i++)
		d->rcpts[i] = base + offs[3 + i];
	return 0;
}

/* A reply is "ddd text" with a 2xx-5xx code: the listener never sends the
 * client anything else, whatever the store says. */
static bool reply_ok(const char *t)
{
	return strlen(t) >= 4 && t[0] >= '2' && t[0] <= '5' && t[1] >= '0' && t[1] <= '9' &&
	       t[2] >= '0' && t[2] <= '9' && t[3] == ' ';
}

int ipc_result_decode(const uint8_t *p, size_t len, struct ipc_result *r,
		      struct abuf *strings)
{
	abuf_reset(strings);
	struct adec in;
	adec_init(&in, p, len);
	r->txn = adec_u64(&in);
	r->n = adec_u16(&in);
	if (in.failed || r->n == 0 || r->n > IPC_RCPT_MAX)
		return ARCA_EFORMAT;
	size_t offs[IPC_RCPT_MAX];
	for (size_t i = 0; i < r->n; i++) {
		offs[i] = get_str(&in, strings);
		if (in.failed || strings->len - offs[i] - 1 >= IPC_TEXT_MAX ||
		    !reply_ok((const char *)strings->data + offs[i]))
			return ARCA_EFORMAT;
	}
	if (adec_finish(&in) != 0)
		return ARCA_EFORMAT;
	for (size_t i = 0; i < r->n; i++)
		r->text[i] = (const char *)strings->data + offs[i];
	return 0;
}

int ipc_status_decode(const uint8_t *p, size_t len, struct ipc_status *s)
{
	struct adec in;
	adec_init(&in, p, len);
	uint8_t a = adec_u8(&in);
	get_text(&in, s->text);
	if (in.failed || a > 1)
		return ARCA_EFORMAT;
	s->accepting = a == 1;
	return adec_finish(&in);
}

int ipc_event_decode(const uint8_t *p, size_t len, struct ipc_event *e)
{
	struct adec in;
	adec_init(&in, p, len);
	uint8_t a = adec_u8(&in);
	get_text(&in, e->text);
	if (in.failed || a > 1)
		return ARCA_EFORMAT;
	e->alarm = a == 1;
	return adec_finish(&in);
}

/* ---- reading frames ---- */

void ipc_reader_init(struct ipc_reader *rd, size_t max)
{
	abuf_init(&rd->buf);
	rd->off = 0;
	rd->max = max;
}

void ipc_reader_release(struct ipc_reader *rd)
{
	abuf_release(&rd->buf);
	rd->off = 0;
}

int ipc_reader_fill(struct ipc_reader *rd, int fd)
{
	/* drop what was consumed */
	if (rd->off > 0) {
		memmove(rd->buf.data, rd->buf.data + rd->off, rd->buf.len - rd->off);
		rd->buf.len -= rd->off;
		rd->off = 0;
	}
	bool got = false;
	for (;;) {
		if (abuf_reserve(&rd->buf, 64 << 10) != 0) {
			errno = ENOMEM;
			return -1;
		}
		ssize_t k = read(fd, rd->buf.data + rd->buf.len, 64 << 10);
		if (k > 0) {
			rd->buf.len += (size_t)k;
			got = true;
			if (rd->buf.len > rd->max + 5)
				return 1;   /* let next() reject the frame */
			continue;
		}
		if (k == 0) {
			errno = 0;
			return got ? 1 : -1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return got ? 1 : 0;
		return -1;
	}
}

int ipc_reader_next(struct ipc_reader *rd, uint8_t *type_r, const uint8_t **p_r,
		    size_t *len_r)
{
	size_t have = rd->buf.len - rd->off;
	if (have < 4)
		return 0;
	const uint8_t *q = rd->buf.data + rd->off;
	uint32_t n = get_u32le(q);
	if (n == 0 || n > rd->max)
		return ARCA_EFORMAT;
	if (have < 4 + (size_t)n)
		return 0;
	*type_r = q[4];
	*p_r = q + 5;
	*len_r = n - 1;
	rd->off += 4 + (size_t)n;
	return 1;
}

int ipc_write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t k = write(fd, b, n);
		if (k > 0) {
			b += k;
			n -= (size_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pf = { .fd = fd, .events = POLLOUT };
			(void)poll(&pf, 1, 1000);
			continue;
		}
		return -1;
	}
	return 0;
}
