/*
 * doveadm.h - run Dovecot's doveadm without a shell.
 *
 * The --doveadm string ("doveadm -c /etc/dovecot/dovecot.conf") is split on
 * spaces into the program and its first arguments; each call appends its own
 * arguments and execs it directly (execvp: no shell, so a mailbox or user
 * name is never interpreted).  Every call has a timeout (the child is killed
 * when it runs out), stdin from a buffer, and stdout and stderr captured
 * (with caps, so a runaway doveadm can't make us allocate what it likes).
 */
#ifndef ARCA_DOVEADM_H
#define ARCA_DOVEADM_H

#include <stddef.h>

#include "buf.h"

#define DOVEADM_WORDS_MAX 32
#define DOVEADM_OUT_MAX (16u << 20)
#define DOVEADM_ERR_MAX (64u << 10)
/* Arguments of one call (Linux takes about 2 MiB of them in all). */
#define DOVEADM_ARGS_MAX 4096

struct doveadm {
	char *words[DOVEADM_WORDS_MAX];
	size_t nwords;
	int timeout_s;
};

/* Seconds a call may take at most (the group status of many accounts
 * scales the per-call timeout up to this). */
#define DOVEADM_TIMEOUT_MAX 86400

/* 0, or -1 when the string has no word or too many.  Sets SIGPIPE to
 * ignored for the process (call it before starting threads); children get
 * the default back before exec. */
int doveadm_init(struct doveadm *d, const char *cmdline, int timeout_s);
void doveadm_free(struct doveadm *d);

struct doveadm_result {
	int status;          /* exit status; -1: killed (timeout or signal), -2: not run */
	struct abuf out;     /* stdout (NUL-terminated) */
	struct abuf err;     /* stderr (NUL-terminated) */
	char why[256];       /* for status < 0: what happened */
};
void doveadm_result_release(struct doveadm_result *res);

/* Runs the words then args (NULL-terminated) with `in` on stdin.  Returns
 * 0 when it ran and exited 0, else -1 (res says why). */
int doveadm_run(const struct doveadm *d, const char *const *args, const void *in, size_t inlen,
		struct doveadm_result *res);

/* "doveadm mailbox update ... : exit 68: <stderr, lines joined by '; '>"
 * into out (reset, NUL-terminated), for one error line. */
void doveadm_describe(const struct doveadm *d, const char *const *args,
		      const struct doveadm_result *res, struct abuf *out);

/* A separator for `doveadm batch SEP cmd SEP cmd ...` that is none of
 * args (NULL-terminated): doveadm splits at every argument equal to it.
 * 0 when every candidate is taken. */
char doveadm_batch_sep(const char *const *args);

#endif
