/*
 * Fuzz a folder record with all its messages (lib/snapshot.c,
 * snap_folder_decode_full: pull's per-folder cache entry), and the same
 * input as the record without messages (snap_folder_decode: the ingest
 * cache's).  An accepted record is consistent (limits, page counts adding
 * up, keyword bits within the folder's table, flags and nanoseconds in
 * range) and encodes back to the input byte for byte; a rejected one
 * leaves a snapshot that snapshot_free still frees whole.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "pack.h"
#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_folder(const struct snap_folder *f)
{
	if (!f->name || !f->special_use || !f->guid || !f->uidlist_extra ||
	    strlen(f->name) > SNAP_NAME_MAX || strlen(f->special_use) > 64 || strlen(f->guid) > 64 ||
	    strlen(f->uidlist_extra) > SNAP_FIELD_MAX ||
	    (f->attrs & ~(uint32_t)(SNAP_FOLDER_SELECTABLE | SNAP_FOLDER_SUBSCRIBED)) ||
	    f->nkeywords > SNAP_KEYWORDS_MAX || f->message_count > SNAP_MESSAGES_MAX ||
	    f->npages > f->message_count)
		abort();
	for (size_t k = 0; k < f->nkeywords; k++)
		if (f->keywords[k] == NULL || strlen(f->keywords[k]) > 256)
			abort();
	uint64_t sum = 0;
	for (size_t p = 0; p < f->npages; p++) {
		if (f->pages[p].count == 0)
			abort();
		sum += f->pages[p].count;
	}
	if (sum != f->message_count)
		abort();
	for (size_t i = 0; i < f->nmsgs; i++) {
		const struct snap_msg *m = &f->msgs[i];
		if (!m->base || !m->uidlist_ext || strlen(m->base) > SNAP_FIELD_MAX ||
		    strlen(m->uidlist_ext) > SNAP_FIELD_MAX ||
		    (m->content_type != OBJ_BLOB && m->content_type != OBJ_CHUNKLIST) ||
		    m->date_nsec < 0 || m->date_nsec >= 1000000000 || (m->flags >> 27) != 0 ||
		    (f->nkeywords < 64 && (m->keywords >> f->nkeywords) != 0))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct abuf b = ABUF_INIT;
	struct snapshot *s = snapshot_new("fuzz", "imap");
	if (s == NULL)
		abort();
	int rc = snap_folder_decode_full(data, size, s);
	if (rc == 0) {
		if (s->nfolders != 1)
			abort();
		check_folder(&s->folders[0]);
		if (snap_folder_encode_full(&s->folders[0], &b) != 0 || b.len != size ||
		    memcmp(b.data, data, size) != 0)
			abort();
	} else if (rc != ARCA_EFORMAT && rc != ARCA_ENOMEM) {
		abort();
	}
	snapshot_free(s);   /* after a failure too: a half-decoded folder frees whole */

	s = snapshot_new("fuzz", "cache");
	if (s == NULL)
		abort();
	rc = snap_folder_decode(data, size, s);
	if (rc == 0) {
		if (s->nfolders != 1 || s->folders[0].nmsgs != 0)
			abort();
		check_folder(&s->folders[0]);
		abuf_reset(&b);
		if (snap_folder_encode(&s->folders[0], &b) != 0 || b.len != size ||
		    memcmp(b.data, data, size) != 0)
			abort();
	} else if (rc != ARCA_EFORMAT && rc != ARCA_ENOMEM) {
		abort();
	}
	snapshot_free(s);
	abuf_release(&b);
	return 0;
}
