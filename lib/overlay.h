/*
 * overlay.h - flag changes made while `arca serve-imap` served the vault,
 * kept beside the repository and carried by a later restore to the rebuilt
 * mail server (docs/format/overlay.md).
 *
 * While the mail server is being rebuilt users read their mail from the
 * vault; what they mark read, flag or tag then must not be lost.  The
 * repository is never written by serve-imap (its history is append-only and
 * written by the ingest side), so the changes go into a separate file: an
 * append-only log of records, each one the new state of some messages of
 * one folder (account, folder name, UIDVALIDITY, UIDs: under one
 * UIDVALIDITY a UID names one message for good).  Records are encrypted and
 * authenticated with a key derived from the restore key, so only a holder
 * of the restore key can read or add one; a record altered, moved or
 * dropped from the middle fails the file.  Dropping records from the end
 * can't be told from a crash and is not detected.
 *
 * A record is durable (written, fdatasync'ed) before overlay_record()
 * returns; a crash part-way through one leaves a torn tail that the next
 * open cuts off (writable) or passes over (read-only), with a warning.
 *
 * Not thread-safe: the keeper calls it under its lock.
 */
#ifndef ARCA_OVERLAY_H
#define ARCA_OVERLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "crypto.h"
#include "snapshot.h"

#define OVL_KEYWORDS_MAX 64            /* per folder, = SNAP_KEYWORDS_MAX */
#define OVL_KEYWORD_MAX 255            /* bytes of one keyword */
#define OVL_ACCOUNT_MAX 1024
#define OVL_FOLDER_MAX 4096            /* = SNAP_NAME_MAX */
#define OVL_MSGS_PER_RECORD 65536
#define OVL_RECORD_MAX (2u << 20)      /* plaintext bytes of one record */
/* System flags: bit 0 \Seen, 1 \Answered, 2 \Flagged, 3 \Deleted,
 * 4 \Draft (the values of serve-imap's enum vv_flag). */
#define OVL_FLAGS_ALL 31u

/* One message's state as last changed through serve-imap. */
struct overlay_msg {
	uint32_t uid;
	uint32_t flags;                 /* system flag bits, OVL_FLAGS_ALL */
	uint64_t keywords;              /* bit i: keyword i of the record/folder */
	uint64_t modseq;                /* the MODSEQ the change was served with */
	uint64_t time_ns;               /* when (CLOCK_REALTIME) */
};

/* The overlay's state of one folder: messages by ascending UID. */
struct ovl_folder {
	struct ovl_folder *next;        /* hash chain */
	char *account, *name;
	uint32_t uidvalidity;
	char *keywords[OVL_KEYWORDS_MAX];
	size_t nkeywords;
	struct overlay_msg *msgs;
	size_t nmsgs, cap;
	uint64_t max_modseq;
};

struct overlay;

/* Open the overlay file at path.  writable: made (mode 0600) when missing,
 * locked against a second writer (ARCA_EBUSY), a torn tail cut off;
 * else it must exist and is only read.  The file must belong to rk's
 * repository (ARCA_EKEY otherwise).  A record that fails authentication
 * before the last is ARCA_ECORRUPT.  *warning (ARCA_ERR_MSG_MAX bytes) is
 * set to "" or to what was passed over (a torn tail). */
int overlay_open(const char *path, const struct arca_restore_key *rk, bool writable,
		 struct overlay **ov_r, char *warning, struct arca_err *err);
void overlay_free(struct overlay *ov);

/* The file may grow to at most max bytes (0: no limit): a record that
 * would pass it is refused with ARCA_ENOSPC (and the overlay stays
 * usable).  A client flipping a flag in a loop must not fill the disk. */
void overlay_set_max_bytes(struct overlay *ov, uint64_t max);
/* The same per account (the bytes of its records, 0: no limit): one
 * account can't use up the room all the others share. */
void overlay_set_account_max_bytes(struct overlay *ov, uint64_t max);
uint64_t overlay_bytes(const struct overlay *ov);

/* Make one change durable and add it to the state: the new state of
 * msgs[0..n) (UIDs strictly ascending, 1 <= n <= OVL_MSGS_PER_RECORD:
 * one record, so that a crash can only tear the last; keywords bits index kw)
 * of one folder, at time_ns.  Nothing is changed on failure; after a
 * failed write or sync every later call fails (ARCA_ESTATE): the file's
 * end is no longer known.  ARCA_ELIMIT: the folder would have more than
 * OVL_KEYWORDS_MAX keywords, or a field is over its limit. */
int overlay_record(struct overlay *ov, const char *account, const char *folder,
		   uint32_t uidvalidity, char *const *kw, size_t nkw,
		   const struct overlay_msg *msgs, size_t n, uint64_t time_ns,
		   struct arca_err *err);

/* The state of one folder, or NULL when the overlay has nothing for it. */
const struct ovl_folder *overlay_folder(const struct overlay *ov, const char *account,
					const char *folder, uint32_t uidvalidity);
/* The same by message: NULL when absent. */
const struct overlay_msg *ovl_folder_msg(const struct ovl_folder *f, uint32_t uid);

/* Every folder of the state, in no particular order; stops at the first
 * non-zero return of fn and returns it. */
int overlay_each_folder(const struct overlay *ov,
			int (*fn)(const struct ovl_folder *f, void *ctx), void *ctx);

/* Records and messages in the state (for reports). */
void overlay_counts(const struct overlay *ov, uint64_t *records_r, uint64_t *folders_r,
		    uint64_t *msgs_r);

/*
 * Carry the overlay into a loaded snapshot folder of `account`: every
 * message whose change is newer than the snapshot (time_ns after
 * snapshot_time_ns) gets the changed system flags (Maildir letters S R F T
 * D; other letters kept), keywords (names added to the folder's list) and
 * MODSEQ; the folder's HIGHESTMODSEQ is raised to the overlay's.  A
 * keyword that would make more than SNAP_KEYWORDS_MAX is left out and
 * counted in *dropped_kw_r.  *applied_r: messages changed.  Only
 * ARCA_ENOMEM fails.
 */
int overlay_apply(const struct overlay *ov, const char *account, uint64_t snapshot_time_ns,
		  struct snap_folder *sf, size_t *applied_r, size_t *dropped_kw_r);

/* One record's plaintext (for the fuzzer and the vectors): strict, every
 * field bounded; the decoded strings are owned by *r (overlay_rec_release). */
struct overlay_rec {
	uint64_t time_ns;
	char *account, *folder;
	uint32_t uidvalidity;
	char *kw[OVL_KEYWORDS_MAX];
	size_t nkw;
	struct overlay_msg *msgs;
	size_t n;
};
int overlay_rec_decode(const uint8_t *p, size_t len, struct overlay_rec *r);
int overlay_rec_encode(const struct overlay_rec *r, struct abuf *out);
void overlay_rec_release(struct overlay_rec *r);

#endif
