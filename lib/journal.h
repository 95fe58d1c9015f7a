/*
 * journal.h - the journal: every message the mail server hands the vault
 * (arcad's LMTP listener), stored before it is acknowledged.
 *
 * Format (docs/format/journal.md): journaled messages are objects in
 * journal segments, packs written in the open in REPO/journal/ with a commit
 * mark after each group of messages.  A mark's payload lists the journal
 * records (plaintext: account, arrival time, direction, content id, size,
 * envelope id) of the messages it commits; the envelope itself (sender,
 * every recipient, client) is an encrypted OBJ_JOURNAL object.  A sealed
 * segment is logged as MLOG_JOURNAL with every mark's payload, and the
 * index keeps the records by account and time.
 *
 * Writing (struct journal) is for one process at a time: journal_open takes
 * REPO/journal/lock.  Reading (journal_list) works beside it.
 */
#ifndef ARCA_JOURNAL_H
#define ARCA_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "buf.h"
#include "crypto.h"
#include "idx.h"

struct repo;

#define JOURNAL_SUBDIR "journal"
#define JOURNAL_REC_VERSION 1
#define JOURNAL_REC_ACCOUNT_MAX 512       /* bytes of an account name */
#define JOURNAL_ADDR_MAX 1024         /* bytes of a sender, recipient, client, helo */
#define JOURNAL_RCPT_MAX 1000         /* recipients of one message */
/* A segment is sealed past these, whichever comes first. */
#define JOURNAL_SEAL_BYTES (16u << 20)
#define JOURNAL_MARKS_MAX (768u << 10)    /* stays under MLOG_PAYLOAD_MAX */

enum journal_direction {
	JOURNAL_DIR_IN = 1,     /* delivered to the account */
	JOURNAL_DIR_OUT = 2,    /* sent by the account */
};

/* One journaled message as seen by one account (plaintext). */
struct journal_rec {
	uint64_t time_ns;               /* arrival at the vault */
	uint8_t direction;
	uint8_t content_type;           /* OBJ_BLOB or OBJ_CHUNKLIST */
	uint8_t content_id[ARCA_ID_LEN];
	uint8_t envelope_id[ARCA_ID_LEN];
	uint64_t size;                  /* message bytes */
	char account[JOURNAL_REC_ACCOUNT_MAX + 1];
	uint64_t seq;                   /* log entry that holds it (from the index) */
};

int journal_rec_encode(const struct journal_rec *r, struct abuf *out);
/* Strict: version, direction, type and account checked. */
int journal_rec_decode(struct adec *d, struct journal_rec *r);

/* The marks of an MLOG_JOURNAL entry: each u32le length + payload, a
 * payload being u32le count + records.  check: 0 or ARCA_ECORRUPT. */
int journal_marks_check(const uint8_t *p, size_t len);
/* Record every record of `p` in the index under log entry `seq`. */
int journal_marks_index(struct idx_txn *t, uint64_t seq, const uint8_t *p, size_t len);

/* The envelope, stored encrypted as an OBJ_JOURNAL object. */
struct journal_rcpt {
	char *address;                  /* as given in RCPT TO */
	char *account;                  /* what it maps to */
	uint8_t direction;
};
struct journal_envelope {
	uint64_t time_ns;
	char *client;                   /* peer address */
	char *helo;
	char *mail_from;                /* "" for the null sender */
	uint8_t flags;                  /* JOURNAL_F_* */
	struct journal_rcpt *rcpts;
	size_t nrcpt;
	uint8_t content_type;
	uint8_t content_id[ARCA_ID_LEN];
	uint64_t size;
};
#define JOURNAL_F_SMTPUTF8 1
#define JOURNAL_F_8BITMIME 2
#define JOURNAL_F_BINARYMIME 4

int journal_envelope_encode(const struct journal_envelope *e, struct abuf *out);
int journal_envelope_decode(const uint8_t *p, size_t len, struct journal_envelope *e);
void journal_envelope_release(struct journal_envelope *e);

/* ---- writing (one process: arcad's store) ---- */
struct journal;
struct journal_opts {
	uint64_t seal_bytes;            /* 0: JOURNAL_SEAL_BYTES */
	uint64_t seal_after_ns;         /* seal a segment this old (0: 60 s) */
};
struct journal_recovery {
	unsigned segments;              /* leftover segments sealed */
	uint64_t records;               /* journal records they held */
	uint64_t bytes_dropped;         /* never-acknowledged tails cut */
};
/* `r` is open for writing and stays owned by the caller (and used only by
 * the journal from now on).  Takes the lock (ARCA_EBUSY if another process
 * holds it) and seals every segment a previous run left. */
int journal_open(struct repo *r, const struct journal_opts *o, struct journal **j_r,
		 struct journal_recovery *rec_r, struct arca_err *err);
/* Seals the open segment, releases the lock. */
int journal_close(struct journal *j, struct arca_err *err);
/* Store a message and its envelope; one record per recipient.  Nothing is
 * durable until journal_commit returns 0. */
int journal_add(struct journal *j, const struct journal_envelope *env,
		const void *body, size_t len, struct arca_err *err);
/* Make everything added since the last commit durable (one fdatasync).  On
 * failure nothing uncommitted may be acknowledged, and the journal is
 * unhealthy until journal_heal succeeds. */
int journal_commit(struct journal *j, struct arca_err *err);
/* Seal the segment if it is big or old enough (or `force`). */
int journal_maybe_seal(struct journal *j, bool force, struct arca_err *err);
bool journal_healthy(const struct journal *j);
/* After a failure: seal what the broken segment committed and start over. */
int journal_heal(struct journal *j, struct arca_err *err);
/* Messages added but not committed yet. */
size_t journal_pending(const struct journal *j);

/* ---- reading ---- */
/* Every record of `account` (all accounts if NULL) that arrived at or after
 * since_ns, in (account, time) order.  fn returning non-zero stops. */
int journal_list(struct repo *r, const char *account, uint64_t since_ns,
		 int (*fn)(const struct journal_rec *rec, void *ctx), void *ctx,
		 struct arca_err *err);

#endif
