/*
 * puller.c - arcad's pull scheduler process.
 *
 * Every pull-every seconds (with jitter, so that many vaults or restarts
 * don't hit the mail server in step) it runs one `arca pull imap` with the
 * configured settings, reads its JSON lines to follow progress, and writes
 * REPO/state/pull.json, which `arca status` shows.  A run that fails as a
 * whole (server unreachable, repository error) is retried sooner, backing
 * off 1, 2, 4 ... minutes up to the normal interval.
 *
 * Why a separate program run: `arca pull imap` already splits itself into
 * an unprivileged network process and a store process; this scheduler only
 * needs to start it, watch it and keep the books.  It holds no key.
 */
#include "arcad.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define ARGV_MAX 64

struct pull_state {
	bool running;
	uint64_t started, finished, next;       /* wall clock, seconds */
	unsigned total, done, failed, snapshots, unchanged;
	unsigned runs, failures_in_a_row;
	int last_exit;                          /* -1: none yet */
	char last_result[32];
	uint64_t last_seconds;
	char last_error[256];
};

static uint64_t now_s(void)
{
	return (uint64_t)time(NULL);
}

static void fmt_time(uint64_t t, char *out, size_t len)
{
	if (t == 0) {
		snprintf(out, len, "%s", "");
		return;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* REPO/state/pull.json, written whole and renamed into place. */
static void write_state(const struct arcad_config *c, const struct pull_state *st)
{
	char dir[PATH_MAX], tmp[PATH_MAX + 32], path[PATH_MAX + 32];
	if ((size_t)snprintf(dir, sizeof(dir), "%s/state", c->repo) >= sizeof(dir))
		return;
	snprintf(tmp, sizeof(tmp), "%s/.pull.json.tmp", dir);
	snprintf(path, sizeof(path), "%s/pull.json", dir);
	(void)mkdir(dir, 0700);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (f == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	char ts[40], tf[40], tn[40];
	fmt_time(st->started, ts, sizeof(ts));
	fmt_time(st->finished, tf, sizeof(tf));
	fmt_time(st->next, tn, sizeof(tn));
	fprintf(f, "{\"running\":%s,\"started\":\"%s\",\"finished\":\"%s\",\"next\":\"%s\","
		   "\"every_seconds\":%u,\"accounts\":%u,\"done\":%u,\"failed\":%u,"
		   "\"new_snapshots\":%u,\"unchanged\":%u,\"runs\":%u,\"failures_in_a_row\":%u,"
		   "\"last_exit\":%d,\"last_result\":\"%s\",\"last_seconds\":%llu,\"last_error\":",
		st->running ? "true" : "false", ts, tf, tn, c->pull_every, st->total, st->done,
		st->failed, st->snapshots, st->unchanged, st->runs, st->failures_in_a_row,
		st->last_exit, st->last_result, (unsigned long long)st->last_seconds);
	json_str(f, st->last_error);
	fprintf(f, "}\n");
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		fclose(f);
		unlink(tmp);
		return;
	}
	fclose(f);
	(void)rename(tmp, path);
}

/* The arca program: configured, beside arcad, in the build tree, or PATH. */
static void find_arca(const struct arcad_config *c, char *out, size_t len)
{
	if (c->arca) {
		snprintf(out, len, "%s", c->arca);
		return;
	}
	char self[PATH_MAX - 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(out, len, "%s/arca", self);
			if (access(out, X_OK) == 0)
				return;
			snprintf(out, len, "%s/../arca/arca", self);
			if (access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, len, "arca");
}

static int build_argv(const struct arcad_config *c, const char *arca, char **argv, char bufs[][32])
{
	int n = 0, b = 0;
#define ARG(s) do { if (n >= ARGV_MAX - 1) return -1; argv[n++] = (char *)(s); } while (0)
#define NUM(v) do { snprintf(bufs[b], 32, "%u", (unsigned)(v)); ARG(bufs[b]); b++; } while (0)
	ARG(arca);
	ARG("pull");
	ARG("imap");
	ARG("--repo");
	ARG(c->repo);
	ARG("--host");
	ARG(c->pull_host);
	ARG("--port");
	NUM(c->pull_port);
	if (c->pull_tls && strcmp(c->pull_tls, "tls") == 0)
		ARG("--tls");
	else if (c->pull_tls && strcmp(c->pull_tls, "starttls") == 0)
		ARG("--starttls");
	if (c->pull_ca_file) {
		ARG("--ca-file");
		ARG(c->pull_ca_file);
	}
	if (c->pull_master_user) {
		ARG("--master-user");
		ARG(c->pull_master_user);
		ARG("--password-file");
		ARG(c->pull_password_file);
	} else {
		ARG("--credentials");
		ARG(c->pull_credentials);
	}
	if (c->pull_separator) {
		ARG("--separator");
		ARG(c->pull_separator);
	}
	ARG("--accounts-from");
	ARG(c->pull_accounts_from);
	if (c->pull_sieve_port) {
		ARG("--sieve-port");
		NUM(c->pull_sieve_port);
	}
	if (c->pull_parallel) {
		ARG("--parallel");
		NUM(c->pull_parallel);
	}
	if (c->pull_timeout) {
		ARG("--timeout");
		NUM(c->pull_timeout);
	}
	if (c->pull_user) {
		ARG("--user");
		ARG(c->pull_user);
	}
	if (c->alarm_exec) {
		ARG("--alarm-exec");
		ARG(c->alarm_exec);
	}
	if (c->alarm_share) {
		ARG("--alarm-share");
		NUM(c->alarm_share);
	}
	if (c->alarm_min) {
		ARG("--alarm-min");
		NUM(c->alarm_min);
	}
	if (c->alarm_uidvalidity) {
		ARG("--alarm-uidvalidity");
		NUM(c->alarm_uidvalidity);
	}
	ARG("--json");
	argv[n] = NULL;
	return n;
#undef ARG
#undef NUM
}

static unsigned count_accounts(const struct arcad_config *c)
{
	FILE *f = fopen(c->pull_accounts_from, "r");
	if (f == NULL)
		return 0;   /* a command: known when the run ends */
	unsigned n = 0;
	char line[1100];
	while (fgets(line, sizeof(line), f)) {
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p && *p != '#' && *p != '\n' && *p != '\r')
			n++;
	}
	fclose(f);
	return n;
}

/* One JSON line of `arca pull imap --json`: enough to count. */
static void take_line(struct pull_state *st, const char *line)
{
	if (strstr(line, "\"account\":") == NULL)
		return;
	st->done++;
	if (strstr(line, "\"ok\":false"))
		st->failed++;
	else if (strstr(line, "\"unchanged\":true"))
		st->unchanged++;
	else
		st->snapshots++;
}

/* Run one pull to the end (or until stop); returns its exit status. */
static int run_once(const struct arcad_config *c, struct pull_state *st, volatile sig_atomic_t *stop)
{
	char arca[PATH_MAX], bufs[16][32];
	char *argv[ARGV_MAX];
	find_arca(c, arca, sizeof(arca));
	if (build_argv(c, arca, argv, bufs) < 0)
		return 1;
	int out[2];
	if (pipe2(out, O_CLOEXEC) != 0)
		return 1;
	pid_t pid = fork();
	if (pid < 0) {
		close(out[0]);
		close(out[1]);
		return 1;
	}
	if (pid == 0) {
		dup2(out[1], 1);
		execvp(argv[0], argv);
		fprintf(stderr, "arcad: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(out[1]);
	char buf[8192], line[4096];
	size_t ll = 0;
	uint64_t last_write = 0;
	bool killed = false;
	for (;;) {
		if (*stop && !killed) {
			kill(pid, SIGTERM);
			killed = true;
		}
		struct pollfd pf = { .fd = out[0], .events = POLLIN };
		int n = poll(&pf, 1, 1000);
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0) {
			ssize_t r = read(out[0], buf, sizeof(buf));
			if (r <= 0)
				break;
			for (ssize_t i = 0; i < r; i++) {
				if (buf[i] == '\n') {
					line[ll] = '\0';
					take_line(st, line);
					ll = 0;
				} else if (ll + 1 < sizeof(line)) {
					line[ll++] = buf[i];
				}
			}
		}
		if (now_s() != last_write) {
			last_write = now_s();
			write_state(c, st);
		}
	}
	close(out[0]);
	int ws = 0;
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return WEXITSTATUS(ws);
}

static unsigned jitter(unsigned every)
{
	/* up to a tenth of the interval, either way */
	unsigned span = every / 10;
	if (span == 0)
		return every;
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)getpid();
	return every - span + r % (2 * span + 1);
}

int puller_run(const struct arcad_config *c, volatile sig_atomic_t *stop)
{
	struct pull_state st = { .last_exit = -1 };
	/* the first pull soon after start, spread over a few seconds */
	st.next = now_s() + 1 + jitter(c->pull_every) % 5;
	write_state(c, &st);
	arcad_log(LOG_NOTICE, "pulls of %s every %u s", c->pull_host, c->pull_every);
	while (!*stop) {
		if (now_s() < st.next) {
			struct timespec ts = { 1, 0 };
			nanosleep(&ts, NULL);
			continue;
		}
		st.running = true;
		st.started = now_s();
		st.total = count_accounts(c);
		st.done = st.failed = st.snapshots = st.unchanged = 0;
		st.last_error[0] = '\0';
		write_state(c, &st);
		int rc = run_once(c, &st, stop);
		st.running = false;
		st.finished = now_s();
		st.last_seconds = st.finished - st.started;
		st.last_exit = rc;
		st.runs++;
		if (st.total < st.done)
			st.total = st.done;
		/* 0 all pulled, 3 some accounts failed, 5 an alarm: the run
		 * worked; anything else failed as a whole */
		bool worked = rc == 0 || rc == 3 || rc == 5;
		if (worked && st.done > 0 && st.failed == st.done)
			worked = false;   /* every account failed: the server is down */
		snprintf(st.last_result, sizeof(st.last_result), "%s",
			 !worked ? "failed" : rc == 0 ? "ok" : rc == 3 ? "some accounts failed" : "ALARM");
		if (worked) {
			st.failures_in_a_row = 0;
			st.next = st.finished + jitter(c->pull_every);
		} else {
			st.failures_in_a_row++;
			unsigned shift = st.failures_in_a_row > 10 ? 10 : st.failures_in_a_row - 1;
			unsigned wait = 60u << shift;
			if (wait > c->pull_every)
				wait = c->pull_every;
			st.next = st.finished + wait;
			snprintf(st.last_error, sizeof(st.last_error), "arca pull exited %d%s", rc,
				 st.done && st.failed == st.done ? " (every account failed)" : "");
		}
		arcad_log(rc == 5 ? LOG_ALERT : worked ? LOG_NOTICE : LOG_ERR,
			  "%spull %s in %llu s: %u accounts, %u new snapshots, %u unchanged, %u failed; next in %llu s",
			  rc == 5 ? "ALARM: " : "", st.last_result, (unsigned long long)st.last_seconds,
			  st.done, st.snapshots, st.unchanged, st.failed,
			  (unsigned long long)(st.next - st.finished));
		write_state(c, &st);
	}
	return 0;
}
