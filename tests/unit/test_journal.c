/*
 * test_journal.c - journal segments: commit marks, crash recovery at every
 * byte, damage before a mark, recovery through journal_open, restore-side
 * message keys, record and envelope codecs.
 */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "journal.h"
#include "journal_restore.h"
#include "pack.h"
#include "repo.h"
#include "fsutil.h"

struct env {
	char *dir;
	char repo[512], key[512];
	struct repo *r;
	struct journal *j;
};

static int env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	e->dir = harness_tmpdir("journal");
	snprintf(e->repo, sizeof(e->repo), "%s/repo", e->dir);
	snprintf(e->key, sizeof(e->key), "%s/restore.key", e->dir);
	struct repo_create_opts o = { .restore_key_path = e->key,
				      .passphrase = "test passphrase", .fast_kdf = true };
	struct arca_err err = { 0 };
	if (repo_create(e->repo, &o, &err) != 0 || repo_open(e->repo, REPO_OPEN_WRITE, &e->r, &err) != 0 ||
	    journal_open(e->r, NULL, &e->j, NULL, &err) != 0) {
		fprintf(stderr, "  setup: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static void env_release(struct env *e)
{
	if (e->j)
		journal_close(e->j, NULL);
	repo_close(e->r);
	harness_rm_rf(e->dir);
	free(e->dir);
}

static int add_msg(struct journal *j, const char *account, const char *body, uint64_t t)
{
	struct journal_rcpt rc = { .address = "x=y@journal.invalid", .account = (char *)account,
				   .direction = JOURNAL_DIR_IN };
	struct journal_envelope env = { .time_ns = t, .client = "127.0.0.1:1", .helo = "mx",
					.mail_from = "s@example.test", .rcpts = &rc, .nrcpt = 1 };
	struct arca_err err = { 0 };
	int rc2 = journal_add(j, &env, body, strlen(body), &err);
	if (rc2)
		fprintf(stderr, "  journal_add: %s\n", err.msg);
	return rc2;
}

static int count_one(const struct journal_rec *rec, void *ctx)
{
	(void)rec;
	(*(size_t *)ctx)++;
	return 0;
}

static size_t count_records(struct repo *r, const char *account)
{
	size_t n = 0;
	struct arca_err err = { 0 };
	if (journal_list(r, account, 0, count_one, &n, &err) != 0)
		return (size_t)-1;
	return n;
}

static int copy_prefix(const char *from, const char *to, size_t len)
{
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (in < 0 || out < 0)
		return -1;
	char *b = malloc(len ? len : 1);
	ssize_t k = pread(in, b, len, 0);
	int rc = (k == (ssize_t)len && write(out, b, len) == (ssize_t)len) ? 0 : -1;
	free(b);
	close(in);
	close(out);
	return rc;
}

/* A segment with two commits and an uncommitted tail, cut at every byte:
 * recovery keeps exactly the commits wholly before the cut. */
static void test_recover_every_cut(void)
{
	struct env e;
	REQUIRE(env_init(&e) == 0);
	char body[200];
	for (int i = 0; i < 3; i++) {
		snprintf(body, sizeof(body), "Subject: a%d\r\n\r\nfirst batch %d\r\n", i, i);
		REQUIRE(add_msg(e.j, "a@example.test", body, 1000 + (uint64_t)i) == 0);
	}
	struct arca_err err = { 0 };
	REQUIRE(journal_commit(e.j, &err) == 0);
	const char *seg = repo_journal_segment(e.r);
	REQUIRE(seg != NULL);
	struct stat st;
	REQUIRE(stat(seg, &st) == 0);
	size_t end1 = (size_t)st.st_size;
	for (int i = 0; i < 2; i++) {
		snprintf(body, sizeof(body), "Subject: b%d\r\n\r\nsecond batch %d\r\n", i, i);
		REQUIRE(add_msg(e.j, "b@example.test", body, 2000 + (uint64_t)i) == 0);
	}
	REQUIRE(journal_commit(e.j, &err) == 0);
	REQUIRE(stat(seg, &st) == 0);
	size_t end2 = (size_t)st.st_size;
	REQUIRE(add_msg(e.j, "c@example.test", "Subject: c\r\n\r\nnever committed\r\n", 3000) == 0);
	REQUIRE(stat(seg, &st) == 0);
	size_t end3 = (size_t)st.st_size;
	CHECK(end3 > end2 && end2 > end1 && end1 > PACK_HEADER_LEN);
	char cut[600];
	snprintf(cut, sizeof(cut), "%s/cut", e.dir);
	int wrong = 0;
	for (size_t len = 0; len <= end3; len++) {
		if (copy_prefix(seg, cut, len) != 0) {
			wrong++;
			break;
		}
		struct pack_recovered pr;
		if (pack_recover(cut, &pr, &err) != 0) {
			fprintf(stderr, "  cut at %zu: %s\n", len, err.msg);
			wrong++;
			continue;
		}
		size_t want_marks = len >= end2 ? 2 : len >= end1 ? 1 : 0;
		size_t marks = 0;
		struct adec d;
		adec_init(&d, pr.marks.data, pr.marks.len);
		while (adec_left(&d) > 0) {
			uint32_t ml = adec_u32(&d);
			if (adec_raw(&d, ml) == NULL)
				break;
			marks++;
		}
		bool ok = marks == want_marks && pr.empty == (want_marks == 0);
		if (ok && !pr.empty) {
			/* the sealed file is a valid pack: header, trailer, footer */
			struct abuf f = ABUF_INIT;
			ok = fs_read_file(cut, 1 << 20, &f, NULL) == 0 && f.len == pr.size;
			struct pack_header h;
			struct pack_entry *es = NULL;
			size_t n = 0;
			uint64_t toff = ok ? get_u64le(f.data + f.len - 24) : 0;
			ok = ok && pack_parse_header(f.data, f.len, &h, NULL) == 0 &&
			     pack_parse_trailer(f.data + toff, f.len - 24 - toff, toff, &es, &n, NULL) == 0 &&
			     n == pr.count && toff == (want_marks == 2 ? end2 : end1);
			uint8_t hash[ARCA_ID_LEN];
			acrypto_hash(f.data, f.len, hash);
			ok = ok && memcmp(hash, pr.hash, ARCA_ID_LEN) == 0;
			free(es);
			abuf_release(&f);
		}
		if (!ok) {
			if (wrong < 5)
				fprintf(stderr, "  cut at %zu: %zu marks (want %zu), empty %d\n", len, marks,
					want_marks, pr.empty);
			wrong++;
		}
		pack_recovered_release(&pr);
	}
	CHECK_EQ_INT(wrong, 0);
	env_release(&e);
}

/* A flipped bit in committed data invalidates that commit's mark and every
 * later one: recovery stops at the last mark whose check holds. */
static void test_damage_before_mark(void)
{
	struct env e;
	REQUIRE(env_init(&e) == 0);
	struct arca_err err = { 0 };
	REQUIRE(add_msg(e.j, "a@example.test", "Subject: 1\r\n\r\none\r\n", 1) == 0);
	REQUIRE(journal_commit(e.j, &err) == 0);
	struct stat st;
	const char *seg = repo_journal_segment(e.r);
	REQUIRE(stat(seg, &st) == 0);
	size_t end1 = (size_t)st.st_size;
	REQUIRE(add_msg(e.j, "a@example.test", "Subject: 2\r\n\r\ntwo\r\n", 2) == 0);
	REQUIRE(journal_commit(e.j, &err) == 0);
	REQUIRE(stat(seg, &st) == 0);
	char cut[600];
	snprintf(cut, sizeof(cut), "%s/flip", e.dir);
	REQUIRE(copy_prefix(seg, cut, (size_t)st.st_size) == 0);
	int fd = open(cut, O_RDWR);
	uint8_t b;
	REQUIRE(pread(fd, &b, 1, (off_t)end1 + 60) == 1);
	b ^= 0x10;
	REQUIRE(pwrite(fd, &b, 1, (off_t)end1 + 60) == 1);
	close(fd);
	struct pack_recovered pr;
	REQUIRE(pack_recover(cut, &pr, &err) == 0);
	CHECK(!pr.empty);
	CHECK_EQ_INT(pr.count, 3);   /* message, envelope, mark of commit 1 */
	CHECK(pr.dropped > 0);
	pack_recovered_release(&pr);
	env_release(&e);
}

/* The whole path: a "crash" leaves the segment; the next journal_open
 * seals it, logs it, and the index lists exactly the committed records,
 * whose messages read back with the restore key. */
static void test_reopen_recovers(void)
{
	struct env e;
	REQUIRE(env_init(&e) == 0);
	struct arca_err err = { 0 };
	REQUIRE(add_msg(e.j, "a@example.test", "Subject: kept\r\n\r\nkept\r\n", 10) == 0);
	REQUIRE(add_msg(e.j, "b@example.test", "Subject: kept too\r\n\r\nkept\r\n", 11) == 0);
	REQUIRE(journal_commit(e.j, &err) == 0);
	REQUIRE(add_msg(e.j, "a@example.test", "Subject: lost\r\n\r\nnot committed\r\n", 12) == 0);
	/* crash: the segment stays as it is on disk */
	repo_journal_abandon(e.r);
	journal_close(e.j, NULL);
	e.j = NULL;
	repo_close(e.r);
	REQUIRE(repo_open(e.repo, REPO_OPEN_WRITE, &e.r, &err) == 0);
	struct journal_recovery rec;
	REQUIRE(journal_open(e.r, NULL, &e.j, &rec, &err) == 0);
	CHECK_EQ_INT(rec.segments, 1);
	CHECK_EQ_INT(rec.records, 2);
	CHECK(rec.bytes_dropped > 0);
	CHECK_EQ_INT(count_records(e.r, "a@example.test"), 1);
	CHECK_EQ_INT(count_records(e.r, "b@example.test"), 1);
	CHECK_EQ_INT(count_records(e.r, NULL), 2);
	/* a second arcad on the same repository is refused */
	struct repo *r2;
	struct journal *j2;
	REQUIRE(repo_open(e.repo, REPO_OPEN_WRITE, &r2, &err) == 0);
	CHECK_EQ_INT(journal_open(r2, NULL, &j2, NULL, &err), ARCA_EBUSY);
	repo_close(r2);
	/* read back with the restore key */
	journal_close(e.j, NULL);
	e.j = NULL;
	repo_close(e.r);
	REQUIRE(repo_open(e.repo, REPO_OPEN_READ, &e.r, &err) == 0);
	struct arca_restore_key *rk = NULL;
	REQUIRE(keyfile_read(e.key, "test passphrase", &rk, &err) == 0);
	REQUIRE(repo_set_restore_key(e.r, rk, &err) == 0);
	struct journal_rec *recs = NULL;
	size_t n = 0;
	REQUIRE(journal_restore_collect(e.r, "a@example.test", 0, &recs, &n, &err) == 0);
	REQUIRE(n == 1);
	struct abuf b = ABUF_INIT;
	CHECK(repo_get(e.r, recs[0].content_id, OBJ_BLOB, &b, &err) == 0);
	CHECK(b.len == strlen("Subject: kept\r\n\r\nkept\r\n") &&
	      memcmp(b.data, "Subject: kept\r\n\r\nkept\r\n", b.len) == 0);
	struct journal_envelope env;
	CHECK(repo_get(e.r, recs[0].envelope_id, OBJ_JOURNAL, &b, &err) == 0);
	CHECK(journal_envelope_decode(b.data, b.len, &env) == 0);
	CHECK_STR(env.mail_from, "s@example.test");
	CHECK_STR(env.rcpts[0].account, "a@example.test");
	journal_envelope_release(&env);
	abuf_release(&b);
	free(recs);
	env_release(&e);
}

/* A large message goes in chunks, with the same ids Maildir ingest gives. */
static void test_large_message_chunks(void)
{
	struct env e;
	REQUIRE(env_init(&e) == 0);
	size_t len = 3u << 20;
	char *big = malloc(len + 1);
	for (size_t i = 0; i < len; i++)
		big[i] = (char)('a' + (i * 7919 % 26));
	memcpy(big, "Subject: big\r\n\r\n", 16);
	big[len] = '\0';
	REQUIRE(add_msg(e.j, "a@example.test", big, 5) == 0);
	struct arca_err err = { 0 };
	REQUIRE(journal_commit(e.j, &err) == 0);
	REQUIRE(journal_maybe_seal(e.j, true, &err) == 0);
	/* the same bytes through the Maildir path */
	char path[600];
	snprintf(path, sizeof(path), "%s/big", e.dir);
	FILE *f = fopen(path, "w");
	fwrite(big, 1, len, f);
	fclose(f);
	int fd = open(path, O_RDONLY);
	uint8_t type, id[ARCA_ID_LEN];
	struct repo *r2;
	REQUIRE(repo_open(e.repo, REPO_OPEN_WRITE, &r2, &err) == 0);
	CHECK(repo_put_stream(r2, fd, len, path, &type, id, &err) == 0);
	close(fd);
	repo_flush(r2, &err);
	repo_close(r2);
	struct journal_rec *recs = NULL;
	size_t n = 0;
	REQUIRE(journal_restore_collect(e.r, "a@example.test", 0, &recs, &n, &err) == 0);
	REQUIRE(n == 1);
	CHECK_EQ_INT(recs[0].content_type, OBJ_CHUNKLIST);
	CHECK_EQ_INT(type, OBJ_CHUNKLIST);
	CHECK(memcmp(recs[0].content_id, id, ARCA_ID_LEN) == 0);
	free(recs);
	free(big);
	env_release(&e);
}

/* Message keys: the mail server's copy (LF, extra headers first) and the
 * journal's (CRLF) match by Message-ID, or by body without one. */
static void test_message_keys(void)
{
	const char *j1 = "Received: by mx\r\nMessage-ID: <a@b>\r\nSubject: x\r\n\r\nbody\r\n";
	const char *d1 = "Return-Path: <s@x>\nDelivered-To: a@b\nReceived: by mx\nMessage-ID:\n <a@b>\nSubject: x\n\nbody\n";
	const char *j2 = "Subject: no id\r\n\r\nline 1\r\nline 2\r\n";
	const char *d2 = "Return-Path: <s@x>\nSubject: no id\n\nline 1\nline 2\n";
	const char *d3 = "Subject: no id\n\nline 1\nline 3\n";
	uint8_t a[32], b[32];
	mkey_of((const uint8_t *)j1, strlen(j1), a);
	mkey_of((const uint8_t *)d1, strlen(d1), b);
	CHECK(memcmp(a, b, 32) == 0);
	mkey_of((const uint8_t *)j2, strlen(j2), a);
	mkey_of((const uint8_t *)d2, strlen(d2), b);
	CHECK(memcmp(a, b, 32) == 0);
	mkey_of((const uint8_t *)d3, strlen(d3), b);
	CHECK(memcmp(a, b, 32) != 0);
	struct idset k = IDSET_INIT;
	for (int i = 0; i < 1000; i++) {
		uint8_t key[32] = { 0 };
		memcpy(key, &i, sizeof(i));
		CHECK(idset_add(&k, key) == 0);
	}
	uint8_t key[32] = { 0 };
	int probe = 999;
	memcpy(key, &probe, sizeof(probe));
	CHECK(idset_has(&k, key));
	probe = 1000;
	memcpy(key, &probe, sizeof(probe));
	CHECK(!idset_has(&k, key));
	CHECK_EQ_INT(k.count, 1000);
	idset_free(&k);
}

/* Records and envelopes: round trip; every malformed form rejected. */
static void test_codecs(void)
{
	struct journal_rec r = { .time_ns = 42, .direction = JOURNAL_DIR_OUT, .content_type = OBJ_BLOB,
				 .size = 7 };
	memset(r.content_id, 1, 32);
	memset(r.envelope_id, 2, 32);
	snprintf(r.account, sizeof(r.account), "ünï@example.test");
	struct abuf b = ABUF_INIT;
	CHECK(journal_rec_encode(&r, &b) == 0);
	struct journal_rec r2;
	struct adec d;
	adec_init(&d, b.data, b.len);
	CHECK(journal_rec_decode(&d, &r2) == 0 && adec_finish(&d) == 0);
	CHECK_STR(r2.account, r.account);
	CHECK(r2.time_ns == 42 && r2.direction == JOURNAL_DIR_OUT && r2.size == 7);
	/* every truncation fails, and bad fields fail */
	for (size_t cut = 0; cut < b.len; cut++) {
		adec_init(&d, b.data, cut);
		CHECK(journal_rec_decode(&d, &r2) != 0);
	}
	static const size_t bad_at[] = { 0, 9, 10 };   /* version, direction, type */
	for (size_t i = 0; i < 3; i++) {
		struct abuf c = ABUF_INIT;
		abuf_add(&c, b.data, b.len);
		c.data[bad_at[i]] = 9;
		adec_init(&d, c.data, c.len);
		CHECK(journal_rec_decode(&d, &r2) != 0);
		abuf_release(&c);
	}
	struct abuf marks = ABUF_INIT;
	abuf_add_u32(&marks, (uint32_t)(4 + b.len));
	abuf_add_u32(&marks, 1);
	abuf_add(&marks, b.data, b.len);
	CHECK(journal_marks_check(marks.data, marks.len) == 0);
	CHECK(journal_marks_check(marks.data, marks.len - 1) != 0);
	abuf_add_u8(&marks, 0);
	CHECK(journal_marks_check(marks.data, marks.len) != 0);
	abuf_release(&marks);
	abuf_release(&b);
	/* an account with a control character can't be written */
	snprintf(r.account, sizeof(r.account), "a\nb@example.test");
	CHECK(journal_rec_encode(&r, &b) != 0);
	abuf_release(&b);
	struct journal_rcpt rc[2] = { { "a=b@journal.invalid", "a@b", 1 }, { "c=d@out.journal.invalid", "c@d", 2 } };
	struct journal_envelope env = { .time_ns = 9, .client = "c", .helo = "h", .mail_from = "",
					.rcpts = rc, .nrcpt = 2, .content_type = OBJ_BLOB };
	CHECK(journal_envelope_encode(&env, &b) == 0);
	struct journal_envelope e2;
	CHECK(journal_envelope_decode(b.data, b.len, &e2) == 0);
	CHECK_STR(e2.rcpts[1].account, "c@d");
	CHECK(e2.rcpts[1].direction == 2);
	journal_envelope_release(&e2);
	for (size_t cut = 0; cut < b.len; cut++)
		CHECK(journal_envelope_decode(b.data, cut, &e2) != 0);
	abuf_release(&b);
}

int main(void)
{
	RUN(test_recover_every_cut);
	RUN(test_damage_before_mark);
	RUN(test_reopen_recovers);
	RUN(test_large_message_chunks);
	RUN(test_message_keys);
	RUN(test_codecs);
	HARNESS_EXIT();
}
