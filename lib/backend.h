/*
 * backend.h - where a repository's immutable files live.
 *
 * A backend stores write-once files under slash-separated names ("config",
 * "data/ab/<hash>.pack", "log/000/0000000000000001").  Nothing in the
 * interface can overwrite or delete: put fails with ARCA_EEXIST when the name
 * exists.  That is what makes it mappable onto S3 Object Lock later, and what
 * lets two writers race for a log sequence number without a lock.
 * Backends are tables of function pointers (OpenSMTPD's queue backends).
 */
#ifndef ARCA_BACKEND_H
#define ARCA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "buf.h"

struct backend;

struct backend_ops {
	/* Store `n` bytes under `name`, durably, failing with ARCA_EEXIST if
	 * the name exists. */
	int (*put)(struct backend *be, const char *name, const void *data,
		   size_t n, struct arca_err *err);
	/* Store the local file at `path` under `name` (same semantics); the
	 * local file may be consumed (renamed) by the backend. */
	int (*put_file)(struct backend *be, const char *name, const char *path,
			struct arca_err *err);
	/* Read the whole object (at most max bytes) into out. */
	int (*get)(struct backend *be, const char *name, size_t max,
		   struct abuf *out, struct arca_err *err);
	/* Read exactly n bytes at offset. */
	int (*get_range)(struct backend *be, const char *name, uint64_t off,
			 size_t n, void *out, struct arca_err *err);
	/* Size of an object; ARCA_ENOENT if absent. */
	int (*size)(struct backend *be, const char *name, uint64_t *size_r,
		    struct arca_err *err);
	/* Call fn for every name under prefix (a directory-like prefix ending
	 * in '/'), in no particular order; fn returning non-zero stops. */
	int (*list)(struct backend *be, const char *prefix,
		    int (*fn)(const char *name, void *ctx), void *ctx,
		    struct arca_err *err);
	void (*close)(struct backend *be);
};

struct backend {
	const struct backend_ops *ops;
};

/* A directory on a local filesystem.  Files are made read-only (0444) once
 * stored; temporary files go to DIR/tmp/. */
int backend_local_open(const char *dir, struct backend **be_r,
		       struct arca_err *err);

static inline void backend_close(struct backend *be)
{
	if (be != NULL)
		be->ops->close(be);
}

#endif
