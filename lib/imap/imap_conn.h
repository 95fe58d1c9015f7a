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
#include <stdint.h>

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
 * What the server said in its last tagged answer, and a guard on the
 * literals it announces.  libetpan reports a FETCH as successful when some
 * FETCH responses arrived even if the command ended in NO ("Some messages
 * could not be FETCHed"), so we watch the received bytes ourselves: a small
 * lexer that finds response starts (skipping literals) and notes the status
 * word of tagged lines.
 *
 * The same lexer is the literal guard (IMAP_LITERAL_MAX).  To skip literal
 * data exactly where libetpan does, it reads the bytes as libetpan's
 * grammar does: a line starting with '+', or whose second word (runs of
 * spaces and tabs are one separator, as libetpan takes them) is a status
 * word (OK NO BAD BYE PREAUTH), is text from there; elsewhere '"' opens a
 * quoted string and '{' can only start a literal ('{' is an
 * atom-special), which must be "{N}" then CRLF.  What libetpan might read
 * otherwise is refused: a '{' that starts no literal outside text, a
 * literal not followed by CRLF (libetpan takes it anyway), a '{' inside a
 * response code ("[...]" first in the text: libetpan parses astrings
 * there), "{N}" CRLF at the end of status text, a tag over IMAP_WORD0_MAX
 * bytes, an answer over its limit (answer_max).  N is read saturating, so
 * "{4294967301}" is refused rather than read as libetpan's wrapped 5.
 * Pure; fuzzed (tests/fuzz/fuzz_imap_tagwatch.c).
 */
enum imap_tag_status { IMAP_TAG_NONE = 0, IMAP_TAG_OK, IMAP_TAG_NO, IMAP_TAG_BAD };
/*
 * The largest literal a server may announce.  libetpan allocates a literal
 * whole as soon as it has parsed "{N}" (and N wraps at 2^32), so a hostile
 * server could make the pull allocate gigabytes with one line: the stream
 * driver refuses the bytes before libetpan sees them.  Nothing we ask for
 * is larger than a whole message of up to PULL_INMEM_MAX (32 MiB, bigger
 * ones come in pieces: lib/imap/pull.c); twice that leaves room.
 */
#define IMAP_LITERAL_MAX (64u << 20)   /* refused from this size on */
/*
 * The most a server may send between two tagged lines: libetpan keeps a
 * command's whole answer in memory until it ends, so unasked-for FETCH
 * answers could otherwise grow it without end.  Our largest answers of a
 * fixed size: a body batch (16 MiB) or one message up to 32 MiB, 5000
 * metadata records, 2000 header windows of a restore
 * (lib/imap/imap_append.c).  Answers that grow with the folder (UID SEARCH
 * ALL, UID FETCH 1:* CHANGEDSINCE) get IMAP_RECORD_BYTES more per message
 * the folder holds (imap_conn_expect_records).
 */
#define IMAP_ANSWER_MAX (128u << 20)
#define IMAP_RECORD_BYTES 1024u
#define IMAP_WORD0_MAX 32             /* "*", "+" or one of our tags */
enum imap_text { IMAP_TEXT_START = 0, IMAP_TEXT_CODE, IMAP_TEXT_PLAIN };
enum imap_brace { IMAP_BRACE_NONE = 0, IMAP_BRACE_OPEN, IMAP_BRACE_MINUS, IMAP_BRACE_DIGITS,
		  IMAP_BRACE_CLOSE, IMAP_BRACE_CLOSE_CR };
struct imap_tagwatch {
	char head[48];                /* the start of the response being read */
	size_t headlen;
	unsigned words;               /* words ended in the first segment (up to 2) */
	char word[8];                 /* the current one's start (a status word fits) */
	size_t wordlen;               /* its whole length */
	bool in_word;
	bool first_segment;           /* before any literal of this response */
	bool text;                    /* the rest of this line is resp-text */
	int text_pos;                 /* enum imap_text: where in it */
	bool quoted, escaped;         /* inside a quoted string (not text) */
	int brace;                    /* enum imap_brace: where in "{N}" CRLF */
	bool brace_digits;
	uint64_t brace_n;             /* N so far, saturating */
	uint64_t literal_left;        /* bytes of a literal still to skip */
	uint64_t answer_bytes;        /* since the last tagged line */
	uint64_t answer_max;          /* 0: IMAP_ANSWER_MAX */
	uint64_t oversize;            /* N of a literal over IMAP_LITERAL_MAX (UINT64_MAX: more than fits) */
	const char *refused;          /* why the stream was refused; NULL while not */
	int last;                     /* enum imap_tag_status of the last tagged line */
	char last_text[96];           /* its text, printable */
};
void imap_tagwatch_init(struct imap_tagwatch *w);
/* Feed received bytes (in any split); nothing more is read once refused. */
void imap_tagwatch_feed(struct imap_tagwatch *w, const uint8_t *p, size_t n);
/* What a stream driver does with each read: feed the bytes, and -1 (the
 * bytes must not reach libetpan) once the stream is refused, by these
 * bytes or earlier ones. */
int imap_tagwatch_take(struct imap_tagwatch *w, const uint8_t *p, size_t n);

struct imap_conn {
	mailimap *imap;
	struct netconn *nc;           /* owned through the stream driver */
	const char *host;             /* for messages (the caller's string) */
	bool condstore, qresync, enabled_qresync, special_use, list_extended, uidplus;
	bool broken;                  /* a parse or stream error: libetpan and the
				       * lexer may be out of step, no LOGOUT */
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
/* The next answer is one that grows with the selected folder, which holds
 * `records` messages (EXAMINE's EXISTS): it may be IMAP_RECORD_BYTES larger
 * per message.  0 after it: back to IMAP_ANSWER_MAX. */
void imap_conn_expect_records(struct imap_conn *c, uint64_t records);
/* Fill err from a libetpan result code with the server's last words. */
int imap_conn_fail(struct imap_conn *c, int r, const char *what, struct arca_err *err);

/* What a LIST answer line says of its folder: whether it can be selected
 * (not \Noselect, not \NonExistent) and its special-use attribute
 * ("\Sent", ... written to special, left as is when there is none;
 * special_len >= 16). */
struct mailimap_mailbox_list;
bool imap_list_attrs(const struct mailimap_mailbox_list *mb, char *special, size_t special_len);

#endif
