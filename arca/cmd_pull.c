/*
 * arca pull imap --repo REPO --host H --port P [--tls|--starttls]
 *     --master-user U --password-file F (--account A ... | --accounts-from FILE|CMD)
 *     [--sieve-port P]
 *
 * One pull of every account's live IMAP state (and Sieve scripts) into
 * snapshots; alarms on mass deletion (docs/pull.md, docs/alarms.md).
 */
#include <ctype.h>
#include <pthread.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alarm.h"
#include "buf.h"
#include "cli.h"
#include "commands.h"
#include "imap_opts.h"
#include "pull.h"
#include "pull_ipc.h"
#include "repo.h"
#include <sodium.h>
#include "banned.h"

static const char USAGE[] =
	"arca pull imap --repo REPO --host HOST --port PORT [--tls | --starttls]\n"
	"               (--master-user USER --password-file FILE | --credentials FILE)\n"
	"               (--account ACCOUNT ... | --accounts-from FILE|CMD)\n"
	"               [--sieve-port PORT] [--parallel N] [--json]\n\n"
	"Captures each account's folders, subscriptions, special-use, UIDVALIDITY,\n"
	"UIDs, flags, keywords, internal dates and MODSEQs over IMAP (read-only:\n"
	"EXAMINE and BODY.PEEK), and with --sieve-port its Sieve scripts over\n"
	"ManageSieve, as one snapshot per account.  Later pulls fetch only what\n"
	"changed; an account whose state is unchanged gets no new snapshot.\n"
	"  --tls / --starttls  TLS from the start (993) / after STARTTLS; the\n"
	"                      certificate is verified (--ca-file PEM, else the system's)\n"
	"  --insecure          no certificate checks, and plain IMAP allowed to a\n"
	"                      host that is not loopback (tests only)\n"
	"  --master-user USER  log in as ACCOUNT<sep>USER (Dovecot master user);\n"
	"  --separator C       <sep>, default '*'\n"
	"  --password-file F   the master user's password (first line)\n"
	"  --credentials F     no master user: lines \"ACCOUNT PASSWORD\"\n"
	"  --accounts-from X   a file with one account per line (# comments), or,\n"
	"                      if X is not a file, a shell command printing them\n"
	"                      (e.g. \"doveadm user '*'\")\n"
	"  --sieve-port P      also pull Sieve scripts (ManageSieve, RFC 5804);\n"
	"  --sieve-tls MODE    none|starttls|tls (default: as the IMAP connection)\n"
	"  --parallel N        accounts pulled at once (default 4)\n"
	"  --user NAME         the network process runs as NAME (default nobody)\n"
	"                      when started as root; it never holds a key\n"
	"  --timeout S         network timeout per read (default 60)\n"
	"  --alarm-share PCT   alarm when an account loses more than PCT% of its\n"
	"                      messages or folders (default 20)\n"
	"  --alarm-min N       ... and at least N messages (default 10)\n"
	"  --alarm-uidvalidity N  alarm when N or more accounts changed UIDVALIDITY (default 3)\n"
	"  --alarm-exec CMD    run CMD (sh -c) for each alarm; details in its\n"
	"                      environment (ARCA_ALARM_*) and on its stdin\n"
	"  --commit-every B    commit finished snapshots after B bytes fetched\n"
	"                      (default 256 MiB): what a killed pull keeps\n"
	"  --json              one JSON object per account on stdout\n"
	"Exit: 0 all accounts pulled, 3 some failed, 5 an alarm was raised, 1 error.";

#define EXIT_ALARM 5

struct ctx {
	bool json;
	struct creds creds;
	struct alarm_policy policy;
	const char *alarm_exec;
	pthread_mutex_t out_lock;
	int alarms;
	uint64_t accounts_ok, unchanged, failed;
};

static const char *cred_password(void *vctx, const char *account)
{
	struct ctx *c = vctx;
	return creds_password(&c->creds, account);
}

static void on_warn(void *vctx, const char *account, const char *what)
{
	struct ctx *c = vctx;
	pthread_mutex_lock(&c->out_lock);
	fprintf(stderr, "%s: warning: %s: %s\n", cli_prog, account, what);
	pthread_mutex_unlock(&c->out_lock);
}

static void on_done(void *vctx, const struct pull_account_result *res)
{
	struct ctx *c = vctx;
	pthread_mutex_lock(&c->out_lock);
	if (res->rc) {
		c->failed++;
		fprintf(stderr, "%s: %s\n", cli_prog, res->err.msg);
	} else if (res->unchanged) {
		c->unchanged++;
	} else {
		c->accounts_ok++;
	}
	if (c->json) {
		char hex[2 * ARCA_ID_LEN + 1] = "";
		if (res->rc == 0 && !res->unchanged)
			sodium_bin2hex(hex, sizeof(hex), res->info.root, ARCA_ID_LEN);
		printf("{\"account\":");
		cli_json_str(stdout, res->account);
		printf(",\"ok\":%s,\"unchanged\":%s,\"snapshot\":\"%s\",\"folders\":%llu,"
		       "\"folders_examined\":%llu,\"messages\":%llu,\"messages_fetched\":%llu,"
		       "\"bytes_fetched\":%llu,\"sieve_scripts\":%llu,\"ms\":%llu",
		       res->rc ? "false" : "true", res->unchanged ? "true" : "false", hex,
		       (unsigned long long)res->folders, (unsigned long long)res->folders_examined,
		       (unsigned long long)res->messages, (unsigned long long)res->messages_fetched,
		       (unsigned long long)res->bytes_fetched, (unsigned long long)res->sieve_scripts,
		       (unsigned long long)res->seconds_ms);
		if (res->rc) {
			printf(",\"error\":");
			cli_json_str(stdout, res->err.msg);
		}
		printf("}\n");
		fflush(stdout);
	} else if (res->rc == 0) {
		if (res->unchanged)
			printf("%s: unchanged (%llu folders, %llu messages)\n", res->account,
			       (unsigned long long)res->folders, (unsigned long long)res->messages);
		else
			printf("%s: %llu folders (%llu read), %llu messages, %llu fetched (%.1f MiB)%s%s\n",
			       res->account, (unsigned long long)res->folders,
			       (unsigned long long)res->folders_examined, (unsigned long long)res->messages,
			       (unsigned long long)res->messages_fetched, (double)res->bytes_fetched / 1048576.0,
			       res->sieve_scripts ? ", Sieve scripts: " : "",
			       res->sieve_scripts ? (res->sieve_scripts == 1 ? "1" : "several") : "");
		fflush(stdout);
	}
	pthread_mutex_unlock(&c->out_lock);
}

static void on_alarm(void *vctx, const struct alarm *a, const char *hook_warning)
{
	struct ctx *c = vctx;
	pthread_mutex_lock(&c->out_lock);
	c->alarms++;
	fprintf(stderr, "%s: ALARM %s%s%s: %s (log entry %llu; arca status)\n", cli_prog,
		alarm_kind_name(a->kind), a->account[0] ? " " : "", a->account, a->text,
		(unsigned long long)a->seq);
	if (hook_warning)
		fprintf(stderr, "%s: warning: %s\n", cli_prog, hook_warning);
	pthread_mutex_unlock(&c->out_lock);
}

/* Before a batch of snapshots is committed: log any alarm they raise, so
 * the alarm (and the suspect marks) are in the log before them. */
static int on_stage(void *vctx, struct repo *r, struct pull_account_result **staged, size_t n,
		    struct arca_err *err)
{
	struct ctx *c = vctx;
	struct alarm_pull_view *v = calloc(n ? n : 1, sizeof(*v));
	if (v == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct pull_account_result *p = staged[i];
		v[i] = (struct alarm_pull_view){
			.account = p->account, .root = p->info.root, .had_previous = p->had_previous,
			.gone = p->gone, .prev_messages = p->prev_messages, .prev_folders = p->prev_folders,
			.lost_messages = p->lost_messages, .lost_folders = p->lost_folders,
			.uidvalidity_changed = p->uidvalidity_changed,
		};
	}
	struct alarm_report rep = { .exec = c->alarm_exec, .raised = on_alarm, .ctx = c };
	int rc = alarm_check_pull(r, &c->policy, v, n, &rep, err);
	free(v);
	return rc;
}

int cmd_pull(int argc, char **argv)
{
	int sub = cli_subcommand(&argc, &argv, "imap", USAGE);
	if (sub >= 0)
		return sub;
	const char *repo_path = NULL, *host = NULL, *master = NULL, *pwfile = NULL,
		   *credfile = NULL, *from = NULL, *ca_file = NULL, *sieve_tls = NULL;
	long port = 0, sieve_port = 0, parallel = 4, timeout = 60;
	unsigned long long commit_every = 0;
	const char *run_as = NULL;
	int tls = NETCONN_PLAIN;
	bool insecure = false;
	char sep = '*';
	struct strv accounts = { 0 };
	struct ctx ctx = { 0 };
	alarm_policy_default(&ctx.policy);
	enum { O_REPO = 256, O_HOST, O_PORT, O_TLS, O_STARTTLS, O_CA, O_INSECURE, O_MASTER,
	       O_SEP, O_PWFILE, O_CREDS, O_ACCOUNT, O_FROM, O_SIEVE, O_SIEVE_TLS, O_PAR,
	       O_TIMEOUT, O_JSON, O_SHARE, O_MIN, O_UIDV, O_EXEC, O_COMMIT, O_USER, O_HELP };
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, O_REPO },
		{ "host", required_argument, NULL, O_HOST },
		{ "port", required_argument, NULL, O_PORT },
		{ "tls", no_argument, NULL, O_TLS },
		{ "starttls", no_argument, NULL, O_STARTTLS },
		{ "ca-file", required_argument, NULL, O_CA },
		{ "insecure", no_argument, NULL, O_INSECURE },
		{ "master-user", required_argument, NULL, O_MASTER },
		{ "separator", required_argument, NULL, O_SEP },
		{ "password-file", required_argument, NULL, O_PWFILE },
		{ "credentials", required_argument, NULL, O_CREDS },
		{ "account", required_argument, NULL, O_ACCOUNT },
		{ "accounts-from", required_argument, NULL, O_FROM },
		{ "sieve-port", required_argument, NULL, O_SIEVE },
		{ "sieve-tls", required_argument, NULL, O_SIEVE_TLS },
		{ "parallel", required_argument, NULL, O_PAR },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "json", no_argument, NULL, O_JSON },
		{ "alarm-share", required_argument, NULL, O_SHARE },
		{ "alarm-min", required_argument, NULL, O_MIN },
		{ "alarm-uidvalidity", required_argument, NULL, O_UIDV },
		{ "alarm-exec", required_argument, NULL, O_EXEC },
		{ "commit-every", required_argument, NULL, O_COMMIT },
		{ "user", required_argument, NULL, O_USER },
		{ "help", no_argument, NULL, O_HELP },
		{ 0 },
	};
	int c;
	char *end;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_REPO: repo_path = optarg; break;
		case O_HOST: host = optarg; break;
		case O_PORT:
		case O_SIEVE: {
			long v = strtol(optarg, &end, 10);
			if (*end || v <= 0 || v > 65535) {
				strv_free(&accounts);
				return cli_usage(USAGE);
			}
			*(c == O_PORT ? &port : &sieve_port) = v;
			break;
		}
		case O_TLS: tls = NETCONN_TLS; break;
		case O_STARTTLS: tls = NETCONN_STARTTLS; break;
		case O_CA: ca_file = optarg; break;
		case O_INSECURE: insecure = true; break;
		case O_MASTER: master = optarg; break;
		case O_SEP:
			if (strlen(optarg) != 1) {
				strv_free(&accounts);
				return cli_usage(USAGE);
			}
			sep = optarg[0];
			break;
		case O_PWFILE: pwfile = optarg; break;
		case O_CREDS: credfile = optarg; break;
		case O_ACCOUNT:
			/* one pull per account, however often it is named */
			if (accounts_from_text(&accounts, optarg, strlen(optarg)) != 0)
				return cli_failf("out of memory");
			break;
		case O_FROM: from = optarg; break;
		case O_SIEVE_TLS: sieve_tls = optarg; break;
		case O_PAR:
			parallel = strtol(optarg, &end, 10);
			if (*end || parallel < 1 || parallel > 256) {
				strv_free(&accounts);
				return cli_usage(USAGE);
			}
			break;
		case O_TIMEOUT:
			timeout = strtol(optarg, &end, 10);
			if (*end || timeout < 1 || timeout > 3600) {
				strv_free(&accounts);
				return cli_usage(USAGE);
			}
			break;
		case O_JSON: ctx.json = true; break;
		case O_SHARE:
			ctx.policy.share_pct = (unsigned)strtoul(optarg, &end, 10);
			if (*end || ctx.policy.share_pct > 100) {
				strv_free(&accounts);
				return cli_usage(USAGE);
			}
			break;
		case O_MIN:
			ctx.policy.min_messages = strtoull(optarg, &end, 10);
			if (*end) {
				strv_free(&accounts);
				return cli_usage(USAGE);
			}
			break;
		case O_UIDV:
			ctx.policy.uidvalidity_accounts = strtoull(optarg, &end, 10);
			if (*end || ctx.policy.uidvalidity_accounts == 0) {
				strv_free(&accounts);
				return cli_usage(USAGE);
			}
			break;
		case O_EXEC: ctx.alarm_exec = optarg; break;
		case O_USER: run_as = optarg; break;
		case O_COMMIT:
			commit_every = strtoull(optarg, &end, 10);
			if (*end || commit_every == 0) {
				strv_free(&accounts);
				return cli_usage(USAGE);
			}
			break;
		case O_HELP:
			strv_free(&accounts);
			puts(USAGE);
			return 0;
		default:
			strv_free(&accounts);
			return cli_usage(USAGE);
		}
	}
	if (optind != argc || repo_path == NULL || host == NULL || port <= 0 || port > 65535 ||
	    (master == NULL) == (credfile == NULL) || (master && pwfile == NULL) ||
	    (accounts.n == 0) == (from == NULL)) {
		strv_free(&accounts);
		return cli_usage(USAGE);
	}
	int rc = 0;
	char *password = NULL;
	if (master) {
		password = read_first_line(pwfile);
		if (password == NULL)
			rc = cli_failf("%s: cannot read the password file", pwfile);
	} else {
		rc = load_credentials(credfile, &ctx.creds);
	}
	if (rc == 0 && from)
		rc = load_accounts(from, &accounts);
	if (rc == 0 && accounts.n == 0)
		rc = cli_failf("no accounts to pull");
	if (rc == 0)
		rc = imap_opts_plain_ok(host, tls != NETCONN_PLAIN, insecure);
	if (rc) {
		if (password) {
			sodium_memzero(password, strlen(password));
			free(password);
		}
		strv_free(&accounts);
		creds_free(&ctx.creds);
		return rc;
	}
	pthread_mutex_init(&ctx.out_lock, NULL);
	struct pull_opts o = {
		.imap = { .host = host, .port = (uint16_t)port, .tls = tls, .ca_file = ca_file,
			  .insecure = insecure, .timeout_ms = (int)timeout * 1000 },
		.master_user = master, .separator = sep, .password = password,
		.account_password = master ? NULL : cred_password,
		.parallel = (unsigned)parallel, .commit_every = commit_every, .run_as = run_as,
		.warn = on_warn, .done = on_done, .alarm_exec = ctx.alarm_exec,
		.alarm_raised = on_alarm, .ctx = &ctx,
	};
	if (sieve_port) {
		o.sieve = o.imap;
		o.sieve.port = (uint16_t)sieve_port;
		/* ManageSieve has no implicit-TLS port by standard: STARTTLS
		 * whenever IMAP uses TLS, unless told otherwise */
		o.sieve.tls = tls == NETCONN_PLAIN ? NETCONN_PLAIN : NETCONN_STARTTLS;
		if (sieve_tls && strcmp(sieve_tls, "none") == 0)
			o.sieve.tls = NETCONN_PLAIN;
		else if (sieve_tls && strcmp(sieve_tls, "starttls") == 0)
			o.sieve.tls = NETCONN_STARTTLS;
		else if (sieve_tls && strcmp(sieve_tls, "tls") == 0)
			o.sieve.tls = NETCONN_TLS;
		else if (sieve_tls)
			rc = cli_usage(USAGE);
	}
	struct arca_err err = { 0 };
	size_t failed = 0;
	uint64_t t0 = arca_mono_ns();
	/* The network side is forked before the repository (and its key) is
	 * opened: it never holds them, and runs as run_as when we are root. */
	struct pull_child *child = NULL;
	struct repo *r = NULL;
	if (rc == 0 && pull_spawn(&o, accounts.v, accounts.n, &child, &err) != 0)
		rc = cli_fail(&err);
	if (password) {
		/* only the network process needs it */
		sodium_memzero(password, strlen(password));
	}
	if (rc == 0 && cli_open_repo(repo_path, REPO_OPEN_WRITE, NULL, &r) != 0) {
		rc = 1;
		pull_abandon(child);
	}
	if (rc == 0 && pull_serve(r, &o, child, on_stage, &failed, &err) != 0)
		rc = cli_fail(&err);
	uint64_t ms = (arca_mono_ns() - t0) / 1000000;
	if (!ctx.json)
		fprintf(stderr, "%s: %zu accounts in %.1f s: %llu new snapshots, %llu unchanged, %zu failed%s\n",
			cli_prog, accounts.n, (double)ms / 1000.0, (unsigned long long)ctx.accounts_ok,
			(unsigned long long)ctx.unchanged, failed,
			ctx.alarms ? ", ALARM raised (arca status)" : "");
	if (r)
		repo_close(r);
	free(password);
	strv_free(&accounts);
	creds_free(&ctx.creds);
	pthread_mutex_destroy(&ctx.out_lock);
	if (rc)
		return rc;
	if (ctx.alarms)
		return EXIT_ALARM;
	return failed ? EXIT_WARNINGS : 0;
}
