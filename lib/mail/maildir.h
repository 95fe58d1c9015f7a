/*
 * maildir.h - Dovecot's Maildir as Arca reads and writes it.
 *
 * File names, dovecot-uidlist (v3 and v1), dovecot-keywords, subscriptions,
 * modified UTF-7 folder names, the folder walk (Maildir++ and LAYOUT=fs) and
 * the message scan.  docs/format/maildir.md states every rule byte by byte.
 *
 * Everything read from a mail host is hostile: every parser here has a hard
 * limit on line length and counts (MAILDIR_*_MAX below), rejects NUL bytes,
 * and never allocates more than a bounded multiple of its input.  The walk
 * never follows a symbolic link (so a link cannot lead it out of the root)
 * and never opens anything but directories and regular files.
 *
 * Conventions: functions return 0 (or a non-negative value where stated) or
 * a negative ARCA_E* code.  Out-parameters end in _r.  Every struct filled by
 * a parse/list function owns its heap strings; release it with the matching
 * _release/_free function, which also accepts an already released value.
 */
#ifndef ARCA_MAILDIR_H
#define ARCA_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "buf.h"

#define MAILDIR_KEYWORDS_MAX 26
/* Longest file or directory name (NAME_MAX on Linux). */
#define MAILDIR_NAME_MAX 255
/* Longest line in dovecot-uidlist, dovecot-keywords, subscriptions. */
#define MAILDIR_LINE_MAX 8192
/* Most records in one dovecot-uidlist / messages in one folder scan. */
#define MAILDIR_RECORDS_MAX (8u * 1024 * 1024)
/* Longest keyword name. */
#define MAILDIR_KEYWORD_LEN_MAX 255
/* Longest folder name (UTF-8, '/' separated), most folders, deepest nesting. */
#define MAILDIR_FOLDER_NAME_MAX 1024
#define MAILDIR_FOLDERS_MAX 100000
#define MAILDIR_DEPTH_MAX 32
/* Most subscription lines. */
#define MAILDIR_SUBSCRIPTIONS_MAX 100000

/* Standard flag bits in maildir_name.flags (bit c - 'A'). */
#define MAILDIR_FLAG(c) (UINT32_C(1) << ((c) - 'A'))
#define MAILDIR_FLAG_DRAFT MAILDIR_FLAG('D')
#define MAILDIR_FLAG_FLAGGED MAILDIR_FLAG('F')
#define MAILDIR_FLAG_PASSED MAILDIR_FLAG('P')
#define MAILDIR_FLAG_REPLIED MAILDIR_FLAG('R')
#define MAILDIR_FLAG_SEEN MAILDIR_FLAG('S')
#define MAILDIR_FLAG_TRASHED MAILDIR_FLAG('T')

/* ---- file names ------------------------------------------------------- */

/*
 * Parsed Maildir file name "<base>[:2,<info>]".
 * The info part starts at the FIRST ':' (as in Dovecot), which must be
 * followed by "2,"; any other ':' use fails with ARCA_EFORMAT.  info may hold
 * only ASCII letters, in any order, repeats allowed: uppercase set bit
 * (c - 'A') in flags, lowercase set bit (c - 'a') in keywords.  Anything else
 * in info (digits, ',', punctuation) fails with ARCA_EFORMAT: no extension is
 * kept, so a name that parses always formats back to an equivalent name.
 * base: 1..MAILDIR_NAME_MAX bytes, no '/', not starting with '.'.
 * base is owned by the struct (heap); has_info tells whether ":2," was present.
 */
struct maildir_name {
	char *base;
	uint32_t flags;
	uint32_t keywords;
	bool has_info;
};
int maildir_name_parse(const char *filename, struct maildir_name *out,
		       struct arca_err *err);
void maildir_name_release(struct maildir_name *n);
/* Builds "<base>:2,<flags in ASCII order><keyword letters in ASCII order>"
 * into out (reset first, NUL-terminated with abuf_cstr).  Always writes ":2,".
 * Fails with ARCA_EINVAL if base is not a valid base (see above), flags has
 * bits above 'Z' or keywords bits above 'z'. */
int maildir_name_format(const char *base, uint32_t flags, uint32_t keywords,
			struct abuf *out);
/* ,S=<size> from the base name if present (returns true and sets *size_r).
 * Only a well-formed field counts: ",S=" then 1..20 digits without overflow,
 * ended by ',' or ':' or the end of the string. */
bool maildir_name_size(const char *base, uint64_t *size_r);

/* ---- dovecot-uidlist -------------------------------------------------- */

/* One record.  base is the file name up to its first ':' (never with the
 * ":2,<flags>" info); info the rest of the name as the record gives it
 * (e.g. ":2,S": Dovecot 2.3 records the base, but lists written by other
 * tools or older versions may name the whole file), "" when the record
 * gives only the base; ext the raw extension
 * fields between the uid and " :" (e.g. "W1234 S1200"), "" when none.  All
 * owned by the list.  Dovecot matches files to records by base only. */
struct uidlist_rec {
	uint32_t uid;
	char *base;
	char *ext;
	char *info;
};
struct uidlist_index; /* private: base-name index for uidlist_find_base */
struct uidlist {
	unsigned version;               /* 1 or 3 (as read; 3 after init) */
	uint32_t uidvalidity, nextuid;  /* nextuid as in the header (may be stale) */
	char guid[33];                  /* 32 lowercase hex or "" */
	char *header_extra;             /* other header fields, raw, in order, or ""
					   (never NULL after parse/init; heap-owned
					   unless still the one init set) */
	struct uidlist_rec *recs;       /* ascending uid, no duplicates */
	size_t count, cap;
	struct uidlist_index *index;    /* private, NULL until needed */
};
/* An empty version-3 list (uidvalidity 0, nextuid 1, header_extra "").
 * A zeroed struct is also a valid empty list to add to and release. */
void uidlist_init(struct uidlist *ul);
/*
 * Parses a whole dovecot-uidlist.  Rejects (ARCA_EFORMAT): a missing final
 * newline (a truncated file), NUL or CR bytes, lines longer than
 * MAILDIR_LINE_MAX, uids that are 0, not ascending or not 32-bit, a repeated
 * base name, a missing or zero V (uidvalidity), a missing N, a malformed G.
 * Other versions than 1 and 3 fail with ARCA_EVERSION; more than
 * MAILDIR_RECORDS_MAX records with ARCA_ELIMIT.  out is initialised first and
 * left empty (but valid to release) on failure.
 */
int uidlist_parse(const uint8_t *data, size_t len, struct uidlist *out,
		  struct arca_err *err);
/* Appends a record (copies base and ext; ext NULL means "").  uid must be above the last one
 * (ARCA_EINVAL otherwise), base valid as in maildir_name (and without ':'),
 * ext free of '\n', NUL and " :" and not starting with ':'.  The caller must
 * not add a base twice (uidlist_format refuses such a list). */
int uidlist_add(struct uidlist *ul, uint32_t uid, const char *base,
		const char *ext);
/* The same with the record naming the file "<base><info>": info is "" (or
 * NULL) or starts with ':' and holds no '/', NUL or line break. */
int uidlist_add_info(struct uidlist *ul, uint32_t uid, const char *base,
		     const char *ext, const char *info);
/* Can info (n bytes) be a record's name rest: "" or ':' and at most
 * MAILDIR_NAME_MAX bytes without '/', NUL or a line break. */
bool uidlist_info_valid(const char *info, size_t n);
/* Version 3 always: "3 V<uidvalidity> N<next> [G<guid>] [<header_extra>]\n"
 * then "<uid>[ <ext>] :<base><info>\n" per record, where <next> is
 * uidlist_next_uid() (so a stale header is never written back).  out is
 * reset first.  ARCA_EINVAL when the list could not be parsed back the same. */
int uidlist_format(const struct uidlist *ul, struct abuf *out);
/* max(nextuid, last uid + 1); UINT32_MAX if the last uid is UINT32_MAX. */
uint32_t uidlist_next_uid(const struct uidlist *ul);
/* Record with this base (the part before any ':' of a file name is used, so a
 * full file name works too), or NULL.  O(log n): a sorted index is built on
 * the first call after a change (not thread-safe on a changed list). */
const struct uidlist_rec *uidlist_find_base(const struct uidlist *ul,
					    const char *base);
void uidlist_release(struct uidlist *ul);

/* ---- dovecot-keywords ------------------------------------------------- */

/* names[i] is the keyword for letter 'a' + i, or NULL.  Owned by the struct.
 * Names are IMAP atoms: 1..MAILDIR_KEYWORD_LEN_MAX bytes of printable ASCII
 * except space and (){%*"\] , not starting with '\'.  No two names are equal
 * ignoring ASCII case. */
struct maildir_keywords {
	char *names[MAILDIR_KEYWORDS_MAX];
};
/* "<index> <name>\n" lines, index 0..25 (decimal, no sign), in any order.
 * Empty input is no keywords.  Rejects (ARCA_EFORMAT) a missing final newline,
 * a repeated index or name, an invalid name, NUL bytes, long lines. */
int keywords_parse(const uint8_t *data, size_t len, struct maildir_keywords *out,
		   struct arca_err *err);
/* Lines in ascending index order; out is reset first. */
int keywords_format(const struct maildir_keywords *kw, struct abuf *out);
/* Index of name (ASCII case-insensitive match), or with add set the lowest
 * free index it is given; -1 when not found, full, or name invalid. */
int keywords_index(struct maildir_keywords *kw, const char *name, bool add);
void keywords_release(struct maildir_keywords *kw);
/* Zero all slots (no allocation). */
void keywords_init(struct maildir_keywords *kw);

/* ---- subscriptions ---------------------------------------------------- */

/*
 * Dovecot 2.3 writes "V\t2\n\n" then one name per line, each hierarchy level
 * separated by '\t', each level mUTF-7 encoded and tab-escaped (\001 -> \0011,
 * \t -> \001t, \r -> \001r, \n -> \001n).  The old format (no header) has one
 * mUTF-7 name per line with the storage's own hierarchy separator.
 * names: UTF-8, '/' separated, owned by the struct; order kept, repeats
 * dropped, empty lines skipped.
 */
struct subscriptions {
	char **names;
	size_t count, cap;
};
void subscriptions_init(struct subscriptions *s);
/* Old-format files are read with '/' as their separator. */
int subscriptions_parse(const uint8_t *data, size_t len,
			struct subscriptions *out, struct arca_err *err);
/* Same, naming the separator an old-format file uses ('.' for Maildir++). */
int subscriptions_parse_sep(const uint8_t *data, size_t len, char old_sep,
			    struct subscriptions *out, struct arca_err *err);
/* Appends a copy of name (a valid folder name, see maildir_folder_path);
 * a name already present is not added again. */
int subscriptions_add(struct subscriptions *s, const char *name);
/* The version-2 format, as Dovecot 2.3.19 writes it.  ARCA_EINVAL for a name
 * that is not valid UTF-8 or has an empty level. */
int subscriptions_format(const struct subscriptions *s, struct abuf *out);
void subscriptions_release(struct subscriptions *s);

/* ---- modified UTF-7 (RFC 3501 5.1.3) ---------------------------------- */

/*
 * Strict both ways.  mutf7_to_utf8 rejects: bytes outside 0x20..0x7e, an
 * unterminated or empty "&...-" other than "&-", base64 that leaves non-zero
 * or >= 6 padding bits, unpaired surrogates, U+0000, an encoded printable
 * ASCII character, and two encoded runs back to back (all of which a correct
 * encoder never writes), so decoding then encoding gives the input back.
 * utf8_to_mutf7 rejects invalid UTF-8 (overlong, surrogates, > U+10FFFF) and
 * U+0000.  Both reset out, NUL-terminate it, return 0 or ARCA_EFORMAT
 * (ARCA_ENOMEM).
 */
int mutf7_to_utf8(const char *in, struct abuf *out);
int utf8_to_mutf7(const char *in, struct abuf *out);

/* ---- folders ---------------------------------------------------------- */

enum maildir_layout {
	MAILDIR_LAYOUT_AUTO,
	MAILDIR_LAYOUT_MAILDIRPP,
	MAILDIR_LAYOUT_FS,
};
struct maildir_folder {
	char *name;      /* UTF-8 IMAP name, '/' separated; "INBOX" for the root */
	char *path;      /* directory holding cur/ new/ (root joined with the
			    encoded name; for a parent-only Maildir++ folder the
			    path it would have, which does not exist) */
	bool selectable; /* has cur/ or new/; false for parents-only folders */
};
/*
 * Lists every folder, parents-only folders included, sorted by name (bytes)
 * with INBOX first.  AUTO: Maildir++ if the root holds a directory ".X"
 * (X not empty, not ".") that has cur/, new/ or maildirfolder; else FS if it
 * holds a directory other than cur/, new/, tmp/ not starting with '.'; else
 * Maildir++ (Dovecot's default; with INBOX alone both read the same).
 * Never follows symlinks (a linked folder is skipped).  Directory names that
 * do not decode (bad mUTF-7, empty levels, a level with '/', "." or "..",
 * cur/new/tmp levels in FS) are skipped, as Dovecot cannot open them either.
 * A top level named INBOX in any case is the root's INBOX.
 */
int maildir_list_folders(const char *root, enum maildir_layout layout,
			 enum maildir_layout *layout_r,
			 struct maildir_folder **folders_r, size_t *count_r,
			 struct arca_err *err);
/* The same, also filling `skipped` (may be NULL) with the paths, each ending
 * in a NUL byte, of directories that look like folders but whose names are
 * not valid modified UTF-7: their mail can't be stored under a folder name,
 * and the caller must say so. */
int maildir_list_folders_skipped(const char *root, enum maildir_layout layout,
				 enum maildir_layout *layout_r, struct maildir_folder **folders_r,
				 size_t *count_r, struct abuf *skipped, struct arca_err *err);
void maildir_folders_free(struct maildir_folder *folders, size_t count);
/*
 * Folder name -> directory under root (inverse of the walk): "INBOX" (any
 * case) is root; Maildir++ "root/.A.B" and FS "root/A/B", each level mUTF-7
 * encoded.  out is reset and NUL-terminated.  ARCA_EINVAL for AUTO, invalid
 * UTF-8, an empty level, a level that is "." / ".." or starts with '.', a '.'
 * in a Maildir++ level, cur/new/tmp levels in FS, or a directory name longer
 * than MAILDIR_NAME_MAX.
 */
int maildir_folder_path(const char *root, enum maildir_layout layout,
			const char *name, struct abuf *path_out);

/* ---- messages --------------------------------------------------------- */

struct maildir_entry {
	char *filename;     /* name within its subdir (owned) */
	bool in_new;        /* in new/ rather than cur/ */
	uint64_t size;
	int64_t mtime_sec;
	int32_t mtime_nsec;
	uint64_t ino;
	bool stat_valid;    /* size, mtime and ino were read (see maildir_scan_names) */
};
/* Every regular file in cur/ and new/ (skips tmp/, dot files, symlinks and
 * anything not regular; a missing cur/ or new/ is empty; a file that vanishes
 * mid-scan is skipped).  Sorted by (in_new, filename).  ARCA_ELIMIT past
 * MAILDIR_RECORDS_MAX files. */
int maildir_scan(const char *folder_path, struct maildir_entry **entries_r,
		 size_t *count_r, struct arca_err *err);
/* The same, but without want_stat only the names are read (readdir's file
 * type keeps regular files): the cheap listing for incremental ingest, which
 * recognizes an unchanged message by its name (Maildir files never change
 * content; a flag change is a rename that keeps the base name). */
int maildir_scan_names(const char *folder_path, bool want_stat,
		       struct maildir_entry **entries_r, size_t *count_r,
		       struct arca_err *err);
void maildir_entries_free(struct maildir_entry *e, size_t count);
/*
 * Opens a message for reading even if Dovecot renamed it since the scan:
 * tries the recorded name, then looks for the same base name (up to the
 * first ':') in cur/ and then new/.  Returns an fd (>= 0, O_CLOEXEC, caller
 * closes), ARCA_ENOENT if the message is gone, ARCA_EFORMAT if the name is
 * now a symlink or not a regular file, or another error.  On success *entry
 * is updated (filename, in_new, size, mtime, ino) from fstat of the open file.
 */
int maildir_open_message(const char *folder_path, struct maildir_entry *entry,
			 struct arca_err *err);

#endif
