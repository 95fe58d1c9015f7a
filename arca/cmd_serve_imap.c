/* arca serve-imap --repo REPO --restore-key KEYFILE --listen ADDR:PORT
 *      [--snapshot ID ...|--at T] --users PASSWD-FILE [...]
 *
 * Serves every account of the vault read-only over IMAP, each from one
 * snapshot, with its original UIDVALIDITYs, UIDs, MODSEQs, flags and
 * bytes (docs/serve-imap.md).  This process is the keeper (restore key,
 * repository, passwd-file); the network side runs in processes forked
 * before any of those is read (lib/imapd/serve_net.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "passwd.h"
#include "serve_keeper.h"
#include "serve_net.h"
#include "banned.h"

static const char USAGE[] =
	"arca serve-imap --repo REPO --restore-key KEYFILE --users PASSWD-FILE\n"
	"                --listen ADDR:PORT [--listen-tls ADDR:PORT]\n"
	"                [--snapshot ID ...] [--at TIME] [--tls-cert PEM --tls-key PEM]\n"
	"                [--user NAME] [--max-sessions N] [--cache-mb N] [--log FILE]\n"
	"                [--login-fails N] [--login-lock SECONDS] [--separator . | /]\n"
	"                [--max-per-address N]\n"
	"                [--overlay FILE [--overlay-max-mb N] [--overlay-account-mb N]]\n"
	"                [--tls-handshake-timeout SECONDS] [--write-timeout SECONDS]\n\n"
	"Serves every account of the vault read-only over IMAP (IMAP4rev1 with\n"
	"CONDSTORE/QRESYNC, UIDPLUS, LIST-EXTENDED, SPECIAL-USE, IDLE, ...), each\n"
	"from one snapshot with its original UIDVALIDITYs, UIDs, MODSEQs, flags,\n"
	"keywords, dates and bytes, so that mail clients reconnect and keep what\n"
	"they have.  The vault is never changed: writes are refused.  With\n"
	"--overlay FILE, flag changes (STORE, and \\Seen set by reading a message)\n"
	"are kept in FILE instead (made if missing; encrypted and authenticated\n"
	"with the restore key) and served from then on, also after a restart;\n"
	"arca restore ... --overlay FILE carries them to the rebuilt server.\n"
	"FILE grows to at most --overlay-max-mb (default 1024), and by at most\n"
	"--overlay-account-mb (default 64) for one account; past it changes are\n"
	"refused (NO [OVERQUOTA]).\n"
	"Logins are checked against PASSWD-FILE (Dovecot's passwd-file format; the\n"
	"provider's own file can be used: it is read again when it changes).  The\n"
	"IMAP user name is the account's name in the vault.\n"
	"Folders are shown with the hierarchy separator the mail server showed:\n"
	"'.' for a Maildir++ snapshot (Dovecot's default), '/' for LAYOUT=fs;\n"
	"--separator overrides it for every account (a Dovecot configured with\n"
	"\"separator = /\" on Maildir++, or a pull from a server that showed another).\n"
	"Snapshots: by default each account's latest one not marked suspect by a\n"
	"standing alarm; --at TIME the last one at or before TIME; --snapshot ID\n"
	"(repeatable) that snapshot for its account.\n"
	"TLS: with --tls-cert/--tls-key, STARTTLS on --listen and implicit TLS on\n"
	"--listen-tls.  A non-loopback address needs TLS, and root (the network\n"
	"side then runs as --user, default nobody, and never holds the restore\n"
	"key; without root it runs as the same user as the key holder).\n"
	"The passphrase comes from ARCA_PASSPHRASE or the terminal.  Log lines go\n"
	"to stderr or --log FILE.  Stop with SIGTERM or SIGINT.";

static int log_fd = 2;

/* descriptors the keeper needs besides one per session: stdio, the log,
 * the control socket, the repository's files, the users file */
#define FD_RESERVE 32

static void log_line(void *ctx, const char *line)
{
	(void)ctx;
	serve_log_write(log_fd, line);
}

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

struct pick_ctx {
	char **accounts;          /* of each --snapshot, resolved */
	char **ids;
	size_t n;
	const char *at;
};

static int pick(void *ctx, struct repo *r, const char *account, uint8_t root_r[ARCA_ID_LEN],
		uint64_t *time_ns_r, struct arca_err *err)
{
	struct pick_ctx *p = ctx;
	const char *id = NULL;
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->accounts[i], account) == 0)
			id = p->ids[i];
	struct snap_info si;
	/* cli_pick_snapshot passes over suspect snapshots and says so */
	if (cli_pick_snapshot(r, account, id, id ? NULL : p->at, &si) != 0)
		return arca_err_set(err, ARCA_ENOENT, "no snapshot to serve");
	static const uint8_t zero[ARCA_ID_LEN];
	int rc = 0;
	if (memcmp(si.root, zero, ARCA_ID_LEN) == 0)
		rc = arca_err_set(err, ARCA_ENOENT, "no snapshot to serve");
	memcpy(root_r, si.root, ARCA_ID_LEN);
	*time_ns_r = si.time_ns;
	snap_info_release(&si);
	return rc;
}

/* Each --snapshot ID names its account (an id prefix must be unique). */
static int resolve_snapshots(struct repo *r, char **ids, size_t n, struct pick_ctx *p)
{
	if (n == 0)
		return 0;
	struct arca_err err = { 0 };
	struct snap_info *list;
	size_t count;
	if (repo_snapshots(r, &list, &count, &err) != 0)
		return cli_fail(&err);
	p->accounts = calloc(n, sizeof(char *));
	p->ids = ids;
	int rc = p->accounts ? 0 : cli_failf("out of memory");
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct snap_info *hit = NULL;
		bool ambiguous = false;
		for (size_t k = 0; k < count; k++) {
			char hex[2 * ARCA_ID_LEN + 1];
			hex_encode(hex, list[k].root, ARCA_ID_LEN);
			if (strncmp(hex, ids[i], strlen(ids[i])) != 0)
				continue;
			if (hit && memcmp(hit->root, list[k].root, ARCA_ID_LEN) != 0)
				ambiguous = true;
			hit = &list[k];
		}
		if (hit == NULL)
			rc = cli_failf("--snapshot %s: no such snapshot (arca snapshots lists them)", ids[i]);
		else if (ambiguous)
			rc = cli_failf("--snapshot %s: ambiguous; give more digits", ids[i]);
		else if ((p->accounts[i] = strdup(hit->account)) == NULL)
			rc = cli_failf("out of memory");
		for (size_t k = 0; rc == 0 && k < i; k++)
			if (strcmp(p->accounts[k], p->accounts[i]) == 0)
				rc = cli_failf("--snapshot %s and %s are of the same account %s", ids[k], ids[i],
					       p->accounts[i]);
		p->n = i + 1;
	}
	snap_infos_free(list, count);
	return rc;
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *v)
{
	char *end;
	errno = 0;
	unsigned long x = strtoul(s, &end, 10);
	if (s[0] == '\0' || s[0] == '-' || *end != '\0' || errno != 0 || x == 0 || x > max)
		return false;
	*v = x;
	return true;
}

int cmd_serve_imap(int argc, char **argv)
{
	cli_prog = "arca serve-imap";
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "restore-key", required_argument, NULL, 'k' },
		{ "listen", required_argument, NULL, 'l' },
		{ "listen-tls", required_argument, NULL, 'L' },
		{ "snapshot", required_argument, NULL, 's' },
		{ "at", required_argument, NULL, 'a' },
		{ "users", required_argument, NULL, 'u' },
		{ "tls-cert", required_argument, NULL, 'c' },
		{ "tls-key", required_argument, NULL, 'K' },
		{ "user", required_argument, NULL, 'U' },
		{ "max-sessions", required_argument, NULL, 'm' },
		{ "cache-mb", required_argument, NULL, 'C' },
		{ "log", required_argument, NULL, 'g' },
		{ "login-fails", required_argument, NULL, 'f' },
		{ "login-lock", required_argument, NULL, 'o' },
		{ "separator", required_argument, NULL, 'S' },
		{ "max-per-address", required_argument, NULL, 'A' },
		{ "tls-handshake-timeout", required_argument, NULL, 'H' },
		{ "write-timeout", required_argument, NULL, 'W' },
		{ "overlay", required_argument, NULL, 'O' },
		{ "overlay-max-mb", required_argument, NULL, 'M' },
		{ "overlay-account-mb", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *repo = NULL, *keyfile = NULL, *users = NULL, *at = NULL, *cert = NULL, *key = NULL;
	const char *run_as = NULL, *logfile = NULL, *overlay_path = NULL;
	char *listen_plain[8], *listen_tls[8];
	size_t nplain = 0, ntls = 0;
	char *ids[64];
	size_t nids = 0;
	unsigned long max_sessions = 1000, cache_mb = 256, fails = 5, lock_s = 60, overlay_mb = 1024,
		      overlay_acct_mb = 64;
	char separator = '\0';
	unsigned long per_addr = SERVE_MAX_PER_ADDRESS, hs_s = SERVE_HANDSHAKE_TIMEOUT_MS / 1000,
		      wr_s = SERVE_WRITE_TIMEOUT_MS / 1000;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': repo = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'l':
			if (nplain == 8)
				return cli_usage(USAGE);
			listen_plain[nplain++] = optarg;
			break;
		case 'L':
			if (ntls == 8)
				return cli_usage(USAGE);
			listen_tls[ntls++] = optarg;
			break;
		case 's':
			if (nids == 64)
				return cli_failf("at most 64 --snapshot");
			ids[nids++] = optarg;
			break;
		case 'a': at = optarg; break;
		case 'u': users = optarg; break;
		case 'c': cert = optarg; break;
		case 'K': key = optarg; break;
		case 'U': run_as = optarg; break;
		case 'g': logfile = optarg; break;
		case 'm':
			if (!parse_uint(optarg, 100000, &max_sessions))
				return cli_failf("--max-sessions %s: not a number from 1 to 100000", optarg);
			break;
		case 'C':
			if (!parse_uint(optarg, 1u << 20, &cache_mb))
				return cli_failf("--cache-mb %s: not a number of MiB", optarg);
			break;
		case 'f':
			if (!parse_uint(optarg, 1000, &fails))
				return cli_failf("--login-fails %s: not a number from 1 to 1000", optarg);
			break;
		case 'o':
			if (!parse_uint(optarg, 86400, &lock_s))
				return cli_failf("--login-lock %s: not a number of seconds (1 to 86400)", optarg);
			break;
		case 'S':
			/* the two Dovecot shows for its layouts: another would
			 * need its own quoting and wildcard rules */
			if (strcmp(optarg, ".") != 0 && strcmp(optarg, "/") != 0)
				return cli_failf("--separator \"%s\": only '.' or '/' (the separators Dovecot shows)", optarg);
			separator = optarg[0];
			break;
		case 'A':
			if (!parse_uint(optarg, 100000, &per_addr))
				return cli_failf("--max-per-address %s: not a number from 1 to 100000", optarg);
			break;
		case 'H':
			if (!parse_uint(optarg, 3600, &hs_s))
				return cli_failf("--tls-handshake-timeout %s: not a number of seconds (1 to 3600)", optarg);
			break;
		case 'W':
			if (!parse_uint(optarg, 3600, &wr_s))
				return cli_failf("--write-timeout %s: not a number of seconds (1 to 3600)", optarg);
			break;
		case 'O': overlay_path = optarg; break;
		case 'M':
			if (!parse_uint(optarg, 1u << 24, &overlay_mb))
				return cli_failf("--overlay-max-mb %s: not a number of MiB", optarg);
			break;
		case 'P':
			if (!parse_uint(optarg, 1u << 24, &overlay_acct_mb))
				return cli_failf("--overlay-account-mb %s: not a number of MiB", optarg);
			break;
		case 'h':
			puts(USAGE);
			return 0;
		default:
			return cli_usage(USAGE);
		}
	}
	if (optind != argc || repo == NULL || keyfile == NULL || users == NULL || nplain + ntls == 0)
		return cli_usage(USAGE);
	if ((cert == NULL) != (key == NULL))
		return cli_failf("--tls-cert and --tls-key go together");
	if (ntls > 0 && cert == NULL)
		return cli_failf("--listen-tls needs --tls-cert and --tls-key");
	if (at != NULL) {
		uint64_t ns;
		if (cli_parse_time(at, &ns) != 0)
			return cli_failf("--at %s: not a time (use RFC 3339, e.g. 2026-11-28T06:00:00Z)", at);
	}
	/* what can be checked without secrets, before anything starts */
	char cfg[4096];
	snprintf(cfg, sizeof(cfg), "%s/config", repo);
	if (access(cfg, R_OK) != 0)
		return cli_failf("%s: not a repository (no readable config)", repo);
	if (access(keyfile, R_OK) != 0)
		return cli_failf("%s: cannot read the restore key file: %s", keyfile, strerror(errno));
	if (access(users, R_OK) != 0)
		return cli_failf("%s: cannot read the users file: %s", users, strerror(errno));
	if (logfile) {
		log_fd = open(logfile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (log_fd < 0)
			return cli_failf("%s: cannot open the log: %s", logfile, strerror(errno));
	}

	int rc = 0;
	struct serve_listener ls[16];
	size_t nls = 0;
	SSL_CTX *tls = NULL;
	pid_t acceptor = -1;
	int ctl = -1;
	struct passwd_db *pw = NULL;
	struct repo *r = NULL;
	struct serve_keeper *k = NULL;
	struct overlay *ov = NULL;
	struct pick_ctx pc = { .at = at };
	struct arca_err err = { 0 };

	if (cert && (tls = serve_net_tls_ctx(cert, key, &err)) == NULL) {
		rc = cli_fail(&err);
		goto out;
	}
	for (size_t i = 0; i < nplain + ntls && rc == 0; i++) {
		bool t = i >= nplain;
		const char *a = t ? listen_tls[i - nplain] : listen_plain[i];
		if (serve_net_listen(a, t, &ls[nls], &err) != 0) {
			rc = cli_fail(&err);
			break;
		}
		nls++;
		/* a password must never cross a network in clear */
		if (!ls[nls - 1].loopback && tls == NULL)
			rc = cli_failf("%s is not a loopback address: serving it needs TLS (--tls-cert, --tls-key)", a);
		/* without root the sessions run as this very user: one taken
		 * over by its client could read the key file, or this
		 * process's memory.  Only local clients may be served so. */
		else if (!ls[nls - 1].loopback && geteuid() != 0)
			rc = cli_failf("%s is not a loopback address: serving it needs arca serve-imap started as root "
				       "(the network side then runs as --user, apart from the restore key)", a);
	}
	if (rc)
		goto out;
	/* no core file and no ptrace by the same uid: this process will
	 * hold the restore key and the users' hashes */
	(void)prctl(PR_SET_DUMPABLE, 0);
	/* every session's channel is a descriptor here: as many as the
	 * system lets us have, and no more sessions than fit */
	{
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rlim_t want = rl.rlim_max;
			if (want == RLIM_INFINITY || want > (rlim_t)1 << 20)
				want = (rlim_t)1 << 20;
			rl.rlim_cur = want;
			while (setrlimit(RLIMIT_NOFILE, &rl) != 0 && rl.rlim_cur > 1024)
				rl.rlim_cur /= 2;
		}
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
		    rl.rlim_cur < (rlim_t)max_sessions + FD_RESERVE) {
			if (rl.rlim_cur < FD_RESERVE + 8) {
				rc = cli_failf("the limit of open files (%llu) is too low to serve (at least %u; ulimit -n)",
					       (unsigned long long)rl.rlim_cur, FD_RESERVE + 8);
				goto out;
			}
			char line[200];
			snprintf(line, sizeof(line), "warning: --max-sessions lowered from %lu to %llu: the limit of open files is %llu",
				 max_sessions, (unsigned long long)(rl.rlim_cur - FD_RESERVE), (unsigned long long)rl.rlim_cur);
			log_line(NULL, line);
			max_sessions = (unsigned long)(rl.rlim_cur - FD_RESERVE);
		}
	}

	signal(SIGPIPE, SIG_IGN);
	static const char *const scrub[] = { "ARCA_PASSPHRASE", NULL };
	struct serve_net_opts no = { .listeners = ls, .nlisteners = nls, .tls = tls, .run_as = run_as,
				     .max_sessions = (unsigned)max_sessions, .log_fd = log_fd,
				     .max_per_address = (unsigned)per_addr,
				     .handshake_timeout_ms = (int)hs_s * 1000, .write_timeout_ms = (int)wr_s * 1000,
				     .scrub_env = scrub };
	/* the network side first: no key, passwd hash or repository handle
	 * is ever in its memory */
	if (serve_net_spawn(&no, &acceptor, &ctl, &err) != 0) {
		rc = cli_fail(&err);
		goto out;
	}
	SSL_CTX_free(tls);   /* the keeper never speaks TLS */
	tls = NULL;
	for (size_t i = 0; i < nls; i++) {
		char line[200];
		snprintf(line, sizeof(line), "listening on %s (%s)", ls[i].name,
			 ls[i].tls ? "implicit TLS" : no.tls || cert ? "STARTTLS" : "plain, loopback only");
		log_line(NULL, line);
		close(ls[i].fd);
	}
	nls = 0;
	if (geteuid() != 0) {
		char line[400];
		snprintf(line, sizeof(line), "warning: not started as root: the network side runs as uid %u (not dropped to %s), "
			 "so the restore key is NOT kept apart from the sessions (a session taken over by its client could "
			 "read the key file); only loopback listeners are allowed",
			 (unsigned)geteuid(), run_as ? run_as : "nobody");
		log_line(NULL, line);
	}

	if (passwd_open(users, &pw, &err) != 0) {
		rc = cli_fail(&err);
		goto out;
	}
	struct passwd_stats st;
	passwd_get_stats(pw, &st);
	{
		char line[600];
		snprintf(line, sizeof(line), "%s: %zu users", users, st.users);
		log_line(NULL, line);
		if (st.plain) {
			snprintf(line, sizeof(line), "warning: %s: %zu users have a PLAIN/CLEARTEXT password", users, st.plain);
			log_line(NULL, line);
		}
		if (st.unsupported) {
			snprintf(line, sizeof(line), "warning: %s: %zu users can't log in: password scheme %s not supported (or empty)",
				 users, st.unsupported, st.unsupported_scheme);
			log_line(NULL, line);
		}
		if (st.malformed) {
			snprintf(line, sizeof(line), "warning: %s: %zu lines skipped (not user:password...)", users, st.malformed);
			log_line(NULL, line);
		}
	}
	rc = cli_open_repo(repo, REPO_OPEN_READ, keyfile, &r);
	/* the passphrase is read: out of this process's environment (which
	 * /proc/PID/environ shows), bytes wiped in place */
	for (const char *const *n = scrub; *n; n++) {
		char *v = getenv(*n);
		if (v)
			explicit_bzero(v, strlen(v));
		unsetenv(*n);
	}
	if (rc)
		goto out;
	rc = resolve_snapshots(r, ids, nids, &pc);
	if (rc)
		goto out;
	if (overlay_path != NULL) {
		if ((rc = cli_open_overlay(overlay_path, r, true, &ov)) != 0)
			goto out;
		overlay_set_max_bytes(ov, (uint64_t)overlay_mb << 20);
		overlay_set_account_max_bytes(ov, (uint64_t)overlay_acct_mb << 20);
		uint64_t nrec, nf, nm;
		overlay_counts(ov, &nrec, &nf, &nm);
		char line[4300];
		snprintf(line, sizeof(line), "%s: flag changes are kept here (%llu changes of %llu messages in %llu folders so far)",
			 overlay_path, (unsigned long long)nrec, (unsigned long long)nm, (unsigned long long)nf);
		log_line(NULL, line);
	}
	struct serve_keeper_opts ko = {
		.repo = r, .users = pw, .pick = pick, .pick_ctx = &pc, .log = log_line,
		.cache_bytes = (size_t)cache_mb << 20, .max_channels = (unsigned)max_sessions,
		.separator = separator,
		.throttle = { .fails = (unsigned)fails, .lock_s = (unsigned)lock_s },
		.overlay = ov,
	};
	if (serve_keeper_new(&ko, &k, &err) != 0) {
		rc = cli_fail(&err);
		goto out;
	}
	struct sigaction sa = { .sa_handler = on_stop };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	log_line(NULL, "ready: the vault is open");
	if (serve_keeper_run(k, ctl, &stop_flag, &err) != 0) {
		log_line(NULL, err.msg);
		rc = cli_failf("the network side broke the control protocol (%s): stopped", err.msg);
	} else if (!stop_flag) {
		rc = cli_failf("the network side ended unexpectedly: stopped");
	} else {
		log_line(NULL, "stopping");
	}
out:
	if (acceptor > 0) {
		kill(acceptor, SIGTERM);
		while (waitpid(acceptor, NULL, 0) < 0 && errno == EINTR)
			;
	}
	serve_keeper_free(k);
	overlay_free(ov);
	if (ctl >= 0)
		close(ctl);
	repo_close(r);
	passwd_free(pw);
	SSL_CTX_free(tls);
	for (size_t i = 0; i < nls; i++)
		close(ls[i].fd);
	for (size_t i = 0; i < pc.n; i++)
		free(pc.accounts[i]);
	free(pc.accounts);
	if (logfile && log_fd >= 0)
		close(log_fd);
	return rc;
}
