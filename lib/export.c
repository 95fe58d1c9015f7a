/*
 * export.c - mboxrd and .eml files (export.h).
 */
#include "export.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "banned.h"

/* Text without a length prefix (abuf_add_str is the length-prefixed form). */
static int add_text(struct abuf *b, const char *s)
{
	return abuf_add(b, s, strlen(s));
}

/* ---- paths ---- */

static bool ends_with_nocase(const char *p, size_t n, const char *suf)
{
	size_t sl = strlen(suf);
	return n >= sl && strncasecmp(p + n - sl, suf, sl) == 0;
}

static int add_level(const char *p, size_t n, struct abuf *out)
{
	if (n == 0)
		return abuf_add_u8(out, '%') ? ARCA_ENOMEM : 0;
	/* the '.' of a reserved suffix, escaped */
	size_t dot = SIZE_MAX;
	if (ends_with_nocase(p, n, ".mbox"))
		dot = n - 5;
	else if (ends_with_nocase(p, n, ".eml") || ends_with_nocase(p, n, ".tsv"))
		dot = n - 4;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)p[i];
		int r;
		if (c < 0x20 || c == 0x7f || c == '%' || (c == '.' && (i == 0 || i == dot)))
			r = abuf_printf(out, "%%%02X", c);
		else
			r = abuf_add_u8(out, c);
		if (r)
			return ARCA_ENOMEM;
	}
	return 0;
}

int export_folder_path(const char *folder, struct abuf *out)
{
	abuf_reset(out);
	if (folder == NULL || folder[0] == '\0')
		return ARCA_EINVAL;
	const char *p = folder;
	for (;;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (out->len > 0 && abuf_add_u8(out, '/'))
			return ARCA_ENOMEM;
		int rc = add_level(p, n, out);
		if (rc)
			return rc;
		if (e == NULL)
			break;
		p = e + 1;
	}
	return abuf_cstr(out) ? ARCA_ENOMEM : 0;
}

/* ---- safe files ---- */

struct export_file {
	char *path, *tmp;
	int fd;
	bool force;
};

int export_file_open(const char *path, bool force, struct export_file **f_r,
		     struct arca_err *err)
{
	*f_r = NULL;
	struct stat st;
	if (!force && lstat(path, &st) == 0)
		return arca_err_set(err, ARCA_EEXIST, "%s exists (--force writes over it)", path);
	struct export_file *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	f->fd = -1;
	f->force = force;
	f->path = strdup(path);
	char *dir = fs_dirname(path);
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	struct abuf t = ABUF_INIT;
	int rc = 0;
	if (f->path == NULL || dir == NULL ||
	    abuf_printf(&t, "%s/.%.100s.tmp.XXXXXX", dir, base) || abuf_cstr(&t))
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	free(dir);
	if (rc == 0) {
		f->tmp = (char *)t.data;
		t.data = NULL;
		f->fd = mkostemp(f->tmp, O_CLOEXEC);
		if (f->fd < 0) {
			rc = arca_err_errno(err, ARCA_EIO, errno, "create %s", f->tmp);
			free(f->tmp);
			f->tmp = NULL;
		} else if (fchmod(f->fd, 0600) != 0) {
			rc = arca_err_errno(err, ARCA_EIO, errno, "chmod %s", f->tmp);
		}
	}
	abuf_release(&t);
	if (rc) {
		export_file_abort(f);
		return rc;
	}
	*f_r = f;
	return 0;
}

int export_file_write(struct export_file *f, const void *p, size_t n, struct arca_err *err)
{
	return fs_write_all(f->fd, p, n, f->tmp, err);
}

int export_file_copy(struct export_file *f, int fd, uint64_t off, uint64_t len,
		     struct arca_err *err)
{
	uint8_t buf[65536];
	while (len > 0) {
		size_t want = len < sizeof(buf) ? (size_t)len : sizeof(buf);
		int rc = fs_pread_exact(fd, buf, want, off, "a message", err);
		if (rc == 0)
			rc = export_file_write(f, buf, want, err);
		if (rc)
			return rc;
		off += want;
		len -= want;
	}
	return 0;
}

void export_file_abort(struct export_file *f)
{
	if (f == NULL)
		return;
	if (f->fd >= 0)
		close(f->fd);
	if (f->tmp)
		unlink(f->tmp);
	free(f->tmp);
	free(f->path);
	free(f);
}

int export_file_commit(struct export_file *f, int64_t mtime_sec, int32_t mtime_nsec,
		       struct arca_err *err)
{
	int rc = 0;
	if (fsync(f->fd) != 0)
		rc = arca_err_errno(err, ARCA_EIO, errno, "fsync %s", f->tmp);
	if (rc == 0 && mtime_sec != INT64_MIN) {
		struct timespec ts[2] = { { .tv_sec = (time_t)mtime_sec, .tv_nsec = mtime_nsec },
					  { .tv_sec = (time_t)mtime_sec, .tv_nsec = mtime_nsec } };
		if (mtime_nsec < 0 || mtime_nsec > 999999999)
			ts[0].tv_nsec = ts[1].tv_nsec = 0;
		if (futimens(f->fd, ts) != 0)
			rc = arca_err_errno(err, ARCA_EIO, errno, "set the time of %s", f->tmp);
	}
	if (rc == 0 && close(f->fd) != 0)
		rc = arca_err_errno(err, ARCA_EIO, errno, "close %s", f->tmp);
	f->fd = -1;
	if (rc == 0) {
		int r = f->force ? rename(f->tmp, f->path)
				 : renameat2(AT_FDCWD, f->tmp, AT_FDCWD, f->path, RENAME_NOREPLACE);
		if (r != 0 && errno == EEXIST)
			rc = arca_err_set(err, ARCA_EEXIST, "%s exists (--force writes over it)", f->path);
		else if (r != 0)
			rc = arca_err_errno(err, ARCA_EIO, errno, "rename to %s", f->path);
	}
	if (rc == 0) {
		free(f->tmp);
		f->tmp = NULL;   /* renamed: nothing to unlink */
	}
	export_file_abort(f);
	return rc;
}

int export_sync_dir(const char *dir, struct arca_err *err)
{
	return fs_fsync_dir(dir, err);
}

/* ---- mboxrd ---- */

void mboxrd_init(struct mboxrd *q)
{
	memset(q, 0, sizeof(*q));
	q->line_start = true;
}

static int put_gts(struct mboxrd *q, uint64_t n, struct abuf *out)
{
	static const uint8_t gts[64] = { [0 ... 63] = '>' };
	while (n > 0) {
		size_t k = n < sizeof(gts) ? (size_t)n : sizeof(gts);
		if (abuf_add(out, gts, k))
			return ARCA_ENOMEM;
		n -= k;
		q->written += k;
		q->last = '>';
	}
	return 0;
}

/* The held-back line start, with one more '>' when it is "From ". */
static int release(struct mboxrd *q, bool from, struct abuf *out)
{
	int rc = put_gts(q, q->gt + (from ? 1 : 0), out);
	if (rc == 0 && q->nrest > 0) {
		if (abuf_add(out, q->rest, q->nrest))
			return ARCA_ENOMEM;
		q->written += q->nrest;
		q->last = q->rest[q->nrest - 1];
	}
	q->gt = 0;
	q->nrest = 0;
	q->line_start = false;
	return rc;
}

int mboxrd_feed(struct mboxrd *q, const uint8_t *p, size_t n, struct abuf *out)
{
	static const char from[] = "From ";
	size_t i = 0;
	while (i < n) {
		if (!q->line_start) {
			/* the rest of the line in one piece */
			const uint8_t *lf = memchr(p + i, '\n', n - i);
			size_t k = lf ? (size_t)(lf - (p + i)) + 1 : n - i;
			if (abuf_add(out, p + i, k))
				return ARCA_ENOMEM;
			q->written += k;
			q->last = p[i + k - 1];
			i += k;
			if (lf)
				q->line_start = true;
			continue;
		}
		uint8_t c = p[i++];
		if (c == '>' && q->nrest == 0) {
			q->gt++;
			continue;
		}
		q->rest[q->nrest++] = c;
		if ((uint8_t)from[q->nrest - 1] != c) {
			int rc = release(q, false, out);
			if (rc)
				return rc;
			if (c == '\n')
				q->line_start = true;
		} else if (q->nrest == 5) {
			int rc = release(q, true, out);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int mboxrd_finish(struct mboxrd *q, struct abuf *out)
{
	if (q->gt == 0 && q->nrest == 0)
		return 0;
	int rc = release(q, false, out);
	q->line_start = true;
	return rc;
}

int export_from_line(int64_t date, struct abuf *out)
{
	static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	time_t t = (time_t)date;
	if ((int64_t)t != date || gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm)), tm.tm_year = 70, tm.tm_mday = 1, tm.tm_wday = 4;
	/* asctime's form: "Thu Nov 28 06:14:44 2026" (day space-padded) */
	return abuf_printf(out, "From MAILER-DAEMON %s %s %2d %02d:%02d:%02d %ld\n", wd[tm.tm_wday % 7],
			   mon[tm.tm_mon % 12], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			   (long)tm.tm_year + 1900) ? ARCA_ENOMEM : 0;
}

static bool has_flag(uint32_t flags, char letter)
{
	return (flags & (1u << (letter - 'A'))) != 0;
}

static bool keyword_plain(const char *k)
{
	if (*k == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)k; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return false;
	return true;
}

int export_status_headers(const struct export_meta *m, struct abuf *out)
{
	int r = abuf_printf(out, "Status: %sO\n", has_flag(m->flags, 'S') ? "R" : "");
	char xs[8];
	size_t k = 0;
	if (has_flag(m->flags, 'R'))
		xs[k++] = 'A';
	if (has_flag(m->flags, 'F'))
		xs[k++] = 'F';
	if (has_flag(m->flags, 'D'))
		xs[k++] = 'T';
	if (has_flag(m->flags, 'T'))
		xs[k++] = 'D';
	xs[k] = '\0';
	if (r == 0 && k > 0)
		r = abuf_printf(out, "X-Status: %s\n", xs);
	bool any = false;
	for (size_t i = 0; r == 0 && i < m->nkeywords; i++) {
		if (m->keywords[i] == NULL || !keyword_plain(m->keywords[i]))
			continue;
		r = abuf_printf(out, "%s%s", any ? " " : "X-Keywords: ", m->keywords[i]);
		any = true;
	}
	if (r == 0 && any)
		r = abuf_add_u8(out, '\n');
	return r ? ARCA_ENOMEM : 0;
}

int export_mbox_message(struct export_file *f, const struct export_meta *m, bool with_status,
			int fd, uint64_t off, uint64_t len, struct arca_err *err)
{
	struct abuf out = ABUF_INIT;
	int rc = export_from_line(m->date_sec, &out);
	if (rc == 0 && with_status)
		rc = export_status_headers(m, &out);
	if (rc)
		rc = arca_err_set(err, rc, "out of memory");
	struct mboxrd q;
	mboxrd_init(&q);
	uint8_t buf[65536];
	while (rc == 0 && len > 0) {
		size_t want = len < sizeof(buf) ? (size_t)len : sizeof(buf);
		rc = fs_pread_exact(fd, buf, want, off, "a message", err);
		if (rc == 0 && mboxrd_feed(&q, buf, want, &out))
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		if (rc == 0)
			rc = export_file_write(f, out.data, out.len, err);
		abuf_reset(&out);
		off += want;
		len -= want;
	}
	if (rc == 0 && mboxrd_finish(&q, &out))
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	/* every message ends with a line end, then the empty line */
	if (rc == 0 && q.written > 0 && q.last != '\n' && abuf_add_u8(&out, '\n'))
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	if (rc == 0 && abuf_add_u8(&out, '\n'))
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	if (rc == 0)
		rc = export_file_write(f, out.data, out.len, err);
	abuf_release(&out);
	return rc;
}

/* ---- index.tsv ---- */

int export_index_header(struct abuf *out)
{
	return add_text(out, "uid\tflags\tkeywords\tdate\tsize\n") ? ARCA_ENOMEM : 0;
}

int export_index_line(const struct export_meta *m, struct abuf *out)
{
	static const struct { char letter; const char *flag; } map[] = {
		{ 'S', "\\Seen" }, { 'R', "\\Answered" }, { 'F', "\\Flagged" },
		{ 'T', "\\Deleted" }, { 'D', "\\Draft" },
	};
	int r = abuf_printf(out, "%u\t", m->uid);
	bool first = true;
	for (size_t i = 0; r == 0 && i < sizeof(map) / sizeof(map[0]); i++) {
		if (!has_flag(m->flags, map[i].letter))
			continue;
		r = abuf_printf(out, "%s%s", first ? "" : " ", map[i].flag);
		first = false;
	}
	if (r == 0)
		r = abuf_add_u8(out, '\t');
	for (size_t i = 0; r == 0 && i < m->nkeywords; i++) {
		if (i > 0)
			r = abuf_add_u8(out, ' ');
		for (const char *k = m->keywords[i] ? m->keywords[i] : ""; r == 0 && *k; k++) {
			switch (*k) {
			case '\t': r = add_text(out, "\\t"); break;
			case '\n': r = add_text(out, "\\n"); break;
			case '\r': r = add_text(out, "\\r"); break;
			case ' ': r = add_text(out, "\\s"); break;
			case '\\': r = add_text(out, "\\\\"); break;
			default: r = abuf_add_u8(out, (uint8_t)*k); break;
			}
		}
	}
	struct tm tm;
	time_t t = (time_t)m->date_sec;
	if (gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	int32_t ns = m->date_nsec >= 0 && m->date_nsec <= 999999999 ? m->date_nsec : 0;
	if (r == 0)
		r = abuf_printf(out, "\t%04ld-%02d-%02dT%02d:%02d:%02d.%09dZ\t%llu\n",
				(long)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
				tm.tm_min, tm.tm_sec, (int)ns, (unsigned long long)m->size);
	return r ? ARCA_ENOMEM : 0;
}
