#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "fsutil.h"
#include "banned.h"

struct backend_local {
	struct backend be;
	char *dir;
	/* The last object read by range stays open: restore and verify read
	 * runs of objects from one pack.  Stored files never change, so a
	 * cached descriptor can't go stale.  The lock lets a pack be sealed
	 * (its trailer read back) on another thread while this one reads. */
	pthread_mutex_t open_lock;
	char *open_name;
	int open_fd;
};

/* Names come from our own code, but a damaged log could carry anything:
 * refuse what could leave the repository directory. */
static int check_name(const char *name, struct arca_err *err)
{
	if (name[0] == '\0' || name[0] == '/' || strstr(name, "..") != NULL ||
	    strlen(name) > 512)
		return arca_err_set(err, ARCA_EINVAL, "bad object name '%s'", name);
	return 0;
}

static char *local_path(struct backend_local *bl, const char *name)
{
	return fs_join(bl->dir, name);
}

/* The checked name's path, or NULL with *rc_r and err set. */
static char *checked_path(struct backend_local *bl, const char *name, int *rc_r,
			  struct arca_err *err)
{
	*rc_r = check_name(name, err);
	if (*rc_r)
		return NULL;
	char *path = local_path(bl, name);
	if (path == NULL)
		*rc_r = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	return path;
}

static int ensure_parent(const char *path, struct arca_err *err)
{
	char *dir = fs_dirname(path);
	if (dir == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	struct stat st;
	int rc = 0;
	if (stat(dir, &st) != 0) {
		rc = fs_mkdirs(dir, 0755, err);
		if (rc == 0) {
			/* make the new directory entry itself durable */
			char *parent = fs_dirname(dir);
			rc = parent ? fs_fsync_dir(parent, err)
				    : arca_err_set(err, ARCA_ENOMEM, "out of memory");
			free(parent);
		}
	}
	free(dir);
	return rc;
}

static int local_put(struct backend *be, const char *name, const void *data,
		     size_t n, struct arca_err *err)
{
	struct backend_local *bl = (struct backend_local *)be;
	int rc;
	char *path = checked_path(bl, name, &rc, err);
	if (path == NULL)
		return rc;
	rc = ensure_parent(path, err);
	if (rc == 0)
		rc = fs_write_file(path, data, n, 0444, 1, err);
	free(path);
	return rc;
}

static int local_put_file(struct backend *be, const char *name, const char *src,
			  struct arca_err *err)
{
	struct backend_local *bl = (struct backend_local *)be;
	if (src == NULL)
		return arca_err_set(err, ARCA_EINVAL, "no file to store as %s", name);
	int rc = check_name(name, err);
	if (rc)
		return rc;
	char *path = local_path(bl, name);
	char *dir = path ? fs_dirname(path) : NULL;
	if (path == NULL || dir == NULL) {
		free(path);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	rc = ensure_parent(path, err);
	/* The caller fsynced src; link() makes the name write-once. */
	if (rc == 0 && chmod(src, 0444) != 0)
		rc = arca_err_errno(err, ARCA_EIO, errno, "chmod %s", src);
	if (rc == 0 && link(src, path) != 0) {
		int e = errno;
		rc = e == EEXIST ? arca_err_set(err, ARCA_EEXIST, "%s already exists", path)
				 : arca_err_errno(err, arca_errno_code(e), e, "link %s", path);
	}
	if (rc == 0) {
		unlink(src);
		rc = fs_fsync_dir(dir, err);
	}
	free(dir);
	free(path);
	return rc;
}

static int local_get(struct backend *be, const char *name, size_t max,
		     struct abuf *out, struct arca_err *err)
{
	struct backend_local *bl = (struct backend_local *)be;
	int rc;
	char *path = checked_path(bl, name, &rc, err);
	if (path == NULL)
		return rc;
	rc = fs_read_file(path, max, out, err);
	free(path);
	return rc;
}

static int local_get_range(struct backend *be, const char *name, uint64_t off,
			   size_t n, void *out, struct arca_err *err)
{
	struct backend_local *bl = (struct backend_local *)be;
	int rc;
	char *path = checked_path(bl, name, &rc, err);
	if (path == NULL)
		return rc;
	pthread_mutex_lock(&bl->open_lock);
	if (bl->open_name == NULL || strcmp(bl->open_name, name) != 0) {
		if (bl->open_fd >= 0)
			close(bl->open_fd);
		free(bl->open_name);
		bl->open_name = NULL;
		bl->open_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (bl->open_fd < 0) {
			int e = errno;
			rc = arca_err_errno(err, e == ENOENT ? ARCA_ENOENT : ARCA_EIO, e,
					    "open %s", path);
			pthread_mutex_unlock(&bl->open_lock);
			free(path);
			return rc;
		}
		bl->open_name = strdup(name);
		if (bl->open_name == NULL) {
			close(bl->open_fd);
			bl->open_fd = -1;
			pthread_mutex_unlock(&bl->open_lock);
			free(path);
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		}
	}
	rc = fs_pread_exact(bl->open_fd, out, n, off, path, err);
	pthread_mutex_unlock(&bl->open_lock);
	free(path);
	return rc;
}

static int local_size(struct backend *be, const char *name, uint64_t *size_r,
		      struct arca_err *err)
{
	struct backend_local *bl = (struct backend_local *)be;
	int rc;
	char *path = checked_path(bl, name, &rc, err);
	if (path == NULL)
		return rc;
	struct stat st;
	if (stat(path, &st) != 0) {
		int e = errno;
		rc = arca_err_errno(err, e == ENOENT ? ARCA_ENOENT : ARCA_EIO, e,
				    "stat %s", path);
	} else {
		*size_r = (uint64_t)st.st_size;
	}
	free(path);
	return rc;
}

/* Recursive walk; names are reported relative to the backend root. */
static int walk(struct backend_local *bl, const char *rel,
		int (*fn)(const char *name, void *ctx), void *ctx,
		struct arca_err *err)
{
	char *path = local_path(bl, rel);
	if (path == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	DIR *d = opendir(path);
	if (d == NULL) {
		int e = errno;
		free(path);
		return e == ENOENT ? 0 : arca_err_errno(err, ARCA_EIO, e, "open directory %s/%s", bl->dir, rel);
	}
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strstr(de->d_name, ".tmp.") != NULL)
			continue;
		char *child = fs_join(rel, de->d_name);
		if (child == NULL) {
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			break;
		}
		unsigned char type = de->d_type;
		if (type == DT_UNKNOWN) {
			struct stat st;
			char *full = local_path(bl, child);
			type = (full && lstat(full, &st) == 0 && S_ISDIR(st.st_mode)) ? DT_DIR : DT_REG;
			free(full);
		}
		if (type == DT_DIR)
			rc = walk(bl, child, fn, ctx, err);
		else if (type == DT_REG)
			rc = fn(child, ctx);
		free(child);
	}
	closedir(d);
	free(path);
	return rc;
}

static int local_list(struct backend *be, const char *prefix,
		      int (*fn)(const char *name, void *ctx), void *ctx,
		      struct arca_err *err)
{
	struct backend_local *bl = (struct backend_local *)be;
	size_t n = strlen(prefix);
	if (n == 0 || prefix[n - 1] != '/' || check_name(prefix, err) != 0)
		return arca_err_set(err, ARCA_EINVAL, "bad list prefix '%s'", prefix);
	char *rel = strndup(prefix, n - 1);
	if (rel == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	int rc = walk(bl, rel, fn, ctx, err);
	free(rel);
	return rc;
}

static void local_close(struct backend *be)
{
	struct backend_local *bl = (struct backend_local *)be;
	if (bl->open_fd >= 0)
		close(bl->open_fd);
	free(bl->open_name);
	pthread_mutex_destroy(&bl->open_lock);
	free(bl->dir);
	free(bl);
}

static const struct backend_ops local_ops = {
	.put = local_put,
	.put_file = local_put_file,
	.get = local_get,
	.get_range = local_get_range,
	.size = local_size,
	.list = local_list,
	.close = local_close,
};

int backend_local_open(const char *dir, struct backend **be_r,
		       struct arca_err *err)
{
	struct backend_local *bl = calloc(1, sizeof(*bl));
	if (bl == NULL || (bl->dir = strdup(dir)) == NULL) {
		free(bl);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	bl->be.ops = &local_ops;
	bl->open_fd = -1;
	pthread_mutex_init(&bl->open_lock, NULL);
	*be_r = &bl->be;
	return 0;
}
