/* dovecot_commit.c - staging and group commit for `arca restore dovecot`:
 * a Maildir that doesn't exist is written next to its place and moved in
 * whole; a committer thread per worker syncs, moves in and finishes every
 * account written meanwhile, with one syncfs and one doveadm for them all
 * (dovecot_restore.h, docs/restore.md). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "dovecot_restore.h"
#include "faultinject.h"
#include "fsutil.h"
#include "banned.h"

/*
 * Staging.  When an account's Maildir doesn't exist at all (a host rebuilt
 * empty), the restore is written into DEST.arca-restore next to it, made
 * durable with one syncfs, and renamed into place.  Dovecot never sees a
 * half-restored Maildir, and no message needs a temporary name of its own
 * nor a sync per folder.  If DEST appears meanwhile (mail delivered, a
 * login), the staging directory is dropped and the restore merges into
 * DEST as usual.  It sits in a directory the mail user may write to, so it
 * is removed with fs_remove_tree (no symlink followed).
 */
#define STAGE_MARKER ".arca-stage"   /* in a stage's top directory: "this is one" */

int dov_stage_clear(const char *stage, struct arca_err *err)
{
	struct stat st;
	if (lstat(stage, &st) != 0)
		return errno == ENOENT ? 0 : arca_err_errno(err, ARCA_EIO, errno, "stat %s", stage);
	char *m = NULL;
	if (asprintf(&m, "%s/%s", stage, STAGE_MARKER) < 0)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	struct stat ms;
	bool ours = S_ISDIR(st.st_mode) && lstat(m, &ms) == 0 && S_ISREG(ms.st_mode);
	free(m);
	if (!ours)
		return arca_err_set(err, ARCA_EEXIST,
				    "%s exists and is no staging directory of arca restore (another account's Maildir?): left alone, not restored",
				    stage);
	return fs_remove_tree(stage, err);
}

int dov_stage_make(const char *stage, int owner_uid, int owner_gid, struct arca_err *err)
{
	if (mkdir(stage, 0700) != 0)
		return arca_err_errno(err, ARCA_EIO, errno, "create %s", stage);
	char *m = NULL;
	if (asprintf(&m, "%s/%s", stage, STAGE_MARKER) < 0) {
		rmdir(stage);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	int rc = 0;
	int fd = open(m, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		rc = arca_err_errno(err, ARCA_EIO, errno, "create %s", m);
	if (rc == 0 && owner_uid >= 0 &&
	    (fchown(fd, (uid_t)owner_uid, (gid_t)owner_gid) != 0 || chown(stage, (uid_t)owner_uid, (gid_t)owner_gid) != 0))
		rc = arca_err_errno(err, ARCA_EIO, errno, "chown %s", stage);
	if (fd >= 0)
		close(fd);
	if (rc) {
		unlink(m);
		rmdir(stage);
	}
	free(m);
	return rc;
}

/* DEST.arca-restore for dest (trailing '/' dropped); "" with --dry-run or
 * --folder, which never stage. */
int dov_stage_path(const struct dov *d, const char *dest, struct abuf *stage)
{
	abuf_reset(stage);
	if (d->dry_run || d->folder != NULL)
		return abuf_cstr(stage);
	size_t n = strlen(dest);
	while (n > 1 && dest[n - 1] == '/')
		n--;
	if (abuf_add(stage, dest, n) != 0 || abuf_printf(stage, "%s", STAGE_SUFFIX) != 0)
		return ARCA_ENOMEM;
	return abuf_cstr(stage);
}

/* STAGE.lock, flock()ed for as long as a run may write or remove STAGE:
 * two restores of one account never share (or delete) one stage.  1: held
 * by another run. */
int dov_stage_lock(const char *stage, int *fd_r, struct arca_err *err)
{
	*fd_r = -1;
	char *lp = NULL;
	if (asprintf(&lp, "%s.lock", stage) < 0)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	int rc = 0, fd = -1;
	/* the holder unlinks the file when done: a lock taken on a file
	 * unlinked meanwhile is no lock, so check it is still the one named */
	for (int tries = 0; tries < 8; tries++) {
		fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			rc = arca_err_errno(err, ARCA_EIO, errno, "create %s", lp);
			break;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			rc = errno == EWOULDBLOCK ? 1 : arca_err_errno(err, ARCA_EIO, errno, "lock %s", lp);
			break;
		}
		struct stat a, b;
		if (fstat(fd, &a) == 0 && stat(lp, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
			break;
		close(fd);
		fd = -1;
		rc = 1;   /* replaced each time: as if held */
	}
	if (rc == 0 && fd < 0)
		rc = 1;
	if (rc) {
		if (fd >= 0)
			close(fd);
	} else {
		*fd_r = fd;
	}
	free(lp);
	return rc;
}

void dov_stage_unlock(const char *stage, int fd)
{
	if (fd < 0)
		return;
	char *lp = NULL;
	if (asprintf(&lp, "%s.lock", stage) >= 0)
		unlink(lp);
	free(lp);
	close(fd);
}

/* Move the complete stage to dest, never over anything: renameat2
 * RENAME_NOREPLACE, or where the file system lacks it (NFS, CIFS) an
 * exclusive mkdir of dest and a rename over that empty directory.  1: dest
 * exists (appeared meanwhile), 0: moved, -1: errno. */
static int stage_move(const char *stage, const char *dest, int owner_uid, int owner_gid)
{
	if (renameat2(AT_FDCWD, stage, AT_FDCWD, dest, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EEXIST || errno == ENOTEMPTY)
		return 1;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (mkdir(dest, 0700) != 0)
		return errno == EEXIST ? 1 : -1;
	/* the mail user's, as the stage is: a crash before the rename leaves
	 * an empty Maildir root Dovecot can use, which the re-run merges into */
	if (owner_uid >= 0 && chown(dest, (uid_t)owner_uid, (gid_t)owner_gid) != 0) {
		int e = errno;
		(void)rmdir(dest);
		errno = e;
		return -1;
	}
	if (rename(stage, dest) == 0)
		return 0;
	int e = errno;
	(void)rmdir(dest);   /* ours, unless something was put in it meanwhile */
	errno = e;
	return e == EEXIST || e == ENOTEMPTY ? 1 : -1;
}

/* The staged restore is complete and durable (restore_maildir ends with
 * restore_sync_fd): now in place.  1: dest appeared meanwhile (nothing moved,
 * the stage is gone), 0: done, -1: an error (printed). */
static int stage_finish(const char *account, const char *stage, const char *dest, int owner_uid,
			int owner_gid)
{
	struct arca_err err = { 0 };
	fault_crash_point();   /* durable, not in place */
	fault_stop_point("stage-move");   /* a test makes dest appear here */
	int mv = stage_move(stage, dest, owner_uid, owner_gid);
	if (mv > 0) {
		printf("%s: %s appeared while the restore was being written: merging into it instead\n",
		       account, dest);
		if (fs_remove_tree(stage, &err) != 0)
			fprintf(stderr, "%s: %s: warning: %s\n", cli_prog, account, err.msg);
		return 1;
	}
	if (mv < 0) {
		fprintf(stderr, "%s: %s: move %s to %s: %s (the restore is complete there: move it by hand, or re-run)\n",
			cli_prog, account, stage, dest, strerror(errno));
		return -1;
	}
	fault_crash_point();   /* in place, the move not yet durable */
	/* the parent of dest as named without trailing '/' (the stage's) */
	char *parent = fs_dirname(stage);
	int rc = parent ? fs_fsync_dir(parent, &err) : ARCA_ENOMEM;
	free(parent);
	if (rc != 0) {
		fprintf(stderr, "%s: %s: %s\n", cli_prog, account, err.msg[0] ? err.msg : "out of memory");
		return -1;
	}
	/* a stage no more (left behind by a crash just before: harmless, a
	 * file Dovecot does not take for a folder) */
	char *m = NULL;
	if (asprintf(&m, "%s/%s", dest, STAGE_MARKER) >= 0)
		(void)unlink(m);
	free(m);
	return 0;
}

void dov_pending_free(struct pending *p)
{
	if (p == NULL)
		return;
	if (p->stage != NULL)
		dov_stage_unlock(p->stage, p->stage_fd);
	if (p->sync_fd >= 0)
		close(p->sync_fd);
	for (size_t i = 0; i < p->nreps; i++)
		free(p->reps[i].folder);
	free(p->reps);
	dov_sieve_free(p->bodies, p->s ? p->s->nsieve : 0);
	snapshot_free(p->s);
	free(p->si.account);
	free(p->user);
	free(p->dest);
	free(p->home);
	free(p->stage);
	free(p);
}

/* A heap copy of pd (strings copied; s, bodies, the stage lock and d's
 * reports moved in on success). */
struct pending *dov_pending_take(const struct pending *pd, const struct snap_info *si,
				    const char *stage, int stage_fd, struct dov *d)
{
	struct pending *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	*p = *pd;
	p->next = NULL;
	p->si = (struct snap_info){ .seq = si->seq, .time_ns = si->time_ns };
	memcpy(p->si.root, si->root, ARCA_ID_LEN);
	p->si.account = strdup(si->account);
	p->user = strdup(pd->user);
	p->dest = strdup(pd->dest);
	p->home = strdup(pd->home ? pd->home : "");
	p->stage = strdup(stage);
	p->account = p->si.account;
	p->reps = NULL;
	p->nreps = 0;
	p->s = NULL;
	p->bodies = NULL;
	p->stage_fd = -1;
	p->sync_fd = -1;
	if (p->si.account == NULL || p->user == NULL || p->dest == NULL || p->home == NULL || p->stage == NULL) {
		free(p->stage);
		p->stage = NULL;   /* the lock stays the caller's */
		dov_pending_free(p);
		return NULL;
	}
	p->s = pd->s;
	p->bodies = pd->bodies;
	p->stage_fd = stage_fd;
	p->sync_fd = pd->sync_fd;
	p->reps = d->reps;
	p->nreps = d->nreps;
	return p;
}

#define COMMIT_BATCH_MAX 64    /* accounts per commit (one doveadm process) */
#define COMMIT_QUEUE_MAX 64    /* written and waiting: the worker waits beyond */
#define COMMIT_INTERVAL_MS 1000

struct committer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pending *head, *tail;  /* written, waiting */
	size_t queued;
	struct pending *redo;         /* dest appeared: the worker merges them */
	bool closing;
	int fails;
	struct dov d;                 /* the thread's own: account, reps, fails */
};

/* Durable, in place, then finished: the committer's work on one batch.
 * Returns the accounts that failed (each said). */
static int commit_batch(struct committer *cm, struct pending *batch)
{
	struct dov *cd = &cm->d;
	size_t n = 0;
	for (struct pending *p = batch; p; p = p->next)
		n++;
	struct pending **all = calloc(n, sizeof(*all)), **moved = calloc(n, sizeof(*moved));
	struct statuses *given = calloc(n, sizeof(*given));
	bool *failed = calloc(n, sizeof(*failed));
	int fails = 0;
	if (all == NULL || moved == NULL || given == NULL || failed == NULL) {
		free(all);
		free(moved);
		free(given);
		free(failed);
		for (struct pending *p = batch, *nx; p; p = nx) {
			nx = p->next;
			fprintf(stderr, "%s: %s: out of memory finishing the restore: it stays in %s (re-run)\n",
				cli_prog, p->account, p->stage);
			dov_pending_free(p);
			fails++;
		}
		return fails;
	}
	size_t k = 0;
	for (struct pending *p = batch; p; p = p->next)
		all[k++] = p;
	/* 1. durable: syncfs on each stage's own descriptor, opened before
	 * its first write (syncfs reports the write errors since its file was
	 * opened: Linux 5.8); the first does the writing, the others find
	 * little left */
	size_t nmoved = 0;
	for (size_t i = 0; i < n; i++) {
		struct pending *p = all[i];
		struct arca_err err = { 0 };
		int rc = fault_hit(FAULT_FSYNC) ? arca_err_errno(&err, ARCA_EIO, EIO, "sync %s", p->stage)
			 : syncfs(p->sync_fd) == 0 ? 0 : arca_err_errno(&err, ARCA_EIO, errno, "sync %s", p->stage);
		failed[i] = rc != 0;
		if (rc != 0) {
			fprintf(stderr, "%s: %s: restoring into %s: %s (what is already there is untouched; re-run to complete)\n",
				cli_prog, p->account, p->stage, err.msg);
			struct arca_err e2 = { 0 };
			(void)fs_remove_tree(p->stage, &e2);
			fails++;
		}
	}
	/* 2. in place; where dest appeared meanwhile, back to the worker */
	for (size_t i = 0; i < n; i++) {
		struct pending *p = all[i];
		if (failed[i])
			continue;
		int st = stage_finish(p->account, p->stage, p->dest, p->owner_uid, p->owner_gid);
		dov_stage_unlock(p->stage, p->stage_fd);
		p->stage_fd = -1;
		free(p->stage);
		p->stage = NULL;
		if (st > 0) {
			all[i] = NULL;   /* the worker's now */
			pthread_mutex_lock(&cm->mu);
			p->next = cm->redo;
			cm->redo = p;
			pthread_mutex_unlock(&cm->mu);
		} else if (st < 0) {
			fails++;
		} else {
			moved[nmoved++] = p;
		}
	}
	/* 3. one doveadm for their status, then each account's last steps */
	struct doveadm_result res = { 0 };
	bool grouped = cd->have_doveadm && nmoved > 0 && dov_group_status(cd, moved, nmoved, &res, given) == 0;
	for (size_t i = 0; i < nmoved; i++)
		fails += dov_account_finish(cd, moved[i], grouped ? &given[i] : NULL);
	doveadm_result_release(&res);
	for (size_t i = 0; i < n; i++) {
		dov_statuses_release(&given[i]);
		dov_pending_free(all[i]);
	}
	free(given);
	free(failed);
	free(moved);
	free(all);
	return fails;
}

static void *committer_main(void *arg)
{
	struct committer *cm = arg;
	struct timespec prev = { 0 };
	pthread_mutex_lock(&cm->mu);
	for (;;) {
		while (cm->head == NULL && !cm->closing)
			pthread_cond_wait(&cm->cv, &cm->mu);
		if (cm->head == NULL)
			break;
		/* a commit at most every COMMIT_INTERVAL_MS, unless a batch is
		 * full or the worker is done: each doveadm process costs Dovecot
		 * ~50 ms of start-up, however few accounts it is given */
		struct timespec until = prev;
		until.tv_nsec += (long)COMMIT_INTERVAL_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!cm->closing && cm->queued < COMMIT_BATCH_MAX &&
		       pthread_cond_timedwait(&cm->cv, &cm->mu, &until) == 0)
			;
		clock_gettime(CLOCK_MONOTONIC, &prev);
		/* everything written meanwhile, up to a batch */
		struct pending *batch = cm->head, *last = batch;
		size_t n = 1;
		while (last->next != NULL && n < COMMIT_BATCH_MAX) {
			last = last->next;
			n++;
		}
		cm->head = last->next;
		if (cm->head == NULL)
			cm->tail = NULL;
		last->next = NULL;
		cm->queued -= n;
		pthread_cond_broadcast(&cm->cv);
		pthread_mutex_unlock(&cm->mu);
		int f = commit_batch(cm, batch);
		pthread_mutex_lock(&cm->mu);
		cm->fails += f;
	}
	pthread_mutex_unlock(&cm->mu);
	return NULL;
}

/* Hands p to the worker's committer (started on first use); waits while
 * COMMIT_QUEUE_MAX are queued.  0, or -1 (no thread: p stays the
 * caller's). */
int dov_commit_add(struct dov *d, struct pending *p)
{
	struct committer *cm = d->cm;
	if (cm == NULL) {
		cm = calloc(1, sizeof(*cm));
		if (cm == NULL)
			return -1;
		cm->d = *d;   /* the options; account, reps and fails its own */
		cm->d.account = NULL;
		cm->d.reps = NULL;
		cm->d.nreps = cm->d.cap = 0;
		cm->d.fails = 0;
		cm->d.cm = NULL;
		pthread_condattr_t ca;
		pthread_mutex_init(&cm->mu, NULL);
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&cm->cv, &ca);
		pthread_condattr_destroy(&ca);
		if (pthread_create(&cm->thread, NULL, committer_main, cm) != 0) {
			pthread_cond_destroy(&cm->cv);
			pthread_mutex_destroy(&cm->mu);
			free(cm);
			return -1;
		}
		d->cm = cm;
	}
	pthread_mutex_lock(&cm->mu);
	while (cm->queued >= COMMIT_QUEUE_MAX)
		pthread_cond_wait(&cm->cv, &cm->mu);
	if (cm->tail != NULL)
		cm->tail->next = p;
	else
		cm->head = p;
	cm->tail = p;
	cm->queued++;
	pthread_cond_broadcast(&cm->cv);
	pthread_mutex_unlock(&cm->mu);
	return 0;
}

int dov_commit_close(struct committer *cm, struct pending **redo_r)
{
	*redo_r = NULL;
	if (cm == NULL)
		return 0;
	pthread_mutex_lock(&cm->mu);
	cm->closing = true;
	pthread_cond_broadcast(&cm->cv);
	pthread_mutex_unlock(&cm->mu);
	pthread_join(cm->thread, NULL);
	int fails = cm->fails;
	*redo_r = cm->redo;
	pthread_cond_destroy(&cm->cv);
	pthread_mutex_destroy(&cm->mu);
	free(cm);
	return fails;
}
