/*
 * journal_restore.h - bring journaled mail back with a restore.
 *
 * A restore of an account adds every message arcad journaled for it that
 * arrived after the snapshot (minus JOURNAL_RESTORE_SLACK, as delivery and
 * snapshot overlap) and that the snapshot does not already hold: mail in to
 * INBOX, unseen; mail out (sent by the account) to its Sent folder, seen.
 * "Already holds" is decided by a message key: the Message-ID header when
 * there is one, else a hash of the body with line ends made LF (the mail
 * server stores LF and prepends its own headers; the journal copy has CRLF).
 */
#ifndef ARCA_JOURNAL_RESTORE_H
#define ARCA_JOURNAL_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "buf.h"
#include "crypto.h"
#include "idset.h"
#include "journal.h"

struct repo;

#define JOURNAL_RESTORE_SLACK_NS (600ull * 1000000000ull)

/* The key of a message's bytes (LF or CRLF line ends). */
void mkey_of(const uint8_t *p, size_t len, uint8_t key_r[ARCA_ID_LEN]);
/* Add the key of the file at path (read whole; the caller just wrote it). */
int mkey_add_file(struct idset *keys, const char *path, struct arca_err *err);

/* The records to consider (arrived at or after since_ns), oldest first;
 * *recs_r is malloc'd. */
int journal_restore_collect(struct repo *r, const char *account, uint64_t since_ns,
			    struct journal_rec **recs_r, size_t *n_r, struct arca_err *err);

/* The bytes a journaled message is restored as: line ends made LF, and for
 * mail in Return-Path and Delivered-To (rcpt, or when NULL the record's
 * account) first, as Dovecot's LMTP writes them (into out).  key_r gets its
 * message key; when that key is in `seen` (may be NULL) *skip_r is set and
 * out is left empty. */
int journal_restore_render(struct repo *r, const struct journal_rec *rec, const char *rcpt,
			   const struct idset *seen, struct abuf *out, uint8_t key_r[ARCA_ID_LEN], bool *skip_r,
			   struct arca_err *err);

/* Writes one journaled message into the Maildir folder `fdir` (its new/
 * for mail in, cur/ with the S flag for mail out), line ends made LF and
 * Return-Path and Delivered-To headers first, as Dovecot's LMTP writes them;
 * its date is the arrival time.  Skips it (*added_r false) when its key is
 * in `snap` (the snapshot has it) or in `added` (this run wrote it into
 * that folder already); adds the key to `added` once written.  One `added`
 * per direction: mail to oneself goes to INBOX and to Sent. */
int journal_restore_message(struct repo *r, const struct journal_rec *rec, const char *fdir,
			    int owner_uid, int owner_gid, const struct idset *snap, struct idset *added,
			    bool *added_r, struct arca_err *err);

#endif
