/*
 * arca - the Arca admin tool.  One file per command; this one dispatches.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "crypto.h"
#include "banned.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "init", cmd_init, "create a repository and its offline restore key" },
	{ "ingest", cmd_ingest, "snapshot mailboxes into the repository (ingest maildir)" },
	{ "snapshots", cmd_snapshots, "list snapshots" },
	{ "ls", cmd_ls, "list the folders or messages of a snapshot" },
	{ "diff", cmd_diff, "what changed in an account between two snapshots" },
	{ "restore", cmd_restore, "restore a snapshot (restore maildir, restore imap)" },
	{ "export", cmd_export, "write an account, folder or message as mbox or .eml files" },
	{ "journal", cmd_journal, "list the messages arcad journaled" },
	{ "pull", cmd_pull, "capture accounts' live state over IMAP and ManageSieve (pull imap)" },
	{ "status", cmd_status, "standing alarms and what the repository holds" },
	{ "alarm", cmd_alarm, "clear an alarm with the restore key (alarm clear)" },
	{ "serve-imap", cmd_serve_imap, "serve the vault over IMAP while the mail server is rebuilt" },
	{ "overlay", cmd_overlay, "what serve-imap --overlay kept (flag changes for the restore)" },
	{ "verify", cmd_verify, "check the repository for damage" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: arca COMMAND [OPTIONS]\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'arca COMMAND --help' describes a command.  Secrets: the restore-key\n"
		   "passphrase comes from ARCA_PASSPHRASE or is asked on the terminal.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("arca %s\n", ARCA_VERSION);
		return 0;
	}
	if (acrypto_setup() != 0) {
		fprintf(stderr, "arca: libsodium failed to initialize\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0) {
			static char prog[64];
			snprintf(prog, sizeof(prog), "arca %s", commands[i].name);
			cli_prog = prog;
			return commands[i].fn(argc - 1, argv + 1);
		}
	}
	fprintf(stderr, "arca: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
