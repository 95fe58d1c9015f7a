/*
 * netconn.c - outgoing TCP and TLS connections with deadlines (netconn.h).
 *
 * Why OpenSSL here and not libetpan's own TLS: libetpan's TLS layer does not
 * verify the server's certificate; the pull side must, because the vault
 * sends a master password over it.  libetpan reads through a stream driver
 * on top of this connection instead (imap_conn.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "netconn.h"

#define NETCONN_BUF 16384

struct netconn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	bool tls_started;
	int timeout_ms;
	char *host;
	char *ca_file;
	bool insecure;
	uint8_t buf[NETCONN_BUF];
	size_t pos, end;            /* buffered, not yet consumed: buf[pos..end) */
};

static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	for (;;) {
		int n = poll(&p, 1, timeout_ms);
		if (n > 0)
			return 0;
		if (n == 0)
			return ARCA_EIO;
		if (errno != EINTR)
			return ARCA_EIO;
	}
}

static int connect_one(const struct addrinfo *ai, int timeout_ms, int *fd_r, int *errno_r)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	if (fd < 0) {
		*errno_r = errno;
		return -1;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		if (errno != EINPROGRESS) {
			*errno_r = errno;
			close(fd);
			return -1;
		}
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (wait_fd(fd, POLLOUT, timeout_ms) != 0) {
			*errno_r = ETIMEDOUT;
			close(fd);
			return -1;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
			*errno_r = soerr ? soerr : errno;
			close(fd);
			return -1;
		}
	}
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*fd_r = fd;
	return 0;
}

static const char *ssl_reason(void)
{
	unsigned long e = ERR_get_error();
	static __thread char msg[160];
	if (e == 0)
		return "connection closed during the handshake";
	ERR_error_string_n(e, msg, sizeof(msg));
	ERR_clear_error();
	return msg;
}

static int tls_handshake(struct netconn *c, struct arca_err *err)
{
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (c->ctx == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "%s: cannot set up TLS", c->host);
	SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
	if (!c->insecure) {
		int ok = c->ca_file ? SSL_CTX_load_verify_locations(c->ctx, c->ca_file, NULL)
				    : SSL_CTX_set_default_verify_paths(c->ctx);
		if (ok != 1)
			return arca_err_set(err, ARCA_EINVAL, "%s: cannot load the CA certificates%s%s: %s",
					    c->host, c->ca_file ? " from " : "",
					    c->ca_file ? c->ca_file : "", ssl_reason());
		SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	}
	c->ssl = SSL_new(c->ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		return arca_err_set(err, ARCA_ENOMEM, "%s: cannot set up TLS", c->host);
	/* an address is checked against the certificate's IP entries, a name
	 * against its DNS names (and is sent as SNI) */
	unsigned char ipbuf[16];
	bool is_ip = inet_pton(AF_INET, c->host, ipbuf) == 1 || inet_pton(AF_INET6, c->host, ipbuf) == 1;
	if (!is_ip)
		SSL_set_tlsext_host_name(c->ssl, c->host);
	if (!c->insecure) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
		int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, c->host) : SSL_set1_host(c->ssl, c->host);
		if (ok != 1)
			return arca_err_set(err, ARCA_ENOMEM, "%s: cannot set the name to verify", c->host);
	}
	for (;;) {
		int r = SSL_connect(c->ssl);
		if (r == 1)
			break;
		int e = SSL_get_error(c->ssl, r);
		short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
		if (ev == 0) {
			long vr = SSL_get_verify_result(c->ssl);
			if (vr != X509_V_OK)
				return arca_err_set(err, ARCA_EIO, "%s: certificate not trusted: %s",
						    c->host, X509_verify_cert_error_string(vr));
			return arca_err_set(err, ARCA_EIO, "%s: TLS handshake failed: %s", c->host, ssl_reason());
		}
		if (wait_fd(c->fd, ev, c->timeout_ms) != 0)
			return arca_err_set(err, ARCA_EIO, "%s: TLS handshake timed out", c->host);
	}
	c->tls_started = true;
	return 0;
}

int netconn_open(const struct netconn_opts *o, struct netconn **c_r, struct arca_err *err)
{
	*c_r = NULL;
	if (o->host == NULL || o->host[0] == '\0' || o->port == 0)
		return arca_err_set(err, ARCA_EINVAL, "no host or port to connect to");
	struct netconn *c = calloc(1, sizeof(*c));
	if (c == NULL || (c->host = strdup(o->host)) == NULL ||
	    (o->ca_file && (c->ca_file = strdup(o->ca_file)) == NULL)) {
		netconn_free(c);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	c->fd = -1;
	c->insecure = o->insecure;
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 60000;

	char port[8];
	snprintf(port, sizeof(port), "%u", (unsigned)o->port);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
	struct addrinfo *res = NULL;
	int g = getaddrinfo(o->host, port, &hints, &res);
	if (g != 0) {
		arca_err_set(err, ARCA_EIO, "%s: cannot resolve: %s", o->host, gai_strerror(g));
		netconn_free(c);
		return ARCA_EIO;
	}
	int last_errno = 0;
	for (struct addrinfo *ai = res; ai && c->fd < 0; ai = ai->ai_next)
		(void)connect_one(ai, c->timeout_ms, &c->fd, &last_errno);
	freeaddrinfo(res);
	if (c->fd < 0) {
		arca_err_set(err, ARCA_EIO, "%s port %u: cannot connect: %s", o->host,
			     (unsigned)o->port, strerror(last_errno));
		netconn_free(c);
		return ARCA_EIO;
	}
	if (o->tls == NETCONN_TLS) {
		int rc = tls_handshake(c, err);
		if (rc) {
			netconn_free(c);
			return rc;
		}
	}
	*c_r = c;
	return 0;
}

int netconn_start_tls(struct netconn *c, struct arca_err *err)
{
	if (c->tls_started)
		return arca_err_set(err, ARCA_ESTATE, "%s: TLS already started", c->host);
	/* Anything the server sent after its OK to STARTTLS would be read as
	 * if it had come through TLS: refuse it (CVE-2011-0411 and kin). */
	if (c->end > c->pos)
		return arca_err_set(err, ARCA_EFORMAT, "%s: the server sent data after agreeing to STARTTLS (injection?)", c->host);
	return tls_handshake(c, err);
}

void netconn_free(struct netconn *c)
{
	if (c == NULL)
		return;
	if (c->ssl) {
		if (c->tls_started)
			(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	free(c->host);
	free(c->ca_file);
	free(c);
}

int netconn_fd(const struct netconn *c)
{
	return c->fd;
}

/* One read from the socket or TLS, with the deadline. */
static ssize_t raw_read(struct netconn *c, void *buf, size_t len, struct arca_err *err)
{
	for (;;) {
		if (c->tls_started) {
			ERR_clear_error();
			int r = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
			if (r > 0)
				return r;
			int e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_ZERO_RETURN)
				return 0;
			short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
			if (ev == 0) {
				if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
					return 0;   /* closed without close_notify */
				return arca_err_set(err, ARCA_EIO, "%s: TLS read failed: %s", c->host, ssl_reason());
			}
			if (wait_fd(c->fd, ev, c->timeout_ms) != 0)
				return arca_err_set(err, ARCA_EIO, "%s: no answer for %d s", c->host, c->timeout_ms / 1000);
			continue;
		}
		ssize_t n = recv(c->fd, buf, len, 0);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return arca_err_set(err, ARCA_EIO, "%s: read failed: %s", c->host, strerror(errno));
		if (wait_fd(c->fd, POLLIN, c->timeout_ms) != 0)
			return arca_err_set(err, ARCA_EIO, "%s: no answer for %d s", c->host, c->timeout_ms / 1000);
	}
}

ssize_t netconn_read(struct netconn *c, void *buf, size_t len, struct arca_err *err)
{
	if (len == 0)
		return 0;
	size_t have = netconn_take_buffered(c, buf, len);
	if (have > 0)
		return (ssize_t)have;
	return raw_read(c, buf, len, err);
}

int netconn_write_all(struct netconn *c, const void *buf, size_t len, struct arca_err *err)
{
	const uint8_t *p = buf;
	while (len > 0) {
		if (c->tls_started) {
			ERR_clear_error();
			int w = SSL_write(c->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
			if (w > 0) {
				p += w;
				len -= (size_t)w;
				continue;
			}
			int e = SSL_get_error(c->ssl, w);
			short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
			if (ev == 0)
				return arca_err_set(err, ARCA_EIO, "%s: TLS write failed: %s", c->host, ssl_reason());
			if (wait_fd(c->fd, ev, c->timeout_ms) != 0)
				return arca_err_set(err, ARCA_EIO, "%s: write timed out", c->host);
			continue;
		}
		ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			len -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(c->fd, POLLOUT, c->timeout_ms) != 0)
				return arca_err_set(err, ARCA_EIO, "%s: write timed out", c->host);
			continue;
		}
		return arca_err_set(err, ARCA_EIO, "%s: write failed: %s", c->host,
				    w < 0 ? strerror(errno) : "connection closed");
	}
	return 0;
}

static int fill(struct netconn *c, struct arca_err *err)
{
	if (c->pos == c->end)
		c->pos = c->end = 0;
	if (c->end == sizeof(c->buf)) {
		memmove(c->buf, c->buf + c->pos, c->end - c->pos);
		c->end -= c->pos;
		c->pos = 0;
	}
	ssize_t n = raw_read(c, c->buf + c->end, sizeof(c->buf) - c->end, err);
	if (n < 0)
		return (int)n;
	if (n == 0)
		return arca_err_set(err, ARCA_EIO, "%s: connection closed by the server", c->host);
	c->end += (size_t)n;
	return 0;
}

int netconn_read_line(struct netconn *c, struct abuf *line, size_t max, struct arca_err *err)
{
	abuf_reset(line);
	for (;;) {
		uint8_t *s = c->buf + c->pos;
		uint8_t *nl = memchr(s, '\n', c->end - c->pos);
		size_t take = nl ? (size_t)(nl - s) : c->end - c->pos;
		if (line->len + take > max + 1)   /* +1: a CR before the LF */
			return arca_err_set(err, ARCA_ELIMIT, "%s: a line longer than %zu bytes", c->host, max);
		if (abuf_add(line, s, take) != 0)
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		c->pos += take;
		if (nl) {
			c->pos++;   /* the LF */
			if (line->len > 0 && line->data[line->len - 1] == '\r')
				line->len--;
			if (line->len > max)
				return arca_err_set(err, ARCA_ELIMIT, "%s: a line longer than %zu bytes", c->host, max);
			return abuf_cstr(line) ? arca_err_set(err, ARCA_ENOMEM, "out of memory") : 0;
		}
		int rc = fill(c, err);
		if (rc)
			return rc;
	}
}

int netconn_read_exact(struct netconn *c, struct abuf *out, size_t n, struct arca_err *err)
{
	if (abuf_reserve(out, n) != 0)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	while (n > 0) {
		if (c->pos == c->end) {
			int rc = fill(c, err);
			if (rc)
				return rc;
		}
		size_t take = c->end - c->pos < n ? c->end - c->pos : n;
		if (abuf_add(out, c->buf + c->pos, take) != 0)
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		c->pos += take;
		n -= take;
	}
	return 0;
}

size_t netconn_take_buffered(struct netconn *c, void *buf, size_t len)
{
	size_t have = c->end - c->pos;
	if (have > len)
		have = len;
	memcpy(buf, c->buf + c->pos, have);
	c->pos += have;
	return have;
}
