/* arca restore maildir --repo REPO --account ACCOUNT --restore-key KEYFILE
 *      [--snapshot ID | --at TIME] [--force] [--owner UID:GID] DEST */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cli.h"
#include "commands.h"
#include "mailsync.h"
#include "banned.h"

static const char USAGE[] =
	"arca restore maildir --repo REPO --account ACCOUNT --restore-key KEYFILE\n"
	"                     [--snapshot ID | --at TIME] [--force] [--owner UID:GID] DEST\n\n"
	"Writes the account's Maildir as it was in the snapshot (default: the latest;\n"
	"--at: the last one at or before TIME, RFC 3339) into DEST, with\n"
	"dovecot-uidlist, dovecot-keywords and subscriptions, so Dovecot serves the\n"
	"same UIDVALIDITY, UIDs, flags, keywords and dates.  DEST must be empty or\n"
	"absent unless --force.";

static void on_warn(void *ctx, const char *what, const char *why)
{
	(void)ctx;
	fprintf(stderr, "%s: warning: %s: %s\n", cli_prog, what, why);
}

int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "account", required_argument, NULL, 'a' },
		{ "restore-key", required_argument, NULL, 'k' },
		{ "snapshot", required_argument, NULL, 's' },
		{ "at", required_argument, NULL, 't' },
		{ "force", no_argument, NULL, 'f' },
		{ "owner", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	if (argc < 2 || strcmp(argv[1], "maildir") != 0) {
		if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
			puts(USAGE);
			return 0;
		}
		return cli_usage(USAGE);
	}
	argc--;
	argv++;
	const char *repo = NULL, *account = NULL, *keyfile = NULL, *snap = NULL, *at = NULL;
	struct restore_opts ro = { .owner_uid = -1, .owner_gid = -1, .warn = on_warn };
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': repo = optarg; break;
		case 'a': account = optarg; break;
		case 'k': keyfile = optarg; break;
		case 's': snap = optarg; break;
		case 't': at = optarg; break;
		case 'f': ro.force = true; break;
		case 'o':
			if (sscanf(optarg, "%d:%d", &ro.owner_uid, &ro.owner_gid) != 2 ||
			    ro.owner_uid < 0 || ro.owner_gid < 0)
				return cli_failf("--owner takes numeric UID:GID");
			break;
		case 'h': puts(USAGE); return 0;
		default: return cli_usage(USAGE);
		}
	}
	if (repo == NULL || account == NULL || keyfile == NULL || optind + 1 != argc ||
	    (snap != NULL && at != NULL))
		return cli_usage(USAGE);
	ro.dest = argv[optind];
	struct repo *r;
	int rc = cli_open_repo(repo, REPO_OPEN_READ, keyfile, &r);
	if (rc)
		return rc;
	struct snap_info si;
	rc = cli_pick_snapshot(r, account, snap, at, &si);
	if (rc) {
		repo_close(r);
		return rc;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct arca_err err = { 0 };
	struct restore_result res;
	rc = restore_maildir(r, si.root, &ro, &res, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	char hex[2 * ARCA_ID_LEN + 1], t[40];
	hex_encode(hex, si.root, ARCA_ID_LEN);
	cli_format_time(si.time_ns, t);
	if (rc)
		fprintf(stderr, "%s: restoring %s (snapshot %.16s) into %s: %s\n", cli_prog,
			account, hex, ro.dest, err.msg[0] ? err.msg : arca_strerror(rc));
	else
		printf("restored %s from snapshot %.16s (%s): %llu folders, %llu messages (%.1f MiB) into %s in %.2f s\n",
		       account, hex, t, (unsigned long long)res.folders,
		       (unsigned long long)res.messages, (double)res.bytes / 1048576.0, ro.dest,
		       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	snap_info_release(&si);
	repo_close(r);
	return rc ? 1 : 0;
}
