/*
 * managesieve.c - ManageSieve (RFC 5804) client: the pure parsers, the
 * session over an I/O table, the in-memory canned server, and
 * managesieve_fetch_all over netconn.
 *
 * Every rule, limit and leniency is listed in docs/protocol/managesieve.md.
 * The parsers work on the caller's bytes and write only into their fixed-size
 * outputs (the string-line parser appends to a caller's abuf, at most max
 * bytes); the session allocates a script only after its announced size passed
 * MSIEVE_SCRIPT_MAX and MSIEVE_TOTAL_MAX.
 */
#include "managesieve.h"
#include "sieve_names.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

/* Text without a length prefix (abuf_add_str is the length-prefixed form). */
static int add_text(struct abuf *b, const char *s)
{
	return abuf_add(b, s, strlen(s));
}

/* ---- small helpers ----------------------------------------------------- */

static bool is_digit(uint8_t b) { return b >= '0' && b <= '9'; }
static bool is_alpha(uint8_t b) { return (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z'); }
static uint8_t upper(uint8_t b) { return b >= 'a' && b <= 'z' ? (uint8_t)(b - 32) : b; }

/* RFC 5804 ATOM-CHAR: "!" / %x23-27 / %x2A-5B / %x5D-7A / %x7C-7E */
static bool is_atom_char(uint8_t b)
{
	return b == 0x21 || (b >= 0x23 && b <= 0x27) || (b >= 0x2a && b <= 0x5b) ||
	       (b >= 0x5d && b <= 0x7a) || (b >= 0x7c && b <= 0x7e);
}

static bool eq_nocase(const uint8_t *p, size_t n, const char *word)
{
	size_t wl = strlen(word);
	if (n != wl)
		return false;
	for (size_t i = 0; i < n; i++)
		if (upper(p[i]) != (uint8_t)word[i])
			return false;
	return true;
}

/*
 * The UTF-8 character at p (at most n bytes): its length 1-4 and code point,
 * or 0 when the bytes are not a complete, shortest-form character without
 * surrogates and at most U+10FFFF.
 */
static size_t utf8_char(const uint8_t *p, size_t n, uint32_t *cp_r)
{
	if (n == 0)
		return 0;
	uint8_t b = p[0];
	if (b < 0x80) {
		*cp_r = b;
		return 1;
	}
	size_t len;
	uint32_t cp;
	uint8_t lo = 0x80, hi = 0xbf;
	if (b >= 0xc2 && b <= 0xdf) {
		len = 2;
		cp = b & 0x1f;
	} else if (b >= 0xe0 && b <= 0xef) {
		len = 3;
		cp = b & 0x0f;
		if (b == 0xe0)
			lo = 0xa0;
		else if (b == 0xed)
			hi = 0x9f;   /* no surrogates */
	} else if (b >= 0xf0 && b <= 0xf4) {
		len = 4;
		cp = b & 0x07;
		if (b == 0xf0)
			lo = 0x90;
		else if (b == 0xf4)
			hi = 0x8f;   /* <= U+10FFFF */
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		uint8_t c = p[i];
		if (c < (i == 1 ? lo : 0x80) || c > (i == 1 ? hi : 0xbf))
			return 0;
		cp = (cp << 6) | (c & 0x3f);
	}
	*cp_r = cp;
	return len;
}

/* Code points RFC 5804 1.6 forbids in script names (and that we never put
 * into a message either). */
static bool cp_forbidden(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029;
}

/* Bytes of s (length n) that fit in max bytes without cutting a character. */
static int utf8_prefix(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return (int)n;
	size_t k = max;
	while (k > 0 && ((uint8_t)s[k] & 0xc0) == 0x80)
		k--;
	return (int)k;
}

/* ---- strings: quoted and literal --------------------------------------- */

struct cur {
	const uint8_t *p, *end;
};

/* (no arithmetic on p when n == 0: p may then be NULL) */
static struct cur cur_make(const uint8_t *p, size_t n)
{
	return (struct cur){ p, n ? p + n : p };
}

static bool at_end(const struct cur *c) { return c->p == c->end; }

static bool eat(struct cur *c, uint8_t ch)
{
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return true;
	}
	return false;
}

/* A string token: for a quoted string the bytes between the quotes (escapes
 * still in), for a literal its data. */
struct str {
	const uint8_t *raw;
	size_t raw_len;
	size_t len;    /* decoded length */
	bool quoted;
};

/* "{" 1*10DIGIT ["+"] "}" at the cursor. */
static int get_literal_header(struct cur *c, size_t max, size_t *len_r, bool *plus_r,
			      struct arca_err *err)
{
	if (!eat(c, '{'))
		return arca_err_set(err, ARCA_EFORMAT, "expected '{' of a literal");
	const uint8_t *d = c->p;
	uint64_t v = 0;
	while (c->p < c->end && is_digit(*c->p)) {
		if (c->p - d >= MSIEVE_NUMBER_DIGITS)
			return arca_err_set(err, ARCA_EFORMAT,
					    "a literal length of more than %d digits",
					    MSIEVE_NUMBER_DIGITS);
		v = v * 10 + (uint64_t)(*c->p - '0');
		c->p++;
	}
	if (c->p == d)
		return arca_err_set(err, ARCA_EFORMAT, "a literal without a length");
	bool plus = eat(c, '+');
	if (!eat(c, '}'))
		return arca_err_set(err, ARCA_EFORMAT, "a literal length not closed by '}'");
	if (v > max)
		return arca_err_set(err, ARCA_ELIMIT, "a literal of %llu bytes, more than %zu",
				    (unsigned long long)v, max);
	*len_r = (size_t)v;
	if (plus_r != NULL)
		*plus_r = plus;
	return 0;
}

/* string = quoted / literal, decoded length at most max. */
static int get_string(struct cur *c, size_t max, struct str *s, struct arca_err *err)
{
	memset(s, 0, sizeof(*s));
	if (c->p < c->end && *c->p == '{') {
		size_t n;
		int rc = get_literal_header(c, max, &n, NULL, err);
		if (rc)
			return rc;
		if (!eat(c, '\r') || !eat(c, '\n'))
			return arca_err_set(err, ARCA_EFORMAT, "no CRLF after a literal header");
		if ((size_t)(c->end - c->p) < n)
			return arca_err_set(err, ARCA_EFORMAT, "a literal cut short");
		s->raw = c->p;
		s->raw_len = s->len = n;
		c->p += n;
		return 0;
	}
	if (!eat(c, '"'))
		return arca_err_set(err, ARCA_EFORMAT, "expected a string");
	s->quoted = true;
	s->raw = c->p;
	size_t len = 0;
	for (;;) {
		if (at_end(c))
			return arca_err_set(err, ARCA_EFORMAT, "an unterminated quoted string");
		uint8_t b = *c->p;
		if (b == '"')
			break;
		if (b == '\\') {
			c->p++;
			if (at_end(c) || (*c->p != '"' && *c->p != '\\'))
				return arca_err_set(err, ARCA_EFORMAT,
						    "a backslash before something other than '\"' or '\\' in a quoted string");
		} else if (b == 0 || b == '\r' || b == '\n') {
			return arca_err_set(err, ARCA_EFORMAT,
					    "a NUL, CR or LF in a quoted string");
		}
		c->p++;
		if (++len > max)
			return arca_err_set(err, ARCA_ELIMIT,
					    "a quoted string longer than %zu bytes", max);
	}
	s->raw_len = (size_t)(c->p - s->raw);
	s->len = len;
	c->p++;   /* the closing quote */
	return 0;
}

/* Next decoded byte of s from raw position *i, or -1 at the end. */
static int str_next(const struct str *s, size_t *i)
{
	if (*i >= s->raw_len)
		return -1;
	uint8_t b = s->raw[(*i)++];
	if (s->quoted && b == '\\' && *i < s->raw_len)
		b = s->raw[(*i)++];
	return b;
}

/* The decoded bytes (s->len of them) into out. */
static void str_copy(const struct str *s, uint8_t *out)
{
	size_t i = 0, o = 0;
	int b;
	while ((b = str_next(s, &i)) >= 0)
		out[o++] = (uint8_t)b;
}

/* A printable copy for messages: control characters and invalid UTF-8
 * become '?', cut at cap - 1 bytes on a character boundary. */
static void str_text(const struct str *s, char *out, size_t cap)
{
	uint8_t tmp[MSIEVE_TEXT_MAX + 8];
	size_t k = 0, i = 0;
	int b;
	while (k < sizeof(tmp) && (b = str_next(s, &i)) >= 0)
		tmp[k++] = (uint8_t)b;
	bool cut = k < s->len;
	size_t o = 0;
	for (size_t j = 0; j < k;) {
		uint32_t cp;
		size_t l = utf8_char(tmp + j, k - j, &cp);
		const uint8_t *src = tmp + j;
		size_t srcl = l;
		if (l == 0) {
			if (cut && k - j < 4)
				break;   /* maybe a character cut by our prefix */
			src = (const uint8_t *)"?";
			srcl = 1;
			l = 1;
		} else if (cp_forbidden(cp)) {
			src = (const uint8_t *)"?";
			srcl = 1;
		}
		if (o + srcl > cap - 1)
			break;
		memcpy(out + o, src, srcl);
		o += srcl;
		j += l;
	}
	out[o] = '\0';
}

/* ---- pure parsers ------------------------------------------------------ */

int msieve_parse_literal_header(const uint8_t *p, size_t n, size_t max, size_t *len_r,
				bool *plus_r, struct arca_err *err)
{
	struct cur c = cur_make(p, n);
	int rc = get_literal_header(&c, max, len_r, plus_r, err);
	if (rc)
		return rc;
	if (!at_end(&c))
		return arca_err_set(err, ARCA_EFORMAT, "bytes after a literal header");
	return 0;
}

int msieve_line_literal(const uint8_t *line, size_t n, size_t max, size_t *len_r,
			struct arca_err *err)
{
	if (n < 3 || line[n - 1] != '}')
		return 0;
	size_t k = n - 1;
	if (line[k - 1] == '+')
		k--;
	size_t d = k;
	while (d > 0 && is_digit(line[d - 1]))
		d--;
	if (d == k || d == 0 || line[d - 1] != '{')
		return 0;
	int rc = msieve_parse_literal_header(line + d - 1, n - (d - 1), max, len_r, NULL, err);
	return rc ? rc : 1;
}

bool msieve_line_is_data(const uint8_t *p, size_t n)
{
	return n > 0 && (p[0] == '"' || p[0] == '{');
}

/* extension-data = extension-item *(SP extension-item), items being numbers,
 * atoms (a REFERRAL's sieveurl), strings or parenthesized extension-data. */
static int ext_data(struct cur *c, int depth, struct arca_err *err)
{
	for (;;) {
		if (eat(c, '(')) {
			if (depth + 1 > MSIEVE_NEST_MAX)
				return arca_err_set(err, ARCA_EFORMAT,
						    "response code nested deeper than %d",
						    MSIEVE_NEST_MAX);
			int rc = ext_data(c, depth + 1, err);
			if (rc)
				return rc;
			if (!eat(c, ')'))
				return arca_err_set(err, ARCA_EFORMAT,
						    "an unclosed '(' in a response code");
		} else if (c->p < c->end && (*c->p == '"' || *c->p == '{')) {
			struct str s;
			int rc = get_string(c, MSIEVE_RESPONSE_MAX, &s, err);
			if (rc)
				return rc;
		} else if (c->p < c->end && is_atom_char(*c->p)) {
			while (c->p < c->end && is_atom_char(*c->p))
				c->p++;
		} else {
			return arca_err_set(err, ARCA_EFORMAT, "a malformed response code argument");
		}
		if (!eat(c, ' '))
			return 0;
	}
}

int msieve_parse_response(const uint8_t *p, size_t n, struct msieve_response *r,
			  struct arca_err *err)
{
	memset(r, 0, sizeof(*r));
	struct cur c = cur_make(p, n);
	const uint8_t *w = c.p;
	while (c.p < c.end && is_alpha(*c.p))
		c.p++;
	size_t wl = (size_t)(c.p - w);
	if (eq_nocase(w, wl, "OK"))
		r->status = MSIEVE_OK;
	else if (eq_nocase(w, wl, "NO"))
		r->status = MSIEVE_NO;
	else if (eq_nocase(w, wl, "BYE"))
		r->status = MSIEVE_BYE;
	else
		return arca_err_set(err, ARCA_EFORMAT, "a response that is not OK, NO or BYE");
	if (at_end(&c))
		return 0;
	if (!eat(&c, ' '))
		return arca_err_set(err, ARCA_EFORMAT, "no space after the response's OK, NO or BYE");
	if (eat(&c, '(')) {
		const uint8_t *a = c.p;
		while (c.p < c.end && is_atom_char(*c.p))
			c.p++;
		size_t al = (size_t)(c.p - a);
		if (al == 0)
			return arca_err_set(err, ARCA_EFORMAT, "an empty response code");
		if (al > MSIEVE_CODE_MAX)
			return arca_err_set(err, ARCA_EFORMAT, "a response code longer than %d bytes",
					    MSIEVE_CODE_MAX);
		for (size_t i = 0; i < al; i++)
			r->code[i] = (char)upper(a[i]);
		r->code[al] = '\0';
		if (eat(&c, ' ')) {
			int rc = ext_data(&c, 0, err);
			if (rc) {
				r->code[0] = '\0';
				return rc;
			}
		}
		if (!eat(&c, ')')) {
			r->code[0] = '\0';
			return arca_err_set(err, ARCA_EFORMAT, "an unclosed response code");
		}
		if (at_end(&c))
			return 0;
		if (!eat(&c, ' ')) {
			r->code[0] = '\0';
			return arca_err_set(err, ARCA_EFORMAT, "no space after the response code");
		}
	}
	struct str s;
	int rc = get_string(&c, MSIEVE_RESPONSE_MAX, &s, err);
	if (rc == 0 && !at_end(&c))
		rc = arca_err_set(err, ARCA_EFORMAT, "bytes after the response text");
	if (rc) {
		r->code[0] = '\0';
		return rc;
	}
	str_text(&s, r->text, sizeof(r->text));
	return 0;
}

void msieve_caps_init(struct msieve_caps *c)
{
	memset(c, 0, sizeof(*c));
}

/* Whether the space-separated list s names `word` (case-insensitively). */
static bool str_has_word(const struct str *s, const char *word)
{
	size_t wl = strlen(word), i = 0, tl = 0;
	bool match = true;
	for (;;) {
		int b = str_next(s, &i);
		if (b < 0 || b == ' ') {
			if (tl == wl && match)
				return true;
			if (b < 0)
				return false;
			tl = 0;
			match = true;
			continue;
		}
		if (tl >= wl || upper((uint8_t)b) != (uint8_t)word[tl])
			match = false;
		tl++;
	}
}

int msieve_parse_capability(const uint8_t *p, size_t n, struct msieve_caps *caps,
			    struct arca_err *err)
{
	if (++caps->lines > MSIEVE_CAPLINES_MAX)
		return arca_err_set(err, ARCA_ELIMIT, "more than %d capability lines",
				    MSIEVE_CAPLINES_MAX);
	struct cur c = cur_make(p, n);
	struct str name, value;
	bool has_value = false;
	int rc = get_string(&c, MSIEVE_RESPONSE_MAX, &name, err);
	if (rc)
		return rc;
	if (eat(&c, ' ')) {
		rc = get_string(&c, MSIEVE_RESPONSE_MAX, &value, err);
		if (rc)
			return rc;
		has_value = true;
	}
	if (!at_end(&c))
		return arca_err_set(err, ARCA_EFORMAT, "bytes after a capability");
	if (name.len == 0)
		return arca_err_set(err, ARCA_EFORMAT, "an empty capability name");
	uint8_t nm[32];
	if (name.len > sizeof(nm))
		return 0;   /* no capability we know is that long */
	str_copy(&name, nm);
	if (eq_nocase(nm, name.len, "STARTTLS")) {
		caps->starttls = true;
	} else if (eq_nocase(nm, name.len, "SASL")) {
		caps->sasl = true;
		caps->sasl_plain = has_value && str_has_word(&value, "PLAIN");
		if (has_value)
			str_text(&value, caps->sasl_list, sizeof(caps->sasl_list));
		else
			caps->sasl_list[0] = '\0';
	} else if (eq_nocase(nm, name.len, "IMPLEMENTATION")) {
		if (has_value)
			str_text(&value, caps->implementation, sizeof(caps->implementation));
	} else if (eq_nocase(nm, name.len, "VERSION")) {
		caps->version = true;
	}
	return 0;
}

int msieve_name_check(const uint8_t *p, size_t n, struct arca_err *err)
{
	if (n == 0)
		return arca_err_set(err, ARCA_EFORMAT, "an empty script name");
	if (n > MSIEVE_NAME_MAX)
		return arca_err_set(err, ARCA_ELIMIT, "a script name longer than %d bytes",
				    MSIEVE_NAME_MAX);
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t l = utf8_char(p + i, n - i, &cp);
		if (l == 0)
			return arca_err_set(err, ARCA_EFORMAT,
					    "a script name that is not valid UTF-8 (byte %zu)", i);
		if (cp_forbidden(cp))
			return arca_err_set(err, ARCA_EFORMAT,
					    "a script name with the forbidden character U+%04X (byte %zu)",
					    (unsigned)cp, i);
		i += l;
	}
	return 0;
}

int msieve_parse_listscripts(const uint8_t *p, size_t n, char *name, size_t *name_len_r,
			     bool *active_r, struct arca_err *err)
{
	name[0] = '\0';
	*name_len_r = 0;
	*active_r = false;
	struct cur c = cur_make(p, n);
	struct str s;
	struct arca_err e = { 0 };
	int rc = get_string(&c, MSIEVE_NAME_MAX, &s, &e);
	if (rc == ARCA_ELIMIT)
		return arca_err_set(err, rc, "a script name longer than %d bytes", MSIEVE_NAME_MAX);
	if (rc)
		return arca_err_set(err, rc, "%s", e.msg);
	bool active = false;
	if (eat(&c, ' ')) {
		const uint8_t *a = c.p;
		while (c.p < c.end && is_atom_char(*c.p))
			c.p++;
		if (!eq_nocase(a, (size_t)(c.p - a), "ACTIVE"))
			return arca_err_set(err, ARCA_EFORMAT,
					    "a script name followed by something other than ACTIVE");
		active = true;
	}
	if (!at_end(&c))
		return arca_err_set(err, ARCA_EFORMAT, "bytes after a script name");
	str_copy(&s, (uint8_t *)name);
	name[s.len] = '\0';
	rc = msieve_name_check((const uint8_t *)name, s.len, err);
	if (rc) {
		name[0] = '\0';
		return rc;
	}
	*name_len_r = s.len;
	*active_r = active;
	return 0;
}

int msieve_parse_string_line(const uint8_t *p, size_t n, size_t max, struct abuf *out,
			     struct arca_err *err)
{
	struct cur c = cur_make(p, n);
	struct str s;
	int rc = get_string(&c, max, &s, err);
	if (rc)
		return rc;
	if (!at_end(&c))
		return arca_err_set(err, ARCA_EFORMAT, "bytes after a string");
	if (abuf_reserve(out, s.len ? s.len : 1))
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	str_copy(&s, out->data + out->len);
	out->len += s.len;
	return 0;
}

int msieve_quote(const char *s, size_t n, struct abuf *out)
{
	size_t q = n;
	bool quotable = true;
	for (size_t i = 0; i < n; i++) {
		q += s[i] == '"' || s[i] == '\\';
		quotable &= s[i] != '\0' && s[i] != '\r' && s[i] != '\n';
	}
	int rc;
	if (q > 1024 || !quotable) {
		rc = abuf_printf(out, "{%zu+}\r\n", n);
		return rc ? rc : abuf_add(out, s, n);
	}
	if ((rc = abuf_reserve(out, q + 2)) != 0)
		return rc;
	out->data[out->len++] = '"';
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			out->data[out->len++] = '\\';
		out->data[out->len++] = (uint8_t)s[i];
	}
	out->data[out->len++] = '"';
	return 0;
}

/* ---- the fetched scripts ----------------------------------------------- */

void sieve_scripts_release(struct sieve_scripts *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].name);
		free(s->v[i].data);
	}
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* ---- the session ------------------------------------------------------- */

struct sess {
	const struct msieve_io *io;
	const struct managesieve_opts *o;
	const char *peer;
	struct arca_err *err;
	struct abuf line;   /* one line off the wire */
	struct abuf resp;   /* one logical line */
	struct msieve_caps caps;
	size_t total;       /* script bytes so far */
};

static int fail(struct sess *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct sess *s, int code, const char *fmt, ...)
{
	char msg[ARCA_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return arca_err_set(s->err, code, "managesieve %s: %s", s->peer, msg);
}

/* The I/O table's calls, their messages prefixed with the server and step
 * ("managesieve HOST:PORT: LISTSCRIPTS: HOST: connection closed ..."). */
static int io_line(struct sess *s, const char *what)
{
	struct arca_err e = { 0 };
	int rc = s->io->read_line(s->io->ctx, &s->line, MSIEVE_LINE_MAX, &e);
	return rc ? fail(s, rc, "%s: %s", what, e.msg) : 0;
}

static int io_exact(struct sess *s, struct abuf *out, size_t n, const char *what)
{
	struct arca_err e = { 0 };
	int rc = s->io->read_exact(s->io->ctx, out, n, &e);
	return rc ? fail(s, rc, "%s: %s", what, e.msg) : 0;
}

static int io_write(struct sess *s, const void *p, size_t n, const char *what)
{
	struct arca_err e = { 0 };
	int rc = s->io->write_all(s->io->ctx, p, n, &e);
	return rc ? fail(s, rc, "%s: %s", what, e.msg) : 0;
}

static int send_str(struct sess *s, const char *cmd, const char *what)
{
	return io_write(s, cmd, strlen(cmd), what);
}

/*
 * The rest of a logical line whose first line is in s->line: while the line
 * ends in a literal header, read the literal and the next line.  The whole
 * is at most MSIEVE_RESPONSE_MAX bytes.
 */
static int finish_logical(struct sess *s, const char *what)
{
	abuf_reset(&s->resp);
	for (;;) {
		if (s->resp.len + s->line.len > MSIEVE_RESPONSE_MAX)
			return fail(s, ARCA_ELIMIT, "%s: a response longer than %d bytes", what,
				    MSIEVE_RESPONSE_MAX);
		if (abuf_add(&s->resp, s->line.data, s->line.len))
			return fail(s, ARCA_ENOMEM, "out of memory");
		size_t lit;
		struct arca_err e = { 0 };
		int rc = msieve_line_literal(s->line.data, s->line.len, MSIEVE_RESPONSE_MAX, &lit, &e);
		if (rc == ARCA_ELIMIT)
			return fail(s, rc, "%s: a response longer than %d bytes", what,
				    MSIEVE_RESPONSE_MAX);
		if (rc < 0)
			return fail(s, rc, "%s: %s", what, e.msg);
		if (rc == 0)
			break;
		if (s->resp.len + 2 + lit > MSIEVE_RESPONSE_MAX)
			return fail(s, ARCA_ELIMIT, "%s: a response longer than %d bytes", what,
				    MSIEVE_RESPONSE_MAX);
		if (abuf_add(&s->resp, "\r\n", 2))
			return fail(s, ARCA_ENOMEM, "out of memory");
		if ((rc = io_exact(s, &s->resp, lit, what)) != 0)
			return rc;
		if ((rc = io_line(s, what)) != 0)
			return rc;
	}
	if (abuf_cstr(&s->resp))   /* never NULL, even when empty */
		return fail(s, ARCA_ENOMEM, "out of memory");
	return 0;
}

static int read_logical(struct sess *s, const char *what)
{
	int rc = io_line(s, what);
	return rc ? rc : finish_logical(s, what);
}

/* The logical line in s->resp as a response. */
static int parse_resp(struct sess *s, const char *what, struct msieve_response *r)
{
	if (msieve_line_is_data(s->resp.data, s->resp.len))
		return fail(s, ARCA_EFORMAT, "%s: a string where OK, NO or BYE was expected", what);
	struct arca_err e = { 0 };
	int rc = msieve_parse_response(s->resp.data, s->resp.len, r, &e);
	return rc ? fail(s, rc, "%s: %s", what, e.msg) : 0;
}

/* A NO or BYE as an error: TRYLATER is ARCA_EBUSY, else `code`. */
static int refused(struct sess *s, const char *what, const struct msieve_response *r, int code)
{
	if (strcmp(r->code, "TRYLATER") == 0)
		code = ARCA_EBUSY;
	return fail(s, code, "%s: the server answered %s%s%s%s%s%s%s", what,
		    r->status == MSIEVE_BYE ? "BYE" : "NO",
		    r->code[0] ? " (" : "", r->code, r->code[0] ? ")" : "",
		    r->text[0] ? " \"" : "", r->text, r->text[0] ? "\"" : "");
}

/* One response that must be OK. */
static int expect_ok(struct sess *s, const char *what, int code_if_no)
{
	struct msieve_response r;
	int rc = read_logical(s, what);
	if (rc == 0)
		rc = parse_resp(s, what, &r);
	if (rc)
		return rc;
	return r.status == MSIEVE_OK ? 0 : refused(s, what, &r, code_if_no);
}

/* Capability lines up to the OK that ends them. */
static int read_caps(struct sess *s, const char *what)
{
	msieve_caps_init(&s->caps);
	for (;;) {
		int rc = read_logical(s, what);
		if (rc)
			return rc;
		if (msieve_line_is_data(s->resp.data, s->resp.len)) {
			struct arca_err e = { 0 };
			rc = msieve_parse_capability(s->resp.data, s->resp.len, &s->caps, &e);
			if (rc)
				return fail(s, rc, "%s: %s", what, e.msg);
			continue;
		}
		struct msieve_response r;
		if ((rc = parse_resp(s, what, &r)) != 0)
			return rc;
		return r.status == MSIEVE_OK ? 0 : refused(s, what, &r, ARCA_EIO);
	}
}

static int authenticate(struct sess *s)
{
	const struct managesieve_opts *o = s->o;
	const char *zid = o->authzid ? o->authzid : "";
	size_t zl = strlen(zid), cl = strlen(o->authcid), pl = strlen(o->password);
	size_t raw = zl + 1 + cl + 1 + pl;
	size_t b64 = sodium_base64_ENCODED_LEN(raw, sodium_base64_VARIANT_ORIGINAL);
	static const char head[] = "AUTHENTICATE \"PLAIN\" \"", tail[] = "\"\r\n";
	size_t cap = raw + sizeof(head) + b64 + sizeof(tail);
	if (sodium_init() < 0)
		return fail(s, ARCA_EIO, "cannot initialise libsodium");
	uint8_t *mem = sodium_malloc(cap);
	if (mem == NULL)
		return fail(s, ARCA_ENOMEM, "out of memory");
	uint8_t *msg = mem;
	char *cmd = (char *)mem + raw;
	memcpy(msg, zid, zl);
	msg[zl] = 0;
	memcpy(msg + zl + 1, o->authcid, cl);
	msg[zl + 1 + cl] = 0;
	memcpy(msg + zl + 2 + cl, o->password, pl);
	size_t hl = sizeof(head) - 1;
	memcpy(cmd, head, hl);
	sodium_bin2base64(cmd + hl, b64, msg, raw, sodium_base64_VARIANT_ORIGINAL);
	size_t el = strlen(cmd + hl);
	memcpy(cmd + hl + el, tail, sizeof(tail));
	int rc = io_write(s, cmd, hl + el + sizeof(tail) - 1, "AUTHENTICATE");
	sodium_free(mem);
	if (rc)
		return rc;

	struct msieve_response r;
	if ((rc = read_logical(s, "AUTHENTICATE")) != 0)
		return rc;
	if (msieve_line_is_data(s->resp.data, s->resp.len))
		return fail(s, ARCA_EFORMAT,
			    "AUTHENTICATE: a SASL challenge after PLAIN's initial response");
	if ((rc = parse_resp(s, "AUTHENTICATE", &r)) != 0)
		return rc;
	if (r.status == MSIEVE_OK)
		return 0;
	char what[MSIEVE_SASL_FIELD_MAX * 2 + 64];
	snprintf(what, sizeof(what), "AUTHENTICATE as \"%s\"%s%s%s", o->authcid,
		 zl ? " for \"" : "", zid, zl ? "\"" : "");
	return refused(s, what, &r, r.status == MSIEVE_NO ? ARCA_EKEY : ARCA_EIO);
}

static int cmp_name(const void *a, const void *b)
{
	const struct sieve_script *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

static int listscripts(struct sess *s, struct sieve_scripts *out)
{
	int rc = send_str(s, "LISTSCRIPTS\r\n", "LISTSCRIPTS");
	if (rc)
		return rc;
	char name[MSIEVE_NAME_MAX + 1];
	size_t cap = 0, active = 0;
	for (;;) {
		if ((rc = read_logical(s, "LISTSCRIPTS")) != 0)
			return rc;
		if (!msieve_line_is_data(s->resp.data, s->resp.len)) {
			struct msieve_response r;
			if ((rc = parse_resp(s, "LISTSCRIPTS", &r)) != 0)
				return rc;
			if (r.status != MSIEVE_OK)
				return refused(s, "LISTSCRIPTS", &r, ARCA_EIO);
			break;
		}
		size_t nl;
		bool act;
		struct arca_err e = { 0 };
		rc = msieve_parse_listscripts(s->resp.data, s->resp.len, name, &nl, &act, &e);
		if (rc)
			return fail(s, rc, "LISTSCRIPTS: %s", e.msg);
		if (out->n == MSIEVE_SCRIPTS_MAX)
			return fail(s, ARCA_ELIMIT, "LISTSCRIPTS: more than %d scripts",
				    MSIEVE_SCRIPTS_MAX);
		if (act && ++active > 1)
			return fail(s, ARCA_EFORMAT, "LISTSCRIPTS: more than one active script");
		if (out->n == cap) {
			size_t nc = cap ? cap * 2 : 8;
			struct sieve_script *v = realloc(out->v, nc * sizeof(*v));
			if (v == NULL)
				return fail(s, ARCA_ENOMEM, "out of memory");
			out->v = v;
			cap = nc;
		}
		char *dup = malloc(nl + 1);
		if (dup == NULL)
			return fail(s, ARCA_ENOMEM, "out of memory");
		memcpy(dup, name, nl + 1);
		out->v[out->n++] = (struct sieve_script){ .name = dup, .active = act };
	}
	if (out->n < 2)
		return 0;
	/* distinct names: sort pointers, compare neighbours */
	const struct sieve_script **idx = malloc(out->n * sizeof(*idx));
	if (idx == NULL)
		return fail(s, ARCA_ENOMEM, "out of memory");
	for (size_t i = 0; i < out->n; i++)
		idx[i] = &out->v[i];
	qsort(idx, out->n, sizeof(*idx), cmp_name);
	for (size_t i = 1; i < out->n; i++) {
		if (strcmp(idx[i - 1]->name, idx[i]->name) == 0) {
			const char *nm = idx[i]->name;
			free(idx);
			return fail(s, ARCA_EFORMAT, "LISTSCRIPTS: the script \"%.*s\" is listed twice",
				    utf8_prefix(nm, strlen(nm), 64), nm);
		}
	}
	free(idx);
	return 0;
}

static int getscript(struct sess *s, struct sieve_script *sc)
{
	char what[128];
	size_t nl = strlen(sc->name);
	snprintf(what, sizeof(what), "GETSCRIPT \"%.*s\"%s", utf8_prefix(sc->name, nl, 64),
		 sc->name, nl > 64 ? "..." : "");
	struct abuf cmd = ABUF_INIT, data = ABUF_INIT;
	int rc = abuf_add(&cmd, "GETSCRIPT ", 10);
	if (rc == 0)
		rc = msieve_quote(sc->name, nl, &cmd);
	if (rc == 0)
		rc = abuf_add(&cmd, "\r\n", 2);
	if (rc) {
		abuf_release(&cmd);
		return fail(s, ARCA_ENOMEM, "out of memory");
	}
	rc = io_write(s, cmd.data, cmd.len, what);
	abuf_release(&cmd);
	if (rc)
		return rc;

	if ((rc = io_line(s, what)) != 0)
		return rc;
	size_t lit;
	struct arca_err e = { 0 };
	if (s->line.len > 0 && s->line.data[0] == '{') {
		/* the usual form: the script as a literal, read straight into
		 * its own buffer once its size passed the limits */
		rc = msieve_parse_literal_header(s->line.data, s->line.len, MSIEVE_SCRIPT_MAX,
						 &lit, NULL, &e);
		if (rc == ARCA_ELIMIT)
			return fail(s, rc, "%s: the script is larger than %u bytes", what,
				    MSIEVE_SCRIPT_MAX);
		if (rc)
			return fail(s, rc, "%s: %s", what, e.msg);
		if (s->total + lit > MSIEVE_TOTAL_MAX)
			return fail(s, ARCA_ELIMIT, "%s: the scripts together exceed %u bytes",
				    what, MSIEVE_TOTAL_MAX);
		rc = io_exact(s, &data, lit, what);
		if (rc == 0)
			rc = io_line(s, what);
		if (rc == 0 && s->line.len != 0)
			rc = fail(s, ARCA_EFORMAT, "%s: bytes after the script's literal", what);
	} else {
		/* a quoted script, or NO / BYE */
		rc = finish_logical(s, what);
		if (rc == 0 && msieve_line_is_data(s->resp.data, s->resp.len)) {
			rc = msieve_parse_string_line(s->resp.data, s->resp.len, MSIEVE_SCRIPT_MAX,
						      &data, &e);
			if (rc)
				rc = fail(s, rc, "%s: %s", what, e.msg);
			else if (s->total + data.len > MSIEVE_TOTAL_MAX)
				rc = fail(s, ARCA_ELIMIT, "%s: the scripts together exceed %u bytes",
					  what, MSIEVE_TOTAL_MAX);
		} else if (rc == 0) {
			struct msieve_response r;
			rc = parse_resp(s, what, &r);
			if (rc == 0 && r.status == MSIEVE_OK)
				rc = fail(s, ARCA_EFORMAT, "%s: OK without the script", what);
			else if (rc == 0)
				rc = refused(s, what, &r,
					     strcmp(r.code, "NONEXISTENT") == 0 ? ARCA_ENOENT : ARCA_EIO);
		}
	}
	if (rc == 0)
		rc = expect_ok(s, what, ARCA_EIO);
	if (rc == 0 && data.data == NULL && abuf_reserve(&data, 1) != 0)
		rc = fail(s, ARCA_ENOMEM, "out of memory");   /* data is never NULL */
	if (rc) {
		abuf_release(&data);
		return rc;
	}
	s->total += data.len;
	sc->len = data.len;
	sc->data = data.data;   /* ownership moves to the script */
	return 0;
}

static int check_opts(struct sess *s)
{
	const struct managesieve_opts *o = s->o;
	if (o->authcid == NULL || o->authcid[0] == '\0')
		return fail(s, ARCA_EINVAL, "no login name");
	if (o->password == NULL)
		return fail(s, ARCA_EINVAL, "no password");
	if (strlen(o->authcid) > MSIEVE_SASL_FIELD_MAX ||
	    strlen(o->password) > MSIEVE_SASL_FIELD_MAX ||
	    (o->authzid && strlen(o->authzid) > MSIEVE_SASL_FIELD_MAX))
		return fail(s, ARCA_EINVAL,
			    "login name, authorization id and password may have at most %d bytes each",
			    MSIEVE_SASL_FIELD_MAX);
	if (o->net.tls != NETCONN_PLAIN && o->net.tls != NETCONN_TLS &&
	    o->net.tls != NETCONN_STARTTLS)
		return fail(s, ARCA_EINVAL, "unknown TLS mode %d", (int)o->net.tls);
	return 0;
}

/* Greeting, STARTTLS when asked, AUTHENTICATE: the part every session shares. */
static int sess_open(struct sess *s)
{
	const struct managesieve_opts *o = s->o;
	int rc = check_opts(s);
	if (rc == 0)
		rc = read_caps(s, "greeting");
	if (rc == 0 && o->net.tls == NETCONN_STARTTLS) {
		if (!s->caps.starttls)
			rc = fail(s, ARCA_EIO,
				  "STARTTLS was asked for but the server does not offer it");
		if (rc == 0)
			rc = send_str(s, "STARTTLS\r\n", "STARTTLS");
		if (rc == 0)
			rc = expect_ok(s, "STARTTLS", ARCA_EIO);
		if (rc == 0) {
			struct arca_err e = { 0 };
			if ((rc = s->io->start_tls(s->io->ctx, &e)) != 0)
				fail(s, rc, "STARTTLS: %s", e.msg);
		}
		if (rc == 0)
			rc = read_caps(s, "capabilities after STARTTLS");
	}
	if (rc == 0 && !s->caps.sasl_plain)
		rc = fail(s, ARCA_EIO, "the server does not offer SASL PLAIN (%s%s%s)",
			  s->caps.sasl ? "it offers \"" : "no SASL capability",
			  s->caps.sasl ? s->caps.sasl_list : "", s->caps.sasl ? "\"" : "");
	if (rc == 0)
		rc = authenticate(s);
	return rc;
}

/* The work is done: LOGOUT's fate does not matter. */
static void sess_logout(struct sess *s)
{
	struct arca_err scratch = { 0 };
	struct sess q = *s;
	q.err = &scratch;
	if (send_str(&q, "LOGOUT\r\n", "LOGOUT") == 0)
		(void)expect_ok(&q, "LOGOUT", ARCA_EIO);
	s->line = q.line;
	s->resp = q.resp;
}

int msieve_session(const struct msieve_io *io, const struct managesieve_opts *o,
		   const char *peer, struct sieve_scripts *out, struct arca_err *err)
{
	struct sess s = { .io = io, .o = o, .peer = peer ? peer : "?", .err = err };
	abuf_init(&s.line);
	abuf_init(&s.resp);
	out->v = NULL;
	out->n = 0;
	int rc = sess_open(&s);
	if (rc == 0)
		rc = listscripts(&s, out);
	for (size_t i = 0; rc == 0 && i < out->n; i++)
		rc = getscript(&s, &out->v[i]);
	if (rc == 0)
		sess_logout(&s);
	abuf_release(&s.line);
	abuf_release(&s.resp);
	if (rc)
		sieve_scripts_release(out);
	return rc;
}

/* ---- restoring: PUTSCRIPT and SETACTIVE ----------------------------------- */

/* "VERB name" with the name quoted (or as a literal), CRLF. */
static int name_cmd(struct sess *s, const char *verb, const char *name, struct abuf *cmd)
{
	abuf_reset(cmd);
	if (add_text(cmd, verb) || abuf_add_u8(cmd, ' ') ||
	    msieve_quote(name, strlen(name), cmd))
		return fail(s, ARCA_ENOMEM, "out of memory");
	return 0;
}

static void put_what(char *what, size_t cap, const char *verb, const char *name)
{
	size_t nl = strlen(name);
	snprintf(what, cap, "%s \"%.*s\"%s", verb, utf8_prefix(name, nl, 64), name,
		 nl > 64 ? "..." : "");
}

static int putscript(struct sess *s, const struct msieve_put *p)
{
	char what[128];
	put_what(what, sizeof(what), "PUTSCRIPT", p->name);
	struct abuf cmd = ABUF_INIT;
	int rc = name_cmd(s, "PUTSCRIPT", p->name, &cmd);
	/* RFC 5804 4: a client's literal may always be non-synchronizing */
	if (rc == 0 && abuf_printf(&cmd, " {%zu+}\r\n", p->len))
		rc = fail(s, ARCA_ENOMEM, "out of memory");
	if (rc == 0)
		rc = io_write(s, cmd.data, cmd.len, what);
	if (rc == 0 && p->len > 0)
		rc = io_write(s, p->data, p->len, what);
	if (rc == 0)
		rc = io_write(s, "\r\n", 2, what);
	abuf_release(&cmd);
	if (rc == 0)
		rc = expect_ok(s, what, ARCA_EIO);
	return rc;
}

static int setactive(struct sess *s, const char *name)
{
	char what[128];
	put_what(what, sizeof(what), "SETACTIVE", name);
	struct abuf cmd = ABUF_INIT;
	int rc = name_cmd(s, "SETACTIVE", name, &cmd);
	if (rc == 0 && abuf_add(&cmd, "\r\n", 2))
		rc = fail(s, ARCA_ENOMEM, "out of memory");
	if (rc == 0)
		rc = io_write(s, cmd.data, cmd.len, what);
	abuf_release(&cmd);
	if (rc == 0)
		rc = expect_ok(s, what, ARCA_EIO);
	return rc;
}

static int check_puts(struct sess *s, const struct msieve_put *v, size_t n)
{
	size_t active = 0;
	if (n > MSIEVE_SCRIPTS_MAX)
		return fail(s, ARCA_ELIMIT, "more than %d scripts", MSIEVE_SCRIPTS_MAX);
	for (size_t i = 0; i < n; i++) {
		struct arca_err e = { 0 };
		if (v[i].name == NULL ||
		    msieve_name_check((const uint8_t *)v[i].name, strlen(v[i].name), &e) != 0)
			return fail(s, ARCA_EINVAL, "script %zu: not a valid name: %s", i,
				    v[i].name ? e.msg : "none");
		if (v[i].len > MSIEVE_SCRIPT_MAX || (v[i].len > 0 && v[i].data == NULL))
			return fail(s, ARCA_EINVAL, "script %zu: larger than %u bytes", i,
				    MSIEVE_SCRIPT_MAX);
		if (v[i].active && ++active > 1)
			return fail(s, ARCA_EINVAL, "more than one active script");
		for (size_t j = 0; j < i; j++)
			if (strcmp(v[i].name, v[j].name) == 0)
				return fail(s, ARCA_EINVAL, "script %zu: a name given twice", i);
	}
	return 0;
}

/* The listed script of that name, or NULL. */
static struct sieve_script *have_find(struct sieve_scripts *have, const char *name)
{
	for (size_t i = 0; i < have->n; i++)
		if (strcmp(have->v[i].name, name) == 0)
			return &have->v[i];
	return NULL;
}

static bool have_same(const struct sieve_script *h, const struct msieve_put *p)
{
	return h && h->len == p->len && (p->len == 0 || memcmp(h->data, p->data, p->len) == 0);
}

int msieve_put_session(const struct msieve_io *io, const struct managesieve_opts *o,
		       const char *peer, const struct msieve_put *v, size_t n,
		       struct msieve_put_result *res, struct arca_err *err)
{
	struct sess s = { .io = io, .o = o, .peer = peer ? peer : "?", .err = err };
	abuf_init(&s.line);
	abuf_init(&s.resp);
	memset(res, 0, sizeof(*res));
	struct sieve_scripts have = { 0 };
	/* each script's name on the server (sieve_names.h): its own, or a
	 * NAME-restored one when the server has another script of its name */
	char (*names)[MSIEVE_NAME_MAX + 1] = calloc(n ? n : 1, sizeof(*names));
	int rc = names ? check_puts(&s, v, n) : fail(&s, ARCA_ENOMEM, "out of memory");
	if (rc == 0)
		rc = sess_open(&s);
	if (rc == 0)
		rc = listscripts(&s, &have);
	/* the content of those we would write over or beside, to compare */
	for (size_t i = 0; rc == 0 && i < have.n; i++)
		for (size_t j = 0; j < n; j++) {
			size_t len = strlen(v[j].name);
			const char *hn = have.v[i].name;
			if (strncmp(hn, v[j].name, len) == 0 &&
			    (hn[len] == '\0' || strncmp(hn + len, SIEVE_RESTORED_SUFFIX, strlen(SIEVE_RESTORED_SUFFIX)) == 0)) {
				rc = getscript(&s, &have.v[i]);
				break;
			}
		}
	const char *server_active = NULL;
	for (size_t i = 0; rc == 0 && i < have.n; i++)
		if (have.v[i].active)
			server_active = have.v[i].name;
	for (size_t j = 0; rc == 0 && j < n; j++) {
		/* the first candidate that is free or holds our bytes; one of
		 * our other scripts' names is never taken */
		bool found = false, same = false;
		for (unsigned k = 0; k < SIEVE_NAME_TRIES && !found; k++) {
			struct arca_err e = { 0 };
			if (!sieve_restored_name(v[j].name, k, names[j], sizeof(names[j])) ||
			    msieve_name_check((const uint8_t *)names[j], strlen(names[j]), &e) != 0)
				break;
			bool ours = false;
			for (size_t i = 0; k > 0 && i < n && !ours; i++)
				ours = strcmp(v[i].name, names[j]) == 0;
			if (ours)
				continue;
			const struct sieve_script *h = have_find(&have, names[j]);
			same = have_same(h, &v[j]);
			found = h == NULL || same;
		}
		if (!found) {
			rc = fail(&s, ARCA_EEXIST, "the server has other scripts named \"%s\" and %s%s to %s%s-%d: not put",
				  v[j].name, v[j].name, SIEVE_RESTORED_SUFFIX, v[j].name, SIEVE_RESTORED_SUFFIX,
				  SIEVE_NAME_TRIES - 1);
			break;
		}
		if (strcmp(names[j], v[j].name) != 0)
			res->renamed++;
		if (same) {
			res->same++;
			continue;
		}
		struct msieve_put p = v[j];
		p.name = names[j];
		rc = putscript(&s, &p);
		if (rc == 0)
			res->put++;
	}
	/* the snapshot's active script, unless the server has another one
	 * active (chosen since the attack: it stays) */
	for (size_t j = 0; rc == 0 && j < n; j++) {
		if (!v[j].active)
			continue;
		if (server_active && strcmp(server_active, names[j]) == 0) {
			res->active_already = true;
			break;
		}
		if (server_active) {
			res->active_kept = true;
			snprintf(res->server_active, sizeof(res->server_active), "%s", server_active);
			break;
		}
		rc = setactive(&s, names[j]);
		if (rc == 0)
			res->activated = true;
	}
	if (rc == 0)
		sess_logout(&s);
	free(names);
	sieve_scripts_release(&have);
	abuf_release(&s.line);
	abuf_release(&s.resp);
	return rc;
}

/* ---- the canned server ------------------------------------------------- */

static int mem_read_line(void *ctx, struct abuf *line, size_t max, struct arca_err *err)
{
	struct msieve_memio *m = ctx;
	abuf_reset(line);
	const uint8_t *p = m->in + m->pos;
	size_t left = m->len - m->pos;
	const uint8_t *lf = memchr(p, '\n', left);
	if (lf == NULL) {
		m->pos = m->len;
		if (left > max)
			return arca_err_set(err, ARCA_ELIMIT, "a line longer than %zu bytes", max);
		return arca_err_set(err, ARCA_EIO, "connection closed by the server");
	}
	size_t n = (size_t)(lf - p);
	m->pos += n + 1;
	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (n > max)
		return arca_err_set(err, ARCA_ELIMIT, "a line longer than %zu bytes", max);
	if (abuf_add(line, p, n) || abuf_cstr(line))
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	return 0;
}

static int mem_read_exact(void *ctx, struct abuf *out, size_t n, struct arca_err *err)
{
	struct msieve_memio *m = ctx;
	if (m->len - m->pos < n) {
		m->pos = m->len;
		return arca_err_set(err, ARCA_EIO, "connection closed by the server");
	}
	if (abuf_add(out, m->in + m->pos, n))
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	m->pos += n;
	return 0;
}

static int mem_write_all(void *ctx, const void *p, size_t n, struct arca_err *err)
{
	struct msieve_memio *m = ctx;
	if (abuf_add(&m->sent, p, n))
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	return 0;
}

static int mem_start_tls(void *ctx, struct arca_err *err)
{
	struct msieve_memio *m = ctx;
	m->tls_started++;
	return 0;
}

void msieve_memio_init(struct msieve_memio *m, const void *in, size_t len, struct msieve_io *io_r)
{
	m->in = in;
	m->len = len;
	m->pos = 0;
	abuf_init(&m->sent);
	m->tls_started = 0;
	*io_r = (struct msieve_io){ m, mem_read_line, mem_read_exact, mem_write_all,
				    mem_start_tls };
}

void msieve_memio_release(struct msieve_memio *m)
{
	abuf_release(&m->sent);
}

/* ---- over the network -------------------------------------------------- */

static int nc_read_line(void *ctx, struct abuf *line, size_t max, struct arca_err *err)
{
	return netconn_read_line(ctx, line, max, err);
}

static int nc_read_exact(void *ctx, struct abuf *out, size_t n, struct arca_err *err)
{
	return netconn_read_exact(ctx, out, n, err);
}

static int nc_write_all(void *ctx, const void *p, size_t n, struct arca_err *err)
{
	return netconn_write_all(ctx, p, n, err);
}

static int nc_start_tls(void *ctx, struct arca_err *err)
{
	return netconn_start_tls(ctx, err);
}

int managesieve_fetch_all(const struct managesieve_opts *o, struct sieve_scripts *out,
			  struct arca_err *err)
{
	out->v = NULL;
	out->n = 0;
	if (o == NULL || o->net.host == NULL || o->net.host[0] == '\0')
		return arca_err_set(err, ARCA_EINVAL, "managesieve: no server to connect to");
	char peer[300];
	snprintf(peer, sizeof(peer), "%s:%u", o->net.host, (unsigned)o->net.port);
	struct netconn *c;
	int rc = netconn_open(&o->net, &c, err);
	if (rc)
		return rc;
	struct msieve_io io = { c, nc_read_line, nc_read_exact, nc_write_all, nc_start_tls };
	rc = msieve_session(&io, o, peer, out, err);
	netconn_free(c);
	return rc;
}

int managesieve_put_all(const struct managesieve_opts *o, const struct msieve_put *v, size_t n,
			struct msieve_put_result *res, struct arca_err *err)
{
	memset(res, 0, sizeof(*res));
	if (o == NULL || o->net.host == NULL || o->net.host[0] == '\0')
		return arca_err_set(err, ARCA_EINVAL, "managesieve: no server to connect to");
	char peer[300];
	snprintf(peer, sizeof(peer), "%s:%u", o->net.host, (unsigned)o->net.port);
	struct netconn *c;
	int rc = netconn_open(&o->net, &c, err);
	if (rc)
		return rc;
	struct msieve_io io = { c, nc_read_line, nc_read_exact, nc_write_all, nc_start_tls };
	rc = msieve_put_session(&io, o, peer, v, n, res, err);
	netconn_free(c);
	return rc;
}
