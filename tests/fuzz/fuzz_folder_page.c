/*
 * Fuzz snapshot_decode_page (docs/format/objects.md, "FOLDER_PAGE").
 *
 * Input: one byte whose value mod 65 is the folder's keyword count (the page
 * decoder rejects keyword bits beyond the folder's table), then the page.
 * The folder is built the way snapshot_load builds it (snapshot_new,
 * snapshot_add_folder, snap_folder_keyword).  An accepted page must give
 * valid records, and encoding them again from the spec must give back the
 * input byte for byte (one encoding per value).  A page is decoded twice into
 * the same folder, as snapshot_load_msgs does with consecutive pages.
 */
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "pack.h"
#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int enc_page(const struct snap_msg *m, size_t n, struct abuf *b)
{
	int rc = abuf_add_u8(b, 1);
	rc = rc ? rc : abuf_add_varint(b, n);
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = abuf_add_varint(b, m[i].uid);
		rc = rc ? rc : abuf_add_varint(b, m[i].modseq);
		rc = rc ? rc : abuf_add_u8(b, m[i].content_type);
		rc = rc ? rc : abuf_add(b, m[i].content_id, ARCA_ID_LEN);
		rc = rc ? rc : abuf_add_varint(b, m[i].size);
		rc = rc ? rc : abuf_add_varint(b, zigzag(m[i].date_sec));
		rc = rc ? rc : abuf_add_varint(b, (uint64_t)m[i].date_nsec);
		const char *info = m[i].uidlist_info ? m[i].uidlist_info : "";
		rc = rc ? rc : abuf_add_varint(b, m[i].flags | (*info ? 1u << 27 : 0));
		rc = rc ? rc : abuf_add_varint(b, m[i].keywords);
		rc = rc ? rc : abuf_add_str(b, m[i].base);
		rc = rc ? rc : abuf_add_str(b, m[i].uidlist_ext);
		rc = rc ? rc : abuf_add_u8(b, m[i].in_new ? 1 : 0);
		if (*info)   /* field 13, present with flags bit 27 */
			rc = rc ? rc : abuf_add_str(b, info);
	}
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t nk = data[0] % (SNAP_KEYWORDS_MAX + 1);
	const uint8_t *page = data + 1;
	size_t len = size - 1;

	struct snapshot *s = snapshot_new("fuzz@example.org", "maildir");
	if (s == NULL)
		abort();
	struct snap_folder *f = snapshot_add_folder(s, "INBOX");
	if (f == NULL)
		abort();
	for (size_t k = 0; k < nk; k++) {
		char name[16];
		snprintf(name, sizeof(name), "kw%zu", k);
		if (snap_folder_keyword(f, name) != (int)k)
			abort();
	}
	if (snapshot_decode_page(page, len, f) == 0) {
		if (f->nmsgs > 4096)
			abort();
		for (size_t i = 0; i < f->nmsgs; i++) {
			const struct snap_msg *m = &f->msgs[i];
			if (m->base == NULL || m->uidlist_ext == NULL || m->uidlist_info == NULL ||
			    (m->uidlist_info[0] != '\0' && m->uidlist_info[0] != ':') ||
			    strchr(m->uidlist_info, '/') != NULL ||
			    (m->content_type != OBJ_BLOB && m->content_type != OBJ_CHUNKLIST) ||
			    m->date_nsec < 0 || m->date_nsec >= 1000000000 || m->flags >> 27 ||
			    (nk < 64 && m->keywords >> nk))
				abort();
		}
		struct abuf b = ABUF_INIT;
		if (enc_page(f->msgs, f->nmsgs, &b) != 0 || b.len != len ||
		    (len && memcmp(b.data, page, len) != 0))
			abort();   /* decode/encode must round-trip */
		/* a second page appends after the first */
		size_t n1 = f->nmsgs;
		if (snapshot_decode_page(b.data, b.len, f) != 0 || f->nmsgs != 2 * n1)
			abort();
		for (size_t i = 0; i < n1; i++)
			if (strcmp(f->msgs[i].base, f->msgs[n1 + i].base) != 0 ||
			    f->msgs[i].keywords != f->msgs[n1 + i].keywords ||
			    f->msgs[i].date_sec != f->msgs[n1 + i].date_sec ||
			    strcmp(f->msgs[i].uidlist_info, f->msgs[n1 + i].uidlist_info) != 0)
				abort();
		abuf_release(&b);
	}
	snapshot_free(s);   /* also frees records of a partly decoded page */
	return 0;
}
