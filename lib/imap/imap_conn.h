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

/*
 * What the server said in its last tagged answer.  libetpan reports a
 * FETCH as successful when some FETCH responses arrived even if the
 * command ended in NO ("Some messages could not be FETCHed"), so we watch
 * the received bytes ourselves: a small lexer that finds response starts
 * (skipping literals) and notes the status word of tagged lines.  Pure;
 * fuzzed (tests/fuzz/fuzz_imap_tagwatch.c).
 */
enum imap_tag_status { IMAP_TAG_NONE = 0, IMAP_TAG_OK, IMAP_TAG_NO, IMAP_TAG_BAD };
struct imap_tagwatch {
	char head[48];                /* the start of the response being read */
	size_t headlen;
	char tail[24];                /* the last bytes of the current segment */
	size_t taillen;
	uint64_t literal_left;        /* bytes of a literal still to skip */
	bool first_segment;           /* before any literal of this response */
	int last;                     /* enum imap_tag_status of the last tagged line */
	char last_text[96];           /* its text, printable */
};
void imap_tagwatch_init(struct imap_tagwatch *w);
void imap_tagwatch_feed(struct imap_tagwatch *w, const uint8_t *p, size_t n);

struct imap_conn {
	mailimap *imap;
	struct netconn *nc;           /* owned through the stream driver */
	const char *host;             /* for messages (the caller's string) */
	bool condstore, qresync, enabled_qresync, special_use, list_extended, uidplus;
	bool dovecot;                 /* greeting or ID says Dovecot: X-GUID works */
	struct imap_tagwatch tags;
};

/* Connect, STARTTLS if asked (refused if the server doesn't offer it),
 * LOGIN, CAPABILITY, ENABLE QRESYNC when offered.  A login refused by the
 * server is ARCA_EKEY. */
int imap_conn_open(const struct imap_conn_opts *o, struct imap_conn **c_r, struct arca_err *err);
/* LOGOUT (best effort) and free. */
void imap_conn_close(struct imap_conn *c);
/* After a command libetpan called a success: did the server say OK?  If
 * not, fills err ("what" failed: the server's text) and returns ARCA_EIO. */
int imap_conn_check_ok(struct imap_conn *c, const char *what, struct arca_err *err);
/* Fill err from a libetpan result code with the server's last words. */
int imap_conn_fail(struct imap_conn *c, int r, const char *what, struct arca_err *err);

/* What a LIST answer line says of its folder: whether it can be selected
 * (not \Noselect, not \NonExistent) and its special-use attribute
 * ("\Sent", ... written to special, left as is when there is none;
 * special_len >= 16). */
struct mailimap_mailbox_list;
bool imap_list_attrs(const struct mailimap_mailbox_list *mb, char *special, size_t special_len);

#endif
