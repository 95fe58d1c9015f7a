/*
 * restore_imap.h - what the parts of `arca restore imap` share
 * (docs/restore-imap.md): cmd_restore_imap.c has the command, the
 * snapshot's folders and messages and the workers of --jobs;
 * restore_imap_journal.c the journaled mail; restore_imap_report.c the
 * report of an account.
 */
#ifndef ARCA_RESTORE_IMAP_H
#define ARCA_RESTORE_IMAP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "idset.h"
#include "imap_append.h"
#include "imap_conn.h"
#include "imap_opts.h"
#include "journal.h"
#include "managesieve.h"
#include "repo.h"
#include "snapshot.h"

/* Bytes of literals in one MULTIAPPEND: past this a batch is sent. */
#define BATCH_BYTES (16u << 20)

struct opts {
	const char *repo, *keyfile, *host, *ca_file, *master, *pwfile, *credfile;
	const char *snapshot, *at, *folder, *to_account, *sieve_tls;
	long port, sieve_port, timeout, jobs;
	unsigned long uid;
	bool has_uid, all, insecure, json, no_journal;
	uint64_t journal_until;         /* --at, or all of the journal */
	const char *overlay_path;       /* --overlay */
	int tls;
	char sep;
	size_t batch;
};

struct folder_report {
	const char *name;
	bool created, journal;          /* journal: its journaled mail */
	uint64_t appended, already, failed;
};

struct run {
	const struct opts *o;
	struct repo *r;
	char *password;
	struct creds creds;
	int spool;                      /* memfd: the batch's decrypted messages */
	pthread_mutex_t *out_lock;      /* --jobs: one account's report at a time
					 * (robust: a worker dying with it held
					 * does not stop the others) */
	const struct strv *accounts;    /* --jobs: the workers' share */
	size_t *group_of;               /* --jobs: account indexes, those of one
					 * mailbox (names equal but for case: the
					 * server takes them for one) next to each other */
	size_t *group_start;            /* group g: group_of[group_start[g] .. group_start[g+1]) */
	/* per account */
	const char *account, *target;
	struct imap_conn *c;
	struct iapp_caps caps;
	struct iapp_io io;
	struct iapp_folders listed;
	struct folder_report *reports;
	size_t nreports;
	struct strv failed;             /* "FOLDER uid N: why" */
	struct strv warnings;
	uint64_t appended, already, created, subscribed;
	/* journaled mail: keys of the snapshot's messages from keys_from on
	 * (a journaled copy of one of them is not appended again) */
	struct idset *keys;
	int64_t keys_from;
	struct idset jkeys;             /* journaled mail stored in the folder
					 * being written (restore_imap_journal.c) */
	uint64_t j_appended, j_already;
	struct msieve_put_result sieve;
	bool sieve_done;
	const struct overlay *overlay;  /* --overlay (NULL: none) */
	uint64_t snap_time_ns;          /* the account's snapshot's time */
	uint64_t overlay_msgs;          /* messages given serve-imap's flags */
};

struct slot {
	struct iapp_msg m;
	const struct snap_msg *sm;      /* or, for journaled mail: */
	const struct journal_rec *jr;
	bool has_key;                   /* key: the message key, kept in
					 * u->keys (u->jkeys for journaled
					 * mail) once the server has it */
	uint8_t key[ARCA_ID_LEN];
	const char *kw[SNAP_KEYWORDS_MAX];
};

/* A line for the report (cut at 1 KiB). */
void rimap_note(struct strv *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The memory spool cut back to `to` bytes, written from there on. */
int rimap_spool_reset(struct run *u, uint64_t to, struct arca_err *err);
/* Sends the batch (MULTIAPPEND, or one APPEND each when refused); f names
 * snapshot messages in failures (NULL for journaled ones). */
int rimap_flush_batch(struct run *u, const struct snap_folder *f, const char *wire,
		      struct slot *b, size_t n, struct folder_report *rep, struct arca_err *err);
/* A message the server now holds: its key into u->keys (u->jkeys). */
int rimap_slot_key_keep(struct run *u, const struct slot *s, struct arca_err *err);
/* SUBSCRIBE (a folder that does not exist made, subscribed, deleted). */
int rimap_subscribe(struct run *u, const char *name, const char *wire, bool exists,
		    struct arca_err *err);
int rimap_cmp_i64(const void *a, const void *b);
/* "the message journaled at TIME (N bytes)" */
void rimap_journal_name(const struct journal_rec *jr, char *buf, size_t cap);

/* restore_imap_journal.c: the journaled messages recs[0..n) into INBOX
 * (mail in) and the Sent folder (mail out), after the snapshot's folders
 * (s may be NULL: an account known only from the journal). */
int rimap_restore_journal(struct run *u, const struct snapshot *s, const struct journal_rec *recs,
			  size_t n, struct arca_err *err);

/* restore_imap_report.c: the account's lines (text or JSON), written
 * whole under u->out_lock when workers run. */
void rimap_report(struct run *u, const struct snap_info *si, int rc, const struct arca_err *err);

#endif
