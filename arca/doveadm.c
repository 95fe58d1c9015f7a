#include "doveadm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "repo.h"
#include "banned.h"

int doveadm_init(struct doveadm *d, const char *cmdline, int timeout_s)
{
	memset(d, 0, sizeof(*d));
	d->timeout_s = timeout_s > 0 && timeout_s <= DOVEADM_TIMEOUT_MAX ? timeout_s : 60;
	/* A doveadm that exits without reading its stdin must not kill us.
	 * Process-wide and once, before any thread runs doveadm: a per-call
	 * save and restore would race between threads. */
	signal(SIGPIPE, SIG_IGN);
	for (const char *p = cmdline; *p;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		const char *e = strchr(p, ' ');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (d->nwords == DOVEADM_WORDS_MAX - 1) {
			doveadm_free(d);
			return -1;
		}
		d->words[d->nwords] = strndup(p, n);
		if (d->words[d->nwords] == NULL) {
			doveadm_free(d);
			return -1;
		}
		d->nwords++;
		p += n;
	}
	return d->nwords > 0 ? 0 : -1;
}

void doveadm_free(struct doveadm *d)
{
	for (size_t i = 0; i < d->nwords; i++)
		free(d->words[i]);
	d->nwords = 0;
}

void doveadm_result_release(struct doveadm_result *res)
{
	abuf_release(&res->out);
	abuf_release(&res->err);
}

/* Append what fd has, up to cap (beyond it: read and dropped). */
static int drain(int fd, struct abuf *b, size_t cap)
{
	char buf[8192];
	ssize_t k = read(fd, buf, sizeof(buf));
	if (k < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : 0;
	if (k == 0)
		return 0;
	size_t room = b->len < cap ? cap - b->len : 0;
	if (room > 0 && abuf_add(b, buf, (size_t)k < room ? (size_t)k : room) != 0)
		return 0;
	return 1;
}

static int run_argv(const char **argv, int timeout_s, const void *in, size_t inlen,
		    struct doveadm_result *res);

int doveadm_run(const struct doveadm *d, const char *const *args, const void *in, size_t inlen,
		struct doveadm_result *res)
{
	memset(res, 0, sizeof(*res));
	res->status = -2;
	size_t nargs = 0;
	while (args[nargs] != NULL)
		nargs++;
	if (nargs > DOVEADM_ARGS_MAX) {
		snprintf(res->why, sizeof(res->why), "too many arguments (%zu)", nargs);
		return -1;
	}
	const char **argv = calloc(d->nwords + nargs + 1, sizeof(*argv));
	if (argv == NULL) {
		snprintf(res->why, sizeof(res->why), "out of memory");
		return -1;
	}
	size_t argc = 0;
	for (size_t i = 0; i < d->nwords; i++)
		argv[argc++] = d->words[i];
	for (size_t i = 0; i < nargs; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;
	int rc = run_argv(argv, d->timeout_s, in, inlen, res);
	free(argv);
	return rc;
}

static int run_argv(const char **argv, int timeout_s, const void *in, size_t inlen,
		    struct doveadm_result *res)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	if (pipe2(pin, O_CLOEXEC) != 0 || pipe2(pout, O_CLOEXEC) != 0 || pipe2(perr, O_CLOEXEC) != 0) {
		snprintf(res->why, sizeof(res->why), "pipe: %s", strerror(errno));
		for (int i = 0; i < 2; i++) {
			if (pin[i] >= 0)
				close(pin[i]);
			if (pout[i] >= 0)
				close(pout[i]);
			if (perr[i] >= 0)
				close(perr[i]);
		}
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		/* only async-signal-safe calls here: the parent may have threads */
		signal(SIGPIPE, SIG_DFL);   /* ignored (doveadm_init) is inherited */
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		dup2(perr[1], 2);
		execvp(argv[0], (char *const *)argv);
		static const char msg[] = "cannot run the doveadm program given\n";
		(void)!write(2, msg, sizeof(msg) - 1);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	if (pid < 0) {
		snprintf(res->why, sizeof(res->why), "fork: %s", strerror(errno));
		close(pin[1]);
		close(pout[0]);
		close(perr[0]);
		return -1;
	}
	fcntl(pin[1], F_SETFL, O_NONBLOCK);
	size_t sent = 0;
	if (inlen == 0) {
		close(pin[1]);
		pin[1] = -1;
	}
	uint64_t deadline = arca_mono_ns() + (uint64_t)timeout_s * 1000000000ull;
	bool out_open = true, err_open = true, timed_out = false;
	while (out_open || err_open || pin[1] >= 0) {
		struct pollfd pf[3];
		int np = 0, io = -1, ie = -1, ii = -1;
		if (out_open) {
			pf[np] = (struct pollfd){ .fd = pout[0], .events = POLLIN };
			io = np++;
		}
		if (err_open) {
			pf[np] = (struct pollfd){ .fd = perr[0], .events = POLLIN };
			ie = np++;
		}
		if (pin[1] >= 0) {
			pf[np] = (struct pollfd){ .fd = pin[1], .events = POLLOUT };
			ii = np++;
		}
		uint64_t now = arca_mono_ns();
		if (now >= deadline) {
			timed_out = true;
			break;
		}
		int ms = (int)((deadline - now) / 1000000ull) + 1;
		int k = poll(pf, (nfds_t)np, ms);
		if (k < 0 && errno != EINTR)
			break;
		if (k <= 0)
			continue;
		if (io >= 0 && pf[io].revents)
			out_open = drain(pout[0], &res->out, DOVEADM_OUT_MAX) == 1;
		if (ie >= 0 && pf[ie].revents)
			err_open = drain(perr[0], &res->err, DOVEADM_ERR_MAX) == 1;
		if (ii >= 0 && pf[ii].revents) {
			ssize_t w = write(pin[1], (const char *)in + sent, inlen - sent);
			if (w > 0)
				sent += (size_t)w;
			if ((w < 0 && errno != EAGAIN && errno != EINTR) || sent == inlen) {
				close(pin[1]);
				pin[1] = -1;
			}
		}
	}
	if (timed_out)
		kill(pid, SIGKILL);
	if (pin[1] >= 0)
		close(pin[1]);
	close(pout[0]);
	close(perr[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	(void)abuf_cstr(&res->out);
	(void)abuf_cstr(&res->err);
	if (timed_out) {
		res->status = -1;
		snprintf(res->why, sizeof(res->why), "no answer within %d s (killed)", timeout_s);
		return -1;
	}
	if (WIFSIGNALED(st)) {
		res->status = -1;
		snprintf(res->why, sizeof(res->why), "killed by signal %d", WTERMSIG(st));
		return -1;
	}
	res->status = WEXITSTATUS(st);
	return res->status == 0 ? 0 : -1;
}

void doveadm_describe(const struct doveadm *d, const char *const *args,
		      const struct doveadm_result *res, struct abuf *out)
{
	abuf_reset(out);
	for (size_t i = 0; i < d->nwords; i++)
		abuf_printf(out, "%s%s", i ? " " : "", d->words[i]);
	/* a batch for many folders: its start says enough */
	for (size_t i = 0; args[i] != NULL; i++) {
		if (out->len > 400) {
			size_t more = 0;
			while (args[i + more] != NULL)
				more++;
			abuf_printf(out, " ... (%zu more arguments)", more);
			break;
		}
		abuf_printf(out, " %s", args[i]);
	}
	if (res->status >= 0)
		abuf_printf(out, ": exit %d", res->status);
	else
		abuf_printf(out, ": %s", res->why);
	/* stderr on the same line: its lines joined, control bytes dropped */
	if (res->err.len > 0) {
		abuf_printf(out, ": ");
		const char *e = (const char *)res->err.data;
		bool sep = false;
		size_t shown = 0;
		for (size_t i = 0; i < res->err.len && e[i] && shown < 600; i++) {
			unsigned char c = (unsigned char)e[i];
			if (c == '\n') {
				sep = true;
				continue;
			}
			if (sep) {
				abuf_add(out, "; ", 2);
				sep = false;
			}
			if (c >= 0x20 && c != 0x7f) {
				abuf_add(out, &e[i], 1);
				shown++;
			}
		}
	}
	(void)abuf_cstr(out);
}

char doveadm_batch_sep(const char *const *args)
{
	/* doveadm batch splits its arguments at every one equal to the
	 * separator: it must be none of the arguments (a folder may be named
	 * ":") */
	static const char cands[] = ":;|+#%!~^,=";
	for (const char *c = cands; *c; c++) {
		bool used = false;
		for (size_t i = 0; args[i] != NULL && !used; i++)
			used = args[i][0] == *c && args[i][1] == '\0';
		if (!used)
			return *c;
	}
	return 0;
}
