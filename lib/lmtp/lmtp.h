/*
 * lmtp.h - the LMTP protocol (RFC 2033 over the RFC 5321 grammar) as arcad
 * speaks it: command lines, DATA and BDAT bodies, journal addresses.
 *
 * Pure functions: no I/O, no clocks, no global state.  Every byte comes from
 * the network and is hostile.  Nothing here allocates, except that the DATA
 * and BDAT decoders append message bytes to a caller's struct abuf, and never
 * more than the max_size the caller gave them.  docs/protocol/lmtp.md states
 * every rule byte by byte.
 *
 * Conventions: functions return 0 (or a non-negative status where stated) or
 * a negative ARCA_E* code and fill struct arca_err (may be NULL) with one
 * line.  Out-parameters end in _r.  Structs here hold no pointers to heap
 * memory: they are plain values, filled in place, and need no release.
 */
#ifndef ARCA_LMTP_H
#define ARCA_LMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "buf.h"

/* ---- limits ------------------------------------------------------------ */

/*
 * A command line, terminator included, may be LMTP_LINE_MAX bytes (RFC 5321
 * 4.5.3.1.4 says 512; arcad is lenient up to the text-line limit), so its
 * content is at most LMTP_CMD_MAX bytes.
 */
#define LMTP_LINE_MAX 1000
#define LMTP_CMD_MAX (LMTP_LINE_MAX - 2)
/* Decoded local part (SMTP says 64; lenient). */
#define LMTP_LOCAL_MAX 256
/* Domain or address literal, brackets included. */
#define LMTP_DOMAIN_MAX 255
/* A path as received, from '<' to '>' inclusive, source route included. */
#define LMTP_PATH_MAX 512
/* "local@domain" decoded. */
#define LMTP_ADDR_MAX (LMTP_LOCAL_MAX + 1 + LMTP_DOMAIN_MAX)
/* Most parameters after MAIL FROM:<..> or RCPT TO:<..>. */
#define LMTP_PARAMS_MAX 16
/* ENVID decoded (RFC 3461 4.4). */
#define LMTP_ENVID_MAX 100
/* ORCPT address type, and the decoded original recipient. */
#define LMTP_ORCPT_TYPE_MAX 32
#define LMTP_ORCPT_MAX 512

/* ---- replies ----------------------------------------------------------- */

/*
 * What went wrong with a command, each with the reply the server sends as is
 * (lmtp_reply_for; text without CRLF).  The last group is not produced by the
 * parser: it names replies for conditions the server detects, so that every
 * reply text lives in one table.
 */
enum lmtp_perr {
	LMTP_PE_NONE = 0,
	LMTP_PE_LINE_TOO_LONG,   /* 500 5.5.2 Line too long */
	LMTP_PE_BAD_CHAR,        /* 500 5.5.2 ... invalid character */
	LMTP_PE_UNKNOWN_VERB,    /* 500 5.5.1 Command unrecognized */
	LMTP_PE_NOT_IMPL,        /* 502 5.5.1 (EXPN, HELP, AUTH, ...) */
	LMTP_PE_USE_LHLO,        /* 500 5.5.1 (HELO, EHLO) */
	LMTP_PE_NO_ARGS,         /* 501 5.5.4 (DATA x, QUIT x, ...) */
	LMTP_PE_LHLO_SYNTAX,     /* 501 5.5.4 Syntax: LHLO hostname */
	LMTP_PE_MAIL_SYNTAX,     /* 501 5.5.4 Syntax: MAIL FROM:<address> */
	LMTP_PE_RCPT_SYNTAX,     /* 501 5.5.4 Syntax: RCPT TO:<address> */
	LMTP_PE_BDAT_SYNTAX,     /* 501 5.5.4 Syntax: BDAT size [LAST] */
	LMTP_PE_VRFY_SYNTAX,     /* 501 5.5.4 Syntax: VRFY address */
	LMTP_PE_BAD_SENDER,      /* 501 5.1.7 Bad sender address syntax */
	LMTP_PE_BAD_RCPT,        /* 501 5.1.3 Bad recipient address syntax */
	LMTP_PE_SENDER_TOO_LONG, /* 501 5.1.7 Sender address too long */
	LMTP_PE_RCPT_TOO_LONG,   /* 501 5.1.3 Recipient address too long */
	LMTP_PE_PARAM_SYNTAX,    /* 501 5.5.4 Invalid parameter (value, duplicate) */
	LMTP_PE_PARAM_UNKNOWN,   /* 555 5.5.4 Unsupported parameter */
	LMTP_PE_TOO_MANY_PARAMS, /* 501 5.5.4 Too many parameters */
	LMTP_PE_NEED_SMTPUTF8,   /* 553 5.6.7 Non-ASCII address requires SMTPUTF8 */
	/* not from the parser: */
	LMTP_PE_MSG_TOO_BIG,     /* 552 5.3.4 Message size exceeds fixed limit */
	LMTP_PE_NOT_JOURNAL,     /* 550 5.1.1 Not a journal address */
	LMTP_PE_LOCAL_ERROR,     /* 451 4.3.0 Local error, try again later */
	LMTP_PE_COUNT
};

/* The reply line for a kind (no CRLF; never NULL).  LMTP_PE_NONE gives
 * "250 2.0.0 OK", an out-of-range kind "500 5.5.2 Syntax error". */
const char *lmtp_reply_for(int kind);

/* ---- command lines ----------------------------------------------------- */

/*
 * Splitting a byte stream into command lines.  A line ends at LF; a CR just
 * before the LF is part of the terminator.  RFC 5321 wants CRLF; a bare LF
 * is accepted for command lines (not for DATA) and reported in bare_lf.
 * A line whose content (terminator excluded) is longer than LMTP_CMD_MAX is
 * discarded whole, however long: with LMTP_LINE_MAX bytes and no LF in
 * sight, the bytes are consumed and dropping goes on until the next LF, so
 * the caller's read buffer never needs more than LMTP_LINE_MAX bytes.
 * Zero-initialise (or lmtp_lines_init) once per connection.
 */
struct lmtp_lines {
	bool skipping;  /* inside an overlong line, dropping bytes to its LF */
	bool bare_lf;   /* the line just returned ended in LF without CR */
};

enum lmtp_line_status {
	LMTP_LINE_NEED = 0,     /* no complete line: read more (after dropping
				   *consumed_r bytes, non-zero only while
				   skipping an overlong line) */
	LMTP_LINE_OK = 1,       /* in[0 .. *line_len_r) is a line (no
				   terminator); drop *consumed_r bytes */
	LMTP_LINE_TOOLONG = 2,  /* an overlong line ended: drop *consumed_r
				   bytes, answer LMTP_PE_LINE_TOO_LONG once */
};

void lmtp_lines_init(struct lmtp_lines *s);
/* Returns an lmtp_line_status, or ARCA_EINVAL for NULL arguments. */
int lmtp_line_next(struct lmtp_lines *s, const uint8_t *in, size_t inlen,
		   size_t *line_len_r, size_t *consumed_r);

enum lmtp_verb {
	LMTP_VERB_NONE = 0,  /* not recognised (error is set) */
	LMTP_LHLO,
	LMTP_MAIL,
	LMTP_RCPT,
	LMTP_DATA,
	LMTP_BDAT,
	LMTP_RSET,
	LMTP_NOOP,
	LMTP_QUIT,
	LMTP_VRFY,
	LMTP_STARTTLS,
	LMTP_HELO,           /* always fails with LMTP_PE_USE_LHLO */
	LMTP_EHLO,           /* always fails with LMTP_PE_USE_LHLO */
};

enum lmtp_body {
	LMTP_BODY_NONE = 0,  /* no BODY= parameter */
	LMTP_BODY_7BIT,
	LMTP_BODY_8BITMIME,
	LMTP_BODY_BINARYMIME,
};

enum lmtp_ret {
	LMTP_RET_NONE = 0,
	LMTP_RET_FULL,
	LMTP_RET_HDRS,
};

/* NOTIFY= bits (RFC 3461 4.1); 0 when the parameter is absent. */
#define LMTP_NOTIFY_NEVER 0x1u
#define LMTP_NOTIFY_SUCCESS 0x2u
#define LMTP_NOTIFY_FAILURE 0x4u
#define LMTP_NOTIFY_DELAY 0x8u

/*
 * A reverse-path or forward-path, decoded.  A source route (<@a,@b:u@d>) is
 * checked and dropped.  A quoted local part is unquoted ("a\"b" -> a"b), so
 * local may hold any printable ASCII, SP and UTF-8 but never a control
 * character.  Every string is NUL-terminated and holds no NUL.
 */
struct lmtp_path {
	char local[LMTP_LOCAL_MAX + 1];
	char domain[LMTP_DOMAIN_MAX + 1];  /* as received (case kept); "" when
					      the path has no "@domain" */
	char addr[LMTP_ADDR_MAX + 1];      /* local "@" domain; local alone when
					      there is no domain; "" for <> */
	bool null;          /* "<>" (MAIL only) */
	bool quoted;        /* the local part was a quoted string */
	bool source_route;  /* an "@a,@b:" route was present and dropped */
	bool utf8;          /* addr holds non-ASCII (always valid UTF-8) */
};

/*
 * One parsed command.  Fields not used by the verb are zero.  On failure,
 * verb is still set when it was recognised, error names the failure and
 * reply is lmtp_reply_for(error); on success reply is NULL.
 */
struct lmtp_cmd {
	enum lmtp_verb verb;
	enum lmtp_perr error;
	const char *reply;       /* static string, never freed */
	bool utf8;               /* the line holds non-ASCII bytes (valid UTF-8) */
	/* LHLO: the host name; VRFY: the argument; NOOP: the argument or "".
	 * Printable, no control characters. */
	char arg[LMTP_CMD_MAX + 1];
	/* MAIL, RCPT */
	struct lmtp_path path;
	/* MAIL parameters */
	bool has_size;
	uint64_t size;
	enum lmtp_body body;
	bool smtputf8;
	enum lmtp_ret ret;
	bool has_envid;          /* checked as xtext, value not kept */
	bool has_auth;           /* checked as xtext or "<>", value not kept */
	/* RCPT parameters */
	unsigned notify;         /* LMTP_NOTIFY_* */
	bool has_orcpt;
	char orcpt_type[LMTP_ORCPT_TYPE_MAX + 1];  /* e.g. "rfc822", as sent */
	char orcpt[LMTP_ORCPT_MAX + 1];  /* decoded; no control characters */
	/* BDAT */
	uint64_t bdat_size;
	bool bdat_last;
};

/*
 * Parse one command line, without its terminator (lmtp_line_next gives it).
 * Verbs and parameter keywords are case-insensitive.  On success returns 0
 * and cmd->error is LMTP_PE_NONE.  Otherwise returns ARCA_ELIMIT (a length
 * or count limit) or ARCA_EFORMAT (anything else), sets cmd->error and
 * cmd->reply, and err->msg says what was wrong without echoing the input.
 * MAIL whose address or parameters hold non-ASCII fails with
 * LMTP_PE_NEED_SMTPUTF8 unless SMTPUTF8 is among its parameters; RCPT only
 * reports cmd->utf8, which the server checks against the transaction.
 * `line` may hold any bytes (NUL included); cmd is always overwritten.
 */
int lmtp_parse_command(const char *line, size_t len, struct lmtp_cmd *cmd,
		       struct arca_err *err);

/*
 * The path as a client would send it: "<" local "@" domain ">", the local
 * part quoted (with "\" before '"' and '\') when it is not a dot-string
 * (RFC 5321 4.1.2), "<>" for the null path.  Appends to out, then
 * NUL-terminates (abuf_cstr).  Parsing the result gives the same local,
 * domain and addr.  Returns 0 or ARCA_ENOMEM.
 */
int lmtp_path_format(const struct lmtp_path *p, struct abuf *out);

/* ---- DATA (RFC 5321 4.1.1.4, 4.5.2) ------------------------------------ */

/*
 * Streaming DATA decoder.  Lines end at CRLF only.  A line "." ends the
 * message; a '.' starting any other line is removed.  Everything else is
 * kept exactly as received: CRLF stays CRLF, a bare LF or CR (not part of a
 * CRLF) is passed through and counted, and so are NUL bytes; a bare LF does
 * not start a line.  The terminator may arrive split at any byte across
 * calls; ".\r\n" right after the DATA reply is the empty message.
 *
 * Message bytes past max_size are not appended: the first max_size bytes
 * are, the rest is only counted, the end marker is still looked for, and
 * too_big tells the server to answer LMTP_PE_MSG_TOO_BIG per recipient.  If
 * appending fails (out of memory) nothing more is appended and nomem is set
 * (answer LMTP_PE_LOCAL_ERROR); the stream stays in sync either way.
 * Read the public fields after the feed that returned LMTP_DATA_DONE.
 */
struct lmtp_data {
	uint64_t max_size;
	uint64_t size;        /* message bytes after unstuffing, counted past
				 max_size too */
	uint64_t bare_lf;     /* LF not preceded by CR */
	uint64_t bare_cr;     /* CR not followed by LF */
	uint64_t nul;         /* NUL bytes */
	uint64_t lines;       /* CRLF-terminated lines (the "." excluded) */
	bool long_line;       /* a line was longer than 1000 bytes with CRLF */
	bool too_big;         /* size > max_size */
	bool nomem;           /* an append to out failed */
	bool done;            /* the end marker was read */
	/* private */
	int state;
	uint64_t line_len;
};

enum lmtp_data_status {
	LMTP_DATA_MORE = 0,   /* all input consumed; feed more */
	LMTP_DATA_DONE = 1,   /* end marker read; *consumed_r counts it, the
				 bytes after it are the next command */
};

/* max_size: most message bytes kept (0: only the empty message fits). */
void lmtp_data_init(struct lmtp_data *d, uint64_t max_size);

/*
 * Decode in[0..inlen): append message bytes to out (NULL: count only) and
 * set *consumed_r.  Returns an lmtp_data_status, ARCA_ESTATE once done, or
 * ARCA_EINVAL for NULL d, consumed_r or in (with inlen > 0).
 */
int lmtp_data_feed(struct lmtp_data *d, const uint8_t *in, size_t inlen,
		   size_t *consumed_r, struct abuf *out);

/* NULL when the message may be stored, else the reply to give each
 * recipient (too big, or local error). */
const char *lmtp_data_reply(const struct lmtp_data *d);

/* ---- BDAT (RFC 3030) --------------------------------------------------- */

/*
 * Raw chunk reader for one transaction: bytes are taken as they are (no
 * dot-stuffing, no end marker), counted like DATA's (bare_lf, bare_cr, nul
 * and long_line over the whole message, across chunks), and appended while
 * the message stays within max_size.  Per chunk: lmtp_bdat_begin with the
 * announced size, then lmtp_bdat_feed until it returns LMTP_BDAT_CHUNK_DONE.
 * too_big is known as soon as a chunk is announced that would pass max_size;
 * the chunk must still be read (RFC 3030 3) to stay in sync.
 */
struct lmtp_bdat {
	uint64_t max_size;
	uint64_t size;        /* message bytes announced so far (saturates) */
	uint64_t remaining;   /* bytes of the current chunk not yet read */
	uint64_t bare_lf, bare_cr, nul;
	bool long_line;
	bool too_big;
	bool nomem;
	bool last;            /* the current chunk was announced LAST */
	bool done;            /* the LAST chunk has been read */
	/* private */
	uint64_t taken;       /* bytes read over all chunks */
	bool in_chunk;
	bool prev_cr;
	uint64_t line_len;
};

enum lmtp_bdat_status {
	LMTP_BDAT_MORE = 0,        /* input consumed; the chunk wants more */
	LMTP_BDAT_CHUNK_DONE = 1,  /* the chunk is read; *consumed_r counts only
				      its bytes */
};

void lmtp_bdat_init(struct lmtp_bdat *b, uint64_t max_size);
/* Start a chunk (from a parsed BDAT command).  ARCA_ESTATE if a chunk is
 * still being read or the LAST chunk was read. */
int lmtp_bdat_begin(struct lmtp_bdat *b, uint64_t chunk_size, bool last);
/* Returns an lmtp_bdat_status, ARCA_ESTATE outside a chunk, ARCA_EINVAL for
 * NULL arguments.  A zero-size chunk is done at once (inlen may be 0). */
int lmtp_bdat_feed(struct lmtp_bdat *b, const uint8_t *in, size_t inlen,
		   size_t *consumed_r, struct abuf *out);
/* Like lmtp_data_reply. */
const char *lmtp_bdat_reply(const struct lmtp_bdat *b);

/* ---- journal addresses ------------------------------------------------- */

/*
 * Postfix hands arcad a copy of each message per account through
 *   recipient_bcc_maps: LOCAL@DOMAIN -> LOCAL=DOMAIN@JOURNAL      (mail in)
 *   sender_bcc_maps:    LOCAL@DOMAIN -> LOCAL=DOMAIN@out.JOURNAL  (mail out)
 * (docs/protocol/lmtp.md has the exact map lines).
 */
enum journal_dir {
	JOURNAL_IN = 1,   /* delivered to the account */
	JOURNAL_OUT = 2,  /* sent by the account */
};

/* Longest account name journal_addr_map produces ("local@domain"). */
#define JOURNAL_ACCOUNT_MAX LMTP_ADDR_MAX

/*
 * Map a decoded recipient (struct lmtp_path's addr) to its account.
 * rcpt must be LOCAL=DOMAIN@JOURNAL or LOCAL=DOMAIN@out.JOURNAL with
 * journal_domain as JOURNAL (compared ASCII case-insensitively).
 * LOCAL=DOMAIN is split at its last '='.  LOCAL: 1..LMTP_LOCAL_MAX bytes,
 * valid UTF-8, no control characters, kept as is.  DOMAIN: a host name
 * (labels of letters, digits, '-' and UTF-8, 1..63 bytes, no '-' at either
 * end, at most LMTP_DOMAIN_MAX bytes in all) or an address literal
 * ([192.0.2.1], [IPv6:2001:db8::1]); its ASCII letters are lower-cased
 * (an IPv6 literal's tag is written "IPv6:").
 * Writes "LOCAL@domain" (NUL-terminated) to account_r and the direction to
 * dir_r.  Returns 0, ARCA_ENOENT (not a journal address: wrong domain or no
 * '='), ARCA_EFORMAT (a bad LOCAL or DOMAIN), ARCA_ELIMIT (account longer
 * than cap - 1) or ARCA_EINVAL (NULL argument or an invalid journal_domain).
 * On any failure the server answers LMTP_PE_NOT_JOURNAL.
 */
int journal_addr_map(const char *rcpt, const char *journal_domain,
		     char *account_r, size_t cap, enum journal_dir *dir_r,
		     struct arca_err *err);

#endif
