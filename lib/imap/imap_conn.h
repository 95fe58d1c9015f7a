/*
 * imap_conn.h - a logged-in libetpan IMAP session over a netconn.
 *
 * libetpan parses the protocol; the bytes go through our netconn (OpenSSL
 * with certificate and host name checks, deadlines on every read), wrapped
 * as a libetpan stream driver.  The session is read-only by construction:
 * callers only EXAMINE, STATUS, LIST, LSUB and FETCH with BODY.PEEK.
 */
#ifndef ARCA_IMAP_CONN_H
#define ARCA_IMAP_CONN_H

#include <stdbool.h>

#include <libetpan/mailimap.h>
#include <libetpan/condstore.h>
#include <libetpan/qresync.h>
#include <libetpan/enable.h>
#include <libetpan/mailimap_extension.h>

#include "arca_err.h"
#include "netconn.h"

struct imap_conn_opts {
	struct netconn_opts net;      /* tls: plain, TLS, or STARTTLS */
	const char *user;             /* login name ("alice@example.com*admin" for a master user) */
	const char *password;
};

struct imap_conn {
	mailimap *imap;
	struct netconn *nc;           /* owned through the stream driver */
	const char *host;             /* for messages (the caller's string) */
	bool condstore, qresync, enabled_qresync, special_use, list_extended, uidplus;
	bool dovecot;                 /* greeting or ID says Dovecot: X-GUID works */
};

/* Connect, STARTTLS if asked (refused if the server doesn't offer it),
 * LOGIN, CAPABILITY, ENABLE QRESYNC when offered.  A login refused by the
 * server is ARCA_EKEY. */
int imap_conn_open(const struct imap_conn_opts *o, struct imap_conn **c_r, struct arca_err *err);
/* LOGOUT (best effort) and free. */
void imap_conn_close(struct imap_conn *c);
/* Fill err from a libetpan result code with the server's last words. */
int imap_conn_fail(struct imap_conn *c, int r, const char *what, struct arca_err *err);

#endif
