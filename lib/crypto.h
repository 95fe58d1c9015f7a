/*
 * crypto.h - the repository's keys and every cryptographic operation Arca
 * uses, all from libsodium.
 *
 * Three kinds of key (docs/format/keys.md):
 *  - public (in the repository's config, readable by anyone): the X25519 box
 *    public key that pack keys are sealed to, the Ed25519 key that verifies the
 *    log, and the repository id.
 *  - ingest secrets (on the vault host, keys/ingest.key): the object-id key and
 *    the Ed25519 signing key.  Enough to add data and sign the log, never to
 *    read what was stored ("write-only encryption").
 *  - the restore secret (the admin's offline file, passphrase-protected with
 *    Argon2id): the X25519 private key.  Opens pack keys, so reads everything.
 * Secret structs live only in sodium_malloc'd memory and are wiped on free.
 */
#ifndef ARCA_CRYPTO_H
#define ARCA_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"

#define ARCA_ID_LEN 32          /* object ids and every hash */
#define ARCA_REPO_ID_LEN 16
#define ARCA_BOX_PK_LEN 32
#define ARCA_BOX_SK_LEN 32
#define ARCA_SIGN_PK_LEN 32
#define ARCA_SIGN_SK_LEN 64
#define ARCA_SIG_LEN 64
#define ARCA_PACK_KEY_LEN 32
#define ARCA_SEALED_KEY_LEN (ARCA_PACK_KEY_LEN + 48) /* crypto_box_SEALBYTES */
#define ARCA_AEAD_TAG_LEN 16

/* AEAD used for a pack's objects; recorded in each pack header. */
enum arca_cipher {
	ARCA_CIPHER_XCHACHA20POLY1305 = 1,
	ARCA_CIPHER_AES256GCM = 2,    /* only where the CPU has AES-NI */
};

struct arca_public_keys {
	uint8_t repo_id[ARCA_REPO_ID_LEN];
	uint8_t box_pk[ARCA_BOX_PK_LEN];
	uint8_t sign_pk[ARCA_SIGN_PK_LEN];
};

/* The object-id function, as the repository's config names it. */
enum arca_id_alg {
	ARCA_ID_BLAKE2B = 1,            /* keyed BLAKE2b-256 (libsodium) */
	ARCA_ID_HMAC_SHA256 = 2,        /* HMAC-SHA-256 (OpenSSL; fast with SHA extensions) */
};

struct arca_ingest_keys {           /* sodium_malloc only */
	uint8_t id_key[32];
	uint8_t sign_sk[ARCA_SIGN_SK_LEN];
	uint8_t id_alg;                 /* enum arca_id_alg, from the config (not in
					   any key file); 0 reads as BLAKE2b */
};

struct arca_restore_key {           /* sodium_malloc only */
	uint8_t repo_id[ARCA_REPO_ID_LEN];
	uint8_t box_pk[ARCA_BOX_PK_LEN];
	uint8_t box_sk[ARCA_BOX_SK_LEN];
};

/* sodium_init once; 0 or ARCA_EIO. Safe to call repeatedly. */
int acrypto_setup(void);

/* The cipher this CPU runs fastest. */
enum arca_cipher acrypto_best_cipher(void);
bool acrypto_cipher_supported(enum arca_cipher c);

/* Fresh key material for a new repository (secrets sodium_malloc'd). */
int acrypto_generate(struct arca_public_keys *pub_r,
		    struct arca_ingest_keys **ingest_r,
		    struct arca_restore_key **restore_r, struct arca_err *err);
struct arca_ingest_keys *acrypto_ingest_keys_alloc(void);
struct arca_restore_key *acrypto_restore_key_alloc(void);
void acrypto_ingest_keys_free(struct arca_ingest_keys *k);
void acrypto_restore_key_free(struct arca_restore_key *k);

/* True when the ingest signing key is the one whose public half is pub's. */
bool acrypto_ingest_matches(const struct arca_ingest_keys *k, const struct arca_public_keys *pub);

/* Object id: the plaintext's keyed BLAKE2b-256 or HMAC-SHA-256 (k->id_alg)
 * under the ingest id key. */
void acrypto_object_id(const struct arca_ingest_keys *k, const void *data,
		      size_t len, uint8_t id_r[ARCA_ID_LEN]);
/* The faster id function on this machine, measured (a few milliseconds):
 * HMAC-SHA-256 where the CPU's SHA extensions make it at least 10% faster
 * than BLAKE2b on message-sized inputs, else BLAKE2b. */
enum arca_id_alg acrypto_fastest_id_alg(void);
const char *acrypto_id_alg_name(enum arca_id_alg a);

/* Unkeyed BLAKE2b-256 (pack names, log entry hashes: verifiable by anyone). */
void acrypto_hash(const void *data, size_t len, uint8_t out[ARCA_ID_LEN]);
struct acrypto_hash_state { uint8_t opaque[384] __attribute__((aligned(64))); };
void acrypto_hash_init(struct acrypto_hash_state *st);
void acrypto_hash_update(struct acrypto_hash_state *st, const void *data, size_t len);
void acrypto_hash_final(struct acrypto_hash_state *st, uint8_t out[ARCA_ID_LEN]);

/* Seal a fresh random pack key to the repository's box public key. */
void acrypto_pack_key_new(uint8_t key_r[ARCA_PACK_KEY_LEN]);
int acrypto_seal(const uint8_t box_pk[ARCA_BOX_PK_LEN], const uint8_t *msg,
		size_t len, uint8_t *sealed_r /* len + 48 */);
int acrypto_seal_open(const struct arca_restore_key *rk, const uint8_t *sealed,
		     size_t sealed_len, uint8_t *msg_r /* sealed_len - 48 */);

/*
 * AEAD with a per-pack key.  The nonce is the object's index in its pack
 * (each pack key is fresh, so an index never repeats under one key); `ad`
 * binds the object's header.  out gets len + ARCA_AEAD_TAG_LEN bytes.
 */
int acrypto_aead_encrypt(enum arca_cipher c, const uint8_t key[ARCA_PACK_KEY_LEN],
			uint64_t nonce_index, const uint8_t *ad, size_t ad_len,
			const uint8_t *msg, size_t len, uint8_t *out);
/* ARCA_ECORRUPT when authentication fails. out gets len - tag bytes. */
int acrypto_aead_decrypt(enum arca_cipher c, const uint8_t key[ARCA_PACK_KEY_LEN],
			uint64_t nonce_index, const uint8_t *ad, size_t ad_len,
			const uint8_t *ct, size_t len, uint8_t *out);

/*
 * The key of one flag-overlay file (docs/format/overlay.md): BLAKE2b-256
 * keyed with the restore secret over "arca overlay v1", the repository id
 * and the file's random salt.  Only a holder of the restore key can write
 * or read an overlay; a fresh salt per file means a record index (the
 * AEAD nonce) never repeats under one key.
 */
#define ARCA_OVERLAY_SALT_LEN 16
void acrypto_overlay_key(const struct arca_restore_key *rk,
			 const uint8_t salt[ARCA_OVERLAY_SALT_LEN],
			 uint8_t key_r[ARCA_PACK_KEY_LEN]);

/* XChaCha20-Poly1305 (IETF) with a caller's 24-byte nonce (random: the
 * overlay's records, whose index may be written twice after a torn end is
 * cut).  out gets len + ARCA_AEAD_TAG_LEN bytes; open: ARCA_ECORRUPT when
 * authentication fails, out gets len - tag bytes. */
#define ARCA_XNONCE_LEN 24
void acrypto_xseal(const uint8_t key[ARCA_PACK_KEY_LEN], const uint8_t nonce[ARCA_XNONCE_LEN],
		   const uint8_t *ad, size_t ad_len, const uint8_t *msg, size_t len, uint8_t *out);
int acrypto_xopen(const uint8_t key[ARCA_PACK_KEY_LEN], const uint8_t nonce[ARCA_XNONCE_LEN],
		  const uint8_t *ad, size_t ad_len, const uint8_t *ct, size_t len, uint8_t *out);

/* Ed25519 with a namespace prefix, so a log signature can't be replayed as
 * any other kind of signature (OpenSSH's sshsig namespaces). */
void acrypto_sign(const struct arca_ingest_keys *k, const char *ns,
		 const uint8_t *msg, size_t len, uint8_t sig_r[ARCA_SIG_LEN]);
bool acrypto_verify(const uint8_t pk[ARCA_SIGN_PK_LEN], const char *ns,
		   const uint8_t *msg, size_t len, const uint8_t sig[ARCA_SIG_LEN]);

/*
 * The restore-key file (docs/format/keys.md): the X25519 secret under a key
 * derived from the passphrase with Argon2id.  `fast_kdf` lowers the Argon2id
 * cost for tests only (ARCA_TEST_FAST_KDF).
 */
int keyfile_write(const char *path, const struct arca_restore_key *rk,
		  const char *passphrase, bool fast_kdf, struct arca_err *err);
int keyfile_read(const char *path, const char *passphrase,
		 struct arca_restore_key **rk_r, struct arca_err *err);

/* The ingest secrets file (keys/ingest.key, mode 0600, on the vault host). */
int ingestkey_write(const char *path, const uint8_t repo_id[ARCA_REPO_ID_LEN],
		    const struct arca_ingest_keys *k, struct arca_err *err);
int ingestkey_read(const char *path, const uint8_t repo_id[ARCA_REPO_ID_LEN],
		   struct arca_ingest_keys **k_r, struct arca_err *err);

#endif
