/*
 * imap_conn.c - libetpan session over a netconn (imap_conn.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libetpan/mailstream_types.h>

#include "imap_conn.h"
#include "imap_xguid.h"
#include "snapshot.h"

/* ---- a libetpan stream driver on top of netconn ---- */

/* The driver's data is the imap_conn: reads go through its tag watcher,
 * which also refuses oversized literals (IMAP_LITERAL_MAX). */
static ssize_t nc_read(mailstream_low *s, void *buf, size_t len)
{
	struct imap_conn *c = s->data;
	struct arca_err e = { 0 };
	ssize_t n = netconn_read(c->nc, buf, len, &e);
	/* libetpan reads 0 as "nothing yet" and would spin at EOF */
	if (n <= 0)
		return -1;
	return imap_tagwatch_take(&c->tags, buf, (size_t)n) == 0 ? n : -1;
}

static ssize_t nc_write(mailstream_low *s, const void *buf, size_t len)
{
	struct imap_conn *c = s->data;
	struct arca_err e = { 0 };
	return netconn_write_all(c->nc, buf, len, &e) == 0 ? (ssize_t)len : -1;
}

static int nc_close(mailstream_low *s)
{
	(void)s;
	return 0;   /* the netconn is freed with the session (nc_free) */
}

static int nc_get_fd(mailstream_low *s)
{
	struct imap_conn *c = s->data;
	return netconn_fd(c->nc);
}

static void nc_free(mailstream_low *s)
{
	struct imap_conn *c = s->data;
	netconn_free(c->nc);
	c->nc = NULL;
	free(s);
}

static void nc_cancel(mailstream_low *s)
{
	(void)s;
}

static struct mailstream_cancel *nc_get_cancel(mailstream_low *s)
{
	(void)s;
	return NULL;
}

static carray *nc_get_chain(mailstream_low *s)
{
	(void)s;
	return NULL;
}

static mailstream_low_driver netconn_driver = {
	.mailstream_read = nc_read,
	.mailstream_write = nc_write,
	.mailstream_close = nc_close,
	.mailstream_get_fd = nc_get_fd,
	.mailstream_free = nc_free,
	.mailstream_cancel = nc_cancel,
	.mailstream_get_cancel = nc_get_cancel,
	.mailstream_get_certificate_chain = nc_get_chain,
};

/* ---- the tagged-status watcher and literal guard ---- */

void imap_tagwatch_init(struct imap_tagwatch *w)
{
	memset(w, 0, sizeof(*w));
	w->first_segment = true;
}

static void refuse(struct imap_tagwatch *w, const char *why)
{
	if (w->refused == NULL)
		w->refused = why;
}

/* The first segment of a response ended: a tagged status line? */
static bool note_tagged(struct imap_tagwatch *w)
{
	if (w->headlen == 0 || w->head[0] == '*' || w->head[0] == '+')
		return false;
	size_t i = 0;
	while (i < w->headlen && w->head[i] != ' ')
		i++;
	size_t left = i + 1 < w->headlen ? w->headlen - i - 1 : 0;
	const char *st = left ? w->head + i + 1 : w->head;
	int status = IMAP_TAG_NONE;
	if (left >= 2 && strncasecmp(st, "OK", 2) == 0 && (left == 2 || st[2] == ' ' || st[2] == '\r'))
		status = IMAP_TAG_OK;
	else if (left >= 2 && strncasecmp(st, "NO", 2) == 0 && (left == 2 || st[2] == ' ' || st[2] == '\r'))
		status = IMAP_TAG_NO;
	else if (left >= 3 && strncasecmp(st, "BAD", 3) == 0)
		status = IMAP_TAG_BAD;
	if (i == 0 || status == IMAP_TAG_NONE)
		return false;
	w->last = status;
	size_t k = 0;
	for (size_t j = i + 1; j < w->headlen && k + 1 < sizeof(w->last_text); j++) {
		char c = w->head[j];
		if (c == '\r')
			break;
		w->last_text[k++] = (c >= 0x20 && c < 0x7f) ? c : '?';
	}
	w->last_text[k] = '\0';
	return true;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t';   /* libetpan takes runs of either as one space */
}

/* The first two words of a response's first segment, outside quotes and
 * braces.  A line starting with '+' is a continuation whatever follows it;
 * after a status word ("* OK", "tag NO", ...) the rest of the line is
 * resp-text. */
static void first_segment_byte(struct imap_tagwatch *w, char c)
{
	if (w->words >= 2)
		return;
	if (blank(c)) {
		if (!w->in_word)
			return;   /* leading or repeated blanks */
		w->in_word = false;
		if (++w->words != 2)
			return;
		static const char *const status[] = { "OK", "NO", "BAD", "BYE", "PREAUTH" };
		for (size_t i = 0; i < sizeof(status) / sizeof(status[0]); i++)
			if (strlen(status[i]) == w->wordlen && strncasecmp(w->word, status[i], w->wordlen) == 0)
				w->text = true;
		return;
	}
	if (!w->in_word) {
		w->in_word = true;
		w->wordlen = 0;
		if (w->words == 0 && c == '+') {
			w->text = true;
			return;
		}
	}
	if (w->wordlen < sizeof(w->word))
		w->word[w->wordlen] = c;
	w->wordlen++;
	if (w->words == 0 && w->wordlen > IMAP_WORD0_MAX)
		refuse(w, "a response whose tag is too long");
}

/* A byte inside a quoted string: a backslash escapes the next one. */
static void quoted_byte(struct imap_tagwatch *w, char c)
{
	if (w->escaped)
		w->escaped = false;
	else if (c == '\\')
		w->escaped = true;
	else if (c == '"')
		w->quoted = false;
}

/* A byte of resp-text.  A response code ("[...]" first) is parsed by
 * libetpan, where an astring may be a literal that needs no CRLF: a '{'
 * outside a quoted string is refused from the '[' to the end of the line.
 * In plain text braces are text; only "{N}" over the limit, or at the end
 * of the line, is refused (brace_byte, line_end). */
static void text_byte(struct imap_tagwatch *w, char c)
{
	switch (w->text_pos) {
	case IMAP_TEXT_START:
		if (blank(c))
			return;
		if (c == '[') {
			w->text_pos = IMAP_TEXT_CODE;
			return;
		}
		w->text_pos = IMAP_TEXT_PLAIN;
		break;
	case IMAP_TEXT_CODE:
		if (w->quoted) {
			quoted_byte(w, c);
		} else if (c == '"') {
			w->quoted = true;
		} else if (c == '{') {
			/* to the end of the line: libetpan lets a ']' into an
			 * astring, so a ']' need not end the code */
			refuse(w, "a '{' in a response code");
		}
		return;
	default:
		break;
	}
	if (c == '{') {
		w->brace = IMAP_BRACE_OPEN;
		w->brace_n = 0;
		w->brace_digits = false;
	}
}

/* A line ended outside a literal. */
static void line_end(struct imap_tagwatch *w)
{
	if (w->brace == IMAP_BRACE_CLOSE || w->brace == IMAP_BRACE_CLOSE_CR) {
		if (w->text) {
			/* inside a response code libetpan could read it as a
			 * literal, in plain text not: we can't know which */
			refuse(w, "a literal at the end of status text");
			return;
		}
		w->literal_left = w->brace_n;
		w->brace = IMAP_BRACE_NONE;
		w->first_segment = false;
		w->quoted = w->escaped = false;
		return;
	}
	if (w->brace != IMAP_BRACE_NONE && !w->text) {
		refuse(w, "a '{' that starts no literal");
		return;
	}
	/* a command's answer ends with its tagged line: the byte count
	 * starts again (not at a "+": libetpan takes those amid any answer) */
	if (w->first_segment && note_tagged(w))
		w->answer_bytes = 0;
	w->headlen = 0;
	w->words = 0;
	w->wordlen = 0;
	w->in_word = false;
	w->first_segment = true;
	w->text = w->quoted = w->escaped = false;
	w->text_pos = IMAP_TEXT_START;
	w->brace = IMAP_BRACE_NONE;
}

/* One byte outside literal data and line ends.  Returns false when the
 * byte ended a brace form that isn't a literal in text and must be looked
 * at again as an ordinary byte. */
static bool brace_byte(struct imap_tagwatch *w, char c)
{
	switch (w->brace) {
	case IMAP_BRACE_OPEN:
		if (c == '-') {
			w->brace = IMAP_BRACE_MINUS;   /* libetpan reads "{-N}" as {0} */
			return true;
		}
		/* fall through */
	case IMAP_BRACE_MINUS:
	case IMAP_BRACE_DIGITS:
		if (c >= '0' && c <= '9') {
			unsigned d = (unsigned)(c - '0');
			/* saturating: libetpan's uint32 wraps, so anything
			 * over the limit is refused, never read modulo 2^32 */
			w->brace_n = w->brace_n > (UINT64_MAX - d) / 10 ? UINT64_MAX : w->brace_n * 10 + d;
			w->brace_digits = true;
			if (w->brace != IMAP_BRACE_MINUS)
				w->brace = IMAP_BRACE_DIGITS;
			return true;
		}
		if (c == '}' && w->brace_digits) {
			if (w->brace == IMAP_BRACE_MINUS)
				w->brace_n = 0;
			if (w->brace_n >= IMAP_LITERAL_MAX) {
				w->oversize = w->brace_n;
				refuse(w, "a literal over the size limit");
			}
			w->brace = IMAP_BRACE_CLOSE;
			return true;
		}
		break;
	case IMAP_BRACE_CLOSE:
		if (c == '\r') {
			w->brace = IMAP_BRACE_CLOSE_CR;
			return true;
		}
		break;
	default:
		break;
	}
	/* not "{N}" then CRLF: libetpan would take "{N}" followed by other
	 * bytes as a literal all the same (a Lotus workaround), so outside
	 * text it is refused rather than read another way than libetpan */
	if (!w->text) {
		refuse(w, w->brace == IMAP_BRACE_CLOSE || w->brace == IMAP_BRACE_CLOSE_CR
			  ? "a literal not followed by CRLF" : "a '{' that starts no literal");
		return true;
	}
	w->brace = IMAP_BRACE_NONE;
	return false;
}

void imap_tagwatch_feed(struct imap_tagwatch *w, const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n && w->refused == NULL) {
		if (w->literal_left > 0) {
			size_t take = n - i < w->literal_left ? n - i : (size_t)w->literal_left;
			i += take;
			w->literal_left -= take;
			w->answer_bytes += take;
			if (w->answer_bytes > (w->answer_max ? w->answer_max : IMAP_ANSWER_MAX))
				refuse(w, "an answer over the size limit");
			continue;
		}
		char c = (char)p[i++];
		if (++w->answer_bytes > (w->answer_max ? w->answer_max : IMAP_ANSWER_MAX)) {
			refuse(w, "an answer over the size limit");
			continue;
		}
		if (c == '\n') {
			line_end(w);
			continue;
		}
		if (w->first_segment && w->headlen < sizeof(w->head))
			w->head[w->headlen++] = c;
		if (w->brace != IMAP_BRACE_NONE && brace_byte(w, c))
			continue;
		if (w->text) {
			text_byte(w, c);
			continue;
		}
		if (w->quoted) {
			quoted_byte(w, c);
			continue;
		}
		if (w->first_segment) {
			first_segment_byte(w, c);
			if (w->text || w->refused || blank(c))
				continue;
		}
		if (c == '"') {
			w->quoted = true;
		} else if (c == '{') {
			w->brace = IMAP_BRACE_OPEN;
			w->brace_n = 0;
			w->brace_digits = false;
		}
	}
}

int imap_tagwatch_take(struct imap_tagwatch *w, const uint8_t *p, size_t n)
{
	imap_tagwatch_feed(w, p, n);
	return w->refused ? -1 : 0;
}

void imap_conn_expect_records(struct imap_conn *c, uint64_t records)
{
	if (records > SNAP_MESSAGES_MAX)
		records = SNAP_MESSAGES_MAX;
	c->tags.answer_max = IMAP_ANSWER_MAX + records * IMAP_RECORD_BYTES;
}

int imap_conn_check_ok(struct imap_conn *c, const char *what, struct arca_err *err)
{
	if (c->tags.last == IMAP_TAG_OK)
		return 0;
	return arca_err_set(err, ARCA_EIO, "%s: %s not complete: the server answered %s",
			    c->host, what, c->tags.last_text[0] ? c->tags.last_text : "nothing");
}

/* ---- the session ---- */

int imap_conn_fail(struct imap_conn *c, int r, const char *what, struct arca_err *err)
{
	const char *said = c && c->imap && c->imap->imap_response ? c->imap->imap_response : "";
	int code = ARCA_EIO;
	const char *kind = "failed";
	if (c && (r == MAILIMAP_ERROR_PARSE || r == MAILIMAP_ERROR_STREAM || r == MAILIMAP_ERROR_MEMORY))
		c->broken = true;
	if (c && c->tags.oversize)
		return arca_err_set(err, ARCA_EFORMAT, "%s: %s refused: the server announced a literal of %s%llu bytes (at most %u)",
				    c->host ? c->host : "IMAP", what, c->tags.oversize == UINT64_MAX ? "over " : "",
				    (unsigned long long)(c->tags.oversize == UINT64_MAX ? UINT64_MAX : c->tags.oversize),
				    (unsigned)IMAP_LITERAL_MAX - 1);
	if (c && c->tags.refused)
		return arca_err_set(err, ARCA_EFORMAT, "%s: %s refused: the server sent %s%s",
				    c->host ? c->host : "IMAP", what, c->tags.refused,
				    strstr(c->tags.refused, "answer over") ? " (too much before its tagged line)" : "");
	switch (r) {
	case MAILIMAP_ERROR_PARSE:
		code = ARCA_EFORMAT;
		kind = "answer not understood";
		break;
	case MAILIMAP_ERROR_STREAM:
		kind = "connection lost or timed out";
		break;
	case MAILIMAP_ERROR_MEMORY:
		code = ARCA_ENOMEM;
		kind = "out of memory";
		break;
	case MAILIMAP_ERROR_LOGIN:
		code = ARCA_EKEY;
		kind = "login refused";
		break;
	default:
		break;
	}
	/* the server's words are hostile: print at most a line of them */
	char safe[160];
	size_t n = 0;
	for (const char *p = said; *p && n + 1 < sizeof(safe); p++)
		safe[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
	safe[n] = '\0';
	return arca_err_set(err, code, "%s: %s %s%s%s", c && c->host ? c->host : "IMAP", what, kind,
			    n ? ": " : "", safe);
}

static bool has_cap(mailimap *imap, const char *name)
{
	return mailimap_has_extension(imap, (char *)name) != 0;
}

int imap_conn_open(const struct imap_conn_opts *o, struct imap_conn **c_r, struct arca_err *err)
{
	*c_r = NULL;
	imap_xguid_register();
	struct imap_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	c->host = o->net.host;
	struct netconn *nc;
	int rc = netconn_open(&o->net, &nc, err);
	if (rc) {
		free(c);
		return rc;
	}
	c->nc = nc;
	c->imap = mailimap_new(0, NULL);
	imap_tagwatch_init(&c->tags);
	mailstream_low *low = c->imap ? mailstream_low_new(c, &netconn_driver) : NULL;
	mailstream *stream = low ? mailstream_new(low, 16384) : NULL;
	if (stream == NULL) {
		if (low)
			mailstream_low_free(low);   /* frees nc */
		else
			netconn_free(nc);
		if (c->imap)
			mailimap_free(c->imap);
		free(c);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	/* libetpan's own timeout (seconds) on top of netconn's deadlines */
	mailimap_set_timeout(c->imap, (o->net.timeout_ms > 0 ? o->net.timeout_ms : 60000) / 1000 + 1);
	int r = mailimap_connect(c->imap, stream);
	if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED) {
		if (r == MAILIMAP_NO_ERROR_AUTHENTICATED)
			rc = arca_err_set(err, ARCA_EINVAL, "%s: the server logged us in before LOGIN (PREAUTH): refused", c->host);
		else
			rc = imap_conn_fail(c, r, "greeting", err);
		goto fail;
	}
	if (c->imap->imap_response && strstr(c->imap->imap_response, "Dovecot"))
		c->dovecot = true;
	if (o->net.tls == NETCONN_STARTTLS) {
		r = mailimap_capability(c->imap, &(struct mailimap_capability_data *){ NULL });
		/* libetpan keeps the capabilities in the session; the copy is freed below */
		if (r != MAILIMAP_NO_ERROR) {
			rc = imap_conn_fail(c, r, "CAPABILITY", err);
			goto fail;
		}
		if (!has_cap(c->imap, "STARTTLS")) {
			rc = arca_err_set(err, ARCA_EINVAL, "%s: STARTTLS asked for but not offered by the server", c->host);
			goto fail;
		}
		r = mailimap_starttls(c->imap);
		if (r != MAILIMAP_NO_ERROR) {
			rc = imap_conn_fail(c, r, "STARTTLS", err);
			goto fail;
		}
		if (stream->read_buffer_len != 0) {
			rc = arca_err_set(err, ARCA_EFORMAT, "%s: the server sent data after agreeing to STARTTLS (injection?)", c->host);
			goto fail;
		}
		rc = netconn_start_tls(nc, err);
		if (rc)
			goto fail;
	}
	r = mailimap_login(c->imap, o->user, o->password);
	if (r != MAILIMAP_NO_ERROR) {
		rc = imap_conn_fail(c, r, "LOGIN", err);
		goto fail;
	}
	struct mailimap_capability_data *caps = NULL;
	r = mailimap_capability(c->imap, &caps);
	if (r != MAILIMAP_NO_ERROR) {
		rc = imap_conn_fail(c, r, "CAPABILITY", err);
		goto fail;
	}
	mailimap_capability_data_free(caps);
	c->condstore = has_cap(c->imap, "CONDSTORE");
	c->qresync = has_cap(c->imap, "QRESYNC");
	c->special_use = has_cap(c->imap, "SPECIAL-USE");
	c->list_extended = has_cap(c->imap, "LIST-EXTENDED");
	c->uidplus = has_cap(c->imap, "UIDPLUS");
	if (c->qresync && has_cap(c->imap, "ENABLE")) {
		struct mailimap_capability_data *want = mailimap_capability_data_new(clist_new());
		struct mailimap_capability *cap = want ? mailimap_capability_new(MAILIMAP_CAPABILITY_NAME, NULL, strdup("QRESYNC")) : NULL;
		struct mailimap_capability_data *got = NULL;
		if (cap == NULL || want->cap_list == NULL || clist_append(want->cap_list, cap) != 0) {
			if (cap)
				mailimap_capability_free(cap);
			if (want)
				mailimap_capability_data_free(want);
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			goto fail;
		}
		r = mailimap_enable(c->imap, want, &got);
		mailimap_capability_data_free(want);
		if (r != MAILIMAP_NO_ERROR) {
			rc = imap_conn_fail(c, r, "ENABLE QRESYNC", err);
			goto fail;
		}
		if (got)
			mailimap_capability_data_free(got);
		c->enabled_qresync = true;
	}
	*c_r = c;
	return 0;
fail:
	imap_conn_close(c);
	return rc;
}

void imap_conn_close(struct imap_conn *c)
{
	if (c == NULL)
		return;
	if (c->imap) {
		/* no LOGOUT after a parse or stream error: libetpan would read
		 * on from where it failed, which the lexer may see otherwise */
		if (c->imap->imap_state >= MAILIMAP_STATE_AUTHENTICATED && !c->broken && c->tags.refused == NULL)
			(void)mailimap_logout(c->imap);
		mailimap_free(c->imap);   /* frees the stream, its driver and the netconn */
	}
	free(c);
}

static const char *special_use_of(const char *ext)
{
	static const char *const uses[] = { "All", "Archive", "Drafts", "Flagged", "Junk", "Sent", "Trash" };
	for (size_t i = 0; i < sizeof(uses) / sizeof(uses[0]); i++)
		if (strcasecmp(ext, uses[i]) == 0)
			return uses[i];
	return NULL;
}

bool imap_list_attrs(const struct mailimap_mailbox_list *mb, char *special, size_t special_len)
{
	bool selectable = true;
	const struct mailimap_mbx_list_flags *fl = mb->mb_flag;
	if (fl && fl->mbf_type == MAILIMAP_MBX_LIST_FLAGS_SFLAG &&
	    fl->mbf_sflag == MAILIMAP_MBX_LIST_SFLAG_NOSELECT)
		selectable = false;
	for (clistiter *o = fl && fl->mbf_oflags ? clist_begin(fl->mbf_oflags) : NULL; o; o = clist_next(o)) {
		const struct mailimap_mbx_list_oflag *of = clist_content(o);
		if (of->of_type != MAILIMAP_MBX_LIST_OFLAG_FLAG_EXT || of->of_flag_ext == NULL)
			continue;
		if (strcasecmp(of->of_flag_ext, "NonExistent") == 0 ||
		    strcasecmp(of->of_flag_ext, "Noselect") == 0)
			selectable = false;
		const char *su = special_use_of(of->of_flag_ext);
		if (su)
			snprintf(special, special_len, "\\%s", su);
	}
	return selectable;
}
