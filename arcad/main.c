/*
 * arcad - the vault daemon.
 *
 *   arcad --repo REPO --journal-listen ADDR:PORT [--journal-listen unix:PATH]
 *         [--config FILE] [options]
 *
 * Binds the journal listeners, forks the LMTP listener (which drops its
 * privileges and never sees a key), then opens the repository and runs the
 * store.  SIGTERM/SIGINT: stop taking mail, answer what is in flight, seal
 * the journal, exit 0.
 */
#include "arcad.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "banned.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: arcad --repo REPO --journal-listen ADDR:PORT|unix:PATH [options]\n"
		"       arcad --config FILE [options]\n\n"
		"The vault daemon: takes a journal copy of every message the mail server\n"
		"accepts over LMTP and stores it durably before acknowledging it.\n\n"
		"  --config FILE               settings in an ini file, section [arcad], keys as below\n"
		"  --repo REPO                 the repository (created with arca init)\n"
		"  --journal-listen ADDR       127.0.0.1:2424, [::1]:2424 or unix:/run/arcad/lmtp (repeatable)\n"
		"  --journal-domain DOMAIN     journal addresses are LOCAL=DOMAIN@THIS (journal.invalid)\n"
		"  --allow CIDR[,CIDR...]      LMTP clients allowed (default: everyone who can connect)\n"
		"  --user USER                 the listener runs as USER (default nobody when root)\n"
		"  --hostname NAME             name in the greeting\n"
		"  --max-message-size BYTES    64M          --max-recipients N      1000\n"
		"  --max-sessions N            200          --max-sessions-per-client N 50\n"
		"  --rate-per-client N         messages per minute per client address (60000)\n"
		"  --quota-account-day BYTES   journaled per account per UTC day (4G; 0 = none)\n"
		"  --quota-total-day BYTES     journaled per UTC day, all accounts (0 = none)\n"
		"  --disk-reserve BYTES        free space kept on the repository's disk (1G): below it,\n"
		"                              arcad answers 452 and stores nothing more\n"
		"  --seal-size BYTES           seal a journal segment this big (16M)\n"
		"  --seal-seconds N            or this old (60)\n"
		"  --idle-timeout N            seconds a silent session is kept (300)\n"
		"  --tls-cert FILE --tls-key FILE   offer STARTTLS (PEM; read before dropping privileges)\n"
		"  --tls-required yes          refuse MAIL before STARTTLS\n"
		"  --foreground                don't detach (for systemd); --syslog also log to syslog\n"
		"  --pidfile FILE\n"
		"Pulls (arca pull imap on a schedule; also an ini section [pull] with the keys\n"
		"without \"pull-\"):\n"
		"  --pull-every DURATION       90s, 15m, 2h (0: no pulls)\n"
		"  --pull-host HOST --pull-port PORT [--pull-tls none|tls|starttls] [--pull-ca-file PEM]\n"
		"  --pull-master-user USER --pull-password-file FILE [--pull-separator C]\n"
		"  --pull-credentials FILE     instead: \"ACCOUNT PASSWORD\" lines\n"
		"  --pull-accounts-from FILE|CMD   --pull-sieve-port PORT   --pull-parallel N\n"
		"  --pull-user USER            the pull's network process runs as USER (nobody)\n"
		"  --pull-timeout DURATION     --arca PATH (the arca program)\n"
		"Alarms:\n"
		"  --alarm-exec CMD            run for every alarm (sh -c; ARCA_ALARM_* in the environment)\n"
		"  --alarm-share PCT --alarm-min N --alarm-uidvalidity N   (see arca pull imap --help)\n"
		"  --journal-silence DURATION  alarm when no mail was journaled for that long\n");
}

/* Bind one listener; returns the fd or -1 with a message in err. */
static int bind_one(const char *spec, char *err, size_t errlen)
{
	if (strncmp(spec, "unix:", 5) == 0) {
		const char *path = spec + 5;
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		if (strlen(path) == 0 || strlen(path) >= sizeof(sun.sun_path)) {
			snprintf(err, errlen, "bad unix socket path in %s", spec);
			return -1;
		}
		memcpy(sun.sun_path, path, strlen(path) + 1);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(err, errlen, "socket: %s", strerror(errno));
			return -1;
		}
		struct stat st;
		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(path);   /* left by an earlier run */
		if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 || listen(fd, 128) != 0) {
			snprintf(err, errlen, "listen on %s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		return fd;
	}
	char host[256];
	const char *colon = strrchr(spec, ':');
	if (colon == NULL || colon == spec || colon[1] == '\0' || (size_t)(colon - spec) >= sizeof(host)) {
		snprintf(err, errlen, "journal-listen must be ADDR:PORT or unix:PATH, not \"%s\"", spec);
		return -1;
	}
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *ai;
	int g = getaddrinfo(host, colon + 1, &hints, &ai);
	if (g != 0) {
		snprintf(err, errlen, "%s: %s (give a numeric address and port)", spec, gai_strerror(g));
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	int brc = -1;
	if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0) {
		/* An arcad killed a moment ago may still hold the port while its
		 * listener process is torn down (seen in postfix_journal.sh, about
		 * one restart in 300): a supervisor's restart must not fail for
		 * that.  Another program on the port still fails, after 2 s. */
		for (int tries = 0; (brc = bind(fd, ai->ai_addr, ai->ai_addrlen)) != 0 &&
				    errno == EADDRINUSE && tries < 100; tries++) {
			struct timespec ts = { 0, 20 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	if (fd < 0 || brc != 0 || listen(fd, 128) != 0) {
		snprintf(err, errlen, "listen on %s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static int write_pidfile(const char *path)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "%d\n", (int)getpid());
	return fclose(f);
}

int main(int argc, char **argv)
{
	struct arcad_config c;
	arcad_config_defaults(&c);
	char err[512];
	/* --config first, so flags override the file whatever the order */
	for (int i = 1; i < argc; i++) {
		const char *v = NULL;
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			v = argv[i + 1];
		else if (!strncmp(argv[i], "--config=", 9))
			v = argv[i] + 9;
		if (v && arcad_config_file(&c, v, err, sizeof(err)) != 0) {
			fprintf(stderr, "arcad: %s\n", err);
			arcad_config_release(&c);
			return 2;
		}
	}
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "repo", required_argument, NULL, 0 },
		{ "journal-listen", required_argument, NULL, 0 },
		{ "journal-domain", required_argument, NULL, 0 },
		{ "allow", required_argument, NULL, 0 },
		{ "user", required_argument, NULL, 0 },
		{ "hostname", required_argument, NULL, 0 },
		{ "max-message-size", required_argument, NULL, 0 },
		{ "max-recipients", required_argument, NULL, 0 },
		{ "max-sessions", required_argument, NULL, 0 },
		{ "max-sessions-per-client", required_argument, NULL, 0 },
		{ "rate-per-client", required_argument, NULL, 0 },
		{ "quota-account-day", required_argument, NULL, 0 },
		{ "quota-total-day", required_argument, NULL, 0 },
		{ "disk-reserve", required_argument, NULL, 0 },
		{ "seal-size", required_argument, NULL, 0 },
		{ "seal-seconds", required_argument, NULL, 0 },
		{ "idle-timeout", required_argument, NULL, 0 },
		{ "pidfile", required_argument, NULL, 0 },
		{ "tls-cert", required_argument, NULL, 0 },
		{ "tls-key", required_argument, NULL, 0 },
		{ "tls-required", required_argument, NULL, 0 },
		{ "pull-every", required_argument, NULL, 0 },
		{ "pull-host", required_argument, NULL, 0 },
		{ "pull-port", required_argument, NULL, 0 },
		{ "pull-tls", required_argument, NULL, 0 },
		{ "pull-ca-file", required_argument, NULL, 0 },
		{ "pull-master-user", required_argument, NULL, 0 },
		{ "pull-separator", required_argument, NULL, 0 },
		{ "pull-password-file", required_argument, NULL, 0 },
		{ "pull-credentials", required_argument, NULL, 0 },
		{ "pull-accounts-from", required_argument, NULL, 0 },
		{ "pull-user", required_argument, NULL, 0 },
		{ "pull-sieve-port", required_argument, NULL, 0 },
		{ "pull-parallel", required_argument, NULL, 0 },
		{ "pull-timeout", required_argument, NULL, 0 },
		{ "arca", required_argument, NULL, 0 },
		{ "alarm-exec", required_argument, NULL, 0 },
		{ "alarm-share", required_argument, NULL, 0 },
		{ "alarm-min", required_argument, NULL, 0 },
		{ "alarm-uidvalidity", required_argument, NULL, 0 },
		{ "journal-silence", required_argument, NULL, 0 },
		{ "foreground", no_argument, NULL, 'f' },
		{ "syslog", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int o, idx;
	while ((o = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
		switch (o) {
		case 0:
			if (arcad_config_set(&c, opts[idx].name, optarg, err, sizeof(err)) != 0) {
				fprintf(stderr, "arcad: %s\n", err);
				arcad_config_release(&c);
				return 2;
			}
			break;
		case 'c':
			break;
		case 'f':
			c.foreground = true;
			break;
		case 's':
			c.syslog = true;
			break;
		case 'h':
			usage(stdout);
			arcad_config_release(&c);
			return 0;
		default:
			usage(stderr);
			arcad_config_release(&c);
			return 2;
		}
	}
	if (c.pull_every && (c.pull_host == NULL || c.pull_port == 0 || c.pull_accounts_from == NULL ||
			     (c.pull_master_user == NULL) == (c.pull_credentials == NULL) ||
			     (c.pull_master_user && c.pull_password_file == NULL))) {
		fprintf(stderr, "arcad: pull-every needs pull-host, pull-port, pull-accounts-from and either "
				"pull-master-user with pull-password-file or pull-credentials\n");
		arcad_config_release(&c);
		return 2;
	}
	if (optind != argc || c.repo == NULL || (c.nlisten == 0 && c.pull_every == 0)) {
		fprintf(stderr, "arcad: %s\n", optind != argc ? "unexpected arguments"
				 : c.repo == NULL ? "--repo is required" : "--journal-listen (or pull-every) is required");
		usage(stderr);
		arcad_config_release(&c);
		return 2;
	}
	int fds[ARCAD_LISTEN_MAX];
	for (int i = 0; i < c.nlisten; i++) {
		fds[i] = bind_one(c.listen[i], err, sizeof(err));
		if (fds[i] < 0) {
			fprintf(stderr, "arcad: %s\n", err);
			while (i-- > 0)
				close(fds[i]);
			arcad_config_release(&c);
			return 1;
		}
	}
	if (!c.foreground && daemon(0, 1) != 0) {
		fprintf(stderr, "arcad: daemon: %s\n", strerror(errno));
		return 1;
	}
	if (c.pidfile && write_pidfile(c.pidfile) != 0) {
		fprintf(stderr, "arcad: cannot write %s: %s\n", c.pidfile, strerror(errno));
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
		fprintf(stderr, "arcad: socketpair: %s\n", strerror(errno));
		return 1;
	}
	/* The pull scheduler: it only starts `arca pull imap` and keeps the
	 * books, and holds no key. */
	pid_t puller = -1;
	if (c.pull_every) {
		puller = fork();
		if (puller < 0) {
			fprintf(stderr, "arcad: fork: %s\n", strerror(errno));
			return 1;
		}
		if (puller == 0) {
			close(sp[0]);
			close(sp[1]);
			for (int i = 0; i < c.nlisten; i++)
				close(fds[i]);
			arcad_log_init("puller", c.syslog);
			int st = puller_run(&c, &stop_flag);
			arcad_config_release(&c);
			_exit(st);
		}
	}
	if (c.nlisten == 0) {
		/* pulls only: no listener, no store */
		close(sp[0]);
		close(sp[1]);
		arcad_log_init("arcad", c.syslog);
		int ws = 0;
		while (waitpid(puller, &ws, 0) < 0 && errno == EINTR)
			;
		if (c.pidfile)
			unlink(c.pidfile);
		arcad_config_release(&c);
		return WIFEXITED(ws) ? WEXITSTATUS(ws) : 1;
	}
	/* The listener is forked before any key is read. */
	pid_t child = fork();
	if (child < 0) {
		fprintf(stderr, "arcad: fork: %s\n", strerror(errno));
		return 1;
	}
	if (child == 0) {
		close(sp[0]);
		arcad_log_init("listener", c.syslog);
		int st = listener_run(&c, fds, c.nlisten, sp[1], &stop_flag);
		arcad_config_release(&c);
		_exit(st);
	}
	close(sp[1]);
	for (int i = 0; i < c.nlisten; i++)
		close(fds[i]);
	arcad_log_init("store", c.syslog);
	int status = store_run(&c, sp[0], &stop_flag);
	/* the store is done (stop, or the channel closed): stop the others */
	kill(child, SIGTERM);
	if (puller > 0)
		kill(puller, SIGTERM);
	close(sp[0]);
	int ws;
	while (waitpid(child, &ws, 0) < 0 && errno == EINTR)
		;
	if (puller > 0)
		while (waitpid(puller, NULL, 0) < 0 && errno == EINTR)
			;
	if (WIFSIGNALED(ws) && WTERMSIG(ws) != SIGTERM) {
		arcad_log(LOG_ERR, "listener died of signal %d", WTERMSIG(ws));
		status = status ? status : 1;
	}
	if (c.pidfile)
		unlink(c.pidfile);
	arcad_log(LOG_NOTICE, "stopped");
	arcad_config_release(&c);
	return status;
}
