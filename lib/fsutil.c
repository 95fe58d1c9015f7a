#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "faultinject.h"
#include "banned.h"

int fs_mkdirs(const char *path, mode_t mode, struct arca_err *err)
{
	char *p = strdup(path);
	if (p == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	size_t len = strlen(p);
	for (size_t i = 1; i <= len; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		char c = p[i];
		p[i] = '\0';
		if (mkdir(p, mode) != 0 && errno != EEXIST) {
			int e = errno;
			int rc = arca_err_errno(err, arca_errno_code(e), e,
						"create directory %s", p);
			free(p);
			return rc;
		}
		p[i] = c;
	}
	free(p);
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return arca_err_set(err, ARCA_EIO, "%s is not a directory", path);
	return 0;
}

int fs_fsync_dir(const char *path, struct arca_err *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return arca_err_errno(err, ARCA_EIO, errno, "open directory %s", path);
	int rc = 0;
	if (fault_hit(FAULT_FSYNC) || fsync(fd) != 0)
		rc = arca_err_errno(err, ARCA_EIO, errno ? errno : EIO,
				    "fsync directory %s", path);
	close(fd);
	return rc;
}

int fs_write_all(int fd, const void *p, size_t n, const char *what,
		 struct arca_err *err)
{
	const uint8_t *c = p;
	fault_crash_point();
	while (n > 0) {
		if (fault_hit(FAULT_WRITE)) {
			errno = ENOSPC;
			return arca_err_errno(err, ARCA_ENOSPC, ENOSPC, "write %s", what);
		}
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			return arca_err_errno(err, arca_errno_code(e), e, "write %s", what);
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int fs_pread_exact(int fd, void *p, size_t n, uint64_t off, const char *what,
		   struct arca_err *err)
{
	uint8_t *c = p;
	while (n > 0) {
		ssize_t r = pread(fd, c, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return arca_err_errno(err, ARCA_EIO, errno, "read %s", what);
		}
		if (r == 0)
			return arca_err_set(err, ARCA_ECORRUPT,
					    "%s is truncated (wanted %zu more bytes at offset %llu)",
					    what, n, (unsigned long long)off);
		c += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

char *fs_join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *s = malloc(a + b + 2);
	if (s == NULL)
		return NULL;
	memcpy(s, dir, a);
	size_t pos = a;
	if (a > 0 && dir[a - 1] != '/')
		s[pos++] = '/';
	memcpy(s + pos, name, b + 1);
	return s;
}

char *fs_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

int fs_sync_handle(const char *path, struct arca_err *err)
{
	char *p = strdup(path);
	if (p == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	for (;;) {
		int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0 || errno != ENOENT || strcmp(p, "/") == 0 || strcmp(p, ".") == 0) {
			if (fd < 0)
				fd = arca_err_errno(err, ARCA_EIO, errno, "open %s (to sync what is written under %s)",
						    p, path);
			free(p);
			return fd;
		}
		char *up = fs_dirname(p);
		free(p);
		if (up == NULL)
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		p = up;
	}
}

static int write_file(const char *path, const void *data, size_t n, mode_t mode,
		      int exclusive, bool sync, struct arca_err *err);

int fs_write_file(const char *path, const void *data, size_t n, mode_t mode,
		  int exclusive, struct arca_err *err)
{
	return write_file(path, data, n, mode, exclusive, true, err);
}

int fs_write_file_nosync(const char *path, const void *data, size_t n, mode_t mode,
			 struct arca_err *err)
{
	return write_file(path, data, n, mode, 0, false, err);
}

static int write_file(const char *path, const void *data, size_t n, mode_t mode,
		      int exclusive, bool sync, struct arca_err *err)
{
	char *dir = fs_dirname(path);
	size_t tlen = strlen(path) + 64;
	char *tmp = malloc(tlen);
	if (dir == NULL || tmp == NULL) {
		free(dir);
		free(tmp);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	/* unique per process and thread: ingest writes from several threads */
	static atomic_uint counter;
	snprintf(tmp, tlen, "%s.tmp.%ld.%u", path, (long)getpid(),
		 atomic_fetch_add(&counter, 1));
	int rc = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		int e = errno;
		rc = arca_err_errno(err, arca_errno_code(e), e, "create %s", tmp);
		goto out;
	}
	rc = fs_write_all(fd, data, n, tmp, err);
	if (rc == 0 && sync && (fault_hit(FAULT_FSYNC) || fsync(fd) != 0)) {
		int e = errno ? errno : EIO;
		rc = arca_err_errno(err, arca_errno_code(e), e, "fsync %s", tmp);
	}
	if (close(fd) != 0 && rc == 0)
		rc = arca_err_errno(err, ARCA_EIO, errno, "close %s", tmp);
	if (rc == 0) {
		fault_crash_point();
		if (exclusive) {
			if (link(tmp, path) != 0) {
				int e = errno;
				rc = e == EEXIST
					? arca_err_set(err, ARCA_EEXIST, "%s already exists", path)
					: arca_err_errno(err, arca_errno_code(e), e, "link %s", path);
			}
			unlink(tmp);
		} else if (rename(tmp, path) != 0) {
			rc = arca_err_errno(err, ARCA_EIO, errno, "rename %s", path);
		}
	}
	if (rc != 0)
		unlink(tmp);
	else if (sync)
		rc = fs_fsync_dir(dir, err);
out:
	free(dir);
	free(tmp);
	return rc;
}

int fs_read_file(const char *path, size_t max, struct abuf *out,
		 struct arca_err *err)
{
	abuf_reset(out);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return arca_err_errno(err, e == ENOENT ? ARCA_ENOENT : ARCA_EIO, e,
				      "open %s", path);
	}
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) != 0) {
		rc = arca_err_errno(err, ARCA_EIO, errno, "stat %s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = arca_err_set(err, ARCA_EFORMAT, "%s is not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		rc = arca_err_set(err, ARCA_ELIMIT, "%s is larger than %zu bytes", path, max);
		goto out;
	}
	for (;;) {
		if (abuf_reserve(out, 65536) != 0) {
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory reading %s", path);
			goto out;
		}
		ssize_t r = read(fd, out->data + out->len, out->cap - out->len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = arca_err_errno(err, ARCA_EIO, errno, "read %s", path);
			goto out;
		}
		if (r == 0)
			break;
		out->len += (size_t)r;
		if (out->len > max) {
			rc = arca_err_set(err, ARCA_ELIMIT, "%s is larger than %zu bytes", path, max);
			goto out;
		}
	}
out:
	close(fd);
	return rc;
}

#define REMOVE_DEPTH_MAX 256

/* Empty the directory open as dfd (closed here). */
static int remove_in(int dfd, const char *path, int depth, struct arca_err *err)
{
	if (depth > REMOVE_DEPTH_MAX) {
		close(dfd);
		return arca_err_set(err, ARCA_ELIMIT, "remove %s: deeper than %d directories", path,
				    REMOVE_DEPTH_MAX);
	}
	DIR *d = fdopendir(dfd);
	if (d == NULL) {
		int e = errno;
		close(dfd);
		return arca_err_errno(err, ARCA_EIO, e, "read %s", path);
	}
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
			continue;
		struct stat st;
		if (fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno != ENOENT)
				rc = arca_err_errno(err, ARCA_EIO, errno, "stat %s/%s", path, n);
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			int c = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (c < 0) {
				rc = arca_err_errno(err, ARCA_EIO, errno, "open %s/%s", path, n);
				break;
			}
			rc = remove_in(c, path, depth + 1, err);
			if (rc == 0 && unlinkat(dfd, n, AT_REMOVEDIR) != 0 && errno != ENOENT)
				rc = arca_err_errno(err, ARCA_EIO, errno, "remove %s/%s", path, n);
		} else if (unlinkat(dfd, n, 0) != 0 && errno != ENOENT) {
			rc = arca_err_errno(err, ARCA_EIO, errno, "remove %s/%s", path, n);
		}
	}
	if (rc == 0 && errno != 0)
		rc = arca_err_errno(err, ARCA_EIO, errno, "read %s", path);
	closedir(d);   /* closes dfd */
	return rc;
}

int fs_remove_tree(const char *path, struct arca_err *err)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : arca_err_errno(err, ARCA_EIO, errno, "stat %s", path);
	if (!S_ISDIR(st.st_mode))
		return unlink(path) == 0 || errno == ENOENT ? 0
			: arca_err_errno(err, ARCA_EIO, errno, "remove %s", path);
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return arca_err_errno(err, ARCA_EIO, errno, "open %s", path);
	int rc = remove_in(dfd, path, 0, err);
	if (rc == 0 && rmdir(path) != 0 && errno != ENOENT)
		rc = arca_err_errno(err, ARCA_EIO, errno, "remove %s", path);
	return rc;
}
