/*
 * mailsync.h - Maildir <-> snapshot: ingest one account's Maildir into the
 * repository, and restore a snapshot to a Maildir that Dovecot serves with
 * the same UIDVALIDITY, UIDs, flags, keywords, dates and subscriptions.
 */
#ifndef ARCA_MAILSYNC_H
#define ARCA_MAILSYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "arca_err.h"
#include "maildir.h"
#include "repo.h"
#include "snapshot.h"

/* Called for every problem that does not stop the run (a file that vanished
 * or could not be read).  `what` names it. */
typedef void ingest_warn_fn(void *ctx, const char *what, const char *why);
/* Progress: called after each message. */
typedef void ingest_progress_fn(void *ctx, uint64_t messages, uint64_t bytes);

struct ingest_opts {
	const char *account;
	const char *maildir;
	enum maildir_layout layout;
	ingest_warn_fn *warn;
	ingest_progress_fn *progress;
	void *ctx;
	bool stage_only;              /* leave the commit to repo_commit_staged */
	bool reread;                  /* no folder taken over, no message found in
					 the ingest cache: every one read again */
};

struct ingest_result {
	struct snap_info info;        /* seq, root, time, counts; release it */
	uint64_t files_read;          /* messages read (not found in the cache) */
	uint64_t bytes_read;
	uint64_t files_skipped;       /* vanished or unreadable */
	uint64_t unreadable;          /* of those, failed to read (not vanished) */
};

int ingest_maildir(struct repo *r, const struct ingest_opts *o,
		   struct ingest_result *res, struct arca_err *err);

/*
 * ingest_maildir in two steps, so that many accounts can be pipelined: the
 * next account is prepared (its folders listed, quiet ones taken over, its
 * messages looked up in the ingest cache) on another thread while this one's
 * messages are read and its snapshot stored.
 *  - ingest_prepare touches the repository only through lookups in w's read
 *    transaction (w NULL: the caller's thread owns r), and calls no callback
 *    of o but warn; call repo_file_cache_check first when w is not NULL.
 *    NULL: out of memory.  Its failures are kept for ingest_finish.
 *  - ingest_finish (on r's owner thread) reads, stores and stages or commits,
 *    taking o's callbacks; it frees p (NULL: reports out of memory).
 */
struct ingest_prep;
struct repo_worker;
struct ingest_prep *ingest_prepare(struct repo *r, struct repo_worker *w,
				   const struct ingest_opts *o);
int ingest_finish(struct repo *r, struct ingest_prep *p, const struct ingest_opts *o,
		  struct ingest_result *res, struct arca_err *err);
void ingest_prep_free(struct ingest_prep *p);


/*
 * What a restore into an existing Maildir (restore_opts.merge) did with one
 * folder (docs/restore.md, "Merge rules"):
 *  MERGE_EXACT     the folder was absent (or had no dovecot-uidlist): written
 *                  as in the snapshot, its UIDVALIDITY and UIDs
 *  MERGE_SAME      same UIDVALIDITY as the snapshot: the snapshot's messages
 *                  that were missing added, everything present kept
 *  MERGE_RENUMBER  another UIDVALIDITY (recreated after the attack): the
 *                  snapshot's UIDVALIDITY and UIDs restored, the folder's own
 *                  messages kept with UIDs from the snapshot's next UID up
 *  MERGE_NEW_UIDVALIDITY  another UIDVALIDITY, kept (restore_opts
 *                  .new_uidvalidity): the folder's messages keep their UIDs,
 *                  the snapshot's missing ones are added after them
 *  MERGE_PARENT    a folder that only holds other folders (directory made)
 */
enum merge_path {
	MERGE_EXACT,
	MERGE_SAME,
	MERGE_RENUMBER,
	MERGE_NEW_UIDVALIDITY,
	MERGE_PARENT,
};

struct merge_report {
	const char *folder;           /* the snapshot's name ('/' separated) */
	enum merge_path path;
	bool dry_run;                 /* nothing was written: what would be done */
	uint32_t uidvalidity;         /* after */
	uint32_t was_uidvalidity;     /* before (0: no dovecot-uidlist) */
	uint32_t snapshot_uidvalidity;
	uint32_t nextuid;             /* the next UID written in dovecot-uidlist */
	uint64_t highestmodseq;       /* the snapshot's, at least every message's MODSEQ */
	uint64_t snapshot_msgs;       /* messages of the snapshot's folder */
	uint64_t added;               /* of those, written now */
	uint64_t added_same_uid;      /* of the added, with the snapshot's UID */
	uint64_t present;             /* of those, already there (name, UID or bytes) */
	uint64_t present_by_content;  /* of the present, recognised by their bytes */
	uint64_t kept;                /* the destination's own messages (with a UID) kept */
	uint32_t kept_first, kept_last;   /* MERGE_RENUMBER: their new UIDs */
	uint64_t unlisted;            /* files without a UID yet (Dovecot numbers them) */
	uint64_t messages;            /* messages in the folder after (files) */
	uint64_t keywords_dropped;    /* snapshot keywords no letter was left for */
	uint64_t unusable;            /* messages whose names can't be file names: not written */
};
typedef void merge_report_fn(void *ctx, const struct merge_report *rep);

struct overlay;

struct restore_opts {
	const char *dest;
	bool force;                   /* allow a non-empty destination */
	bool no_sync;                 /* caller syncs (restore_sync_fd) at the end */
	int owner_uid, owner_gid;     /* -1: leave as is */
	const char *account;          /* whose journaled mail to add (NULL: none) */
	bool no_journal;              /* the snapshot alone */
	uint64_t journal_until;       /* journaled mail up to this time (ns; 0: none) */
	const char *sieve_home;       /* write the Sieve scripts under this home (NULL: no) */
	ingest_warn_fn *warn;
	void *ctx;
	/* Restoring into a live Dovecot (arca restore dovecot): */
	bool merge;                   /* dest may hold mail: merge (maildir_merge.h) */
	bool new_uidvalidity;         /* merge: keep a recreated folder's UIDVALIDITY */
	bool dry_run;                 /* merge: write nothing, report what would be done */
	bool staged;                  /* merge into a directory no server sees yet, moved
				       * into place by the caller after one restore_sync_fd:
				       * files go straight to their names, nothing is
				       * fsynced on the way (maildir_merge.h) */
	const char *folder;           /* only this folder (NULL: all); no journal then */
	int layout;                   /* enum maildir_layout to write (AUTO: the snapshot's) */
	merge_report_fn *report;      /* merge: called after each folder */
	/* Flag changes kept by serve-imap (overlay.h) carried into the
	 * snapshot's folders before they are written; NULL: none. */
	const struct overlay *overlay;
};

/* Make everything written under dest durable: syncfs on fd, a descriptor
 * on its file system opened before the writes (fs_sync_handle). */
int restore_sync_fd(int fd, const char *dest, struct arca_err *err);

struct restore_result {
	uint64_t folders, messages, bytes;
	uint64_t skipped;             /* messages whose names can't be files (warned) */
	uint64_t journal_added;       /* journaled messages added (journal_restore.h) */
	uint64_t journal_dup;         /* journaled messages the snapshot already held */
	uint64_t sieve_scripts;       /* Sieve scripts written (sieve_home) */
	uint64_t sieve_same;          /* already there with the same bytes */
	uint64_t sieve_renamed;       /* written as NAME-restored: another script
				       * of that name was there (kept) */
	uint64_t subscriptions_added; /* merge: subscriptions the Maildir lacked */
	uint64_t overlay_msgs;        /* messages given the flags serve-imap kept */
	uint64_t overlay_kw_dropped;  /* keywords of those no room was left for */
};

/* The file name message m is restored under (its keywords as the letters
 * given); ARCA_EINVAL when it can't be a file name (empty, ".", "..", or
 * holding '/'). */
int restore_msg_name(const struct snap_msg *m, uint32_t letters, struct abuf *name,
		     struct arca_err *err);

/* One message's content into fd (which it closes), dated with its
 * INTERNALDATE and owned by owner_uid:owner_gid (-1: left); its size must be
 * the snapshot's.  path names the file in errors. */
int restore_msg_write(struct repo *r, const struct snap_msg *m, int fd, const char *path,
		      int owner_uid, int owner_gid, struct arca_err *err);

/* Restore snapshot `root` (NULL: an account known only from the journal:
 * an empty Maildir plus its journaled mail) into o->dest, then add the
 * journaled mail of o->account that the snapshot lacks. */
int restore_maildir(struct repo *r, const uint8_t root[ARCA_ID_LEN],
		    const struct restore_opts *o, struct restore_result *res,
		    struct arca_err *err);

#endif
