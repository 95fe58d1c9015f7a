/*
 * listener.c - arcad's network-facing process: speaks LMTP (RFC 2033) to
 * the mail server and hands each message to the store over the socketpair.
 *
 * It holds no key and no repository handle (it is forked before the store
 * opens them), runs as an unprivileged user in an empty chroot with
 * no_new_privs and a seccomp allow-list, and can do nothing but talk: the
 * worst a compromised listener can do is hand the store more messages, which
 * the store checks again and bounds with its quotas.
 *
 * One thread, one poll loop.  A session waiting for the store's verdict
 * reads nothing more (pipelined commands wait in the kernel), so memory per
 * session is bounded by the read buffer and the message being received.
 */
#include "arcad.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "ipc.h"
#include "journal.h"
#include "lmtp.h"
#include "sandbox.h"
#include "banned.h"

#define READ_CHUNK (64u << 10)
#define OUT_MAX (256u << 10)

enum sstate {
	S_READY,        /* between transactions (after LHLO or before) */
	S_DATA,         /* receiving DATA */
	S_BDAT,         /* receiving a BDAT chunk */
	S_WAIT,         /* message handed to the store, waiting for its verdict */
	S_CLOSING,      /* flush out, then close */
};

/* TLS on a session: none yet, handshake running, established. */
enum tls_state { TLS_NONE, TLS_HANDSHAKE, TLS_ON };

struct session {
	int fd;
	char peer[INET6_ADDRSTRLEN + 8];
	char ip[INET6_ADDRSTRLEN];
	enum sstate state;
	struct abuf in, out;
	struct lmtp_lines lines;
	bool lhlo;
	char helo[LMTP_CMD_MAX + 1];
	bool have_mail;
	char mail_from[LMTP_ADDR_MAX + 1];
	uint8_t flags;
	bool smtputf8;
	char **rcpts;
	size_t nrcpt;
	struct lmtp_data data;
	struct lmtp_bdat bdat;
	bool bdat_mode;
	struct abuf body;
	uint64_t txn;
	time_t last;
	SSL *ssl;
	enum tls_state tls;
	bool tls_want_write;     /* the last TLS call wants the socket writable */
};

/* Per-client-address message rate (token bucket) and session count. */
struct client {
	char ip[INET6_ADDRSTRLEN];
	double tokens;
	double stamp;
	unsigned sessions;
	bool warned;
};

struct cidr {
	int family;
	uint8_t addr[16];
	unsigned bits;
};

struct listener {
	const struct arcad_config *c;
	int ipc;
	struct ipc_reader rd;
	struct abuf strings;
	struct session **ss;
	size_t nss;
	struct client clients[1024];
	struct cidr allow[64];
	size_t nallow;
	bool accepting;
	char why[IPC_TEXT_MAX];
	uint64_t next_txn;
	const char *hostname;
	SSL_CTX *tls;            /* NULL: no STARTTLS offered */
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void send_event(struct listener *l, bool alarm, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void send_event(struct listener *l, bool alarm, const char *fmt, ...)
{
	struct ipc_event ev = { .alarm = alarm };
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ev.text, sizeof(ev.text), fmt, ap);
	va_end(ap);
	for (char *p = ev.text; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	struct abuf b = ABUF_INIT;
	if (ipc_event_encode(&ev, &b) == 0)
		(void)ipc_write_all(l->ipc, b.data, b.len);
	abuf_release(&b);
}

/* ---- allow-list ---- */

static int parse_allow(struct listener *l, const char *spec)
{
	char buf[2048];
	snprintf(buf, sizeof(buf), "%s", spec);
	char *save = NULL;
	for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
		if (l->nallow == sizeof(l->allow) / sizeof(l->allow[0]))
			return -1;
		struct cidr *c = &l->allow[l->nallow];
		char *slash = strchr(t, '/');
		if (slash)
			*slash = '\0';
		if (inet_pton(AF_INET, t, c->addr) == 1) {
			c->family = AF_INET;
			c->bits = 32;
		} else if (inet_pton(AF_INET6, t, c->addr) == 1) {
			c->family = AF_INET6;
			c->bits = 128;
		} else {
			return -1;
		}
		if (slash) {
			char *end;
			unsigned long b = strtoul(slash + 1, &end, 10);
			if (*end || b > c->bits)
				return -1;
			c->bits = (unsigned)b;
		}
		l->nallow++;
	}
	return 0;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

static bool allowed(const struct listener *l, const struct sockaddr_storage *sa)
{
	if (l->nallow == 0 || sa->ss_family == AF_UNIX)
		return true;
	uint8_t a[16];
	int fam = sa->ss_family;
	if (fam == AF_INET) {
		memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			fam = AF_INET;
			memcpy(a, a6->s6_addr + 12, 4);
		} else {
			memcpy(a, a6->s6_addr, 16);
		}
	}
	for (size_t i = 0; i < l->nallow; i++)
		if (l->allow[i].family == fam && prefix_match(a, l->allow[i].addr, l->allow[i].bits))
			return true;
	return false;
}

/* ---- clients ---- */

static struct client *client_get(struct listener *l, const char *ip)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *p = ip; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	size_t n = sizeof(l->clients) / sizeof(l->clients[0]);
	struct client *c = &l->clients[h % n];
	if (strcmp(c->ip, ip) != 0) {
		if (c->sessions > 0) {
			/* slot held by a live client: share it (limits get
			 * stricter, never looser) */
			return c;
		}
		memset(c, 0, sizeof(*c));
		snprintf(c->ip, sizeof(c->ip), "%s", ip);
		c->tokens = l->c->rate_per_client;
		c->stamp = now_s();
	}
	return c;
}

/* One message from this client: false when over its rate. */
static bool client_take(struct listener *l, struct client *c)
{
	if (l->c->rate_per_client == 0)
		return true;
	double t = now_s();
	double rate = l->c->rate_per_client / 60.0;
	c->tokens += (t - c->stamp) * rate;
	if (c->tokens > l->c->rate_per_client)
		c->tokens = l->c->rate_per_client;
	c->stamp = t;
	if (c->tokens < 1.0)
		return false;
	c->tokens -= 1.0;
	return true;
}

/* ---- sessions ---- */

static void reply(struct session *s, const char *line)
{
	if (s->out.len > OUT_MAX) {
		s->state = S_CLOSING;   /* the client does not read its replies */
		return;
	}
	abuf_add(&s->out, line, strlen(line));
	abuf_add(&s->out, "\r\n", 2);
}

static void txn_reset(struct session *s)
{
	for (size_t i = 0; i < s->nrcpt; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpt = 0;
	s->have_mail = false;
	s->mail_from[0] = '\0';
	s->flags = 0;
	s->smtputf8 = false;
	s->bdat_mode = false;
	abuf_release(&s->body);
}

static void session_free(struct listener *l, struct session *s)
{
	struct client *c = client_get(l, s->ip);
	if (c->sessions > 0)
		c->sessions--;
	if (s->ssl != NULL)
		SSL_free(s->ssl);
	close(s->fd);
	txn_reset(s);
	abuf_release(&s->in);
	abuf_release(&s->out);
	free(s);
}

/* The message is complete: reply per recipient now, or hand it over. */
static void message_done(struct listener *l, struct session *s, const char *bad)
{
	if (bad != NULL) {
		for (size_t i = 0; i < s->nrcpt; i++)
			reply(s, bad);
		txn_reset(s);
		s->state = S_READY;
		return;
	}
	struct ipc_deliver d = {
		.txn = ++l->next_txn, .time_ns = wall_ns(), .client = s->peer,
		.helo = s->helo, .mail_from = s->mail_from, .flags = s->flags,
		.nrcpt = (uint16_t)s->nrcpt, .body = s->body.data ? s->body.data : (const uint8_t *)"",
		.body_len = s->body.len,
	};
	for (size_t i = 0; i < s->nrcpt; i++)
		d.rcpts[i] = s->rcpts[i];
	struct abuf f = ABUF_INIT;
	if (ipc_deliver_encode(&d, &f) != 0 || ipc_write_all(l->ipc, f.data, f.len) != 0) {
		abuf_release(&f);
		for (size_t i = 0; i < s->nrcpt; i++)
			reply(s, lmtp_reply_for(LMTP_PE_LOCAL_ERROR));
		txn_reset(s);
		s->state = S_READY;
		return;
	}
	abuf_release(&f);
	abuf_release(&s->body);
	s->txn = d.txn;
	s->state = S_WAIT;
}

/* A refused recipient: logged, at most 20 lines a minute (a client trying
 * addresses must not flood the log), then a count of those not logged. */
static void refused_rcpt(const struct session *s, const char *why)
{
	static double window;
	static unsigned logged, dropped;
	double t = now_s();
	if (t - window > 60.0) {
		if (dropped)
			arcad_log(LOG_WARNING, "%u more refused recipients not logged", dropped);
		window = t;
		logged = dropped = 0;
	}
	if (logged++ < 20)
		arcad_log(LOG_WARNING, "refused recipient from %s (not a journal address, the copy is lost unless the mail server keeps it): %s",
			  s->peer, why);
	else
		dropped++;
}

static void do_command(struct listener *l, struct session *s, const char *line, size_t len)
{
	static struct lmtp_cmd cmd;
	struct arca_err e = { 0 };
	if (lmtp_parse_command(line, len, &cmd, &e) != 0) {
		reply(s, cmd.reply);
		return;
	}
	switch (cmd.verb) {
	case LMTP_LHLO: {
		txn_reset(s);
		s->lhlo = true;
		snprintf(s->helo, sizeof(s->helo), "%s", cmd.arg);
		char size[96];
		snprintf(size, sizeof(size), "250-SIZE %llu", (unsigned long long)l->c->max_message_size);
		char first[300];
		snprintf(first, sizeof(first), "250-%s", l->hostname);
		reply(s, first);
		reply(s, "250-PIPELINING");
		reply(s, "250-ENHANCEDSTATUSCODES");
		reply(s, "250-8BITMIME");
		reply(s, "250-SMTPUTF8");
		reply(s, "250-CHUNKING");
		if (l->tls != NULL && s->tls == TLS_NONE)
			reply(s, "250-STARTTLS");
		reply(s, size);
		reply(s, "250 BINARYMIME");
		return;
	}
	case LMTP_MAIL: {
		if (!s->lhlo) {
			reply(s, "503 5.5.1 Send LHLO first");
			return;
		}
		if (s->have_mail) {
			reply(s, "503 5.5.1 Nested MAIL command");
			return;
		}
		if (l->c->tls_required && s->tls != TLS_ON) {
			reply(s, "530 5.7.0 Must issue a STARTTLS command first");
			return;
		}
		if (!l->accepting) {
			reply(s, l->why);
			return;
		}
		if (cmd.has_size && cmd.size > l->c->max_message_size) {
			reply(s, lmtp_reply_for(LMTP_PE_MSG_TOO_BIG));
			return;
		}
		struct client *c = client_get(l, s->ip);
		if (!client_take(l, c)) {
			reply(s, "452 4.7.0 Too much mail from this client, slow down");
			if (!c->warned) {
				c->warned = true;
				send_event(l, true, "client %s exceeds %u messages per minute: possible flood",
					   s->ip, l->c->rate_per_client);
			}
			return;
		}
		c->warned = false;
		s->have_mail = true;
		snprintf(s->mail_from, sizeof(s->mail_from), "%s", cmd.path.addr);
		s->smtputf8 = cmd.smtputf8;
		s->flags = (uint8_t)((cmd.smtputf8 ? JOURNAL_F_SMTPUTF8 : 0) |
				     (cmd.body == LMTP_BODY_8BITMIME ? JOURNAL_F_8BITMIME : 0) |
				     (cmd.body == LMTP_BODY_BINARYMIME ? JOURNAL_F_BINARYMIME : 0));
		reply(s, "250 2.1.0 Ok");
		return;
	}
	case LMTP_RCPT: {
		if (!s->have_mail) {
			reply(s, "503 5.5.1 Need MAIL before RCPT");
			return;
		}
		if (cmd.utf8 && !s->smtputf8) {
			reply(s, lmtp_reply_for(LMTP_PE_NEED_SMTPUTF8));
			return;
		}
		if (s->nrcpt >= l->c->max_recipients) {
			reply(s, "452 4.5.3 Too many recipients");
			return;
		}
		if (!l->accepting) {
			reply(s, l->why);
			return;
		}
		char account[JOURNAL_REC_ACCOUNT_MAX + 1];
		enum journal_dir dir;
		if (journal_addr_map(cmd.path.addr, l->c->journal_domain, account, sizeof(account),
				     &dir, &e) != 0) {
			/* Postfix sends journal copies with NOTIFY=NEVER: a refused
			 * copy bounces to nobody, so say it here (rate-limited) */
			refused_rcpt(s, e.msg);
			reply(s, lmtp_reply_for(LMTP_PE_NOT_JOURNAL));
			return;
		}
		char **nr = realloc(s->rcpts, (s->nrcpt + 1) * sizeof(*nr));
		if (nr == NULL) {
			reply(s, lmtp_reply_for(LMTP_PE_LOCAL_ERROR));
			return;
		}
		s->rcpts = nr;
		s->rcpts[s->nrcpt] = strdup(cmd.path.addr);
		if (s->rcpts[s->nrcpt] == NULL) {
			reply(s, lmtp_reply_for(LMTP_PE_LOCAL_ERROR));
			return;
		}
		s->nrcpt++;
		reply(s, "250 2.1.5 Ok");
		return;
	}
	case LMTP_DATA:
		if (s->flags & JOURNAL_F_BINARYMIME) {
			/* RFC 3030 3: BINARYMIME content comes only with BDAT */
			reply(s, "503 5.5.1 BODY=BINARYMIME requires BDAT");
			return;
		}
		if (s->bdat_mode) {
			reply(s, "503 5.5.1 DATA after BDAT");
			return;
		}
		if (!s->have_mail || s->nrcpt == 0) {
			reply(s, s->have_mail ? "554 5.5.1 No valid recipients" : "503 5.5.1 Need MAIL first");
			return;
		}
		lmtp_data_init(&s->data, l->c->max_message_size);
		abuf_reset(&s->body);
		reply(s, "354 End data with <CR><LF>.<CR><LF>");
		s->state = S_DATA;
		return;
	case LMTP_BDAT:
		if (!s->have_mail || s->nrcpt == 0) {
			/* the chunk must still be read to stay in sync: read and
			 * drop it, then answer */
			lmtp_bdat_init(&s->bdat, 0);
			s->bdat_mode = false;
		} else if (!s->bdat_mode) {
			lmtp_bdat_init(&s->bdat, l->c->max_message_size);
			abuf_reset(&s->body);
			s->bdat_mode = true;
		}
		if (lmtp_bdat_begin(&s->bdat, cmd.bdat_size, cmd.bdat_last) != 0) {
			reply(s, "503 5.5.1 Bad BDAT sequence");
			s->state = S_CLOSING;
			return;
		}
		s->state = S_BDAT;
		return;
	case LMTP_RSET:
		txn_reset(s);
		reply(s, "250 2.0.0 Ok");
		return;
	case LMTP_NOOP:
		reply(s, "250 2.0.0 Ok");
		return;
	case LMTP_VRFY:
		reply(s, "252 2.5.0 Cannot verify, send some mail");
		return;
	case LMTP_QUIT:
		reply(s, "221 2.0.0 Bye");
		s->state = S_CLOSING;
		return;
	case LMTP_STARTTLS:
		if (l->tls == NULL) {
			reply(s, "502 5.5.1 STARTTLS is not offered here");
			return;
		}
		if (s->tls != TLS_NONE) {
			reply(s, "503 5.5.1 TLS is already on");
			return;
		}
		txn_reset(s);
		s->lhlo = false;   /* RFC 3207 4.2: forget everything said before */
		reply(s, "220 2.0.0 Ready to start TLS");
		s->tls = TLS_HANDSHAKE;   /* begins once the 220 is out */
		return;
	default:
		reply(s, lmtp_reply_for(LMTP_PE_UNKNOWN_VERB));
		return;
	}
}

/* Work through the input buffer as far as the state allows. */
static void process(struct listener *l, struct session *s)
{
	size_t off = 0;
	while (off < s->in.len && s->state != S_WAIT && s->state != S_CLOSING) {
		const uint8_t *p = s->in.data + off;
		size_t n = s->in.len - off, used = 0;
		if (s->state == S_DATA) {
			int rc = lmtp_data_feed(&s->data, p, n, &used, &s->body);
			off += used;
			if (rc == LMTP_DATA_DONE) {
				s->state = S_READY;
				message_done(l, s, lmtp_data_reply(&s->data));
			} else if (rc < 0) {
				s->state = S_CLOSING;
			}
			continue;
		}
		if (s->state == S_BDAT) {
			bool counting = !s->have_mail || s->nrcpt == 0;
			int rc = lmtp_bdat_feed(&s->bdat, p, n, &used, counting ? NULL : &s->body);
			off += used;
			if (rc == LMTP_BDAT_CHUNK_DONE) {
				s->state = S_READY;
				if (counting) {
					reply(s, s->have_mail ? "554 5.5.1 No valid recipients" : "503 5.5.1 Need MAIL first");
				} else if (s->bdat.last) {
					message_done(l, s, lmtp_bdat_reply(&s->bdat));
				} else {
					char ok[80];
					snprintf(ok, sizeof(ok), "250 2.0.0 %llu octets received",
						 (unsigned long long)s->bdat.size);
					reply(s, ok);
				}
			} else if (rc < 0) {
				s->state = S_CLOSING;
			}
			continue;
		}
		size_t ll;
		int st = lmtp_line_next(&s->lines, p, n, &ll, &used);
		if (st == LMTP_LINE_NEED) {
			off += used;
			break;
		}
		off += used;
		if (st == LMTP_LINE_TOOLONG) {
			reply(s, lmtp_reply_for(LMTP_PE_LINE_TOO_LONG));
			continue;
		}
		if (st == LMTP_LINE_OK)
			do_command(l, s, (const char *)p, ll);
		else
			s->state = S_CLOSING;
		if (s->tls == TLS_HANDSHAKE) {
			/* plaintext after STARTTLS would be taken as if it came
			 * through TLS (CVE-2011-0411): drop the connection */
			if (off < s->in.len) {
				s->state = S_CLOSING;
				s->tls = TLS_NONE;
			}
			break;
		}
	}
	if (off > 0) {
		memmove(s->in.data, s->in.data + off, s->in.len - off);
		s->in.len -= off;
	}
}

static struct session *find_txn(struct listener *l, uint64_t txn)
{
	for (size_t i = 0; i < l->nss; i++)
		if (l->ss[i]->state == S_WAIT && l->ss[i]->txn == txn)
			return l->ss[i];
	return NULL;
}

/* Verdicts and status from the store.  False: the channel is broken. */
static bool from_store(struct listener *l)
{
	int f = ipc_reader_fill(&l->rd, l->ipc);
	if (f < 0)
		return false;
	uint8_t type;
	const uint8_t *p;
	size_t len;
	int k;
	while ((k = ipc_reader_next(&l->rd, &type, &p, &len)) == 1) {
		if (type == IPC_RESULT) {
			static struct ipc_result r;
			if (ipc_result_decode(p, len, &r, &l->strings) != 0)
				return false;
			struct session *s = find_txn(l, r.txn);
			if (s == NULL)
				continue;   /* the client went away meanwhile */
			if (r.n != s->nrcpt) {
				for (size_t i = 0; i < s->nrcpt; i++)
					reply(s, lmtp_reply_for(LMTP_PE_LOCAL_ERROR));
			} else {
				for (size_t i = 0; i < r.n; i++)
					reply(s, r.text[i]);
			}
			txn_reset(s);
			s->state = S_READY;
			process(l, s);   /* pipelined commands that waited */
		} else if (type == IPC_STATUS) {
			struct ipc_status st;
			if (ipc_status_decode(p, len, &st) != 0)
				return false;
			l->accepting = st.accepting;
			snprintf(l->why, sizeof(l->why), "%s", st.accepting ? "" : st.text);
			if (!st.accepting && strlen(l->why) < 4)
				snprintf(l->why, sizeof(l->why), "451 4.3.0 the vault is not accepting mail");
		} else {
			return false;
		}
	}
	return k == 0;
}

static void accept_one(struct listener *l, int lfd)
{
	struct sockaddr_storage sa;
	socklen_t sl = sizeof(sa);
	int fd = accept4(lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct session *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		close(fd);
		return;
	}
	s->fd = fd;
	s->last = time(NULL);
	if (sa.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, s->ip, sizeof(s->ip));
		snprintf(s->peer, sizeof(s->peer), "%s:%u", s->ip, ntohs(((struct sockaddr_in *)&sa)->sin_port));
	} else if (sa.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, s->ip, sizeof(s->ip));
		snprintf(s->peer, sizeof(s->peer), "[%s]:%u", s->ip, ntohs(((struct sockaddr_in6 *)&sa)->sin6_port));
	} else {
		snprintf(s->ip, sizeof(s->ip), "local");
		snprintf(s->peer, sizeof(s->peer), "local");
	}
	struct client *c = client_get(l, s->ip);
	c->sessions++;
	const char *refuse = NULL;
	if (!allowed(l, &sa))
		refuse = "554 5.7.1 This client may not journal here";
	else if (l->nss >= l->c->max_sessions)
		refuse = "421 4.7.0 Too many sessions, try again later";
	else if (c->sessions > l->c->max_sessions_per_client)
		refuse = "421 4.7.0 Too many sessions from this client";
	struct session **ns = realloc(l->ss, (l->nss + 1) * sizeof(*ns));
	if (ns == NULL) {
		session_free(l, s);
		return;
	}
	l->ss = ns;
	l->ss[l->nss++] = s;
	if (refuse) {
		reply(s, refuse);
		s->state = S_CLOSING;
		if (!allowed(l, &sa))
			send_event(l, true, "refused LMTP client %s (not in the allow-list)", s->ip);
		return;
	}
	char greet[320];
	snprintf(greet, sizeof(greet), "220 %s LMTP arcad journal ready", l->hostname);
	reply(s, greet);
}

/* Start the handshake once the 220 reply is out. */
static bool tls_step(struct listener *l, struct session *s)
{
	if (s->ssl == NULL) {
		s->ssl = SSL_new(l->tls);
		if (s->ssl == NULL || SSL_set_fd(s->ssl, s->fd) != 1)
			return false;
	}
	ERR_clear_error();
	int r = SSL_accept(s->ssl);
	if (r == 1) {
		s->tls = TLS_ON;
		s->tls_want_write = false;
		s->last = time(NULL);
		return true;
	}
	int e = SSL_get_error(s->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		s->tls_want_write = e == SSL_ERROR_WANT_WRITE;
		return true;
	}
	return false;   /* a failed handshake ends the session */
}

/* Write what we can; false when the session is finished. */
static bool flush_out(struct listener *l, struct session *s)
{
	while (s->out.len > 0) {
		ssize_t k;
		if (s->tls == TLS_ON) {
			ERR_clear_error();
			int r = SSL_write(s->ssl, s->out.data, (int)(s->out.len > INT32_MAX ? INT32_MAX : s->out.len));
			if (r <= 0) {
				int e = SSL_get_error(s->ssl, r);
				if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
					s->tls_want_write = e == SSL_ERROR_WANT_WRITE;
					return true;
				}
				return false;
			}
			k = r;
		} else {
			k = write(s->fd, s->out.data, s->out.len);
		}
		if (k > 0) {
			memmove(s->out.data, s->out.data + k, s->out.len - (size_t)k);
			s->out.len -= (size_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		return false;
	}
	if (s->tls == TLS_HANDSHAKE && s->state != S_CLOSING)
		return tls_step(l, s);
	return s->state != S_CLOSING;
}

static bool read_in(struct session *s)
{
	if (s->tls == TLS_HANDSHAKE)
		return true;   /* tls_step reads */
	if (abuf_reserve(&s->in, READ_CHUNK) != 0)
		return false;
	ssize_t k;
	if (s->tls == TLS_ON) {
		/* all that TLS has decrypted: poll can't see what OpenSSL holds */
		size_t got = 0;
		for (;;) {
			ERR_clear_error();
			int r = SSL_read(s->ssl, s->in.data + s->in.len + got, (int)(READ_CHUNK - got));
			if (r <= 0) {
				int e = SSL_get_error(s->ssl, r);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
					s->tls_want_write = e == SSL_ERROR_WANT_WRITE;
					break;
				}
				if (got > 0)
					break;
				return false;
			}
			got += (size_t)r;
			if (got == READ_CHUNK || SSL_pending(s->ssl) == 0)
				break;
		}
		s->in.len += got;
		if (got > 0)
			s->last = time(NULL);
		return true;
	} else {
		k = read(s->fd, s->in.data + s->in.len, READ_CHUNK);
	}
	if (k > 0) {
		s->in.len += (size_t)k;
		s->last = time(NULL);
		return true;
	}
	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	return false;   /* EOF or error */
}

/* Certificate and key, read before the chroot. */
static int tls_setup(struct listener *l, const struct arcad_config *c)
{
	if (c->tls_cert == NULL && c->tls_key == NULL)
		return 0;
	if (c->tls_cert == NULL || c->tls_key == NULL) {
		arcad_log(LOG_ERR, "TLS needs both --tls-cert and --tls-key");
		return -1;
	}
	l->tls = SSL_CTX_new(TLS_server_method());
	if (l->tls == NULL || SSL_CTX_set_min_proto_version(l->tls, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_use_certificate_chain_file(l->tls, c->tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(l->tls, c->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(l->tls) != 1) {
		char e[256];
		ERR_error_string_n(ERR_get_error(), e, sizeof(e));
		arcad_log(LOG_ERR, "TLS certificate %s / key %s: %s", c->tls_cert, c->tls_key, e);
		return -1;
	}
	SSL_CTX_set_mode(l->tls, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(l->tls, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	return 0;
}

/* Unprivileged user, empty root, no new privileges. */
static int drop_privileges(const struct arcad_config *c)
{
	if (geteuid() != 0) {
		if (c->user)
			arcad_log(LOG_WARNING, "not root: --user %s ignored, the listener keeps this user", c->user);
	} else {
		const char *user = c->user ? c->user : "nobody";
		struct passwd *pw = getpwnam(user);
		if (pw == NULL || pw->pw_uid == 0) {
			arcad_log(LOG_ERR, "user %s: %s", user, pw ? "must not be root" : "no such user");
			return -1;
		}
		const char *empty = "/run/arcad-empty";
		if (mkdir(empty, 0555) != 0 && errno != EEXIST) {
			arcad_log(LOG_ERR, "mkdir %s: %s", empty, strerror(errno));
			return -1;
		}
		if (chroot(empty) != 0 || chdir("/") != 0) {
			arcad_log(LOG_ERR, "chroot %s: %s", empty, strerror(errno));
			return -1;
		}
		if (setgroups(1, &pw->pw_gid) != 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
		    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0) {
			arcad_log(LOG_ERR, "dropping to %s: %s", user, strerror(errno));
			return -1;
		}
		if (setuid(0) == 0) {
			arcad_log(LOG_ERR, "could regain root after dropping privileges");
			return -1;
		}
	}
	/* (No RLIMIT_FSIZE of 0: stderr may be a file, and the empty
	 * root-owned chroot already leaves nothing to write to.) */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		arcad_log(LOG_ERR, "restricting the listener: %s", strerror(errno));
		return -1;
	}
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	return 0;
}

int listener_run(const struct arcad_config *c, const int *fds, int nfds, int ipc_fd,
		 volatile sig_atomic_t *stop)
{
	static struct listener l;
	memset(&l, 0, sizeof(l));
	l.c = c;
	l.ipc = ipc_fd;
	l.accepting = true;
	ipc_reader_init(&l.rd, 1u << 20);
	abuf_init(&l.strings);
	char host[256] = "arcad";
	if (c->hostname)
		snprintf(host, sizeof(host), "%s", c->hostname);
	else
		gethostname(host, sizeof(host) - 1);
	l.hostname = host;
	if (c->allow && parse_allow(&l, c->allow) != 0) {
		arcad_log(LOG_ERR, "bad --allow list: %s", c->allow);
		return 2;
	}
	if (tls_setup(&l, c) != 0)
		return 1;
	if (drop_privileges(c) != 0) {
		SSL_CTX_free(l.tls);
		return 1;
	}
	fcntl(ipc_fd, F_SETFL, fcntl(ipc_fd, F_GETFL) | O_NONBLOCK);
	for (int i = 0; i < nfds; i++)
		fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
	int sb = sandbox_listener();
	if (sb < 0) {
		arcad_log(LOG_ERR, "seccomp: %s", strerror(errno));
		SSL_CTX_free(l.tls);
		return 1;
	}
	if (sb > 0)
		arcad_log(LOG_NOTICE, "seccomp filter not applied (sanitizer build or unknown architecture)");
	struct pollfd *pf = NULL;
	int status = 0;
	while (!*stop) {
		size_t np = (size_t)nfds + 1 + l.nss;
		struct pollfd *npf = realloc(pf, np * sizeof(*pf));
		if (npf == NULL) {
			status = 1;
			break;
		}
		pf = npf;
		pf[0] = (struct pollfd){ .fd = ipc_fd, .events = POLLIN };
		for (int i = 0; i < nfds; i++)
			pf[1 + i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		for (size_t i = 0; i < l.nss; i++) {
			struct session *s = l.ss[i];
			short ev = 0;
			if (s->state != S_WAIT && s->state != S_CLOSING)
				ev |= POLLIN;
			if (s->out.len > 0 || s->state == S_CLOSING)
				ev |= POLLOUT;
			if (s->tls == TLS_HANDSHAKE)
				ev = s->out.len > 0 || s->tls_want_write ? POLLOUT : POLLIN;
			else if (s->tls == TLS_ON && s->tls_want_write)
				ev |= POLLOUT;
			pf[1 + nfds + i] = (struct pollfd){ .fd = s->fd, .events = ev };
		}
		int n = poll(pf, np, 1000);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			status = 1;
			break;
		}
		if (pf[0].revents) {
			if (!from_store(&l)) {
				arcad_log(LOG_NOTICE, "the store closed the channel; stopping");
				break;
			}
		}
		size_t before = l.nss;
		for (size_t i = 0; i < before; i++) {
			struct session *s = l.ss[i];
			short re = pf[1 + nfds + i].revents;
			bool alive = true;
			if (re & (POLLIN | POLLHUP | POLLERR)) {
				if (s->state != S_WAIT && s->state != S_CLOSING) {
					alive = read_in(s);
					if (alive)
						process(&l, s);
				}
			}
			if (alive)
				alive = flush_out(&l, s);
			if (alive && s->state != S_WAIT &&
			    time(NULL) - s->last > (time_t)c->idle_timeout) {
				reply(s, "421 4.4.2 Idle too long, closing");
				flush_out(&l, s);
				alive = false;
			}
			if (!alive) {
				session_free(&l, s);
				l.ss[i] = NULL;
			}
		}
		size_t k = 0;
		for (size_t i = 0; i < l.nss; i++)
			if (l.ss[i] != NULL)
				l.ss[k++] = l.ss[i];
		l.nss = k;
		for (int i = 0; i < nfds; i++)
			if (pf[1 + i].revents & POLLIN)
				for (int a = 0; a < 16; a++) {
					size_t was = l.nss;
					accept_one(&l, fds[i]);
					if (l.nss == was)
						break;
				}
	}
	for (size_t i = 0; i < l.nss; i++) {
		if (l.ss[i]->state != S_WAIT && l.ss[i]->state != S_DATA) {
			reply(l.ss[i], "421 4.3.2 arcad shutting down");
			flush_out(&l, l.ss[i]);
		}
		session_free(&l, l.ss[i]);
	}
	free(l.ss);
	free(pf);
	SSL_CTX_free(l.tls);
	ipc_reader_release(&l.rd);
	abuf_release(&l.strings);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	close(ipc_fd);
	return status;
}
