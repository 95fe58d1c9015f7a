/*
 * export.h - writing messages out of the vault as files (`arca export`,
 * docs/export.md): mboxrd files and trees of .eml files with an index.
 * No network, no repository: the caller hands over each message's bytes in
 * a file (fd, offset, length) and its metadata.
 *
 * Files are written safely: under a temporary name in the target directory
 * (".NAME.tmp.XXXXXX", mode 0600), fsynced, then renamed into place -
 * never over an existing file unless `force` - and the directory fsynced
 * (export_sync_dir, once per directory).  Folder names become paths with
 * export_folder_path, which never leaves the target directory.
 */
#ifndef ARCA_EXPORT_H
#define ARCA_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "buf.h"

/* ---- folder names as paths ---- */

/*
 * A snapshot folder name (UTF-8, levels split by '/') as a relative path,
 * one directory level per folder level, each level escaped so it is a safe
 * and distinct file name: '%', bytes below 0x20 and 0x7f become %XX, a
 * leading '.' becomes %2E (so no "." or ".." and no hidden names), an empty
 * level becomes "%", and a level ending in ".mbox", ".eml" or ".tsv" (any
 * case) has its last '.' as %2E (so it can't collide with the files we
 * write next to it).  ARCA_EINVAL for an empty name; ARCA_ENOMEM.
 */
int export_folder_path(const char *folder, struct abuf *out);

/* ---- safe files ---- */

struct export_file;
/* Start writing path (its directory must exist).  Without force, an
 * existing path is ARCA_EEXIST now (and again at commit, if one appeared). */
int export_file_open(const char *path, bool force, struct export_file **f_r,
		     struct arca_err *err);
int export_file_write(struct export_file *f, const void *p, size_t n, struct arca_err *err);
/* Copy len bytes of fd from off. */
int export_file_copy(struct export_file *f, int fd, uint64_t off, uint64_t len,
		     struct arca_err *err);
/* fsync, set the mtime (sec, nsec) unless sec == INT64_MIN, rename into
 * place (RENAME_NOREPLACE without force).  Frees f in every case. */
int export_file_commit(struct export_file *f, int64_t mtime_sec, int32_t mtime_nsec,
		       struct arca_err *err);
/* Drop the temporary file.  Frees f; NULL is fine. */
void export_file_abort(struct export_file *f);
int export_sync_dir(const char *dir, struct arca_err *err);

/* ---- mboxrd ---- */

/*
 * mboxrd quoting (a line that is ">"* "From " gets one more '>'), across
 * chunk boundaries.  Start with mboxrd_init; feed chunks; mboxrd_finish
 * flushes what an unfinished line start held back.  Output is appended.
 */
struct mboxrd {
	bool line_start;           /* the next byte starts a line */
	uint64_t gt;               /* '>' seen at this line's start, not yet written */
	uint8_t rest[5];           /* after them: a prefix of "From " */
	size_t nrest;
	uint8_t last;              /* the last byte written (for the final LF) */
	uint64_t written;
};
void mboxrd_init(struct mboxrd *q);
int mboxrd_feed(struct mboxrd *q, const uint8_t *p, size_t n, struct abuf *out);
int mboxrd_finish(struct mboxrd *q, struct abuf *out);

/* Flags and keywords, for the optional status headers and the index. */
struct export_meta {
	uint32_t uid;
	uint32_t flags;            /* Maildir letters: bit (c - 'A') */
	const char *const *keywords;
	size_t nkeywords;
	int64_t date_sec;          /* INTERNALDATE */
	int32_t date_nsec;
	uint64_t size;
};

/* "From MAILER-DAEMON Thu Nov 28 06:14:44 2026\n" (UTC, asctime form). */
int export_from_line(int64_t date, struct abuf *out);
/* Status: / X-Status: / X-Keywords: lines as Dovecot's mbox writes them
 * (Status: R when \Seen, then O; X-Status: A F T D for \Answered \Flagged
 * \Draft \Deleted; keywords space-separated, those with whitespace or
 * control characters left out). */
int export_status_headers(const struct export_meta *m, struct abuf *out);

/*
 * One message into an mbox: the From line, (with_status) the status
 * headers, the bytes of fd [off, off + len) quoted, a line end if they
 * did not end with one, and the empty line that separates messages.
 */
int export_mbox_message(struct export_file *f, const struct export_meta *m, bool with_status,
			int fd, uint64_t off, uint64_t len, struct arca_err *err);

/* ---- the .eml tree's index ---- */

/* The header line of index.tsv: "uid\tflags\tkeywords\tdate\tsize\n". */
int export_index_header(struct abuf *out);
/* One line: uid, flags as IMAP names separated by ' ' ("\Seen \Flagged"),
 * keywords separated by ' ', INTERNALDATE in RFC 3339 UTC with
 * nanoseconds, size in bytes.  Keywords holding a tab, a line end, a
 * space or '\' are written with C escapes (\t \n \r \s \\). */
int export_index_line(const struct export_meta *m, struct abuf *out);

#endif
