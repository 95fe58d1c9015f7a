/*
 * Fuzz the X-GUID item parser (lib/imap/imap_xguid.c) and pull.h's pure
 * helpers, all on one input:
 *  - imap_xguid_parse at every 'X'/'x' of the input: a success is a
 *    bounded printable GUID ending where an attribute ends, that parses
 *    back the same once quoted; a failure consumes and sets nothing;
 *  - the first line (up to '\n' or NUL) is a base name (pull_base_ok,
 *    pull_base_strip_sizes) and the rest the bytes served for it
 *    (pull_unserve_crlf), each checked against its contract;
 *  - the first line is also an IMAP folder name (pull_folder_name) with
 *    the delimiter the last byte picks ('.', '/', '\\' or none): a success
 *    is a '/'-separated name without empty levels that encodes back to the
 *    input.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "imap_xguid.h"
#include "maildir.h"
#include "pull.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void xguid_at(const char *p, size_t len, size_t at)
{
	size_t pos = at;
	char *sentinel = (char *)"untouched", *g = sentinel;
	if (imap_xguid_parse(p, len, &pos, &g) != 0) {
		if (pos != at || g != sentinel)
			abort();
		return;
	}
	size_t n = strlen(g);
	if (n == 0 || n > IMAP_XGUID_MAX || pos <= at + 7 || pos > len)
		abort();
	if (pos < len && p[pos] != ' ' && p[pos] != ')')
		abort();
	for (size_t i = 0; i < n; i++)
		if (g[i] < 0x20 || g[i] > 0x7e)
			abort();
	if (strncasecmp(p + at, "X-GUID ", 7) != 0)
		abort();
	if (p[at + 7] != '"') {
		/* an atom: the GUID is the bytes as they were, and never NIL */
		if (pos - at - 7 != n || memcmp(p + at + 7, g, n) != 0 || strcasecmp(g, "NIL") == 0)
			abort();
	}
	/* quoted again, it parses back to itself */
	char q[8 + 2 * IMAP_XGUID_MAX + 2];
	size_t k = 0;
	memcpy(q, "x-guid \"", 8);
	k = 8;
	for (size_t i = 0; i < n; i++) {
		if (g[i] == '"' || g[i] == '\\')
			q[k++] = '\\';
		q[k++] = g[i];
	}
	q[k++] = '"';
	size_t qpos = 0;
	char *g2 = NULL;
	if (imap_xguid_parse(q, k, &qpos, &g2) != 0 || qpos != k || strcmp(g, g2) != 0)
		abort();
	free(g2);
	free(g);
}

static bool base_ok_oracle(const char *b)
{
	/* restorable: not hidden ('.'), not strippable to nothing (','),
	 * short enough for ":2," and 26 flag and keyword letters */
	size_t n = strlen(b);
	if (n == 0 || n > PULL_BASE_MAX || b[0] == '.' || b[0] == ',')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)b[i];
		if (c <= 0x20 || c >= 0x7f || c == '/' || c == ':')
			return false;
	}
	return true;
}

static bool has_size_field(const char *b)
{
	for (const char *p = b; (p = strchr(p, ',')) != NULL; p++)
		if ((p[1] == 'S' || p[1] == 'W') && p[2] == '=')
			return true;
	return false;
}

static void base_and_body(const char *base, const uint8_t *body, size_t blen)
{
	if (pull_base_ok(base) != base_ok_oracle(base))
		abort();

	size_t n = strlen(base);
	char *s = malloc(n + 1), *s2 = malloc(n + 1);
	if (s == NULL || s2 == NULL)
		abort();
	memcpy(s, base, n + 1);
	pull_base_strip_sizes(s);
	if (strlen(s) > n || has_size_field(s))
		abort();
	if (!has_size_field(base) && strcmp(s, base) != 0)
		abort();
	memcpy(s2, s, strlen(s) + 1);
	pull_base_strip_sizes(s2);   /* idempotent */
	if (strcmp(s, s2) != 0)
		abort();
	free(s2);
	free(s);

	struct abuf out = ABUF_INIT;
	bool strip = true;
	uint64_t sz = 0;
	bool has_s = maildir_name_size(base, &sz);
	int rc = pull_unserve_crlf(base, body, blen, &out, &strip);
	if (rc == 1) {
		if (strip || !has_s || out.len != sz || out.len >= blen)
			abort();
		/* served again (every LF as CRLF) it is what was served, when
		 * what was served had no bare LF */
		bool bare = false;
		for (size_t i = 0; i < blen && !bare; i++)
			bare = body[i] == '\n' && (i == 0 || body[i - 1] != '\r');
		if (!bare) {
			size_t j = 0;
			for (size_t i = 0; i < out.len; i++) {
				if (out.data[i] == '\n') {
					if (j >= blen || body[j++] != '\r')
						abort();
				}
				if (j >= blen || body[j++] != out.data[i])
					abort();
			}
			if (j != blen)
				abort();
		}
	} else if (rc == 0) {
		if (strip != (has_s && sz != blen))
			abort();
	} else {
		abort();
	}
	abuf_release(&out);
}

static void folder_name(const char *name, char delim)
{
	struct abuf out = ABUF_INIT, back = ABUF_INIT;
	int rc = pull_folder_name(name, delim, &out);
	if (rc == 0) {
		const char *o = (const char *)out.data;
		size_t n = strlen(o);
		if (n == 0 || o[0] == '/' || o[n - 1] == '/' || strstr(o, "//"))
			abort();
		if (strcasecmp(name, "INBOX") == 0) {
			if (strcmp(o, "INBOX") != 0)
				abort();
		} else {
			/* levels joined with the server's delimiter, encoded again:
			 * the name as the server spelled it */
			char *t = strdup(o);
			if (t == NULL)
				abort();
			for (char *p = t; *p; p++)
				if (*p == '/' && delim != '\0')
					*p = delim;
			if (utf8_to_mutf7(t, &back) != 0 || strcmp((const char *)back.data, name) != 0)
				abort();
			free(t);
		}
	} else if (rc != ARCA_EFORMAT) {
		abort();
	}
	abuf_release(&back);
	abuf_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	for (size_t i = 0; i < size; i++)
		if (p[i] == 'X' || p[i] == 'x')
			xguid_at(p, size, i);
	xguid_at(p, size, size);

	size_t line = 0;
	while (line < size && data[line] != '\n' && data[line] != '\0')
		line++;
	char *first = malloc(line + 1);
	if (first == NULL)
		abort();
	memcpy(first, data, line);
	first[line] = '\0';
	size_t rest = line < size ? line + 1 : size;
	base_and_body(first, data + rest, size - rest);
	static const char delims[4] = { '.', '/', '\\', '\0' };
	folder_name(first, size ? delims[data[size - 1] & 3] : '.');
	free(first);
	return 0;
}
