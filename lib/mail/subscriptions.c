/*
 * subscriptions.c - Dovecot's `subscriptions` file.
 *
 * Dovecot 2.3 (src/lib-storage/list/subscription-file.c) writes the header
 * "V\t2\n\n" and then one mailbox per line: its hierarchy levels joined by
 * '\t', each level tab-escaped.  Levels are storage names, i.e. mUTF-7
 * (verified on 2.3.19.1: "Entw&APw-rfe", "Archive\t2019\tQ1").  Files without
 * that header are the old format: one name per line, levels joined by the
 * storage's separator.
 */
#include "maildir.h"

#include <stdlib.h>
#include <string.h>

#include "mail_private.h"
#include "banned.h"

static const char v2_header[] = "V\t2\n\n";

void subscriptions_init(struct subscriptions *s)
{
	memset(s, 0, sizeof(*s));
}

void subscriptions_release(struct subscriptions *s)
{
	for (size_t i = 0; i < s->count; i++)
		free(s->names[i]);
	free(s->names);
	subscriptions_init(s);
}

/* A folder name as Arca keeps it: valid UTF-8, '/' separated, no empty
 * level, no control characters that could not round-trip. */
static bool name_valid(const char *s, size_t n)
{
	if (n == 0 || n > MAILDIR_FOLDER_NAME_MAX || !mail_utf8_valid(s, n))
		return false;
	if (s[0] == '/' || s[n - 1] == '/' || memmem(s, n, "//", 2) != NULL)
		return false;
	return true;
}

static int add_n(struct subscriptions *s, const char *name, size_t n)
{
	if (!name_valid(name, n))
		return ARCA_EINVAL;
	/* Linear duplicate check: bounded by MAILDIR_SUBSCRIPTIONS_MAX, and
	 * real files hold tens of names. */
	for (size_t i = 0; i < s->count; i++)
		if (strlen(s->names[i]) == n && memcmp(s->names[i], name, n) == 0)
			return 0;
	if (s->count >= MAILDIR_SUBSCRIPTIONS_MAX)
		return ARCA_ELIMIT;
	if (s->count == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char **p = realloc(s->names, cap * sizeof(*p));
		if (p == NULL)
			return ARCA_ENOMEM;
		s->names = p;
		s->cap = cap;
	}
	char *c = mail_strndup(name, n);
	if (c == NULL)
		return ARCA_ENOMEM;
	s->names[s->count++] = c;
	return 0;
}

int subscriptions_add(struct subscriptions *s, const char *name)
{
	return add_n(s, name, strnlen(name, MAILDIR_FOLDER_NAME_MAX + 1));
}

/* Undo Dovecot's tab-escaping of one level of n bytes into out. */
static int tab_unescape(const char *s, size_t n, struct abuf *out)
{
	abuf_reset(out);
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '\001') {
			if (++i == n)
				return ARCA_EFORMAT;
			switch (s[i]) {
			case '1': c = '\001'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'n': c = '\n'; break;
			case '0': c = '\0'; break;
			default: return ARCA_EFORMAT;
			}
		}
		if (c == '\0')
			return ARCA_EFORMAT;
		if (abuf_add_u8(out, (uint8_t)c))
			return ARCA_ENOMEM;
	}
	return abuf_cstr(out);
}

/* One line: levels split at sep, each unescaped (v2), mUTF-7 decoded,
 * joined with '/' into name. */
static int parse_line(const char *line, size_t n, char sep, bool v2,
		      struct abuf *name, struct abuf *raw, struct abuf *dec)
{
	abuf_reset(name);
	size_t i = 0;
	for (;;) {
		const char *lvl = line + i;
		const char *e = memchr(lvl, sep, n - i);
		size_t ln = e ? (size_t)(e - lvl) : n - i;
		int rc;
		if (v2) {
			rc = tab_unescape(lvl, ln, raw);
		} else {
			abuf_reset(raw);
			rc = abuf_add(raw, lvl, ln);
			if (rc == 0)
				rc = abuf_cstr(raw);
		}
		if (rc)
			return rc;
		if (raw->len == 0)
			return ARCA_EFORMAT;
		rc = mutf7_to_utf8((const char *)raw->data, dec);
		if (rc)
			return rc;
		if (memchr(dec->data, '/', dec->len) != NULL)
			return ARCA_EFORMAT; /* would read back as two levels */
		if (name->len && (rc = abuf_add_u8(name, '/')) != 0)
			return rc;
		if ((rc = abuf_add(name, dec->data, dec->len)) != 0)
			return rc;
		if (e == NULL)
			break;
		i += ln + 1;
	}
	return 0;
}

int subscriptions_parse_sep(const uint8_t *data, size_t len, char old_sep,
			    struct subscriptions *out, struct arca_err *err)
{
	subscriptions_init(out);
	const uint8_t *pos = data, *end = data + len;
	bool v2 = false;
	size_t hlen = sizeof(v2_header) - 1;
	if (len >= hlen && memcmp(data, v2_header, hlen) == 0) {
		v2 = true;
		pos += hlen;
	} else if (len >= 2 && data[0] == 'V' && data[1] == '\t') {
		return arca_err_set(err, ARCA_EVERSION, "subscriptions: unknown version header");
	}
	if (old_sep == '\0' || old_sep == '\n')
		return arca_err_set(err, ARCA_EINVAL, "subscriptions: bad separator");
	struct abuf name = ABUF_INIT, raw = ABUF_INIT, dec = ABUF_INIT;
	const char *line;
	size_t n;
	int r, rc = 0;
	size_t lineno = v2 ? 3 : 1;
	for (; (r = mail_next_line(&pos, end, MAILDIR_LINE_MAX, &line, &n)) != 0; lineno++) {
		if (r < 0) {
			rc = arca_err_set(err, ARCA_EFORMAT,
					  "subscriptions line %zu: truncated, too long or bad bytes",
					  lineno);
			break;
		}
		if (n == 0)
			continue; /* Dovecot skips empty lines too */
		rc = parse_line(line, n, v2 ? '\t' : old_sep, v2, &name, &raw, &dec);
		if (rc == 0)
			rc = add_n(out, (const char *)name.data, name.len);
		if (rc) {
			rc = arca_err_set(err, rc == ARCA_EINVAL ? ARCA_EFORMAT : rc,
					  "subscriptions line %zu: invalid name", lineno);
			break;
		}
	}
	abuf_release(&name);
	abuf_release(&raw);
	abuf_release(&dec);
	if (rc)
		subscriptions_release(out);
	return rc;
}

int subscriptions_parse(const uint8_t *data, size_t len, struct subscriptions *out,
			struct arca_err *err)
{
	return subscriptions_parse_sep(data, len, '/', out, err);
}

int subscriptions_format(const struct subscriptions *s, struct abuf *out)
{
	abuf_reset(out);
	struct abuf lvl = ABUF_INIT, enc = ABUF_INIT;
	int rc = abuf_add(out, v2_header, sizeof(v2_header) - 1);
	for (size_t i = 0; i < s->count && rc == 0; i++) {
		const char *name = s->names[i];
		size_t n = strlen(name);
		if (!name_valid(name, n)) {
			rc = ARCA_EINVAL;
			break;
		}
		const char *p = name;
		for (;;) {
			const char *slash = strchr(p, '/');
			size_t ln = slash ? (size_t)(slash - p) : strlen(p);
			abuf_reset(&lvl);
			if ((rc = abuf_add(&lvl, p, ln)) != 0 || (rc = abuf_cstr(&lvl)) != 0)
				break;
			if ((rc = utf8_to_mutf7((const char *)lvl.data, &enc)) != 0) {
				rc = ARCA_EINVAL;
				break;
			}
			/* mUTF-7 output is printable ASCII: never needs
			 * tab-escaping, so it is written as is. */
			if ((rc = abuf_add(out, enc.data, enc.len)) != 0)
				break;
			if (slash == NULL)
				break;
			if ((rc = abuf_add_u8(out, '\t')) != 0)
				break;
			p = slash + 1;
		}
		if (rc == 0)
			rc = abuf_add_u8(out, '\n');
	}
	abuf_release(&lvl);
	abuf_release(&enc);
	if (rc == 0)
		rc = abuf_cstr(out);
	return rc;
}
