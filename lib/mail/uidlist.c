/*
 * uidlist.c - dovecot-uidlist, versions 3 and 1.
 *
 * Version 3 (what Dovecot 2.x writes):
 *     3 V<uidvalidity> N<nextuid> G<guid> [<key><value> ...]\n
 *     <uid>[ <key><value> ...] :<base>\n ...
 * Version 1:
 *     1 <uidvalidity> <nextuid>\n
 *     <uid> <filename>\n ...
 */
#include "maildir.h"

#include <stdlib.h>
#include <string.h>

#include "mail_private.h"
#include "banned.h"

/* Record numbers sorted by base.  Valid while n == count: records are only
 * ever appended, so a list that grew simply has a stale index. */
struct uidlist_index {
	size_t *order;
	size_t n;
};

/* header_extra of a list without extra fields: init cannot fail, yet the
 * field is never NULL, so it points here and is never freed. */
static char no_extra[1];

void uidlist_init(struct uidlist *ul)
{
	memset(ul, 0, sizeof(*ul));
	ul->version = 3;
	ul->nextuid = 1;
	ul->header_extra = no_extra;
}

void uidlist_release(struct uidlist *ul)
{
	for (size_t i = 0; i < ul->count; i++) {
		free(ul->recs[i].base);
		free(ul->recs[i].ext);
		free(ul->recs[i].info);
	}
	free(ul->recs);
	if (ul->header_extra != no_extra)
		free(ul->header_extra);
	if (ul->index != NULL)
		free(ul->index->order);
	free(ul->index);
	uidlist_init(ul);
}

static bool ext_valid(const char *ext, size_t n)
{
	if (n > MAILDIR_LINE_MAX || (n > 0 && ext[0] == ':'))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (ext[i] == '\n' || ext[i] == '\r' || ext[i] == '\0')
			return false;
		if (ext[i] == ':' && i > 0 && ext[i - 1] == ' ')
			return false;
	}
	return true;
}

bool uidlist_info_valid(const char *info, size_t n)
{
	if (n == 0)
		return true;
	if (n > MAILDIR_NAME_MAX || info[0] != ':')
		return false;
	for (size_t i = 0; i < n; i++)
		if (info[i] == '/' || info[i] == '\0' || info[i] == '\n' || info[i] == '\r')
			return false;
	return true;
}

static int add_n(struct uidlist *ul, uint32_t uid, const char *base, size_t base_len,
		 const char *ext, size_t ext_len, const char *info, size_t info_len)
{
	if (uid == 0 || (ul->count > 0 && uid <= ul->recs[ul->count - 1].uid))
		return ARCA_EINVAL;
	if (!mail_base_valid(base, base_len) || !ext_valid(ext, ext_len) ||
	    !uidlist_info_valid(info, info_len))
		return ARCA_EINVAL;
	if (ul->count >= MAILDIR_RECORDS_MAX)
		return ARCA_ELIMIT;
	if (ul->index == NULL) {
		ul->index = calloc(1, sizeof(*ul->index));
		if (ul->index == NULL)
			return ARCA_ENOMEM;
	}
	if (ul->count == ul->cap) {
		size_t cap = ul->cap ? ul->cap * 2 : 64;
		struct uidlist_rec *r = realloc(ul->recs, cap * sizeof(*r));
		if (r == NULL)
			return ARCA_ENOMEM;
		ul->recs = r;
		ul->cap = cap;
	}
	char *b = mail_strndup(base, base_len);
	char *e = mail_strndup(ext, ext_len);
	char *in = mail_strndup(info, info_len);
	if (b == NULL || e == NULL || in == NULL) {
		free(b);
		free(e);
		free(in);
		return ARCA_ENOMEM;
	}
	ul->recs[ul->count++] = (struct uidlist_rec){ uid, b, e, in };
	return 0;
}

int uidlist_add_info(struct uidlist *ul, uint32_t uid, const char *base, const char *ext,
		     const char *info)
{
	if (ext == NULL)
		ext = "";
	if (info == NULL)
		info = "";
	return add_n(ul, uid, base, strnlen(base, MAILDIR_NAME_MAX + 1), ext,
		     strnlen(ext, MAILDIR_LINE_MAX + 1), info, strnlen(info, MAILDIR_NAME_MAX + 1));
}

int uidlist_add(struct uidlist *ul, uint32_t uid, const char *base, const char *ext)
{
	return uidlist_add_info(ul, uid, base, ext, "");
}

uint32_t uidlist_next_uid(const struct uidlist *ul)
{
	uint32_t next = ul->nextuid;
	if (ul->count > 0) {
		uint32_t last = ul->recs[ul->count - 1].uid;
		uint32_t after = last == UINT32_MAX ? UINT32_MAX : last + 1;
		if (after > next)
			next = after;
	}
	return next;
}

static int cmp_base(const void *a, const void *b, void *arg)
{
	const struct uidlist_rec *recs = arg;
	return strcmp(recs[*(const size_t *)a].base, recs[*(const size_t *)b].base);
}

/* Brings the index up to date; returns 0 or ARCA_ENOMEM. */
static int index_update(const struct uidlist *ul)
{
	struct uidlist_index *ix = ul->index;
	if (ix == NULL || ix->n == ul->count)
		return 0;
	size_t *o = realloc(ix->order, ul->count * sizeof(*o));
	if (o == NULL)
		return ARCA_ENOMEM;
	ix->order = o;
	for (size_t i = 0; i < ul->count; i++)
		o[i] = i;
	qsort_r(o, ul->count, sizeof(*o), cmp_base, ul->recs);
	ix->n = ul->count;
	return 0;
}

/* True when two records share a base (index must be current). */
static bool has_duplicate(const struct uidlist *ul)
{
	const struct uidlist_index *ix = ul->index;
	for (size_t i = 1; ix != NULL && i < ix->n; i++)
		if (strcmp(ul->recs[ix->order[i - 1]].base, ul->recs[ix->order[i]].base) == 0)
			return true;
	return false;
}

const struct uidlist_rec *uidlist_find_base(const struct uidlist *ul, const char *base)
{
	size_t n = strcspn(base, ":");
	if (ul->count == 0)
		return NULL;
	if (index_update(ul) != 0) {
		/* Out of memory: still answer, slowly. */
		for (size_t i = 0; i < ul->count; i++)
			if (strncmp(ul->recs[i].base, base, n) == 0 &&
			    ul->recs[i].base[n] == '\0')
				return &ul->recs[i];
		return NULL;
	}
	size_t lo = 0, hi = ul->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct uidlist_rec *r = &ul->recs[ul->index->order[mid]];
		int c = strncmp(r->base, base, n);
		if (c == 0 && r->base[n] != '\0')
			c = 1;
		if (c == 0)
			return r;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int set_extra(struct uidlist *ul, const char *tok, size_t n)
{
	bool none = ul->header_extra == no_extra || ul->header_extra == NULL;
	size_t old = none ? 0 : strlen(ul->header_extra);
	char *p = realloc(none ? NULL : ul->header_extra, old + (old ? 1 : 0) + n + 1);
	if (p == NULL)
		return ARCA_ENOMEM;
	if (old)
		p[old++] = ' ';
	memcpy(p + old, tok, n);
	p[old + n] = '\0';
	ul->header_extra = p;
	return 0;
}

static int parse_header3(struct uidlist *ul, const char *line, size_t len,
			 struct arca_err *err)
{
	bool have_v = false, have_n = false, have_g = false;
	size_t i = 2; /* after "3 " */
	while (i < len) {
		const char *tok = line + i;
		const char *sp = memchr(tok, ' ', len - i);
		size_t n = sp ? (size_t)(sp - tok) : len - i;
		i += n + 1;
		if (n == 0 || (sp != NULL && i >= len))
			return arca_err_set(err, ARCA_EFORMAT,
					    "dovecot-uidlist: empty header field");
		if (tok[0] == 'V' || tok[0] == 'N') {
			bool *have = tok[0] == 'V' ? &have_v : &have_n;
			uint32_t v;
			if (*have || !mail_parse_u32(tok + 1, n - 1, &v))
				return arca_err_set(err, ARCA_EFORMAT,
						    "dovecot-uidlist: bad or repeated %c field",
						    tok[0]);
			*have = true;
			if (tok[0] == 'V')
				ul->uidvalidity = v;
			else
				ul->nextuid = v;
		} else if (tok[0] == 'G') {
			if (have_g || n != 33)
				return arca_err_set(err, ARCA_EFORMAT,
						    "dovecot-uidlist: bad or repeated G field");
			for (size_t k = 0; k < 32; k++) {
				char c = tok[1 + k];
				if (c >= 'A' && c <= 'F')
					c = (char)(c - 'A' + 'a');
				if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
					return arca_err_set(err, ARCA_EFORMAT,
							    "dovecot-uidlist: bad G field");
				ul->guid[k] = c;
			}
			ul->guid[32] = '\0';
			have_g = true;
		} else {
			if (set_extra(ul, tok, n) != 0)
				return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		}
	}
	if (!have_v || !have_n || ul->uidvalidity == 0)
		return arca_err_set(err, ARCA_EFORMAT,
				    "dovecot-uidlist: header lacks V or N, or V is 0");
	return 0;
}

static int parse_header1(struct uidlist *ul, const char *line, size_t len,
			 struct arca_err *err)
{
	const char *a = line + 2, *end = line + len;
	const char *sp = memchr(a, ' ', (size_t)(end - a));
	if (sp == NULL || !mail_parse_u32(a, (size_t)(sp - a), &ul->uidvalidity) ||
	    !mail_parse_u32(sp + 1, (size_t)(end - sp - 1), &ul->nextuid) ||
	    ul->uidvalidity == 0)
		return arca_err_set(err, ARCA_EFORMAT, "dovecot-uidlist: bad version 1 header");
	return 0;
}

static int parse_record(struct uidlist *ul, const char *line, size_t len, size_t lineno,
			struct arca_err *err)
{
	const char *sp = memchr(line, ' ', len);
	uint32_t uid;
	if (sp == NULL || !mail_parse_u32(line, (size_t)(sp - line), &uid) || uid == 0)
		return arca_err_set(err, ARCA_EFORMAT, "dovecot-uidlist line %zu: bad uid",
				    lineno);
	const char *rest = sp + 1, *end = line + len;
	const char *ext = rest, *name;
	size_t ext_len = 0;
	if (ul->version == 1) {
		name = rest;
	} else if (rest < end && *rest == ':') {
		name = rest + 1;
	} else {
		const char *p = rest;
		name = NULL;
		while (p + 1 < end) {
			const char *q = memchr(p, ' ', (size_t)(end - p));
			if (q == NULL || q + 1 >= end)
				break;
			if (q[1] == ':') {
				ext_len = (size_t)(q - rest);
				name = q + 2;
				break;
			}
			p = q + 1;
		}
		if (name == NULL)
			return arca_err_set(err, ARCA_EFORMAT,
					    "dovecot-uidlist line %zu: no \" :\" before the file name",
					    lineno);
	}
	/* The base is what precedes the first ':' (Dovecot compares only
	 * that much when it matches a file to its record). */
	const char *colon = memchr(name, ':', (size_t)(end - name));
	size_t name_len = colon ? (size_t)(colon - name) : (size_t)(end - name);
	/* The rest of the name is kept so that the list is written back as
	 * it was; a rest that can't be part of a file name is dropped (Dovecot
	 * never looks at it). */
	const char *info = colon ? colon : end;
	size_t info_len = (size_t)(end - info);
	if (!uidlist_info_valid(info, info_len))
		info_len = 0;
	if (ul->count > 0 && uid <= ul->recs[ul->count - 1].uid)
		return arca_err_set(err, ARCA_EFORMAT,
				    "dovecot-uidlist line %zu: uid %u not ascending", lineno, uid);
	int rc = add_n(ul, uid, name, name_len, ext, ext_len, info, info_len);
	if (rc == ARCA_EINVAL)
		return arca_err_set(err, ARCA_EFORMAT,
				    "dovecot-uidlist line %zu: bad file name or fields", lineno);
	if (rc == ARCA_ELIMIT)
		return arca_err_set(err, ARCA_ELIMIT, "dovecot-uidlist: more than %u records",
				    MAILDIR_RECORDS_MAX);
	if (rc)
		return arca_err_set(err, rc, "out of memory");
	return 0;
}

static int parse(const uint8_t *data, size_t len, struct uidlist *ul, struct arca_err *err)
{
	const uint8_t *pos = data, *end = data + len;
	const char *line;
	size_t n;
	int r = mail_next_line(&pos, end, MAILDIR_LINE_MAX, &line, &n);
	if (r <= 0)
		return arca_err_set(err, ARCA_EFORMAT,
				    "dovecot-uidlist: empty, truncated or bad header line");
	if (n < 2 || line[1] != ' ' || line[0] < '0' || line[0] > '9')
		return arca_err_set(err, ARCA_EFORMAT, "dovecot-uidlist: bad header");
	if (line[0] == '3') {
		ul->version = 3;
		r = parse_header3(ul, line, n, err);
	} else if (line[0] == '1') {
		ul->version = 1;
		r = parse_header1(ul, line, n, err);
	} else {
		return arca_err_set(err, ARCA_EVERSION,
				    "dovecot-uidlist: version %c not supported", line[0]);
	}
	if (r)
		return r;
	for (size_t lineno = 2;; lineno++) {
		r = mail_next_line(&pos, end, MAILDIR_LINE_MAX, &line, &n);
		if (r == 0)
			break;
		if (r < 0)
			return arca_err_set(err, ARCA_EFORMAT,
					    "dovecot-uidlist line %zu: truncated, too long or bad bytes",
					    lineno);
		r = parse_record(ul, line, n, lineno, err);
		if (r)
			return r;
	}
	if (ul->index != NULL) {
		if (index_update(ul) != 0)
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		if (has_duplicate(ul))
			return arca_err_set(err, ARCA_EFORMAT,
					    "dovecot-uidlist: a file name appears twice");
	}
	return 0;
}

int uidlist_parse(const uint8_t *data, size_t len, struct uidlist *out,
		  struct arca_err *err)
{
	uidlist_init(out);
	int rc = parse(data, len, out, err);
	if (rc)
		uidlist_release(out);
	return rc;
}

int uidlist_format(const struct uidlist *ul, struct abuf *out)
{
	abuf_reset(out);
	size_t glen = strnlen(ul->guid, sizeof(ul->guid));
	if (ul->uidvalidity == 0 || (glen != 0 && glen != 32))
		return ARCA_EINVAL;
	for (size_t k = 0; k < glen; k++) {
		char c = ul->guid[k];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return ARCA_EINVAL;
	}
	const char *extra = ul->header_extra ? ul->header_extra : "";
	/* Extra fields must read back as extra fields: single spaces, none
	 * starting with V, N or G, no line breaks. */
	for (const char *p = extra; *p != '\0'; p++) {
		bool start = p == extra || p[-1] == ' ';
		if (*p == '\n' || *p == '\r' || (start && (*p == 'V' || *p == 'N' ||
							      *p == 'G' || *p == ' ')))
			return ARCA_EINVAL;
		if (p[1] == '\0' && *p == ' ')
			return ARCA_EINVAL;
	}
	int rc = index_update(ul);
	if (rc)
		return rc;
	if (has_duplicate(ul))
		return ARCA_EINVAL;
	rc = abuf_printf(out, "3 V%u N%u", ul->uidvalidity, uidlist_next_uid(ul));
	if (rc == 0 && glen)
		rc = abuf_printf(out, " G%s", ul->guid);
	if (rc == 0 && *extra)
		rc = abuf_printf(out, " %s", extra);
	if (rc == 0)
		rc = abuf_add_u8(out, '\n');
	for (size_t i = 0; i < ul->count && rc == 0; i++) {
		const struct uidlist_rec *r = &ul->recs[i];
		rc = abuf_printf(out, "%u%s%s :%s%s\n", r->uid, *r->ext ? " " : "", r->ext,
				 r->base, r->info);
	}
	return rc;
}
