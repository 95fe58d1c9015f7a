/*
 * maildir_merge.h - restore a snapshot's folder into a Maildir that may
 * already hold mail and that Dovecot may be serving and delivering to.
 *
 * The rules (docs/restore.md, "Merge rules"): a message is never lost and
 * never duplicated; a file of the destination's own mail is never deleted,
 * overwritten or renamed; only dovecot-uidlist, dovecot-keywords and
 * subscriptions are rewritten, each atomically (temporary file, fsync,
 * rename, fsync of the directory) while holding Dovecot's own dot-lock for
 * it (NAME.lock created with O_EXCL, holding "PID:HOST" as Dovecot's
 * file-dotlock writes it).  Restored messages are written under tmp/ and
 * renamed into cur/ or new/ without replacing anything (RENAME_NOREPLACE),
 * so Dovecot never sees a partial file.
 */
#ifndef ARCA_MAILDIR_MERGE_H
#define ARCA_MAILDIR_MERGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "arca_err.h"
#include "idset.h"
#include "mailsync.h"
#include "repo.h"
#include "snapshot.h"

/* Dovecot takes a dot-lock over as stale when it has not changed for this
 * long (MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT, 2 minutes); we touch ours well
 * within it and wait at most this long for one of Dovecot's. */
#define MERGE_LOCK_STALE_S 120
#define MERGE_LOCK_WAIT_S 60

struct merge_lock {
	char *path;                   /* NULL: not held */
	int64_t touched_ns;
	dev_t dev;                    /* the lock file taken: released only if still it */
	ino_t ino;
	char *tmp_name;               /* its second name in DIR/tmp (NULL: none) */
	int tmpdir_fd;                /* DIR/tmp, when tmp_name is set */
};
/* Take DIR/NAME.lock: wait while another holder has it (up to
 * MERGE_LOCK_WAIT_S: ARCA_EBUSY then), take over a lock unchanged for
 * MERGE_LOCK_STALE_S as Dovecot does, or one of our own (its second name in
 * DIR/tmp) whose holder ("PID:HOST", this host) no longer exists. */
int merge_lock_take(const char *dir, const char *name, int owner_uid, int owner_gid,
		    struct merge_lock *l, struct arca_err *err);
/* Keep a long-held lock fresh (changes its mtime every 10 s at most). */
void merge_lock_touch(struct merge_lock *l);
void merge_lock_release(struct merge_lock *l);

/* Replace DIR/NAME atomically with data, owned by owner (-1: as created),
 * mode 0600: temporary file, fchown, fsync, rename, fsync of DIR. */
int merge_write_control(const char *dir, const char *name, const void *data, size_t len,
			int owner_uid, int owner_gid, struct arca_err *err);

/* mkdir -p where every directory made is given owner (-1: left as made)
 * and mode 0700; existing ones are left alone. */
int merge_mkdirs(const char *path, int owner_uid, int owner_gid, struct arca_err *err);

/*
 * One folder of snapshot s (f's messages are loaded here) into the Maildir
 * at o->dest, laid out as `layout`.  keys (may be NULL): the message keys
 * (journal_restore.h) of every message in the folder dated from
 * keys_from_sec on are added, so journaled copies of them are not added
 * again.  rep is filled (rep->folder points into f).  With o->dry_run
 * nothing is written and no lock is taken.
 */
int maildir_merge_folder(struct repo *r, struct snap_folder *f, int layout,
			 const struct restore_opts *o, struct idset *keys, int64_t keys_from_sec,
			 struct merge_report *rep, struct arca_err *err);

/* Adds the snapshot's subscriptions that the Maildir's subscriptions file
 * lacks (under subscriptions.lock).  *added_r: how many. */
int maildir_merge_subscriptions(const char *dest, char *const *names, size_t n,
				const struct restore_opts *o, size_t *added_r,
				struct arca_err *err);

/* Moves every file of staging/new and staging/cur into fdir/new and
 * fdir/cur without replacing anything (a name already there is the same
 * message from an earlier run: the staged copy is dropped), then removes
 * the staging directories.  *moved_r counts the files moved. */
int maildir_merge_install_staged(const char *staging, const char *fdir, uint64_t *moved_r,
				 struct arca_err *err);

#endif
