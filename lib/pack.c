#include "pack.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "compress.h"
#include "faultinject.h"
#include "fsutil.h"
#include "banned.h"

struct pack_writer {
	int fd;
	char *tmp_path;
	uint8_t *key;               /* sodium_malloc; NULL once finished */
	enum arca_cipher cipher;
	uint64_t size;
	struct pack_entry *entries;
	size_t count, cap;
	struct abuf ct;             /* scratch: header + ciphertext */
	struct acrypto_hash_state hash;
	bool finished;
	bool failed;                /* a write failed: the file is unusable (LMDB's poisoned txn) */
	int fail_code;
	char fail_msg[ARCA_ERR_MSG_MAX];  /* repeated to every later caller */
};

static void encode_entry_header(uint8_t h[PACK_ENTRY_HEADER_LEN], uint8_t type,
				uint8_t comp, uint32_t stored_len, uint64_t raw_len,
				const uint8_t id[ARCA_ID_LEN])
{
	h[0] = type;
	h[1] = comp;
	h[2] = 0;
	h[3] = 0;
	put_u32le(h + 4, stored_len);
	put_u64le(h + 8, raw_len);
	memcpy(h + 16, id, ARCA_ID_LEN);
}

/* Writes and hashes bytes of the pack being built. */
static int pw_write(struct pack_writer *pw, const void *p, size_t n,
		    struct arca_err *err)
{
	if (pw->failed)
		return arca_err_set(err, pw->fail_code, "%s", pw->fail_msg);
	struct arca_err sub = { 0 };
	int rc = fs_write_all(pw->fd, p, n, pw->tmp_path, &sub);
	if (rc) {
		/* part of it may be on disk: never seal or log this file; and
		 * whoever writes next (another reader thread) gets the cause */
		pw->failed = true;
		pw->fail_code = rc;
		snprintf(pw->fail_msg, sizeof(pw->fail_msg), "%s", sub.msg);
		return arca_err_set(err, rc, "%s", sub.msg);
	}
	acrypto_hash_update(&pw->hash, p, n);
	pw->size += n;
	return 0;
}

int pack_writer_new(const char *tmpdir, enum arca_cipher cipher,
		    const struct arca_public_keys *pub, struct pack_writer **pw_r,
		    struct arca_err *err)
{
	if (!acrypto_cipher_supported(cipher))
		return arca_err_set(err, ARCA_EINVAL, "cipher %d not supported here", cipher);
	struct pack_writer *pw = calloc(1, sizeof(*pw));
	if (pw == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	pw->fd = -1;
	pw->cipher = cipher;
	size_t n = strlen(tmpdir) + 40;
	pw->tmp_path = malloc(n);
	pw->key = sodium_malloc(ARCA_PACK_KEY_LEN);
	if (pw->tmp_path == NULL || pw->key == NULL) {
		pack_writer_free(pw);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	snprintf(pw->tmp_path, n, "%s/pack-XXXXXX", tmpdir);
	pw->fd = mkstemp(pw->tmp_path);
	if (pw->fd < 0) {
		int e = errno;
		free(pw->tmp_path);
		pw->tmp_path = NULL;
		pack_writer_free(pw);
		return arca_err_errno(err, arca_errno_code(e), e, "create pack in %s", tmpdir);
	}
	acrypto_hash_init(&pw->hash);
	acrypto_pack_key_new(pw->key);

	uint8_t h[PACK_HEADER_LEN] = { 0 };
	memcpy(h, PACK_MAGIC, 8);
	put_u32le(h + 8, PACK_VERSION);
	h[12] = (uint8_t)cipher;
	memcpy(h + 16, pub->repo_id, ARCA_REPO_ID_LEN);
	int rc = acrypto_seal(pub->box_pk, pw->key, ARCA_PACK_KEY_LEN, h + 32);
	if (rc == 0)
		rc = pw_write(pw, h, sizeof(h), err);
	else
		arca_err_set(err, rc, "cannot seal the pack key");
	if (rc) {
		pack_writer_free(pw);
		return rc;
	}
	*pw_r = pw;
	return 0;
}

/* Room for one more trailer entry. */
static int pw_grow(struct pack_writer *pw, struct arca_err *err)
{
	if (pw->count < pw->cap)
		return 0;
	size_t cap = pw->cap ? pw->cap * 2 : 256;
	struct pack_entry *e = realloc(pw->entries, cap * sizeof(*e));
	if (e == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	pw->entries = e;
	pw->cap = cap;
	return 0;
}

int pack_writer_add(struct pack_writer *pw, uint8_t type, uint8_t comp,
		    const uint8_t id[ARCA_ID_LEN], const void *data, size_t len,
		    uint64_t raw_len, struct arca_err *err)
{
	if (pw->finished || pw->key == NULL)
		return arca_err_set(err, ARCA_ESTATE, "pack already sealed");
	if (len > ARCA_OBJECT_MAX || raw_len > ARCA_OBJECT_MAX)
		return arca_err_set(err, ARCA_ELIMIT, "object too large for a pack");
	int rc = pw_grow(pw, err);
	if (rc)
		return rc;
	uint32_t stored_len = (uint32_t)(len + ARCA_AEAD_TAG_LEN);
	abuf_reset(&pw->ct);
	if (abuf_reserve(&pw->ct, PACK_ENTRY_HEADER_LEN + stored_len) != 0)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	uint8_t *h = pw->ct.data;
	encode_entry_header(h, type, comp, stored_len, raw_len, id);
	/* The entry's offset is its nonce: unique within the pack, and the
	 * pack key is used for no other pack. */
	uint64_t offset = pw->size;
	rc = acrypto_aead_encrypt(pw->cipher, pw->key, offset, h,
				      PACK_ENTRY_HEADER_LEN, data, len,
				      h + PACK_ENTRY_HEADER_LEN);
	if (rc)
		return arca_err_set(err, rc, "encryption failed");
	rc = pw_write(pw, pw->ct.data, PACK_ENTRY_HEADER_LEN + stored_len, err);
	if (rc)
		return rc;
	struct pack_entry *e = &pw->entries[pw->count++];
	memcpy(e->id, id, ARCA_ID_LEN);
	e->type = type;
	e->comp = comp;
	e->stored_len = stored_len;
	e->offset = offset;
	e->raw_len = raw_len;
	return 0;
}

bool pack_writer_failed(const struct pack_writer *pw)
{
	return pw->failed;
}

uint64_t pack_writer_size(const struct pack_writer *pw)
{
	return pw->size;
}

size_t pack_writer_count(const struct pack_writer *pw)
{
	return pw->count;
}

const struct pack_entry *pack_writer_entries(const struct pack_writer *pw)
{
	return pw->entries;
}

/* Trailer (one 56-byte record per entry) and footer, appended to t. */
static int encode_tail(const struct pack_entry *es, size_t count, uint64_t trailer_off,
		       struct abuf *t)
{
	int rc = 0;
	size_t start = t->len;
	for (size_t i = 0; i < count && rc == 0; i++) {
		const struct pack_entry *e = &es[i];
		rc = abuf_add(t, e->id, ARCA_ID_LEN);
		rc = rc ? rc : abuf_add_u8(t, e->type);
		rc = rc ? rc : abuf_add_u8(t, e->comp);
		rc = rc ? rc : abuf_add_u16(t, 0);
		rc = rc ? rc : abuf_add_u32(t, e->stored_len);
		rc = rc ? rc : abuf_add_u64(t, e->offset);
		rc = rc ? rc : abuf_add_u64(t, e->raw_len);
	}
	uint32_t trailer_len = (uint32_t)(t->len - start);
	rc = rc ? rc : abuf_add_u64(t, trailer_off);
	rc = rc ? rc : abuf_add_u32(t, trailer_len);
	rc = rc ? rc : abuf_add_u32(t, (uint32_t)count);
	rc = rc ? rc : abuf_add(t, PACK_FOOTER_MAGIC, 8);
	return rc;
}

int pack_writer_finish(struct pack_writer *pw, uint8_t hash_r[ARCA_ID_LEN],
		       uint64_t *size_r, const char **tmp_path_r,
		       struct arca_err *err)
{
	if (pw->finished)
		return arca_err_set(err, ARCA_ESTATE, "pack already sealed");
	if (pw->failed)
		return arca_err_set(err, pw->fail_code, "%s", pw->fail_msg);
	sodium_free(pw->key);
	pw->key = NULL;
	struct abuf t = ABUF_INIT;
	int rc = encode_tail(pw->entries, pw->count, pw->size, &t);
	if (rc) {
		abuf_release(&t);
		return arca_err_set(err, rc, "out of memory");
	}
	rc = pw_write(pw, t.data, t.len, err);
	abuf_release(&t);
	if (rc)
		return rc;
	fault_crash_point();
	if (fault_hit(FAULT_FSYNC) || fsync(pw->fd) != 0) {
		int e = errno ? errno : EIO;
		pw->failed = true;   /* never retry an fsync */
		pw->fail_code = arca_errno_code(e);
		snprintf(pw->fail_msg, sizeof(pw->fail_msg), "fsync %s: %s", pw->tmp_path, strerror(e));
		return arca_err_set(err, pw->fail_code, "%s", pw->fail_msg);
	}
	if (close(pw->fd) != 0) {
		pw->fd = -1;
		return arca_err_errno(err, ARCA_EIO, errno, "close %s", pw->tmp_path);
	}
	pw->fd = -1;
	acrypto_hash_final(&pw->hash, hash_r);
	*size_r = pw->size;
	*tmp_path_r = pw->tmp_path;
	pw->finished = true;
	return 0;
}

void pack_writer_forget(struct pack_writer *pw)
{
	if (pw == NULL)
		return;
	free(pw->tmp_path);
	pw->tmp_path = NULL;   /* so free leaves the file */
	pack_writer_free(pw);
}

void pack_writer_free(struct pack_writer *pw)
{
	if (pw == NULL)
		return;
	if (pw->fd >= 0)
		close(pw->fd);
	if (pw->tmp_path != NULL)
		unlink(pw->tmp_path); /* harmless after put_file consumed it */
	free(pw->tmp_path);
	sodium_free(pw->key);
	free(pw->entries);
	abuf_release(&pw->ct);
	free(pw);
}

void pack_name(const uint8_t hash[ARCA_ID_LEN], char out[80])
{
	char hex[2 * ARCA_ID_LEN + 1];
	hex_encode(hex, hash, ARCA_ID_LEN);
	snprintf(out, 80, "data/%.2s/%s.pack", hex, hex);
}

int pack_name_parse(const char *name, uint8_t hash_r[ARCA_ID_LEN])
{
	/* data/XX/<64 hex>.pack */
	if (strlen(name) != 5 + 3 + 64 + 5 || strncmp(name, "data/", 5) != 0 ||
	    name[7] != '/' || strcmp(name + 72, ".pack") != 0 ||
	    strncmp(name + 5, name + 8, 2) != 0)
		return ARCA_EFORMAT;
	char hex[65];
	memcpy(hex, name + 8, 64);
	hex[64] = '\0';
	return hex_decode(hash_r, ARCA_ID_LEN, hex);
}

int pack_parse_header(const uint8_t *p, size_t len, struct pack_header *hdr_r,
		      struct arca_err *err)
{
	if (len < PACK_HEADER_LEN || memcmp(p, PACK_MAGIC, 8) != 0)
		return arca_err_set(err, ARCA_ECORRUPT, "not a pack (bad magic)");
	hdr_r->version = get_u32le(p + 8);
	if (hdr_r->version != PACK_VERSION)
		return arca_err_set(err, ARCA_EVERSION, "pack version %u is not supported",
				    hdr_r->version);
	hdr_r->cipher = p[12];
	if (hdr_r->cipher != ARCA_CIPHER_XCHACHA20POLY1305 &&
	    hdr_r->cipher != ARCA_CIPHER_AES256GCM)
		return arca_err_set(err, ARCA_EVERSION, "unknown pack cipher %u", hdr_r->cipher);
	if (p[13] || p[14] || p[15])
		return arca_err_set(err, ARCA_ECORRUPT, "reserved header bytes are not zero");
	memcpy(hdr_r->repo_id, p + 16, ARCA_REPO_ID_LEN);
	memcpy(hdr_r->sealed_key, p + 32, ARCA_SEALED_KEY_LEN);
	return 0;
}

int pack_parse_trailer(const uint8_t *p, size_t len, uint64_t trailer_off,
		       struct pack_entry **entries_r, size_t *count_r,
		       struct arca_err *err)
{
	if (len % PACK_TRAILER_ENTRY_LEN != 0)
		return arca_err_set(err, ARCA_ECORRUPT, "trailer length %zu is not a whole number of entries", len);
	size_t n = len / PACK_TRAILER_ENTRY_LEN;
	struct pack_entry *es = calloc(n ? n : 1, sizeof(*es));
	if (es == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	uint64_t expect = PACK_HEADER_LEN;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *q = p + i * PACK_TRAILER_ENTRY_LEN;
		struct pack_entry *e = &es[i];
		memcpy(e->id, q, ARCA_ID_LEN);
		e->type = q[32];
		e->comp = q[33];
		e->stored_len = get_u32le(q + 36);
		e->offset = get_u64le(q + 40);
		e->raw_len = get_u64le(q + 48);
		/* entries are contiguous from the header to the trailer;
		 * journal commit marks are plaintext (docs/format/journal.md) */
		bool mark = e->type == PACK_MARK_TYPE;
		if (q[34] || q[35] || e->offset != expect ||
		    (mark ? e->stored_len > PACK_MARK_MAX || e->raw_len != e->stored_len || e->comp != 0
			  : e->stored_len < ARCA_AEAD_TAG_LEN ||
			    e->stored_len > ARCA_OBJECT_MAX + ARCA_AEAD_TAG_LEN ||
			    e->raw_len > ARCA_OBJECT_MAX || e->type < OBJ_BLOB ||
			    e->type > OBJ_TYPE_MAX || e->comp > ARCA_COMP_ZSTD_DICT)) {
			free(es);
			return arca_err_set(err, ARCA_ECORRUPT, "trailer entry %zu is inconsistent", i);
		}
		expect += PACK_ENTRY_HEADER_LEN + (uint64_t)e->stored_len;
	}
	if (expect != trailer_off) {
		free(es);
		return arca_err_set(err, ARCA_ECORRUPT, "trailer does not account for every byte");
	}
	*entries_r = es;
	*count_r = n;
	return 0;
}

int pack_read_index(struct backend *be, const char *name, uint64_t size,
		    struct pack_header *hdr_r, struct pack_entry **entries_r,
		    size_t *count_r, struct arca_err *err)
{
	uint64_t actual;
	int rc = be->ops->size(be, name, &actual, err);
	if (rc)
		return rc;
	if (actual != size)
		return arca_err_set(err, ARCA_ECORRUPT, "pack %s is %llu bytes, the log says %llu",
				    name, (unsigned long long)actual, (unsigned long long)size);
	if (size < PACK_HEADER_LEN + PACK_FOOTER_LEN)
		return arca_err_set(err, ARCA_ECORRUPT, "pack %s is truncated", name);
	uint8_t h[PACK_HEADER_LEN], f[PACK_FOOTER_LEN];
	rc = be->ops->get_range(be, name, 0, sizeof(h), h, err);
	rc = rc ? rc : be->ops->get_range(be, name, size - PACK_FOOTER_LEN, sizeof(f), f, err);
	if (rc)
		return rc;
	struct arca_err sub = { 0 };
	rc = pack_parse_header(h, sizeof(h), hdr_r, &sub);
	if (rc)
		return arca_err_set(err, rc, "pack %s: %s", name, sub.msg);
	uint64_t toff = get_u64le(f);
	uint32_t tlen = get_u32le(f + 8), count = get_u32le(f + 12);
	/* compare without sums that could wrap around */
	if (memcmp(f + 16, PACK_FOOTER_MAGIC, 8) != 0 || toff < PACK_HEADER_LEN ||
	    toff > size - PACK_FOOTER_LEN || tlen != size - PACK_FOOTER_LEN - toff ||
	    (uint64_t)count * PACK_TRAILER_ENTRY_LEN != tlen)
		return arca_err_set(err, ARCA_ECORRUPT, "pack %s: bad footer", name);
	uint8_t *t = malloc(tlen ? tlen : 1);
	if (t == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	rc = be->ops->get_range(be, name, toff, tlen, t, err);
	if (rc == 0) {
		rc = pack_parse_trailer(t, tlen, toff, entries_r, count_r, &sub);
		if (rc)
			arca_err_set(err, rc, "pack %s: %s", name, sub.msg);
	}
	free(t);
	return rc;
}

int pack_open_key(const struct pack_header *hdr, const struct arca_restore_key *rk,
		  uint8_t key_r[ARCA_PACK_KEY_LEN], struct arca_err *err)
{
	if (memcmp(hdr->repo_id, rk->repo_id, ARCA_REPO_ID_LEN) != 0)
		return arca_err_set(err, ARCA_EKEY, "the restore key belongs to another repository");
	int rc = acrypto_seal_open(rk, hdr->sealed_key, ARCA_SEALED_KEY_LEN, key_r);
	if (rc)
		return arca_err_set(err, ARCA_ECORRUPT, "the pack key does not open with this restore key");
	return 0;
}

int pack_decode_object(uint8_t cipher, const uint8_t key[ARCA_PACK_KEY_LEN],
		       const struct pack_entry *e, const uint8_t *stored,
		       size_t stored_len, const struct arca_ingest_keys *ik,
		       struct abuf *out, struct arca_err *err)
{
	uint8_t h[PACK_ENTRY_HEADER_LEN];
	encode_entry_header(h, e->type, e->comp, e->stored_len, e->raw_len, e->id);
	if (stored_len != PACK_ENTRY_HEADER_LEN + (size_t)e->stored_len ||
	    memcmp(h, stored, PACK_ENTRY_HEADER_LEN) != 0)
		return arca_err_set(err, ARCA_ECORRUPT, "entry header does not match the trailer");
	size_t clen = e->stored_len - ARCA_AEAD_TAG_LEN;
	uint8_t *plain = malloc(clen ? clen : 1);
	if (plain == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	int rc = acrypto_aead_decrypt(cipher, key, e->offset, stored,
				      PACK_ENTRY_HEADER_LEN, stored + PACK_ENTRY_HEADER_LEN,
				      e->stored_len, plain);
	if (rc) {
		free(plain);
		return arca_err_set(err, ARCA_ECORRUPT, "object fails authentication");
	}
	rc = decompress_object(e->comp, plain, clen, e->raw_len, out, err);
	free(plain);
	if (rc)
		return rc;
	if (ik != NULL) {
		uint8_t id[ARCA_ID_LEN];
		acrypto_object_id(ik, out->data, out->len, id);
		if (sodium_memcmp(id, e->id, ARCA_ID_LEN) != 0)
			return arca_err_set(err, ARCA_ECORRUPT, "object content does not match its id");
	}
	return 0;
}

int pack_read_object(struct backend *be, const char *name, uint8_t cipher,
		     const uint8_t key[ARCA_PACK_KEY_LEN], const struct pack_entry *e,
		     const struct arca_ingest_keys *ik, struct abuf *out,
		     struct arca_err *err)
{
	size_t n = PACK_ENTRY_HEADER_LEN + (size_t)e->stored_len;
	if (e->stored_len > ARCA_OBJECT_MAX + ARCA_AEAD_TAG_LEN)
		return arca_err_set(err, ARCA_ECORRUPT, "object in %s is over the size limit", name);
	uint8_t *buf = malloc(n);
	if (buf == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	int rc = be->ops->get_range(be, name, e->offset, n, buf, err);
	if (rc == 0) {
		struct arca_err sub = { 0 };
		rc = pack_decode_object(cipher, key, e, buf, n, ik, out, &sub);
		if (rc) {
			char hex[2 * ARCA_ID_LEN + 1];
			hex_encode(hex, e->id, ARCA_ID_LEN);
			arca_err_set(err, rc, "pack %s, object %s at offset %llu: %s", name,
				     hex, (unsigned long long)e->offset, sub.msg);
		}
	}
	free(buf);
	return rc;
}

/* ---- journal segments: commit marks, sync, recovery ---- */

/* The check of a mark at offset `off`: BLAKE2b-256 of the pack's bytes
 * before it, the mark header's first 16 bytes and the payload.  `prefix` is
 * the running hash of bytes [0, off). */
static void mark_check(const struct acrypto_hash_state *prefix, const uint8_t h16[16],
		       const void *payload, size_t len, uint8_t out[ARCA_ID_LEN])
{
	struct acrypto_hash_state st = *prefix;
	acrypto_hash_update(&st, h16, 16);
	acrypto_hash_update(&st, payload, len);
	acrypto_hash_final(&st, out);
}

int pack_writer_mark(struct pack_writer *pw, const void *payload, size_t len,
		     struct arca_err *err)
{
	if (pw->finished)
		return arca_err_set(err, ARCA_ESTATE, "pack already sealed");
	if (len > PACK_MARK_MAX)
		return arca_err_set(err, ARCA_ELIMIT, "commit mark of %zu bytes is over the limit", len);
	uint8_t h[PACK_ENTRY_HEADER_LEN];
	uint8_t check[ARCA_ID_LEN];
	encode_entry_header(h, PACK_MARK_TYPE, 0, (uint32_t)len, len, check);
	mark_check(&pw->hash, h, payload, len, check);
	memcpy(h + 16, check, ARCA_ID_LEN);
	uint64_t offset = pw->size;
	int rc = pw_grow(pw, err);
	rc = rc ? rc : pw_write(pw, h, sizeof(h), err);
	rc = rc ? rc : pw_write(pw, payload, len, err);
	if (rc)
		return rc;
	struct pack_entry *e = &pw->entries[pw->count++];
	memcpy(e->id, check, ARCA_ID_LEN);
	e->type = PACK_MARK_TYPE;
	e->comp = 0;
	e->stored_len = (uint32_t)len;
	e->offset = offset;
	e->raw_len = len;
	return 0;
}

int pack_writer_sync(struct pack_writer *pw, struct arca_err *err)
{
	if (pw->failed)
		return arca_err_set(err, pw->fail_code, "%s", pw->fail_msg);
	if (fault_hit(FAULT_FSYNC) || fdatasync(pw->fd) != 0) {
		int e = errno ? errno : EIO;
		pw->failed = true;   /* never retry an fsync */
		pw->fail_code = arca_errno_code(e);
		snprintf(pw->fail_msg, sizeof(pw->fail_msg), "fsync %s: %s", pw->tmp_path, strerror(e));
		return arca_err_set(err, pw->fail_code, "%s", pw->fail_msg);
	}
	return 0;
}

const char *pack_writer_path(const struct pack_writer *pw)
{
	return pw->tmp_path;
}

void pack_recovered_release(struct pack_recovered *pr)
{
	abuf_release(&pr->marks);
	memset(pr, 0, sizeof(*pr));
}

static int add_entry(struct pack_entry **es, size_t *n, size_t *cap, const uint8_t *h,
		     uint64_t off)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		struct pack_entry *ne = realloc(*es, nc * sizeof(*ne));
		if (ne == NULL)
			return ARCA_ENOMEM;
		*es = ne;
		*cap = nc;
	}
	struct pack_entry *e = &(*es)[(*n)++];
	memcpy(e->id, h + 16, ARCA_ID_LEN);
	e->type = h[0];
	e->comp = h[1];
	e->stored_len = get_u32le(h + 4);
	e->offset = off;
	e->raw_len = get_u64le(h + 8);
	return 0;
}

int pack_recover(const char *path, struct pack_recovered *pr, struct arca_err *err)
{
	memset(pr, 0, sizeof(*pr));
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT)
		return arca_err_set(err, ARCA_ENOENT, "%s is gone", path);
	if (fd < 0)
		return arca_err_errno(err, arca_errno_code(errno), errno, "open %s", path);
	struct stat st;
	int rc = 0;
	uint8_t *buf = NULL;
	struct pack_entry *es = NULL;
	size_t n = 0, cap = 0, good_n = 0;
	uint64_t good_end = 0;
	struct abuf tail = ABUF_INIT;
	if (fstat(fd, &st) != 0) {
		rc = arca_err_errno(err, ARCA_EIO, errno, "stat %s", path);
		goto out;
	}
	if ((uint64_t)st.st_size > PACK_RECOVER_MAX) {
		rc = arca_err_set(err, ARCA_ELIMIT, "%s: %lld bytes, too large for a journal segment",
				  path, (long long)st.st_size);
		goto out;
	}
	size_t size = (size_t)st.st_size;
	buf = malloc(size ? size : 1);
	if (buf == NULL) {
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		goto out;
	}
	size_t got = 0;
	while (got < size) {
		ssize_t k = pread(fd, buf + got, size - got, (off_t)got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			rc = arca_err_errno(err, ARCA_EIO, k < 0 ? errno : EIO, "read %s", path);
			goto out;
		}
		got += (size_t)k;
	}
	struct pack_header hdr;
	if (size < PACK_HEADER_LEN || pack_parse_header(buf, PACK_HEADER_LEN, &hdr, NULL) != 0) {
		/* torn before the header was complete: nothing was committed */
		pr->empty = true;
		goto out;
	}
	struct acrypto_hash_state run;
	acrypto_hash_init(&run);
	acrypto_hash_update(&run, buf, PACK_HEADER_LEN);
	uint64_t off = PACK_HEADER_LEN;
	while (off + PACK_ENTRY_HEADER_LEN <= size) {
		const uint8_t *h = buf + off;
		uint8_t type = h[0], comp = h[1];
		uint32_t slen = get_u32le(h + 4);
		uint64_t raw = get_u64le(h + 8);
		uint64_t end = off + PACK_ENTRY_HEADER_LEN + slen;
		if (end > size || h[2] != 0 || h[3] != 0)
			break;   /* torn or garbage: the end of what was written */
		if (type == PACK_MARK_TYPE) {
			uint8_t check[ARCA_ID_LEN];
			if (comp != 0 || raw != slen || slen > PACK_MARK_MAX)
				break;
			mark_check(&run, h, h + PACK_ENTRY_HEADER_LEN, slen, check);
			if (sodium_memcmp(check, h + 16, ARCA_ID_LEN) != 0)
				break;
			if (add_entry(&es, &n, &cap, h, off) != 0) {
				rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
				goto out;
			}
			/* a commit point: everything so far was acknowledged */
			if (abuf_add_u32(&pr->marks, slen) != 0 ||
			    abuf_add(&pr->marks, h + PACK_ENTRY_HEADER_LEN, slen) != 0) {
				rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
				goto out;
			}
			good_end = end;
			good_n = n;
		} else {
			if (type < OBJ_BLOB || type > OBJ_TYPE_MAX || comp > ARCA_COMP_ZSTD_DICT ||
			    slen < ARCA_AEAD_TAG_LEN || slen > ARCA_OBJECT_MAX + ARCA_AEAD_TAG_LEN ||
			    raw > ARCA_OBJECT_MAX)
				break;
			if (add_entry(&es, &n, &cap, h, off) != 0) {
				rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
				goto out;
			}
		}
		acrypto_hash_update(&run, h, end - off);
		off = end;
	}
	if (good_end == 0) {
		pr->empty = true;
		goto out;
	}
	/* Cut what follows the last commit (never acknowledged), seal. */
	rc = encode_tail(es, good_n, good_end, &tail);
	if (rc) {
		rc = arca_err_set(err, rc, "out of memory");
		goto out;
	}
	if (size == good_end + tail.len && memcmp(buf + good_end, tail.data, tail.len) == 0) {
		/* sealed already (a crash after the seal, before the log entry):
		 * nothing to write */
		acrypto_hash(buf, size, pr->hash);
		pr->size = size;
		pr->count = good_n;
		pr->dropped = 0;
		goto out;
	}
	/* write access only now: a sealed pack is read-only (0444) */
	close(fd);
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rc = arca_err_errno(err, arca_errno_code(errno), errno, "open %s for writing", path);
		goto out;
	}
	if (ftruncate(fd, (off_t)good_end) != 0) {
		rc = arca_err_errno(err, arca_errno_code(errno), errno, "truncate %s", path);
		goto out;
	}
	size_t put = 0;
	while (put < tail.len) {
		ssize_t k = pwrite(fd, tail.data + put, tail.len - put, (off_t)(good_end + put));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			rc = arca_err_errno(err, arca_errno_code(k < 0 ? errno : ENOSPC),
					    k < 0 ? errno : ENOSPC, "write %s", path);
			goto out;
		}
		put += (size_t)k;
	}
	if (fsync(fd) != 0) {
		rc = arca_err_errno(err, arca_errno_code(errno), errno, "fsync %s", path);
		goto out;
	}
	struct acrypto_hash_state fh;
	acrypto_hash_init(&fh);
	acrypto_hash_update(&fh, buf, (size_t)good_end);
	acrypto_hash_update(&fh, tail.data, tail.len);
	acrypto_hash_final(&fh, pr->hash);
	pr->size = good_end + tail.len;
	pr->count = good_n;
	pr->dropped = size - good_end;
out:
	abuf_release(&tail);
	free(es);
	free(buf);
	if (fd >= 0)
		close(fd);
	if (rc)
		abuf_release(&pr->marks);
	return rc;
}
