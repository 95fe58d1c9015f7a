/*
 * keywords.c - dovecot-keywords: "<index> <name>\n", index 0..25 = 'a'..'z'.
 */
#include "maildir.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail_private.h"
#include "banned.h"

void keywords_init(struct maildir_keywords *kw)
{
	memset(kw, 0, sizeof(*kw));
}

void keywords_release(struct maildir_keywords *kw)
{
	for (int i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
		free(kw->names[i]);
	keywords_init(kw);
}

/* An IMAP atom usable as a keyword (RFC 3501 flag-keyword). */
static bool name_valid(const char *s, size_t n)
{
	if (n == 0 || n > MAILDIR_KEYWORD_LEN_MAX || s[0] == '\\')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

static int find(const struct maildir_keywords *kw, const char *s, size_t n)
{
	for (int i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
		if (kw->names[i] != NULL && strlen(kw->names[i]) == n &&
		    strncasecmp(kw->names[i], s, n) == 0)
			return i;
	return -1;
}

int keywords_parse(const uint8_t *data, size_t len, struct maildir_keywords *out,
		   struct arca_err *err)
{
	keywords_init(out);
	const uint8_t *pos = data, *end = data + len;
	const char *line;
	size_t n;
	int r;
	for (size_t lineno = 1; (r = mail_next_line(&pos, end, MAILDIR_LINE_MAX, &line, &n)) != 0;
	     lineno++) {
		const char *sp = r > 0 ? memchr(line, ' ', n) : NULL;
		uint32_t idx;
		if (sp == NULL || !mail_parse_u32(line, (size_t)(sp - line), &idx) ||
		    idx >= MAILDIR_KEYWORDS_MAX) {
			keywords_release(out);
			return arca_err_set(err, ARCA_EFORMAT,
					    "dovecot-keywords line %zu: malformed", lineno);
		}
		const char *name = sp + 1;
		size_t nlen = n - (size_t)(name - line);
		if (!name_valid(name, nlen) || out->names[idx] != NULL ||
		    find(out, name, nlen) >= 0) {
			keywords_release(out);
			return arca_err_set(err, ARCA_EFORMAT,
					    "dovecot-keywords line %zu: invalid or repeated keyword",
					    lineno);
		}
		out->names[idx] = mail_strndup(name, nlen);
		if (out->names[idx] == NULL) {
			keywords_release(out);
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		}
	}
	return 0;
}

int keywords_format(const struct maildir_keywords *kw, struct abuf *out)
{
	abuf_reset(out);
	int rc = 0;
	for (int i = 0; i < MAILDIR_KEYWORDS_MAX && rc == 0; i++) {
		if (kw->names[i] == NULL)
			continue;
		size_t n = strlen(kw->names[i]);
		if (!name_valid(kw->names[i], n))
			return ARCA_EINVAL;
		rc = abuf_printf(out, "%d %s\n", i, kw->names[i]);
	}
	if (rc == 0)
		rc = abuf_cstr(out);
	return rc;
}

int keywords_index(struct maildir_keywords *kw, const char *name, bool add)
{
	size_t n = strnlen(name, MAILDIR_KEYWORD_LEN_MAX + 1);
	if (!name_valid(name, n))
		return -1;
	int i = find(kw, name, n);
	if (i >= 0 || !add)
		return i;
	for (i = 0; i < MAILDIR_KEYWORDS_MAX; i++) {
		if (kw->names[i] == NULL) {
			kw->names[i] = mail_strndup(name, n);
			return kw->names[i] ? i : -1;
		}
	}
	return -1;
}
