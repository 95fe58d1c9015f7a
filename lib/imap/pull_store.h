/*
 * pull_store.h - the two halves of a pull and what passes between them.
 *
 * The engine (pull.c) talks to the mail server and never touches the
 * repository; the store side (pull_store.c) is the only one that does.
 * They meet through struct pull_sink, across socketpairs, with the engine
 * in an unprivileged child that holds no key (pull_run.c, pull_ipc.c,
 * docs/protocol/pull-ipc.md).
 */
#ifndef ARCA_PULL_STORE_H
#define ARCA_PULL_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "arca_err.h"
#include "buf.h"
#include "pull.h"
#include "snapshot.h"

/* Where a message's or script's content went. */
struct pull_content {
	uint8_t type;                   /* OBJ_BLOB or OBJ_CHUNKLIST */
	uint8_t id[ARCA_ID_LEN];
	uint64_t size;                  /* bytes stored */
	bool stripped;                  /* its base name lost S=/W= (stored as served) */
};

/* What the vault remembers of an account, as the cache holds it: the last
 * snapshot's digest and root (32 bytes + root encoding), and each
 * selectable folder's state (u32le STATUS MESSAGES, u32le UIDNEXT, full
 * folder encoding).  The store side reads it, the engine gets a copy. */
struct pull_prev_blobs {
	struct abuf acct;               /* empty: never pulled */
	struct abuf *folders;
	size_t nfolders;
};
void pull_prev_blobs_release(struct pull_prev_blobs *b);

/* The same, decoded. */
struct pull_prev {
	struct snapshot *root;          /* NULL: never pulled */
	uint8_t digest[ARCA_ID_LEN];
	struct snapshot **folders;      /* one folder each, records loaded */
	uint32_t (*status)[2];          /* STATUS MESSAGES and UIDNEXT when cached */
	bool *taken;                    /* store side: taken over as unchanged */
	size_t nfolders;
};
/* A damaged folder entry is skipped with a warning (that folder is pulled
 * in full); a damaged account entry gives an empty prev. */
int pull_prev_decode(const struct pull_prev_blobs *b, const char *account, struct pull_prev *p,
		     void (*warn)(void *ctx, const char *what), void *ctx, struct arca_err *err);
void pull_prev_release(struct pull_prev *p);

/* The engine's view of the store side.  Each returns 0 or a negative
 * ARCA_E*, except known (1 known, 0 not). */
struct pull_sink {
	void *ctx;
	int (*begin)(void *ctx, const char *account, const struct pull_prev_blobs **blobs_r,
		     struct arca_err *err);
	int (*known)(void *ctx, const char *guid, uint32_t rfc822_size, struct pull_content *c);
	int (*put)(void *ctx, const char *guid, uint32_t rfc822_size, bool stripped,
		   const uint8_t *data, size_t len, struct pull_content *c, struct arca_err *err);
	int (*put_sieve)(void *ctx, const uint8_t *data, size_t len, struct pull_content *c,
			 struct arca_err *err);
	/* The same as put, in pieces: total bytes in put_data calls, then
	 * put_end; put_abort instead ends the account (the server failed). */
	int (*put_begin)(void *ctx, const char *guid, uint32_t rfc822_size, bool stripped,
			 uint64_t total, struct arca_err *err);
	int (*put_data)(void *ctx, const uint8_t *p, size_t n, struct arca_err *err);
	int (*put_end)(void *ctx, struct pull_content *c, struct arca_err *err);
	void (*put_abort)(void *ctx, int code, const char *why);
	void (*warn)(void *ctx, const char *what);
	/* The new state: selectable folders with pages_reused set and no
	 * records are "unchanged since the cache"; or s NULL and gone when
	 * the server refused the login. */
	int (*finish)(void *ctx, struct snapshot *s, bool gone, uint64_t folders_examined,
		      struct arca_err *err);
};

/* The engine: one account through sink.  Touches no repository. */
int pull_engine_account(const struct pull_opts *o, const struct pull_sink *sink,
			const char *account, struct arca_err *err);

/* ---- the store side ---- */
struct pull_store;
struct pull_store *pull_store_new(struct repo *r, const struct pull_opts *o, pull_stage_fn *stage);
void pull_store_free(struct pull_store *st);
/* Commit what is staged (the end of a run). */
int pull_store_commit(struct pull_store *st, struct arca_err *err);
/* Log an alarm about the run (under the store's lock), marking the new
 * snapshots among `suspects` (results with a root) suspect; tell
 * o->alarm_raised. */
void pull_store_alarm(struct pull_store *st, uint8_t kind, const char *account, const char *text,
		      struct pull_account_result *const *suspects, size_t nsuspects);
/* A repository write failed: the run must stop (err gets why). */
bool pull_store_failed(struct pull_store *st, struct arca_err *err);

/* One worker's connection: one account at a time. */
struct pull_conn;
struct pull_conn *pull_conn_new(struct pull_store *st);
void pull_conn_free(struct pull_conn *c);
int pull_conn_begin(struct pull_conn *c, struct pull_account_result *res,
		    const struct pull_prev_blobs **blobs_r, struct arca_err *err);
int pull_conn_known(struct pull_conn *c, const char *guid, uint32_t rfc822_size,
		    struct pull_content *out);
int pull_conn_put(struct pull_conn *c, const char *guid, uint32_t rfc822_size, bool stripped,
		  const uint8_t *data, size_t len, struct pull_content *out, struct arca_err *err);
/* The same from a file of `total` bytes (large messages, read in pieces). */
int pull_conn_put_fd(struct pull_conn *c, const char *guid, uint32_t rfc822_size, bool stripped,
		     int fd, uint64_t total, struct pull_content *out, struct arca_err *err);
int pull_conn_put_sieve(struct pull_conn *c, const uint8_t *data, size_t len,
			struct pull_content *out, struct arca_err *err);
int pull_conn_finish(struct pull_conn *c, struct snapshot *s, bool gone, uint64_t folders_examined,
		     struct arca_err *err);
void pull_conn_end(struct pull_conn *c);

#endif
