/*
 * managesieve.h - a ManageSieve (RFC 5804) client that downloads every Sieve
 * script of one account: connect, (STARTTLS,) AUTHENTICATE "PLAIN",
 * LISTSCRIPTS, GETSCRIPT for each script, LOGOUT.
 *
 * The server is hostile: every line, literal, name, script, count and the
 * total is bounded (MSIEVE_*_MAX below), every byte is checked against the
 * RFC 5804 grammar before it is believed, and nothing the server sends is
 * allocated before its size was checked.  docs/protocol/managesieve.md states
 * what is sent, what is accepted and every limit.
 *
 * Two layers:
 *  - pure parsers on byte buffers (msieve_parse_*): no I/O, no allocation,
 *    fixed-size outputs; the unit tests and the fuzzer drive them directly;
 *  - the session (msieve_session), which runs the dialogue over a small I/O
 *    table: netconn for managesieve_fetch_all, an in-memory canned server
 *    (struct msieve_memio) for tests and the fuzzer.
 *
 * Conventions: functions return 0 or a negative ARCA_E* code and fill
 * struct arca_err (may be NULL) with one line; the session's messages name
 * the server ("managesieve HOST:PORT: ...").  The library never prints.
 */
#ifndef ARCA_MANAGESIEVE_H
#define ARCA_MANAGESIEVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "buf.h"
#include "netconn.h"

/* ---- limits ------------------------------------------------------------ */

/* One line from the server, CRLF excluded. */
#define MSIEVE_LINE_MAX 8192
/* One response with its literals, as reassembled (the script literal of a
 * GETSCRIPT answer excepted: MSIEVE_SCRIPT_MAX). */
#define MSIEVE_RESPONSE_MAX 65536
/* One script, and all scripts of the account together. */
#define MSIEVE_SCRIPT_MAX (16u << 20)
#define MSIEVE_TOTAL_MAX (64u << 20)
/* A script name in bytes (RFC 5804 1.6), and how many scripts. */
#define MSIEVE_NAME_MAX 1024
#define MSIEVE_SCRIPTS_MAX 1024
/* Capability lines in one block (greeting, after STARTTLS). */
#define MSIEVE_CAPLINES_MAX 64
/* A literal's length: at most this many digits (RFC 5804: number < 2^32). */
#define MSIEVE_NUMBER_DIGITS 10
/* Response code atom kept (e.g. "QUOTA/MAXSIZE"); longer is malformed. */
#define MSIEVE_CODE_MAX 64
/* Response text kept for messages: sanitised, truncated (not an error). */
#define MSIEVE_TEXT_MAX 200
/* Parentheses in a response code's extension data. */
#define MSIEVE_NEST_MAX 8
/* SASL PLAIN authzid, authcid and password, each (RFC 4616: 255). */
#define MSIEVE_SASL_FIELD_MAX 255

/* ---- the fetched scripts ----------------------------------------------- */

/*
 * One script: `name` is a NUL-terminated, valid UTF-8 string of 1 to
 * MSIEVE_NAME_MAX bytes without control characters; `data` holds exactly the
 * bytes GETSCRIPT returned (never interpreted; may hold NULs) and is never
 * NULL, even when len == 0.  Both are heap memory owned by the enclosing
 * sieve_scripts.
 */
struct sieve_script {
	char *name;
	bool active;
	uint8_t *data;
	size_t len;
};

/* In LISTSCRIPTS order; names are distinct and at most one is active. */
struct sieve_scripts {
	struct sieve_script *v;
	size_t n;
};

/* Frees every script and the array; leaves {NULL, 0}.  NULL is fine. */
void sieve_scripts_release(struct sieve_scripts *s);

/* ---- fetching ---------------------------------------------------------- */

struct managesieve_opts {
	/* NETCONN_PLAIN (the password goes in clear: loopback tests only),
	 * NETCONN_TLS (TLS from the first byte) or NETCONN_STARTTLS (the
	 * server must advertise STARTTLS; capabilities are read again over
	 * TLS).  RFC 5804's port is 4190. */
	struct netconn_opts net;
	const char *authzid;    /* SASL PLAIN authorization id; NULL or "": none */
	const char *authcid;    /* login name, e.g. "alice@example.test*admin" */
	const char *password;
};

/*
 * Download every script of the account.  On success *out (which must be
 * {NULL, 0} on entry) holds them; the caller releases it with
 * sieve_scripts_release.  On failure *out is left {NULL, 0}.  Errors:
 * ARCA_EIO (network, or the server refused a step: its NO/BYE text is in the
 * message), ARCA_EKEY (authentication refused), ARCA_EBUSY (the server said
 * TRYLATER), ARCA_ENOENT (a listed script vanished before GETSCRIPT),
 * ARCA_EFORMAT (malformed answer), ARCA_ELIMIT, ARCA_EINVAL (bad options),
 * ARCA_ENOMEM.
 */
int managesieve_fetch_all(const struct managesieve_opts *o, struct sieve_scripts *out,
			  struct arca_err *err);

/* ---- restoring --------------------------------------------------------- */

/* A script to put on the server: name as msieve_name_check allows it,
 * data of at most MSIEVE_SCRIPT_MAX bytes (not copied). */
struct msieve_put {
	const char *name;
	const uint8_t *data;
	size_t len;
	bool active;
};

struct msieve_put_result {
	size_t put;             /* PUTSCRIPT sent (missing, or other content) */
	size_t same;            /* already there with the same bytes: left alone */
	size_t renamed;         /* put (or found) as NAME-restored[-k] (sieve_names.h):
				 * the server has another script named NAME */
	bool activated;         /* SETACTIVE sent */
	bool active_already;    /* the active one was already active */
	bool active_kept;       /* the server has another script active: it stays */
	char server_active[MSIEVE_NAME_MAX + 1];   /* its name (active_kept) */
};

/*
 * Restore scripts: log in, LISTSCRIPTS, GETSCRIPT each listed script that
 * has the name of one of v[] (or that name with MSIEVE_RESTORED_SUFFIX) to
 * compare, PUTSCRIPT those missing (as a non-synchronizing literal), SETACTIVE
 * the one marked active unless it already is, LOGOUT.  Nothing on the server
 * is written over: a script the server has under the same name with other
 * bytes (made since the attack) stays, and ours goes in as NAME-restored
 * (or NAME-restored-2..9 when that is taken too: sieve_names.h);
 * when the server has another script active, it stays active
 * (res->active_kept).  Scripts on the server that v[] does not name are left
 * alone.  Names must be distinct, at most one active
 * (ARCA_EINVAL otherwise, before connecting).  A refused PUTSCRIPT (e.g.
 * a script the server's Sieve does not accept, or over quota) is ARCA_EIO
 * with the server's words; the scripts put before it stay.  Other errors
 * as managesieve_fetch_all.
 */
int managesieve_put_all(const struct managesieve_opts *o, const struct msieve_put *v, size_t n,
			struct msieve_put_result *res, struct arca_err *err);

/* ---- the session over an I/O table (tests, fuzzer) --------------------- */

/*
 * What the session needs from a connection; netconn's functions have this
 * shape.  read_line: one line without its CRLF (or bare LF) into *line, reset
 * first; longer than max is ARCA_ELIMIT, EOF is ARCA_EIO.  read_exact: n bytes
 * appended to *out.  start_tls: after the server's OK to STARTTLS.
 */
struct msieve_io {
	void *ctx;
	int (*read_line)(void *ctx, struct abuf *line, size_t max, struct arca_err *err);
	int (*read_exact)(void *ctx, struct abuf *out, size_t n, struct arca_err *err);
	int (*write_all)(void *ctx, const void *p, size_t n, struct arca_err *err);
	int (*start_tls)(void *ctx, struct arca_err *err);
};

/*
 * The whole dialogue after the connection is open: greeting, STARTTLS when
 * o->net.tls == NETCONN_STARTTLS, AUTHENTICATE, LISTSCRIPTS, GETSCRIPT each,
 * LOGOUT (whose answer is read but not required).  `peer` names the server in
 * messages ("host:port").  Same results as managesieve_fetch_all; o->net is
 * used only for .tls.
 */
int msieve_session(const struct msieve_io *io, const struct managesieve_opts *o,
		   const char *peer, struct sieve_scripts *out, struct arca_err *err);

/* managesieve_put_all's dialogue after the connection is open. */
int msieve_put_session(const struct msieve_io *io, const struct managesieve_opts *o,
		       const char *peer, const struct msieve_put *v, size_t n,
		       struct msieve_put_result *res, struct arca_err *err);

/*
 * A canned server in memory: reads come from `in` (not copied; must outlive
 * the memio), writes are appended to `sent`, start_tls only counts.  At the
 * end of `in` reads fail with ARCA_EIO as a closed connection would.
 */
struct msieve_memio {
	const uint8_t *in;
	size_t len, pos;
	struct abuf sent;
	unsigned tls_started;
};
void msieve_memio_init(struct msieve_memio *m, const void *in, size_t len, struct msieve_io *io_r);
void msieve_memio_release(struct msieve_memio *m);

/* ---- pure parsers ------------------------------------------------------ */

/*
 * A logical line is what the session reassembles from the wire: a line,
 * and whenever it ends in a literal header "{n}" (or "{n+}"), "\r\n", the n
 * literal bytes and the rest of the line after them, again and again; CRLFs
 * at line ends are not included, the CRLF after a literal header is.  Every
 * parser below takes exactly one logical line and rejects anything left over.
 */

/*
 * `p` is exactly "{" 1*10DIGIT ["+"] "}".  The value, at most max (else
 * ARCA_ELIMIT), goes to *len_r, whether it had the "+" to *plus_r (may be
 * NULL).  ARCA_EFORMAT for anything else.
 */
int msieve_parse_literal_header(const uint8_t *p, size_t n, size_t max, size_t *len_r,
				bool *plus_r, struct arca_err *err);

/*
 * Whether a physical line ends with a literal header: 1 (its value in
 * *len_r), 0 (it does not end with '{' digits ['+'] '}'), or ARCA_EFORMAT /
 * ARCA_ELIMIT when it does but the number is too long or above max.
 */
int msieve_line_literal(const uint8_t *line, size_t n, size_t max, size_t *len_r,
			struct arca_err *err);

/* A logical line starting with '"' or '{' is data (a capability, a script
 * name, a script, a SASL challenge); anything else is a response. */
bool msieve_line_is_data(const uint8_t *p, size_t n);

enum msieve_status { MSIEVE_OK = 0, MSIEVE_NO, MSIEVE_BYE };

struct msieve_response {
	enum msieve_status status;
	/* The response code's atom, upper-cased ("TRYLATER", "QUOTA/MAXSIZE",
	 * "SASL"), "" when there is none; its arguments are checked and dropped. */
	char code[MSIEVE_CODE_MAX + 1];
	/* The human-readable string, "" when none: control characters and
	 * invalid UTF-8 become '?', cut at MSIEVE_TEXT_MAX bytes (on a
	 * character boundary).  Safe to print. */
	char text[MSIEVE_TEXT_MAX + 1];
};

/* response = ("OK" / "NO" / "BYE") [SP "(" resp-code ")"] [SP string]
 * (keywords in any case).  ARCA_EFORMAT for anything else. */
int msieve_parse_response(const uint8_t *p, size_t n, struct msieve_response *r,
			  struct arca_err *err);

/* What the session needs of the capabilities; everything else is skipped
 * (after its grammar was checked). */
struct msieve_caps {
	unsigned lines;          /* capability lines seen in this block */
	bool starttls;           /* "STARTTLS" */
	bool sasl;               /* a "SASL" line was seen */
	bool sasl_plain;         /* ... naming PLAIN */
	bool version;            /* a "VERSION" line was seen */
	char sasl_list[128];     /* the SASL value, sanitised, for messages */
	char implementation[128];/* "IMPLEMENTATION", sanitised, for messages */
};
void msieve_caps_init(struct msieve_caps *c);

/* capability-line = string [SP string].  Names are case-insensitive; more
 * than MSIEVE_CAPLINES_MAX lines in one block is ARCA_ELIMIT. */
int msieve_parse_capability(const uint8_t *p, size_t n, struct msieve_caps *c,
			    struct arca_err *err);

/*
 * One LISTSCRIPTS line: sieve-name [SP "ACTIVE"].  The name (decoded,
 * NUL-terminated, checked with msieve_name_check) goes to name[], which has
 * room for MSIEVE_NAME_MAX + 1 bytes; its length to *name_len_r.
 */
int msieve_parse_listscripts(const uint8_t *p, size_t n, char *name, size_t *name_len_r,
			     bool *active_r, struct arca_err *err);

/*
 * A script name as RFC 5804 1.6 allows it: 1 to MSIEVE_NAME_MAX bytes of
 * valid UTF-8 (shortest form, no surrogates, at most U+10FFFF) without
 * U+0000-001F, U+007F-009F, U+2028, U+2029.  0, ARCA_ELIMIT (too long) or
 * ARCA_EFORMAT; the message says which rule failed.
 */
int msieve_name_check(const uint8_t *p, size_t n, struct arca_err *err);

/* A logical line that is exactly one string (a GETSCRIPT answer sent quoted,
 * or a literal): the decoded bytes, at most max, appended to *out. */
int msieve_parse_string_line(const uint8_t *p, size_t n, size_t max, struct abuf *out,
			     struct arca_err *err);

/* The command argument for a name: a quoted string with '"' and '\'
 * escaped, or a non-synchronizing literal "{n+}\r\n..." when the quoted form
 * would pass RFC 5804's 1024 octets or s holds a NUL, CR or LF (which a
 * quoted string cannot).  Appended to *out; 0 or ARCA_ENOMEM. */
int msieve_quote(const char *s, size_t n, struct abuf *out);

#endif
