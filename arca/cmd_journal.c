/* arca journal --repo REPO [--account ACCOUNT] [--since TIME] [--json]
 *              [--restore-key KEYFILE] */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "commands.h"
#include "journal.h"
#include "pack.h"
#include "banned.h"

static const char USAGE[] =
	"arca journal --repo REPO [--account ACCOUNT] [--since TIME] [--json] [--restore-key KEYFILE]\n\n"
	"Lists the messages arcad journaled, by account and arrival time.  Without a key:\n"
	"account, time, direction (in: delivered to it, out: sent by it), size and ids.\n"
	"With the restore key also the sender and every recipient of each message.\n"
	"TIME is RFC 3339 (2026-11-28T10:00:00Z) or a date.  Messages still in the\n"
	"segment arcad is writing appear once it is sealed (--seal-seconds, 60 s).";

struct list_ctx {
	struct repo *r;
	bool json, first, key;
	uint64_t n;
	struct abuf obj;
};

static int show(const struct journal_rec *rec, void *vctx)
{
	struct list_ctx *c = vctx;
	char t[40], cid[2 * ARCA_ID_LEN + 1], eid[2 * ARCA_ID_LEN + 1];
	cli_format_time(rec->time_ns, t);
	hex_encode(cid, rec->content_id, ARCA_ID_LEN);
	hex_encode(eid, rec->envelope_id, ARCA_ID_LEN);
	const char *dir = rec->direction == JOURNAL_DIR_OUT ? "out" : "in";
	struct journal_envelope env = { 0 };
	bool have_env = false;
	if (c->key) {
		struct arca_err err = { 0 };
		if (repo_get(c->r, rec->envelope_id, OBJ_JOURNAL, &c->obj, &err) != 0) {
			fprintf(stderr, "arca journal: envelope of a message to %s: %s\n", rec->account, err.msg);
			return ARCA_ECORRUPT;
		}
		if (journal_envelope_decode(c->obj.data, c->obj.len, &env) != 0) {
			fprintf(stderr, "arca journal: envelope %s is malformed\n", eid);
			return ARCA_ECORRUPT;
		}
		have_env = true;
	}
	if (c->json) {
		printf("%s\n {\"account\":", c->first ? "" : ",");
		cli_json_str(stdout, rec->account);
		printf(",\"time\":\"%s\",\"direction\":\"%s\",\"size\":%llu,\"id\":\"%s\",\"envelope\":\"%s\",\"seq\":%llu",
		       t, dir, (unsigned long long)rec->size, cid, eid, (unsigned long long)rec->seq);
		if (have_env) {
			printf(",\"from\":");
			cli_json_str(stdout, env.mail_from);
			printf(",\"client\":");
			cli_json_str(stdout, env.client);
			printf(",\"recipients\":[");
			for (size_t i = 0; i < env.nrcpt; i++) {
				printf("%s{\"address\":", i ? "," : "");
				cli_json_str(stdout, env.rcpts[i].address);
				printf(",\"account\":");
				cli_json_str(stdout, env.rcpts[i].account);
				printf(",\"direction\":\"%s\"}", env.rcpts[i].direction == JOURNAL_DIR_OUT ? "out" : "in");
			}
			printf("]");
		}
		printf("}");
	} else {
		printf("%-30s  %-3s  %-32s  %10llu  %.16s", t, dir, rec->account,
		       (unsigned long long)rec->size, cid);
		if (have_env) {
			printf("  from <%s> to", env.mail_from);
			for (size_t i = 0; i < env.nrcpt; i++)
				printf(" %s", env.rcpts[i].account);
		}
		printf("\n");
	}
	journal_envelope_release(&env);
	c->first = false;
	c->n++;
	return 0;
}

int cmd_journal(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "account", required_argument, NULL, 'a' },
		{ "since", required_argument, NULL, 's' },
		{ "restore-key", required_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *repo = NULL, *account = NULL, *since = NULL, *keyfile = NULL;
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': repo = optarg; break;
		case 'a': account = optarg; break;
		case 's': since = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'j': json = true; break;
		case 'h': puts(USAGE); return 0;
		default: return cli_usage(USAGE);
		}
	}
	if (repo == NULL || optind != argc)
		return cli_usage(USAGE);
	uint64_t since_ns = 0;
	if (since != NULL && cli_parse_time(since, &since_ns) != 0)
		return cli_failf("--since: cannot read \"%s\" as a time (e.g. 2026-11-28T10:00:00Z)", since);
	struct repo *r;
	int rc = cli_open_repo(repo, REPO_OPEN_READ, keyfile, &r);
	if (rc)
		return rc;
	struct list_ctx ctx = { .r = r, .json = json, .first = true, .key = keyfile != NULL,
				.obj = ABUF_INIT };
	if (json)
		fputs("[", stdout);
	else
		printf("%-30s  %-3s  %-32s  %10s  %s\n", "TIME", "DIR", "ACCOUNT", "BYTES", "ID");
	struct arca_err err = { 0 };
	rc = journal_list(r, account, since_ns, show, &ctx, &err);
	if (json)
		puts(ctx.first ? "]" : "\n]");
	abuf_release(&ctx.obj);
	repo_close(r);
	if (rc && err.msg[0])
		return cli_fail(&err);
	return rc ? 4 : 0;
}
