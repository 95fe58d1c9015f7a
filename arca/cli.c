#include "cli.h"
#include "alarm.h"

#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "overlay.h"
#include "banned.h"

const char *cli_prog = "arca";

int cli_fail(const struct arca_err *err)
{
	fprintf(stderr, "%s: %s\n", cli_prog,
		err->msg[0] ? err->msg : arca_strerror(err->code));
	return 1;
}

int cli_failf(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", cli_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int cli_usage(const char *usage)
{
	fprintf(stderr, "usage: %s\n", usage);
	return EXIT_USAGE;
}

int cli_subcommand(int *argc, char ***argv, const char *sub, const char *usage)
{
	if (*argc >= 2 && strcmp((*argv)[1], sub) == 0) {
		(*argc)--;
		(*argv)++;
		return -1;
	}
	if (*argc >= 2 && strcmp((*argv)[1], "--help") == 0) {
		puts(usage);
		return 0;
	}
	return cli_usage(usage);
}

bool cli_isatty(void)
{
	return isatty(STDERR_FILENO) != 0;
}

static char *prompt(const char *what)
{
	FILE *tty = fopen("/dev/tty", "r+e");   /* never inherited by a child */
	if (tty == NULL)
		return NULL;
	struct termios old, noecho;
	bool restore = tcgetattr(fileno(tty), &old) == 0;
	if (restore) {
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fileno(tty), TCSAFLUSH, &noecho);
	}
	fprintf(tty, "%s", what);
	fflush(tty);
	char *buf = sodium_malloc(1024);
	char *res = NULL;
	if (buf != NULL && fgets(buf, 1024, tty) != NULL) {
		buf[strcspn(buf, "\r\n")] = '\0';
		res = buf;
	}
	if (restore)
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fputc('\n', tty);
	fclose(tty);
	if (res == NULL)
		sodium_free(buf);
	return res;
}

char *cli_passphrase(bool confirm)
{
	const char *env = getenv("ARCA_PASSPHRASE");
	if (env != NULL) {
		size_t n = strlen(env);
		char *p = sodium_malloc(n + 1);
		if (p)
			memcpy(p, env, n + 1);
		return p;
	}
	char *p = prompt("Restore-key passphrase: ");
	if (p == NULL || !confirm)
		return p;
	char *q = prompt("Again: ");
	if (q == NULL || strcmp(p, q) != 0) {
		fprintf(stderr, "%s: the passphrases differ\n", cli_prog);
		sodium_free(p);
		sodium_free(q);
		return NULL;
	}
	sodium_free(q);
	return p;
}

void cli_passphrase_free(char *p)
{
	sodium_free(p);
}

int cli_open_repo(const char *path, int flags, const char *keyfile, struct repo **r_r)
{
	struct arca_err err = { 0 };
	struct repo *r;
	if (repo_open(path, flags, &r, &err) != 0)
		return cli_fail(&err);
	const char *w = repo_warnings(r);
	if (w != NULL)
		fprintf(stderr, "%s: warning: %s", cli_prog, w);
	if (keyfile != NULL) {
		struct arca_restore_key *rk;
		int rc = cli_read_restore_key(keyfile, &rk);
		if (rc) {
			repo_close(r);
			return rc;
		}
		if (repo_set_restore_key(r, rk, &err) != 0) {
			repo_close(r);
			return cli_fail(&err);
		}
	}
	*r_r = r;
	return 0;
}

int cli_open_overlay(const char *path, struct repo *r, bool writable, struct overlay **ov_r)
{
	struct arca_err err = { 0 };
	char warning[ARCA_ERR_MSG_MAX];
	const struct arca_restore_key *rk = repo_restore_key(r);
	if (rk == NULL)
		return cli_failf("%s: the overlay needs the restore key", path);
	if (overlay_open(path, rk, writable, ov_r, warning, &err) != 0)
		return cli_fail(&err);
	if (warning[0])
		fprintf(stderr, "%s: warning: %s%s\n", cli_prog, warning,
			writable ? " (cut off: it was never acknowledged)" : "");
	return 0;
}

int cli_read_restore_key(const char *keyfile, struct arca_restore_key **rk_r)
{
	char *pass = cli_passphrase(false);
	if (pass == NULL)
		return cli_failf("no passphrase for %s (set ARCA_PASSPHRASE or run on a terminal)", keyfile);
	struct arca_err err = { 0 };
	int rc = keyfile_read(keyfile, pass, rk_r, &err);
	cli_passphrase_free(pass);
	return rc ? cli_fail(&err) : 0;
}

void cli_format_time(uint64_t ns, char out[40])
{
	time_t sec = (time_t)(ns / 1000000000u);
	struct tm tm;
	gmtime_r(&sec, &tm);
	char base[24];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 40, "%s.%09uZ", base, (unsigned)(ns % 1000000000u));
}

int cli_parse_time(const char *s, uint64_t *ns_r)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p == NULL) {
		memset(&tm, 0, sizeof(tm));
		p = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
	}
	if (p == NULL) {
		memset(&tm, 0, sizeof(tm));
		p = strptime(s, "%Y-%m-%d", &tm);
		if (p == NULL || *p != '\0')
			return ARCA_EFORMAT;
		/* a bare date means the end of that day */
		tm.tm_hour = 23;
		tm.tm_min = 59;
		tm.tm_sec = 59;
		*ns_r = (uint64_t)timegm(&tm) * 1000000000u + 999999999u;
		return 0;
	}
	uint64_t frac = 0;
	if (*p == '.') {
		unsigned digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 9)
				frac = frac * 10 + (uint64_t)(*p - '0');
		for (; digits < 9; digits++)
			frac *= 10;
	}
	long offset = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int hh, mm;
		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
			return ARCA_EFORMAT;
		offset = (hh * 3600L + mm * 60L) * (*p == '-' ? -1 : 1);
		p += 6;
	}
	if (*p != '\0')
		return ARCA_EFORMAT;
	int64_t sec = (int64_t)timegm(&tm) - offset;
	if (sec < 0)
		return ARCA_EFORMAT;
	*ns_r = (uint64_t)sec * 1000000000u + frac;
	return 0;
}

void cli_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

int cli_pick_snapshot(struct repo *r, const char *account, const char *id,
		      const char *at, struct snap_info *info_r)
{
	struct arca_err err = { 0 };
	struct snap_info *list;
	size_t n;
	if (repo_snapshots(r, &list, &n, &err) != 0)
		return cli_fail(&err);
	uint64_t at_ns = UINT64_MAX;
	if (at != NULL && cli_parse_time(at, &at_ns) != 0) {
		snap_infos_free(list, n);
		return cli_failf("--at %s: not a time (use RFC 3339, e.g. 2026-11-28T06:00:00Z)", at);
	}
	/* By default, never a snapshot a standing alarm marked suspect nor
	 * one after it: the last one before the first suspect one. */
	uint64_t before_ns = UINT64_MAX;
	if (id == NULL && at == NULL && account != NULL) {
		struct alarm *al = NULL;
		size_t nal = 0;
		if (alarm_list(r, true, &al, &nal, &err) == 0) {
			for (size_t k = 0; k < n; k++) {
				if (strcmp(list[k].account, account) != 0)
					continue;
				for (size_t a = 0; a < nal; a++)
					for (size_t x = 0; x < al[a].nsuspects; x++)
						if (strcmp(al[a].suspects[x].account, account) == 0 &&
						    memcmp(al[a].suspects[x].root, list[k].root, ARCA_ID_LEN) == 0 &&
						    list[k].time_ns < before_ns)
							before_ns = list[k].time_ns;
			}
			alarms_free(al, nal);
		}
		if (before_ns != UINT64_MAX) {
			char t[40];
			cli_format_time(before_ns, t);
			fprintf(stderr, "%s: %s: the snapshot of %s is suspect (standing alarm, arca status): taking the last one before it; --snapshot ID chooses another\n",
				cli_prog, account, t);
			at_ns = before_ns - 1;
		}
	}
	const struct snap_info *pick = NULL;
	int matches = 0;
	for (size_t i = 0; i < n; i++) {
		const struct snap_info *s = &list[i];
		if (account != NULL && strcmp(s->account, account) != 0)
			continue;
		if (id != NULL) {
			char hex[2 * ARCA_ID_LEN + 1];
			hex_encode(hex, s->root, ARCA_ID_LEN);
			if (strncmp(hex, id, strlen(id)) == 0) {
				if (pick == NULL || memcmp(pick->root, s->root, ARCA_ID_LEN) != 0)
					matches++;
				pick = s;
			}
		} else if (s->time_ns <= at_ns && (pick == NULL || s->time_ns >= pick->time_ns)) {
			pick = s;
		}
	}
	int rc = 0;
	if (pick == NULL) {
		if (id != NULL)
			rc = cli_failf("no snapshot %s%s%s", id, account ? " of account " : "", account ? account : "");
		else if (at != NULL)
			rc = cli_failf("account %s has no snapshot at or before %s", account ? account : "(any)", at);
		else
			rc = cli_failf("account %s has no snapshot", account ? account : "(any)");
	} else if (matches > 1) {
		rc = cli_failf("snapshot id %s is ambiguous; give more digits", id);
	} else {
		*info_r = *pick;
		info_r->account = strdup(pick->account);
		info_r->source = strdup(pick->source);
		if (info_r->account == NULL || info_r->source == NULL) {
			snap_info_release(info_r);
			rc = cli_failf("out of memory");
		}
	}
	snap_infos_free(list, n);
	return rc;
}
