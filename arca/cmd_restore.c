/* arca restore maildir --repo REPO --account ACCOUNT --restore-key KEYFILE
 *      [--snapshot ID | --at TIME] [--force] [--owner UID:GID] DEST */
#include <errno.h>
#include <getopt.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cli.h"
#include "overlay.h"
#include "commands.h"
#include "fsutil.h"
#include "journal.h"
#include "mailsync.h"
#include "restore_many.h"
#include "banned.h"

static const char USAGE[] =
	"arca restore maildir --repo REPO --account ACCOUNT --restore-key KEYFILE\n"
	"                     [--snapshot ID | --at TIME] [--force] [--owner UID:GID]\n"
	"                     [--sieve-home HOME] [--overlay FILE] DEST\n"
	"arca restore maildir --repo REPO --restore-key KEYFILE --pattern PATTERN\n"
	"                     [--account ACCOUNT ...] [--at TIME] [--jobs N] [--force] [--owner UID:GID]\n"
	"                     [--no-journal] [--overlay FILE]\n\n"
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
	"/srv/mail/%d/%n).  A script of the same name with other bytes already\n"
	"there stays: the snapshot's goes in as NAME-restored; so does an active\n"
	"script set since (.dovecot.sieve).\n"
	"--overlay FILE (what arca serve-imap --overlay kept): the flags and\n"
	"keywords users changed while the vault served them replace the\n"
	"snapshot's for those messages (a change older than the snapshot is not\n"
	"taken), and HIGHESTMODSEQ is raised above them.\n"
	"Without --snapshot/--at, a snapshot that a standing alarm marked suspect\n"
	"is passed over: the last one before it is restored.\n"
	"Into a live Dovecot host, merged with the mail that arrived since:\n"
	"arca restore dovecot (arca restore dovecot --help, docs/restore.md).";

static void on_warn(void *ctx, const char *what, const char *why)
{
	(void)ctx;
	fprintf(stderr, "%s: warning: %s: %s\n", cli_prog, what, why);
}

static int restore_one(struct repo *r, const struct snap_info *si, struct restore_opts *ro)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct arca_err err = { 0 };
	struct restore_result res;
	bool journal_only = restore_journal_only(si);
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
	if (rc == 0 && (res.overlay_msgs || res.overlay_kw_dropped))
		printf("%s: %llu messages with the flags users set through serve-imap%s\n", si->account,
		       (unsigned long long)res.overlay_msgs,
		       res.overlay_kw_dropped ? " (some keywords left out: a folder takes 64)" : "");
	fflush(stdout);
	return rc ? 1 : 0;
}

/* restore maildir --pattern: each worker's state (its own copy after fork) */
struct many_maildir {
	const char *pattern;
	struct restore_opts *ro;
	struct abuf dest, home;
	/* a descriptor per file system written to, each opened before the
	 * first write there (fs_sync_handle): many_done syncs them */
	struct sync_fs {
		int fd;
		dev_t dev;
		char *where;
	} fs[64];
	size_t nfs;
};

/* Keeps fd when its file system is new to this worker (else closes it).
 * Past 64 file systems, returns it to be synced by the caller alone. */
static int many_keep_fs(struct many_maildir *mm, int fd, const char *where)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return fd;
	for (size_t i = 0; i < mm->nfs; i++)
		if (mm->fs[i].dev == st.st_dev) {
			close(fd);
			return -1;
		}
	char *w = strdup(where);
	if (mm->nfs == sizeof(mm->fs) / sizeof(mm->fs[0]) || w == NULL) {
		free(w);
		return fd;
	}
	mm->fs[mm->nfs++] = (struct sync_fs){ fd, st.st_dev, w };
	return -1;
}

static int many_one(void *ctx, struct repo *r, const struct snap_info *si)
{
	struct many_maildir *mm = ctx;
	if (restore_expand(mm->pattern, si->account, &mm->dest) != 0) {
		fprintf(stderr, "%s: account \"%s\" can't be a directory name in %s; restore it with --account and a DEST of your choice\n",
			cli_prog, si->account, mm->pattern);
		return 1;
	}
	struct restore_opts o = *mm->ro;
	o.dest = (const char *)mm->dest.data;
	o.no_sync = true;   /* one syncfs per file system for all, in many_done */
	/* --sieve-home is a pattern too: one home per account */
	if (mm->ro->sieve_home) {
		if (restore_expand(mm->ro->sieve_home, si->account, &mm->home) != 0)
			return 1;
		o.sieve_home = (const char *)mm->home.data;
	}
	/* (the Sieve home needs no handle: restore_sieve fsyncs its few
	 * files itself) */
	struct arca_err err = { 0 };
	int fd = fs_sync_handle(o.dest, &err);
	if (fd < 0)
		return cli_fail(&err);
	int own = many_keep_fs(mm, fd, o.dest);
	int rc = restore_one(r, si, &o);
	/* a file system past the 64 kept: synced now, by a descriptor opened
	 * before the writes all the same */
	if (own >= 0 && rc == 0 && restore_sync_fd(own, o.dest, &err) != 0)
		rc = cli_fail(&err);
	if (own >= 0)
		close(own);
	return rc;
}

/* each worker syncs once, when its share is written: the last message is
 * durable before the run reports success */
static int many_done(void *ctx, struct repo *r)
{
	(void)r;
	struct many_maildir *mm = ctx;
	struct arca_err err = { 0 };
	int fails = 0;
	for (size_t i = 0; i < mm->nfs; i++) {
		if (restore_sync_fd(mm->fs[i].fd, mm->fs[i].where, &err) != 0) {
			cli_fail(&err);
			fails++;
		}
		close(mm->fs[i].fd);
		free(mm->fs[i].where);
	}
	mm->nfs = 0;
	abuf_release(&mm->dest);
	abuf_release(&mm->home);
	return fails;
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
		{ "overlay", required_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	if (argc >= 2 && strcmp(argv[1], "dovecot") == 0)
		return cmd_restore_dovecot(argc - 1, argv + 1);
	int sub = cli_subcommand(&argc, &argv, "maildir", USAGE);
	if (sub >= 0)
		return sub;
	const char *repo = NULL, *keyfile = NULL, *snap = NULL, *at = NULL, *pattern = NULL;
	const char *overlay_path = NULL;
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
		case 'O': overlay_path = optarg; break;
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
		if (!restore_pattern_ok(pattern))
			return cli_failf("--pattern %s: the pattern must hold %%u or %%n (a directory per account)", pattern);
		if (ro.sieve_home != NULL && !restore_pattern_ok(ro.sieve_home))
			return cli_failf("--sieve-home %s: with --pattern it is a pattern too and must hold %%u or %%n", ro.sieve_home);
		struct many_maildir mm = { .pattern = pattern, .ro = &ro };
		struct restore_many m = { .repo = repo, .keyfile = keyfile, .at = at,
					  .accounts = accounts, .naccounts = naccounts, .jobs = jobs,
					  .no_journal = ro.no_journal, .journal_until = ro.journal_until,
					  .one = many_one, .done = many_done, .ctx = &mm,
					  .maildir_pattern = pattern, .home_pattern = ro.sieve_home,
					  .overlay_path = overlay_path, .overlay_out = &ro.overlay };
		return restore_many_run(&m);
	}
	if (naccounts != 1 || optind + 1 != argc)
		return cli_usage(USAGE);
	ro.dest = argv[optind];
	struct repo *r;
	int rc = cli_open_repo(repo, REPO_OPEN_READ, keyfile, &r);
	if (rc)
		return rc;
	struct overlay *ov = NULL;
	if (overlay_path != NULL && (rc = cli_open_overlay(overlay_path, r, false, &ov)) != 0) {
		repo_close(r);
		return rc;
	}
	ro.overlay = ov;
	struct snap_info si;
	rc = restore_pick_one(r, accounts[0], snap, at, ro.no_journal, ro.journal_until, &si);
	if (rc == 0) {
		rc = restore_one(r, &si, &ro);
		snap_info_release(&si);
	}
	overlay_free(ov);
	repo_close(r);
	return rc;
}
