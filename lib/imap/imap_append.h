/*
 * imap_append.h - writing into an IMAP server for `arca restore imap`
 * (docs/restore-imap.md): folder names on the wire, CREATE with SPECIAL-USE,
 * SUBSCRIBE, what a folder already holds (the keys that make a re-run skip
 * what an earlier run appended), and APPEND / MULTIAPPEND of messages
 * streamed from a file with flags, keywords and INTERNALDATE.
 *
 * libetpan (imap_conn) logs in and runs LIST, LSUB, EXAMINE and FETCH.
 * CREATE, SUBSCRIBE and APPEND are written by us on the same stream, because
 * libetpan knows neither MULTIAPPEND, LITERAL+, literal8 nor CREATE ... USE,
 * and holds a whole literal in memory; their answers are read by a bounded
 * line reader and parsed by iapp_parse_line (pure; fuzzed in
 * tests/fuzz/fuzz_imap_append.c with the rest of the pure parts).
 *
 * The server is hostile: every answer line is at most IAPP_LINE_MAX bytes,
 * an untagged literal met while waiting for our tag is skipped in bounded
 * reads and must be at most IAPP_SKIP_MAX, what we print of its words is
 * sanitised.  Functions return 0 or a negative ARCA_E* code with a message
 * naming the server and the folder in err.
 */
#ifndef ARCA_IMAP_APPEND_H
#define ARCA_IMAP_APPEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "arca_err.h"
#include "buf.h"
#include "imap_conn.h"

/* ---- limits ---- */

/* One answer line (without CRLF) read while writing. */
#define IAPP_LINE_MAX 16384
/* An untagged literal skipped while waiting for a tagged answer. */
#define IAPP_SKIP_MAX (1u << 20)
/* How much of a message's header is searched for Message-ID. */
#define IAPP_HEADER_SCAN_MAX (256u << 10)
/* A Message-ID value kept (longer ones are cut, the hash covers the cut). */
#define IAPP_MSGID_MAX 998
/* The prefix hashed for messages without Message-ID. */
#define IAPP_PREFIX_LEN 1024
/* Messages in one MULTIAPPEND, and the bytes of their literals together. */
#define IAPP_BATCH_MAX 1000
/* Messages fetched per FETCH when reading what a folder holds. */
#define IAPP_FETCH_WINDOW 2000
/* A message on the wire: IMAP literals are numbers < 2^32. */
#define IAPP_MESSAGE_MAX UINT32_MAX

/* ---- what the server offers ---- */

struct iapp_caps {
	bool multiappend;          /* RFC 3502 */
	bool literal_plus;         /* RFC 7888 LITERAL+: {n+} needs no "+" */
	bool create_special_use;   /* RFC 6154 CREATE ... (USE (\Sent)) */
	bool special_use;          /* LIST RETURN (SPECIAL-USE) */
	bool binary;               /* RFC 3516: literal8 ~{n} for NULs */
	char delimiter;            /* hierarchy delimiter ('\0': flat) */
};
/* From the capabilities libetpan read after LOGIN, plus LIST "" "" for the
 * delimiter. */
int iapp_caps_get(struct imap_conn *c, struct iapp_caps *caps, struct arca_err *err);

/* ---- folder names ---- */

/* A snapshot folder name (UTF-8, levels split by '/', "INBOX") as the
 * server spells it: modified UTF-7, levels joined by delim.  ARCA_EFORMAT
 * when a level holds the delimiter (or the name is not valid UTF-8, or
 * delim is '\0' and the name has levels): such a folder can't be made. */
int iapp_wire_name(const char *name, char delim, struct abuf *out);
/* The IMAP quoted string for s (which must be printable ASCII: what
 * iapp_wire_name makes), '"' and '\' escaped; appended to out. */
int iapp_quote(const char *s, struct abuf *out);

/* One folder the server has (LIST "" "*", LSUB "" "*"). */
struct iapp_folder {
	char *wire;                /* as the server spells it */
	char *name;                /* UTF-8, '/' levels (NULL: can't be decoded) */
	bool selectable;           /* not \Noselect / \NonExistent */
	bool subscribed;
	char special[16];          /* "\Sent" etc. or "" */
};
struct iapp_folders {
	struct iapp_folder *v;
	size_t n;
};
int iapp_list(struct imap_conn *c, const struct iapp_caps *caps, struct iapp_folders *out,
	      struct arca_err *err);
void iapp_folders_release(struct iapp_folders *f);
/* The listed folder of that wire name, or NULL. */
struct iapp_folder *iapp_folders_find(struct iapp_folders *f, const char *wire);

/* ---- the raw command channel (CREATE, SUBSCRIBE, APPEND) ---- */

/*
 * The stream the raw commands run over: libetpan's mailstream in
 * production (iapp_io_conn), a canned server in tests and the fuzzer.
 * read returns the number of bytes read (> 0) or a negative ARCA_E*; EOF
 * is ARCA_EIO.
 */
struct iapp_io {
	void *ctx;
	int (*write)(void *ctx, const void *p, size_t n, struct arca_err *err);
	int (*flush)(void *ctx, struct arca_err *err);
	ssize_t (*read)(void *ctx, void *p, size_t n, struct arca_err *err);
	const char *peer;          /* the server, for messages */
	unsigned tagn;             /* our tags: "R<n>" */
	/* a fault point between the last byte of an APPEND and its answer
	 * (tests: a restore killed there must not duplicate on re-run) */
	void (*sent_hook)(void *hook_ctx);
	void *hook_ctx;
};
void iapp_io_conn(struct imap_conn *c, struct iapp_io *io);

/* One answer line, parsed. */
enum iapp_kind { IAPP_CONTINUE = 1, IAPP_UNTAGGED, IAPP_TAGGED };
enum iapp_status { IAPP_NONE = 0, IAPP_OK, IAPP_NO, IAPP_BAD, IAPP_BYE, IAPP_PREAUTH };
struct iapp_line {
	enum iapp_kind kind;
	enum iapp_status status;   /* tagged; untagged OK/NO/BAD/BYE/PREAUTH; else NONE */
	char code[32];             /* response code atom upper-cased ("TRYCREATE"), or "" */
	uint32_t appenduid_validity, appenduid_first, appenduid_last;   /* APPENDUID, or 0 */
	bool has_literal;          /* an untagged line ending in "{n}" */
	uint64_t literal;
	char text[160];            /* printable ASCII, cut */
};
/*
 * One line (CRLF removed) as an answer to tag `tag`: "+ ...", "* ...", or
 * "<tag> OK|NO|BAD [code] text".  A tagged line with another tag, a
 * malformed status, a literal size of more than 19 digits: ARCA_EFORMAT.
 */
int iapp_parse_line(const uint8_t *p, size_t n, const char *tag, struct iapp_line *out,
		    struct arca_err *err);

/* A simple command (e.g. "CREATE \"x\""): its tagged answer in *ans (OK,
 * NO or BAD; untagged lines are skipped).  Errors only for the connection
 * or a malformed answer. */
int iapp_simple(struct iapp_io *io, const char *cmd, struct iapp_line *ans, struct arca_err *err);

/*
 * CREATE the folder (with " (USE (special))" when caps->create_special_use
 * and special is one of RFC 6154's "\\Sent" etc.), SUBSCRIBE, DELETE.  The
 * server's answer is in *ans (a CREATE answered [ALREADYEXISTS] is made
 * OK); errors only for the connection or a malformed answer.
 */
int iapp_create(struct iapp_io *io, const struct iapp_caps *caps, const char *wire,
		const char *special, struct iapp_line *ans, struct arca_err *err);
int iapp_subscribe(struct iapp_io *io, const char *wire, struct iapp_line *ans, struct arca_err *err);
int iapp_delete(struct iapp_io *io, const char *wire, struct iapp_line *ans, struct arca_err *err);

/* ---- messages ---- */

/*
 * What identifies a message in a folder, the same for a message in the
 * snapshot (computed from its bytes, with every bare LF as CRLF as IMAP
 * serves it) and for a message on the server (RFC822.SIZE, INTERNALDATE,
 * BODY[HEADER.FIELDS (MESSAGE-ID)], BODY[]<0.1024>):
 *   kind 1: Message-ID found: hash = BLAKE2b-128 of its unfolded, trimmed value;
 *   kind 2: none: hash = BLAKE2b-128 of the first IAPP_PREFIX_LEN bytes;
 *   kind 0: none and the prefix unknown (a server message whose date no
 *           snapshot message has): never equal to anything.
 */
struct iapp_key {
	int64_t date;              /* seconds since the epoch, UTC */
	uint64_t size;             /* with CRLF line ends */
	uint8_t kind;
	uint8_t hash[16];
};
int iapp_key_cmp(const struct iapp_key *a, const struct iapp_key *b);

/*
 * The Message-ID field's value in a header block (the first field of that
 * name, case-insensitive; the header ends at the first empty line or after
 * max bytes): unfolded (CR and LF dropped), leading and trailing SP/HTAB
 * trimmed, at most IAPP_MSGID_MAX bytes kept.  1 found (value in *out),
 * 0 none (an empty value counts as none), ARCA_ENOMEM.
 */
int iapp_message_id(const uint8_t *p, size_t n, struct abuf *out);

/* What a message's bytes say, read from fd at [off, off + len). */
struct iapp_content {
	uint64_t raw_len;          /* bytes in the file */
	uint64_t wire_len;         /* on the wire: each bare LF becomes CRLF */
	bool has_nul;              /* needs literal8 (BINARY) */
	struct iapp_key key;       /* date set from the caller */
};
int iapp_content_scan(int fd, uint64_t off, uint64_t len, int64_t date,
		      struct iapp_content *out, struct arca_err *err);

/* The multiset of keys a folder holds; iapp_holdings_take removes one
 * equal key and says whether there was one. */
struct iapp_holdings {
	struct iapp_key *v;
	bool *taken;
	size_t n;
	uint64_t no_msgid;         /* messages without Message-ID */
	uint64_t prefixes_fetched; /* of those, whose first KB was read */
};
bool iapp_holdings_take(struct iapp_holdings *h, const struct iapp_key *k);
void iapp_holdings_release(struct iapp_holdings *h);
/* Sort and index (after filling v/n by hand, e.g. in tests). */
int iapp_holdings_index(struct iapp_holdings *h);

/*
 * EXAMINE the folder and read its messages' keys (in windows of
 * IAPP_FETCH_WINDOW): for those without Message-ID whose INTERNALDATE is
 * in dates[] (sorted ascending), also their first IAPP_PREFIX_LEN bytes.
 */
int iapp_holdings_read(struct imap_conn *c, const char *wire, const int64_t *dates,
		       size_t ndates, struct iapp_holdings *out, struct arca_err *err);

/* One message to append, its bytes in fd at [off, off + content.raw_len). */
struct iapp_msg {
	int fd;
	uint64_t off;
	struct iapp_content content;
	uint32_t flags;            /* Maildir letters: bit (c - 'A') */
	const char *const *keywords;
	size_t nkeywords;
	int64_t date;
};

/* "(\Seen \Flagged kw)" for a message: Maildir S R F T D as \Seen
 * \Answered \Flagged \Deleted \Draft, then the keywords that are IMAP atoms
 * (others are skipped and counted in *skipped_r). */
int iapp_flag_list(uint32_t flags, const char *const *kw, size_t nkw, struct abuf *out,
		   size_t *skipped_r);
/* "dd-Mon-yyyy hh:mm:ss +0000" (quoted); ARCA_EINVAL outside years 1..9999. */
int iapp_date_time(int64_t t, struct abuf *out);

/*
 * APPEND n messages to the folder: one APPEND when n == 1, else one
 * MULTIAPPEND (needs caps->multiappend).  Literals are {n+} with LITERAL+,
 * else {n} waiting for "+"; ~{n} for a message with NULs when the server
 * has BINARY.  Bytes are streamed from the file, each bare LF sent as CRLF.
 * *ans gets the tagged answer: OK means all were stored, NO or BAD that
 * none was (RFC 3502: MULTIAPPEND is all or nothing).  Errors for the
 * connection, a malformed answer, or a file that changed under us (the
 * connection is then unusable: the literal could not be finished).
 */
int iapp_append(struct iapp_io *io, const struct iapp_caps *caps, const char *wire,
		const struct iapp_msg *m, size_t n, struct iapp_line *ans, struct arca_err *err);

/* A canned server for tests and the fuzzer: reads come from in (not
 * copied), writes are kept in sent. */
struct iapp_memio {
	const uint8_t *in;
	size_t len, pos;
	struct abuf sent;
	size_t max_read;           /* bytes per read at most (0: all) */
};
void iapp_memio_init(struct iapp_memio *m, const void *in, size_t len, struct iapp_io *io_r);
void iapp_memio_release(struct iapp_memio *m);

#endif
