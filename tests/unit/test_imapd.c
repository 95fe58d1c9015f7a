/*
 * test_imapd.c - the IMAP command parser and the read-only IMAP session of
 * `arca serve-imap`, against an in-memory vault view.
 *
 * The session runs in a thread on one end of a socketpair; the tests write
 * commands on the other end and compare the answers byte for byte.  A few
 * tests use a scripted in-memory io instead (IDLE keepalives: its wait()
 * "times out" at once, so 30 minutes of idling take no time).
 *
 *     test_imapd                run the tests
 *     test_imapd --serve PORT   serve the fixture account (user "u",
 *                               password "p") on 127.0.0.1:PORT, plain TCP,
 *                               for real clients (mbsync, imaplib)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "arca_err.h"
#include "buf.h"
#include "imapd_parse.h"
#include "imapd_session.h"
#include "vault_view.h"

/* ---- in-memory vault view -------------------------------------------------- */

struct mfolder {
	struct vv_msg *m;
	char **bytes;
	size_t n, cap;
	char *kw[64];
	size_t nkw;
};

struct mview {
	struct vv_folder *f;
	struct mfolder *d;
	size_t nf;
	bool bound;
	unsigned logins;
	int fail_body;            /* body() returns this when set */
	struct vv_account acct;   /* separator, gone subscriptions */
	bool writable;            /* can_store(): flag changes kept */
	int fail_store;           /* store() returns this when set */
	int fail_changes;         /* changes() returns this when set */
	unsigned stores;          /* store() calls */
};

/* The next fixture's view keeps flag changes (set before cl_start). */
static bool next_writable;

static char *xstrdup(const char *s)
{
	char *r = strdup(s);
	if (r == NULL)
		abort();
	return r;
}

static size_t mv_folder(struct mview *v, const char *name, uint32_t attrs, const char *special,
			uint32_t uidvalidity, uint32_t uidnext, uint64_t hms)
{
	v->f = realloc(v->f, (v->nf + 1) * sizeof(*v->f));
	v->d = realloc(v->d, (v->nf + 1) * sizeof(*v->d));
	if (v->f == NULL || v->d == NULL)
		abort();
	v->f[v->nf] = (struct vv_folder){ .name = xstrdup(name), .attrs = attrs,
					   .special_use = xstrdup(special), .uidvalidity = uidvalidity,
					   .uidnext = uidnext, .highestmodseq = hms };
	memset(&v->d[v->nf], 0, sizeof(v->d[0]));
	return v->nf++;
}

static void mv_keyword(struct mview *v, size_t f, const char *kw)
{
	v->d[f].kw[v->d[f].nkw++] = xstrdup(kw);
}

static void mv_msg(struct mview *v, size_t f, uint32_t uid, uint64_t modseq, uint32_t flags,
		   uint64_t kw, int64_t date, const char *bytes)
{
	struct mfolder *d = &v->d[f];
	if (d->n == d->cap) {
		d->cap = d->cap * 2 + 16;
		d->m = realloc(d->m, d->cap * sizeof(*d->m));
		d->bytes = realloc(d->bytes, d->cap * sizeof(*d->bytes));
		if (d->m == NULL || d->bytes == NULL)
			abort();
	}
	d->m[d->n] = (struct vv_msg){ .uid = uid, .modseq = modseq, .flags = flags, .keywords = kw,
				      .date = date, .size = strlen(bytes) };
	d->bytes[d->n] = xstrdup(bytes);
	d->n++;
	v->f[f].messages++;
	if (!(flags & VV_SEEN))
		v->f[f].unseen++;
}

static int mv_login(void *ctx, const char *user, const char *pass)
{
	struct mview *v = ctx;
	v->logins++;
	if (v->bound)
		return ARCA_ESTATE;
	if (strcmp(user, "busy") == 0)
		return ARCA_EBUSY;
	if (strcmp(user, "broken") == 0)
		return ARCA_EIO;
	if (strcmp(user, "u") != 0 || strcmp(pass, "p") != 0)
		return ARCA_EKEY;
	v->bound = true;
	return 0;
}

static int mv_folders(void *ctx, const struct vv_folder **list, size_t *n)
{
	struct mview *v = ctx;
	if (!v->bound)
		return ARCA_ESTATE;
	*list = v->f;
	*n = v->nf;
	return 0;
}

static int mv_open(void *ctx, size_t folder, struct vv_mailbox *mb)
{
	struct mview *v = ctx;
	memset(mb, 0, sizeof(*mb));
	if (!v->bound || folder >= v->nf)
		return ARCA_EINVAL;
	struct mfolder *d = &v->d[folder];
	mb->msgs = malloc((d->n ? d->n : 1) * sizeof(*mb->msgs));
	mb->keywords = calloc(d->nkw ? d->nkw : 1, sizeof(char *));
	if (mb->msgs == NULL || mb->keywords == NULL)
		abort();
	if (d->n > 0)
		memcpy(mb->msgs, d->m, d->n * sizeof(*d->m));
	mb->nmsgs = d->n;
	for (size_t i = 0; i < d->nkw; i++)
		mb->keywords[i] = xstrdup(d->kw[i]);
	mb->nkeywords = d->nkw;
	return 0;
}

static int mv_body(void *ctx, size_t folder, uint32_t uid, struct abuf *out)
{
	struct mview *v = ctx;
	if (!v->bound || folder >= v->nf)
		return ARCA_EINVAL;
	if (v->fail_body)
		return v->fail_body;
	struct mfolder *d = &v->d[folder];
	for (size_t i = 0; i < d->n; i++)
		if (d->m[i].uid == uid)
			return abuf_add(out, d->bytes[i], d->m[i].size);
	return ARCA_ENOENT;
}

static int mv_account(void *ctx, const struct vv_account **a)
{
	struct mview *v = ctx;
	if (!v->bound)
		return ARCA_ESTATE;
	*a = &v->acct;
	return 0;
}

static void mv_free(struct mview *v)
{
	for (size_t i = 0; i < v->acct.ngone_subs; i++)
		free(v->acct.gone_subs[i]);
	free(v->acct.gone_subs);
	for (size_t i = 0; i < v->nf; i++) {
		free(v->f[i].name);
		free(v->f[i].special_use);
		for (size_t k = 0; k < v->d[i].n; k++)
			free(v->d[i].bytes[k]);
		free(v->d[i].bytes);
		free(v->d[i].m);
		for (size_t k = 0; k < v->d[i].nkw; k++)
			free(v->d[i].kw[k]);
	}
	free(v->f);
	free(v->d);
	memset(v, 0, sizeof(*v));
}

static void mv_ops_free(void *ctx)
{
	(void)ctx;
}

static bool mv_can_store(void *ctx)
{
	return ((struct mview *)ctx)->writable;
}

/* What the keeper does, in memory: one new MODSEQ above the folder's for
 * the messages that change. */
static int mv_store(void *ctx, size_t folder, const struct vv_store *req, struct vv_store_result *res)
{
	struct mview *v = ctx;
	memset(res, 0, sizeof(*res));
	v->stores++;
	if (!v->bound || !v->writable || folder >= v->nf)
		return ARCA_ESTATE;
	if (v->fail_store)
		return v->fail_store;
	struct mfolder *d = &v->d[folder];
	uint64_t mask;
	size_t nkw = d->nkw;
	int rc = vv_store_keywords(d->kw, &nkw, req, &mask);
	if (rc)
		return rc;
	d->nkw = nkw;
	res->msgs = calloc(req->nuids, sizeof(*res->msgs));
	res->modified = calloc(req->nuids, sizeof(*res->modified));
	res->keywords = calloc(VV_KEYWORDS_MAX, sizeof(char *));
	if (res->msgs == NULL || res->modified == NULL || res->keywords == NULL)
		abort();
	uint64_t modseq = v->f[folder].highestmodseq + 1;
	bool any = false;
	for (size_t i = 0; i < req->nuids; i++)
		for (size_t k = 0; k < d->n; k++) {
			struct vv_msg *m = &d->m[k];
			if (m->uid != req->uids[i])
				continue;
			if (req->has_unchangedsince && m->modseq > req->unchangedsince) {
				res->modified[res->nmodified++] = m->uid;
				break;
			}
			uint32_t fl = m->flags;
			uint64_t kw = m->keywords;
			vv_store_one(req, mask, &fl, &kw);
			if (fl != m->flags || kw != m->keywords) {
				m->flags = fl;
				m->keywords = kw;
				m->modseq = modseq;
				any = true;
			}
			res->msgs[res->nmsgs++] = *m;
			break;
		}
	if (any)
		v->f[folder].highestmodseq = modseq;
	for (size_t i = 0; i < d->nkw; i++)
		res->keywords[i] = xstrdup(d->kw[i]);
	res->nkeywords = d->nkw;
	return 0;
}

static int mv_changes(void *ctx, size_t folder, uint64_t since, struct vv_store_result *res)
{
	struct mview *v = ctx;
	memset(res, 0, sizeof(*res));
	if (!v->bound || !v->writable || folder >= v->nf)
		return ARCA_ESTATE;
	if (v->fail_changes)
		return v->fail_changes;
	struct mfolder *d = &v->d[folder];
	res->msgs = calloc(d->n + 1, sizeof(*res->msgs));
	res->keywords = calloc(VV_KEYWORDS_MAX, sizeof(char *));
	if (res->msgs == NULL || res->keywords == NULL)
		abort();
	for (size_t k = 0; k < d->n; k++)
		if (d->m[k].modseq > since)
			res->msgs[res->nmsgs++] = d->m[k];
	for (size_t i = 0; i < d->nkw; i++)
		res->keywords[i] = xstrdup(d->kw[i]);
	res->nkeywords = d->nkw;
	return 0;
}

static const struct vault_view_ops mv_ops = {
	.login = mv_login, .folders = mv_folders, .open = mv_open, .body = mv_body,
	.free = mv_ops_free, .account = mv_account, .can_store = mv_can_store, .store = mv_store,
	.changes = mv_changes,
};

/* ---- the fixture account ----------------------------------------------------- */

static const char MSG1[] =
	"From: Alice <alice@example.test>\r\n"
	"To: u@example.test\r\n"
	"Subject: Hello\r\n"
	"Date: Mon, 2 Jan 2023 10:00:00 +0000\r\n"
	"Message-ID: <1@example.test>\r\n"
	"\r\n"
	"Hello world.\r\n";

static const char MSG2[] =
	"From: Bob <bob@example.test>\r\n"
	"To: u@example.test\r\n"
	"Cc: Carol <carol@other.test>\r\n"
	"Subject: Quarterly report\r\n"
	"Date: Tue, 3 Jan 2023 23:30:00 -0500\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
	"\r\n"
	"preamble\r\n"
	"--b1\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"\r\n"
	"Part one.\r\n"
	"--b1\r\n"
	"Content-Type: application/octet-stream\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"AAEC\r\n"
	"--b1--\r\n";

static const char MSG3[] =
	"From: Dave <dave@example.test>\r\n"
	"To: u@example.test\r\n"
	"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
	"Date: 5 Feb 2024 08:00:00 +0000\r\n"
	"X-Tag: needle in the header\r\n"
	"\r\n"
	"Second line of text has the Word Haystack.\r\n";

static char *big_msg;            /* 300 KB, for streaming */

/* Times: 2023-01-02 10:00:00 UTC and neighbours. */
#define T1 1672653600LL
#define T2 1672790400LL          /* 2023-01-04 00:00:00 UTC */
#define T3 1707120000LL          /* 2024-02-05 08:00:00 UTC */

/* The account as a Maildir++ Dovecot showed it ('.'), with subscriptions
 * to folders that are gone, or as LAYOUT=fs ('/') with the same. */
static char fixture_separator = '/';
static bool fixture_gone;

static void fixture(struct mview *v, size_t bulk)
{
	memset(v, 0, sizeof(*v));
	v->acct.separator = fixture_separator;
	if (big_msg == NULL) {
		size_t n = 300000;
		big_msg = malloc(n + 1);
		if (big_msg == NULL)
			abort();
		int h = snprintf(big_msg, n, "From: x@example.test\r\nSubject: big\r\n\r\n");
		for (size_t i = (size_t)h; i < n; i++)
			big_msg[i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : (char)('a' + i % 26);
		big_msg[n] = '\0';
	}
	size_t inbox = mv_folder(v, "INBOX", VV_SELECTABLE | VV_SUBSCRIBED, "", 1700000001, 10, 20);
	mv_keyword(v, inbox, "$Forwarded");
	mv_keyword(v, inbox, "Work");
	mv_msg(v, inbox, 1, 5, VV_SEEN, 0, T1, MSG1);
	mv_msg(v, inbox, 3, 12, VV_SEEN | VV_FLAGGED, 1, T2, MSG2);
	mv_msg(v, inbox, 7, 20, VV_ANSWERED, 3, T3, MSG3);
	mv_msg(v, inbox, 8, 9, VV_SEEN | VV_DRAFT, 0, T3 + 60, big_msg);
	size_t sent = mv_folder(v, "Sent", VV_SELECTABLE | VV_SUBSCRIBED, "\\Sent", 1700000002, 2, 3);
	mv_msg(v, sent, 1, 3, VV_SEEN, 0, T1, MSG1);
	/* Maildir++ has no directory for a parent: the keeper says so */
	mv_folder(v, "Archive", VV_SUBSCRIBED | (fixture_separator == '.' ? VV_NONEXISTENT : 0), "",
		  0, 1, 1);
	size_t a23 = mv_folder(v, "Archive/2023", VV_SELECTABLE | VV_SUBSCRIBED, "\\Archive",
			       1700000003, 100, 40);
	mv_msg(v, a23, 50, 30, VV_SEEN, 0, T1, MSG2);
	mv_msg(v, a23, 99, 40, VV_SEEN | VV_DELETED, 0, T2, MSG3);
	mv_folder(v, "Archive/2024", VV_SELECTABLE, "", 1700000004, 1, 1);
	size_t drafts = mv_folder(v, "Entwürfe", VV_SELECTABLE | VV_SUBSCRIBED, "\\Drafts",
				  1700000005, 5, 7);
	mv_msg(v, drafts, 4, 7, VV_DRAFT, 0, T3, MSG3);
	mv_folder(v, "a/b/c", VV_SELECTABLE, "", 1700000006, 1, 1);
	mv_folder(v, "Trash", VV_SELECTABLE | VV_SUBSCRIBED, "\\Trash", 1700000007, 1, 1);
	if (fixture_gone) {
		/* "x.y" can't be shown with '.' (only LAYOUT=fs has it); "Sent"
		 * is a folder after all (a view may leave it in) */
		mv_folder(v, "x.y", VV_SELECTABLE, "", 1700000009, 1, 1);
		static const char *const gone[] = { "Old/Gone", "Archive/Gone", "Sent", "x.y/z" };
		v->acct.ngone_subs = sizeof(gone) / sizeof(gone[0]);
		v->acct.gone_subs = calloc(v->acct.ngone_subs, sizeof(char *));
		if (v->acct.gone_subs == NULL)
			abort();
		for (size_t i = 0; i < v->acct.ngone_subs; i++)
			v->acct.gone_subs[i] = xstrdup(gone[i]);
	}
	if (bulk > 0) {
		size_t b = mv_folder(v, "Bulk", VV_SELECTABLE, "", 1700000008, (uint32_t)(2 * bulk + 1),
				     2 * bulk);
		mv_keyword(v, b, "odd");
		char m[256];
		for (size_t i = 1; i <= bulk; i++) {
			snprintf(m, sizeof(m), "From: bulk@example.test\r\nSubject: bulk %zu\r\n"
				 "Message-ID: <bulk%zu@example.test>\r\n\r\nbody %zu\r\n", i, i, i);
			mv_msg(v, b, (uint32_t)(2 * i), i, i % 3 == 0 ? VV_SEEN : 0, i & 1,
			       T1 + (int64_t)i * 3600, m);
		}
	}
}

/* ---- the session on a socketpair --------------------------------------------- */

struct fdio {
	int fd;
	bool starttls_called;
};

static ssize_t fd_read(void *ctx, void *buf, size_t n)
{
	struct fdio *f = ctx;
	ssize_t r;
	do
		r = read(f->fd, buf, n);
	while (r < 0 && errno == EINTR);
	return r;
}

static int fd_write(void *ctx, const void *buf, size_t n)
{
	struct fdio *f = ctx;
	const char *p = buf;
	while (n > 0) {
		ssize_t w = send(f->fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int fd_wait(void *ctx, int ms)
{
	struct fdio *f = ctx;
	struct pollfd pfd = { .fd = f->fd, .events = POLLIN };
	int r;
	do
		r = poll(&pfd, 1, ms);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -1 : r > 0;
}

static int fd_starttls(void *ctx)
{
	struct fdio *f = ctx;
	f->starttls_called = true;
	return 0;
}

struct cl {
	int fd;
	pthread_t th;
	struct fdio fio;
	struct imapd_io io;
	struct mview v;
	struct imapd_session_opts o;
	int rc;
	struct abuf in;               /* received, not yet returned */
	char log[4096];
};

static void cl_log(void *ctx, const char *line)
{
	struct cl *c = ctx;
	size_t n = strlen(c->log);
	snprintf(c->log + n, sizeof(c->log) - n, "%s\n", line);
}

static void *cl_thread(void *arg)
{
	struct cl *c = arg;
	c->rc = imapd_session_run(&c->io, &mv_ops, &c->v, &c->o);
	close(c->fio.fd);
	return NULL;
}

/* tls: the io is already encrypted; loopback: peer on 127.0.0.1 */
static struct cl *cl_start_opts(bool loopback, bool tls, bool starttls, size_t bulk,
				int login_ms, int idle_ms)
{
	struct cl *c = calloc(1, sizeof(*c));
	int sv[2];
	if (c == NULL || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	c->fd = sv[0];
	c->fio.fd = sv[1];
	c->io = (struct imapd_io){ .read = fd_read, .write = fd_write, .wait = fd_wait,
				   .starttls = starttls ? fd_starttls : NULL, .tls = tls,
				   .loopback = loopback, .ctx = &c->fio };
	fixture(&c->v, bulk);
	c->v.writable = next_writable;
	next_writable = false;
	c->o = (struct imapd_session_opts){ .greeting_name = "Arca vault", .log = cl_log,
					    .log_ctx = c, .login_timeout_ms = login_ms,
					    .idle_timeout_ms = idle_ms };
	if (pthread_create(&c->th, NULL, cl_thread, c) != 0)
		abort();
	return c;
}

static struct cl *cl_start(void)
{
	return cl_start_opts(true, false, false, 0, 0, 0);
}

/* Read until the received bytes hold a complete line starting with
 * `prefix` (at a line start); return everything up to and including it. */
static char *cl_until(struct cl *c, const char *prefix)
{
	size_t pl = strlen(prefix);
	size_t from = 0;   /* lines before this one were looked at already */
	for (;;) {
		for (size_t i = from; i < c->in.len; i++) {
			if ((i == 0 || c->in.data[i - 1] == '\n') && c->in.len - i >= pl &&
			    memcmp(c->in.data + i, prefix, pl) == 0) {
				uint8_t *lf = memchr(c->in.data + i, '\n', c->in.len - i);
				if (lf == NULL)
					break;
				size_t n = (size_t)(lf - c->in.data) + 1;
				char *r = malloc(n + 1);
				if (r == NULL)
					abort();
				memcpy(r, c->in.data, n);
				r[n] = '\0';
				memmove(c->in.data, c->in.data + n, c->in.len - n);
				c->in.len -= n;
				return r;
			}
		}
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		if (poll(&pfd, 1, 10000) <= 0) {
			fprintf(stderr, "  timeout waiting for \"%s\"; have: %.*s\n", prefix,
				(int)(c->in.len > 500 ? 500 : c->in.len), (char *)c->in.data);
			return xstrdup("(timeout)");
		}
		for (size_t i = c->in.len; i > from; i--) {
			if (c->in.data[i - 1] == '\n') {
				from = i;
				break;
			}
		}
		char buf[65536];
		ssize_t r = read(c->fd, buf, sizeof(buf));
		if (r <= 0) {
			char *all = malloc(c->in.len + 16);
			if (all == NULL)
				abort();
			memcpy(all, c->in.data, c->in.len);
			memcpy(all + c->in.len, "(eof)", 6);
			c->in.len = 0;
			return all;
		}
		if (abuf_add(&c->in, buf, (size_t)r) != 0)
			abort();
	}
}

static void cl_send(struct cl *c, const char *s)
{
	size_t n = strlen(s);
	if (send(c->fd, s, n, MSG_NOSIGNAL) != (ssize_t)n)
		fprintf(stderr, "  send failed\n");
}

/* Send "tag cmd\r\n", return the answer up to the tagged line. */
static char *cl_cmd(struct cl *c, const char *tag, const char *cmd)
{
	char line[8192], pre[64];
	snprintf(line, sizeof(line), "%s %s\r\n", tag, cmd);
	snprintf(pre, sizeof(pre), "%s ", tag);
	cl_send(c, line);
	return cl_until(c, pre);
}

/* Run a command and compare the whole answer. */
#define EXPECT(c, tag, cmd, want)                                              \
	do {                                                                  \
		char *got_ = cl_cmd((c), (tag), (cmd));                       \
		CHECK_STR(got_, (want));                                      \
		free(got_);                                                   \
	} while (0)

static int cl_finish(struct cl *c)
{
	close(c->fd);
	pthread_join(c->th, NULL);
	int rc = c->rc;
	mv_free(&c->v);
	abuf_release(&c->in);
	free(c);
	return rc;
}

static struct cl *cl_login(void)
{
	struct cl *c = cl_start();
	free(cl_until(c, "* OK"));
	free(cl_cmd(c, "L", "LOGIN u p"));
	return c;
}

#define CAPS "IMAP4rev1 SASL-IR ID ENABLE IDLE NAMESPACE LITERAL+ UIDPLUS CONDSTORE QRESYNC " \
	     "LIST-EXTENDED LIST-STATUS SPECIAL-USE CHILDREN UNSELECT ESEARCH"

/* ---- scripted in-memory io (wait() times out once the input is used up) ---- */

struct memio {
	const char *in;
	size_t len, pos;
	bool eof;                     /* at the end: end of stream, not silence */
	struct abuf out;
};

static ssize_t mem_read(void *ctx, void *buf, size_t n)
{
	struct memio *m = ctx;
	size_t k = m->len - m->pos < n ? m->len - m->pos : n;
	memcpy(buf, m->in + m->pos, k);
	m->pos += k;
	return (ssize_t)k;
}

static int mem_write(void *ctx, const void *buf, size_t n)
{
	struct memio *m = ctx;
	return abuf_add(&m->out, buf, n);
}

static int mem_wait(void *ctx, int ms)
{
	struct memio *m = ctx;
	(void)ms;
	return m->pos < m->len || m->eof;
}

static char *run_mem(const char *script, int *rc_r, bool eof)
{
	struct memio m = { .in = script, .len = strlen(script), .eof = eof };
	struct imapd_io io = { .read = mem_read, .write = mem_write, .wait = mem_wait,
			       .loopback = true, .ctx = &m };
	struct mview v;
	fixture(&v, 0);
	struct imapd_session_opts o = { .greeting_name = "Arca vault" };
	*rc_r = imapd_session_run(&io, &mv_ops, &v, &o);
	mv_free(&v);
	if (abuf_cstr(&m.out) != 0)
		abort();
	return (char *)m.out.data;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* ---- parser ------------------------------------------------------------------- */

static int parse(const char *s, struct imapd_cmd *c)
{
	return imapd_parse(s, strlen(s), c);
}

static void test_parse_good(void)
{
	static const char *const good[] = {
		"a CAPABILITY", "a noop", "a LOGOUT", "a ID NIL", "a ID (\"name\" \"mbsync\" \"x\" NIL)",
		"a ID ()", "a STARTTLS", "a AUTHENTICATE PLAIN", "a AUTHENTICATE PLAIN AHUAcA==",
		"a AUTHENTICATE PLAIN =", "a LOGIN u p", "a LOGIN \"u\" \"p \\\"q\\\\\"",
		"a LOGIN {1}\r\nu {1+}\r\np", "a ENABLE CONDSTORE QRESYNC", "a NAMESPACE", "a IDLE",
		"a SELECT INBOX", "a EXAMINE \"Sent\" (CONDSTORE)",
		"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
		"a SELECT INBOX (QRESYNC (1 2 1:5 (1:3 1,3,5)))", "a SELECT INBOX (QRESYNC (1 2))",
		"a SELECT INBOX (QRESYNC (1 2 (1 2)))",
		"a LIST \"\" *", "a LIST \"\" \"\"", "a LIST ~/Mail/ %", "a LIST \"\" INBOX/%]",
		"a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"*\" \"%/x\") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))",
		"a LIST (SPECIAL-USE) \"\" * RETURN (SPECIAL-USE SUBSCRIBED)", "a LIST () \"\" % RETURN ()",
		"a LSUB \"\" *", "a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)",
		"a CREATE foo", "a DELETE foo", "a RENAME foo bar", "a SUBSCRIBE foo", "a UNSUBSCRIBE foo",
		"a APPEND INBOX (\\Seen) \"01-Jan-2020 00:00:00 +0000\" {3+}\r\nabc",
		"a CHECK", "a CLOSE", "a UNSELECT", "a EXPUNGE", "a UID EXPUNGE 1:3",
		"a FETCH 1 ALL", "a FETCH 1:* FAST", "a FETCH * FULL", "a FETCH 1,2:4,*:9 FLAGS",
		"a FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE RFC822 RFC822.HEADER RFC822.TEXT ENVELOPE BODY BODYSTRUCTURE MODSEQ)",
		"a FETCH 1 (BODY[] BODY.PEEK[HEADER] BODY[TEXT]<0.10> BODY[1.2.MIME] BODY[1.HEADER.FIELDS (From \"To\")])",
		"a FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (X-A)]<5.1>",
		"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)",
		"a FETCH 1:* (FLAGS) (CHANGEDSINCE 0)",
		"a SEARCH ALL", "a UID SEARCH UID 1:* NOT DELETED",
		"a SEARCH CHARSET UTF-8 OR (FROM x TO y) NOT (SUBJECT \"a b\" BODY c) TEXT {1}\r\nz",
		"a SEARCH RETURN (MIN MAX COUNT ALL) SINCE 1-Feb-1994 BEFORE \"02-Mar-2020\" ON 29-Feb-2024",
		"a SEARCH RETURN () 1:3 HEADER X-Tag needle LARGER 10 SMALLER 100000",
		"a SEARCH KEYWORD $Forwarded UNKEYWORD Work NEW OLD RECENT SEEN UNSEEN ANSWERED DRAFT",
		"a SEARCH MODSEQ 5", "a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338",
		"a SEARCH SENTBEFORE 1-Jan-2000 SENTON 1-Jan-2000 SENTSINCE 1-Jan-2000 BCC x CC y",
		"a STORE 1 +FLAGS (\\Seen)", "a UID STORE 1:2 FLAGS.SILENT ()", "a COPY 1 Trash",
		"a UID MOVE 1:* \"Archive/2023\"",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct imapd_cmd c;
		int rc = parse(good[i], &c);
		if (rc != 0)
			fprintf(stderr, "  \"%s\": %s\n", good[i], c.error);
		CHECK_EQ_INT(rc, 0);
		CHECK_STR(c.tag, "a");
		imapd_cmd_release(&c);
	}
}

static void test_parse_bad(void)
{
	static const char *const bad[] = {
		"", "a", "a ", "+ NOOP", "a NOOP ", "a NOOP x", "a FOO", "a UID NOOP", "a UID",
		"a LOGIN u", "a LOGIN u p q", "a LOGIN {1}\r\n", "a LOGIN {5}\r\nu p",
		"a LOGIN \"u", "a LOGIN \"u\\x\" p", "a LOGIN {99999}\r\nx p",
		"a FETCH 0 FLAGS", "a FETCH 1: FLAGS", "a FETCH 4294967296 FLAGS", "a FETCH 1 FOO",
		"a FETCH 1 (FLAGS", "a FETCH 1 BODY[", "a FETCH 1 BODY[0]", "a FETCH 1 BODY[MIME]",
		"a FETCH 1 BODY[1.FOO]", "a FETCH 1 BODY[]<1>", "a FETCH 1 BODY[]<1.0>",
		"a FETCH 1 BODY[HEADER.FIELDS ()]", "a FETCH 1 BODY[HEADER.FIELDS (a:b)]",
		"a FETCH 1 BODY.PEEK", "a FETCH 1 FLAGS (VANISHED)", "a UID FETCH 1 FLAGS (VANISHED)",
		"a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)",
		"a SEARCH", "a SEARCH FOO", "a SEARCH NOT", "a SEARCH OR ALL", "a SEARCH (ALL",
		"a SEARCH SINCE 32-Jan-2020", "a SEARCH SINCE 1-Foo-2020", "a SEARCH SINCE 1-Jan-20",
		"a SEARCH RETURN (SAVE) ALL", "a SEARCH HEADER a:b x", "a SEARCH LARGER",
		"a LIST (FOO) \"\" *", "a LIST (RECURSIVEMATCH) \"\" *", "a LIST \"\" * RETURN (FOO)",
		"a LIST \"\"", "a STATUS INBOX ()", "a STATUS INBOX (SIZE)", "a STATUS INBOX",
		"a SELECT INBOX (FOO)", "a SELECT INBOX (QRESYNC (0 1))", "a SELECT INBOX (QRESYNC (1))",
		"a ENABLE", "a ID", "a ID (\"a\")", "a AUTHENTICATE", "a AUTHENTICATE PLAIN a!b",
		"a RENAME x", "a STORE 1", "a COPY 1", "a APPEND", "a CREATE (",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct imapd_cmd c;
		int rc = imapd_parse(bad[i], strlen(bad[i]), &c);
		if (rc == 0)
			fprintf(stderr, "  \"%s\" parsed\n", bad[i]);
		CHECK(rc == ARCA_EFORMAT || rc == ARCA_ELIMIT);
		CHECK(c.error != NULL);
		imapd_cmd_release(&c);
	}
	/* a NUL inside a literal */
	struct imapd_cmd c;
	CHECK_EQ_INT(imapd_parse("a LOGIN {1}\r\n\0 p", 17, &c), ARCA_EFORMAT);
	imapd_cmd_release(&c);
}

static void test_parse_values(void)
{
	struct imapd_cmd c;
	REQUIRE(parse("t1 UID FETCH 5:3,*,7 (UID BODY.PEEK[1.2.HEADER.FIELDS (From \"X-Y\")]<10.20>) "
		      "(CHANGEDSINCE 99 VANISHED)", &c) == 0);
	CHECK_EQ_INT(c.kind, IMAPD_CMD_FETCH);
	CHECK(c.uid);
	CHECK_EQ_INT(c.set.n, 3);
	CHECK_EQ_INT(c.set.r[0].lo, 5);
	CHECK_EQ_INT(c.set.r[0].hi, 3);
	CHECK_EQ_INT(c.set.r[1].lo, 0);
	CHECK_EQ_INT(c.natts, 2);
	const struct imapd_fetch_att *a = &c.atts[1];
	CHECK_EQ_INT(a->kind, IMAPD_FA_BODY_SECTION);
	CHECK(a->peek && a->partial);
	CHECK_EQ_INT(a->offset, 10);
	CHECK_EQ_INT(a->count, 20);
	CHECK_EQ_INT(a->section.nparts, 2);
	CHECK_EQ_INT(a->section.part[1], 2);
	CHECK_EQ_INT(a->section.kind, IMAPD_SECTION_HEADER_FIELDS);
	REQUIRE(a->section.nfields == 2);
	CHECK_STR(a->section.fields[1], "X-Y");
	CHECK(c.changedsince_given && c.changedsince == 99 && c.vanished);
	imapd_cmd_release(&c);

	REQUIRE(parse("x FETCH 1 FULL", &c) == 0);
	CHECK_EQ_INT(c.natts, 5);
	CHECK_EQ_INT(c.atts[4].kind, IMAPD_FA_BODY);
	imapd_cmd_release(&c);

	REQUIRE(parse("x SEARCH OR FROM a (NOT SEEN 2:4) UID 9", &c) == 0);
	const struct imapd_search_key *k = c.search;
	CHECK_EQ_INT(k->op, IMAPD_SK_AND);
	REQUIRE(k->child && k->child->op == IMAPD_SK_OR);
	CHECK_STR(k->child->child->field, "From");
	CHECK_EQ_INT(k->child->child->next->op, IMAPD_SK_AND);
	CHECK_EQ_INT(k->child->child->next->child->op, IMAPD_SK_NOT);
	CHECK_EQ_INT(k->child->next->op, IMAPD_SK_UIDSET);
	imapd_cmd_release(&c);

	REQUIRE(parse("x SEARCH SINCE 1-Jan-1970 ON 02-Jan-2023", &c) == 0);
	CHECK_EQ_INT(c.search->child->date, 0);
	CHECK_EQ_INT(c.search->child->next->date, T1 / 86400);
	imapd_cmd_release(&c);

	REQUIRE(parse("x SELECT INBOX (CONDSTORE QRESYNC (7 8 1:9 (1,2 3,4)))", &c) == 0);
	CHECK(c.condstore && c.qresync);
	CHECK_EQ_INT(c.qr_uidvalidity, 7);
	CHECK_EQ_INT(c.qr_modseq, 8);
	CHECK_EQ_INT(c.qr_known_uids.n, 1);
	CHECK_EQ_INT(c.qr_seq_match.n, 2);
	CHECK_EQ_INT(c.qr_uid_match.r[1].lo, 4);
	imapd_cmd_release(&c);

	REQUIRE(parse("x LOGIN {3}\r\na b {4+}\r\n\"p\"q", &c) == 0);
	CHECK_STR(c.a1, "a b");
	CHECK_STR(c.a2, "\"p\"q");
	CHECK_EQ_INT(c.a2_len, 4);
	imapd_cmd_release(&c);

	/* limits: nesting, number of keys */
	struct abuf b = ABUF_INIT;
	abuf_printf(&b, "x SEARCH ");
	for (int i = 0; i < 40; i++)
		abuf_printf(&b, "NOT ");
	abuf_printf(&b, "ALL");
	CHECK_EQ_INT(imapd_parse((char *)b.data, b.len, &c), ARCA_ELIMIT);
	imapd_cmd_release(&c);
	abuf_reset(&b);
	abuf_printf(&b, "x SEARCH ");
	for (int i = 0; i < 2000; i++)
		abuf_printf(&b, "ALL ");
	abuf_printf(&b, "ALL");
	CHECK_EQ_INT(imapd_parse((char *)b.data, b.len, &c), ARCA_ELIMIT);
	imapd_cmd_release(&c);
	abuf_release(&b);

	uint64_t n;
	bool ns;
	CHECK_EQ_INT(imapd_line_literal("a LOGIN {12}", 12, &n, &ns), 1);
	CHECK(n == 12 && !ns);
	CHECK_EQ_INT(imapd_line_literal("a LOGIN {7+}", 12, &n, &ns), 1);
	CHECK(n == 7 && ns);
	CHECK_EQ_INT(imapd_line_literal("a LOGIN {+}", 11, &n, &ns), 0);
	CHECK_EQ_INT(imapd_line_literal("}", 1, &n, &ns), 0);
	CHECK_EQ_INT(imapd_line_literal("{99999999999999999999}", 22, &n, &ns), ARCA_ELIMIT);
	char tag[IMAPD_TAG_MAX + 1], name[32];
	CHECK_EQ_INT(imapd_peek_tag("A12 UID FETCH", 13, tag), 1);
	CHECK_STR(tag, "A12");
	CHECK_EQ_INT(imapd_peek_name("A12 uid fetch", 13, name, sizeof(name)), 1);
	CHECK_STR(name, "FETCH");
}

/* ---- session --------------------------------------------------------------------- */

static void test_greeting_login(void)
{
	struct cl *c = cl_start();
	char *g = cl_until(c, "* OK");
	CHECK_STR(g, "* OK [CAPABILITY " CAPS " AUTH=PLAIN] Arca vault ready.\r\n");
	free(g);
	EXPECT(c, "a", "CAPABILITY", "* CAPABILITY " CAPS " AUTH=PLAIN\r\na OK Capability completed.\r\n");
	EXPECT(c, "b", "SELECT INBOX", "b BAD Log in first.\r\n");
	EXPECT(c, "c", "LOGIN u wrong", "c NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
	EXPECT(c, "d", "LOGIN busy p", "d NO [UNAVAILABLE] Too many failed logins; try again later.\r\n");
	EXPECT(c, "e", "LOGIN u p", "e OK [CAPABILITY " CAPS "] Logged in.\r\n");
	EXPECT(c, "f", "LOGIN u p", "f BAD Already logged in.\r\n");
	EXPECT(c, "g", "ID (\"name\" \"test\")", "* ID (\"name\" \"Arca\")\r\ng OK ID completed.\r\n");
	EXPECT(c, "h", "NAMESPACE", "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\nh OK Namespace completed.\r\n");
	EXPECT(c, "i", "ENABLE CONDSTORE X-FOO", "* ENABLED CONDSTORE\r\ni OK Enabled.\r\n");
	EXPECT(c, "j", "ENABLE CONDSTORE QRESYNC", "* ENABLED QRESYNC\r\nj OK Enabled.\r\n");
	EXPECT(c, "k", "NOOP", "k OK NOOP completed.\r\n");
	EXPECT(c, "l", "LOGOUT", "* BYE Logging out.\r\nl OK Logout completed.\r\n");
	char *log = xstrdup(c->log);
	CHECK_EQ_INT(cl_finish(c), 0);
	CHECK(strstr(log, "login failed user=u\n") != NULL);
	CHECK(strstr(log, "login user=u\n") != NULL);
	CHECK(strstr(log, "logout user=u\n") != NULL);
	free(log);
}

static void test_login_failures(void)
{
	struct cl *c = cl_start();
	free(cl_until(c, "* OK"));
	EXPECT(c, "a", "LOGIN u x", "a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
	EXPECT(c, "b", "LOGIN broken p", "b NO [SERVERBUG] Internal error.\r\n");
	EXPECT(c, "c", "LOGIN u y", "c NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
	char *r = cl_cmd(c, "d", "LOGIN v p");
	CHECK_STR(r, "d NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
	free(r);
	r = cl_until(c, "* BYE");
	CHECK_STR(r, "* BYE Too many failed logins.\r\n");
	free(r);
	CHECK_EQ_INT(cl_finish(c), ARCA_ELIMIT);

	/* no TLS, not loopback: no plaintext login */
	c = cl_start_opts(false, false, true, 0, 0, 0);
	r = cl_until(c, "* OK");
	CHECK_STR(r, "* OK [CAPABILITY " CAPS " STARTTLS LOGINDISABLED] Arca vault ready.\r\n");
	free(r);
	EXPECT(c, "a", "LOGIN u p", "a NO [PRIVACYREQUIRED] Plaintext authentication disallowed "
				     "on non-secure (SSL/TLS) connections.\r\n");
	EXPECT(c, "b", "AUTHENTICATE PLAIN AHUAcA==", "b NO [PRIVACYREQUIRED] Plaintext "
		"authentication disallowed on non-secure (SSL/TLS) connections.\r\n");
	EXPECT(c, "c", "STARTTLS", "c OK Begin TLS negotiation now.\r\n");
	EXPECT(c, "d", "CAPABILITY", "* CAPABILITY " CAPS " AUTH=PLAIN\r\nd OK Capability completed.\r\n");
	CHECK(c->fio.starttls_called);
	EXPECT(c, "e", "STARTTLS", "e BAD TLS is already active.\r\n");
	EXPECT(c, "f", "AUTHENTICATE PLAIN AHUAcA==", "f OK [CAPABILITY " CAPS "] Logged in.\r\n");
	CHECK_EQ_INT(cl_finish(c), 0);

	/* plaintext pipelined after STARTTLS: dropped */
	c = cl_start_opts(false, false, true, 0, 0, 0);
	free(cl_until(c, "* OK"));
	cl_send(c, "a STARTTLS\r\nb LOGIN u p\r\n");
	r = cl_until(c, "a ");
	CHECK_STR(r, "a OK Begin TLS negotiation now.\r\n");
	free(r);
	r = cl_until(c, "b ");
	CHECK_STR(r, "(eof)");
	free(r);
	CHECK(!c->fio.starttls_called);
	CHECK_EQ_INT(cl_finish(c), ARCA_EFORMAT);
}

static void test_authenticate(void)
{
	struct cl *c = cl_start();
	free(cl_until(c, "* OK"));
	/* "\0u\0x": wrong password; "v\0u\0p": another authzid */
	EXPECT(c, "a", "AUTHENTICATE PLAIN AHUAeA==", "a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
	EXPECT(c, "b", "AUTHENTICATE PLAIN dgB1AHA=",
	       "b NO [AUTHORIZATIONFAILED] Logging in as another user is not supported.\r\n");
	EXPECT(c, "c", "AUTHENTICATE CRAM-MD5", "c NO [CANNOT] Unsupported authentication mechanism.\r\n");
	cl_send(c, "d AUTHENTICATE PLAIN\r\n");
	char *r = cl_until(c, "+ ");
	CHECK_STR(r, "+ \r\n");
	free(r);
	cl_send(c, "*\r\n");
	r = cl_until(c, "d ");
	CHECK_STR(r, "d BAD Authentication aborted.\r\n");
	free(r);
	cl_send(c, "e AUTHENTICATE PLAIN\r\n");
	free(cl_until(c, "+ "));
	/* "u\0u\0p": authzid equal to authcid */
	cl_send(c, "dQB1AHA=\r\n");
	r = cl_until(c, "e ");
	CHECK_STR(r, "e OK [CAPABILITY " CAPS "] Logged in.\r\n");
	free(r);
	CHECK_EQ_INT(cl_finish(c), 0);
}

static void test_list(void)
{
	struct cl *c = cl_login();
	EXPECT(c, "a", "LIST \"\" \"\"", "* LIST (\\Noselect) \"/\" \"\"\r\na OK List completed.\r\n");
	EXPECT(c, "b", "LIST \"\" *",
	       "* LIST (\\HasNoChildren) \"/\" INBOX\r\n"
	       "* LIST (\\Noselect \\HasChildren) \"/\" Archive\r\n"
	       "* LIST (\\HasNoChildren \\Archive) \"/\" Archive/2023\r\n"
	       "* LIST (\\HasNoChildren) \"/\" Archive/2024\r\n"
	       "* LIST (\\HasNoChildren \\Drafts) \"/\" Entw&APw-rfe\r\n"
	       "* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n"
	       "* LIST (\\HasNoChildren \\Trash) \"/\" Trash\r\n"
	       "* LIST (\\Noselect \\HasChildren) \"/\" a\r\n"
	       "* LIST (\\Noselect \\HasChildren) \"/\" a/b\r\n"
	       "* LIST (\\HasNoChildren) \"/\" a/b/c\r\n"
	       "b OK List completed.\r\n");
	EXPECT(c, "c", "LIST \"\" %",
	       "* LIST (\\HasNoChildren) \"/\" INBOX\r\n"
	       "* LIST (\\Noselect \\HasChildren) \"/\" Archive\r\n"
	       "* LIST (\\HasNoChildren \\Drafts) \"/\" Entw&APw-rfe\r\n"
	       "* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n"
	       "* LIST (\\HasNoChildren \\Trash) \"/\" Trash\r\n"
	       "* LIST (\\Noselect \\HasChildren) \"/\" a\r\n"
	       "c OK List completed.\r\n");
	EXPECT(c, "d", "LIST Archive/ %",
	       "* LIST (\\HasNoChildren \\Archive) \"/\" Archive/2023\r\n"
	       "* LIST (\\HasNoChildren) \"/\" Archive/2024\r\n"
	       "d OK List completed.\r\n");
	EXPECT(c, "e", "LIST \"\" inbox", "* LIST (\\HasNoChildren) \"/\" INBOX\r\ne OK List completed.\r\n");
	EXPECT(c, "f", "LIST \"\" Entw&APw-*",
	       "* LIST (\\HasNoChildren \\Drafts) \"/\" Entw&APw-rfe\r\nf OK List completed.\r\n");
	EXPECT(c, "g", "LSUB \"\" *",
	       "* LSUB (\\HasNoChildren) \"/\" INBOX\r\n"
	       "* LSUB (\\Noselect \\HasChildren) \"/\" Archive\r\n"
	       "* LSUB (\\HasNoChildren \\Archive) \"/\" Archive/2023\r\n"
	       "* LSUB (\\HasNoChildren \\Drafts) \"/\" Entw&APw-rfe\r\n"
	       "* LSUB (\\HasNoChildren \\Sent) \"/\" Sent\r\n"
	       "* LSUB (\\HasNoChildren \\Trash) \"/\" Trash\r\n"
	       "g OK Lsub completed.\r\n");
	EXPECT(c, "h", "LIST (SPECIAL-USE) \"\" * RETURN (STATUS (MESSAGES UNSEEN UIDVALIDITY))",
	       "* LIST (\\HasNoChildren \\Archive) \"/\" Archive/2023\r\n"
	       "* STATUS Archive/2023 (MESSAGES 2 UIDVALIDITY 1700000003 UNSEEN 0)\r\n"
	       "* LIST (\\HasNoChildren \\Drafts) \"/\" Entw&APw-rfe\r\n"
	       "* STATUS Entw&APw-rfe (MESSAGES 1 UIDVALIDITY 1700000005 UNSEEN 1)\r\n"
	       "* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n"
	       "* STATUS Sent (MESSAGES 1 UIDVALIDITY 1700000002 UNSEEN 0)\r\n"
	       "* LIST (\\HasNoChildren \\Trash) \"/\" Trash\r\n"
	       "* STATUS Trash (MESSAGES 0 UIDVALIDITY 1700000007 UNSEEN 0)\r\n"
	       "h OK List completed.\r\n");
	EXPECT(c, "i", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" a*",
	       "i OK List completed.\r\n");
	EXPECT(c, "j", "LIST (SUBSCRIBED) \"\" (Archive* INBOX) RETURN (CHILDREN)",
	       "* LIST (\\HasNoChildren \\Subscribed) \"/\" INBOX\r\n"
	       "* LIST (\\Noselect \\HasChildren \\Subscribed) \"/\" Archive\r\n"
	       "* LIST (\\HasNoChildren \\Subscribed \\Archive) \"/\" Archive/2023\r\n"
	       "j OK List completed.\r\n");
	EXPECT(c, "k", "LIST \"\" Archive/20%4 RETURN (SUBSCRIBED)",
	       "* LIST (\\HasNoChildren) \"/\" Archive/2024\r\nk OK List completed.\r\n");
	EXPECT(c, "l", "STATUS \"Entw&APw-rfe\" (UIDNEXT MESSAGES HIGHESTMODSEQ RECENT)",
	       "* STATUS Entw&APw-rfe (MESSAGES 1 RECENT 0 UIDNEXT 5 HIGHESTMODSEQ 7)\r\n"
	       "l OK Status completed.\r\n");
	EXPECT(c, "m", "STATUS Archive (MESSAGES)", "m NO [CANNOT] Mailbox isn't selectable.\r\n");
	EXPECT(c, "n", "STATUS Nope (MESSAGES)", "n NO [NONEXISTENT] Mailbox doesn't exist: Nope\r\n");
	EXPECT(c, "o", "STATUS \"Entwürfe\" (MESSAGES)",
	       "o NO [NONEXISTENT] Mailbox doesn't exist: Entw??rfe\r\n");
	CHECK_EQ_INT(cl_finish(c), 0);
}

/* Served as a Maildir++ Dovecot showed it: '.' everywhere, names
 * translated both ways, subscriptions to gone folders in LSUB and LIST
 * (SUBSCRIBED) as Dovecot answers them (compared with Dovecot 2.3.19). */
static void test_list_maildirpp(void)
{
	fixture_separator = '.';
	fixture_gone = true;
	struct cl *c = cl_login();
	fixture_separator = '/';
	fixture_gone = false;
	EXPECT(c, "a", "NAMESPACE", "* NAMESPACE ((\"\" \".\")) NIL NIL\r\na OK Namespace completed.\r\n");
	EXPECT(c, "b", "LIST \"\" \"\"", "* LIST (\\Noselect) \".\" \"\"\r\nb OK List completed.\r\n");
	EXPECT(c, "c", "LIST \"\" *",
	       "* LIST (\\HasNoChildren) \".\" INBOX\r\n"
	       "* LIST (\\Noselect \\HasChildren) \".\" Archive\r\n"
	       "* LIST (\\HasNoChildren \\Archive) \".\" Archive.2023\r\n"
	       "* LIST (\\HasNoChildren) \".\" Archive.2024\r\n"
	       "* LIST (\\HasNoChildren \\Drafts) \".\" Entw&APw-rfe\r\n"
	       "* LIST (\\HasNoChildren \\Sent) \".\" Sent\r\n"
	       "* LIST (\\HasNoChildren \\Trash) \".\" Trash\r\n"
	       "* LIST (\\Noselect \\HasChildren) \".\" a\r\n"
	       "* LIST (\\Noselect \\HasChildren) \".\" a.b\r\n"
	       "* LIST (\\HasNoChildren) \".\" a.b.c\r\n"
	       "c OK List completed.\r\n");
	CHECK(strstr(c->log, "2 folder or subscription names not shown: a level holds the separator '.'") != NULL);
	EXPECT(c, "d", "LIST Archive. %",
	       "* LIST (\\HasNoChildren \\Archive) \".\" Archive.2023\r\n"
	       "* LIST (\\HasNoChildren) \".\" Archive.2024\r\n"
	       "d OK List completed.\r\n");
	EXPECT(c, "e", "LIST \"\" Archive/*", "e OK List completed.\r\n");
	EXPECT(c, "f", "LIST \"\" (inbox a.%.c x*)",
	       "* LIST (\\HasNoChildren) \".\" INBOX\r\n"
	       "* LIST (\\HasNoChildren) \".\" a.b.c\r\n"
	       "f OK List completed.\r\n");
	EXPECT(c, "g", "LSUB \"\" *",
	       "* LSUB (\\HasNoChildren) \".\" INBOX\r\n"
	       "* LSUB (\\Noselect \\HasChildren) \".\" Archive\r\n"
	       "* LSUB (\\HasNoChildren \\Archive) \".\" Archive.2023\r\n"
	       "* LSUB () \".\" Archive.Gone\r\n"
	       "* LSUB (\\HasNoChildren \\Drafts) \".\" Entw&APw-rfe\r\n"
	       "* LSUB () \".\" Old.Gone\r\n"
	       "* LSUB (\\HasNoChildren \\Sent) \".\" Sent\r\n"
	       "* LSUB (\\HasNoChildren \\Trash) \".\" Trash\r\n"
	       "g OK Lsub completed.\r\n");
	EXPECT(c, "h", "LSUB \"\" %",
	       "* LSUB (\\HasNoChildren) \".\" INBOX\r\n"
	       "* LSUB (\\Noselect \\HasChildren) \".\" Archive\r\n"
	       "* LSUB (\\HasNoChildren \\Drafts) \".\" Entw&APw-rfe\r\n"
	       "* LSUB (\\Noselect) \".\" Old\r\n"
	       "* LSUB (\\HasNoChildren \\Sent) \".\" Sent\r\n"
	       "* LSUB (\\HasNoChildren \\Trash) \".\" Trash\r\n"
	       "h OK Lsub completed.\r\n");
	EXPECT(c, "i", "LIST (SUBSCRIBED) \"\" *",
	       "* LIST (\\HasNoChildren \\Subscribed) \".\" INBOX\r\n"
	       "* LIST (\\NonExistent \\HasChildren \\Subscribed) \".\" Archive\r\n"
	       "* LIST (\\HasNoChildren \\Subscribed \\Archive) \".\" Archive.2023\r\n"
	       "* LIST (\\NonExistent \\HasNoChildren \\Subscribed) \".\" Archive.Gone\r\n"
	       "* LIST (\\HasNoChildren \\Subscribed \\Drafts) \".\" Entw&APw-rfe\r\n"
	       "* LIST (\\NonExistent \\HasNoChildren \\Subscribed) \".\" Old.Gone\r\n"
	       "* LIST (\\HasNoChildren \\Subscribed \\Sent) \".\" Sent\r\n"
	       "* LIST (\\HasNoChildren \\Subscribed \\Trash) \".\" Trash\r\n"
	       "i OK List completed.\r\n");
	EXPECT(c, "j", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" O%",
	       "* LIST (\\NonExistent \\HasChildren) \".\" Old (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"
	       "j OK List completed.\r\n");
	EXPECT(c, "k", "LIST \"\" O* RETURN (SUBSCRIBED)", "k OK List completed.\r\n");
	EXPECT(c, "l", "LIST (SUBSCRIBED) \"\" Old.Gone RETURN (STATUS (MESSAGES))",
	       "* LIST (\\NonExistent \\HasNoChildren \\Subscribed) \".\" Old.Gone\r\n"
	       "l OK List completed.\r\n");
	EXPECT(c, "m", "STATUS Archive.2023 (MESSAGES)",
	       "* STATUS Archive.2023 (MESSAGES 2)\r\nm OK Status completed.\r\n");
	EXPECT(c, "n", "STATUS Archive/2023 (MESSAGES)",
	       "n NO [NONEXISTENT] Mailbox doesn't exist: Archive/2023\r\n");
	EXPECT(c, "o", "STATUS x.y (MESSAGES)", "o NO [NONEXISTENT] Mailbox doesn't exist: x.y\r\n");
	EXPECT(c, "p", "EXAMINE Old.Gone", "p NO [NONEXISTENT] Mailbox doesn't exist: Old.Gone\r\n");
	char *r = cl_cmd(c, "q", "EXAMINE inbox");
	CHECK(strstr(r, "q OK [READ-ONLY]") != NULL);
	free(r);
	r = cl_cmd(c, "r", "EXAMINE Archive.2023");
	CHECK(strstr(r, "* OK [UIDVALIDITY 1700000003]") != NULL && strstr(r, "r OK [READ-ONLY]") != NULL);
	free(r);
	CHECK_EQ_INT(cl_finish(c), 0);

	/* LAYOUT=fs: '/', and a '.' inside a level is just a character */
	fixture_gone = true;
	c = cl_login();
	fixture_gone = false;
	EXPECT(c, "a", "NAMESPACE", "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\na OK Namespace completed.\r\n");
	EXPECT(c, "b", "LIST \"\" x*", "* LIST (\\HasNoChildren) \"/\" x.y\r\nb OK List completed.\r\n");
	EXPECT(c, "c", "LSUB \"\" *O*/*",
	       "* LSUB () \"/\" Old/Gone\r\n"
	       "c OK Lsub completed.\r\n");
	EXPECT(c, "d", "LIST (SUBSCRIBED) \"\" x*",
	       "* LIST (\\NonExistent \\HasNoChildren \\Subscribed) \"/\" x.y/z\r\n"
	       "d OK List completed.\r\n");
	EXPECT(c, "e", "STATUS x.y (UIDVALIDITY)",
	       "* STATUS x.y (UIDVALIDITY 1700000009)\r\ne OK Status completed.\r\n");
	CHECK(strstr(c->log, "not shown") == NULL);
	CHECK_EQ_INT(cl_finish(c), 0);
}

#define SELECT_INBOX                                                           \
	"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded Work)\r\n" \
	"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded Work \\*)] " \
	"Flags as the mail server kept them; read-only now.\r\n"               \
	"* 4 EXISTS\r\n"                                                       \
	"* 0 RECENT\r\n"                                                       \
	"* OK [UNSEEN 3] First unseen.\r\n"                                    \
	"* OK [UIDVALIDITY 1700000001] UIDs valid.\r\n"                        \
	"* OK [UIDNEXT 10] Predicted next UID.\r\n"                            \
	"* OK [HIGHESTMODSEQ 20] Highest.\r\n"

static void test_select(void)
{
	struct cl *c = cl_login();
	EXPECT(c, "a", "FETCH 1 FLAGS", "a BAD No mailbox selected.\r\n");
	EXPECT(c, "b", "SELECT inbox", SELECT_INBOX "b OK [READ-ONLY] Select completed.\r\n");
	EXPECT(c, "c", "EXAMINE Archive", "c NO [CANNOT] Mailbox isn't selectable.\r\n");
	EXPECT(c, "d", "FETCH 1 FLAGS", "d BAD No mailbox selected.\r\n");
	EXPECT(c, "e", "EXAMINE \"Archive/2024\"",
	       "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
	       "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] "
	       "Flags as the mail server kept them; read-only now.\r\n"
	       "* 0 EXISTS\r\n* 0 RECENT\r\n"
	       "* OK [UIDVALIDITY 1700000004] UIDs valid.\r\n"
	       "* OK [UIDNEXT 1] Predicted next UID.\r\n"
	       "* OK [HIGHESTMODSEQ 1] Highest.\r\n"
	       "e OK [READ-ONLY] Examine completed.\r\n");
	EXPECT(c, "f", "FETCH 1:* FLAGS", "f BAD Invalid message sequence number.\r\n");
	EXPECT(c, "g", "FETCH * FLAGS", "g OK Fetch completed.\r\n");
	EXPECT(c, "h", "UID FETCH 1:* FLAGS", "h OK Fetch completed.\r\n");
	EXPECT(c, "i", "SEARCH ALL", "* SEARCH\r\ni OK Search completed.\r\n");
	EXPECT(c, "j", "SELECT INBOX (QRESYNC (1700000001 1))", "j BAD QRESYNC isn't enabled.\r\n");
	EXPECT(c, "k", "UNSELECT", "k OK Unselect completed.\r\n");
	EXPECT(c, "l", "CLOSE", "l BAD No mailbox selected.\r\n");
	EXPECT(c, "m", "ENABLE QRESYNC", "* ENABLED QRESYNC\r\nm OK Enabled.\r\n");
	/* known UIDs 1:9, client has modseq 9: 2,4:6,9 vanished; 3 and 7 changed */
	EXPECT(c, "n", "SELECT INBOX (QRESYNC (1700000001 9 1:9))",
	       SELECT_INBOX
	       "* VANISHED (EARLIER) 2,4:6,9\r\n"
	       "* 2 FETCH (UID 3 FLAGS (\\Seen \\Flagged $Forwarded) MODSEQ (12))\r\n"
	       "* 3 FETCH (UID 7 FLAGS (\\Answered $Forwarded Work) MODSEQ (20))\r\n"
	       "n OK [READ-ONLY] Select completed.\r\n");
	/* another UIDVALIDITY: plain SELECT; selecting again closes */
	EXPECT(c, "o", "EXAMINE INBOX (QRESYNC (5 9))",
	       "* OK [CLOSED] Previous mailbox closed.\r\n" SELECT_INBOX
	       "o OK [READ-ONLY] Examine completed.\r\n");
	EXPECT(c, "p", "SELECT INBOX (QRESYNC (1700000001 12))",
	       "* OK [CLOSED] Previous mailbox closed.\r\n" SELECT_INBOX
	       "* VANISHED (EARLIER) 2,4:6,9\r\n"
	       "* 3 FETCH (UID 7 FLAGS (\\Answered $Forwarded Work) MODSEQ (20))\r\n"
	       "p OK [READ-ONLY] Select completed.\r\n");
	EXPECT(c, "q", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 10 VANISHED)",
	       "* VANISHED (EARLIER) 2,4:6\r\n"
	       "* 2 FETCH (UID 3 FLAGS (\\Seen \\Flagged $Forwarded) MODSEQ (12))\r\n"
	       "* 3 FETCH (UID 7 FLAGS (\\Answered $Forwarded Work) MODSEQ (20))\r\n"
	       "q OK Fetch completed.\r\n");
	EXPECT(c, "r", "UID FETCH 2:100 (FLAGS) (CHANGEDSINCE 19 VANISHED)",
	       "* VANISHED (EARLIER) 2,4:6,9\r\n"
	       "* 3 FETCH (UID 7 FLAGS (\\Answered $Forwarded Work) MODSEQ (20))\r\n"
	       "r OK Fetch completed.\r\n");
	CHECK_EQ_INT(cl_finish(c), 0);
}

static void test_fetch(void)
{
	struct cl *c = cl_login();
	free(cl_cmd(c, "s", "EXAMINE INBOX"));
	EXPECT(c, "a", "FETCH 1:2 (UID FLAGS INTERNALDATE RFC822.SIZE)",
	       "* 1 FETCH (UID 1 FLAGS (\\Seen) INTERNALDATE \"02-Jan-2023 10:00:00 +0000\" RFC822.SIZE 154)\r\n"
	       "* 2 FETCH (UID 3 FLAGS (\\Seen \\Flagged $Forwarded) INTERNALDATE \"04-Jan-2023 00:00:00 +0000\" RFC822.SIZE 379)\r\n"
	       "a OK Fetch completed.\r\n");
	EXPECT(c, "b", "UID FETCH 7,1 (FLAGS MODSEQ)",
	       "* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (5))\r\n"
	       "* 3 FETCH (UID 7 FLAGS (\\Answered $Forwarded Work) MODSEQ (20))\r\n"
	       "b OK Fetch completed.\r\n");
	EXPECT(c, "c", "FETCH 1 BODY.PEEK[]",
	       "* 1 FETCH (BODY[] {154}\r\n" "From: Alice <alice@example.test>\r\n"
	       "To: u@example.test\r\nSubject: Hello\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\n"
	       "Message-ID: <1@example.test>\r\n\r\nHello world.\r\n)\r\n"
	       "c OK Fetch completed.\r\n");
	EXPECT(c, "d", "FETCH 1 (BODY[TEXT] RFC822.TEXT BODY[]<6.5> BODY[]<500.5>)",
	       "* 1 FETCH (BODY[TEXT] {14}\r\nHello world.\r\n RFC822.TEXT {14}\r\nHello world.\r\n"
	       " BODY[]<6> {5}\r\nAlice BODY[]<500> \"\")\r\n"
	       "d OK Fetch completed.\r\n");
	EXPECT(c, "e", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (subject \"To\")])",
	       "* 1 FETCH (BODY[HEADER.FIELDS (subject To)] {38}\r\n"
	       "To: u@example.test\r\nSubject: Hello\r\n\r\n)\r\n"
	       "e OK Fetch completed.\r\n");
	EXPECT(c, "f", "FETCH 2 (BODY[1] BODY[2.MIME] BODY[3])",
	       "* 2 FETCH (BODY[1] {9}\r\nPart one. BODY[2.MIME] {77}\r\n"
	       "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	       " BODY[3] \"\")\r\n"
	       "f OK Fetch completed.\r\n");
	char *r = cl_cmd(c, "g", "FETCH 2 (BODYSTRUCTURE ENVELOPE)");
	CHECK(strncmp(r, "* 2 FETCH (BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\")", 60) == 0);
	CHECK(strstr(r, "ENVELOPE (\"Tue, 3 Jan 2023 23:30:00 -0500\" \"Quarterly report\" "
			"((\"Bob\" NIL \"bob\" \"example.test\"))") != NULL);
	CHECK(strstr(r, "\r\ng OK Fetch completed.\r\n") != NULL);
	free(r);
	r = cl_cmd(c, "h", "FETCH 1 ALL");
	CHECK(strncmp(r, "* 1 FETCH (FLAGS (\\Seen) INTERNALDATE \"02-Jan-2023 10:00:00 +0000\" "
			 "RFC822.SIZE 154 ENVELOPE (\"Mon, 2 Jan 2023", 100) == 0);
	free(r);
	/* a big body is streamed: the bytes must still be exact */
	r = cl_cmd(c, "i", "UID FETCH 8 (RFC822.SIZE BODY.PEEK[])");
	char want[128];
	snprintf(want, sizeof(want), "* 4 FETCH (UID 8 RFC822.SIZE %zu BODY[] {%zu}\r\n",
		 strlen(big_msg), strlen(big_msg));
	CHECK(strncmp(r, want, strlen(want)) == 0);
	CHECK(strlen(r) > strlen(want) + strlen(big_msg) &&
	      memcmp(r + strlen(want), big_msg, strlen(big_msg)) == 0);
	CHECK_STR(r + strlen(want) + strlen(big_msg), ")\r\ni OK Fetch completed.\r\n");
	free(r);
	EXPECT(c, "j", "FETCH 1:* (FLAGS) (CHANGEDSINCE 11)",
	       "* 2 FETCH (FLAGS (\\Seen \\Flagged $Forwarded) MODSEQ (12))\r\n"
	       "* 3 FETCH (FLAGS (\\Answered $Forwarded Work) MODSEQ (20))\r\n"
	       "j OK Fetch completed.\r\n");
	EXPECT(c, "k", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",
	       "k BAD VANISHED needs ENABLE QRESYNC.\r\n");
	EXPECT(c, "l", "FETCH 5 FLAGS", "l BAD Invalid message sequence number.\r\n");
	EXPECT(c, "m", "UID FETCH 4:6 FLAGS", "m OK Fetch completed.\r\n");
	EXPECT(c, "n", "UID FETCH 100:* UID", "* 4 FETCH (UID 8)\r\nn OK Fetch completed.\r\n");
	EXPECT(c, "o", "FETCH 4,1:2,1 UID",
	       "* 1 FETCH (UID 1)\r\n* 2 FETCH (UID 3)\r\n* 4 FETCH (UID 8)\r\no OK Fetch completed.\r\n");
	c->v.fail_body = ARCA_EIO;
	EXPECT(c, "p", "FETCH 3 BODY[]", "p NO [SERVERBUG] Internal error reading a message.\r\n");
	c->v.fail_body = 0;
	EXPECT(c, "q", "FETCH 3 BODY[TEXT]",
	       "* 3 FETCH (BODY[TEXT] {44}\r\nSecond line of text has the Word Haystack.\r\n)\r\n"
	       "q OK Fetch completed.\r\n");
	CHECK_EQ_INT(cl_finish(c), 0);
}

static void test_search(void)
{
	struct cl *c = cl_login();
	free(cl_cmd(c, "s", "SELECT INBOX"));
	EXPECT(c, "a", "SEARCH ALL", "* SEARCH 1 2 3 4\r\na OK Search completed.\r\n");
	EXPECT(c, "b", "UID SEARCH UNSEEN", "* SEARCH 7\r\nb OK Search completed.\r\n");
	EXPECT(c, "c", "SEARCH OR FLAGGED DRAFT", "* SEARCH 2 4\r\nc OK Search completed.\r\n");
	EXPECT(c, "d", "SEARCH KEYWORD work", "* SEARCH 3\r\nd OK Search completed.\r\n");
	EXPECT(c, "e", "SEARCH UNKEYWORD $Forwarded", "* SEARCH 1 4\r\ne OK Search completed.\r\n");
	EXPECT(c, "f", "SEARCH FROM BOB", "* SEARCH 2\r\nf OK Search completed.\r\n");
	EXPECT(c, "g", "SEARCH HEADER X-Tag NEEDLE", "* SEARCH 3\r\ng OK Search completed.\r\n");
	EXPECT(c, "h", "SEARCH BODY haystack", "* SEARCH 3\r\nh OK Search completed.\r\n");
	EXPECT(c, "i", "SEARCH BODY needle", "* SEARCH\r\ni OK Search completed.\r\n");
	EXPECT(c, "j", "SEARCH TEXT needle", "* SEARCH 3\r\nj OK Search completed.\r\n");
	EXPECT(c, "k", "SEARCH SINCE 4-Jan-2023 BEFORE 5-Feb-2024", "* SEARCH 2\r\nk OK Search completed.\r\n");
	EXPECT(c, "l", "SEARCH ON 5-Feb-2024", "* SEARCH 3 4\r\nl OK Search completed.\r\n");
	EXPECT(c, "m", "SEARCH SENTON 3-Jan-2023", "* SEARCH 2\r\nm OK Search completed.\r\n");
	EXPECT(c, "n", "SEARCH SENTSINCE 1-Jan-2024", "* SEARCH 3\r\nn OK Search completed.\r\n");
	EXPECT(c, "o", "SEARCH LARGER 300 SMALLER 1000", "* SEARCH 2\r\no OK Search completed.\r\n");
	EXPECT(c, "p", "UID SEARCH UID 2:7 NOT 1", "* SEARCH 3 7\r\np OK Search completed.\r\n");
	EXPECT(c, "q", "SEARCH MODSEQ 10", "* SEARCH 2 3 (MODSEQ 20)\r\nq OK Search completed.\r\n");
	EXPECT(c, "r", "UID SEARCH RETURN (MIN MAX COUNT ALL) SEEN",
	       "* ESEARCH (TAG \"r\") UID MIN 1 MAX 8 COUNT 3 ALL 1,3,8\r\nr OK Search completed.\r\n");
	EXPECT(c, "s", "SEARCH RETURN () 1:3", "* ESEARCH (TAG \"s\") ALL 1:3\r\ns OK Search completed.\r\n");
	EXPECT(c, "t", "SEARCH RETURN (COUNT MIN) NEW", "* ESEARCH (TAG \"t\") COUNT 0\r\nt OK Search completed.\r\n");
	EXPECT(c, "u", "SEARCH CHARSET KOI8-R ALL",
	       "u NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset.\r\n");
	EXPECT(c, "v", "SEARCH CHARSET utf-8 SUBJECT \"\" * OLD", "* SEARCH 4\r\nv OK Search completed.\r\n");
	EXPECT(c, "w", "SEARCH (OR ANSWERED DELETED) (RECENT)", "* SEARCH\r\nw OK Search completed.\r\n");
	EXPECT(c, "x", "SEARCH CC carol NOT BCC x", "* SEARCH 2\r\nx OK Search completed.\r\n");
	CHECK_EQ_INT(cl_finish(c), 0);
}

static void test_writes(void)
{
	struct cl *c = cl_login();
	const char *ro = " NO [READ-ONLY] The vault is read-only while the mail server is rebuilt.\r\n";
	const char *cannot = " NO [CANNOT] The vault is read-only while the mail server is rebuilt.\r\n";
	char want[256];
	EXPECT(c, "a", "STORE 1 +FLAGS (\\Seen)", "a BAD No mailbox selected.\r\n");
	static const char *const auth[] = {
		"CREATE x", "DELETE Trash", "RENAME Trash x", "SUBSCRIBE Trash", "UNSUBSCRIBE Trash",
		"APPEND INBOX (\\Seen) {3+}\r\nabc",
	};
	for (size_t i = 0; i < sizeof(auth) / sizeof(auth[0]); i++) {
		snprintf(want, sizeof(want), "b%s", cannot);
		EXPECT(c, "b", auth[i], want);
	}
	free(cl_cmd(c, "s", "SELECT INBOX"));
	static const char *const sel[] = {
		"STORE 1 +FLAGS (\\Seen)", "UID STORE 1:* FLAGS.SILENT ()", "COPY 1 Trash",
		"UID COPY 1 Trash", "MOVE 1 Trash", "UID MOVE 1:3 Trash", "EXPUNGE", "UID EXPUNGE 1",
	};
	for (size_t i = 0; i < sizeof(sel) / sizeof(sel[0]); i++) {
		snprintf(want, sizeof(want), "c%s", ro);
		EXPECT(c, "c", sel[i], want);
	}
	/* the flags didn't change, nothing got \Seen */
	EXPECT(c, "d", "FETCH 3 (BODY[TEXT] FLAGS)",
	       "* 3 FETCH (BODY[TEXT] {44}\r\nSecond line of text has the Word Haystack.\r\n"
	       " FLAGS (\\Answered $Forwarded Work))\r\nd OK Fetch completed.\r\n");
	EXPECT(c, "e", "CHECK", "e OK Check completed.\r\n");
	EXPECT(c, "f", "CLOSE", "f OK Close completed.\r\n");
	CHECK_EQ_INT(cl_finish(c), 0);
}

/* With a view that keeps flag changes: SELECT is read-write, STORE in all
 * its forms, UNCHANGEDSINCE, implicit \Seen, EXAMINE still read-only. */
static void test_store(void)
{
	next_writable = true;
	struct cl *c = cl_start();
	free(cl_until(c, "* OK"));
	free(cl_cmd(c, "a", "LOGIN u p"));
	/* EXAMINE: read-only as ever */
	char *r = cl_cmd(c, "b", "EXAMINE INBOX");
	CHECK(strstr(r, "b OK [READ-ONLY] Examine completed.") != NULL);
	free(r);
	EXPECT(c, "c", "STORE 1 +FLAGS (\\Flagged)",
	       "c NO [READ-ONLY] The vault is read-only while the mail server is rebuilt.\r\n");
	r = cl_cmd(c, "d", "SELECT INBOX");
	CHECK(strstr(r, "Flags permitted") != NULL);
	CHECK(strstr(r, "d OK [READ-WRITE] Select completed.") != NULL);
	free(r);
	/* +FLAGS: the new flags; MODSEQ once CONDSTORE is on */
	EXPECT(c, "e", "STORE 1 +FLAGS (\\Flagged)",
	       "* 1 FETCH (FLAGS (\\Seen \\Flagged))\r\ne OK Store completed.\r\n");
	EXPECT(c, "f", "UID STORE 3 -FLAGS.SILENT (\\Seen)", "f OK Store completed.\r\n");
	EXPECT(c, "g", "FETCH 2 (UID FLAGS MODSEQ)",
	       "* 2 FETCH (UID 3 FLAGS (\\Flagged $Forwarded) MODSEQ (22))\r\ng OK Fetch completed.\r\n");
	/* a new keyword: announced, then stored */
	EXPECT(c, "h", "UID STORE 7 FLAGS (Later \\Answered)",
	       "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded Work Later)\r\n"
	       "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded Work Later \\*)] Flags permitted.\r\n"
	       "* 3 FETCH (UID 7 FLAGS (\\Answered Later) MODSEQ (23))\r\nh OK Store completed.\r\n");
	/* UNCHANGEDSINCE: 1 changed at 21, so it is left alone */
	EXPECT(c, "i", "STORE 1,4 (UNCHANGEDSINCE 20) +FLAGS.SILENT (\\Deleted)",
	       "* 4 FETCH (MODSEQ (24))\r\ni OK [MODIFIED 1] Conditional STORE failed.\r\n");
	EXPECT(c, "j", "UID STORE 1 (UNCHANGEDSINCE 20) +FLAGS (\\Deleted)",
	       "j OK [MODIFIED 1] Conditional STORE failed.\r\n");
	/* nothing to change: no new MODSEQ */
	EXPECT(c, "k", "STORE 1 +FLAGS (\\Seen)",
	       "* 1 FETCH (FLAGS (\\Seen \\Flagged) MODSEQ (21))\r\nk OK Store completed.\r\n");
	/* BODY[] sets \Seen and says so; BODY.PEEK doesn't */
	EXPECT(c, "l", "UID FETCH 3 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
	       "* 2 FETCH (UID 3 BODY[HEADER.FIELDS (SUBJECT)] {29}\r\nSubject: Quarterly report\r\n\r\n)\r\n"
	       "l OK Fetch completed.\r\n");
	EXPECT(c, "m", "UID FETCH 3 (BODY[HEADER.FIELDS (SUBJECT)])",
	       "* 2 FETCH (UID 3 BODY[HEADER.FIELDS (SUBJECT)] {29}\r\nSubject: Quarterly report\r\n\r\n"
	       " FLAGS (\\Seen \\Flagged $Forwarded) MODSEQ (25))\r\nm OK Fetch completed.\r\n");
	/* removing a keyword the folder lacks adds none */
	EXPECT(c, "m2", "UID STORE 3 -FLAGS.SILENT (nothere)", "m2 OK Store completed.\r\n");
	/* CHANGEDSINCE: a message it leaves out is not marked \Seen either */
	EXPECT(c, "m3", "UID STORE 8 -FLAGS.SILENT (\\Seen)", "* 4 FETCH (UID 8 MODSEQ (26))\r\nm3 OK Store completed.\r\n");
	EXPECT(c, "m4", "UID FETCH 8 (BODY[HEADER.FIELDS (X)]) (CHANGEDSINCE 30)", "m4 OK Fetch completed.\r\n");
	EXPECT(c, "m5", "UID FETCH 8 (FLAGS)", "* 4 FETCH (UID 8 FLAGS (\\Deleted \\Draft))\r\nm5 OK Fetch completed.\r\n");
	EXPECT(c, "m6", "UID STORE 8 +FLAGS.SILENT (\\Seen)", "* 4 FETCH (UID 8 MODSEQ (27))\r\nm6 OK Store completed.\r\n");
	/* bad STOREs */
	EXPECT(c, "n", "STORE 9 +FLAGS (\\Seen)", "n BAD Invalid message sequence number.\r\n");
	EXPECT(c, "o", "STORE 1 +FLAGS (\\Recent)", "o BAD Unknown system flag.\r\n");
	EXPECT(c, "p", "STORE 1 FLAGZ (\\Seen)", "p BAD Expected FLAGS, +FLAGS or -FLAGS.\r\n");
	EXPECT(c, "q", "UID STORE 1000 +FLAGS (\\Seen)", "q OK Store completed.\r\n");
	/* writes other than flags: still refused */
	EXPECT(c, "r", "EXPUNGE",
	       "r NO [CANNOT] Messages can't be copied, moved, expunged or added while the mail server is rebuilt (flag changes are kept).\r\n");
	/* the view fails: said, nothing changed in the session */
	c->v.fail_store = ARCA_EIO;
	EXPECT(c, "s", "STORE 2 +FLAGS (\\Draft)", "s NO [SERVERBUG] The flag change could not be kept.\r\n");
	c->v.fail_store = ARCA_ENOSPC;
	EXPECT(c, "s2", "STORE 2 +FLAGS (\\Draft)", "s2 NO [OVERQUOTA] No room is left to keep flag changes.\r\n");
	c->v.fail_store = ARCA_ELIMIT;
	EXPECT(c, "t", "STORE 2 +FLAGS (x1)", "t NO [LIMIT] Too many keywords in this mailbox.\r\n");
	c->v.fail_store = 0;
	EXPECT(c, "u", "FETCH 2 FLAGS", "* 2 FETCH (FLAGS (\\Seen \\Flagged $Forwarded))\r\nu OK Fetch completed.\r\n");
	/* another session's change (made in the view behind this one's
	 * back): shown by NOOP, once; this session's own are not shown again */
	EXPECT(c, "u2", "NOOP", "u2 OK NOOP completed.\r\n");
	c->v.d[0].m[2].flags = VV_FLAGGED;       /* UID 7 */
	c->v.d[0].m[2].modseq = 40;
	c->v.f[0].highestmodseq = 40;
	EXPECT(c, "u3", "NOOP", "* 3 FETCH (UID 7 FLAGS (\\Flagged Later) MODSEQ (40))\r\nu3 OK NOOP completed.\r\n");
	EXPECT(c, "u4", "CHECK", "u4 OK Check completed.\r\n");
	/* and by IDLE, at its start */
	c->v.d[0].m[0].flags = 0;                /* UID 1 */
	c->v.d[0].m[0].modseq = 41;
	cl_send(c, "u5 IDLE\r\n");
	char *idle = cl_until(c, "* 1 FETCH");
	CHECK(strstr(idle, "+ idling\r\n* 1 FETCH (UID 1 FLAGS () MODSEQ (41))") != NULL);
	free(idle);
	cl_send(c, "DONE\r\n");
	idle = cl_until(c, "u5 ");
	CHECK_STR(idle, "u5 OK Idle completed.\r\n");
	free(idle);
	/* a new SELECT sees what was kept */
	free(cl_cmd(c, "v", "SELECT INBOX"));
	EXPECT(c, "w", "FETCH 1:4 (FLAGS)",
	       "* 1 FETCH (FLAGS ())\r\n* 2 FETCH (FLAGS (\\Seen \\Flagged $Forwarded))\r\n"
	       "* 3 FETCH (FLAGS (\\Flagged Later))\r\n* 4 FETCH (FLAGS (\\Seen \\Deleted \\Draft))\r\n"
	       "w OK Fetch completed.\r\n");
	/* an EXAMINEd folder is told of other sessions' changes too */
	free(cl_cmd(c, "x", "EXAMINE INBOX"));
	c->v.d[0].m[1].flags = 0;                /* UID 3 */
	c->v.d[0].m[1].modseq = 50;
	EXPECT(c, "y", "NOOP", "* 2 FETCH (UID 3 FLAGS ($Forwarded) MODSEQ (50))\r\ny OK NOOP completed.\r\n");
	/* a look that fails for want of memory is tried again at the next */
	c->v.fail_changes = ARCA_ENOMEM;
	c->v.d[0].m[1].flags = VV_SEEN;
	c->v.d[0].m[1].modseq = 51;
	EXPECT(c, "y2", "NOOP", "y2 OK NOOP completed.\r\n");
	c->v.fail_changes = 0;
	EXPECT(c, "y3", "NOOP", "* 2 FETCH (UID 3 FLAGS (\\Seen $Forwarded) MODSEQ (51))\r\ny3 OK NOOP completed.\r\n");
	/* a channel gone: no more looks for this selection */
	c->v.fail_changes = ARCA_EIO;
	EXPECT(c, "y4", "NOOP", "y4 OK NOOP completed.\r\n");
	c->v.fail_changes = 0;
	c->v.d[0].m[1].modseq = 52;
	EXPECT(c, "y5", "NOOP", "y5 OK NOOP completed.\r\n");
	CHECK_EQ_INT(cl_finish(c), 0);
}

static void test_literals(void)
{
	struct cl *c = cl_start();
	free(cl_until(c, "* OK"));
	cl_send(c, "a LOGIN {1}\r\n");
	char *r = cl_until(c, "+ ");
	CHECK_STR(r, "+ Ready for literal data.\r\n");
	free(r);
	cl_send(c, "u {1+}\r\np\r\n");
	r = cl_until(c, "a ");
	CHECK_STR(r, "a OK [CAPABILITY " CAPS "] Logged in.\r\n");
	free(r);
	/* too large: refused before the client sends it */
	EXPECT(c, "b", "SEARCH TEXT {70000}", "b NO [TOOBIG] Literal too large.\r\n");
	/* too large, non-synchronizing: its bytes are skipped */
	size_t n = 70000;
	char *big = malloc(n + 64);
	REQUIRE(big != NULL);
	int h = snprintf(big, 64, "c SEARCH TEXT {%zu+}\r\n", n);
	memset(big + h, 'x', n);
	memcpy(big + h + n, " ALL\r\n", 7);
	cl_send(c, big);
	r = cl_until(c, "c ");
	CHECK_STR(r, "c NO [TOOBIG] Literal too large.\r\n");
	free(r);
	EXPECT(c, "d", "NOOP", "d OK NOOP completed.\r\n");
	/* a line over the limit */
	free(big);
	big = malloc(IMAPD_LINE_MAX + 64);
	REQUIRE(big != NULL);
	h = snprintf(big, 64, "e SEARCH TEXT ");
	memset(big + h, 'y', IMAPD_LINE_MAX);
	memcpy(big + h + IMAPD_LINE_MAX, "\r\n", 3);
	cl_send(c, big);
	free(big);
	r = cl_until(c, "e ");
	CHECK_STR(r, "e BAD Command line too long.\r\n");
	free(r);
	EXPECT(c, "f", "APPEND INBOX {100000}",
	       "f NO [CANNOT] The vault is read-only while the mail server is rebuilt.\r\n");
	/* an empty line is ignored, a bad tag answered untagged */
	cl_send(c, "\r\n");
	EXPECT(c, "g", "NOOP", "g OK NOOP completed.\r\n");
	cl_send(c, "+x NOOP\r\n");
	r = cl_until(c, "* BAD");
	CHECK_STR(r, "* BAD Invalid tag.\r\n");
	free(r);
	/* a marker too long to be a size: refused; non-synchronizing, the
	 * command's end can't be found, so BYE */
	EXPECT(c, "h", "LOGIN {99999999999999999999}", "h NO [TOOBIG] Literal too large.\r\n");
	cl_send(c, "i LOGIN {99999999999999999999+}\r\nx y\r\n");
	r = cl_until(c, "* BYE");
	CHECK_STR(r, "i NO [TOOBIG] Literal too large.\r\n* BYE Literal too large.\r\n");
	free(r);
	CHECK_EQ_INT(cl_finish(c), ARCA_ELIMIT);
}

static void test_max_bad(void)
{
	struct cl *c = cl_login();
	for (int i = 0; i < 19; i++)
		EXPECT(c, "x", "FROB", "x BAD Unknown command.\r\n");
	char *r = cl_cmd(c, "y", "FROB");
	CHECK_STR(r, "y BAD Unknown command.\r\n");
	free(r);
	r = cl_until(c, "* BYE");
	CHECK_STR(r, "* BYE Too many invalid commands.\r\n");
	free(r);
	CHECK_EQ_INT(cl_finish(c), ARCA_ELIMIT);
}

static void test_timeouts(void)
{
	struct cl *c = cl_start_opts(true, false, false, 0, 300, 5000);
	free(cl_until(c, "* OK"));
	EXPECT(c, "a", "NOOP", "a OK NOOP completed.\r\n");
	char *r = cl_until(c, "* BYE");
	CHECK_STR(r, "* BYE Disconnected for inactivity.\r\n");
	free(r);
	CHECK_EQ_INT(cl_finish(c), ARCA_ELIMIT);

	/* half a command counts as nothing */
	c = cl_start_opts(true, false, false, 0, 60000, 300);
	free(cl_until(c, "* OK"));
	free(cl_cmd(c, "L", "LOGIN u p"));
	cl_send(c, "a NO");
	r = cl_until(c, "* BYE");
	CHECK_STR(r, "* BYE Disconnected for inactivity.\r\n");
	free(r);
	CHECK_EQ_INT(cl_finish(c), ARCA_ELIMIT);

	/* before login, a literal fed a byte at a time doesn't stretch the
	 * login timeout (600 ms from the connection, not per byte): BYE
	 * comes while the literal is still being sent */
	c = cl_start_opts(true, false, false, 0, 600, 60000);
	free(cl_until(c, "* OK"));
	cl_send(c, "a LOGIN {100}\r\n");
	free(cl_until(c, "+ "));
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 15; i++) {
		(void)!send(c->fd, "x", 1, MSG_NOSIGNAL);   /* fails once the session is gone */
		usleep(150000);
	}
	r = cl_until(c, "* BYE");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK_STR(r, "* BYE Disconnected for inactivity.\r\n");
	free(r);
	CHECK_EQ_INT(cl_finish(c), ARCA_ELIMIT);
	/* and not long after the deadline (the bytes took 2.25 s) */
	CHECK((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 4000);

	/* nor does a line trickled in without end */
	c = cl_start_opts(true, false, false, 0, 600, 60000);
	free(cl_until(c, "* OK"));
	for (int i = 0; i < 15; i++) {
		(void)!send(c->fd, "y", 1, MSG_NOSIGNAL);
		usleep(150000);
	}
	r = cl_until(c, "* BYE");
	CHECK_STR(r, "* BYE Disconnected for inactivity.\r\n");
	free(r);
	CHECK_EQ_INT(cl_finish(c), ARCA_ELIMIT);
}

static void test_idle(void)
{
	struct cl *c = cl_login();
	cl_send(c, "a IDLE\r\n");
	char *r = cl_until(c, "+ ");
	CHECK_STR(r, "+ idling\r\n");
	free(r);
	cl_send(c, "done\r\n");
	r = cl_until(c, "a ");
	CHECK_STR(r, "a OK Idle completed.\r\n");
	free(r);
	EXPECT(c, "b", "IDLE\r\nnope", "+ idling\r\nb BAD Expected DONE.\r\n");
	CHECK_EQ_INT(cl_finish(c), 0);

	/* 30 minutes of silence in a scripted io: 14 keepalives (every 2
	 * minutes), then BYE */
	int rc;
	char *out = run_mem("a LOGIN u p\r\nb IDLE\r\n", &rc, false);
	CHECK(strstr(out, "b OK") == NULL);
	CHECK_EQ_INT(count(out, "* OK Still here\r\n"), 14);
	CHECK(strstr(out, "+ idling\r\n* OK Still here\r\n") != NULL);
	size_t ol = strlen(out);
	const char *tail = "* OK Still here\r\n* BYE Disconnected for inactivity.\r\n";
	CHECK(ol > strlen(tail) && strcmp(out + ol - strlen(tail), tail) == 0);
	CHECK_EQ_INT(rc, ARCA_ELIMIT);
	free(out);
	/* end of input: the session ends quietly */
	out = run_mem("a LOGIN u p\r\nb LIST \"\" Sent\r\n", &rc, true);
	CHECK(strstr(out, "\r\nb OK List completed.\r\n") != NULL);
	CHECK_EQ_INT(rc, 0);
	free(out);
}

static void test_bulk_speed(void)
{
	size_t n = 100000;
	struct cl *c = cl_start_opts(true, false, false, n, 0, 0);
	free(cl_until(c, "* OK"));
	free(cl_cmd(c, "L", "LOGIN u p"));
	char *r = cl_cmd(c, "s", "SELECT Bulk");
	CHECK(strstr(r, "* 100000 EXISTS\r\n") != NULL);
	free(r);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = cl_cmd(c, "a", "FETCH 1:* (UID FLAGS)");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double sec = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	CHECK_EQ_INT(count(r, " FETCH (UID "), n);
	CHECK(strstr(r, "* 99999 FETCH (UID 199998 FLAGS (\\Seen odd))\r\n") != NULL);
	CHECK(strstr(r, "* 100000 FETCH (UID 200000 FLAGS ())\r\n") != NULL);
	fprintf(stderr, "  FETCH 1:* (UID FLAGS) over %zu messages: %.3f s, %zu bytes\n", n, sec,
		strlen(r));
	CHECK(sec < 5.0);
	free(r);
	r = cl_cmd(c, "b", "UID SEARCH RETURN (COUNT) UID 100001:* KEYWORD odd");
	CHECK_STR(r, "* ESEARCH (TAG \"b\") UID COUNT 25000\r\nb OK Search completed.\r\n");
	free(r);
	CHECK_EQ_INT(cl_finish(c), 0);
}

/* ---- --serve PORT ------------------------------------------------------------------- */

static void serve_log(void *ctx, const char *line)
{
	(void)ctx;
	fprintf(stderr, "test_imapd[%d]: %s\n", (int)getpid(), line);
}

static int serve(int port)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(ls, 16) != 0) {
		perror("test_imapd --serve: bind/listen");
		return 1;
	}
	signal(SIGCHLD, SIG_IGN);
	fprintf(stderr, "test_imapd: serving user u, password p on 127.0.0.1:%d\n", port);
	for (;;) {
		int fd = accept(ls, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			perror("accept");
			return 1;
		}
		pid_t pid = fork();
		if (pid == 0) {
			close(ls);
			struct fdio fio = { .fd = fd };
			struct imapd_io io = { .read = fd_read, .write = fd_write, .wait = fd_wait,
					       .loopback = true, .ctx = &fio };
			struct mview v;
			fixture(&v, 500);
			struct imapd_session_opts o = { .greeting_name = "Arca vault (test fixture)",
							.log = serve_log };
			int rc = imapd_session_run(&io, &mv_ops, &v, &o);
			fprintf(stderr, "test_imapd[%d]: session ended: %s\n", (int)getpid(),
				rc ? arca_strerror(rc) : "ok");
			mv_free(&v);
			free(big_msg);
			_exit(rc ? 1 : 0);
		}
		close(fd);
	}
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--serve") == 0)
		return serve(atoi(argv[2]));
	signal(SIGPIPE, SIG_IGN);
	RUN(test_parse_good);
	RUN(test_parse_bad);
	RUN(test_parse_values);
	RUN(test_greeting_login);
	RUN(test_login_failures);
	RUN(test_authenticate);
	RUN(test_list);
	RUN(test_list_maildirpp);
	RUN(test_select);
	RUN(test_fetch);
	RUN(test_search);
	RUN(test_writes);
	RUN(test_store);
	RUN(test_literals);
	RUN(test_max_bad);
	RUN(test_timeouts);
	RUN(test_idle);
	RUN(test_bulk_speed);
	free(big_msg);
	HARNESS_EXIT();
}
