#include "maildir_merge.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "journal_restore.h"
#include "maildir.h"
#include "banned.h"

/* ---- Dovecot's dot-locks ---- */

/*
 * Our dot-locks.  Made whole as DIR/tmp/PID.RAND.NAME.arca-lock ("PID:HOST",
 * as Dovecot's file_dotlock writes it, so a Dovecot process that finds it
 * sees a live holder and waits) and linked to DIR/NAME.lock, as Dovecot's
 * own dot-locks are made: a run killed at any point never leaves a lock
 * without its holder.  The tmp/ name stays while the lock is held: a lock
 * with that second name is ours, and one of ours whose holder is gone (a
 * restore killed while holding it) is taken over at once.  A lock that is
 * not ours (Dovecot's, whose PID may live in another PID namespace) only
 * ever by Dovecot's own rule, unchanged for MERGE_LOCK_STALE_S.
 */

/* "PID:HOST" of the lock file open as fd: its PID when HOST is ours. */
static long lock_pid(int fd, const char *host)
{
	char buf[320];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *colon = strchr(buf, ':');
	if (colon == NULL)
		return 0;
	*colon = '\0';
	char *h = colon + 1, *end = NULL;
	h[strcspn(h, "\r\n")] = '\0';
	errno = 0;
	long pid = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || *end != '\0' || pid <= 0 || pid > INT_MAX || strcmp(h, host) != 0)
		return 0;
	return pid;
}

/* Is the lock at path (lstat'ed as *lst) one of ours whose holder is gone?
 * Then *companion_r is its tmp/ name (malloc'd). */
static bool lock_ours_gone(int tfd, const char *path, const char *name, const char *host,
			   const struct stat *lst, char **companion_r)
{
	*companion_r = NULL;
	if (tfd < 0 || !S_ISREG(lst->st_mode) || lst->st_nlink < 2)
		return false;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return false;
	struct stat st;
	long pid = fstat(fd, &st) == 0 && st.st_dev == lst->st_dev && st.st_ino == lst->st_ino
		   ? lock_pid(fd, host) : 0;
	close(fd);
	/* a process that exists (or that we may not signal) holds it; one
	 * with our own PID is a run before this one (we never take a lock
	 * twice) */
	if (pid == 0 || (pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno != ESRCH)))
		return false;
	char prefix[32], suffix[300];
	snprintf(prefix, sizeof(prefix), "%ld.", pid);
	int sl = snprintf(suffix, sizeof(suffix), ".%s.arca-lock", name);
	if (sl < 0 || (size_t)sl >= sizeof(suffix))
		return false;
	int dfd = dup(tfd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (d == NULL) {
		if (dfd >= 0)
			close(dfd);
		return false;
	}
	rewinddir(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL && *companion_r == NULL) {
		size_t nl = strlen(de->d_name);
		struct stat cst;
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0 && nl > (size_t)sl &&
		    strcmp(de->d_name + nl - (size_t)sl, suffix) == 0 &&
		    fstatat(tfd, de->d_name, &cst, AT_SYMLINK_NOFOLLOW) == 0 &&
		    cst.st_dev == lst->st_dev && cst.st_ino == lst->st_ino)
			*companion_r = strdup(de->d_name);
	}
	closedir(d);
	return *companion_r != NULL;
}

/* A new file path (relative to dfd) holding content, owned as given, its
 * identity in *st: 0, 1 when it can't be made (errno; EEXIST: there
 * already), or an ARCA_E* code (err set, nothing left). */
static int lock_file_new(int dfd, const char *path, const char *content, size_t clen, int owner_uid,
			 int owner_gid, struct stat *st, struct arca_err *err)
{
	int fd = openat(dfd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return 1;
	int rc = fs_write_all(fd, content, clen, path, err);
	if (rc == 0 && owner_uid >= 0 && fchown(fd, (uid_t)owner_uid, (gid_t)owner_gid) != 0)
		rc = arca_err_errno(err, ARCA_EIO, errno, "chown %s", path);
	if (rc == 0 && fstat(fd, st) != 0)
		rc = arca_err_errno(err, ARCA_EIO, errno, "stat %s", path);
	close(fd);
	if (rc)
		unlinkat(dfd, path, 0);
	return rc;
}

int merge_lock_take(const char *dir, const char *name, int owner_uid, int owner_gid,
		    struct merge_lock *l, struct arca_err *err)
{
	memset(l, 0, sizeof(*l));
	struct abuf p = ABUF_INIT, t = ABUF_INIT;
	if (abuf_printf(&p, "%s/%s.lock", dir, name) != 0 || abuf_cstr(&p) != 0 ||
	    abuf_printf(&t, "%s/tmp", dir) != 0 || abuf_cstr(&t) != 0) {
		abuf_release(&p);
		abuf_release(&t);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	const char *path = (const char *)p.data;
	char host[256] = "localhost", content[320];
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	int clen = snprintf(content, sizeof(content), "%ld:%s", (long)getpid(), host);
	uint64_t deadline = arca_mono_ns() + (uint64_t)MERGE_LOCK_WAIT_S * 1000000000ull;
	/* the lock, whole, under its tmp/ name; no tmp/ (or it can't be
	 * written): made in place with O_EXCL, as before */
	int tfd = open((const char *)t.data, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	char tname[400] = "";
	struct stat mine;
	int rc = 0;
	for (int tries = 0; tfd >= 0 && tries < 8; tries++) {
		uint64_t rnd = 0;
		if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			rnd = arca_mono_ns();
		if ((size_t)snprintf(tname, sizeof(tname), "%ld.%016llx.%s.arca-lock", (long)getpid(),
				     (unsigned long long)rnd, name) >= sizeof(tname))
			break;
		rc = lock_file_new(tfd, tname, content, (size_t)clen, owner_uid, owner_gid, &mine, err);
		if (rc <= 0 || errno != EEXIST)
			break;
		rc = 0;
	}
	if (rc < 0) {
		close(tfd);
		abuf_release(&p);
		abuf_release(&t);
		return rc;
	}
	if (tfd >= 0 && rc != 0) {   /* not made: in place */
		close(tfd);
		tfd = -1;
		rc = 0;
	}
	bool taken = false;
	while (rc == 0) {
		int got;
		if (tfd >= 0) {
			got = linkat(tfd, tname, AT_FDCWD, path, 0) == 0 ? 0 : 1;
			if (got == 1 && errno != EEXIST) {
				/* no hard links here (some FUSE, CIFS): in place */
				unlinkat(tfd, tname, 0);
				close(tfd);
				tfd = -1;
				continue;
			}
		} else {
			got = lock_file_new(AT_FDCWD, path, content, (size_t)clen, owner_uid, owner_gid, &mine, err);
		}
		if (got == 0) {
			taken = true;
			break;
		}
		if (got < 0) {
			rc = got;
			break;
		}
		if (errno != EEXIST) {
			rc = arca_err_errno(err, ARCA_EIO, errno, "create the lock %s", path);
			break;
		}
		struct stat st;
		if (lstat(path, &st) == 0) {
			time_t now = time(NULL);
			char *companion = NULL;
			bool gone = lock_ours_gone(tfd, path, name, host, &st, &companion);
			bool stale = now - st.st_mtime > MERGE_LOCK_STALE_S && now - st.st_ctime > MERGE_LOCK_STALE_S;
			struct stat again;
			/* still the file judged (Dovecot may have taken it over and
			 * made a new one meanwhile) */
			if ((gone || stale) && lstat(path, &again) == 0 && again.st_dev == st.st_dev &&
			    again.st_ino == st.st_ino && unlink(path) == 0) {
				if (companion != NULL)
					unlinkat(tfd, companion, 0);
				free(companion);
				continue;
			}
			free(companion);
		} else if (errno == ENOENT) {
			continue;
		}
		if (arca_mono_ns() > deadline) {
			rc = arca_err_set(err, ARCA_EBUSY,
					  "%s is held by another process for more than %d s (a stuck Dovecot process?); try again",
					  path, MERGE_LOCK_WAIT_S);
			break;
		}
		struct timespec ts = { 0, 50 * 1000000L };
		nanosleep(&ts, NULL);
	}
	abuf_release(&t);
	if (!taken) {
		if (tfd >= 0) {
			unlinkat(tfd, tname, 0);
			close(tfd);
		}
		abuf_release(&p);
		return rc;
	}
	l->path = (char *)p.data;   /* the buffer is the path */
	l->touched_ns = (int64_t)arca_mono_ns();
	l->dev = mine.st_dev;
	l->ino = mine.st_ino;
	if (tfd >= 0) {
		l->tmp_name = strdup(tname);
		if (l->tmp_name == NULL) {   /* the second name goes now: the lock stays plain */
			unlinkat(tfd, tname, 0);
			close(tfd);
		} else {
			l->tmpdir_fd = tfd;
		}
	}
	return 0;
}

void merge_lock_touch(struct merge_lock *l)
{
	if (l->path == NULL)
		return;
	int64_t now = (int64_t)arca_mono_ns();
	if (now - l->touched_ns < 10 * 1000000000LL)
		return;
	(void)utimensat(AT_FDCWD, l->path, NULL, AT_SYMLINK_NOFOLLOW);
	l->touched_ns = now;
}

void merge_lock_release(struct merge_lock *l)
{
	if (l->path == NULL)
		return;
	/* only our file: one taken over meanwhile as stale is another's now */
	struct stat st;
	if (lstat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
		unlink(l->path);
	if (l->tmp_name != NULL) {
		unlinkat(l->tmpdir_fd, l->tmp_name, 0);
		close(l->tmpdir_fd);
		free(l->tmp_name);
	}
	free(l->path);
	memset(l, 0, sizeof(*l));
}

static int write_control(const char *dir, const char *name, const void *data, size_t len,
			 int owner_uid, int owner_gid, bool durable, struct arca_err *err)
{
	struct abuf tmp = ABUF_INIT, fin = ABUF_INIT;
	int rc = 0;
	/* not starting with '.': in a Maildir++ root that would name a folder */
	if (abuf_printf(&tmp, "%s/%s.arca-tmp.%ld", dir, name, (long)getpid()) != 0 ||
	    abuf_cstr(&tmp) != 0 || abuf_printf(&fin, "%s/%s", dir, name) != 0 || abuf_cstr(&fin) != 0) {
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		goto out;
	}
	const char *t = (const char *)tmp.data, *f = (const char *)fin.data;
	int fd = open(t, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = arca_err_errno(err, arca_errno_code(errno), errno, "create %s", t);
		goto out;
	}
	rc = fs_write_all(fd, data, len, t, err);
	/* owned by the mail user before it gets its name: Dovecot must never
	 * see a file it can't read */
	if (rc == 0 && owner_uid >= 0 && fchown(fd, (uid_t)owner_uid, (gid_t)owner_gid) != 0)
		rc = arca_err_errno(err, ARCA_EIO, errno, "chown %s", t);
	if (rc == 0 && durable && fsync(fd) != 0)
		rc = arca_err_errno(err, arca_errno_code(errno), errno, "fsync %s", t);
	if (close(fd) != 0 && rc == 0)
		rc = arca_err_errno(err, ARCA_EIO, errno, "close %s", t);
	if (rc == 0 && rename(t, f) != 0)
		rc = arca_err_errno(err, ARCA_EIO, errno, "rename %s to %s", t, f);
	if (rc)
		unlink(t);
	else if (durable)
		rc = fs_fsync_dir(dir, err);
out:
	abuf_release(&tmp);
	abuf_release(&fin);
	return rc;
}

int merge_write_control(const char *dir, const char *name, const void *data, size_t len,
			int owner_uid, int owner_gid, struct arca_err *err)
{
	return write_control(dir, name, data, len, owner_uid, owner_gid, true, err);
}

/* A folder's control file: durable now, or (a staged restore) by the one
 * restore_sync_fd made before the directory is moved into place. */
static int control(const struct restore_opts *o, const char *dir, const char *name, const void *data,
		   size_t len, struct arca_err *err)
{
	return write_control(dir, name, data, len, o->owner_uid, o->owner_gid, !o->staged, err);
}

int merge_mkdirs(const char *path, int owner_uid, int owner_gid, struct arca_err *err)
{
	size_t n = strlen(path);
	char *p = malloc(n + 1);
	if (p == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	memcpy(p, path, n + 1);
	int rc = 0;
	for (size_t i = 1; i <= n && rc == 0; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		char c = p[i];
		p[i] = '\0';
		if (mkdir(p, 0700) == 0) {
			if (owner_uid >= 0 && chown(p, (uid_t)owner_uid, (gid_t)owner_gid) != 0)
				rc = arca_err_errno(err, ARCA_EIO, errno, "chown %s", p);
		} else if (errno == EEXIST) {
			struct stat st;
			if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
				rc = arca_err_set(err, ARCA_EINVAL, "%s exists and is not a directory", p);
		} else {
			rc = arca_err_errno(err, arca_errno_code(errno), errno, "mkdir %s", p);
		}
		p[i] = c;
	}
	free(p);
	return rc;
}

/* ---- one folder ---- */

/* A file of the destination folder. */
struct dfile {
	struct maildir_entry *e;      /* in the scan */
	char *base;                   /* up to the first ':' */
	uint32_t uid;                 /* from dovecot-uidlist; 0: none yet */
	bool matched;                 /* is one of the snapshot's messages */
};

/* A record of the dovecot-uidlist to write. */
struct nrec {
	uint32_t uid;
	const char *base, *ext;
	const char *info;   /* the record's name rest (":2,S"), as the destination's
			       or the snapshot's record had it; NULL or "": the base */
};

struct folder_plan {
	struct uidlist d;             /* the destination's (empty when absent) */
	bool have_ul;
	struct maildir_entry *ents;
	size_t nents;
	struct dfile *df;
	size_t *by_base, *by_size;    /* indexes into df, sorted */
	bool *d_matched;              /* per d.recs: is a snapshot message */
	int64_t *match;               /* per snapshot message: dfile index, -2 present
					 without a visible file, -1 to add */
	struct maildir_keywords kw;
	int kmap[SNAP_KEYWORDS_MAX];  /* snapshot keyword -> letter index, -1 none */
};

static int cmp_by_base(const void *a, const void *b, void *ctx)
{
	const struct dfile *df = ctx;
	return strcmp(df[*(const size_t *)a].base, df[*(const size_t *)b].base);
}

static int cmp_by_size(const void *a, const void *b, void *ctx)
{
	const struct dfile *df = ctx;
	uint64_t x = df[*(const size_t *)a].e->size, y = df[*(const size_t *)b].e->size;
	return x < y ? -1 : x > y;
}

static int cmp_nrec(const void *a, const void *b)
{
	uint32_t x = ((const struct nrec *)a)->uid, y = ((const struct nrec *)b)->uid;
	return x < y ? -1 : x > y;
}

static int64_t find_base(const struct folder_plan *p, const char *base)
{
	size_t lo = 0, hi = p->nents;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(p->df[p->by_base[mid]].base, base);
		if (c == 0)
			return (int64_t)p->by_base[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Index of the uidlist record with this uid, or -1. */
static int64_t find_uid(const struct uidlist *ul, uint32_t uid)
{
	size_t lo = 0, hi = ul->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ul->recs[mid].uid == uid)
			return (int64_t)mid;
		if (ul->recs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static void plan_release(struct folder_plan *p)
{
	if (p->df != NULL)
		for (size_t i = 0; i < p->nents; i++)
			free(p->df[i].base);
	free(p->df);
	free(p->by_base);
	free(p->by_size);
	free(p->d_matched);
	free(p->match);
	maildir_entries_free(p->ents, p->nents);
	uidlist_release(&p->d);
	keywords_release(&p->kw);
}

/* The destination's dovecot-uidlist and files (under the lock). */
static int read_dest(const char *fdir, struct folder_plan *p, struct arca_err *err)
{
	struct abuf buf = ABUF_INIT;
	char *path = fs_join(fdir, "dovecot-uidlist");
	if (path == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	struct arca_err sub = { 0 };
	int rc = fs_read_file(path, 256u << 20, &buf, &sub);
	if (rc == 0) {
		rc = uidlist_parse(buf.data, buf.len, &p->d, &sub);
		if (rc)
			rc = arca_err_set(err, rc, "%s can't be read (%s): this folder is left as it is",
					  path, sub.msg);
		p->have_ul = rc == 0;
	} else if (rc == ARCA_ENOENT) {
		rc = 0;
	} else {
		arca_err_set(err, rc, "%s", sub.msg);
	}
	free(path);
	abuf_release(&buf);
	if (rc)
		return rc;
	rc = maildir_scan(fdir, &p->ents, &p->nents, err);
	if (rc)
		return rc;
	size_t n = p->nents;
	p->df = calloc(n ? n : 1, sizeof(*p->df));
	p->by_base = malloc((n ? n : 1) * sizeof(size_t));
	p->by_size = malloc((n ? n : 1) * sizeof(size_t));
	p->d_matched = calloc(p->d.count ? p->d.count : 1, sizeof(bool));
	if (p->df == NULL || p->by_base == NULL || p->by_size == NULL || p->d_matched == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct dfile *d = &p->df[i];
		d->e = &p->ents[i];
		const char *colon = strchr(d->e->filename, ':');
		size_t bl = colon ? (size_t)(colon - d->e->filename) : strlen(d->e->filename);
		d->base = strndup(d->e->filename, bl);
		if (d->base == NULL)
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		const struct uidlist_rec *ur = p->have_ul ? uidlist_find_base(&p->d, d->base) : NULL;
		d->uid = ur ? ur->uid : 0;
		p->by_base[i] = p->by_size[i] = i;
	}
	qsort_r(p->by_base, n, sizeof(size_t), cmp_by_base, p->df);
	qsort_r(p->by_size, n, sizeof(size_t), cmp_by_size, p->df);
	return 0;
}

/* Equal bytes?  a and b are open at offset 0 (pread: offsets untouched). */
static int same_bytes(int a, int b, uint64_t size, bool *same_r)
{
	uint8_t x[16384], y[16384];
	*same_r = false;
	for (uint64_t off = 0; off < size;) {
		size_t want = size - off < sizeof(x) ? (size_t)(size - off) : sizeof(x);
		ssize_t k1 = pread(a, x, want, (off_t)off), k2 = pread(b, y, want, (off_t)off);
		if (k1 < 0 || k2 < 0)
			return ARCA_EIO;
		if (k1 != (ssize_t)want || k2 != (ssize_t)want || memcmp(x, y, want) != 0)
			return 0;
		off += want;
	}
	*same_r = true;
	return 0;
}

/* Is snapshot message m one of the destination's files of its size, byte
 * for byte?  Returns the dfile index or -1.  The snapshot's bytes are
 * fetched (into memory) only when a file of the same size exists. */
static int64_t match_content(struct repo *r, const char *fdir, struct folder_plan *p,
			     const struct snap_msg *m, struct arca_err *err, int *rc_r)
{
	*rc_r = 0;
	size_t lo = 0, hi = p->nents;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->df[p->by_size[mid]].e->size < m->size)
			lo = mid + 1;
		else
			hi = mid;
	}
	int mfd = -1;
	int64_t found = -1;
	for (size_t k = lo; k < p->nents && found < 0; k++) {
		struct dfile *d = &p->df[p->by_size[k]];
		if (d->e->size != m->size)
			break;
		if (d->matched)
			continue;
		if (mfd < 0) {
			mfd = memfd_create("arca-compare", MFD_CLOEXEC);
			uint64_t got = 0;
			if (mfd < 0) {
				*rc_r = arca_err_errno(err, ARCA_EIO, errno, "memfd_create");
				break;
			}
			*rc_r = repo_get_stream(r, m->content_type, m->content_id, mfd, m->base, &got, err);
			if (*rc_r)
				break;
			if (got != m->size) {
				*rc_r = arca_err_set(err, ARCA_ECORRUPT, "%s: %llu bytes, the snapshot says %llu",
						     m->base, (unsigned long long)got, (unsigned long long)m->size);
				break;
			}
		}
		struct arca_err sub = { 0 };
		struct maildir_entry e = *d->e;
		e.filename = strdup(d->e->filename);
		if (e.filename == NULL) {
			*rc_r = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			break;
		}
		int fd = maildir_open_message(fdir, &e, &sub);
		free(e.filename);
		if (fd < 0)
			continue;   /* gone meanwhile: not a match */
		bool same = false;
		if (same_bytes(mfd, fd, m->size, &same) == 0 && same)
			found = (int64_t)p->by_size[k];
		close(fd);
	}
	if (mfd >= 0)
		close(mfd);
	return found;
}

/* The folder's keywords: the destination's letters stay as they are, the
 * snapshot's keywords get theirs or the lowest free ones.  *changed_r when
 * dovecot-keywords must be written. */
static int map_keywords(const char *fdir, const struct snap_folder *f, struct folder_plan *p,
			const struct restore_opts *o, struct merge_report *rep, bool *changed_r,
			struct arca_err *err)
{
	*changed_r = false;
	for (size_t k = 0; k < SNAP_KEYWORDS_MAX; k++)
		p->kmap[k] = -1;
	struct abuf buf = ABUF_INIT;
	char *path = fs_join(fdir, "dovecot-keywords");
	if (path == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	struct arca_err sub = { 0 };
	keywords_release(&p->kw);
	keywords_init(&p->kw);
	int rc = fs_read_file(path, 1u << 20, &buf, &sub);
	if (rc == 0) {
		rc = keywords_parse(buf.data, buf.len, &p->kw, &sub);
		if (rc)
			rc = arca_err_set(err, rc, "%s can't be read (%s): this folder is left as it is",
					  path, sub.msg);
	} else if (rc == ARCA_ENOENT) {
		rc = 0;
	} else {
		arca_err_set(err, rc, "%s", sub.msg);
	}
	free(path);
	abuf_release(&buf);
	for (size_t k = 0; k < f->nkeywords && k < SNAP_KEYWORDS_MAX && rc == 0; k++) {
		int had = keywords_index(&p->kw, f->keywords[k], false);
		int idx = had >= 0 ? had : keywords_index(&p->kw, f->keywords[k], true);
		if (idx < 0) {
			rep->keywords_dropped++;
			if (o->warn)
				o->warn(o->ctx, f->name, "no keyword letter left (Maildir has 26): a keyword is not restored");
			continue;
		}
		if (had < 0)
			*changed_r = true;
		p->kmap[k] = idx;
	}
	return rc;
}

static uint32_t letters_of(const struct folder_plan *p, const struct snap_folder *f,
			   const struct snap_msg *m)
{
	uint32_t letters = 0;
	for (size_t k = 0; k < f->nkeywords && k < SNAP_KEYWORDS_MAX; k++)
		if ((m->keywords & (1ULL << k)) && p->kmap[k] >= 0)
			letters |= 1u << p->kmap[k];
	return letters;
}

/* Write m under tmp/ and move it to cur/ or new/ without replacing a
 * thing.  *installed_r false: a file of that name appeared meanwhile (the
 * same message: nothing written). */
static int install_msg(struct repo *r, const char *fdir, const struct snap_msg *m, const char *name,
		       const struct restore_opts *o, size_t seq, struct abuf *tmp, struct abuf *final,
		       bool *installed_r, struct arca_err *err)
{
	*installed_r = false;
	abuf_reset(final);
	if (abuf_printf(final, "%s/%s/%s", fdir, m->in_new ? "new" : "cur", name) != 0 ||
	    abuf_cstr(final) != 0)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	const char *fpath = (const char *)final->data;
	if (o->staged) {
		/* no server sees the directory yet: straight to the name */
		int fd = open(fpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0 && errno == EEXIST)
			return 0;   /* two records of one name: the first stays */
		if (fd < 0)
			return arca_err_errno(err, arca_errno_code(errno), errno, "create %s", fpath);
		int rc = restore_msg_write(r, m, fd, fpath, o->owner_uid, o->owner_gid, err);
		if (rc)
			unlink(fpath);
		else
			*installed_r = true;
		return rc;
	}
	/* a temporary name only here: the staged path above writes 200,000
	 * files of a full restore, each without one */
	abuf_reset(tmp);
	if (abuf_printf(tmp, "%s/tmp/%lld.P%ldQ%zu.arca-restore", fdir, (long long)time(NULL),
			(long)getpid(), seq) != 0 || abuf_cstr(tmp) != 0)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	const char *t = (const char *)tmp->data;
	int fd = open(t, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return arca_err_errno(err, arca_errno_code(errno), errno, "create %s", t);
	int rc = restore_msg_write(r, m, fd, t, o->owner_uid, o->owner_gid, err);
	if (rc == 0) {
		/* never replaces: renameat2(RENAME_NOREPLACE), or link() where
		 * the file system lacks it */
		if (renameat2(AT_FDCWD, t, AT_FDCWD, fpath, RENAME_NOREPLACE) == 0) {
			*installed_r = true;
			return 0;
		}
		if (errno == EINVAL || errno == ENOSYS) {
			if (link(t, fpath) == 0)
				*installed_r = true;
			else if (errno != EEXIST)
				rc = arca_err_errno(err, ARCA_EIO, errno, "link %s to %s", t, fpath);
		} else if (errno != EEXIST) {
			rc = arca_err_errno(err, ARCA_EIO, errno, "rename %s to %s", t, fpath);
		}
	}
	unlink(t);
	return rc;
}

static int make_folder_dirs(const char *fdir, int layout, const char *name,
			    const struct restore_opts *o, struct arca_err *err)
{
	int rc = merge_mkdirs(fdir, o->owner_uid, o->owner_gid, err);
	static const char *const subdirs[] = { "cur", "new", "tmp" };
	struct abuf sub = ABUF_INIT;
	for (int i = 0; i < 3 && rc == 0; i++) {
		abuf_reset(&sub);
		if (abuf_printf(&sub, "%s/%s", fdir, subdirs[i]) != 0 || abuf_cstr(&sub) != 0)
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		else
			rc = merge_mkdirs((const char *)sub.data, o->owner_uid, o->owner_gid, err);
	}
	if (rc == 0 && layout == MAILDIR_LAYOUT_MAILDIRPP && strcmp(name, "INBOX") != 0) {
		abuf_reset(&sub);
		if (abuf_printf(&sub, "%s/maildirfolder", fdir) != 0 || abuf_cstr(&sub) != 0) {
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		} else {
			int fd = open((const char *)sub.data, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
			if (fd < 0)
				rc = arca_err_errno(err, ARCA_EIO, errno, "create %s", (const char *)sub.data);
			else if (o->owner_uid >= 0 && fchown(fd, (uid_t)o->owner_uid, (gid_t)o->owner_gid) != 0)
				rc = arca_err_errno(err, ARCA_EIO, errno, "chown %s", (const char *)sub.data);
			if (fd >= 0)
				close(fd);
		}
	}
	abuf_release(&sub);
	return rc;
}

int maildir_merge_folder(struct repo *r, struct snap_folder *f, int layout,
			 const struct restore_opts *o, struct idset *keys, int64_t keys_from_sec,
			 struct merge_report *rep, struct arca_err *err)
{
	memset(rep, 0, sizeof(*rep));
	rep->folder = f->name;
	rep->dry_run = o->dry_run;
	int sync_fd = -1;
	struct abuf path = ABUF_INIT, name = ABUF_INIT, tmp = ABUF_INIT, final = ABUF_INIT,
		    data = ABUF_INIT;
	struct folder_plan p = { 0 };
	struct merge_lock kl = { 0 }, ul_lock = { 0 };
	struct nrec *recs = NULL;
	uidlist_init(&p.d);
	keywords_init(&p.kw);
	struct uidlist out;
	uidlist_init(&out);
	int rc = maildir_folder_path(o->dest, (enum maildir_layout)layout, f->name, &path);
	rc = rc ? rc : abuf_cstr(&path);
	if (rc) {
		rc = arca_err_set(err, rc, "folder name %s cannot be stored in a Maildir", f->name);
		goto out;
	}
	const char *fdir = (const char *)path.data;
	if (!(f->attrs & SNAP_FOLDER_SELECTABLE)) {
		rep->path = MERGE_PARENT;
		if (layout != MAILDIR_LAYOUT_MAILDIRPP && !o->dry_run)
			rc = merge_mkdirs(fdir, o->owner_uid, o->owner_gid, err);
		goto out;
	}
	rc = snapshot_load_msgs(r, f, err);
	if (rc)
		goto out;
	rep->snapshot_msgs = f->nmsgs;
	rep->highestmodseq = f->highestmodseq;
	for (size_t i = 0; i < f->nmsgs; i++)
		if (f->msgs[i].modseq > rep->highestmodseq)
			rep->highestmodseq = f->msgs[i].modseq;
	if (!o->dry_run) {
		rc = make_folder_dirs(fdir, layout, f->name, o, err);
		if (rc)
			goto out;
		/* opened before anything is written: syncfs reports the write
		 * errors since its file was opened (Linux 5.8), so one opened
		 * at the end could miss a failed writeback of ours */
		sync_fd = open(fdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sync_fd < 0) {
			rc = arca_err_errno(err, ARCA_EIO, errno, "open %s", fdir);
			goto out;
		}
	}
	/* Keywords first, under their own lock and never nested with the
	 * uidlist's (Dovecot may take them the other way round). */
	bool kw_changed = false;
	if (f->nkeywords > 0) {
		if (!o->dry_run)
			rc = merge_lock_take(fdir, "dovecot-keywords", o->owner_uid, o->owner_gid, &kl, err);
		rc = rc ? rc : map_keywords(fdir, f, &p, o, rep, &kw_changed, err);
		if (rc == 0 && kw_changed && !o->dry_run) {
			rc = keywords_format(&p.kw, &data);
			rc = rc ? arca_err_set(err, rc, "out of memory")
				: control(o, fdir, "dovecot-keywords", data.data, data.len, err);
		}
		merge_lock_release(&kl);
		if (rc)
			goto out;
	} else {
		for (size_t k = 0; k < SNAP_KEYWORDS_MAX; k++)
			p.kmap[k] = -1;
	}
	/* Everything from reading the folder to its new dovecot-uidlist under
	 * Dovecot's uidlist lock: no UID is given meanwhile. */
	if (!o->dry_run) {
		rc = merge_lock_take(fdir, "dovecot-uidlist", o->owner_uid, o->owner_gid, &ul_lock, err);
		if (rc)
			goto out;
	}
	rc = read_dest(fdir, &p, err);   /* (a folder not there yet reads empty) */
	if (rc)
		goto out;
	rep->was_uidvalidity = p.have_ul ? p.d.uidvalidity : 0;
	rep->snapshot_uidvalidity = f->uidvalidity;
	enum merge_path mp;
	if (!p.have_ul)
		mp = MERGE_EXACT;
	else if (p.d.uidvalidity == f->uidvalidity)
		mp = MERGE_SAME;
	else if (o->new_uidvalidity || f->uidvalidity == 0)
		mp = MERGE_NEW_UIDVALIDITY;
	else
		mp = MERGE_RENUMBER;
	rep->path = mp;

	/* Which of the snapshot's messages are there: pass 1 by UID (same
	 * UIDVALIDITY only) and file base name, pass 2 by bytes, so a file
	 * recognised by its name is never taken by another message's bytes. */
	p.match = malloc((f->nmsgs ? f->nmsgs : 1) * sizeof(int64_t));
	if (p.match == NULL) {
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < f->nmsgs; i++) {
		const struct snap_msg *m = &f->msgs[i];
		p.match[i] = -1;
		int64_t j = -1, k;
		if (mp == MERGE_SAME && m->uid != 0 && (j = find_uid(&p.d, m->uid)) >= 0) {
			p.d_matched[j] = true;
			k = find_base(&p, p.d.recs[j].base);
			if (k >= 0)
				p.df[k].matched = true;
			p.match[i] = k >= 0 ? k : -2;
			continue;
		}
		if ((k = find_base(&p, m->base)) >= 0) {
			p.df[k].matched = true;
			if (p.df[k].uid && (j = find_uid(&p.d, p.df[k].uid)) >= 0)
				p.d_matched[j] = true;
			p.match[i] = k;
			continue;
		}
		const struct uidlist_rec *ur = p.have_ul ? uidlist_find_base(&p.d, m->base) : NULL;
		if (ur != NULL) {
			p.d_matched[ur - p.d.recs] = true;
			p.match[i] = -2;
		}
	}
	for (size_t i = 0; i < f->nmsgs; i++) {
		if (p.match[i] != -1)
			continue;
		int64_t k = match_content(r, fdir, &p, &f->msgs[i], err, &rc);
		if (rc)
			goto out;
		if (k >= 0) {
			p.df[k].matched = true;
			int64_t j;
			if (p.df[k].uid && (j = find_uid(&p.d, p.df[k].uid)) >= 0)
				p.d_matched[j] = true;
			p.match[i] = k;
			rep->present_by_content++;
		}
	}

	/* The records to write and the UIDs of what is added. */
	recs = calloc(f->nmsgs + p.d.count + 1, sizeof(*recs));
	uint32_t *uid_of = calloc(f->nmsgs ? f->nmsgs : 1, sizeof(uint32_t));
	if (recs == NULL || uid_of == NULL) {
		free(uid_of);
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		goto out;
	}
	size_t nrecs = 0;
	uint32_t maxsnap = 0;
	for (size_t i = 0; i < f->nmsgs; i++)
		if (f->msgs[i].uid > maxsnap)
			maxsnap = f->msgs[i].uid;
	uint32_t next = 1;
	bool rewrite = mp == MERGE_EXACT || mp == MERGE_RENUMBER;
	if (mp == MERGE_SAME || mp == MERGE_NEW_UIDVALIDITY) {
		/* the destination's records all stay */
		for (size_t j = 0; j < p.d.count; j++)
			recs[nrecs++] = (struct nrec){ p.d.recs[j].uid, p.d.recs[j].base, p.d.recs[j].ext,
							p.d.recs[j].info };
		next = uidlist_next_uid(&p.d);
		if (mp == MERGE_SAME && f->nextuid > next)
			next = f->nextuid;
		if (mp == MERGE_SAME && maxsnap != 0 && maxsnap + 1 > next)
			next = maxsnap + 1;
	} else {
		next = f->nextuid;
		if (maxsnap != 0 && maxsnap + 1 > next)
			next = maxsnap + 1;
	}
	/* the snapshot's messages with their UIDs where that is allowed */
	for (size_t i = 0; i < f->nmsgs; i++) {
		const struct snap_msg *m = &f->msgs[i];
		int64_t k = p.match[i];
		if (k == -2 && mp == MERGE_RENUMBER) {
			/* listed under its base name, file not seen (being
			 * renamed by Dovecot right now): its UID is the snapshot's */
			const struct uidlist_rec *ur = uidlist_find_base(&p.d, m->base);
			if (m->uid != 0 && ur != NULL) {
				uid_of[i] = m->uid;
				recs[nrecs++] = (struct nrec){ m->uid, ur->base, ur->ext, ur->info };
			}
			continue;
		}
		if (k == -2)
			continue;   /* listed in the uidlist already */
		if (k >= 0 && p.df[k].uid != 0 && mp != MERGE_RENUMBER)
			continue;   /* has its UID here */
		if (m->uid == 0 || mp == MERGE_NEW_UIDVALIDITY)
			continue;   /* numbered below (or by Dovecot) */
		if (mp == MERGE_SAME && find_uid(&p.d, m->uid) >= 0)
			continue;   /* the UID is another message's: numbered below */
		uid_of[i] = m->uid;
		const char *ext = m->uidlist_ext, *info = m->uidlist_info;
		if (k >= 0 && p.df[k].uid != 0) {
			int64_t j = find_uid(&p.d, p.df[k].uid);
			if (j >= 0) {
				ext = p.d.recs[j].ext;
				info = p.d.recs[j].info;
			}
		}
		recs[nrecs++] = (struct nrec){ m->uid, k >= 0 ? p.df[k].base : m->base, ext, info };
		if (k < 0)
			rep->added_same_uid++;
		rewrite = true;
	}
	if (mp == MERGE_RENUMBER) {
		/* the folder's own mail, after the snapshot's UIDs, in its order */
		for (size_t j = 0; j < p.d.count; j++) {
			if (p.d_matched[j])
				continue;
			if (rep->kept == 0)
				rep->kept_first = next;
			rep->kept_last = next;
			rep->kept++;
			recs[nrecs++] = (struct nrec){ next++, p.d.recs[j].base, p.d.recs[j].ext,
							p.d.recs[j].info };
		}
	} else if (mp != MERGE_EXACT) {
		for (size_t j = 0; j < p.d.count; j++)
			rep->kept += !p.d_matched[j];
	}
	/* added messages without a UID of their own: new UIDs, in order */
	for (size_t i = 0; i < f->nmsgs; i++) {
		const struct snap_msg *m = &f->msgs[i];
		if (p.match[i] != -1 || uid_of[i] != 0 || m->uid == 0)
			continue;
		uid_of[i] = next;
		recs[nrecs++] = (struct nrec){ next++, m->base, m->uidlist_ext, m->uidlist_info };
		rewrite = true;
	}
	qsort(recs, nrecs, sizeof(*recs), cmp_nrec);
	for (size_t i = 1; i < nrecs; i++)
		if (recs[i].uid == recs[i - 1].uid) {
			free(uid_of);
			rc = arca_err_set(err, ARCA_ECORRUPT, "folder %s: UID %u would be given twice (bug)",
					  f->name, recs[i].uid);
			goto out;
		}
	/* the header */
	if (mp == MERGE_SAME || mp == MERGE_NEW_UIDVALIDITY) {
		out.uidvalidity = p.d.uidvalidity;
		snprintf(out.guid, sizeof(out.guid), "%s", p.d.guid);
		if (p.d.header_extra[0] != '\0')
			out.header_extra = strdup(p.d.header_extra);
	} else {
		out.uidvalidity = f->uidvalidity;
		snprintf(out.guid, sizeof(out.guid), "%s", f->guid[0] ? f->guid : p.d.guid);
		if (f->uidlist_extra[0] != '\0')
			out.header_extra = strdup(f->uidlist_extra);
	}
	if (out.header_extra == NULL) {
		free(uid_of);
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		goto out;
	}
	out.nextuid = next;
	for (size_t i = 0; i < nrecs && rc == 0; i++)
		if (uidlist_add_info(&out, recs[i].uid, recs[i].base, recs[i].ext, recs[i].info) != 0)
			rc = arca_err_set(err, ARCA_ECORRUPT, "folder %s: record %u can't be written", f->name,
					  recs[i].uid);
	rep->uidvalidity = out.uidvalidity;
	rep->nextuid = uidlist_next_uid(&out);
	if (rc) {
		free(uid_of);
		goto out;
	}

	/* the messages, then the uidlist that names them */
	uint64_t files = p.nents;
	for (size_t i = 0; i < f->nmsgs && rc == 0; i++) {
		const struct snap_msg *m = &f->msgs[i];
		if (p.match[i] != -1) {
			rep->present++;
			continue;
		}
		if (o->dry_run) {
			rep->added++;
			files++;
			continue;
		}
		struct arca_err merr = { 0 };
		rc = restore_msg_name(m, letters_of(&p, f, m), &name, &merr);
		if (rc == ARCA_EINVAL) {
			if (o->warn)
				o->warn(o->ctx, f->name, merr.msg);
			rep->unusable++;
			rc = 0;
			continue;
		}
		bool installed = false;
		rc = rc ? arca_err_set(err, rc, "%s", merr.msg)
			: install_msg(r, fdir, m, (const char *)name.data, o, i, &tmp, &final, &installed, err);
		if (rc)
			break;
		merge_lock_touch(&ul_lock);
		if (!installed) {
			rep->present++;
			continue;
		}
		rep->added++;
		files++;
		if (keys != NULL && m->date_sec >= keys_from_sec)
			rc = mkey_add_file(keys, (const char *)final.data, err);
	}
	free(uid_of);
	/* the destination's own recent mail: journaled copies of it are not
	 * added again */
	for (size_t k = 0; k < p.nents && rc == 0 && keys != NULL; k++) {
		struct maildir_entry *e = p.df[k].e;
		if (e->mtime_sec < keys_from_sec)
			continue;
		abuf_reset(&tmp);
		if (abuf_printf(&tmp, "%s/%s/%s", fdir, e->in_new ? "new" : "cur", e->filename) != 0 ||
		    abuf_cstr(&tmp) != 0) {
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			break;
		}
		struct arca_err sub = { 0 };
		(void)mkey_add_file(keys, (const char *)tmp.data, &sub);   /* renamed meanwhile: no matter */
	}
	for (size_t k = 0; k < p.nents; k++)
		rep->unlisted += p.df[k].uid == 0 && !p.df[k].matched;
	rep->messages = files;
	/* the messages are on disk before a dovecot-uidlist names them */
	if (rc == 0 && rep->added > 0 && !o->dry_run && !o->staged && syncfs(sync_fd) != 0)
		rc = arca_err_errno(err, ARCA_EIO, errno, "sync %s", fdir);
	if (rc == 0 && rewrite && !o->dry_run && f->uidvalidity != 0) {
		abuf_reset(&data);
		rc = uidlist_format(&out, &data);
		rc = rc ? arca_err_set(err, rc, "folder %s: the new dovecot-uidlist can't be written", f->name)
			: control(o, fdir, "dovecot-uidlist", data.data, data.len, err);
	}
out:
	if (sync_fd >= 0)
		close(sync_fd);
	merge_lock_release(&ul_lock);
	merge_lock_release(&kl);
	free(recs);
	uidlist_release(&out);
	plan_release(&p);
	abuf_release(&path);
	abuf_release(&name);
	abuf_release(&tmp);
	abuf_release(&final);
	abuf_release(&data);
	/* the records are not needed any more: bounded memory per folder */
	snap_folder_drop_msgs(f);
	return rc;
}

/* ---- subscriptions, journaled mail ---- */

int maildir_merge_subscriptions(const char *dest, char *const *names, size_t n,
				const struct restore_opts *o, size_t *added_r,
				struct arca_err *err)
{
	*added_r = 0;
	struct merge_lock l = { 0 };
	struct subscriptions subs;
	subscriptions_init(&subs);
	struct abuf buf = ABUF_INIT;
	int rc = o->dry_run ? 0 : merge_lock_take(dest, "subscriptions", o->owner_uid, o->owner_gid, &l, err);
	char *path = fs_join(dest, "subscriptions");
	if (rc == 0 && path == NULL)
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	struct arca_err sub = { 0 };
	if (rc == 0) {
		rc = fs_read_file(path, 64u << 20, &buf, &sub);
		if (rc == 0) {
			rc = subscriptions_parse(buf.data, buf.len, &subs, &sub);
			if (rc)
				arca_err_set(err, rc, "%s can't be read (%s): left as it is", path, sub.msg);
		} else if (rc == ARCA_ENOENT) {
			rc = 0;
		} else {
			arca_err_set(err, rc, "%s", sub.msg);
		}
	}
	size_t before = subs.count;
	for (size_t i = 0; i < n && rc == 0; i++)
		if (subscriptions_add(&subs, names[i]) != 0)
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	*added_r = subs.count - before;
	if (rc == 0 && *added_r > 0 && !o->dry_run) {
		abuf_reset(&buf);
		rc = subscriptions_format(&subs, &buf);
		rc = rc ? arca_err_set(err, rc, "subscriptions of %s can't be written", dest)
			: control(o, dest, "subscriptions", buf.data, buf.len, err);
	}
	merge_lock_release(&l);
	free(path);
	abuf_release(&buf);
	subscriptions_release(&subs);
	return rc;
}

int maildir_merge_install_staged(const char *staging, const char *fdir, uint64_t *moved_r,
				 struct arca_err *err)
{
	*moved_r = 0;
	static const char *const subs[] = { "new", "cur" };
	struct abuf from = ABUF_INIT, to = ABUF_INIT;
	int rc = 0;
	for (int s = 0; s < 2 && rc == 0; s++) {
		abuf_reset(&from);
		if (abuf_printf(&from, "%s/%s", staging, subs[s]) != 0 || abuf_cstr(&from) != 0) {
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			break;
		}
		DIR *d = opendir((const char *)from.data);
		if (d == NULL)
			continue;
		struct dirent *de;
		while (rc == 0 && (de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			abuf_reset(&from);
			abuf_reset(&to);
			if (abuf_printf(&from, "%s/%s/%s", staging, subs[s], de->d_name) != 0 ||
			    abuf_cstr(&from) != 0 ||
			    abuf_printf(&to, "%s/%s/%s", fdir, subs[s], de->d_name) != 0 || abuf_cstr(&to) != 0) {
				rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
				break;
			}
			const char *f = (const char *)from.data, *t = (const char *)to.data;
			if (renameat2(AT_FDCWD, f, AT_FDCWD, t, RENAME_NOREPLACE) == 0) {
				(*moved_r)++;
				continue;
			}
			if (errno == EINVAL || errno == ENOSYS) {
				if (link(f, t) == 0)
					(*moved_r)++;
				else if (errno != EEXIST)
					rc = arca_err_errno(err, ARCA_EIO, errno, "link %s to %s", f, t);
			} else if (errno != EEXIST) {
				rc = arca_err_errno(err, ARCA_EIO, errno, "rename %s to %s", f, t);
			}
			unlink(f);
		}
		closedir(d);
		abuf_reset(&from);
		if (abuf_printf(&from, "%s/%s", staging, subs[s]) == 0 && abuf_cstr(&from) == 0)
			rmdir((const char *)from.data);
	}
	rmdir(staging);
	abuf_release(&from);
	abuf_release(&to);
	return rc;
}
