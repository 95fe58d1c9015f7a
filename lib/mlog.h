/*
 * mlog.h - the repository log: append-only, hash-chained, Merkle, signed.
 *
 * Every sealed pack and every snapshot is recorded as one log entry, a
 * write-once file "log/<seq / 4096 as 12 hex>/<seq as 16 hex>" (docs/format/log.md).
 * Each entry carries the hash of the previous entry file (the chain), the
 * RFC 6962 Merkle tree head over all entries so far (so consistency proofs
 * can be served later without a format change), and an Ed25519 signature.
 * Appending claims the next sequence number with a write-once put: when two
 * writers race, the loser reads the winner's entry and tries the next number,
 * so no lock is needed.
 */
#ifndef ARCA_MLOG_H
#define ARCA_MLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "backend.h"
#include "buf.h"
#include "crypto.h"

#define MLOG_MAGIC "ARCALOG1"
#define MLOG_VERSION 1
#define MLOG_PAYLOAD_MAX (1u << 20)
#define MLOG_SIG_NAMESPACE "arca-log"

enum mlog_kind {
	MLOG_INIT = 0,       /* first entry: hash of the config file */
	MLOG_PACK = 1,       /* a sealed pack: hash, size, object count */
	MLOG_SNAPSHOT = 2,   /* a snapshot: root id, account, time, counts */
	MLOG_DICT = 3,       /* a zstd dictionary: its object id and zstd id */
	MLOG_JOURNAL = 4,    /* a sealed journal segment: pack record + commit marks */
	MLOG_ALARM = 5,      /* an alarm raised (docs/alarms.md) */
	MLOG_ALARM_CLEAR = 6, /* an alarm cleared by an admin with the restore key */
};

/* A parsed entry; payload points into the caller's buffer. */
struct mlog_entry {
	uint64_t seq;
	uint64_t time_ns;
	uint8_t kind;
	const uint8_t *payload;
	size_t payload_len;
	uint8_t prev_hash[ARCA_ID_LEN];
	uint8_t tree_root[ARCA_ID_LEN];
	uint8_t leaf_hash[ARCA_ID_LEN];
	uint8_t hash[ARCA_ID_LEN];      /* of the whole entry file */
};

/* Everything needed to check or append the next entry. */
struct mlog_state {
	uint64_t count;                        /* entries so far */
	uint8_t last_hash[ARCA_ID_LEN];        /* zero when count == 0 */
	uint8_t frontier[64][ARCA_ID_LEN];     /* perfect subtree roots, one per set bit of count, largest first */
};

void mlog_state_init(struct mlog_state *st);
/* Serialized form, for caching in the index. */
int mlog_state_encode(const struct mlog_state *st, struct abuf *out);
int mlog_state_decode(const uint8_t *p, size_t len, struct mlog_state *st);
/* Merkle tree head over the leaves in st (zero hash for an empty log). */
void mlog_state_root(const struct mlog_state *st, uint8_t root_r[ARCA_ID_LEN]);

void mlog_name(uint64_t seq, char out[48]);

/* Parse and check one entry file: magic, version, layout, signature. */
int mlog_parse(const uint8_t *data, size_t len,
	       const uint8_t sign_pk[ARCA_SIGN_PK_LEN], struct mlog_entry *e,
	       struct arca_err *err);

/* Check that e is the next entry after st (sequence, chain, Merkle head)
 * and advance st past it. */
int mlog_state_apply(struct mlog_state *st, const struct mlog_entry *e,
		     struct arca_err *err);

/* Read entry seq (ARCA_ENOENT if it does not exist yet); raw bytes in buf. */
int mlog_read(struct backend *be, uint64_t seq,
	      const uint8_t sign_pk[ARCA_SIGN_PK_LEN], struct abuf *buf,
	      struct mlog_entry *e, struct arca_err *err);

/*
 * Append an entry after st.  If another writer took the sequence number, the
 * entries it wrote are read, checked and passed to on_foreign (which may be
 * NULL), and the append is retried.  On success st includes the new entry
 * and *seq_r is its number.
 */
int mlog_append(struct backend *be, struct mlog_state *st,
		const struct arca_ingest_keys *ik,
		const uint8_t sign_pk[ARCA_SIGN_PK_LEN], uint8_t kind,
		const uint8_t *payload, size_t len, uint64_t time_ns,
		int (*on_foreign)(const struct mlog_entry *e, void *ctx), void *ctx,
		uint64_t *seq_r, struct arca_err *err);

#endif
