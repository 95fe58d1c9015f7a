/*
 * cli.h - what every arca command shares: error lines, keys, time, JSON.
 */
#ifndef ARCA_CLI_H
#define ARCA_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "arca_err.h"
#include "crypto.h"
#include "repo.h"

/* Exit codes: 0 ok, 1 error, 2 usage, 3 done with warnings (e.g. unreadable
 * files skipped), 4 verification found damage. */
enum { EXIT_USAGE = 2, EXIT_WARNINGS = 3, EXIT_DAMAGE = 4 };

extern const char *cli_prog;   /* "arca ingest", for messages */

/* "arca ingest: <msg>" on stderr; returns 1. */
int cli_fail(const struct arca_err *err);
int cli_failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_usage(const char *usage);
/* For "arca CMD SUB ...": checks argv[1] is SUB and shifts it off.  Returns
 * -1 to go on, else the exit code (help printed, or a usage error). */
int cli_subcommand(int *argc, char ***argv, const char *sub, const char *usage);

/* Passphrase from ARCA_PASSPHRASE, else prompted on the terminal (twice
 * when `confirm`).  Caller frees with cli_passphrase_free. */
char *cli_passphrase(bool confirm);
void cli_passphrase_free(char *p);

/* The restore key from its file (passphrase as cli_passphrase); prints the
 * error and returns 1 on failure. */
int cli_read_restore_key(const char *keyfile, struct arca_restore_key **rk_r);

/* Open a repository and, when keyfile is given, load the restore key. */
int cli_open_repo(const char *path, int flags, const char *keyfile, struct repo **r_r);
/* The flag overlay of serve-imap at path, with r's restore key (r opened
 * with one); a torn end passed over or cut is said on stderr.  0 or the
 * exit status of a failure (said). */
struct overlay;
int cli_open_overlay(const char *path, struct repo *r, bool writable, struct overlay **ov_r);

/* RFC 3339 UTC with nanoseconds: 2026-11-28T06:14:44.123456789Z */
void cli_format_time(uint64_t ns, char out[40]);
/* Parses RFC 3339 (Z or offset, optional fraction) or a plain date. */
int cli_parse_time(const char *s, uint64_t *ns_r);

/* JSON string with escapes (invalid UTF-8 bytes as \u00XX). */
void cli_json_str(FILE *f, const char *s);

/* Find a snapshot: by id (or unique prefix), or the last at/before --at,
 * or the latest, for one account.  *info_r is a copy (release it). */
int cli_pick_snapshot(struct repo *r, const char *account, const char *id,
		      const char *at, struct snap_info *info_r);

bool cli_isatty(void);

#endif
