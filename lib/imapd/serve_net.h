/*
 * serve_net.h - the network side of `arca serve-imap`: listening sockets,
 * TLS, the acceptor process and one session process per connection.
 *
 * Processes (docs/serve-imap.md):
 *   keeper (the arca process: restore key, repository, passwd-file)
 *     └─ acceptor (forked BEFORE the key is read, the repository opened or
 *        the passwd-file loaded; drops to an unprivileged user with
 *        no_new_privs; dies with the keeper)
 *          └─ session, one per connection (TLS, the IMAP parser, the
 *             session; its only way to the vault is its channel)
 * For each connection the acceptor makes a socketpair, hands one end to
 * the keeper on the control socket together with the peer's address
 * (serve_ctl_send: the keeper counts failed logins by that address, which
 * a session can't forge), and forks the session with the other end.  The
 * greeting never waits for the keeper (which may still be reading the
 * passphrase): the session's first request simply waits in its channel.
 */
#ifndef ARCA_SERVE_NET_H
#define ARCA_SERVE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "arca_err.h"

struct serve_listener {
	int fd;
	bool tls;                 /* implicit TLS (imaps) */
	bool loopback;            /* bound to 127.0.0.0/8 or ::1 */
	char name[80];            /* "127.0.0.1:1143" as bound (the real port for :0) */
};

/* Bind and listen on "ADDR:PORT" ("[ADDR]:PORT" for IPv6; PORT 0 takes a
 * free one). */
int serve_net_listen(const char *addr_port, bool tls, struct serve_listener *l,
		     struct arca_err *err);

/* A TLS server context (TLS 1.2 or later, no renegotiation, no session
 * tickets) from PEM files: the certificate chain and its private key. */
SSL_CTX *serve_net_tls_ctx(const char *cert, const char *key, struct arca_err *err);

#define SERVE_MAX_PER_ADDRESS 20
/* The network side's root when started as root (empty, root's). */
#define SERVE_EMPTY_ROOT "/run/arca-serve-empty"
#define SERVE_HANDSHAKE_TIMEOUT_MS (60 * 1000)
#define SERVE_WRITE_TIMEOUT_MS (5 * 60 * 1000)

struct serve_net_opts {
	const struct serve_listener *listeners;
	size_t nlisteners;
	SSL_CTX *tls;               /* NULL: no TLS (then every listener must be plain) */
	const char *run_as;         /* user for the acceptor and sessions; NULL: nobody */
	unsigned max_sessions;      /* 0: 1000 */
	unsigned max_per_address;   /* sessions from one client address; 0: SERVE_MAX_PER_ADDRESS */
	int log_fd;                 /* the sessions' and acceptor's log lines */
	const char *greeting_name;  /* NULL: "Arca vault (read-only)" */
	int idle_timeout_ms;        /* 0: the session's default */
	int login_timeout_ms;
	int handshake_timeout_ms;   /* TLS handshake; 0: SERVE_HANDSHAKE_TIMEOUT_MS */
	int write_timeout_ms;       /* a client not taking our bytes; 0: SERVE_WRITE_TIMEOUT_MS */
	/* Environment variables the acceptor wipes (value bytes zeroed, then
	 * unset) first thing: e.g. ARCA_PASSPHRASE, which fork would
	 * otherwise hand down to every session.  NULL-terminated, or NULL. */
	const char *const *scrub_env;
};

/* Fork the acceptor.  Call before any secret is in memory.  *ctl_r: the
 * keeper's end of the control socket (SOCK_SEQPACKET); *pid_r the
 * acceptor's pid.  The listeners stay open in the caller (close them). */
int serve_net_spawn(const struct serve_net_opts *o, pid_t *pid_r, int *ctl_r, struct arca_err *err);

/* One log line: "TIME arca serve-imap[PID]: LINE\n" in one write(2). */
void serve_log_write(int fd, const char *line);

#endif
