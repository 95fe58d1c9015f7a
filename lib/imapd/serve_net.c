/*
 * serve_net.c - listeners, TLS, the acceptor and the session processes of
 * serve-imap (serve_net.h).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "imapd_session.h"
#include "serve_client.h"
#include "serve_net.h"
#include "serve_proto.h"
#include "banned.h"

/* Deadlines of a session's socket (the socket is non-blocking: every wait
 * goes through poll with the time left).  A read waits at most as long as
 * the session's last wait for input allowed (so a partial TLS record can't
 * stretch the session's own timeouts), at most READ_TIMEOUT_MS; a write (a
 * client that stopped reading) and the TLS handshake less.  The defaults
 * of the settable ones are in serve_net.h. */
#define READ_TIMEOUT_MS (35 * 60 * 1000)
/* TCP keepalive: a peer gone without a FIN or RST (a cut link) is noticed
 * after about 5 + 4 x 1 minutes even in a long IDLE */
#define KEEPALIVE_IDLE_S 300
#define KEEPALIVE_INTVL_S 60
#define KEEPALIVE_CNT 4

void serve_log_write(int fd, const char *line)
{
	char buf[1400];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	char t[32];
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
	int n = snprintf(buf, sizeof(buf), "%s arca serve-imap[%ld]: %.1300s\n", t, (long)getpid(), line);
	if (n > 0) {
		size_t len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
		buf[len - 1] = '\n';
		ssize_t w;
		do
			w = write(fd, buf, len);
		while (w < 0 && errno == EINTR);
	}
}

static void logf_(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(int fd, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	serve_log_write(fd, line);
}

/* ---- listening ---- */

static bool addr_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
	}
	return false;
}

static void addr_text(const struct sockaddr *sa, char *host, size_t hostlen, uint16_t *port)
{
	host[0] = '\0';
	*port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, (socklen_t)hostlen);
		*port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, (socklen_t)hostlen);
		else
			inet_ntop(AF_INET6, &in6->sin6_addr, host, (socklen_t)hostlen);
		*port = ntohs(in6->sin6_port);
	}
}

int serve_net_listen(const char *addr_port, bool tls, struct serve_listener *l, struct arca_err *err)
{
	memset(l, 0, sizeof(*l));
	l->fd = -1;
	char host[256];
	const char *colon = strrchr(addr_port, ':');
	if (colon == NULL || colon == addr_port || strlen(addr_port) >= sizeof(host))
		return arca_err_set(err, ARCA_EINVAL, "%s: not ADDR:PORT", addr_port);
	size_t hl = (size_t)(colon - addr_port);
	memcpy(host, addr_port, hl);
	host[hl] = '\0';
	if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	char *end;
	errno = 0;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || port > 65535 || errno != 0)
		return arca_err_set(err, ARCA_EINVAL, "%s: not a port number", addr_port);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int g = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
	if (g != 0)
		return arca_err_set(err, ARCA_EINVAL, "%s: %s", addr_port, gai_strerror(g));
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int e = errno;
	if (fd >= 0) {
		int one = 1;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (res->ai_family == AF_INET6)
			(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 128) != 0) {
			e = errno;
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0) {
		freeaddrinfo(res);
		return arca_err_errno(err, ARCA_EIO, e, "%s: cannot listen", addr_port);
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char text[INET6_ADDRSTRLEN];
	uint16_t p = 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		addr_text((struct sockaddr *)&ss, text, sizeof(text), &p);
		snprintf(l->name, sizeof(l->name), ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", text, (unsigned)p);
		l->loopback = addr_loopback((struct sockaddr *)&ss);
	}
	freeaddrinfo(res);
	l->fd = fd;
	l->tls = tls;
	return 0;
}

/* ---- TLS ---- */

static const char *ssl_reason(void)
{
	static __thread char msg[200];
	unsigned long e = ERR_get_error();
	if (e == 0)
		return "the connection ended";
	ERR_error_string_n(e, msg, sizeof(msg));
	ERR_clear_error();
	return msg;
}

SSL_CTX *serve_net_tls_ctx(const char *cert, const char *key, struct arca_err *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		arca_err_set(err, ARCA_ENOMEM, "cannot set up TLS: %s", ssl_reason());
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* each session is its own process: nothing to resume from */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
				 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		arca_err_set(err, ARCA_EINVAL, "%s: cannot load the certificate: %s", cert, ssl_reason());
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		arca_err_set(err, ARCA_EINVAL, "%s: cannot load the private key (or it doesn't match %s): %s",
			     key, cert, ssl_reason());
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* ---- a session's byte stream ---- */

struct sess_io {
	struct imapd_io io;
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	int log_fd;
	int handshake_ms, write_ms;
	int read_ms;                  /* the last io_wait's timeout */
};

static long ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000L + (t.tv_nsec - t0->tv_nsec) / 1000000L;
}

/* Wait for the socket; 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short ev, const struct timespec *t0, int timeout_ms)
{
	for (;;) {
		long left = timeout_ms - ms_since(t0);
		if (left <= 0)
			return 0;
		struct pollfd p = { .fd = fd, .events = ev };
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return 0;
		return 1;
	}
}

static int tls_accept(struct sess_io *s)
{
	s->ssl = SSL_new(s->ctx);
	if (s->ssl == NULL || SSL_set_fd(s->ssl, s->fd) != 1)
		return -1;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		ERR_clear_error();
		int r = SSL_accept(s->ssl);
		if (r == 1)
			break;
		int e = SSL_get_error(s->ssl, r);
		short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
		if (ev == 0 || wait_fd(s->fd, ev, &t0, s->handshake_ms) != 1) {
			logf_(s->log_fd, "TLS handshake failed: %s", ev ? "timed out" : ssl_reason());
			return -1;
		}
	}
	s->io.tls = true;
	return 0;
}

static ssize_t io_read(void *ctx, void *buf, size_t n)
{
	struct sess_io *s = ctx;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (n > INT32_MAX)
		n = INT32_MAX;
	for (;;) {
		if (s->ssl) {
			ERR_clear_error();
			int r = SSL_read(s->ssl, buf, (int)n);
			if (r > 0)
				return r;
			int e = SSL_get_error(s->ssl, r);
			if (e == SSL_ERROR_ZERO_RETURN)
				return 0;
			short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
			if (ev == 0)
				return e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 ? 0 : -1;
			if (wait_fd(s->fd, ev, &t0, s->read_ms) != 1)
				return -1;
			continue;
		}
		ssize_t r = recv(s->fd, buf, n, 0);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (wait_fd(s->fd, POLLIN, &t0, s->read_ms) != 1)
			return -1;
	}
}

static int io_write(void *ctx, const void *buf, size_t n)
{
	struct sess_io *s = ctx;
	const uint8_t *p = buf;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (n > 0) {
		size_t chunk = n > INT32_MAX ? INT32_MAX : n;
		if (s->ssl) {
			ERR_clear_error();
			int w = SSL_write(s->ssl, p, (int)chunk);
			if (w > 0) {
				p += w;
				n -= (size_t)w;
				continue;
			}
			int e = SSL_get_error(s->ssl, w);
			short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
			if (ev == 0 || wait_fd(s->fd, ev, &t0, s->write_ms) != 1)
				return -1;
			continue;
		}
		ssize_t w = send(s->fd, p, chunk, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    wait_fd(s->fd, POLLOUT, &t0, s->write_ms) == 1)
			continue;
		return -1;
	}
	return 0;
}

static int io_wait(void *ctx, int timeout_ms)
{
	struct sess_io *s = ctx;
	if (s->ssl && SSL_pending(s->ssl) > 0)
		return 1;
	/* the read that follows may find half a TLS record: it waits no
	 * longer than this wait did */
	s->read_ms = timeout_ms < READ_TIMEOUT_MS ? timeout_ms : READ_TIMEOUT_MS;
	if (s->read_ms < 1)
		s->read_ms = 1;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int r = wait_fd(s->fd, POLLIN, &t0, timeout_ms);
	return r < 0 ? -1 : r;
}

static int io_starttls(void *ctx)
{
	struct sess_io *s = ctx;
	if (s->ssl != NULL)
		return -1;
	return tls_accept(s);
}

/* ---- the processes ---- */

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

/* Close every fd from lowest on but those in keep: close_range over the
 * gaps (a session starts per connection, and RLIMIT_NOFILE is raised to
 * the hard limit, so a loop of close() calls would cost up to a million
 * syscalls each time); the loop only where the kernel lacks close_range. */
static void close_from(int lowest, const int *keep, size_t nkeep)
{
	int sorted[8];
	bool ok = nkeep <= sizeof(sorted) / sizeof(sorted[0]);
	if (ok) {
		memcpy(sorted, keep, nkeep * sizeof(int));
		qsort(sorted, nkeep, sizeof(int), cmp_int);
	}
	unsigned start = (unsigned)lowest;
	for (size_t i = 0; i < nkeep && ok; i++) {
		if (sorted[i] < 0 || (unsigned)sorted[i] < start)
			continue;
		if ((unsigned)sorted[i] > start)
			ok = close_range(start, (unsigned)sorted[i] - 1, 0) == 0;
		start = (unsigned)sorted[i] + 1;
	}
	if (ok && close_range(start, ~0u, 0) == 0)
		return;
	long max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (int fd = lowest; fd < max; fd++) {
		bool k = false;
		for (size_t i = 0; i < nkeep; i++)
			if (keep[i] == fd)
				k = true;
		if (!k)
			close(fd);
	}
}

struct session_log {
	int fd;
	char peer[SERVE_PEER_MAX + 8];
};

static void session_log(void *ctx, const char *line)
{
	struct session_log *l = ctx;
	logf_(l->fd, "%s: %s", l->peer, line);
}

static void session_main(const struct serve_net_opts *o, int conn, int chan, bool tls, bool loopback,
			 const char *peer)
{
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* a session needs no more processes and few files */
	struct rlimit rl = { 0, 0 };
	(void)setrlimit(RLIMIT_NPROC, &rl);
	(void)setrlimit(RLIMIT_CORE, &rl);
	struct sess_io s = { .fd = conn, .ctx = o->tls, .log_fd = o->log_fd,
			     .handshake_ms = o->handshake_timeout_ms > 0 ? o->handshake_timeout_ms
									  : SERVE_HANDSHAKE_TIMEOUT_MS,
			     .write_ms = o->write_timeout_ms > 0 ? o->write_timeout_ms : SERVE_WRITE_TIMEOUT_MS,
			     .read_ms = READ_TIMEOUT_MS };
	s.io.read = io_read;
	s.io.write = io_write;
	s.io.wait = io_wait;
	s.io.starttls = o->tls && !tls ? io_starttls : NULL;
	s.io.loopback = loopback;
	s.io.ctx = &s;
	/* non-blocking: a read or write that can't go on waits in poll with
	 * a deadline, never in the kernel without one (a silent client in
	 * the TLS handshake, half a TLS record, a client that stops reading) */
	int fl = fcntl(conn, F_GETFL);
	if (fl < 0 || fcntl(conn, F_SETFL, fl | O_NONBLOCK) != 0)
		_exit(1);
	int one = 1, idle = KEEPALIVE_IDLE_S, intvl = KEEPALIVE_INTVL_S, cnt = KEEPALIVE_CNT;
	(void)setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(conn, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	(void)setsockopt(conn, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(conn, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(conn, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	if (tls && tls_accept(&s) != 0) {
		SSL_free(s.ssl);
		_exit(1);
	}
	struct serve_client *vc = serve_client_new(chan);
	if (vc == NULL)
		_exit(1);
	struct session_log lg = { .fd = o->log_fd };
	snprintf(lg.peer, sizeof(lg.peer), "%s", peer);
	struct imapd_session_opts so = {
		.greeting_name = o->greeting_name ? o->greeting_name : "Arca vault (read-only)",
		.idle_timeout_ms = o->idle_timeout_ms,
		.login_timeout_ms = o->login_timeout_ms,
		.log = session_log,
		.log_ctx = &lg,
	};
	int rc = imapd_session_run(&s.io, &serve_client_ops, vc, &so);
	serve_client_ops.free(vc);
	if (s.ssl) {
		(void)SSL_shutdown(s.ssl);
		SSL_free(s.ssl);
	}
	close(conn);
	_exit(rc == 0 ? 0 : 1);
}

static volatile sig_atomic_t child_exited;

static void on_sigchld(int sig)
{
	(void)sig;
	child_exited = 1;
}

/*
 * The network side needs no file after it starts (the keeper checks
 * passwords and reads the vault; the certificate is loaded already): as
 * root it is shut in an empty directory, so a session taken over by a
 * hostile client sees no file system at all.  The directory must be
 * root's, a directory, writable by nobody else, and empty.
 */
static int enter_empty_root(int log_fd)
{
	if (geteuid() != 0)
		return 0;
	if (mkdir(SERVE_EMPTY_ROOT, 0555) != 0 && errno != EEXIST) {
		logf_(log_fd, "mkdir %s: %s", SERVE_EMPTY_ROOT, strerror(errno));
		return -1;
	}
	int fd = open(SERVE_EMPTY_ROOT, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	DIR *d = fd >= 0 && fstat(fd, &st) == 0 ? fdopendir(fd) : NULL;
	bool empty = d != NULL;
	for (struct dirent *e; empty && (e = readdir(d)) != NULL;)
		empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
	if (d == NULL || !empty || st.st_uid != 0 || (st.st_mode & 022) != 0) {
		logf_(log_fd, "%s must be an empty directory of root's that only root may write to",
		      SERVE_EMPTY_ROOT);
		if (d != NULL)
			closedir(d);
		else if (fd >= 0)
			close(fd);
		return -1;
	}
	int rc = fchdir(fd) == 0 && chroot(".") == 0 && chdir("/") == 0 ? 0 : -1;
	if (rc)
		logf_(log_fd, "chroot %s: %s", SERVE_EMPTY_ROOT, strerror(errno));
	closedir(d);
	return rc;
}

static int drop_privileges(uid_t uid, gid_t gid)
{
	if (geteuid() != 0)
		return 0;
	if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0)
		return -1;
	if (setuid(0) == 0)
		return -1;   /* must not be able to get root back */
	return 0;
}

static void refuse_busy(int conn, bool tls)
{
	/* a plain connection is told why; TLS ones would need a handshake */
	static const char bye[] = "* BYE [UNAVAILABLE] Too many connections, try again later\r\n";
	if (!tls)
		(void)send(conn, bye, sizeof(bye) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(conn);
}

/* The running sessions, by pid and client address: the per-address cap
 * counts them. */
struct sess_rec {
	pid_t pid;
	char peer[INET6_ADDRSTRLEN];
};

static void acceptor_main(const struct serve_net_opts *o, int ctl)
{
	unsigned max = o->max_sessions ? o->max_sessions : 1000;
	unsigned per_addr = o->max_per_address ? o->max_per_address : SERVE_MAX_PER_ADDRESS;
	unsigned running = 0;
	struct sess_rec *run = calloc(max, sizeof(*run));
	struct pollfd *p = calloc(o->nlisteners + 1, sizeof(*p));
	if (p == NULL || run == NULL)
		_exit(1);
	for (size_t i = 0; i < o->nlisteners; i++)
		p[i] = (struct pollfd){ .fd = o->listeners[i].fd, .events = POLLIN };
	p[o->nlisteners] = (struct pollfd){ .fd = ctl, .events = 0 };   /* POLLHUP: keeper gone */
	for (;;) {
		if (child_exited) {
			child_exited = 0;
			pid_t dead;
			while ((dead = waitpid(-1, NULL, WNOHANG)) > 0)
				for (unsigned j = 0; j < running; j++)
					if (run[j].pid == dead) {
						run[j] = run[--running];
						break;
					}
		}
		int r = poll(p, o->nlisteners + 1, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || (p[o->nlisteners].revents & (POLLHUP | POLLERR)) != 0)
			_exit(r < 0 ? 1 : 0);
		for (size_t i = 0; i < o->nlisteners; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);
			int conn = accept4(p[i].fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
			if (conn < 0)
				continue;
			char peer[INET6_ADDRSTRLEN];
			uint16_t port;
			addr_text((struct sockaddr *)&ss, peer, sizeof(peer), &port);
			bool tls = o->listeners[i].tls;
			if (running >= max) {
				logf_(o->log_fd, "connection from %s port %u refused: %u sessions running", peer,
				      (unsigned)port, running);
				refuse_busy(conn, tls);
				continue;
			}
			/* one address can't take every session (Dovecot's
			 * mail_max_userip_connections, per address only: the
			 * user is not known before the login) */
			unsigned same = 0;
			for (unsigned j = 0; j < running; j++)
				if (strcmp(run[j].peer, peer) == 0)
					same++;
			if (same >= per_addr) {
				logf_(o->log_fd, "connection from %s port %u refused: %u sessions from that address",
				      peer, (unsigned)port, same);
				refuse_busy(conn, tls);
				continue;
			}
			int sv[2];
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
				refuse_busy(conn, tls);
				continue;
			}
			struct arca_err err = { 0 };
			if (serve_ctl_send(ctl, sv[0], peer, port, &err) != 0) {
				/* the keeper is gone: nothing can be served */
				_exit(0);
			}
			close(sv[0]);
			pid_t pid = fork();
			if (pid == 0) {
				int keep[] = { 0, 1, 2, conn, sv[1], o->log_fd };
				close_from(3, keep, sizeof(keep) / sizeof(keep[0]));
				session_main(o, conn, sv[1], tls, addr_loopback((struct sockaddr *)&ss), peer);
			}
			close(sv[1]);
			close(conn);
			if (pid > 0) {
				run[running].pid = pid;
				snprintf(run[running].peer, sizeof(run[running].peer), "%s", peer);
				running++;
			}
		}
	}
}

int serve_net_spawn(const struct serve_net_opts *o, pid_t *pid_r, int *ctl_r, struct arca_err *err)
{
	for (size_t i = 0; i < o->nlisteners; i++)
		if (o->listeners[i].tls && o->tls == NULL)
			return arca_err_set(err, ARCA_EINVAL, "%s: TLS without a certificate", o->listeners[i].name);
	uid_t uid = 0;
	gid_t gid = 0;
	pid_t keeper = getpid();
	if (geteuid() == 0) {
		const char *user = o->run_as ? o->run_as : "nobody";
		struct passwd *pw = getpwnam(user);
		if (pw == NULL || pw->pw_uid == 0)
			return arca_err_set(err, ARCA_EINVAL, "user %s for the network side: unknown (or root)", user);
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return arca_err_errno(err, ARCA_EIO, errno, "socketpair");
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		return arca_err_errno(err, ARCA_EIO, e, "fork");
	}
	if (pid == 0) {
		/* the acceptor: no key was ever in this process, and the
		 * passphrase it inherited in the environment goes now */
		for (const char *const *n = o->scrub_env; n && *n; n++) {
			char *v = getenv(*n);
			if (v)
				explicit_bzero(v, strlen(v));
			unsetenv(*n);
		}
		close(sv[0]);
		signal(SIGPIPE, SIG_IGN);
		signal(SIGINT, SIG_IGN);     /* the keeper decides when to stop */
		signal(SIGTERM, SIG_DFL);
		struct sigaction sa = { .sa_handler = on_sigchld };
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = SA_NOCLDSTOP;  /* no SA_RESTART: poll returns */
		sigaction(SIGCHLD, &sa, NULL);
		/* /dev/null before the root is emptied */
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (devnull < 0 || enter_empty_root(o->log_fd) != 0)
			_exit(1);
		/* credentials first: changing them resets the dumpable flag
		 * and the parent-death signal, so those come after */
		if (drop_privileges(uid, gid) != 0) {
			logf_(o->log_fd, "cannot drop privileges for the network side");
			_exit(1);
		}
		if (prctl(PR_SET_DUMPABLE, 0) != 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 ||
		    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
			logf_(o->log_fd, "cannot restrict the network side (prctl)");
			_exit(1);
		}
		/* the keeper died before PDEATHSIG was set: nobody would
		 * ever stop this process */
		if (getppid() != keeper)
			_exit(1);
		if (chdir("/") != 0)
			_exit(1);
		if (dup2(devnull, 0) < 0 || (o->log_fd != 1 && dup2(devnull, 1) < 0))
			_exit(1);
		close(devnull);
		acceptor_main(o, sv[1]);
		_exit(0);
	}
	close(sv[1]);
	*pid_r = pid;
	*ctl_r = sv[0];
	return 0;
}
