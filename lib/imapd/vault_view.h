/*
 * vault_view.h - what an IMAP session sees of the vault: one account's
 * folders and messages in one snapshot, read-only.
 *
 * The session (imapd_session.c) runs in the network-facing process, which
 * holds no key and can't open the repository: its view is a client of the
 * key-holding process over a socketpair (serve_client.c), which answers only
 * for the account whose login it checked itself.  The unit tests use an
 * in-memory view.
 *
 * Ownership: what a call returns through a const pointer belongs to the view
 * and stays valid until the next call of the same function or until the
 * view is freed; a struct vv_mailbox filled by open() belongs to the caller
 * (vv_mailbox_release).
 */
#ifndef ARCA_VAULT_VIEW_H
#define ARCA_VAULT_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "buf.h"

/* IMAP system flags (from the Maildir letters S, R, F, T, D). */
enum vv_flag {
	VV_SEEN = 1,
	VV_ANSWERED = 2,
	VV_FLAGGED = 4,
	VV_DELETED = 8,
	VV_DRAFT = 16,
};

enum vv_folder_attr {
	VV_SELECTABLE = 1,        /* holds messages (else \Noselect: only a parent) */
	VV_SUBSCRIBED = 2,
	/* Not selectable, and no mailbox at all, only a name above others
	 * (Maildir++ has no directory for a parent): Dovecot shows it
	 * \\NonExistent in LIST-EXTENDED answers, \\Noselect in plain LIST.
	 * Never with VV_SELECTABLE. */
	VV_NONEXISTENT = 4,
};

struct vv_folder {
	char *name;               /* UTF-8, '/' separated; "INBOX" */
	uint32_t attrs;           /* enum vv_folder_attr */
	char *special_use;        /* "\\Sent", "\\Trash", ... or "" */
	uint32_t uidvalidity;
	uint32_t uidnext;         /* > every message's UID */
	uint64_t highestmodseq;   /* >= every message's modseq, >= 1 */
	uint32_t messages;
	uint32_t unseen;          /* messages without VV_SEEN */
};

struct vv_msg {
	uint32_t uid;             /* strictly ascending within a mailbox */
	uint64_t modseq;          /* >= 1 */
	uint32_t flags;           /* enum vv_flag */
	uint64_t keywords;        /* bit i: the mailbox's keywords[i] */
	int64_t date;             /* INTERNALDATE, seconds since the epoch (UTC) */
	uint64_t size;            /* RFC822.SIZE: the bytes as served, CRLF line ends */
	bool recent;              /* was in new/ (\Recent for the first session) */
};

/* A selected folder's messages, in UID order.  vv_mailbox_release() frees
 * msgs, each keywords[i] and keywords with free(): open() fills them with
 * malloc'ed memory. */
struct vv_mailbox {
	struct vv_msg *msgs;
	size_t nmsgs;
	char **keywords;          /* at most 64 */
	size_t nkeywords;
};

void vv_mailbox_release(struct vv_mailbox *mb);

/* The separators a view can report: what Dovecot shows for its two Maildir
 * layouts (Maildir++ '.', LAYOUT=fs '/').  Others are not served (see
 * docs/serve-imap.md, "Hierarchy separator"). */
#define VV_SEPARATOR_DEFAULT '/'

/* How the account's server named things, beside its folder list. */
struct vv_account {
	char separator;           /* hierarchy separator to show: '.' or '/' */
	/* Subscriptions to names that are no folder (the folder was deleted,
	 * the subscription stayed): UTF-8, '/' separated, each once, none
	 * equal to a folder's name.  Dovecot lists them in LSUB and in LIST
	 * (SUBSCRIBED) with \NonExistent. */
	char **gone_subs;
	size_t ngone_subs;
};

/* A flag change (STORE) of messages of one folder. */
enum vv_store_mode { VV_STORE_REMOVE = -1, VV_STORE_SET = 0, VV_STORE_ADD = 1 };
struct vv_store {
	int mode;                 /* enum vv_store_mode */
	uint32_t flags;           /* enum vv_flag */
	char *const *keywords;    /* atoms, each once; at most VV_KEYWORDS_MAX */
	size_t nkeywords;
	const uint32_t *uids;     /* strictly ascending */
	size_t nuids;
	bool has_unchangedsince;  /* RFC 7162 UNCHANGEDSINCE */
	uint64_t unchangedsince;
};
#define VV_KEYWORDS_MAX 64

/* What a STORE did: filled with malloc'ed memory (vv_store_result_release). */
struct vv_store_result {
	struct vv_msg *msgs;      /* every message of uids that exists, as it is now, ascending,
				     but those in modified */
	size_t nmsgs;
	char **keywords;          /* the folder's keywords now: the old ones in their order, new after */
	size_t nkeywords;
	uint32_t *modified;       /* UIDs left alone: MODSEQ above unchangedsince */
	size_t nmodified;
};
void vv_store_result_release(struct vv_store_result *r);

/* The folder keyword list kw[0..*nkw) (malloc'ed strings, room for
 * VV_KEYWORDS_MAX) with the request's names added (matched without regard
 * to case, a known name keeps its spelling; a removal adds none); *mask_r:
 * the request's keywords as bits over the list.  ARCA_ELIMIT: more than
 * VV_KEYWORDS_MAX. */
int vv_store_keywords(char **kw, size_t *nkw, const struct vv_store *req, uint64_t *mask_r);
/* One message's flags and keywords after the request (mask from above). */
void vv_store_one(const struct vv_store *req, uint64_t mask, uint32_t *flags, uint64_t *keywords);
/* Can a keyword be stored: an IMAP atom, not starting with '\', at most
 * 255 bytes. */
bool vv_keyword_ok(const char *k);

struct vault_view_ops {
	/* Check a login (the view checks it; the session only passes it on).
	 * 0: the view is now bound to that account; ARCA_EKEY: wrong user or
	 * password; ARCA_EBUSY: refused for now (too many failures, throttled);
	 * other codes: internal trouble.  Once bound, further logins fail. */
	int (*login)(void *ctx, const char *user, const char *password);
	/* The account's folders, in the snapshot's order. */
	int (*folders)(void *ctx, const struct vv_folder **list_r, size_t *n_r);
	/* Messages of folder number `folder` (index into folders()). */
	int (*open)(void *ctx, size_t folder, struct vv_mailbox *mb_r);
	/* Append the message's bytes as served (bare LF turned into CRLF, as
	 * Dovecot serves a Maildir file) to out; exactly vv_msg.size bytes. */
	int (*body)(void *ctx, size_t folder, uint32_t uid, struct abuf *out);
	void (*free)(void *ctx);
	/* Optional (NULL: separator '/', no gone subscriptions).  What came
	 * with the last folders() answer (a view that hasn't answered one yet
	 * asks for it first); valid until the next folders() call, which may
	 * change it (the session calls it right after each folders()). */
	int (*account)(void *ctx, const struct vv_account **acct_r);
	/* Optional (NULL, or can_store() false: the vault is read-only and
	 * STORE is refused).  Keep a flag change of folder `folder` (its
	 * MODSEQs raised above the folder's highest); durable before it
	 * returns 0.  ARCA_ELIMIT: the folder would have too many keywords;
	 * others: the change was not kept. */
	bool (*can_store)(void *ctx);
	int (*store)(void *ctx, size_t folder, const struct vv_store *req, struct vv_store_result *res);
	/* Optional (with store): the messages of folder `folder` whose MODSEQ
	 * is above `since` (changed by any session since), as they are now,
	 * ascending by UID, and the folder's keywords (res->modified empty). */
	int (*changes)(void *ctx, size_t folder, uint64_t since, struct vv_store_result *res);
};

#endif
