/*
 * arca_err.h - error codes and the error record every library call fills.
 *
 * Library functions return 0 on success or a negative ARCA_E* code.  When the
 * caller passes a struct arca_err, the failing function also writes one line
 * explaining what failed (naming the file, account or object), so programs can
 * print it as is.  The library never prints and never exits.
 */
#ifndef ARCA_ERR_H
#define ARCA_ERR_H

#include <stddef.h>

enum arca_errcode {
	ARCA_OK = 0,
	ARCA_EIO = -1,       /* read/write/fsync failed (errno in the message) */
	ARCA_ENOMEM = -2,    /* allocation failed */
	ARCA_ECORRUPT = -3,  /* stored data failed a check (hash, MAC, layout) */
	ARCA_EFORMAT = -4,   /* input is not in the expected format */
	ARCA_EEXIST = -5,    /* a write-once name already exists */
	ARCA_ENOENT = -6,    /* no such file, object, snapshot or account */
	ARCA_EKEY = -7,      /* wrong key or passphrase */
	ARCA_EVERSION = -8,  /* format version newer than this build knows */
	ARCA_ELIMIT = -9,    /* an input exceeds a hard limit */
	ARCA_EINVAL = -10,   /* bad argument from the caller */
	ARCA_ENOSPC = -11,   /* disk full or quota reached */
	ARCA_EBUSY = -12,    /* a lock is held by another process */
	ARCA_ESTATE = -13,   /* operation not valid in this state (poisoned) */
};

#define ARCA_ERR_MSG_MAX 512

struct arca_err {
	int code;
	char msg[ARCA_ERR_MSG_MAX];
};

/* Static description of a code; never NULL. */
const char *arca_strerror(int code);

/*
 * Record an error and return `code`, so callers can write
 *     return arca_err_set(err, ARCA_EIO, "write %s: %s", path, strerror(errno));
 * `err` may be NULL.  The first error set wins: a later, less specific failure
 * on the way out of a call chain does not overwrite the root cause.
 */
int arca_err_set(struct arca_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like arca_err_set, appending ": strerror(errno_val)". */
int arca_err_errno(struct arca_err *err, int code, int errno_val,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Forget a recorded error (to reuse the record). */
void arca_err_clear(struct arca_err *err);

/* Map an errno from a failed write/fsync to ARCA_ENOSPC or ARCA_EIO. */
int arca_errno_code(int errno_val);

#endif
