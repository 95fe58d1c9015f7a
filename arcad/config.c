/* config.c - arcad's settings: defaults, an ini file (libinih), flags. */
#include "arcad.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

void arcad_config_defaults(struct arcad_config *c)
{
	memset(c, 0, sizeof(*c));
	c->journal_domain = strdup("journal.invalid");
	c->max_message_size = 64ull << 20;
	c->max_recipients = 1000;
	c->max_sessions = 200;
	c->max_sessions_per_client = 50;
	c->rate_per_client = 60000;
	c->quota_account_day = 4ull << 30;
	c->quota_total_day = 0;
	c->disk_reserve = 1ull << 30;
	c->seal_bytes = 16ull << 20;
	c->seal_seconds = 60;
	c->idle_timeout = 300;
}

void arcad_config_release(struct arcad_config *c)
{
	free(c->repo);
	for (int i = 0; i < c->nlisten; i++)
		free(c->listen[i]);
	free(c->journal_domain);
	free(c->pull_host);
	free(c->pull_tls);
	free(c->pull_ca_file);
	free(c->pull_master_user);
	free(c->pull_separator);
	free(c->pull_password_file);
	free(c->pull_credentials);
	free(c->pull_accounts_from);
	free(c->pull_user);
	free(c->arca);
	free(c->alarm_exec);
	free(c->user);
	free(c->allow);
	free(c->hostname);
	free(c->pidfile);
	free(c->tls_cert);
	free(c->tls_key);
	memset(c, 0, sizeof(*c));
}

static int seterr(char *errbuf, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int seterr(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* "64M", "1G", "4096": bytes. */
static int parse_size(const char *v, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || end == v || v[0] == '-')
		return -1;
	uint64_t mul = 1;
	switch (*end) {
	case 'k': case 'K': mul = 1ull << 10; end++; break;
	case 'm': case 'M': mul = 1ull << 20; end++; break;
	case 'g': case 'G': mul = 1ull << 30; end++; break;
	case 't': case 'T': mul = 1ull << 40; end++; break;
	case 'p': case 'P': mul = 1ull << 50; end++; break;
	}
	if (*end != '\0' || (n && mul > UINT64_MAX / n))
		return -1;
	*out = n * mul;
	return 0;
}

static int parse_uint(const char *v, unsigned *out)
{
	uint64_t n;
	if (parse_size(v, &n) != 0 || n > 100000000)
		return -1;
	*out = (unsigned)n;
	return 0;
}

int arcad_parse_duration(const char *v, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (end == v || errno != 0)
		return -1;
	unsigned long long mul = 1;
	if (*end == 's')
		end++;
	else if (*end == 'm')
		mul = 60, end++;
	else if (*end == 'h')
		mul = 3600, end++;
	else if (*end == 'd')
		mul = 86400, end++;
	if (*end != '\0' || n > 100ull * 86400 / mul)
		return -1;
	*out = (unsigned)(n * mul);
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
		*out = false;
	else
		return -1;
	return 0;
}

static int set_str(char **dst, const char *v)
{
	char *d = strdup(v);
	if (d == NULL)
		return -1;
	free(*dst);
	*dst = d;
	return 0;
}

int arcad_config_set(struct arcad_config *c, const char *key, const char *v,
		     char *errbuf, size_t errlen)
{
	int bad = 0;
	if (!strcmp(key, "repo"))
		bad = set_str(&c->repo, v);
	else if (!strcmp(key, "journal-listen")) {
		if (c->nlisten == ARCAD_LISTEN_MAX)
			return seterr(errbuf, errlen, "at most %d journal-listen addresses", ARCAD_LISTEN_MAX);
		c->listen[c->nlisten] = strdup(v);
		bad = c->listen[c->nlisten] == NULL;
		if (!bad)
			c->nlisten++;
	} else if (!strcmp(key, "journal-domain"))
		bad = set_str(&c->journal_domain, v);
	else if (!strcmp(key, "user"))
		bad = set_str(&c->user, v);
	else if (!strcmp(key, "allow"))
		bad = set_str(&c->allow, v);
	else if (!strcmp(key, "hostname"))
		bad = set_str(&c->hostname, v);
	else if (!strcmp(key, "pidfile"))
		bad = set_str(&c->pidfile, v);
	else if (!strcmp(key, "tls-cert"))
		bad = set_str(&c->tls_cert, v);
	else if (!strcmp(key, "tls-key"))
		bad = set_str(&c->tls_key, v);
	else if (!strcmp(key, "tls-required"))
		bad = parse_bool(v, &c->tls_required);
	else if (!strcmp(key, "max-message-size"))
		bad = parse_size(v, &c->max_message_size) || c->max_message_size > (256ull << 20) ||
		      c->max_message_size == 0;
	else if (!strcmp(key, "max-recipients"))
		bad = parse_uint(v, &c->max_recipients) || c->max_recipients == 0 || c->max_recipients > 1000;
	else if (!strcmp(key, "max-sessions"))
		bad = parse_uint(v, &c->max_sessions) || c->max_sessions == 0 || c->max_sessions > 10000;
	else if (!strcmp(key, "max-sessions-per-client"))
		bad = parse_uint(v, &c->max_sessions_per_client) || c->max_sessions_per_client == 0;
	else if (!strcmp(key, "rate-per-client"))
		bad = parse_uint(v, &c->rate_per_client);
	else if (!strcmp(key, "quota-account-day"))
		bad = parse_size(v, &c->quota_account_day);
	else if (!strcmp(key, "quota-total-day"))
		bad = parse_size(v, &c->quota_total_day);
	else if (!strcmp(key, "disk-reserve"))
		bad = parse_size(v, &c->disk_reserve);
	else if (!strcmp(key, "seal-size"))
		bad = parse_size(v, &c->seal_bytes) || c->seal_bytes < (1u << 16);
	else if (!strcmp(key, "seal-seconds"))
		bad = parse_uint(v, &c->seal_seconds) || c->seal_seconds == 0;
	else if (!strcmp(key, "idle-timeout"))
		bad = parse_uint(v, &c->idle_timeout) || c->idle_timeout == 0;
	else if (!strcmp(key, "pull-every"))
		bad = arcad_parse_duration(v, &c->pull_every) || (c->pull_every > 0 && c->pull_every < 10);
	else if (!strcmp(key, "pull-host"))
		bad = set_str(&c->pull_host, v);
	else if (!strcmp(key, "pull-port"))
		bad = parse_uint(v, &c->pull_port) || c->pull_port == 0 || c->pull_port > 65535;
	else if (!strcmp(key, "pull-tls"))
		bad = (strcmp(v, "none") && strcmp(v, "tls") && strcmp(v, "starttls")) || set_str(&c->pull_tls, v);
	else if (!strcmp(key, "pull-ca-file"))
		bad = set_str(&c->pull_ca_file, v);
	else if (!strcmp(key, "pull-master-user"))
		bad = set_str(&c->pull_master_user, v);
	else if (!strcmp(key, "pull-separator"))
		bad = strlen(v) != 1 || set_str(&c->pull_separator, v);
	else if (!strcmp(key, "pull-password-file"))
		bad = set_str(&c->pull_password_file, v);
	else if (!strcmp(key, "pull-credentials"))
		bad = set_str(&c->pull_credentials, v);
	else if (!strcmp(key, "pull-accounts-from"))
		bad = set_str(&c->pull_accounts_from, v);
	else if (!strcmp(key, "pull-user"))
		bad = set_str(&c->pull_user, v);
	else if (!strcmp(key, "pull-sieve-port"))
		bad = parse_uint(v, &c->pull_sieve_port) || c->pull_sieve_port > 65535;
	else if (!strcmp(key, "pull-parallel"))
		bad = parse_uint(v, &c->pull_parallel) || c->pull_parallel == 0 || c->pull_parallel > 256;
	else if (!strcmp(key, "pull-timeout"))
		bad = arcad_parse_duration(v, &c->pull_timeout) || c->pull_timeout == 0 || c->pull_timeout > 3600;
	else if (!strcmp(key, "arca"))
		bad = set_str(&c->arca, v);
	else if (!strcmp(key, "alarm-exec"))
		bad = set_str(&c->alarm_exec, v);
	else if (!strcmp(key, "alarm-share"))
		bad = parse_uint(v, &c->alarm_share) || c->alarm_share > 100;
	else if (!strcmp(key, "alarm-min"))
		bad = parse_uint(v, &c->alarm_min);
	else if (!strcmp(key, "alarm-uidvalidity"))
		bad = parse_uint(v, &c->alarm_uidvalidity);
	else if (!strcmp(key, "journal-silence"))
		bad = arcad_parse_duration(v, &c->journal_silence);
	else if (!strcmp(key, "foreground"))
		bad = parse_bool(v, &c->foreground);
	else if (!strcmp(key, "syslog"))
		bad = parse_bool(v, &c->syslog);
	else
		return seterr(errbuf, errlen, "unknown setting \"%s\"", key);
	if (bad)
		return seterr(errbuf, errlen, "bad value for %s: \"%s\"", key, v);
	return 0;
}

struct ini_ctx {
	struct arcad_config *c;
	char *errbuf;
	size_t errlen;
	bool failed;
};

static int ini_one(void *user, const char *section, const char *name, const char *value)
{
	struct ini_ctx *x = user;
	/* [pull] host = ... is [arcad] pull-host = ... */
	char key[128];
	if (strcmp(section, "pull") == 0 && strlen(name) < sizeof(key) - 5) {
		snprintf(key, sizeof(key), "pull-%s", name);
		name = key;
	} else if (strcmp(section, "arcad") != 0) {
		seterr(x->errbuf, x->errlen, "unknown section [%s]", section);
		x->failed = true;
		return 0;
	}
	if (arcad_config_set(x->c, name, value, x->errbuf, x->errlen) != 0) {
		x->failed = true;
		return 0;
	}
	return 1;
}

int arcad_config_file(struct arcad_config *c, const char *path, char *errbuf, size_t errlen)
{
	struct ini_ctx x = { c, errbuf, errlen, false };
	int line = ini_parse(path, ini_one, &x);
	if (line < 0)
		return seterr(errbuf, errlen, "cannot read %s: %s", path, strerror(errno));
	if (x.failed || line > 0) {
		char why[256];
		snprintf(why, sizeof(why), "%s", x.failed ? errbuf : "syntax error");
		return seterr(errbuf, errlen, "%s, line %d: %s", path, line, why);
	}
	return 0;
}

/* ---- logging ---- */

static const char *log_role = "arcad";
static bool log_syslog;

void arcad_log_init(const char *role, bool use_syslog)
{
	log_role = role;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog("arcad", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void arcad_log(int prio, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_syslog)
		syslog(prio, "%s: %s", log_role, msg);
	/* one write per line, so lines of the two processes never mix */
	char line[1200], ts[40];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	int n = snprintf(line, sizeof(line), "%s.%03ldZ arcad[%d] %s: %s\n", ts, now.tv_nsec / 1000000,
			 (int)getpid(), log_role, msg);
	if (n > 0)
		(void)!write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}
