/*
 * dovecot_restore.h - what the parts of `arca restore dovecot` share: the
 * run's options and one account's folder reports (struct dov), an account
 * written and waiting for its last steps (struct pending); the doveadm side
 * of accounts (dovecot_finish.c: status, MODSEQ raise, check, Sieve) and
 * the staging and group commit (dovecot_commit.c).  The command itself is
 * cmd_restore_dovecot.c; docs/restore.md says what each step does and why.
 */
#ifndef ARCA_DOVECOT_RESTORE_H
#define ARCA_DOVECOT_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "buf.h"
#include "doveadm.h"
#include "doveadm_parse.h"
#include "maildir_merge.h"
#include "mailsync.h"
#include "repo.h"
#include "snapshot.h"

/* One folder as the restore left it: what Dovecot must serve after. */
struct frep {
	char *folder;
	enum merge_path path;
	uint32_t uidvalidity, nextuid;
	uint64_t highestmodseq, messages;
};

struct committer;
struct config_check;

/* The run's options (the same in every thread and worker) and the
 * current account's folder reports (each thread its own copy). */
struct dov {
	const char *pattern, *sieve_home, *folder, *user_pattern;
	struct doveadm dv;
	bool have_doveadm, dry_run, new_uidvalidity, no_journal;
	bool no_stage;                /* merging an account whose Maildir appeared: never stage again */
	int sieve;                    /* -1 default (when the snapshot has scripts), 0 no, 1 yes */
	int layout;                   /* MAILDIR_LAYOUT_AUTO: decide per account */
	char sep;                     /* 0: ask doveadm */
	int owner_uid, owner_gid;
	const struct overlay *overlay;  /* --overlay: serve-imap's flag changes (NULL: none) */
	/* per account */
	const char *account;
	struct frep *reps;
	size_t nreps, cap;
	int fails;
	/* the worker's committer thread (started with its first staged account) */
	struct committer *cm;
	struct config_check *cc;      /* the doveadm check, until dov_ready */
};

#define STATUS_FIELDS "uidvalidity uidnext highestmodseq messages"

/* What `doveadm -f flow mailbox status FIELDS '*'` printed, line by line:
 * names[i] the mailbox, st[i] its numbers. */
struct statuses {
	struct doveadm_result res;
	char **names;
	struct dva_status *st;
	size_t n;
};

/* A snapshot's Sieve script, read from the repository before doveadm puts
 * it (the put may run in the committer thread, which has no repository). */
struct sieve_body {
	struct abuf body;
	bool ok;
};

/*
 * An account written and waiting for its last steps: Sieve, doveadm's
 * status and MODSEQ raise, the check, the summary line; and, when it was
 * staged, first the sync and the move into place.  The committer thread
 * does those for staged accounts in batches while the worker writes the
 * next ones: one syncfs and one doveadm process for every account that
 * finished writing meanwhile (group commit), instead of one each.
 */
struct pending {
	struct pending *next;
	struct snap_info si;          /* owned copy: a re-run when dest appeared */
	char *account, *user, *dest, *home, *stage;   /* account: si.account */
	int stage_fd, owner_uid, owner_gid, layout;
	int sync_fd;                  /* the stage, opened before its first write (-1: not staged) */
	bool journal_only;
	struct restore_result res;
	struct snapshot *s;           /* Sieve scripts (no messages loaded) */
	struct sieve_body *bodies;    /* read by the worker: the committer has no repository */
	struct frep *reps;
	size_t nreps;
	int fails;                    /* failures already seen and said */
};

/* ---- dovecot_finish.c: the doveadm side ---- */

/* Frees d's folder reports. */
void dov_reps_clear(struct dov *d);

/* Runs doveadm; on failure prints one line naming d->account and what
 * failed.  0 or 1. */
int dov_run(struct dov *d, const char *const *args, const void *in, size_t inlen,
	    struct doveadm_result *res, const char *what);

void dov_statuses_release(struct statuses *s);

/* The snapshot's Sieve scripts read from the repository (a script that
 * can't be read is said and counted in *fails); NULL: out of memory. */
struct sieve_body *dov_sieve_read(struct dov *d, struct repo *r, const struct snapshot *s, int *fails);
void dov_sieve_free(struct sieve_body *b, size_t n);

/* An account's last steps once its messages are in place: Sieve, status,
 * MODSEQ raise, check, summary line.  given: its status from a group
 * call, or NULL.  0 or 1 (failed, said). */
int dov_account_finish(struct dov *d, struct pending *p, struct statuses *given);

/* One doveadm mailbox status for the users of items[0..n); 0 when given[]
 * holds each one's lines, else every account must ask alone. */
int dov_group_status(struct dov *cd, struct pending **items, size_t n, struct doveadm_result *res,
		     struct statuses *given);

/* ---- dovecot_commit.c: staging, and the group commit ---- */

#define STAGE_SUFFIX ".arca-restore"

/* DEST.arca-restore for dest; "" with --dry-run or --folder. */
int dov_stage_path(const struct dov *d, const char *dest, struct abuf *stage);
/* STAGE.lock flock()ed: 0, 1 held by another run, or an error (err). */
int dov_stage_lock(const char *stage, int *fd_r, struct arca_err *err);
void dov_stage_unlock(const char *stage, int fd);
/* A stage left by an interrupted run goes (only a directory holding the
 * marker a stage is made with: never another account's Maildir that
 * happens to have that name); 0 also when there is none. */
int dov_stage_clear(const char *stage, struct arca_err *err);
/* A new stage directory with its marker, owned as given. */
int dov_stage_make(const char *stage, int owner_uid, int owner_gid, struct arca_err *err);

void dov_pending_free(struct pending *p);
/* A heap copy of pd for the committer (strings copied; s, bodies, the
 * stage lock and d's reports moved in); NULL: out of memory, nothing moved. */
struct pending *dov_pending_take(const struct pending *pd, const struct snap_info *si,
				 const char *stage, int stage_fd, struct dov *d);
/* Hands p to the worker's committer thread (started on first use): 0, or
 * -1 (p stays the caller's). */
int dov_commit_add(struct dov *d, struct pending *p);
/* Waits for the committer's last commit and ends the thread: the failures
 * (said), and in *redo_r the accounts whose Maildir appeared meanwhile
 * (merge them, then dov_pending_free). */
int dov_commit_close(struct committer *cm, struct pending **redo_r);

#endif
