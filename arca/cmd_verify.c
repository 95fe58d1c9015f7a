/* arca verify --repo REPO [--restore-key KEYFILE] */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "verify.h"
#include "banned.h"

static const char USAGE[] = "arca verify --repo REPO [--restore-key KEYFILE] [--json]\n\n"
	"Without a key: checks the log (signatures, hash chain, Merkle heads, no gaps)\n"
	"and every pack (present, size, hash).  With the restore key: also decrypts and\n"
	"checks every object and every snapshot's tree.  Exit 0 when all is well, 4\n"
	"when anything is damaged or missing (each problem is named on stderr).";

static void report(void *ctx, bool fatal, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "%s: %s: %s\n", cli_prog, fatal ? "DAMAGE" : "warning", msg);
}

int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "restore-key", required_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *repo = NULL, *keyfile = NULL;
	int json = 0, c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': repo = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'j': json = 1; break;
		case 'h': puts(USAGE); return 0;
		default: return cli_usage(USAGE);
		}
	}
	if (repo == NULL || optind != argc)
		return cli_usage(USAGE);
	/* The index is a cache: open without reading the log into it, so a
	 * damaged log is reported by verify, not by opening. */
	struct repo *r;
	struct arca_err oerr = { 0 };
	if (repo_open(repo, REPO_OPEN_NOSYNC, &r, &oerr) != 0) {
		/* a repository that can't even be opened is damaged, unless it
		 * isn't there or isn't a repository at all */
		bool damage = oerr.code == ARCA_ECORRUPT || oerr.code == ARCA_EFORMAT ||
			      oerr.code == ARCA_EVERSION;
		report(NULL, damage, oerr.msg);
		return damage ? EXIT_DAMAGE : 1;
	}
	struct arca_err err = { 0 };
	struct verify_result res;
	uint64_t extra_errors = 0;
	if (keyfile != NULL) {
		struct arca_restore_key *rk;
		if (cli_read_restore_key(keyfile, &rk) != 0) {
			repo_close(r);
			return 1;   /* the key file, not the repository */
		}
		if (repo_set_restore_key(r, rk, &err) != 0) {
			/* the key is fine but doesn't open this repository's config:
			 * damage (the checks without the key still run and say more) */
			report(NULL, true, err.msg);
			extra_errors++;
			arca_err_clear(&err);
			keyfile = NULL;
		}
	}
	if (keyfile != NULL && repo_sync(r, &err) != 0) {
		/* objects are found through the index: say why it is incomplete */
		report(NULL, true, err.msg);
		extra_errors++;
		arca_err_clear(&err);
	}
	int rc = verify_repo(r, report, NULL, &res, &err);
	repo_close(r);
	if (rc)
		return cli_fail(&err);
	res.errors += extra_errors;
	if (json)
		printf("{\"ok\":%s,\"errors\":%llu,\"warnings\":%llu,\"log_entries\":%llu,\"packs\":%llu,"
		       "\"objects\":%llu,\"snapshots\":%llu,\"bytes\":%llu,\"with_key\":%s}\n",
		       res.errors ? "false" : "true", (unsigned long long)res.errors,
		       (unsigned long long)res.warnings, (unsigned long long)res.log_entries,
		       (unsigned long long)res.packs, (unsigned long long)res.objects,
		       (unsigned long long)res.snapshots, (unsigned long long)res.bytes,
		       keyfile ? "true" : "false");
	else
		printf("%s: %llu log entries, %llu packs (%.1f MiB), %llu objects%s, %llu snapshots%s; %llu problems, %llu warnings\n",
		       res.errors ? "DAMAGED" : "ok", (unsigned long long)res.log_entries,
		       (unsigned long long)res.packs, (double)res.bytes / 1048576.0,
		       (unsigned long long)res.objects, keyfile ? " decrypted and checked" : "",
		       (unsigned long long)res.snapshots, keyfile ? " complete" : "",
		       (unsigned long long)res.errors, (unsigned long long)res.warnings);
	return res.errors ? EXIT_DAMAGE : 0;
}
