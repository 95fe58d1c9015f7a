/* arca restore maildir --repo REPO --account ACCOUNT --restore-key KEYFILE
 *      [--snapshot ID | --at TIME] [--force] [--owner UID:GID] DEST */
#include <errno.h>
#include <getopt.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cli.h"
#include "commands.h"
#include "journal.h"
#include "mailsync.h"
#include "banned.h"

static const char USAGE[] =
	"arca restore maildir --repo REPO --account ACCOUNT --restore-key KEYFILE\n"
	"                     [--snapshot ID | --at TIME] [--force] [--owner UID:GID]\n"
	"                     [--sieve-home HOME] DEST\n"
	"arca restore maildir --repo REPO --restore-key KEYFILE --pattern PATTERN\n"
	"                     [--account ACCOUNT ...] [--at TIME] [--jobs N] [--force] [--owner UID:GID]\n"
	"                     [--no-journal]\n\n"
	"Writes the account's Maildir as it was in the snapshot (default: the latest;\n"
	"--at: the last one at or before TIME, RFC 3339) into DEST, with\n"
	"dovecot-uidlist, dovecot-keywords and subscriptions, so Dovecot serves the\n"
	"same UIDVALIDITY, UIDs, flags, keywords and dates.  DEST must be empty or\n"
	"absent unless --force.\n"
	"With --pattern, every account (or each --account given) is restored to\n"
	"PATTERN with %u the whole address, %n the local part and %d the domain, e.g.\n"
	"/srv/mail/%d/%n/Maildir, by --jobs processes at once (default: one per CPU);\n"
	"the passphrase is asked once.\n"
	"Mail that arcad journaled for the account after the snapshot (and not in\n"
	"it) is added: mail in to INBOX, unseen; mail out to Sent.  An account known\n"
	"only from the journal gets an INBOX of its journaled mail.  --at also bounds\n"
	"the journal; --no-journal restores the snapshot alone.\n"
	"--sieve-home HOME writes the account's Sieve scripts (pulled by arca pull\n"
	"imap) as Dovecot keeps them: HOME/sieve/NAME.sieve, the active one linked\n"
	"from HOME/.dovecot.sieve (with --pattern, HOME is a pattern too, e.g.\n"
	"/srv/mail/%d/%n).\n"
	"Without --snapshot/--at, a snapshot that a standing alarm marked suspect\n"
	"is passed over: the last one before it is restored.";

static void on_warn(void *ctx, const char *what, const char *why)
{
	(void)ctx;
	fprintf(stderr, "%s: warning: %s: %s\n", cli_prog, what, why);
}

/* A name that can be one path component: not empty, ".", "..", nor
 * holding '/' (account names from the journal come from the mail server,
 * and a quoted local part may hold anything). */
static bool component_ok(const char *p, size_t n)
{
	if (n == 0 || memchr(p, '/', n) != NULL || memchr(p, '\0', n) != NULL)
		return false;
	return !(n == 1 && p[0] == '.') && !(n == 2 && p[0] == '.' && p[1] == '.');
}

/* PATTERN with %u, %n, %d replaced for one account.  ARCA_EINVAL when the
 * account can't be a directory name. */
static int expand(const char *pattern, const char *account, struct abuf *out)
{
	const char *at = strrchr(account, '@');
	size_t nlen = at ? (size_t)(at - account) : strlen(account);
	const char *dom = at ? at + 1 : "";
	if (!component_ok(account, strlen(account)) || !component_ok(account, nlen) ||
	    (at && !component_ok(dom, strlen(dom))))
		return ARCA_EINVAL;
	abuf_reset(out);
	int rc = 0;
	for (const char *p = pattern; *p && rc == 0; p++) {
		if (p[0] == '%' && p[1] == 'u') {
			rc = abuf_add(out, account, strlen(account));
			p++;
		} else if (p[0] == '%' && p[1] == 'n') {
			rc = abuf_add(out, account, nlen);
			p++;
		} else if (p[0] == '%' && p[1] == 'd') {
			rc = abuf_add(out, dom, strlen(dom));
			p++;
		} else {
			rc = abuf_add(out, p, 1);
		}
	}
	return rc ? rc : abuf_cstr(out);
}

static int restore_one(struct repo *r, const struct snap_info *si, struct restore_opts *ro)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct arca_err err = { 0 };
	struct restore_result res;
	static const uint8_t zero[ARCA_ID_LEN];
	bool journal_only = memcmp(si->root, zero, ARCA_ID_LEN) == 0;
	ro->account = si->account;
	int rc = restore_maildir(r, journal_only ? NULL : si->root, ro, &res, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	char hex[2 * ARCA_ID_LEN + 1], t[40];
	hex_encode(hex, si->root, ARCA_ID_LEN);
	cli_format_time(si->time_ns, t);
	if (rc)
		fprintf(stderr, "%s: restoring %s (snapshot %.16s) into %s: %s\n", cli_prog,
			si->account, hex, ro->dest, err.msg[0] ? err.msg : arca_strerror(rc));
	else if (journal_only)
		printf("restored %s from the journal only (no snapshot): %llu messages (%.1f MiB) into %s in %.2f s\n",
		       si->account, (unsigned long long)res.journal_added, (double)res.bytes / 1048576.0,
		       ro->dest, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	else
		printf("restored %s from snapshot %.16s (%s): %llu folders, %llu messages (%.1f MiB; %llu from the journal, %llu journaled already in it) into %s in %.2f s\n",
		       si->account, hex, t, (unsigned long long)res.folders,
		       (unsigned long long)res.messages, (double)res.bytes / 1048576.0,
		       (unsigned long long)res.journal_added, (unsigned long long)res.journal_dup, ro->dest,
		       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	fflush(stdout);
	return rc ? 1 : 0;
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

/*
 * Many accounts: the passphrase is asked and the key derived once, then
 * worker processes (each with its own repository handle: an LMDB handle may
 * not cross fork) restore a share of the accounts each.
 */
static int restore_many(const char *repo, const char *keyfile, const char *pattern,
			char **accounts, size_t naccounts, const char *at, int jobs,
			struct restore_opts *ro)
{
	struct repo *r;
	int rc = cli_open_repo(repo, REPO_OPEN_READ, keyfile, &r);
	if (rc)
		return rc;
	struct arca_err err = { 0 };
	struct snap_info *list = NULL, *picks = NULL;
	size_t n = 0, npicks = 0;
	if (repo_snapshots(r, &list, &n, &err) != 0) {
		repo_close(r);
		return cli_fail(&err);
	}
	/* the distinct accounts, in order of first appearance */
	char **names = calloc(n + naccounts + 1, sizeof(char *));
	picks = calloc(n + naccounts + 1, sizeof(*picks));
	if (names == NULL || picks == NULL) {
		free(names);
		free(picks);
		snap_infos_free(list, n);
		repo_close(r);
		return cli_failf("out of memory");
	}
	size_t nnames = 0;
	for (size_t i = 0; i < naccounts; i++)
		names[nnames++] = accounts[i];
	if (naccounts == 0)
		for (size_t i = 0; i < n; i++) {
			size_t k = 0;
			while (k < nnames && strcmp(names[k], list[i].account) != 0)
				k++;
			if (k == nnames)
				names[nnames++] = list[i].account;
		}
	/* accounts the journal knows (and no snapshot does) */
	struct jaccts ja = { .until = ro->journal_until };
	if (!ro->no_journal && journal_list(r, NULL, 0, jacct_one, &ja, &err) != 0) {
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
		    (naccounts == 0 || name_in(accounts, naccounts, ja.names[i])))
			jonly++;
	struct snap_info *np = realloc(picks, (nnames + jonly + 1) * sizeof(*picks));
	if (np == NULL) {
		rc = cli_failf("out of memory");
	} else {
		picks = np;
	}
	for (size_t k = 0; k < nnames && rc == 0; k++) {
		if (!has_snapshot(list, n, names[k]) && !ro->no_journal) {
			bool in_journal = false;
			for (size_t i = 0; i < ja.n && !in_journal; i++)
				in_journal = strcmp(ja.names[i], names[k]) == 0;
			if (in_journal)
				continue;   /* picked below */
		}
		rc = cli_pick_snapshot(r, names[k], NULL, at, &picks[npicks]);
		if (rc == 0)
			npicks++;
	}
	for (size_t i = 0; i < ja.n && rc == 0; i++) {
		if (has_snapshot(list, n, ja.names[i]) ||
		    (naccounts != 0 && !name_in(accounts, naccounts, ja.names[i])))
			continue;
		rc = journal_only_pick(ja.names[i], &picks[npicks]);
		if (rc == 0)
			npicks++;
	}
	jaccts_free(&ja);
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
	if (jobs < 1)
		jobs = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (jobs < 1)
		jobs = 1;
	if ((size_t)jobs > npicks)
		jobs = (int)(npicks ? npicks : 1);
	fflush(stdout);
	fflush(stderr);
	pid_t pids[64];
	int started = 0, failures = 0;
	if (jobs > 64)
		jobs = 64;
	for (int w = 0; w < jobs; w++) {
		pid_t pid = fork();
		if (pid < 0) {
			failures++;
			break;
		}
		if (pid == 0) {
			struct repo *cr;
			struct arca_err cerr = { 0 };
			int crc = repo_open(repo, REPO_OPEN_READ, &cr, &cerr);
			struct arca_restore_key *ck = crc ? NULL : acrypto_restore_key_alloc();
			if (ck != NULL) {
				memcpy(ck, rk, sizeof(*ck));
				crc = repo_set_restore_key(cr, ck, &cerr);
			} else if (crc == 0) {
				crc = arca_err_set(&cerr, ARCA_ENOMEM, "out of memory");
			}
			if (crc) {
				cli_fail(&cerr);
				_exit(1);
			}
			int fails = 0;
			struct abuf dest = ABUF_INIT, home = ABUF_INIT;
			for (size_t i = (size_t)w; i < npicks; i += (size_t)jobs) {
				if (expand(pattern, picks[i].account, &dest) != 0) {
					fprintf(stderr, "%s: account \"%s\" can't be a directory name in %s; restore it with --account and a DEST of your choice\n",
						cli_prog, picks[i].account, pattern);
					fails++;
					continue;
				}
				struct restore_opts o = *ro;
				o.dest = (const char *)dest.data;
				o.no_sync = true;   /* one syncfs for all, below */
				/* --sieve-home is a pattern too: one home per account */
				if (ro->sieve_home) {
					if (expand(ro->sieve_home, picks[i].account, &home) != 0) {
						fails++;
						continue;
					}
					o.sieve_home = (const char *)home.data;
				}
				fails += restore_one(cr, &picks[i], &o);
			}
			/* each worker syncs once, when its share is written: the
			 * last message is durable before the run reports success */
			if (dest.len > 0 && restore_sync((const char *)dest.data, &cerr) != 0) {
				cli_fail(&cerr);
				fails++;
			}
			abuf_release(&dest);
			abuf_release(&home);
			repo_close(cr);
			fflush(stdout);
			_exit(fails ? 1 : 0);
		}
		pids[started++] = pid;
	}
	for (int i = 0; i < started; i++) {
		int status;
		while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failures++;
	}
	snap_infos_free(picks, npicks);
	acrypto_restore_key_free(rk);
	if (failures)
		return cli_failf("%d of %d restore workers reported failures (see above)", failures, jobs);
	return 0;
}

int cmd_restore(int argc, char **argv)
{
	/* client-side restore into any IMAP server: its own file */
	if (argc >= 2 && strcmp(argv[1], "imap") == 0)
		return cmd_restore_imap(argc - 1, argv + 1);
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "account", required_argument, NULL, 'a' },
		{ "restore-key", required_argument, NULL, 'k' },
		{ "snapshot", required_argument, NULL, 's' },
		{ "at", required_argument, NULL, 't' },
		{ "force", no_argument, NULL, 'f' },
		{ "owner", required_argument, NULL, 'o' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "no-journal", no_argument, NULL, 'J' },
		{ "sieve-home", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int sub = cli_subcommand(&argc, &argv, "maildir", USAGE);
	if (sub >= 0)
		return sub;
	const char *repo = NULL, *keyfile = NULL, *snap = NULL, *at = NULL, *pattern = NULL;
	char *accounts[256];
	size_t naccounts = 0;
	int jobs = 0;
	struct restore_opts ro = { .owner_uid = -1, .owner_gid = -1, .warn = on_warn,
				   .journal_until = UINT64_MAX };
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': repo = optarg; break;
		case 'a':
			if (naccounts == sizeof(accounts) / sizeof(accounts[0]))
				return cli_failf("too many --account options (use --pattern without --account for all)");
			accounts[naccounts++] = optarg;
			break;
		case 'k': keyfile = optarg; break;
		case 's': snap = optarg; break;
		case 't': at = optarg; break;
		case 'f': ro.force = true; break;
		case 'p': pattern = optarg; break;
		case 'j': jobs = atoi(optarg); break;
		case 'J': ro.no_journal = true; break;
		case 'S': ro.sieve_home = optarg; break;
		case 'o':
			if (sscanf(optarg, "%d:%d", &ro.owner_uid, &ro.owner_gid) != 2 ||
			    ro.owner_uid < 0 || ro.owner_gid < 0)
				return cli_failf("--owner takes numeric UID:GID");
			break;
		case 'h': puts(USAGE); return 0;
		default: return cli_usage(USAGE);
		}
	}
	if (repo == NULL || keyfile == NULL || (snap != NULL && at != NULL))
		return cli_usage(USAGE);
	if (at != NULL && cli_parse_time(at, &ro.journal_until) != 0)
		return cli_failf("--at %s: not a time (use RFC 3339, e.g. 2026-11-28T06:00:00Z)", at);
	if (pattern != NULL) {
		if (optind != argc || snap != NULL)
			return cli_usage(USAGE);
		return restore_many(repo, keyfile, pattern, accounts, naccounts, at, jobs, &ro);
	}
	if (naccounts != 1 || optind + 1 != argc)
		return cli_usage(USAGE);
	ro.dest = argv[optind];
	struct repo *r;
	int rc = cli_open_repo(repo, REPO_OPEN_READ, keyfile, &r);
	if (rc)
		return rc;
	struct snap_info si;
	struct arca_err err = { 0 };
	struct snap_info *list = NULL;
	size_t n = 0;
	bool any = repo_snapshots(r, &list, &n, &err) == 0 && has_snapshot(list, n, accounts[0]);
	snap_infos_free(list, n);
	struct jaccts ja = { .until = ro.journal_until };
	if (!any && snap == NULL && !ro.no_journal &&
	    journal_list(r, accounts[0], 0, jacct_one, &ja, &err) == 0 && ja.n > 0)
		rc = journal_only_pick(accounts[0], &si);
	else
		rc = cli_pick_snapshot(r, accounts[0], snap, at, &si);
	jaccts_free(&ja);
	if (rc == 0) {
		rc = restore_one(r, &si, &ro);
		snap_info_release(&si);
	}
	repo_close(r);
	return rc;
}
