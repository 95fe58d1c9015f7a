/*
 * imapd_mime.c - BODYSTRUCTURE, BODY, ENVELOPE and BODY[section] for the
 * read-only IMAP server (docs/protocol/imap-mime.md).
 *
 * What a client compares is what Dovecot sent it before the attack, so the
 * forms follow Dovecot 2.3 (tests/integration/imapd_mime_dovecot.sh fetches
 * the same messages from a real Dovecot and compares byte for byte).
 *
 * Who parses what:
 *  - libetpan parses every header value: Content-Type and
 *    Content-Disposition tokens and parameters (mailmime_parameter_parse,
 *    quoted strings, comments), Content-Language, address lists with groups
 *    (mailimf_address_list_parse).
 *  - This file finds the header/body split and the multipart boundaries
 *    itself instead of calling mailmime_parse: libetpan's tree parser
 *    recurses without a depth limit (a few hundred KiB of nested
 *    message/rfc822 headers overflow the stack), rescans the rest of the
 *    message for every part (quadratic on hostile input), and does not end
 *    a part at an enclosing multipart's boundary as Dovecot does, so its
 *    part offsets differ from what Dovecot served.  Splitting is a line scan
 *    per nesting level: O(size * depth), depth <= IMAPD_MIME_DEPTH_MAX.
 *
 * Offsets are on the bytes given (the served bytes, CRLF line ends); sizes
 * are byte counts of those bytes, lines are LF counts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libetpan/mailimf.h>
#include <libetpan/mailmime.h>

#include "arca_err.h"
#include "buf.h"
#include "imapd_mime.h"
#include "banned.h"

/* At most this many parts in one message (Dovecot 2.3's own default for
 * max_total_mime_parts): past it, boundaries are part of the current
 * part's bytes, as in Dovecot. */
#define MIME_PARTS_MAX 10000

/* A header value handed to libetpan is unfolded into a copy; a longer one
 * is cut (a hostile 100 MB header line must not become a 100 MB copy per
 * part, and no real Content-Type or address list is this long). */
#define MIME_VALUE_MAX (256 * 1024)

enum part_flag {
	PF_MULTIPART = 1 << 0,   /* children are the body parts */
	PF_RFC822 = 1 << 1,      /* children is the one encapsulated message */
	PF_MESSAGE = 1 << 2,     /* a message's own header (root, or inside rfc822) */
	PF_IS_MIME = 1 << 3,     /* Content-* headers count (see part_is_mime) */
	PF_OPAQUE = 1 << 4,      /* composite type not descended into (limits) */
	PF_TEXT = 1 << 5,        /* body-fld-lines is written */
};

/* A header field's value in the message: [off, off+len), CRLFs included. */
struct span {
	size_t off, len;
	bool set;
};

enum cfield {
	CF_TYPE, CF_CTE, CF_ID, CF_DESC, CF_DISP, CF_LANG, CF_LOC, CF_MD5,
	CF_MIME_VERSION, CF_COUNT
};

struct part {
	size_t start;          /* first byte of the header */
	size_t hdr_len;        /* header with its blank line */
	size_t body_len;
	size_t lines;          /* LFs in the body */
	unsigned flags;
	struct part *parent, *children, *next;
	struct part *all_next; /* every allocated part, for freeing */
	struct span f[CF_COUNT];
	/* from Content-Type (libetpan-parsed, owned): NULL when absent or
	 * unparsable; params as mailmime_parameter list */
	char *type, *subtype;
	clist *params;
};

struct imapd_mime {
	const char *msg;
	size_t len;
	struct part *root;
	struct part *all;
	size_t nparts;
};

/* Raw text (abuf_add_str is length-prefixed, for records). */
static int add_str(struct abuf *b, const char *s)
{
	return abuf_add(b, s, strlen(s));
}

/* ---- header lines ---------------------------------------------------- */

/* End of the line starting at pos (index after its LF, or end). */
static size_t line_end(const char *p, size_t pos, size_t end)
{
	const char *lf = memchr(p + pos, '\n', end - pos);
	return lf ? (size_t)(lf - p) + 1 : end;
}

static bool is_blank_line(const char *p, size_t pos, size_t end)
{
	if (pos < end && p[pos] == '\n')
		return true;
	return pos + 1 < end && p[pos] == '\r' && p[pos + 1] == '\n';
}

/* Header length of the entity at [start, end): through the first blank
 * line, or everything when there is none. */
static size_t header_len(const char *p, size_t start, size_t end)
{
	size_t pos = start;
	while (pos < end) {
		if (is_blank_line(p, pos, end))
			return line_end(p, pos, end) - start;
		pos = line_end(p, pos, end);
	}
	return end - start;
}

/* One header field: its lines [start, start+len) with continuation lines,
 * its name [start, start+name_len) (trailing blanks cut), and its value
 * from after the colon and the blanks that follow it to before the final
 * line end. */
struct hfield {
	size_t start, len;
	size_t name_len;
	size_t vstart, vlen;
};

struct hiter {
	const char *p;
	size_t pos, end;       /* end: end of the header (blank line excluded) */
};

static void hiter_init(struct hiter *it, const char *p, size_t start, size_t hdr_len)
{
	it->p = p;
	it->pos = start;
	it->end = start + hdr_len;
	/* the blank line ending the header is no field */
	size_t e = it->end;
	if (e > start && p[e - 1] == '\n') {
		size_t b = e - 1;
		if (b > start && p[b - 1] == '\r')
			b--;
		/* [b, e) is a line end; it's the blank line when it starts a line */
		if (b == start || p[b - 1] == '\n')
			it->end = b;
	}
}

static bool hiter_next(struct hiter *it, struct hfield *f)
{
	const char *p = it->p;
	if (it->pos >= it->end)
		return false;
	size_t s = it->pos, e = line_end(p, s, it->end);
	while (e < it->end && (p[e] == ' ' || p[e] == '\t'))
		e = line_end(p, e, it->end);
	it->pos = e;
	f->start = s;
	f->len = e - s;
	const char *colon = memchr(p + s, ':', e - s);
	size_t first_eol = line_end(p, s, e);
	if (colon == NULL || (size_t)(colon - p) >= first_eol) {
		/* no colon on the field's first line: a name without value */
		size_t n = first_eol - s;
		while (n > 0 && (p[s + n - 1] == '\n' || p[s + n - 1] == '\r'))
			n--;
		f->name_len = n;
		f->vstart = s + n;
		f->vlen = 0;
		return true;
	}
	size_t n = (size_t)(colon - p) - s;
	while (n > 0 && (p[s + n - 1] == ' ' || p[s + n - 1] == '\t'))
		n--;
	f->name_len = n;
	size_t v = (size_t)(colon - p) + 1;
	while (v < e && (p[v] == ' ' || p[v] == '\t'))
		v++;
	size_t ve = e;
	if (ve > v && p[ve - 1] == '\n')
		ve--;
	if (ve > v && p[ve - 1] == '\r')
		ve--;
	f->vstart = v;
	f->vlen = ve > v ? ve - v : 0;
	return true;
}

static bool name_is(const char *p, const struct hfield *f, const char *name)
{
	size_t n = strlen(name);
	return f->name_len == n && strncasecmp(p + f->start, name, n) == 0;
}

/* The value unfolded (CR and LF dropped), NUL-terminated, NULs as 0x80,
 * cut at MIME_VALUE_MAX; caller frees.  NULL on ENOMEM. */
static char *value_dup(const char *p, size_t off, size_t len, size_t *len_r)
{
	if (len > MIME_VALUE_MAX)
		len = MIME_VALUE_MAX;
	char *s = malloc(len + 1);
	if (s == NULL)
		return NULL;
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char c = p[off + i];
		if (c == '\r' || c == '\n')
			continue;
		s[n++] = c == '\0' ? (char)0x80 : c;
	}
	s[n] = '\0';
	if (len_r != NULL)
		*len_r = n;
	return s;
}

/* ---- IMAP strings ----------------------------------------------------- */

/* Dovecot's rule (imap-quote.c): a quoted string unless the text holds CR,
 * LF, 8-bit bytes, or more than 4 quoted-specials; then a literal. */
static int put_string(struct abuf *out, const char *s, size_t n)
{
	unsigned escapes = 0;
	bool literal = false;
	for (size_t i = 0; i < n && !literal; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			if (++escapes > 4)
				literal = true;
		} else if (c == '\r' || c == '\n' || c == 0 || c >= 0x80) {
			literal = true;
		}
	}
	int r;
	if (literal) {
		if ((r = abuf_printf(out, "{%zu}\r\n", n)) < 0)
			return r;
		size_t at = out->len;
		if ((r = abuf_add(out, s, n)) < 0)
			return r;
		for (size_t i = at; i < out->len; i++)
			if (out->data[i] == 0)
				out->data[i] = 0x80;
		return 0;
	}
	if ((r = abuf_reserve(out, n + escapes + 2)) < 0)
		return r;
	out->data[out->len++] = '"';
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			out->data[out->len++] = '\\';
		out->data[out->len++] = (uint8_t)s[i];
	}
	out->data[out->len++] = '"';
	return 0;
}

static int put_cstring(struct abuf *out, const char *s)
{
	return s ? put_string(out, s, strlen(s)) : add_str(out, "NIL");
}

/* Dovecot's imap_append_string_for_humans(): runs of blanks become one
 * space, CR/LF vanish, leading/trailing blanks go, NUL becomes 0x80;
 * written as a literal whenever anything changed (or 8-bit/specials). */
static int put_human(struct abuf *out, const char *s, size_t n)
{
	bool modify = false, last_lwsp = true, ws_prefix = true;
	size_t remove = 0, i;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case 0:
			last_lwsp = false;
			modify = true;
			break;
		case '\t':
			modify = true;
			/* fall through */
		case ' ':
			if (last_lwsp) {
				modify = true;
				remove++;
			}
			last_lwsp = true;
			break;
		case '\r':
		case '\n':
			remove++;
			modify = true;
			break;
		case '"':
		case '\\':
			modify = true;
			last_lwsp = false;
			break;
		default:
			if (c & 0x80)
				modify = true;
			last_lwsp = false;
			break;
		}
		if (!last_lwsp)
			ws_prefix = false;
	}
	if (last_lwsp && i > 0 && !ws_prefix) {
		modify = true;
		remove++;
	}
	int r;
	if (!modify) {
		if ((r = abuf_add_u8(out, '"')) < 0 || (r = abuf_add(out, s, n)) < 0)
			return r;
		return abuf_add_u8(out, '"');
	}
	if (n == remove)
		return add_str(out, "\"\"");
	if ((r = abuf_printf(out, "{%zu}\r\n", n - remove)) < 0)
		return r;
	/* +1: a trailing blank is written, then taken back below */
	if ((r = abuf_reserve(out, n - remove + 1)) < 0)
		return r;
	size_t at = out->len;
	last_lwsp = true;
	ws_prefix = true;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case 0:
			out->data[out->len++] = 0x80;
			last_lwsp = false;
			break;
		case '\t':
		case ' ':
			if (!last_lwsp)
				out->data[out->len++] = ' ';
			last_lwsp = true;
			break;
		case '\r':
		case '\n':
			break;
		default:
			last_lwsp = false;
			out->data[out->len++] = c;
			break;
		}
		if (!last_lwsp)
			ws_prefix = false;
	}
	if (last_lwsp && i > 0 && !ws_prefix)
		out->len--;
	/* the count above and the bytes written agree by construction; a
	 * mismatch would corrupt the IMAP stream, so check it */
	if (out->len - at != n - remove)
		return ARCA_EFORMAT;
	return 0;
}

/* A header value as an nstring: unfolded (CR/LF dropped); NIL if absent. */
static int put_value(struct abuf *out, const struct imapd_mime *m, const struct span *sp)
{
	if (!sp->set)
		return add_str(out, "NIL");
	size_t n;
	char *v = value_dup(m->msg, sp->off, sp->len, &n);
	if (v == NULL)
		return ARCA_ENOMEM;
	int r = put_string(out, v, n);
	free(v);
	return r;
}

/* ---- parameters (Content-Type, Content-Disposition) ------------------- */

static void free_params(clist *l)
{
	if (l == NULL)
		return;
	for (clistiter *it = clist_begin(l); it; it = clist_next(it))
		mailmime_parameter_free(clist_content(it));
	clist_free(l);
}

/* "token [/ token] *(; parameter)" with libetpan's token and parameter
 * parsers.  The tokens keep their case (Dovecot sends them as written).
 * Returns 0 (tokens NULL when the value doesn't start with a token), or
 * ARCA_ENOMEM. */
static int parse_token_params(const char *v, size_t n, bool with_subtype,
			      char **type_r, char **subtype_r, clist **params_r)
{
	size_t i = 0;
	*type_r = NULL;
	if (subtype_r)
		*subtype_r = NULL;
	*params_r = NULL;
	mailimf_cfws_parse(v, n, &i);
	char *type = NULL, *sub = NULL;
	int r = mailmime_extension_token_parse(v, n, &i, &type);
	if (r == MAILIMF_ERROR_MEMORY)
		return ARCA_ENOMEM;
	if (r != MAILIMF_NO_ERROR)
		return 0;
	if (with_subtype) {
		size_t j = i;
		if (mailimf_unstrict_char_parse(v, n, &j, '/') == MAILIMF_NO_ERROR) {
			mailimf_cfws_parse(v, n, &j);
			r = mailmime_extension_token_parse(v, n, &j, &sub);
			if (r == MAILIMF_ERROR_MEMORY) {
				free(type);
				return ARCA_ENOMEM;
			}
			if (r == MAILIMF_NO_ERROR)
				i = j;
		}
	}
	clist *l = clist_new();
	if (l == NULL) {
		free(type);
		free(sub);
		return ARCA_ENOMEM;
	}
	for (;;) {
		size_t j = i;
		if (mailimf_unstrict_char_parse(v, n, &j, ';') != MAILIMF_NO_ERROR)
			break;
		mailimf_cfws_parse(v, n, &j);
		struct mailmime_parameter *pa = NULL;
		r = mailmime_parameter_parse(v, n, &j, &pa);
		if (r == MAILIMF_ERROR_MEMORY) {
			free(type);
			free(sub);
			free_params(l);
			return ARCA_ENOMEM;
		}
		if (r != MAILIMF_NO_ERROR) {
			/* an empty parameter (";;", or a trailing ";"): go on */
			i = j;
			continue;
		}
		if (clist_append(l, pa) < 0) {
			mailmime_parameter_free(pa);
			free(type);
			free(sub);
			free_params(l);
			return ARCA_ENOMEM;
		}
		i = j;
	}
	*type_r = type;
	if (subtype_r)
		*subtype_r = sub;
	else
		free(sub);
	*params_r = l;
	return 0;
}

static const char *param_get(clist *l, const char *name)
{
	if (l == NULL)
		return NULL;
	for (clistiter *it = clist_begin(l); it; it = clist_next(it)) {
		struct mailmime_parameter *pa = clist_content(it);
		if (pa->pa_name && strcasecmp(pa->pa_name, name) == 0)
			return pa->pa_value;
	}
	return NULL;
}

/* ("name" "value" ...) or NIL; a text part without a charset gets
 * Dovecot's ("charset" "us-ascii") default. */
static int put_params(struct abuf *out, clist *l, bool default_charset)
{
	int r;
	bool any = false, charset = false;
	if (l != NULL) {
		for (clistiter *it = clist_begin(l); it; it = clist_next(it)) {
			struct mailmime_parameter *pa = clist_content(it);
			if (pa->pa_name == NULL || pa->pa_value == NULL)
				continue;
			if (strcasecmp(pa->pa_name, "charset") == 0)
				charset = true;
			if ((r = add_str(out, any ? " " : "(")) < 0 ||
			    (r = put_cstring(out, pa->pa_name)) < 0 ||
			    (r = abuf_add_u8(out, ' ')) < 0 ||
			    (r = put_cstring(out, pa->pa_value)) < 0)
				return r;
			any = true;
		}
	}
	if (default_charset && !charset) {
		if ((r = add_str(out, any ? " " : "(")) < 0 ||
		    (r = add_str(out, "\"charset\" \"us-ascii\"")) < 0)
			return r;
		any = true;
	}
	return add_str(out, any ? ")" : "NIL");
}

/* ---- the part tree ---------------------------------------------------- */

static struct part *part_new(struct imapd_mime *m, struct part *parent, size_t start)
{
	struct part *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->start = start;
	p->parent = parent;
	p->all_next = m->all;
	m->all = p;
	m->nparts++;
	return p;
}

static size_t count_lf(const char *p, size_t len)
{
	size_t n = 0;
	const char *e = p + len;
	while (p < e && (p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
		n++;
		p++;
	}
	return n;
}

/* Remember the first Content-* fields (Dovecot keeps the first of each). */
static void collect_fields(struct imapd_mime *m, struct part *p)
{
	static const char *const names[CF_COUNT] = {
		"Content-Type", "Content-Transfer-Encoding", "Content-ID",
		"Content-Description", "Content-Disposition", "Content-Language",
		"Content-Location", "Content-MD5", "MIME-Version",
	};
	struct hiter it;
	struct hfield f;
	hiter_init(&it, m->msg, p->start, p->hdr_len);
	while (hiter_next(&it, &f)) {
		if (f.name_len < 8)
			continue;
		for (int i = 0; i < CF_COUNT; i++) {
			if (!p->f[i].set && name_is(m->msg, &f, names[i])) {
				p->f[i].off = f.vstart;
				p->f[i].len = f.vlen;
				p->f[i].set = true;
				break;
			}
		}
	}
}

/* Does the part's Content-* count?  In a message's own header only with a
 * MIME-Version or a Content-Type field (Dovecot's MESSAGE_PART_FLAG_IS_MIME:
 * corpus mail with "Content-Type: text/plain; encoding=utf-8" and no
 * MIME-Version is sent with its parameter, one with only
 * "Content-Transfer-Encoding: 8BIT" as "7bit"); in a body part always. */
static bool part_is_mime(const struct part *p)
{
	if (p->flags & PF_MESSAGE)
		return p->f[CF_MIME_VERSION].set || p->f[CF_TYPE].set;
	return true;
}

static int parse_entity(struct imapd_mime *m, struct part *parent, size_t start,
			size_t end, unsigned depth, bool is_message, bool digest_child,
			struct part **r_part);

/* Split the multipart body of p on its boundary (Dovecot's rules: a
 * boundary line is one starting with "--boundary"; the line end before it
 * belongs to the boundary; "--boundary--" ends the parts; text before the
 * first boundary and after the last is the preamble/epilogue, no part). */
static int split_multipart(struct imapd_mime *m, struct part *p, const char *boundary,
			   unsigned depth, bool digest)
{
	const char *s = m->msg;
	size_t blen = strlen(boundary);
	size_t bs = p->start + p->hdr_len, be = bs + p->body_len;
	size_t pos = bs, part_start = 0;
	bool in_part = false;
	struct part **tail = &p->children;

	while (pos < be) {
		size_t le = line_end(s, pos, be);
		if (le - pos >= 2 + blen && s[pos] == '-' && s[pos + 1] == '-' &&
		    memcmp(s + pos + 2, boundary, blen) == 0) {
			if (in_part) {
				size_t pe = pos;
				if (pe > part_start && s[pe - 1] == '\n')
					pe--;
				if (pe > part_start && s[pe - 1] == '\r')
					pe--;
				struct part *c;
				int r = parse_entity(m, p, part_start, pe, depth + 1,
						     false, digest, &c);
				if (r < 0)
					return r;
				*tail = c;
				tail = &c->next;
				in_part = false;
			}
			bool close = le - pos >= 4 + blen && s[pos + 2 + blen] == '-' &&
				     s[pos + 3 + blen] == '-';
			if (close)
				return 0;
			if (m->nparts >= MIME_PARTS_MAX) {
				/* no more parts: the rest is the last one's */
				break;
			}
			part_start = le;
			in_part = true;
		}
		pos = le;
	}
	if (in_part) {
		struct part *c;
		int r = parse_entity(m, p, part_start, be, depth + 1, false, digest, &c);
		if (r < 0)
			return r;
		*tail = c;
	}
	return 0;
}

static int parse_entity(struct imapd_mime *m, struct part *parent, size_t start,
			size_t end, unsigned depth, bool is_message, bool digest_child,
			struct part **r_part)
{
	struct part *p = part_new(m, parent, start);
	if (p == NULL)
		return ARCA_ENOMEM;
	*r_part = p;
	if (is_message)
		p->flags |= PF_MESSAGE;
	p->hdr_len = header_len(m->msg, start, end);
	p->body_len = end - start - p->hdr_len;
	p->lines = count_lf(m->msg + start + p->hdr_len, p->body_len);
	collect_fields(m, p);
	if (part_is_mime(p))
		p->flags |= PF_IS_MIME;

	if ((p->flags & PF_IS_MIME) && p->f[CF_TYPE].set) {
		size_t n;
		char *v = value_dup(m->msg, p->f[CF_TYPE].off, p->f[CF_TYPE].len, &n);
		if (v == NULL)
			return ARCA_ENOMEM;
		int r = parse_token_params(v, n, true, &p->type, &p->subtype, &p->params);
		free(v);
		if (r < 0)
			return r;
	}

	bool multipart = p->type && strcasecmp(p->type, "multipart") == 0;
	bool rfc822 = p->type ? (strcasecmp(p->type, "message") == 0 && p->subtype &&
				 strcasecmp(p->subtype, "rfc822") == 0)
			      : digest_child;
	bool room = depth < IMAPD_MIME_DEPTH_MAX && m->nparts < MIME_PARTS_MAX;

	if (multipart) {
		/* without a boundary, or past the limits, a multipart has no
		 * parts: Dovecot writes it as one empty text/plain part */
		p->flags |= PF_MULTIPART;
		const char *b = param_get(p->params, "boundary");
		if (b != NULL && *b != '\0' && room) {
			bool digest = p->subtype && strcasecmp(p->subtype, "digest") == 0;
			int r = split_multipart(m, p, b, depth, digest);
			if (r < 0)
				return r;
		}
	} else if (rfc822) {
		if (!room) {
			p->flags |= PF_OPAQUE;
		} else {
			p->flags |= PF_RFC822;
			size_t bs = start + p->hdr_len;
			int r = parse_entity(m, p, bs, bs + p->body_len, depth + 1, true,
					     false, &p->children);
			if (r < 0)
				return r;
		}
	} else if (p->type == NULL || strcasecmp(p->type, "text") == 0) {
		p->flags |= PF_TEXT;
	}
	return 0;
}

int imapd_mime_parse(const char *msg, size_t len, struct imapd_mime **m_r)
{
	*m_r = NULL;
	struct imapd_mime *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return ARCA_ENOMEM;
	m->msg = msg;
	m->len = len;
	int r = parse_entity(m, NULL, 0, len, 0, true, false, &m->root);
	if (r < 0) {
		imapd_mime_free(m);
		return r;
	}
	*m_r = m;
	return 0;
}

void imapd_mime_free(struct imapd_mime *m)
{
	if (m == NULL)
		return;
	struct part *p = m->all;
	while (p != NULL) {
		struct part *n = p->all_next;
		free(p->type);
		free(p->subtype);
		free_params(p->params);
		free(p);
		p = n;
	}
	free(m);
}

/* ---- ENVELOPE --------------------------------------------------------- */

enum efield {
	EF_DATE, EF_SUBJECT, EF_FROM, EF_SENDER, EF_REPLY_TO, EF_TO, EF_CC, EF_BCC,
	EF_IN_REPLY_TO, EF_MESSAGE_ID, EF_COUNT
};

/* "addr@host (Real Name)": libetpan drops the comment, Dovecot sends it
 * as the name when there is no phrase.  Finds the addr-spec in the raw
 * value from *cursor on and returns the comment right after it (without
 * its parentheses), or NULL. */
static char *trailing_comment(const char *v, size_t n, size_t *cursor, const char *spec)
{
	size_t sl = strlen(spec);
	if (sl == 0 || *cursor >= n)
		return NULL;
	const char *hit = memmem(v + *cursor, n - *cursor, spec, sl);
	if (hit == NULL)
		return NULL;
	size_t i = (size_t)(hit - v) + sl;
	*cursor = i;
	if (i < n && v[i] == '>')
		return NULL;          /* <addr> form: libetpan had the phrase */
	while (i < n && (v[i] == ' ' || v[i] == '\t'))
		i++;
	if (i >= n || v[i] != '(')
		return NULL;
	size_t start = ++i;
	int level = 1;
	for (; i < n; i++) {
		if (v[i] == '\\' && i + 1 < n)
			i++;
		else if (v[i] == '(')
			level++;
		else if (v[i] == ')' && --level == 0)
			break;
	}
	if (level != 0)
		return NULL;
	*cursor = i + 1;
	return strndup(v + start, i - start);
}

/* One address (name adl mailbox host) from libetpan's mailbox. */
static int put_mailbox(struct abuf *out, const struct mailimf_mailbox *mb, const char *v,
		       size_t n, size_t *cursor)
{
	int r;
	const char *spec = mb->mb_addr_spec ? mb->mb_addr_spec : "";
	if ((r = abuf_add_u8(out, '(')) < 0)
		return r;
	if (mb->mb_display_name != NULL && *mb->mb_display_name != '\0') {
		r = put_human(out, mb->mb_display_name, strlen(mb->mb_display_name));
	} else {
		char *c = trailing_comment(v, n, cursor, spec);
		if (c != NULL && *c != '\0')
			r = put_human(out, c, strlen(c));
		else
			r = add_str(out, "NIL");
		free(c);
	}
	if (r < 0 || (r = add_str(out, " NIL ")) < 0)
		return r;
	const char *at = strrchr(spec, '@');
	if (at == NULL) {
		/* Dovecot fills a missing domain so clients see an address */
		if ((r = put_string(out, spec, strlen(spec))) < 0 ||
		    (r = add_str(out, " \"MISSING_DOMAIN\"")) < 0)
			return r;
	} else {
		if ((r = put_string(out, spec, (size_t)(at - spec))) < 0 ||
		    (r = abuf_add_u8(out, ' ')) < 0 ||
		    (r = put_string(out, at + 1, strlen(at + 1))) < 0)
			return r;
	}
	return abuf_add_u8(out, ')');
}

/* Appends the addresses of one field's value; *any_r set when it had one. */
static int add_addresses(struct abuf *out, const struct imapd_mime *m, const struct span *sp,
			 bool *any_r)
{
	size_t n;
	char *v = value_dup(m->msg, sp->off, sp->len, &n);
	if (v == NULL)
		return ARCA_ENOMEM;
	size_t i = 0, cursor = 0;
	struct mailimf_address_list *al = NULL;
	int r = mailimf_address_list_parse(v, n, &i, &al);
	if (r == MAILIMF_ERROR_MEMORY) {
		free(v);
		return ARCA_ENOMEM;
	}
	if (r != MAILIMF_NO_ERROR || al == NULL || clist_count(al->ad_list) == 0) {
		if (al)
			mailimf_address_list_free(al);
		free(v);
		return 0;
	}
	r = 0;
	if (!*any_r)
		r = abuf_add_u8(out, '(');
	*any_r = true;
	for (clistiter *it = clist_begin(al->ad_list); it && r >= 0; it = clist_next(it)) {
		struct mailimf_address *a = clist_content(it);
		if (a->ad_type == MAILIMF_ADDRESS_MAILBOX) {
			if (a->ad_data.ad_mailbox)
				r = put_mailbox(out, a->ad_data.ad_mailbox, v, n, &cursor);
			continue;
		}
		struct mailimf_group *g = a->ad_data.ad_group;
		if (g == NULL)
			continue;
		/* RFC 3501: (NIL NIL "name" NIL) members (NIL NIL NIL NIL) */
		if ((r = add_str(out, "(NIL NIL ")) < 0 ||
		    (r = put_cstring(out, g->grp_display_name ? g->grp_display_name : "")) < 0 ||
		    (r = add_str(out, " NIL)")) < 0)
			break;
		if (g->grp_mb_list != NULL) {
			for (clistiter *mi = clist_begin(g->grp_mb_list->mb_list); mi && r >= 0;
			     mi = clist_next(mi))
				r = put_mailbox(out, clist_content(mi), v, n, &cursor);
		}
		if (r >= 0)
			r = add_str(out, "(NIL NIL NIL NIL)");
	}
	mailimf_address_list_free(al);
	free(v);
	return r;
}

/* An address field of the envelope: the addresses of every field of that
 * name, in order (Dovecot joins repeated Cc: fields, seen in corpus
 * mail), or NIL; *present_r says whether the field occurs at all. */
static int put_address_field(struct abuf *out, const struct imapd_mime *m, const struct part *p,
			     const char *name, bool *present_r)
{
	struct hiter it;
	struct hfield hf;
	bool any = false;
	int r;
	*present_r = false;
	hiter_init(&it, m->msg, p->start, p->hdr_len);
	while (hiter_next(&it, &hf)) {
		if (!name_is(m->msg, &hf, name))
			continue;
		*present_r = true;
		struct span sp = { hf.vstart, hf.vlen, true };
		if ((r = add_addresses(out, m, &sp, &any)) < 0)
			return r;
	}
	return add_str(out, any ? ")" : "NIL");
}

static int put_subject(struct abuf *out, const struct imapd_mime *m, const struct span *sp)
{
	if (!sp->set)
		return add_str(out, "NIL");
	/* raw bytes (CR/LF handled by put_human) */
	return put_human(out, m->msg + sp->off, sp->len);
}

/* The envelope of the message whose header is p's. */
static int put_envelope(struct abuf *out, const struct imapd_mime *m, const struct part *p)
{
	static const char *const names[EF_COUNT] = {
		"Date", "Subject", NULL, NULL, NULL, NULL, NULL, NULL,
		"In-Reply-To", "Message-ID",
	};
	struct span f[EF_COUNT];
	memset(f, 0, sizeof(f));
	struct hiter it;
	struct hfield hf;
	hiter_init(&it, m->msg, p->start, p->hdr_len);
	while (hiter_next(&it, &hf)) {
		if (hf.name_len < 4 || hf.name_len > 11)
			continue;
		for (int i = 0; i < EF_COUNT; i++) {
			/* the last of repeated fields counts (as in Dovecot) */
			if (names[i] && name_is(m->msg, &hf, names[i])) {
				f[i].off = hf.vstart;
				f[i].len = hf.vlen;
				f[i].set = true;
				break;
			}
		}
	}
	int r;
	bool present;
	if ((r = put_value(out, m, &f[EF_DATE])) < 0 ||
	    (r = abuf_add_u8(out, ' ')) < 0 ||
	    (r = put_subject(out, m, &f[EF_SUBJECT])) < 0)
		return r;
	/* From, then Sender and Reply-To (each From's when absent) */
	size_t from_at = out->len + 1;
	if ((r = abuf_add_u8(out, ' ')) < 0 ||
	    (r = put_address_field(out, m, p, "From", &present)) < 0)
		return r;
	size_t from_len = out->len - from_at;
	static const char *const more[] = { "Sender", "Reply-To" };
	for (int i = 0; i < 2; i++) {
		size_t at = out->len;
		if ((r = abuf_add_u8(out, ' ')) < 0 ||
		    (r = put_address_field(out, m, p, more[i], &present)) < 0)
			return r;
		/* a field that is there but holds no address counts as absent */
		if (out->len - at == 4 && memcmp(out->data + at, " NIL", 4) == 0) {
			out->len = at + 1;
			if ((r = abuf_reserve(out, from_len)) < 0)
				return r;
			memcpy(out->data + out->len, out->data + from_at, from_len);
			out->len += from_len;
		}
	}
	static const char *const rcpt[] = { "To", "Cc", "Bcc" };
	for (int i = 0; i < 3; i++)
		if ((r = abuf_add_u8(out, ' ')) < 0 ||
		    (r = put_address_field(out, m, p, rcpt[i], &present)) < 0)
			return r;
	if ((r = abuf_add_u8(out, ' ')) < 0 ||
	    (r = put_value(out, m, &f[EF_IN_REPLY_TO])) < 0 ||
	    (r = abuf_add_u8(out, ' ')) < 0 ||
	    (r = put_value(out, m, &f[EF_MESSAGE_ID])) < 0)
		return r;
	return 0;
}

int imapd_mime_envelope(const struct imapd_mime *m, struct abuf *out)
{
	size_t at = out->len;
	int r;
	if ((r = abuf_add_u8(out, '(')) < 0 || (r = put_envelope(out, m, m->root)) < 0 ||
	    (r = abuf_add_u8(out, ')')) < 0) {
		out->len = at;
		return r;
	}
	return 0;
}

/* ---- BODYSTRUCTURE ---------------------------------------------------- */

static int put_disposition(struct abuf *out, const struct imapd_mime *m, const struct part *p)
{
	if (!(p->flags & PF_IS_MIME) || !p->f[CF_DISP].set)
		return add_str(out, "NIL");
	size_t n;
	char *v = value_dup(m->msg, p->f[CF_DISP].off, p->f[CF_DISP].len, &n);
	if (v == NULL)
		return ARCA_ENOMEM;
	char *type = NULL;
	clist *params = NULL;
	int r = parse_token_params(v, n, false, &type, NULL, &params);
	free(v);
	if (r < 0)
		return r;
	if (type == NULL) {
		free_params(params);
		return add_str(out, "NIL");
	}
	if ((r = abuf_add_u8(out, '(')) >= 0 && (r = put_cstring(out, type)) >= 0 &&
	    (r = abuf_add_u8(out, ' ')) >= 0 && (r = put_params(out, params, false)) >= 0)
		r = abuf_add_u8(out, ')');
	free(type);
	free_params(params);
	return r;
}

/* Content-Language: a comma-separated list of atoms (RFC 3282), each atom
 * read by libetpan (mailmime_language_parse in libetpan 1.9 returns an
 * empty list for every input, so it can't be used); the list ends at the
 * first thing that isn't ", atom", as in Dovecot. */
static int put_language(struct abuf *out, const struct imapd_mime *m, const struct part *p)
{
	if (!(p->flags & PF_IS_MIME) || !p->f[CF_LANG].set)
		return add_str(out, "NIL");
	size_t n;
	char *v = value_dup(m->msg, p->f[CF_LANG].off, p->f[CF_LANG].len, &n);
	if (v == NULL)
		return ARCA_ENOMEM;
	size_t at = out->len, i = 0;
	int r = 0, count = 0;
	for (;;) {
		char *atom = NULL;
		mailimf_cfws_parse(v, n, &i);
		int pr = mailimf_atom_parse(v, n, &i, &atom);
		if (pr == MAILIMF_ERROR_MEMORY) {
			r = ARCA_ENOMEM;
			break;
		}
		if (pr != MAILIMF_NO_ERROR)
			break;
		r = add_str(out, count++ ? " " : "(");
		if (r >= 0)
			r = put_cstring(out, atom);
		free(atom);
		if (r < 0)
			break;
		mailimf_cfws_parse(v, n, &i);
		if (i >= n || v[i] != ',')
			break;
		i++;
	}
	free(v);
	if (r < 0) {
		out->len = at;
		return r;
	}
	return add_str(out, count ? ")" : "NIL");
}

/* Extension data common to both forms: disposition, language, location. */
static int put_ext_tail(struct abuf *out, const struct imapd_mime *m, const struct part *p)
{
	int r;
	static const struct span none = { 0, 0, false };
	if ((r = abuf_add_u8(out, ' ')) < 0 || (r = put_disposition(out, m, p)) < 0 ||
	    (r = abuf_add_u8(out, ' ')) < 0 || (r = put_language(out, m, p)) < 0 ||
	    (r = abuf_add_u8(out, ' ')) < 0 ||
	    (r = put_value(out, m, (p->flags & PF_IS_MIME) ? &p->f[CF_LOC] : &none)) < 0)
		return r;
	return 0;
}

static int put_body(struct abuf *out, const struct imapd_mime *m, const struct part *p,
		    bool ext);

/* The Content-Transfer-Encoding token as written (*tok_r NULL if none). */
static int cte_token(const struct imapd_mime *m, const struct part *p, char **tok_r)
{
	*tok_r = NULL;
	if (!(p->flags & PF_IS_MIME) || !p->f[CF_CTE].set)
		return 0;
	size_t n, i = 0;
	char *v = value_dup(m->msg, p->f[CF_CTE].off, p->f[CF_CTE].len, &n);
	if (v == NULL)
		return ARCA_ENOMEM;
	mailimf_cfws_parse(v, n, &i);
	int pr = mailmime_extension_token_parse(v, n, &i, tok_r);
	free(v);
	if (pr == MAILIMF_ERROR_MEMORY)
		return ARCA_ENOMEM;
	if (pr != MAILIMF_NO_ERROR)
		*tok_r = NULL;
	return 0;
}

/* Dovecot's message_part_data_is_plain_7bit(): a message that is one
 * text/plain part, 7bit, with no parameter but charset=us-ascii and no
 * other Content-* field, is cached as a flag and
 * answered with the default form, whatever the case of the type and
 * charset as written.  Clients
 * saw that form, so it is copied. */
static int plain_7bit(const struct imapd_mime *m, const struct part *p, bool *yes_r)
{
	*yes_r = false;
	if (p != m->root || (p->flags & (PF_MULTIPART | PF_RFC822 | PF_OPAQUE)) ||
	    !(p->flags & PF_TEXT))
		return 0;
	if (p->subtype && strcasecmp(p->subtype, "plain") != 0)
		return 0;
	if (p->params && clist_count(p->params) > 1)
		return 0;
	if (p->params && clist_count(p->params) == 1) {
		struct mailmime_parameter *pa = clist_content(clist_begin(p->params));
		if (!pa->pa_name || !pa->pa_value || strcasecmp(pa->pa_name, "charset") != 0 ||
		    strcasecmp(pa->pa_value, "us-ascii") != 0)
			return 0;
	}
	if (p->f[CF_ID].set || p->f[CF_DESC].set || p->f[CF_MD5].set || p->f[CF_DISP].set ||
	    p->f[CF_LANG].set || p->f[CF_LOC].set)
		return 0;
	char *cte = NULL;
	int r = cte_token(m, p, &cte);
	if (r < 0)
		return r;
	*yes_r = cte == NULL || strcasecmp(cte, "7bit") == 0;
	free(cte);
	return 0;
}

static int put_multipart(struct abuf *out, const struct imapd_mime *m, const struct part *p,
			 bool ext)
{
	int r;
	if (p->children == NULL) {
		/* a multipart without parts isn't allowed in IMAP: Dovecot
		 * writes one empty text/plain part */
		r = add_str(out, ext ? "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 "
				     "NIL NIL NIL NIL)"
				   : "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)");
		if (r < 0)
			return r;
	}
	for (const struct part *c = p->children; c; c = c->next) {
		if ((r = abuf_add_u8(out, '(')) < 0 || (r = put_body(out, m, c, ext)) < 0 ||
		    (r = abuf_add_u8(out, ')')) < 0)
			return r;
	}
	if ((r = abuf_add_u8(out, ' ')) < 0 ||
	    (r = put_cstring(out, p->subtype ? p->subtype : "x-unknown")) < 0)
		return r;
	if (!ext)
		return 0;
	if ((r = abuf_add_u8(out, ' ')) < 0 || (r = put_params(out, p->params, false)) < 0)
		return r;
	return put_ext_tail(out, m, p);
}

static int put_body(struct abuf *out, const struct imapd_mime *m, const struct part *p,
		    bool ext)
{
	int r;
	if (p->flags & PF_MULTIPART)
		return put_multipart(out, m, p, ext);
	bool plain;
	if ((r = plain_7bit(m, p, &plain)) < 0)
		return r;
	if (plain)
		return abuf_printf(out, "\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
				   "\"7bit\" %zu %zu%s", p->body_len, p->lines,
				   ext ? " NIL NIL NIL NIL" : "");

	const bool mime = p->flags & PF_IS_MIME;
	const char *type = p->type, *subtype = p->subtype;
	clist *params = p->params;
	if (p->flags & PF_OPAQUE) {
		/* a message/rfc822 past the depth or part limits: written as
		 * message/rfc822 it would need an envelope and a structure we
		 * didn't parse; application/octet-stream says "bytes" */
		type = "application";
		subtype = "octet-stream";
		params = NULL;
	}
	bool text = p->flags & PF_TEXT;
	if ((r = put_cstring(out, type ? type : "text")) < 0 || (r = abuf_add_u8(out, ' ')) < 0 ||
	    (r = put_cstring(out, subtype ? subtype : (text ? "plain" : "unknown"))) < 0 ||
	    (r = abuf_add_u8(out, ' ')) < 0 || (r = put_params(out, params, text)) < 0)
		return r;
	static const struct span none = { 0, 0, false };
	if ((r = abuf_add_u8(out, ' ')) < 0 ||
	    (r = put_value(out, m, mime ? &p->f[CF_ID] : &none)) < 0 ||
	    (r = abuf_add_u8(out, ' ')) < 0 ||
	    (r = put_value(out, m, mime ? &p->f[CF_DESC] : &none)) < 0 ||
	    (r = abuf_add_u8(out, ' ')) < 0)
		return r;
	char *cte = NULL;
	if ((r = cte_token(m, p, &cte)) < 0)
		return r;
	r = put_cstring(out, cte ? cte : "7bit");
	free(cte);
	if (r < 0 || (r = abuf_printf(out, " %zu", p->body_len)) < 0)
		return r;
	if (p->flags & PF_RFC822) {
		const struct part *msg = p->children;
		if ((r = add_str(out, " (")) < 0 || (r = put_envelope(out, m, msg)) < 0 ||
		    (r = add_str(out, ") (")) < 0 || (r = put_body(out, m, msg, ext)) < 0 ||
		    (r = abuf_printf(out, ") %zu", p->lines)) < 0)
			return r;
	} else if (text) {
		if ((r = abuf_printf(out, " %zu", p->lines)) < 0)
			return r;
	}
	if (!ext)
		return 0;
	if ((r = abuf_add_u8(out, ' ')) < 0 ||
	    (r = put_value(out, m, mime ? &p->f[CF_MD5] : &none)) < 0)
		return r;
	return put_ext_tail(out, m, p);
}

int imapd_mime_bodystructure(const struct imapd_mime *m, bool extended, struct abuf *out)
{
	size_t at = out->len;
	int r;
	if ((r = abuf_add_u8(out, '(')) < 0 || (r = put_body(out, m, m->root, extended)) < 0 ||
	    (r = abuf_add_u8(out, ')')) < 0) {
		out->len = at;
		return r;
	}
	return 0;
}

/* ---- BODY[section] ---------------------------------------------------- */

/* Dovecot's imap_msgpart_find(): numbers walk multipart children; a
 * non-multipart part is its own part 1; going on past a message/rfc822
 * part enters its message. */
static const struct part *find_part(const struct imapd_mime *m, const struct imapd_section *s)
{
	const struct part *p = m->root;
	for (size_t i = 0; i < s->nparts && p != NULL; i++) {
		uint32_t num = s->part[i];
		bool more = i + 1 < s->nparts;
		if (p->flags & PF_MULTIPART) {
			p = num >= 1 ? p->children : NULL;
			for (; num > 1 && p != NULL; num--)
				p = p->next;
		} else if (num != 1) {
			p = NULL;
		} else if (more && !(p->flags & PF_RFC822)) {
			p = NULL;
		}
		if (p != NULL && (p->flags & PF_RFC822) && more)
			p = p->children;
	}
	return p;
}

/* Append bytes as IMAP sends them: NUL becomes 0x80 (Dovecot does the same:
 * a literal must not hold NUL). */
static int add_bytes(struct abuf *out, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	size_t at = out->len;
	int r = abuf_add(out, p, n);
	if (r < 0)
		return r;
	for (uint8_t *q = out->data + at; (q = memchr(q, 0, (size_t)(out->data + out->len - q))) != NULL; q++)
		*q = 0x80;
	return 0;
}

static bool field_listed(const struct imapd_mime *m, const struct hfield *f,
			 const struct imapd_section *s)
{
	for (size_t i = 0; i < s->nfields; i++) {
		const char *n = s->fields[i];
		if (n != NULL && strlen(n) == f->name_len &&
		    strncasecmp(n, m->msg + f->start, f->name_len) == 0)
			return true;
	}
	return false;
}

static int put_header_fields(struct abuf *out, const struct imapd_mime *m, const struct part *p,
			     const struct imapd_section *s, bool include)
{
	struct hiter it;
	struct hfield f;
	int r;
	hiter_init(&it, m->msg, p->start, p->hdr_len);
	while (hiter_next(&it, &f)) {
		if (field_listed(m, &f, s) != include)
			continue;
		if ((r = add_bytes(out, m->msg + f.start, f.len)) < 0)
			return r;
		/* the last field of a header without blank line and without
		 * a line end still ends with one */
		if (f.len == 0 || m->msg[f.start + f.len - 1] != '\n')
			if ((r = add_str(out, "\r\n")) < 0)
				return r;
	}
	return add_str(out, "\r\n");
}

int imapd_mime_section(const struct imapd_mime *m, const struct imapd_section *s,
		       struct abuf *out)
{
	if (s->nparts > IMAPD_MIME_DEPTH_MAX || s->nfields > IMAPD_SECTION_FIELDS_MAX)
		return ARCA_EINVAL;
	const struct part *p = m->root;
	if (s->nparts > 0) {
		p = find_part(m, s);
		if (p == NULL)
			return 0;
	}
	size_t at = out->len;
	int r = 0;
	switch (s->kind) {
	case IMAPD_SECTION_ALL:
		if (s->nparts == 0)
			r = add_bytes(out, m->msg, m->len);
		else
			r = add_bytes(out, m->msg + p->start + p->hdr_len, p->body_len);
		break;
	case IMAPD_SECTION_MIME:
		if (s->nparts == 0)
			return 0;
		r = add_bytes(out, m->msg + p->start, p->hdr_len);
		break;
	case IMAPD_SECTION_HEADER:
	case IMAPD_SECTION_HEADER_FIELDS:
	case IMAPD_SECTION_HEADER_FIELDS_NOT:
	case IMAPD_SECTION_TEXT:
		if (s->nparts > 0) {
			/* only a message/rfc822 part has a header/text */
			if (!(p->flags & PF_RFC822))
				return 0;
			p = p->children;
		}
		if (s->kind == IMAPD_SECTION_HEADER)
			r = add_bytes(out, m->msg + p->start, p->hdr_len);
		else if (s->kind == IMAPD_SECTION_TEXT)
			r = add_bytes(out, m->msg + p->start + p->hdr_len, p->body_len);
		else
			r = put_header_fields(out, m, p, s,
					      s->kind == IMAPD_SECTION_HEADER_FIELDS);
		break;
	default:
		return ARCA_EINVAL;
	}
	if (r < 0)
		out->len = at;
	return r;
}
