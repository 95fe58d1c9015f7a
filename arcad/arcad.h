/*
 * arcad.h - the vault daemon's settings and its processes.
 *
 *   arcad (parent)  = the store: opens the repository with the ingest key,
 *                     writes the journal, group-commits, answers per recipient
 *   listener (child)= LMTP on the network: no keys, no repository, dropped
 *                     privileges, chrooted; hands each message over a
 *                     socketpair (ipc.h)
 * The listener is forked before the repository is opened, so its memory
 * never held a key.
 */
#ifndef ARCAD_H
#define ARCAD_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#define ARCAD_LISTEN_MAX 8

struct arcad_config {
	char *repo;
	char *listen[ARCAD_LISTEN_MAX];   /* "ADDR:PORT", "[v6]:PORT" or "unix:PATH" */
	int nlisten;
	char *journal_domain;             /* default journal.invalid */
	char *user;                       /* the listener runs as this user */
	char *allow;                      /* client allow-list: CIDRs, comma-separated */
	char *hostname;                   /* in the greeting */
	uint64_t max_message_size;        /* bytes (SIZE) */
	unsigned max_recipients;          /* per message */
	unsigned max_sessions;            /* at once, all clients */
	unsigned max_sessions_per_client;
	unsigned rate_per_client;         /* messages per minute per client address */
	uint64_t quota_account_day;       /* bytes journaled per account per UTC day; 0: none */
	uint64_t quota_total_day;         /* bytes journaled per UTC day; 0: none */
	uint64_t disk_reserve;            /* free bytes kept on the repository's disk */
	uint64_t seal_bytes;              /* seal a journal segment this big */
	unsigned seal_seconds;            /* or this old */
	unsigned idle_timeout;            /* seconds a session may stay silent */
	bool foreground;
	bool syslog;
	char *pidfile;
	char *tls_cert;                   /* PEM chain: STARTTLS offered when set */
	char *tls_key;                    /* PEM private key */
	bool tls_required;                /* refuse MAIL before STARTTLS */
	/* scheduled pulls (arcad/puller.c runs `arca pull imap`) */
	unsigned pull_every;              /* seconds between pulls; 0: no pulls */
	char *pull_host, *pull_tls, *pull_ca_file, *pull_master_user, *pull_separator;
	char *pull_password_file, *pull_credentials, *pull_accounts_from, *pull_user;
	unsigned pull_port, pull_sieve_port, pull_parallel, pull_timeout;
	char *arca;                       /* the arca program (default: found beside arcad) */
	/* alarms */
	char *alarm_exec;                 /* hook for every alarm (sh -c) */
	unsigned alarm_share, alarm_min, alarm_uidvalidity;   /* 0: arca's defaults */
	unsigned journal_silence;         /* seconds without journaled mail: alarm; 0: never */
};

void arcad_config_defaults(struct arcad_config *c);
/* Reads an ini file (libinih): [arcad] keys named like the long options. */
int arcad_config_file(struct arcad_config *c, const char *path, char *errbuf, size_t errlen);
int arcad_config_set(struct arcad_config *c, const char *key, const char *value,
		     char *errbuf, size_t errlen);
void arcad_config_release(struct arcad_config *c);

/* Logging to stderr and/or syslog, with the process's role as prefix. */
void arcad_log_init(const char *role, bool use_syslog);
void arcad_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The store process (returns the exit status). */
int store_run(const struct arcad_config *c, int ipc_fd, volatile sig_atomic_t *stop);
/* The pull scheduler process (returns the exit status). */
int puller_run(const struct arcad_config *c, volatile sig_atomic_t *stop);
/* "90", "15m", "2h", "1d" -> seconds */
int arcad_parse_duration(const char *v, unsigned *out);
/* The listener process (returns the exit status). */
int listener_run(const struct arcad_config *c, const int *fds, int nfds, int ipc_fd,
		 volatile sig_atomic_t *stop);

#endif
