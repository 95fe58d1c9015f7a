/*
 * netconn.h - one outgoing TCP connection to a mail server, plain or TLS.
 *
 * The pull side of the vault (IMAP, ManageSieve) talks to hosts that are
 * assumed compromised: every read has a deadline, every line a length limit,
 * and TLS (OpenSSL, 1.2 or later) verifies the server's certificate chain and
 * host name unless the caller explicitly allows plain text (loopback tests).
 *
 * Ownership: a struct netconn owns its socket and TLS state; netconn_free
 * closes both.  Not thread-safe; one connection per thread.
 */
#ifndef ARCA_NETCONN_H
#define ARCA_NETCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "arca_err.h"
#include "buf.h"

enum netconn_tls {
	NETCONN_PLAIN = 0,      /* no TLS at all */
	NETCONN_TLS = 1,        /* TLS from the first byte (imaps, 993) */
	NETCONN_STARTTLS = 2,   /* the protocol's STARTTLS: caller runs it, then netconn_start_tls */
};

struct netconn_opts {
	const char *host;           /* name or address; also the name checked in the certificate */
	uint16_t port;
	enum netconn_tls tls;
	const char *ca_file;        /* PEM bundle; NULL: the system's store */
	bool insecure;              /* skip certificate checks (tests only; says so in errors) */
	int timeout_ms;             /* connect and each read/write; 0: 60 s */
};

struct netconn;

/* Connect (and, for NETCONN_TLS, handshake and verify). */
int netconn_open(const struct netconn_opts *o, struct netconn **c_r, struct arca_err *err);
/* After the protocol's STARTTLS was answered OK: handshake and verify.  Any
 * byte the server sent after its OK and before the handshake is an error
 * (a plaintext injection), as is calling this twice. */
int netconn_start_tls(struct netconn *c, struct arca_err *err);
void netconn_free(struct netconn *c);

int netconn_fd(const struct netconn *c);

/* Raw I/O with the deadline: read returns bytes read (> 0), 0 at EOF, or a
 * negative ARCA_E* code (ARCA_EIO with the reason in err, also on timeout). */
ssize_t netconn_read(struct netconn *c, void *buf, size_t len, struct arca_err *err);
int netconn_write_all(struct netconn *c, const void *buf, size_t len, struct arca_err *err);

/* Buffered line reading for line protocols: one line without its CRLF (or
 * bare LF) into *line (reset first, NUL-terminated, len excludes the NUL).
 * A line longer than max is ARCA_ELIMIT; EOF before a line end is ARCA_EIO. */
int netconn_read_line(struct netconn *c, struct abuf *line, size_t max, struct arca_err *err);
/* Exactly n bytes (a literal) appended to *out, through the same buffer. */
int netconn_read_exact(struct netconn *c, struct abuf *out, size_t n, struct arca_err *err);
/* Take up to len bytes already received and buffered but not yet consumed
 * by the two calls above (netconn_read takes these first). */
size_t netconn_take_buffered(struct netconn *c, void *buf, size_t len);

#endif
