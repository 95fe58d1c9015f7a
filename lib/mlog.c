#include "mlog.h"

#include <stdio.h>
#include <string.h>

#include "faultinject.h"
#include "banned.h"

#define MLOG_FIXED_LEN 68  /* bytes before the payload */

void mlog_state_init(struct mlog_state *st)
{
	memset(st, 0, sizeof(*st));
}

static void node_hash(const uint8_t l[ARCA_ID_LEN], const uint8_t r[ARCA_ID_LEN],
		      uint8_t out[ARCA_ID_LEN])
{
	struct acrypto_hash_state h;
	static const uint8_t one = 0x01;
	acrypto_hash_init(&h);
	acrypto_hash_update(&h, &one, 1);
	acrypto_hash_update(&h, l, ARCA_ID_LEN);
	acrypto_hash_update(&h, r, ARCA_ID_LEN);
	acrypto_hash_final(&h, out);
}

static unsigned popcount64(uint64_t v)
{
	return (unsigned)__builtin_popcountll(v);
}

void mlog_state_root(const struct mlog_state *st, uint8_t root_r[ARCA_ID_LEN])
{
	unsigned n = popcount64(st->count);
	if (n == 0) {
		memset(root_r, 0, ARCA_ID_LEN);
		return;
	}
	uint8_t acc[ARCA_ID_LEN];
	memcpy(acc, st->frontier[n - 1], ARCA_ID_LEN);
	for (unsigned i = n - 1; i-- > 0;)
		node_hash(st->frontier[i], acc, acc);
	memcpy(root_r, acc, ARCA_ID_LEN);
}

/* Adding a leaf merges equal-sized perfect subtrees, like binary carry. */
static void frontier_add(struct mlog_state *st, const uint8_t leaf[ARCA_ID_LEN])
{
	unsigned n = popcount64(st->count);
	memcpy(st->frontier[n], leaf, ARCA_ID_LEN);
	n++;
	for (uint64_t c = st->count; c & 1; c >>= 1) {
		node_hash(st->frontier[n - 2], st->frontier[n - 1], st->frontier[n - 2]);
		n--;
	}
	st->count++;
}

int mlog_state_encode(const struct mlog_state *st, struct abuf *out)
{
	abuf_reset(out);
	int rc = abuf_add_u64(out, st->count);
	rc = rc ? rc : abuf_add(out, st->last_hash, ARCA_ID_LEN);
	rc = rc ? rc : abuf_add(out, st->frontier, (size_t)popcount64(st->count) * ARCA_ID_LEN);
	return rc;
}

int mlog_state_decode(const uint8_t *p, size_t len, struct mlog_state *st)
{
	mlog_state_init(st);
	if (len < 8 + ARCA_ID_LEN)
		return ARCA_EFORMAT;
	st->count = get_u64le(p);
	size_t n = popcount64(st->count);
	if (len != 8 + ARCA_ID_LEN + n * ARCA_ID_LEN)
		return ARCA_EFORMAT;
	memcpy(st->last_hash, p + 8, ARCA_ID_LEN);
	static const uint8_t zero[ARCA_ID_LEN];
	if (st->count == 0 && memcmp(st->last_hash, zero, ARCA_ID_LEN) != 0)
		return ARCA_EFORMAT;
	memcpy(st->frontier, p + 8 + ARCA_ID_LEN, n * ARCA_ID_LEN);
	return 0;
}

void mlog_name(uint64_t seq, char out[48])
{
	snprintf(out, 48, "log/%012llx/%016llx", (unsigned long long)(seq >> 12),
		 (unsigned long long)seq);
}

static void leaf_hash(const uint8_t *body, size_t len, uint8_t out[ARCA_ID_LEN])
{
	struct acrypto_hash_state h;
	static const uint8_t zero = 0x00;
	acrypto_hash_init(&h);
	acrypto_hash_update(&h, &zero, 1);
	acrypto_hash_update(&h, body, len);
	acrypto_hash_final(&h, out);
}

int mlog_parse(const uint8_t *data, size_t len,
	       const uint8_t sign_pk[ARCA_SIGN_PK_LEN], struct mlog_entry *e,
	       struct arca_err *err)
{
	if (len < MLOG_FIXED_LEN + ARCA_ID_LEN + ARCA_SIG_LEN ||
	    memcmp(data, MLOG_MAGIC, 8) != 0)
		return arca_err_set(err, ARCA_ECORRUPT, "not a log entry");
	uint32_t version = get_u32le(data + 8);
	if (version != MLOG_VERSION)
		return arca_err_set(err, ARCA_EVERSION, "log entry version %u is not supported", version);
	e->kind = data[12];
	if (e->kind > MLOG_ALARM_CLEAR)
		return arca_err_set(err, ARCA_EVERSION, "log entry kind %u is not known to this version", e->kind);
	if (data[13] || data[14] || data[15])
		return arca_err_set(err, ARCA_ECORRUPT, "reserved bytes are not zero");
	e->seq = get_u64le(data + 16);
	e->time_ns = get_u64le(data + 24);
	memcpy(e->prev_hash, data + 32, ARCA_ID_LEN);
	uint32_t plen = get_u32le(data + 64);
	if (plen > MLOG_PAYLOAD_MAX ||
	    len != MLOG_FIXED_LEN + (size_t)plen + ARCA_ID_LEN + ARCA_SIG_LEN)
		return arca_err_set(err, ARCA_ECORRUPT, "log entry length is inconsistent");
	e->payload = data + MLOG_FIXED_LEN;
	e->payload_len = plen;
	memcpy(e->tree_root, data + MLOG_FIXED_LEN + plen, ARCA_ID_LEN);
	size_t signed_len = len - ARCA_SIG_LEN;
	if (!acrypto_verify(sign_pk, MLOG_SIG_NAMESPACE, data, signed_len, data + signed_len))
		return arca_err_set(err, ARCA_ECORRUPT, "log entry %llu: bad signature",
				    (unsigned long long)e->seq);
	leaf_hash(data, MLOG_FIXED_LEN + plen, e->leaf_hash);
	acrypto_hash(data, len, e->hash);
	return 0;
}

int mlog_state_apply(struct mlog_state *st, const struct mlog_entry *e,
		     struct arca_err *err)
{
	if (e->seq != st->count)
		return arca_err_set(err, ARCA_ECORRUPT, "log entry %llu found where %llu was expected",
				    (unsigned long long)e->seq, (unsigned long long)st->count);
	if (memcmp(e->prev_hash, st->last_hash, ARCA_ID_LEN) != 0)
		return arca_err_set(err, ARCA_ECORRUPT,
				    "log entry %llu does not chain to the entry before it",
				    (unsigned long long)e->seq);
	struct mlog_state next = *st;
	frontier_add(&next, e->leaf_hash);
	uint8_t root[ARCA_ID_LEN];
	mlog_state_root(&next, root);
	if (memcmp(root, e->tree_root, ARCA_ID_LEN) != 0)
		return arca_err_set(err, ARCA_ECORRUPT, "log entry %llu: Merkle tree head mismatch",
				    (unsigned long long)e->seq);
	memcpy(next.last_hash, e->hash, ARCA_ID_LEN);
	*st = next;
	return 0;
}

int mlog_read(struct backend *be, uint64_t seq,
	      const uint8_t sign_pk[ARCA_SIGN_PK_LEN], struct abuf *buf,
	      struct mlog_entry *e, struct arca_err *err)
{
	char name[48];
	mlog_name(seq, name);
	struct arca_err sub = { 0 };
	int rc = be->ops->get(be, name, MLOG_FIXED_LEN + MLOG_PAYLOAD_MAX + 256, buf, &sub);
	if (rc == ARCA_ENOENT)
		return ARCA_ENOENT;
	if (rc)
		return arca_err_set(err, rc, "%s", sub.msg);
	rc = mlog_parse(buf->data, buf->len, sign_pk, e, &sub);
	if (rc)
		return arca_err_set(err, rc, "%s: %s", name, sub.msg);
	if (e->seq != seq)
		return arca_err_set(err, ARCA_ECORRUPT, "%s holds entry %llu", name,
				    (unsigned long long)e->seq);
	return 0;
}

static int encode_entry(const struct mlog_state *st, const struct arca_ingest_keys *ik,
			uint8_t kind, const uint8_t *payload, size_t len,
			uint64_t time_ns, struct abuf *out)
{
	abuf_reset(out);
	int rc = abuf_add(out, MLOG_MAGIC, 8);
	rc = rc ? rc : abuf_add_u32(out, MLOG_VERSION);
	rc = rc ? rc : abuf_add_u8(out, kind);
	rc = rc ? rc : abuf_add(out, "\0\0\0", 3);
	rc = rc ? rc : abuf_add_u64(out, st->count);
	rc = rc ? rc : abuf_add_u64(out, time_ns);
	rc = rc ? rc : abuf_add(out, st->last_hash, ARCA_ID_LEN);
	rc = rc ? rc : abuf_add_u32(out, (uint32_t)len);
	rc = rc ? rc : abuf_add(out, payload, len);
	if (rc)
		return rc;
	uint8_t leaf[ARCA_ID_LEN], root[ARCA_ID_LEN];
	leaf_hash(out->data, out->len, leaf);
	struct mlog_state next = *st;
	frontier_add(&next, leaf);
	mlog_state_root(&next, root);
	rc = abuf_add(out, root, ARCA_ID_LEN);
	rc = rc ? rc : abuf_reserve(out, ARCA_SIG_LEN);
	if (rc)
		return rc;
	acrypto_sign(ik, MLOG_SIG_NAMESPACE, out->data, out->len, out->data + out->len);
	out->len += ARCA_SIG_LEN;
	return 0;
}

int mlog_append(struct backend *be, struct mlog_state *st,
		const struct arca_ingest_keys *ik,
		const uint8_t sign_pk[ARCA_SIGN_PK_LEN], uint8_t kind,
		const uint8_t *payload, size_t len, uint64_t time_ns,
		int (*on_foreign)(const struct mlog_entry *e, void *ctx), void *ctx,
		uint64_t *seq_r, struct arca_err *err)
{
	if (len > MLOG_PAYLOAD_MAX)
		return arca_err_set(err, ARCA_ELIMIT, "log payload too large");
	struct abuf b = ABUF_INIT, other = ABUF_INIT;
	int rc;
	for (;;) {
		rc = encode_entry(st, ik, kind, payload, len, time_ns, &b);
		if (rc) {
			arca_err_set(err, rc, "out of memory");
			break;
		}
		char name[48];
		mlog_name(st->count, name);
		fault_crash_point();
		struct arca_err sub = { 0 };
		rc = be->ops->put(be, name, b.data, b.len, &sub);
		if (rc == 0) {
			struct mlog_entry e;
			rc = mlog_parse(b.data, b.len, sign_pk, &e, err);
			rc = rc ? rc : mlog_state_apply(st, &e, err);
			if (rc == 0)
				*seq_r = e.seq;
			break;
		}
		if (rc != ARCA_EEXIST) {
			arca_err_set(err, rc, "%s", sub.msg);
			break;
		}
		/* Another writer got this number: take in its entry, retry. */
		struct mlog_entry e;
		rc = mlog_read(be, st->count, sign_pk, &other, &e, err);
		rc = rc ? rc : mlog_state_apply(st, &e, err);
		if (rc == 0 && on_foreign != NULL)
			rc = on_foreign(&e, ctx);
		if (rc)
			break;
	}
	abuf_release(&b);
	abuf_release(&other);
	return rc;
}
