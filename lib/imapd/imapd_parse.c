/*
 * imapd_parse.c - the IMAP command parser (see imapd_parse.h).
 *
 * A recursive-descent parser over one whole command with a cursor; every
 * production checks the byte it needs and fails with a fixed message.  No
 * recursion is unbounded (IMAPD_DEPTH_MAX, IMAPD_SEARCH_DEPTH_MAX) and no
 * allocation escapes the per-command arena (IMAPD_ARENA_MAX).
 */
#include <limits.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arca_err.h"
#include "imapd_parse.h"
#include "vault_view.h"
#include "banned.h"

/* ---- arena --------------------------------------------------------------- */

struct imapd_arena_block {
	struct imapd_arena_block *next;
	size_t used, cap;
	max_align_t data[];
};

#define ARENA_BLOCK 16384

struct P {
	const char *s;
	size_t len, pos;
	struct imapd_cmd *c;
	int rc;                       /* first failure */
	unsigned nkeys;               /* search keys so far */
};

static int fail(struct P *p, int rc, const char *why)
{
	if (p->rc == 0) {
		p->rc = rc;
		p->c->error = why;
	}
	return -1;
}

static void *ar_alloc(struct P *p, size_t n)
{
	struct imapd_cmd *c = p->c;
	n = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
	if (n == 0)
		n = alignof(max_align_t);
	struct imapd_arena_block *b = c->arena;
	if (b == NULL || b->cap - b->used < n) {
		size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
		if (cap > IMAPD_ARENA_MAX || c->arena_total + cap > IMAPD_ARENA_MAX) {
			fail(p, ARCA_ELIMIT, "Command too large.");
			return NULL;
		}
		b = malloc(sizeof(*b) + cap);
		if (b == NULL) {
			fail(p, ARCA_ENOMEM, "Out of memory.");
			return NULL;
		}
		b->next = c->arena;
		b->used = 0;
		b->cap = cap;
		c->arena = b;
		c->arena_total += cap;
	}
	void *r = (char *)b->data + b->used;
	b->used += n;
	memset(r, 0, n);
	return r;
}

static char *ar_strndup(struct P *p, const char *s, size_t n)
{
	char *r = ar_alloc(p, n + 1);
	if (r == NULL)
		return NULL;
	memcpy(r, s, n);
	r[n] = '\0';
	return r;
}

void imapd_cmd_release(struct imapd_cmd *c)
{
	struct imapd_arena_block *b = c->arena;
	while (b != NULL) {
		struct imapd_arena_block *n = b->next;
		free(b);
		b = n;
	}
	memset(c, 0, sizeof(*c));
}

/* ---- characters ---------------------------------------------------------- */

static int peek(const struct P *p)
{
	return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

static bool at_end(const struct P *p)
{
	return p->pos >= p->len;
}

/* RFC 3501 ATOM-CHAR: CHAR (0x01-0x7f) except atom-specials:
 * ( ) { SP CTL % * " \ ] */
static bool is_atom_char(int ch)
{
	if (ch <= 0x20 || ch >= 0x7f)
		return false;
	switch (ch) {
	case '(': case ')': case '{': case '%': case '*': case '"': case '\\': case ']':
		return false;
	}
	return true;
}

static bool is_astring_char(int ch)
{
	return ch == ']' || is_atom_char(ch);
}

static bool is_list_char(int ch)
{
	return ch == '%' || ch == '*' || is_astring_char(ch);
}

static int up(int ch)
{
	return ch >= 'a' && ch <= 'z' ? ch - 32 : ch;
}

static int p_sp(struct P *p)
{
	if (peek(p) != ' ')
		return fail(p, ARCA_EFORMAT, "Expected a space.");
	p->pos++;
	return 0;
}

static int p_char(struct P *p, int ch, const char *why)
{
	if (peek(p) != ch)
		return fail(p, ARCA_EFORMAT, why);
	p->pos++;
	return 0;
}

/* Is the next word (case-insensitively) `w`, followed by a byte not in
 * [A-Za-z0-9.-]?  Consumes it if so. */
static bool p_word(struct P *p, const char *w)
{
	size_t n = strlen(w);
	if (p->len - p->pos < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (up((unsigned char)p->s[p->pos + i]) != w[i])
			return false;
	if (p->pos + n < p->len) {
		int ch = (unsigned char)p->s[p->pos + n];
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_')
			return false;
	}
	p->pos += n;
	return true;
}

/* ---- numbers ------------------------------------------------------------- */

static int p_number64(struct P *p, uint64_t max, uint64_t *v_r)
{
	uint64_t v = 0;
	size_t start = p->pos;
	while (!at_end(p) && peek(p) >= '0' && peek(p) <= '9') {
		unsigned d = (unsigned)(peek(p) - '0');
		if (v > (max - d) / 10)
			return fail(p, ARCA_EFORMAT, "Number too large.");
		v = v * 10 + d;
		p->pos++;
	}
	if (p->pos == start)
		return fail(p, ARCA_EFORMAT, "Expected a number.");
	*v_r = v;
	return 0;
}

static int p_number32(struct P *p, uint32_t *v_r)
{
	uint64_t v;
	if (p_number64(p, UINT32_MAX, &v))
		return -1;
	*v_r = (uint32_t)v;
	return 0;
}

static int p_nz32(struct P *p, uint32_t *v_r)
{
	if (p_number32(p, v_r))
		return -1;
	if (*v_r == 0)
		return fail(p, ARCA_EFORMAT, "Expected a non-zero number.");
	return 0;
}

/* RFC 7162 mod-sequence-value: at most 2^63 - 1 */
static int p_modseq(struct P *p, uint64_t *v_r)
{
	return p_number64(p, (uint64_t)INT64_MAX, v_r);
}

/* ---- strings ------------------------------------------------------------- */

static int p_quoted(struct P *p, const char **s_r, size_t *n_r)
{
	if (p_char(p, '"', "Expected a quoted string."))
		return -1;
	/* the decoded string is never longer than the encoded one */
	size_t start = p->pos, n = 0;
	while (!at_end(p) && peek(p) != '"') {
		if (peek(p) == '\\')
			p->pos++;
		p->pos++;
	}
	if (at_end(p))
		return fail(p, ARCA_EFORMAT, "Unterminated quoted string.");
	char *out = ar_alloc(p, p->pos - start + 1);
	if (out == NULL)
		return -1;
	for (size_t i = start; i < p->pos; i++) {
		unsigned char ch = (unsigned char)p->s[i];
		if (ch == '\\') {
			ch = (unsigned char)p->s[++i];
			if (ch != '\\' && ch != '"')
				return fail(p, ARCA_EFORMAT, "Invalid escape in quoted string.");
		} else if (ch == '\0' || ch == '\r' || ch == '\n') {
			return fail(p, ARCA_EFORMAT, "Invalid character in quoted string.");
		}
		out[n++] = (char)ch;
	}
	out[n] = '\0';
	p->pos++;             /* the closing quote */
	*s_r = out;
	if (n_r)
		*n_r = n;
	return 0;
}

static int p_literal(struct P *p, const char **s_r, size_t *n_r)
{
	uint64_t n;
	if (p_char(p, '{', "Expected a literal."))
		return -1;
	if (p_number64(p, UINT64_MAX / 2, &n))
		return -1;
	if (peek(p) == '+')
		p->pos++;
	if (p_char(p, '}', "Invalid literal.") ||
	    p_char(p, '\r', "Literal must end its line.") ||
	    p_char(p, '\n', "Literal must end its line."))
		return -1;
	if (n > IMAPD_LITERAL_MAX)
		return fail(p, ARCA_ELIMIT, "Literal too large.");
	if (p->len - p->pos < n)
		return fail(p, ARCA_EFORMAT, "Literal shorter than announced.");
	if (memchr(p->s + p->pos, '\0', (size_t)n) != NULL)
		return fail(p, ARCA_EFORMAT, "NUL in literal.");
	char *out = ar_strndup(p, p->s + p->pos, (size_t)n);
	if (out == NULL)
		return -1;
	p->pos += (size_t)n;
	*s_r = out;
	if (n_r)
		*n_r = (size_t)n;
	return 0;
}

static int p_string(struct P *p, const char **s_r, size_t *n_r)
{
	if (peek(p) == '"')
		return p_quoted(p, s_r, n_r);
	if (peek(p) == '{')
		return p_literal(p, s_r, n_r);
	return fail(p, ARCA_EFORMAT, "Expected a string.");
}

static int p_span(struct P *p, bool (*ok)(int), const char **s_r, size_t *n_r,
		  const char *why)
{
	size_t start = p->pos;
	while (!at_end(p) && ok(peek(p)))
		p->pos++;
	if (p->pos == start)
		return fail(p, ARCA_EFORMAT, why);
	char *s = ar_strndup(p, p->s + start, p->pos - start);
	if (s == NULL)
		return -1;
	*s_r = s;
	if (n_r)
		*n_r = p->pos - start;
	return 0;
}

static int p_atom(struct P *p, const char **s_r)
{
	return p_span(p, is_atom_char, s_r, NULL, "Expected an atom.");
}

static int p_astring(struct P *p, const char **s_r, size_t *n_r)
{
	if (peek(p) == '"' || peek(p) == '{')
		return p_string(p, s_r, n_r);
	return p_span(p, is_astring_char, s_r, n_r, "Expected a string or atom.");
}

static int p_nstring(struct P *p, const char **s_r)
{
	if (p_word(p, "NIL")) {
		*s_r = NULL;
		return 0;
	}
	return p_string(p, s_r, NULL);
}

static int p_list_mailbox(struct P *p, const char **s_r)
{
	if (peek(p) == '"' || peek(p) == '{')
		return p_string(p, s_r, NULL);
	return p_span(p, is_list_char, s_r, NULL, "Expected a mailbox pattern.");
}

/* ---- sequence sets ------------------------------------------------------- */

static int p_seqnum(struct P *p, uint32_t *v_r)
{
	if (peek(p) == '*') {
		p->pos++;
		*v_r = 0;
		return 0;
	}
	if (peek(p) < '0' || peek(p) > '9')
		return fail(p, ARCA_EFORMAT, "Invalid sequence set.");
	if (p_number32(p, v_r))
		return -1;
	if (*v_r == 0)
		return fail(p, ARCA_EFORMAT, "Invalid sequence set: 0.");
	return 0;
}

static int p_seqset(struct P *p, struct imapd_seqset *set)
{
	size_t n = 1;
	for (size_t i = p->pos; i < p->len; i++) {
		char ch = p->s[i];
		if (ch == ',')
			n++;
		else if (!((ch >= '0' && ch <= '9') || ch == ':' || ch == '*'))
			break;
	}
	if (n > IMAPD_SEQ_RANGES_MAX)
		return fail(p, ARCA_ELIMIT, "Too many ranges in sequence set.");
	set->r = ar_alloc(p, n * sizeof(*set->r));
	if (set->r == NULL)
		return -1;
	set->n = 0;
	for (;;) {
		struct imapd_range *r = &set->r[set->n++];
		if (p_seqnum(p, &r->lo))
			return -1;
		r->hi = r->lo;
		if (peek(p) == ':') {
			p->pos++;
			if (p_seqnum(p, &r->hi))
				return -1;
		}
		if (peek(p) != ',')
			break;
		p->pos++;
	}
	return 0;
}

/* ---- generic arguments (for the commands that are refused anyway) ------- */

static bool is_generic_char(int ch)
{
	return ch > 0x20 && ch < 0x7f && ch != '(' && ch != ')' && ch != '"' && ch != '{';
}

static int p_generic(struct P *p, unsigned depth);

static int p_generic_list(struct P *p, unsigned depth)
{
	if (depth >= IMAPD_DEPTH_MAX)
		return fail(p, ARCA_ELIMIT, "Too deeply nested.");
	p->pos++;     /* ( */
	if (peek(p) == ')') {
		p->pos++;
		return 0;
	}
	for (;;) {
		if (p_generic(p, depth + 1))
			return -1;
		if (peek(p) == ')') {
			p->pos++;
			return 0;
		}
		if (p_sp(p))
			return -1;
	}
}

static int p_generic(struct P *p, unsigned depth)
{
	const char *s;
	switch (peek(p)) {
	case '(':
		return p_generic_list(p, depth);
	case '"':
	case '{':
		return p_string(p, &s, NULL);
	}
	size_t start = p->pos;
	while (!at_end(p) && is_generic_char(peek(p))) {
		if (peek(p) == '[') {
			/* BODY[HEADER.FIELDS (A B)]: brackets hold spaces and parens */
			while (!at_end(p) && peek(p) != ']') {
				if (peek(p) < 0x20 || peek(p) >= 0x7f)
					return fail(p, ARCA_EFORMAT, "Invalid character.");
				p->pos++;
			}
			if (at_end(p))
				return fail(p, ARCA_EFORMAT, "Missing ].");
		}
		p->pos++;
	}
	if (p->pos == start)
		return fail(p, ARCA_EFORMAT, "Invalid argument.");
	return 0;
}

static int p_generic_rest(struct P *p)
{
	while (!at_end(p)) {
		if (p_sp(p) || p_generic(p, 0))
			return -1;
	}
	return 0;
}

/* ---- FETCH --------------------------------------------------------------- */

static bool is_field_char(int ch)
{
	/* RFC 5322 ftext: printable US-ASCII except ':' */
	return ch > 0x20 && ch < 0x7f && ch != ':';
}

static int p_header_list(struct P *p, struct imapd_section *sec)
{
	const char *tmp[IMAPD_SECTION_FIELDS_MAX];
	size_t n = 0;
	if (p_sp(p) || p_char(p, '(', "Expected ( after HEADER.FIELDS."))
		return -1;
	for (;;) {
		const char *f;
		size_t flen;
		if (n == IMAPD_SECTION_FIELDS_MAX)
			return fail(p, ARCA_ELIMIT, "Too many header fields.");
		if (p_astring(p, &f, &flen))
			return -1;
		if (flen == 0)
			return fail(p, ARCA_EFORMAT, "Empty header field name.");
		for (size_t i = 0; i < flen; i++)
			if (!is_field_char((unsigned char)f[i]))
				return fail(p, ARCA_EFORMAT, "Invalid header field name.");
		tmp[n++] = f;
		if (peek(p) == ')') {
			p->pos++;
			break;
		}
		if (p_sp(p))
			return -1;
	}
	sec->fields = ar_alloc(p, n * sizeof(char *));
	if (sec->fields == NULL)
		return -1;
	memcpy(sec->fields, tmp, n * sizeof(char *));
	sec->nfields = n;
	return 0;
}

static int p_section_text(struct P *p, struct imapd_section *sec, bool allow_mime)
{
	if (p_word(p, "HEADER.FIELDS.NOT")) {
		sec->kind = IMAPD_SECTION_HEADER_FIELDS_NOT;
		return p_header_list(p, sec);
	}
	if (p_word(p, "HEADER.FIELDS")) {
		sec->kind = IMAPD_SECTION_HEADER_FIELDS;
		return p_header_list(p, sec);
	}
	if (p_word(p, "HEADER")) {
		sec->kind = IMAPD_SECTION_HEADER;
		return 0;
	}
	if (p_word(p, "TEXT")) {
		sec->kind = IMAPD_SECTION_TEXT;
		return 0;
	}
	if (allow_mime && p_word(p, "MIME")) {
		sec->kind = IMAPD_SECTION_MIME;
		return 0;
	}
	return fail(p, ARCA_EFORMAT, "Invalid section.");
}

/* After "BODY[" or "BODY.PEEK[": section-spec "]" ["<" number "." nz-number ">"] */
static int p_section(struct P *p, struct imapd_fetch_att *a)
{
	struct imapd_section *sec = &a->section;
	sec->kind = IMAPD_SECTION_ALL;
	if (peek(p) >= '0' && peek(p) <= '9') {
		for (;;) {
			if (sec->nparts == IMAPD_MIME_DEPTH_MAX)
				return fail(p, ARCA_ELIMIT, "Section nested too deeply.");
			if (p_nz32(p, &sec->part[sec->nparts++]))
				return -1;
			if (peek(p) != '.')
				break;
			p->pos++;
			if (peek(p) >= '0' && peek(p) <= '9')
				continue;
			if (p_section_text(p, sec, true))
				return -1;
			break;
		}
	} else if (peek(p) != ']') {
		if (p_section_text(p, sec, false))
			return -1;
	}
	if (p_char(p, ']', "Expected ] after section."))
		return -1;
	if (peek(p) == '<') {
		p->pos++;
		a->partial = true;
		if (p_number32(p, &a->offset) || p_char(p, '.', "Expected . in partial.") ||
		    p_nz32(p, &a->count) || p_char(p, '>', "Expected > after partial."))
			return -1;
	}
	return 0;
}

static struct imapd_fetch_att *add_att(struct P *p, enum imapd_fetch_kind k)
{
	struct imapd_cmd *c = p->c;
	if (c->natts == IMAPD_FETCH_ATTS_MAX) {
		fail(p, ARCA_ELIMIT, "Too many fetch attributes.");
		return NULL;
	}
	struct imapd_fetch_att *a = &c->atts[c->natts++];
	memset(a, 0, sizeof(*a));
	a->kind = k;
	return a;
}

static int p_fetch_att(struct P *p)
{
	static const struct {
		const char *w;
		enum imapd_fetch_kind k;
	} simple[] = {
		/* longer names first: p_word wants the whole word anyway */
		{ "ENVELOPE", IMAPD_FA_ENVELOPE },
		{ "FLAGS", IMAPD_FA_FLAGS },
		{ "INTERNALDATE", IMAPD_FA_INTERNALDATE },
		{ "RFC822.HEADER", IMAPD_FA_RFC822_HEADER },
		{ "RFC822.SIZE", IMAPD_FA_RFC822_SIZE },
		{ "RFC822.TEXT", IMAPD_FA_RFC822_TEXT },
		{ "RFC822", IMAPD_FA_RFC822 },
		{ "BODYSTRUCTURE", IMAPD_FA_BODYSTRUCTURE },
		{ "UID", IMAPD_FA_UID },
		{ "MODSEQ", IMAPD_FA_MODSEQ },
	};
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
		if (p_word(p, simple[i].w))
			return add_att(p, simple[i].k) ? 0 : -1;
	/* BODY.PEEK[ and BODY[ are followed by '[', which p_word accepts */
	bool peekflag = false;
	if (p->len - p->pos >= 10 && strncasecmp(p->s + p->pos, "BODY.PEEK[", 10) == 0) {
		p->pos += 10;
		peekflag = true;
	} else if (p->len - p->pos >= 5 && strncasecmp(p->s + p->pos, "BODY[", 5) == 0) {
		p->pos += 5;
	} else if (p_word(p, "BODY")) {
		return add_att(p, IMAPD_FA_BODY) ? 0 : -1;
	} else {
		return fail(p, ARCA_EFORMAT, "Invalid fetch attribute.");
	}
	struct imapd_fetch_att *a = add_att(p, IMAPD_FA_BODY_SECTION);
	if (a == NULL)
		return -1;
	a->peek = peekflag;
	return p_section(p, a);
}

static int add_macro(struct P *p, const enum imapd_fetch_kind *k, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (add_att(p, k[i]) == NULL)
			return -1;
	return 0;
}

static int p_fetch(struct P *p)
{
	static const enum imapd_fetch_kind fast[] = {
		IMAPD_FA_FLAGS, IMAPD_FA_INTERNALDATE, IMAPD_FA_RFC822_SIZE,
	};
	static const enum imapd_fetch_kind all[] = {
		IMAPD_FA_FLAGS, IMAPD_FA_INTERNALDATE, IMAPD_FA_RFC822_SIZE, IMAPD_FA_ENVELOPE,
	};
	static const enum imapd_fetch_kind full[] = {
		IMAPD_FA_FLAGS, IMAPD_FA_INTERNALDATE, IMAPD_FA_RFC822_SIZE, IMAPD_FA_ENVELOPE,
		IMAPD_FA_BODY,
	};
	struct imapd_cmd *c = p->c;
	if (p_sp(p) || p_seqset(p, &c->set) || p_sp(p))
		return -1;
	c->atts = ar_alloc(p, IMAPD_FETCH_ATTS_MAX * sizeof(*c->atts));
	if (c->atts == NULL)
		return -1;
	if (p_word(p, "ALL")) {
		if (add_macro(p, all, sizeof(all) / sizeof(all[0])))
			return -1;
	} else if (p_word(p, "FAST")) {
		if (add_macro(p, fast, sizeof(fast) / sizeof(fast[0])))
			return -1;
	} else if (p_word(p, "FULL")) {
		if (add_macro(p, full, sizeof(full) / sizeof(full[0])))
			return -1;
	} else if (peek(p) == '(') {
		p->pos++;
		for (;;) {
			if (p_fetch_att(p))
				return -1;
			if (peek(p) == ')') {
				p->pos++;
				break;
			}
			if (p_sp(p))
				return -1;
		}
	} else if (p_fetch_att(p)) {
		return -1;
	}
	if (peek(p) == ' ') {
		p->pos++;
		if (p_char(p, '(', "Expected ( before fetch modifiers."))
			return -1;
		unsigned n = 0;
		for (;;) {
			if (++n > IMAPD_ITEMS_MAX)
				return fail(p, ARCA_ELIMIT, "Too many fetch modifiers.");
			if (p_word(p, "CHANGEDSINCE")) {
				if (p_sp(p) || p_modseq(p, &c->changedsince))
					return -1;
				c->changedsince_given = true;
			} else if (p_word(p, "VANISHED")) {
				c->vanished = true;
			} else {
				return fail(p, ARCA_EFORMAT, "Unknown fetch modifier.");
			}
			if (peek(p) == ')') {
				p->pos++;
				break;
			}
			if (p_sp(p))
				return -1;
		}
		/* RFC 7162 3.2.6 */
		if (c->vanished && (!c->uid || !c->changedsince_given))
			return fail(p, ARCA_EFORMAT,
				    "VANISHED needs UID FETCH and CHANGEDSINCE.");
	}
	return 0;
}

/* ---- STORE --------------------------------------------------------------- */

/* One flag of a STORE: a system flag's bit, or a keyword (an atom) added
 * to the command's list unless named already.  \Recent can't be stored
 * (RFC 3501 2.3.2); other \-flags are no flags this server keeps. */
static int p_store_flag(struct P *p)
{
	struct imapd_cmd *c = p->c;
	static const struct { const char *w; uint32_t bit; } sys[] = {
		{ "\\SEEN", VV_SEEN }, { "\\ANSWERED", VV_ANSWERED }, { "\\FLAGGED", VV_FLAGGED },
		{ "\\DELETED", VV_DELETED }, { "\\DRAFT", VV_DRAFT },
	};
	if (peek(p) == '\\') {
		for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
			if (p_word(p, sys[i].w)) {
				c->store_flags |= sys[i].bit;
				return 0;
			}
		return fail(p, ARCA_EFORMAT, "Unknown system flag.");
	}
	const char *kw;
	size_t n;
	if (p_span(p, is_atom_char, &kw, &n, "Expected a flag."))
		return -1;
	if (n > IMAPD_KEYWORD_MAX)
		return fail(p, ARCA_ELIMIT, "Keyword too long.");
	for (size_t i = 0; i < c->nstore_keywords; i++)
		if (strcasecmp(c->store_keywords[i], kw) == 0)
			return 0;
	if (c->nstore_keywords == IMAPD_STORE_KEYWORDS_MAX)
		return fail(p, ARCA_ELIMIT, "Too many keywords.");
	if (c->store_keywords == NULL &&
	    (c->store_keywords = ar_alloc(p, IMAPD_STORE_KEYWORDS_MAX * sizeof(char *))) == NULL)
		return -1;
	c->store_keywords[c->nstore_keywords++] = kw;
	return 0;
}

/* STORE set [SP "(" UNCHANGEDSINCE n ")"] SP ["+"/"-"] FLAGS[.SILENT] SP
 * (flag-list / flag *(SP flag))   (RFC 3501 6.4.6, RFC 7162 3.1.3) */
static int p_store(struct P *p)
{
	struct imapd_cmd *c = p->c;
	if (p_sp(p) || p_seqset(p, &c->set) || p_sp(p))
		return -1;
	if (peek(p) == '(') {
		p->pos++;
		if (!p_word(p, "UNCHANGEDSINCE"))
			return fail(p, ARCA_EFORMAT, "Unknown store modifier.");
		if (p_sp(p) || p_modseq(p, &c->unchangedsince) || p_char(p, ')', "Expected ')'.") ||
		    p_sp(p))
			return -1;
		c->unchangedsince_given = true;
	}
	if (peek(p) == '+' || peek(p) == '-') {
		c->store_mode = peek(p) == '+' ? 1 : -1;
		p->pos++;
	}
	if (p_word(p, "FLAGS.SILENT"))
		c->store_silent = true;
	else if (!p_word(p, "FLAGS"))
		return fail(p, ARCA_EFORMAT, "Expected FLAGS, +FLAGS or -FLAGS.");
	if (p_sp(p))
		return -1;
	if (peek(p) == '(') {
		p->pos++;
		if (peek(p) == ')') {
			p->pos++;
			return 0;
		}
		for (;;) {
			if (p_store_flag(p))
				return -1;
			if (peek(p) == ')') {
				p->pos++;
				return 0;
			}
			if (p_sp(p))
				return -1;
		}
	}
	for (;;) {
		if (p_store_flag(p))
			return -1;
		if (at_end(p))
			return 0;
		if (p_sp(p))
			return -1;
	}
}

/* ---- SEARCH -------------------------------------------------------------- */

int64_t imapd_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	/* Howard Hinnant's days_from_civil */
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (int64_t)(m > 2 ? m - 3 : m + 9) + 2) / 5 + (int64_t)d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static const char *const months[12] = {
	"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
};

/* date = date-text / DQUOTE date-text DQUOTE; date-text = 1*2DIGIT "-" Mon "-" 4DIGIT */
static int p_date(struct P *p, int64_t *days_r)
{
	bool quoted = peek(p) == '"';
	if (quoted)
		p->pos++;
	uint32_t d = 0, y = 0;
	size_t start = p->pos;
	while (peek(p) >= '0' && peek(p) <= '9' && p->pos - start < 2)
		d = d * 10 + (uint32_t)(p->s[p->pos++] - '0');
	if (p->pos == start || p_char(p, '-', "Invalid date."))
		return fail(p, ARCA_EFORMAT, "Invalid date.");
	if (p->len - p->pos < 3)
		return fail(p, ARCA_EFORMAT, "Invalid date.");
	unsigned mon = 0;
	for (unsigned i = 0; i < 12; i++)
		if (up((unsigned char)p->s[p->pos]) == months[i][0] &&
		    up((unsigned char)p->s[p->pos + 1]) == months[i][1] &&
		    up((unsigned char)p->s[p->pos + 2]) == months[i][2])
			mon = i + 1;
	if (mon == 0)
		return fail(p, ARCA_EFORMAT, "Invalid date.");
	p->pos += 3;
	if (p_char(p, '-', "Invalid date."))
		return -1;
	for (int i = 0; i < 4; i++) {
		if (peek(p) < '0' || peek(p) > '9')
			return fail(p, ARCA_EFORMAT, "Invalid date.");
		y = y * 10 + (uint32_t)(p->s[p->pos++] - '0');
	}
	if (quoted && p_char(p, '"', "Invalid date."))
		return -1;
	static const unsigned mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (d < 1 || d > mdays[mon - 1])
		return fail(p, ARCA_EFORMAT, "Invalid date.");
	*days_r = imapd_days_from_civil(y, mon, d);
	return 0;
}

static struct imapd_search_key *new_key(struct P *p, enum imapd_search_op op)
{
	if (++p->nkeys > IMAPD_SEARCH_KEYS_MAX) {
		fail(p, ARCA_ELIMIT, "Too many search keys.");
		return NULL;
	}
	struct imapd_search_key *k = ar_alloc(p, sizeof(*k));
	if (k != NULL)
		k->op = op;
	return k;
}

static struct imapd_search_key *p_search_key(struct P *p, unsigned depth);

/* key *(SP key) until ')' (in_list) or the end of the command */
static int p_search_keys(struct P *p, struct imapd_search_key *and, unsigned depth, bool in_list)
{
	struct imapd_search_key **tail = &and->child;
	for (;;) {
		struct imapd_search_key *k = p_search_key(p, depth);
		if (k == NULL)
			return -1;
		*tail = k;
		tail = &k->next;
		if (in_list && peek(p) == ')') {
			p->pos++;
			return 0;
		}
		if (!in_list && at_end(p))
			return 0;
		if (p_sp(p))
			return -1;
	}
}

static struct imapd_search_key *p_search_key(struct P *p, unsigned depth)
{
	static const struct {
		const char *w;
		enum imapd_search_op op;
		uint32_t flags;
	} flagkeys[] = {
		{ "ANSWERED", IMAPD_SK_FLAG, VV_ANSWERED },
		{ "DELETED", IMAPD_SK_FLAG, VV_DELETED },
		{ "DRAFT", IMAPD_SK_FLAG, VV_DRAFT },
		{ "FLAGGED", IMAPD_SK_FLAG, VV_FLAGGED },
		{ "SEEN", IMAPD_SK_FLAG, VV_SEEN },
		{ "UNANSWERED", IMAPD_SK_UNFLAG, VV_ANSWERED },
		{ "UNDELETED", IMAPD_SK_UNFLAG, VV_DELETED },
		{ "UNDRAFT", IMAPD_SK_UNFLAG, VV_DRAFT },
		{ "UNFLAGGED", IMAPD_SK_UNFLAG, VV_FLAGGED },
		{ "UNSEEN", IMAPD_SK_UNFLAG, VV_SEEN },
		{ "ALL", IMAPD_SK_ALL, 0 },
		{ "NEW", IMAPD_SK_NEW, 0 },
		{ "OLD", IMAPD_SK_OLD, 0 },
		{ "RECENT", IMAPD_SK_RECENT, 0 },
	};
	static const struct {
		const char *w;
		const char *field;    /* NULL: BODY / TEXT */
		enum imapd_search_op op;
	} strkeys[] = {
		{ "BCC", "Bcc", IMAPD_SK_HEADER },
		{ "CC", "Cc", IMAPD_SK_HEADER },
		{ "FROM", "From", IMAPD_SK_HEADER },
		{ "SUBJECT", "Subject", IMAPD_SK_HEADER },
		{ "TO", "To", IMAPD_SK_HEADER },
		{ "BODY", NULL, IMAPD_SK_BODY },
		{ "TEXT", NULL, IMAPD_SK_TEXT },
		{ "KEYWORD", NULL, IMAPD_SK_KEYWORD },
		{ "UNKEYWORD", NULL, IMAPD_SK_UNKEYWORD },
	};
	static const struct {
		const char *w;
		enum imapd_search_op op;
	} datekeys[] = {
		{ "BEFORE", IMAPD_SK_BEFORE }, { "ON", IMAPD_SK_ON }, { "SINCE", IMAPD_SK_SINCE },
		{ "SENTBEFORE", IMAPD_SK_SENTBEFORE }, { "SENTON", IMAPD_SK_SENTON },
		{ "SENTSINCE", IMAPD_SK_SENTSINCE },
	};
	struct imapd_search_key *k;

	if (depth >= IMAPD_SEARCH_DEPTH_MAX) {
		fail(p, ARCA_ELIMIT, "Search keys nested too deeply.");
		return NULL;
	}
	int ch = peek(p);
	if (ch == '(') {
		p->pos++;
		if ((k = new_key(p, IMAPD_SK_AND)) == NULL ||
		    p_search_keys(p, k, depth + 1, true))
			return NULL;
		return k;
	}
	if ((ch >= '0' && ch <= '9') || ch == '*') {
		if ((k = new_key(p, IMAPD_SK_SEQSET)) == NULL || p_seqset(p, &k->set))
			return NULL;
		return k;
	}
	for (size_t i = 0; i < sizeof(flagkeys) / sizeof(flagkeys[0]); i++) {
		if (p_word(p, flagkeys[i].w)) {
			if ((k = new_key(p, flagkeys[i].op)) != NULL)
				k->flags = flagkeys[i].flags;
			return k;
		}
	}
	for (size_t i = 0; i < sizeof(strkeys) / sizeof(strkeys[0]); i++) {
		if (p_word(p, strkeys[i].w)) {
			if ((k = new_key(p, strkeys[i].op)) == NULL || p_sp(p))
				return NULL;
			k->field = strkeys[i].field;
			if (k->op == IMAPD_SK_KEYWORD || k->op == IMAPD_SK_UNKEYWORD) {
				if (peek(p) == '\\') {
					/* KEYWORD \Seen: a system flag, which is
					 * no keyword (never matches, as Dovecot) */
					p->pos++;
					const char *s;
					if (p_atom(p, &s))
						return NULL;
					k->str = "\\";
					return k;
				}
				if (p_atom(p, &k->str))
					return NULL;
			} else if (p_astring(p, &k->str, NULL)) {
				return NULL;
			}
			return k;
		}
	}
	for (size_t i = 0; i < sizeof(datekeys) / sizeof(datekeys[0]); i++) {
		if (p_word(p, datekeys[i].w)) {
			if ((k = new_key(p, datekeys[i].op)) == NULL || p_sp(p) ||
			    p_date(p, &k->date))
				return NULL;
			return k;
		}
	}
	if (p_word(p, "HEADER")) {
		const char *f;
		size_t flen;
		if ((k = new_key(p, IMAPD_SK_HEADER)) == NULL || p_sp(p) ||
		    p_astring(p, &f, &flen) || p_sp(p) || p_astring(p, &k->str, NULL))
			return NULL;
		for (size_t i = 0; i < flen; i++) {
			if (!is_field_char((unsigned char)f[i])) {
				fail(p, ARCA_EFORMAT, "Invalid header field name.");
				return NULL;
			}
		}
		k->field = f;
		return k;
	}
	bool larger = p_word(p, "LARGER");
	if (larger || p_word(p, "SMALLER")) {
		if ((k = new_key(p, larger ? IMAPD_SK_LARGER : IMAPD_SK_SMALLER)) == NULL ||
		    p_sp(p) || p_number64(p, UINT32_MAX, &k->num))
			return NULL;
		return k;
	}
	if (p_word(p, "UID")) {
		if ((k = new_key(p, IMAPD_SK_UIDSET)) == NULL || p_sp(p) ||
		    p_seqset(p, &k->set))
			return NULL;
		return k;
	}
	if (p_word(p, "NOT")) {
		if ((k = new_key(p, IMAPD_SK_NOT)) == NULL || p_sp(p) ||
		    (k->child = p_search_key(p, depth + 1)) == NULL)
			return NULL;
		return k;
	}
	if (p_word(p, "OR")) {
		if ((k = new_key(p, IMAPD_SK_OR)) == NULL || p_sp(p) ||
		    (k->child = p_search_key(p, depth + 1)) == NULL || p_sp(p) ||
		    (k->child->next = p_search_key(p, depth + 1)) == NULL)
			return NULL;
		return k;
	}
	if (p_word(p, "MODSEQ")) {
		if ((k = new_key(p, IMAPD_SK_MODSEQ)) == NULL || p_sp(p))
			return NULL;
		if (peek(p) == '"') {
			/* entry-name SP entry-type-req: one MODSEQ per message
			 * here, so the entry only has to be well-formed */
			const char *entry;
			if (p_quoted(p, &entry, NULL) || p_sp(p))
				return NULL;
			if (!p_word(p, "PRIV") && !p_word(p, "SHARED") && !p_word(p, "ALL")) {
				fail(p, ARCA_EFORMAT, "Invalid MODSEQ entry type.");
				return NULL;
			}
			if (p_sp(p))
				return NULL;
		}
		if (p_modseq(p, &k->num))
			return NULL;
		p->c->search_modseq = true;
		return k;
	}
	fail(p, ARCA_EFORMAT, "Unknown search key.");
	return NULL;
}

static int p_search(struct P *p)
{
	struct imapd_cmd *c = p->c;
	if (p_sp(p))
		return -1;
	if (p_word(p, "RETURN")) {
		c->esearch = true;
		if (p_sp(p) || p_char(p, '(', "Expected ( after RETURN."))
			return -1;
		while (peek(p) != ')') {
			if (p_word(p, "MIN"))
				c->search_return |= IMAPD_SR_MIN;
			else if (p_word(p, "MAX"))
				c->search_return |= IMAPD_SR_MAX;
			else if (p_word(p, "ALL"))
				c->search_return |= IMAPD_SR_ALL;
			else if (p_word(p, "COUNT"))
				c->search_return |= IMAPD_SR_COUNT;
			else
				return fail(p, ARCA_EFORMAT, "Unknown search return option.");
			if (peek(p) == ' ')
				p->pos++;
			else if (peek(p) != ')')
				return fail(p, ARCA_EFORMAT, "Expected ) after return options.");
		}
		p->pos++;
		if (c->search_return == 0)
			c->search_return = IMAPD_SR_ALL;   /* RFC 4731: RETURN () */
		if (p_sp(p))
			return -1;
	}
	if (p_word(p, "CHARSET")) {
		if (p_sp(p) || p_astring(p, &c->search_charset, NULL) || p_sp(p))
			return -1;
	}
	c->search = new_key(p, IMAPD_SK_AND);
	if (c->search == NULL)
		return -1;
	return p_search_keys(p, c->search, 0, false);
}

/* ---- LIST, STATUS, SELECT ------------------------------------------------ */

static int p_status_items(struct P *p, uint32_t *items)
{
	if (p_char(p, '(', "Expected ( before status items."))
		return -1;
	unsigned n = 0;
	for (;;) {
		if (++n > IMAPD_ITEMS_MAX)
			return fail(p, ARCA_ELIMIT, "Too many status items.");
		if (p_word(p, "MESSAGES"))
			*items |= IMAPD_ST_MESSAGES;
		else if (p_word(p, "RECENT"))
			*items |= IMAPD_ST_RECENT;
		else if (p_word(p, "UIDNEXT"))
			*items |= IMAPD_ST_UIDNEXT;
		else if (p_word(p, "UIDVALIDITY"))
			*items |= IMAPD_ST_UIDVALIDITY;
		else if (p_word(p, "UNSEEN"))
			*items |= IMAPD_ST_UNSEEN;
		else if (p_word(p, "HIGHESTMODSEQ"))
			*items |= IMAPD_ST_HIGHESTMODSEQ;
		else
			return fail(p, ARCA_EFORMAT, "Unknown status item.");
		if (peek(p) == ')') {
			p->pos++;
			return 0;
		}
		if (p_sp(p))
			return -1;
	}
}

static int p_status(struct P *p)
{
	struct imapd_cmd *c = p->c;
	if (p_sp(p) || p_astring(p, &c->a1, NULL) || p_sp(p))
		return -1;
	return p_status_items(p, &c->status_items);
}

static int p_list(struct P *p, bool lsub)
{
	struct imapd_cmd *c = p->c;
	if (p_sp(p))
		return -1;
	if (!lsub && peek(p) == '(') {
		c->list_extended = true;
		p->pos++;
		unsigned n = 0;
		while (peek(p) != ')') {
			if (++n > IMAPD_ITEMS_MAX)
				return fail(p, ARCA_ELIMIT, "Too many selection options.");
			if (p_word(p, "SUBSCRIBED"))
				c->list_select |= IMAPD_LS_SUBSCRIBED;
			else if (p_word(p, "REMOTE"))
				c->list_select |= IMAPD_LS_REMOTE;
			else if (p_word(p, "RECURSIVEMATCH"))
				c->list_select |= IMAPD_LS_RECURSIVEMATCH;
			else if (p_word(p, "SPECIAL-USE"))
				c->list_select |= IMAPD_LS_SPECIAL_USE;
			else
				return fail(p, ARCA_EFORMAT, "Unknown list selection option.");
			if (peek(p) == ' ')
				p->pos++;
			else if (peek(p) != ')')
				return fail(p, ARCA_EFORMAT, "Expected ) after selection options.");
		}
		p->pos++;
		/* RFC 5258 3.1: RECURSIVEMATCH only modifies another option */
		if ((c->list_select & IMAPD_LS_RECURSIVEMATCH) &&
		    !(c->list_select & (IMAPD_LS_SUBSCRIBED | IMAPD_LS_SPECIAL_USE)))
			return fail(p, ARCA_EFORMAT, "RECURSIVEMATCH needs another option.");
		if (p_sp(p))
			return -1;
	}
	if (p_astring(p, &c->a1, NULL) || p_sp(p))
		return -1;
	c->strs = ar_alloc(p, IMAPD_PATTERNS_MAX * sizeof(char *));
	if (c->strs == NULL)
		return -1;
	if (!lsub && peek(p) == '(') {
		c->list_extended = true;
		p->pos++;
		for (;;) {
			if (c->nstrs == IMAPD_PATTERNS_MAX)
				return fail(p, ARCA_ELIMIT, "Too many patterns.");
			if (p_list_mailbox(p, &c->strs[c->nstrs++]))
				return -1;
			if (peek(p) == ')') {
				p->pos++;
				break;
			}
			if (p_sp(p))
				return -1;
		}
	} else if (p_list_mailbox(p, &c->strs[c->nstrs++])) {
		return -1;
	}
	if (!lsub && peek(p) == ' ') {
		p->pos++;
		if (!p_word(p, "RETURN"))
			return fail(p, ARCA_EFORMAT, "Expected RETURN.");
		c->list_extended = true;
		if (p_sp(p) || p_char(p, '(', "Expected ( after RETURN."))
			return -1;
		unsigned n = 0;
		while (peek(p) != ')') {
			if (++n > IMAPD_ITEMS_MAX)
				return fail(p, ARCA_ELIMIT, "Too many return options.");
			if (p_word(p, "SUBSCRIBED")) {
				c->list_return |= IMAPD_LR_SUBSCRIBED;
			} else if (p_word(p, "CHILDREN")) {
				c->list_return |= IMAPD_LR_CHILDREN;
			} else if (p_word(p, "SPECIAL-USE")) {
				c->list_return |= IMAPD_LR_SPECIAL_USE;
			} else if (p_word(p, "STATUS")) {
				c->list_return |= IMAPD_LR_STATUS;
				if (p_sp(p) || p_status_items(p, &c->status_items))
					return -1;
			} else {
				return fail(p, ARCA_EFORMAT, "Unknown list return option.");
			}
			if (peek(p) == ' ')
				p->pos++;
			else if (peek(p) != ')')
				return fail(p, ARCA_EFORMAT, "Expected ) after return options.");
		}
		p->pos++;
	}
	return 0;
}

static int p_select(struct P *p)
{
	struct imapd_cmd *c = p->c;
	if (p_sp(p) || p_astring(p, &c->a1, NULL))
		return -1;
	if (at_end(p))
		return 0;
	if (p_sp(p) || p_char(p, '(', "Expected ( before select parameters."))
		return -1;
	unsigned n = 0;
	while (peek(p) != ')') {
		if (++n > IMAPD_ITEMS_MAX)
			return fail(p, ARCA_ELIMIT, "Too many select parameters.");
		if (p_word(p, "CONDSTORE")) {
			c->condstore = true;
		} else if (p_word(p, "QRESYNC")) {
			if (c->qresync)
				return fail(p, ARCA_EFORMAT, "QRESYNC given twice.");
			c->qresync = true;
			if (p_sp(p) || p_char(p, '(', "Expected ( after QRESYNC.") ||
			    p_nz32(p, &c->qr_uidvalidity) || p_sp(p) ||
			    p_modseq(p, &c->qr_modseq))
				return -1;
			if (peek(p) == ' ') {
				p->pos++;
				if (peek(p) != '(' && p_seqset(p, &c->qr_known_uids))
					return -1;
				if (c->qr_known_uids.n > 0 && peek(p) == ' ')
					p->pos++;
				if (peek(p) == '(') {
					p->pos++;
					if (p_seqset(p, &c->qr_seq_match) || p_sp(p) ||
					    p_seqset(p, &c->qr_uid_match) ||
					    p_char(p, ')', "Expected ) after sequence match data."))
						return -1;
				}
			}
			if (p_char(p, ')', "Expected ) after QRESYNC parameters."))
				return -1;
		} else {
			return fail(p, ARCA_EFORMAT, "Unknown select parameter.");
		}
		if (peek(p) == ' ')
			p->pos++;
		else if (peek(p) != ')')
			return fail(p, ARCA_EFORMAT, "Expected ) after select parameters.");
	}
	p->pos++;
	return 0;
}

/* ---- the other commands --------------------------------------------------- */

static int p_id(struct P *p)
{
	struct imapd_cmd *c = p->c;
	if (p_sp(p))
		return -1;
	if (p_word(p, "NIL"))
		return 0;
	if (p_char(p, '(', "Expected ( or NIL."))
		return -1;
	c->strs = ar_alloc(p, 2 * IMAPD_ID_PAIRS_MAX * sizeof(char *));
	if (c->strs == NULL)
		return -1;
	while (peek(p) != ')') {
		if (c->nstrs == 2 * IMAPD_ID_PAIRS_MAX)
			return fail(p, ARCA_ELIMIT, "Too many ID fields.");
		if (p_string(p, &c->strs[c->nstrs++], NULL) || p_sp(p) ||
		    p_nstring(p, &c->strs[c->nstrs++]))
			return -1;
		if (peek(p) == ' ')
			p->pos++;
		else if (peek(p) != ')')
			return fail(p, ARCA_EFORMAT, "Expected ) after ID fields.");
	}
	p->pos++;
	return 0;
}

static int p_enable(struct P *p)
{
	struct imapd_cmd *c = p->c;
	c->strs = ar_alloc(p, IMAPD_ITEMS_MAX * sizeof(char *));
	if (c->strs == NULL)
		return -1;
	do {
		if (c->nstrs == IMAPD_ITEMS_MAX)
			return fail(p, ARCA_ELIMIT, "Too many capabilities.");
		if (p_sp(p) || p_atom(p, &c->strs[c->nstrs++]))
			return -1;
	} while (!at_end(p));
	return 0;
}

static bool is_base64_char(int ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	       (ch >= '0' && ch <= '9') || ch == '+' || ch == '/' || ch == '=';
}

static int p_authenticate(struct P *p)
{
	struct imapd_cmd *c = p->c;
	if (p_sp(p) || p_atom(p, &c->a1))
		return -1;
	if (peek(p) == ' ') {
		p->pos++;
		if (p_span(p, is_base64_char, &c->a2, &c->a2_len, "Invalid initial response."))
			return -1;
	}
	return 0;
}

/* name, kind, state-independent argument parser */
enum argform {
	ARGS_NONE, ARGS_MAILBOX, ARGS_TWO_MAILBOXES, ARGS_GENERIC, ARGS_SET_GENERIC,
	ARGS_SET_MAILBOX, ARGS_SPECIAL,
};

static const struct cmddef {
	const char *name;
	enum imapd_cmd_kind kind;
	enum argform args;
	bool uid_ok;
} cmds[] = {
	{ "CAPABILITY", IMAPD_CMD_CAPABILITY, ARGS_NONE, false },
	{ "NOOP", IMAPD_CMD_NOOP, ARGS_NONE, false },
	{ "LOGOUT", IMAPD_CMD_LOGOUT, ARGS_NONE, false },
	{ "ID", IMAPD_CMD_ID, ARGS_SPECIAL, false },
	{ "STARTTLS", IMAPD_CMD_STARTTLS, ARGS_NONE, false },
	{ "AUTHENTICATE", IMAPD_CMD_AUTHENTICATE, ARGS_SPECIAL, false },
	{ "LOGIN", IMAPD_CMD_LOGIN, ARGS_SPECIAL, false },
	{ "ENABLE", IMAPD_CMD_ENABLE, ARGS_SPECIAL, false },
	{ "NAMESPACE", IMAPD_CMD_NAMESPACE, ARGS_NONE, false },
	{ "IDLE", IMAPD_CMD_IDLE, ARGS_NONE, false },
	{ "SELECT", IMAPD_CMD_SELECT, ARGS_SPECIAL, false },
	{ "EXAMINE", IMAPD_CMD_EXAMINE, ARGS_SPECIAL, false },
	{ "LIST", IMAPD_CMD_LIST, ARGS_SPECIAL, false },
	{ "LSUB", IMAPD_CMD_LSUB, ARGS_SPECIAL, false },
	{ "STATUS", IMAPD_CMD_STATUS, ARGS_SPECIAL, false },
	{ "CREATE", IMAPD_CMD_CREATE, ARGS_GENERIC, false },
	{ "DELETE", IMAPD_CMD_DELETE, ARGS_MAILBOX, false },
	{ "RENAME", IMAPD_CMD_RENAME, ARGS_TWO_MAILBOXES, false },
	{ "SUBSCRIBE", IMAPD_CMD_SUBSCRIBE, ARGS_MAILBOX, false },
	{ "UNSUBSCRIBE", IMAPD_CMD_UNSUBSCRIBE, ARGS_MAILBOX, false },
	{ "APPEND", IMAPD_CMD_APPEND, ARGS_GENERIC, false },
	{ "CHECK", IMAPD_CMD_CHECK, ARGS_NONE, false },
	{ "CLOSE", IMAPD_CMD_CLOSE, ARGS_NONE, false },
	{ "UNSELECT", IMAPD_CMD_UNSELECT, ARGS_NONE, false },
	{ "EXPUNGE", IMAPD_CMD_EXPUNGE, ARGS_NONE, true },
	{ "SEARCH", IMAPD_CMD_SEARCH, ARGS_SPECIAL, true },
	{ "FETCH", IMAPD_CMD_FETCH, ARGS_SPECIAL, true },
	{ "STORE", IMAPD_CMD_STORE, ARGS_SPECIAL, true },
	{ "COPY", IMAPD_CMD_COPY, ARGS_SET_MAILBOX, true },
	{ "MOVE", IMAPD_CMD_MOVE, ARGS_SET_MAILBOX, true },
};

static bool is_tag_char(int ch)
{
	return ch != '+' && is_astring_char(ch);
}

int imapd_peek_tag(const char *buf, size_t len, char *tag)
{
	size_t n = 0;
	while (n < len && is_tag_char((unsigned char)buf[n]))
		n++;
	if (n == 0 || n > IMAPD_TAG_MAX || n >= len || buf[n] != ' ')
		return 0;
	memcpy(tag, buf, n);
	tag[n] = '\0';
	return 1;
}

int imapd_peek_name(const char *buf, size_t len, char *name, size_t size)
{
	char tag[IMAPD_TAG_MAX + 1];
	if (size == 0 || !imapd_peek_tag(buf, len, tag))
		return 0;
	size_t i = strlen(tag) + 1;
	for (int word = 0; word < 2; word++) {
		size_t n = 0;
		while (i < len && n + 1 < size &&
		       ((buf[i] >= 'A' && buf[i] <= 'Z') || (buf[i] >= 'a' && buf[i] <= 'z')))
			name[n++] = (char)up((unsigned char)buf[i++]);
		name[n] = '\0';
		if (n == 0)
			return 0;
		if (word == 0 && strcmp(name, "UID") == 0 && i < len && buf[i] == ' ') {
			i++;
			continue;
		}
		return 1;
	}
	return 1;
}

int imapd_line_literal(const char *line, size_t len, uint64_t *n_r, bool *nonsync_r)
{
	if (len < 3 || line[len - 1] != '}')
		return 0;
	size_t i = len - 1;
	bool nonsync = false;
	if (line[i - 1] == '+') {
		nonsync = true;
		i--;
	}
	size_t end = i;
	while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
		i--;
	if (i == end || i == 0 || line[i - 1] != '{')
		return 0;
	*nonsync_r = nonsync;
	if (end - i > 19) {
		*n_r = UINT64_MAX;
		return ARCA_ELIMIT;
	}
	uint64_t n = 0;
	for (size_t k = i; k < end; k++)
		n = n * 10 + (uint64_t)(line[k] - '0');
	*n_r = n;
	*nonsync_r = nonsync;
	return 1;
}

int imapd_parse(const char *buf, size_t len, struct imapd_cmd *c)
{
	memset(c, 0, sizeof(*c));
	struct P p = { .s = buf, .len = len, .c = c };

	size_t n = 0;
	while (n < len && is_tag_char((unsigned char)buf[n]))
		n++;
	if (n == 0) {
		fail(&p, ARCA_EFORMAT, "Invalid tag.");
		return p.rc;
	}
	if (n > IMAPD_TAG_MAX) {
		fail(&p, ARCA_ELIMIT, "Tag too long.");
		return p.rc;
	}
	c->tag = ar_strndup(&p, buf, n);
	if (c->tag == NULL)
		return p.rc;
	p.pos = n;
	if (p_sp(&p))
		return p.rc;
	size_t start = p.pos;
	while (!at_end(&p) && ((peek(&p) >= 'A' && peek(&p) <= 'Z') ||
			       (peek(&p) >= 'a' && peek(&p) <= 'z')))
		p.pos++;
	if (p.pos == start) {
		fail(&p, ARCA_EFORMAT, "Missing command.");
		return p.rc;
	}
	const char *w = buf + start;
	size_t wl = p.pos - start;
	if (wl == 3 && strncasecmp(w, "UID", 3) == 0) {
		c->uid = true;
		if (p_sp(&p))
			return p.rc;
		start = p.pos;
		while (!at_end(&p) && ((peek(&p) >= 'A' && peek(&p) <= 'Z') ||
				       (peek(&p) >= 'a' && peek(&p) <= 'z')))
			p.pos++;
		w = buf + start;
		wl = p.pos - start;
	}
	c->name = ar_strndup(&p, w, wl);
	if (c->name == NULL)
		return p.rc;
	const struct cmddef *d = NULL;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strlen(cmds[i].name) == wl && strncasecmp(cmds[i].name, w, wl) == 0)
			d = &cmds[i];
	if (d == NULL || (c->uid && !d->uid_ok) ||
	    (!at_end(&p) && peek(&p) != ' ')) {
		fail(&p, ARCA_EFORMAT, "Unknown command.");
		return p.rc;
	}
	c->kind = d->kind;

	int r = 0;
	switch (d->args) {
	case ARGS_NONE:
		/* UID EXPUNGE takes a set */
		if (c->kind == IMAPD_CMD_EXPUNGE && c->uid)
			r = p_sp(&p) || p_seqset(&p, &c->set);
		break;
	case ARGS_MAILBOX:
		r = p_sp(&p) || p_astring(&p, &c->a1, NULL);
		break;
	case ARGS_TWO_MAILBOXES:
		r = p_sp(&p) || p_astring(&p, &c->a1, NULL) || p_sp(&p) ||
		    p_astring(&p, &c->a2, NULL);
		break;
	case ARGS_GENERIC:
		r = at_end(&p) ? fail(&p, ARCA_EFORMAT, "Missing arguments.") : p_generic_rest(&p);
		break;
	case ARGS_SET_GENERIC:
		r = p_sp(&p) || p_seqset(&p, &c->set) ||
		    (at_end(&p) ? fail(&p, ARCA_EFORMAT, "Missing arguments.") : p_generic_rest(&p));
		break;
	case ARGS_SET_MAILBOX:
		r = p_sp(&p) || p_seqset(&p, &c->set) || p_sp(&p) ||
		    p_astring(&p, &c->a1, NULL);
		break;
	case ARGS_SPECIAL:
		switch (c->kind) {
		case IMAPD_CMD_ID: r = p_id(&p); break;
		case IMAPD_CMD_AUTHENTICATE: r = p_authenticate(&p); break;
		case IMAPD_CMD_LOGIN:
			r = p_sp(&p) || p_astring(&p, &c->a1, NULL) || p_sp(&p) ||
			    p_astring(&p, &c->a2, &c->a2_len);
			break;
		case IMAPD_CMD_ENABLE: r = p_enable(&p); break;
		case IMAPD_CMD_SELECT:
		case IMAPD_CMD_EXAMINE: r = p_select(&p); break;
		case IMAPD_CMD_LIST: r = p_list(&p, false); break;
		case IMAPD_CMD_LSUB: r = p_list(&p, true); break;
		case IMAPD_CMD_STATUS: r = p_status(&p); break;
		case IMAPD_CMD_SEARCH: r = p_search(&p); break;
		case IMAPD_CMD_FETCH: r = p_fetch(&p); break;
		case IMAPD_CMD_STORE: r = p_store(&p); break;
		default: r = fail(&p, ARCA_EFORMAT, "Unknown command."); break;
		}
		break;
	}
	if (r == 0 && p.rc == 0 && !at_end(&p))
		fail(&p, ARCA_EFORMAT, "Unexpected characters at end of command.");
	if (p.rc == 0 && r != 0)
		fail(&p, ARCA_EFORMAT, "Syntax error.");
	return p.rc;
}
