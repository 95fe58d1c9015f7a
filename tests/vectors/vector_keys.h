/*
 * vector_keys.h - the fixed key material and inputs behind tests/vectors/
 * (see README.md there).  Shared by gen_vectors.c, which writes the vector
 * files, and tests/unit/test_vectors.c, which re-derives them.
 * NEVER use these keys for anything but tests: they are public.
 */
#ifndef ARCA_VECTOR_KEYS_H
#define ARCA_VECTOR_KEYS_H

#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "crypto.h"
#include "mlog.h"
#include "pack.h"

#define VK_PASSPHRASE "arca test vector"
#define VK_TIME0 1700000000123456789ull   /* 2023-11-14T22:13:20.123456789Z */

/* repo id 00..0f; X25519 secret 20..3f; Ed25519 seed 32 x 0x42;
 * object-id key 60..7f; AEAD test key 80..9f. */
static inline void vk_keys(struct arca_public_keys *pub, struct arca_ingest_keys *ik,
			   struct arca_restore_key *rk)
{
	for (int i = 0; i < 16; i++)
		pub->repo_id[i] = (uint8_t)i;
	for (int i = 0; i < 32; i++) {
		rk->box_sk[i] = (uint8_t)(0x20 + i);
		ik->id_key[i] = (uint8_t)(0x60 + i);
	}
	crypto_scalarmult_base(rk->box_pk, rk->box_sk);
	uint8_t seed[32];
	memset(seed, 0x42, sizeof(seed));
	crypto_sign_seed_keypair(pub->sign_pk, ik->sign_sk, seed);
	memcpy(pub->box_pk, rk->box_pk, 32);
	memcpy(rk->repo_id, pub->repo_id, 16);
}

static inline void vk_aead_key(uint8_t key[ARCA_PACK_KEY_LEN])
{
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0x80 + i);
}

/* The objects of the pack vector. */
#define VK_OBJECTS 3
static inline uint8_t vk_object(int i, struct abuf *out)
{
	abuf_reset(out);
	abuf_reserve(out, 1); /* data never NULL, even when empty */
	switch (i) {
	case 0: /* an empty blob */
		return OBJ_BLOB;
	case 1:
		abuf_add(out, "Hello, Arca!\r\n", 14);
		return OBJ_BLOB;
	default: /* compressible: stored as zstd */
		for (int n = 0; n < 40; n++)
			abuf_printf(out, "%04d Subject: vector line %d\r\n", n, n * n);
		return OBJ_FOLDER_PAGE;
	}
}

/* The log vector: three entries. */
#define VK_LOG_ENTRIES 3
static inline uint8_t vk_log_entry(int i, struct abuf *payload, uint64_t *time_r)
{
	abuf_reset(payload);
	*time_r = VK_TIME0 + (uint64_t)i * 1000000000ull;
	switch (i) {
	case 0: {
		uint8_t h[32];
		acrypto_hash("arca test vector config", 23, h);
		abuf_add(payload, h, 32);
		return MLOG_INIT;
	}
	case 1:
		for (int n = 0; n < 44; n++)
			abuf_add_u8(payload, (uint8_t)n);
		return MLOG_PACK;
	default:
		abuf_add(payload, "alice@example.org", 17);
		return MLOG_SNAPSHOT;
	}
}

/* The journal vectors' inputs (docs/format/journal.md). */
#define VK_JOURNAL_TIME 1795858108000000000ull
#define VK_JOURNAL_SIZE 1234u
static inline void vk_journal_ids(uint8_t content[32], uint8_t envelope[32])
{
	for (int i = 0; i < 32; i++) {
		content[i] = (uint8_t)(0xc0 + i);
		envelope[i] = (uint8_t)(0xe0 + i);
	}
}
/* The 112 bytes a commit mark's check covers before it, in the vector. */
static inline void vk_journal_prefix(uint8_t p[112])
{
	for (int i = 0; i < 112; i++)
		p[i] = (uint8_t)i;
}

/* The pull vectors' inputs (docs/format/objects.md): a SNAPSHOT root of
 * version 2 (with one Sieve script) and the alarm / alarm-clear log
 * payloads.  The ids are fixed byte patterns, not objects of a repository. */
#define VK_SNAP_ACCOUNT "alice@example.test"
#define VK_SNAP_TIME 1795858108000000000ull
#define VK_SNAP_SIEVE_SIZE 57u
#define VK_ALARM_ACCOUNT "carol@other.test"
#define VK_ALARM_TEXT "lost 40 of 40 messages and 3 of 5 folders since the last snapshot"
#define VK_ALARM_CLEARS 12u
#define VK_ALARM_REASON "test: the wipe was ours"

/* overlay.bin: one record of two messages */
#define VK_OVL_ACCOUNT "alice@example.test"
#define VK_OVL_FOLDER "INBOX"
#define VK_OVL_UIDVALIDITY 1700000001u
#define VK_OVL_KEYWORD "$Todo"
#define VK_OVL_TIME UINT64_C(1790000000000000000)
static inline void vk_snapshot_ids(uint8_t page[32], uint8_t sieve[32], uint8_t suspect[32])
{
	for (int i = 0; i < 32; i++) {
		page[i] = (uint8_t)(0xa0 + i);
		sieve[i] = (uint8_t)(0x50 + i);
		suspect[i] = (uint8_t)(0xe0 + i);
	}
}

#endif
