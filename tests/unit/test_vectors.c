/*
 * Golden test vectors (tests/vectors/, README.md there): every format is
 * rebuilt here twice — by the library, and by an independent encoder written
 * from docs/format/ using libsodium directly — and both must equal the
 * stored files byte for byte.  Any change to a format breaks this test.
 */
#include <ftw.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdint.h>
#include <unistd.h>

#include "backend.h"
#include "buf.h"
#include "compress.h"
#include "crypto.h"
#include "fsutil.h"
#include "mlog.h"
#include "pack.h"
#include "journal.h"
#include "alarm.h"
#include "snapshot.h"
#include "overlay.h"
#include "harness.h"
#include "../vectors/vector_keys.h"

#ifndef VECTOR_DIR
#error "build with -DVECTOR_DIR=\"<source>/tests/vectors\""
#endif

static struct arca_public_keys pub;
static struct arca_ingest_keys *ik;
static struct arca_restore_key *rk;

static void rm_rf(char *dir)
{
	harness_rm_rf(dir);
	free(dir);
}

static int load(const char *name, struct abuf *out)
{
	char *p = fs_join(VECTOR_DIR, name);
	struct arca_err err = { 0 };
	int rc = p ? fs_read_file(p, 1 << 20, out, &err) : ARCA_ENOMEM;
	if (rc)
		fprintf(stderr, "  cannot load vector %s: %s\n", name, err.msg);
	free(p);
	return rc;
}

static bool same(const struct abuf *a, const uint8_t *b, size_t n, const char *what)
{
	if (a->len == n && (n == 0 || memcmp(a->data, b, n) == 0))
		return true;
	size_t i = 0;
	while (i < a->len && i < n && a->data[i] == b[i])
		i++;
	fprintf(stderr, "  %s differs from the vector (%zu vs %zu bytes, first difference at %zu)\n",
		what, n, a->len, i);
	return false;
}

/* ---- key files ---- */

static void test_ingest_key(void)
{
	struct abuf v = ABUF_INIT, got = ABUF_INIT;
	REQUIRE(load("ingest.key", &v) == 0);
	/* spec: "ARCAIKEY", u32 1, repo id, id key, Ed25519 secret (seed||pk) */
	uint8_t want[124];
	memcpy(want, "ARCAIKEY", 8);
	put_u32le(want + 8, 1);
	memcpy(want + 12, pub.repo_id, 16);
	memcpy(want + 28, ik->id_key, 32);
	memcpy(want + 60, ik->sign_sk, 64);
	CHECK(same(&v, want, sizeof(want), "ingest.key (spec)"));
	/* the library writes the same bytes */
	char *dir = harness_tmpdir("vectors");
	char *p = fs_join(dir, "ingest.key");
	REQUIRE(ingestkey_write(p, pub.repo_id, ik, NULL) == 0);
	REQUIRE(fs_read_file(p, 4096, &got, NULL) == 0);
	CHECK(same(&v, got.data, got.len, "ingest.key (library)"));
	free(p);
	p = fs_join(VECTOR_DIR, "ingest.key");
	struct arca_ingest_keys *k = NULL;
	CHECK(ingestkey_read(p, pub.repo_id, &k, NULL) == 0);
	CHECK(k != NULL && memcmp(k->sign_sk, ik->sign_sk, 64) == 0);
	acrypto_ingest_keys_free(k);
	free(p);
	rm_rf(dir);
	abuf_release(&v);
	abuf_release(&got);
}

static void test_restore_key(void)
{
	struct abuf v = ABUF_INIT;
	REQUIRE(load("restore.key", &v) == 0);
	REQUIRE(v.len == 165);
	/* spec layout; salt and nonce are random, so read them from the file */
	CHECK(memcmp(v.data, "ARCARKEY", 8) == 0);
	CHECK_EQ_INT(get_u32le(v.data + 8), 1);
	CHECK(memcmp(v.data + 12, pub.repo_id, 16) == 0);
	CHECK(memcmp(v.data + 28, pub.box_pk, 32) == 0);
	CHECK_EQ_INT(v.data[60], 1);
	uint64_t ops = get_u64le(v.data + 77), mem = get_u64le(v.data + 85);
	CHECK_EQ_INT(ops, 1);
	CHECK_EQ_INT(mem, 8192);
	uint8_t kek[32], sk[32];
	REQUIRE(crypto_pwhash(kek, 32, VK_PASSPHRASE, strlen(VK_PASSPHRASE), v.data + 61,
			      ops, (size_t)mem, crypto_pwhash_ALG_ARGON2ID13) == 0);
	CHECK(crypto_secretbox_open_easy(sk, v.data + 117, 48, v.data + 93, kek) == 0);
	CHECK(memcmp(sk, rk->box_sk, 32) == 0);
	/* and the library reads it */
	char *p = fs_join(VECTOR_DIR, "restore.key");
	struct arca_restore_key *k = NULL;
	CHECK(keyfile_read(p, VK_PASSPHRASE, &k, NULL) == 0);
	CHECK(k != NULL && memcmp(k->box_sk, rk->box_sk, 32) == 0 &&
	      memcmp(k->repo_id, rk->repo_id, 16) == 0);
	acrypto_restore_key_free(k);
	free(p);
	abuf_release(&v);
}

/* ---- objects and entries ---- */

static void spec_entry_header(uint8_t h[48], uint8_t type, uint8_t comp,
			      uint32_t stored_len, uint64_t raw_len, const uint8_t id[32])
{
	memset(h, 0, 48);
	h[0] = type;
	h[1] = comp;
	put_u32le(h + 4, stored_len);
	put_u64le(h + 8, raw_len);
	memcpy(h + 16, id, 32);
}

/* Independent AEAD: nonce = u64le(offset) zero-padded, AD = entry header. */
static int spec_encrypt(uint8_t cipher, const uint8_t key[32], uint64_t offset,
			const uint8_t *ad, const uint8_t *m, size_t len, uint8_t *out)
{
	uint8_t nonce[24] = { 0 };
	put_u64le(nonce, offset);
	unsigned long long clen;
	if (cipher == ARCA_CIPHER_XCHACHA20POLY1305)
		return crypto_aead_xchacha20poly1305_ietf_encrypt(out, &clen, m, len, ad, 48,
								   NULL, nonce, key);
	return crypto_aead_aes256gcm_encrypt(out, &clen, m, len, ad, 48, NULL, nonce, key);
}

static void test_object_id(void)
{
	struct abuf v = ABUF_INIT, obj = ABUF_INIT;
	REQUIRE(load("object-id.bin", &v) == 0);
	vk_object(1, &obj);
	uint8_t id[32];
	crypto_generichash(id, 32, obj.data, obj.len, ik->id_key, 32);
	CHECK(same(&v, id, 32, "object id (spec)"));
	acrypto_object_id(ik, obj.data, obj.len, id);
	CHECK(same(&v, id, 32, "object id (library)"));
	/* config id_alg 2: HMAC-SHA-256 (RFC 2104) under the same key */
	REQUIRE(load("object-id-hmac-sha256.bin", &v) == 0);
	unsigned int n = 0;
	REQUIRE(HMAC(EVP_sha256(), ik->id_key, 32, obj.data, obj.len, id, &n) != NULL && n == 32);
	CHECK(same(&v, id, 32, "HMAC-SHA-256 object id (spec)"));
	memset(id, 0, sizeof(id));
	ik->id_alg = ARCA_ID_HMAC_SHA256;
	acrypto_object_id(ik, obj.data, obj.len, id);
	ik->id_alg = ARCA_ID_BLAKE2B;
	CHECK(same(&v, id, 32, "HMAC-SHA-256 object id (library)"));
	abuf_release(&v);
	abuf_release(&obj);
}

static void entry_vector(enum arca_cipher c, const char *file)
{
	if (!acrypto_cipher_supported(c)) {
		printf("# %s: cipher not available here, skipped\n", file);
		return;
	}
	struct abuf v = ABUF_INIT, obj = ABUF_INIT;
	REQUIRE(load(file, &v) == 0);
	vk_object(1, &obj);
	uint8_t key[32], id[32], want[48 + 14 + 16], lib[14 + 16];
	vk_aead_key(key);
	acrypto_object_id(ik, obj.data, obj.len, id);
	spec_entry_header(want, OBJ_BLOB, ARCA_COMP_NONE, 14 + 16, 14, id);
	REQUIRE(spec_encrypt((uint8_t)c, key, PACK_HEADER_LEN, want, obj.data, obj.len, want + 48) == 0);
	CHECK(same(&v, want, sizeof(want), file));
	REQUIRE(acrypto_aead_encrypt(c, key, PACK_HEADER_LEN, want, 48, obj.data, obj.len, lib) == 0);
	CHECK(memcmp(lib, want + 48, sizeof(lib)) == 0);
	/* the library decodes it through the pack path */
	struct pack_entry e = { .type = OBJ_BLOB, .comp = 0, .stored_len = 30,
				.offset = PACK_HEADER_LEN, .raw_len = 14 };
	memcpy(e.id, id, 32);
	struct abuf out = ABUF_INIT;
	CHECK(pack_decode_object((uint8_t)c, key, &e, v.data, v.len, ik, &out, NULL) == 0);
	CHECK(out.len == 14 && memcmp(out.data, obj.data, 14) == 0);
	abuf_release(&out);
	abuf_release(&v);
	abuf_release(&obj);
}

static void test_entry_xchacha(void)
{
	entry_vector(ARCA_CIPHER_XCHACHA20POLY1305, "entry-xchacha20poly1305.bin");
}

static void test_entry_aes(void)
{
	entry_vector(ARCA_CIPHER_AES256GCM, "entry-aes256gcm.bin");
}

/* ---- packs ---- */

struct spec_obj {
	uint8_t type, comp;
	uint8_t id[32];
	struct abuf stored;   /* the stored (maybe compressed) plaintext */
	uint64_t raw_len;
};

/* Independent pack encoder (docs/format/pack.md). */
static int spec_pack(uint8_t cipher, const uint8_t repo_id[16], const uint8_t sealed[80],
		     const uint8_t key[32], struct spec_obj *objs, size_t n, struct abuf *out)
{
	abuf_reset(out);
	uint8_t h[112] = { 0 };
	memcpy(h, "ARCAPACK", 8);
	put_u32le(h + 8, 1);
	h[12] = cipher;
	memcpy(h + 16, repo_id, 16);
	memcpy(h + 32, sealed, 80);
	abuf_add(out, h, sizeof(h));
	struct abuf trailer = ABUF_INIT;
	for (size_t i = 0; i < n; i++) {
		uint64_t off = out->len;
		uint32_t slen = (uint32_t)(objs[i].stored.len + 16);
		uint8_t eh[48];
		spec_entry_header(eh, objs[i].type, objs[i].comp, slen, objs[i].raw_len, objs[i].id);
		abuf_add(out, eh, 48);
		if (abuf_reserve(out, slen) != 0)
			return -1;
		if (spec_encrypt(cipher, key, off, eh, objs[i].stored.data, objs[i].stored.len,
				 out->data + out->len) != 0)
			return -1;
		out->len += slen;
		uint8_t t[56] = { 0 };
		memcpy(t, objs[i].id, 32);
		t[32] = objs[i].type;
		t[33] = objs[i].comp;
		put_u32le(t + 36, slen);
		put_u64le(t + 40, off);
		put_u64le(t + 48, objs[i].raw_len);
		abuf_add(&trailer, t, sizeof(t));
	}
	uint8_t f[24];
	put_u64le(f, out->len);
	put_u32le(f + 8, (uint32_t)trailer.len);
	put_u32le(f + 12, (uint32_t)n);
	memcpy(f + 16, "ARCAPEND", 8);
	abuf_add(out, trailer.data, trailer.len);
	abuf_add(out, f, sizeof(f));
	abuf_release(&trailer);
	return 0;
}

struct membe {
	struct backend be;
	const uint8_t *data;
	size_t len;
};

static int mem_get_range(struct backend *be, const char *name, uint64_t off,
			 size_t n, void *out, struct arca_err *err)
{
	struct membe *m = (struct membe *)be;
	(void)name;
	if (off > m->len || n > m->len - off)
		return arca_err_set(err, ARCA_ECORRUPT, "short read");
	memcpy(out, m->data + off, n);
	return 0;
}

static int mem_size(struct backend *be, const char *name, uint64_t *size_r,
		    struct arca_err *err)
{
	(void)name; (void)err;
	*size_r = ((struct membe *)be)->len;
	return 0;
}

static const struct backend_ops mem_ops = { .get_range = mem_get_range, .size = mem_size };

/* Index and decrypt `pack` with the library; fills the stored forms. */
static int lib_read_pack(const uint8_t *pack, size_t len, struct spec_obj *objs, size_t n,
			 uint8_t key_r[32])
{
	struct membe m = { { &mem_ops }, pack, len };
	struct pack_header hdr;
	struct pack_entry *es = NULL;
	size_t count;
	struct arca_err err = { 0 };
	int rc = pack_read_index(&m.be, "vector", len, &hdr, &es, &count, &err);
	rc = rc ? rc : pack_open_key(&hdr, rk, key_r, &err);
	if (rc == 0 && count != n)
		rc = -100;
	struct abuf out = ABUF_INIT, want = ABUF_INIT;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint8_t type = vk_object((int)i, &want);
		rc = pack_read_object(&m.be, "vector", hdr.cipher, key_r, &es[i], ik, &out, &err);
		if (rc == 0 && (es[i].type != type || out.len != want.len ||
				(out.len && memcmp(out.data, want.data, out.len) != 0)))
			rc = -101;
		if (rc)
			break;
		/* the stored form, by decrypting the ciphertext */
		objs[i].type = es[i].type;
		objs[i].comp = es[i].comp;
		objs[i].raw_len = es[i].raw_len;
		memcpy(objs[i].id, es[i].id, 32);
		size_t clen = es[i].stored_len - 16;
		abuf_reset(&objs[i].stored);
		if (abuf_reserve(&objs[i].stored, clen + 1) != 0)
			rc = -102;
		else if (acrypto_aead_decrypt(hdr.cipher, key_r, es[i].offset, pack + es[i].offset,
					      48, pack + es[i].offset + 48, es[i].stored_len,
					      objs[i].stored.data) != 0)
			rc = -103;
		objs[i].stored.len = clen;
	}
	if (rc)
		fprintf(stderr, "  reading the pack: %d %s\n", rc, err.msg);
	abuf_release(&out);
	abuf_release(&want);
	free(es);
	return rc;
}

static void test_pack_vector(void)
{
	struct abuf v = ABUF_INIT, k = ABUF_INIT, nm = ABUF_INIT, rebuilt = ABUF_INIT;
	REQUIRE(load("pack.bin", &v) == 0 && load("pack.key", &k) == 0 &&
		load("pack.name", &nm) == 0);
	REQUIRE(v.len > 112 + 24 && k.len == 32);
	/* name = BLAKE2b-256 of the file */
	uint8_t h[32];
	crypto_generichash(h, 32, v.data, v.len, NULL, 0);
	char name[80], hex[65];
	hex_encode(hex, h, 32);
	snprintf(name, sizeof(name), "data/%.2s/%s.pack\n", hex, hex);
	CHECK(same(&nm, (const uint8_t *)name, strlen(name), "pack.name"));

	struct spec_obj objs[VK_OBJECTS];
	memset(objs, 0, sizeof(objs));
	uint8_t key[32];
	REQUIRE(lib_read_pack(v.data, v.len, objs, VK_OBJECTS, key) == 0);
	CHECK(memcmp(key, k.data, 32) == 0);
	CHECK_EQ_INT(objs[0].comp, ARCA_COMP_NONE);
	CHECK_EQ_INT(objs[2].comp, ARCA_COMP_ZSTD);
	/* the independent encoder, given the file's sealed key, rebuilds it */
	REQUIRE(spec_pack(v.data[12], pub.repo_id, v.data + 32, key, objs, VK_OBJECTS, &rebuilt) == 0);
	CHECK(same(&v, rebuilt.data, rebuilt.len, "pack.bin (spec)"));
	for (int i = 0; i < VK_OBJECTS; i++)
		abuf_release(&objs[i].stored);
	abuf_release(&v);
	abuf_release(&k);
	abuf_release(&nm);
	abuf_release(&rebuilt);
}

/* Today's writer must produce exactly what the spec encoder produces. */
static void test_pack_writer_matches_spec(void)
{
	for (int c = ARCA_CIPHER_XCHACHA20POLY1305; c <= ARCA_CIPHER_AES256GCM; c++) {
		if (!acrypto_cipher_supported((enum arca_cipher)c))
			continue;
		char *dir = harness_tmpdir("vectors");
		struct pack_writer *pw = NULL;
		struct compressor *cz = compressor_new(3);
		REQUIRE(pack_writer_new(dir, (enum arca_cipher)c, &pub, &pw, NULL) == 0);
		struct abuf obj = ABUF_INIT, st = ABUF_INIT, file = ABUF_INIT, rebuilt = ABUF_INIT;
		for (int i = 0; i < VK_OBJECTS; i++) {
			uint8_t type = vk_object(i, &obj), comp, id[32];
			acrypto_object_id(ik, obj.data, obj.len, id);
			REQUIRE(compressor_run(cz, NULL, obj.data, obj.len, &st, &comp) == 0);
			REQUIRE(pack_writer_add(pw, type, comp, id, st.data, st.len, obj.len, NULL) == 0);
		}
		uint8_t hash[32];
		uint64_t size;
		const char *tmp;
		REQUIRE(pack_writer_finish(pw, hash, &size, &tmp, NULL) == 0);
		REQUIRE(fs_read_file(tmp, 1 << 20, &file, NULL) == 0);
		struct spec_obj objs[VK_OBJECTS];
		memset(objs, 0, sizeof(objs));
		uint8_t key[32];
		REQUIRE(lib_read_pack(file.data, file.len, objs, VK_OBJECTS, key) == 0);
		REQUIRE(spec_pack((uint8_t)c, pub.repo_id, file.data + 32, key, objs, VK_OBJECTS,
				  &rebuilt) == 0);
		CHECK(same(&file, rebuilt.data, rebuilt.len, "pack writer output (spec)"));
		uint8_t h[32];
		crypto_generichash(h, 32, file.data, file.len, NULL, 0);
		CHECK(memcmp(h, hash, 32) == 0);
		for (int i = 0; i < VK_OBJECTS; i++)
			abuf_release(&objs[i].stored);
		pack_writer_free(pw);
		compressor_free(cz);
		abuf_release(&obj);
		abuf_release(&st);
		abuf_release(&file);
		abuf_release(&rebuilt);
		rm_rf(dir);
	}
}

/* ---- the log ---- */

struct memlog {
	struct backend be;
	struct abuf files[VK_LOG_ENTRIES];
};

static int ml_put(struct backend *be, const char *name, const void *data, size_t n,
		  struct arca_err *err)
{
	struct memlog *m = (struct memlog *)be;
	unsigned long long seq;
	if (sscanf(name, "log/000000000000/%16llx", &seq) != 1 || seq >= VK_LOG_ENTRIES)
		return arca_err_set(err, ARCA_EINVAL, "unexpected name %s", name);
	if (m->files[seq].len != 0)
		return arca_err_set(err, ARCA_EEXIST, "%s exists", name);
	return abuf_add(&m->files[seq], data, n);
}

static const struct backend_ops ml_ops = { .put = ml_put };

/* Independent entry encoder (docs/format/log.md). */
static void spec_log_entry(uint64_t seq, uint8_t kind, uint64_t time_ns,
			   const uint8_t prev[32], const struct abuf *payload,
			   uint8_t (*leaves)[32], struct abuf *out)
{
	abuf_reset(out);
	uint8_t h[68] = { 0 };
	memcpy(h, "ARCALOG1", 8);
	put_u32le(h + 8, 1);
	h[12] = kind;
	put_u64le(h + 16, seq);
	put_u64le(h + 24, time_ns);
	memcpy(h + 32, prev, 32);
	put_u32le(h + 64, (uint32_t)payload->len);
	abuf_add(out, h, sizeof(h));
	abuf_add(out, payload->data, payload->len);
	/* leaf = H(0x00 || header || payload) */
	uint8_t *lb = malloc(out->len + 1);
	lb[0] = 0;
	memcpy(lb + 1, out->data, out->len);
	crypto_generichash(leaves[seq], 32, lb, out->len + 1, NULL, 0);
	free(lb);
	/* RFC 6962 head over leaves[0..seq], iteratively for n <= 3:
	 * n=1: l0; n=2: N(l0,l1); n=3: N(N(l0,l1), l2) */
	uint8_t root[32], nb[65];
	nb[0] = 1;
	if (seq == 0) {
		memcpy(root, leaves[0], 32);
	} else {
		memcpy(nb + 1, leaves[0], 32);
		memcpy(nb + 33, leaves[1], 32);
		crypto_generichash(root, 32, nb, 65, NULL, 0);
		if (seq == 2) {
			memcpy(nb + 1, root, 32);
			memcpy(nb + 33, leaves[2], 32);
			crypto_generichash(root, 32, nb, 65, NULL, 0);
		}
	}
	abuf_add(out, root, 32);
	/* signature: Ed25519 over BLAKE2b-512("arca-sig-v1\0" "arca-log\0" || signed bytes) */
	uint8_t digest[64], sig[64];
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 64);
	crypto_generichash_update(&st, (const uint8_t *)"arca-sig-v1\0arca-log\0", 21);
	crypto_generichash_update(&st, out->data, out->len);
	crypto_generichash_final(&st, digest, 64);
	crypto_sign_detached(sig, NULL, digest, 64, ik->sign_sk);
	abuf_add(out, sig, 64);
}

static void test_log_vector(void)
{
	struct memlog *m = calloc(1, sizeof(*m));
	REQUIRE(m != NULL);
	m->be.ops = &ml_ops;
	struct mlog_state st;
	mlog_state_init(&st);
	struct abuf payload = ABUF_INIT, v = ABUF_INIT, spec = ABUF_INIT;
	uint8_t prev[32] = { 0 }, leaves[VK_LOG_ENTRIES][32];
	for (int i = 0; i < VK_LOG_ENTRIES; i++) {
		uint64_t t, seq;
		uint8_t kind = vk_log_entry(i, &payload, &t);
		struct arca_err err = { 0 };
		REQUIRE(mlog_append(&m->be, &st, ik, pub.sign_pk, kind, payload.data, payload.len,
				    t, NULL, NULL, &seq, &err) == 0);
		CHECK_EQ_INT(seq, i);
		char fname[32];
		snprintf(fname, sizeof(fname), "log-%d.bin", i);
		REQUIRE(load(fname, &v) == 0);
		CHECK(same(&v, m->files[i].data, m->files[i].len, fname));
		spec_log_entry((uint64_t)i, kind, t, prev, &payload, leaves, &spec);
		CHECK(same(&v, spec.data, spec.len, "log entry (spec)"));
		crypto_generichash(prev, 32, v.data, v.len, NULL, 0);
		struct mlog_entry e;
		CHECK(mlog_parse(v.data, v.len, pub.sign_pk, &e, NULL) == 0);
		CHECK(memcmp(e.hash, prev, 32) == 0);
	}
	REQUIRE(load("log-state.bin", &v) == 0);
	struct abuf enc = ABUF_INIT;
	REQUIRE(mlog_state_encode(&st, &enc) == 0);
	CHECK(same(&v, enc.data, enc.len, "log-state.bin"));
	/* spec: u64 count, last hash, frontier (count=3: roots of sizes 2, 1) */
	uint8_t want[8 + 32 + 64], nb[65];
	put_u64le(want, 3);
	memcpy(want + 8, prev, 32);
	nb[0] = 1;
	memcpy(nb + 1, leaves[0], 32);
	memcpy(nb + 33, leaves[1], 32);
	crypto_generichash(want + 40, 32, nb, 65, NULL, 0);
	memcpy(want + 72, leaves[2], 32);
	CHECK(same(&v, want, sizeof(want), "log-state.bin (spec)"));
	abuf_release(&enc);
	for (int i = 0; i < VK_LOG_ENTRIES; i++)
		abuf_release(&m->files[i]);
	free(m);
	abuf_release(&payload);
	abuf_release(&v);
	abuf_release(&spec);
}

/* ---- journal (docs/format/journal.md), encoded here from the document ---- */

static void le(struct abuf *b, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		abuf_add_u8(b, (uint8_t)(v >> (8 * i)));
}

static void spec_str(struct abuf *b, const char *s)
{
	le(b, strlen(s), 2);
	abuf_add(b, s, strlen(s));
}

static void spec_record(struct abuf *b, uint8_t dir, const char *account)
{
	uint8_t cid[32], eid[32];
	vk_journal_ids(cid, eid);
	abuf_add_u8(b, 1);                 /* version */
	le(b, VK_JOURNAL_TIME, 8);
	abuf_add_u8(b, dir);
	abuf_add_u8(b, 1);                 /* content type BLOB */
	abuf_add(b, cid, 32);
	abuf_add(b, eid, 32);
	le(b, VK_JOURNAL_SIZE, 8);
	spec_str(b, account);
}

static void test_journal_vectors(void)
{
	struct abuf payload = ABUF_INIT, want = ABUF_INIT, file = ABUF_INIT;
	le(&want, 2, 4);
	spec_record(&want, 1, "alice@example.test");
	spec_record(&want, 2, "dave@example.test");
	REQUIRE(load("journal-mark-payload.bin", &payload) == 0);
	CHECK(same(&payload, want.data, want.len, "journal-mark-payload.bin (spec)"));
	CHECK(journal_marks_check(NULL, 0) == 0);
	struct abuf marks = ABUF_INIT;
	le(&marks, payload.len, 4);
	abuf_add(&marks, payload.data, payload.len);
	CHECK(journal_marks_check(marks.data, marks.len) == 0);
	/* the library decodes what the document says */
	struct adec d;
	adec_init(&d, payload.data + 4, payload.len - 4);
	struct journal_rec r;
	CHECK(journal_rec_decode(&d, &r) == 0 && strcmp(r.account, "alice@example.test") == 0 &&
	      r.direction == JOURNAL_DIR_IN && r.size == VK_JOURNAL_SIZE && r.time_ns == VK_JOURNAL_TIME);
	CHECK(journal_rec_decode(&d, &r) == 0 && strcmp(r.account, "dave@example.test") == 0 &&
	      r.direction == JOURNAL_DIR_OUT && adec_finish(&d) == 0);
	/* the commit mark: header, check = BLAKE2b-256(prefix || header[0..16] || payload) */
	uint8_t prefix[112], h[48] = { 0x80 };
	vk_journal_prefix(prefix);
	for (int i = 0; i < 4; i++)
		h[4 + i] = (uint8_t)(want.len >> (8 * i));
	for (int i = 0; i < 8; i++)
		h[8 + i] = (uint8_t)((uint64_t)want.len >> (8 * i));
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, prefix, sizeof(prefix));
	crypto_generichash_update(&st, h, 16);
	crypto_generichash_update(&st, want.data, want.len);
	crypto_generichash_final(&st, h + 16, 32);
	struct abuf mark = ABUF_INIT;
	abuf_add(&mark, h, 48);
	abuf_add(&mark, want.data, want.len);
	REQUIRE(load("journal-mark.bin", &file) == 0);
	CHECK(same(&file, mark.data, mark.len, "journal-mark.bin (spec)"));
	/* the envelope */
	abuf_reset(&want);
	uint8_t cid[32], eid[32];
	vk_journal_ids(cid, eid);
	abuf_add_u8(&want, 1);
	le(&want, VK_JOURNAL_TIME, 8);
	spec_str(&want, "127.0.0.1:4321");
	spec_str(&want, "mx.example.test");
	spec_str(&want, "dave@example.test");
	abuf_add_u8(&want, 2);             /* flags: 8BITMIME */
	abuf_add_u8(&want, 1);             /* content type */
	abuf_add(&want, cid, 32);
	le(&want, VK_JOURNAL_SIZE, 8);
	le(&want, 2, 2);
	spec_str(&want, "alice=example.test@journal.invalid");
	spec_str(&want, "alice@example.test");
	abuf_add_u8(&want, 1);
	spec_str(&want, "dave=example.test@out.journal.invalid");
	spec_str(&want, "dave@example.test");
	abuf_add_u8(&want, 2);
	abuf_reset(&file);
	REQUIRE(load("journal-envelope.bin", &file) == 0);
	CHECK(same(&file, want.data, want.len, "journal-envelope.bin (spec)"));
	struct journal_envelope env;
	CHECK(journal_envelope_decode(file.data, file.len, &env) == 0);
	struct abuf again = ABUF_INIT;
	CHECK(journal_envelope_encode(&env, &again) == 0);
	CHECK(same(&again, file.data, file.len, "journal envelope (library)"));
	journal_envelope_release(&env);
	abuf_release(&again);
	abuf_release(&mark);
	abuf_release(&marks);
	abuf_release(&payload);
	abuf_release(&want);
	abuf_release(&file);
}

/* ---- pull: SNAPSHOT version 2 and the alarm payloads (docs/format/objects.md),
 * encoded here from the document ---- */

static void spec_varint(struct abuf *b, uint64_t v)
{
	while (v >= 0x80) {
		abuf_add_u8(b, (uint8_t)(v | 0x80));
		v >>= 7;
	}
	abuf_add_u8(b, (uint8_t)v);
}

static void spec_vstr(struct abuf *b, const char *s)
{
	spec_varint(b, strlen(s));
	abuf_add(b, s, strlen(s));
}

/* ---- the flag overlay (docs/format/overlay.md) ---- */

static void test_overlay_vector(void)
{
	struct abuf v = ABUF_INIT, pt = ABUF_INIT;
	REQUIRE(load("overlay.bin", &v) == 0);
	REQUIRE(v.len > 64 + 4);
	const uint8_t *h = v.data;
	/* the header, by the spec */
	CHECK(memcmp(h, "ARCAOVL\n", 8) == 0);
	CHECK(get_u32le(h + 8) == 1 && get_u32le(h + 12) == 0);
	CHECK(memcmp(h + 16, pub.repo_id, 16) == 0);
	uint8_t key[32], check[16];
	static const char ctx[16] = "arca overlay v1";    /* with its NUL */
	crypto_generichash_state st;
	crypto_generichash_init(&st, rk->box_sk, 32, 32);
	crypto_generichash_update(&st, (const uint8_t *)ctx, 16);
	crypto_generichash_update(&st, pub.repo_id, 16);
	crypto_generichash_update(&st, h + 32, 16);
	crypto_generichash_final(&st, key, 32);
	crypto_generichash(check, 16, h, 48, key, 32);
	CHECK(memcmp(check, h + 48, 16) == 0);
	/* record 0 */
	uint32_t L = get_u32le(h + 64);
	REQUIRE(L > 24 + 16 && 64 + 4 + (size_t)L == v.len);
	uint8_t ad[72];
	memcpy(ad, h, 64);
	memset(ad + 64, 0, 8);
	REQUIRE(abuf_reserve(&pt, L) == 0);
	unsigned long long mlen = 0;
	REQUIRE(crypto_aead_xchacha20poly1305_ietf_decrypt(pt.data, &mlen, NULL, h + 68 + 24, L - 24, ad,
							    sizeof(ad), h + 68, key) == 0);
	pt.len = (size_t)mlen;
	/* the plaintext, built from the spec */
	struct abuf want = ABUF_INIT;
	uint8_t u8[8];
	abuf_add_u8(&want, 1);
	put_u64le(u8, VK_OVL_TIME);
	abuf_add(&want, u8, 8);
	abuf_add_u8(&want, sizeof(VK_OVL_ACCOUNT) - 1);
	abuf_add(&want, VK_OVL_ACCOUNT, sizeof(VK_OVL_ACCOUNT) - 1);
	abuf_add_u8(&want, sizeof(VK_OVL_FOLDER) - 1);
	abuf_add(&want, VK_OVL_FOLDER, sizeof(VK_OVL_FOLDER) - 1);
	put_u32le(u8, VK_OVL_UIDVALIDITY);
	abuf_add(&want, u8, 4);
	abuf_add_u8(&want, 1);
	abuf_add_u8(&want, sizeof(VK_OVL_KEYWORD) - 1);
	abuf_add(&want, VK_OVL_KEYWORD, sizeof(VK_OVL_KEYWORD) - 1);
	abuf_add_u8(&want, 2);
	const struct { uint32_t uid; uint8_t flags; uint64_t kw; } m[2] = { { 3, 5, 1 }, { 7, 0, 0 } };
	for (int i = 0; i < 2; i++) {
		put_u32le(u8, m[i].uid);
		abuf_add(&want, u8, 4);
		put_u64le(u8, 42);
		abuf_add(&want, u8, 8);
		abuf_add_u8(&want, m[i].flags);
		put_u64le(u8, m[i].kw);
		abuf_add(&want, u8, 8);
	}
	CHECK(same(&pt, want.data, want.len, "overlay record 0 plaintext"));
	/* and the library reads it the same */
	char *dir = harness_tmpdir("vec-ovl");
	char *p = fs_join(dir, "overlay");
	struct arca_err err = { 0 };
	REQUIRE(p && fs_write_file(p, v.data, v.len, 0600, 0, &err) == 0);
	struct overlay *ov = NULL;
	char warn[ARCA_ERR_MSG_MAX];
	REQUIRE(overlay_open(p, rk, false, &ov, warn, &err) == 0);
	const struct ovl_folder *f = overlay_folder(ov, VK_OVL_ACCOUNT, VK_OVL_FOLDER, VK_OVL_UIDVALIDITY);
	REQUIRE(f != NULL && f->nmsgs == 2 && f->nkeywords == 1);
	CHECK(f->msgs[0].uid == 3 && f->msgs[0].flags == 5 && f->msgs[0].keywords == 1 &&
	      f->msgs[0].modseq == 42 && f->msgs[0].time_ns == VK_OVL_TIME);
	overlay_free(ov);
	free(p);
	rm_rf(dir);
	sodium_memzero(key, sizeof(key));
	abuf_release(&v);
	abuf_release(&pt);
	abuf_release(&want);
}

static void test_pull_vectors(void)
{
	uint8_t page[32], sieve[32], suspect[32];
	vk_snapshot_ids(page, sieve, suspect);
	struct abuf want = ABUF_INIT, file = ABUF_INIT, again = ABUF_INIT;
	/* the root: version 2, then the version 1 fields, then the Sieve section */
	abuf_add_u8(&want, 2);
	spec_vstr(&want, VK_SNAP_ACCOUNT);
	le(&want, VK_SNAP_TIME, 8);
	spec_vstr(&want, "imap");
	abuf_add_u8(&want, 1);             /* layout: Maildir++ */
	spec_varint(&want, 1);             /* subscriptions */
	spec_vstr(&want, "INBOX");
	spec_varint(&want, 2);             /* folders */
	spec_vstr(&want, "INBOX");
	spec_varint(&want, 3);             /* selectable, subscribed */
	spec_vstr(&want, "");
	le(&want, 1700000000u, 4);
	le(&want, 3, 4);
	le(&want, 7, 8);
	spec_vstr(&want, "");
	spec_vstr(&want, "");
	spec_varint(&want, 1);
	spec_vstr(&want, "$Work");
	spec_varint(&want, 2);             /* message_count */
	spec_varint(&want, 1234);          /* bytes */
	spec_varint(&want, 1);             /* pages */
	abuf_add(&want, page, 32);
	spec_varint(&want, 2);
	spec_vstr(&want, "Archive");
	spec_varint(&want, 1);
	spec_vstr(&want, "\\Archive");
	le(&want, 1700000001u, 4);
	le(&want, 1, 4);
	le(&want, 1, 8);
	spec_vstr(&want, "");
	spec_vstr(&want, "");
	spec_varint(&want, 0);
	spec_varint(&want, 0);
	spec_varint(&want, 0);
	spec_varint(&want, 0);
	spec_varint(&want, 1);             /* Sieve scripts */
	spec_vstr(&want, "vacation");
	abuf_add_u8(&want, 1);             /* active */
	abuf_add_u8(&want, 1);             /* BLOB */
	abuf_add(&want, sieve, 32);
	spec_varint(&want, VK_SNAP_SIEVE_SIZE);
	REQUIRE(load("snapshot-v2.bin", &file) == 0);
	CHECK(same(&file, want.data, want.len, "snapshot-v2.bin (spec)"));
	struct snapshot *s = NULL;
	CHECK(snapshot_decode_root(file.data, file.len, &s) == 0);
	if (s != NULL) {
		CHECK(s->has_sieve && s->nsieve == 1 && s->sieve[0].active &&
		      strcmp(s->sieve[0].name, "vacation") == 0 && s->nfolders == 2 &&
		      s->time_ns == VK_SNAP_TIME && strcmp(s->account, VK_SNAP_ACCOUNT) == 0);
		abuf_reset(&again);
		CHECK(snapshot_encode_root(s, &again) == 0);
		CHECK(same(&again, file.data, file.len, "snapshot root v2 (library)"));
		/* the same state without its Sieve section is a version 1 root */
		size_t nsieve = s->nsieve;
		s->has_sieve = false;
		s->nsieve = 0;
		abuf_reset(&again);
		CHECK(snapshot_encode_root(s, &again) == 0 && again.len > 0 && again.data[0] == 1);
		s->nsieve = nsieve;
		snapshot_free(s);
	}
	/* the alarm payload */
	abuf_reset(&want);
	abuf_add_u8(&want, 1);             /* version */
	abuf_add_u8(&want, 1);             /* kind: mass-deletion */
	spec_vstr(&want, VK_ALARM_ACCOUNT);
	spec_vstr(&want, VK_ALARM_TEXT);
	spec_varint(&want, 1);
	spec_vstr(&want, VK_ALARM_ACCOUNT);
	abuf_add(&want, suspect, 32);
	REQUIRE(load("alarm-payload.bin", &file) == 0);
	CHECK(same(&file, want.data, want.len, "alarm-payload.bin (spec)"));
	struct alarm a;
	CHECK(alarm_decode(file.data, file.len, &a) == 0);
	CHECK(a.kind == ALARM_MASS_DELETION && a.nsuspects == 1 &&
	      memcmp(a.suspects[0].root, suspect, 32) == 0);
	CHECK(alarm_encode(&a, &again) == 0);
	CHECK(same(&again, file.data, file.len, "alarm payload (library)"));
	alarm_release(&a);
	/* the alarm-clear payload */
	abuf_reset(&want);
	abuf_add_u8(&want, 1);
	le(&want, VK_ALARM_CLEARS, 8);
	spec_vstr(&want, VK_ALARM_REASON);
	REQUIRE(load("alarm-clear-payload.bin", &file) == 0);
	CHECK(same(&file, want.data, want.len, "alarm-clear-payload.bin (spec)"));
	uint64_t aseq = 0;
	char *reason = NULL;
	CHECK(alarm_clear_decode(file.data, file.len, &aseq, &reason) == 0);
	CHECK(aseq == VK_ALARM_CLEARS && reason != NULL && strcmp(reason, VK_ALARM_REASON) == 0);
	free(reason);
	CHECK(alarm_clear_encode(aseq, VK_ALARM_REASON, &again) == 0);
	CHECK(same(&again, file.data, file.len, "alarm-clear payload (library)"));
	abuf_release(&want);
	abuf_release(&file);
	abuf_release(&again);
}

int main(void)
{
	if (acrypto_setup() != 0)
		return 1;
	ik = acrypto_ingest_keys_alloc();
	rk = acrypto_restore_key_alloc();
	if (ik == NULL || rk == NULL)
		return 1;
	vk_keys(&pub, ik, rk);
	RUN(test_ingest_key);
	RUN(test_restore_key);
	RUN(test_object_id);
	RUN(test_entry_xchacha);
	RUN(test_entry_aes);
	RUN(test_pack_vector);
	RUN(test_pack_writer_matches_spec);
	RUN(test_log_vector);
	RUN(test_journal_vectors);
	RUN(test_pull_vectors);
	RUN(test_overlay_vector);
	acrypto_ingest_keys_free(ik);
	acrypto_restore_key_free(rk);
	HARNESS_EXIT();
}
