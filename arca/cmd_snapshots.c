/* arca snapshots --repo REPO [--account ACCOUNT] [--json] */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "alarm.h"
#include "commands.h"
#include "banned.h"

static const char USAGE[] = "arca snapshots --repo REPO [--account ACCOUNT] [--json]\n\n"
	"Lists snapshots, oldest first.  Needs no key.";

int cmd_snapshots(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "account", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *repo = NULL, *account = NULL;
	int json = 0, c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': repo = optarg; break;
		case 'a': account = optarg; break;
		case 'j': json = 1; break;
		case 'h': puts(USAGE); return 0;
		default: return cli_usage(USAGE);
		}
	}
	if (repo == NULL || optind != argc)
		return cli_usage(USAGE);
	struct repo *r;
	int rc = cli_open_repo(repo, REPO_OPEN_READ, NULL, &r);
	if (rc)
		return rc;
	struct arca_err err = { 0 };
	struct snap_info *list;
	size_t n;
	if (repo_snapshots(r, &list, &n, &err) != 0) {
		repo_close(r);
		return cli_fail(&err);
	}
	/* snapshots marked suspect by a standing alarm */
	struct alarm *al = NULL;
	size_t nal = 0;
	if (alarm_list(r, true, &al, &nal, &err) != 0) {
		snap_infos_free(list, n);
		repo_close(r);
		return cli_fail(&err);
	}
	if (json)
		fputs("[", stdout);
	else
		printf("%-16s  %-30s  %-32s  %9s  %10s\n", "ID", "TIME", "ACCOUNT", "MESSAGES", "BYTES");
	int first = 1;
	for (size_t i = 0; i < n; i++) {
		const struct snap_info *s = &list[i];
		if (account != NULL && strcmp(account, s->account) != 0)
			continue;
		char hex[2 * ARCA_ID_LEN + 1], t[40];
		hex_encode(hex, s->root, ARCA_ID_LEN);
		uint64_t alarm_seq = 0;
		for (size_t a = 0; a < nal && alarm_seq == 0; a++)
			for (size_t x = 0; x < al[a].nsuspects && alarm_seq == 0; x++)
				if (memcmp(al[a].suspects[x].root, s->root, ARCA_ID_LEN) == 0 &&
				    strcmp(al[a].suspects[x].account, s->account) == 0)
					alarm_seq = al[a].seq;
		cli_format_time(s->time_ns, t);
		if (json) {
			printf("%s\n {\"id\":\"%s\",\"account\":", first ? "" : ",", hex);
			cli_json_str(stdout, s->account);
			printf(",\"time\":\"%s\",\"source\":", t);
			cli_json_str(stdout, s->source);
			printf(",\"folders\":%llu,\"messages\":%llu,\"bytes\":%llu,\"seq\":%llu,\"suspect\":%s",
			       (unsigned long long)s->folders, (unsigned long long)s->messages,
			       (unsigned long long)s->bytes, (unsigned long long)s->seq,
			       alarm_seq ? "true" : "false");
			if (alarm_seq)
				printf(",\"alarm\":%llu", (unsigned long long)alarm_seq);
			printf("}");
		} else {
			printf("%.16s  %-30s  %-32s  %9llu  %10llu%s\n", hex, t, s->account,
			       (unsigned long long)s->messages, (unsigned long long)s->bytes,
			       alarm_seq ? "  SUSPECT (alarm)" : "");
		}
		first = 0;
	}
	if (json)
		puts(first ? "]" : "\n]");
	snap_infos_free(list, n);
	alarms_free(al, nal);
	repo_close(r);
	return 0;
}
