/*
 * Unit tests for lib/snapshot.c (and the snapshot log payload in lib/repo.c):
 * a snapshot stored into a real repository and loaded back field by field;
 * the page-cut rule (one changed message rewrites one page); the strictness
 * of the decoders.  The encoders here are written from
 * docs/format/objects.md and compared with what the library stores.
 */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "harness.h"
#include "pack.h"
#include "repo.h"
#include "snapshot.h"

/* ---- a temporary repository, opened for writing and with the restore key ---- */

struct env {
	char *dir;
	char repo[512];
	char key[512];
	struct repo *r;
};

static int env_open_repo(struct env *e, int flags)
{
	struct arca_err err = { 0 };
	if (repo_open(e->repo, flags, &e->r, &err) != 0) {
		fprintf(stderr, "  repo_open: %s\n", err.msg);
		return -1;
	}
	struct arca_restore_key *rk = NULL;
	if (keyfile_read(e->key, "test passphrase", &rk, &err) != 0 ||
	    repo_set_restore_key(e->r, rk, &err) != 0) {
		fprintf(stderr, "  restore key: %s\n", err.msg);
		repo_close(e->r);
		e->r = NULL;
		return -1;
	}
	return 0;
}

static int env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	e->dir = harness_tmpdir("snapshot");
	snprintf(e->repo, sizeof(e->repo), "%s/repo", e->dir);
	snprintf(e->key, sizeof(e->key), "%s/restore.key", e->dir);
	struct repo_create_opts o = { .restore_key_path = e->key,
				      .passphrase = "test passphrase", .fast_kdf = true };
	struct arca_err err = { 0 };
	if (repo_create(e->repo, &o, &err) != 0) {
		fprintf(stderr, "  repo_create: %s\n", err.msg);
		return -1;
	}
	return env_open_repo(e, REPO_OPEN_WRITE);
}

static void env_release(struct env *e)
{
	repo_close(e->r);
	harness_rm_rf(e->dir);
	free(e->dir);
}

/* ---- encoders from docs/format/objects.md ---- */

static uint64_t zz(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static void spec_msg(struct abuf *b, const struct snap_msg *m)
{
	abuf_add_varint(b, m->uid);
	abuf_add_varint(b, m->modseq);
	abuf_add_u8(b, m->content_type);
	abuf_add(b, m->content_id, ARCA_ID_LEN);
	abuf_add_varint(b, m->size);
	abuf_add_varint(b, zz(m->date_sec));
	abuf_add_varint(b, (uint64_t)m->date_nsec);
	const char *info = m->uidlist_info ? m->uidlist_info : "";
	abuf_add_varint(b, m->flags | (*info ? 1ull << 27 : 0));
	abuf_add_varint(b, m->keywords);
	abuf_add_str(b, m->base);
	abuf_add_str(b, m->uidlist_ext);
	abuf_add_u8(b, m->in_new);
	if (*info)
		abuf_add_str(b, info);   /* field 13, only with flags bit 27 */
}

static void spec_page(struct abuf *b, const struct snap_msg *m, size_t n)
{
	abuf_reset(b);
	abuf_add_u8(b, 1);
	abuf_add_varint(b, n);
	for (size_t i = 0; i < n; i++)
		spec_msg(b, &m[i]);
}

static void spec_root(struct abuf *b, const struct snapshot *s)
{
	abuf_reset(b);
	abuf_add_u8(b, 1);
	abuf_add_str(b, s->account);
	abuf_add_u64(b, s->time_ns);
	abuf_add_str(b, s->source);
	abuf_add_u8(b, s->layout);
	abuf_add_varint(b, s->nsubscriptions);
	for (size_t i = 0; i < s->nsubscriptions; i++)
		abuf_add_str(b, s->subscriptions[i]);
	abuf_add_varint(b, s->nfolders);
	for (size_t i = 0; i < s->nfolders; i++) {
		const struct snap_folder *f = &s->folders[i];
		abuf_add_str(b, f->name);
		abuf_add_varint(b, f->attrs);
		abuf_add_str(b, f->special_use);
		abuf_add_u32(b, f->uidvalidity);
		abuf_add_u32(b, f->nextuid);
		abuf_add_u64(b, f->highestmodseq);
		abuf_add_str(b, f->guid);
		abuf_add_str(b, f->uidlist_extra);
		abuf_add_varint(b, f->nkeywords);
		for (size_t k = 0; k < f->nkeywords; k++)
			abuf_add_str(b, f->keywords[k]);
		abuf_add_varint(b, f->message_count);
		abuf_add_varint(b, f->bytes);
		abuf_add_varint(b, f->npages);
		for (size_t p = 0; p < f->npages; p++) {
			abuf_add(b, f->pages[p].id, ARCA_ID_LEN);
			abuf_add_varint(b, f->pages[p].count);
		}
	}
}

/* The page-cut rule, from the document. */
static bool spec_cut(const char *base, uint32_t uid)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)base; *p; p++)
		h = (h ^ *p) * 16777619u;
	return ((h ^ uid) & 127) == 0;
}

static void replace(char **field, const char *v)
{
	free(*field);
	*field = strdup(v);
}

/* ---- building a snapshot ---- */

static int add_msgs(struct snap_folder *f, size_t n, uint32_t first_uid, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		char base[64], ext[32] = "";
		snprintf(base, sizeof(base), "%u.M%zuP%u.host.example", 1600000000u + seed, i, seed);
		if (i % 7 == 0)
			snprintf(ext, sizeof(ext), "W%zu", 1000 + i);
		uint64_t kwmask = f->nkeywords >= 64 ? UINT64_MAX : (1ull << f->nkeywords) - 1;
		struct snap_msg m = {
			.uid = first_uid + (uint32_t)i,
			.modseq = i % 3 ? 0 : (uint64_t)i * 1000003u,
			.content_type = i % 11 == 5 ? OBJ_CHUNKLIST : OBJ_BLOB,
			.size = 100 + (uint64_t)i * 37 + (i % 13 == 0 ? 5000000000ull : 0),
			.date_sec = i % 17 == 3 ? -86400 * (int64_t)i : 1600000000 + (int64_t)i,
			.date_nsec = i % 5 == 0 ? 999999999 : (int32_t)(i * 7919 % 1000000000),
			.flags = (uint32_t)(i * 2654435761u) & ((1u << 26) - 1),
			.keywords = (uint64_t)i & kwmask,
			.base = base,
			.uidlist_ext = ext,
			.in_new = i % 9 == 1,
			.uidlist_info = i % 7 == 2 ? ":2,S" : i % 7 == 4 ? ":2,FRSab" : NULL,
		};
		for (int k = 0; k < ARCA_ID_LEN; k++)
			m.content_id[k] = (uint8_t)(i * 31 + k * 7 + seed);
		if (snap_folder_add_msg(f, &m) != 0)
			return -1;
	}
	return 0;
}

static struct snapshot *build_sample(void)
{
	struct snapshot *s = snapshot_new("alice@example.com", "maildir");
	struct snap_folder *f;
	if (s == NULL)
		return NULL;
	s->time_ns = 1795000000123456789ull;
	s->layout = 1;
	const char *subs[] = { "INBOX", "Archive/2020", "Gone" };
	for (int i = 0; i < 3; i++)
		if (snapshot_add_subscription(s, subs[i]) != 0)
			goto fail;
	if ((f = snapshot_add_folder(s, "INBOX")) == NULL)
		goto fail;
	f->attrs = SNAP_FOLDER_SELECTABLE | SNAP_FOLDER_SUBSCRIBED;
	f->uidvalidity = 1700000001;
	f->nextuid = 400;
	f->highestmodseq = 77;
	replace(&f->guid, "0123456789abcdef0123456789abcdef");
	replace(&f->uidlist_extra, "Zsomething else");
	snap_folder_keyword(f, "$Junk");
	snap_folder_keyword(f, "NonJunk");
	snap_folder_keyword(f, "work");
	if (add_msgs(f, 300, 1, 1) != 0)
		goto fail;
	f->msgs[299].uid = 0;   /* delivered, no UID yet */
	if ((f = snapshot_add_folder(s, "Archive")) == NULL)
		goto fail;        /* exists only as a parent */
	if ((f = snapshot_add_folder(s, "Archive/2020")) == NULL)
		goto fail;
	f->attrs = SNAP_FOLDER_SELECTABLE | SNAP_FOLDER_SUBSCRIBED;
	replace(&f->special_use, "\\Archive");
	f->uidvalidity = 1700000002;
	f->nextuid = 6;
	for (int k = 0; k < SNAP_KEYWORDS_MAX; k++) {
		char kw[16];
		snprintf(kw, sizeof(kw), "kw%d", k);
		if (snap_folder_keyword(f, kw) != k)
			goto fail;
	}
	if (add_msgs(f, 5, 1, 2) != 0)
		goto fail;
	f->msgs[4].keywords = 1ull << 63;
	if ((f = snapshot_add_folder(s, "Projets/\xc3\x89t\xc3\xa9")) == NULL)
		goto fail;
	f->attrs = SNAP_FOLDER_SELECTABLE;
	f->uidvalidity = 1700000003;
	f->nextuid = 1;
	return s;
fail:
	snapshot_free(s);
	return NULL;
}

static int store(struct repo *r, struct snapshot *s, uint8_t root[ARCA_ID_LEN],
		 struct snap_info *info)
{
	struct arca_err err = { 0 };
	uint64_t msgs, bytes;
	if (snapshot_store(r, s, root, &msgs, &bytes, &err) != 0) {
		fprintf(stderr, "  snapshot_store: %s\n", err.msg);
		return -1;
	}
	if (info == NULL)
		return repo_flush(r, &err);
	memset(info, 0, sizeof(*info));
	memcpy(info->root, root, ARCA_ID_LEN);
	info->time_ns = s->time_ns;
	info->account = s->account;
	info->source = s->source;
	info->messages = msgs;
	info->bytes = bytes;
	info->folders = s->nfolders;
	if (repo_commit_snapshot(r, info, &err) != 0) {
		fprintf(stderr, "  repo_commit_snapshot: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static void check_msgs_equal(const struct snap_folder *a, const struct snap_folder *b)
{
	CHECK_EQ_INT(b->nmsgs, a->nmsgs);
	for (size_t i = 0; i < a->nmsgs && i < b->nmsgs; i++) {
		const struct snap_msg *x = &a->msgs[i], *y = &b->msgs[i];
		CHECK_EQ_INT(y->uid, x->uid);
		CHECK_EQ_INT(y->modseq, x->modseq);
		CHECK_EQ_INT(y->content_type, x->content_type);
		CHECK(memcmp(y->content_id, x->content_id, ARCA_ID_LEN) == 0);
		CHECK(y->size == x->size);
		CHECK_EQ_INT(y->date_sec, x->date_sec);
		CHECK_EQ_INT(y->date_nsec, x->date_nsec);
		CHECK_EQ_INT(y->flags, x->flags);
		CHECK(y->keywords == x->keywords);
		CHECK_STR(y->base, x->base);
		CHECK_STR(y->uidlist_ext, x->uidlist_ext);
		CHECK_EQ_INT(y->in_new, x->in_new);
		CHECK_STR(y->uidlist_info, x->uidlist_info ? x->uidlist_info : "");
	}
}

static void check_loaded(struct repo *r, const uint8_t root[ARCA_ID_LEN],
			 const struct snapshot *s)
{
	struct arca_err err = { 0 };
	struct snapshot *l = NULL;
	REQUIRE(snapshot_load(r, root, &l, &err) == 0);
	CHECK_STR(l->account, s->account);
	CHECK(l->time_ns == s->time_ns);
	CHECK_STR(l->source, s->source);
	CHECK_EQ_INT(l->layout, s->layout);
	CHECK_EQ_INT(l->nsubscriptions, s->nsubscriptions);
	for (size_t i = 0; i < s->nsubscriptions && i < l->nsubscriptions; i++)
		CHECK_STR(l->subscriptions[i], s->subscriptions[i]);
	CHECK_EQ_INT(l->nfolders, s->nfolders);
	for (size_t i = 0; i < s->nfolders && i < l->nfolders; i++) {
		const struct snap_folder *a = &s->folders[i];
		struct snap_folder *b = &l->folders[i];
		CHECK_STR(b->name, a->name);
		CHECK_EQ_INT(b->attrs, a->attrs);
		CHECK_STR(b->special_use, a->special_use);
		CHECK_EQ_INT(b->uidvalidity, a->uidvalidity);
		CHECK_EQ_INT(b->nextuid, a->nextuid);
		CHECK(b->highestmodseq == a->highestmodseq);
		CHECK_STR(b->guid, a->guid);
		CHECK_STR(b->uidlist_extra, a->uidlist_extra);
		CHECK_EQ_INT(b->nkeywords, a->nkeywords);
		for (size_t k = 0; k < a->nkeywords && k < b->nkeywords; k++)
			CHECK_STR(b->keywords[k], a->keywords[k]);
		CHECK(b->message_count == a->nmsgs);
		uint64_t bytes = 0;
		for (size_t m = 0; m < a->nmsgs; m++)
			bytes += a->msgs[m].size;
		CHECK(b->bytes == bytes);
		CHECK_EQ_INT(b->npages, a->npages);
		for (size_t p = 0; p < a->npages && p < b->npages; p++) {
			CHECK(memcmp(b->pages[p].id, a->pages[p].id, ARCA_ID_LEN) == 0);
			CHECK(b->pages[p].count == a->pages[p].count);
		}
		CHECK(b->msgs == NULL);
		CHECK(snapshot_load_msgs(r, b, &err) == 0);
		check_msgs_equal(a, b);
	}
	snapshot_free(l);
}

static void test_store_load_roundtrip(void)
{
	struct env e;
	REQUIRE(env_init(&e) == 0);
	struct snapshot *s = build_sample();
	REQUIRE(s != NULL);
	uint8_t root[ARCA_ID_LEN];
	struct snap_info info;
	struct arca_err err = { 0 };
	struct abuf got = ABUF_INIT, want = ABUF_INIT;
	struct snap_info *list = NULL;
	size_t n = 0;
	char idx[600];
	if (store(e.r, s, root, &info) != 0) {
		CHECK(0);
		goto out;
	}
	CHECK_EQ_INT(info.messages, 305);
	CHECK_EQ_INT(info.folders, 4);
	CHECK(info.seq > 0);
	CHECK(s->folders[0].npages >= 1);
	CHECK_EQ_INT(s->folders[1].npages, 0);
	CHECK_EQ_INT(s->folders[3].npages, 0);
	check_loaded(e.r, root, s);

	/* the stored bytes are exactly what the document describes */
	CHECK(repo_get(e.r, root, OBJ_SNAPSHOT, &got, &err) == 0);
	spec_root(&want, s);
	CHECK(got.len == want.len && memcmp(got.data, want.data, got.len) == 0);
	for (size_t i = 0; i < s->nfolders; i++) {
		const struct snap_folder *f = &s->folders[i];
		size_t at = 0;
		for (size_t p = 0; p < f->npages; p++) {
			CHECK(repo_get(e.r, f->pages[p].id, OBJ_FOLDER_PAGE, &got, &err) == 0);
			spec_page(&want, f->msgs + at, f->pages[p].count);
			CHECK(got.len == want.len && memcmp(got.data, want.data, got.len) == 0);
			/* each page but the last ends where the cut rule says */
			const struct snap_msg *last = &f->msgs[at + f->pages[p].count - 1];
			if (p + 1 < f->npages)
				CHECK(spec_cut(last->base, last->uid) || f->pages[p].count == 4096);
			for (size_t m = at; m + 1 < at + f->pages[p].count; m++)
				CHECK(!spec_cut(f->msgs[m].base, f->msgs[m].uid));
			at += f->pages[p].count;
		}
		CHECK_EQ_INT(at, f->nmsgs);
	}
	/* a page asked for as another type is refused */
	if (s->folders[0].npages > 0)
		CHECK(repo_get(e.r, s->folders[0].pages[0].id, OBJ_SNAPSHOT, &got, &err) == ARCA_ECORRUPT);
	abuf_release(&got);
	abuf_release(&want);

	/* the snapshot log payload, through the log and the index */
	CHECK(repo_snapshots(e.r, &list, &n, &err) == 0);
	CHECK_EQ_INT(n, 1);
	if (n == 1) {
		CHECK(memcmp(list[0].root, root, ARCA_ID_LEN) == 0);
		CHECK(list[0].time_ns == s->time_ns);
		CHECK_STR(list[0].account, s->account);
		CHECK_STR(list[0].source, "maildir");
		CHECK_EQ_INT(list[0].messages, 305);
		CHECK_EQ_INT(list[0].folders, 4);
		CHECK(list[0].bytes == info.bytes);
		CHECK(list[0].seq == info.seq);
	}
	snap_infos_free(list, n);

	/* the index is a cache: delete it, reopen, and everything is back */
	repo_close(e.r);
	e.r = NULL;
	snprintf(idx, sizeof(idx), "%s/index", e.repo);
	harness_rm_rf(idx);
	if (env_open_repo(&e, REPO_OPEN_READ) != 0) {
		CHECK(0);
		goto out;
	}
	list = NULL;
	n = 0;
	CHECK(repo_snapshots(e.r, &list, &n, &err) == 0);
	CHECK_EQ_INT(n, 1);
	snap_infos_free(list, n);
	check_loaded(e.r, root, s);
out:
	snapshot_free(s);
	env_release(&e);
}

/* Ids of a folder's pages, to compare two stores. */
static size_t pages_not_in(const struct snap_page_ref *a, size_t na,
			   const struct snap_page_ref *b, size_t nb)
{
	size_t missing = 0;
	for (size_t i = 0; i < na; i++) {
		bool found = false;
		for (size_t j = 0; j < nb && !found; j++)
			found = memcmp(a[i].id, b[j].id, ARCA_ID_LEN) == 0;
		missing += !found;
	}
	return missing;
}

static void test_one_change_few_pages(void)
{
	struct env e;
	REQUIRE(env_init(&e) == 0);
	struct snapshot *s = snapshot_new("bob@example.org", "maildir");
	struct snap_folder *f = s ? snapshot_add_folder(s, "INBOX") : NULL;
	uint8_t root[ARCA_ID_LEN];
	struct snap_page_ref *before = NULL;
	size_t nbefore = 0;
	if (f == NULL || snap_folder_keyword(f, "work") != 0 || add_msgs(f, 2000, 1, 3) != 0 ||
	    store(e.r, s, root, NULL) != 0) {
		CHECK(0);
		goto out;
	}
	nbefore = f->npages;
	CHECK(nbefore >= 5);   /* ~128 records a page */
	before = malloc(nbefore * sizeof(*before));
	REQUIRE(before != NULL);
	memcpy(before, f->pages, nbefore * sizeof(*before));

	/* one message's flags change: one page changes */
	f->msgs[1234].flags ^= 1u << ('S' - 'A');
	if (store(e.r, s, root, NULL) != 0) {
		CHECK(0);
		goto out;
	}
	CHECK_EQ_INT(f->npages, nbefore);
	size_t changed = pages_not_in(f->pages, f->npages, before, nbefore);
	CHECK(changed >= 1 && changed <= 2);

	/* one message expunged: at most two pages change (its own, and the
	 * next one if it was the last of its page) */
	struct snap_page_ref *mid = malloc(f->npages * sizeof(*mid));
	REQUIRE(mid != NULL);
	size_t nmid = f->npages;
	memcpy(mid, f->pages, nmid * sizeof(*mid));
	snap_msg_release(&f->msgs[700]);
	memmove(&f->msgs[700], &f->msgs[701], (f->nmsgs - 701) * sizeof(f->msgs[0]));
	f->nmsgs--;
	if (store(e.r, s, root, NULL) == 0) {
		changed = pages_not_in(f->pages, f->npages, mid, nmid);
		CHECK(changed >= 1 && changed <= 2);
		CHECK(f->message_count == 1999);
	} else {
		CHECK(0);
	}
	free(mid);
out:
	free(before);
	snapshot_free(s);
	env_release(&e);
}

/* No name in the folder says "cut": pages hold at most 4096 records. */
static void test_page_max_records(void)
{
	struct env e;
	REQUIRE(env_init(&e) == 0);
	struct snapshot *s = snapshot_new("carol@example.net", "maildir");
	struct snap_folder *f = s ? snapshot_add_folder(s, "INBOX") : NULL;
	REQUIRE(f != NULL);
	uint32_t uid = 1;
	for (unsigned i = 0; f->nmsgs < 5000; i++) {
		char base[32];
		snprintf(base, sizeof(base), "m%u", i);
		if (spec_cut(base, uid))
			continue;
		struct snap_msg m = { .uid = uid++, .content_type = OBJ_BLOB, .base = base };
		REQUIRE(snap_folder_add_msg(f, &m) == 0);
	}
	uint8_t root[ARCA_ID_LEN];
	if (store(e.r, s, root, NULL) == 0) {
		CHECK_EQ_INT(f->npages, 2);
		if (f->npages == 2) {
			CHECK_EQ_INT(f->pages[0].count, 4096);
			CHECK_EQ_INT(f->pages[1].count, 904);
		}
	} else {
		CHECK(0);
	}
	snapshot_free(s);
	env_release(&e);
}

/* ---- strict decoding ---- */

static struct snapshot *small_root(void)
{
	struct snapshot *s = snapshot_new("a@b", "maildir");
	struct snap_folder *f = s ? snapshot_add_folder(s, "INBOX") : NULL;
	if (f == NULL || snapshot_add_subscription(s, "INBOX") != 0 ||
	    snap_folder_keyword(f, "x") != 0) {
		snapshot_free(s);
		return NULL;
	}
	f->attrs = 1;
	f->message_count = 5;
	f->bytes = 500;
	f->pages = calloc(2, sizeof(*f->pages));
	if (f->pages == NULL) {
		snapshot_free(s);
		return NULL;
	}
	f->npages = 2;
	f->pages[0].count = 2;
	f->pages[1].count = 3;
	f->pages[1].id[0] = 1;
	return s;
}

static int decode_root(const struct abuf *b)
{
	struct snapshot *s = NULL;
	int rc = snapshot_decode_root(b->data, b->len, &s);
	if (rc == 0 && s == NULL)
		return -1;
	snapshot_free(s);
	return rc;
}

static void test_root_strict(void)
{
	struct snapshot *s = small_root();
	REQUIRE(s != NULL);
	struct abuf b = ABUF_INIT;
	spec_root(&b, s);
	CHECK(decode_root(&b) == 0);
	for (size_t n = 0; n < b.len; n++) {
		struct abuf t = { b.data, n, n };
		if (decode_root(&t) == 0) {
			fprintf(stderr, "  a %zu-byte prefix was accepted\n", n);
			CHECK(0);
			break;
		}
	}
	abuf_add_u8(&b, 0);
	CHECK(decode_root(&b) != 0);   /* trailing byte */
	spec_root(&b, s);
	b.data[0] = 3;   /* 1 and 2 (with Sieve scripts) are known */
	CHECK_EQ_INT(decode_root(&b), ARCA_EVERSION);

	struct snap_folder *f = &s->folders[0];
	f->pages[1].count = 2;           /* 2 + 2 != 5 */
	spec_root(&b, s);
	CHECK(decode_root(&b) != 0);
	f->pages[1].count = 4;           /* 2 + 4 != 5 */
	spec_root(&b, s);
	CHECK(decode_root(&b) != 0);
	f->message_count = 1;            /* more pages than messages */
	f->pages[0].count = 1;
	f->pages[1].count = 0;
	spec_root(&b, s);
	CHECK(decode_root(&b) != 0);
	f->message_count = 5;
	f->pages[0].count = 2;
	f->pages[1].count = 3;
	f->message_count = SNAP_MESSAGES_MAX + 1ull;
	f->pages[1].count = SNAP_MESSAGES_MAX - 1ull;
	spec_root(&b, s);
	CHECK(decode_root(&b) != 0);     /* over the limit */
	f->message_count = 5;
	f->pages[1].count = 3;

	/* 65 keywords */
	for (int k = 1; k < SNAP_KEYWORDS_MAX; k++) {
		char kw[16];
		snprintf(kw, sizeof(kw), "k%d", k);
		snap_folder_keyword(f, kw);
	}
	spec_root(&b, s);
	CHECK(decode_root(&b) == 0);     /* 64 is fine */
	/* 65 keywords (the API can't hold 65: encode by hand) */
	abuf_reset(&b);
	abuf_add_u8(&b, 1);
	abuf_add_str(&b, "a@b");
	abuf_add_u64(&b, 0);
	abuf_add_str(&b, "maildir");
	abuf_add_u8(&b, 1);
	abuf_add_varint(&b, 0);          /* subscriptions */
	abuf_add_varint(&b, 1);          /* folders */
	abuf_add_str(&b, "INBOX");
	abuf_add_varint(&b, 1);          /* attrs */
	abuf_add_str(&b, "");
	abuf_add_u32(&b, 1);
	abuf_add_u32(&b, 1);
	abuf_add_u64(&b, 0);
	abuf_add_str(&b, "");
	abuf_add_str(&b, "");
	abuf_add_varint(&b, 65);
	for (int k = 0; k < 65; k++)
		abuf_add_str(&b, "k");
	abuf_add_varint(&b, 0);          /* message_count */
	abuf_add_varint(&b, 0);          /* bytes */
	abuf_add_varint(&b, 0);          /* pages */
	CHECK(decode_root(&b) != 0);
	/* an embedded NUL in a string */
	spec_root(&b, s);
	b.data[3] = '\0';                /* inside "a@b" */
	CHECK(decode_root(&b) != 0);
	/* an overlong varint (subscription count 1 as 0x81 0x00) */
	{
		struct abuf t = ABUF_INIT;
		abuf_add_u8(&t, 1);
		abuf_add_str(&t, "a@b");
		abuf_add_u64(&t, 0);
		abuf_add_str(&t, "maildir");
		abuf_add_u8(&t, 1);
		abuf_add(&t, "\x80\x00", 2);  /* 0, overlong */
		abuf_add_varint(&t, 0);
		CHECK(decode_root(&t) != 0);
		t.len -= 3;
		abuf_add_varint(&t, 0);
		abuf_add_varint(&t, 0);
		CHECK(decode_root(&t) == 0);  /* the same, shortest form */
		abuf_release(&t);
	}
	abuf_release(&b);
	snapshot_free(s);
}

static int decode_page(const struct abuf *b, size_t nkeywords)
{
	struct snapshot *s = snapshot_new("a@b", "maildir");
	struct snap_folder *f = s ? snapshot_add_folder(s, "INBOX") : NULL;
	if (f == NULL)
		return -1;
	for (size_t k = 0; k < nkeywords; k++) {
		char kw[16];
		snprintf(kw, sizeof(kw), "k%zu", k);
		snap_folder_keyword(f, kw);
	}
	int rc = snapshot_decode_page(b->data, b->len, f);
	snapshot_free(s);
	return rc;
}

static void test_page_strict(void)
{
	struct snap_msg m[2] = {
		{ .uid = 1, .content_type = OBJ_BLOB, .size = 10, .date_sec = -5,
		  .date_nsec = 999999999, .flags = 1u << 25, .keywords = 4,
		  .base = "1.M1.h", .uidlist_ext = "" },
		{ .uid = UINT32_MAX, .content_type = OBJ_CHUNKLIST, .size = 1, .base = "",
		  .uidlist_ext = "W1", .in_new = 1 },
	};
	struct abuf b = ABUF_INIT;
	spec_page(&b, m, 2);
	CHECK(decode_page(&b, 3) == 0);
	CHECK(decode_page(&b, 2) != 0);    /* keyword bit 2 beyond a 2-keyword table */
	CHECK(decode_page(&b, 0) != 0);
	for (size_t n = 0; n < b.len; n++) {
		struct abuf t = { b.data, n, n };
		if (decode_page(&t, 3) == 0) {
			fprintf(stderr, "  a %zu-byte prefix was accepted\n", n);
			CHECK(0);
			break;
		}
	}
	abuf_add_u8(&b, 0);
	CHECK(decode_page(&b, 3) != 0);   /* trailing byte */
	spec_page(&b, m, 2);
	b.data[0] = 2;
	CHECK_EQ_INT(decode_page(&b, 3), ARCA_EVERSION);

	m[0].keywords = 1ull << 63;
	spec_page(&b, m, 1);
	CHECK(decode_page(&b, 64) == 0);
	CHECK(decode_page(&b, 63) != 0);
	m[0].keywords = 0;

	m[0].date_nsec = 1000000000;
	spec_page(&b, m, 1);
	CHECK(decode_page(&b, 0) != 0);   /* nsec >= 1e9 */
	m[0].date_nsec = 0;
	m[0].flags = 1u << 26;             /* SNAP_MSG_NO_INFO */
	spec_page(&b, m, 1);
	CHECK(decode_page(&b, 0) == 0);
	m[0].flags = 1u << 27;             /* a uidlist_info must follow */
	spec_page(&b, m, 1);
	CHECK(decode_page(&b, 0) != 0);
	m[0].flags = 0;
	m[0].uidlist_info = ":2,S";        /* bit 27 and the info */
	spec_page(&b, m, 1);
	CHECK(decode_page(&b, 0) == 0);
	static char *const bad_info[] = { "2,S", ":2,S/x", ":2,\nS" };
	for (size_t k = 0; k < 3; k++) {
		m[0].uidlist_info = bad_info[k];
		spec_page(&b, m, 1);
		CHECK(decode_page(&b, 0) != 0);   /* not the rest of a file name */
	}
	char longinfo[300];
	memset(longinfo, 'x', sizeof(longinfo) - 1);
	longinfo[0] = ':';
	longinfo[sizeof(longinfo) - 1] = '\0';
	m[0].uidlist_info = longinfo;
	spec_page(&b, m, 1);
	CHECK(decode_page(&b, 0) != 0);   /* over 255 bytes */
	m[0].uidlist_info = NULL;
	m[0].flags = 1u << 28;
	spec_page(&b, m, 1);
	CHECK(decode_page(&b, 0) != 0);   /* not a flag */
	m[0].flags = 0;
	m[0].content_type = OBJ_CHUNK;
	spec_page(&b, m, 1);
	CHECK(decode_page(&b, 0) != 0);   /* not a content type */
	m[0].content_type = OBJ_BLOB;
	m[0].in_new = 1;
	spec_page(&b, m, 1);
	b.data[b.len - 1] = 2;
	CHECK(decode_page(&b, 0) != 0);   /* in_new is 0 or 1 */
	m[0].in_new = 0;
	spec_page(&b, m, 1);
	CHECK(decode_page(&b, 0) == 0);

	/* uid >= 2^32 */
	abuf_reset(&b);
	abuf_add_u8(&b, 1);
	abuf_add_varint(&b, 1);
	abuf_add_varint(&b, (uint64_t)UINT32_MAX + 1);
	struct abuf rest = ABUF_INIT;
	spec_page(&rest, m, 1);
	abuf_add(&b, rest.data + 3, rest.len - 3);   /* after version, count, uid 0 */
	CHECK(decode_page(&b, 0) != 0);
	abuf_release(&rest);

	/* more than 4096 records in one page */
	struct snap_msg *many = calloc(4097, sizeof(*many));
	REQUIRE(many != NULL);
	for (size_t i = 0; i < 4097; i++)
		many[i] = (struct snap_msg){ .uid = (uint32_t)i + 1, .content_type = OBJ_BLOB,
					     .base = "", .uidlist_ext = "" };
	spec_page(&b, many, 4096);
	CHECK(decode_page(&b, 0) == 0);
	spec_page(&b, many, 4097);
	CHECK(decode_page(&b, 0) != 0);
	free(many);
	abuf_release(&b);
}

static void test_snap_info_strict(void)
{
	struct snap_info s = { .time_ns = 1, .account = "a@b", .source = "maildir",
			       .messages = 300, .bytes = 1ull << 40, .folders = 3 };
	memset(s.root, 0xab, sizeof(s.root));
	struct abuf b = ABUF_INIT;
	REQUIRE(snap_info_encode(&s, &b) == 0);
	CHECK_EQ_INT(b.len, 1 + 32 + 8 + 4 + 8 + 2 + 6 + 1);
	struct snap_info t;
	CHECK(snap_info_decode(b.data, b.len, &t) == 0);
	CHECK_STR(t.account, "a@b");
	CHECK_STR(t.source, "maildir");
	CHECK(t.bytes == 1ull << 40 && t.messages == 300 && t.folders == 3 && t.time_ns == 1);
	snap_info_release(&t);
	for (size_t n = 0; n < b.len; n++)
		CHECK(snap_info_decode(b.data, n, &t) != 0);
	abuf_add_u8(&b, 0);
	CHECK(snap_info_decode(b.data, b.len, &t) != 0);
	b.data[0] = 2;
	CHECK(snap_info_decode(b.data, b.len - 1, &t) == ARCA_EVERSION);
	abuf_release(&b);
}

/* Damaged trees in a real repository are reported, not trusted. */
static void test_load_rejects_damage(void)
{
	struct env e;
	REQUIRE(env_init(&e) == 0);
	struct arca_err err = { 0 };
	struct abuf page = ABUF_INIT, rootb = ABUF_INIT;
	struct snap_msg m = { .uid = 1, .content_type = OBJ_BLOB, .base = "x", .uidlist_ext = "" };
	spec_page(&page, &m, 1);
	struct snapshot *s = small_root();
	REQUIRE(s != NULL);
	struct snap_folder *f = &s->folders[0];
	uint8_t root[ARCA_ID_LEN];
	/* the root says the page holds 2 records; it holds 1 */
	f->npages = 1;
	f->message_count = 2;
	f->pages[0].count = 2;
	CHECK(repo_put(e.r, OBJ_FOLDER_PAGE, page.data, page.len, f->pages[0].id, NULL, &err) == 0);
	spec_root(&rootb, s);
	CHECK(repo_put(e.r, OBJ_SNAPSHOT, rootb.data, rootb.len, root, NULL, &err) == 0);
	/* a root whose page counts don't add up */
	uint8_t bad[ARCA_ID_LEN];
	f->message_count = 3;
	spec_root(&rootb, s);
	CHECK(repo_put(e.r, OBJ_SNAPSHOT, rootb.data, rootb.len, bad, NULL, &err) == 0);
	CHECK(repo_flush(e.r, &err) == 0);

	struct snapshot *l = NULL;
	CHECK(snapshot_load(e.r, bad, &l, &err) != 0);
	CHECK(l == NULL);
	if (snapshot_load(e.r, root, &l, &err) == 0) {
		CHECK_EQ_INT(snapshot_load_msgs(e.r, &l->folders[0], &err), ARCA_ECORRUPT);
		snapshot_free(l);
	} else {
		CHECK(0);
	}
	/* a page is not a root */
	l = NULL;
	CHECK(snapshot_load(e.r, f->pages[0].id, &l, &err) != 0);
	abuf_release(&page);
	abuf_release(&rootb);
	snapshot_free(s);
	env_release(&e);
}

/* Snapshot times through one handle never go back or repeat (accounts
 * prepared ahead take their time before the ones stored ahead of them). */
static void test_snapshot_time_order(void)
{
	struct env e;
	REQUIRE(env_init(&e) == 0);
	CHECK(repo_snapshot_time(e.r, 1000) == 1000);
	CHECK(repo_snapshot_time(e.r, 999) == 1001);   /* taken earlier, stored later */
	CHECK(repo_snapshot_time(e.r, 1001) == 1002);  /* the same time twice */
	CHECK(repo_snapshot_time(e.r, 5000) == 5000);  /* later: kept as it is */
	repo_close(e.r);
	e.r = NULL;
	/* a new handle starts afresh: the order is per handle */
	REQUIRE(env_open_repo(&e, REPO_OPEN_WRITE) == 0);
	CHECK(repo_snapshot_time(e.r, 10) == 10);
	env_release(&e);
}

/*
 * Regressions: what a
 * writer stores, its reader must accept.
 */
static void test_regress_account_limit_bricks_log(void)
{
	/* snap_info_decode refuses accounts over 1024 bytes, but snap_info_encode
	 * (and so repo_commit_snapshot) writes them into the log: every later
	 * repo_open then fails on "malformed snapshot record". */
	char account[2000];
	memset(account, 'a', sizeof(account) - 1);
	account[sizeof(account) - 1] = '\0';
	struct snap_info s = { .account = account, .source = "maildir" };
	struct abuf b = ABUF_INIT;
	struct snap_info t;
	if (snap_info_encode(&s, &b) == 0) {
		CHECK(snap_info_decode(b.data, b.len, &t) == 0);
		snap_info_release(&t);
	}
	abuf_release(&b);
}

static void test_regress_long_uidlist_fields(void)
{
	/* dovecot-uidlist lines may be 8192 bytes (MAILDIR_LINE_MAX), so the
	 * header's extra fields and a record's extension fields may exceed the
	 * decoders' 4096 (SNAP_NAME_MAX): the snapshot stores, then can't load. */
	struct env e;
	REQUIRE(env_init(&e) == 0);
	char big[5000];
	memset(big, 'X', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	struct snapshot *s = snapshot_new("dave@example.org", "maildir");
	struct snap_folder *f = s ? snapshot_add_folder(s, "INBOX") : NULL;
	REQUIRE(f != NULL);
	f->attrs = SNAP_FOLDER_SELECTABLE;
	replace(&f->uidlist_extra, big);
	struct snap_msg m = { .uid = 1, .content_type = OBJ_BLOB, .base = "1.M1.h",
			      .uidlist_ext = big };
	REQUIRE(snap_folder_add_msg(f, &m) == 0);
	uint8_t root[ARCA_ID_LEN];
	struct arca_err err = { 0 };
	if (store(e.r, s, root, NULL) == 0) {
		struct snapshot *l = NULL;
		CHECK(snapshot_load(e.r, root, &l, &err) == 0);
		if (l != NULL)
			CHECK(snapshot_load_msgs(e.r, &l->folders[0], &err) == 0);
		snapshot_free(l);
	}
	snapshot_free(s);
	env_release(&e);
}

static void test_regress_attrs_truncated(void)
{
	/* attrs is a varint read into 32 bits: 2^32 + 1 is accepted as 1.
	 * Readers should reject unknown attribute bits. */
	struct snapshot *s = small_root();
	REQUIRE(s != NULL);
	s->folders[0].attrs = 0;
	struct abuf b = ABUF_INIT;
	spec_root(&b, s);
	/* splice attrs = 2^32 + 1 in place of the one-byte attrs 0 */
	size_t at = 1 + 4 + 8 + 8 + 1 + 1 + 6 + 1 + 6;
	REQUIRE(at < b.len && b.data[at] == 0);
	struct abuf t = ABUF_INIT;
	abuf_add(&t, b.data, at);
	abuf_add_varint(&t, (1ull << 32) + 1);
	abuf_add(&t, b.data + at + 1, b.len - at - 1);
	CHECK(decode_root(&t) != 0);
	abuf_release(&t);
	abuf_release(&b);
	snapshot_free(s);
}

int main(void)
{
	RUN(test_store_load_roundtrip);
	RUN(test_one_change_few_pages);
	RUN(test_page_max_records);
	RUN(test_root_strict);
	RUN(test_page_strict);
	RUN(test_snap_info_strict);
	RUN(test_load_rejects_damage);
	RUN(test_snapshot_time_order);
	RUN(test_regress_account_limit_bricks_log);
	RUN(test_regress_long_uidlist_fields);
	RUN(test_regress_attrs_truncated);
	HARNESS_EXIT();
}
