#include "restore_many.h"
#include "overlay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "journal.h"
#include "banned.h"

bool restore_journal_only(const struct snap_info *si)
{
	static const uint8_t zero[ARCA_ID_LEN];
	return memcmp(si->root, zero, ARCA_ID_LEN) == 0;
}

/* Distinct accounts in the journal (records at or before until_ns). */
struct jaccts {
	char **names;
	size_t n, cap;
	uint64_t until;
};

static int jacct_one(const struct journal_rec *rec, void *ctx)
{
	struct jaccts *j = ctx;
	if (rec->time_ns > j->until)
		return 0;
	/* records come in account order: a new account differs from the last */
	if (j->n > 0 && strcmp(j->names[j->n - 1], rec->account) == 0)
		return 0;
	if (j->n == j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 64;
		char **nn = realloc(j->names, cap * sizeof(*nn));
		if (nn == NULL)
			return ARCA_ENOMEM;
		j->names = nn;
		j->cap = cap;
	}
	j->names[j->n] = strdup(rec->account);
	if (j->names[j->n] == NULL)
		return ARCA_ENOMEM;
	j->n++;
	return 0;
}

static void jaccts_free(struct jaccts *j)
{
	for (size_t i = 0; i < j->n; i++)
		free(j->names[i]);
	free(j->names);
}

int restore_journal_accounts(struct repo *r, uint64_t until_ns, char ***names_r, size_t *n_r,
			     struct arca_err *err)
{
	struct jaccts ja = { .until = until_ns };
	int rc = journal_list(r, NULL, 0, jacct_one, &ja, err);
	if (rc) {
		jaccts_free(&ja);
		return rc == ARCA_ENOMEM ? arca_err_set(err, rc, "out of memory") : rc;
	}
	*names_r = ja.names;
	*n_r = ja.n;
	return 0;
}

static bool name_in(char **names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

static bool has_snapshot(const struct snap_info *list, size_t n, const char *account)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].account, account) == 0)
			return true;
	return false;
}

/* An account with no snapshot but journaled mail restores from the
 * journal alone: a snap_info with a zero root stands for that. */
static int journal_only_pick(const char *account, struct snap_info *si)
{
	memset(si, 0, sizeof(*si));
	si->account = strdup(account);
	si->source = strdup("journal");
	return si->account && si->source ? 0 : cli_failf("out of memory");
}

int restore_pick_one(struct repo *r, const char *account, const char *snap_id, const char *at,
		     bool no_journal, uint64_t journal_until, struct snap_info *si_r)
{
	struct arca_err err = { 0 };
	struct snap_info *list = NULL;
	size_t n = 0;
	/* a failed read is said as it is (not taken for "no snapshot") */
	if (repo_snapshots(r, &list, &n, &err) != 0)
		return cli_fail(&err);
	bool any = has_snapshot(list, n, account);
	snap_infos_free(list, n);
	struct jaccts ja = { .until = journal_until };
	int rc = 0;
	if (!any && snap_id == NULL && !no_journal) {
		rc = journal_list(r, account, 0, jacct_one, &ja, &err);
		if (rc)
			rc = rc == ARCA_ENOMEM ? cli_failf("out of memory") : cli_fail(&err);
	}
	if (rc == 0 && ja.n > 0)
		rc = journal_only_pick(account, si_r);
	else if (rc == 0)
		rc = cli_pick_snapshot(r, account, snap_id, at, si_r);
	jaccts_free(&ja);
	return rc;
}

/* Takes the accounts restore_dest_conflicts refuses out of picks; how many,
 * or -1 when out of memory. */
static long drop_conflicts(const struct restore_many *m, struct snap_info *picks, size_t *n)
{
	const char **names = calloc(*n ? *n : 1, sizeof(*names));
	bool *refused = calloc(*n ? *n : 1, sizeof(*refused));
	long count = -1;
	if (names != NULL && refused != NULL) {
		for (size_t i = 0; i < *n; i++)
			names[i] = picks[i].account;
		count = restore_dest_conflicts(cli_prog, names, *n, m->maildir_pattern, m->stage_suffix,
					       m->home_pattern, refused);
	}
	if (count > 0) {
		size_t k = 0;
		for (size_t i = 0; i < *n; i++) {
			if (refused[i])
				snap_info_release(&picks[i]);
			else
				picks[k++] = picks[i];
		}
		*n = k;
	}
	free(names);
	free(refused);
	return count;
}

int restore_workers_run(const struct restore_workers *w)
{
	int jobs = w->jobs;
	if (jobs < 1)
		jobs = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (jobs < 1)
		jobs = 1;
	if ((size_t)jobs > w->n)
		jobs = (int)(w->n ? w->n : 1);
	if (jobs > RESTORE_JOBS_MAX)
		jobs = RESTORE_JOBS_MAX;
	fflush(stdout);
	fflush(stderr);
	pid_t pids[RESTORE_JOBS_MAX];
	int started = 0, failures = 0, warnings = 0;
	for (int k = 0; k < jobs; k++) {
		pid_t pid = fork();
		if (pid < 0) {
			cli_failf("fork: %s: the accounts of workers %d to %d are not restored", strerror(errno),
				  k + 1, jobs);
			failures++;
			break;
		}
		if (pid == 0) {
			struct repo *cr;
			struct arca_err cerr = { 0 };
			int crc = repo_open(w->repo, REPO_OPEN_READ, &cr, &cerr);
			struct arca_restore_key *ck = crc ? NULL : acrypto_restore_key_alloc();
			if (ck != NULL) {
				memcpy(ck, w->rk, sizeof(*ck));
				crc = repo_set_restore_key(cr, ck, &cerr);
			} else if (crc == 0) {
				crc = arca_err_set(&cerr, ARCA_ENOMEM, "out of memory");
			}
			if (crc) {
				cli_fail(&cerr);
				_exit(1);
			}
			int fails = 0, warned = 0;
			for (size_t i = (size_t)k; i < w->n; i += (size_t)jobs) {
				int one = w->one(w->ctx, cr, i);
				warned += one == EXIT_WARNINGS;
				fails += one != 0 && one != EXIT_WARNINGS;
			}
			if (w->done != NULL)
				fails += w->done(w->ctx, cr) != 0;
			repo_close(cr);
			fflush(stdout);
			fflush(stderr);
			_exit(fails ? 1 : warned ? EXIT_WARNINGS : 0);
		}
		pids[started++] = pid;
	}
	for (int i = 0; i < started; i++) {
		int status;
		while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_WARNINGS) {
			warnings++;
		} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			failures++;
			if (WIFSIGNALED(status))
				cli_failf("restore worker %d was killed by signal %d: its accounts may be unfinished (run the restore again)",
					  i + 1, WTERMSIG(status));
		}
	}
	if (failures)
		return cli_failf("%d of %d restore workers reported failures (see above)", failures, jobs);
	return warnings ? EXIT_WARNINGS : 0;
}

/* restore_many's accounts to the pool: index -> its pick */
struct many_pick {
	const struct restore_many *m;
	const struct snap_info *picks;
};

static int many_pick_one(void *ctx, struct repo *r, size_t i)
{
	struct many_pick *mp = ctx;
	return mp->m->one(mp->m->ctx, r, &mp->picks[i]);
}

static int many_pick_done(void *ctx, struct repo *r)
{
	struct many_pick *mp = ctx;
	return mp->m->done != NULL ? mp->m->done(mp->m->ctx, r) : 0;
}

/*
 * Many accounts: the passphrase is asked and the key derived once, then
 * worker processes (each with its own repository handle: an LMDB handle may
 * not cross fork) restore a share of the accounts each.
 */
static int restore_many_picked(const struct restore_many *m, struct repo *r);

int restore_many_run(const struct restore_many *m)
{
	struct repo *r;
	int rc = cli_open_repo(m->repo, REPO_OPEN_READ, m->keyfile, &r);
	if (rc)
		return rc;
	struct overlay *ov = NULL;
	if (m->overlay_path != NULL) {
		if ((rc = cli_open_overlay(m->overlay_path, r, false, &ov)) != 0) {
			repo_close(r);
			return rc;
		}
		*m->overlay_out = ov;
	}
	rc = restore_many_picked(m, r);
	if (ov != NULL) {
		*m->overlay_out = NULL;
		overlay_free(ov);
	}
	return rc;
}

/* restore_many_run once the repository (and overlay) are open; closes r. */
static int restore_many_picked(const struct restore_many *m, struct repo *r)
{
	int rc = 0;
	struct arca_err err = { 0 };
	struct snap_info *list = NULL, *picks = NULL;
	size_t n = 0, npicks = 0;
	if (repo_snapshots(r, &list, &n, &err) != 0) {
		repo_close(r);
		return cli_fail(&err);
	}
	/* the distinct accounts, in order of first appearance */
	char **names = calloc(n + m->naccounts + 1, sizeof(char *));
	picks = calloc(n + m->naccounts + 1, sizeof(*picks));
	if (names == NULL || picks == NULL) {
		free(names);
		free(picks);
		snap_infos_free(list, n);
		repo_close(r);
		return cli_failf("out of memory");
	}
	size_t nnames = 0;
	/* an account named twice is restored once (two passes would share
	 * its stage) */
	for (size_t i = 0; i < m->naccounts; i++)
		if (!name_in(names, nnames, m->accounts[i]))
			names[nnames++] = m->accounts[i];
	if (m->naccounts == 0)
		for (size_t i = 0; i < n; i++) {
			size_t k = 0;
			while (k < nnames && strcmp(names[k], list[i].account) != 0)
				k++;
			if (k == nnames)
				names[nnames++] = list[i].account;
		}
	/* accounts the journal knows (and no snapshot does) */
	struct jaccts ja = { .until = m->journal_until };
	if (!m->no_journal && restore_journal_accounts(r, m->journal_until, &ja.names, &ja.n, &err) != 0) {
		jaccts_free(&ja);
		free(names);
		free(picks);
		snap_infos_free(list, n);
		repo_close(r);
		return cli_fail(&err);
	}
	size_t jonly = 0;
	for (size_t i = 0; i < ja.n; i++)
		if (!has_snapshot(list, n, ja.names[i]) &&
		    (m->naccounts == 0 || name_in(m->accounts, m->naccounts, ja.names[i])))
			jonly++;
	struct snap_info *np = realloc(picks, (nnames + jonly + 1) * sizeof(*picks));
	if (np == NULL) {
		rc = cli_failf("out of memory");
	} else {
		picks = np;
	}
	for (size_t k = 0; k < nnames && rc == 0; k++) {
		if (!has_snapshot(list, n, names[k]) && !m->no_journal) {
			bool in_journal = false;
			for (size_t i = 0; i < ja.n && !in_journal; i++)
				in_journal = strcmp(ja.names[i], names[k]) == 0;
			if (in_journal)
				continue;   /* picked below */
		}
		rc = cli_pick_snapshot(r, names[k], NULL, m->at, &picks[npicks]);
		if (rc == 0)
			npicks++;
	}
	for (size_t i = 0; i < ja.n && rc == 0; i++) {
		if (has_snapshot(list, n, ja.names[i]) ||
		    (m->naccounts != 0 && !name_in(m->accounts, m->naccounts, ja.names[i])))
			continue;
		rc = journal_only_pick(ja.names[i], &picks[npicks]);
		if (rc == 0)
			npicks++;
	}
	jaccts_free(&ja);
	/* accounts that would share a directory: none of them, before
	 * anything is written */
	long refused = 0;
	if (rc == 0 && (m->maildir_pattern || m->home_pattern))
		refused = drop_conflicts(m, picks, &npicks);
	if (refused < 0)
		rc = cli_failf("out of memory");
	const struct arca_restore_key *rk0 = repo_restore_key(r);
	struct arca_restore_key *rk = acrypto_restore_key_alloc();
	if (rk != NULL && rk0 != NULL)
		memcpy(rk, rk0, sizeof(*rk));
	repo_close(r);
	snap_infos_free(list, n);
	free(names);
	if (rc || rk == NULL) {
		snap_infos_free(picks, npicks);
		acrypto_restore_key_free(rk);
		return rc ? rc : cli_failf("out of memory");
	}
	if (m->ready != NULL && (rc = m->ready(m->ctx)) != 0) {
		snap_infos_free(picks, npicks);
		acrypto_restore_key_free(rk);
		return rc;
	}
	struct many_pick mp = { m, picks };
	struct restore_workers w = { .repo = m->repo, .rk = rk, .jobs = m->jobs, .n = npicks,
				     .one = many_pick_one, .done = many_pick_done, .ctx = &mp };
	rc = restore_workers_run(&w);
	snap_infos_free(picks, npicks);
	acrypto_restore_key_free(rk);
	if (rc == 1)
		return rc;
	if (refused)
		return cli_failf("%ld accounts not restored: their directories collide (above)", refused);
	return rc;
}
