/*
 * restore_many.h - what `arca restore maildir --pattern` and `arca restore
 * dovecot` share: which snapshot each account is restored from (journal-only
 * accounts included), the expansion of a Maildir pattern, and the worker
 * processes that restore many accounts at once with the key derived once.
 */
#ifndef ARCA_RESTORE_MANY_H
#define ARCA_RESTORE_MANY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "repo.h"
#include "restore_dest.h"

/* An account known only from the journal: a snap_info with a zero root. */
bool restore_journal_only(const struct snap_info *si);

/* The snapshot to restore `account` from: snap_id or --at or the latest
 * (passing over suspect ones: cli_pick_snapshot), or, for an account with
 * journaled mail but no snapshot (unless no_journal), a journal-only pick.
 * Prints the error and returns 1 when there is none. */
int restore_pick_one(struct repo *r, const char *account, const char *snap_id, const char *at,
		     bool no_journal, uint64_t journal_until, struct snap_info *si_r);

/* Every account the journal has mail for (records at or before until_ns),
 * each once; *names_r and its strings are malloc'd. */
int restore_journal_accounts(struct repo *r, uint64_t until_ns, char ***names_r, size_t *n_r,
			     struct arca_err *err);

/* The worker processes both kinds of restore run (each with its own
 * repository handle: an LMDB handle may not cross fork; the key derived
 * once, copied in): one(ctx, r, i) for every i < n with i % jobs the
 * worker's number, then done(ctx, r) (may be NULL).  one returns 0,
 * EXIT_WARNINGS or failed.  jobs 0: one per CPU; at most RESTORE_JOBS_MAX. */
#define RESTORE_JOBS_MAX 64
struct restore_workers {
	const char *repo;
	const struct arca_restore_key *rk;
	int jobs;
	size_t n;
	int (*one)(void *ctx, struct repo *r, size_t i);
	int (*done)(void *ctx, struct repo *r);
	void *ctx;
};
/* 0 all done, EXIT_WARNINGS some said so and none failed, 1 (printed). */
int restore_workers_run(const struct restore_workers *w);

struct restore_many {
	const char *repo, *keyfile, *at;
	char **accounts;              /* the --account names; none: every account */
	size_t naccounts;
	int jobs;                     /* worker processes (0: one per CPU) */
	bool no_journal;
	uint64_t journal_until;
	/* In a worker process, for each of its accounts: 0 done, EXIT_WARNINGS
	 * done but for some messages, else failed (the callback printed why). */
	int (*one)(void *ctx, struct repo *r, const struct snap_info *si);
	/* In a worker process after its share (may be NULL): 0 or failed. */
	int (*done)(void *ctx, struct repo *r);
	/* In this process once the key is derived, before any worker starts
	 * (may be NULL): 0 to go on, else the exit code (nothing restored). */
	int (*ready)(void *ctx);
	void *ctx;
	/* Where accounts go (restore_dest_conflicts; each may be NULL): an
	 * account that would share its directory with another is not
	 * restored, and the exit code says so. */
	const char *maildir_pattern, *stage_suffix, *home_pattern;
	/* --overlay FILE (NULL: none): opened read-only once the key is
	 * there, before any worker starts, and *overlay_out set to it (the
	 * command's restore_opts.overlay, which the workers copy). */
	const char *overlay_path;
	const struct overlay **overlay_out;
};

/* Opens the repository (passphrase asked once), picks a snapshot for every
 * account, then restores them in m->jobs worker processes.  Returns the exit
 * code (0: every account restored; EXIT_WARNINGS: some said so, none failed). */
int restore_many_run(const struct restore_many *m);

/* arca restore dovecot (cmd_restore_dovecot.c), dispatched by cmd_restore */
int cmd_restore_dovecot(int argc, char **argv);

#endif
