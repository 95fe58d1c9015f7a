#include "mail_private.h"

#include <stdlib.h>
#include <string.h>

#include "maildir.h"
#include "banned.h"

int mail_next_line(const uint8_t **pos, const uint8_t *end, size_t max,
		   const char **line_r, size_t *len_r)
{
	const uint8_t *p = *pos;
	if (p >= end)
		return 0;
	size_t left = (size_t)(end - p);
	size_t scan = left < max + 1 ? left : max + 1;
	const uint8_t *nl = memchr(p, '\n', scan);
	if (nl == NULL)
		return -1; /* too long, or truncated */
	size_t n = (size_t)(nl - p);
	if (memchr(p, '\0', n) != NULL || memchr(p, '\r', n) != NULL)
		return -1;
	*line_r = (const char *)p;
	*len_r = n;
	*pos = nl + 1;
	return 1;
}

bool mail_base_valid(const char *s, size_t n)
{
	if (n == 0 || n > MAILDIR_NAME_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '/' || c == ':' || c == '\0' || c == '\n')
			return false;
	}
	return true;
}

bool mail_parse_u32(const char *s, size_t n, uint32_t *v_r)
{
	if (n == 0 || n > 10)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*v_r = (uint32_t)v;
	return true;
}

bool mail_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len;
		uint32_t cp, min;
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2; cp = c & 0x1f; min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3; cp = c & 0x0f; min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4; cp = c & 0x07; min = 0x10000;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

char *mail_strndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}
