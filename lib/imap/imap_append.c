/*
 * imap_append.c - writing into an IMAP server (imap_append.h).
 */
#include "imap_append.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "imap_fetch.h"
#include "maildir.h"
#include "banned.h"

/* Text without a length prefix (abuf_add_str is the length-prefixed form). */
static int add_text(struct abuf *b, const char *s)
{
	return abuf_add(b, s, strlen(s));
}

/* ---- capabilities ---- */

static bool has_cap(struct imap_conn *c, const char *name)
{
	return mailimap_has_extension(c->imap, (char *)name) != 0;
}

int iapp_caps_get(struct imap_conn *c, struct iapp_caps *caps, struct arca_err *err)
{
	memset(caps, 0, sizeof(*caps));
	caps->multiappend = has_cap(c, "MULTIAPPEND");
	caps->literal_plus = has_cap(c, "LITERAL+");
	caps->create_special_use = has_cap(c, "CREATE-SPECIAL-USE");
	caps->special_use = has_cap(c, "SPECIAL-USE") && has_cap(c, "LIST-EXTENDED");
	caps->binary = has_cap(c, "BINARY");
	clist *list = NULL;
	int r = mailimap_list(c->imap, "", "", &list);
	if (r != MAILIMAP_NO_ERROR)
		return imap_conn_fail(c, r, "LIST \"\" \"\"", err);
	clistiter *it = clist_begin(list);
	if (it) {
		struct mailimap_mailbox_list *mb = clist_content(it);
		caps->delimiter = mb->mb_delimiter;
	}
	mailimap_list_result_free(list);
	return 0;
}

/* ---- names ---- */

int iapp_wire_name(const char *name, char delim, struct abuf *out)
{
	abuf_reset(out);
	if (strcmp(name, "INBOX") == 0)
		return add_text(out, "INBOX") || abuf_cstr(out) ? ARCA_ENOMEM : 0;
	size_t n = strlen(name);
	if (n == 0 || name[0] == '/' || name[n - 1] == '/' || strstr(name, "//"))
		return ARCA_EFORMAT;
	struct abuf level = ABUF_INIT, enc = ABUF_INIT;
	int rc = 0;
	const char *p = name;
	while (rc == 0) {
		const char *e = strchr(p, '/');
		size_t ln = e ? (size_t)(e - p) : strlen(p);
		if (e && delim == '\0')
			rc = ARCA_EFORMAT;   /* levels on a flat server */
		abuf_reset(&level);
		if (rc == 0)
			rc = abuf_add(&level, p, ln) || abuf_cstr(&level) ? ARCA_ENOMEM : 0;
		if (rc == 0)
			rc = utf8_to_mutf7((const char *)level.data, &enc);
		/* the encoded level must not hold the delimiter: the server
		 * would read it as two levels */
		if (rc == 0 && delim != '\0' && memchr(enc.data, delim, enc.len) != NULL)
			rc = ARCA_EFORMAT;
		if (rc == 0 && out->len > 0)
			rc = abuf_add_u8(out, (uint8_t)delim) ? ARCA_ENOMEM : 0;
		if (rc == 0)
			rc = abuf_add(out, enc.data, enc.len) ? ARCA_ENOMEM : 0;
		if (e == NULL)
			break;
		p = e + 1;
	}
	if (rc == 0)
		rc = abuf_cstr(out) ? ARCA_ENOMEM : 0;
	abuf_release(&level);
	abuf_release(&enc);
	return rc;
}

int iapp_quote(const char *s, struct abuf *out)
{
	if (abuf_add_u8(out, '"'))
		return ARCA_ENOMEM;
	for (; *s; s++) {
		if ((*s == '"' || *s == '\\') && abuf_add_u8(out, '\\'))
			return ARCA_ENOMEM;
		if (abuf_add_u8(out, (uint8_t)*s))
			return ARCA_ENOMEM;
	}
	return abuf_add_u8(out, '"') ? ARCA_ENOMEM : 0;
}

/* ---- LIST / LSUB ---- */

void iapp_folders_release(struct iapp_folders *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].wire);
		free(f->v[i].name);
	}
	free(f->v);
	f->v = NULL;
	f->n = 0;
}

struct iapp_folder *iapp_folders_find(struct iapp_folders *f, const char *wire)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->v[i].wire, wire) == 0 ||
		    (strcasecmp(wire, "INBOX") == 0 && strcasecmp(f->v[i].wire, "INBOX") == 0))
			return &f->v[i];
	return NULL;
}

/* The name in UTF-8 with '/' levels, or NULL when it can't be one. */
static char *decode_name(const char *wire, char delim)
{
	if (strcasecmp(wire, "INBOX") == 0)
		return strdup("INBOX");
	struct abuf u = ABUF_INIT;
	char *res = NULL;
	if (mutf7_to_utf8(wire, &u) == 0 && abuf_cstr(&u) == 0) {
		for (size_t i = 0; i < u.len; i++)
			if (delim != '\0' && u.data[i] == (uint8_t)delim)
				u.data[i] = '/';
		res = strdup((const char *)u.data);
	}
	abuf_release(&u);
	return res;
}

static int add_listed(struct iapp_folders *out, size_t *cap, const char *wire, char delim,
		      struct iapp_folder **f_r)
{
	struct iapp_folder *f = iapp_folders_find(out, wire);
	if (f) {
		*f_r = f;
		return 0;
	}
	if (out->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 32;
		struct iapp_folder *v = realloc(out->v, nc * sizeof(*v));
		if (v == NULL)
			return ARCA_ENOMEM;
		out->v = v;
		*cap = nc;
	}
	f = &out->v[out->n];
	memset(f, 0, sizeof(*f));
	f->wire = strdup(wire);
	if (f->wire == NULL)
		return ARCA_ENOMEM;
	f->name = decode_name(wire, delim);
	out->n++;
	*f_r = f;
	return 0;
}

int iapp_list(struct imap_conn *c, const struct iapp_caps *caps, struct iapp_folders *out,
	      struct arca_err *err)
{
	out->v = NULL;
	out->n = 0;
	size_t cap = 0;
	clist *list = NULL;
	int r = mailimap_list(c->imap, "", "*", &list);
	if (r != MAILIMAP_NO_ERROR)
		return imap_conn_fail(c, r, "LIST", err);
	int rc = 0;
	for (clistiter *it = clist_begin(list); it && rc == 0; it = clist_next(it)) {
		struct mailimap_mailbox_list *mb = clist_content(it);
		if (mb->mb_name == NULL)
			continue;
		struct iapp_folder *f;
		if ((rc = add_listed(out, &cap, mb->mb_name, mb->mb_delimiter, &f)) != 0)
			break;
		f->selectable = imap_list_attrs(mb, f->special, sizeof(f->special));
	}
	mailimap_list_result_free(list);
	if (rc) {
		iapp_folders_release(out);
		return arca_err_set(err, rc, "%s: out of memory", c->host);
	}
	(void)caps;
	list = NULL;
	r = mailimap_lsub(c->imap, "", "*", &list);
	if (r != MAILIMAP_NO_ERROR) {
		iapp_folders_release(out);
		return imap_conn_fail(c, r, "LSUB", err);
	}
	for (clistiter *it = clist_begin(list); it && rc == 0; it = clist_next(it)) {
		struct mailimap_mailbox_list *mb = clist_content(it);
		if (mb->mb_name == NULL)
			continue;
		struct iapp_folder *f = iapp_folders_find(out, mb->mb_name);
		if (f == NULL) {
			/* subscribed, not listed (RFC 3501 allows it) */
			if ((rc = add_listed(out, &cap, mb->mb_name, mb->mb_delimiter, &f)) != 0)
				break;
			f->selectable = false;
		}
		f->subscribed = true;
	}
	mailimap_list_result_free(list);
	if (rc) {
		iapp_folders_release(out);
		return arca_err_set(err, rc, "%s: out of memory", c->host);
	}
	return 0;
}

/* ---- the raw channel over libetpan's stream ---- */

static int conn_write(void *ctx, const void *p, size_t n, struct arca_err *err)
{
	struct imap_conn *c = ctx;
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t w = mailstream_write(c->imap->imap_stream, b, n);
		if (w <= 0)
			return arca_err_set(err, ARCA_EIO, "%s: connection lost while writing", c->host);
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int conn_flush(void *ctx, struct arca_err *err)
{
	struct imap_conn *c = ctx;
	if (mailstream_flush(c->imap->imap_stream) != 0)
		return arca_err_set(err, ARCA_EIO, "%s: connection lost while writing", c->host);
	return 0;
}

static ssize_t conn_read(void *ctx, void *p, size_t n, struct arca_err *err)
{
	struct imap_conn *c = ctx;
	ssize_t r = mailstream_read(c->imap->imap_stream, p, n);
	if (r <= 0)
		return arca_err_set(err, ARCA_EIO, "%s: connection lost or timed out", c->host);
	return r;
}

void iapp_io_conn(struct imap_conn *c, struct iapp_io *io)
{
	memset(io, 0, sizeof(*io));
	io->ctx = c;
	io->write = conn_write;
	io->flush = conn_flush;
	io->read = conn_read;
	io->peer = c->host;
}

/* ---- the canned server ---- */

static int mem_write(void *ctx, const void *p, size_t n, struct arca_err *err)
{
	struct iapp_memio *m = ctx;
	if (abuf_add(&m->sent, p, n))
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	return 0;
}

static int mem_flush(void *ctx, struct arca_err *err)
{
	(void)ctx;
	(void)err;
	return 0;
}

static ssize_t mem_read(void *ctx, void *p, size_t n, struct arca_err *err)
{
	struct iapp_memio *m = ctx;
	size_t left = m->len - m->pos;
	if (left == 0)
		return arca_err_set(err, ARCA_EIO, "connection closed by the server");
	if (n > left)
		n = left;
	if (m->max_read && n > m->max_read)
		n = m->max_read;
	memcpy(p, m->in + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

void iapp_memio_init(struct iapp_memio *m, const void *in, size_t len, struct iapp_io *io_r)
{
	memset(m, 0, sizeof(*m));
	m->in = in;
	m->len = len;
	memset(io_r, 0, sizeof(*io_r));
	*io_r = (struct iapp_io){ .ctx = m, .write = mem_write, .flush = mem_flush,
				  .read = mem_read, .peer = "test" };
}

void iapp_memio_release(struct iapp_memio *m)
{
	abuf_release(&m->sent);
}

/* ---- answer lines ---- */

static int fail(struct arca_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct arca_err *err, int code, const char *fmt, ...)
{
	char msg[ARCA_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return arca_err_set(err, code, "%s", msg);
}

static void sanitize(char *dst, size_t cap, const uint8_t *p, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n && k + 1 < cap; i++)
		dst[k++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
	dst[k] = '\0';
}

static bool word_is(const uint8_t *p, size_t n, const char *w)
{
	size_t wl = strlen(w);
	return n == wl && strncasecmp((const char *)p, w, wl) == 0;
}

static uint32_t parse_u32(const uint8_t **pp, const uint8_t *end, bool *ok)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;
	size_t d = 0;
	while (p < end && *p >= '0' && *p <= '9' && d < 11) {
		v = v * 10 + (uint64_t)(*p - '0');
		p++;
		d++;
	}
	if (d == 0 || d > 10 || v > UINT32_MAX)
		*ok = false;
	*pp = p;
	return (uint32_t)v;
}

/* "[CODE args]" at p: the code upper-cased; APPENDUID's numbers. */
static void parse_code(const uint8_t *p, const uint8_t *end, struct iapp_line *out)
{
	const uint8_t *close = memchr(p, ']', (size_t)(end - p));
	if (close == NULL)
		return;
	const uint8_t *a = p + 1, *e = a;
	while (e < close && *e != ' ')
		e++;
	size_t k = 0;
	for (const uint8_t *q = a; q < e && k + 1 < sizeof(out->code); q++) {
		uint8_t ch = *q;
		if (ch < 0x21 || ch > 0x7e) {
			k = 0;
			break;
		}
		out->code[k++] = (char)(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
	}
	out->code[k] = '\0';
	if (strcmp(out->code, "APPENDUID") == 0 && e < close) {
		/* "APPENDUID <validity> <uid>" or "<uid>:<uid>" (RFC 4315) */
		const uint8_t *q = e + 1;
		bool ok = true;
		uint32_t v = parse_u32(&q, close, &ok);
		uint32_t first = 0, last = 0;
		if (ok && q < close && *q == ' ') {
			q++;
			first = last = parse_u32(&q, close, &ok);
			if (ok && q < close && *q == ':') {
				q++;
				last = parse_u32(&q, close, &ok);
			}
		} else {
			ok = false;
		}
		/* a set with commas is legal; we keep only simple forms */
		if (ok && q == close) {
			out->appenduid_validity = v;
			out->appenduid_first = first;
			out->appenduid_last = last;
		}
	}
}

int iapp_parse_line(const uint8_t *p, size_t n, const char *tag, struct iapp_line *out,
		    struct arca_err *err)
{
	memset(out, 0, sizeof(*out));
	/* (an empty line may come as a NULL buffer: no arithmetic on it) */
	if (n == 0)
		return fail(err, ARCA_EFORMAT, "an empty answer line");
	const uint8_t *end = p + n;
	if (p[0] == '+') {
		out->kind = IAPP_CONTINUE;
		if (n > 2)
			sanitize(out->text, sizeof(out->text), p + 2, n - 2);
		return 0;
	}
	const uint8_t *sp = memchr(p, ' ', n);
	if (sp == NULL)
		return fail(err, ARCA_EFORMAT, "an answer line without a space");
	const uint8_t *w = sp + 1, *we = w;
	while (we < end && *we != ' ')
		we++;
	if (sp - p == 1 && p[0] == '*') {
		out->kind = IAPP_UNTAGGED;
		if (word_is(w, (size_t)(we - w), "OK"))
			out->status = IAPP_OK;
		else if (word_is(w, (size_t)(we - w), "NO"))
			out->status = IAPP_NO;
		else if (word_is(w, (size_t)(we - w), "BAD"))
			out->status = IAPP_BAD;
		else if (word_is(w, (size_t)(we - w), "BYE"))
			out->status = IAPP_BYE;
		else if (word_is(w, (size_t)(we - w), "PREAUTH"))
			out->status = IAPP_PREAUTH;
		/* a literal follows when the line ends in "{digits}" */
		if (n >= 3 && end[-1] == '}') {
			const uint8_t *b = end - 1;
			while (b > p && b[-1] >= '0' && b[-1] <= '9')
				b--;
			if (b > p && b[-1] == '{' && b < end - 1) {
				if (end - 1 - b > 19)
					return fail(err, ARCA_EFORMAT, "a literal size of more than 19 digits");
				uint64_t v = 0;
				for (const uint8_t *q = b; q < end - 1; q++)
					v = v * 10 + (uint64_t)(*q - '0');
				out->has_literal = true;
				out->literal = v;
			}
		}
		if (out->status != IAPP_NONE && we < end) {
			const uint8_t *t = we + 1;
			if (t < end && *t == '[')
				parse_code(t, end, out);
			sanitize(out->text, sizeof(out->text), t, (size_t)(end - t));
		}
		return 0;
	}
	size_t tl = strlen(tag);
	if ((size_t)(sp - p) != tl || memcmp(p, tag, tl) != 0)
		return fail(err, ARCA_EFORMAT, "an answer for another tag");
	out->kind = IAPP_TAGGED;
	if (word_is(w, (size_t)(we - w), "OK"))
		out->status = IAPP_OK;
	else if (word_is(w, (size_t)(we - w), "NO"))
		out->status = IAPP_NO;
	else if (word_is(w, (size_t)(we - w), "BAD"))
		out->status = IAPP_BAD;
	else
		return fail(err, ARCA_EFORMAT, "a tagged answer that is not OK, NO or BAD");
	if (we < end) {
		const uint8_t *t = we + 1;
		if (t < end && *t == '[')
			parse_code(t, end, out);
		sanitize(out->text, sizeof(out->text), t, (size_t)(end - t));
	}
	return 0;
}

/* One line into line (CRLF or LF removed), at most IAPP_LINE_MAX bytes. */
static int read_line(struct iapp_io *io, struct abuf *line, struct arca_err *err)
{
	abuf_reset(line);
	for (;;) {
		uint8_t ch;
		ssize_t r = io->read(io->ctx, &ch, 1, err);
		if (r < 0)
			return (int)r;
		if (ch == '\n')
			break;
		if (line->len >= IAPP_LINE_MAX)
			return fail(err, ARCA_ELIMIT, "%s: an answer line longer than %d bytes", io->peer,
				    IAPP_LINE_MAX);
		if (abuf_add_u8(line, ch))
			return fail(err, ARCA_ENOMEM, "out of memory");
	}
	if (line->len > 0 && line->data[line->len - 1] == '\r')
		line->len--;
	return 0;
}

static int skip_bytes(struct iapp_io *io, uint64_t n, struct arca_err *err)
{
	uint8_t buf[4096];
	while (n > 0) {
		size_t want = n < sizeof(buf) ? (size_t)n : sizeof(buf);
		ssize_t r = io->read(io->ctx, buf, want, err);
		if (r < 0)
			return (int)r;
		n -= (uint64_t)r;
	}
	return 0;
}

/*
 * The next answer line that matters to us: a continuation or our tagged
 * answer.  Untagged lines are skipped (with their literals); an untagged
 * BYE is an error.
 */
static int next_answer(struct iapp_io *io, struct abuf *line, const char *tag,
		       struct iapp_line *ans, const char *what, struct arca_err *err)
{
	for (;;) {
		int rc = read_line(io, line, err);
		if (rc)
			return rc;
		struct arca_err e = { 0 };
		rc = iapp_parse_line(line->data, line->len, tag, ans, &e);
		if (rc)
			return fail(err, rc, "%s: %s: %s", io->peer, what, e.msg);
		if (ans->kind != IAPP_UNTAGGED)
			return 0;
		if (ans->status == IAPP_BYE)
			return fail(err, ARCA_EIO, "%s: %s: the server closed the connection: %s",
				    io->peer, what, ans->text);
		/* an untagged answer, perhaps with literals: skip it whole */
		while (ans->has_literal) {
			if (ans->literal > IAPP_SKIP_MAX)
				return fail(err, ARCA_ELIMIT, "%s: %s: an unsolicited literal of %llu bytes",
					    io->peer, what, (unsigned long long)ans->literal);
			if ((rc = skip_bytes(io, ans->literal, err)) != 0)
				return rc;
			if ((rc = read_line(io, line, err)) != 0)
				return rc;
			/* the rest of the line after the literal */
			ans->has_literal = false;
			if (line->len >= 3 && line->data[line->len - 1] == '}') {
				struct iapp_line tmp;
				uint8_t fake[IAPP_LINE_MAX + 2] = "* ";
				size_t k = line->len;
				memcpy(fake + 2, line->data, k);
				if (iapp_parse_line(fake, k + 2, tag, &tmp, &e) == 0 && tmp.has_literal) {
					ans->has_literal = true;
					ans->literal = tmp.literal;
				}
			}
		}
	}
}

static void next_tag(struct iapp_io *io, char tag[16])
{
	snprintf(tag, 16, "R%u", ++io->tagn);
}

int iapp_simple(struct iapp_io *io, const char *cmd, struct iapp_line *ans, struct arca_err *err)
{
	char tag[16];
	next_tag(io, tag);
	struct abuf b = ABUF_INIT;
	int rc = abuf_printf(&b, "%s %s\r\n", tag, cmd) ? ARCA_ENOMEM : 0;
	if (rc == 0)
		rc = io->write(io->ctx, b.data, b.len, err);
	if (rc == 0)
		rc = io->flush(io->ctx, err);
	char what[40];
	snprintf(what, sizeof(what), "%.*s", (int)strcspn(cmd, " "), cmd);
	for (;;) {
		if (rc == 0)
			rc = next_answer(io, &b, tag, ans, what, err);
		if (rc || ans->kind == IAPP_TAGGED)
			break;
		rc = fail(err, ARCA_EFORMAT, "%s: %s: a continuation request we did not ask for",
			  io->peer, what);
	}
	abuf_release(&b);
	if (rc == ARCA_ENOMEM)
		arca_err_set(err, rc, "out of memory");
	return rc;
}

/* A command with one quoted folder name and an optional tail. */
static int name_command(struct iapp_io *io, const char *verb, const char *wire, const char *tail,
			struct iapp_line *ans, struct arca_err *err)
{
	struct abuf cmd = ABUF_INIT;
	int rc = add_text(&cmd, verb) || abuf_add_u8(&cmd, ' ') || iapp_quote(wire, &cmd) ||
			 (tail && add_text(&cmd, tail)) || abuf_cstr(&cmd) ? ARCA_ENOMEM : 0;
	if (rc == 0)
		rc = iapp_simple(io, (const char *)cmd.data, ans, err);
	else
		arca_err_set(err, rc, "out of memory");
	abuf_release(&cmd);
	return rc;
}

int iapp_create(struct iapp_io *io, const struct iapp_caps *caps, const char *wire,
		const char *special, struct iapp_line *ans, struct arca_err *err)
{
	char tail[40] = "";
	if (special && special[0] && caps->create_special_use) {
		/* only the seven RFC 6154 names reach here (snapshot values
		 * are checked by the caller): no injection into the command */
		if (strlen(special) > 20 || strpbrk(special, " ()\"\r\n") != NULL || special[0] != '\\')
			return arca_err_set(err, ARCA_EINVAL, "not a special-use: %.40s", special);
		snprintf(tail, sizeof(tail), " (USE (%s))", special);
	}
	int rc = name_command(io, "CREATE", wire, tail, ans, err);
	if (rc == 0 && ans->status != IAPP_OK && strcmp(ans->code, "ALREADYEXISTS") == 0)
		ans->status = IAPP_OK;
	return rc;
}

int iapp_subscribe(struct iapp_io *io, const char *wire, struct iapp_line *ans, struct arca_err *err)
{
	return name_command(io, "SUBSCRIBE", wire, NULL, ans, err);
}

int iapp_delete(struct iapp_io *io, const char *wire, struct iapp_line *ans, struct arca_err *err)
{
	return name_command(io, "DELETE", wire, NULL, ans, err);
}

/* ---- keys ---- */

int iapp_key_cmp(const struct iapp_key *a, const struct iapp_key *b)
{
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	if (a->size != b->size)
		return a->size < b->size ? -1 : 1;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	return memcmp(a->hash, b->hash, sizeof(a->hash));
}

static bool is_wsp(uint8_t c)
{
	return c == ' ' || c == '\t';
}

int iapp_message_id(const uint8_t *p, size_t n, struct abuf *out)
{
	abuf_reset(out);
	size_t i = 0;
	while (i < n) {
		/* one physical line [i, e) and its end */
		size_t e = i;
		while (e < n && p[e] != '\n')
			e++;
		size_t le = e;
		if (le > i && p[le - 1] == '\r')
			le--;
		if (le == i)
			return 0;   /* the empty line: the header ended */
		static const char name[] = "message-id";
		size_t nl = sizeof(name) - 1;
		if (le - i > nl && strncasecmp((const char *)p + i, name, nl) == 0) {
			size_t k = i + nl;
			while (k < le && is_wsp(p[k]))
				k++;   /* obsolete syntax allows WSP before ':' */
			if (k < le && p[k] == ':') {
				k++;
				/* the value: this line and its continuation lines */
				size_t j = k;
				for (;;) {
					size_t lend = j;
					while (lend < n && p[lend] != '\n')
						lend++;
					size_t vend = lend;
					if (vend > j && p[vend - 1] == '\r')
						vend--;
					for (size_t q = j; q < vend; q++) {
						if (p[q] == '\r' || (out->len == 0 && is_wsp(p[q])))
							continue;   /* leading blanks don't count against the cap */
						if (out->len < IAPP_MSGID_MAX && abuf_add_u8(out, p[q]))
							return ARCA_ENOMEM;
					}
					if (lend >= n || lend + 1 >= n || !is_wsp(p[lend + 1]))
						break;
					j = lend + 1;
				}
				/* trim */
				size_t a = 0, b = out->len;
				while (a < b && is_wsp(out->data[a]))
					a++;
				while (b > a && is_wsp(out->data[b - 1]))
					b--;
				if (a > 0)
					memmove(out->data, out->data + a, b - a);
				out->len = b - a;
				if (abuf_cstr(out))
					return ARCA_ENOMEM;
				if (out->len == 0)
					return 0;
				return 1;
			}
		}
		i = e + 1;
	}
	return 0;
}

static void hash16(const uint8_t *p, size_t n, uint8_t out[16])
{
	crypto_generichash(out, 16, p, n, NULL, 0);
}

int iapp_content_scan(int fd, uint64_t off, uint64_t len, int64_t date,
		      struct iapp_content *out, struct arca_err *err)
{
	memset(out, 0, sizeof(*out));
	out->raw_len = len;
	out->key.date = date;
	uint8_t buf[65536];
	uint8_t prefix[IAPP_PREFIX_LEN];
	size_t plen = 0;
	struct abuf head = ABUF_INIT;
	bool head_done = false;
	uint8_t prev = 0;
	uint64_t pos = 0, wire = 0;
	int rc = 0;
	while (pos < len && rc == 0) {
		size_t want = len - pos < sizeof(buf) ? (size_t)(len - pos) : sizeof(buf);
		ssize_t r = pread(fd, buf, want, (off_t)(off + pos));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = arca_err_errno(err, ARCA_EIO, r < 0 ? errno : EIO, "reading a message back from the spool");
			break;
		}
		for (ssize_t i = 0; i < r; i++) {
			uint8_t ch = buf[i];
			if (ch == 0)
				out->has_nul = true;
			if (ch == '\n' && prev != '\r') {
				if (plen < IAPP_PREFIX_LEN)
					prefix[plen++] = '\r';
				wire++;
			}
			if (plen < IAPP_PREFIX_LEN)
				prefix[plen++] = ch;
			wire++;
			prev = ch;
		}
		if (!head_done) {
			size_t take = (size_t)r;
			if (head.len + take > IAPP_HEADER_SCAN_MAX)
				take = IAPP_HEADER_SCAN_MAX - head.len;
			if (abuf_add(&head, buf, take))
				rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			/* stop keeping bytes once the empty line is in */
			if (head.len >= IAPP_HEADER_SCAN_MAX ||
			    memmem(head.data, head.len, "\n\n", 2) || memmem(head.data, head.len, "\n\r\n", 3))
				head_done = true;
		}
		pos += (uint64_t)r;
	}
	if (rc == 0) {
		out->wire_len = wire;
		out->key.size = wire;
		struct abuf id = ABUF_INIT;
		int f = iapp_message_id(head.data, head.len, &id);
		if (f < 0) {
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		} else if (f == 1) {
			out->key.kind = 1;
			hash16(id.data, id.len, out->key.hash);
		} else {
			out->key.kind = 2;
			hash16(prefix, plen, out->key.hash);
		}
		abuf_release(&id);
	}
	abuf_release(&head);
	return rc;
}

/* ---- holdings ---- */

static int key_qsort(const void *a, const void *b)
{
	return iapp_key_cmp(a, b);
}

int iapp_holdings_index(struct iapp_holdings *h)
{
	if (h->n > 1)
		qsort(h->v, h->n, sizeof(*h->v), key_qsort);
	free(h->taken);
	h->taken = calloc(h->n ? h->n : 1, sizeof(*h->taken));
	return h->taken ? 0 : ARCA_ENOMEM;
}

bool iapp_holdings_take(struct iapp_holdings *h, const struct iapp_key *k)
{
	if (k->kind == 0 || h->taken == NULL)
		return false;
	size_t lo = 0, hi = h->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (iapp_key_cmp(&h->v[mid], k) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < h->n && iapp_key_cmp(&h->v[i], k) == 0; i++)
		if (!h->taken[i]) {
			h->taken[i] = true;
			return true;
		}
	return false;
}

void iapp_holdings_release(struct iapp_holdings *h)
{
	free(h->v);
	free(h->taken);
	memset(h, 0, sizeof(*h));
}

static bool date_wanted(const int64_t *dates, size_t n, int64_t d)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (dates[mid] < d)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && dates[lo] == d;
}

static struct mailimap_fetch_type *holdings_fetch_type(void)
{
	struct mailimap_fetch_type *t = mailimap_fetch_type_new_fetch_att_list_empty();
	clist *hl = clist_new();
	char *mid = strdup("MESSAGE-ID");
	struct mailimap_header_list *hdr = NULL;
	struct mailimap_section *sec = NULL;
	struct mailimap_fetch_att *body = NULL;
	bool ok = t && hl && mid && clist_append(hl, mid) == 0;
	if (ok) {
		mid = NULL;
		hdr = mailimap_header_list_new(hl);
		ok = hdr != NULL;
	}
	if (ok) {
		hl = NULL;
		sec = mailimap_section_new_header_fields(hdr);
		ok = sec != NULL;
	}
	if (ok) {
		hdr = NULL;
		body = mailimap_fetch_att_new_body_peek_section(sec);
		ok = body != NULL;
	}
	if (ok)
		sec = NULL;
	struct mailimap_fetch_att *atts[4] = { mailimap_fetch_att_new_uid(),
		mailimap_fetch_att_new_internaldate(), mailimap_fetch_att_new_rfc822_size(), body };
	for (size_t i = 0; i < 4; i++) {
		if (ok && atts[i] && mailimap_fetch_type_new_fetch_att_list_add(t, atts[i]) == 0)
			continue;
		ok = false;
		if (atts[i])
			mailimap_fetch_att_free(atts[i]);
	}
	free(mid);
	if (hl)
		clist_free(hl);
	if (hdr)
		mailimap_header_list_free(hdr);
	if (sec)
		mailimap_section_free(sec);
	if (!ok && t) {
		mailimap_fetch_type_free(t);
		t = NULL;
	}
	return t;
}

static struct mailimap_fetch_type *prefix_fetch_type(void)
{
	struct mailimap_fetch_type *t = mailimap_fetch_type_new_fetch_att_list_empty();
	struct mailimap_section *sec = mailimap_section_new(NULL);
	struct mailimap_fetch_att *body = sec ? mailimap_fetch_att_new_body_peek_section_partial(sec, 0, IAPP_PREFIX_LEN) : NULL;
	struct mailimap_fetch_att *uid = mailimap_fetch_att_new_uid();
	bool ok = t && body && uid;
	if (sec && body == NULL)
		mailimap_section_free(sec);
	if (ok && mailimap_fetch_type_new_fetch_att_list_add(t, uid) == 0)
		uid = NULL;
	else
		ok = false;
	if (ok && mailimap_fetch_type_new_fetch_att_list_add(t, body) == 0)
		body = NULL;
	else
		ok = false;
	if (uid)
		mailimap_fetch_att_free(uid);
	if (body)
		mailimap_fetch_att_free(body);
	if (!ok && t) {
		mailimap_fetch_type_free(t);
		t = NULL;
	}
	return t;
}

/* UIDs of server messages without Message-ID whose first KB we want. */
struct pending {
	uint32_t uid;
	size_t idx;    /* in holdings */
};

static int fetch_prefixes(struct imap_conn *c, const char *wire, struct iapp_holdings *h,
			  struct pending *pv, size_t np, struct arca_err *err)
{
	int rc = 0;
	for (size_t s = 0; s < np && rc == 0; s += 500) {
		size_t e = np - s < 500 ? np : s + 500;
		struct mailimap_set *set = mailimap_set_new_empty();
		struct mailimap_fetch_type *ft = prefix_fetch_type();
		bool ok = set && ft;
		for (size_t i = s; i < e && ok; i++)
			ok = mailimap_set_add_single(set, pv[i].uid) == 0;
		if (!ok) {
			if (set)
				mailimap_set_free(set);
			if (ft)
				mailimap_fetch_type_free(ft);
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		}
		clist *result = NULL;
		int r = mailimap_uid_fetch(c->imap, set, ft, &result);
		mailimap_set_free(set);
		mailimap_fetch_type_free(ft);
		if (r != MAILIMAP_NO_ERROR)
			return imap_conn_fail(c, r, "UID FETCH (BODY.PEEK[]<0.1024>)", err);
		rc = imap_conn_check_ok(c, "UID FETCH", err);
		for (clistiter *it = clist_begin(result); it && rc == 0; it = clist_next(it)) {
			struct imap_fetched fe;
			imap_fetched_parse(clist_content(it), &fe);
			if (!fe.has_uid || !fe.has_body)
				continue;
			for (size_t i = s; i < e; i++)
				if (pv[i].uid == fe.uid) {
					struct iapp_key *k = &h->v[pv[i].idx];
					k->kind = 2;
					hash16((const uint8_t *)fe.body,
					       fe.body_len > IAPP_PREFIX_LEN ? IAPP_PREFIX_LEN : fe.body_len, k->hash);
					h->prefixes_fetched++;
					break;
				}
		}
		mailimap_fetch_list_free(result);
	}
	(void)wire;
	return rc;
}

int iapp_holdings_read(struct imap_conn *c, const char *wire, const int64_t *dates,
		       size_t ndates, struct iapp_holdings *out, struct arca_err *err)
{
	memset(out, 0, sizeof(*out));
	int r = mailimap_examine(c->imap, wire);
	if (r != MAILIMAP_NO_ERROR)
		return imap_conn_fail(c, r, "EXAMINE", err);
	struct mailimap_selection_info *sel = c->imap->imap_selection_info;
	uint32_t exists = sel ? sel->sel_exists : 0;
	if (exists > SNAP_MESSAGES_MAX)
		return arca_err_set(err, ARCA_ELIMIT, "%s: %s holds %u messages, more than %u",
				    c->host, wire, exists, SNAP_MESSAGES_MAX);
	size_t cap = exists;
	out->v = calloc(cap ? cap : 1, sizeof(*out->v));
	struct pending *pv = NULL;
	size_t np = 0, pcap = 0;
	if (out->v == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	struct abuf id = ABUF_INIT;
	int rc = 0;
	for (uint32_t s = 1; s <= exists && rc == 0; s += IAPP_FETCH_WINDOW) {
		uint32_t e = exists - s < IAPP_FETCH_WINDOW ? exists : s + IAPP_FETCH_WINDOW - 1;
		struct mailimap_set *set = mailimap_set_new_interval(s, e);
		struct mailimap_fetch_type *ft = holdings_fetch_type();
		if (set == NULL || ft == NULL) {
			if (set)
				mailimap_set_free(set);
			if (ft)
				mailimap_fetch_type_free(ft);
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			break;
		}
		clist *result = NULL;
		r = mailimap_fetch(c->imap, set, ft, &result);
		mailimap_set_free(set);
		mailimap_fetch_type_free(ft);
		if (r != MAILIMAP_NO_ERROR) {
			rc = imap_conn_fail(c, r, "FETCH", err);
			break;
		}
		rc = imap_conn_check_ok(c, "FETCH", err);
		for (clistiter *it = clist_begin(result); it && rc == 0; it = clist_next(it)) {
			struct imap_fetched fe;
			imap_fetched_parse(clist_content(it), &fe);
			if (!fe.has_uid || !fe.has_size || !fe.has_date)
				continue;   /* an unsolicited FETCH (flags): not ours */
			if (out->n == cap) {
				/* more answers than EXISTS said: the folder grew */
				size_t nc = cap ? cap * 2 : 64;
				if (nc > SNAP_MESSAGES_MAX) {
					rc = arca_err_set(err, ARCA_ELIMIT, "%s: %s: too many FETCH answers", c->host, wire);
					break;
				}
				struct iapp_key *nv = realloc(out->v, nc * sizeof(*nv));
				if (nv == NULL) {
					rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
					break;
				}
				out->v = nv;
				cap = nc;
			}
			struct iapp_key *k = &out->v[out->n];
			memset(k, 0, sizeof(*k));
			k->date = fe.date;
			k->size = fe.size;
			int f = fe.has_body ? iapp_message_id((const uint8_t *)fe.body, fe.body_len, &id) : 0;
			if (f < 0) {
				rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
				break;
			}
			if (f == 1) {
				k->kind = 1;
				hash16(id.data, id.len, k->hash);
			} else {
				out->no_msgid++;
				if (date_wanted(dates, ndates, k->date)) {
					if (np == pcap) {
						size_t nc = pcap ? pcap * 2 : 64;
						struct pending *nv = realloc(pv, nc * sizeof(*nv));
						if (nv == NULL) {
							rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
							break;
						}
						pv = nv;
						pcap = nc;
					}
					pv[np++] = (struct pending){ fe.uid, out->n };
				}
			}
			out->n++;
		}
		mailimap_fetch_list_free(result);
	}
	abuf_release(&id);
	if (rc == 0 && np > 0)
		rc = fetch_prefixes(c, wire, out, pv, np, err);
	free(pv);
	if (rc == 0 && iapp_holdings_index(out) != 0)
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	if (rc)
		iapp_holdings_release(out);
	return rc;
}

/* ---- APPEND ---- */

/* RFC 3501 atom: no CTL, SP, ( ) { % * " \ ] and not 8-bit. */
static bool is_atom(const char *s)
{
	if (*s == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || strchr("(){%*\"\\]", *p))
			return false;
	return s[0] != '\\';
}


int iapp_flag_list(uint32_t flags, const char *const *kw, size_t nkw, struct abuf *out,
		   size_t *skipped_r)
{
	static const struct { char letter; const char *flag; } map[] = {
		{ 'S', "\\Seen" }, { 'R', "\\Answered" }, { 'F', "\\Flagged" },
		{ 'T', "\\Deleted" }, { 'D', "\\Draft" },
	};
	size_t skipped = 0;
	bool first = true;
	if (abuf_add_u8(out, '('))
		return ARCA_ENOMEM;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (!(flags & (1u << (map[i].letter - 'A'))))
			continue;
		if ((!first && abuf_add_u8(out, ' ')) || add_text(out, map[i].flag))
			return ARCA_ENOMEM;
		first = false;
	}
	for (size_t i = 0; i < nkw; i++) {
		if (kw[i] == NULL || !is_atom(kw[i])) {
			skipped++;
			continue;
		}
		if ((!first && abuf_add_u8(out, ' ')) || add_text(out, kw[i]))
			return ARCA_ENOMEM;
		first = false;
	}
	if (skipped_r)
		*skipped_r = skipped;
	return abuf_add_u8(out, ')') ? ARCA_ENOMEM : 0;
}

int iapp_date_time(int64_t t, struct abuf *out)
{
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	time_t tt = (time_t)t;
	if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL)
		return ARCA_EINVAL;
	long year = (long)tm.tm_year + 1900;
	if (year < 1 || year > 9999)
		return ARCA_EINVAL;
	return abuf_printf(out, "\"%02d-%s-%04ld %02d:%02d:%02d +0000\"", tm.tm_mday,
			   mon[tm.tm_mon], year, tm.tm_hour, tm.tm_min, tm.tm_sec) ? ARCA_ENOMEM : 0;
}

/* The message's bytes from its file, each bare LF as CRLF: exactly
 * m->content.wire_len bytes, or an error (the file changed). */
static int send_content(struct iapp_io *io, const struct iapp_msg *m, struct arca_err *err)
{
	uint8_t in[32768], outb[65536];
	uint64_t pos = 0, sent = 0, len = m->content.raw_len;
	uint8_t prev = 0;
	while (pos < len) {
		size_t want = len - pos < sizeof(in) ? (size_t)(len - pos) : sizeof(in);
		ssize_t r = pread(m->fd, in, want, (off_t)(m->off + pos));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return arca_err_errno(err, ARCA_EIO, r < 0 ? errno : EIO,
					      "reading a message back from the spool");
		size_t k = 0;
		for (ssize_t i = 0; i < r; i++) {
			if (in[i] == '\n' && prev != '\r')
				outb[k++] = '\r';
			outb[k++] = in[i];
			prev = in[i];
		}
		sent += k;
		if (sent > m->content.wire_len)
			break;
		int rc = io->write(io->ctx, outb, k, err);
		if (rc)
			return rc;
		pos += (uint64_t)r;
	}
	if (sent != m->content.wire_len)
		return arca_err_set(err, ARCA_ECORRUPT,
				    "a message changed while it was being sent (%llu bytes, %llu announced)",
				    (unsigned long long)sent, (unsigned long long)m->content.wire_len);
	return 0;
}

int iapp_append(struct iapp_io *io, const struct iapp_caps *caps, const char *wire,
		const struct iapp_msg *m, size_t n, struct iapp_line *ans, struct arca_err *err)
{
	memset(ans, 0, sizeof(*ans));
	if (n == 0 || n > IAPP_BATCH_MAX || (n > 1 && !caps->multiappend))
		return arca_err_set(err, ARCA_EINVAL, "APPEND of %zu messages", n);
	char tag[16];
	next_tag(io, tag);
	struct abuf b = ABUF_INIT, line = ABUF_INIT;
	int rc = abuf_printf(&b, "%s APPEND ", tag) || iapp_quote(wire, &b) ? ARCA_ENOMEM : 0;
	const char *what = n > 1 ? "MULTIAPPEND" : "APPEND";
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct iapp_msg *mm = &m[i];
		if (mm->content.wire_len > IAPP_MESSAGE_MAX) {
			rc = arca_err_set(err, ARCA_ELIMIT, "a message of %llu bytes: IMAP can't carry it",
					  (unsigned long long)mm->content.wire_len);
			break;
		}
		bool lit8 = mm->content.has_nul && caps->binary;
		rc = abuf_add_u8(&b, ' ') || iapp_flag_list(mm->flags, mm->keywords, mm->nkeywords, &b, NULL) ||
		     abuf_add_u8(&b, ' ') ? ARCA_ENOMEM : 0;
		if (rc == 0) {
			rc = iapp_date_time(mm->date, &b);
			if (rc == ARCA_EINVAL) {
				rc = arca_err_set(err, rc, "an INTERNALDATE IMAP can't express (%lld)",
						  (long long)mm->date);
				break;
			}
		}
		if (rc == 0)
			rc = abuf_printf(&b, " %s{%llu%s}\r\n", lit8 ? "~" : "",
					 (unsigned long long)mm->content.wire_len,
					 caps->literal_plus ? "+" : "") ? ARCA_ENOMEM : 0;
		if (rc == ARCA_ENOMEM)
			arca_err_set(err, rc, "out of memory");
		if (rc == 0)
			rc = io->write(io->ctx, b.data, b.len, err);
		abuf_reset(&b);
		if (rc == 0 && !caps->literal_plus) {
			/* a synchronizing literal: the server says "+" or no */
			if ((rc = io->flush(io->ctx, err)) == 0)
				rc = next_answer(io, &line, tag, ans, what, err);
			if (rc == 0 && ans->kind == IAPP_TAGGED)
				goto out;   /* refused before the bytes: NO / BAD */
		}
		if (rc == 0)
			rc = send_content(io, mm, err);
	}
	if (rc == 0)
		rc = io->write(io->ctx, "\r\n", 2, err);
	if (rc == 0)
		rc = io->flush(io->ctx, err);
	if (rc == 0 && io->sent_hook)
		io->sent_hook(io->hook_ctx);
	while (rc == 0) {
		rc = next_answer(io, &line, tag, ans, what, err);
		if (rc == 0 && ans->kind == IAPP_TAGGED)
			break;
		if (rc == 0)
			rc = fail(err, ARCA_EFORMAT, "%s: %s: a continuation request after the last literal",
				  io->peer, what);
	}
out:
	abuf_release(&b);
	abuf_release(&line);
	return rc;
}
