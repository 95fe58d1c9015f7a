/*
 * pack.h - packs: the immutable files that hold every stored object.
 *
 * Layout (docs/format/pack.md):
 *   header  112 bytes: "ARCAPACK", version, cipher, repo id, sealed pack key
 *   entries 48-byte plaintext entry header + AEAD ciphertext, back to back
 *   trailer the table of entries (plaintext, so the index can be rebuilt
 *           without any key), then a 24-byte footer
 * A pack's name is the BLAKE2b-256 of the whole file, so anyone can check a
 * pack against the log without a key.  Each pack has its own random key,
 * sealed to the repository's public key: the writer forgets it when the
 * pack is sealed, so the ingest host can't read back what it wrote.
 */
#ifndef ARCA_PACK_H
#define ARCA_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "backend.h"
#include "buf.h"
#include "crypto.h"

#define PACK_MAGIC "ARCAPACK"
#define PACK_VERSION 1
#define PACK_HEADER_LEN 112
#define PACK_ENTRY_HEADER_LEN 48
#define PACK_TRAILER_ENTRY_LEN 56
#define PACK_FOOTER_LEN 24
#define PACK_FOOTER_MAGIC "ARCAPEND"
/* A writer seals its pack once it holds this much. */
#define PACK_TARGET_SIZE (16u << 20)

/* Object types (docs/format/objects.md). */
enum obj_type {
	OBJ_BLOB = 1,        /* a whole message, or a file */
	OBJ_CHUNK = 2,       /* a piece of a large message */
	OBJ_CHUNKLIST = 3,   /* the ordered chunk ids of a large message */
	OBJ_FOLDER_PAGE = 4, /* message records of a folder */
	OBJ_SNAPSHOT = 5,    /* a snapshot's root */
	OBJ_DICT = 6,        /* a zstd dictionary (docs/format/objects.md) */
	OBJ_JOURNAL = 7,     /* a journaled message's envelope (docs/format/journal.md) */
};
#define OBJ_TYPE_MAX 7

struct pack_entry {
	uint8_t id[ARCA_ID_LEN];
	uint8_t type;
	uint8_t comp;
	uint32_t stored_len;  /* ciphertext bytes, tag included */
	uint64_t offset;      /* of the entry header in the pack */
	uint64_t raw_len;     /* plaintext size before compression */
};

struct pack_header {
	uint32_t version;
	uint8_t cipher;
	uint8_t repo_id[ARCA_REPO_ID_LEN];
	uint8_t sealed_key[ARCA_SEALED_KEY_LEN];
};

/* ---- writing ---- */
struct pack_writer;

/* Creates a temporary file in tmpdir; nothing is visible until finish. */
int pack_writer_new(const char *tmpdir, enum arca_cipher cipher,
		    const struct arca_public_keys *pub, struct pack_writer **pw_r,
		    struct arca_err *err);
/* Append one object: `data` is the stored form (compressed per `comp`),
 * raw_len the size before compression.  Encrypts with the pack key. */
int pack_writer_add(struct pack_writer *pw, uint8_t type, uint8_t comp,
		    const uint8_t id[ARCA_ID_LEN], const void *data, size_t len,
		    uint64_t raw_len, struct arca_err *err);
uint64_t pack_writer_size(const struct pack_writer *pw);
/* True once a write or fsync failed: the writer refuses everything after. */
bool pack_writer_failed(const struct pack_writer *pw);
size_t pack_writer_count(const struct pack_writer *pw);
/* Entries added so far (valid until the next add or free). */
const struct pack_entry *pack_writer_entries(const struct pack_writer *pw);
/* Writes the trailer, fsyncs, wipes the key.  *tmp_path_r stays owned by the
 * writer (valid until free); hand it to backend put_file. */
int pack_writer_finish(struct pack_writer *pw, uint8_t hash_r[ARCA_ID_LEN],
		       uint64_t *size_r, const char **tmp_path_r,
		       struct arca_err *err);
/* Frees; removes the temporary file if it is still there. */
void pack_writer_free(struct pack_writer *pw);
/* Frees but leaves the temporary file (a journal segment to recover). */
void pack_writer_forget(struct pack_writer *pw);

/* ---- journal segments (docs/format/journal.md) ----
 * A segment is a pack written in the open: after each group of messages the
 * writer appends a commit mark (an entry header with type PACK_MARK_TYPE,
 * its id field a BLAKE2b-256 check of every byte before it, followed by a
 * plaintext payload) and syncs.  Marks are not in the trailer.  After a
 * crash, pack_recover keeps everything up to the last valid mark, cuts the
 * rest (never acknowledged) and seals the file. */
#define PACK_MARK_TYPE 0x80
#define PACK_MARK_MAX (1u << 20)
#define PACK_RECOVER_MAX (1ull << 30)
int pack_writer_mark(struct pack_writer *pw, const void *payload, size_t len,
		     struct arca_err *err);
/* fdatasync; a failure poisons the writer (never retried). */
int pack_writer_sync(struct pack_writer *pw, struct arca_err *err);
const char *pack_writer_path(const struct pack_writer *pw);

struct pack_recovered {
	bool empty;              /* nothing committed: the file can go */
	uint8_t hash[ARCA_ID_LEN];
	uint64_t size;
	size_t count;            /* objects kept */
	uint64_t dropped;        /* bytes cut after the last commit mark */
	struct abuf marks;       /* each kept mark: u32le length + payload */
};
/* Seals the segment at `path` in place (see above).  On success with
 * !empty, the file is a complete pack named by ->hash. */
int pack_recover(const char *path, struct pack_recovered *pr, struct arca_err *err);
void pack_recovered_release(struct pack_recovered *pr);

/* ---- reading ---- */

/* "data/ab/<64 hex>.pack" for a pack hash. */
void pack_name(const uint8_t hash[ARCA_ID_LEN], char out[80]);
/* Parses a name made by pack_name back into its hash. */
int pack_name_parse(const char *name, uint8_t hash_r[ARCA_ID_LEN]);

/* Reads header, footer and trailer of a pack of known size (checked against
 * the file).  *entries_r is malloc'd. */
int pack_read_index(struct backend *be, const char *name, uint64_t size,
		    struct pack_header *hdr_r, struct pack_entry **entries_r,
		    size_t *count_r, struct arca_err *err);

/* Parse and validate a pack's fixed header / trailer from bytes (fuzzed). */
int pack_parse_header(const uint8_t *p, size_t len, struct pack_header *hdr_r,
		      struct arca_err *err);
int pack_parse_trailer(const uint8_t *p, size_t len, uint64_t trailer_off,
		       struct pack_entry **entries_r, size_t *count_r,
		       struct arca_err *err);

/* Opens the pack key with the restore key. */
int pack_open_key(const struct pack_header *hdr, const struct arca_restore_key *rk,
		  uint8_t key_r[ARCA_PACK_KEY_LEN], struct arca_err *err);

/*
 * Reads one object's stored bytes (entry header + ciphertext) from the
 * backend, checks the entry header against `e`, decrypts and decompresses it
 * into out.  When `ik` is given, also checks that the id is the keyed hash of
 * the plaintext.
 */
int pack_read_object(struct backend *be, const char *name, uint8_t cipher,
		     const uint8_t key[ARCA_PACK_KEY_LEN], const struct pack_entry *e,
		     const struct arca_ingest_keys *ik, struct abuf *out,
		     struct arca_err *err);

/* The same on bytes already read: `stored` = entry header + ciphertext. */
int pack_decode_object(uint8_t cipher, const uint8_t key[ARCA_PACK_KEY_LEN],
		       const struct pack_entry *e, const uint8_t *stored,
		       size_t stored_len, const struct arca_ingest_keys *ik,
		       struct abuf *out, struct arca_err *err);

#endif
