/*
 * pull.h - capture accounts' live state from an IMAP server (and their Sieve
 * scripts over ManageSieve) into snapshots (docs/pull.md).
 *
 * The vault reaches out with read-only access: folders are opened with
 * EXAMINE, bodies fetched with BODY.PEEK.  What a later pull needs (each
 * folder's STATUS and message records, which content each X-GUID has) is
 * kept in the repository's local ingest cache, never message content, so
 * pulling needs no key that can read what was stored before.
 *
 * A pull of many accounts runs `parallel` connections at once.  An account's
 * snapshot is staged only when its whole state was read; staged snapshots
 * are committed in batches (with their cache entries), so a pull killed
 * half-way leaves no partial snapshot and a re-run fetches again only what
 * was not yet in a sealed pack.
 */
#ifndef ARCA_PULL_H
#define ARCA_PULL_H

#include <stdbool.h>
#include <stdint.h>

#include "arca_err.h"
#include "netconn.h"
#include "repo.h"

struct alarm;

struct pull_account_result {
	const char *account;
	int rc;                         /* 0, or the error (msg in err) */
	struct arca_err err;
	bool unchanged;                 /* same state as the last snapshot: none written */
	bool gone;                      /* login refused for an account pulled before */
	struct snap_info info;          /* the staged snapshot (root, counts, time) */
	uint64_t folders, folders_examined;
	uint64_t messages, messages_fetched, bytes_fetched;
	uint64_t sieve_scripts;
	/* for the alarms: what the previous snapshot of this account had */
	bool had_previous;
	uint64_t prev_messages, prev_folders;
	uint64_t lost_messages;         /* previous records no longer present */
	uint64_t lost_folders;          /* previous folders no longer listed */
	uint64_t uidvalidity_changed;   /* folders whose UIDVALIDITY changed */
	uint64_t seconds_ms;
};

typedef void pull_warn_fn(void *ctx, const char *account, const char *what);
/* Called once per account, from the thread that pulled it, under no lock. */
typedef void pull_done_fn(void *ctx, const struct pull_account_result *res);

struct pull_opts {
	struct netconn_opts imap;       /* host, port, TLS mode, CA file, timeout */
	struct netconn_opts sieve;      /* port 0: no Sieve pull */
	const char *master_user;        /* NULL: log in as the account itself */
	char separator;                 /* between account and master user ('*') */
	const char *password;           /* master user's, or the accounts' */
	/* per-account passwords (NULL: `password` for all): returns NULL if none */
	const char *(*account_password)(void *ctx, const char *account);
	unsigned parallel;              /* connections at once (>= 1) */
	const char *run_as;             /* the network process's user when started as root (nobody) */
	uint64_t commit_every;          /* commit staged snapshots after this many bytes fetched (0: 256 MiB) */
	pull_warn_fn *warn;
	pull_done_fn *done;
	/* alarms the pull raises itself (a network process that breaks the
	 * protocol): the hook, and who hears of it (may be NULL) */
	const char *alarm_exec;
	void (*alarm_raised)(void *ctx, const struct alarm *a, const char *hook_warning);
	void *ctx;
};

/* Called under the repository lock just before each batch is committed,
 * with every account the batch finished (with a new snapshot, unchanged, or
 * refusing a login it accepted before), so the caller can log alarms that
 * must precede those snapshots.  Accounts with a snapshot staged have a
 * non-zero info.root. */
typedef int pull_stage_fn(void *ctx, struct repo *r, struct pull_account_result **batch,
			  size_t n, struct arca_err *err);

/* ---- pure helpers (tested and fuzzed on their own) ---- */

/* What Dovecot served for a Maildir file whose base name (X-GUID) says
 * ",S=<size>": the file had bare LFs that IMAP turned into CRLF.  If
 * turning every CRLF back into LF gives exactly S bytes, that is the file:
 * *out gets it and 1 is returned; else 0 (keep the bytes as served), and
 * *strip_r says the base name's S=/W= must go (they no longer match). */
int pull_unserve_crlf(const char *base, const uint8_t *p, size_t len, struct abuf *out,
		      bool *strip_r);
/* A base name usable as a Maildir file name (from an X-GUID): printable
 * ASCII, no '/', no ':', not starting with '.' or ',', at most
 * PULL_BASE_MAX bytes (so ":2," and up to 26 flag and keyword letters fit). */
#define PULL_BASE_MAX 200
bool pull_base_ok(const char *base);
/* Remove ",S=..." and ",W=..." fields from a base name, in place. */
void pull_base_strip_sizes(char *base);
/* An IMAP folder name (modified UTF-7, levels split by delim) as the
 * snapshot's UTF-8 '/'-separated name; ARCA_EFORMAT if it can't be one. */
int pull_folder_name(const char *mutf7, char delim, struct abuf *out);
/* The snapshot's layout (enum maildir_layout) from the hierarchy separator
 * LIST showed: the first non-NIL one, whether some folder came with NIL,
 * whether another came too.  '/' alone is LAYOUT=fs; anything else
 * Maildir++ (Dovecot's '.', and what can't be told apart). */
uint8_t pull_layout_of_separator(char first, bool nil, bool mixed);

#endif
