/*
 * gen_vectors - write the golden test vectors of tests/vectors/ from the
 * fixed key material in vector_keys.h:
 *     build/tests/gen_vectors tests/vectors
 * Everything is deterministic except three things libsodium randomizes on
 * purpose: the pack key and its sealed box (pack.bin bytes 32..111 and all
 * ciphertexts), and the salt and nonce of restore.key.  Regenerating
 * therefore changes pack.bin, pack.key and restore.key; the test
 * (tests/unit/test_vectors.c) checks the deterministic parts byte by byte
 * and the randomized ones by opening them with the fixed keys.
 */
#include <stdio.h>
#include <stdlib.h>
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
#include "vector_keys.h"

static const char *outdir;

static void die(const char *what, const struct arca_err *err)
{
	fprintf(stderr, "gen_vectors: %s: %s\n", what, err ? err->msg : "failed");
	exit(1);
}

static void put(const char *name, const void *data, size_t n)
{
	char *p = fs_join(outdir, name);
	struct arca_err err = { 0 };
	if (p == NULL || fs_write_file(p, data, n, 0644, 0, &err) != 0)
		die(name, &err);
	printf("wrote %s (%zu bytes)\n", p, n);
	free(p);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_vectors DIR\n");
		return 2;
	}
	outdir = argv[1];
	if (acrypto_setup() != 0)
		die("sodium_init", NULL);
	struct arca_public_keys pub;
	struct arca_ingest_keys *ik = acrypto_ingest_keys_alloc();
	struct arca_restore_key *rk = acrypto_restore_key_alloc();
	if (ik == NULL || rk == NULL)
		die("sodium_malloc", NULL);
	vk_keys(&pub, ik, rk);
	struct arca_err err = { 0 };
	struct abuf b = ABUF_INIT, obj = ABUF_INIT;
	char *scratch = strdup("/tmp/arca-gen-vectors-XXXXXX");
	if (scratch == NULL || mkdtemp(scratch) == NULL)
		die("mkdtemp", NULL);

	/* key files */
	char *p = fs_join(scratch, "ingest.key");
	if (ingestkey_write(p, pub.repo_id, ik, &err) != 0 || fs_read_file(p, 4096, &b, &err) != 0)
		die("ingest.key", &err);
	put("ingest.key", b.data, b.len);
	unlink(p);
	free(p);
	p = fs_join(scratch, "restore.key");
	if (keyfile_write(p, rk, VK_PASSPHRASE, true, &err) != 0 ||
	    fs_read_file(p, 4096, &b, &err) != 0)
		die("restore.key", &err);
	put("restore.key", b.data, b.len);
	unlink(p);
	free(p);

	/* object id of object 1 */
	uint8_t id[ARCA_ID_LEN];
	vk_object(1, &obj);
	acrypto_object_id(ik, obj.data, obj.len, id);
	put("object-id.bin", id, sizeof(id));
	ik->id_alg = ARCA_ID_HMAC_SHA256;   /* a repository whose config says 2 */
	acrypto_object_id(ik, obj.data, obj.len, id);
	ik->id_alg = ARCA_ID_BLAKE2B;
	put("object-id-hmac-sha256.bin", id, sizeof(id));

	/* one entry (header + AEAD output) at offset 112 under the fixed key */
	uint8_t key[ARCA_PACK_KEY_LEN];
	vk_aead_key(key);
	for (int c = ARCA_CIPHER_XCHACHA20POLY1305; c <= ARCA_CIPHER_AES256GCM; c++) {
		if (!acrypto_cipher_supported((enum arca_cipher)c)) {
			fprintf(stderr, "gen_vectors: cipher %d unsupported here, skipped\n", c);
			continue;
		}
		uint8_t e[PACK_ENTRY_HEADER_LEN + 14 + ARCA_AEAD_TAG_LEN] = { 0 };
		e[0] = OBJ_BLOB;
		e[1] = ARCA_COMP_NONE;
		put_u32le(e + 4, 14 + ARCA_AEAD_TAG_LEN);
		put_u64le(e + 8, 14);
		memcpy(e + 16, id, ARCA_ID_LEN);
		if (acrypto_aead_encrypt((enum arca_cipher)c, key, PACK_HEADER_LEN, e,
					 PACK_ENTRY_HEADER_LEN, obj.data, obj.len,
					 e + PACK_ENTRY_HEADER_LEN) != 0)
			die("aead", NULL);
		put(c == ARCA_CIPHER_XCHACHA20POLY1305 ? "entry-xchacha20poly1305.bin"
						       : "entry-aes256gcm.bin", e, sizeof(e));
	}

	/* a pack (random pack key, written down so the test can check it) */
	struct backend *be = NULL;
	if (backend_local_open(scratch, &be, &err) != 0)
		die("backend", &err);
	struct pack_writer *pw = NULL;
	struct compressor *cz = compressor_new(3);
	if (cz == NULL || pack_writer_new(scratch, ARCA_CIPHER_XCHACHA20POLY1305, &pub, &pw, &err) != 0)
		die("pack writer", &err);
	for (int i = 0; i < VK_OBJECTS; i++) {
		uint8_t type = vk_object(i, &obj), comp;
		acrypto_object_id(ik, obj.data, obj.len, id);
		if (compressor_run(cz, NULL, obj.data, obj.len, &b, &comp) != 0 ||
		    pack_writer_add(pw, type, comp, id, b.data, b.len, obj.len, &err) != 0)
			die("pack add", &err);
	}
	uint8_t hash[ARCA_ID_LEN];
	uint64_t size;
	const char *tmp;
	if (pack_writer_finish(pw, hash, &size, &tmp, &err) != 0 ||
	    fs_read_file(tmp, 1 << 20, &b, &err) != 0)
		die("pack finish", &err);
	put("pack.bin", b.data, b.len);
	struct pack_header hdr;
	if (pack_parse_header(b.data, b.len, &hdr, &err) != 0 ||
	    pack_open_key(&hdr, rk, key, &err) != 0)
		die("pack key", &err);
	put("pack.key", key, sizeof(key));
	char name[80];
	pack_name(hash, name);
	abuf_reset(&b);
	abuf_printf(&b, "%s\n", name);
	put("pack.name", b.data, b.len);
	pack_writer_free(pw);
	compressor_free(cz);

	/* the log: three entries and the state after them */
	struct mlog_state st;
	mlog_state_init(&st);
	for (int i = 0; i < VK_LOG_ENTRIES; i++) {
		uint64_t t, seq;
		uint8_t kind = vk_log_entry(i, &obj, &t);
		if (mlog_append(be, &st, ik, pub.sign_pk, kind, obj.data, obj.len, t,
				NULL, NULL, &seq, &err) != 0)
			die("mlog_append", &err);
		char lname[48], fname[32];
		mlog_name(seq, lname);
		if (be->ops->get(be, lname, 1 << 20, &b, &err) != 0)
			die(lname, &err);
		snprintf(fname, sizeof(fname), "log-%d.bin", i);
		put(fname, b.data, b.len);
	}
	if (mlog_state_encode(&st, &b) != 0)
		die("state", NULL);
	put("log-state.bin", b.data, b.len);
	backend_close(be);

	/* journal: two records in a mark payload, the commit mark, an envelope */
	{
		uint8_t cid[32], eid[32];
		vk_journal_ids(cid, eid);
		struct journal_rec ra = { .time_ns = VK_JOURNAL_TIME, .direction = JOURNAL_DIR_IN,
					  .content_type = OBJ_BLOB, .size = VK_JOURNAL_SIZE };
		memcpy(ra.content_id, cid, 32);
		memcpy(ra.envelope_id, eid, 32);
		struct journal_rec rb = ra;
		snprintf(ra.account, sizeof(ra.account), "alice@example.test");
		rb.direction = JOURNAL_DIR_OUT;
		snprintf(rb.account, sizeof(rb.account), "dave@example.test");
		struct abuf m = ABUF_INIT;
		if (abuf_add_u32(&m, 2) || journal_rec_encode(&ra, &m) || journal_rec_encode(&rb, &m))
			die("journal records", NULL);
		put("journal-mark-payload.bin", m.data, m.len);
		uint8_t prefix[112], h[PACK_ENTRY_HEADER_LEN] = { PACK_MARK_TYPE };
		vk_journal_prefix(prefix);
		put_u32le(h + 4, (uint32_t)m.len);
		put_u64le(h + 8, m.len);
		struct acrypto_hash_state hs;
		acrypto_hash_init(&hs);
		acrypto_hash_update(&hs, prefix, sizeof(prefix));
		acrypto_hash_update(&hs, h, 16);
		acrypto_hash_update(&hs, m.data, m.len);
		acrypto_hash_final(&hs, h + 16);
		struct abuf mk = ABUF_INIT;
		abuf_add(&mk, h, sizeof(h));
		abuf_add(&mk, m.data, m.len);
		put("journal-mark.bin", mk.data, mk.len);
		struct journal_rcpt rc[2] = {
			{ "alice=example.test@journal.invalid", "alice@example.test", JOURNAL_DIR_IN },
			{ "dave=example.test@out.journal.invalid", "dave@example.test", JOURNAL_DIR_OUT },
		};
		struct journal_envelope env = { .time_ns = VK_JOURNAL_TIME, .client = "127.0.0.1:4321",
						.helo = "mx.example.test", .mail_from = "dave@example.test",
						.flags = JOURNAL_F_8BITMIME, .rcpts = rc, .nrcpt = 2,
						.content_type = OBJ_BLOB, .size = VK_JOURNAL_SIZE };
		memcpy(env.content_id, cid, 32);
		struct abuf e = ABUF_INIT;
		if (journal_envelope_encode(&env, &e))
			die("journal envelope", NULL);
		put("journal-envelope.bin", e.data, e.len);
		abuf_release(&m);
		abuf_release(&mk);
		abuf_release(&e);
	}

	/* pull: a SNAPSHOT root of version 2 (one Sieve script), an alarm and
	 * an alarm-clear payload */
	{
		uint8_t page[32], sieve[32], suspect[32];
		vk_snapshot_ids(page, sieve, suspect);
		struct snapshot *s = snapshot_new(VK_SNAP_ACCOUNT, "imap");
		if (s == NULL || snapshot_add_subscription(s, "INBOX") != 0)
			die("snapshot", NULL);
		s->time_ns = VK_SNAP_TIME;
		s->layout = 1;
		struct snap_folder *f = snapshot_add_folder(s, "INBOX");
		if (f == NULL || snap_folder_keyword(f, "$Work") != 0)
			die("snapshot folder", NULL);
		f->attrs = SNAP_FOLDER_SELECTABLE | SNAP_FOLDER_SUBSCRIBED;
		f->uidvalidity = 1700000000u;
		f->nextuid = 3;
		f->highestmodseq = 7;
		f->message_count = 2;
		f->bytes = 1234;
		f->pages = calloc(1, sizeof(*f->pages));
		if (f->pages == NULL)
			die("snapshot page", NULL);
		memcpy(f->pages[0].id, page, 32);
		f->pages[0].count = 2;
		f->npages = 1;
		f = snapshot_add_folder(s, "Archive");
		if (f == NULL)
			die("snapshot folder", NULL);
		free(f->special_use);
		f->special_use = strdup("\\Archive");
		f->attrs = SNAP_FOLDER_SELECTABLE;
		f->uidvalidity = 1700000001u;
		f->nextuid = 1;
		f->highestmodseq = 1;
		struct snap_sieve sv = { .name = "vacation", .active = true, .content_type = OBJ_BLOB,
					 .size = VK_SNAP_SIEVE_SIZE };
		memcpy(sv.content_id, sieve, 32);
		abuf_reset(&b);
		if (f->special_use == NULL || snapshot_add_sieve(s, &sv) != 0 ||
		    snapshot_encode_root(s, &b) != 0)
			die("snapshot root", NULL);
		put("snapshot-v2.bin", b.data, b.len);
		snapshot_free(s);

		struct alarm_suspect sus = { .account = VK_ALARM_ACCOUNT };
		memcpy(sus.root, suspect, 32);
		struct alarm a = { .kind = ALARM_MASS_DELETION, .account = VK_ALARM_ACCOUNT,
				   .text = VK_ALARM_TEXT, .suspects = &sus, .nsuspects = 1 };
		if (alarm_encode(&a, &b) != 0)
			die("alarm payload", NULL);
		put("alarm-payload.bin", b.data, b.len);
		if (alarm_clear_encode(VK_ALARM_CLEARS, VK_ALARM_REASON, &b) != 0)
			die("alarm-clear payload", NULL);
		put("alarm-clear-payload.bin", b.data, b.len);
	}

	/* a flag overlay of one record (random salt: the test decodes it
	 * from the spec with the fixed restore key) */
	{
		char *op = fs_join(scratch, "overlay");
		struct overlay *ov = NULL;
		char warn[ARCA_ERR_MSG_MAX];
		char *kw[1] = { VK_OVL_KEYWORD };
		struct overlay_msg m[2] = {
			{ .uid = 3, .flags = 1 | 4, .keywords = 1, .modseq = 42 },
			{ .uid = 7, .flags = 0, .keywords = 0, .modseq = 42 },
		};
		if (op == NULL || overlay_open(op, rk, true, &ov, warn, &err) != 0 ||
		    overlay_record(ov, VK_OVL_ACCOUNT, VK_OVL_FOLDER, VK_OVL_UIDVALIDITY, kw, 1, m, 2,
				   VK_OVL_TIME, &err) != 0 ||
		    fs_read_file(op, 4096, &b, &err) != 0)
			die("overlay", &err);
		overlay_free(ov);
		put("overlay.bin", b.data, b.len);
		unlink(op);
		free(op);
	}

	/* leave no scratch behind */
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "chmod -R u+w %s && rm -rf %s", scratch, scratch);
	if (system(cmd) != 0)
		fprintf(stderr, "gen_vectors: could not remove %s\n", scratch);
	free(scratch);
	abuf_release(&b);
	abuf_release(&obj);
	acrypto_ingest_keys_free(ik);
	acrypto_restore_key_free(rk);
	return 0;
}
