/*
 * imap_opts.h - what the commands that log in to a mail server share
 * (arca pull imap, arca restore imap): account lists, the master user's
 * password file, per-account credentials, the plain-text guard.
 */
#ifndef ARCA_IMAP_OPTS_H
#define ARCA_IMAP_OPTS_H

#include <stdbool.h>
#include <stddef.h>

/* A growable list of heap strings. */
struct strv {
	char **v;
	size_t n, cap;
};
/* Appends a copy of str[0..len); -1 on ENOMEM. */
int strv_add(struct strv *s, const char *str, size_t len);
void strv_free(struct strv *s);

/* Accounts from text: one per line, first word, '#' comments, repeats
 * dropped.  -1 on ENOMEM. */
int accounts_from_text(struct strv *out, const char *text, size_t len);
/* Accounts from a file (one per line) or, if `from` is not a file and holds
 * a space or starts with '|', from a shell command's output.  Prints the
 * error and returns 1 on failure. */
int load_accounts(const char *from, struct strv *out);

/* The first line of a file without its line end (heap), or NULL. */
char *read_first_line(const char *path);

/* "ACCOUNT PASSWORD" lines ('#' comments); prints the error, returns 1. */
struct creds {
	struct strv names, passwords;
};
int load_credentials(const char *path, struct creds *c);
/* The password of account, or NULL. */
const char *creds_password(const struct creds *c, const char *account);
/* Wipes the passwords and frees. */
void creds_free(struct creds *c);

/* Passwords only over TLS, to loopback, or when the user said --insecure:
 * prints why and returns 1 when refused. */
int imap_opts_plain_ok(const char *host, bool tls, bool insecure);

#endif
