/* arca ls --repo REPO --account A --restore-key KEYFILE [--snapshot ID|--at T] [FOLDER] */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "commands.h"
#include "snapshot.h"
#include "banned.h"

static const char USAGE[] =
	"arca ls --repo REPO --account ACCOUNT --restore-key KEYFILE [--snapshot ID | --at TIME] [FOLDER]\n\n"
	"Without FOLDER: the snapshot's folders (UIDVALIDITY, next UID, messages).\n"
	"With FOLDER: its messages (UID, flags, keywords, date, size).";

static void print_flags(uint32_t flags)
{
	for (int c = 0; c < 26; c++)
		if (flags & (1u << c))
			putchar('A' + c);
}

int cmd_ls(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "account", required_argument, NULL, 'a' },
		{ "restore-key", required_argument, NULL, 'k' },
		{ "snapshot", required_argument, NULL, 's' },
		{ "at", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *repo = NULL, *account = NULL, *keyfile = NULL, *snap = NULL, *at = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': repo = optarg; break;
		case 'a': account = optarg; break;
		case 'k': keyfile = optarg; break;
		case 's': snap = optarg; break;
		case 't': at = optarg; break;
		case 'h': puts(USAGE); return 0;
		default: return cli_usage(USAGE);
		}
	}
	if (repo == NULL || account == NULL || keyfile == NULL || optind + 1 < argc)
		return cli_usage(USAGE);
	const char *folder = optind < argc ? argv[optind] : NULL;
	struct repo *r;
	int rc = cli_open_repo(repo, REPO_OPEN_READ, keyfile, &r);
	if (rc)
		return rc;
	struct snap_info si = { 0 };
	rc = cli_pick_snapshot(r, account, snap, at, &si);
	struct snapshot *s = NULL;
	struct arca_err err = { 0 };
	if (rc == 0 && snapshot_load(r, si.root, &s, &err) != 0)
		rc = cli_fail(&err);
	bool found = folder == NULL;
	for (size_t i = 0; rc == 0 && s && i < s->nfolders; i++) {
		struct snap_folder *f = &s->folders[i];
		if (folder == NULL) {
			printf("%-40s uidvalidity=%u nextuid=%u messages=%llu%s%s\n", f->name,
			       f->uidvalidity, f->nextuid, (unsigned long long)f->message_count,
			       f->attrs & SNAP_FOLDER_SUBSCRIBED ? " subscribed" : "",
			       f->attrs & SNAP_FOLDER_SELECTABLE ? "" : " noselect");
			continue;
		}
		if (strcmp(f->name, folder) != 0)
			continue;
		found = true;
		if (snapshot_load_msgs(r, f, &err) != 0) {
			rc = cli_fail(&err);
			break;
		}
		for (size_t m = 0; m < f->nmsgs; m++) {
			const struct snap_msg *msg = &f->msgs[m];
			char t[40];
			cli_format_time((uint64_t)msg->date_sec * 1000000000u + (uint64_t)msg->date_nsec, t);
			printf("%8u  %-30s %10llu  ", msg->uid, t, (unsigned long long)msg->size);
			print_flags(msg->flags);
			for (size_t k = 0; k < f->nkeywords; k++)
				if (msg->keywords & (1ULL << k))
					printf(" %s", f->keywords[k]);
			printf("  %s\n", msg->base);
		}
	}
	if (rc == 0 && !found)
		rc = cli_failf("snapshot has no folder %s", folder);
	snapshot_free(s);
	if (si.account)
		snap_info_release(&si);
	repo_close(r);
	return rc;
}
