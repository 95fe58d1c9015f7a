/*
 * mutf7.c - modified UTF-7 (RFC 3501 5.1.3), strict in both directions.
 *
 * Strict means canonical: only the one encoding a correct encoder produces
 * is accepted, so a folder name has exactly one directory name and decoding
 * then encoding is the identity (the fuzzer checks it).
 */
#include "maildir.h"

#include <string.h>

#include "mail_private.h"
#include "banned.h"

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static int add_utf8(struct abuf *out, uint32_t cp)
{
	uint8_t t[4];
	size_t n;
	if (cp < 0x80) {
		t[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		t[0] = (uint8_t)(0xc0 | (cp >> 6));
		t[1] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		t[0] = (uint8_t)(0xe0 | (cp >> 12));
		t[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		t[2] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		t[0] = (uint8_t)(0xf0 | (cp >> 18));
		t[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
		t[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		t[3] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return abuf_add(out, t, n);
}

int mutf7_to_utf8(const char *in, struct abuf *out)
{
	abuf_reset(out);
	const unsigned char *p = (const unsigned char *)in;
	bool prev_encoded = false;
	int rc = 0;
	while (*p != '\0' && rc == 0) {
		if (*p < 0x20 || *p > 0x7e)
			return ARCA_EFORMAT;
		if (*p != '&') {
			rc = abuf_add_u8(out, *p++);
			prev_encoded = false;
			continue;
		}
		p++;
		if (*p == '-') {
			rc = abuf_add_u8(out, '&');
			p++;
			prev_encoded = false;
			continue;
		}
		if (prev_encoded)
			return ARCA_EFORMAT; /* "&..-&..-" is one run to an encoder */
		uint32_t bits = 0;
		unsigned nbits = 0;
		uint32_t high = 0; /* pending high surrogate */
		size_t nchars = 0;
		for (; *p != '-'; p++) {
			int v = b64val(*p);
			if (v < 0)
				return ARCA_EFORMAT; /* also the NUL of an open run */
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			nchars++;
			if (nbits < 16)
				continue;
			nbits -= 16;
			uint32_t u = (bits >> nbits) & 0xffff;
			bits &= (UINT32_C(1) << nbits) - 1;
			if (high != 0) {
				if (u < 0xdc00 || u > 0xdfff)
					return ARCA_EFORMAT;
				rc = add_utf8(out, 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00));
				high = 0;
			} else if (u >= 0xd800 && u <= 0xdbff) {
				high = u;
			} else if (u >= 0xdc00 && u <= 0xdfff) {
				return ARCA_EFORMAT;
			} else if (u == 0 || (u >= 0x20 && u <= 0x7e)) {
				return ARCA_EFORMAT;
			} else {
				rc = add_utf8(out, u);
			}
			if (rc)
				return rc;
		}
		/* Leftover bits: fewer than 6 and all zero, no half pair, and
		 * at least one character (which nbits < 6 implies). */
		if (nchars == 0 || high != 0 || nbits >= 6 || bits != 0)
			return ARCA_EFORMAT;
		p++; /* '-' */
		prev_encoded = true;
	}
	if (rc == 0)
		rc = abuf_cstr(out);
	return rc;
}

static int flush_b64(struct abuf *out, const uint16_t *u, size_t n)
{
	uint32_t bits = 0;
	unsigned nbits = 0;
	int rc = abuf_add_u8(out, '&');
	for (size_t i = 0; i < n && rc == 0; i++) {
		bits = (bits << 16) | u[i];
		nbits += 16;
		while (nbits >= 6 && rc == 0) {
			nbits -= 6;
			rc = abuf_add_u8(out, (uint8_t)b64chars[(bits >> nbits) & 0x3f]);
		}
		bits &= (UINT32_C(1) << nbits) - 1;
	}
	if (nbits > 0 && rc == 0)
		rc = abuf_add_u8(out, (uint8_t)b64chars[(bits << (6 - nbits)) & 0x3f]);
	if (rc == 0)
		rc = abuf_add_u8(out, '-');
	return rc;
}

int utf8_to_mutf7(const char *in, struct abuf *out)
{
	abuf_reset(out);
	size_t n = strlen(in);
	if (!mail_utf8_valid(in, n))
		return ARCA_EFORMAT;
	const unsigned char *s = (const unsigned char *)in;
	uint16_t run[64];
	size_t nrun = 0;
	int rc = 0;
	size_t i = 0;
	bool in_run = false;
	/* A run is emitted in chunks of whole code units; a chunk boundary
	 * inside one run must not split the bit stream, so runs are flushed
	 * only at their end, through a growable buffer. */
	struct abuf units = ABUF_INIT;
	while (i < n && rc == 0) {
		unsigned c = s[i];
		if (c >= 0x20 && c <= 0x7e) {
			if (in_run) {
				rc = flush_b64(out, (const uint16_t *)(void *)units.data,
					       units.len / 2);
				abuf_reset(&units);
				in_run = false;
				if (rc)
					break;
			}
			rc = c == '&' ? abuf_add(out, "&-", 2) : abuf_add_u8(out, (uint8_t)c);
			i++;
			continue;
		}
		uint32_t cp;
		size_t len;
		if (c < 0x80) {
			cp = c; len = 1;
		} else if (c < 0xe0) {
			cp = c & 0x1f; len = 2;
		} else if (c < 0xf0) {
			cp = c & 0x0f; len = 3;
		} else {
			cp = c & 0x07; len = 4;
		}
		for (size_t k = 1; k < len; k++)
			cp = (cp << 6) | (s[i + k] & 0x3f);
		i += len;
		nrun = 0;
		if (cp >= 0x10000) {
			cp -= 0x10000;
			run[nrun++] = (uint16_t)(0xd800 + (cp >> 10));
			run[nrun++] = (uint16_t)(0xdc00 + (cp & 0x3ff));
		} else {
			run[nrun++] = (uint16_t)cp;
		}
		rc = abuf_add(&units, run, nrun * sizeof(run[0]));
		in_run = true;
	}
	if (rc == 0 && in_run)
		rc = flush_b64(out, (const uint16_t *)(void *)units.data, units.len / 2);
	abuf_release(&units);
	if (rc == 0)
		rc = abuf_cstr(out);
	return rc;
}
