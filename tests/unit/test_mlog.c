/* Unit tests for lib/mlog.c: the hash-chained, Merkle, signed log. */
#include <ftw.h>
#include <sodium.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "buf.h"
#include "crypto.h"
#include "fsutil.h"
#include "mlog.h"
#include "harness.h"

static void rm_rf(char *dir)
{
	harness_rm_rf(dir);
	free(dir);
}

/* ---- an in-memory write-once backend (fast: no fsync) ---- */
#define MEM_MAX 2048
struct memfile {
	char *name;
	struct abuf data;
};
struct membe {
	struct backend be;
	struct memfile f[MEM_MAX];
	size_t n;
};

static struct memfile *mem_find(struct membe *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->f[i].name != NULL && strcmp(m->f[i].name, name) == 0)
			return &m->f[i];
	return NULL;
}

static int mem_put(struct backend *be, const char *name, const void *data,
		   size_t n, struct arca_err *err)
{
	struct membe *m = (struct membe *)be;
	if (mem_find(m, name) != NULL)
		return arca_err_set(err, ARCA_EEXIST, "%s already exists", name);
	if (m->n == MEM_MAX)
		return arca_err_set(err, ARCA_ENOSPC, "full");
	struct memfile *f = &m->f[m->n++];
	f->name = strdup(name);
	abuf_init(&f->data);
	if (f->name == NULL || abuf_add(&f->data, data, n) != 0)
		abort();
	return 0;
}

static int mem_get(struct backend *be, const char *name, size_t max,
		   struct abuf *out, struct arca_err *err)
{
	struct memfile *f = mem_find((struct membe *)be, name);
	if (f == NULL)
		return arca_err_set(err, ARCA_ENOENT, "%s not found", name);
	if (f->data.len > max)
		return arca_err_set(err, ARCA_ELIMIT, "%s too large", name);
	abuf_reset(out);
	return abuf_add(out, f->data.data, f->data.len);
}

static void mem_close(struct backend *be)
{
	struct membe *m = (struct membe *)be;
	for (size_t i = 0; i < m->n; i++) {
		free(m->f[i].name);
		abuf_release(&m->f[i].data);
	}
	free(m);
}

static const struct backend_ops mem_ops = {
	.put = mem_put,
	.get = mem_get,
	.close = mem_close,
};

static struct membe *mem_new(void)
{
	struct membe *m = calloc(1, sizeof(*m));
	if (m == NULL)
		abort();
	m->be.ops = &mem_ops;
	return m;
}

/* Test-only tampering with a stored file. */
static void mem_remove(struct membe *m, const char *name)
{
	struct memfile *f = mem_find(m, name);
	if (f != NULL) {
		free(f->name);
		f->name = NULL;
	}
}

/* ---- independent RFC 6962 reference ---- */
static void ref_node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
	uint8_t buf[65];
	buf[0] = 0x01;
	memcpy(buf + 1, l, 32);
	memcpy(buf + 33, r, 32);
	crypto_generichash(out, 32, buf, sizeof(buf), NULL, 0);
}

/* MTH(D[n]): k = largest power of two < n; H(1 || MTH(D[0:k]) || MTH(D[k:n])) */
static void ref_mth(uint8_t (*leaves)[32], size_t n, uint8_t out[32])
{
	if (n == 1) {
		memcpy(out, leaves[0], 32);
		return;
	}
	size_t k = 1;
	while (k * 2 < n)
		k *= 2;
	uint8_t l[32], r[32];
	ref_mth(leaves, k, l);
	ref_mth(leaves + k, n - k, r);
	ref_node(l, r, out);
}

/* Leaf hash of an entry file, as docs/format/log.md defines it. */
static void ref_leaf(const uint8_t *file, size_t len, uint8_t out[32])
{
	crypto_generichash_state st;
	static const uint8_t zero = 0;
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, &zero, 1);
	crypto_generichash_update(&st, file, len - 32 - 64);
	crypto_generichash_final(&st, out, 32);
}

struct keys {
	struct arca_public_keys pub;
	struct arca_ingest_keys *ik;
	struct arca_restore_key *rk;
};

static int keys_init(struct keys *k)
{
	return acrypto_generate(&k->pub, &k->ik, &k->rk, NULL);
}

static void keys_release(struct keys *k)
{
	acrypto_ingest_keys_free(k->ik);
	acrypto_restore_key_free(k->rk);
}

static int append_n(struct backend *be, struct mlog_state *st, const struct keys *k,
		    uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		uint8_t payload[40];
		size_t plen = (size_t)(st->count % 41);
		for (size_t j = 0; j < plen; j++)
			payload[j] = (uint8_t)(st->count + j);
		uint64_t seq;
		struct arca_err err = { 0 };
		int rc = mlog_append(be, st, k->ik, k->pub.sign_pk, (uint8_t)(st->count % 3),
				     payload, plen, 1700000000000000000ull + st->count, NULL,
				     NULL, &seq, &err);
		if (rc) {
			fprintf(stderr, "  append: %s\n", err.msg);
			return rc;
		}
		if (seq + 1 != st->count)
			return -100;
	}
	return 0;
}

/* Re-read entries [0, n) from the backend into a fresh state. */
static int replay(struct backend *be, const uint8_t pk[32], uint64_t n,
		  struct mlog_state *st, struct arca_err *err)
{
	mlog_state_init(st);
	struct abuf buf = ABUF_INIT;
	int rc = 0;
	for (uint64_t seq = 0; rc == 0 && seq < n; seq++) {
		struct mlog_entry e;
		rc = mlog_read(be, seq, pk, &buf, &e, err);
		rc = rc ? rc : mlog_state_apply(st, &e, err);
	}
	abuf_release(&buf);
	return rc;
}

static bool state_eq(const struct mlog_state *a, const struct mlog_state *b)
{
	struct abuf x = ABUF_INIT, y = ABUF_INIT;
	bool eq = mlog_state_encode(a, &x) == 0 && mlog_state_encode(b, &y) == 0 &&
		  x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
	abuf_release(&x);
	abuf_release(&y);
	return eq;
}

static void test_append_and_replay(void)
{
	struct keys k;
	REQUIRE(keys_init(&k) == 0);
	struct membe *m = mem_new();
	struct mlog_state st;
	mlog_state_init(&st);
	REQUIRE(append_n(&m->be, &st, &k, 1000) == 0);
	CHECK_EQ_INT(st.count, 1000);
	struct mlog_state back;
	struct arca_err err = { 0 };
	CHECK(replay(&m->be, k.pub.sign_pk, 1000, &back, &err) == 0);
	CHECK(state_eq(&st, &back));
	/* the next entry does not exist yet */
	struct abuf buf = ABUF_INIT;
	struct mlog_entry e;
	CHECK_EQ_INT(mlog_read(&m->be, 1000, k.pub.sign_pk, &buf, &e, NULL), ARCA_ENOENT);
	/* entry fields as written */
	REQUIRE(mlog_read(&m->be, 40, k.pub.sign_pk, &buf, &e, NULL) == 0);
	CHECK_EQ_INT(e.seq, 40);
	CHECK_EQ_INT(e.kind, 40 % 3);
	CHECK_EQ_INT(e.payload_len, 40);
	CHECK_EQ_INT(e.time_ns, 1700000000000000040ull);
	CHECK(e.payload[39] == (uint8_t)(40 + 39));
	uint8_t h[32];
	crypto_generichash(h, 32, buf.data, buf.len, NULL, 0);
	CHECK(memcmp(h, e.hash, 32) == 0);
	/* the final Merkle head equals an independent computation over the
	 * leaf hashes of all 1000 entry files (read raw: no signature checks) */
	uint8_t (*leaves)[32] = malloc(1000 * 32);
	REQUIRE(leaves != NULL);
	for (uint64_t seq = 0; seq < 1000; seq++) {
		char name[48];
		mlog_name(seq, name);
		struct memfile *mf = mem_find(m, name);
		REQUIRE(mf != NULL);
		ref_leaf(mf->data.data, mf->data.len, leaves[seq]);
	}
	uint8_t root[32], want[32];
	ref_mth(leaves, 1000, want);
	mlog_state_root(&st, root);
	CHECK(memcmp(root, want, 32) == 0);
	REQUIRE(mlog_read(&m->be, 999, k.pub.sign_pk, &buf, &e, NULL) == 0);
	CHECK(memcmp(e.tree_root, want, 32) == 0);
	CHECK(memcmp(e.leaf_hash, leaves[999], 32) == 0);
	free(leaves);
	/* a verifier holding another repository's key rejects every entry */
	struct keys k2;
	REQUIRE(keys_init(&k2) == 0);
	arca_err_clear(&err);
	CHECK_EQ_INT(mlog_read(&m->be, 0, k2.pub.sign_pk, &buf, &e, &err), ARCA_ECORRUPT);
	CHECK(strstr(err.msg, "bad signature") != NULL);
	keys_release(&k2);
	abuf_release(&buf);
	backend_close(&m->be);
	keys_release(&k);
}

static void test_merkle_reference(void)
{
	/* Synthetic leaves through mlog_state_apply: the state accepts an
	 * entry only when its tree_root equals the reference head. */
	uint8_t leaves[70][32];
	for (size_t i = 0; i < 70; i++) {
		uint8_t x[8];
		put_u64le(x, i);
		crypto_generichash(leaves[i], 32, x, 8, NULL, 0);
	}
	struct mlog_state st;
	mlog_state_init(&st);
	uint8_t root[32];
	mlog_state_root(&st, root);
	static const uint8_t zero[32];
	CHECK(memcmp(root, zero, 32) == 0);
	int mismatches = 0;
	for (size_t n = 1; n <= 70; n++) {
		struct mlog_entry e;
		memset(&e, 0, sizeof(e));
		e.seq = n - 1;
		memcpy(e.prev_hash, st.last_hash, 32);
		memcpy(e.leaf_hash, leaves[n - 1], 32);
		crypto_generichash(e.hash, 32, leaves[n - 1], 32, NULL, 0);
		ref_mth(leaves, n, e.tree_root);
		/* a wrong head is refused and leaves the state alone */
		struct mlog_entry bad = e;
		bad.tree_root[n % 32] ^= 1;
		struct mlog_state before = st;
		if (mlog_state_apply(&st, &bad, NULL) != ARCA_ECORRUPT || !state_eq(&st, &before))
			mismatches++;
		if (mlog_state_apply(&st, &e, NULL) != 0)
			mismatches++;
		mlog_state_root(&st, root);
		if (memcmp(root, e.tree_root, 32) != 0)
			mismatches++;
	}
	CHECK_EQ_INT(mismatches, 0);
	CHECK_EQ_INT(st.count, 70);
	/* the same through real signed entries, N = 1..70 */
	struct keys k;
	REQUIRE(keys_init(&k) == 0);
	struct membe *m = mem_new();
	struct mlog_state w;
	mlog_state_init(&w);
	REQUIRE(append_n(&m->be, &w, &k, 70) == 0);
	struct abuf buf = ABUF_INIT;
	uint8_t fl[70][32];
	mismatches = 0;
	for (uint64_t seq = 0; seq < 70; seq++) {
		struct mlog_entry e;
		REQUIRE(mlog_read(&m->be, seq, k.pub.sign_pk, &buf, &e, NULL) == 0);
		ref_leaf(buf.data, buf.len, fl[seq]);
		uint8_t want[32];
		ref_mth(fl, seq + 1, want);
		if (memcmp(want, e.tree_root, 32) != 0)
			mismatches++;
		/* the head is stored right before the signature */
		if (memcmp(buf.data + buf.len - 96, want, 32) != 0)
			mismatches++;
	}
	CHECK_EQ_INT(mismatches, 0);
	abuf_release(&buf);
	backend_close(&m->be);
	keys_release(&k);
}

static void test_tampering_rejected(void)
{
	struct keys k;
	REQUIRE(keys_init(&k) == 0);
	struct membe *m = mem_new();
	struct mlog_state st;
	mlog_state_init(&st);
	REQUIRE(append_n(&m->be, &st, &k, 10) == 0);
	char name[48];
	struct mlog_state back;
	struct arca_err err = { 0 };

	/* any flipped bit in an entry file breaks its signature or layout */
	mlog_name(4, name);
	struct memfile *f = mem_find(m, name);
	REQUIRE(f != NULL);
	size_t undetected = 0;
	struct mlog_entry e;
	for (size_t bit = 0; bit < f->data.len * 8; bit++) {
		f->data.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (mlog_parse(f->data.data, f->data.len, k.pub.sign_pk, &e, NULL) == 0)
			undetected++;
		f->data.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	CHECK_EQ_INT(undetected, 0);
	CHECK(replay(&m->be, k.pub.sign_pk, 10, &back, NULL) == 0);
	/* appended or removed bytes */
	CHECK(mlog_parse(f->data.data, f->data.len - 1, k.pub.sign_pk, &e, NULL) != 0);

	/* an entry re-signed by the key holder with another payload: it is a
	 * valid entry on its own, but the next one no longer chains to it */
	struct membe *m2 = mem_new();
	struct mlog_state fork_st;
	REQUIRE(replay(&m->be, k.pub.sign_pk, 4, &fork_st, NULL) == 0);
	uint64_t seq;
	REQUIRE(mlog_append(&m2->be, &fork_st, k.ik, k.pub.sign_pk, MLOG_SNAPSHOT,
			    (const uint8_t *)"forged", 6, 1, NULL, NULL, &seq, NULL) == 0);
	REQUIRE(seq == 4);
	struct memfile *forged = mem_find(m2, name);
	REQUIRE(forged != NULL);
	struct abuf orig = ABUF_INIT;
	REQUIRE(abuf_add(&orig, f->data.data, f->data.len) == 0);
	abuf_reset(&f->data);
	REQUIRE(abuf_add(&f->data, forged->data.data, forged->data.len) == 0);
	arca_err_clear(&err);
	CHECK_EQ_INT(replay(&m->be, k.pub.sign_pk, 10, &back, &err), ARCA_ECORRUPT);
	CHECK_EQ_INT(back.count, 5); /* entries 0..4 applied, 5 refused */
	CHECK(strstr(err.msg, "does not chain") != NULL);
	abuf_reset(&f->data);
	REQUIRE(abuf_add(&f->data, orig.data, orig.len) == 0);
	CHECK(replay(&m->be, k.pub.sign_pk, 10, &back, NULL) == 0);

	/* entry files swapped: the file name and the seq inside disagree */
	char n5[48];
	mlog_name(5, n5);
	struct memfile *f5 = mem_find(m, n5);
	REQUIRE(f5 != NULL);
	char *tmp = f->name;
	f->name = f5->name;
	f5->name = tmp;
	arca_err_clear(&err);
	CHECK_EQ_INT(replay(&m->be, k.pub.sign_pk, 10, &back, &err), ARCA_ECORRUPT);
	CHECK(strstr(err.msg, "holds entry") != NULL);
	tmp = f->name;
	f->name = f5->name;
	f5->name = tmp;

	/* entries applied out of order */
	struct abuf b4 = ABUF_INIT, b5 = ABUF_INIT;
	struct mlog_entry e4, e5;
	REQUIRE(replay(&m->be, k.pub.sign_pk, 4, &back, NULL) == 0);
	REQUIRE(mlog_read(&m->be, 4, k.pub.sign_pk, &b4, &e4, NULL) == 0);
	REQUIRE(mlog_read(&m->be, 5, k.pub.sign_pk, &b5, &e5, NULL) == 0);
	arca_err_clear(&err);
	CHECK_EQ_INT(mlog_state_apply(&back, &e5, &err), ARCA_ECORRUPT);
	CHECK(strstr(err.msg, "expected") != NULL);
	CHECK(mlog_state_apply(&back, &e4, NULL) == 0);
	CHECK_EQ_INT(mlog_state_apply(&back, &e4, NULL), ARCA_ECORRUPT); /* replayed */
	CHECK(mlog_state_apply(&back, &e5, NULL) == 0);
	/* an entry with a forged seq but the right chain is still refused:
	 * its Merkle head was computed for another position */
	struct mlog_entry e5b = e5;
	e5b.seq = 4;
	REQUIRE(replay(&m->be, k.pub.sign_pk, 4, &back, NULL) == 0);
	memcpy(e5b.prev_hash, back.last_hash, 32);
	CHECK_EQ_INT(mlog_state_apply(&back, &e5b, NULL), ARCA_ECORRUPT);

	/* a missing entry */
	mem_remove(m, n5);
	arca_err_clear(&err);
	CHECK_EQ_INT(replay(&m->be, k.pub.sign_pk, 10, &back, &err), ARCA_ENOENT);
	CHECK_EQ_INT(back.count, 5);
	REQUIRE(replay(&m->be, k.pub.sign_pk, 5, &back, NULL) == 0);
	struct abuf b6 = ABUF_INIT;
	struct mlog_entry e6;
	REQUIRE(mlog_read(&m->be, 6, k.pub.sign_pk, &b6, &e6, NULL) == 0);
	CHECK_EQ_INT(mlog_state_apply(&back, &e6, NULL), ARCA_ECORRUPT);

	abuf_release(&orig);
	abuf_release(&b4);
	abuf_release(&b5);
	abuf_release(&b6);
	backend_close(&m2->be);
	backend_close(&m->be);
	keys_release(&k);
}

static void test_parse_strict(void)
{
	struct keys k;
	REQUIRE(keys_init(&k) == 0);
	struct membe *m = mem_new();
	struct mlog_state st;
	mlog_state_init(&st);
	REQUIRE(append_n(&m->be, &st, &k, 3) == 0);
	char name[48];
	mlog_name(2, name);
	CHECK_STR(name, "log/000000000000/0000000000000002");
	mlog_name(0x12345, name);
	CHECK_STR(name, "log/000000000012/0000000000012345");
	mlog_name(2, name);
	struct memfile *f = mem_find(m, name);
	REQUIRE(f != NULL);
	/* layout: 68 fixed bytes, payload, 32-byte head, 64-byte signature */
	CHECK_EQ_INT(f->data.len, 68 + 2 + 32 + 64);
	CHECK(memcmp(f->data.data, "ARCALOG1", 8) == 0);
	CHECK_EQ_INT(get_u32le(f->data.data + 8), 1);
	CHECK_EQ_INT(f->data.data[12], 2);
	CHECK_EQ_INT(get_u64le(f->data.data + 16), 2);
	CHECK_EQ_INT(get_u32le(f->data.data + 64), 2);
	struct mlog_entry e;
	struct arca_err err = { 0 };
	CHECK(mlog_parse(f->data.data, f->data.len, k.pub.sign_pk, &e, &err) == 0);
	/* signature over a future version would still be refused as a version */
	uint8_t v[256];
	memcpy(v, f->data.data, f->data.len);
	v[8] = 2;
	arca_err_clear(&err);
	CHECK_EQ_INT(mlog_parse(v, f->data.len, k.pub.sign_pk, &e, &err), ARCA_EVERSION);
	memcpy(v, f->data.data, f->data.len);
	v[14] = 1;
	CHECK_EQ_INT(mlog_parse(v, f->data.len, k.pub.sign_pk, &e, NULL), ARCA_ECORRUPT);
	CHECK_EQ_INT(mlog_parse(v, 10, k.pub.sign_pk, &e, NULL), ARCA_ECORRUPT);
	CHECK_EQ_INT(mlog_parse(f->data.data, f->data.len - 1, k.pub.sign_pk, &e, NULL), ARCA_ECORRUPT);
	memcpy(v, f->data.data, f->data.len);
	put_u32le(v + 64, MLOG_PAYLOAD_MAX + 1);
	CHECK_EQ_INT(mlog_parse(v, f->data.len, k.pub.sign_pk, &e, NULL), ARCA_ECORRUPT);
	/* payload limit on append */
	uint64_t seq;
	arca_err_clear(&err);
	CHECK_EQ_INT(mlog_append(&m->be, &st, k.ik, k.pub.sign_pk, MLOG_PACK, v,
				 MLOG_PAYLOAD_MAX + 1, 0, NULL, NULL, &seq, &err), ARCA_ELIMIT);
	CHECK_EQ_INT(st.count, 3);
	backend_close(&m->be);
	keys_release(&k);
}

struct foreign_seen {
	uint64_t seqs[64];
	size_t n;
};

static int on_foreign(const struct mlog_entry *e, void *ctx)
{
	struct foreign_seen *s = ctx;
	if (s->n < 64)
		s->seqs[s->n++] = e->seq;
	return 0;
}

static void test_two_writers(void)
{
	struct keys k;
	REQUIRE(keys_init(&k) == 0);
	struct membe *m = mem_new();
	struct mlog_state a, b;
	mlog_state_init(&a);
	REQUIRE(append_n(&m->be, &a, &k, 3) == 0);
	b = a; /* both writers start from the same head */
	struct foreign_seen sa = { { 0 }, 0 }, sb = { { 0 }, 0 };
	uint64_t seq;
	struct arca_err err = { 0 };
	REQUIRE(mlog_append(&m->be, &a, k.ik, k.pub.sign_pk, MLOG_PACK,
			    (const uint8_t *)"A1", 2, 10, on_foreign, &sa, &seq, &err) == 0);
	CHECK_EQ_INT(seq, 3);
	REQUIRE(mlog_append(&m->be, &a, k.ik, k.pub.sign_pk, MLOG_PACK,
			    (const uint8_t *)"A2", 2, 11, on_foreign, &sa, &seq, &err) == 0);
	CHECK_EQ_INT(seq, 4);
	/* b lost the race twice: it takes in 3 and 4, then writes 5 */
	REQUIRE(mlog_append(&m->be, &b, k.ik, k.pub.sign_pk, MLOG_SNAPSHOT,
			    (const uint8_t *)"B1", 2, 12, on_foreign, &sb, &seq, &err) == 0);
	CHECK_EQ_INT(seq, 5);
	CHECK_EQ_INT(sb.n, 2);
	CHECK(sb.seqs[0] == 3 && sb.seqs[1] == 4);
	CHECK_EQ_INT(sa.n, 0);
	/* and a sees b's entry on its next append */
	REQUIRE(mlog_append(&m->be, &a, k.ik, k.pub.sign_pk, MLOG_PACK,
			    (const uint8_t *)"A3", 2, 13, on_foreign, &sa, &seq, &err) == 0);
	CHECK_EQ_INT(seq, 6);
	CHECK(sa.n == 1 && sa.seqs[0] == 5);
	struct mlog_state back;
	CHECK(replay(&m->be, k.pub.sign_pk, 7, &back, NULL) == 0);
	CHECK(state_eq(&back, &a));
	/* an on_foreign error stops the append */
	struct mlog_state c;
	REQUIRE(replay(&m->be, k.pub.sign_pk, 6, &c, NULL) == 0);
	CHECK(mlog_append(&m->be, &c, k.ik, k.pub.sign_pk, MLOG_PACK, NULL, 0, 0,
			  NULL, NULL, &seq, NULL) == 0);
	CHECK_EQ_INT(seq, 7);
	backend_close(&m->be);
	keys_release(&k);
}

/* Two processes racing on one local directory: every entry lands at a
 * distinct consecutive seq, and each writer sees the other's entries. */
static void test_two_processes(void)
{
	struct keys k;
	REQUIRE(keys_init(&k) == 0);
	char *dir = harness_tmpdir("mlog");
	enum { PER = 8 };
	pid_t pids[2];
	for (int w = 0; w < 2; w++) {
		pids[w] = fork();
		REQUIRE(pids[w] >= 0);
		if (pids[w] == 0) {
			struct backend *be = NULL;
			if (backend_local_open(dir, &be, NULL) != 0)
				_exit(2);
			struct mlog_state st;
			mlog_state_init(&st);
			struct foreign_seen seen = { { 0 }, 0 };
			int rc = 0;
			for (int i = 0; i < PER && rc == 0; i++) {
				uint8_t payload[2] = { (uint8_t)w, (uint8_t)i };
				uint64_t seq;
				rc = mlog_append(be, &st, k.ik, k.pub.sign_pk, MLOG_PACK, payload, 2,
						 (uint64_t)i, on_foreign, &seen, &seq, NULL);
			}
			/* everything this writer skipped was the other's */
			if (rc == 0 && st.count != PER + seen.n)
				rc = 3;
			backend_close(be);
			_exit(rc ? 1 : 0);
		}
	}
	int ok = 1;
	for (int w = 0; w < 2; w++) {
		int status;
		waitpid(pids[w], &status, 0);
		ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
	}
	CHECK(ok);
	struct backend *be = NULL;
	REQUIRE(backend_local_open(dir, &be, NULL) == 0);
	struct mlog_state st;
	CHECK(replay(be, k.pub.sign_pk, 2 * PER, &st, NULL) == 0);
	struct abuf buf = ABUF_INIT;
	struct mlog_entry e;
	CHECK_EQ_INT(mlog_read(be, 2 * PER, k.pub.sign_pk, &buf, &e, NULL), ARCA_ENOENT);
	/* each writer's entries are in its own order */
	int next[2] = { 0, 0 }, order_ok = 1;
	for (uint64_t seq = 0; seq < 2 * PER; seq++) {
		if (mlog_read(be, seq, k.pub.sign_pk, &buf, &e, NULL) != 0 || e.payload_len != 2 ||
		    e.payload[0] > 1 || e.payload[1] != next[e.payload[0]]++) {
			order_ok = 0;
			break;
		}
	}
	CHECK(order_ok);
	abuf_release(&buf);
	backend_close(be);
	rm_rf(dir);
	keys_release(&k);
}

static void test_state_codec(void)
{
	struct keys k;
	REQUIRE(keys_init(&k) == 0);
	struct membe *m = mem_new();
	struct mlog_state st, back;
	mlog_state_init(&st);
	struct abuf enc = ABUF_INIT;
	int bad = 0;
	for (int n = 0; n <= 70; n++) {
		if (n > 0 && append_n(&m->be, &st, &k, 1) != 0)
			bad++;
		if (mlog_state_encode(&st, &enc) != 0)
			bad++;
		if (enc.len != 8 + 32 + 32 * (size_t)__builtin_popcountll(st.count))
			bad++;
		if (mlog_state_decode(enc.data, enc.len, &back) != 0 || !state_eq(&st, &back))
			bad++;
		uint8_t r1[32], r2[32];
		mlog_state_root(&st, r1);
		mlog_state_root(&back, r2);
		if (memcmp(r1, r2, 32) != 0)
			bad++;
		/* wrong lengths */
		if (mlog_state_decode(enc.data, enc.len - 1, &back) != ARCA_EFORMAT)
			bad++;
		uint8_t longer[8 + 32 + 64 * 32 + 1] = { 0 };
		memcpy(longer, enc.data, enc.len);
		if (mlog_state_decode(longer, enc.len + 32, &back) != ARCA_EFORMAT)
			bad++;
	}
	CHECK_EQ_INT(bad, 0);
	/* a decoded state continues the log */
	REQUIRE(mlog_state_decode(enc.data, enc.len, &back) == 0);
	REQUIRE(append_n(&m->be, &back, &k, 1) == 0);
	struct mlog_state full;
	CHECK(replay(&m->be, k.pub.sign_pk, 71, &full, NULL) == 0 && state_eq(&full, &back));
	CHECK(mlog_state_decode(enc.data, 3, &back) == ARCA_EFORMAT);
	abuf_release(&enc);
	backend_close(&m->be);
	keys_release(&k);
}

int main(void)
{
	if (acrypto_setup() != 0)
		return 1;
	RUN(test_append_and_replay);
	RUN(test_merkle_reference);
	RUN(test_tampering_rejected);
	RUN(test_parse_strict);
	RUN(test_two_writers);
	RUN(test_two_processes);
	RUN(test_state_codec);
	HARNESS_EXIT();
}
