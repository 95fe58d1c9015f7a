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
 * Many accounts in a row: a warmer thread reads the directories of the
 * Maildirs ahead of the one being ingested (names only, as the listing
 * pass will), so that pass finds them in the cache instead of waiting for
 * the disk while the readers idle.  `paths` must stay valid until
 * ingest_warmer_stop.  ingest_warmer_at tells it which one is being ingested.
 * NULL from start (out of memory, no thread) is no error: no warming.
 */
struct ingest_warmer;
struct ingest_warmer *ingest_warmer_start(char *const *paths, size_t n);
void ingest_warmer_at(struct ingest_warmer *w, size_t i);
void ingest_warmer_stop(struct ingest_warmer *w);

struct restore_opts {
	const char *dest;
	bool force;                   /* allow a non-empty destination */
	bool no_sync;                 /* caller syncs (restore_sync) at the end */
	int owner_uid, owner_gid;     /* -1: leave as is */
	const char *account;          /* whose journaled mail to add (NULL: none) */
	bool no_journal;              /* the snapshot alone */
	uint64_t journal_until;       /* journaled mail up to this time (ns; 0: none) */
	const char *sieve_home;       /* write the Sieve scripts under this home (NULL: no) */
	ingest_warn_fn *warn;
	void *ctx;
};

/* Make everything written under dest durable (one syncfs). */
int restore_sync(const char *dest, struct arca_err *err);

struct restore_result {
	uint64_t folders, messages, bytes;
	uint64_t skipped;             /* messages whose names can't be files (warned) */
	uint64_t journal_added;       /* journaled messages added (journal_restore.h) */
	uint64_t journal_dup;         /* journaled messages the snapshot already held */
	uint64_t sieve_scripts;       /* Sieve scripts written (sieve_home) */
};

/* Restore snapshot `root` (NULL: an account known only from the journal:
 * an empty Maildir plus its journaled mail) into o->dest, then add the
 * journaled mail of o->account that the snapshot lacks. */
int restore_maildir(struct repo *r, const uint8_t root[ARCA_ID_LEN],
		    const struct restore_opts *o, struct restore_result *res,
		    struct arca_err *err);

#endif
