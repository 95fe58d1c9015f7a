/*
 * alarm.h - standing alarms: signed log entries that say "something looks
 * like an attack" (docs/alarms.md).
 *
 * An alarm is an MLOG_ALARM log entry: kind, account ("" for the whole
 * server), a line of text, and the snapshots it marks as suspect (account
 * and root id; logged before those snapshots, so a crash can't leave a
 * suspect snapshot unmarked).  It stands until an MLOG_ALARM_CLEAR entry
 * names it; clearing needs the restore key, which the vault host does not
 * hold.  While any alarm stands nothing recorded before it may expire
 * (prune, when it exists, must check alarm_any_standing).  Log payloads
 * are plaintext: `arca status` needs no key.
 */
#ifndef ARCA_ALARM_H
#define ARCA_ALARM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "buf.h"
#include "crypto.h"
#include "idx.h"
#include "repo.h"
#include "snapshot.h"

enum alarm_kind {
	ALARM_MASS_DELETION = 1,        /* an account lost more than the share of its messages */
	ALARM_FOLDERS_LOST = 2,         /* ... or of its folders */
	ALARM_UIDVALIDITY = 3,          /* many accounts changed UIDVALIDITY at once */
	ALARM_SERVER_EMPTIED = 4,       /* most accounts emptied or gone */
	ALARM_JOURNAL_SILENT = 5,       /* no journaled mail for longer than allowed */
	ALARM_ACCOUNT_GONE = 6,         /* an account pulled before refuses login */
	ALARM_NETWORK_PROCESS = 7,      /* the pull's network process broke the protocol */
	ALARM_KIND_MAX = 7,
};
const char *alarm_kind_name(uint8_t kind);

#define ALARM_TEXT_MAX 1024
#define ALARM_HOOK_WAIT 10            /* seconds a hook is waited for */
#define ALARM_SUSPECTS_MAX 100000

struct alarm_suspect {
	char *account;
	uint8_t root[ARCA_ID_LEN];
};

struct alarm {
	uint64_t seq;                   /* of the log entry */
	uint64_t time_ns;
	uint8_t kind;
	char *account;                  /* "" for the whole server */
	char *text;
	struct alarm_suspect *suspects;
	size_t nsuspects;
	bool cleared;
	uint64_t cleared_seq, cleared_ns;
	char *cleared_reason;           /* NULL unless cleared */
};
void alarm_release(struct alarm *a);
void alarms_free(struct alarm *v, size_t n);

/* Payloads (docs/alarms.md); decode is strict and fuzzed. */
int alarm_encode(const struct alarm *a, struct abuf *out);
int alarm_decode(const uint8_t *p, size_t len, struct alarm *a);
int alarm_clear_encode(uint64_t alarm_seq, const char *reason, struct abuf *out);
int alarm_clear_decode(const uint8_t *p, size_t len, uint64_t *alarm_seq_r, char **reason_r);

/* Log an alarm (a->seq set), and when `exec` is given run it with
 * `sh -c exec`, the alarm in ARCA_ALARM_KIND/_ACCOUNT/_TEXT/_SEQ and a
 * readable report on stdin.  A hook that fails to start or exits non-zero
 * fills hook_err (a warning: the alarm is logged all the same). */
int alarm_raise(struct repo *r, struct alarm *a, const char *exec, struct arca_err *hook_err,
		struct arca_err *err);
/* Clear a standing alarm (the caller checked the restore key). */
int alarm_clear(struct repo *r, uint64_t alarm_seq, const char *reason, struct arca_err *err);
/* Does any alarm stand?  (Also true when the index can't be read.) */
bool alarm_any_standing(struct repo *r);
/* Every alarm, oldest first; standing_only drops cleared ones. */
int alarm_list(struct repo *r, bool standing_only, struct alarm **v_r, size_t *n_r,
	       struct arca_err *err);

/* ---- the pull's checks ---- */

struct alarm_policy {
	unsigned share_pct;             /* an account losing more than this % (20) */
	uint64_t min_messages;          /* ... and at least this many messages (10) */
	uint64_t min_folders;           /* folders: at least this many lost (2) */
	uint64_t uidvalidity_accounts;  /* this many accounts with a new UIDVALIDITY (3) */
	unsigned server_share_pct;      /* this % of accounts emptied/gone: the server (50) */
	uint64_t server_min_accounts;   /* ... of at least this many accounts (3) */
};
void alarm_policy_default(struct alarm_policy *p);

/* What one account's pull found (pull.h's result, reduced). */
struct alarm_pull_view {
	const char *account;
	const uint8_t *root;            /* the staged snapshot, NULL if none */
	bool had_previous, gone;
	uint64_t prev_messages, prev_folders;
	uint64_t lost_messages, lost_folders, uidvalidity_changed;
};

/* Who hears of an alarm once it is logged. */
struct alarm_report {
	const char *exec;               /* hook command, or NULL */
	void (*raised)(void *ctx, const struct alarm *a, const char *hook_warning);
	void *ctx;
};

/* Check a batch of pulled accounts; log the alarms it raises, marking the
 * snapshots concerned as suspect, and tell rep about each. */
int alarm_check_pull(struct repo *r, const struct alarm_policy *p,
		     const struct alarm_pull_view *v, size_t n, const struct alarm_report *rep,
		     struct arca_err *err);

/* The index side (repo.c applies log entries through these). */
int alarm_index_entry(struct idx_txn *t, uint8_t kind, uint64_t seq, uint64_t time_ns,
		      const uint8_t *payload, size_t len);

#endif
