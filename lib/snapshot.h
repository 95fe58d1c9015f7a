/*
 * snapshot.h - the state of one account at one moment.
 *
 * A snapshot is a tree of objects (docs/format/objects.md): a SNAPSHOT root
 * with the folder list (names, subscriptions, special-use, UIDVALIDITY, next
 * UID, HIGHESTMODSEQ, keyword tables) and, per folder, FOLDER_PAGE objects of
 * message records.  Pages are cut where a hash of the message's file name
 * says so, so one changed message rewrites one page (~128 records), never a
 * whole large folder; unchanged pages are the same objects and dedupe away.
 */
#ifndef ARCA_SNAPSHOT_H
#define ARCA_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "buf.h"
#include "crypto.h"
#include "repo.h"

#define SNAP_KEYWORDS_MAX 64          /* per folder */
#define SNAP_FOLDERS_MAX 100000
#define SNAP_MESSAGES_MAX 50000000
#define SNAP_NAME_MAX 4096            /* account, folder and subscription names */
#define SNAP_FIELD_MAX 16384          /* dovecot-uidlist fields, file base names */
#define SNAP_UIDLIST_INFO_MAX 255     /* snap_msg.uidlist_info: part of a file name */
#define SNAP_ACCOUNT_MAX 1024         /* also the log payload's limit */

enum snap_folder_attr {
	SNAP_FOLDER_SELECTABLE = 1,     /* holds messages (not only a parent) */
	SNAP_FOLDER_SUBSCRIBED = 2,
};

struct snap_msg {
	uint32_t uid;                   /* 0: not yet given a UID by the server */
	uint64_t modseq;                /* 0: unknown */
	uint8_t content_type;           /* OBJ_BLOB or OBJ_CHUNKLIST */
	uint8_t content_id[ARCA_ID_LEN];
	uint64_t size;
	int64_t date_sec;               /* INTERNALDATE (Maildir: mtime) */
	int32_t date_nsec;
	uint32_t flags;                 /* bit (c - 'A') per Maildir flag letter, and
					   SNAP_MSG_NO_INFO */
	uint64_t keywords;              /* bit i: the folder's keyword i */
	char *base;                     /* Maildir file base name, "" if none */
	char *uidlist_ext;              /* dovecot-uidlist extension fields, "" */
	bool in_new;                    /* was in new/ (not yet seen by a client) */
	char *uidlist_info;             /* the rest of the file name its
					   dovecot-uidlist record gave after the
					   base (":2,S"), "" (or NULL) when the
					   record gave the base only */
};

/* In snap_msg.flags: the Maildir file name had no ":2," part (written back
 * as the bare base name; Dovecot adds the info when it sees the file). */
#define SNAP_MSG_NO_INFO (UINT32_C(1) << 26)
/* On the wire only (FOLDER_PAGE flags bit 27): a uidlist_info follows. */
#define SNAP_MSG_WIRE_UIDLIST_INFO (UINT64_C(1) << 27)

struct snap_page_ref {
	uint8_t id[ARCA_ID_LEN];
	uint64_t count;
};

struct snap_folder {
	char *name;                     /* UTF-8, '/' separated; "INBOX" */
	uint32_t attrs;
	char *special_use;              /* "\\Sent" etc. or "" */
	uint32_t uidvalidity;
	uint32_t nextuid;
	uint64_t highestmodseq;
	char *guid;                     /* hex or "" */
	char *uidlist_extra;            /* other dovecot-uidlist header fields */
	char *keywords[SNAP_KEYWORDS_MAX];
	size_t nkeywords;
	uint64_t message_count;         /* as recorded; msgs may not be loaded */
	uint64_t bytes;
	struct snap_page_ref *pages;
	size_t npages;
	bool pages_reused;              /* pages taken over unchanged (ingest cache) */
	struct snap_msg *msgs;          /* NULL until loaded or added */
	size_t nmsgs, msgs_cap;
};

/* A Sieve script of the account (pulled over ManageSieve). */
#define SNAP_SIEVE_MAX 1024           /* scripts per account */
#define SNAP_SIEVE_NAME_MAX 1024
struct snap_sieve {
	char *name;                     /* UTF-8 */
	bool active;
	uint8_t content_type;           /* OBJ_BLOB or OBJ_CHUNKLIST */
	uint8_t content_id[ARCA_ID_LEN];
	uint64_t size;
};

struct snapshot {
	char *account;
	uint64_t time_ns;
	char *source;                   /* "maildir", "imap", ... */
	uint8_t layout;                 /* enum maildir_layout of the source */
	char **subscriptions;           /* the raw subscription list */
	size_t nsubscriptions;
	struct snap_folder *folders;
	size_t nfolders, folders_cap;
	bool has_sieve;                 /* Sieve scripts were captured (root v2) */
	struct snap_sieve *sieve;
	size_t nsieve;
};

struct snapshot *snapshot_new(const char *account, const char *source);
void snapshot_free(struct snapshot *s);
/* Appends a folder (name copied); returns it or NULL on ENOMEM. */
struct snap_folder *snapshot_add_folder(struct snapshot *s, const char *name);
int snapshot_add_subscription(struct snapshot *s, const char *name);
/* Appends a message (strings copied). */
int snap_folder_add_msg(struct snap_folder *f, const struct snap_msg *m);
/* Frees a message's strings (not the struct). */
void snap_msg_release(struct snap_msg *m);
/* Drops the folder's loaded message records (bounded memory per folder);
 * message_count and pages stay. */
void snap_folder_drop_msgs(struct snap_folder *f);
/* Index of keyword `name` in the folder's table, adding it; -1 when full. */
int snap_folder_keyword(struct snap_folder *f, const char *name);

/* Add a Sieve script (name copied); sets has_sieve. */
int snapshot_add_sieve(struct snapshot *s, const struct snap_sieve *sv);
/* Does the snapshot hold a Sieve script of that name? */
bool snapshot_has_sieve_named(const struct snapshot *s, const char *name);

/* Store the pages of every folder not marked pages_reused, then mark them
 * so (snapshot_store won't redo them). */
int snapshot_store_pages(struct repo *r, struct snapshot *s, struct arca_err *err);
/* BLAKE2b-256 of the root's encoding with time 0: two snapshots of an
 * account with the same digest hold the same state (pages stored first). */
int snapshot_digest(const struct snapshot *s, uint8_t out[ARCA_ID_LEN]);

/* Store pages and root; *root_r is the snapshot's id. Fills s totals. */
int snapshot_store(struct repo *r, struct snapshot *s, uint8_t root_r[ARCA_ID_LEN],
		   uint64_t *messages_r, uint64_t *bytes_r, struct arca_err *err);
/* Read a root (pages not loaded). */
int snapshot_load(struct repo *r, const uint8_t root[ARCA_ID_LEN],
		  struct snapshot **s_r, struct arca_err *err);
/* Load a folder's message records. */
int snapshot_load_msgs(struct repo *r, struct snap_folder *f, struct arca_err *err);

/* One folder's record without its messages (the form inside the root),
 * for the ingest cache of unchanged folders; decode appends to s. */
int snap_folder_encode(const struct snap_folder *f, struct abuf *out);
int snap_folder_decode(const uint8_t *p, size_t len, struct snapshot *s);

/* A folder record with all its message records (msgs loaded), for caches
 * that must rebuild the folder without reading its pages (pull's state);
 * decode appends the folder, messages loaded, to s. */
int snap_folder_encode_full(const struct snap_folder *f, struct abuf *out);
int snap_folder_decode_full(const uint8_t *p, size_t len, struct snapshot *s);
/* The root's encoding (as stored), e.g. to remember the last one. */
int snapshot_encode_root(const struct snapshot *s, struct abuf *out);

/* Codecs on bytes, for the fuzzers. */
int snapshot_decode_root(const uint8_t *p, size_t len, struct snapshot **s_r);
int snapshot_decode_page(const uint8_t *p, size_t len, struct snap_folder *f);

#endif
