/*
 * verify.h - check a repository from its files alone, trusting no cache.
 *
 * Without a key: the config, every log entry (signature, chain, Merkle head,
 * no gaps), and every pack the log names (present, size, BLAKE2b = name,
 * well-formed trailer).  With the restore key also: every object decrypts,
 * authenticates, decompresses, and hashes to its id, and every snapshot's
 * tree is complete.  Every problem is reported naming the file; verification
 * goes on past problems to report them all.
 */
#ifndef ARCA_VERIFY_H
#define ARCA_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "repo.h"

typedef void verify_report_fn(void *ctx, bool fatal, const char *msg);

struct verify_result {
	uint64_t log_entries, packs, objects, snapshots, bytes;
	uint64_t errors, warnings;
};

int verify_repo(struct repo *r, verify_report_fn *report, void *ctx,
		struct verify_result *res, struct arca_err *err);

#endif
