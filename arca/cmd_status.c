/*
 * arca status --repo REPO [--json] [--all]
 * arca alarm clear --repo REPO --restore-key KEYFILE --reason TEXT SEQ
 *
 * Standing alarms (docs/alarms.md) and what the repository holds.  Listing
 * needs no key; clearing an alarm needs the offline restore key, so that
 * whoever controls the vault host alone can't silence one.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alarm.h"
#include "buf.h"
#include "cli.h"
#include "commands.h"
#include "banned.h"

static const char STATUS_USAGE[] = "arca status --repo REPO [--all] [--json]\n\n"
	"Lists every standing alarm (--all: cleared ones too) and a summary of the\n"
	"repository.  Needs no key.  Exit status 5 while any alarm stands.";

#define EXIT_ALARM 5

static void print_alarm_json(const struct alarm *a, bool first)
{
	char t[40], ct[40];
	cli_format_time(a->time_ns, t);
	printf("%s\n  {\"seq\":%llu,\"time\":\"%s\",\"kind\":\"%s\",\"account\":", first ? "" : ",",
	       (unsigned long long)a->seq, t, alarm_kind_name(a->kind));
	cli_json_str(stdout, a->account);
	printf(",\"text\":");
	cli_json_str(stdout, a->text);
	printf(",\"suspect_snapshots\":[");
	for (size_t i = 0; i < a->nsuspects; i++) {
		char hex[2 * ARCA_ID_LEN + 1];
		hex_encode(hex, a->suspects[i].root, ARCA_ID_LEN);
		printf("%s{\"account\":", i ? "," : "");
		cli_json_str(stdout, a->suspects[i].account);
		printf(",\"id\":\"%s\"}", hex);
	}
	printf("],\"standing\":%s", a->cleared ? "false" : "true");
	if (a->cleared) {
		cli_format_time(a->cleared_ns, ct);
		printf(",\"cleared\":\"%s\",\"cleared_seq\":%llu,\"reason\":", ct,
		       (unsigned long long)a->cleared_seq);
		cli_json_str(stdout, a->cleared_reason ? a->cleared_reason : "");
	}
	printf("}");
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "all", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *repo = NULL;
	bool json = false, all = false;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': repo = optarg; break;
		case 'j': json = true; break;
		case 'a': all = true; break;
		case 'h': puts(STATUS_USAGE); return 0;
		default: return cli_usage(STATUS_USAGE);
		}
	}
	if (repo == NULL || optind != argc)
		return cli_usage(STATUS_USAGE);
	struct repo *r;
	int rc = cli_open_repo(repo, REPO_OPEN_READ, NULL, &r);
	if (rc)
		return rc;
	struct arca_err err = { 0 };
	struct alarm *v = NULL;
	size_t n = 0;
	struct snap_info *snaps = NULL;
	size_t ns = 0;
	if (alarm_list(r, !all, &v, &n, &err) != 0 || repo_snapshots(r, &snaps, &ns, &err) != 0) {
		alarms_free(v, n);
		repo_close(r);
		return cli_fail(&err);
	}
	size_t standing = 0;
	for (size_t i = 0; i < n; i++)
		standing += !v[i].cleared;
	/* accounts and the newest snapshot per source */
	size_t accounts = 0;
	uint64_t last_maildir = 0, last_imap = 0;
	for (size_t i = 0; i < ns; i++) {
		bool seen = false;
		for (size_t k = 0; k < i && !seen; k++)
			seen = strcmp(snaps[k].account, snaps[i].account) == 0;
		accounts += !seen;
		if (strcmp(snaps[i].source, "imap") == 0 && snaps[i].time_ns > last_imap)
			last_imap = snaps[i].time_ns;
		if (strcmp(snaps[i].source, "maildir") == 0 && snaps[i].time_ns > last_maildir)
			last_maildir = snaps[i].time_ns;
	}
	char tm[40] = "", ti[40] = "";
	if (last_maildir)
		cli_format_time(last_maildir, tm);
	if (last_imap)
		cli_format_time(last_imap, ti);
	if (json) {
		printf("{\"standing_alarms\":%zu,\"snapshots\":%zu,\"accounts\":%zu,"
		       "\"log_entries\":%llu,\"last_maildir_snapshot\":\"%s\",\"last_pull\":\"%s\",\"alarms\":[",
		       standing, ns, accounts, (unsigned long long)repo_log_count(r), tm, ti);
		for (size_t i = 0; i < n; i++)
			print_alarm_json(&v[i], i == 0);
		printf("%s]}\n", n ? "\n" : "");
	} else {
		printf("repository %s: %zu snapshots of %zu accounts, %llu log entries\n", repo, ns,
		       accounts, (unsigned long long)repo_log_count(r));
		if (last_imap)
			printf("last pull snapshot:    %s\n", ti);
		if (last_maildir)
			printf("last Maildir snapshot: %s\n", tm);
		if (standing == 0)
			printf("no standing alarms\n");
		for (size_t i = 0; i < n; i++) {
			char t[40];
			cli_format_time(v[i].time_ns, t);
			printf("%s %llu  %s  %s%s%s: %s (%zu snapshot%s marked suspect)%s\n",
			       v[i].cleared ? "cleared" : "ALARM", (unsigned long long)v[i].seq, t,
			       alarm_kind_name(v[i].kind), v[i].account[0] ? " " : "", v[i].account,
			       v[i].text, v[i].nsuspects, v[i].nsuspects == 1 ? "" : "s",
			       v[i].cleared ? "" : "  -> arca alarm clear --repo REPO --restore-key KEY --reason TEXT SEQ");
		}
	}
	alarms_free(v, n);
	snap_infos_free(snaps, ns);
	repo_close(r);
	return standing ? EXIT_ALARM : 0;
}

static const char ALARM_USAGE[] =
	"arca alarm clear --repo REPO --restore-key KEYFILE --reason TEXT SEQ\n\n"
	"Clears the standing alarm SEQ (see arca status) with a signed log entry\n"
	"giving the reason.  Needs the restore key: the vault host alone can't\n"
	"silence an alarm.  The suspect marks on snapshots stay in the history.";

int cmd_alarm(int argc, char **argv)
{
	int sub = cli_subcommand(&argc, &argv, "clear", ALARM_USAGE);
	if (sub >= 0)
		return sub;
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "restore-key", required_argument, NULL, 'k' },
		{ "reason", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *repo = NULL, *key = NULL, *reason = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': repo = optarg; break;
		case 'k': key = optarg; break;
		case 'm': reason = optarg; break;
		case 'h': puts(ALARM_USAGE); return 0;
		default: return cli_usage(ALARM_USAGE);
		}
	}
	if (repo == NULL || key == NULL || reason == NULL || optind + 1 != argc)
		return cli_usage(ALARM_USAGE);
	char *end;
	unsigned long long seq = strtoull(argv[optind], &end, 10);
	if (*end || argv[optind][0] == '\0')
		return cli_usage(ALARM_USAGE);
	struct repo *r;
	int rc = cli_open_repo(repo, REPO_OPEN_WRITE, key, &r);
	if (rc)
		return rc;
	struct arca_err err = { 0 };
	rc = alarm_clear(r, seq, reason, &err);
	repo_close(r);
	if (rc)
		return cli_fail(&err);
	printf("alarm %llu cleared\n", seq);
	return 0;
}
