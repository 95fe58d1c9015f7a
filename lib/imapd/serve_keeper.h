/*
 * serve_keeper.h - the key-holding side of `arca serve-imap`.
 *
 * The keeper holds the restore key and the repository (opened read-only;
 * it never writes).  Each IMAP connection's session process gets a channel
 * to it (serve_proto.h): the keeper checks the LOGIN itself (passwd-file,
 * throttling by user and by peer address — the address comes from the
 * acceptor, not from the session), binds the channel to that one account,
 * and from then on answers FOLDERS, OPEN and BODY for that account's
 * snapshot only, and with an overlay STORE: a flag change it checks,
 * makes durable in the overlay and serves from then on.  Anything but LOGIN before a login, a second LOGIN after
 * one, or a malformed frame ends the channel: a session process that
 * breaks the protocol is taken to be compromised.
 *
 * Per account, the keeper picks the snapshot at the first login (the pick
 * callback; the choice is kept for the life of the keeper, so every
 * session of an account sees the same UIDs), loads its root and folder
 * pages at the first FOLDERS or OPEN and keeps them, shared by that
 * account's sessions, within a memory budget (accounts with no session
 * are dropped, least recently used first).  Messages are served as
 * Dovecot serves the Maildir file: every bare LF becomes CRLF; the size is
 * the base name's W= (or the W field of dovecot-uidlist), else computed
 * from the content once.
 *
 * Threads: one per channel; every repository call, and the account cache,
 * under one lock (struct repo is not thread-safe).  Password hashing,
 * a body's LF -> CRLF conversion and sending run outside it.
 */
#ifndef ARCA_SERVE_KEEPER_H
#define ARCA_SERVE_KEEPER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "crypto.h"
#include "passwd.h"
#include "overlay.h"
#include "repo.h"

/* Which snapshot of `account` to serve: fill root_r and its time.
 * ARCA_ENOENT: the account has none (login refused as unavailable). */
typedef int serve_pick_fn(void *ctx, struct repo *r, const char *account,
			  uint8_t root_r[ARCA_ID_LEN], uint64_t *time_ns_r, struct arca_err *err);

struct serve_keeper_opts {
	struct repo *repo;              /* restore key set; not owned */
	struct passwd_db *users;        /* not owned */
	serve_pick_fn *pick;            /* NULL: the account's latest snapshot */
	void *pick_ctx;
	/* One line for the log (no newline), from any thread; may be NULL. */
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
	size_t cache_bytes;             /* accounts kept loaded; 0: 256 MiB */
	unsigned max_channels;          /* 0: 1000 */
	unsigned login_tries;           /* LOGINs per channel; 0: 10 */
	/* Hierarchy separator shown for every account, '.' or '/'; 0: each
	 * snapshot's own (Maildir++ '.', LAYOUT=fs '/'). */
	char separator;
	unsigned send_timeout_ms;       /* a session not reading its channel this long loses it; 0: 60 s */
	struct login_throttle_opts throttle;
	/* Flag changes are kept here (serve-imap --overlay), opened writable;
	 * NULL: the vault is read-only and sessions are told so.  Not owned. */
	struct overlay *overlay;
};

struct serve_keeper;

int serve_keeper_new(const struct serve_keeper_opts *o, struct serve_keeper **k_r,
		     struct arca_err *err);
/* Serve one channel in this thread until the session hangs up or breaks
 * the protocol; closes fd.  peer: numeric address of the IMAP client. */
void serve_keeper_channel(struct serve_keeper *k, int fd, const char *peer);
/* The same in a new thread (fd taken over in every case); ARCA_EBUSY when
 * max_channels are open already (fd closed). */
int serve_keeper_spawn(struct serve_keeper *k, int fd, const char *peer, struct arca_err *err);
/* Take new channels from the acceptor's control socket (serve_ctl_recv)
 * until it hangs up (0) or *stop is set (0; checked twice a second), or the
 * acceptor sends something malformed (ARCA_EFORMAT: it is not to be
 * trusted any more). */
int serve_keeper_run(struct serve_keeper *k, int ctl, volatile sig_atomic_t *stop,
		     struct arca_err *err);
/* Channels open now. */
unsigned serve_keeper_channels(struct serve_keeper *k);
/* Ends every channel, waits for their threads, frees. */
void serve_keeper_free(struct serve_keeper *k);

/* Dovecot's served size of a Maildir file from its base name (",W=N") or
 * its dovecot-uidlist extension fields ("WN"); false when neither says. */
bool serve_served_size_hint(const char *base, const char *uidlist_ext, uint64_t *size_r);
/* Append p[0..n) to out with every bare LF turned into CRLF. */
int serve_crlf(const uint8_t *p, size_t n, struct abuf *out);
/* The same a piece at a time: convert p[*pos..n) into out (cap >= 2
 * bytes) as far as it fits, never splitting a CRLF made of a bare LF;
 * advances *pos, returns the bytes written. */
size_t serve_crlf_chunk(const uint8_t *p, size_t n, size_t *pos, uint8_t *out, size_t cap);

#endif
