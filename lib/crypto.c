#include "crypto.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "fsutil.h"
#include "banned.h"

_Static_assert(sizeof(struct acrypto_hash_state) >= sizeof(crypto_generichash_state),
	       "acrypto_hash_state too small");
_Static_assert(ARCA_SEALED_KEY_LEN == ARCA_PACK_KEY_LEN + crypto_box_SEALBYTES,
	       "sealed key length");
_Static_assert(ARCA_AEAD_TAG_LEN == crypto_aead_xchacha20poly1305_ietf_ABYTES &&
	       ARCA_AEAD_TAG_LEN == crypto_aead_aes256gcm_ABYTES, "tag length");

int acrypto_setup(void)
{
	return sodium_init() < 0 ? ARCA_EIO : 0;
}

bool acrypto_cipher_supported(enum arca_cipher c)
{
	switch (c) {
	case ARCA_CIPHER_XCHACHA20POLY1305:
		return true;
	case ARCA_CIPHER_AES256GCM:
		return crypto_aead_aes256gcm_is_available() != 0;
	}
	return false;
}

enum arca_cipher acrypto_best_cipher(void)
{
	return acrypto_cipher_supported(ARCA_CIPHER_AES256GCM)
		       ? ARCA_CIPHER_AES256GCM
		       : ARCA_CIPHER_XCHACHA20POLY1305;
}

struct arca_ingest_keys *acrypto_ingest_keys_alloc(void)
{
	struct arca_ingest_keys *k = sodium_malloc(sizeof(*k));
	if (k != NULL)
		sodium_memzero(k, sizeof(*k));
	return k;
}

struct arca_restore_key *acrypto_restore_key_alloc(void)
{
	struct arca_restore_key *k = sodium_malloc(sizeof(*k));
	if (k != NULL)
		sodium_memzero(k, sizeof(*k));
	return k;
}

void acrypto_ingest_keys_free(struct arca_ingest_keys *k)
{
	sodium_free(k); /* wipes */
}

void acrypto_restore_key_free(struct arca_restore_key *k)
{
	sodium_free(k);
}

int acrypto_generate(struct arca_public_keys *pub_r,
		    struct arca_ingest_keys **ingest_r,
		    struct arca_restore_key **restore_r, struct arca_err *err)
{
	struct arca_ingest_keys *ik = acrypto_ingest_keys_alloc();
	struct arca_restore_key *rk = acrypto_restore_key_alloc();
	if (ik == NULL || rk == NULL) {
		acrypto_ingest_keys_free(ik);
		acrypto_restore_key_free(rk);
		return arca_err_set(err, ARCA_ENOMEM, "cannot allocate secure memory");
	}
	randombytes_buf(pub_r->repo_id, sizeof(pub_r->repo_id));
	crypto_box_keypair(rk->box_pk, rk->box_sk);
	crypto_sign_keypair(pub_r->sign_pk, ik->sign_sk);
	crypto_generichash_keygen(ik->id_key);
	memcpy(pub_r->box_pk, rk->box_pk, sizeof(pub_r->box_pk));
	memcpy(rk->repo_id, pub_r->repo_id, sizeof(rk->repo_id));
	*ingest_r = ik;
	*restore_r = rk;
	return 0;
}

bool acrypto_ingest_matches(const struct arca_ingest_keys *k, const struct arca_public_keys *pub)
{
	uint8_t pk[ARCA_SIGN_PK_LEN];
	crypto_sign_ed25519_sk_to_pk(pk, k->sign_sk);
	return memcmp(pk, pub->sign_pk, ARCA_SIGN_PK_LEN) == 0;
}

void acrypto_object_id(const struct arca_ingest_keys *k, const void *data,
		      size_t len, uint8_t id_r[ARCA_ID_LEN])
{
	if (k->id_alg == ARCA_ID_HMAC_SHA256) {
		unsigned int n = 0;
		/* One-shot HMAC fails only when OpenSSL can't allocate: a wrong
		 * id would store or accept the wrong content under it, so stop. */
		if (HMAC(EVP_sha256(), k->id_key, (int)sizeof(k->id_key), data, len, id_r, &n) == NULL ||
		    n != ARCA_ID_LEN) {
			fputs("arca: HMAC-SHA-256 failed (out of memory?)\n", stderr);
			abort();
		}
		return;
	}
	crypto_generichash(id_r, ARCA_ID_LEN, data, len, k->id_key,
			   sizeof(k->id_key));
}

static double mono_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

enum arca_id_alg acrypto_fastest_id_alg(void)
{
	/* 7 KiB pieces: the median message of the benchmark corpus */
	enum { PIECE = 7 * 1024, PIECES = 1024 };
	uint8_t *buf = malloc(PIECE);
	struct arca_ingest_keys *k = acrypto_ingest_keys_alloc();
	if (buf == NULL || k == NULL) {
		free(buf);
		acrypto_ingest_keys_free(k);
		return ARCA_ID_BLAKE2B;
	}
	randombytes_buf(buf, PIECE);
	randombytes_buf(k->id_key, sizeof(k->id_key));
	/* best of 5 rounds of 7 MiB each (about 50 ms in all): the first
	 * round also pays OpenSSL's lazy setup, and a busy machine's noise */
	double best[3] = { 1e9, 1e9, 1e9 };
	uint8_t id[ARCA_ID_LEN];
	for (int round = 0; round < 5; round++)
		for (int a = ARCA_ID_BLAKE2B; a <= ARCA_ID_HMAC_SHA256; a++) {
			k->id_alg = (uint8_t)a;
			double t0 = mono_s();
			for (int i = 0; i < PIECES; i++) {
				buf[0] = (uint8_t)i;
				acrypto_object_id(k, buf, PIECE, id);
			}
			double t = mono_s() - t0;
			if (t < best[a])
				best[a] = t;
		}
	free(buf);
	acrypto_ingest_keys_free(k);
	return best[ARCA_ID_HMAC_SHA256] * 1.1 <= best[ARCA_ID_BLAKE2B] ? ARCA_ID_HMAC_SHA256
									: ARCA_ID_BLAKE2B;
}

const char *acrypto_id_alg_name(enum arca_id_alg a)
{
	return a == ARCA_ID_HMAC_SHA256 ? "hmac-sha256" : a == ARCA_ID_BLAKE2B ? "blake2b" : "unknown";
}

void acrypto_hash(const void *data, size_t len, uint8_t out[ARCA_ID_LEN])
{
	crypto_generichash(out, ARCA_ID_LEN, data, len, NULL, 0);
}

void acrypto_hash_init(struct acrypto_hash_state *st)
{
	crypto_generichash_init((crypto_generichash_state *)st->opaque, NULL, 0,
				ARCA_ID_LEN);
}

void acrypto_hash_update(struct acrypto_hash_state *st, const void *data, size_t len)
{
	crypto_generichash_update((crypto_generichash_state *)st->opaque, data, len);
}

void acrypto_hash_final(struct acrypto_hash_state *st, uint8_t out[ARCA_ID_LEN])
{
	crypto_generichash_final((crypto_generichash_state *)st->opaque, out,
				 ARCA_ID_LEN);
}

void acrypto_pack_key_new(uint8_t key_r[ARCA_PACK_KEY_LEN])
{
	randombytes_buf(key_r, ARCA_PACK_KEY_LEN);
}

int acrypto_seal(const uint8_t box_pk[ARCA_BOX_PK_LEN], const uint8_t *msg,
		size_t len, uint8_t *sealed_r)
{
	return crypto_box_seal(sealed_r, msg, len, box_pk) == 0 ? 0 : ARCA_EINVAL;
}

int acrypto_seal_open(const struct arca_restore_key *rk, const uint8_t *sealed,
		     size_t sealed_len, uint8_t *msg_r)
{
	if (sealed_len < crypto_box_SEALBYTES)
		return ARCA_ECORRUPT;
	return crypto_box_seal_open(msg_r, sealed, sealed_len, rk->box_pk,
				    rk->box_sk) == 0 ? 0 : ARCA_EKEY;
}

static void make_nonce(uint8_t *nonce, size_t n, uint64_t index)
{
	memset(nonce, 0, n);
	put_u64le(nonce, index);
}

void acrypto_overlay_key(const struct arca_restore_key *rk,
			 const uint8_t salt[ARCA_OVERLAY_SALT_LEN],
			 uint8_t key_r[ARCA_PACK_KEY_LEN])
{
	static const char ctx[] = "arca overlay v1";
	crypto_generichash_state st;
	crypto_generichash_init(&st, rk->box_sk, ARCA_BOX_SK_LEN, ARCA_PACK_KEY_LEN);
	crypto_generichash_update(&st, (const uint8_t *)ctx, sizeof(ctx));   /* with its NUL */
	crypto_generichash_update(&st, rk->repo_id, ARCA_REPO_ID_LEN);
	crypto_generichash_update(&st, salt, ARCA_OVERLAY_SALT_LEN);
	crypto_generichash_final(&st, key_r, ARCA_PACK_KEY_LEN);
	sodium_memzero(&st, sizeof(st));
}

void acrypto_xseal(const uint8_t key[ARCA_PACK_KEY_LEN], const uint8_t nonce[ARCA_XNONCE_LEN],
		   const uint8_t *ad, size_t ad_len, const uint8_t *msg, size_t len, uint8_t *out)
{
	unsigned long long clen;
	crypto_aead_xchacha20poly1305_ietf_encrypt(out, &clen, msg, len, ad, ad_len, NULL, nonce, key);
}

int acrypto_xopen(const uint8_t key[ARCA_PACK_KEY_LEN], const uint8_t nonce[ARCA_XNONCE_LEN],
		  const uint8_t *ad, size_t ad_len, const uint8_t *ct, size_t len, uint8_t *out)
{
	unsigned long long mlen;
	if (len < ARCA_AEAD_TAG_LEN ||
	    crypto_aead_xchacha20poly1305_ietf_decrypt(out, &mlen, NULL, ct, len, ad, ad_len, nonce, key) != 0)
		return ARCA_ECORRUPT;
	return 0;
}

int acrypto_aead_encrypt(enum arca_cipher c, const uint8_t key[ARCA_PACK_KEY_LEN],
			uint64_t nonce_index, const uint8_t *ad, size_t ad_len,
			const uint8_t *msg, size_t len, uint8_t *out)
{
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	unsigned long long clen;
	switch (c) {
	case ARCA_CIPHER_XCHACHA20POLY1305:
		make_nonce(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, nonce_index);
		crypto_aead_xchacha20poly1305_ietf_encrypt(out, &clen, msg, len, ad,
							   ad_len, NULL, nonce, key);
		return 0;
	case ARCA_CIPHER_AES256GCM:
		if (!crypto_aead_aes256gcm_is_available())
			return ARCA_EINVAL;
		make_nonce(nonce, crypto_aead_aes256gcm_NPUBBYTES, nonce_index);
		crypto_aead_aes256gcm_encrypt(out, &clen, msg, len, ad, ad_len, NULL,
					      nonce, key);
		return 0;
	}
	return ARCA_EINVAL;
}

int acrypto_aead_decrypt(enum arca_cipher c, const uint8_t key[ARCA_PACK_KEY_LEN],
			uint64_t nonce_index, const uint8_t *ad, size_t ad_len,
			const uint8_t *ct, size_t len, uint8_t *out)
{
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	unsigned long long mlen;
	int rc;
	if (len < ARCA_AEAD_TAG_LEN)
		return ARCA_ECORRUPT;
	switch (c) {
	case ARCA_CIPHER_XCHACHA20POLY1305:
		make_nonce(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, nonce_index);
		rc = crypto_aead_xchacha20poly1305_ietf_decrypt(out, &mlen, NULL, ct, len,
								ad, ad_len, nonce, key);
		return rc == 0 ? 0 : ARCA_ECORRUPT;
	case ARCA_CIPHER_AES256GCM:
		if (!crypto_aead_aes256gcm_is_available())
			return ARCA_EVERSION;
		make_nonce(nonce, crypto_aead_aes256gcm_NPUBBYTES, nonce_index);
		rc = crypto_aead_aes256gcm_decrypt(out, &mlen, NULL, ct, len, ad, ad_len,
						   nonce, key);
		return rc == 0 ? 0 : ARCA_ECORRUPT;
	}
	return ARCA_EVERSION;
}

/* Signed message = "arca-sig-v1" NUL ns NUL msg; hashed first so any length works. */
static void sign_digest(const char *ns, const uint8_t *msg, size_t len,
			uint8_t digest[64])
{
	static const char prefix[] = "arca-sig-v1";
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 64);
	crypto_generichash_update(&st, (const uint8_t *)prefix, sizeof(prefix));
	crypto_generichash_update(&st, (const uint8_t *)ns, strlen(ns) + 1);
	crypto_generichash_update(&st, msg, len);
	crypto_generichash_final(&st, digest, 64);
}

void acrypto_sign(const struct arca_ingest_keys *k, const char *ns,
		 const uint8_t *msg, size_t len, uint8_t sig_r[ARCA_SIG_LEN])
{
	uint8_t digest[64];
	sign_digest(ns, msg, len, digest);
	crypto_sign_detached(sig_r, NULL, digest, sizeof(digest), k->sign_sk);
}

bool acrypto_verify(const uint8_t pk[ARCA_SIGN_PK_LEN], const char *ns,
		   const uint8_t *msg, size_t len, const uint8_t sig[ARCA_SIG_LEN])
{
	uint8_t digest[64];
	sign_digest(ns, msg, len, digest);
	return crypto_sign_verify_detached(sig, digest, sizeof(digest), pk) == 0;
}

/* ---- restore-key file ---- */

#define KEYFILE_MAGIC "ARCARKEY"
#define KEYFILE_VERSION 1
#define KEYFILE_KDF_ARGON2ID13 1
#define KEYFILE_SALT_LEN crypto_pwhash_SALTBYTES
#define KEYFILE_NONCE_LEN crypto_secretbox_NONCEBYTES
#define KEYFILE_BOX_LEN (ARCA_BOX_SK_LEN + crypto_secretbox_MACBYTES)
#define KEYFILE_LEN (8 + 4 + ARCA_REPO_ID_LEN + ARCA_BOX_PK_LEN + 1 + \
		     KEYFILE_SALT_LEN + 8 + 8 + KEYFILE_NONCE_LEN + KEYFILE_BOX_LEN)
/* Hard ceilings on what a key file may demand, so a hostile file can't make
 * us allocate 100 GiB or spin for hours. */
#define KEYFILE_MAX_OPS 64
#define KEYFILE_MAX_MEM (4ULL << 30)

static int derive(uint8_t out[crypto_secretbox_KEYBYTES], const char *pass,
		  const uint8_t *salt, uint64_t ops, uint64_t mem)
{
	return crypto_pwhash(out, crypto_secretbox_KEYBYTES, pass, strlen(pass),
			     salt, ops, (size_t)mem, crypto_pwhash_ALG_ARGON2ID13);
}

int keyfile_write(const char *path, const struct arca_restore_key *rk,
		  const char *passphrase, bool fast_kdf, struct arca_err *err)
{
	/* RFC 9106's second recommended setting, t=3 and m=64 MiB: strong
	 * against offline guessing, yet restore's peak memory stays below
	 * what the rest of a restore needs (m=256 MiB would dominate it). */
	uint64_t ops = fast_kdf ? crypto_pwhash_OPSLIMIT_MIN : 3;
	uint64_t mem = fast_kdf ? crypto_pwhash_MEMLIMIT_MIN : (64u << 20);
	uint8_t salt[KEYFILE_SALT_LEN], nonce[KEYFILE_NONCE_LEN];
	uint8_t box[KEYFILE_BOX_LEN];
	uint8_t *kek = sodium_malloc(crypto_secretbox_KEYBYTES);
	if (kek == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "cannot allocate secure memory");
	randombytes_buf(salt, sizeof(salt));
	randombytes_buf(nonce, sizeof(nonce));
	if (derive(kek, passphrase, salt, ops, mem) != 0) {
		sodium_free(kek);
		return arca_err_set(err, ARCA_ENOMEM, "Argon2id key derivation failed");
	}
	crypto_secretbox_easy(box, rk->box_sk, ARCA_BOX_SK_LEN, nonce, kek);
	sodium_free(kek);

	struct abuf b = ABUF_INIT;
	int rc = abuf_add(&b, KEYFILE_MAGIC, 8);
	rc = rc ? rc : abuf_add_u32(&b, KEYFILE_VERSION);
	rc = rc ? rc : abuf_add(&b, rk->repo_id, ARCA_REPO_ID_LEN);
	rc = rc ? rc : abuf_add(&b, rk->box_pk, ARCA_BOX_PK_LEN);
	rc = rc ? rc : abuf_add_u8(&b, KEYFILE_KDF_ARGON2ID13);
	rc = rc ? rc : abuf_add(&b, salt, sizeof(salt));
	rc = rc ? rc : abuf_add_u64(&b, ops);
	rc = rc ? rc : abuf_add_u64(&b, mem);
	rc = rc ? rc : abuf_add(&b, nonce, sizeof(nonce));
	rc = rc ? rc : abuf_add(&b, box, sizeof(box));
	if (rc == 0)
		rc = fs_write_file(path, b.data, b.len, 0600, 1, err);
	else
		rc = arca_err_set(err, rc, "out of memory");
	abuf_release(&b);
	return rc;
}

int keyfile_read(const char *path, const char *passphrase,
		 struct arca_restore_key **rk_r, struct arca_err *err)
{
	struct abuf b = ABUF_INIT;
	int rc = fs_read_file(path, 4096, &b, err);
	if (rc)
		return rc;
	struct arca_restore_key *rk = acrypto_restore_key_alloc();
	uint8_t *kek = sodium_malloc(crypto_secretbox_KEYBYTES);
	if (rk == NULL || kek == NULL) {
		rc = arca_err_set(err, ARCA_ENOMEM, "cannot allocate secure memory");
		goto out;
	}
	struct adec d;
	adec_init(&d, b.data, b.len);
	const uint8_t *magic = adec_raw(&d, 8);
	if (magic == NULL || memcmp(magic, KEYFILE_MAGIC, 8) != 0) {
		rc = arca_err_set(err, ARCA_EFORMAT, "%s is not an Arca restore-key file", path);
		goto out;
	}
	uint32_t version = adec_u32(&d);
	if (!d.failed && version != KEYFILE_VERSION) {
		rc = arca_err_set(err, ARCA_EVERSION,
				  "%s: restore-key file version %u is not supported", path, version);
		goto out;
	}
	uint8_t salt[KEYFILE_SALT_LEN], nonce[KEYFILE_NONCE_LEN];
	adec_fixed(&d, rk->repo_id, ARCA_REPO_ID_LEN);
	adec_fixed(&d, rk->box_pk, ARCA_BOX_PK_LEN);
	uint8_t kdf = adec_u8(&d);
	adec_fixed(&d, salt, sizeof(salt));
	uint64_t ops = adec_u64(&d), mem = adec_u64(&d);
	adec_fixed(&d, nonce, sizeof(nonce));
	const uint8_t *box = adec_raw(&d, KEYFILE_BOX_LEN);
	if (adec_finish(&d) != 0 || kdf != KEYFILE_KDF_ARGON2ID13) {
		rc = arca_err_set(err, ARCA_EFORMAT, "%s: malformed restore-key file", path);
		goto out;
	}
	if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > KEYFILE_MAX_OPS ||
	    mem < crypto_pwhash_MEMLIMIT_MIN || mem > KEYFILE_MAX_MEM) {
		rc = arca_err_set(err, ARCA_ELIMIT, "%s: key derivation parameters out of range", path);
		goto out;
	}
	if (derive(kek, passphrase, salt, ops, mem) != 0) {
		rc = arca_err_set(err, ARCA_ENOMEM, "Argon2id key derivation failed (out of memory?)");
		goto out;
	}
	if (crypto_secretbox_open_easy(rk->box_sk, box, KEYFILE_BOX_LEN, nonce, kek) != 0) {
		rc = arca_err_set(err, ARCA_EKEY, "%s: wrong passphrase (or the file is damaged)", path);
		goto out;
	}
	/* The secret must match the public half recorded beside it. */
	uint8_t pk[ARCA_BOX_PK_LEN];
	crypto_scalarmult_base(pk, rk->box_sk);
	if (sodium_memcmp(pk, rk->box_pk, sizeof(pk)) != 0) {
		rc = arca_err_set(err, ARCA_ECORRUPT, "%s: key pair does not match", path);
		goto out;
	}
	*rk_r = rk;
	rk = NULL;
out:
	sodium_free(kek);
	acrypto_restore_key_free(rk);
	abuf_release(&b);
	return rc;
}

#define INGESTKEY_MAGIC "ARCAIKEY"
#define INGESTKEY_VERSION 1

int ingestkey_write(const char *path, const uint8_t repo_id[ARCA_REPO_ID_LEN],
		    const struct arca_ingest_keys *k, struct arca_err *err)
{
	uint8_t buf[8 + 4 + ARCA_REPO_ID_LEN + sizeof(k->id_key) + ARCA_SIGN_SK_LEN];
	memcpy(buf, INGESTKEY_MAGIC, 8);
	put_u32le(buf + 8, INGESTKEY_VERSION);
	memcpy(buf + 12, repo_id, ARCA_REPO_ID_LEN);
	memcpy(buf + 12 + ARCA_REPO_ID_LEN, k->id_key, sizeof(k->id_key));
	memcpy(buf + 12 + ARCA_REPO_ID_LEN + sizeof(k->id_key), k->sign_sk, ARCA_SIGN_SK_LEN);
	int rc = fs_write_file(path, buf, sizeof(buf), 0600, 1, err);
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

int ingestkey_read(const char *path, const uint8_t repo_id[ARCA_REPO_ID_LEN],
		   struct arca_ingest_keys **k_r, struct arca_err *err)
{
	struct abuf b = ABUF_INIT;
	int rc = fs_read_file(path, 4096, &b, err);
	if (rc)
		return rc;
	struct arca_ingest_keys *k = NULL;
	size_t want = 8 + 4 + ARCA_REPO_ID_LEN + 32 + ARCA_SIGN_SK_LEN;
	if (b.len != want || memcmp(b.data, INGESTKEY_MAGIC, 8) != 0) {
		rc = arca_err_set(err, ARCA_EFORMAT, "%s is not an Arca ingest key file", path);
		goto out;
	}
	if (get_u32le(b.data + 8) != INGESTKEY_VERSION) {
		rc = arca_err_set(err, ARCA_EVERSION, "%s: unsupported version", path);
		goto out;
	}
	if (memcmp(b.data + 12, repo_id, ARCA_REPO_ID_LEN) != 0) {
		rc = arca_err_set(err, ARCA_EKEY, "%s belongs to another repository", path);
		goto out;
	}
	k = acrypto_ingest_keys_alloc();
	if (k == NULL) {
		rc = arca_err_set(err, ARCA_ENOMEM, "cannot allocate secure memory");
		goto out;
	}
	memcpy(k->id_key, b.data + 12 + ARCA_REPO_ID_LEN, 32);
	memcpy(k->sign_sk, b.data + 12 + ARCA_REPO_ID_LEN + 32, ARCA_SIGN_SK_LEN);
	*k_r = k;
out:
	sodium_memzero(b.data, b.cap);
	abuf_release(&b);
	return rc;
}
