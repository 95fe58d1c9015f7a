/*
 * Fuzz mlog_parse (with a fixed public key, so the seed entries, signed with
 * the matching secret, reach the code past the signature check) and
 * mlog_state_decode; a parsed entry is applied to a decoded state.
 * The input is: 1 byte split selector, then bytes for the entry and the state.
 */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The seed corpus is signed with the Ed25519 key from this 32-byte seed
 * (tests/vectors/gen_vectors.c uses the same). */
static uint8_t pk[32];

static void setup(void)
{
	static int done;
	if (done)
		return;
	done = 1;
	if (acrypto_setup() != 0)
		abort();
	uint8_t seed[32], sk[64];
	memset(seed, 0x42, sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	/* whole input as an entry */
	uint8_t *p = malloc(size ? size : 1);
	if (p == NULL)
		return 0;
	memcpy(p, data, size);
	struct mlog_entry e;
	struct arca_err err = { 0 };
	int parsed = mlog_parse(p, size, pk, &e, &err) == 0;
	if (parsed && (e.payload < p || e.payload + e.payload_len > p + size ||
		       e.payload_len > MLOG_PAYLOAD_MAX))
		abort();
	/* whole input as a cached state */
	struct mlog_state st;
	if (mlog_state_decode(p, size, &st) == 0) {
		uint8_t root[ARCA_ID_LEN];
		mlog_state_root(&st, root);
		struct abuf b = ABUF_INIT;
		if (mlog_state_encode(&st, &b) != 0 || b.len != size ||
		    memcmp(b.data, p, size) != 0)
			abort(); /* decode/encode must round-trip */
		abuf_release(&b);
	} else {
		mlog_state_init(&st);
	}
	if (parsed) {
		struct mlog_state before = st;
		if (mlog_state_apply(&st, &e, NULL) == 0) {
			if (st.count != before.count + 1)
				abort();
		} else if (memcmp(&st, &before, sizeof(st)) != 0) {
			abort(); /* a refused entry leaves the state alone */
		}
	}
	free(p);
	return 0;
}
