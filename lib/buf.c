#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arca_err.h"
#include "banned.h"

void abuf_init(struct abuf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void abuf_release(struct abuf *b)
{
	free(b->data);
	abuf_init(b);
}

void abuf_reset(struct abuf *b)
{
	b->len = 0;
}

int abuf_reserve(struct abuf *b, size_t extra)
{
	if (extra <= b->cap - b->len)
		return 0;
	if (extra > SIZE_MAX / 2 - b->len)
		return ARCA_ENOMEM;
	size_t want = b->len + extra;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < want)
		cap *= 2;
	uint8_t *p = realloc(b->data, cap);
	if (p == NULL)
		return ARCA_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int abuf_add(struct abuf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	int rc = abuf_reserve(b, n);
	if (rc)
		return rc;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int abuf_add_u8(struct abuf *b, uint8_t v)
{
	return abuf_add(b, &v, 1);
}

int abuf_add_u16(struct abuf *b, uint16_t v)
{
	uint8_t t[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	return abuf_add(b, t, 2);
}

int abuf_add_u32(struct abuf *b, uint32_t v)
{
	uint8_t t[4];
	put_u32le(t, v);
	return abuf_add(b, t, 4);
}

int abuf_add_u64(struct abuf *b, uint64_t v)
{
	uint8_t t[8];
	put_u64le(t, v);
	return abuf_add(b, t, 8);
}

int abuf_add_varint(struct abuf *b, uint64_t v)
{
	uint8_t t[10];
	size_t n = 0;
	do {
		uint8_t c = v & 0x7f;
		v >>= 7;
		if (v)
			c |= 0x80;
		t[n++] = c;
	} while (v);
	return abuf_add(b, t, n);
}

int abuf_add_bytes(struct abuf *b, const void *p, size_t n)
{
	int rc = abuf_add_varint(b, n);
	if (rc)
		return rc;
	return abuf_add(b, p, n); /* on failure callers abandon the buffer */
}

int abuf_add_str(struct abuf *b, const char *s)
{
	return abuf_add_bytes(b, s, strlen(s));
}

int abuf_cstr(struct abuf *b)
{
	int rc = abuf_reserve(b, 1);
	if (rc)
		return rc;
	b->data[b->len] = '\0';
	return 0;
}

int abuf_printf(struct abuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return ARCA_EINVAL;
	int rc = abuf_reserve(b, (size_t)n + 1);
	if (rc)
		return rc;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void adec_init(struct adec *d, const void *data, size_t len)
{
	d->p = data;
	d->end = d->p + len;
	d->failed = false;
}

const uint8_t *adec_raw(struct adec *d, size_t n)
{
	if (d->failed || (size_t)(d->end - d->p) < n) {
		d->failed = true;
		return NULL;
	}
	const uint8_t *p = d->p;
	d->p += n;
	return p;
}

uint8_t adec_u8(struct adec *d)
{
	const uint8_t *p = adec_raw(d, 1);
	return p ? p[0] : 0;
}

uint16_t adec_u16(struct adec *d)
{
	const uint8_t *p = adec_raw(d, 2);
	return p ? (uint16_t)(p[0] | (p[1] << 8)) : 0;
}

uint32_t adec_u32(struct adec *d)
{
	const uint8_t *p = adec_raw(d, 4);
	return p ? get_u32le(p) : 0;
}

uint64_t adec_u64(struct adec *d)
{
	const uint8_t *p = adec_raw(d, 8);
	return p ? get_u64le(p) : 0;
}

uint64_t adec_varint(struct adec *d)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 70; shift += 7) {
		const uint8_t *p = adec_raw(d, 1);
		if (p == NULL)
			return 0;
		uint8_t c = *p;
		if (shift == 63 && (c & 0x7e)) /* more than 64 bits */
			break;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			/* reject overlong encodings: a zero final byte after the first */
			if (c == 0 && shift > 0)
				break;
			return v;
		}
	}
	d->failed = true;
	return 0;
}

void adec_fixed(struct adec *d, void *out, size_t n)
{
	const uint8_t *p = adec_raw(d, n);
	if (p)
		memcpy(out, p, n);
	else
		memset(out, 0, n);
}

const uint8_t *adec_bytes(struct adec *d, size_t *len_r, size_t max)
{
	uint64_t n = adec_varint(d);
	*len_r = 0;
	if (d->failed)
		return NULL;
	if (n > max) {
		d->failed = true;
		return NULL;
	}
	const uint8_t *p = adec_raw(d, (size_t)n);
	if (p)
		*len_r = (size_t)n;
	return p;
}

char *adec_strdup(struct adec *d, size_t max)
{
	size_t n;
	const uint8_t *p = adec_bytes(d, &n, max);
	if (p == NULL)
		return NULL;
	if (memchr(p, '\0', n) != NULL) {
		d->failed = true;
		return NULL;
	}
	char *s = malloc(n + 1);
	if (s == NULL) {
		d->failed = true;
		return NULL;
	}
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

size_t adec_left(const struct adec *d)
{
	return (size_t)(d->end - d->p);
}

int adec_finish(const struct adec *d)
{
	return (d->failed || d->p != d->end) ? ARCA_EFORMAT : 0;
}

void put_u32le(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void put_u64le(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint32_t get_u32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

uint64_t get_u64le(const uint8_t *p)
{
	return (uint64_t)get_u32le(p) | (uint64_t)get_u32le(p + 4) << 32;
}

void hex_encode(char *out, const uint8_t *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(uint8_t *out, size_t n, const char *in)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(in[2 * i]);
		if (hi < 0)
			return ARCA_EFORMAT;
		int lo = hexval(in[2 * i + 1]);
		if (lo < 0)
			return ARCA_EFORMAT;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return in[2 * n] == '\0' ? 0 : ARCA_EFORMAT;
}
