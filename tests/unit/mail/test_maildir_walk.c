/* Folder walk, message scan and open, on real trees built in a temp dir. */
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "maildir.h"
#include "harness.h"

static char *tmp;

static char *path_of(const char *rel)
{
	size_t n = strlen(tmp) + strlen(rel) + 2;
	char *p = malloc(n);
	if (p == NULL)
		abort();
	snprintf(p, n, "%s/%s", tmp, rel);
	return p;
}

static void mkd(const char *rel)
{
	char *p = path_of(rel);
	if (mkdir(p, 0700) != 0)
		abort();
	free(p);
}

static void mkmaildir(const char *rel)
{
	mkd(rel);
	static const char *const subs[] = { "cur", "new", "tmp" };
	for (int i = 0; i < 3; i++) {
		size_t n = strlen(rel) + 8;
		char *p = malloc(n);
		if (p == NULL)
			abort();
		snprintf(p, n, "%s/%s", rel, subs[i]);
		mkd(p);
		free(p);
	}
}

static void mkf(const char *rel, const char *content, time_t mtime)
{
	char *p = path_of(rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, content, strlen(content)) != (ssize_t)strlen(content))
		abort();
	close(fd);
	if (mtime) {
		struct timeval tv[2] = { { mtime, 0 }, { mtime, 250000 } };
		if (utimes(p, tv) != 0)
			abort();
	}
	free(p);
}

static void mkl(const char *target, const char *rel)
{
	char *p = path_of(rel);
	if (symlink(target, p) != 0)
		abort();
	free(p);
}

struct want {
	const char *name, *rel;
	bool sel;
};

static void check_list(const char *rootrel, enum maildir_layout ask, enum maildir_layout want_layout,
		       const struct want *w, size_t nw)
{
	char *root = path_of(rootrel);
	struct maildir_folder *f = NULL;
	size_t n = 0;
	enum maildir_layout got = MAILDIR_LAYOUT_AUTO;
	struct arca_err err = { 0 };
	int rc = maildir_list_folders(root, ask, &got, &f, &n, &err);
	if (rc)
		fprintf(stderr, "  %s\n", err.msg);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(got, want_layout);
	CHECK_EQ_INT(n, nw);
	for (size_t i = 0; i < n && i < nw; i++) {
		CHECK_STR(f[i].name, w[i].name);
		char want_path[1024];
		snprintf(want_path, sizeof(want_path), "%s%s%s", root, *w[i].rel ? "/" : "",
			 w[i].rel);
		CHECK_STR(f[i].path, want_path);
		CHECK_EQ_INT(f[i].selectable, w[i].sel);
		/* the walk and maildir_folder_path agree */
		struct abuf b = ABUF_INIT;
		CHECK_EQ_INT(maildir_folder_path(root, got, f[i].name, &b), 0);
		CHECK_STR((const char *)b.data, want_path);
		abuf_release(&b);
	}
	maildir_folders_free(f, n);
	free(root);
}

static void test_maildirpp(void)
{
	/* The tree Dovecot 2.3.19.1 made for these folders, plus hostile
	 * entries that must be skipped. */
	mkmaildir("pp");
	mkmaildir("pp/.Entw&APw-rfe");
	mkf("pp/.Entw&APw-rfe/maildirfolder", "", 0);
	mkmaildir("pp/.Archive.2019.Q1");
	mkmaildir("pp/.A&-B");
	mkmaildir("pp/.&ZeVnLIqe-.&W1A-");
	mkmaildir("pp/.Sent");
	mkmaildir("pp/.INBOX.kid");
	mkd("pp/.Empty");                /* no cur/new: listed, not selectable */
	mkmaildir("pp/.bad&");           /* invalid mUTF-7 */
	mkmaildir("pp/..x");
	mkmaildir("pp/.a..b");
	mkmaildir("pp/.&AC8-");          /* decodes to "/" */
	mkmaildir("pp/outside");
	mkl("../pp/outside", "pp/.link"); /* symlinked folder */
	mkf("pp/.file", "x", 0);
	mkf("pp/dovecot-uidlist", "3 V1 N1\n", 0);
	static const struct want w[] = {
		{ "INBOX", "", true },
		{ "A&B", ".A&-B", true },
		{ "Archive", ".Archive", false },
		{ "Archive/2019", ".Archive.2019", false },
		{ "Archive/2019/Q1", ".Archive.2019.Q1", true },
		{ "Empty", ".Empty", false },
		{ "Entwürfe", ".Entw&APw-rfe", true },
		{ "INBOX/kid", ".INBOX.kid", true },
		{ "Sent", ".Sent", true },
		{ "日本語", ".&ZeVnLIqe-", false },
		{ "日本語/子", ".&ZeVnLIqe-.&W1A-", true },
	};
	check_list("pp", MAILDIR_LAYOUT_AUTO, MAILDIR_LAYOUT_MAILDIRPP, w, sizeof(w) / sizeof(w[0]));
}

static void test_fs_layout(void)
{
	mkmaildir("fs");
	mkd("fs/Archive");
	mkd("fs/Archive/2019");
	mkmaildir("fs/Archive/2019/Q1");
	mkd("fs/&ZeVnLIqe-");
	mkmaildir("fs/&ZeVnLIqe-/&W1A-");
	mkmaildir("fs/a.b");
	mkmaildir("fs/Entw&APw-rfe");
	mkd("fs/INBOX");
	mkmaildir("fs/INBOX/kid");
	mkd("fs/.hidden");              /* a dot dir without mail: not Maildir++ evidence */
	mkd("fs/.hidden/x");
	mkmaildir("fs/bad&");
	mkd("fs/Archive/cur");
	mkmaildir("fs/Archive/cur/x");   /* inside a folder's cur/: not a folder */
	mkmaildir("fs/elsewhere");
	mkl("/", "fs/root-link");
	mkl("..", "fs/Archive/up");
	/* deeper than MAILDIR_DEPTH_MAX: listed down to the limit, no further */
	char deep[1024] = "fs/d";
	mkd(deep);
	for (int i = 0; i < MAILDIR_DEPTH_MAX + 5; i++) {
		size_t l = strlen(deep);
		snprintf(deep + l, sizeof(deep) - l, "/d");
		mkd(deep);
	}
	char *root = path_of("fs");
	struct maildir_folder *f;
	size_t n;
	enum maildir_layout got;
	REQUIRE(maildir_list_folders(root, MAILDIR_LAYOUT_AUTO, &got, &f, &n, NULL) == 0);
	CHECK_EQ_INT(got, MAILDIR_LAYOUT_FS);
	static const struct want w[] = {
		{ "INBOX", "", true },
		{ "Archive", "Archive", true },   /* has cur/ (made below) */
		{ "Archive/2019", "Archive/2019", false },
		{ "Archive/2019/Q1", "Archive/2019/Q1", true },
		{ "Entwürfe", "Entw&APw-rfe", true },
		{ "INBOX/kid", "INBOX/kid", true },
		{ "a.b", "a.b", true },
	};
	size_t deep_count = 0, j = 0;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(f[i].name, "d", 1) == 0) {
			deep_count++;
			continue;
		}
		if (strcmp(f[i].name, "elsewhere") == 0 || strncmp(f[i].name, "日本語", 9) == 0)
			continue;
		if (j < sizeof(w) / sizeof(w[0])) {
			CHECK_STR(f[i].name, w[j].name);
			CHECK_EQ_INT(f[i].selectable, w[j].sel);
		} else {
			fprintf(stderr, "  unexpected folder %s\n", f[i].name);
			CHECK(0);
		}
		j++;
	}
	CHECK_EQ_INT(j, sizeof(w) / sizeof(w[0]));
	CHECK_EQ_INT(deep_count, MAILDIR_DEPTH_MAX);
	maildir_folders_free(f, n);
	free(root);
	/* forcing Maildir++ on this tree finds no dot folders but the hidden one */
	static const struct want w2[] = {
		{ "INBOX", "", true },
		{ "hidden", ".hidden", false },
	};
	check_list("fs", MAILDIR_LAYOUT_MAILDIRPP, MAILDIR_LAYOUT_MAILDIRPP, w2, 2);
}

static void test_folder_path(void)
{
	struct abuf b = ABUF_INIT;
	CHECK_EQ_INT(maildir_folder_path("/m", MAILDIR_LAYOUT_MAILDIRPP, "inbox", &b), 0);
	CHECK_STR((const char *)b.data, "/m");
	CHECK_EQ_INT(maildir_folder_path("/m", MAILDIR_LAYOUT_MAILDIRPP, "inbox/Kid", &b), 0);
	CHECK_STR((const char *)b.data, "/m/.INBOX.Kid");
	CHECK_EQ_INT(maildir_folder_path("/m", MAILDIR_LAYOUT_FS, "日本語/子", &b), 0);
	CHECK_STR((const char *)b.data, "/m/&ZeVnLIqe-/&W1A-");
	static const char *const bad[] = {
		"", "/", "a/", "/a", "a//b", "..", "a/../b", ".", ".x", "a/.b", "\xff", "a\xc0\xaf",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ_INT(maildir_folder_path("/m", MAILDIR_LAYOUT_MAILDIRPP, bad[i], &b),
			     ARCA_EINVAL);
		CHECK_EQ_INT(maildir_folder_path("/m", MAILDIR_LAYOUT_FS, bad[i], &b), ARCA_EINVAL);
	}
	CHECK_EQ_INT(maildir_folder_path("/m", MAILDIR_LAYOUT_MAILDIRPP, "a.b", &b), ARCA_EINVAL);
	CHECK_EQ_INT(maildir_folder_path("/m", MAILDIR_LAYOUT_FS, "a.b", &b), 0);
	CHECK_EQ_INT(maildir_folder_path("/m", MAILDIR_LAYOUT_FS, "x/new", &b), ARCA_EINVAL);
	CHECK_EQ_INT(maildir_folder_path("/m", MAILDIR_LAYOUT_AUTO, "x", &b), ARCA_EINVAL);
	char lng[300];
	memset(lng, 'x', sizeof(lng) - 1);
	lng[sizeof(lng) - 1] = '\0';
	CHECK_EQ_INT(maildir_folder_path("/m", MAILDIR_LAYOUT_FS, lng, &b), ARCA_EINVAL);
	abuf_release(&b);
}

static void test_scan_and_open(void)
{
	mkmaildir("sc");
	mkf("sc/cur/1000.M1P1.h,S=5:2,S", "hello", 1500000000);
	mkf("sc/cur/1001.M1P1.h,S=3:2,FSa", "abc", 1500000001);
	mkf("sc/new/1002.M1P1.h", "new!!", 1500000002);
	mkf("sc/tmp/1003.M1P1.h", "tmp", 0);
	mkf("sc/cur/.hidden", "x", 0);
	mkl("/etc/passwd", "sc/cur/1004.M1P1.h:2,S");
	mkd("sc/cur/subdir");
	char *fifo = path_of("sc/cur/1005.M1P1.h:2,");
	REQUIRE(mkfifo(fifo, 0600) == 0);
	char *folder = path_of("sc");
	struct maildir_entry *e;
	size_t n;
	struct arca_err err = { 0 };
	REQUIRE(maildir_scan(folder, &e, &n, &err) == 0);
	/* Everything but dot files is listed, symlinks, FIFOs and directories
	 * too: opening them fails, so the caller names them instead of a
	 * message silently missing. */
	if (n != 6) {
		maildir_entries_free(e, n);
		REQUIRE(n == 6);
	}
	CHECK_STR(e[0].filename, "1000.M1P1.h,S=5:2,S");
	CHECK(!e[0].in_new);
	CHECK_EQ_INT(e[0].size, 5);
	CHECK_EQ_INT(e[0].mtime_sec, 1500000000);
	CHECK_EQ_INT(e[0].mtime_nsec, 250000000);
	CHECK(e[0].ino != 0);
	CHECK_STR(e[5].filename, "1002.M1P1.h");
	CHECK(e[5].in_new);
	for (size_t i = 2; i < 5; i++) {   /* the symlink, the FIFO, the directory */
		struct arca_err oerr = { 0 };
		CHECK(maildir_open_message(folder, &e[i], &oerr) == ARCA_EFORMAT);
	}

	/* unchanged */
	int fd = maildir_open_message(folder, &e[0], &err);
	REQUIRE(fd >= 0);
	char buf[16] = { 0 };
	CHECK_EQ_INT(read(fd, buf, sizeof(buf)), 5);
	close(fd);
	/* flags changed by Dovecot after the scan */
	char *a = path_of("sc/cur/1001.M1P1.h,S=3:2,FSa"), *b = path_of("sc/cur/1001.M1P1.h,S=3:2,RSa");
	REQUIRE(rename(a, b) == 0);
	fd = maildir_open_message(folder, &e[1], &err);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	CHECK_STR(e[1].filename, "1001.M1P1.h,S=3:2,RSa");
	free(a);
	free(b);
	/* new/ -> cur/ with info added */
	a = path_of("sc/new/1002.M1P1.h");
	b = path_of("sc/cur/1002.M1P1.h:2,S");
	REQUIRE(rename(a, b) == 0);
	fd = maildir_open_message(folder, &e[5], &err);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	CHECK(!e[5].in_new);
	CHECK_STR(e[5].filename, "1002.M1P1.h:2,S");
	CHECK_EQ_INT(e[5].mtime_sec, 1500000002);
	/* expunged */
	REQUIRE(unlink(b) == 0);
	CHECK_EQ_INT(maildir_open_message(folder, &e[5], &err), ARCA_ENOENT);
	free(a);
	free(b);
	/* replaced by a symlink, or a FIFO: refused without blocking */
	struct maildir_entry fake = { .filename = strdup("1004.M1P1.h:2,S") };
	CHECK_EQ_INT(maildir_open_message(folder, &fake, NULL), ARCA_EFORMAT);
	free(fake.filename);
	fake.filename = strdup("1005.M1P1.h:2,");
	CHECK_EQ_INT(maildir_open_message(folder, &fake, NULL), ARCA_EFORMAT);
	free(fake.filename);
	fake.filename = strdup("../../etc/passwd");
	CHECK_EQ_INT(maildir_open_message(folder, &fake, NULL), ARCA_EINVAL);
	free(fake.filename);
	maildir_entries_free(e, n);
	/* a folder without cur/ and new/ is empty, not an error */
	char *empty = path_of("pp/.Empty");
	REQUIRE(maildir_scan(empty, &e, &n, NULL) == 0);
	CHECK_EQ_INT(n, 0);
	maildir_entries_free(e, n);
	free(empty);
	/* cur/ as a symlink to elsewhere is not read */
	mkd("sc2");
	mkl("../sc/cur", "sc2/cur");
	char *sc2 = path_of("sc2");
	REQUIRE(maildir_scan(sc2, &e, &n, NULL) == 0);
	CHECK_EQ_INT(n, 0);
	maildir_entries_free(e, n);
	free(sc2);
	free(folder);
	free(fifo);
}

static void test_missing_root(void)
{
	char *root = path_of("does-not-exist");
	struct maildir_folder *f;
	size_t n;
	CHECK_EQ_INT(maildir_list_folders(root, MAILDIR_LAYOUT_AUTO, NULL, &f, &n, NULL),
		     ARCA_ENOENT);
	free(root);
}

int main(void)
{
	tmp = harness_tmpdir("maildir");
	RUN(test_maildirpp);
	RUN(test_fs_layout);
	RUN(test_folder_path);
	RUN(test_scan_and_open);
	RUN(test_missing_root);
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp);
	free(tmp);
	HARNESS_EXIT();
}
