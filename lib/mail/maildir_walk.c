/*
 * maildir_walk.c - folders of one Maildir root, messages of one folder.
 *
 * Every directory is opened relative to its parent with O_NOFOLLOW and every
 * file is checked with fstatat(AT_SYMLINK_NOFOLLOW): a symlink planted in a
 * Maildir can never lead the walk outside the root, and a FIFO or device
 * never gets opened for reading.
 */
#include "maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mail_private.h"
#include "banned.h"

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

static bool is_inbox(const char *s, size_t n)
{
	return n == 5 && strncasecmp(s, "INBOX", 5) == 0;
}

static bool is_dir_at(int dfd, const char *name)
{
	struct stat st;
	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

static bool has_mail_dirs(int dfd)
{
	return is_dir_at(dfd, "cur") || is_dir_at(dfd, "new");
}

/* A DIR stream on a dup of dfd.  A dup shares the file offset, so the
 * stream is rewound: an earlier readdir on the same descriptor would
 * otherwise leave it at the end. */
static DIR *opendir_at(int dfd)
{
	int fd = dup(dfd);
	if (fd < 0)
		return NULL;
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return NULL;
	}
	rewinddir(d);
	return d;
}

/* ---- folder name -> path --------------------------------------------- */

int maildir_folder_path(const char *root, enum maildir_layout layout, const char *name,
			struct abuf *path_out)
{
	abuf_reset(path_out);
	if (layout != MAILDIR_LAYOUT_MAILDIRPP && layout != MAILDIR_LAYOUT_FS)
		return ARCA_EINVAL;
	size_t n = strnlen(name, MAILDIR_FOLDER_NAME_MAX + 1);
	if (n == 0 || n > MAILDIR_FOLDER_NAME_MAX || !mail_utf8_valid(name, n))
		return ARCA_EINVAL;
	int rc = abuf_add(path_out, root, strlen(root));
	if (rc)
		return rc;
	if (is_inbox(name, n))
		return abuf_cstr(path_out);
	rc = abuf_add_u8(path_out, '/');
	size_t dir_start = path_out->len;
	if (rc == 0 && layout == MAILDIR_LAYOUT_MAILDIRPP)
		rc = abuf_add_u8(path_out, '.');
	struct abuf lvl = ABUF_INIT, enc = ABUF_INIT;
	const char *p = name;
	bool first = true;
	while (rc == 0) {
		const char *slash = strchr(p, '/');
		size_t ln = slash ? (size_t)(slash - p) : strlen(p);
		abuf_reset(&lvl);
		if ((rc = abuf_add(&lvl, p, ln)) != 0 || (rc = abuf_cstr(&lvl)) != 0)
			break;
		const char *l = ln ? (const char *)lvl.data : "";
		if (ln == 0 || l[0] == '.' ||
		    (layout == MAILDIR_LAYOUT_MAILDIRPP && memchr(l, '.', ln) != NULL) ||
		    (layout == MAILDIR_LAYOUT_FS && (strcmp(l, "cur") == 0 ||
						     strcmp(l, "new") == 0 ||
						     strcmp(l, "tmp") == 0))) {
			rc = ARCA_EINVAL;
			break;
		}
		/* INBOX's children: the top level is always spelt "INBOX". */
		if (first && is_inbox(l, ln))
			l = "INBOX";
		if ((rc = utf8_to_mutf7(l, &enc)) != 0) {
			rc = ARCA_EINVAL;
			break;
		}
		if (layout == MAILDIR_LAYOUT_FS) {
			if (enc.len > MAILDIR_NAME_MAX) {
				rc = ARCA_EINVAL;
				break;
			}
			dir_start = path_out->len;
		}
		if ((rc = abuf_add(path_out, enc.data, enc.len)) != 0)
			break;
		if (path_out->len - dir_start > MAILDIR_NAME_MAX) {
			rc = ARCA_EINVAL;
			break;
		}
		if (slash == NULL)
			break;
		rc = abuf_add_u8(path_out, layout == MAILDIR_LAYOUT_FS ? '/' : '.');
		p = slash + 1;
		first = false;
	}
	abuf_release(&lvl);
	abuf_release(&enc);
	if (rc == 0)
		rc = abuf_cstr(path_out);
	else
		abuf_reset(path_out);
	return rc;
}

/* ---- folder list ------------------------------------------------------ */

struct flist {
	struct maildir_folder *v;
	size_t n, cap;
	struct abuf *skipped;    /* directories that look like folders but whose
				    names don't decode: NUL-separated paths */
};

/* A directory we can't turn into a folder name is reported, never silently
 * dropped: its mail would be missing from the snapshot. */
static void note_skipped(struct flist *l, int dfd, const char *dpath, const char *dn)
{
	if (l->skipped == NULL)
		return;
	int sub = openat(dfd, dn, DIR_FLAGS);
	if (sub < 0)
		return;   /* not a directory: not a folder either */
	close(sub);
	abuf_add(l->skipped, dpath, strlen(dpath));
	abuf_add(l->skipped, "/", 1);
	abuf_add(l->skipped, dn, strlen(dn) + 1);
}

static void flist_free(struct flist *l)
{
	maildir_folders_free(l->v, l->n);
	l->v = NULL;
	l->n = l->cap = 0;
}

/* Takes ownership of name and path (frees them on failure). */
static int flist_add(struct flist *l, char *name, char *path, bool selectable)
{
	if (name == NULL || path == NULL || l->n >= MAILDIR_FOLDERS_MAX) {
		int rc = (name == NULL || path == NULL) ? ARCA_ENOMEM : ARCA_ELIMIT;
		free(name);
		free(path);
		return rc;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct maildir_folder *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL) {
			free(name);
			free(path);
			return ARCA_ENOMEM;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct maildir_folder){ name, path, selectable };
	return 0;
}

static char *abuf_strdup(const struct abuf *b)
{
	return mail_strndup(b->len ? (const char *)b->data : "", b->len);
}

/* Decodes one on-disk level (n bytes) and appends it to name, '/' first if
 * name is not empty.  false when the level is not a folder name. */
static bool add_level(struct abuf *name, const char *lvl, size_t n, struct abuf *tmp,
		      struct abuf *dec)
{
	abuf_reset(tmp);
	if (n == 0 || lvl[0] == '.' || abuf_add(tmp, lvl, n) || abuf_cstr(tmp))
		return false;
	if (mutf7_to_utf8((const char *)tmp->data, dec) != 0 ||
	    memchr(dec->data, '/', dec->len) != NULL)
		return false;
	if (name->len == 0 && is_inbox((const char *)dec->data, dec->len)) {
		abuf_reset(dec);
		if (abuf_add(dec, "INBOX", 5))
			return false;
	}
	if (name->len && abuf_add_u8(name, '/'))
		return false;
	return abuf_add(name, dec->data, dec->len) == 0 &&
	       name->len <= MAILDIR_FOLDER_NAME_MAX && abuf_cstr(name) == 0;
}

static char *join_path(const char *a, const char *b)
{
	struct abuf p = ABUF_INIT;
	if (abuf_printf(&p, "%s/%s", a, b) != 0 || abuf_cstr(&p) != 0) {
		abuf_release(&p);
		return NULL;
	}
	return (char *)p.data;
}

static int list_pp(int rootfd, const char *root, struct flist *l, struct arca_err *err)
{
	DIR *d = opendir_at(rootfd);
	if (d == NULL) {
		return arca_err_errno(err, ARCA_EIO, errno, "read directory %s", root);
	}
	struct abuf name = ABUF_INIT, tmp = ABUF_INIT, dec = ABUF_INIT;
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
		const char *dn = de->d_name;
		if (dn[0] != '.' || dn[1] == '\0' || dn[1] == '.')
			continue; /* not a Maildir++ folder ("..x" has an empty level) */
		abuf_reset(&name);
		bool ok = true;
		const char *p = dn + 1;
		for (;;) {
			const char *dot = strchr(p, '.');
			size_t ln = dot ? (size_t)(dot - p) : strlen(p);
			if (!add_level(&name, p, ln, &tmp, &dec)) {
				ok = false;
				break;
			}
			if (dot == NULL)
				break;
			p = dot + 1;
		}
		if (!ok) {
			note_skipped(l, rootfd, root, dn);
			continue;
		}
		if (strcmp((const char *)name.data, "INBOX") == 0)
			continue;
		int sub = openat(rootfd, dn, DIR_FLAGS);
		if (sub < 0)
			continue; /* a symlink, a file, or gone since readdir */
		bool sel = has_mail_dirs(sub);
		close(sub);
		rc = flist_add(l, abuf_strdup(&name), join_path(root, dn), sel);
	}
	if (rc == 0 && errno != 0)
		rc = arca_err_errno(err, ARCA_EIO, errno, "read directory %s", root);
	else if (rc)
		rc = arca_err_set(err, rc, "listing folders of %s: %s", root, arca_strerror(rc));
	closedir(d);
	abuf_release(&name);
	abuf_release(&tmp);
	abuf_release(&dec);
	return rc;
}

static int list_fs(int dfd, const char *dpath, const char *prefix, unsigned depth,
		   struct flist *l, struct arca_err *err)
{
	DIR *d = opendir_at(dfd);
	if (d == NULL) {
		return arca_err_errno(err, ARCA_EIO, errno, "read directory %s", dpath);
	}
	struct abuf name = ABUF_INIT, tmp = ABUF_INIT, dec = ABUF_INIT;
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
		const char *dn = de->d_name;
		if (dn[0] == '.' || strcmp(dn, "cur") == 0 || strcmp(dn, "new") == 0 ||
		    strcmp(dn, "tmp") == 0)
			continue;
		abuf_reset(&name);
		if (*prefix && (abuf_add(&name, prefix, strlen(prefix)) || abuf_cstr(&name)))
			continue;
		if (!add_level(&name, dn, strlen(dn), &tmp, &dec)) {
			note_skipped(l, dfd, dpath, dn);
			continue;
		}
		int sub = openat(dfd, dn, DIR_FLAGS);
		if (sub < 0)
			continue; /* a symlink, a file, or gone since readdir */
		char *path = join_path(dpath, dn);
		bool root_inbox = strcmp((const char *)name.data, "INBOX") == 0;
		if (!root_inbox) {
			char *nm = abuf_strdup(&name);
			rc = flist_add(l, nm, path ? mail_strndup(path, strlen(path)) : NULL,
				       has_mail_dirs(sub));
		}
		if (rc == 0 && path == NULL)
			rc = ARCA_ENOMEM;
		if (rc == 0 && depth + 1 < MAILDIR_DEPTH_MAX)
			rc = list_fs(sub, path, (const char *)name.data, depth + 1, l, err);
		free(path);
		close(sub);
	}
	if (rc == 0 && errno != 0)
		rc = arca_err_errno(err, ARCA_EIO, errno, "read directory %s", dpath);
	else if (rc)
		rc = arca_err_set(err, rc, "listing folders of %s: %s", dpath, arca_strerror(rc));
	closedir(d);
	abuf_release(&name);
	abuf_release(&tmp);
	abuf_release(&dec);
	return rc;
}

static enum maildir_layout detect_layout(int rootfd)
{
	DIR *d = opendir_at(rootfd);
	if (d == NULL) {
		return MAILDIR_LAYOUT_MAILDIRPP;
	}
	bool pp = false, fs = false;
	struct dirent *de;
	while (!pp && (de = readdir(d)) != NULL) {
		const char *dn = de->d_name;
		int sub = -1;
		if (dn[0] == '.') {
			if (dn[1] == '\0' || dn[1] == '.')
				continue;
			sub = openat(rootfd, dn, DIR_FLAGS);
			if (sub >= 0) {
				struct stat st;
				pp = has_mail_dirs(sub) ||
				     fstatat(sub, "maildirfolder", &st, AT_SYMLINK_NOFOLLOW) == 0;
			}
		} else if (!fs && strcmp(dn, "cur") != 0 && strcmp(dn, "new") != 0 &&
			   strcmp(dn, "tmp") != 0) {
			fs = is_dir_at(rootfd, dn);
		}
		if (sub >= 0)
			close(sub);
	}
	closedir(d);
	return pp ? MAILDIR_LAYOUT_MAILDIRPP : fs ? MAILDIR_LAYOUT_FS : MAILDIR_LAYOUT_MAILDIRPP;
}

static int cmp_folder(const void *a, const void *b)
{
	const struct maildir_folder *x = a, *y = b;
	bool xi = strcmp(x->name, "INBOX") == 0, yi = strcmp(y->name, "INBOX") == 0;
	if (xi != yi)
		return xi ? -1 : 1;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return (int)y->selectable - (int)x->selectable; /* selectable first */
}

/* Adds every missing parent of every folder (Maildir++ has no directory for
 * "A" when only ".A.B" exists), then sorts and drops repeats. */
static int finish_list(const char *root, enum maildir_layout layout, struct flist *l)
{
	size_t n0 = l->n;
	struct abuf path = ABUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < n0 && rc == 0; i++) {
		const char *nm = l->v[i].name;
		for (const char *s = strchr(nm, '/'); s != NULL && rc == 0; s = strchr(s + 1, '/')) {
			char *parent = mail_strndup(nm, (size_t)(s - nm));
			if (parent == NULL) {
				rc = ARCA_ENOMEM;
				break;
			}
			if (maildir_folder_path(root, layout, parent, &path) != 0) {
				free(parent);
				continue;
			}
			rc = flist_add(l, parent, abuf_strdup(&path), false);
		}
	}
	abuf_release(&path);
	if (rc)
		return rc;
	qsort(l->v, l->n, sizeof(*l->v), cmp_folder);
	size_t w = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (w > 0 && strcmp(l->v[w - 1].name, l->v[i].name) == 0) {
			free(l->v[i].name);
			free(l->v[i].path);
			continue;
		}
		l->v[w++] = l->v[i];
	}
	l->n = w;
	return 0;
}

int maildir_list_folders(const char *root, enum maildir_layout layout,
			 enum maildir_layout *layout_r, struct maildir_folder **folders_r,
			 size_t *count_r, struct arca_err *err)
{
	return maildir_list_folders_skipped(root, layout, layout_r, folders_r, count_r, NULL, err);
}

int maildir_list_folders_skipped(const char *root, enum maildir_layout layout,
				 enum maildir_layout *layout_r, struct maildir_folder **folders_r,
				 size_t *count_r, struct abuf *skipped, struct arca_err *err)
{
	*folders_r = NULL;
	*count_r = 0;
	int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		int e = errno;
		return arca_err_errno(err, e == ENOENT ? ARCA_ENOENT : ARCA_EIO, e,
				      "open Maildir %s", root);
	}
	if (layout == MAILDIR_LAYOUT_AUTO)
		layout = detect_layout(rootfd);
	if (layout_r)
		*layout_r = layout;
	struct flist l = { NULL, 0, 0, skipped };
	if (skipped != NULL)
		abuf_reset(skipped);
	int rc = flist_add(&l, mail_strndup("INBOX", 5), mail_strndup(root, strlen(root)),
			   has_mail_dirs(rootfd));
	if (rc)
		arca_err_set(err, rc, "out of memory");
	else if (layout == MAILDIR_LAYOUT_FS)
		rc = list_fs(rootfd, root, "", 0, &l, err);
	else
		rc = list_pp(rootfd, root, &l, err);
	close(rootfd);
	if (rc == 0 && (rc = finish_list(root, layout, &l)) != 0)
		arca_err_set(err, rc, "listing folders of %s: %s", root, arca_strerror(rc));
	if (rc) {
		flist_free(&l);
		return rc;
	}
	*folders_r = l.v;
	*count_r = l.n;
	return 0;
}

void maildir_folders_free(struct maildir_folder *folders, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(folders[i].name);
		free(folders[i].path);
	}
	free(folders);
}

/* ---- messages --------------------------------------------------------- */

struct elist {
	struct maildir_entry *v;
	size_t n, cap;
};

static void entry_set_stat(struct maildir_entry *e, const struct stat *st)
{
	e->size = (uint64_t)st->st_size;
	e->mtime_sec = (int64_t)st->st_mtim.tv_sec;
	e->mtime_nsec = (int32_t)st->st_mtim.tv_nsec;
	e->ino = (uint64_t)st->st_ino;
}

static int scan_sub(const char *folder, const char *sub, bool in_new, bool want_stat,
		    struct elist *l, struct arca_err *err)
{
	char *path = join_path(folder, sub);
	if (path == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	int dfd = open(path, DIR_FLAGS);
	if (dfd < 0) {
		int e = errno;
		int rc = 0;
		/* Missing, or a symlink (ELOOP) / not a directory: nothing to read. */
		if (e != ENOENT && e != ELOOP && e != ENOTDIR)
			rc = arca_err_errno(err, ARCA_EIO, e, "open %s", path);
		free(path);
		return rc;
	}
	DIR *d = opendir_at(dfd);
	if (d == NULL) {
		int rc = arca_err_errno(err, ARCA_EIO, errno, "read directory %s", path);
		close(dfd);
		free(path);
		return rc;
	}
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		struct stat st;
		/* Without want_stat, the directory entry's type is enough to keep
		 * a regular file; stat only when the filesystem doesn't say. */
		/* Anything else than a regular file (a symlink, FIFO, directory)
		 * is listed too: opening it fails, and the caller says so,
		 * instead of the message silently missing. */
		bool do_stat = want_stat || de->d_type == DT_UNKNOWN;
		if (do_stat && fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno == ENOENT)
				continue; /* renamed or expunged since readdir */
			rc = arca_err_errno(err, ARCA_EIO, errno, "stat %s/%s", path, de->d_name);
			break;
		}
		if (l->n >= MAILDIR_RECORDS_MAX) {
			rc = arca_err_set(err, ARCA_ELIMIT, "%s: more than %u messages", folder,
					  MAILDIR_RECORDS_MAX);
			break;
		}
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 64;
			struct maildir_entry *v = realloc(l->v, cap * sizeof(*v));
			if (v == NULL) {
				rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
				break;
			}
			l->v = v;
			l->cap = cap;
		}
		struct maildir_entry *e = &l->v[l->n];
		memset(e, 0, sizeof(*e));
		e->filename = mail_strndup(de->d_name, strlen(de->d_name));
		if (e->filename == NULL) {
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			break;
		}
		e->in_new = in_new;
		if (do_stat)
			entry_set_stat(e, &st);
		e->stat_valid = do_stat;
		l->n++;
	}
	if (rc == 0 && errno != 0)
		rc = arca_err_errno(err, ARCA_EIO, errno, "read directory %s", path);
	closedir(d);
	close(dfd);
	free(path);
	return rc;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct maildir_entry *x = a, *y = b;
	if (x->in_new != y->in_new)
		return x->in_new ? 1 : -1;
	return strcmp(x->filename, y->filename);
}

int maildir_scan(const char *folder_path, struct maildir_entry **entries_r, size_t *count_r,
		 struct arca_err *err)
{
	return maildir_scan_names(folder_path, true, entries_r, count_r, err);
}

int maildir_scan_names(const char *folder_path, bool want_stat,
		       struct maildir_entry **entries_r, size_t *count_r,
		       struct arca_err *err)
{
	*entries_r = NULL;
	*count_r = 0;
	struct elist l = { NULL, 0, 0 };
	int rc = scan_sub(folder_path, "cur", false, want_stat, &l, err);
	if (rc == 0)
		rc = scan_sub(folder_path, "new", true, want_stat, &l, err);
	if (rc) {
		maildir_entries_free(l.v, l.n);
		return rc;
	}
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), cmp_entry);
	*entries_r = l.v;
	*count_r = l.n;
	return 0;
}

void maildir_entries_free(struct maildir_entry *e, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(e[i].filename);
	free(e);
}

/* Opens name in dfd as a regular file without following a symlink and
 * without blocking on a FIFO.  fd, or -errno-like ARCA code. */
/* Why the last open failed, for the message (per thread: readers run in
 * parallel). */
static _Thread_local int open_errno;

static int open_regular(int dfd, const char *name, struct stat *st)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		open_errno = errno;
		return errno == ENOENT ? ARCA_ENOENT : errno == ELOOP ? ARCA_EFORMAT : ARCA_EIO;
	}
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return ARCA_EFORMAT;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		close(fd);
		return ARCA_EIO;
	}
	return fd;
}

/* Looks for a regular file in dfd whose base (up to ':') is base[0..n).
 * Returns an fd and sets *found_r (heap copy of the name), ARCA_ENOENT, or
 * another error. */
static int find_by_base(int dfd, const char *base, size_t n, struct stat *st, char **found_r)
{
	DIR *d = opendir_at(dfd);
	if (d == NULL) {
		return ARCA_EIO;
	}
	int rc = ARCA_ENOENT;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		const char *dn = de->d_name;
		if (strncmp(dn, base, n) != 0 || (dn[n] != '\0' && dn[n] != ':'))
			continue;
		rc = open_regular(dfd, dn, st);
		if (rc >= 0) {
			*found_r = mail_strndup(dn, strlen(dn));
			if (*found_r == NULL) {
				close(rc);
				rc = ARCA_ENOMEM;
			}
			break;
		}
		if (rc != ARCA_ENOENT)
			break;
		/* ENOENT: renamed again between readdir and open; keep looking
		 * (the caller runs further rounds). */
	}
	closedir(d);
	return rc;
}

int maildir_open_message(const char *folder_path, struct maildir_entry *entry,
			 struct arca_err *err)
{
	const char *fn = entry->filename;
	size_t fl = fn ? strnlen(fn, MAILDIR_NAME_MAX + 1) : 0;
	if (fl == 0 || fl > MAILDIR_NAME_MAX || fn[0] == '.' || memchr(fn, '/', fl) != NULL)
		return arca_err_set(err, ARCA_EINVAL, "bad message file name in %s", folder_path);
	int dfds[2] = { -1, -1 };
	static const char *const subs[2] = { "cur", "new" };
	int rc = ARCA_ENOENT;
	struct stat st;
	char *found = NULL;
	bool found_new = false;
	/* The common case, the file where it was listed: one open, no
	 * directory handles (this runs once per message read). */
	char direct[PATH_MAX];
	int dl = snprintf(direct, sizeof(direct), "%s/%s/%s", folder_path,
			  subs[entry->in_new ? 1 : 0], fn);
	if (dl > 0 && (size_t)dl < sizeof(direct)) {
		rc = open_regular(AT_FDCWD, direct, &st);
		if (rc >= 0) {
			found_new = entry->in_new;
			goto done;
		}
		if (rc != ARCA_ENOENT)
			goto out;
	}
	for (int i = 0; i < 2; i++) {
		char *p = join_path(folder_path, subs[i]);
		if (p == NULL) {
			rc = ARCA_ENOMEM;
			goto out;
		}
		dfds[i] = open(p, DIR_FLAGS);
		free(p);
	}
	/* The recorded name first; then the base in cur/ (where Dovecot moves
	 * messages and renames them on flag changes), then new/.  Three rounds
	 * cover a message renamed again while we looked. */
	int d0 = dfds[entry->in_new ? 1 : 0];
	if (d0 >= 0) {
		rc = open_regular(d0, fn, &st);
		if (rc >= 0) {
			found_new = entry->in_new;
			goto done;
		}
		if (rc != ARCA_ENOENT)
			goto out;
	}
	size_t bn = strcspn(fn, ":");
	for (int round = 0; round < 3 && rc == ARCA_ENOENT; round++) {
		for (int i = 0; i < 2 && rc == ARCA_ENOENT; i++) {
			if (dfds[i] < 0)
				continue;
			rc = find_by_base(dfds[i], fn, bn, &st, &found);
			found_new = i == 1;
		}
	}
	if (rc < 0)
		goto out;
done:
	if (found != NULL) {
		free(entry->filename);
		entry->filename = found;
		found = NULL;
	}
	entry->in_new = found_new;
	entry_set_stat(entry, &st);
	entry->stat_valid = true;
out:
	for (int i = 0; i < 2; i++)
		if (dfds[i] >= 0)
			close(dfds[i]);
	if (rc == ARCA_ENOENT)
		arca_err_set(err, rc, "message %s in %s is gone", fn, folder_path);
	else if (rc == ARCA_EFORMAT)
		arca_err_set(err, rc, "message %s in %s is not a regular file", fn, folder_path);
	else if (rc == ARCA_EIO && open_errno != 0)
		arca_err_errno(err, rc, open_errno, "open message %s in %s", fn, folder_path);
	else if (rc < 0)
		arca_err_set(err, rc, "open message %s in %s: %s", fn, folder_path,
			     arca_strerror(rc));
	return rc;
}
