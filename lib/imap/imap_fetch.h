/*
 * imap_fetch.h - one FETCH response (as libetpan parsed it) reduced to what
 * a snapshot record needs.  The server is hostile: anything missing is
 * reported as missing (has_*), unknown flags are dropped, at most
 * SNAP_KEYWORDS_MAX keywords are taken.  Pure; fuzzed with libetpan's
 * parser in front (tests/fuzz/fuzz_imap_fetch.c).
 */
#ifndef ARCA_IMAP_FETCH_H
#define ARCA_IMAP_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libetpan/mailimap.h>

#include "snapshot.h"

/* One FETCH response's metadata. */
struct imap_fetched {
	uint32_t uid;
	bool has_uid, has_size, has_date, has_flags;
	uint32_t size;
	int64_t date;
	uint64_t modseq;
	uint32_t flags;
	char *keywords[SNAP_KEYWORDS_MAX];
	size_t nkw;
	bool kw_overflow;
	const char *guid;               /* points into the libetpan result */
	const char *body;
	size_t body_len;
	bool has_body;
};

/* Fill f from ma.  Pointers in f (keywords, guid, body) point into ma. */
void imap_fetched_parse(const struct mailimap_msg_att *ma, struct imap_fetched *f);
/* INTERNALDATE to seconds since the epoch (UTC). */
int64_t imap_date_to_epoch(const struct mailimap_date_time *d);

#endif
