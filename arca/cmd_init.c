/* arca init --repo REPO --restore-key KEYFILE */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "repo.h"
#include "banned.h"

static const char USAGE[] = "arca init --repo REPO --restore-key KEYFILE\n\n"
	"Creates a repository.  KEYFILE receives the restore key, protected by a\n"
	"passphrase (ARCA_PASSPHRASE or asked twice): keep it offline.  Ingest\n"
	"never needs it; restore and full verification do.";

int cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "restore-key", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *repo = NULL, *keyfile = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': repo = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'h': puts(USAGE); return 0;
		default: return cli_usage(USAGE);
		}
	}
	if (repo == NULL || keyfile == NULL || optind != argc)
		return cli_usage(USAGE);
	char *pass = cli_passphrase(true);
	if (pass == NULL)
		return cli_failf("a passphrase is needed for the restore key (set ARCA_PASSPHRASE or run on a terminal)");
	if (strlen(pass) < 8 && getenv("ARCA_TEST_FAST_KDF") == NULL) {
		cli_passphrase_free(pass);
		return cli_failf("the passphrase must be at least 8 characters");
	}
	struct repo_create_opts o = {
		.restore_key_path = keyfile,
		.passphrase = pass,
		.fast_kdf = getenv("ARCA_TEST_FAST_KDF") != NULL,
	};
	struct arca_err err = { 0 };
	int rc = repo_create(repo, &o, &err);
	cli_passphrase_free(pass);
	if (rc)
		return cli_fail(&err);
	printf("created repository %s\nrestore key: %s (keep it offline; without it and its passphrase nothing can be restored)\n",
	       repo, keyfile);
	return 0;
}
