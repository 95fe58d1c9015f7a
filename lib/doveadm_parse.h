/*
 * doveadm_parse.h - reading what Dovecot's doveadm prints.
 *
 * `arca restore dovecot` runs doveadm (arca/doveadm.c) and decides from its
 * answers: which separator the namespace uses, whether each restored folder
 * is listed, what Dovecot now serves for each folder, which Sieve scripts
 * the account has.  doveadm's output is not trusted any more than a file on
 * disk: these functions take it as bytes, accept only the exact shapes
 * Dovecot 2.3 prints (flow formatter, docs/restore.md "What doveadm
 * prints"), and never allocate more than the caller's caps.
 *
 * None of them prints or exits; they return 0 or a negative ARCA_E* code.
 */
#ifndef ARCA_DOVEADM_PARSE_H
#define ARCA_DOVEADM_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* The longest line read (a mailbox name is at most a few hundred bytes;
 * Dovecot limits names to 4 KiB in total). */
#define DVA_LINE_MAX 8192

/*
 * Splits buf[0..len) into lines in place: each '\n' becomes '\0', a '\r'
 * before it is dropped; empty lines are skipped.  buf must have room for a
 * NUL at buf[len] (abuf_cstr leaves one).  lines[] gets at most max
 * pointers into buf.
 * ARCA_EFORMAT: a NUL byte inside the output (doveadm prints text);
 * ARCA_ELIMIT: more than max lines, or a line longer than DVA_LINE_MAX.
 */
int dva_split_lines(char *buf, size_t len, char **lines, size_t max, size_t *n_r);

/* The four numbers `doveadm -f flow mailbox status "uidvalidity uidnext
 * highestmodseq messages"` prints per mailbox. */
struct dva_status {
	uint64_t uidvalidity, uidnext, highestmodseq, messages;
};

/*
 * One line of that output, as Dovecot 2.3 prints it: the mailbox name, a
 * space, then the four fields `KEY=DECIMAL` separated by single spaces, in
 * any order, each once, nothing after them (no sign, no value above
 * UINT64_MAX).  The fields are read from the end of the line, so a name
 * holding spaces or "messages=1" is still the name.  The line is cut in
 * place to the bare name (a NUL where the fields began).
 * ARCA_EFORMAT: not that shape, or an empty name.
 */
int dva_status_line(char *line, struct dva_status *st);

/* The status of box among names[0..n) with their st[] (from
 * dva_status_line): 0, ARCA_ENOENT (not there), ARCA_ECORRUPT (there
 * twice: doveadm would never print that). */
int dva_status_find(char *const *names, const struct dva_status *st, size_t n, const char *box,
		    struct dva_status *out);

/*
 * The hierarchy separator doveadm uses, found by matching a nested folder
 * of ours (levels joined by '/') against the mailbox names doveadm printed
 * (`mailbox list`, or the names of `mailbox status` lines): the character c such that replacing every '/' of the folder's
 * name by c gives one of the lines.  0 when no nested folder matches
 * (none nested, or not listed).  c is never '\0' or '\n'.
 */
char dva_detect_sep(const char *const *folders, size_t nf, char *const *lines, size_t nl);

/* The name doveadm gives folder name ('/' between levels): the levels
 * joined with sep.  out is reset and NUL-terminated. */
int dva_vname(const char *name, char sep, struct abuf *out);

/*
 * The lines of `doveadm sieve list` (Dovecot 2.3 prints "NAME ACTIVE" for
 * the active script and "NAME " - with a trailing space, an empty second
 * field - for the others): each line is cut in place to the bare name.  A
 * line without the trailing space or " ACTIVE" (another version) is taken
 * whole as an inactive script's name.  *active_r: the index of the active
 * script, or -1.  ARCA_EFORMAT: two active scripts, or an empty name.
 */
int dva_sieve_list(char **lines, size_t n, long *active_r);

/*
 * The answer of `doveadm sieve get -u USER NAME` (its default "pager"
 * output, Dovecot 2.3): "sieve script:\n" and then the script's bytes
 * exactly, nothing added (checked: one line without an end, CRLF, an empty
 * script).  0 and *body_off_r where the script starts; ARCA_EFORMAT when
 * the answer does not start so (another version: then nothing is taken
 * for the script's bytes).
 */
#define DVA_SIEVE_GET_PREFIX "sieve script:\n"
int dva_sieve_get(const uint8_t *out, size_t len, size_t *body_off_r);

/*
 * The answer of `doveadm config -h mail_location`: 0 and *layout_fs_r
 * when it is a Maildir location ("maildir:PATH[:OPT...]"; LAYOUT=fs among
 * the options sets *layout_fs_r), or an empty answer (Dovecot's default:
 * *known_r false).  ARCA_EINVAL: another mail storage (mdbox, sdbox,
 * mbox, ...), whose name stays at the start of out for the message.
 */
int dva_mail_location(const char *out, bool *known_r, bool *layout_fs_r);

/*
 * Many users in one doveadm (`mailbox status -F -`, the user names on
 * stdin, one per line): each line then starts with the user's name and a
 * space ("USER BOX k=v ...").
 * dva_user_ok: a name that can go on such a list and be told apart at the
 * start of a line: not empty, no blank, no control byte (no newline).
 * dva_line_user: whose line it is: *idx_r the user whose name then a space
 * begins *line (the longest such name), and *line moved past that space.
 * ARCA_EFORMAT: none of users[0..n) begins it (*line left as it was).
 */
bool dva_user_ok(const char *user);
int dva_line_user(char **line, const char *const *users, size_t n, size_t *idx_r);

#endif
