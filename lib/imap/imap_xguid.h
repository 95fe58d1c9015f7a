/*
 * imap_xguid.h - Dovecot's X-GUID fetch item, taught to libetpan.
 *
 * Dovecot answers `UID FETCH n (X-GUID)` with the message's GUID, which for
 * Maildir is the file's base name ("1795867224.M925824P9877.host,S=247,W=258")
 * and survives COPY and MOVE.  Pull uses it to know a moved message's content
 * without downloading it again, and restore uses it as the file name.
 * libetpan does not know the item, so we register a fetch-data extension.
 */
#ifndef ARCA_IMAP_XGUID_H
#define ARCA_IMAP_XGUID_H

#include <stddef.h>

#define IMAP_XGUID_MAX 255

/* Parse `X-GUID SP (atom / quoted)` at p[*pos..len) (case-insensitive item
 * name).  On success *pos moves past it and *guid_r (malloc'd, NUL-free,
 * printable ASCII, at most IMAP_XGUID_MAX bytes) is set: 0.  Not an X-GUID
 * item, or a malformed one: -1, nothing consumed.  NIL is a malformed one
 * (Dovecot never sends it).  Pure; fuzzed. */
int imap_xguid_parse(const char *p, size_t len, size_t *pos, char **guid_r);

/* Register the extension with libetpan (once per process, thread-safe). */
void imap_xguid_register(void);

/* The GUID carried by one libetpan msg_att extension item, or NULL. */
struct mailimap_extension_data;
const char *imap_xguid_of(const struct mailimap_extension_data *ext);

#endif
