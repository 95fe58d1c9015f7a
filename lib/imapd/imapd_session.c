/*
 * imapd_session.c - one read-only IMAP4rev1 session (imapd_session.h,
 * docs/protocol/imap-server.md).
 *
 * Shape: read one whole command (its lines and literals, bounded by
 * imapd_parse.h's limits), parse it, check the state, answer it into an
 * output buffer that is flushed when it passes OUT_FLUSH, at the end of every
 * command and before any blocking read.  The mailbox never changes under a
 * session (one snapshot), so there are no unsolicited EXISTS/EXPUNGE
 * updates and sequence numbers are fixed from SELECT to CLOSE.
 *
 * Every wait for the client goes through io->wait with the time left, so a
 * client that says nothing, or says half a command, is dropped after
 * idle_timeout_ms; before login, whatever it sends, login_timeout_ms after
 * the connection began (in_fill).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "arca_err.h"
#include "buf.h"
#include "imapd_mime.h"
#include "imapd_parse.h"
#include "imapd_session.h"
#include "maildir.h"
#include "vault_view.h"
#include "banned.h"

#define OUT_FLUSH 65536               /* flush the output buffer past this */
#define STREAM_MIN 16384              /* literals at least this long go out uncopied */
#define IN_BUF 16384
#define IDLE_KEEPALIVE_MS 120000      /* "* OK Still here" while idling */
#define IDLE_POLL_MS 5000             /* other sessions' flag changes looked for while idling */
#define LOGIN_FAILURES_MAX 3
#define SASL_LINE_MAX 8192            /* AUTHENTICATE continuation line */
#define PATTERN_MAX 1024              /* a longer LIST pattern matches nothing */

static const char readonly_text[] = "The vault is read-only while the mail server is rebuilt.";

enum state { S_NOTAUTH, S_AUTH, S_SELECTED };

struct sess {
	const struct imapd_io *io;
	const struct vault_view_ops *vv;
	void *vctx;
	const struct imapd_session_opts *o;
	int idle_ms, login_ms;
	unsigned max_bad;
	struct timespec start;

	unsigned char in[IN_BUF];
	size_t in_pos, in_len;
	struct abuf out;

	bool end;                     /* stop after this command */
	int rc;                       /* what imapd_session_run returns */

	enum state state;
	bool tls;
	unsigned bad, login_failures;
	bool condstore, qresync;
	char user[128];               /* for the log */

	/* selected */
	size_t sel;
	struct vv_mailbox mb;
	uint32_t sel_uidvalidity, sel_uidnext;
	uint64_t sel_highestmodseq;
	bool sel_rw;                  /* SELECTed and the view keeps flag changes */
	uint64_t notified_modseq;     /* other sessions' changes up to this were shown */
	bool sel_watch;               /* selected (or examined) where changes are kept: look for them */
	bool watch_logged;            /* a failed look was logged for this selection */
	bool *flags_shown;            /* FETCH: \Seen set by it, FLAGS to be shown (per message) */

	/* the last message's bytes, its MIME tree and a lower-cased copy */
	bool cache_valid;
	size_t cache_folder;
	uint32_t cache_uid;
	struct abuf body;
	struct imapd_mime *mime;
	bool lower_valid;
	struct abuf lower;

	struct abuf cmd;              /* the command being read */
	struct abuf tmp;              /* scratch */
	struct abuf name;             /* scratch: a name with the shown separator */

	/* from the view with each folder list */
	char sep;                     /* hierarchy separator shown: '.' or '/' */
	char *const *gone;            /* subscriptions to folders that don't exist */
	size_t ngone;
	bool hidden_logged;
};

/* ---- log ------------------------------------------------------------------ */

static void logf_(struct sess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct sess *s, const char *fmt, ...)
{
	if (s->o->log == NULL)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	s->o->log(s->o->log_ctx, line);
}

/* a client-given name made safe for one log line */
static void log_name(char *dst, size_t size, const char *src)
{
	size_t n = 0;
	for (; *src && n + 1 < size; src++)
		dst[n++] = ((unsigned char)*src < 0x20 || (unsigned char)*src >= 0x7f) ? '?' : *src;
	dst[n] = '\0';
}

/* ---- output --------------------------------------------------------------- */

static void fatal(struct sess *s, int rc)
{
	if (!s->end) {
		s->end = true;
		s->rc = rc;
	}
}

static void out_add(struct sess *s, const void *p, size_t n)
{
	if (s->end)
		return;
	if (abuf_add(&s->out, p, n) != 0)
		fatal(s, ARCA_ENOMEM);
}

static void out_str(struct sess *s, const char *str)
{
	out_add(s, str, strlen(str));
}

static void out_u64(struct sess *s, uint64_t v)
{
	char b[24];
	size_t i = sizeof(b);
	do {
		b[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	out_add(s, b + i, sizeof(b) - i);
}

static void out_fmt(struct sess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_fmt(struct sess *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	out_add(s, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void out_flush(struct sess *s)
{
	if (s->out.len == 0)
		return;
	if (s->rc != ARCA_EIO && s->io->write(s->io->ctx, s->out.data, s->out.len) < 0) {
		fatal(s, ARCA_EIO);
		s->rc = ARCA_EIO;   /* even after LOGOUT: no second try */
	}
	abuf_reset(&s->out);
}

static void out_maybe_flush(struct sess *s)
{
	if (s->out.len >= OUT_FLUSH)
		out_flush(s);
}

/* Bytes as an IMAP string: an atom (astring) when allowed and atom_ok, a
 * quoted string when printable, else a literal. */
static bool is_astring_char(unsigned char ch)
{
	if (ch <= 0x20 || ch >= 0x7f)
		return false;
	return !strchr("(){%*\"\\", ch);
}

static void out_string(struct sess *s, const char *p, size_t n, bool atom_ok)
{
	bool atom = atom_ok && n > 0 && !(n == 3 && strncasecmp(p, "NIL", 3) == 0);
	bool quotable = n < 1024;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (!is_astring_char(ch))
			atom = false;
		if (ch < 0x20 || ch >= 0x7f)
			quotable = false;
	}
	if (atom) {
		out_add(s, p, n);
	} else if (quotable) {
		out_add(s, "\"", 1);
		size_t from = 0;
		for (size_t i = 0; i < n; i++) {
			if (p[i] == '"' || p[i] == '\\') {
				out_add(s, p + from, i - from);
				out_add(s, "\\", 1);
				from = i;
			}
		}
		out_add(s, p + from, n - from);
		out_add(s, "\"", 1);
	} else {
		out_add(s, "{", 1);
		out_u64(s, n);
		out_add(s, "}\r\n", 3);
		out_add(s, p, n);
	}
}

/* A literal's bytes: big ones are written straight from the caller's
 * buffer in chunks, without a copy into the output buffer. */
static void out_literal(struct sess *s, const void *p, size_t n)
{
	if (n == 0) {
		out_add(s, "\"\"", 2);
		return;
	}
	out_add(s, "{", 1);
	out_u64(s, n);
	out_add(s, "}\r\n", 3);
	if (n < STREAM_MIN) {
		out_add(s, p, n);
		return;
	}
	out_flush(s);
	const char *q = p;
	while (n > 0 && !s->end) {
		size_t k = n > (1u << 20) ? (1u << 20) : n;
		if (s->io->write(s->io->ctx, q, k) < 0) {
			fatal(s, ARCA_EIO);
			break;
		}
		q += k;
		n -= k;
	}
}

/* ---- input ---------------------------------------------------------------- */

enum rd { RD_OK = 0, RD_TIMEOUT = 1, RD_EOF = 2, RD_ERR = 3 };

static long ms_since_start(const struct sess *s)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - s->start.tv_sec) * 1000 +
	       (long)(now.tv_nsec - s->start.tv_nsec) / 1000000;
}

/* How long to wait for the client now. */
static int wait_ms(const struct sess *s)
{
	if (s->state != S_NOTAUTH)
		return s->idle_ms;
	long left = (long)s->login_ms - ms_since_start(s);
	if (left < 0)
		left = 0;
	return left < s->idle_ms ? (int)left : s->idle_ms;
}

/* Make input available, waiting at most timeout_ms (flushing first). */
static enum rd in_fill(struct sess *s, int timeout_ms)
{
	if (s->in_pos < s->in_len)
		return RD_OK;
	out_flush(s);
	if (s->end)
		return RD_ERR;
	/* before login every wait, in a command line, a literal or an
	 * AUTHENTICATE exchange alike, ends at the one deadline counted from
	 * the connection: a byte now and then keeps nobody in */
	if (s->state == S_NOTAUTH) {
		int left = wait_ms(s);
		if (left < timeout_ms)
			timeout_ms = left;
	}
	if (timeout_ms <= 0)
		return RD_TIMEOUT;
	int w = s->io->wait(s->io->ctx, timeout_ms);
	if (w == 0)
		return RD_TIMEOUT;
	if (w < 0)
		return RD_ERR;
	ssize_t n = s->io->read(s->io->ctx, s->in, sizeof(s->in));
	if (n == 0)
		return RD_EOF;
	if (n < 0)
		return RD_ERR;
	s->in_pos = 0;
	s->in_len = (size_t)n;
	return RD_OK;
}

/*
 * Read one line up to LF into dst (CR LF stripped), at most max bytes kept;
 * *over is set when the line was longer (the rest is dropped, its last
 * bytes kept in tail/tail_len for a literal marker).
 */
struct tail {
	char b[32];
	size_t n;
};

static void tail_push(struct tail *t, const unsigned char *p, size_t n)
{
	if (n >= sizeof(t->b)) {
		memcpy(t->b, p + n - sizeof(t->b), sizeof(t->b));
		t->n = sizeof(t->b);
		return;
	}
	if (t->n + n > sizeof(t->b)) {
		size_t drop = t->n + n - sizeof(t->b);
		memmove(t->b, t->b + drop, t->n - drop);
		t->n -= drop;
	}
	memcpy(t->b + t->n, p, n);
	t->n += n;
}

static enum rd read_line(struct sess *s, struct abuf *dst, size_t max, bool *over,
			 struct tail *tail, int timeout_ms)
{
	size_t start = dst->len;
	*over = false;
	if (tail)
		tail->n = 0;
	for (;;) {
		enum rd r = in_fill(s, timeout_ms);
		if (r != RD_OK)
			return r;
		unsigned char *p = s->in + s->in_pos;
		size_t avail = s->in_len - s->in_pos;
		unsigned char *lf = memchr(p, '\n', avail);
		size_t take = lf ? (size_t)(lf - p) : avail;
		if (!*over && dst->len - start + take > max) {
			/* keep what fits (the tag, for the answer), drop the rest */
			if (abuf_add(dst, p, max - (dst->len - start)) != 0) {
				fatal(s, ARCA_ENOMEM);
				return RD_ERR;
			}
			*over = true;
		}
		if (*over) {
			if (tail)
				tail_push(tail, p, take);
		} else if (abuf_add(dst, p, take) != 0) {
			fatal(s, ARCA_ENOMEM);
			return RD_ERR;
		}
		s->in_pos += take;
		if (lf) {
			s->in_pos++;
			if (*over) {
				if (tail && tail->n > 0 && tail->b[tail->n - 1] == '\r')
					tail->n--;
			} else if (dst->len > start && dst->data[dst->len - 1] == '\r') {
				dst->len--;
			}
			return RD_OK;
		}
	}
}

/* Read (keep) or skip exactly n bytes. */
static enum rd read_bytes(struct sess *s, struct abuf *dst, uint64_t n, int timeout_ms)
{
	while (n > 0) {
		enum rd r = in_fill(s, timeout_ms);
		if (r != RD_OK)
			return r;
		size_t avail = s->in_len - s->in_pos;
		size_t take = n < avail ? (size_t)n : avail;
		if (dst && abuf_add(dst, s->in + s->in_pos, take) != 0) {
			fatal(s, ARCA_ENOMEM);
			return RD_ERR;
		}
		s->in_pos += take;
		n -= take;
	}
	return RD_OK;
}

static void end_read(struct sess *s, enum rd r)
{
	switch (r) {
	case RD_OK:
		break;
	case RD_TIMEOUT:
		out_str(s, "* BYE Disconnected for inactivity.\r\n");
		out_flush(s);
		logf_(s, "disconnected for inactivity%s%s", s->user[0] ? " user=" : "", s->user);
		fatal(s, ARCA_ELIMIT);
		break;
	case RD_EOF:
		fatal(s, 0);
		break;
	case RD_ERR:
		fatal(s, ARCA_EIO);
		break;
	}
}

/* The rest of a command that won't be answered: its lines, and the bytes
 * of the non-synchronizing literals the client sends without waiting.  A
 * synchronizing literal ends it (the client waits for a "+" that doesn't
 * come). */
static enum rd skip_command(struct sess *s, const struct tail *t)
{
	struct tail tl = *t;
	for (;;) {
		uint64_t n = 0;
		bool nonsync = false;
		int lit = imapd_line_literal(tl.b, tl.n, &n, &nonsync);
		if (lit == 0 || !nonsync)
			return RD_OK;
		if (lit < 0) {
			/* a non-synchronizing literal of unknown size: no way to
			 * find the next command */
			out_str(s, "* BYE Literal too large.\r\n");
			fatal(s, ARCA_ELIMIT);
			return RD_ERR;
		}
		enum rd r = read_bytes(s, NULL, n, s->idle_ms);
		if (r != RD_OK)
			return r;
		bool over;
		abuf_reset(&s->tmp);
		r = read_line(s, &s->tmp, 0, &over, &tl, s->idle_ms);
		if (r != RD_OK)
			return r;
		if (!over)
			tl.n = 0;
	}
}

static void answer_unread(struct sess *s, const char *bad_or_no, const char *text)
{
	char tag[IMAPD_TAG_MAX + 1], name[32];
	if (!imapd_peek_tag((const char *)s->cmd.data, s->cmd.len, tag)) {
		out_fmt(s, "* %s %s\r\n", bad_or_no, text);
	} else if (s->state != S_NOTAUTH &&
		   imapd_peek_name((const char *)s->cmd.data, s->cmd.len, name, sizeof(name)) &&
		   strcmp(name, "APPEND") == 0) {
		out_fmt(s, "%s NO [CANNOT] %s\r\n", tag, readonly_text);
		return;
	} else {
		out_fmt(s, "%s %s %s\r\n", tag, bad_or_no, text);
	}
	if (strcmp(bad_or_no, "BAD") == 0)
		s->bad++;
}

/*
 * One whole command into s->cmd.  RD_OK with s->cmd filled (empty: the
 * command was answered already, read the next).
 */
static enum rd read_command(struct sess *s)
{
	abuf_reset(&s->cmd);
	for (;;) {
		size_t line_start = s->cmd.len;
		size_t room = IMAPD_COMMAND_MAX - line_start;
		bool over;
		struct tail t;
		enum rd r = read_line(s, &s->cmd, room < IMAPD_LINE_MAX ? room : IMAPD_LINE_MAX,
				      &over, &t, wait_ms(s));
		if (r != RD_OK)
			return r;
		if (over) {
			answer_unread(s, "BAD", "Command line too long.");
			s->cmd.len = 0;
			return skip_command(s, &t);
		}
		const char *line = (const char *)s->cmd.data + line_start;
		size_t len = s->cmd.len - line_start;
		uint64_t n = 0;
		bool nonsync = false;
		int lit = imapd_line_literal(line, len, &n, &nonsync);
		if (lit == 0)
			return RD_OK;
		if (lit < 0 || n > IMAPD_LITERAL_MAX ||
		    s->cmd.len + 2 + n > IMAPD_COMMAND_MAX) {
			answer_unread(s, "NO", "[TOOBIG] Literal too large.");
			t.n = 0;
			tail_push(&t, (const unsigned char *)line + len - (len < 32 ? len : 32),
				  len < 32 ? len : 32);
			s->cmd.len = 0;
			return nonsync ? skip_command(s, &t) : RD_OK;
		}
		if (abuf_add(&s->cmd, "\r\n", 2) != 0) {
			fatal(s, ARCA_ENOMEM);
			return RD_ERR;
		}
		if (!nonsync)
			out_str(s, "+ Ready for literal data.\r\n");
		r = read_bytes(s, &s->cmd, n, s->idle_ms);
		if (r != RD_OK)
			return r;
	}
}

/* ---- capabilities, folders ------------------------------------------------ */

static void out_caps(struct sess *s)
{
	out_str(s, "IMAP4rev1 SASL-IR ID ENABLE IDLE NAMESPACE LITERAL+ UIDPLUS CONDSTORE "
		   "QRESYNC LIST-EXTENDED LIST-STATUS SPECIAL-USE CHILDREN UNSELECT ESEARCH");
	if (s->state != S_NOTAUTH)
		return;
	if (s->io->starttls != NULL && !s->tls)
		out_str(s, " STARTTLS");
	if (!s->tls && !s->io->loopback)
		out_str(s, " LOGINDISABLED");
	else
		out_str(s, " AUTH=PLAIN");
}

/* The folder list, and with it the account's separator and gone
 * subscriptions (a view without account(): '/' and none). */
static int get_folders(struct sess *s, const struct vv_folder **f, size_t *n)
{
	const struct vv_account *a = NULL;
	int rc = s->vv->folders(s->vctx, f, n);
	if (rc == 0 && s->vv->account != NULL)
		rc = s->vv->account(s->vctx, &a);
	if (rc != 0) {
		logf_(s, "user=%s: folder list: %s", s->user, arca_strerror(rc));
		return rc;
	}
	s->sep = a != NULL && a->separator == '.' ? '.' : '/';
	s->gone = a != NULL ? a->gone_subs : NULL;
	s->ngone = a != NULL ? a->ngone_subs : 0;
	return 0;
}

/*
 * Names: the view's are UTF-8 with '/' between levels; the client sees the
 * account's separator instead (Dovecot's '.' for Maildir++).  Translating
 * is only a bijection if no level holds the shown separator: a LAYOUT=fs
 * folder "a.b" shown with '.' would read as two levels "a", "b" and could
 * never be named back.  Such a name is not shown at all (the log says so)
 * rather than shown split wrongly; Dovecot on Maildir++ can't have it, so
 * it only comes from a LAYOUT=fs vault served with --separator '.'.
 */
static bool name_showable(const struct sess *s, const char *utf8)
{
	return s->sep == '/' || strchr(utf8, s->sep) == NULL;
}

/* The view's name with the shown separator, in s->name (NUL-terminated). */
static int display_name(struct sess *s, const char *utf8)
{
	if (!name_showable(s, utf8))
		return ARCA_EINVAL;
	abuf_reset(&s->name);
	if (abuf_add(&s->name, utf8, strlen(utf8)) != 0 || abuf_cstr(&s->name) != 0)
		return ARCA_ENOMEM;
	for (size_t i = 0; s->sep != '/' && i < s->name.len; i++)
		if (s->name.data[i] == '/')
			s->name.data[i] = (unsigned char)s->sep;
	return 0;
}

/* b (UTF-8 as the client wrote it, NUL-terminated) into the view's form,
 * in place.  false: it can name nothing (a '/' inside a level, when the
 * separator is '.', is in no view name). */
static bool view_form(const struct sess *s, struct abuf *b)
{
	if (s->sep == '/')
		return true;
	for (size_t i = 0; i < b->len; i++) {
		if (b->data[i] == '/')
			return false;
		if (b->data[i] == (unsigned char)s->sep)
			b->data[i] = '/';
	}
	return true;
}

/* A mailbox name from the client (modified UTF-7; INBOX in any case) to
 * the view's folder.  ARCA_ENOENT when there's none. */
static int find_folder(struct sess *s, const char *wire, size_t *idx_r,
		       const struct vv_folder **f_r)
{
	const struct vv_folder *f;
	size_t n;
	int rc = get_folders(s, &f, &n);
	if (rc)
		return rc;
	const char *name;
	if (strcasecmp(wire, "INBOX") == 0) {
		name = "INBOX";
	} else {
		if (mutf7_to_utf8(wire, &s->tmp) != 0 || !view_form(s, &s->tmp))
			return ARCA_ENOENT;
		/* INBOX's children too: "inbox/x" is "INBOX/x" */
		if (s->tmp.len > 6 && strncasecmp((const char *)s->tmp.data, "INBOX/", 6) == 0)
			memcpy(s->tmp.data, "INBOX", 5);
		name = (const char *)s->tmp.data;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(f[i].name, name) == 0) {
			*idx_r = i;
			*f_r = &f[i];
			return 0;
		}
	}
	return ARCA_ENOENT;
}

/* A view's folder name as the client sees it (the shown separator,
 * modified UTF-7), in s->tmp. */
static int wire_name(struct sess *s, const char *utf8)
{
	int rc = display_name(s, utf8);
	return rc ? rc : utf8_to_mutf7((const char *)s->name.data, &s->tmp);
}

static void out_mailbox(struct sess *s, const char *utf8)
{
	if (wire_name(s, utf8) != 0) {
		out_string(s, utf8, strlen(utf8), false);   /* never: callers check */
		return;
	}
	out_string(s, (const char *)s->tmp.data, s->tmp.len, true);
}

static void out_status(struct sess *s, const struct vv_folder *f, uint32_t items)
{
	out_str(s, "* STATUS ");
	out_mailbox(s, f->name);
	out_str(s, " (");
	const char *sep = "";
	if (items & IMAPD_ST_MESSAGES)
		out_fmt(s, "%sMESSAGES %u", sep, f->messages), sep = " ";
	if (items & IMAPD_ST_RECENT)
		out_fmt(s, "%sRECENT 0", sep), sep = " ";
	if (items & IMAPD_ST_UIDNEXT)
		out_fmt(s, "%sUIDNEXT %u", sep, f->uidnext), sep = " ";
	if (items & IMAPD_ST_UIDVALIDITY)
		out_fmt(s, "%sUIDVALIDITY %u", sep, f->uidvalidity), sep = " ";
	if (items & IMAPD_ST_UNSEEN)
		out_fmt(s, "%sUNSEEN %u", sep, f->unseen), sep = " ";
	if (items & IMAPD_ST_HIGHESTMODSEQ)
		out_fmt(s, "%sHIGHESTMODSEQ %llu", sep, (unsigned long long)f->highestmodseq);
	out_str(s, ")\r\n");
}

/* ---- sequence sets -------------------------------------------------------- */

static int range_cmp(const void *a, const void *b)
{
	const struct imapd_range *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Resolve "*" to star, order each range, sort and merge: afterwards the
 * ranges are disjoint, ascending and not adjacent. */
static void norm_set(struct imapd_seqset *set, uint32_t star)
{
	for (size_t i = 0; i < set->n; i++) {
		struct imapd_range *r = &set->r[i];
		if (r->lo == 0)
			r->lo = star;
		if (r->hi == 0)
			r->hi = star;
		if (r->lo > r->hi) {
			uint32_t t = r->lo;
			r->lo = r->hi;
			r->hi = t;
		}
	}
	qsort(set->r, set->n, sizeof(*set->r), range_cmp);
	size_t k = 0;
	for (size_t i = 0; i < set->n; i++) {
		if (k > 0 && (set->r[k - 1].hi == UINT32_MAX || set->r[i].lo <= set->r[k - 1].hi + 1)) {
			if (set->r[i].hi > set->r[k - 1].hi)
				set->r[k - 1].hi = set->r[i].hi;
		} else {
			set->r[k++] = set->r[i];
		}
	}
	set->n = k;
}

static bool in_set(const struct imapd_seqset *set, uint32_t v)
{
	size_t lo = 0, hi = set->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (set->r[mid].hi < v)
			lo = mid + 1;
		else if (set->r[mid].lo > v)
			hi = mid;
		else
			return true;
	}
	return false;
}

/* First message index with uid >= v. */
static size_t uid_lower_bound(const struct vv_mailbox *mb, uint32_t v)
{
	size_t lo = 0, hi = mb->nmsgs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (mb->msgs[mid].uid < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint32_t max_uid(const struct sess *s)
{
	return s->mb.nmsgs ? s->mb.msgs[s->mb.nmsgs - 1].uid : 0;
}

/* A set of UIDs or sequence numbers, compressed ("1:3,7"), from ascending values. */
struct setw {
	struct sess *s;
	bool any;
	uint32_t lo, hi;
};

static void setw_flush(struct setw *w)
{
	if (!w->any)
		return;
	out_u64(w->s, w->lo);
	if (w->hi != w->lo) {
		out_add(w->s, ":", 1);
		out_u64(w->s, w->hi);
	}
}

static void setw_add(struct setw *w, uint32_t lo, uint32_t hi)
{
	if (w->any && w->hi != UINT32_MAX && lo == w->hi + 1) {
		w->hi = hi;
		return;
	}
	if (w->any) {
		setw_flush(w);
		out_add(w->s, ",", 1);
		out_maybe_flush(w->s);
	}
	w->any = true;
	w->lo = lo;
	w->hi = hi;
}

/* "* VANISHED (EARLIER) uids": the UIDs of a normalized set, below UIDNEXT,
 * that the mailbox doesn't hold.  Without expunge history this reports
 * every such UID, which RFC 7162 3.2.5.2 allows (a client ignores UIDs it
 * doesn't have). */
static void out_vanished(struct sess *s, const struct imapd_seqset *set)
{
	struct setw w = { .s = s };
	bool started = false;
	uint32_t limit = s->sel_uidnext > 0 ? s->sel_uidnext - 1 : 0;
	for (size_t i = 0; i < set->n && !s->end; i++) {
		uint32_t lo = set->r[i].lo, hi = set->r[i].hi < limit ? set->r[i].hi : limit;
		if (lo == 0)
			lo = 1;
		if (lo > hi)
			continue;
		size_t k = uid_lower_bound(&s->mb, lo);
		uint32_t next = lo;   /* first uid not yet accounted for */
		for (;;) {
			uint32_t present = k < s->mb.nmsgs ? s->mb.msgs[k].uid : 0;
			uint32_t gap_end = (present != 0 && present <= hi) ? present - 1 : hi;
			if (next <= gap_end && (present == 0 || present > next || present > hi)) {
				if (!started) {
					out_str(s, "* VANISHED (EARLIER) ");
					started = true;
				}
				setw_add(&w, next, gap_end);
			}
			if (present == 0 || present > hi || present == UINT32_MAX)
				break;
			next = present + 1;
			k++;
		}
	}
	if (started) {
		setw_flush(&w);
		out_str(s, "\r\n");
	}
}

/* ---- message data --------------------------------------------------------- */

static void out_flags(struct sess *s, const struct vv_msg *m)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} sys[] = {
		{ VV_SEEN, "\\Seen" }, { VV_ANSWERED, "\\Answered" }, { VV_FLAGGED, "\\Flagged" },
		{ VV_DELETED, "\\Deleted" }, { VV_DRAFT, "\\Draft" },
	};
	out_add(s, "(", 1);
	bool first = true;
	for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
		if (m->flags & sys[i].bit) {
			if (!first)
				out_add(s, " ", 1);
			out_str(s, sys[i].name);
			first = false;
		}
	}
	for (size_t i = 0; i < s->mb.nkeywords && i < 64; i++) {
		if (!(m->keywords & ((uint64_t)1 << i)) || s->mb.keywords[i] == NULL)
			continue;
		if (!first)
			out_add(s, " ", 1);
		out_str(s, s->mb.keywords[i]);
		first = false;
	}
	out_add(s, ")", 1);
}

static const char *const month_names[12] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static void out_date(struct sess *s, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;
	if (t < 0 || t > 253402300799LL || gmtime_r(&tt, &tm) == NULL) {
		tt = 0;
		gmtime_r(&tt, &tm);
	}
	out_fmt(s, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday, month_names[tm.tm_mon],
		tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Is a keyword a valid flag atom (what the view stores came from Dovecot,
 * but a flag can't be quoted on the wire)? */
static bool keyword_ok(const char *k)
{
	if (k == NULL || *k == '\0')
		return false;
	for (; *k; k++)
		if (!is_astring_char((unsigned char)*k) || *k == ']')
			return false;
	return true;
}

static void sanitize_keywords(struct vv_mailbox *mb)
{
	for (size_t i = 0; i < mb->nkeywords && i < 64; i++) {
		if (!keyword_ok(mb->keywords[i])) {
			free(mb->keywords[i]);
			mb->keywords[i] = NULL;   /* never shown */
		}
	}
}

static void cache_drop(struct sess *s)
{
	s->cache_valid = false;
	s->lower_valid = false;
	imapd_mime_free(s->mime);
	s->mime = NULL;
	abuf_reset(&s->body);
}

/* The message's bytes into s->body. */
static int load_body(struct sess *s, const struct vv_msg *m)
{
	if (s->cache_valid && s->cache_folder == s->sel && s->cache_uid == m->uid)
		return 0;
	cache_drop(s);
	int rc = s->vv->body(s->vctx, s->sel, m->uid, &s->body);
	if (rc != 0) {
		abuf_reset(&s->body);
		logf_(s, "user=%s: message uid %u: %s", s->user, m->uid, arca_strerror(rc));
		return rc;
	}
	s->cache_valid = true;
	s->cache_folder = s->sel;
	s->cache_uid = m->uid;
	return 0;
}

static int load_mime(struct sess *s)
{
	if (s->mime != NULL)
		return 0;
	/* the MIME parser wants a valid pointer even for an empty message */
	if (s->body.data == NULL && abuf_reserve(&s->body, 1) != 0)
		return ARCA_ENOMEM;
	return imapd_mime_parse((const char *)s->body.data, s->body.len, &s->mime);
}

static int load_lower(struct sess *s)
{
	if (s->lower_valid)
		return 0;
	abuf_reset(&s->lower);
	if (abuf_reserve(&s->lower, s->body.len + 1) != 0)
		return ARCA_ENOMEM;
	for (size_t i = 0; i < s->body.len; i++) {
		unsigned char ch = s->body.data[i];
		s->lower.data[i] = (ch >= 'A' && ch <= 'Z') ? (unsigned char)(ch + 32) : ch;
	}
	s->lower.len = s->body.len;
	s->lower_valid = true;
	return 0;
}

/* Length of the header (with its blank line) of the CRLF message in body. */
static size_t header_len(const unsigned char *p, size_t n)
{
	if (n >= 2 && p[0] == '\r' && p[1] == '\n')
		return 2;
	const unsigned char *e = memmem(p, n, "\r\n\r\n", 4);
	return e ? (size_t)(e - p) + 4 : n;
}

/* ---- FETCH ---------------------------------------------------------------- */

static bool att_needs_body(const struct imapd_fetch_att *a)
{
	switch (a->kind) {
	case IMAPD_FA_UID: case IMAPD_FA_FLAGS: case IMAPD_FA_INTERNALDATE:
	case IMAPD_FA_RFC822_SIZE: case IMAPD_FA_MODSEQ:
		return false;
	default:
		return true;
	}
}

static void out_section_spec(struct sess *s, const struct imapd_section *sec)
{
	static const char *const kinds[] = {
		[IMAPD_SECTION_ALL] = "", [IMAPD_SECTION_HEADER] = "HEADER",
		[IMAPD_SECTION_HEADER_FIELDS] = "HEADER.FIELDS",
		[IMAPD_SECTION_HEADER_FIELDS_NOT] = "HEADER.FIELDS.NOT",
		[IMAPD_SECTION_TEXT] = "TEXT", [IMAPD_SECTION_MIME] = "MIME",
	};
	for (size_t i = 0; i < sec->nparts; i++) {
		if (i > 0)
			out_add(s, ".", 1);
		out_u64(s, sec->part[i]);
	}
	if (sec->kind != IMAPD_SECTION_ALL) {
		if (sec->nparts > 0)
			out_add(s, ".", 1);
		out_str(s, kinds[sec->kind]);
	}
	if (sec->kind == IMAPD_SECTION_HEADER_FIELDS || sec->kind == IMAPD_SECTION_HEADER_FIELDS_NOT) {
		out_str(s, " (");
		for (size_t i = 0; i < sec->nfields; i++) {
			if (i > 0)
				out_add(s, " ", 1);
			out_string(s, sec->fields[i], strlen(sec->fields[i]), true);
		}
		out_add(s, ")", 1);
	}
}

/* The bytes of a section: a pointer into the body, or into s->tmp. */
static int section_bytes(struct sess *s, const struct imapd_section *sec,
			 const unsigned char **p_r, size_t *n_r)
{
	const unsigned char *b = s->body.data;
	size_t n = s->body.len;
	if (sec->nparts == 0 && sec->kind == IMAPD_SECTION_ALL) {
		*p_r = b;
		*n_r = n;
		return 0;
	}
	if (sec->nparts == 0 && (sec->kind == IMAPD_SECTION_HEADER || sec->kind == IMAPD_SECTION_TEXT)) {
		size_t h = header_len(b, n);
		*p_r = sec->kind == IMAPD_SECTION_HEADER ? b : b + h;
		*n_r = sec->kind == IMAPD_SECTION_HEADER ? h : n - h;
		return 0;
	}
	int rc = load_mime(s);
	if (rc)
		return rc;
	abuf_reset(&s->tmp);
	rc = imapd_mime_section(s->mime, sec, &s->tmp);
	if (rc)
		return rc;
	*p_r = s->tmp.data;
	*n_r = s->tmp.len;
	return 0;
}

static int out_fetch_att(struct sess *s, const struct imapd_fetch_att *a, const struct vv_msg *m)
{
	int rc;
	switch (a->kind) {
	case IMAPD_FA_UID:
		out_str(s, "UID ");
		out_u64(s, m->uid);
		return 0;
	case IMAPD_FA_FLAGS:
		out_str(s, "FLAGS ");
		out_flags(s, m);
		return 0;
	case IMAPD_FA_INTERNALDATE:
		out_str(s, "INTERNALDATE ");
		out_date(s, m->date);
		return 0;
	case IMAPD_FA_RFC822_SIZE:
		out_str(s, "RFC822.SIZE ");
		out_u64(s, m->size);
		return 0;
	case IMAPD_FA_MODSEQ:
		out_str(s, "MODSEQ (");
		out_u64(s, m->modseq);
		out_add(s, ")", 1);
		return 0;
	case IMAPD_FA_ENVELOPE:
	case IMAPD_FA_BODY:
	case IMAPD_FA_BODYSTRUCTURE:
		if ((rc = load_mime(s)) != 0)
			return rc;
		out_str(s, a->kind == IMAPD_FA_ENVELOPE ? "ENVELOPE " :
			   a->kind == IMAPD_FA_BODY ? "BODY " : "BODYSTRUCTURE ");
		if (s->end)
			return 0;
		rc = a->kind == IMAPD_FA_ENVELOPE ? imapd_mime_envelope(s->mime, &s->out) :
		     imapd_mime_bodystructure(s->mime, a->kind == IMAPD_FA_BODYSTRUCTURE, &s->out);
		return rc;
	case IMAPD_FA_RFC822:
	case IMAPD_FA_RFC822_HEADER:
	case IMAPD_FA_RFC822_TEXT:
	case IMAPD_FA_BODY_SECTION: {
		struct imapd_section sec;
		const struct imapd_section *sp = &a->section;
		if (a->kind != IMAPD_FA_BODY_SECTION) {
			memset(&sec, 0, sizeof(sec));
			sec.kind = a->kind == IMAPD_FA_RFC822 ? IMAPD_SECTION_ALL :
				   a->kind == IMAPD_FA_RFC822_HEADER ? IMAPD_SECTION_HEADER :
				   IMAPD_SECTION_TEXT;
			sp = &sec;
		}
		const unsigned char *p;
		size_t n;
		if ((rc = section_bytes(s, sp, &p, &n)) != 0)
			return rc;
		if (a->kind == IMAPD_FA_BODY_SECTION) {
			out_str(s, "BODY[");
			out_section_spec(s, sp);
			out_add(s, "]", 1);
			if (a->partial) {
				out_add(s, "<", 1);
				out_u64(s, a->offset);
				out_add(s, ">", 1);
				if (a->offset >= n) {
					n = 0;
				} else {
					p += a->offset;
					n -= a->offset;
					if (n > a->count)
						n = a->count;
				}
			}
			out_add(s, " ", 1);
		} else {
			out_str(s, a->kind == IMAPD_FA_RFC822 ? "RFC822 " :
				   a->kind == IMAPD_FA_RFC822_HEADER ? "RFC822.HEADER " : "RFC822.TEXT ");
		}
		out_literal(s, p, n);
		return 0;
	}
	}
	return 0;
}

/* The message indexes of a set, ascending, through a callback. */
typedef int (*msg_fn)(struct sess *s, size_t idx, void *ctx);

static int each_msg(struct sess *s, struct imapd_seqset *set, bool uid, msg_fn fn, void *ctx)
{
	norm_set(set, uid ? max_uid(s) : (uint32_t)s->mb.nmsgs);
	for (size_t i = 0; i < set->n && !s->end; i++) {
		size_t k, end;
		if (uid) {
			k = uid_lower_bound(&s->mb, set->r[i].lo);
			end = s->mb.nmsgs;
		} else {
			k = set->r[i].lo > 0 ? set->r[i].lo - 1 : 0;
			end = set->r[i].hi < s->mb.nmsgs ? set->r[i].hi : s->mb.nmsgs;
		}
		for (; k < end && !s->end; k++) {
			if (uid && s->mb.msgs[k].uid > set->r[i].hi)
				break;
			int rc = fn(s, k, ctx);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* Do sequence numbers of a set exist?  (RFC 3501 6.4.8: a number above
 * EXISTS is an error; "*" in an empty mailbox just matches nothing.) */
static bool seqset_valid(const struct sess *s, const struct imapd_seqset *set)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->r[i].lo > s->mb.nmsgs || set->r[i].hi > s->mb.nmsgs)
			return false;
	return true;
}

struct fetch_ctx {
	const struct imapd_cmd *c;
	bool need_body;
	bool add_uid, add_modseq;
	int rc;
};

static int fetch_one(struct sess *s, size_t idx, void *vctx)
{
	struct fetch_ctx *fc = vctx;
	const struct imapd_cmd *c = fc->c;
	const struct vv_msg *m = &s->mb.msgs[idx];
	if (c->changedsince_given && m->modseq <= c->changedsince)
		return 0;
	int rc;
	if (fc->need_body && (rc = load_body(s, m)) != 0)
		return rc;
	out_str(s, "* ");
	out_u64(s, idx + 1);
	out_str(s, " FETCH (");
	bool first = true;
	if (fc->add_uid) {
		out_str(s, "UID ");
		out_u64(s, m->uid);
		first = false;
	}
	for (size_t i = 0; i < c->natts; i++) {
		if (!first)
			out_add(s, " ", 1);
		first = false;
		if ((rc = out_fetch_att(s, &c->atts[i], m)) != 0) {
			/* half an answer is out: no tagged NO can follow it */
			logf_(s, "user=%s: FETCH uid %u: %s", s->user, m->uid, arca_strerror(rc));
			fatal(s, rc);
			return rc;
		}
	}
	if (s->flags_shown && s->flags_shown[idx]) {
		/* \Seen was just set: the new flags (and MODSEQ) come along
		 * unless asked for already */
		bool has_flags = false, has_modseq = fc->add_modseq;
		for (size_t i = 0; i < c->natts; i++) {
			has_flags = has_flags || c->atts[i].kind == IMAPD_FA_FLAGS;
			has_modseq = has_modseq || c->atts[i].kind == IMAPD_FA_MODSEQ;
		}
		if (!has_flags) {
			out_str(s, first ? "FLAGS " : " FLAGS ");
			out_flags(s, m);
			first = false;
		}
		if (!has_modseq && s->condstore) {
			out_str(s, first ? "MODSEQ (" : " MODSEQ (");
			out_u64(s, m->modseq);
			out_add(s, ")", 1);
			first = false;
		}
	}
	if (fc->add_modseq) {
		if (!first)
			out_add(s, " ", 1);
		out_str(s, "MODSEQ (");
		out_u64(s, m->modseq);
		out_add(s, ")", 1);
	}
	out_str(s, ")\r\n");
	out_maybe_flush(s);
	return 0;
}

static void tagged(struct sess *s, const char *tag, const char *text)
{
	out_str(s, tag);
	out_add(s, " ", 1);
	out_str(s, text);
	out_str(s, "\r\n");
}

static void bad(struct sess *s, const char *tag, const char *text)
{
	out_str(s, tag ? tag : "*");
	out_str(s, " BAD ");
	out_str(s, text);
	out_str(s, "\r\n");
	s->bad++;
}

/* ---- STORE ---------------------------------------------------------------- */

static void out_flag_names(struct sess *s);

static const char cannot_text[] =
	"Messages can't be copied, moved, expunged or added while the mail server is rebuilt (flag changes are kept).";

struct uid_list {
	uint32_t *v;
	size_t n, cap;
	bool unseen_only;
	bool changedsince_given;      /* FETCH (CHANGEDSINCE n): only what it answers */
	uint64_t changedsince;
	bool failed;
};

static int collect_uid(struct sess *s, size_t idx, void *vctx)
{
	struct uid_list *l = vctx;
	if (l->unseen_only && (s->mb.msgs[idx].flags & VV_SEEN))
		return 0;
	if (l->changedsince_given && s->mb.msgs[idx].modseq <= l->changedsince)
		return 0;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		uint32_t *v = realloc(l->v, nc * sizeof(*v));
		if (v == NULL) {
			l->failed = true;
			return ARCA_ENOMEM;
		}
		l->v = v;
		l->cap = nc;
	}
	l->v[l->n++] = s->mb.msgs[idx].uid;
	return 0;
}

/* Take a STORE's result into the selected mailbox: the keyword list (and
 * FLAGS / PERMANENTFLAGS when it grew), each message's flags and MODSEQ.
 * changed_r[i] (when given, one per res->msgs): its MODSEQ moved. */
static int store_take(struct sess *s, struct vv_store_result *res, bool *changed_r)
{
	if (res->nkeywords > s->mb.nkeywords) {
		char **kw = calloc(res->nkeywords, sizeof(*kw));
		if (kw == NULL)
			return ARCA_ENOMEM;
		for (size_t i = 0; i < s->mb.nkeywords; i++)
			free(s->mb.keywords[i]);
		free(s->mb.keywords);
		memcpy(kw, res->keywords, res->nkeywords * sizeof(*kw));
		free(res->keywords);
		s->mb.keywords = kw;
		s->mb.nkeywords = res->nkeywords;
		res->keywords = NULL;
		res->nkeywords = 0;
		sanitize_keywords(&s->mb);
		/* RFC 3501 7.2.6: a new keyword is announced */
		out_str(s, "* FLAGS (");
		out_flag_names(s);
		out_str(s, ")\r\n* OK [PERMANENTFLAGS (");
		out_flag_names(s);
		out_str(s, " \\*)] Flags permitted.\r\n");
	}
	for (size_t i = 0; i < res->nmsgs; i++) {
		const struct vv_msg *r = &res->msgs[i];
		size_t idx = uid_lower_bound(&s->mb, r->uid);
		bool moved = false;
		if (idx < s->mb.nmsgs && s->mb.msgs[idx].uid == r->uid) {
			struct vv_msg *m = &s->mb.msgs[idx];
			moved = m->modseq != r->modseq;
			m->flags = r->flags;
			m->keywords = r->keywords;
			m->modseq = r->modseq;
			if (r->modseq > s->sel_highestmodseq)
				s->sel_highestmodseq = r->modseq;
		}
		if (changed_r)
			changed_r[i] = moved;
	}
	return 0;
}

/* store_take, and *moved_r: which messages' MODSEQ moved (malloc'ed, one
 * per res->msgs; NULL when there are none).  Out of memory ends the
 * session: res is released and ARCA_ENOMEM returned. */
static int take_result(struct sess *s, struct vv_store_result *res, bool **moved_r)
{
	bool *moved = res->nmsgs ? calloc(res->nmsgs, sizeof(bool)) : NULL;
	if ((res->nmsgs && moved == NULL) || store_take(s, res, moved) != 0) {
		free(moved);
		vv_store_result_release(res);
		fatal(s, ARCA_ENOMEM);
		return ARCA_ENOMEM;
	}
	*moved_r = moved;
	return 0;
}

/* Flag changes other sessions made since the last look (NOOP, CHECK,
 * IDLE): an unsolicited FETCH for each message whose MODSEQ moved here.
 * The session's own changes are there already (same MODSEQ) and are not
 * shown again. */
static void notify_changes(struct sess *s)
{
	if (s->state != S_SELECTED || !s->sel_watch)
		return;
	struct vv_store_result res;
	int rc = s->vv->changes(s->vctx, s->sel, s->notified_modseq, &res);
	if (rc) {
		/* a channel gone stays gone: stop looking; other trouble (the
		 * keeper short of memory) is tried again at the next look,
		 * said once per selection, not every 5 s of an IDLE */
		bool gone = rc == ARCA_EIO || rc == ARCA_ESTATE;
		if (gone || !s->watch_logged)
			logf_(s, "user=%s: changes of folder %zu: %s%s", s->user, s->sel, arca_strerror(rc),
			      gone ? " (no longer looked for)" : "");
		s->watch_logged = true;
		if (gone)
			s->sel_watch = false;
		return;
	}
	bool *moved;
	if (take_result(s, &res, &moved) != 0)
		return;
	for (size_t i = 0; i < res.nmsgs; i++) {
		if (res.msgs[i].modseq > s->notified_modseq)
			s->notified_modseq = res.msgs[i].modseq;
		size_t idx = uid_lower_bound(&s->mb, res.msgs[i].uid);
		if (!moved[i] || idx >= s->mb.nmsgs || s->mb.msgs[idx].uid != res.msgs[i].uid)
			continue;
		out_str(s, "* ");
		out_u64(s, idx + 1);
		out_str(s, " FETCH (UID ");
		out_u64(s, res.msgs[i].uid);
		out_str(s, " FLAGS ");
		out_flags(s, &s->mb.msgs[idx]);
		if (s->condstore) {
			out_str(s, " MODSEQ (");
			out_u64(s, res.msgs[i].modseq);
			out_add(s, ")", 1);
		}
		out_str(s, ")\r\n");
		out_maybe_flush(s);
	}
	free(moved);
	vv_store_result_release(&res);
}

static void cmd_store(struct sess *s, struct imapd_cmd *c)
{
	if (!s->sel_rw) {
		out_fmt(s, "%s NO [READ-ONLY] %s\r\n", c->tag, readonly_text);
		return;
	}
	if (!c->uid && !seqset_valid(s, &c->set)) {
		bad(s, c->tag, "Invalid message sequence number.");
		return;
	}
	if (c->unchangedsince_given)
		s->condstore = true;   /* RFC 7162 3.1: a CONDSTORE enabling command */
	struct uid_list l = { 0 };
	each_msg(s, &c->set, c->uid, collect_uid, &l);
	if (l.failed) {
		free(l.v);
		tagged(s, c->tag, "NO [SERVERBUG] Out of memory.");
		return;
	}
	if (l.n == 0) {
		free(l.v);
		tagged(s, c->tag, "OK Store completed.");
		return;
	}
	struct vv_store req = {
		.mode = c->store_mode, .flags = c->store_flags,
		.keywords = (char *const *)c->store_keywords, .nkeywords = c->nstore_keywords,
		.uids = l.v, .nuids = l.n,
		.has_unchangedsince = c->unchangedsince_given, .unchangedsince = c->unchangedsince,
	};
	struct vv_store_result res;
	int rc = s->vv->store(s->vctx, s->sel, &req, &res);
	free(l.v);
	if (rc) {
		logf_(s, "user=%s: STORE in folder %zu: %s", s->user, s->sel, arca_strerror(rc));
		tagged(s, c->tag, rc == ARCA_ELIMIT ? "NO [LIMIT] Too many keywords in this mailbox."
			       : rc == ARCA_ENOSPC ? "NO [OVERQUOTA] No room is left to keep flag changes."
			       : "NO [SERVERBUG] The flag change could not be kept.");
		return;
	}
	bool *moved;
	if (take_result(s, &res, &moved) != 0)
		return;
	for (size_t i = 0; i < res.nmsgs; i++) {
		const struct vv_msg *r = &res.msgs[i];
		/* .SILENT: nothing, but a CONDSTORE client still learns the
		 * new MODSEQ of what changed (RFC 7162 3.1.3) */
		if (c->store_silent && !(s->condstore && moved[i]))
			continue;
		size_t idx = uid_lower_bound(&s->mb, r->uid);
		if (idx >= s->mb.nmsgs || s->mb.msgs[idx].uid != r->uid)
			continue;
		out_str(s, "* ");
		out_u64(s, idx + 1);
		out_str(s, " FETCH (");
		const char *sp = "";
		if (c->uid) {
			out_str(s, "UID ");
			out_u64(s, r->uid);
			sp = " ";
		}
		if (!c->store_silent) {
			out_str(s, sp);
			out_str(s, "FLAGS ");
			out_flags(s, &s->mb.msgs[idx]);
			sp = " ";
		}
		if (s->condstore) {
			out_str(s, sp);
			out_str(s, "MODSEQ (");
			out_u64(s, r->modseq);
			out_add(s, ")", 1);
		}
		out_str(s, ")\r\n");
		out_maybe_flush(s);
	}
	free(moved);
	if (res.nmodified > 0) {
		/* RFC 7162 3.1.3: UIDs for UID STORE, else sequence numbers */
		out_str(s, c->tag);
		out_str(s, " OK [MODIFIED ");
		struct setw w = { .s = s };
		for (size_t i = 0; i < res.nmodified; i++) {
			uint32_t v = res.modified[i];
			if (!c->uid)
				v = (uint32_t)uid_lower_bound(&s->mb, v) + 1;
			setw_add(&w, v, v);
		}
		setw_flush(&w);
		out_str(s, "] Conditional STORE failed.\r\n");
	} else {
		tagged(s, c->tag, "OK Store completed.");
	}
	vv_store_result_release(&res);
}

/* FETCH of a body part without .PEEK sets \Seen (RFC 3501 6.4.5) in a
 * mailbox the client SELECTed where changes are kept; the messages whose
 * flags that changed show FLAGS in their answer (s->flags_shown). */
static bool att_sets_seen(const struct imapd_fetch_att *a)
{
	return (a->kind == IMAPD_FA_BODY_SECTION && !a->peek) || a->kind == IMAPD_FA_RFC822 ||
	       a->kind == IMAPD_FA_RFC822_TEXT;
}

static int fetch_set_seen(struct sess *s, struct imapd_cmd *c)
{
	bool any = false;
	for (size_t i = 0; i < c->natts; i++)
		any = any || att_sets_seen(&c->atts[i]);
	if (!any || !s->sel_rw)
		return 0;
	struct uid_list l = { .unseen_only = true, .changedsince_given = c->changedsince_given,
			      .changedsince = c->changedsince };
	struct imapd_seqset set = { NULL, c->set.n };
	if ((set.r = malloc(c->set.n * sizeof(*set.r))) == NULL)
		return ARCA_ENOMEM;
	memcpy(set.r, c->set.r, c->set.n * sizeof(*set.r));
	each_msg(s, &set, c->uid, collect_uid, &l);
	free(set.r);
	if (l.failed) {
		free(l.v);
		return ARCA_ENOMEM;
	}
	if (l.n == 0)
		return 0;
	struct vv_store req = { .mode = VV_STORE_ADD, .flags = VV_SEEN, .uids = l.v, .nuids = l.n };
	struct vv_store_result res;
	int rc = s->vv->store(s->vctx, s->sel, &req, &res);
	free(l.v);
	if (rc) {
		logf_(s, "user=%s: FETCH: \\Seen in folder %zu: %s", s->user, s->sel, arca_strerror(rc));
		return 0;   /* the FETCH is still answered; the flag just stays as it was */
	}
	bool *moved = res.nmsgs ? calloc(res.nmsgs, sizeof(bool)) : NULL;
	free(s->flags_shown);
	s->flags_shown = calloc(s->mb.nmsgs ? s->mb.nmsgs : 1, sizeof(bool));
	if ((res.nmsgs && moved == NULL) || s->flags_shown == NULL || store_take(s, &res, moved) != 0)
		rc = ARCA_ENOMEM;
	for (size_t i = 0; rc == 0 && i < res.nmsgs; i++) {
		size_t idx = uid_lower_bound(&s->mb, res.msgs[i].uid);
		if (moved[i] && idx < s->mb.nmsgs)
			s->flags_shown[idx] = true;
	}
	free(moved);
	vv_store_result_release(&res);
	return rc;
}

static void cmd_fetch(struct sess *s, struct imapd_cmd *c)
{
	if (c->vanished && !s->qresync) {
		bad(s, c->tag, "VANISHED needs ENABLE QRESYNC.");
		return;
	}
	if (!c->uid && !seqset_valid(s, &c->set)) {
		bad(s, c->tag, "Invalid message sequence number.");
		return;
	}
	struct fetch_ctx fc = { .c = c, .add_uid = c->uid };
	for (size_t i = 0; i < c->natts; i++) {
		if (att_needs_body(&c->atts[i]))
			fc.need_body = true;
		if (c->atts[i].kind == IMAPD_FA_UID)
			fc.add_uid = false;
		if (c->atts[i].kind == IMAPD_FA_MODSEQ)
			s->condstore = true;   /* RFC 7162 3.1: a CONDSTORE enabling command */
	}
	if (c->changedsince_given) {
		s->condstore = true;
		fc.add_modseq = true;
		for (size_t i = 0; i < c->natts; i++)
			if (c->atts[i].kind == IMAPD_FA_MODSEQ)
				fc.add_modseq = false;
	}
	if (c->uid && fc.add_uid) {
		/* "UID" first in UID FETCH answers, as RFC 3501 6.4.8 wants it there at all */
	}
	if (c->vanished) {
		norm_set(&c->set, max_uid(s));
		out_vanished(s, &c->set);
	}
	if (fetch_set_seen(s, c) != 0) {
		free(s->flags_shown);
		s->flags_shown = NULL;
		fatal(s, ARCA_ENOMEM);
		return;
	}
	int rc = each_msg(s, &c->set, c->uid, fetch_one, &fc);
	free(s->flags_shown);
	s->flags_shown = NULL;
	if (s->end)
		return;
	if (rc != 0) {
		out_str(s, c->tag);
		out_str(s, rc == ARCA_ENOENT ? " NO [UNAVAILABLE] The message can't be read now.\r\n"
					   : " NO [SERVERBUG] Internal error reading a message.\r\n");
		return;
	}
	tagged(s, c->tag, "OK Fetch completed.");
}

/* ---- SEARCH --------------------------------------------------------------- */

struct search_ctx {
	int rc;                       /* a body that couldn't be read */
};

static bool ci_contains(struct sess *s, size_t from, size_t len, const char *needle)
{
	size_t nl = strlen(needle);
	if (nl == 0)
		return true;
	if (nl > len)
		return false;
	char small[256];
	char *lc = nl < sizeof(small) ? small : malloc(nl);
	if (lc == NULL)
		return false;
	for (size_t i = 0; i < nl; i++) {
		unsigned char ch = (unsigned char)needle[i];
		lc[i] = (char)((ch >= 'A' && ch <= 'Z') ? ch + 32 : ch);
	}
	bool r = memmem(s->lower.data + from, len, lc, nl) != NULL;
	if (lc != small)
		free(lc);
	return r;
}

/* HEADER field value contains str: over the raw (folded) header lines. */
static bool header_match(struct sess *s, const char *field, const char *str, size_t hlen)
{
	const unsigned char *b = s->lower.data;
	size_t fl = strlen(field);
	size_t pos = 0;
	while (pos < hlen) {
		size_t eol = pos;
		const unsigned char *lf = memchr(b + pos, '\n', hlen - pos);
		eol = lf ? (size_t)(lf - b) + 1 : hlen;
		/* the field's extent: continuation lines start with SP or HT */
		size_t end = eol;
		while (end < hlen && (b[end] == ' ' || b[end] == '\t')) {
			lf = memchr(b + end, '\n', hlen - end);
			end = lf ? (size_t)(lf - b) + 1 : hlen;
		}
		if (end - pos > fl && b[pos + fl] == ':' && strncasecmp((const char *)b + pos, field, fl) == 0 &&
		    ci_contains(s, pos + fl + 1, end - pos - fl - 1, str))
			return true;
		pos = end;
	}
	return false;
}

/* The Date: header's calendar day (RFC 5322 3.3, obsolete forms included
 * as far as day, month name and year go), or false.  Works on the
 * lower-cased copy. */
static bool sent_day(struct sess *s, size_t hlen, int64_t *days)
{
	static const char *const mn[12] = { "jan", "feb", "mar", "apr", "may", "jun",
					    "jul", "aug", "sep", "oct", "nov", "dec" };
	const char *b = (const char *)s->lower.data;
	size_t pos = 0;
	while (pos < hlen) {
		const char *lf = memchr(b + pos, '\n', hlen - pos);
		size_t eol = lf ? (size_t)(lf - b) + 1 : hlen;
		if (eol - pos <= 5 || strncmp(b + pos, "date:", 5) != 0) {
			pos = eol;
			continue;
		}
		size_t i = pos + 5, e = eol;
		while (i < e && (b[i] == ' ' || b[i] == '\t'))
			i++;
		const char *comma = memchr(b + i, ',', e - i);
		if (comma != NULL && (size_t)(comma - (b + i)) <= 12)
			i = (size_t)(comma - b) + 1;
		while (i < e && (b[i] == ' ' || b[i] == '\t'))
			i++;
		unsigned d = 0, y = 0, nd = 0, ny = 0, mon = 0;
		while (i < e && b[i] >= '0' && b[i] <= '9' && nd < 2)
			d = d * 10 + (unsigned)(b[i++] - '0'), nd++;
		while (i < e && (b[i] == ' ' || b[i] == '\t' || b[i] == '-'))
			i++;
		if (e - i >= 3) {
			for (unsigned k = 0; k < 12; k++)
				if (strncmp(b + i, mn[k], 3) == 0)
					mon = k + 1;
			i += 3;
		}
		while (i < e && (b[i] == ' ' || b[i] == '\t' || b[i] == '-'))
			i++;
		while (i < e && b[i] >= '0' && b[i] <= '9' && ny < 4)
			y = y * 10 + (unsigned)(b[i++] - '0'), ny++;
		if (nd == 0 || d < 1 || d > 31 || mon == 0 || ny < 2)
			return false;
		if (ny == 2)
			y += y < 50 ? 2000 : 1900;   /* RFC 5322 4.3 */
		else if (ny == 3)
			y += 1900;
		*days = imapd_days_from_civil(y, mon, d);
		return true;
	}
	return false;
}

static bool key_needs_body(const struct imapd_search_key *k)
{
	switch (k->op) {
	case IMAPD_SK_HEADER: case IMAPD_SK_BODY: case IMAPD_SK_TEXT:
	case IMAPD_SK_SENTBEFORE: case IMAPD_SK_SENTON: case IMAPD_SK_SENTSINCE:
		return true;
	default:
		return false;
	}
}

static int keyword_index(const struct sess *s, const char *k)
{
	for (size_t i = 0; i < s->mb.nkeywords && i < 64; i++)
		if (s->mb.keywords[i] && strcasecmp(s->mb.keywords[i], k) == 0)
			return (int)i;
	return -1;
}

static bool eval(struct sess *s, const struct imapd_search_key *k, size_t idx,
		 struct search_ctx *sc)
{
	const struct vv_msg *m = &s->mb.msgs[idx];
	int64_t day = m->date >= 0 ? m->date / 86400 : -((-m->date + 86399) / 86400);
	if (key_needs_body(k)) {
		if (sc->rc != 0)
			return false;
		int rc = load_body(s, m);
		if (rc == 0)
			rc = load_lower(s);
		if (rc != 0) {
			sc->rc = rc;
			return false;
		}
	}
	size_t hlen = key_needs_body(k) ? header_len(s->body.data, s->body.len) : 0;
	int64_t sd;
	int ki;
	switch (k->op) {
	case IMAPD_SK_AND:
		for (const struct imapd_search_key *c = k->child; c; c = c->next)
			if (!eval(s, c, idx, sc))
				return false;
		return true;
	case IMAPD_SK_OR:
		return eval(s, k->child, idx, sc) || eval(s, k->child->next, idx, sc);
	case IMAPD_SK_NOT:
		return !eval(s, k->child, idx, sc);
	case IMAPD_SK_ALL:
	case IMAPD_SK_OLD:
		return true;
	case IMAPD_SK_NEW:
	case IMAPD_SK_RECENT:
		return false;          /* no message is \Recent here */
	case IMAPD_SK_FLAG:
		return (m->flags & k->flags) == k->flags;
	case IMAPD_SK_UNFLAG:
		return (m->flags & k->flags) == 0;
	case IMAPD_SK_KEYWORD:
		ki = keyword_index(s, k->str);
		return ki >= 0 && (m->keywords & ((uint64_t)1 << ki));
	case IMAPD_SK_UNKEYWORD:
		ki = keyword_index(s, k->str);
		return ki < 0 || !(m->keywords & ((uint64_t)1 << ki));
	case IMAPD_SK_SEQSET:
		return idx + 1 <= UINT32_MAX && in_set(&k->set, (uint32_t)(idx + 1));
	case IMAPD_SK_UIDSET:
		return in_set(&k->set, m->uid);
	case IMAPD_SK_LARGER:
		return m->size > k->num;
	case IMAPD_SK_SMALLER:
		return m->size < k->num;
	case IMAPD_SK_BEFORE:
		return day < k->date;
	case IMAPD_SK_ON:
		return day == k->date;
	case IMAPD_SK_SINCE:
		return day >= k->date;
	case IMAPD_SK_SENTBEFORE:
		return sent_day(s, hlen, &sd) && sd < k->date;
	case IMAPD_SK_SENTON:
		return sent_day(s, hlen, &sd) && sd == k->date;
	case IMAPD_SK_SENTSINCE:
		return sent_day(s, hlen, &sd) && sd >= k->date;
	case IMAPD_SK_HEADER:
		return header_match(s, k->field, k->str, hlen);
	case IMAPD_SK_BODY:
		return ci_contains(s, hlen, s->body.len - hlen, k->str);
	case IMAPD_SK_TEXT:
		return ci_contains(s, 0, s->body.len, k->str);
	case IMAPD_SK_MODSEQ:
		return m->modseq >= k->num;
	}
	return false;
}

/* Resolve the sets of every key once (mutating the parsed command). */
static void search_prepare(struct sess *s, struct imapd_search_key *k)
{
	for (; k; k = k->next) {
		if (k->op == IMAPD_SK_SEQSET)
			norm_set(&k->set, (uint32_t)s->mb.nmsgs);
		else if (k->op == IMAPD_SK_UIDSET)
			norm_set(&k->set, max_uid(s));
		search_prepare(s, k->child);
	}
}

static void cmd_search(struct sess *s, struct imapd_cmd *c)
{
	if (c->search_charset && strcasecmp(c->search_charset, "UTF-8") != 0 &&
	    strcasecmp(c->search_charset, "US-ASCII") != 0) {
		out_str(s, c->tag);
		out_str(s, " NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset.\r\n");
		return;
	}
	if (c->search_modseq)
		s->condstore = true;
	search_prepare(s, c->search);
	struct search_ctx sc = { 0 };
	uint32_t *hits = NULL;
	size_t nhits = 0;
	uint64_t maxmod = 0;
	if (s->mb.nmsgs > 0) {
		hits = malloc(s->mb.nmsgs * sizeof(*hits));
		if (hits == NULL) {
			fatal(s, ARCA_ENOMEM);
			return;
		}
	}
	for (size_t i = 0; i < s->mb.nmsgs; i++) {
		if (eval(s, c->search, i, &sc)) {
			hits[nhits++] = c->uid ? s->mb.msgs[i].uid : (uint32_t)(i + 1);
			if (s->mb.msgs[i].modseq > maxmod)
				maxmod = s->mb.msgs[i].modseq;
		}
		if (sc.rc != 0)
			break;
	}
	if (sc.rc != 0) {
		free(hits);
		out_str(s, c->tag);
		out_str(s, " NO [SERVERBUG] Internal error reading a message.\r\n");
		return;
	}
	if (c->esearch) {
		out_str(s, "* ESEARCH (TAG \"");
		out_str(s, c->tag);
		out_str(s, "\")");
		if (c->uid)
			out_str(s, " UID");
		if (nhits > 0 && (c->search_return & IMAPD_SR_MIN)) {
			out_str(s, " MIN ");
			out_u64(s, hits[0]);
		}
		if (nhits > 0 && (c->search_return & IMAPD_SR_MAX)) {
			out_str(s, " MAX ");
			out_u64(s, hits[nhits - 1]);
		}
		if (c->search_return & IMAPD_SR_COUNT) {
			out_str(s, " COUNT ");
			out_u64(s, nhits);
		}
		if (nhits > 0 && (c->search_return & IMAPD_SR_ALL)) {
			out_str(s, " ALL ");
			struct setw w = { .s = s };
			for (size_t i = 0; i < nhits; i++)
				setw_add(&w, hits[i], hits[i]);
			setw_flush(&w);
		}
		if (nhits > 0 && c->search_modseq) {
			out_str(s, " MODSEQ ");
			out_u64(s, maxmod);
		}
		out_str(s, "\r\n");
	} else {
		out_str(s, "* SEARCH");
		for (size_t i = 0; i < nhits; i++) {
			out_add(s, " ", 1);
			out_u64(s, hits[i]);
			out_maybe_flush(s);
		}
		if (nhits > 0 && c->search_modseq) {
			out_str(s, " (MODSEQ ");
			out_u64(s, maxmod);
			out_add(s, ")", 1);
		}
		out_str(s, "\r\n");
	}
	free(hits);
	tagged(s, c->tag, "OK Search completed.");
}

/* ---- LIST ----------------------------------------------------------------- */

struct lentry {
	const char *name;             /* UTF-8, '/' separated */
	const struct vv_folder *f;    /* NULL: a parent the view doesn't list, or a gone subscription */
	bool exists;                  /* a folder or a parent of one; else only subscribed (or a
					 parent of such a name): Dovecot's \NonExistent */
	bool subscribed;
	bool children;                /* has children that exist (any, for a name that doesn't) */
	bool sub_children;            /* has subscribed descendants */
};

/* Names ordered so that a folder's descendants follow it directly: '/'
 * sorts before every other byte; INBOX (and its children) first. */
static int name_cmp(const char *a, const char *b)
{
	bool ia = strcmp(a, "INBOX") == 0 || strncmp(a, "INBOX/", 6) == 0;
	bool ib = strcmp(b, "INBOX") == 0 || strncmp(b, "INBOX/", 6) == 0;
	if (ia != ib)
		return ia ? -1 : 1;
	for (;; a++, b++) {
		unsigned ca = (unsigned char)*a, cb = (unsigned char)*b;
		if (ca == '/')
			ca = 1;
		if (cb == '/')
			cb = 1;
		if (ca != cb || ca == 0)
			return (int)ca - (int)cb;
	}
}

static int lentry_cmp(const void *a, const void *b)
{
	return name_cmp(((const struct lentry *)a)->name, ((const struct lentry *)b)->name);
}

static struct lentry *lentry_find(struct lentry *e, size_t n, const char *name)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = name_cmp(e[mid].name, name);
		if (r == 0)
			return &e[mid];
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Every folder and gone subscription the client can be shown, and every
 * parent of one that isn't listed itself, sorted; names of synthesized
 * parents are allocated in *names. */
static int list_entries(struct sess *s, struct lentry **e_r, size_t *n_r, char ***names_r,
			size_t *nnames_r)
{
	const struct vv_folder *f;
	size_t nf;
	int rc = get_folders(s, &f, &nf);
	if (rc)
		return rc;
	size_t cap = nf + s->ngone, n = 0, nnames = 0, hidden = 0;
	struct lentry *e = calloc(cap ? cap : 1, sizeof(*e));
	char **names = NULL;
	if (e == NULL)
		return ARCA_ENOMEM;
	for (size_t i = 0; i < nf; i++) {
		if (!name_showable(s, f[i].name)) {
			hidden++;
			continue;
		}
		e[n++] = (struct lentry){ .name = f[i].name, .f = &f[i], .exists = true,
					  .subscribed = (f[i].attrs & VV_SUBSCRIBED) != 0 };
	}
	for (size_t i = 0; i < s->ngone; i++) {
		if (!name_showable(s, s->gone[i])) {
			hidden++;
			continue;
		}
		e[n++] = (struct lentry){ .name = s->gone[i], .subscribed = true };
	}
	if (hidden > 0 && !s->hidden_logged) {
		s->hidden_logged = true;
		logf_(s, "user=%s: %zu folder or subscription names not shown: a level holds the "
		      "separator '%c' (serve-imap --separator / shows them)", s->user, hidden, s->sep);
	}
	qsort(e, n, sizeof(*e), lentry_cmp);
	/* a subscription that names a folder after all (a view may not have
	 * left it out) is that folder's */
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		if (w > 0 && name_cmp(e[w - 1].name, e[i].name) == 0) {
			struct lentry *k = &e[w - 1];
			bool sub = k->subscribed || e[i].subscribed;
			if (!k->exists)
				*k = e[i];
			k->subscribed = sub;
			continue;
		}
		e[w++] = e[i];
	}
	n = w;
	/* parents that aren't listed: those of folders first (they exist),
	 * then those only of gone subscriptions (they don't) */
	size_t base = n;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < base; i++) {
			if (e[i].exists != (pass == 0))
				continue;
			const char *nm = e[i].name;
			for (const char *sl = strchr(nm, '/'); sl; sl = strchr(sl + 1, '/')) {
				char *parent = strndup(nm, (size_t)(sl - nm));
				if (parent == NULL)
					goto nomem;
				struct lentry *have = lentry_find(e, base, parent);
				for (size_t k = base; k < n && have == NULL; k++)
					if (strcmp(e[k].name, parent) == 0)
						have = &e[k];
				if (have) {
					have->exists |= e[i].exists;
					free(parent);
					continue;
				}
				if (n == cap) {
					size_t ncap = cap * 2 + 8;
					struct lentry *ne = realloc(e, ncap * sizeof(*e));
					if (ne == NULL) {
						free(parent);
						goto nomem;
					}
					e = ne;
					cap = ncap;
				}
				char **nn = realloc(names, (nnames + 1) * sizeof(*names));
				if (nn == NULL) {
					free(parent);
					goto nomem;
				}
				names = nn;
				names[nnames++] = parent;
				e[n++] = (struct lentry){ .name = parent, .exists = e[i].exists };
			}
		}
	}
	qsort(e, n, sizeof(*e), lentry_cmp);
	/* every level of every name is an entry now: marking the parent and
	 * the ancestors is enough */
	for (size_t i = 0; i < n; i++) {
		const char *nm = e[i].name;
		const char *last = strrchr(nm, '/');
		if (last != NULL) {
			char *parent = strndup(nm, (size_t)(last - nm));
			if (parent == NULL)
				goto nomem;
			struct lentry *pe = lentry_find(e, n, parent);
			free(parent);
			if (pe && (e[i].exists || !pe->exists))
				pe->children = true;
		}
		if (!e[i].subscribed)
			continue;
		for (const char *sl = strchr(nm, '/'); sl; sl = strchr(sl + 1, '/')) {
			char *parent = strndup(nm, (size_t)(sl - nm));
			if (parent == NULL)
				goto nomem;
			struct lentry *pe = lentry_find(e, n, parent);
			free(parent);
			if (pe)
				pe->sub_children = true;
		}
	}
	*e_r = e;
	*n_r = n;
	*names_r = names;
	*nnames_r = nnames;
	return 0;
nomem:
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	free(e);
	return ARCA_ENOMEM;
}

static int up_ascii(int ch)
{
	return ch >= 'a' && ch <= 'z' ? ch - 32 : ch;
}

/* Does name match pattern (RFC 3501 6.3.8: '*' anything, '%' anything but
 * the separator)?  An NFA walk: O(len(pattern) * len(name)), no recursion.
 * INBOX and its children match case-insensitively in their first 5 bytes. */
static bool pattern_match(const char *pat, size_t pl, const char *name)
{
	bool cur[PATTERN_MAX + 1], nxt[PATTERN_MAX + 1];
	if (pl > PATTERN_MAX)
		return false;
	bool inbox = strcmp(name, "INBOX") == 0 || strncmp(name, "INBOX/", 6) == 0;
	memset(cur, 0, pl + 1);
	cur[0] = true;
	for (size_t j = 0; j < pl && cur[j] && (pat[j] == '*' || pat[j] == '%'); j++)
		cur[j + 1] = true;
	for (size_t i = 0; name[i]; i++) {
		unsigned char ch = (unsigned char)name[i];
		memset(nxt, 0, pl + 1);
		bool any = false;
		for (size_t j = 0; j < pl; j++) {
			if (!cur[j])
				continue;
			char pc = pat[j];
			if (pc == '*' || (pc == '%' && ch != '/')) {
				nxt[j] = true;
			} else if (pc != '%') {
				bool eq = (unsigned char)pc == ch ||
					  (inbox && i < 5 && (unsigned char)up_ascii(pc) == ch);
				if (eq)
					nxt[j + 1] = true;
			}
		}
		for (size_t j = 0; j < pl; j++)
			if (nxt[j] && (pat[j] == '*' || pat[j] == '%'))
				nxt[j + 1] = true;
		for (size_t j = 0; j <= pl; j++)
			any |= nxt[j];
		if (!any)
			return false;
		memcpy(cur, nxt, pl + 1);
	}
	return cur[pl];
}

/* extended: the command used LIST-EXTENDED syntax, whose answers may say
 * \NonExistent (RFC 5258); plain LIST and LSUB say \Noselect. */
static void out_list_line(struct sess *s, const char *verb, const struct lentry *e,
			  bool noselect_extra, bool show_sub, bool childinfo, bool extended)
{
	out_str(s, "* ");
	out_str(s, verb);
	out_str(s, " (");
	if (!e->exists && verb[1] == 'S') {
		/* LSUB of a subscription whose folder is gone, as Dovecot:
		 * "()", or "(\Noselect)" for its parent matched by '%' */
		if (noselect_extra)
			out_str(s, "\\Noselect");
	} else {
		if (!e->exists || (extended && !noselect_extra && e->f && (e->f->attrs & VV_NONEXISTENT)))
			out_str(s, "\\NonExistent ");   /* RFC 5258: implies \Noselect */
		else if (e->f == NULL || !(e->f->attrs & VV_SELECTABLE) || noselect_extra)
			out_str(s, "\\Noselect ");
		out_str(s, e->children ? "\\HasChildren" : "\\HasNoChildren");
		if (show_sub && e->subscribed)
			out_str(s, " \\Subscribed");
		if (e->f && e->f->special_use && e->f->special_use[0] == '\\' &&
		    keyword_ok(e->f->special_use + 1)) {
			out_add(s, " ", 1);
			out_str(s, e->f->special_use);
		}
	}
	out_fmt(s, ") \"%c\" ", s->sep);
	out_mailbox(s, e->name);
	if (childinfo)
		out_str(s, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	out_str(s, "\r\n");
	out_maybe_flush(s);
}

static int join2(struct abuf *b, const char *x, const char *y)
{
	int rc = abuf_add(b, x, strlen(x));
	if (rc == 0)
		rc = abuf_add(b, y, strlen(y));
	if (rc == 0)
		rc = abuf_cstr(b);
	return rc;
}

static void cmd_list(struct sess *s, struct imapd_cmd *c, bool lsub)
{
	const char *ref = c->a1;
	/* LIST "" "": the hierarchy separator and the root */
	if (!lsub && c->nstrs == 1 && c->strs[0][0] == '\0' && !c->list_extended) {
		const struct vv_folder *f;
		size_t nf;
		if (get_folders(s, &f, &nf) != 0) {
			tagged(s, c->tag, "NO [SERVERBUG] Internal error.");
			return;
		}
		out_fmt(s, "* LIST (\\Noselect) \"%c\" \"\"\r\n", s->sep);
		tagged(s, c->tag, "OK List completed.");
		return;
	}
	/* the patterns, with the reference in front, as UTF-8 */
	struct abuf pats = ABUF_INIT;
	size_t *off = calloc(c->nstrs, sizeof(size_t)), *len = calloc(c->nstrs, sizeof(size_t));
	bool *pct = calloc(c->nstrs, sizeof(bool));
	bool *never = calloc(c->nstrs, sizeof(bool));
	struct lentry *e = NULL;
	char **names = NULL;
	size_t n = 0, nnames = 0;
	int rc = (off && len && pct && never) ? 0 : ARCA_ENOMEM;
	/* the entries first: they bring the account's separator */
	if (rc == 0)
		rc = list_entries(s, &e, &n, &names, &nnames);
	for (size_t i = 0; i < c->nstrs && rc == 0; i++) {
		struct abuf joined = ABUF_INIT;
		rc = join2(&joined, ref, c->strs[i]);
		if (rc == 0) {
			off[i] = pats.len;
			struct abuf *pat = &joined;   /* not modified UTF-7: matched as given */
			if (mutf7_to_utf8((const char *)joined.data, &s->tmp) == 0)
				pat = &s->tmp;
			/* in the view's form, '/' between levels */
			never[i] = !view_form(s, pat);
			rc = abuf_add(&pats, pat->data, pat->len);
			len[i] = pats.len - off[i];
			pct[i] = len[i] > 0 && pats.data[pats.len - 1] == '%';
		}
		abuf_release(&joined);
	}
	if (rc != 0) {
		out_str(s, c->tag);
		out_str(s, rc == ARCA_ENOMEM ? " NO [SERVERBUG] Out of memory.\r\n"
					   : " NO [SERVERBUG] Internal error.\r\n");
		goto done;
	}
	bool sel_sub = lsub || (c->list_select & IMAPD_LS_SUBSCRIBED);
	bool sel_special = c->list_select & IMAPD_LS_SPECIAL_USE;
	bool recursive = c->list_select & IMAPD_LS_RECURSIVEMATCH;
	bool show_sub = !lsub && (sel_sub || (c->list_return & IMAPD_LR_SUBSCRIBED));
	/* empty patterns only: pats never allocated (NULL + 0 is still UB) */
	const char *pbase = pats.data ? (const char *)pats.data : "";
	for (size_t i = 0; i < n && !s->end; i++) {
		const struct lentry *le = &e[i];
		bool matched = false, pct_match = false;
		for (size_t k = 0; k < c->nstrs; k++) {
			if (!never[k] && pattern_match(pbase + off[k], len[k], le->name)) {
				matched = true;
				pct_match |= pct[k];
			}
		}
		/* a name known only from subscriptions is listed only when
		 * subscriptions are asked for */
		if (!matched || (!le->exists && !sel_sub))
			continue;
		bool subscribed = le->subscribed;
		bool special = le->f && le->f->special_use && le->f->special_use[0];
		bool childinfo = false, noselect = false;
		if (sel_sub && !subscribed) {
			if (recursive && le->sub_children && !sel_special)
				childinfo = true;
			else if (lsub && pct_match && le->sub_children)
				noselect = true;   /* RFC 3501 6.3.9 */
			else
				continue;
		}
		if (sel_special && !special)
			continue;
		out_list_line(s, lsub ? "LSUB" : "LIST", le, noselect, show_sub, childinfo,
			      !lsub && c->list_extended);
		if (!lsub && (c->list_return & IMAPD_LR_STATUS) && le->f &&
		    (le->f->attrs & VV_SELECTABLE) && !childinfo)
			out_status(s, le->f, c->status_items);
	}
	tagged(s, c->tag, lsub ? "OK Lsub completed." : "OK List completed.");
done:
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	free(e);
	free(off);
	free(len);
	free(pct);
	free(never);
	abuf_release(&pats);
}

/* ---- STATUS, SELECT ------------------------------------------------------- */

static void no_mailbox(struct sess *s, const char *tag, const char *wire, int rc)
{
	char safe[128];
	if (rc != ARCA_ENOENT) {
		out_str(s, tag);
		out_str(s, " NO [SERVERBUG] Internal error.\r\n");
		return;
	}
	log_name(safe, sizeof(safe), wire);
	out_fmt(s, "%s NO [NONEXISTENT] Mailbox doesn't exist: %s\r\n", tag, safe);
}

static void cmd_status(struct sess *s, struct imapd_cmd *c)
{
	size_t idx;
	const struct vv_folder *f;
	int rc = find_folder(s, c->a1, &idx, &f);
	if (rc) {
		no_mailbox(s, c->tag, c->a1, rc);
		return;
	}
	if (!(f->attrs & VV_SELECTABLE)) {
		tagged(s, c->tag, "NO [CANNOT] Mailbox isn't selectable.");
		return;
	}
	if (wire_name(s, f->name) != 0) {
		tagged(s, c->tag, "NO [SERVERBUG] Internal error.");
		return;
	}
	out_status(s, f, c->status_items);
	tagged(s, c->tag, "OK Status completed.");
}

static void unselect(struct sess *s)
{
	vv_mailbox_release(&s->mb);
	cache_drop(s);
	s->state = S_AUTH;
	s->sel_rw = false;
	s->sel_watch = false;
}

struct qr_ctx {
	uint64_t modseq;
};


/* The system flags and the selected folder's keywords, for FLAGS and
 * PERMANENTFLAGS. */
static void out_flag_names(struct sess *s)
{
	out_str(s, "\\Answered \\Flagged \\Deleted \\Seen \\Draft");
	for (size_t i = 0; i < s->mb.nkeywords && i < 64; i++) {
		if (s->mb.keywords[i] == NULL)
			continue;
		out_add(s, " ", 1);
		out_str(s, s->mb.keywords[i]);
	}
}

static int qresync_one(struct sess *s, size_t idx, void *vctx)
{
	const struct qr_ctx *q = vctx;
	const struct vv_msg *m = &s->mb.msgs[idx];
	if (m->modseq <= q->modseq)
		return 0;
	out_str(s, "* ");
	out_u64(s, idx + 1);
	out_str(s, " FETCH (UID ");
	out_u64(s, m->uid);
	out_str(s, " FLAGS ");
	out_flags(s, m);
	out_str(s, " MODSEQ (");
	out_u64(s, m->modseq);
	out_str(s, "))\r\n");
	out_maybe_flush(s);
	return 0;
}

static void cmd_select(struct sess *s, struct imapd_cmd *c)
{
	if (c->qresync && !s->qresync) {
		bad(s, c->tag, "QRESYNC isn't enabled.");
		return;
	}
	if (s->state == S_SELECTED) {
		unselect(s);
		if (s->qresync)
			out_str(s, "* OK [CLOSED] Previous mailbox closed.\r\n");
	}
	size_t idx;
	const struct vv_folder *f;
	int rc = find_folder(s, c->a1, &idx, &f);
	if (rc) {
		no_mailbox(s, c->tag, c->a1, rc);
		return;
	}
	if (!(f->attrs & VV_SELECTABLE)) {
		tagged(s, c->tag, "NO [CANNOT] Mailbox isn't selectable.");
		return;
	}
	uint32_t uidvalidity = f->uidvalidity, uidnext = f->uidnext;
	uint64_t hms = f->highestmodseq;
	rc = s->vv->open(s->vctx, idx, &s->mb);
	if (rc != 0) {
		vv_mailbox_release(&s->mb);
		logf_(s, "user=%s: open folder %zu: %s", s->user, idx, arca_strerror(rc));
		tagged(s, c->tag, "NO [SERVERBUG] Internal error opening the mailbox.");
		return;
	}
	sanitize_keywords(&s->mb);
	/* what the view promised; don't let a broken view mislead a client */
	uint32_t last = max_uid(s);
	if (uidnext <= last)
		uidnext = last == UINT32_MAX ? last : last + 1;
	for (size_t i = 0; i < s->mb.nmsgs; i++)
		if (s->mb.msgs[i].modseq > hms)
			hms = s->mb.msgs[i].modseq;
	if (hms == 0)
		hms = 1;
	s->sel = idx;
	s->sel_uidvalidity = uidvalidity;
	s->sel_uidnext = uidnext;
	s->sel_highestmodseq = hms;
	s->state = S_SELECTED;
	s->sel_rw = c->kind == IMAPD_CMD_SELECT && s->vv->store != NULL && s->vv->can_store != NULL &&
		    s->vv->can_store(s->vctx);
	s->notified_modseq = hms;
	/* EXAMINE too: read-only here, but other sessions' changes are shown */
	s->sel_watch = s->vv->changes != NULL && s->vv->can_store != NULL && s->vv->can_store(s->vctx);
	s->watch_logged = false;
	if (c->condstore)
		s->condstore = true;

	out_str(s, "* FLAGS (");
	out_flag_names(s);
	/* PERMANENTFLAGS as Dovecot announced them, not "()": sync clients
	 * decide from it which flags the server can hold, and mbsync, told
	 * "()", takes the flags it can't see as gone and tries to remove them
	 * (then aborts on the refusal).  Changes are still refused (STORE: NO
	 * [READ-ONLY]); the client keeps them and sends them to the rebuilt
	 * server later. */
	out_str(s, ")\r\n* OK [PERMANENTFLAGS (");
	out_flag_names(s);
	out_str(s, s->sel_rw ? " \\*)] Flags permitted (kept for the rebuilt mail server).\r\n* "
			     : " \\*)] Flags as the mail server kept them; read-only now.\r\n* ");
	out_u64(s, s->mb.nmsgs);
	out_str(s, " EXISTS\r\n* 0 RECENT\r\n");
	for (size_t i = 0; i < s->mb.nmsgs; i++) {
		if (!(s->mb.msgs[i].flags & VV_SEEN)) {
			out_fmt(s, "* OK [UNSEEN %zu] First unseen.\r\n", i + 1);
			break;
		}
	}
	out_fmt(s, "* OK [UIDVALIDITY %u] UIDs valid.\r\n", uidvalidity);
	out_fmt(s, "* OK [UIDNEXT %u] Predicted next UID.\r\n", uidnext);
	out_fmt(s, "* OK [HIGHESTMODSEQ %llu] Highest.\r\n", (unsigned long long)hms);
	if (c->qresync && c->qr_uidvalidity == uidvalidity) {
		struct imapd_seqset all = { &(struct imapd_range){ 1, 0 }, 1 };
		struct imapd_seqset *known = c->qr_known_uids.n ? &c->qr_known_uids : &all;
		norm_set(known, max_uid(s) > uidnext - 1 ? max_uid(s) : uidnext - 1);
		out_vanished(s, known);
		struct qr_ctx q = { c->qr_modseq };
		struct imapd_seqset every = { &(struct imapd_range){ 1, 0 }, 1 };
		each_msg(s, &every, true, qresync_one, &q);
	}
	tagged(s, c->tag, s->sel_rw ? "OK [READ-WRITE] Select completed." :
			  c->kind == IMAPD_CMD_SELECT ? "OK [READ-ONLY] Select completed."
						      : "OK [READ-ONLY] Examine completed.");
}

/* ---- login ---------------------------------------------------------------- */

static bool login_allowed(struct sess *s, const char *tag)
{
	if (s->tls || s->io->loopback)
		return true;
	tagged(s, tag, "NO [PRIVACYREQUIRED] Plaintext authentication disallowed on "
		       "non-secure (SSL/TLS) connections.");
	return false;
}

static void do_login(struct sess *s, const char *tag, const char *user, const char *pass)
{
	char safe[100];
	log_name(safe, sizeof(safe), user);
	int rc = s->vv->login(s->vctx, user, pass);
	if (rc == 0) {
		s->state = S_AUTH;
		snprintf(s->user, sizeof(s->user), "%s", safe);
		logf_(s, "login user=%s", safe);
		out_str(s, tag);
		out_str(s, " OK [CAPABILITY ");
		out_caps(s);
		out_str(s, "] Logged in.\r\n");
		return;
	}
	if (rc == ARCA_EKEY) {
		s->login_failures++;
		logf_(s, "login failed user=%s", safe);
		tagged(s, tag, "NO [AUTHENTICATIONFAILED] Authentication failed.");
	} else if (rc == ARCA_EBUSY) {
		s->login_failures++;
		logf_(s, "login refused (throttled) user=%s", safe);
		tagged(s, tag, "NO [UNAVAILABLE] Too many failed logins; try again later.");
	} else {
		logf_(s, "login error user=%s: %s", safe, arca_strerror(rc));
		tagged(s, tag, "NO [SERVERBUG] Internal error.");
	}
	if (s->login_failures >= LOGIN_FAILURES_MAX) {
		out_str(s, "* BYE Too many failed logins.\r\n");
		fatal(s, ARCA_ELIMIT);
	}
}

static int b64val(int ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

/* Strict base64 (padding required) into out; 0 or -1. */
static int b64_decode(const char *in, size_t n, struct abuf *out)
{
	abuf_reset(out);
	if (n % 4 != 0)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		size_t pad = 0;
		for (int k = 0; k < 4; k++) {
			if (in[i + k] == '=') {
				if (i + 4 != n || k < 2)
					return -1;
				pad++;
				v[k] = 0;
			} else {
				if (pad)
					return -1;
				if ((v[k] = b64val((unsigned char)in[i + k])) < 0)
					return -1;
			}
		}
		uint8_t b[3] = { (uint8_t)(v[0] << 2 | v[1] >> 4), (uint8_t)(v[1] << 4 | v[2] >> 2),
				 (uint8_t)(v[2] << 6 | v[3]) };
		if (abuf_add(out, b, 3 - pad) != 0)
			return -1;
	}
	return abuf_cstr(out) == 0 ? 0 : -1;
}

static void cmd_authenticate(struct sess *s, struct imapd_cmd *c)
{
	if (strcasecmp(c->a1, "PLAIN") != 0) {
		tagged(s, c->tag, "NO [CANNOT] Unsupported authentication mechanism.");
		return;
	}
	if (!login_allowed(s, c->tag))
		return;
	struct abuf line = ABUF_INIT, dec = ABUF_INIT;
	const char *resp;
	size_t rlen;
	if (c->a2 != NULL) {
		resp = c->a2;
		rlen = c->a2_len;
	} else {
		out_str(s, "+ \r\n");
		bool over;
		enum rd r = read_line(s, &line, SASL_LINE_MAX, &over, NULL, wait_ms(s));
		if (r != RD_OK) {
			end_read(s, r);
			goto out;
		}
		if (over) {
			bad(s, c->tag, "Authentication response too long.");
			goto out;
		}
		if (line.len == 1 && line.data[0] == '*') {
			bad(s, c->tag, "Authentication aborted.");
			goto out;
		}
		if (abuf_cstr(&line) != 0) {
			fatal(s, ARCA_ENOMEM);
			goto out;
		}
		resp = (const char *)line.data;
		rlen = line.len;
	}
	if (rlen == 1 && resp[0] == '=')
		rlen = 0;   /* SASL-IR: an empty initial response */
	if (b64_decode(resp, rlen, &dec) != 0) {
		bad(s, c->tag, "Invalid base64 in authentication response.");
		goto out;
	}
	/* authzid NUL authcid NUL password */
	const char *d = (const char *)dec.data;
	size_t dl = dec.len;
	const char *nul1 = d ? memchr(d, '\0', dl) : NULL;
	const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', dl - (size_t)(nul1 + 1 - d)) : NULL;
	if (nul1 == NULL || nul2 == NULL || memchr(nul2 + 1, '\0', dl - (size_t)(nul2 + 1 - d))) {
		s->login_failures++;
		tagged(s, c->tag, "NO [AUTHENTICATIONFAILED] Authentication failed.");
		if (s->login_failures >= LOGIN_FAILURES_MAX) {
			out_str(s, "* BYE Too many failed logins.\r\n");
			fatal(s, ARCA_ELIMIT);
		}
		goto out;
	}
	const char *authz = d, *authc = nul1 + 1, *pass = nul2 + 1;
	if (*authz != '\0' && strcmp(authz, authc) != 0) {
		char safe[100];
		log_name(safe, sizeof(safe), authc);
		logf_(s, "login failed user=%s: authorization identity differs", safe);
		s->login_failures++;
		tagged(s, c->tag, "NO [AUTHORIZATIONFAILED] Logging in as another user is not supported.");
		if (s->login_failures >= LOGIN_FAILURES_MAX) {
			out_str(s, "* BYE Too many failed logins.\r\n");
			fatal(s, ARCA_ELIMIT);
		}
		goto out;
	}
	do_login(s, c->tag, authc, pass);
out:
	if (dec.data)
		memset(dec.data, 0, dec.cap);
	if (line.data)
		memset(line.data, 0, line.cap);
	abuf_release(&dec);
	abuf_release(&line);
}

/* ---- IDLE, STARTTLS ------------------------------------------------------- */

static void cmd_idle(struct sess *s, struct imapd_cmd *c)
{
	out_str(s, "+ idling\r\n");
	notify_changes(s);
	out_flush(s);
	long left = s->idle_ms;
	/* with flag changes kept, other sessions' are looked for this often */
	bool poll = s->state == S_SELECTED && s->sel_watch;
	long since_alive = 0;
	while (!s->end) {
		if (s->in_pos >= s->in_len) {
			long step = poll && s->sel_watch ? IDLE_POLL_MS : IDLE_KEEPALIVE_MS;
			int t = left < step ? (int)left : (int)step;
			int w = t > 0 ? s->io->wait(s->io->ctx, t) : 0;
			if (w < 0) {
				fatal(s, ARCA_EIO);
				return;
			}
			if (w == 0) {
				left -= t;
				since_alive += t;
				if (left <= 0) {
					end_read(s, RD_TIMEOUT);
					return;
				}
				if (poll && s->sel_watch)
					notify_changes(s);
				if (since_alive >= IDLE_KEEPALIVE_MS) {
					out_str(s, "* OK Still here\r\n");
					since_alive = 0;
				}
				out_flush(s);
				continue;
			}
		}
		struct abuf line = ABUF_INIT;
		bool over;
		enum rd r = read_line(s, &line, 64, &over, NULL, s->idle_ms);
		if (r != RD_OK) {
			abuf_release(&line);
			end_read(s, r);
			return;
		}
		bool done = !over && line.len == 4 && strncasecmp((const char *)line.data, "DONE", 4) == 0;
		abuf_release(&line);
		if (done)
			tagged(s, c->tag, "OK Idle completed.");
		else
			bad(s, c->tag, "Expected DONE.");
		return;
	}
}

static void cmd_starttls(struct sess *s, struct imapd_cmd *c)
{
	if (s->io->starttls == NULL || s->tls) {
		bad(s, c->tag, s->tls ? "TLS is already active." : "STARTTLS isn't offered.");
		return;
	}
	tagged(s, c->tag, "OK Begin TLS negotiation now.");
	out_flush(s);
	if (s->end)
		return;
	if (s->in_pos < s->in_len) {
		/* bytes sent before the handshake would be taken as if they
		 * came over TLS (CVE-2011-0411 style injection) */
		logf_(s, "plaintext after STARTTLS: connection dropped");
		fatal(s, ARCA_EFORMAT);
		return;
	}
	if (s->io->starttls(s->io->ctx) != 0) {
		logf_(s, "TLS handshake failed");
		fatal(s, ARCA_EIO);
		return;
	}
	s->tls = true;
}

/* ---- the rest ------------------------------------------------------------- */

static void cmd_enable(struct sess *s, struct imapd_cmd *c)
{
	bool cs = false, qr = false;
	for (size_t i = 0; i < c->nstrs; i++) {
		if (strcasecmp(c->strs[i], "CONDSTORE") == 0 && !s->condstore) {
			cs = true;
			s->condstore = true;
		} else if (strcasecmp(c->strs[i], "QRESYNC") == 0 && !s->qresync) {
			qr = true;
			s->qresync = true;
			s->condstore = true;   /* RFC 7162 3.2.3: QRESYNC implies CONDSTORE */
		}
	}
	out_str(s, "* ENABLED");
	if (cs)
		out_str(s, " CONDSTORE");
	if (qr)
		out_str(s, " QRESYNC");
	out_str(s, "\r\n");
	tagged(s, c->tag, "OK Enabled.");
}

static bool needs_state(struct sess *s, const struct imapd_cmd *c)
{
	switch (c->kind) {
	case IMAPD_CMD_CAPABILITY: case IMAPD_CMD_NOOP: case IMAPD_CMD_LOGOUT: case IMAPD_CMD_ID:
		return true;
	case IMAPD_CMD_STARTTLS: case IMAPD_CMD_AUTHENTICATE: case IMAPD_CMD_LOGIN:
		if (s->state != S_NOTAUTH) {
			bad(s, c->tag, "Already logged in.");
			return false;
		}
		return true;
	case IMAPD_CMD_CHECK: case IMAPD_CMD_CLOSE: case IMAPD_CMD_UNSELECT:
	case IMAPD_CMD_EXPUNGE: case IMAPD_CMD_SEARCH: case IMAPD_CMD_FETCH:
	case IMAPD_CMD_STORE: case IMAPD_CMD_COPY: case IMAPD_CMD_MOVE:
		if (s->state == S_NOTAUTH) {
			bad(s, c->tag, "Log in first.");
			return false;
		}
		if (s->state != S_SELECTED) {
			bad(s, c->tag, "No mailbox selected.");
			return false;
		}
		return true;
	default:
		if (s->state == S_NOTAUTH) {
			bad(s, c->tag, "Log in first.");
			return false;
		}
		return true;
	}
}

static void dispatch(struct sess *s, struct imapd_cmd *c)
{
	if (!needs_state(s, c))
		return;
	switch (c->kind) {
	case IMAPD_CMD_NONE:
		bad(s, c->tag, "Unknown command.");
		break;
	case IMAPD_CMD_CAPABILITY:
		out_str(s, "* CAPABILITY ");
		out_caps(s);
		out_str(s, "\r\n");
		tagged(s, c->tag, "OK Capability completed.");
		break;
	case IMAPD_CMD_NOOP:
		notify_changes(s);
		tagged(s, c->tag, "OK NOOP completed.");
		break;
	case IMAPD_CMD_CHECK:
		notify_changes(s);
		tagged(s, c->tag, "OK Check completed.");
		break;
	case IMAPD_CMD_LOGOUT:
		out_str(s, "* BYE Logging out.\r\n");
		tagged(s, c->tag, "OK Logout completed.");
		logf_(s, "logout%s%s", s->user[0] ? " user=" : "", s->user);
		fatal(s, 0);
		break;
	case IMAPD_CMD_ID:
		out_str(s, "* ID (\"name\" \"Arca\")\r\n");
		tagged(s, c->tag, "OK ID completed.");
		break;
	case IMAPD_CMD_STARTTLS:
		cmd_starttls(s, c);
		break;
	case IMAPD_CMD_LOGIN:
		if (login_allowed(s, c->tag))
			do_login(s, c->tag, c->a1, c->a2);
		break;
	case IMAPD_CMD_AUTHENTICATE:
		cmd_authenticate(s, c);
		break;
	case IMAPD_CMD_ENABLE:
		cmd_enable(s, c);
		break;
	case IMAPD_CMD_NAMESPACE: {
		/* the separator comes with the folder list */
		const struct vv_folder *f;
		size_t nf;
		if (get_folders(s, &f, &nf) != 0) {
			tagged(s, c->tag, "NO [SERVERBUG] Internal error.");
			break;
		}
		out_fmt(s, "* NAMESPACE ((\"\" \"%c\")) NIL NIL\r\n", s->sep);
		tagged(s, c->tag, "OK Namespace completed.");
		break;
	}
	case IMAPD_CMD_IDLE:
		cmd_idle(s, c);
		break;
	case IMAPD_CMD_SELECT:
	case IMAPD_CMD_EXAMINE:
		cmd_select(s, c);
		break;
	case IMAPD_CMD_LIST:
		cmd_list(s, c, false);
		break;
	case IMAPD_CMD_LSUB:
		cmd_list(s, c, true);
		break;
	case IMAPD_CMD_STATUS:
		cmd_status(s, c);
		break;
	case IMAPD_CMD_CLOSE:
	case IMAPD_CMD_UNSELECT:
		/* read-only: CLOSE expunges nothing */
		unselect(s);
		tagged(s, c->tag, c->kind == IMAPD_CMD_CLOSE ? "OK Close completed."
							: "OK Unselect completed.");
		break;
	case IMAPD_CMD_FETCH:
		cmd_fetch(s, c);
		break;
	case IMAPD_CMD_SEARCH:
		cmd_search(s, c);
		break;
	case IMAPD_CMD_STORE:
		cmd_store(s, c);
		break;
	case IMAPD_CMD_COPY: case IMAPD_CMD_MOVE: case IMAPD_CMD_EXPUNGE:
		if (s->sel_rw)
			out_fmt(s, "%s NO [CANNOT] %s\r\n", c->tag, cannot_text);
		else
			out_fmt(s, "%s NO [READ-ONLY] %s\r\n", c->tag, readonly_text);
		break;
	case IMAPD_CMD_CREATE: case IMAPD_CMD_DELETE: case IMAPD_CMD_RENAME:
	case IMAPD_CMD_SUBSCRIBE: case IMAPD_CMD_UNSUBSCRIBE: case IMAPD_CMD_APPEND:
		out_fmt(s, "%s NO [CANNOT] %s\r\n", c->tag, readonly_text);
		break;
	}
}

int imapd_session_run(const struct imapd_io *io, const struct vault_view_ops *vv, void *vctx,
		      const struct imapd_session_opts *o)
{
	struct sess *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return ARCA_ENOMEM;
	s->io = io;
	s->vv = vv;
	s->vctx = vctx;
	s->o = o;
	s->idle_ms = o->idle_timeout_ms > 0 ? o->idle_timeout_ms : 30 * 60 * 1000;
	s->login_ms = o->login_timeout_ms > 0 ? o->login_timeout_ms : 60 * 1000;
	s->max_bad = o->max_bad > 0 ? o->max_bad : 20;
	s->sep = VV_SEPARATOR_DEFAULT;   /* until a folder list says otherwise */
	s->tls = io->tls;
	clock_gettime(CLOCK_MONOTONIC, &s->start);
	/* buffers are never NULL from here on (pointer arithmetic on them) */
	if (abuf_reserve(&s->out, OUT_FLUSH) != 0 || abuf_reserve(&s->cmd, 1024) != 0 ||
	    abuf_reserve(&s->tmp, 1024) != 0 || abuf_reserve(&s->body, 1) != 0 ||
	    abuf_reserve(&s->lower, 1) != 0)
		fatal(s, ARCA_ENOMEM);

	out_str(s, "* OK [CAPABILITY ");
	out_caps(s);
	out_fmt(s, "] %s ready.\r\n", o->greeting_name ? o->greeting_name : "Arca vault");
	out_flush(s);

	while (!s->end) {
		if (s->state == S_NOTAUTH && ms_since_start(s) >= s->login_ms) {
			end_read(s, RD_TIMEOUT);
			break;
		}
		enum rd r = read_command(s);
		if (r != RD_OK) {
			end_read(s, r);
			break;
		}
		if (s->cmd.len > 0) {
			struct imapd_cmd c;
			int rc = imapd_parse((const char *)s->cmd.data, s->cmd.len, &c);
			if (rc == ARCA_ENOMEM)
				fatal(s, rc);
			else if (rc != 0)
				bad(s, c.tag, c.error ? c.error : "Syntax error.");
			else
				dispatch(s, &c);
			if (c.kind == IMAPD_CMD_LOGIN && c.a2) {
				/* the password lives in the command's arena */
				memset((char *)c.a2, 0, c.a2_len);
			}
			imapd_cmd_release(&c);
			/* and in the command buffer */
			if (s->cmd.data)
				memset(s->cmd.data, 0, s->cmd.len);
		}
		if (!s->end && s->bad >= s->max_bad) {
			out_str(s, "* BYE Too many invalid commands.\r\n");
			logf_(s, "too many invalid commands%s%s", s->user[0] ? " user=" : "", s->user);
			fatal(s, ARCA_ELIMIT);
		}
		out_flush(s);
	}
	out_flush(s);
	int rc = s->rc;
	vv_mailbox_release(&s->mb);
	free(s->flags_shown);
	cache_drop(s);
	abuf_release(&s->out);
	abuf_release(&s->body);
	abuf_release(&s->lower);
	if (s->cmd.data)
		memset(s->cmd.data, 0, s->cmd.cap);
	abuf_release(&s->cmd);
	abuf_release(&s->tmp);
	abuf_release(&s->name);
	free(s);
	return rc;
}
