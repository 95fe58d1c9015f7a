/* arca init --repo REPO --restore-key KEYFILE */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "repo.h"
#include "banned.h"

static const char USAGE[] = "arca init --repo REPO --restore-key KEYFILE [--id-hash auto|blake2b|hmac-sha256]\n\n"
	"Creates a repository.  KEYFILE receives the restore key, protected by a\n"
	"passphrase (ARCA_PASSPHRASE or asked twice): keep it offline.  Ingest\n"
	"never needs it; restore and full verification do.\n\n"
	"--id-hash: the keyed hash that names every object, fixed for the\n"
	"repository's life.  auto (the default) measures both here and takes\n"
	"HMAC-SHA-256 where the CPU's SHA extensions make it faster, else BLAKE2b.\n"
	"Choose by the CPU of the hosts that will ingest and restore.";

int cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "restore-key", required_argument, NULL, 'k' },
		{ "id-hash", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *repo = NULL, *keyfile = NULL;
	int id_alg = 0, chosen = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': repo = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'i':
			if (strcmp(optarg, "blake2b") == 0)
				id_alg = ARCA_ID_BLAKE2B;
			else if (strcmp(optarg, "hmac-sha256") == 0)
				id_alg = ARCA_ID_HMAC_SHA256;
			else if (strcmp(optarg, "auto") == 0)
				id_alg = 0;
			else
				return cli_usage(USAGE);
			break;
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
		.id_alg = id_alg,
		.id_alg_r = &chosen,
	};
	struct arca_err err = { 0 };
	int rc = repo_create(repo, &o, &err);
	cli_passphrase_free(pass);
	if (rc)
		return cli_fail(&err);
	printf("created repository %s (object ids: %s)\nrestore key: %s (keep it offline; without it and its passphrase nothing can be restored)\n",
	       repo, acrypto_id_alg_name((enum arca_id_alg)chosen), keyfile);
	return 0;
}
