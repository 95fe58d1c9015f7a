/*
 * restore_imap_journal.c - `arca restore imap`: mail arcad journaled after
 * the snapshot, appended to INBOX (mail in, unseen) and the Sent folder
 * (mail out, seen) as `arca restore maildir` adds it (journal_restore.h);
 * never twice (docs/restore-imap.md, "Journaled mail").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "fsutil.h"
#include "journal_restore.h"
#include "restore_imap.h"
#include "banned.h"

void rimap_journal_name(const struct journal_rec *jr, char *buf, size_t cap)
{
	char t[40];
	cli_format_time(jr->time_ns, t);
	snprintf(buf, cap, "the message journaled at %s (%llu bytes)", t, (unsigned long long)jr->size);
}

static int cmp_hash16(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* Where journaled mail out goes: the snapshot's \Sent folder, else the
 * server's, else "Sent" (created, with the special-use where the server
 * takes it). */
static const char *sent_folder(struct run *u, const struct snapshot *s)
{
	for (size_t i = 0; s && i < s->nfolders; i++)
		if (strstr(s->folders[i].special_use, "\\Sent") != NULL)
			return s->folders[i].name;
	for (size_t i = 0; i < u->listed.n; i++)
		if (strcasecmp(u->listed.v[i].special, "\\Sent") == 0 && u->listed.v[i].name != NULL &&
		    u->listed.v[i].selectable)
			return u->listed.v[i].name;
	return "Sent";
}

/*
 * The journaled messages of one direction into their folder.  A message is
 * not appended when its key is one of the snapshot's recent messages (the
 * snapshot has it), when the folder holds one with its exact key (an
 * earlier run appended it), or when the folder holds one with its
 * Message-ID (the rebuilt server got it delivered meanwhile).
 */
static int journal_into(struct run *u, const char *folder, bool out_dir, const struct journal_rec *recs,
			size_t n, struct arca_err *err)
{
	const struct opts *o = u->o;
	struct abuf wire = ABUF_INIT, msg = ABUF_INIT;
	struct iapp_holdings h = { 0 };
	uint8_t (*ids)[16] = NULL;
	size_t nids = 0;
	int64_t *dates = NULL;
	struct slot *b = NULL;
	size_t cnt = 0;
	for (size_t i = 0; i < n; i++)
		cnt += (recs[i].direction == JOURNAL_DIR_OUT) == out_dir;
	if (cnt == 0)
		return 0;
	struct folder_report *rep = &u->reports[u->nreports++];
	*rep = (struct folder_report){ .name = folder, .journal = true };
	int rc = 0;
	if (iapp_wire_name(folder, u->caps.delimiter, &wire) != 0) {
		rimap_note(&u->failed, "%s: folder %s: its name can't be made on this server: %zu journaled messages not restored",
		     u->target, folder, cnt);
		rep->failed += cnt;
		goto out;
	}
	const char *w = (const char *)wire.data;
	struct iapp_folder *have = iapp_folders_find(&u->listed, w);
	if ((have == NULL || !have->selectable) && strcmp(folder, "INBOX") != 0) {
		struct iapp_line ans;
		rc = iapp_create(&u->io, &u->caps, w, out_dir ? "\\Sent" : "", &ans, err);
		if (rc)
			goto out;
		if (ans.status != IAPP_OK) {
			rimap_note(&u->failed, "%s: folder %s: CREATE refused (%s): %zu journaled messages not restored",
			     u->target, folder, ans.text, cnt);
			rep->failed += cnt;
			goto out;
		}
		u->created++;
		rep->created = true;
		/* a folder a client is to see, as the mail server's own Sent is */
		rc = rimap_subscribe(u, folder, w, true, err);
		if (rc)
			goto out;
	}
	/* what the folder holds: exact keys, and its Message-IDs */
	dates = malloc(cnt * sizeof(*dates));
	if (dates == NULL) {
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		goto out;
	}
	size_t nd = 0;
	for (size_t i = 0; i < n; i++)
		if ((recs[i].direction == JOURNAL_DIR_OUT) == out_dir)
			dates[nd++] = (int64_t)(recs[i].time_ns / 1000000000ull);
	qsort(dates, nd, sizeof(*dates), rimap_cmp_i64);
	rc = iapp_holdings_read(u->c, w, dates, nd, &h, err);
	if (rc)
		goto out;
	ids = malloc((h.n ? h.n : 1) * sizeof(*ids));
	if (ids == NULL) {
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < h.n; i++)
		if (h.v[i].kind == 1)
			memcpy(ids[nids++], h.v[i].hash, 16);
	qsort(ids, nids, sizeof(*ids), cmp_hash16);
	size_t cap = u->caps.multiappend ? o->batch : 1;
	b = calloc(cap, sizeof(*b));
	if (b == NULL) {
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		goto out;
	}
	size_t nb = 0;
	uint64_t bytes = 0, before = u->appended;
	rc = rimap_spool_reset(u, 0, err);
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct journal_rec *jr = &recs[i];
		if ((jr->direction == JOURNAL_DIR_OUT) != out_dir)
			continue;
		if (nb > 0 && (nb == cap || bytes + jr->size * 2 > BATCH_BYTES)) {
			rc = rimap_flush_batch(u, NULL, w, b, nb, rep, err);
			nb = 0;
			bytes = 0;
			if (rc)
				break;
		}
		off_t off = lseek(u->spool, 0, SEEK_END);
		if (off < 0) {
			rc = arca_err_errno(err, ARCA_EIO, errno, "the restore spool (memfd)");
			break;
		}
		uint8_t key[ARCA_ID_LEN];
		bool skip = false;
		struct arca_err e = { 0 };
		int g = journal_restore_render(u->r, jr, u->target, u->keys, &msg, key, &skip, &e);
		if (g == 0 && skip) {
			u->j_already++;
			rep->already++;
			continue;
		}
		if (g == 0)
			g = fs_write_all(u->spool, msg.data, msg.len, "the restore spool (memfd)", &e);
		struct iapp_content ct;
		if (g == 0)
			g = iapp_content_scan(u->spool, (uint64_t)off, msg.len,
					      (int64_t)(jr->time_ns / 1000000000ull), &ct, &e);
		if (g) {
			char nm[200];
			rimap_journal_name(jr, nm, sizeof(nm));
			rimap_note(&u->failed, "%s: %s: not restored: %s", u->account, nm, e.msg);
			rep->failed++;
			rc = rimap_spool_reset(u, (uint64_t)off, err);
			continue;
		}
		struct slot one = { .jr = jr, .has_key = true };
		memcpy(one.key, key, sizeof(one.key));
		bool held = iapp_holdings_take(&h, &ct.key) ||
			    (ct.key.kind == 1 && bsearch(ct.key.hash, ids, nids, sizeof(*ids), cmp_hash16));
		/* a second copy in the journal for this folder: the batch may
		 * hold the first (earlier batches' keys are in u->jkeys once
		 * stored) */
		bool again = idset_has(&u->jkeys, key);
		for (size_t k = 0; k < nb && !again; k++)
			again = memcmp(b[k].key, key, sizeof(key)) == 0;
		if (held || again) {
			u->j_already++;
			rep->already++;
			rc = held ? rimap_slot_key_keep(u, &one, err) : 0;
			if (rc == 0)
				rc = rimap_spool_reset(u, (uint64_t)off, err);
			continue;
		}
		struct slot *sl = &b[nb++];
		*sl = one;
		sl->m = (struct iapp_msg){ .fd = u->spool, .off = (uint64_t)off, .content = ct,
					   .flags = out_dir ? 1u << ('S' - 'A') : 0,
					   .date = (int64_t)(jr->time_ns / 1000000000ull) };
		bytes += ct.wire_len;
	}
	if (rc == 0)
		rc = rimap_flush_batch(u, NULL, w, b, nb, rep, err);
	u->j_appended += u->appended - before;
out:
	/* u->jkeys: what this folder got from the journal in this run (mail
	 * to oneself is journaled in and out: one copy for INBOX, one for
	 * Sent); empty again for the next folder */
	idset_free(&u->jkeys);
	free(b);
	free(ids);
	free(dates);
	iapp_holdings_release(&h);
	abuf_release(&wire);
	abuf_release(&msg);
	return rc;
}

int rimap_restore_journal(struct run *u, const struct snapshot *s, const struct journal_rec *recs,
			   size_t n, struct arca_err *err)
{
	int rc = journal_into(u, "INBOX", false, recs, n, err);
	return rc ? rc : journal_into(u, sent_folder(u, s), true, recs, n, err);
}

