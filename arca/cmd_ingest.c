/*
 * arca ingest maildir --repo REPO --account ACCOUNT MAILDIR
 * arca ingest maildir --repo REPO --pattern '/srv/mail/%d/%n/Maildir'
 */
#include <getopt.h>
#include <glob.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repo.h"

#include "buf.h"
#include "cli.h"
#include "commands.h"
#include "mailsync.h"
#include "banned.h"

static const char USAGE[] =
	"arca ingest maildir --repo REPO --account ACCOUNT [--layout auto|maildir++|fs] [--reread] MAILDIR\n"
	"arca ingest maildir --repo REPO --pattern PATTERN [--layout ...] [--reread]\n\n"
	"Takes a snapshot of one account's Maildir (or of every account whose Maildir\n"
	"matches PATTERN, where %d is the domain and %n the local part, e.g.\n"
	"/srv/mail/%d/%n/Maildir).  Messages already stored and unchanged are not\n"
	"read again.  Needs keys/ingest.key, never the restore key.\n"
	"  --json    one JSON object per snapshot on stdout\n"
	"  --quiet   no progress\n"
	"  --reread  read every message again, as if none had been seen: a file\n"
	"            rewritten in place under the same name (Dovecot never does\n"
	"            that) is otherwise taken as unchanged.  Content already\n"
	"            stored is still not stored twice.";

struct progress {
	const char *account;
	uint64_t messages, bytes;
	struct timespec last;
	bool show;
};

static void on_warn(void *ctx, const char *what, const char *why)
{
	(void)ctx;
	fprintf(stderr, "%s: warning: %s: %s\n", cli_prog, what, why);
}

static void on_progress(void *ctx, uint64_t messages, uint64_t bytes)
{
	struct progress *p = ctx;
	p->messages += messages;
	p->bytes += bytes;
	if (!p->show)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec == p->last.tv_sec)
		return;
	p->last = now;
	fprintf(stderr, "\r%s: %llu messages, %.1f MiB ", p->account,
		(unsigned long long)p->messages, (double)p->bytes / 1048576.0);
}

/* Snapshots are committed in batches (a few fsyncs for many accounts);
 * each account's line is printed once its snapshot is committed. */
struct batch {
	char **lines;
	size_t n, cap;
	struct timespec last;
	int warnings;
};

static void batch_add(struct batch *b, char *line)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		char **v = realloc(b->lines, cap * sizeof(*v));
		if (v == NULL) {
			free(line);
			return;
		}
		b->lines = v;
		b->cap = cap;
	}
	b->lines[b->n++] = line;
}

static int batch_commit(struct repo *r, struct batch *b, bool force)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!force && repo_staged_count(r) < 32 && now.tv_sec - b->last.tv_sec < 10)
		return 0;
	b->last = now;
	struct arca_err err = { 0 };
	int rc = repo_commit_staged(r, NULL, NULL, &err);
	if (rc && b->n == 0 && err.msg[0] == '\0')
		return 1;   /* nothing of this batch was lost; the error is reported */
	for (size_t i = 0; i < b->n; i++) {
		if (rc == 0 && b->lines[i][0] != '\0')
			fputs(b->lines[i], stdout);
		free(b->lines[i]);
	}
	b->n = 0;
	fflush(stdout);
	if (rc)
		return cli_fail(&err);
	return 0;
}

/* How every account of the run is read. */
struct how {
	enum maildir_layout layout;
	bool reread;
};

/* One account; prep: its preparation, done ahead (NULL: done here). */
static int ingest_one(struct repo *r, struct ingest_prep *prep, const char *account,
		      const char *maildir, const struct how *how, bool json, bool quiet,
		      struct batch *b)
{
	struct progress p = { .account = account, .show = !quiet && cli_isatty() };
	struct ingest_opts o = { .account = account, .maildir = maildir, .layout = how->layout,
				 .reread = how->reread, .warn = on_warn, .progress = on_progress,
				 .ctx = &p, .stage_only = true };
	struct ingest_result res;
	struct arca_err err = { 0 };
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct repo_stats before = *repo_stats(r);
	int rc = prep ? ingest_finish(r, prep, &o, &res, &err) : ingest_maildir(r, &o, &res, &err);
	if (p.show)
		fputs("\r\033[K", stderr);
	if (rc) {
		fprintf(stderr, "%s: account %s (%s): %s\n", cli_prog, account, maildir,
			err.msg[0] ? err.msg : arca_strerror(rc));
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	const struct repo_stats *st = repo_stats(r);
	char hex[2 * ARCA_ID_LEN + 1], t[40];
	hex_encode(hex, res.info.root, ARCA_ID_LEN);
	cli_format_time(res.info.time_ns, t);
	char *line = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&line, &len);
	if (f == NULL) {
		snap_info_release(&res.info);
		return cli_failf("out of memory");
	}
	if (json) {
		fprintf(f, "{\"id\":\"%s\",\"account\":", hex);
		cli_json_str(f, account);
		fprintf(f, ",\"time\":\"%s\",\"folders\":%llu,\"messages\":%llu,\"bytes\":%llu,"
			"\"files_read\":%llu,\"bytes_read\":%llu,\"skipped\":%llu,"
			"\"unreadable\":%llu,\"stored_bytes\":%llu,\"seconds\":%.3f}\n",
			t, (unsigned long long)res.info.folders, (unsigned long long)res.info.messages,
			(unsigned long long)res.info.bytes, (unsigned long long)res.files_read,
			(unsigned long long)res.bytes_read, (unsigned long long)res.files_skipped,
			(unsigned long long)res.unreadable,
			(unsigned long long)(st->bytes_stored_new - before.bytes_stored_new), secs);
	} else if (!quiet) {
		fprintf(f, "snapshot %.16s of %s: %llu folders, %llu messages (%.1f MiB); read %llu (%.1f MiB), "
			"stored %.1f MiB new, %.2f s\n",
			hex, account, (unsigned long long)res.info.folders,
			(unsigned long long)res.info.messages, (double)res.info.bytes / 1048576.0,
			(unsigned long long)res.files_read, (double)res.bytes_read / 1048576.0,
			(double)(st->bytes_stored_new - before.bytes_stored_new) / 1048576.0, secs);
	}
	fclose(f);
	batch_add(b, line);
	if (res.unreadable)
		b->warnings++;
	snap_info_release(&res.info);
	return 0;
}

/* The account a path matched by the pattern names ("%n@%d", or "%n" when
 * the pattern has no %d; di/ni: which field is which) in *out, or NULL when
 * the path does not fit the pattern.  0, or ARCA_ENOMEM. */
static int account_of(const char *pattern, const char *path, int di, int ni, char **out)
{
	*out = NULL;
	const char *pp = pattern;
	char fields[2][256] = { "", "" };
	int f = 0;
	bool ok = true;
	while (*pp && ok) {
		if (pp[0] == '%' && (pp[1] == 'd' || pp[1] == 'n')) {
			const char *next = pp + 2;
			size_t lit = strcspn(next, "%");
			const char *end = lit ? strstr(path, (char[]){ next[0], 0 }) : path + strlen(path);
			size_t len = end ? (size_t)(end - path) : 0;
			if (end == NULL || len == 0 || len >= 256 || memchr(path, '/', len)) {
				ok = false;
				break;
			}
			memcpy(fields[f], path, len);
			fields[f][len] = '\0';
			f++;
			path += len;
			pp += 2;
		} else {
			ok = *pp == *path;
			pp++;
			path++;
		}
	}
	if (!ok || *path != '\0')
		return 0;
	char account[600];
	if (di >= 0)
		snprintf(account, sizeof(account), "%s@%s", fields[ni], fields[di]);
	else
		snprintf(account, sizeof(account), "%s", fields[ni]);
	*out = strdup(account);
	return *out ? 0 : ARCA_ENOMEM;
}

/*
 * Accounts prepared ahead (ingest_prepare: folders listed, quiet ones taken
 * over, messages looked up in the ingest cache) by a few threads, up to as
 * many accounts past the one being read and stored as there are threads.
 * On an incremental run the preparation was half of each account's time,
 * most of it waiting for directory blocks that ext4 reads one at a time:
 * several preparations keep several of those reads in flight.  The threads
 * look only at what the ingest will use (unlike reading every directory
 * ahead, which an earlier version did).  ARCA_AHEAD=0 turns it off, 1-8
 * sets the thread count.
 */
enum { AHEAD = 4, AHEAD_MAX = 8 };

struct ahead;
struct ahead_arg {
	struct ahead *ah;
	unsigned k;                     /* which thread: its repository worker */
};

struct ahead {
	struct repo *r;
	char *const *accounts, *const *paths;
	const struct how *how;
	size_t n;
	size_t next;                    /* next to prepare (under lock) */
	size_t at;                      /* being ingested (under lock) */
	bool stop;
	struct ingest_prep **preps;     /* [n], done ones (under lock) */
	bool *done;                     /* [n] */
	pthread_mutex_t lock;
	pthread_cond_t moved;
	pthread_t th[AHEAD_MAX];
	struct repo_worker *w[AHEAD_MAX];
	struct ahead_arg args[AHEAD_MAX];
	unsigned nth;
	size_t window;                  /* accounts prepared past `at`: one per thread */
};

static void *ahead_main(void *arg)
{
	struct ahead_arg *a = arg;
	struct ahead *ah = a->ah;
	pthread_mutex_lock(&ah->lock);
	for (;;) {
		if (ah->stop || ah->next >= ah->n)
			break;
		if (ah->next > ah->at + ah->window) {
			pthread_cond_wait(&ah->moved, &ah->lock);
			continue;
		}
		size_t k = ah->next++;
		pthread_mutex_unlock(&ah->lock);
		struct ingest_prep *p = NULL;
		if (ah->accounts[k] != NULL) {
			struct ingest_opts o = { .account = ah->accounts[k], .maildir = ah->paths[k],
						 .layout = ah->how->layout, .reread = ah->how->reread,
						 .warn = on_warn, .stage_only = true };
			p = ingest_prepare(ah->r, ah->w[a->k], &o);
		}
		pthread_mutex_lock(&ah->lock);
		ah->preps[k] = p;
		ah->done[k] = true;
		pthread_cond_broadcast(&ah->moved);
	}
	pthread_mutex_unlock(&ah->lock);
	return NULL;
}

static void ahead_start(struct ahead *ah)
{
	const char *env = getenv("ARCA_AHEAD");
	long want = env ? strtol(env, NULL, 10) : AHEAD;
	if (want < 0 || want > AHEAD_MAX)
		want = AHEAD;
	ah->preps = calloc(ah->n ? ah->n : 1, sizeof(*ah->preps));
	ah->done = calloc(ah->n ? ah->n : 1, sizeof(*ah->done));
	if (ah->preps == NULL || ah->done == NULL || ah->n < 2)
		want = 0;
	/* the check runs once, here, not on a preparing thread */
	repo_file_cache_check(ah->r);
	pthread_mutex_init(&ah->lock, NULL);
	pthread_cond_init(&ah->moved, NULL);
	ah->next = 1;   /* the first one is prepared where it is ingested */
	ah->window = (size_t)want;
	while (ah->nth < (unsigned)want) {
		unsigned k = ah->nth;
		ah->w[k] = repo_worker_new(ah->r);
		ah->args[k] = (struct ahead_arg){ ah, k };
		if (ah->w[k] == NULL || pthread_create(&ah->th[k], NULL, ahead_main, &ah->args[k]) != 0) {
			repo_worker_free(ah->w[k]);
			ah->w[k] = NULL;
			break;
		}
		ah->nth++;
	}
}

/* Maildir i's preparation, waiting for it; NULL when nobody prepares ahead
 * (the caller prepares it). */
static struct ingest_prep *ahead_take(struct ahead *ah, size_t i)
{
	if (ah->nth == 0 || i == 0)
		return NULL;
	pthread_mutex_lock(&ah->lock);
	ah->at = i;
	pthread_cond_broadcast(&ah->moved);
	while (!ah->done[i])
		pthread_cond_wait(&ah->moved, &ah->lock);
	struct ingest_prep *p = ah->preps[i];
	ah->preps[i] = NULL;
	pthread_mutex_unlock(&ah->lock);
	return p;
}

static void ahead_stop(struct ahead *ah)
{
	pthread_mutex_lock(&ah->lock);
	ah->stop = true;
	pthread_cond_broadcast(&ah->moved);
	pthread_mutex_unlock(&ah->lock);
	for (unsigned k = 0; k < ah->nth; k++) {
		pthread_join(ah->th[k], NULL);
		repo_worker_free(ah->w[k]);
	}
	for (size_t i = 0; ah->preps != NULL && i < ah->n; i++)
		ingest_prep_free(ah->preps[i]);
	free(ah->preps);
	free(ah->done);
	pthread_cond_destroy(&ah->moved);
	pthread_mutex_destroy(&ah->lock);
}

/* Expand %d and %n to '*', glob, and read the account back from each match. */
static int ingest_pattern(struct repo *r, const char *pattern, const struct how *how,
			  bool json, bool quiet, struct batch *b)
{
	struct abuf g = ABUF_INIT;
	int di = -1, ni = -1, idx = 0;
	for (const char *p = pattern; *p; p++) {
		if (p[0] == '%' && (p[1] == 'd' || p[1] == 'n')) {
			if (p[1] == 'd')
				di = idx++;
			else
				ni = idx++;
			abuf_add(&g, "*", 1);
			p++;
		} else {
			abuf_add(&g, p, 1);
		}
	}
	abuf_cstr(&g);
	if (ni < 0) {
		abuf_release(&g);
		return cli_failf("--pattern needs %%n (and usually %%d) to name accounts");
	}
	glob_t gl;
	int grc = glob((const char *)g.data, GLOB_ONLYDIR, NULL, &gl);
	if (grc == GLOB_NOMATCH) {
		abuf_release(&g);
		return cli_failf("no Maildir matches %s", pattern);
	}
	if (grc != 0) {
		abuf_release(&g);
		return cli_failf("cannot expand %s", pattern);
	}
	/* every Maildir's account, first: the next one is prepared ahead */
	char **accounts = calloc(gl.gl_pathc ? gl.gl_pathc : 1, sizeof(char *));
	if (accounts == NULL) {
		globfree(&gl);
		abuf_release(&g);
		return cli_failf("out of memory");
	}
	int arc = 0;
	for (size_t i = 0; i < gl.gl_pathc && arc == 0; i++)
		arc = account_of(pattern, gl.gl_pathv[i], di, ni, &accounts[i]);
	if (arc) {
		for (size_t i = 0; i < gl.gl_pathc; i++)
			free(accounts[i]);
		free(accounts);
		globfree(&gl);
		abuf_release(&g);
		return cli_failf("out of memory");
	}
	int failures = 0;
	struct ahead ah = { .r = r, .accounts = accounts, .paths = gl.gl_pathv, .how = how,
			    .n = gl.gl_pathc };
	ahead_start(&ah);
	for (size_t i = 0; i < gl.gl_pathc; i++) {
		struct ingest_prep *prep = ahead_take(&ah, i);
		if (accounts[i] == NULL)
			continue;   /* the path does not fit the pattern */
		failures += ingest_one(r, prep, accounts[i], gl.gl_pathv[i], how, json, quiet, b);
		if (batch_commit(r, b, false) != 0) {
			failures++;
			break;
		}
	}
	ahead_stop(&ah);
	for (size_t i = 0; i < gl.gl_pathc; i++)
		free(accounts[i]);
	free(accounts);
	globfree(&gl);
	abuf_release(&g);
	return failures ? 1 : 0;
}

int cmd_ingest(int argc, char **argv)
{
	/* glibc raises its mmap threshold each time a large block is freed, so
	 * the readers' 1 MiB buffers and zstd contexts, allocated again for every
	 * account by short-lived threads, end up kept in a dozen arenas.  A fixed
	 * threshold gives them back: first ingest of 100 x 2,000 messages, peak
	 * RSS 250 -> 172 MB, no slower (23.3 against 24.7-25.3 s).  Not for
	 * restore, which it made 60% slower (a mapping per message buffer). */
	(void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "account", required_argument, NULL, 'a' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "layout", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "reread", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int sub = cli_subcommand(&argc, &argv, "maildir", USAGE);
	if (sub >= 0)
		return sub;
	const char *repo = NULL, *account = NULL, *pattern = NULL;
	struct how how = { .layout = MAILDIR_LAYOUT_AUTO };
	bool json = false, quiet = false;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': repo = optarg; break;
		case 'a': account = optarg; break;
		case 'p': pattern = optarg; break;
		case 'l':
			if (strcmp(optarg, "auto") == 0)
				how.layout = MAILDIR_LAYOUT_AUTO;
			else if (strcmp(optarg, "maildir++") == 0)
				how.layout = MAILDIR_LAYOUT_MAILDIRPP;
			else if (strcmp(optarg, "fs") == 0)
				how.layout = MAILDIR_LAYOUT_FS;
			else
				return cli_usage(USAGE);
			break;
		case 'j': json = true; break;
		case 'q': quiet = true; break;
		case 'R': how.reread = true; break;
		case 'h': puts(USAGE); return 0;
		default: return cli_usage(USAGE);
		}
	}
	bool one = account != NULL && pattern == NULL && optind + 1 == argc;
	bool many = pattern != NULL && account == NULL && optind == argc;
	if (repo == NULL || (!one && !many))
		return cli_usage(USAGE);
	struct repo *r;
	int rc = cli_open_repo(repo, REPO_OPEN_WRITE, NULL, &r);
	if (rc)
		return rc;
	struct batch b = { 0 };
	clock_gettime(CLOCK_MONOTONIC, &b.last);
	if (one)
		rc = ingest_one(r, NULL, account, argv[optind], &how, json, quiet, &b);
	else
		rc = ingest_pattern(r, pattern, &how, json, quiet, &b);
	/* what succeeded is committed even when another account failed */
	if (batch_commit(r, &b, true) != 0)
		rc = 1;
	free(b.lines);
	repo_close(r);
	if (rc == 0 && b.warnings)
		return EXIT_WARNINGS;
	return rc;
}
