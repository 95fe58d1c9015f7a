/*
 * arca restore imap --repo REPO --restore-key KEYFILE --host H --port P
 *     [--tls|--starttls] (--master-user U --password-file F | --credentials F)
 *     (--account A ... | --all) [--snapshot ID | --at TIME] [--folder NAME [--uid N]]
 *     [--sieve-port P] [--to-account B] [--no-journal] [--json]
 *
 * Client-side restore into any IMAP server (docs/restore-imap.md): folders
 * created with their special-use and subscriptions, every message APPENDed
 * (MULTIAPPEND in batches when offered) with its flags, keywords and
 * INTERNALDATE, Sieve scripts over ManageSieve.  Idempotent: before
 * appending to a folder we read what it holds and skip what is there, so a
 * re-run after an interruption never duplicates a message.  Mail arcad
 * journaled after the snapshot goes to INBOX (mail in) and the Sent folder
 * (mail out), as `arca restore maildir` adds it (journal_restore.h).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sodium.h>

#include "buf.h"
#include "cli.h"
#include "overlay.h"
#include "commands.h"
#include "faultinject.h"
#include "fsutil.h"
#include "imap_append.h"
#include "imap_conn.h"
#include "imap_opts.h"
#include "journal_restore.h"
#include "managesieve.h"
#include "pack.h"
#include "repo.h"
#include "restore_imap.h"
#include "restore_many.h"
#include "snapshot.h"
#include "banned.h"

static const char USAGE[] =
	"arca restore imap --repo REPO --restore-key KEYFILE --host HOST --port PORT\n"
	"                  [--tls | --starttls] [--ca-file PEM] [--insecure]\n"
	"                  (--master-user USER --password-file FILE | --credentials FILE)\n"
	"                  (--account ACCOUNT ... | --all) [--snapshot ID | --at TIME]\n"
	"                  [--folder NAME [--uid N]] [--sieve-port PORT] [--to-account B]\n"
	"                  [--batch N] [--jobs N] [--no-journal] [--overlay FILE] [--json]\n\n"
	"Puts each account's snapshot (default: the latest, passing over suspect\n"
	"ones) back into an IMAP server as a client would: missing folders are\n"
	"created with their special-use and subscribed as they were, every message\n"
	"is APPENDed (MULTIAPPEND in batches when the server offers it) with its\n"
	"flags, keywords and INTERNALDATE.  The server gives new UIDs (IMAP can't\n"
	"set them: `arca restore dovecot` keeps them).  Idempotent: messages a\n"
	"folder already holds (same Message-ID, INTERNALDATE and size) are skipped,\n"
	"so an interrupted restore can simply be run again.\n"
	"Mail that arcad journaled for the account after the snapshot (and that\n"
	"neither the snapshot nor the folder holds) is appended too: mail in to\n"
	"INBOX, unseen; mail out to the Sent folder, seen.  An account known only\n"
	"from the journal gets its journaled mail.  --at also bounds the journal;\n"
	"--no-journal restores the snapshot alone.\n"
	"--overlay FILE (what arca serve-imap --overlay kept): messages get the flags\n"
	"and keywords users set while the vault served them.\n"
	"  --folder NAME      only this folder (as `arca ls` names it); --uid N: one message\n"
	"  --sieve-port P     also put the Sieve scripts back over ManageSieve and\n"
	"                     activate the active one (--sieve-tls none|starttls|tls)\n"
	"  --to-account B     restore one --account's snapshot into account B\n"
	"  --master-user U    log in as ACCOUNT<sep>U (--separator C, default '*')\n"
	"  --credentials F    no master user: lines \"ACCOUNT PASSWORD\"\n"
	"  --batch N          messages per MULTIAPPEND (default 100)\n"
	"  --jobs N           accounts restored at once, each over its own connection\n"
	"                     (worker processes; default 1)\n"
	"  --timeout S        network timeout per read (default 60)\n"
	"  --json             one JSON object per account on stdout\n"
	"Exit: 0 all restored, 3 some messages failed (listed), 1 error.";


static void sent_hook(void *ctx)
{
	(void)ctx;
	/* a test kills us here: the server has the message, we never saw OK */
	fault_crash_point();
}

void rimap_note(struct strv *v, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	(void)strv_add(v, buf, strlen(buf));
}

/* ---- the spool ---- */

int rimap_spool_reset(struct run *u, uint64_t to, struct arca_err *err)
{
	if (ftruncate(u->spool, (off_t)to) != 0 || lseek(u->spool, (off_t)to, SEEK_SET) < 0)
		return arca_err_errno(err, ARCA_EIO, errno, "the restore spool (memfd)");
	return 0;
}

/* A content object into memory (Sieve scripts). */
static int content_get(struct run *u, uint8_t type, const uint8_t *id, uint64_t max,
		       struct abuf *out, struct arca_err *err)
{
	abuf_reset(out);
	uint64_t size = 0;
	int rc = rimap_spool_reset(u, 0, err);
	if (rc == 0)
		rc = repo_get_stream(u->r, type, id, u->spool, "a Sieve script", &size, err);
	if (rc == 0 && size > max)
		rc = arca_err_set(err, ARCA_ELIMIT, "a Sieve script of %llu bytes", (unsigned long long)size);
	if (rc == 0 && abuf_reserve(out, (size_t)size + 1) != 0)
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	if (rc == 0 && size > 0 && pread(u->spool, out->data, (size_t)size, 0) != (ssize_t)size)
		rc = arca_err_errno(err, ARCA_EIO, errno, "reading the restore spool");
	if (rc == 0)
		out->len = (size_t)size;
	(void)rimap_spool_reset(u, 0, NULL);
	return rc;
}

/* ---- appending ---- */

static void msg_name(const struct snap_folder *f, const struct snap_msg *m, char *buf, size_t cap)
{
	if (m->uid)
		snprintf(buf, cap, "%s uid %u", f->name, m->uid);
	else
		snprintf(buf, cap, "%s message %s", f->name, m->base[0] ? m->base : "(no name)");
}

/* A message the server now holds: its key (if it has one) into u->keys
 * (a snapshot message: a journaled copy of it is not appended) or
 * u->jkeys (a journaled one: not appended twice to its folder).  Only
 * then: a message the server refused leaves its journaled copy free. */
int rimap_slot_key_keep(struct run *u, const struct slot *s, struct arca_err *err)
{
	/* a journaled message counts for its own folder only */
	struct idset *set = s->jr != NULL ? &u->jkeys : u->keys;
	if (!s->has_key || set == NULL)
		return 0;
	return idset_add(set, s->key) ? arca_err_set(err, ARCA_ENOMEM, "out of memory") : 0;
}

/* Send the batch; on a refused MULTIAPPEND, each message alone (the server
 * stored none of them), so the one it refuses is named. */
int rimap_flush_batch(struct run *u, const struct snap_folder *f, const char *wire,
		       struct slot *b, size_t n, struct folder_report *rep, struct arca_err *err)
{
	if (n == 0)
		return 0;
	struct iapp_msg *mv = malloc(n * sizeof(*mv));
	if (mv == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		mv[i] = b[i].m;
	struct iapp_line ans;
	int rc = iapp_append(&u->io, &u->caps, wire, mv, n, &ans, err);
	if (rc == 0 && ans.status == IAPP_OK) {
		rep->appended += n;
		u->appended += n;
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = rimap_slot_key_keep(u, &b[i], err);
	} else if (rc == 0) {
		for (size_t i = 0; i < n && rc == 0; i++) {
			if (n > 1)
				rc = iapp_append(&u->io, &u->caps, wire, &mv[i], 1, &ans, err);
			if (rc)
				break;
			if (ans.status == IAPP_OK) {
				rep->appended++;
				u->appended++;
				rc = rimap_slot_key_keep(u, &b[i], err);
				continue;
			}
			char nm[600];
			if (b[i].sm != NULL)
				msg_name(f, b[i].sm, nm, sizeof(nm));
			else
				rimap_journal_name(b[i].jr, nm, sizeof(nm));
			rimap_note(&u->failed, "%s: %s: the server answered %s", u->target, nm,
			     ans.text[0] ? ans.text : "NO");
			rep->failed++;
		}
	}
	free(mv);
	fault_crash_point();   /* a test may kill us between batches */
	if (rc == 0)
		rc = rimap_spool_reset(u, 0, err);
	return rc;
}

/* The message key (journal_restore.h) of the spool's bytes at [off,
 * off + len). */
static int spool_key(struct run *u, uint64_t off, uint64_t len, uint8_t key[ARCA_ID_LEN],
		     struct arca_err *err)
{
	if (len > SIZE_MAX - 1)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	uint8_t *p = malloc(len ? (size_t)len : 1);
	if (p == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	int rc = fs_pread_exact(u->spool, p, (size_t)len, off, "the restore spool (memfd)", err);
	if (rc == 0)
		mkey_of(p, (size_t)len, key);
	free(p);
	return rc;
}

int rimap_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int restore_messages(struct run *u, struct snap_folder *f, const char *wire, bool fresh,
			    struct folder_report *rep, struct arca_err *err)
{
	const struct opts *o = u->o;
	int rc = snapshot_load_msgs(u->r, f, err);
	if (rc)
		return rc;
	if (u->overlay != NULL) {
		/* the flags users changed through serve-imap since the snapshot */
		size_t applied = 0, dropped = 0;
		if (overlay_apply(u->overlay, u->account, u->snap_time_ns, f, &applied, &dropped) != 0)
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		u->overlay_msgs += applied;
		if (dropped)
			rimap_note(&u->warnings, "%s: folder %s: %zu keywords set through serve-imap left out (a folder takes 64)",
				   u->target, f->name, dropped);
	}
	if (o->has_uid) {
		bool found = false;
		for (size_t i = 0; i < f->nmsgs && !found; i++)
			found = f->msgs[i].uid == o->uid;
		if (!found)
			return arca_err_set(err, ARCA_ENOENT, "%s has no message with UID %lu in this snapshot",
					    f->name, o->uid);
	}
	if (f->nmsgs == 0)
		return 0;
	/* what the folder holds, unless we just created it */
	struct iapp_holdings h = { 0 };
	if (fresh) {
		rc = iapp_holdings_index(&h) ? arca_err_set(err, ARCA_ENOMEM, "out of memory") : 0;
	} else {
		int64_t *dates = malloc(f->nmsgs * sizeof(*dates));
		if (dates == NULL)
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		for (size_t i = 0; i < f->nmsgs; i++)
			dates[i] = f->msgs[i].date_sec;
		qsort(dates, f->nmsgs, sizeof(*dates), rimap_cmp_i64);
		rc = iapp_holdings_read(u->c, wire, dates, f->nmsgs, &h, err);
		free(dates);
	}
	if (rc)
		return rc;
	size_t cap = u->caps.multiappend ? o->batch : 1;
	struct slot *b = calloc(cap, sizeof(*b));
	if (b == NULL) {
		iapp_holdings_release(&h);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	size_t n = 0;
	uint64_t bytes = 0;
	rc = rimap_spool_reset(u, 0, err);
	for (size_t i = 0; i < f->nmsgs && rc == 0; i++) {
		const struct snap_msg *m = &f->msgs[i];
		if (o->has_uid && m->uid != o->uid)
			continue;
		/* a full batch, or this one would make it too large: send first */
		if (n > 0 && (n == cap || bytes + m->size > BATCH_BYTES)) {
			rc = rimap_flush_batch(u, f, wire, b, n, rep, err);
			n = 0;
			bytes = 0;
			if (rc)
				break;
		}
		char nm[600];
		msg_name(f, m, nm, sizeof(nm));
		off_t off = lseek(u->spool, 0, SEEK_END);
		if (off < 0) {
			rc = arca_err_errno(err, ARCA_EIO, errno, "the restore spool (memfd)");
			break;
		}
		uint64_t size = 0;
		struct arca_err e = { 0 };
		int g = repo_get_stream(u->r, m->content_type, m->content_id, u->spool, nm, &size, &e);
		struct iapp_content ct;
		if (g == 0)
			g = iapp_content_scan(u->spool, (uint64_t)off, size, m->date_sec, &ct, &e);
		if (g) {
			/* this message can't be read from the vault: name it, go on */
			rimap_note(&u->failed, "%s: %s: not restored: %s", u->account, nm, e.msg);
			rep->failed++;
			rc = rimap_spool_reset(u, (uint64_t)off, err);
			continue;
		}
		/* a recent message: its key, so a journaled copy of it is
		 * not added once the server has it */
		struct slot one = { .has_key = u->keys != NULL && m->date_sec >= u->keys_from };
		if (one.has_key && (rc = spool_key(u, (uint64_t)off, size, one.key, err)) != 0)
			break;
		if (iapp_holdings_take(&h, &ct.key)) {
			rep->already++;
			u->already++;
			rc = rimap_slot_key_keep(u, &one, err);
			if (rc == 0)
				rc = rimap_spool_reset(u, (uint64_t)off, err);
			continue;
		}
		if (ct.has_nul && !u->caps.binary)
			rimap_note(&u->warnings, "%s: %s holds NUL bytes and the server has no BINARY: it may refuse it",
			     u->target, nm);
		struct slot *s = &b[n++];
		*s = one;
		s->sm = m;
		size_t nkw = 0;
		for (size_t k = 0; k < f->nkeywords && k < SNAP_KEYWORDS_MAX; k++)
			if (m->keywords & (1ULL << k))
				s->kw[nkw++] = f->keywords[k];
		s->m = (struct iapp_msg){ .fd = u->spool, .off = (uint64_t)off, .content = ct,
					  .flags = m->flags, .keywords = s->kw, .nkeywords = nkw,
					  .date = m->date_sec };
		bytes += ct.wire_len;
	}
	if (rc == 0)
		rc = rimap_flush_batch(u, f, wire, b, n, rep, err);
	free(b);
	iapp_holdings_release(&h);
	return rc;
}

/* ---- one account ---- */

static bool name_subscribed(const struct snapshot *s, const char *name)
{
	for (size_t i = 0; i < s->nsubscriptions; i++)
		if (strcmp(s->subscriptions[i], name) == 0)
			return true;
	return false;
}

/*
 * SUBSCRIBE; a server that refuses to subscribe a folder that does not
 * exist (Dovecot does) gets it made, subscribed and deleted again, which
 * leaves the subscription alone as it was in the snapshot.  Only a folder
 * this run made is deleted, and only when it is still empty.
 */
int rimap_subscribe(struct run *u, const char *name, const char *wire, bool exists,
		     struct arca_err *err)
{
	struct iapp_line ans;
	int rc = iapp_subscribe(&u->io, wire, &ans, err);
	if (rc == 0 && ans.status != IAPP_OK && !exists) {
		rc = iapp_create(&u->io, &u->caps, wire, "", &ans, err);
		bool made = rc == 0 && ans.status == IAPP_OK;
		if (made)
			rc = iapp_subscribe(&u->io, wire, &ans, err);
		if (made && rc == 0) {
			struct iapp_line del;
			bool sub_ok = ans.status == IAPP_OK;
			rc = iapp_delete(&u->io, wire, &del, err);
			if (rc == 0 && del.status != IAPP_OK)
				rimap_note(&u->warnings, "%s: folder %s was made to subscribe it and could not be deleted again (%s)",
				     u->target, name, del.text);
			if (!sub_ok)
				ans.status = IAPP_NO;
		}
	}
	if (rc)
		return rc;
	if (ans.status == IAPP_OK)
		u->subscribed++;
	else
		rimap_note(&u->warnings, "%s: subscription %s not restored: the server answered %s", u->target,
		     name, ans.text);
	return 0;
}

static int restore_folders(struct run *u, struct snapshot *s, struct arca_err *err)
{
	const struct opts *o = u->o;
	struct abuf wire = ABUF_INIT;
	int rc = 0;
	bool any = false;
	for (size_t i = 0; i < s->nfolders && rc == 0; i++) {
		struct snap_folder *f = &s->folders[i];
		if (o->folder && strcmp(o->folder, f->name) != 0)
			continue;
		any = true;
		struct folder_report *rep = &u->reports[u->nreports++];
		rep->name = f->name;
		if (iapp_wire_name(f->name, u->caps.delimiter, &wire) != 0) {
			rimap_note(&u->failed, "%s: folder %s: its name can't be made on this server (hierarchy delimiter '%c'): %llu messages not restored",
			     u->target, f->name, u->caps.delimiter ? u->caps.delimiter : ' ',
			     (unsigned long long)f->message_count);
			rep->failed += f->message_count;
			continue;
		}
		const char *w = (const char *)wire.data;
		struct iapp_folder *have = iapp_folders_find(&u->listed, w);
		bool selectable = (f->attrs & SNAP_FOLDER_SELECTABLE) != 0;
		bool fresh = false;
		/* a parent that only holds others (\Noselect) is made by the
		 * server when its children are: we create only real folders */
		if (selectable && (have == NULL || !have->selectable) && strcmp(f->name, "INBOX") != 0) {
			struct iapp_line ans;
			rc = iapp_create(&u->io, &u->caps, w, f->special_use, &ans, err);
			if (rc)
				break;
			if (ans.status != IAPP_OK) {
				rimap_note(&u->failed, "%s: folder %s: CREATE refused (%s): %llu messages not restored",
				     u->target, f->name, ans.text, (unsigned long long)f->message_count);
				rep->failed += f->message_count;
				continue;
			}
			rep->created = true;
			u->created++;
			fresh = have == NULL;
		} else if (have && f->special_use[0] && strcasecmp(have->special, f->special_use) != 0) {
			rimap_note(&u->warnings, "%s: folder %s exists with special-use \"%s\", the snapshot says %s: left as it is",
			     u->target, f->name, have->special, f->special_use);
		}
		if (selectable && f->message_count > 0)
			rc = restore_messages(u, f, w, fresh, rep, err);
		else if (o->has_uid)
			rc = arca_err_set(err, ARCA_ENOENT, "%s holds no messages in this snapshot", f->name);
	}
	if (rc == 0 && o->folder && !any)
		rc = arca_err_set(err, ARCA_ENOENT, "the snapshot has no folder %s (arca ls lists them)", o->folder);
	/* subscriptions: the snapshot's list (which may name folders that
	 * don't exist) and every folder marked subscribed */
	for (size_t i = 0; i < s->nsubscriptions + s->nfolders && rc == 0; i++) {
		const char *name;
		if (i < s->nsubscriptions) {
			name = s->subscriptions[i];
		} else {
			const struct snap_folder *f = &s->folders[i - s->nsubscriptions];
			if (!(f->attrs & SNAP_FOLDER_SUBSCRIBED) || name_subscribed(s, f->name))
				continue;
			name = f->name;
		}
		if (o->folder && strcmp(o->folder, name) != 0)
			continue;
		if (iapp_wire_name(name, u->caps.delimiter, &wire) != 0) {
			rimap_note(&u->warnings, "%s: subscription %s can't be named on this server", u->target, name);
			continue;
		}
		struct iapp_folder *have = iapp_folders_find(&u->listed, (const char *)wire.data);
		if (have && have->subscribed)
			continue;
		rc = rimap_subscribe(u, name, (const char *)wire.data, have != NULL, err);
	}
	abuf_release(&wire);
	if (rc)
		return rc;
	/* special-use the server did not take (no CREATE-SPECIAL-USE) */
	iapp_folders_release(&u->listed);
	rc = iapp_list(u->c, &u->caps, &u->listed, err);
	for (size_t i = 0; i < s->nfolders && rc == 0; i++) {
		const struct snap_folder *f = &s->folders[i];
		if (!f->special_use[0] || (o->folder && strcmp(o->folder, f->name) != 0))
			continue;
		struct abuf wn = ABUF_INIT;
		if (iapp_wire_name(f->name, u->caps.delimiter, &wn) == 0) {
			struct iapp_folder *have = iapp_folders_find(&u->listed, (const char *)wn.data);
			if (have && strcasecmp(have->special, f->special_use) != 0)
				rimap_note(&u->warnings, "%s: folder %s has no special-use %s on the server (%s): set it there by hand",
				     u->target, f->name, f->special_use,
				     u->caps.create_special_use ? "it refused it" : "it does not offer CREATE-SPECIAL-USE");
		}
		abuf_release(&wn);
	}
	return rc;
}

static int restore_sieve(struct run *u, const struct snapshot *s, const char *login_zid,
			 const char *login_cid, const char *pw, struct arca_err *err)
{
	const struct opts *o = u->o;
	struct msieve_put *v = calloc(s->nsieve ? s->nsieve : 1, sizeof(*v));
	struct abuf *data = calloc(s->nsieve ? s->nsieve : 1, sizeof(*data));
	int rc = v && data ? 0 : arca_err_set(err, ARCA_ENOMEM, "out of memory");
	for (size_t i = 0; i < s->nsieve && rc == 0; i++) {
		rc = content_get(u, s->sieve[i].content_type, s->sieve[i].content_id, MSIEVE_SCRIPT_MAX,
				 &data[i], err);
		v[i] = (struct msieve_put){ .name = s->sieve[i].name, .data = data[i].data,
					    .len = data[i].len, .active = s->sieve[i].active };
	}
	if (rc == 0) {
		struct managesieve_opts mo = {
			.net = { .host = o->host, .port = (uint16_t)o->sieve_port, .ca_file = o->ca_file,
				 .insecure = o->insecure, .timeout_ms = (int)o->timeout * 1000 },
			.authzid = login_zid, .authcid = login_cid, .password = pw,
		};
		mo.net.tls = o->tls == NETCONN_PLAIN ? NETCONN_PLAIN : NETCONN_STARTTLS;
		if (o->sieve_tls && strcmp(o->sieve_tls, "none") == 0)
			mo.net.tls = NETCONN_PLAIN;
		else if (o->sieve_tls && strcmp(o->sieve_tls, "tls") == 0)
			mo.net.tls = NETCONN_TLS;
		else if (o->sieve_tls && strcmp(o->sieve_tls, "starttls") == 0)
			mo.net.tls = NETCONN_STARTTLS;
		rc = managesieve_put_all(&mo, v, s->nsieve, &u->sieve, err);
		if (rc == 0)
			u->sieve_done = true;
	}
	for (size_t i = 0; data && i < s->nsieve; i++)
		abuf_release(&data[i]);
	free(data);
	free(v);
	return rc;
}

static int restore_account(struct run *u, const char *account)
{
	const struct opts *o = u->o;
	if (u->spool < 0) {
		/* decrypted mail stays in memory, never in a file (a worker
		 * makes its own) */
		u->spool = memfd_create("arca-restore-imap", MFD_CLOEXEC);
		if (u->spool < 0)
			return cli_failf("memfd_create: %s", strerror(errno));
	}
	u->account = account;
	u->target = o->to_account ? o->to_account : account;
	struct arca_err err = { 0 };
	struct snap_info si;
	memset(&si, 0, sizeof(si));
	/* --folder: the snapshot's folder only, never the journal */
	bool no_journal = o->no_journal || o->folder != NULL;
	if (restore_pick_one(u->r, account, o->snapshot, o->at, no_journal, o->journal_until, &si) != 0)
		return 1;
	bool journal_only = restore_journal_only(&si);
	struct snapshot *s = NULL;
	struct journal_rec *recs = NULL;
	size_t nrecs = 0;
	struct idset keys = IDSET_INIT;
	char user[1300];
	const char *pw = o->master ? u->password : creds_password(&u->creds, u->target);
	if (o->master)
		snprintf(user, sizeof(user), "%s%c%s", u->target, o->sep, o->master);
	else
		snprintf(user, sizeof(user), "%s", u->target);
	int rc = journal_only ? 0 : snapshot_load(u->r, si.root, &s, &err);
	u->snap_time_ns = s ? s->time_ns : 0;
	u->overlay_msgs = 0;
	/* journaled mail since (shortly before) the snapshot, up to --at */
	if (rc == 0 && !no_journal) {
		uint64_t t = s ? s->time_ns : 0;
		uint64_t since = t > JOURNAL_RESTORE_SLACK_NS ? t - JOURNAL_RESTORE_SLACK_NS : 0;
		rc = journal_restore_collect(u->r, account, since, &recs, &nrecs, &err);
		while (rc == 0 && nrecs > 0 && recs[nrecs - 1].time_ns > o->journal_until)
			nrecs--;
	}
	if (nrecs > 0) {
		/* snapshot messages from an hour before the first record on
		 * may be the same mail */
		u->keys = &keys;
		u->keys_from = (int64_t)(recs[0].time_ns / 1000000000ull) - 3600;
	}
	if (rc == 0 && pw == NULL)
		rc = arca_err_set(&err, ARCA_EKEY, "%s: no password in the credentials file", u->target);
	/* a line per folder, and for journaled mail in and out */
	if (rc == 0 && (u->reports = calloc((s ? s->nfolders : 0) + 2, sizeof(*u->reports))) == NULL)
		rc = arca_err_set(&err, ARCA_ENOMEM, "out of memory");
	if (rc == 0) {
		struct imap_conn_opts co = {
			.net = { .host = o->host, .port = (uint16_t)o->port, .tls = o->tls,
				 .ca_file = o->ca_file, .insecure = o->insecure,
				 .timeout_ms = (int)o->timeout * 1000 },
			.user = user, .password = pw,
		};
		rc = imap_conn_open(&co, &u->c, &err);
	}
	if (rc == 0)
		rc = iapp_caps_get(u->c, &u->caps, &err);
	if (rc == 0) {
		iapp_io_conn(u->c, &u->io);
		u->io.sent_hook = sent_hook;
		rc = iapp_list(u->c, &u->caps, &u->listed, &err);
	}
	if (rc == 0 && s != NULL)
		rc = restore_folders(u, s, &err);
	if (rc == 0 && nrecs > 0)
		rc = rimap_restore_journal(u, s, recs, nrecs, &err);
	if (u->c) {
		imap_conn_close(u->c);
		u->c = NULL;
	}
	if (rc == 0 && o->sieve_port && s != NULL && s->has_sieve && o->folder == NULL)
		rc = restore_sieve(u, s, o->master ? u->target : NULL, o->master ? o->master : u->target,
				   pw, &err);
	rimap_report(u, &si, rc, &err);
	int ret = rc ? 1 : u->failed.n ? EXIT_WARNINGS : 0;
	snapshot_free(s);
	snap_info_release(&si);
	free(recs);
	idset_free(&keys);
	u->keys = NULL;
	u->j_appended = u->j_already = 0;
	iapp_folders_release(&u->listed);
	free(u->reports);
	u->reports = NULL;
	u->nreports = 0;
	strv_free(&u->failed);
	strv_free(&u->warnings);
	u->appended = u->already = u->created = u->subscribed = 0;
	u->sieve_done = false;
	memset(&u->sieve, 0, sizeof(u->sieve));
	return ret;
}

/* --jobs N: the accounts in N worker processes (restore_workers_run), each
 * with its own repository handle, memory spool and connections. */
static int parallel_one(void *ctx, struct repo *r, size_t g)
{
	struct run *u = ctx;
	u->r = r;
	/* a group is one mailbox on the server: its accounts one after
	 * another in one worker, never at once in two (each would append
	 * what the other hasn't yet) */
	int worst = 0;
	for (size_t k = u->group_start[g]; k < u->group_start[g + 1]; k++) {
		int rc = restore_account(u, u->accounts->v[u->group_of[k]]);
		if (rc == 1 || (rc == EXIT_WARNINGS && worst == 0))
			worst = rc;
	}
	return worst;
}

static const struct strv *group_sort_accounts;

static int group_cmp(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = strcasecmp(group_sort_accounts->v[x], group_sort_accounts->v[y]);
	return c ? c : (x < y ? -1 : x > y);
}

static int restore_parallel(struct run *u, const struct strv *accounts)
{
	const struct arca_restore_key *rk0 = repo_restore_key(u->r);
	struct arca_restore_key *rk = acrypto_restore_key_alloc();
	if (rk == NULL || rk0 == NULL) {
		acrypto_restore_key_free(rk);
		return cli_failf("out of memory");
	}
	memcpy(rk, rk0, sizeof(*rk));
	void *m = mmap(NULL, sizeof(pthread_mutex_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pthread_mutexattr_t a;
	int e = m == MAP_FAILED ? errno : pthread_mutexattr_init(&a);
	if (e == 0) {
		e = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
		e = e ? e : pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
		e = e ? e : pthread_mutex_init(m, &a);
		pthread_mutexattr_destroy(&a);
	}
	if (e != 0) {
		if (m != MAP_FAILED)
			munmap(m, sizeof(pthread_mutex_t));
		acrypto_restore_key_free(rk);
		return cli_failf("a lock shared by the workers: %s", strerror(e));
	}
	u->out_lock = m;
	u->accounts = accounts;
	u->group_of = malloc((accounts->n + 1) * sizeof(size_t));
	u->group_start = malloc((accounts->n + 1) * sizeof(size_t));
	if (u->group_of == NULL || u->group_start == NULL) {
		acrypto_restore_key_free(rk);
		return cli_failf("out of memory");
	}
	for (size_t i = 0; i < accounts->n; i++)
		u->group_of[i] = i;
	group_sort_accounts = accounts;
	qsort(u->group_of, accounts->n, sizeof(size_t), group_cmp);
	size_t ngroups = 0;
	for (size_t i = 0; i < accounts->n; i++)
		if (i == 0 || strcasecmp(accounts->v[u->group_of[i]], accounts->v[u->group_of[i - 1]]) != 0)
			u->group_start[ngroups++] = i;
	u->group_start[ngroups] = accounts->n;
	/* an LMDB handle may not cross fork: each worker opens its own */
	repo_close(u->r);
	u->r = NULL;
	struct restore_workers w = { .repo = u->o->repo, .rk = rk, .jobs = (int)u->o->jobs,
				     .n = ngroups, .one = parallel_one, .ctx = u };
	int rc = restore_workers_run(&w);
	acrypto_restore_key_free(rk);
	free(u->group_of);
	free(u->group_start);
	u->group_of = u->group_start = NULL;
	return rc;
}

/* Every account the repository has a snapshot of, in order of first
 * snapshot, then (with_journal) those known only from the journal (records
 * up to journal_until). */
static int all_accounts(struct repo *r, bool with_journal, uint64_t journal_until, struct strv *out)
{
	struct arca_err err = { 0 };
	struct snap_info *list;
	size_t n;
	if (repo_snapshots(r, &list, &n, &err) != 0)
		return cli_fail(&err);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		if (accounts_from_text(out, list[i].account, strlen(list[i].account)) != 0)
			rc = cli_failf("out of memory");
	snap_infos_free(list, n);
	char **names = NULL;
	size_t nn = 0;
	if (rc == 0 && with_journal && restore_journal_accounts(r, journal_until, &names, &nn, &err) != 0)
		rc = cli_fail(&err);
	/* accounts_from_text drops names already there; a name holding a
	 * blank or '#' would be cut by it, and is taken whole here */
	for (size_t i = 0; i < nn && rc == 0; i++) {
		bool have = false;
		for (size_t k = 0; k < out->n && !have; k++)
			have = strcmp(out->v[k], names[i]) == 0;
		if (!have && strv_add(out, names[i], strlen(names[i])) != 0)
			rc = cli_failf("out of memory");
	}
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	return rc;
}

int cmd_restore_imap(int argc, char **argv)
{
	struct opts o = { .tls = NETCONN_PLAIN, .sep = '*', .batch = 100, .timeout = 60,
			  .journal_until = UINT64_MAX, .jobs = 1 };
	struct strv accounts = { 0 };
	enum { O_REPO = 256, O_KEY, O_HOST, O_PORT, O_TLS, O_STARTTLS, O_CA, O_INSECURE, O_MASTER,
	       O_SEP, O_PWFILE, O_CREDS, O_ACCOUNT, O_ALL, O_SNAP, O_AT, O_FOLDER, O_UID, O_SIEVE,
	       O_SIEVE_TLS, O_TO, O_BATCH, O_TIMEOUT, O_JSON, O_NO_JOURNAL, O_JOBS, O_OVERLAY, O_HELP };
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, O_REPO },
		{ "restore-key", required_argument, NULL, O_KEY },
		{ "host", required_argument, NULL, O_HOST },
		{ "port", required_argument, NULL, O_PORT },
		{ "tls", no_argument, NULL, O_TLS },
		{ "starttls", no_argument, NULL, O_STARTTLS },
		{ "ca-file", required_argument, NULL, O_CA },
		{ "insecure", no_argument, NULL, O_INSECURE },
		{ "master-user", required_argument, NULL, O_MASTER },
		{ "separator", required_argument, NULL, O_SEP },
		{ "password-file", required_argument, NULL, O_PWFILE },
		{ "credentials", required_argument, NULL, O_CREDS },
		{ "account", required_argument, NULL, O_ACCOUNT },
		{ "all", no_argument, NULL, O_ALL },
		{ "snapshot", required_argument, NULL, O_SNAP },
		{ "at", required_argument, NULL, O_AT },
		{ "folder", required_argument, NULL, O_FOLDER },
		{ "uid", required_argument, NULL, O_UID },
		{ "sieve-port", required_argument, NULL, O_SIEVE },
		{ "sieve-tls", required_argument, NULL, O_SIEVE_TLS },
		{ "to-account", required_argument, NULL, O_TO },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "json", no_argument, NULL, O_JSON },
		{ "no-journal", no_argument, NULL, O_NO_JOURNAL },
		{ "jobs", required_argument, NULL, O_JOBS },
		{ "overlay", required_argument, NULL, O_OVERLAY },
		{ "help", no_argument, NULL, O_HELP },
		{ 0 },
	};
	int c;
	char *end;
	bool bad = false;
	optind = 1;
	while (!bad && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_REPO: o.repo = optarg; break;
		case O_KEY: o.keyfile = optarg; break;
		case O_HOST: o.host = optarg; break;
		case O_PORT:
		case O_SIEVE: {
			long v = strtol(optarg, &end, 10);
			if (*end || v <= 0 || v > 65535)
				bad = true;
			*(c == O_PORT ? &o.port : &o.sieve_port) = v;
			break;
		}
		case O_TLS: o.tls = NETCONN_TLS; break;
		case O_STARTTLS: o.tls = NETCONN_STARTTLS; break;
		case O_CA: o.ca_file = optarg; break;
		case O_INSECURE: o.insecure = true; break;
		case O_MASTER: o.master = optarg; break;
		case O_SEP:
			bad = strlen(optarg) != 1;
			o.sep = optarg[0];
			break;
		case O_PWFILE: o.pwfile = optarg; break;
		case O_CREDS: o.credfile = optarg; break;
		case O_ACCOUNT:
			if (accounts_from_text(&accounts, optarg, strlen(optarg)) != 0) {
				strv_free(&accounts);
				return cli_failf("out of memory");
			}
			break;
		case O_ALL: o.all = true; break;
		case O_SNAP: o.snapshot = optarg; break;
		case O_AT: o.at = optarg; break;
		case O_FOLDER: o.folder = optarg; break;
		case O_UID:
			o.uid = strtoul(optarg, &end, 10);
			bad = *end || o.uid == 0 || o.uid > UINT32_MAX;
			o.has_uid = true;
			break;
		case O_SIEVE_TLS:
			o.sieve_tls = optarg;
			bad = strcmp(optarg, "none") && strcmp(optarg, "starttls") && strcmp(optarg, "tls");
			break;
		case O_TO: o.to_account = optarg; break;
		case O_BATCH: {
			long v = strtol(optarg, &end, 10);
			bad = *end || v < 1 || v > IAPP_BATCH_MAX;
			o.batch = (size_t)v;
			break;
		}
		case O_TIMEOUT:
			o.timeout = strtol(optarg, &end, 10);
			bad = *end || o.timeout < 1 || o.timeout > 3600;
			break;
		case O_JSON: o.json = true; break;
		case O_NO_JOURNAL: o.no_journal = true; break;
		case O_JOBS:
			o.jobs = strtol(optarg, &end, 10);
			bad = *end || o.jobs < 1 || o.jobs > RESTORE_JOBS_MAX;
			break;
		case O_OVERLAY: o.overlay_path = optarg; break;
		case O_HELP:
			strv_free(&accounts);
			puts(USAGE);
			return 0;
		default:
			bad = true;
		}
	}
	if (bad || optind != argc || o.repo == NULL || o.keyfile == NULL || o.host == NULL ||
	    o.port == 0 || (o.master == NULL) == (o.credfile == NULL) || (o.master && o.pwfile == NULL) ||
	    (accounts.n == 0) == !o.all || (o.has_uid && o.folder == NULL) ||
	    (o.snapshot && o.at) || (o.to_account && accounts.n != 1) ||
	    (o.snapshot && accounts.n != 1)) {
		strv_free(&accounts);
		return cli_usage(USAGE);
	}
	if (o.at != NULL && cli_parse_time(o.at, &o.journal_until) != 0) {
		strv_free(&accounts);
		return cli_failf("--at %s: not a time (use RFC 3339, e.g. 2026-11-28T06:00:00Z)", o.at);
	}
	/* a server or a reader of our output going away is an error to
	 * report, not a signal that kills a worker mid-way */
	signal(SIGPIPE, SIG_IGN);
	struct run u = { .o = &o, .spool = -1 };
	int rc = imap_opts_plain_ok(o.host, o.tls != NETCONN_PLAIN, o.insecure);
	if (rc == 0 && o.master) {
		u.password = read_first_line(o.pwfile);
		if (u.password == NULL)
			rc = cli_failf("%s: cannot read the password file", o.pwfile);
	} else if (rc == 0) {
		rc = load_credentials(o.credfile, &u.creds);
	}
	if (rc == 0 && cli_open_repo(o.repo, REPO_OPEN_READ, o.keyfile, &u.r) != 0)
		rc = 1;
	struct overlay *ov = NULL;
	if (rc == 0 && o.overlay_path != NULL && cli_open_overlay(o.overlay_path, u.r, false, &ov) != 0)
		rc = 1;
	u.overlay = ov;
	if (rc == 0 && o.all)
		rc = all_accounts(u.r, !(o.no_journal || o.folder != NULL), o.journal_until, &accounts);
	if (rc == 0 && accounts.n == 0)
		rc = cli_failf("no accounts to restore");
	int worst = 0;
	if (rc == 0 && o.jobs > 1 && accounts.n > 1) {
		worst = restore_parallel(&u, &accounts);
	} else {
		for (size_t i = 0; rc == 0 && i < accounts.n; i++) {
			int r = restore_account(&u, accounts.v[i]);
			if (r == 1 || (r == EXIT_WARNINGS && worst == 0))
				worst = r;
		}
	}
	if (rc == 0 && !o.json && accounts.n > 1)
		fprintf(stderr, "%s: %zu accounts: %s\n", cli_prog, accounts.n,
			worst == 0 ? "all restored" : worst == 1 ? "some failed (above)" : "some messages failed (above)");
	overlay_free(ov);
	if (u.r)
		repo_close(u.r);
	if (u.spool >= 0)
		close(u.spool);
	if (u.out_lock != NULL) {
		pthread_mutex_destroy(u.out_lock);
		munmap(u.out_lock, sizeof(pthread_mutex_t));
	}
	if (u.password) {
		sodium_memzero(u.password, strlen(u.password));
		free(u.password);
	}
	creds_free(&u.creds);
	strv_free(&accounts);
	return rc ? rc : worst;
}
