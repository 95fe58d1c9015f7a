/*
 * passwd.h - who may log in to `arca serve-imap`: a Dovecot passwd-file,
 * and login throttling.
 *
 * The file is Dovecot's passwd-file format, one user a line:
 *     user:{SCHEME}hash:uid:gid:gecos:home:shell:extra
 * (only the first two fields are read; "user:hash" alone is fine), so the
 * provider's existing file can be pointed at.  Lines starting with '#' and
 * empty lines are skipped.  User names are compared in lower case (as
 * Dovecot's default auth_username_format=%Lu does).  A password without
 * {SCHEME} is CRYPT (Dovecot's default for passwd-file).  Schemes:
 * CRYPT, SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, MD5-CRYPT, DES-CRYPT (all
 * through libxcrypt's crypt_rn), ARGON2I and ARGON2ID (libsodium),
 * SHA256/SHA512/SSHA256/SSHA512 (base64, as Dovecot writes them) and
 * PLAIN/CLEARTEXT (accepted; the caller warns).  Entries with any other
 * scheme can't log in; passwd_stats counts them.  Extra fields (e.g.
 * nopassword, allow_nets) are not honoured: nothing is ever granted
 * without a password check.
 *
 * Comparisons are constant-time; an unknown user costs a real check
 * against another entry's hash, so timing doesn't tell which users exist.
 * The file is read again when it changes (mtime, size, inode), checked at
 * each login.
 *
 * Thread-safe: passwd_check may run in many threads at once (the hash
 * computation runs outside the lock).
 */
#ifndef ARCA_PASSWD_H
#define ARCA_PASSWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"

#define PASSWD_FILE_MAX (64u << 20)
#define PASSWD_LINE_MAX 8192
#define PASSWD_USERS_MAX 1000000
#define PASSWD_USER_MAX 1024

struct passwd_stats {
	size_t users;           /* entries that can log in */
	size_t plain;           /* of those, with a PLAIN/CLEARTEXT password */
	size_t unsupported;     /* entries whose scheme isn't supported */
	size_t malformed;       /* lines skipped (no ':' or empty user) */
	size_t duplicates;      /* later lines for a user already seen (the first wins) */
	char unsupported_scheme[32]; /* one of them, for the message */
};

struct passwd_db;

/* Read the file now (errors: missing, unreadable, too large). */
int passwd_open(const char *path, struct passwd_db **db_r, struct arca_err *err);
void passwd_free(struct passwd_db *db);
void passwd_get_stats(struct passwd_db *db, struct passwd_stats *st);

/*
 * Check a login.  0: user and password match; ARCA_EKEY: unknown user,
 * wrong password or an unsupported scheme (err says which, for the log
 * only: the client is told nothing more than "wrong").  Reloads the file
 * first when it changed; if the new file can't be read, the old table
 * stays and *reload_warning is set (non-empty) once per change.
 */
int passwd_check(struct passwd_db *db, const char *user, const char *password,
		 struct arca_err *err, char reload_warning[ARCA_ERR_MSG_MAX]);

/* A lower-case copy of user into out (ASCII letters only); false when it
 * is empty, too long or holds a control character or ':'. */
bool passwd_user_norm(const char *user, char out[PASSWD_USER_MAX + 1]);

/* Parse a whole file's bytes into a table (for the fuzzer and the tests);
 * passwd_table_lookup returns the stored "{SCHEME}hash" text's scheme and
 * hash of a user, or false. */
struct passwd_table;
int passwd_table_parse(const uint8_t *p, size_t len, struct passwd_table **t_r, struct arca_err *err);
bool passwd_table_lookup(const struct passwd_table *t, const char *user, int *scheme_r,
			 const char **hash_r);
void passwd_table_stats(const struct passwd_table *t, struct passwd_stats *st);
void passwd_table_free(struct passwd_table *t);

/* Verify a password against one stored value ("{SCHEME}hash" or a bare
 * crypt hash): 1 match, 0 no match, ARCA_EVERSION unsupported scheme. */
int passwd_verify(const char *stored, const char *password);

/*
 * Login throttling, by user name and by peer address separately: after
 * `fails` failures within `window_s` seconds, that user (or address) is
 * refused without a check for `lock_s` seconds.  Each failure delays the
 * answer: delay_ms, doubled for each further failure in the window, at
 * most 8 x delay_ms.  At most `entries` names are tracked (the oldest
 * unlocked ones are forgotten first).  Thread-safe.
 *
 * A check is reserved before the password is hashed (login_throttle_begin)
 * and its outcome recorded when it ends (login_throttle_fail or _ok), all
 * under the throttle's lock: at most one check is in flight per user name
 * and per address (a second waits for the first's outcome), and at most
 * `max_checks` in all, so parallel connections can't run more checks
 * than `fails` before the lock falls.
 */
struct login_throttle_opts {
	unsigned fails;         /* 0: 5 */
	unsigned window_s;      /* 0: 60 */
	unsigned lock_s;        /* 0: 60 */
	unsigned delay_ms;      /* 0: 250 */
	unsigned entries;       /* 0: 10000 */
	unsigned max_checks;    /* checks in flight at once; 0: 4 */
	unsigned wait_ms;       /* longest wait for a turn; 0: 10000 */
};
struct login_throttle;
struct login_throttle *login_throttle_new(const struct login_throttle_opts *o);
void login_throttle_free(struct login_throttle *t);
/* 0: go on and check, a check of (user, peer) is reserved: end it with
 * exactly one login_throttle_fail or login_throttle_ok.  ARCA_EBUSY:
 * refused for now, nothing reserved (*which_r "user", "address", or
 * "busy" when no turn came within wait_ms). */
int login_throttle_begin(struct login_throttle *t, const char *user, const char *peer,
			 uint64_t now_ns, const char **which_r);
/* A failed check ends: returns the delay (ms) to wait before answering. */
unsigned login_throttle_fail(struct login_throttle *t, const char *user, const char *peer,
			     uint64_t now_ns);
/* A successful check ends: clears the user's failures (not the address's). */
void login_throttle_ok(struct login_throttle *t, const char *user, const char *peer);

#endif
