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

/* arcad's pull scheduler writes REPO/state/pull.json (arcad/puller.c). */
static char *read_pull_state(const char *repo)
{
	char path[4096];
	if ((size_t)snprintf(path, sizeof(path), "%s/state/pull.json", repo) >= sizeof(path))
		return NULL;
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	char *buf = calloc(1, 8192);
	size_t n = buf ? fread(buf, 1, 8191, f) : 0;
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if (buf == NULL || n < 2 || buf[0] != '{' || buf[n - 1] != '}' || memchr(buf, '\n', n)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* A field of that JSON object, as text ("" if absent); values are plain. */
static void pull_field(const char *json, const char *key, char *out, size_t len)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(json, pat);
	out[0] = '\0';
	if (p == NULL)
		return;
	p += strlen(pat);
	if (*p == '"')
		p++;
	size_t n = 0;
	while (*p && *p != '"' && *p != ',' && *p != '}' && n + 1 < len)
		out[n++] = *p++;
	out[n] = '\0';
}

static void print_pull_state(const char *json)
{
	char running[8], done[16], total[16], failed[16], snaps[16], unch[16], fin[40], next[40],
	     result[48], secs[16], every[16], err[256];
	pull_field(json, "running", running, sizeof(running));
	pull_field(json, "done", done, sizeof(done));
	pull_field(json, "accounts", total, sizeof(total));
	pull_field(json, "failed", failed, sizeof(failed));
	pull_field(json, "new_snapshots", snaps, sizeof(snaps));
	pull_field(json, "unchanged", unch, sizeof(unch));
	pull_field(json, "finished", fin, sizeof(fin));
	pull_field(json, "next", next, sizeof(next));
	pull_field(json, "last_result", result, sizeof(result));
	pull_field(json, "last_seconds", secs, sizeof(secs));
	pull_field(json, "every_seconds", every, sizeof(every));
	pull_field(json, "last_error", err, sizeof(err));
	printf("pulls (arcad, every %s s): ", every);
	if (strcmp(running, "true") == 0)
		printf("running: %s of %s accounts done (%s new snapshots, %s unchanged, %s failed)\n",
		       done, total[0] ? total : "?", snaps, unch, failed);
	else if (fin[0])
		printf("last finished %s: %s in %s s (%s accounts: %s new snapshots, %s unchanged, %s failed)%s%s; next %s\n",
		       fin, result, secs, done, snaps, unch, failed, err[0] ? "; " : "", err, next);
	else
		printf("first pull at %s\n", next);
}

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
	char *pull = read_pull_state(repo);
	char tm[40] = "", ti[40] = "";
	if (last_maildir)
		cli_format_time(last_maildir, tm);
	if (last_imap)
		cli_format_time(last_imap, ti);
	if (json) {
		printf("{\"standing_alarms\":%zu,\"snapshots\":%zu,\"accounts\":%zu,"
		       "\"log_entries\":%llu,\"last_maildir_snapshot\":\"%s\",\"last_pull\":\"%s\",",
		       standing, ns, accounts, (unsigned long long)repo_log_count(r), tm, ti);
		if (pull) {
			/* printed back as it was checked: one JSON object */
			printf("\"pull\":%s,", pull);
		}
		printf("\"alarms\":[");
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
		if (pull)
			print_pull_state(pull);
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
	free(pull);
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
