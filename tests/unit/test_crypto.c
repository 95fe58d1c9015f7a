/* Unit tests for lib/crypto.c: keys, key files, sealing, AEAD, signatures. */
#include <ftw.h>
#include <sodium.h>
#include <stdint.h>
#include <unistd.h>

#include "buf.h"
#include "crypto.h"
#include "fsutil.h"
#include "harness.h"

static void rm_rf(char *dir)
{
	harness_rm_rf(dir);
	free(dir);
}

static char *path_in(const char *dir, const char *name)
{
	char *p = fs_join(dir, name);
	if (p == NULL)
		abort();
	return p;
}

static void test_generate(void)
{
	struct arca_public_keys pub;
	struct arca_ingest_keys *ik = NULL;
	struct arca_restore_key *rk = NULL;
	REQUIRE(acrypto_generate(&pub, &ik, &rk, NULL) == 0);
	CHECK(memcmp(pub.box_pk, rk->box_pk, ARCA_BOX_PK_LEN) == 0);
	CHECK(memcmp(pub.repo_id, rk->repo_id, ARCA_REPO_ID_LEN) == 0);
	/* the box key pair matches */
	uint8_t pk[32];
	crypto_scalarmult_base(pk, rk->box_sk);
	CHECK(memcmp(pk, pub.box_pk, 32) == 0);
	/* the Ed25519 secret carries the public key in its second half */
	CHECK(memcmp(ik->sign_sk + 32, pub.sign_pk, 32) == 0);

	/* two repositories never share keys */
	struct arca_public_keys pub2;
	struct arca_ingest_keys *ik2 = NULL;
	struct arca_restore_key *rk2 = NULL;
	REQUIRE(acrypto_generate(&pub2, &ik2, &rk2, NULL) == 0);
	CHECK(memcmp(pub.repo_id, pub2.repo_id, ARCA_REPO_ID_LEN) != 0);
	CHECK(memcmp(pub.box_pk, pub2.box_pk, 32) != 0);
	CHECK(memcmp(pub.sign_pk, pub2.sign_pk, 32) != 0);
	CHECK(memcmp(ik->id_key, ik2->id_key, 32) != 0);

	/* object ids are keyed: same data, other repository, other id */
	uint8_t a[ARCA_ID_LEN], b[ARCA_ID_LEN], c[ARCA_ID_LEN];
	acrypto_object_id(ik, "hello", 5, a);
	acrypto_object_id(ik, "hello", 5, c);
	acrypto_object_id(ik2, "hello", 5, b);
	CHECK(memcmp(a, c, ARCA_ID_LEN) == 0);
	CHECK(memcmp(a, b, ARCA_ID_LEN) != 0);
	uint8_t plain[ARCA_ID_LEN], want[ARCA_ID_LEN];
	acrypto_hash("hello", 5, plain);
	crypto_generichash(want, 32, (const uint8_t *)"hello", 5, NULL, 0);
	CHECK(memcmp(plain, want, 32) == 0);
	CHECK(memcmp(plain, a, 32) != 0);

	/* streaming hash == one-shot */
	struct acrypto_hash_state st;
	acrypto_hash_init(&st);
	acrypto_hash_update(&st, "he", 2);
	acrypto_hash_update(&st, "llo", 3);
	acrypto_hash_final(&st, c);
	CHECK(memcmp(c, plain, 32) == 0);

	acrypto_ingest_keys_free(ik);
	acrypto_restore_key_free(rk);
	acrypto_ingest_keys_free(ik2);
	acrypto_restore_key_free(rk2);
}

static void test_keyfile_roundtrip(void)
{
	char *dir = harness_tmpdir("crypto");
	char *path = path_in(dir, "restore.key");
	struct arca_public_keys pub;
	struct arca_ingest_keys *ik = NULL;
	struct arca_restore_key *rk = NULL, *back = NULL;
	REQUIRE(acrypto_generate(&pub, &ik, &rk, NULL) == 0);
	struct arca_err err = { 0 };
	CHECK(keyfile_write(path, rk, "correct horse", true, &err) == 0);
	/* write-once: never overwrite an existing key file */
	struct arca_err err2 = { 0 };
	CHECK(keyfile_write(path, rk, "other", true, &err2) == ARCA_EEXIST);

	arca_err_clear(&err);
	CHECK(keyfile_read(path, "correct horse", &back, &err) == 0);
	if (back != NULL) {
		CHECK(memcmp(back->box_sk, rk->box_sk, 32) == 0);
		CHECK(memcmp(back->box_pk, rk->box_pk, 32) == 0);
		CHECK(memcmp(back->repo_id, rk->repo_id, 16) == 0);
		acrypto_restore_key_free(back);
		back = NULL;
	}

	/* wrong passphrase */
	arca_err_clear(&err);
	CHECK_EQ_INT(keyfile_read(path, "correct horsf", &back, &err), ARCA_EKEY);
	CHECK(back == NULL);
	CHECK(strstr(err.msg, "restore.key") != NULL);
	arca_err_clear(&err);
	CHECK_EQ_INT(keyfile_read(path, "", &back, &err), ARCA_EKEY);

	/* missing file */
	char *missing = path_in(dir, "nope.key");
	arca_err_clear(&err);
	CHECK_EQ_INT(keyfile_read(missing, "x", &back, &err), ARCA_ENOENT);
	free(missing);

	acrypto_ingest_keys_free(ik);
	acrypto_restore_key_free(rk);
	free(path);
	rm_rf(dir);
}

/* Write `data` to dir/name (replacing) and try to read it as a key file. */
static int read_variant(const char *dir, const uint8_t *data, size_t n,
			struct arca_err *err)
{
	char *p = path_in(dir, "variant.key");
	FILE *f = fopen(p, "wb"); /* no fsync: keeps the test fast */
	if (f == NULL || (n > 0 && fwrite(data, 1, n, f) != n) || fclose(f) != 0)
		abort();
	struct arca_restore_key *rk = NULL;
	arca_err_clear(err);
	int rc = keyfile_read(p, "pw", &rk, err);
	acrypto_restore_key_free(rk);
	free(p);
	return rc;
}

static void test_keyfile_damaged(void)
{
	char *dir = harness_tmpdir("crypto");
	char *path = path_in(dir, "restore.key");
	struct arca_public_keys pub;
	struct arca_ingest_keys *ik = NULL;
	struct arca_restore_key *rk = NULL;
	REQUIRE(acrypto_generate(&pub, &ik, &rk, NULL) == 0);
	REQUIRE(keyfile_write(path, rk, "pw", true, NULL) == 0);
	struct abuf f = ABUF_INIT;
	REQUIRE(fs_read_file(path, 4096, &f, NULL) == 0);
	/* magic 8, version 4, repo id 16, box pk 32, kdf 1, salt 16, ops 8,
	 * mem 8, nonce 24, box 48 */
	CHECK_EQ_INT(f.len, 165);
	struct arca_err err = { 0 };
	uint8_t v[256];

	CHECK_EQ_INT(read_variant(dir, f.data, f.len, &err), 0);
	/* truncated, empty, one extra byte */
	CHECK_EQ_INT(read_variant(dir, f.data, f.len - 1, &err), ARCA_EFORMAT);
	CHECK(strstr(err.msg, "malformed") != NULL);
	CHECK_EQ_INT(read_variant(dir, f.data, 0, &err), ARCA_EFORMAT);
	memcpy(v, f.data, f.len);
	v[f.len] = 0;
	CHECK_EQ_INT(read_variant(dir, v, f.len + 1, &err), ARCA_EFORMAT);
	/* not a key file at all */
	memcpy(v, f.data, f.len);
	v[0] ^= 1;
	CHECK_EQ_INT(read_variant(dir, v, f.len, &err), ARCA_EFORMAT);
	CHECK(strstr(err.msg, "not an Arca restore-key file") != NULL);
	/* a future version */
	memcpy(v, f.data, f.len);
	v[8] = 2;
	CHECK_EQ_INT(read_variant(dir, v, f.len, &err), ARCA_EVERSION);
	/* unknown KDF */
	memcpy(v, f.data, f.len);
	v[60] = 2;
	CHECK_EQ_INT(read_variant(dir, v, f.len, &err), ARCA_EFORMAT);
	/* hostile KDF cost: ops and memory capped */
	memcpy(v, f.data, f.len);
	put_u64le(v + 77, 1000000);
	CHECK_EQ_INT(read_variant(dir, v, f.len, &err), ARCA_ELIMIT);
	memcpy(v, f.data, f.len);
	put_u64le(v + 85, UINT64_MAX);
	CHECK_EQ_INT(read_variant(dir, v, f.len, &err), ARCA_ELIMIT);
	memcpy(v, f.data, f.len);
	put_u64le(v + 77, 0);
	CHECK_EQ_INT(read_variant(dir, v, f.len, &err), ARCA_ELIMIT);
	/* a flipped bit in the salt, the nonce or the sealed secret: the
	 * passphrase no longer opens it */
	static const size_t flips[] = { 61, 76, 93, 116, 117, 140, 164 };
	for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
		memcpy(v, f.data, f.len);
		v[flips[i]] ^= 0x10;
		CHECK_EQ_INT(read_variant(dir, v, f.len, &err), ARCA_EKEY);
		CHECK(strstr(err.msg, "damaged") != NULL);
	}
	/* the public key beside the secret is checked against it */
	memcpy(v, f.data, f.len);
	v[28] ^= 0x01;
	CHECK_EQ_INT(read_variant(dir, v, f.len, &err), ARCA_ECORRUPT);
	CHECK(strstr(err.msg, "does not match") != NULL);

	abuf_release(&f);
	acrypto_ingest_keys_free(ik);
	acrypto_restore_key_free(rk);
	free(path);
	rm_rf(dir);
}

static void test_ingestkey(void)
{
	char *dir = harness_tmpdir("crypto");
	char *path = path_in(dir, "ingest.key");
	struct arca_public_keys pub, pub2;
	struct arca_ingest_keys *ik = NULL, *ik2 = NULL, *back = NULL;
	struct arca_restore_key *rk = NULL, *rk2 = NULL;
	REQUIRE(acrypto_generate(&pub, &ik, &rk, NULL) == 0);
	REQUIRE(acrypto_generate(&pub2, &ik2, &rk2, NULL) == 0);
	struct arca_err err = { 0 };
	CHECK(ingestkey_write(path, pub.repo_id, ik, &err) == 0);
	CHECK(ingestkey_read(path, pub.repo_id, &back, &err) == 0);
	if (back != NULL) {
		CHECK(memcmp(back->id_key, ik->id_key, 32) == 0);
		CHECK(memcmp(back->sign_sk, ik->sign_sk, 64) == 0);
		acrypto_ingest_keys_free(back);
		back = NULL;
	}
	/* the key file of another repository */
	arca_err_clear(&err);
	CHECK_EQ_INT(ingestkey_read(path, pub2.repo_id, &back, &err), ARCA_EKEY);
	CHECK(back == NULL);
	CHECK(strstr(err.msg, "another repository") != NULL);
	/* damaged: wrong size, bad magic, bad version */
	struct abuf f = ABUF_INIT;
	REQUIRE(fs_read_file(path, 4096, &f, NULL) == 0);
	CHECK_EQ_INT(f.len, 124);
	char *p2 = path_in(dir, "bad.key");
	REQUIRE(fs_write_file(p2, f.data, f.len - 1, 0600, 0, NULL) == 0);
	arca_err_clear(&err);
	CHECK_EQ_INT(ingestkey_read(p2, pub.repo_id, &back, &err), ARCA_EFORMAT);
	f.data[8] = 7;
	REQUIRE(fs_write_file(p2, f.data, f.len, 0600, 0, NULL) == 0);
	arca_err_clear(&err);
	CHECK_EQ_INT(ingestkey_read(p2, pub.repo_id, &back, &err), ARCA_EVERSION);
	f.data[0] = 'X';
	REQUIRE(fs_write_file(p2, f.data, f.len, 0600, 0, NULL) == 0);
	arca_err_clear(&err);
	CHECK_EQ_INT(ingestkey_read(p2, pub.repo_id, &back, &err), ARCA_EFORMAT);
	CHECK(back == NULL);

	abuf_release(&f);
	free(p2);
	acrypto_ingest_keys_free(ik);
	acrypto_restore_key_free(rk);
	acrypto_ingest_keys_free(ik2);
	acrypto_restore_key_free(rk2);
	free(path);
	rm_rf(dir);
}

static void test_seal(void)
{
	struct arca_public_keys pub, pub2;
	struct arca_ingest_keys *ik = NULL, *ik2 = NULL;
	struct arca_restore_key *rk = NULL, *rk2 = NULL;
	REQUIRE(acrypto_generate(&pub, &ik, &rk, NULL) == 0);
	REQUIRE(acrypto_generate(&pub2, &ik2, &rk2, NULL) == 0);
	uint8_t key[ARCA_PACK_KEY_LEN], key2[ARCA_PACK_KEY_LEN], back[ARCA_PACK_KEY_LEN];
	acrypto_pack_key_new(key);
	acrypto_pack_key_new(key2);
	CHECK(memcmp(key, key2, sizeof(key)) != 0);
	uint8_t s1[ARCA_SEALED_KEY_LEN], s2[ARCA_SEALED_KEY_LEN];
	CHECK(acrypto_seal(pub.box_pk, key, sizeof(key), s1) == 0);
	CHECK(acrypto_seal(pub.box_pk, key, sizeof(key), s2) == 0);
	CHECK(memcmp(s1, s2, sizeof(s1)) != 0); /* ephemeral sender key */
	CHECK(acrypto_seal_open(rk, s1, sizeof(s1), back) == 0);
	CHECK(memcmp(back, key, sizeof(key)) == 0);
	CHECK(acrypto_seal_open(rk, s2, sizeof(s2), back) == 0);
	CHECK(memcmp(back, key, sizeof(key)) == 0);
	/* someone else's restore key */
	CHECK_EQ_INT(acrypto_seal_open(rk2, s1, sizeof(s1), back), ARCA_EKEY);
	/* every bit of the sealed box is authenticated */
	int undetected = 0;
	for (size_t bit = 0; bit < sizeof(s1) * 8; bit++) {
		s1[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (acrypto_seal_open(rk, s1, sizeof(s1), back) == 0)
			undetected++;
		s1[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	CHECK_EQ_INT(undetected, 0);
	CHECK_EQ_INT(acrypto_seal_open(rk, s1, 47, back), ARCA_ECORRUPT);
	acrypto_ingest_keys_free(ik);
	acrypto_restore_key_free(rk);
	acrypto_ingest_keys_free(ik2);
	acrypto_restore_key_free(rk2);
}

static void aead_cipher(enum arca_cipher c)
{
	uint8_t key[32], key2[32];
	for (int i = 0; i < 32; i++) {
		key[i] = (uint8_t)i;
		key2[i] = (uint8_t)(i + 1);
	}
	static const uint8_t ad[48] = { 1, 0, 0, 0, 21, 0, 0, 0, 5 };
	static const uint8_t msg[] = "hello";
	uint8_t ct[5 + 16], out[5];
	REQUIRE(acrypto_aead_encrypt(c, key, 112, ad, sizeof(ad), msg, 5, ct) == 0);
	CHECK(acrypto_aead_decrypt(c, key, 112, ad, sizeof(ad), ct, sizeof(ct), out) == 0);
	CHECK(memcmp(out, msg, 5) == 0);
	/* wrong key, wrong nonce (offset), wrong AD, short input */
	CHECK_EQ_INT(acrypto_aead_decrypt(c, key2, 112, ad, sizeof(ad), ct, sizeof(ct), out), ARCA_ECORRUPT);
	CHECK_EQ_INT(acrypto_aead_decrypt(c, key, 113, ad, sizeof(ad), ct, sizeof(ct), out), ARCA_ECORRUPT);
	CHECK_EQ_INT(acrypto_aead_decrypt(c, key, 112 + (1ull << 40), ad, sizeof(ad), ct, sizeof(ct), out), ARCA_ECORRUPT);
	CHECK_EQ_INT(acrypto_aead_decrypt(c, key, 112, ad, sizeof(ad) - 1, ct, sizeof(ct), out), ARCA_ECORRUPT);
	CHECK_EQ_INT(acrypto_aead_decrypt(c, key, 112, ad, sizeof(ad), ct, 15, out), ARCA_ECORRUPT);
	CHECK_EQ_INT(acrypto_aead_decrypt(c, key, 112, ad, sizeof(ad), ct + 1, sizeof(ct) - 1, out), ARCA_ECORRUPT);
	/* every bit of ciphertext+tag and of the AD */
	int undetected = 0;
	for (size_t bit = 0; bit < sizeof(ct) * 8; bit++) {
		ct[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (acrypto_aead_decrypt(c, key, 112, ad, sizeof(ad), ct, sizeof(ct), out) == 0)
			undetected++;
		ct[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	uint8_t ad2[48];
	for (size_t bit = 0; bit < sizeof(ad) * 8; bit++) {
		memcpy(ad2, ad, sizeof(ad));
		ad2[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (acrypto_aead_decrypt(c, key, 112, ad2, sizeof(ad2), ct, sizeof(ct), out) == 0)
			undetected++;
	}
	CHECK_EQ_INT(undetected, 0);
	/* empty message: tag only, still authenticated */
	uint8_t tag[16];
	REQUIRE(acrypto_aead_encrypt(c, key, 0, ad, sizeof(ad), NULL, 0, tag) == 0);
	CHECK(acrypto_aead_decrypt(c, key, 0, ad, sizeof(ad), tag, 16, out) == 0);
	tag[3] ^= 4;
	CHECK_EQ_INT(acrypto_aead_decrypt(c, key, 0, ad, sizeof(ad), tag, 16, out), ARCA_ECORRUPT);
}

static void test_aead_xchacha(void)
{
	CHECK(acrypto_cipher_supported(ARCA_CIPHER_XCHACHA20POLY1305));
	aead_cipher(ARCA_CIPHER_XCHACHA20POLY1305);
	CHECK(!acrypto_cipher_supported((enum arca_cipher)7));
	uint8_t key[32] = { 0 }, out[32];
	CHECK(acrypto_aead_encrypt((enum arca_cipher)7, key, 0, NULL, 0, key, 1, out) == ARCA_EINVAL);
	CHECK(acrypto_aead_decrypt((enum arca_cipher)7, key, 0, NULL, 0, out, 17, key) != 0);
}

static void test_aead_aes256gcm(void)
{
	if (!acrypto_cipher_supported(ARCA_CIPHER_AES256GCM)) {
		printf("# AES-256-GCM not available on this CPU: skipped\n");
		CHECK(acrypto_best_cipher() == ARCA_CIPHER_XCHACHA20POLY1305);
		return;
	}
	CHECK(acrypto_best_cipher() == ARCA_CIPHER_AES256GCM);
	aead_cipher(ARCA_CIPHER_AES256GCM);
	/* the two ciphers are not interchangeable */
	uint8_t key[32] = { 9 }, ct[21], out[5];
	REQUIRE(acrypto_aead_encrypt(ARCA_CIPHER_AES256GCM, key, 0, NULL, 0,
				     (const uint8_t *)"hello", 5, ct) == 0);
	CHECK(acrypto_aead_decrypt(ARCA_CIPHER_XCHACHA20POLY1305, key, 0, NULL, 0, ct,
				   sizeof(ct), out) == ARCA_ECORRUPT);
}

static void test_sign_namespaces(void)
{
	struct arca_public_keys pub, pub2;
	struct arca_ingest_keys *ik = NULL, *ik2 = NULL;
	struct arca_restore_key *rk = NULL, *rk2 = NULL;
	REQUIRE(acrypto_generate(&pub, &ik, &rk, NULL) == 0);
	REQUIRE(acrypto_generate(&pub2, &ik2, &rk2, NULL) == 0);
	static const uint8_t msg[] = "log entry bytes";
	uint8_t sig[ARCA_SIG_LEN], sig2[ARCA_SIG_LEN];
	acrypto_sign(ik, "arca-log", msg, sizeof(msg), sig);
	acrypto_sign(ik, "arca-log", msg, sizeof(msg), sig2);
	CHECK(memcmp(sig, sig2, sizeof(sig)) == 0); /* Ed25519 is deterministic */
	CHECK(acrypto_verify(pub.sign_pk, "arca-log", msg, sizeof(msg), sig));
	/* other namespace, prefix of it, extension of it */
	CHECK(!acrypto_verify(pub.sign_pk, "arca-delete", msg, sizeof(msg), sig));
	CHECK(!acrypto_verify(pub.sign_pk, "arca-lo", msg, sizeof(msg), sig));
	CHECK(!acrypto_verify(pub.sign_pk, "arca-logx", msg, sizeof(msg), sig));
	CHECK(!acrypto_verify(pub.sign_pk, "", msg, sizeof(msg), sig));
	/* the namespace boundary is unambiguous: ("arca-lo", "g...") differs */
	uint8_t shifted[sizeof(msg) + 1];
	shifted[0] = 'g';
	memcpy(shifted + 1, msg, sizeof(msg));
	CHECK(!acrypto_verify(pub.sign_pk, "arca-lo", shifted, sizeof(shifted), sig));
	/* other key, other message, any flipped bit */
	CHECK(!acrypto_verify(pub2.sign_pk, "arca-log", msg, sizeof(msg), sig));
	CHECK(!acrypto_verify(pub.sign_pk, "arca-log", msg, sizeof(msg) - 1, sig));
	int undetected = 0;
	for (size_t bit = 0; bit < sizeof(sig) * 8; bit++) {
		sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (acrypto_verify(pub.sign_pk, "arca-log", msg, sizeof(msg), sig))
			undetected++;
		sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	CHECK_EQ_INT(undetected, 0);
	/* a signature in a namespace is not a raw Ed25519 signature of msg */
	CHECK(crypto_sign_verify_detached(sig, msg, sizeof(msg), pub.sign_pk) != 0);
	/* and matches the documented construction (docs/format/log.md) */
	uint8_t digest[64];
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 64);
	crypto_generichash_update(&st, (const uint8_t *)"arca-sig-v1", 12);
	crypto_generichash_update(&st, (const uint8_t *)"arca-log", 9);
	crypto_generichash_update(&st, msg, sizeof(msg));
	crypto_generichash_final(&st, digest, 64);
	CHECK(crypto_sign_verify_detached(sig, digest, 64, pub.sign_pk) == 0);

	acrypto_ingest_keys_free(ik);
	acrypto_restore_key_free(rk);
	acrypto_ingest_keys_free(ik2);
	acrypto_restore_key_free(rk2);
}

int main(void)
{
	if (acrypto_setup() != 0)
		return 1;
	RUN(test_generate);
	RUN(test_keyfile_roundtrip);
	RUN(test_keyfile_damaged);
	RUN(test_ingestkey);
	RUN(test_seal);
	RUN(test_aead_xchacha);
	RUN(test_aead_aes256gcm);
	RUN(test_sign_namespaces);
	HARNESS_EXIT();
}
