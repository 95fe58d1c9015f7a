/* lib/overlay: the flag overlay file of serve-imap: records made durable,
 * read back, a torn end cut, an altered file refused, and the state
 * carried into a snapshot folder. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "arca_err.h"
#include "buf.h"
#include "crypto.h"
#include "harness.h"
#include "overlay.h"
#include "snapshot.h"

/* the system flags' bits (overlay.h; = enum vv_flag) */
enum { VV_SEEN = 1, VV_ANSWERED = 2, VV_FLAGGED = 4, VV_DELETED = 8, VV_DRAFT = 16 };

static struct arca_restore_key *rk, *rk_other;
static char *dir;

static char *path_of(const char *name)
{
	static char p[4096];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

static off_t file_size(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 ? st.st_size : -1;
}

static void flip_byte(const char *p, off_t at)
{
	int fd = open(p, O_RDWR);
	uint8_t b;
	if (fd < 0 || pread(fd, &b, 1, at) != 1)
		abort();
	b ^= 0x40;
	if (pwrite(fd, &b, 1, at) != 1)
		abort();
	close(fd);
}

static int record1(struct overlay *ov, const char *acct, const char *folder, uint32_t uid,
		   uint32_t flags, uint64_t modseq, uint64_t t)
{
	struct overlay_msg m = { .uid = uid, .flags = flags, .modseq = modseq };
	struct arca_err err = { 0 };
	return overlay_record(ov, acct, folder, 7, NULL, 0, &m, 1, t, &err);
}

static void test_roundtrip(void)
{
	const char *p = path_of("rt");
	struct overlay *ov = NULL;
	struct arca_err err = { 0 };
	char warn[ARCA_ERR_MSG_MAX];
	/* read-only needs the file */
	CHECK_EQ_INT(overlay_open(p, rk, false, &ov, warn, &err), ARCA_ENOENT);
	REQUIRE(overlay_open(p, rk, true, &ov, warn, &err) == 0);
	CHECK_STR(warn, "");
	char *kw[] = { "$Label1", "todo" };
	struct overlay_msg m[3] = {
		{ .uid = 3, .flags = VV_SEEN, .keywords = 2, .modseq = 10 },
		{ .uid = 5, .flags = VV_SEEN | VV_FLAGGED, .keywords = 3, .modseq = 10 },
		{ .uid = 9, .flags = 0, .keywords = 0, .modseq = 10 },
	};
	REQUIRE(overlay_record(ov, "a@x", "INBOX", 7, kw, 2, m, 3, 1000, &err) == 0);
	/* a later change of uid 5 in another record, keywords in another order */
	char *kw2[] = { "todo", "later" };
	struct overlay_msg m2 = { .uid = 5, .flags = VV_ANSWERED, .keywords = 3, .modseq = 11 };
	REQUIRE(overlay_record(ov, "a@x", "INBOX", 7, kw2, 2, &m2, 1, 2000, &err) == 0);
	REQUIRE(record1(ov, "b@x", "Sent", 4, VV_DRAFT, 3, 3000) == 0);
	/* a second writer is refused */
	struct overlay *ov2 = NULL;
	CHECK_EQ_INT(overlay_open(p, rk, true, &ov2, warn, &err), ARCA_EBUSY);
	overlay_free(ov);

	REQUIRE(overlay_open(p, rk, false, &ov, warn, &err) == 0);
	CHECK_STR(warn, "");
	uint64_t nrec, nf, nm;
	overlay_counts(ov, &nrec, &nf, &nm);
	CHECK_EQ_INT(nrec, 3);
	CHECK_EQ_INT(nf, 2);
	CHECK_EQ_INT(nm, 4);
	const struct ovl_folder *f = overlay_folder(ov, "a@x", "INBOX", 7);
	REQUIRE(f != NULL);
	CHECK(overlay_folder(ov, "a@x", "INBOX", 8) == NULL);
	CHECK(overlay_folder(ov, "a@y", "INBOX", 7) == NULL);
	CHECK_EQ_INT(f->nkeywords, 3);
	CHECK_STR(f->keywords[0], "$Label1");
	CHECK_STR(f->keywords[1], "todo");
	CHECK_STR(f->keywords[2], "later");
	CHECK_EQ_INT(f->max_modseq, 11);
	const struct overlay_msg *x = ovl_folder_msg(f, 5);
	REQUIRE(x != NULL);
	CHECK_EQ_INT(x->flags, VV_ANSWERED);
	CHECK_EQ_INT(x->keywords, 2 | 4);       /* todo, later */
	CHECK_EQ_INT(x->modseq, 11);
	CHECK_EQ_INT(x->time_ns, 2000);
	x = ovl_folder_msg(f, 3);
	REQUIRE(x != NULL);
	CHECK_EQ_INT(x->keywords, 2);
	CHECK(ovl_folder_msg(f, 4) == NULL);
	/* read-only: no writing */
	CHECK_EQ_INT(record1(ov, "a@x", "INBOX", 1, 0, 1, 1), ARCA_ESTATE);
	overlay_free(ov);
	/* another repository's key */
	CHECK_EQ_INT(overlay_open(p, rk_other, false, &ov, warn, &err), ARCA_EKEY);
}

static void test_keyword_limit(void)
{
	const char *p = path_of("kw");
	struct overlay *ov = NULL;
	struct arca_err err = { 0 };
	char warn[ARCA_ERR_MSG_MAX];
	REQUIRE(overlay_open(p, rk, true, &ov, warn, &err) == 0);
	char names[65][8];
	char *kw[65];
	for (int i = 0; i < 65; i++) {
		snprintf(names[i], sizeof(names[i]), "k%d", i);
		kw[i] = names[i];
	}
	struct overlay_msg m = { .uid = 1, .keywords = UINT64_MAX, .modseq = 2 };
	REQUIRE(overlay_record(ov, "a@x", "INBOX", 1, kw, 64, &m, 1, 5, &err) == 0);
	off_t before = file_size(p);
	m.keywords = 1;
	/* "k64" would be the folder's 65th keyword: refused, nothing written */
	CHECK_EQ_INT(overlay_record(ov, "a@x", "INBOX", 1, kw + 64, 1, &m, 1, 6, &err), ARCA_ELIMIT);
	CHECK_EQ_INT(file_size(p), before);
	/* known names are fine */
	CHECK_EQ_INT(overlay_record(ov, "a@x", "INBOX", 1, kw + 3, 1, &m, 1, 7, &err), 0);
	/* full: refused, nothing written, and usable again with room */
	off_t size = file_size(p);
	overlay_set_max_bytes(ov, (uint64_t)size + 10);
	CHECK_EQ_INT(overlay_record(ov, "a@x", "INBOX", 1, kw + 3, 1, &m, 1, 8, &err), ARCA_ENOSPC);
	CHECK_EQ_INT(file_size(p), size);
	CHECK_EQ_INT(overlay_bytes(ov), size);
	overlay_set_max_bytes(ov, 0);
	CHECK_EQ_INT(overlay_record(ov, "a@x", "INBOX", 1, kw + 3, 1, &m, 1, 8, &err), 0);
	overlay_free(ov);
}

static void test_torn_and_altered(void)
{
	const char *p = path_of("torn");
	struct overlay *ov = NULL;
	struct arca_err err = { 0 };
	char warn[ARCA_ERR_MSG_MAX];
	REQUIRE(overlay_open(p, rk, true, &ov, warn, &err) == 0);
	REQUIRE(record1(ov, "a@x", "INBOX", 1, VV_SEEN, 2, 10) == 0);
	off_t one = file_size(p);
	REQUIRE(record1(ov, "a@x", "INBOX", 2, VV_SEEN, 3, 11) == 0);
	off_t two = file_size(p);
	overlay_free(ov);
	/* the second record cut short (a crash in its write) */
	REQUIRE(truncate(p, two - 3) == 0);
	REQUIRE(overlay_open(p, rk, false, &ov, warn, &err) == 0);
	CHECK(strstr(warn, "cut short") != NULL);
	CHECK_EQ_INT(file_size(p), two - 3);       /* read-only: left as it is */
	overlay_free(ov);
	REQUIRE(overlay_open(p, rk, true, &ov, warn, &err) == 0);
	CHECK(warn[0] != '\0');
	CHECK_EQ_INT(file_size(p), one);           /* writable: cut */
	const struct ovl_folder *f = overlay_folder(ov, "a@x", "INBOX", 7);
	REQUIRE(f != NULL);
	CHECK_EQ_INT(f->nmsgs, 1);
	/* and written on after the cut */
	REQUIRE(record1(ov, "a@x", "INBOX", 2, VV_SEEN, 3, 11) == 0);
	CHECK_EQ_INT(file_size(p), two);
	overlay_free(ov);
	/* the last record altered: taken for a torn write */
	flip_byte(p, two - 5);
	REQUIRE(overlay_open(p, rk, false, &ov, warn, &err) == 0);
	CHECK(strstr(warn, "authentication") != NULL);
	overlay_free(ov);
	flip_byte(p, two - 5);
	/* a record before the last altered: the file is refused */
	flip_byte(p, one - 5);
	CHECK_EQ_INT(overlay_open(p, rk, true, &ov, warn, &err), ARCA_ECORRUPT);
	CHECK(strstr(err.msg, "record 0") != NULL);
	CHECK_EQ_INT(file_size(p), two);           /* and never cut */
	flip_byte(p, one - 5);
	/* records swapped: each fails under the other's index */
	/* (checked by the AD: a moved record does not authenticate) */
	/* the header altered (its salt): a key that doesn't check */
	flip_byte(p, 40);
	CHECK_EQ_INT(overlay_open(p, rk, false, &ov, warn, &err), ARCA_EKEY);
	flip_byte(p, 40);
	flip_byte(p, 0);
	CHECK_EQ_INT(overlay_open(p, rk, false, &ov, warn, &err), ARCA_EFORMAT);
	flip_byte(p, 0);
	REQUIRE(overlay_open(p, rk, false, &ov, warn, &err) == 0);
	CHECK_STR(warn, "");
	overlay_free(ov);
	/* a file too short for a header is refused, not rewritten */
	const char *q = path_of("short");
	int fd = open(q, O_CREAT | O_WRONLY, 0600);
	REQUIRE(fd >= 0 && write(fd, "ARCA", 4) == 4);
	close(fd);
	CHECK_EQ_INT(overlay_open(q, rk, true, &ov, warn, &err), ARCA_EFORMAT);
	CHECK_EQ_INT(file_size(q), 4);
}

static void test_swapped(void)
{
	const char *p = path_of("swap");
	struct overlay *ov = NULL;
	struct arca_err err = { 0 };
	char warn[ARCA_ERR_MSG_MAX];
	REQUIRE(overlay_open(p, rk, true, &ov, warn, &err) == 0);
	REQUIRE(record1(ov, "a@x", "INBOX", 1, VV_SEEN, 2, 10) == 0);
	off_t one = file_size(p);
	REQUIRE(record1(ov, "a@x", "INBOX", 2, VV_FLAGGED, 3, 11) == 0);
	off_t two = file_size(p);
	REQUIRE(record1(ov, "a@x", "INBOX", 3, VV_FLAGGED, 4, 12) == 0);
	overlay_free(ov);
	REQUIRE(two - one == one - 64);            /* same size: swap them */
	size_t n = (size_t)(one - 64);
	uint8_t *a = malloc(n), *b = malloc(n);
	int fd = open(p, O_RDWR);
	REQUIRE(fd >= 0 && a && b);
	CHECK(pread(fd, a, n, 64) == (ssize_t)n && pread(fd, b, n, one) == (ssize_t)n);
	CHECK(pwrite(fd, b, n, 64) == (ssize_t)n && pwrite(fd, a, n, one) == (ssize_t)n);
	close(fd);
	free(a);
	free(b);
	CHECK_EQ_INT(overlay_open(p, rk, false, &ov, warn, &err), ARCA_ECORRUPT);
}

static void test_many(void)
{
	const char *p = path_of("many");
	struct overlay *ov = NULL;
	struct arca_err err = { 0 };
	char warn[ARCA_ERR_MSG_MAX];
	REQUIRE(overlay_open(p, rk, true, &ov, warn, &err) == 0);
	size_t n = OVL_MSGS_PER_RECORD + 5000;
	struct overlay_msg *m = calloc(n, sizeof(*m));
	REQUIRE(m != NULL);
	for (size_t i = 0; i < n; i++) {
		m[i].uid = (uint32_t)(2 * i + 1);
		m[i].flags = VV_SEEN;
		m[i].modseq = 50;
	}
	/* one record at most per call; a bigger change is two calls */
	CHECK_EQ_INT(overlay_record(ov, "a@x", "INBOX", 1, NULL, 0, m, n, 9, &err), ARCA_ELIMIT);
	REQUIRE(overlay_record(ov, "a@x", "INBOX", 1, NULL, 0, m, OVL_MSGS_PER_RECORD, 9, &err) == 0);
	REQUIRE(overlay_record(ov, "a@x", "INBOX", 1, NULL, 0, m + OVL_MSGS_PER_RECORD,
			       n - OVL_MSGS_PER_RECORD, 9, &err) == 0);
	/* unsorted UIDs are the caller's bug */
	m[1].uid = 1;
	CHECK(overlay_record(ov, "a@x", "INBOX", 1, NULL, 0, m, 2, 9, &err) != 0);
	free(m);
	overlay_free(ov);
	REQUIRE(overlay_open(p, rk, false, &ov, warn, &err) == 0);
	uint64_t nrec, nf, nm;
	overlay_counts(ov, &nrec, &nf, &nm);
	CHECK_EQ_INT(nrec, 2);
	CHECK_EQ_INT(nm, n);
	overlay_free(ov);
}

static void test_apply(void)
{
	const char *p = path_of("apply");
	struct overlay *ov = NULL;
	struct arca_err err = { 0 };
	char warn[ARCA_ERR_MSG_MAX];
	REQUIRE(overlay_open(p, rk, true, &ov, warn, &err) == 0);
	char *kw[] = { "todo", "$Junk" };
	struct overlay_msg m[2] = {
		{ .uid = 10, .flags = VV_SEEN | VV_FLAGGED, .keywords = 1 | 2, .modseq = 90 },
		{ .uid = 11, .flags = 0, .keywords = 0, .modseq = 90 },
	};
	REQUIRE(overlay_record(ov, "a@x", "Work", 5, kw, 2, m, 2, 5000, &err) == 0);
	struct snap_folder sf = { 0 };
	sf.name = "Work";
	sf.uidvalidity = 5;
	sf.highestmodseq = 40;
	sf.keywords[0] = strdup("$Junk");
	sf.nkeywords = 1;
	struct snap_msg msgs[3] = { 0 };
	uint32_t S = UINT32_C(1) << ('S' - 'A'), F = UINT32_C(1) << ('F' - 'A'),
		 P = UINT32_C(1) << ('P' - 'A');
	msgs[0].uid = 10; msgs[0].flags = SNAP_MSG_NO_INFO; msgs[0].modseq = 3;
	msgs[1].uid = 11; msgs[1].flags = S | P; msgs[1].keywords = 1; msgs[1].modseq = 4;
	msgs[2].uid = 12; msgs[2].flags = S; msgs[2].modseq = 5;
	sf.msgs = msgs;
	sf.nmsgs = 3;
	size_t applied, dropped;
	/* a snapshot newer than the change: nothing taken */
	REQUIRE(overlay_apply(ov, "a@x", 6000, &sf, &applied, &dropped) == 0);
	CHECK_EQ_INT(applied, 0);
	CHECK_EQ_INT(msgs[0].flags, SNAP_MSG_NO_INFO);
	CHECK_EQ_INT(sf.highestmodseq, 40);
	/* another account: nothing */
	REQUIRE(overlay_apply(ov, "b@x", 0, &sf, &applied, &dropped) == 0);
	CHECK_EQ_INT(applied, 0);
	REQUIRE(overlay_apply(ov, "a@x", 4000, &sf, &applied, &dropped) == 0);
	CHECK_EQ_INT(applied, 2);
	CHECK_EQ_INT(dropped, 0);
	CHECK_EQ_INT(msgs[0].flags, S | F);        /* no longer without info */
	REQUIRE(sf.nkeywords == 2);
	CHECK_STR(sf.keywords[1], "todo");
	CHECK_EQ_INT(msgs[0].keywords, 1 | 2);     /* $Junk (0), todo (1) */
	CHECK_EQ_INT(msgs[0].modseq, 90);
	CHECK_EQ_INT(msgs[1].flags, P);            /* \Seen gone, P kept */
	CHECK_EQ_INT(msgs[1].keywords, 0);
	CHECK_EQ_INT(msgs[2].flags, S);            /* untouched */
	CHECK_EQ_INT(msgs[2].modseq, 5);
	CHECK_EQ_INT(sf.highestmodseq, 90);
	for (size_t i = 0; i < sf.nkeywords; i++)
		free(sf.keywords[i]);
	overlay_free(ov);
}

static void test_decode(void)
{
	struct overlay_msg m[2] = { { .uid = 1, .flags = 1, .keywords = 1, .modseq = 2 },
				    { .uid = 2, .flags = 31, .keywords = 0, .modseq = 2 } };
	struct overlay_rec r = { .time_ns = 7, .account = "a@x", .folder = "INBOX", .uidvalidity = 9,
				 .kw = { "k" }, .nkw = 1, .msgs = m, .n = 2 };
	struct abuf b = ABUF_INIT;
	REQUIRE(overlay_rec_encode(&r, &b) == 0);
	struct overlay_rec d;
	REQUIRE(overlay_rec_decode(b.data, b.len, &d) == 0);
	CHECK_STR(d.account, "a@x");
	CHECK_EQ_INT(d.n, 2);
	CHECK_EQ_INT(d.msgs[1].flags, 31);
	overlay_rec_release(&d);
	/* trailing byte, cut short */
	REQUIRE(abuf_add_u8(&b, 0) == 0);
	CHECK_EQ_INT(overlay_rec_decode(b.data, b.len, &d), ARCA_EFORMAT);
	CHECK_EQ_INT(overlay_rec_decode(b.data, b.len - 2, &d), ARCA_EFORMAT);
	/* a flag bit no IMAP flag has, a keyword bit past the table */
	size_t flags_at = b.len - 1 - 8 - 1;       /* last message's flags byte */
	b.data[flags_at] = 32;
	CHECK_EQ_INT(overlay_rec_decode(b.data, b.len - 1, &d), ARCA_EFORMAT);
	b.data[flags_at] = 31;
	b.data[b.len - 1 - 8] = 2;                 /* keywords low byte: bit 1 */
	CHECK_EQ_INT(overlay_rec_decode(b.data, b.len - 1, &d), ARCA_EFORMAT);
	/* the encoder refuses what the decoder would */
	m[1].uid = 1;
	CHECK(overlay_rec_encode(&r, &b) != 0);
	m[1].uid = 2;
	r.kw[0] = "";
	CHECK(overlay_rec_encode(&r, &b) != 0);
	abuf_release(&b);
}

int main(void)
{
	if (acrypto_setup() != 0)
		return 1;
	struct arca_public_keys pub;
	struct arca_ingest_keys *ik = NULL, *ik2 = NULL;
	if (acrypto_generate(&pub, &ik, &rk, NULL) != 0 || acrypto_generate(&pub, &ik2, &rk_other, NULL) != 0)
		return 1;
	dir = harness_tmpdir("overlay");
	RUN(test_roundtrip);
	RUN(test_keyword_limit);
	RUN(test_torn_and_altered);
	RUN(test_swapped);
	RUN(test_many);
	RUN(test_apply);
	RUN(test_decode);
	harness_rm_rf(dir);
	free(dir);
	acrypto_ingest_keys_free(ik);
	acrypto_ingest_keys_free(ik2);
	acrypto_restore_key_free(rk);
	acrypto_restore_key_free(rk_other);
	HARNESS_EXIT();
}
