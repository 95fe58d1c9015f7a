/*
 * fsutil.h - durable file operations.
 *
 * The one way Arca makes a file durable: write to a temporary name in the same
 * directory, fsync it, rename (or link, for write-once names) to the final
 * name, fsync the directory.  A failed fsync is never retried (the kernel may
 * already have dropped the dirty pages): the operation fails.
 */
#ifndef ARCA_FSUTIL_H
#define ARCA_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "arca_err.h"
#include "buf.h"

/* mkdir -p with the given mode; existing directories are fine. */
int fs_mkdirs(const char *path, mode_t mode, struct arca_err *err);

/* fsync a directory by path. */
int fs_fsync_dir(const char *path, struct arca_err *err);

/* Write all n bytes to fd (retrying short writes and EINTR). */
int fs_write_all(int fd, const void *p, size_t n, const char *what,
		 struct arca_err *err);

/* Read up to n bytes at offset; fails unless exactly n bytes were read. */
int fs_pread_exact(int fd, void *p, size_t n, uint64_t off, const char *what,
		   struct arca_err *err);

/*
 * Atomically replace `path` with `data`: temp file, fsync, rename, fsync dir.
 * When `exclusive` is set the final name is created with link(), so the call
 * fails with ARCA_EEXIST if the name exists (write-once semantics, and a lock-
 * free way to claim a sequence number).
 */
int fs_write_file(const char *path, const void *data, size_t n, mode_t mode,
		  int exclusive, struct arca_err *err);
/* The same without any fsync, for callers that make a whole tree durable at
 * once (restore ends with one syncfs). */
int fs_write_file_nosync(const char *path, const void *data, size_t n, mode_t mode,
			 struct arca_err *err);

/* A descriptor for syncfs of what will be written under path: path, or
 * the nearest of its parents that exists (the file system it will be made
 * on).  Open it *before* writing: syncfs reports the writeback errors since
 * its file was opened (Linux 5.8, errseq), so a descriptor opened at the end
 * misses a page that failed to write meanwhile.  Negative ARCA_E* on error. */
int fs_sync_handle(const char *path, struct arca_err *err);

/* Read a whole regular file of at most `max` bytes into out (reset first). */
int fs_read_file(const char *path, size_t max, struct abuf *out,
		 struct arca_err *err);

/* Join dir and name into a new heap string ("dir/name"); NULL on ENOMEM. */
char *fs_join(const char *dir, const char *name);

/* The directory part of path in a new heap string. */
char *fs_dirname(const char *path);

/* rm -rf path, in a directory others may write to (a restore, as root, in
 * the mail user's home): every directory is opened with O_NOFOLLOW relative
 * to its verified parent and entries are removed with unlinkat, so a name
 * swapped for a symlink meanwhile is removed as a link and never followed.
 * Absent: 0.  Deeper than 256 levels: ARCA_ELIMIT. */
int fs_remove_tree(const char *path, struct arca_err *err);

#endif
