/* Unit tests for lib/backend_local.c: the write-once local directory. */
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "buf.h"
#include "fsutil.h"
#include "harness.h"

static void rm_rf(char *dir)
{
	harness_rm_rf(dir);
	free(dir);
}

static void test_put_get(void)
{
	char *dir = harness_tmpdir("backend");
	struct backend *be = NULL;
	REQUIRE(backend_local_open(dir, &be, NULL) == 0);
	struct arca_err err = { 0 };
	CHECK(be->ops->put(be, "config", "hello", 5, &err) == 0);
	CHECK(be->ops->put(be, "data/ab/deep/er.pack", "0123456789", 10, &err) == 0);
	CHECK(be->ops->put(be, "empty", "", 0, &err) == 0);
	struct abuf b = ABUF_INIT;
	CHECK(be->ops->get(be, "config", 100, &b, &err) == 0);
	CHECK(b.len == 5 && memcmp(b.data, "hello", 5) == 0);
	CHECK(be->ops->get(be, "empty", 100, &b, &err) == 0 && b.len == 0);
	arca_err_clear(&err);
	CHECK_EQ_INT(be->ops->get(be, "config", 4, &b, &err), ARCA_ELIMIT);
	uint8_t r[4];
	CHECK(be->ops->get_range(be, "data/ab/deep/er.pack", 3, 4, r, NULL) == 0);
	CHECK(memcmp(r, "3456", 4) == 0);
	arca_err_clear(&err);
	CHECK_EQ_INT(be->ops->get_range(be, "data/ab/deep/er.pack", 8, 4, r, &err), ARCA_ECORRUPT);
	uint64_t size = 0;
	CHECK(be->ops->size(be, "data/ab/deep/er.pack", &size, NULL) == 0 && size == 10);
	/* missing names */
	arca_err_clear(&err);
	CHECK_EQ_INT(be->ops->size(be, "nope", &size, &err), ARCA_ENOENT);
	arca_err_clear(&err);
	CHECK_EQ_INT(be->ops->get(be, "nope", 100, &b, &err), ARCA_ENOENT);
	arca_err_clear(&err);
	CHECK_EQ_INT(be->ops->get_range(be, "nope", 0, 1, r, &err), ARCA_ENOENT);
	/* stored files are read-only */
	char *p = fs_join(dir, "config");
	struct stat st;
	CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0444);
	free(p);
	/* names that would leave the directory */
	arca_err_clear(&err);
	CHECK_EQ_INT(be->ops->put(be, "../escape", "x", 1, &err), ARCA_EINVAL);
	CHECK_EQ_INT(be->ops->put(be, "/abs", "x", 1, NULL), ARCA_EINVAL);
	CHECK_EQ_INT(be->ops->put(be, "a/../../b", "x", 1, NULL), ARCA_EINVAL);
	CHECK_EQ_INT(be->ops->put(be, "", "x", 1, NULL), ARCA_EINVAL);
	CHECK_EQ_INT(be->ops->get(be, "../x", 10, &b, NULL), ARCA_EINVAL);
	abuf_release(&b);
	backend_close(be);
	rm_rf(dir);
}

static void test_write_once(void)
{
	char *dir = harness_tmpdir("backend");
	struct backend *be = NULL;
	REQUIRE(backend_local_open(dir, &be, NULL) == 0);
	struct arca_err err = { 0 };
	REQUIRE(be->ops->put(be, "log/000/1", "original", 8, &err) == 0);
	CHECK_EQ_INT(be->ops->put(be, "log/000/1", "replaced!", 9, &err), ARCA_EEXIST);
	CHECK(strstr(err.msg, "already exists") != NULL);
	struct abuf b = ABUF_INIT;
	CHECK(be->ops->get(be, "log/000/1", 100, &b, NULL) == 0);
	CHECK(b.len == 8 && memcmp(b.data, "original", 8) == 0);

	/* put_file: consumes the source on success, refuses an existing name
	 * and leaves both files as they were */
	char *tmp = fs_join(dir, "tmp");
	REQUIRE(fs_mkdirs(tmp, 0700, NULL) == 0);
	char *src = fs_join(tmp, "upload");
	REQUIRE(fs_write_file(src, "fresh", 5, 0600, 0, NULL) == 0);
	CHECK(be->ops->put_file(be, "data/x/one", src, NULL) == 0);
	CHECK(access(src, F_OK) != 0);
	CHECK(be->ops->get(be, "data/x/one", 100, &b, NULL) == 0);
	CHECK(b.len == 5 && memcmp(b.data, "fresh", 5) == 0);
	REQUIRE(fs_write_file(src, "other", 5, 0600, 0, NULL) == 0);
	arca_err_clear(&err);
	CHECK_EQ_INT(be->ops->put_file(be, "data/x/one", src, &err), ARCA_EEXIST);
	CHECK(be->ops->get(be, "data/x/one", 100, &b, NULL) == 0);
	CHECK(b.len == 5 && memcmp(b.data, "fresh", 5) == 0);
	CHECK(access(src, F_OK) == 0);
	CHECK_EQ_INT(be->ops->put_file(be, "config/../..", src, NULL), ARCA_EINVAL);
	unlink(src);
	/* a missing source */
	CHECK(be->ops->put_file(be, "data/x/two", src, NULL) != 0);
	uint64_t size;
	CHECK_EQ_INT(be->ops->size(be, "data/x/two", &size, NULL), ARCA_ENOENT);
	free(src);
	free(tmp);
	abuf_release(&b);
	backend_close(be);
	rm_rf(dir);
}

struct names {
	char *v[32];
	size_t n;
	int stop_after;
};

static int collect(const char *name, void *ctx)
{
	struct names *ns = ctx;
	if (ns->n < 32)
		ns->v[ns->n++] = strdup(name);
	return ns->stop_after && (int)ns->n >= ns->stop_after ? 1 : 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	ns->n = 0;
}

static void test_list(void)
{
	char *dir = harness_tmpdir("backend");
	struct backend *be = NULL;
	REQUIRE(backend_local_open(dir, &be, NULL) == 0);
	static const char *const all[] = { "config", "data/00/a.pack", "data/00/b.pack",
					   "data/ff/c.pack", "log/000/0", "log/000/1",
					   "log/001/1000" };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		REQUIRE(be->ops->put(be, all[i], all[i], strlen(all[i]), NULL) == 0);
	/* a leftover temporary file (an interrupted write) is not listed */
	char *junk = fs_join(dir, "data/00/d.pack.tmp.123.0");
	REQUIRE(fs_write_file(junk, "junk", 4, 0600, 0, NULL) == 0);
	free(junk);

	struct names ns = { { 0 }, 0, 0 };
	CHECK(be->ops->list(be, "data/", collect, &ns, NULL) == 0);
	qsort(ns.v, ns.n, sizeof(ns.v[0]), cmp_str);
	CHECK_EQ_INT(ns.n, 3);
	if (ns.n == 3) {
		CHECK_STR(ns.v[0], "data/00/a.pack");
		CHECK_STR(ns.v[1], "data/00/b.pack");
		CHECK_STR(ns.v[2], "data/ff/c.pack");
	}
	names_free(&ns);
	CHECK(be->ops->list(be, "log/", collect, &ns, NULL) == 0);
	CHECK_EQ_INT(ns.n, 3);
	names_free(&ns);
	CHECK(be->ops->list(be, "log/001/", collect, &ns, NULL) == 0);
	CHECK(ns.n == 1 && strcmp(ns.v[0], "log/001/1000") == 0);
	names_free(&ns);
	/* an absent prefix is an empty list */
	CHECK(be->ops->list(be, "snapshots/", collect, &ns, NULL) == 0);
	CHECK_EQ_INT(ns.n, 0);
	/* the callback can stop the walk */
	ns.stop_after = 2;
	CHECK_EQ_INT(be->ops->list(be, "log/", collect, &ns, NULL), 1);
	CHECK_EQ_INT(ns.n, 2);
	names_free(&ns);
	ns.stop_after = 0;
	/* prefixes must be directory-like */
	CHECK_EQ_INT(be->ops->list(be, "data", collect, &ns, NULL), ARCA_EINVAL);
	CHECK_EQ_INT(be->ops->list(be, "", collect, &ns, NULL), ARCA_EINVAL);
	CHECK_EQ_INT(be->ops->list(be, "../", collect, &ns, NULL), ARCA_EINVAL);
	CHECK_EQ_INT(ns.n, 0);
	backend_close(be);
	rm_rf(dir);
}

/* fs_remove_tree: a whole tree goes, symlinks in it are removed as links
 * (what they point to stays), an absent path is fine, a hostile depth is
 * refused. */
static void test_remove_tree(void)
{
	char *dir = harness_tmpdir("rmtree");
	char *outside = fs_join(dir, "outside");
	char *keep = fs_join(outside, "keep");
	char *t = fs_join(dir, "t");
	char p[4096];
	REQUIRE(mkdir(outside, 0700) == 0);
	FILE *f = fopen(keep, "w");
	REQUIRE(f != NULL);
	fputs("precious", f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/a/b/c", t);
	struct arca_err err = { 0 };
	REQUIRE(fs_mkdirs(p, 0700, &err) == 0);
	snprintf(p, sizeof(p), "%s/a/b/c/file", t);
	f = fopen(p, "w");
	REQUIRE(f != NULL);
	fclose(f);
	snprintf(p, sizeof(p), "%s/a/link-to-outside", t);
	REQUIRE(symlink(outside, p) == 0);
	snprintf(p, sizeof(p), "%s/a/b/link-to-keep", t);
	REQUIRE(symlink(keep, p) == 0);
	CHECK_EQ_INT(fs_remove_tree(t, &err), 0);
	struct stat st;
	CHECK(lstat(t, &st) != 0 && errno == ENOENT);
	CHECK(stat(keep, &st) == 0 && st.st_size == 8);
	/* absent, and a symlink given as the tree itself */
	CHECK_EQ_INT(fs_remove_tree(t, &err), 0);
	REQUIRE(symlink(outside, t) == 0);
	CHECK_EQ_INT(fs_remove_tree(t, &err), 0);
	CHECK(lstat(t, &st) != 0 && stat(keep, &st) == 0);
	/* 300 levels: refused, nothing outside touched */
	snprintf(p, sizeof(p), "%s", t);
	REQUIRE(mkdir(p, 0700) == 0);
	int depth = 0;
	for (; depth < 300; depth++) {
		if (chdir(p) != 0 || mkdir("d", 0700) != 0)
			break;
		snprintf(p, sizeof(p), "d");
	}
	REQUIRE(chdir("/") == 0);
	CHECK_EQ_INT(depth, 300);
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(fs_remove_tree(t, &err), ARCA_ELIMIT);
	CHECK(strstr(err.msg, "deeper than") != NULL);
	harness_rm_rf(dir);
	free(outside);
	free(keep);
	free(t);
	free(dir);
}

int main(void)
{
	RUN(test_put_get);
	RUN(test_write_once);
	RUN(test_list);
	RUN(test_remove_tree);
	HARNESS_EXIT();
}
