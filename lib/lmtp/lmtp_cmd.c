/*
 * lmtp_cmd.c - LMTP command lines: splitting, parsing, reply texts.
 *
 * The grammar is RFC 5321 4.1 with the RFC 6531 (SMTPUTF8), RFC 1652/3030
 * (BODY), RFC 1870 (SIZE), RFC 3461 (DSN) and RFC 4954 (AUTH=) parameters;
 * every leniency is listed in docs/protocol/lmtp.md.  The parser works on the
 * caller's bytes and writes only into struct lmtp_cmd, whose fixed arrays are
 * large enough for anything a line within LMTP_CMD_MAX can hold.
 */
#include "lmtp.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lmtp_private.h"
#include "banned.h"

/* ---- reply texts ------------------------------------------------------- */

static const char *const replies[LMTP_PE_COUNT] = {
	[LMTP_PE_NONE] = "250 2.0.0 OK",
	[LMTP_PE_LINE_TOO_LONG] = "500 5.5.2 Line too long",
	[LMTP_PE_BAD_CHAR] = "500 5.5.2 Syntax error: invalid character in command",
	[LMTP_PE_UNKNOWN_VERB] = "500 5.5.1 Command unrecognized",
	[LMTP_PE_NOT_IMPL] = "502 5.5.1 Command not implemented",
	[LMTP_PE_USE_LHLO] = "500 5.5.1 This is LMTP: use LHLO",
	[LMTP_PE_NO_ARGS] = "501 5.5.4 Syntax error: no parameters allowed",
	[LMTP_PE_LHLO_SYNTAX] = "501 5.5.4 Syntax: LHLO hostname",
	[LMTP_PE_MAIL_SYNTAX] = "501 5.5.4 Syntax: MAIL FROM:<address>",
	[LMTP_PE_RCPT_SYNTAX] = "501 5.5.4 Syntax: RCPT TO:<address>",
	[LMTP_PE_BDAT_SYNTAX] = "501 5.5.4 Syntax: BDAT size [LAST]",
	[LMTP_PE_VRFY_SYNTAX] = "501 5.5.4 Syntax: VRFY address",
	[LMTP_PE_BAD_SENDER] = "501 5.1.7 Bad sender address syntax",
	[LMTP_PE_BAD_RCPT] = "501 5.1.3 Bad recipient address syntax",
	[LMTP_PE_SENDER_TOO_LONG] = "501 5.1.7 Sender address too long",
	[LMTP_PE_RCPT_TOO_LONG] = "501 5.1.3 Recipient address too long",
	[LMTP_PE_PARAM_SYNTAX] = "501 5.5.4 Invalid parameter",
	[LMTP_PE_PARAM_UNKNOWN] = "555 5.5.4 Unsupported parameter",
	[LMTP_PE_TOO_MANY_PARAMS] = "501 5.5.4 Too many parameters",
	[LMTP_PE_NEED_SMTPUTF8] = "553 5.6.7 Non-ASCII address requires SMTPUTF8",
	[LMTP_PE_MSG_TOO_BIG] = "552 5.3.4 Message size exceeds fixed limit",
	[LMTP_PE_NOT_JOURNAL] = "550 5.1.1 Not a journal address",
	[LMTP_PE_LOCAL_ERROR] = "451 4.3.0 Local error, try again later",
};

const char *lmtp_reply_for(int kind)
{
	if (kind < 0 || kind >= LMTP_PE_COUNT || replies[kind] == NULL)
		return "500 5.5.2 Syntax error";
	return replies[kind];
}

/* ---- shared helpers ---------------------------------------------------- */

size_t lmtp_utf8_len(const uint8_t *p, const uint8_t *end)
{
	uint8_t c = p[0];
	size_t n;
	uint8_t lo = 0x80, hi = 0xbf;   /* range of the second byte */
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;          /* no overlong forms */
		else if (c == 0xed)
			hi = 0x9f;          /* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;          /* <= U+10FFFF */
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

bool lmtp_text_ok(const uint8_t *p, size_t n)
{
	const uint8_t *end = p + n;
	while (p < end) {
		if (*p < 0x20 || *p == 0x7f)
			return false;
		if (*p < 0x80) {
			p++;
			continue;
		}
		size_t k = lmtp_utf8_len(p, end);
		if (k == 0)
			return false;
		p += k;
	}
	return true;
}

bool lmtp_ci_eq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y + 32);
		if (x != y)
			return false;
	}
	return true;
}

static bool is_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(unsigned char c)
{
	return is_alpha(c) || is_digit(c);
}

static int hexval(unsigned char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* RFC 5322 atext (RFC 5321 Atom characters), ASCII part. */
static bool is_atext(unsigned char c)
{
	if (is_alnum(c))
		return true;
	return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* dcontent of an address literal: %d33-90 / %d94-126. */
static bool is_dcontent(unsigned char c)
{
	return (c >= 33 && c <= 90) || (c >= 94 && c <= 126);
}

static bool literal_ok(const char *p, size_t n, bool strict)
{
	char tmp[LMTP_DOMAIN_MAX + 1];
	if (n < 3 || p[0] != '[' || p[n - 1] != ']')
		return false;
	p++;
	n -= 2;
	for (size_t i = 0; i < n; i++)
		if (!is_dcontent((unsigned char)p[i]))
			return false;
	unsigned char buf[16];
	if (n > 5 && lmtp_ci_eq(p, "IPv6:", 5)) {
		memcpy(tmp, p + 5, n - 5);
		tmp[n - 5] = '\0';
		return inet_pton(AF_INET6, tmp, buf) == 1;
	}
	size_t colon = 0;
	while (colon < n && p[colon] != ':')
		colon++;
	if (colon == n) {
		memcpy(tmp, p, n);
		tmp[n] = '\0';
		return inet_pton(AF_INET, tmp, buf) == 1;
	}
	if (strict)
		return false;
	/* General-address-literal: Standardized-tag ":" 1*dcontent, the tag
	 * an Ldh-str (letters, digits, '-', ending in a letter or digit). */
	if (colon == 0 || colon + 1 == n || !is_alnum((unsigned char)p[colon - 1]))
		return false;
	for (size_t i = 0; i < colon; i++)
		if (!is_alnum((unsigned char)p[i]) && p[i] != '-')
			return false;
	return true;
}

bool lmtp_domain_ok(const char *p, size_t n, bool strict)
{
	if (n == 0 || n > LMTP_DOMAIN_MAX)
		return false;
	if (p[0] == '[')
		return literal_ok(p, n, strict);
	const uint8_t *s = (const uint8_t *)p, *end = s + n;
	while (s < end) {
		const uint8_t *label = s;
		bool ascii = true, digits = true;
		while (s < end && *s != '.') {
			if (*s >= 0x80) {
				size_t k = lmtp_utf8_len(s, end);
				if (k == 0)
					return false;
				s += k;
				ascii = digits = false;
				continue;
			}
			if (!is_alnum(*s) && *s != '-' && (strict || *s != '_'))
				return false;
			if (!is_digit(*s))
				digits = false;
			s++;
		}
		size_t len = (size_t)(s - label);
		if (len == 0)
			return false;
		if (strict) {
			if (label[0] == '-' || s[-1] == '-')
				return false;
			if (ascii && len > 63)
				return false;
			if (s == end && digits)
				return false;   /* a TLD is never all digits */
		}
		if (s < end) {
			s++;    /* the dot */
			if (s == end)
				return false;   /* trailing dot */
		}
	}
	return true;
}

/* ---- line splitting ---------------------------------------------------- */

void lmtp_lines_init(struct lmtp_lines *s)
{
	s->skipping = false;
	s->bare_lf = false;
}

int lmtp_line_next(struct lmtp_lines *s, const uint8_t *in, size_t inlen,
		   size_t *line_len_r, size_t *consumed_r)
{
	if (s == NULL || line_len_r == NULL || consumed_r == NULL ||
	    (in == NULL && inlen > 0))
		return ARCA_EINVAL;
	*line_len_r = 0;
	*consumed_r = 0;
	s->bare_lf = false;
	if (inlen == 0)
		return LMTP_LINE_NEED;
	if (s->skipping) {
		const uint8_t *lf = memchr(in, '\n', inlen);
		if (lf == NULL) {
			*consumed_r = inlen;
			return LMTP_LINE_NEED;
		}
		s->skipping = false;
		*consumed_r = (size_t)(lf - in) + 1;
		return LMTP_LINE_TOOLONG;
	}
	size_t look = inlen < LMTP_LINE_MAX ? inlen : LMTP_LINE_MAX;
	const uint8_t *lf = memchr(in, '\n', look);
	if (lf == NULL) {
		if (inlen < LMTP_LINE_MAX)
			return LMTP_LINE_NEED;
		/* LMTP_LINE_MAX bytes and no LF: overlong whatever follows */
		lf = memchr(in + look, '\n', inlen - look);
		if (lf == NULL) {
			s->skipping = true;
			*consumed_r = inlen;
			return LMTP_LINE_NEED;
		}
	}
	size_t i = (size_t)(lf - in);
	size_t len = i;
	*consumed_r = i + 1;
	if (len > 0 && in[len - 1] == '\r')
		len--;
	if (len > LMTP_CMD_MAX)
		return LMTP_LINE_TOOLONG;
	s->bare_lf = len == i;
	*line_len_r = len;
	return LMTP_LINE_OK;
}

/* ---- command parsing --------------------------------------------------- */

struct cur {
	const uint8_t *p;
	const uint8_t *end;
};

static bool at_end(const struct cur *c)
{
	return c->p >= c->end;
}

static int peek(const struct cur *c)
{
	return c->p < c->end ? *c->p : -1;
}

/* Skip spaces; returns how many. */
static size_t skip_sp(struct cur *c)
{
	size_t n = 0;
	while (c->p < c->end && *c->p == ' ') {
		c->p++;
		n++;
	}
	return n;
}

/* True if only spaces are left. */
static bool only_sp_left(struct cur *c)
{
	skip_sp(c);
	return at_end(c);
}

/* Record a failure of `kind` in cmd and a one-line message in err.  The
 * message never quotes the peer's bytes except validated keywords. */
static int fail(struct lmtp_cmd *cmd, struct arca_err *err, int code,
		enum lmtp_perr kind, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int fail(struct lmtp_cmd *cmd, struct arca_err *err, int code,
		enum lmtp_perr kind, const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cmd->error = kind;
	cmd->reply = lmtp_reply_for(kind);
	return arca_err_set(err, code, "LMTP: %s", msg);
}

/* Copy c->p..c->end with trailing spaces removed into cmd->arg. */
static size_t take_arg(struct cur *c, struct lmtp_cmd *cmd)
{
	const uint8_t *e = c->end;
	while (e > c->p && e[-1] == ' ')
		e--;
	size_t n = (size_t)(e - c->p);
	memcpy(cmd->arg, c->p, n);   /* n <= LMTP_CMD_MAX */
	cmd->arg[n] = '\0';
	c->p = c->end;
	return n;
}

enum path_rc {
	PATH_OK = 0,
	PATH_BAD = 1,
	PATH_LONG = 2,
};

struct sbuf {
	char *s;
	size_t len;
	size_t max;
};

static bool sbuf_add(struct sbuf *b, const uint8_t *p, size_t n)
{
	if (b->len + n > b->max)
		return false;
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
	return true;
}

/* One non-ASCII UTF-8 character at c->p into b; PATH_* result. */
static int take_utf8(struct cur *c, struct sbuf *b)
{
	size_t k = lmtp_utf8_len(c->p, c->end);
	if (k == 0)
		return PATH_BAD;
	if (b != NULL && !sbuf_add(b, c->p, k))
		return PATH_LONG;
	c->p += k;
	return PATH_OK;
}

/*
 * Domain or address literal at c->p, ended by any byte that cannot be part
 * of it; copied into out (LMTP_DOMAIN_MAX + 1 bytes) when out != NULL.
 */
static int parse_domain(struct cur *c, char *out)
{
	const uint8_t *s = c->p;
	if (peek(c) == '[') {
		c->p++;
		while (c->p < c->end && is_dcontent(*c->p))
			c->p++;
		if (peek(c) != ']')
			return PATH_BAD;
		c->p++;
	} else {
		while (c->p < c->end) {
			uint8_t b = *c->p;
			if (b >= 0x80) {
				size_t k = lmtp_utf8_len(c->p, c->end);
				if (k == 0)
					return PATH_BAD;
				c->p += k;
			} else if (is_alnum(b) || b == '-' || b == '_' || b == '.') {
				c->p++;
			} else {
				break;
			}
		}
	}
	size_t n = (size_t)(c->p - s);
	if (n > LMTP_DOMAIN_MAX)
		return PATH_LONG;
	if (!lmtp_domain_ok((const char *)s, n, false))
		return PATH_BAD;
	if (out != NULL) {
		memcpy(out, s, n);
		out[n] = '\0';
	}
	return PATH_OK;
}

static int parse_local(struct cur *c, struct lmtp_path *pa)
{
	struct sbuf b = { pa->local, 0, LMTP_LOCAL_MAX };
	int rc;
	pa->local[0] = '\0';
	if (peek(c) == '"') {
		pa->quoted = true;
		c->p++;
		for (;;) {
			int ch = peek(c);
			if (ch < 0)
				return PATH_BAD;
			if (ch == '"') {
				c->p++;
				return PATH_OK;
			}
			if (ch == '\\') {
				c->p++;
				ch = peek(c);
				if (ch < 32 || ch == 127)
					return PATH_BAD;
			} else if (ch < 32 || ch == 127) {
				return PATH_BAD;
			}
			if (ch >= 0x80) {
				if ((rc = take_utf8(c, &b)) != PATH_OK)
					return rc;
				continue;
			}
			if (!sbuf_add(&b, c->p, 1))
				return PATH_LONG;
			c->p++;
		}
	}
	/* Dot-string, leniently: atext, UTF-8 and dots in any order. */
	while (c->p < c->end) {
		uint8_t ch = *c->p;
		if (ch >= 0x80) {
			if ((rc = take_utf8(c, &b)) != PATH_OK)
				return rc;
			continue;
		}
		if (!is_atext(ch) && ch != '.')
			break;
		if (!sbuf_add(&b, c->p, 1))
			return PATH_LONG;
		c->p++;
	}
	return b.len > 0 ? PATH_OK : PATH_BAD;
}

static int parse_path_in(struct cur *c, struct lmtp_path *pa, bool allow_null)
{
	int rc;
	if (peek(c) != '<')
		return PATH_BAD;
	c->p++;
	if (peek(c) == '>') {
		c->p++;
		if (!allow_null)
			return PATH_BAD;
		pa->null = true;
		return PATH_OK;
	}
	if (peek(c) == '@') {
		/* A-d-l: "@" Domain *( "," "@" Domain ) ":" */
		for (;;) {
			if (peek(c) != '@')
				return PATH_BAD;
			c->p++;
			if ((rc = parse_domain(c, NULL)) != PATH_OK)
				return rc;
			if (peek(c) != ',')
				break;
			c->p++;
		}
		if (peek(c) != ':')
			return PATH_BAD;
		c->p++;
		pa->source_route = true;
	}
	if ((rc = parse_local(c, pa)) != PATH_OK)
		return rc;
	if (peek(c) == '@') {
		c->p++;
		if ((rc = parse_domain(c, pa->domain)) != PATH_OK)
			return rc;
	}
	if (peek(c) != '>')
		return PATH_BAD;
	c->p++;
	size_t ll = strlen(pa->local), dl = strlen(pa->domain);
	memcpy(pa->addr, pa->local, ll);
	if (dl > 0) {
		pa->addr[ll] = '@';
		memcpy(pa->addr + ll + 1, pa->domain, dl + 1);
	} else {
		pa->addr[ll] = '\0';
	}
	for (const char *q = pa->addr; *q != '\0'; q++)
		if ((unsigned char)*q >= 0x80)
			pa->utf8 = true;
	return PATH_OK;
}

/* A path of at most LMTP_PATH_MAX bytes at c->p. */
static int parse_path(struct cur *c, struct lmtp_path *pa, bool allow_null)
{
	struct cur lim = *c;
	if ((size_t)(c->end - c->p) > LMTP_PATH_MAX)
		lim.end = c->p + LMTP_PATH_MAX;
	memset(pa, 0, sizeof(*pa));
	int rc = parse_path_in(&lim, pa, allow_null);
	if (rc == PATH_BAD && lim.end < c->end && lim.p >= lim.end)
		rc = PATH_LONG;  /* ran into the limit, not into an error */
	if (rc != PATH_OK) {
		memset(pa, 0, sizeof(*pa));
		return rc;
	}
	c->p = lim.p;
	return PATH_OK;
}

static bool parse_u64(const uint8_t *p, size_t n, uint64_t *v_r)
{
	uint64_t v = 0;
	if (n == 0 || n > 20)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(p[i]))
			return false;
		unsigned d = (unsigned)(p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*v_r = v;
	return true;
}

static bool word_eq(const uint8_t *p, size_t n, const char *w)
{
	return n == strlen(w) && lmtp_ci_eq((const char *)p, w, n);
}

/* xtext (RFC 3461 4): "+" 2HEX or %d33-42 / %d44-60 / %d62-126.  Decoded
 * into out (max bytes, NUL-terminated) when out != NULL; returns the
 * decoded length or -1. */
static long xtext_decode(const uint8_t *p, size_t n, char *out, size_t max)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = p[i];
		if (b == '+') {
			int hi, lo;
			if (i + 2 >= n)
				return -1;
			hi = hexval(p[i + 1]);
			lo = hexval(p[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			b = (uint8_t)(hi * 16 + lo);
			i += 2;
		} else if (b < 33 || b > 126 || b == '=') {
			return -1;
		}
		if (o >= max)
			return -1;
		if (out != NULL)
			out[o] = (char)b;
		o++;
	}
	if (out != NULL)
		out[o] = '\0';
	return (long)o;
}

static void put_utf8(uint32_t cp, uint8_t t[4], size_t *n_r)
{
	if (cp < 0x80) {
		t[0] = (uint8_t)cp;
		*n_r = 1;
	} else if (cp < 0x800) {
		t[0] = (uint8_t)(0xc0 | (cp >> 6));
		t[1] = (uint8_t)(0x80 | (cp & 0x3f));
		*n_r = 2;
	} else if (cp < 0x10000) {
		t[0] = (uint8_t)(0xe0 | (cp >> 12));
		t[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		t[2] = (uint8_t)(0x80 | (cp & 0x3f));
		*n_r = 3;
	} else {
		t[0] = (uint8_t)(0xf0 | (cp >> 18));
		t[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
		t[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		t[3] = (uint8_t)(0x80 | (cp & 0x3f));
		*n_r = 4;
	}
}

/*
 * utf-8-addr-xtext / utf-8-addr-unitext (RFC 6533 3): characters other than
 * '+', '=', '\' as they are (UTF-8 included), "\x{HEX}" for a code point;
 * "+" 2HEX is accepted too.  Returns the decoded length or -1.
 */
static long utf8addr_decode(const uint8_t *p, size_t n, char *out, size_t max)
{
	size_t o = 0;
	const uint8_t *end = p + n;
	while (p < end) {
		uint8_t t[4];
		size_t tn = 1;
		if (*p == '\\') {
			if (end - p < 5 || p[1] != 'x' || p[2] != '{')
				return -1;
			p += 3;
			uint32_t cp = 0;
			size_t digits = 0;
			while (p < end && *p != '}') {
				int h = hexval(*p);
				if (h < 0 || ++digits > 6)
					return -1;
				cp = cp * 16 + (uint32_t)h;
				p++;
			}
			if (p == end || digits < 2 || cp > 0x10ffff ||
			    (cp >= 0xd800 && cp <= 0xdfff))
				return -1;
			p++;
			put_utf8(cp, t, &tn);
		} else if (*p == '+') {
			if (end - p < 3 || hexval(p[1]) < 0 || hexval(p[2]) < 0)
				return -1;
			t[0] = (uint8_t)(hexval(p[1]) * 16 + hexval(p[2]));
			p += 3;
		} else if (*p >= 0x80) {
			tn = lmtp_utf8_len(p, end);
			if (tn == 0)
				return -1;
			memcpy(t, p, tn);
			p += tn;
		} else if (*p >= 33 && *p <= 126 && *p != '=') {
			t[0] = *p++;
		} else {
			return -1;
		}
		if (o + tn > max)
			return -1;
		memcpy(out + o, t, tn);
		o += tn;
	}
	out[o] = '\0';
	return (long)o;
}

enum param_bit {
	P_SIZE = 1 << 0,
	P_BODY = 1 << 1,
	P_SMTPUTF8 = 1 << 2,
	P_RET = 1 << 3,
	P_ENVID = 1 << 4,
	P_AUTH = 1 << 5,
	P_NOTIFY = 1 << 6,
	P_ORCPT = 1 << 7,
};

static int param_notify(struct lmtp_cmd *cmd, const uint8_t *v, size_t n)
{
	const uint8_t *end = v + n;
	unsigned bits = 0;
	while (v <= end) {
		const uint8_t *comma = memchr(v, ',', (size_t)(end - v));
		const uint8_t *e = comma != NULL ? comma : end;
		size_t len = (size_t)(e - v);
		if (word_eq(v, len, "NEVER"))
			bits |= LMTP_NOTIFY_NEVER;
		else if (word_eq(v, len, "SUCCESS"))
			bits |= LMTP_NOTIFY_SUCCESS;
		else if (word_eq(v, len, "FAILURE"))
			bits |= LMTP_NOTIFY_FAILURE;
		else if (word_eq(v, len, "DELAY"))
			bits |= LMTP_NOTIFY_DELAY;
		else
			return -1;
		if (comma == NULL)
			break;
		v = comma + 1;
	}
	if ((bits & LMTP_NOTIFY_NEVER) && bits != LMTP_NOTIFY_NEVER)
		return -1;
	cmd->notify = bits;
	return 0;
}

static int param_orcpt(struct lmtp_cmd *cmd, const uint8_t *v, size_t n)
{
	const uint8_t *semi = memchr(v, ';', n);
	if (semi == NULL)
		return -1;
	size_t tl = (size_t)(semi - v);
	if (tl == 0 || tl > LMTP_ORCPT_TYPE_MAX)
		return -1;
	for (size_t i = 0; i < tl; i++)
		if (!is_atext(v[i]))
			return -1;
	const uint8_t *a = semi + 1;
	size_t an = n - tl - 1;
	long dl;
	if (word_eq(v, tl, "utf-8"))
		dl = utf8addr_decode(a, an, cmd->orcpt, LMTP_ORCPT_MAX);
	else
		dl = xtext_decode(a, an, cmd->orcpt, LMTP_ORCPT_MAX);
	if (dl < 0 || !lmtp_text_ok((const uint8_t *)cmd->orcpt, (size_t)dl)) {
		cmd->orcpt[0] = '\0';
		return -1;
	}
	memcpy(cmd->orcpt_type, v, tl);
	cmd->orcpt_type[tl] = '\0';
	cmd->has_orcpt = true;
	return 0;
}

/*
 * The parameters after a path: *( 1*SP esmtp-keyword ["=" esmtp-value] )
 * with trailing spaces allowed.
 */
static int parse_params(struct cur *c, struct lmtp_cmd *cmd, bool mail,
			struct arca_err *err)
{
	unsigned seen = 0, count = 0;
	/* Counted first, so the limit holds whatever the parameters are. */
	for (const uint8_t *p = c->p; p < c->end; p++)
		if (*p != ' ' && (p == c->p || p[-1] == ' '))
			count++;
	if (count > LMTP_PARAMS_MAX)
		return fail(cmd, err, ARCA_ELIMIT, LMTP_PE_TOO_MANY_PARAMS,
			    "more than %d parameters", LMTP_PARAMS_MAX);
	for (;;) {
		if (at_end(c))
			return 0;
		if (skip_sp(c) == 0)
			return fail(cmd, err, ARCA_EFORMAT,
				    mail ? LMTP_PE_MAIL_SYNTAX : LMTP_PE_RCPT_SYNTAX,
				    mail ? "MAIL: junk after the address"
					 : "RCPT: junk after the address");
		if (at_end(c))
			return 0;
		const uint8_t *k = c->p;
		while (c->p < c->end && (is_alnum(*c->p) || *c->p == '-'))
			c->p++;
		size_t kn = (size_t)(c->p - k);
		const uint8_t *v = NULL;
		size_t vn = 0;
		if (peek(c) == '=') {
			c->p++;
			v = c->p;
			while (c->p < c->end && *c->p != ' ' && *c->p != '=')
				c->p++;
			vn = (size_t)(c->p - v);
		}
		if (kn == 0 || !is_alnum(k[0]) || kn > 32 ||
		    (!at_end(c) && peek(c) != ' ') || (v != NULL && vn == 0))
			return fail(cmd, err, ARCA_EFORMAT, LMTP_PE_PARAM_SYNTAX,
				    "malformed parameter");
		/* esmtp-value: %d33-60 / %d62-126 / UTF8-non-ascii; the line
		 * check already refused control characters and bad UTF-8. */
		unsigned bit = 0;
		int bad = 0;
		char kw[33];
		memcpy(kw, k, kn);
		kw[kn] = '\0';
		if (mail && word_eq(k, kn, "SIZE")) {
			bit = P_SIZE;
			bad = v == NULL || !parse_u64(v, vn, &cmd->size);
			cmd->has_size = !bad;
		} else if (mail && word_eq(k, kn, "BODY")) {
			bit = P_BODY;
			if (v != NULL && word_eq(v, vn, "7BIT"))
				cmd->body = LMTP_BODY_7BIT;
			else if (v != NULL && word_eq(v, vn, "8BITMIME"))
				cmd->body = LMTP_BODY_8BITMIME;
			else if (v != NULL && word_eq(v, vn, "BINARYMIME"))
				cmd->body = LMTP_BODY_BINARYMIME;
			else
				bad = 1;
		} else if (mail && word_eq(k, kn, "SMTPUTF8")) {
			bit = P_SMTPUTF8;
			bad = v != NULL;
			cmd->smtputf8 = !bad;
		} else if (mail && word_eq(k, kn, "RET")) {
			bit = P_RET;
			if (v != NULL && word_eq(v, vn, "FULL"))
				cmd->ret = LMTP_RET_FULL;
			else if (v != NULL && word_eq(v, vn, "HDRS"))
				cmd->ret = LMTP_RET_HDRS;
			else
				bad = 1;
		} else if (mail && word_eq(k, kn, "ENVID")) {
			bit = P_ENVID;
			bad = v == NULL || xtext_decode(v, vn, NULL, LMTP_ENVID_MAX) < 0;
			cmd->has_envid = !bad;
		} else if (mail && word_eq(k, kn, "AUTH")) {
			bit = P_AUTH;
			bad = v == NULL || (!word_eq(v, vn, "<>") &&
					    xtext_decode(v, vn, NULL, LMTP_CMD_MAX) < 0);
			cmd->has_auth = !bad;
		} else if (!mail && word_eq(k, kn, "NOTIFY")) {
			bit = P_NOTIFY;
			bad = v == NULL || param_notify(cmd, v, vn) != 0;
		} else if (!mail && word_eq(k, kn, "ORCPT")) {
			bit = P_ORCPT;
			bad = v == NULL || param_orcpt(cmd, v, vn) != 0;
		} else {
			return fail(cmd, err, ARCA_EFORMAT, LMTP_PE_PARAM_UNKNOWN,
				    "%s: unsupported parameter %s",
				    mail ? "MAIL" : "RCPT", kw);
		}
		if (seen & bit)
			return fail(cmd, err, ARCA_EFORMAT, LMTP_PE_PARAM_SYNTAX,
				    "parameter %s given twice", kw);
		seen |= bit;
		if (bad)
			return fail(cmd, err, ARCA_EFORMAT, LMTP_PE_PARAM_SYNTAX,
				    "parameter %s: bad value", kw);
	}
}

static int parse_mail_rcpt(struct cur *c, struct lmtp_cmd *cmd, bool mail,
			   struct arca_err *err)
{
	const char *kw = mail ? "FROM:" : "TO:";
	size_t kl = strlen(kw);
	enum lmtp_perr syn = mail ? LMTP_PE_MAIL_SYNTAX : LMTP_PE_RCPT_SYNTAX;
	if (skip_sp(c) == 0 || (size_t)(c->end - c->p) < kl ||
	    !lmtp_ci_eq((const char *)c->p, kw, kl))
		return fail(cmd, err, ARCA_EFORMAT, syn,
			    mail ? "expected MAIL FROM:<address>"
				 : "expected RCPT TO:<address>");
	c->p += kl;
	skip_sp(c);
	if (at_end(c))
		return fail(cmd, err, ARCA_EFORMAT, syn,
			    mail ? "MAIL FROM: without an address"
				 : "RCPT TO: without an address");
	int rc = parse_path(c, &cmd->path, mail);
	if (rc == PATH_LONG)
		return fail(cmd, err, ARCA_ELIMIT,
			    mail ? LMTP_PE_SENDER_TOO_LONG : LMTP_PE_RCPT_TOO_LONG,
			    mail ? "sender address too long"
				 : "recipient address too long");
	if (rc != PATH_OK)
		return fail(cmd, err, ARCA_EFORMAT,
			    mail ? LMTP_PE_BAD_SENDER : LMTP_PE_BAD_RCPT,
			    mail ? "bad sender address syntax"
				 : "bad recipient address syntax");
	if ((rc = parse_params(c, cmd, mail, err)) != 0)
		return rc;
	if (mail && cmd->utf8 && !cmd->smtputf8)
		return fail(cmd, err, ARCA_EFORMAT, LMTP_PE_NEED_SMTPUTF8,
			    "MAIL: non-ASCII without SMTPUTF8");
	return 0;
}

static int parse_bdat(struct cur *c, struct lmtp_cmd *cmd, struct arca_err *err)
{
	if (skip_sp(c) == 0)
		return fail(cmd, err, ARCA_EFORMAT, LMTP_PE_BDAT_SYNTAX,
			    "BDAT without a size");
	const uint8_t *s = c->p;
	while (c->p < c->end && is_digit(*c->p))
		c->p++;
	if (!parse_u64(s, (size_t)(c->p - s), &cmd->bdat_size))
		return fail(cmd, err, ARCA_EFORMAT, LMTP_PE_BDAT_SYNTAX,
			    "BDAT: bad chunk size");
	if (only_sp_left(c))
		return 0;
	if (c->p[-1] != ' ')
		return fail(cmd, err, ARCA_EFORMAT, LMTP_PE_BDAT_SYNTAX,
			    "BDAT: bad chunk size");
	if ((size_t)(c->end - c->p) < 4 || !lmtp_ci_eq((const char *)c->p, "LAST", 4))
		return fail(cmd, err, ARCA_EFORMAT, LMTP_PE_BDAT_SYNTAX,
			    "BDAT: junk after the size");
	c->p += 4;
	if (!only_sp_left(c))
		return fail(cmd, err, ARCA_EFORMAT, LMTP_PE_BDAT_SYNTAX,
			    "BDAT: junk after LAST");
	cmd->bdat_last = true;
	return 0;
}

static const struct {
	const char *name;
	enum lmtp_verb verb;
} verbs[] = {
	{ "LHLO", LMTP_LHLO }, { "MAIL", LMTP_MAIL }, { "RCPT", LMTP_RCPT },
	{ "DATA", LMTP_DATA }, { "BDAT", LMTP_BDAT }, { "RSET", LMTP_RSET },
	{ "NOOP", LMTP_NOOP }, { "QUIT", LMTP_QUIT }, { "VRFY", LMTP_VRFY },
	{ "STARTTLS", LMTP_STARTTLS }, { "HELO", LMTP_HELO },
	{ "EHLO", LMTP_EHLO },
};

/* SMTP commands arcad knows of but does not offer: 502. */
static const char *const not_impl[] = {
	"EXPN", "HELP", "AUTH", "ETRN", "TURN", "ATRN", "BURL", "SEND",
	"SOML", "SAML",
};

int lmtp_parse_command(const char *line, size_t len, struct lmtp_cmd *cmd,
		       struct arca_err *err)
{
	if (cmd == NULL)
		return arca_err_set(err, ARCA_EINVAL, "LMTP: no command struct");
	memset(cmd, 0, sizeof(*cmd));
	if (line == NULL) {
		if (len > 0)
			return fail(cmd, err, ARCA_EINVAL, LMTP_PE_BAD_CHAR, "no line");
		line = "";
	}
	if (len > LMTP_CMD_MAX)
		return fail(cmd, err, ARCA_ELIMIT, LMTP_PE_LINE_TOO_LONG,
			    "command line longer than 998 bytes");
	struct cur c = { (const uint8_t *)line, (const uint8_t *)line + len };
	for (const uint8_t *p = c.p; p < c.end;) {
		if (*p < 0x20 || *p == 0x7f)
			return fail(cmd, err, ARCA_EFORMAT, LMTP_PE_BAD_CHAR,
				    "control character in command line");
		if (*p < 0x80) {
			p++;
			continue;
		}
		size_t k = lmtp_utf8_len(p, c.end);
		if (k == 0)
			return fail(cmd, err, ARCA_EFORMAT, LMTP_PE_BAD_CHAR,
				    "invalid UTF-8 in command line");
		cmd->utf8 = true;
		p += k;
	}
	const uint8_t *v = c.p;
	while (c.p < c.end && *c.p != ' ')
		c.p++;
	size_t vn = (size_t)(c.p - v);
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (word_eq(v, vn, verbs[i].name))
			cmd->verb = verbs[i].verb;
	if (cmd->verb == LMTP_VERB_NONE) {
		for (size_t i = 0; i < sizeof(not_impl) / sizeof(not_impl[0]); i++)
			if (word_eq(v, vn, not_impl[i]))
				return fail(cmd, err, ARCA_EFORMAT, LMTP_PE_NOT_IMPL,
					    "command not implemented");
		return fail(cmd, err, ARCA_EFORMAT, LMTP_PE_UNKNOWN_VERB,
			    "unknown command");
	}
	switch (cmd->verb) {
	case LMTP_DATA:
	case LMTP_RSET:
	case LMTP_QUIT:
	case LMTP_STARTTLS:
		if (!only_sp_left(&c))
			return fail(cmd, err, ARCA_EFORMAT, LMTP_PE_NO_ARGS,
				    "command takes no parameters");
		return 0;
	case LMTP_NOOP:
		if (!at_end(&c)) {
			skip_sp(&c);
			take_arg(&c, cmd);
		}
		return 0;
	case LMTP_VRFY:
		if (skip_sp(&c) == 0 || take_arg(&c, cmd) == 0)
			return fail(cmd, err, ARCA_EFORMAT, LMTP_PE_VRFY_SYNTAX,
				    "VRFY without an argument");
		return 0;
	case LMTP_LHLO: {
		if (skip_sp(&c) == 0 || at_end(&c))
			return fail(cmd, err, ARCA_EFORMAT, LMTP_PE_LHLO_SYNTAX,
				    "LHLO without a host name");
		struct cur h = c;
		while (c.p < c.end && *c.p != ' ')
			c.p++;
		size_t hn = (size_t)(c.p - h.p);
		if (!only_sp_left(&c) || hn > LMTP_DOMAIN_MAX)
			return fail(cmd, err, ARCA_EFORMAT, LMTP_PE_LHLO_SYNTAX,
				    "LHLO takes one host name");
		memcpy(cmd->arg, h.p, hn);
		cmd->arg[hn] = '\0';
		return 0;
	}
	case LMTP_HELO:
	case LMTP_EHLO:
		return fail(cmd, err, ARCA_EFORMAT, LMTP_PE_USE_LHLO,
			    "HELO/EHLO on an LMTP connection");
	case LMTP_MAIL:
		return parse_mail_rcpt(&c, cmd, true, err);
	case LMTP_RCPT:
		return parse_mail_rcpt(&c, cmd, false, err);
	case LMTP_BDAT:
		return parse_bdat(&c, cmd, err);
	case LMTP_VERB_NONE:
		break;
	}
	return fail(cmd, err, ARCA_EFORMAT, LMTP_PE_UNKNOWN_VERB, "unknown command");
}

/* ---- formatting -------------------------------------------------------- */

/* RFC 5321 Dot-string (atoms of atext or UTF-8, single dots between). */
static bool is_dot_string(const char *s)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + strlen(s);
	bool atom = false;
	while (p < end) {
		if (*p == '.') {
			if (!atom)
				return false;
			atom = false;
			p++;
		} else if (*p >= 0x80) {
			size_t k = lmtp_utf8_len(p, end);
			if (k == 0)
				return false;
			p += k;
			atom = true;
		} else if (is_atext(*p)) {
			p++;
			atom = true;
		} else {
			return false;
		}
	}
	return atom;
}

int lmtp_path_format(const struct lmtp_path *p, struct abuf *out)
{
	int rc;
	if ((rc = abuf_add_u8(out, '<')) != 0)
		return rc;
	if (!p->null) {
		if (is_dot_string(p->local)) {
			rc = abuf_add(out, p->local, strlen(p->local));
		} else {
			rc = abuf_add_u8(out, '"');
			for (const char *q = p->local; rc == 0 && *q != '\0'; q++) {
				if (*q == '"' || *q == '\\')
					rc = abuf_add_u8(out, '\\');
				if (rc == 0)
					rc = abuf_add_u8(out, (uint8_t)*q);
			}
			if (rc == 0)
				rc = abuf_add_u8(out, '"');
		}
		if (rc == 0 && p->domain[0] != '\0') {
			rc = abuf_add_u8(out, '@');
			if (rc == 0)
				rc = abuf_add(out, p->domain, strlen(p->domain));
		}
		if (rc != 0)
			return rc;
	}
	if ((rc = abuf_add_u8(out, '>')) != 0)
		return rc;
	return abuf_cstr(out);
}
