/* arca overlay --repo REPO --restore-key KEYFILE FILE [--account A] [--json]
 *
 * What `arca serve-imap --overlay FILE` kept: per account and folder, how
 * many messages users changed and when, so an admin sees what a restore
 * with --overlay will carry before running it (and that the file is
 * intact: it is read whole and checked). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "overlay.h"
#include "banned.h"

static const char USAGE[] =
	"arca overlay --repo REPO --restore-key KEYFILE [--account ACCOUNT] [--json] FILE\n\n"
	"Reads the flag overlay FILE that arca serve-imap --overlay kept (every record\n"
	"is checked: an altered file is an error, exit 1) and lists per account and\n"
	"folder the messages whose flags or keywords users changed, the highest\n"
	"MODSEQ they were served with and the time of the last change: what arca\n"
	"restore ... --overlay FILE will carry to the rebuilt server.";

struct row {
	const struct ovl_folder *f;
	uint64_t last_ns;
};

struct rows {
	struct row *v;
	size_t n, cap;
	const char *account;
};

static int collect(const struct ovl_folder *f, void *ctx)
{
	struct rows *r = ctx;
	if (r->account && strcmp(f->account, r->account) != 0)
		return 0;
	if (r->n == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 64;
		struct row *v = realloc(r->v, nc * sizeof(*v));
		if (v == NULL)
			return ARCA_ENOMEM;
		r->v = v;
		r->cap = nc;
	}
	uint64_t last = 0;
	for (size_t i = 0; i < f->nmsgs; i++)
		if (f->msgs[i].time_ns > last)
			last = f->msgs[i].time_ns;
	r->v[r->n++] = (struct row){ f, last };
	return 0;
}

static int row_cmp(const void *a, const void *b)
{
	const struct ovl_folder *x = ((const struct row *)a)->f, *y = ((const struct row *)b)->f;
	int c = strcmp(x->account, y->account);
	if (c == 0)
		c = strcmp(x->name, y->name);
	return c ? c : (x->uidvalidity < y->uidvalidity ? -1 : x->uidvalidity > y->uidvalidity);
}

int cmd_overlay(int argc, char **argv)
{
	cli_prog = "arca overlay";
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "restore-key", required_argument, NULL, 'k' },
		{ "account", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *repo = NULL, *keyfile = NULL, *account = NULL;
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': repo = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'a': account = optarg; break;
		case 'j': json = true; break;
		case 'h': puts(USAGE); return 0;
		default: return cli_usage(USAGE);
		}
	}
	if (repo == NULL || keyfile == NULL || optind + 1 != argc)
		return cli_usage(USAGE);
	struct repo *r;
	int rc = cli_open_repo(repo, REPO_OPEN_READ, keyfile, &r);
	if (rc)
		return rc;
	struct overlay *ov = NULL;
	rc = cli_open_overlay(argv[optind], r, false, &ov);
	repo_close(r);
	if (rc)
		return rc;
	struct rows rows = { .account = account };
	if (overlay_each_folder(ov, collect, &rows) != 0) {
		free(rows.v);
		overlay_free(ov);
		return cli_failf("out of memory");
	}
	if (rows.n > 1)
		qsort(rows.v, rows.n, sizeof(*rows.v), row_cmp);
	uint64_t nrec, nf, nm;
	overlay_counts(ov, &nrec, &nf, &nm);
	if (json) {
		printf("{\"records\":%llu,\"bytes\":%llu,\"folders\":[", (unsigned long long)nrec,
		       (unsigned long long)overlay_bytes(ov));
	} else {
		printf("%s: %llu changes, %llu bytes; messages changed per folder:\n", argv[optind],
		       (unsigned long long)nrec, (unsigned long long)overlay_bytes(ov));
		printf("%-30s %-30s %11s %8s %14s  %s\n", "ACCOUNT", "FOLDER", "UIDVALIDITY", "MESSAGES",
		       "HIGHESTMODSEQ", "LAST CHANGE");
	}
	for (size_t i = 0; i < rows.n; i++) {
		const struct ovl_folder *f = rows.v[i].f;
		char t[40];
		cli_format_time(rows.v[i].last_ns, t);
		if (json) {
			printf("%s\n {\"account\":", i ? "," : "");
			cli_json_str(stdout, f->account);
			printf(",\"folder\":");
			cli_json_str(stdout, f->name);
			printf(",\"uidvalidity\":%u,\"messages\":%zu,\"highestmodseq\":%llu,\"last_change\":\"%s\"}",
			       f->uidvalidity, f->nmsgs, (unsigned long long)f->max_modseq, t);
		} else {
			printf("%-30s %-30s %11u %8zu %14llu  %s\n", f->account, f->name, f->uidvalidity, f->nmsgs,
			       (unsigned long long)f->max_modseq, t);
		}
	}
	if (json)
		printf("\n]}\n");
	free(rows.v);
	overlay_free(ov);
	return 0;
}
