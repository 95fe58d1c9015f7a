/* Unit tests for lib/pack.c: write, store, index, decrypt, detect damage. */
#include <ftw.h>
#include <sodium.h>
#include <stdint.h>
#include <unistd.h>

#include "backend.h"
#include "buf.h"
#include "compress.h"
#include "crypto.h"
#include "fsutil.h"
#include "pack.h"
#include "harness.h"

static void rm_rf(char *dir)
{
	harness_rm_rf(dir);
	free(dir);
}

/* ---- a one-file read-only backend over a memory buffer (for bit flips) ---- */
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

static const struct backend_ops mem_ops = {
	.get_range = mem_get_range,
	.size = mem_size,
};

struct fixture {
	struct arca_public_keys pub;
	struct arca_ingest_keys *ik;
	struct arca_restore_key *rk;
	char *dir, *tmp;
	struct backend *be;
};

static int fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	if (acrypto_generate(&f->pub, &f->ik, &f->rk, NULL) != 0)
		return -1;
	f->dir = harness_tmpdir("pack");
	f->tmp = fs_join(f->dir, "tmp");
	if (f->tmp == NULL || fs_mkdirs(f->tmp, 0700, NULL) != 0)
		return -1;
	return backend_local_open(f->dir, &f->be, NULL);
}

static void fixture_release(struct fixture *f)
{
	backend_close(f->be);
	acrypto_ingest_keys_free(f->ik);
	acrypto_restore_key_free(f->rk);
	free(f->tmp);
	rm_rf(f->dir);
}

static void fill(uint8_t *p, size_t n, uint32_t seed, bool compressible)
{
	if (compressible) {
		static const char text[] = "Received: from mail.example.org by vault; ";
		for (size_t i = 0; i < n; i++)
			p[i] = (uint8_t)text[(i + seed) % (sizeof(text) - 1)];
	} else {
		uint8_t nonce[8] = { 0 };
		put_u32le(nonce, seed);
		uint8_t key[32] = { 7 };
		crypto_stream_chacha20(p, n, nonce, key);
	}
}

/* Write objects into a pack, store it in the backend; name_r = pack name. */
struct obj {
	uint8_t *data;
	size_t len;
	uint8_t id[ARCA_ID_LEN];
	uint8_t type;
};

static int build_pack(struct fixture *f, enum arca_cipher cipher, struct obj *objs,
		      size_t n, char name_r[80], uint64_t *size_r,
		      uint8_t hash_r[ARCA_ID_LEN])
{
	struct compressor *c = compressor_new(3);
	struct pack_writer *pw = NULL;
	struct abuf out = ABUF_INIT;
	struct arca_err err = { 0 };
	int rc = pack_writer_new(f->tmp, cipher, &f->pub, &pw, &err);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint8_t comp;
		acrypto_object_id(f->ik, objs[i].data, objs[i].len, objs[i].id);
		rc = compressor_run(c, NULL, objs[i].data, objs[i].len, &out, &comp);
		if (rc == 0)
			rc = pack_writer_add(pw, objs[i].type, comp, objs[i].id, out.data,
					     out.len, objs[i].len, &err);
	}
	const char *tmp_path = NULL;
	if (rc == 0 && pack_writer_count(pw) != n)
		rc = -100;
	if (rc == 0)
		rc = pack_writer_finish(pw, hash_r, size_r, &tmp_path, &err);
	if (rc == 0) {
		pack_name(hash_r, name_r);
		rc = f->be->ops->put_file(f->be, name_r, tmp_path, &err);
	}
	if (rc)
		fprintf(stderr, "  build_pack: %s\n", err.msg);
	pack_writer_free(pw);
	compressor_free(c);
	abuf_release(&out);
	return rc;
}

static void roundtrip(enum arca_cipher cipher, bool big)
{
	struct fixture f;
	REQUIRE(fixture_init(&f) == 0);
	enum { N = 40 };
	struct obj objs[N];
	static const size_t sizes[] = { 0, 1, 15, 16, 17, 100, 4096, 65537, 1u << 20 };
	for (size_t i = 0; i < N; i++) {
		size_t len = i < 2 * 9 ? sizes[i % 9] : (i * 977) % 9000;
		if (!big && len > 65537)
			len = 65537;
		objs[i].len = len;
		objs[i].data = malloc(len ? len : 1);
		objs[i].type = (uint8_t)(OBJ_BLOB + i % 5);
		fill(objs[i].data, len, (uint32_t)i, i % 2 == 0);
	}
	char name[80];
	uint64_t size;
	uint8_t hash[ARCA_ID_LEN];
	REQUIRE(build_pack(&f, cipher, objs, N, name, &size, hash) == 0);

	/* the name is the BLAKE2b-256 of the whole file */
	struct abuf file = ABUF_INIT;
	REQUIRE(f.be->ops->get(f.be, name, 64u << 20, &file, NULL) == 0);
	CHECK_EQ_INT(file.len, size);
	uint8_t h2[ARCA_ID_LEN];
	crypto_generichash(h2, 32, file.data, file.len, NULL, 0);
	CHECK(memcmp(h2, hash, 32) == 0);
	char hex[65];
	hex_encode(hex, hash, 32);
	char want_name[80];
	snprintf(want_name, sizeof(want_name), "data/%.2s/%s.pack", hex, hex);
	CHECK_STR(name, want_name);
	uint8_t parsed[32];
	CHECK(pack_name_parse(name, parsed) == 0 && memcmp(parsed, hash, 32) == 0);
	CHECK(pack_name_parse("data/ab/xyz.pack", parsed) != 0);
	want_name[5] = want_name[5] == '0' ? '1' : '0'; /* directory != prefix */
	CHECK(pack_name_parse(want_name, parsed) != 0);

	struct pack_header hdr;
	struct pack_entry *es = NULL;
	size_t count = 0;
	struct arca_err err = { 0 };
	REQUIRE(pack_read_index(f.be, name, size, &hdr, &es, &count, &err) == 0);
	CHECK_EQ_INT(count, N);
	CHECK_EQ_INT(hdr.version, PACK_VERSION);
	CHECK_EQ_INT(hdr.cipher, cipher);
	CHECK(memcmp(hdr.repo_id, f.pub.repo_id, 16) == 0);
	/* the size must match what the log says */
	arca_err_clear(&err);
	CHECK_EQ_INT(pack_read_index(f.be, name, size + 1, &hdr, &es, &count, &err), ARCA_ECORRUPT);

	uint8_t key[ARCA_PACK_KEY_LEN];
	REQUIRE(pack_open_key(&hdr, f.rk, key, &err) == 0);
	struct abuf out = ABUF_INIT;
	int bad = 0, compressed = 0;
	for (size_t i = 0; i < count && i < N; i++) {
		CHECK(memcmp(es[i].id, objs[i].id, 32) == 0);
		CHECK_EQ_INT(es[i].raw_len, objs[i].len);
		CHECK_EQ_INT(es[i].type, objs[i].type);
		compressed += es[i].comp == ARCA_COMP_ZSTD;
		arca_err_clear(&err);
		if (pack_read_object(f.be, name, hdr.cipher, key, &es[i], f.ik, &out, &err) != 0 ||
		    out.len != objs[i].len || (out.len && memcmp(out.data, objs[i].data, out.len) != 0)) {
			fprintf(stderr, "  object %zu: %s\n", i, err.msg);
			bad++;
		}
	}
	CHECK_EQ_INT(bad, 0);
	CHECK(compressed > 0 && compressed < N); /* both kinds present */
	CHECK(es[0].raw_len == 0);

	/* the writer's entries are what the trailer says */
	/* a wrong id key: content does not match its id */
	struct arca_ingest_keys *other = acrypto_ingest_keys_alloc();
	arca_err_clear(&err);
	CHECK_EQ_INT(pack_read_object(f.be, name, hdr.cipher, key, &es[3], other, &out, &err),
		     ARCA_ECORRUPT);
	CHECK(strstr(err.msg, "does not match its id") != NULL);
	acrypto_ingest_keys_free(other);
	/* another repository's restore key */
	struct arca_public_keys pub2;
	struct arca_ingest_keys *ik2 = NULL;
	struct arca_restore_key *rk2 = NULL;
	REQUIRE(acrypto_generate(&pub2, &ik2, &rk2, NULL) == 0);
	arca_err_clear(&err);
	CHECK_EQ_INT(pack_open_key(&hdr, rk2, key, &err), ARCA_EKEY);
	memcpy(rk2->repo_id, f.pub.repo_id, 16); /* same id, wrong secret */
	arca_err_clear(&err);
	CHECK_EQ_INT(pack_open_key(&hdr, rk2, key, &err), ARCA_ECORRUPT);
	acrypto_ingest_keys_free(ik2);
	acrypto_restore_key_free(rk2);

	/* the same pack cannot be stored twice under its name */
	arca_err_clear(&err);
	CHECK_EQ_INT(f.be->ops->put(f.be, name, "x", 1, &err), ARCA_EEXIST);

	free(es);
	abuf_release(&out);
	abuf_release(&file);
	for (size_t i = 0; i < N; i++)
		free(objs[i].data);
	fixture_release(&f);
}

static void test_roundtrip_xchacha(void)
{
	roundtrip(ARCA_CIPHER_XCHACHA20POLY1305, true);
}

static void test_roundtrip_aes(void)
{
	if (!acrypto_cipher_supported(ARCA_CIPHER_AES256GCM)) {
		printf("# AES-256-GCM not available: skipped\n");
		return;
	}
	roundtrip(ARCA_CIPHER_AES256GCM, false);
}

static void test_empty_pack(void)
{
	struct fixture f;
	REQUIRE(fixture_init(&f) == 0);
	char name[80];
	uint64_t size;
	uint8_t hash[32];
	REQUIRE(build_pack(&f, ARCA_CIPHER_XCHACHA20POLY1305, NULL, 0, name, &size, hash) == 0);
	CHECK_EQ_INT(size, PACK_HEADER_LEN + PACK_FOOTER_LEN);
	struct pack_header hdr;
	struct pack_entry *es = NULL;
	size_t count = 99;
	CHECK(pack_read_index(f.be, name, size, &hdr, &es, &count, NULL) == 0);
	CHECK_EQ_INT(count, 0);
	free(es);
	fixture_release(&f);
}

static void test_writer_misuse(void)
{
	struct fixture f;
	REQUIRE(fixture_init(&f) == 0);
	struct pack_writer *pw = NULL;
	struct arca_err err = { 0 };
	CHECK(pack_writer_new(f.tmp, (enum arca_cipher)9, &f.pub, &pw, &err) == ARCA_EINVAL);
	arca_err_clear(&err);
	REQUIRE(pack_writer_new(f.tmp, ARCA_CIPHER_XCHACHA20POLY1305, &f.pub, &pw, &err) == 0);
	uint8_t id[32] = { 0 };
	CHECK_EQ_INT(pack_writer_size(pw), PACK_HEADER_LEN);
	CHECK(pack_writer_add(pw, OBJ_BLOB, 0, id, "abc", 3, 3, &err) == 0);
	CHECK_EQ_INT(pack_writer_size(pw), PACK_HEADER_LEN + PACK_ENTRY_HEADER_LEN + 3 + 16);
	CHECK_EQ_INT(pack_writer_entries(pw)[0].offset, PACK_HEADER_LEN);
	CHECK(pack_writer_add(pw, OBJ_BLOB, 0, id, "abc", 3, ARCA_OBJECT_MAX + 1, &err) == ARCA_ELIMIT);
	uint8_t hash[32];
	uint64_t size;
	const char *tmp = NULL;
	arca_err_clear(&err);
	CHECK(pack_writer_finish(pw, hash, &size, &tmp, &err) == 0);
	CHECK(tmp != NULL && access(tmp, F_OK) == 0);
	CHECK(pack_writer_add(pw, OBJ_BLOB, 0, id, "abc", 3, 3, &err) == ARCA_ESTATE);
	CHECK(pack_writer_finish(pw, hash, &size, &tmp, &err) == ARCA_ESTATE);
	char *keep = tmp ? strdup(tmp) : NULL;
	pack_writer_free(pw); /* not stored: the temporary file goes away */
	CHECK(keep != NULL && access(keep, F_OK) != 0);
	free(keep);
	fixture_release(&f);
}

/* Try to read everything out of pack bytes; 0 if all objects came back
 * intact, non-zero if anything was detected. */
static uint8_t cached_hdr[PACK_HEADER_LEN], cached_key[ARCA_PACK_KEY_LEN];
static bool cached;

static int read_all(const uint8_t *p, size_t len, const struct fixture *f,
		    struct obj *objs, size_t n)
{
	struct membe m = { { &mem_ops }, p, len };
	struct pack_header hdr;
	struct pack_entry *es = NULL;
	size_t count = 0;
	int rc = pack_read_index(&m.be, "p", len, &hdr, &es, &count, NULL);
	if (rc)
		return rc;
	uint8_t key[ARCA_PACK_KEY_LEN];
	/* pack_open_key is a pure function of the header bytes and the
	 * restore key: skip the X25519 work when the header is unchanged */
	if (cached && memcmp(p, cached_hdr, PACK_HEADER_LEN) == 0) {
		memcpy(key, cached_key, sizeof(key));
	} else {
		rc = pack_open_key(&hdr, f->rk, key, NULL);
		if (rc == 0 && !cached) {
			memcpy(cached_hdr, p, PACK_HEADER_LEN);
			memcpy(cached_key, key, sizeof(key));
			cached = true;
		}
	}
	if (rc == 0 && count != n)
		rc = -100;
	struct abuf out = ABUF_INIT;
	for (size_t i = 0; rc == 0 && i < count; i++) {
		/* no id key: the check must come from the format itself */
		rc = pack_read_object(&m.be, "p", hdr.cipher, key, &es[i], NULL, &out, NULL);
		if (rc == 0 && (out.len != objs[i].len ||
				(out.len && memcmp(out.data, objs[i].data, out.len) != 0)))
			rc = -101;
	}
	abuf_release(&out);
	free(es);
	return rc;
}

static void test_every_bit_flip_detected(void)
{
	struct fixture f;
	REQUIRE(fixture_init(&f) == 0);
	/* small pack: an empty object, a compressed one, a stored one */
	uint8_t a[1], b[300], c[20];
	fill(b, sizeof(b), 1, true);
	fill(c, sizeof(c), 2, false);
	struct obj objs[3] = {
		{ a, 0, { 0 }, OBJ_BLOB },
		{ b, sizeof(b), { 0 }, OBJ_FOLDER_PAGE },
		{ c, sizeof(c), { 0 }, OBJ_SNAPSHOT },
	};
	char name[80];
	uint64_t size;
	uint8_t hash[32];
	REQUIRE(build_pack(&f, ARCA_CIPHER_XCHACHA20POLY1305, objs, 3, name, &size, hash) == 0);
	struct abuf file = ABUF_INIT;
	REQUIRE(f.be->ops->get(f.be, name, 1 << 20, &file, NULL) == 0);
	REQUIRE(file.len == size);
	CHECK(size < 1000);
	/* sanity: the untouched bytes read back (and prime the key cache) */
	cached = false;
	REQUIRE(read_all(file.data, file.len, &f, objs, 3) == 0);
	REQUIRE(cached);

	uint8_t *v = malloc(file.len);
	size_t undetected = 0, hash_missed = 0, flips = 0;
	for (size_t bit = 0; bit < file.len * 8; bit++) {
		memcpy(v, file.data, file.len);
		v[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		flips++;
		/* detection without the pack hash: header, trailer, footer,
		 * sealed key, entry headers and AEAD together */
		if (read_all(v, file.len, &f, objs, 3) == 0) {
			if (undetected < 5)
				fprintf(stderr, "  flip of bit %zu (byte %zu) not detected\n",
					bit % 8, bit / 8);
			undetected++;
		}
		/* and the pack hash (what verify without a key checks) */
		uint8_t h[32];
		crypto_generichash(h, 32, v, file.len, NULL, 0);
		if (memcmp(h, hash, 32) == 0)
			hash_missed++;
	}
	CHECK_EQ_INT(flips, size * 8);
	CHECK_EQ_INT(undetected, 0);
	CHECK_EQ_INT(hash_missed, 0);

	/* every truncation, and a pack with bytes appended */
	size_t trunc_undetected = 0;
	for (size_t len = 0; len < file.len; len++)
		if (read_all(file.data, len, &f, objs, 3) == 0)
			trunc_undetected++;
	CHECK_EQ_INT(trunc_undetected, 0);
	uint8_t *longer = calloc(1, file.len + 56);
	memcpy(longer, file.data, file.len);
	CHECK(read_all(longer, file.len + 1, &f, objs, 3) != 0);
	CHECK(read_all(longer, file.len + 56, &f, objs, 3) != 0);
	free(longer);
	free(v);
	abuf_release(&file);
	fixture_release(&f);
}

static void test_truncated_file(void)
{
	struct fixture f;
	REQUIRE(fixture_init(&f) == 0);
	uint8_t b[5000];
	fill(b, sizeof(b), 3, false);
	struct obj objs[1] = { { b, sizeof(b), { 0 }, OBJ_BLOB } };
	char name[80];
	uint64_t size;
	uint8_t hash[32];
	REQUIRE(build_pack(&f, ARCA_CIPHER_XCHACHA20POLY1305, objs, 1, name, &size, hash) == 0);
	struct abuf file = ABUF_INIT;
	REQUIRE(f.be->ops->get(f.be, name, 1 << 20, &file, NULL) == 0);
	/* store a truncated copy in the backend under another name */
	const char *tname = "data/00/truncated.pack";
	REQUIRE(f.be->ops->put(f.be, tname, file.data, file.len - 100, NULL) == 0);
	struct pack_header hdr;
	struct pack_entry *es = NULL;
	size_t count;
	struct arca_err err = { 0 };
	/* the log's size no longer matches */
	CHECK_EQ_INT(pack_read_index(f.be, tname, size, &hdr, &es, &count, &err), ARCA_ECORRUPT);
	CHECK(strstr(err.msg, tname) != NULL);
	/* even when told the short size, the footer is gone */
	arca_err_clear(&err);
	CHECK_EQ_INT(pack_read_index(f.be, tname, size - 100, &hdr, &es, &count, &err), ARCA_ECORRUPT);
	CHECK(strstr(err.msg, "footer") != NULL);
	/* reading an object through a good index from the short file */
	REQUIRE(pack_read_index(f.be, name, size, &hdr, &es, &count, NULL) == 0);
	uint8_t key[32];
	REQUIRE(pack_open_key(&hdr, f.rk, key, NULL) == 0);
	const char *t2 = "data/00/truncated2.pack";
	REQUIRE(f.be->ops->put(f.be, t2, file.data, 2000, NULL) == 0);
	struct abuf out = ABUF_INIT;
	arca_err_clear(&err);
	CHECK_EQ_INT(pack_read_object(f.be, t2, hdr.cipher, key, &es[0], NULL, &out, &err), ARCA_ECORRUPT);
	CHECK(strstr(err.msg, "truncated") != NULL);
	/* missing file */
	arca_err_clear(&err);
	CHECK_EQ_INT(pack_read_index(f.be, "data/00/missing.pack", size, &hdr, &es, &count, &err),
		     ARCA_ENOENT);
	free(es);
	abuf_release(&out);
	abuf_release(&file);
	fixture_release(&f);
}

static void test_parse_header_strict(void)
{
	uint8_t h[PACK_HEADER_LEN] = { 0 };
	memcpy(h, PACK_MAGIC, 8);
	put_u32le(h + 8, 1);
	h[12] = 1;
	struct pack_header hdr;
	CHECK(pack_parse_header(h, sizeof(h), &hdr, NULL) == 0);
	CHECK(pack_parse_header(h, sizeof(h) - 1, &hdr, NULL) == ARCA_ECORRUPT);
	put_u32le(h + 8, 2);
	CHECK(pack_parse_header(h, sizeof(h), &hdr, NULL) == ARCA_EVERSION);
	put_u32le(h + 8, 1);
	h[12] = 3;
	CHECK(pack_parse_header(h, sizeof(h), &hdr, NULL) == ARCA_EVERSION);
	h[12] = 2;
	CHECK(pack_parse_header(h, sizeof(h), &hdr, NULL) == 0);
	h[15] = 1;
	CHECK(pack_parse_header(h, sizeof(h), &hdr, NULL) == ARCA_ECORRUPT);
	h[15] = 0;
	h[0] = 'a';
	CHECK(pack_parse_header(h, sizeof(h), &hdr, NULL) == ARCA_ECORRUPT);
	/* trailer: whole entries only, contiguous, in range */
	struct pack_entry *es = NULL;
	size_t n;
	CHECK(pack_parse_trailer(h, 55, 112, &es, &n, NULL) == ARCA_ECORRUPT);
	CHECK(pack_parse_trailer(h, 0, 112, &es, &n, NULL) == 0 && n == 0);
	free(es);
	es = NULL;
	CHECK(pack_parse_trailer(h, 0, 113, &es, &n, NULL) == ARCA_ECORRUPT);
	uint8_t t[56] = { 0 };
	t[32] = OBJ_BLOB;
	put_u32le(t + 36, 16);
	put_u64le(t + 40, 112);
	CHECK(pack_parse_trailer(t, 56, 112 + 48 + 16, &es, &n, NULL) == 0 && n == 1);
	free(es);
	es = NULL;
	t[34] = 1;
	CHECK(pack_parse_trailer(t, 56, 112 + 48 + 16, &es, &n, NULL) == ARCA_ECORRUPT);
	t[34] = 0;
	t[33] = 3;   /* compression bytes 0-2 are defined */
	CHECK(pack_parse_trailer(t, 56, 112 + 48 + 16, &es, &n, NULL) == ARCA_ECORRUPT);
	t[33] = 0;
	t[32] = 8;   /* object types 1-7 are defined */
	CHECK(pack_parse_trailer(t, 56, 112 + 48 + 16, &es, &n, NULL) == ARCA_ECORRUPT);
	/* and 0x80, a journal commit mark: plaintext, raw_len = stored_len, comp 0 */
	t[32] = PACK_MARK_TYPE;
	put_u64le(t + 48, 16);
	CHECK(pack_parse_trailer(t, 56, 112 + 48 + 16, &es, &n, NULL) == 0 && n == 1);
	free(es);
	es = NULL;
	t[33] = 1;
	CHECK(pack_parse_trailer(t, 56, 112 + 48 + 16, &es, &n, NULL) == ARCA_ECORRUPT);
	t[33] = 0;
	put_u64le(t + 48, 17);
	CHECK(pack_parse_trailer(t, 56, 112 + 48 + 16, &es, &n, NULL) == ARCA_ECORRUPT);
	put_u64le(t + 48, 0);
	t[32] = 1;
	put_u32le(t + 36, 15);
	CHECK(pack_parse_trailer(t, 56, 112 + 48 + 15, &es, &n, NULL) == ARCA_ECORRUPT);
	put_u32le(t + 36, 16);
	put_u64le(t + 48, ARCA_OBJECT_MAX + 1);
	CHECK(pack_parse_trailer(t, 56, 112 + 48 + 16, &es, &n, NULL) == ARCA_ECORRUPT);
}

/*
 * KNOWN LIB BUG (pack.c, pack_read_index footer check): trailer_off +
 * trailer_len + 24 is computed in u64 and can wrap, so a footer with
 * trailer_len > size passes with a huge trailer_off; the reader then
 * mallocs trailer_len (up to 4 GiB from a 136-byte file) and fails with an
 * I/O error (pread at a negative offset) instead of reporting damage.
 */
static void test_footer_offset_wraps(void)
{
	struct fixture f;
	REQUIRE(fixture_init(&f) == 0);
	char name[80];
	uint64_t size;
	uint8_t hash[32];
	REQUIRE(build_pack(&f, ARCA_CIPHER_XCHACHA20POLY1305, NULL, 0, name, &size, hash) == 0);
	struct abuf file = ABUF_INIT;
	REQUIRE(f.be->ops->get(f.be, name, 1 << 20, &file, NULL) == 0);
	REQUIRE(file.len == 136);
	uint8_t *foot = file.data + file.len - PACK_FOOTER_LEN;
	uint32_t count = 10, tlen = count * PACK_TRAILER_ENTRY_LEN;
	put_u64le(foot, (uint64_t)0 - (tlen + PACK_FOOTER_LEN - file.len));
	put_u32le(foot + 8, tlen);
	put_u32le(foot + 12, count);
	const char *bad = "data/00/wrapped.pack";
	REQUIRE(f.be->ops->put(f.be, bad, file.data, file.len, NULL) == 0);
	struct pack_header hdr;
	struct pack_entry *es = NULL;
	size_t n;
	struct arca_err err = { 0 };
	CHECK_EQ_INT(pack_read_index(f.be, bad, file.len, &hdr, &es, &n, &err), ARCA_ECORRUPT);
	if (err.code != ARCA_ECORRUPT)
		fprintf(stderr, "  got: %s\n", err.msg);
	free(es);
	abuf_release(&file);
	fixture_release(&f);
}

int main(void)
{
	if (acrypto_setup() != 0)
		return 1;
	RUN(test_roundtrip_xchacha);
	RUN(test_roundtrip_aes);
	RUN(test_empty_pack);
	RUN(test_writer_misuse);
	RUN(test_every_bit_flip_detected);
	RUN(test_truncated_file);
	RUN(test_parse_header_strict);
	RUN(test_footer_offset_wraps);
	HARNESS_EXIT();
}
