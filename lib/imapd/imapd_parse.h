/*
 * imapd_parse.h - IMAP4rev1 command parser of `arca serve-imap` (RFC 3501
 * section 9, with LITERAL+ (RFC 7888), CONDSTORE/QRESYNC (RFC 7162),
 * LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), SPECIAL-USE (RFC 6154),
 * ESEARCH (RFC 4731), ENABLE, ID, SASL-IR).  Pure: no I/O, no state.
 *
 * The session (imapd_session.c) collects one whole command: its lines and,
 * after each line ending in a literal marker {n} or {n+}, exactly n bytes.
 * It hands the parser that buffer as it came off the wire, each line's CRLF
 * kept where a literal follows and the last line's CRLF removed:
 *
 *     a1 LOGIN {1}\r\nu {1+}\r\np
 *
 * Every byte is hostile.  The parser allocates only from its own arena
 * (struct imapd_cmd.arena), at most IMAPD_ARENA_MAX bytes whatever the input,
 * and enforces the limits below; a command over a limit is a syntax error
 * (BAD) with a message saying which limit.
 *
 * Ownership: every pointer in a parsed struct imapd_cmd points into the
 * command's arena and lives until imapd_cmd_release().
 */
#ifndef ARCA_IMAPD_PARSE_H
#define ARCA_IMAPD_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imapd_mime.h"

/* ---- limits ------------------------------------------------------------ */

#define IMAPD_LINE_MAX 65536          /* one line of a command, CRLF excluded */
#define IMAPD_LITERAL_MAX 65536       /* one literal's bytes */
#define IMAPD_COMMAND_MAX 262144      /* lines + literals of one command */
#define IMAPD_TAG_MAX 128
#define IMAPD_DEPTH_MAX 16            /* nested parentheses (generic arguments) */
#define IMAPD_SEARCH_DEPTH_MAX 32     /* NOT/OR/() nesting in SEARCH */
#define IMAPD_SEARCH_KEYS_MAX 1024    /* search keys in one SEARCH */
#define IMAPD_SEQ_RANGES_MAX 32768    /* ranges in one sequence set */
#define IMAPD_FETCH_ATTS_MAX 64       /* attributes in one FETCH (after macros) */
#define IMAPD_PATTERNS_MAX 64         /* LIST patterns */
#define IMAPD_ITEMS_MAX 64            /* ENABLE names, STATUS items, options */
#define IMAPD_ID_PAIRS_MAX 30         /* RFC 2971 */
#define IMAPD_STORE_KEYWORDS_MAX 64   /* keywords named in one STORE */
#define IMAPD_KEYWORD_MAX 255         /* bytes of one keyword */
#define IMAPD_ARENA_MAX (8u << 20)    /* all the parser allocates for one command */

/* ---- the literal at the end of a line ---------------------------------- */

/*
 * Does the line (CRLF excluded) end with a literal marker "{n}" or "{n+}"?
 * 1 with *n_r and *nonsync_r set; 0 if not; ARCA_ELIMIT for a marker whose
 * number has more than 19 digits (the literal is too large whatever the
 * limit; *nonsync_r set, *n_r UINT64_MAX).  Only the end of the line is looked at: a marker that turns out
 * to sit inside a quoted string makes the command a syntax error later.
 */
int imapd_line_literal(const char *line, size_t len, uint64_t *n_r, bool *nonsync_r);

/*
 * The tag at the start of a command buffer, for answering a command the
 * session could not read whole (a literal too large, a line too long): 1
 * with the tag copied (NUL-terminated) into tag (IMAPD_TAG_MAX + 1 bytes),
 * 0 if the buffer doesn't start with a valid tag and a space.
 */
int imapd_peek_tag(const char *buf, size_t len, char *tag);
/* Likewise the command name after the tag (upper-cased, up to 31 bytes);
 * "UID FETCH" style names give the word after UID. */
int imapd_peek_name(const char *buf, size_t len, char *name, size_t size);

/* ---- the parsed command ------------------------------------------------ */

enum imapd_cmd_kind {
	IMAPD_CMD_NONE = 0,
	/* any state */
	IMAPD_CMD_CAPABILITY, IMAPD_CMD_NOOP, IMAPD_CMD_LOGOUT, IMAPD_CMD_ID,
	/* not authenticated */
	IMAPD_CMD_STARTTLS, IMAPD_CMD_AUTHENTICATE, IMAPD_CMD_LOGIN,
	/* authenticated */
	IMAPD_CMD_ENABLE, IMAPD_CMD_NAMESPACE, IMAPD_CMD_IDLE, IMAPD_CMD_SELECT,
	IMAPD_CMD_EXAMINE, IMAPD_CMD_LIST, IMAPD_CMD_LSUB, IMAPD_CMD_STATUS,
	IMAPD_CMD_CREATE, IMAPD_CMD_DELETE, IMAPD_CMD_RENAME, IMAPD_CMD_SUBSCRIBE,
	IMAPD_CMD_UNSUBSCRIBE, IMAPD_CMD_APPEND,
	/* selected */
	IMAPD_CMD_CHECK, IMAPD_CMD_CLOSE, IMAPD_CMD_UNSELECT, IMAPD_CMD_EXPUNGE,
	IMAPD_CMD_SEARCH, IMAPD_CMD_FETCH, IMAPD_CMD_STORE, IMAPD_CMD_COPY,
	IMAPD_CMD_MOVE,
};

/* A sequence set: ranges as given (not sorted, lo may exceed hi); 0 stands
 * for "*" (the largest number in use), which RFC 3501 never uses as a
 * sequence number or UID. */
struct imapd_range {
	uint32_t lo, hi;
};
struct imapd_seqset {
	struct imapd_range *r;
	size_t n;                     /* >= 1 in a parsed set */
};

enum imapd_fetch_kind {
	IMAPD_FA_UID, IMAPD_FA_FLAGS, IMAPD_FA_INTERNALDATE, IMAPD_FA_RFC822_SIZE,
	IMAPD_FA_RFC822, IMAPD_FA_RFC822_HEADER, IMAPD_FA_RFC822_TEXT,
	IMAPD_FA_BODY_SECTION,        /* BODY[...] and BODY.PEEK[...] */
	IMAPD_FA_BODYSTRUCTURE, IMAPD_FA_BODY, IMAPD_FA_ENVELOPE, IMAPD_FA_MODSEQ,
};

struct imapd_fetch_att {
	enum imapd_fetch_kind kind;
	bool peek;                    /* BODY.PEEK (the session never sets \Seen anyway) */
	struct imapd_section section; /* IMAPD_FA_BODY_SECTION */
	bool partial;                 /* <offset.count> given */
	uint32_t offset, count;       /* count >= 1 */
};

enum imapd_search_op {
	IMAPD_SK_AND,                 /* children: all match (a list, or the top level) */
	IMAPD_SK_OR,                  /* two children */
	IMAPD_SK_NOT,                 /* one child */
	IMAPD_SK_ALL,
	IMAPD_SK_FLAG,                /* flag bits (enum vv_flag) all set: SEEN, ANSWERED, ... */
	IMAPD_SK_UNFLAG,              /* flag bits all clear: UNSEEN, ... */
	IMAPD_SK_KEYWORD, IMAPD_SK_UNKEYWORD,   /* str */
	IMAPD_SK_NEW, IMAPD_SK_OLD, IMAPD_SK_RECENT,
	IMAPD_SK_SEQSET, IMAPD_SK_UIDSET,       /* set */
	IMAPD_SK_LARGER, IMAPD_SK_SMALLER,      /* num */
	IMAPD_SK_BEFORE, IMAPD_SK_ON, IMAPD_SK_SINCE,               /* date */
	IMAPD_SK_SENTBEFORE, IMAPD_SK_SENTON, IMAPD_SK_SENTSINCE,   /* date */
	IMAPD_SK_HEADER,              /* field (FROM/TO/CC/BCC/SUBJECT become HEADER), str */
	IMAPD_SK_BODY, IMAPD_SK_TEXT, /* str */
	IMAPD_SK_MODSEQ,              /* num */
};

struct imapd_search_key {
	enum imapd_search_op op;
	struct imapd_search_key *child;   /* AND, OR (two), NOT (one) */
	struct imapd_search_key *next;    /* sibling */
	const char *field, *str;
	uint64_t num;
	int64_t date;                 /* days since 1970-01-01 */
	uint32_t flags;
	struct imapd_seqset set;
};

enum imapd_status_item {
	IMAPD_ST_MESSAGES = 1, IMAPD_ST_RECENT = 2, IMAPD_ST_UIDNEXT = 4,
	IMAPD_ST_UIDVALIDITY = 8, IMAPD_ST_UNSEEN = 16, IMAPD_ST_HIGHESTMODSEQ = 32,
};

enum imapd_list_select {
	IMAPD_LS_SUBSCRIBED = 1, IMAPD_LS_REMOTE = 2, IMAPD_LS_RECURSIVEMATCH = 4,
	IMAPD_LS_SPECIAL_USE = 8,
};
enum imapd_list_return {
	IMAPD_LR_SUBSCRIBED = 1, IMAPD_LR_CHILDREN = 2, IMAPD_LR_SPECIAL_USE = 4,
	IMAPD_LR_STATUS = 8,
};

enum imapd_search_return {
	IMAPD_SR_MIN = 1, IMAPD_SR_MAX = 2, IMAPD_SR_ALL = 4, IMAPD_SR_COUNT = 8,
};

struct imapd_arena_block;

struct imapd_cmd {
	const char *tag;              /* set whenever the tag parsed, even on error */
	const char *name;             /* the command word as sent, or NULL */
	enum imapd_cmd_kind kind;
	bool uid;                     /* UID FETCH/SEARCH/STORE/COPY/MOVE/EXPUNGE */
	const char *error;            /* on failure: why (for "tag BAD <error>") */

	/* LOGIN user pass; AUTHENTICATE mech [initial response or NULL];
	 * SELECT/EXAMINE/STATUS mailbox (a1); LIST/LSUB reference (a1) */
	const char *a1, *a2;
	size_t a2_len;                /* LOGIN password: bytes (a literal may hold anything but NUL) */

	/* ENABLE names; ID name/value pairs (value NULL for NIL; strs NULL
	 * for ID NIL); LIST/LSUB patterns */
	const char **strs;
	size_t nstrs;

	/* SELECT/EXAMINE parameters */
	bool condstore;
	bool qresync;
	uint32_t qr_uidvalidity;
	uint64_t qr_modseq;
	struct imapd_seqset qr_known_uids;      /* n == 0: not given */
	struct imapd_seqset qr_seq_match, qr_uid_match;  /* n == 0: not given */

	uint32_t status_items;        /* STATUS, LIST RETURN (STATUS (...)) */

	bool list_extended;           /* selection or return options given, or several patterns */
	uint32_t list_select, list_return;

	/* FETCH, SEARCH (nothing), STORE/COPY/MOVE/UID EXPUNGE (their set) */
	struct imapd_seqset set;
	struct imapd_fetch_att *atts;
	size_t natts;
	bool changedsince_given;
	uint64_t changedsince;
	bool vanished;

	/* STORE [(UNCHANGEDSINCE n)] [+-]FLAGS[.SILENT] flags */
	int store_mode;               /* 0 FLAGS (replace), 1 +FLAGS, -1 -FLAGS */
	bool store_silent;
	bool unchangedsince_given;
	uint64_t unchangedsince;
	uint32_t store_flags;         /* enum vv_flag bits named */
	const char **store_keywords;  /* atoms, each once (case-insensitively) */
	size_t nstore_keywords;       /* <= IMAPD_STORE_KEYWORDS_MAX */

	struct imapd_search_key *search;        /* the top-level AND */
	const char *search_charset;   /* CHARSET as given, or NULL (the session checks it) */
	bool search_modseq;           /* a MODSEQ key appears */
	bool esearch;                 /* RETURN (...) given */
	uint32_t search_return;       /* enum imapd_search_return; RETURN () is ALL */

	struct imapd_arena_block *arena;
	size_t arena_total;
};

/*
 * Parse one whole command (see the top of this file for the buffer).  0 with
 * *c filled; ARCA_EFORMAT (a syntax error, an unknown command, a value out
 * of range) or ARCA_ELIMIT (a limit above) with c->error set and c->tag set
 * if the tag could be read; ARCA_ENOMEM.  Call imapd_cmd_release() in every
 * case.  Which commands are allowed in which state is the session's
 * business, not the parser's.
 */
int imapd_parse(const char *buf, size_t len, struct imapd_cmd *c);
void imapd_cmd_release(struct imapd_cmd *c);

/* Days since 1970-01-01 of a proleptic Gregorian date (mon 1..12). */
int64_t imapd_days_from_civil(int64_t y, unsigned mon, unsigned d);

#endif
