/*
 * pull.c - one IMAP (+ ManageSieve) pull of many accounts into snapshots
 * (pull.h, docs/pull.md).
 *
 * Per account: LIST and LSUB; per selectable folder STATUS, and only when it
 * differs from what the cache remembers, EXAMINE and a fetch of what
 * changed (QRESYNC's CHANGEDSINCE/VANISHED against the remembered
 * HIGHESTMODSEQ, else every record).  Bodies are fetched only for messages
 * whose content the vault doesn't know for this account: Dovecot's X-GUID
 * (the Maildir base name, kept across COPY and MOVE) says which.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <libetpan/mailimap.h>
#include <libetpan/condstore.h>
#include <libetpan/qresync.h>
#include <libetpan/enable.h>
#include <libetpan/mailimap_extension.h>

#include "idset.h"
#include "imap_conn.h"
#include "imap_fetch.h"
#include "imap_xguid.h"
#include "managesieve.h"
#include "maildir.h"
#include "pack.h"
#include "pull.h"
#include "pull_store.h"
#include "snapshot.h"

#define PULL_FETCH_BATCH 256               /* bodies per UID FETCH */
#define PULL_FETCH_BATCH_BYTES (16u << 20)
#define PULL_META_BATCH 5000               /* records per metadata UID FETCH */
#define PULL_PIECE (8u << 20)              /* partial fetches of large messages */
#define PULL_INMEM_MAX (32u << 20)         /* above: fetched in pieces */

/* ---- pure helpers ---- */

bool pull_base_ok(const char *base)
{
	size_t n = strlen(base);
	/* room for ":2,<flags and keywords>" in a 255-byte file name; a
	 * leading '.' would hide the file, a leading ',' may strip to "" */
	if (n == 0 || n > PULL_BASE_MAX || base[0] == '.' || base[0] == ',')
		return false;
	for (const char *p = base; *p; p++)
		if (*p < 0x21 || *p > 0x7e || *p == '/' || *p == ':')
			return false;
	return true;
}

void pull_base_strip_sizes(char *base)
{
	char *w = base;
	for (char *p = base; *p;) {
		if (*p == ',' && (p[1] == 'S' || p[1] == 'W') && p[2] == '=') {
			p += 3;
			while (*p && *p != ',')
				p++;
			continue;
		}
		*w++ = *p++;
	}
	*w = '\0';
}

int pull_unserve_crlf(const char *base, const uint8_t *p, size_t len, struct abuf *out,
		      bool *strip_r)
{
	*strip_r = false;
	uint64_t s_size;
	if (!maildir_name_size(base, &s_size))
		return 0;           /* no S=: the bytes as served are all we know */
	if (s_size == len)
		return 0;           /* the file had no bare LF: served as it is */
	abuf_reset(out);
	if (s_size > len || abuf_reserve(out, len) != 0) {
		*strip_r = true;
		return 0;
	}
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n')
			continue;
		out->data[n++] = p[i];
	}
	out->len = n;
	if (n == s_size)
		return 1;
	/* a file with CRLF and bare LF mixed: keep what IMAP showed; its S=
	 * would now lie about the file, so the name loses it */
	*strip_r = true;
	abuf_reset(out);
	return 0;
}

int pull_folder_name(const char *mutf7, char delim, struct abuf *out)
{
	abuf_reset(out);
	if (strcasecmp(mutf7, "INBOX") == 0)
		return abuf_add(out, "INBOX", 5) || abuf_cstr(out) ? ARCA_ENOMEM : 0;
	struct abuf u = ABUF_INIT;
	int rc = mutf7_to_utf8(mutf7, &u);
	if (rc == 0)
		rc = abuf_cstr(&u);
	if (rc) {
		abuf_release(&u);
		return ARCA_EFORMAT;
	}
	const char *s = (const char *)u.data;
	size_t n = strlen(s);
	if (n == 0) {
		abuf_release(&u);
		return ARCA_EFORMAT;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		char c = s[i];
		if (delim != '\0' && c == delim)
			c = '/';
		else if (c == '/' && delim != '/')
			rc = ARCA_EFORMAT;   /* a '/' inside a level: not representable */
		if (rc == 0)
			rc = abuf_add_u8(out, (uint8_t)c) ? ARCA_ENOMEM : 0;
	}
	if (rc == 0)
		rc = abuf_cstr(out) ? ARCA_ENOMEM : 0;
	abuf_release(&u);
	if (rc)
		return rc;
	/* no empty level, no leading/trailing separator */
	const char *o = (const char *)out->data;
	if (o[0] == '/' || o[strlen(o) - 1] == '/' || strstr(o, "//"))
		return ARCA_EFORMAT;
	return 0;
}

/* One account being pulled. */
struct acct {
	const struct pull_opts *o;
	const struct pull_sink *sink;
	const char *account;
	struct imap_conn *c;
	struct pull_prev prev;          /* what the vault remembers */
	struct snapshot *s;             /* being built */
	struct abuf tmp, norm;
	uint64_t folders_examined;
};

static void warn(struct acct *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct acct *a, const char *fmt, ...)
{
	if (a->sink->warn == NULL)
		return;
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	a->sink->warn(a->sink->ctx, msg);
}

/* ---- what the vault remembers ---- */

void pull_prev_blobs_release(struct pull_prev_blobs *b)
{
	abuf_release(&b->acct);
	for (size_t i = 0; i < b->nfolders; i++)
		abuf_release(&b->folders[i]);
	free(b->folders);
	memset(b, 0, sizeof(*b));
}

void pull_prev_release(struct pull_prev *p)
{
	snapshot_free(p->root);
	for (size_t i = 0; i < p->nfolders; i++)
		snapshot_free(p->folders[i]);
	free(p->folders);
	free(p->status);
	free(p->taken);
	memset(p, 0, sizeof(*p));
}

int pull_prev_decode(const struct pull_prev_blobs *b, const char *account, struct pull_prev *p,
		     void (*warn_fn)(void *ctx, const char *what), void *ctx, struct arca_err *err)
{
	memset(p, 0, sizeof(*p));
	if (b->acct.len == 0)
		return 0;
	if (b->acct.len < ARCA_ID_LEN ||
	    snapshot_decode_root(b->acct.data + ARCA_ID_LEN, b->acct.len - ARCA_ID_LEN, &p->root) != 0 ||
	    strcmp(p->root->account, account) != 0) {
		snapshot_free(p->root);
		p->root = NULL;
		if (warn_fn)
			warn_fn(ctx, "pull cache entry damaged: pulling everything again");
		return 0;
	}
	memcpy(p->digest, b->acct.data, ARCA_ID_LEN);
	size_t n = b->nfolders ? b->nfolders : 1;
	p->folders = calloc(n, sizeof(*p->folders));
	p->status = calloc(n, sizeof(*p->status));
	p->taken = calloc(n, sizeof(*p->taken));
	if (p->folders == NULL || p->status == NULL || p->taken == NULL) {
		pull_prev_release(p);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < b->nfolders; i++) {
		const struct abuf *fb = &b->folders[i];
		struct snapshot *one = snapshot_new(account, "imap");
		if (one == NULL) {
			pull_prev_release(p);
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		}
		if (fb->len < 8 || snap_folder_decode_full(fb->data + 8, fb->len - 8, one) != 0 ||
		    one->nfolders != 1) {
			/* a damaged entry only costs pulling that folder in full */
			snapshot_free(one);
			if (warn_fn)
				warn_fn(ctx, "pull cache of a folder damaged: pulling it in full");
			continue;
		}
		p->folders[p->nfolders] = one;
		p->status[p->nfolders][0] = get_u32le(fb->data);
		p->status[p->nfolders][1] = get_u32le(fb->data + 4);
		p->nfolders++;
	}
	return 0;
}

static struct snap_folder *cached_folder(struct acct *a, const char *name, size_t *idx_r)
{
	for (size_t i = 0; i < a->prev.nfolders; i++)
		if (strcmp(a->prev.folders[i]->folders[0].name, name) == 0) {
			*idx_r = i;
			return &a->prev.folders[i]->folders[0];
		}
	return NULL;
}

/* ---- LIST / LSUB ---- */

struct listed {
	char *name;          /* UTF-8, '/' */
	char *wire;          /* as the server spells it (mUTF-7) */
	bool selectable;
	char special[16];
};

/* What LIST said of the hierarchy separator: the first one shown, and
 * whether another one came too. */
struct seen_delim {
	char first;          /* '\0': none (NIL, or nothing listed) */
	bool nil;            /* some folder came with NIL */
	bool mixed;
};

static int list_folders(struct acct *a, struct listed **out, size_t *n_r, struct seen_delim *sd,
			struct arca_err *err)
{
	clist *list = NULL;
	int r = mailimap_list(a->c->imap, "", "*", &list);
	if (r != MAILIMAP_NO_ERROR)
		return imap_conn_fail(a->c, r, "LIST", err);
	size_t n = 0, cap = (size_t)clist_count(list) + 1;
	struct listed *v = calloc(cap, sizeof(*v));
	int rc = v ? 0 : arca_err_set(err, ARCA_ENOMEM, "out of memory");
	bool have_inbox = false;
	for (clistiter *it = clist_begin(list); it && rc == 0; it = clist_next(it)) {
		struct mailimap_mailbox_list *mb = clist_content(it);
		if (mb->mb_name == NULL)
			continue;
		if (mb->mb_delimiter == '\0')
			sd->nil = true;
		else if (sd->first == '\0')
			sd->first = mb->mb_delimiter;
		else if (sd->first != mb->mb_delimiter)
			sd->mixed = true;
		if (pull_folder_name(mb->mb_name, mb->mb_delimiter, &a->tmp) != 0) {
			warn(a, "folder name %.200s can't be kept (not valid modified UTF-7 or has an empty level): skipped", mb->mb_name);
			continue;
		}
		struct listed *l = &v[n];
		l->selectable = imap_list_attrs(mb, l->special, sizeof(l->special));
		l->name = strdup((const char *)a->tmp.data);
		l->wire = strdup(mb->mb_name);
		if (l->name == NULL || l->wire == NULL) {
			free(l->name);
			free(l->wire);
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			break;
		}
		if (strcmp(l->name, "INBOX") == 0) {
			if (have_inbox) {
				free(l->name);
				free(l->wire);
				continue;
			}
			have_inbox = true;
		}
		n++;
	}
	mailimap_list_result_free(list);
	if (rc) {
		for (size_t i = 0; i < n; i++) {
			free(v[i].name);
			free(v[i].wire);
		}
		free(v);
		return rc;
	}
	*out = v;
	*n_r = n;
	return 0;
}

/*
 * The snapshot's layout from the separator the server showed, so that
 * serve-imap shows it again and restore writes the matching Maildir:
 * Dovecot shows '.' for Maildir++ (its default) and '/' for LAYOUT=fs.
 * Any other (NIL, or another character, or several) can't be told apart
 * by layout: Maildir++ is kept, as before, and the pull says so.
 */
uint8_t pull_layout_of_separator(char first, bool nil, bool mixed)
{
	if (!nil && !mixed && first == '/')
		return MAILDIR_LAYOUT_FS;
	return MAILDIR_LAYOUT_MAILDIRPP;
}

static void note_separator(struct acct *a, const struct seen_delim *sd)
{
	if (!sd->nil && !sd->mixed && (sd->first == '.' || sd->first == '/' || sd->first == '\0'))
		return;
	char shown[8];
	if (sd->first > 0x20 && sd->first < 0x7f)
		snprintf(shown, sizeof(shown), "'%c'", sd->first);
	else if (sd->first != '\0')
		snprintf(shown, sizeof(shown), "0x%02x", (unsigned char)sd->first);
	else
		snprintf(shown, sizeof(shown), "NIL");
	warn(a, "the server's hierarchy separator is %s%s, not Dovecot's '.' or '/': the snapshot "
	     "says Maildir++ (serve-imap shows '.'; --separator / shows '/')", shown,
	     sd->mixed ? " and others" : sd->nil && sd->first != '\0' ? " and NIL" : "");
}

static int list_subscriptions(struct acct *a, struct arca_err *err)
{
	clist *list = NULL;
	int r = mailimap_lsub(a->c->imap, "", "*", &list);
	if (r != MAILIMAP_NO_ERROR)
		return imap_conn_fail(a->c, r, "LSUB", err);
	int rc = 0;
	for (clistiter *it = clist_begin(list); it && rc == 0; it = clist_next(it)) {
		struct mailimap_mailbox_list *mb = clist_content(it);
		if (mb->mb_name == NULL || pull_folder_name(mb->mb_name, mb->mb_delimiter, &a->tmp) != 0)
			continue;
		const char *name = (const char *)a->tmp.data;
		bool dup = false;
		for (size_t i = 0; i < a->s->nsubscriptions && !dup; i++)
			dup = strcmp(a->s->subscriptions[i], name) == 0;
		if (!dup && snapshot_add_subscription(a->s, name) != 0)
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	mailimap_list_result_free(list);
	return rc;
}

/* ---- STATUS ---- */

struct status {
	uint32_t messages, uidnext, uidvalidity;
	uint64_t highestmodseq;
};

static int folder_status(struct acct *a, const char *wire, struct status *st, struct arca_err *err)
{
	memset(st, 0, sizeof(*st));
	struct mailimap_status_att_list *atts = mailimap_status_att_list_new_empty();
	if (atts == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	int r = mailimap_status_att_list_add(atts, MAILIMAP_STATUS_ATT_MESSAGES);
	r = r ? r : mailimap_status_att_list_add(atts, MAILIMAP_STATUS_ATT_UIDNEXT);
	r = r ? r : mailimap_status_att_list_add(atts, MAILIMAP_STATUS_ATT_UIDVALIDITY);
	if (a->c->condstore)
		r = r ? r : mailimap_status_att_list_add(atts, MAILIMAP_STATUS_ATT_HIGHESTMODSEQ);
	if (r) {
		mailimap_status_att_list_free(atts);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	struct mailimap_mailbox_data_status *ds = NULL;
	r = mailimap_status(a->c->imap, wire, atts, &ds);
	mailimap_status_att_list_free(atts);
	if (r != MAILIMAP_NO_ERROR)
		return imap_conn_fail(a->c, r, "STATUS", err);
	for (clistiter *it = ds && ds->st_info_list ? clist_begin(ds->st_info_list) : NULL; it; it = clist_next(it)) {
		struct mailimap_status_info *si = clist_content(it);
		switch (si->st_att) {
		case MAILIMAP_STATUS_ATT_MESSAGES: st->messages = si->st_value; break;
		case MAILIMAP_STATUS_ATT_UIDNEXT: st->uidnext = si->st_value; break;
		case MAILIMAP_STATUS_ATT_UIDVALIDITY: st->uidvalidity = si->st_value; break;
		default:
			/* HIGHESTMODSEQ comes as condstore extension data */
			if (si->st_ext_data && si->st_ext_data->ext_data &&
			    si->st_ext_data->ext_extension == &mailimap_extension_condstore &&
			    si->st_ext_data->ext_type == MAILIMAP_CONDSTORE_TYPE_STATUS_INFO) {
				struct mailimap_condstore_status_info *ci = si->st_ext_data->ext_data;
				st->highestmodseq = ci->cs_highestmodseq_value;
			}
			break;
		}
	}
	if (ds)
		mailimap_mailbox_data_status_free(ds);
	return 0;
}

/* ---- message records ---- */

static struct mailimap_fetch_type *meta_fetch_type(struct acct *a)
{
	struct mailimap_fetch_type *t = mailimap_fetch_type_new_fetch_att_list_empty();
	if (t == NULL)
		return NULL;
	struct mailimap_fetch_att *atts[6] = {
		mailimap_fetch_att_new_uid(), mailimap_fetch_att_new_flags(),
		mailimap_fetch_att_new_internaldate(), mailimap_fetch_att_new_rfc822_size(),
		a->c->condstore ? mailimap_fetch_att_new_modseq() : NULL,
		a->c->dovecot ? mailimap_fetch_att_new_extension(strdup("X-GUID")) : NULL,
	};
	bool ok = true;
	for (size_t i = 0; i < 6; i++) {
		if (atts[i] == NULL) {
			if ((i == 4 && !a->c->condstore) || (i == 5 && !a->c->dovecot))
				continue;
			ok = false;
			continue;
		}
		if (!ok || mailimap_fetch_type_new_fetch_att_list_add(t, atts[i]) != 0) {
			mailimap_fetch_att_free(atts[i]);
			ok = false;
		}
	}
	if (!ok) {
		mailimap_fetch_type_free(t);
		return NULL;
	}
	return t;
}

/* The record for uid among the first n (sorted by uid), or NULL. */
static struct snap_msg *find_uid_n(struct snap_folder *f, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->msgs[mid].uid < uid)
			lo = mid + 1;
		else if (f->msgs[mid].uid > uid)
			hi = mid;
		else
			return &f->msgs[mid];
	}
	return NULL;
}

static struct snap_msg *find_uid(struct snap_folder *f, uint32_t uid)
{
	return find_uid_n(f, f->nmsgs, uid);
}

static int cmp_uid(const void *x, const void *y)
{
	const struct snap_msg *a = x, *b = y;
	return a->uid < b->uid ? -1 : a->uid > b->uid;
}

static void msg_free_fields(struct snap_msg *m)
{
	snap_msg_release(m);
}

/* Drop records whose uid is in `gone` (sorted), keeping order. */
static void drop_uids(struct snap_folder *f, const uint32_t *gone, size_t ngone)
{
	size_t w = 0, g = 0;
	for (size_t i = 0; i < f->nmsgs; i++) {
		while (g < ngone && gone[g] < f->msgs[i].uid)
			g++;
		if (g < ngone && gone[g] == f->msgs[i].uid) {
			msg_free_fields(&f->msgs[i]);
			continue;
		}
		f->msgs[w++] = f->msgs[i];
	}
	f->nmsgs = w;
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	return a < b ? -1 : a > b;
}

/* Records fetched for this folder pass: applied to f after the fetch. */
struct pending {
	struct snap_msg m;
	bool need_body;
	char guid[IMAP_XGUID_MAX + 1];
	uint32_t rfc822_size;
};

struct folder_work {
	struct snap_folder *f;
	struct pending *p;
	size_t np, pcap;
};

static int set_keywords(struct acct *a, struct snap_folder *f, const struct imap_fetched *fe, uint64_t *bits)
{
	*bits = 0;
	if (fe->kw_overflow)
		warn(a, "folder %s uid %u: more than %d keywords: the rest are not kept", f->name, fe->uid, SNAP_KEYWORDS_MAX);
	for (size_t k = 0; k < fe->nkw; k++) {
		int i = snap_folder_keyword(f, fe->keywords[k]);
		if (i < 0) {
			warn(a, "folder %s: more than %d keywords: %.64s not kept", f->name, SNAP_KEYWORDS_MAX, fe->keywords[k]);
			continue;
		}
		*bits |= UINT64_C(1) << i;
	}
	return 0;
}

/* Does the vault know the content of this account's message with that
 * X-GUID (moved or copied, or fetched before a pull was cut short)? */
static bool known_content(struct acct *a, const char *guid, uint32_t rfc822_size, struct snap_msg *m)
{
	if (guid[0] == '\0')
		return false;
	struct pull_content c;
	if (a->sink->known(a->sink->ctx, guid, rfc822_size, &c) != 1)
		return false;
	m->content_type = c.type;
	memcpy(m->content_id, c.id, ARCA_ID_LEN);
	m->size = c.size;
	if (c.stripped)
		pull_base_strip_sizes(m->base);
	return true;
}

/* Turn one metadata FETCH answer into a pending record. */
static int take_meta(struct acct *a, struct folder_work *w, const struct imap_fetched *fe, struct arca_err *err)
{
	if (!fe->has_uid || fe->uid == 0)
		return 0;   /* an unsolicited FETCH (flag change by another client) */
	if (!fe->has_flags || !fe->has_size || !fe->has_date)
		return arca_err_set(err, ARCA_EFORMAT, "%s: folder %s uid %u: the server left out FLAGS, INTERNALDATE or RFC822.SIZE",
				    a->account, w->f->name, fe->uid);
	if (w->np == w->pcap) {
		size_t cap = w->pcap ? w->pcap * 2 : 64;
		struct pending *p = realloc(w->p, cap * sizeof(*p));
		if (p == NULL)
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		w->p = p;
		w->pcap = cap;
	}
	struct pending *p = &w->p[w->np];
	memset(p, 0, sizeof(*p));
	p->m.uid = fe->uid;
	p->m.modseq = fe->modseq;
	p->m.date_sec = fe->date;
	p->m.flags = fe->flags;
	p->rfc822_size = fe->size;
	set_keywords(a, w->f, fe, &p->m.keywords);
	if (fe->guid && strlen(fe->guid) <= IMAP_XGUID_MAX)
		snprintf(p->guid, sizeof(p->guid), "%s", fe->guid);
	/* the file name: the X-GUID if it can be one, else made from the UIDs */
	char made[64];
	const char *base = p->guid;
	if (!pull_base_ok(base)) {
		snprintf(made, sizeof(made), "%u.%u.arca-pull", w->f->uidvalidity, fe->uid);
		base = made;
	}
	p->m.base = strdup(base);
	p->m.uidlist_ext = strdup("");
	if (p->m.base == NULL || p->m.uidlist_ext == NULL) {
		msg_free_fields(&p->m);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	/* an existing record keeps its content (a flag or keyword change) */
	struct snap_msg *old = find_uid(w->f, fe->uid);
	if (old) {
		p->m.content_type = old->content_type;
		memcpy(p->m.content_id, old->content_id, ARCA_ID_LEN);
		p->m.size = old->size;
		free(p->m.base);
		p->m.base = strdup(old->base);
		if (p->m.base == NULL) {
			msg_free_fields(&p->m);
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		}
	} else if (!known_content(a, p->guid, p->rfc822_size, &p->m)) {
		p->need_body = true;
	}
	w->np++;
	return 0;
}

/* UID ranges a QRESYNC fetch reported VANISHED. */
struct uid_ranges {
	uint32_t (*v)[2];
	size_t n, cap;
};

static int fetch_meta(struct acct *a, struct folder_work *w, struct mailimap_set *set,
		      uint64_t changedsince, struct uid_ranges *vanished, struct arca_err *err)
{
	struct mailimap_fetch_type *ft = meta_fetch_type(a);
	if (ft == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	clist *result = NULL;
	int r;
	struct mailimap_qresync_vanished *van = NULL;
	if (changedsince > 0) {
		r = mailimap_uid_fetch_qresync(a->c->imap, set, ft, changedsince, &result, &van);
	} else {
		r = mailimap_uid_fetch(a->c->imap, set, ft, &result);
	}
	mailimap_fetch_type_free(ft);
	if (r != MAILIMAP_NO_ERROR)
		return imap_conn_fail(a->c, r, "UID FETCH", err);
	/* a NO after some answers is a partial result: never take it for
	 * the folder's state (the missing records would look expunged) */
	int rc = imap_conn_check_ok(a->c, "UID FETCH", err);
	if (rc) {
		mailimap_fetch_list_free(result);
		if (van)
			mailimap_qresync_vanished_free(van);
		return rc;
	}
	for (clistiter *it = clist_begin(result); it && rc == 0; it = clist_next(it)) {
		struct imap_fetched fe;
		imap_fetched_parse(clist_content(it), &fe);
		rc = take_meta(a, w, &fe, err);
	}
	mailimap_fetch_list_free(result);
	if (van) {
		clist *items = van->qr_known_uids ? van->qr_known_uids->set_list : NULL;
		for (clistiter *it = items ? clist_begin(items) : NULL; it && rc == 0 && vanished; it = clist_next(it)) {
			struct mailimap_set_item *si = clist_content(it);
			if (vanished->n == vanished->cap) {
				size_t cap = vanished->cap ? vanished->cap * 2 : 16;
				uint32_t (*nv)[2] = realloc(vanished->v, cap * sizeof(*nv));
				if (nv == NULL) {
					rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
					break;
				}
				vanished->v = nv;
				vanished->cap = cap;
			}
			vanished->v[vanished->n][0] = si->set_first;
			vanished->v[vanished->n][1] = si->set_last;
			vanished->n++;
		}
		mailimap_qresync_vanished_free(van);
	}
	return rc;
}

/* Hand one body to the store side and fill m's content fields. */
static int store_body(struct acct *a, struct pending *p, const uint8_t *body, size_t len,
		      struct arca_err *err)
{
	bool strip = false;
	const uint8_t *data = body;
	size_t dlen = len;
	if (pull_unserve_crlf(p->m.base, body, len, &a->norm, &strip) == 1) {
		data = a->norm.data;
		dlen = a->norm.len;
	}
	if (strip)
		pull_base_strip_sizes(p->m.base);
	struct pull_content c;
	int rc = a->sink->put(a->sink->ctx, p->guid, p->rfc822_size, strip, data, dlen, &c, err);
	if (rc)
		return rc;
	p->m.content_type = c.type;
	memcpy(p->m.content_id, c.id, ARCA_ID_LEN);
	p->m.size = c.size;
	return 0;
}

static struct mailimap_fetch_type *body_fetch_type(uint32_t offset, uint32_t length, bool partial)
{
	struct mailimap_fetch_type *t = mailimap_fetch_type_new_fetch_att_list_empty();
	struct mailimap_section *sec = mailimap_section_new(NULL);
	struct mailimap_fetch_att *att = NULL;
	if (sec)
		att = partial ? mailimap_fetch_att_new_body_peek_section_partial(sec, offset, length)
			      : mailimap_fetch_att_new_body_peek_section(sec);
	struct mailimap_fetch_att *uid = mailimap_fetch_att_new_uid();
	if (t == NULL || att == NULL || uid == NULL ||
	    mailimap_fetch_type_new_fetch_att_list_add(t, uid) != 0) {
		if (att)
			mailimap_fetch_att_free(att);
		else if (sec)
			mailimap_section_free(sec);
		if (uid)
			mailimap_fetch_att_free(uid);
		if (t)
			mailimap_fetch_type_free(t);
		return NULL;
	}
	if (mailimap_fetch_type_new_fetch_att_list_add(t, att) != 0) {
		mailimap_fetch_att_free(att);
		mailimap_fetch_type_free(t);
		return NULL;
	}
	return t;
}

/* A message too large to hold whole in libetpan's buffers: in pieces. */
/*
 * A message too large to hold whole: fetched in pieces, each handed to the
 * store side as it arrives (memory stays at one piece).  It is kept as
 * IMAP serves it (CRLF): turning it back into the file's LF would need all
 * of it first, so its file name loses S= and W=.
 */
static int fetch_large(struct acct *a, struct pending *p, struct arca_err *err)
{
	pull_base_strip_sizes(p->m.base);
	int rc = a->sink->put_begin(a->sink->ctx, p->guid, p->rfc822_size, true, p->rfc822_size, err);
	if (rc)
		return rc;
	uint64_t sent = 0;
	for (uint64_t off = 0; off < p->rfc822_size && rc == 0;) {
		struct mailimap_fetch_type *ft = body_fetch_type((uint32_t)off, PULL_PIECE, true);
		struct mailimap_set *set = mailimap_set_new_single(p->m.uid);
		if (ft == NULL || set == NULL) {
			if (ft)
				mailimap_fetch_type_free(ft);
			if (set)
				mailimap_set_free(set);
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			break;
		}
		clist *result = NULL;
		int r = mailimap_uid_fetch(a->c->imap, set, ft, &result);
		mailimap_fetch_type_free(ft);
		mailimap_set_free(set);
		if (r != MAILIMAP_NO_ERROR) {
			rc = imap_conn_fail(a->c, r, "UID FETCH BODY.PEEK[]", err);
			break;
		}
		if ((rc = imap_conn_check_ok(a->c, "UID FETCH BODY.PEEK[]", err)) != 0) {
			mailimap_fetch_list_free(result);
			break;
		}
		size_t got = 0;
		bool seen = false;
		for (clistiter *it = clist_begin(result); it && rc == 0 && !seen; it = clist_next(it)) {
			struct imap_fetched fe;
			imap_fetched_parse(clist_content(it), &fe);
			if (!fe.has_uid || fe.uid != p->m.uid || !fe.has_body)
				continue;
			seen = true;
			got = fe.body_len;
			if (got > p->rfc822_size - sent)
				rc = arca_err_set(err, ARCA_EFORMAT, "%s: uid %u: the server sent more than its %u bytes",
						  a->account, p->m.uid, p->rfc822_size);
			else if (got > 0)
				rc = a->sink->put_data(a->sink->ctx, (const uint8_t *)fe.body, got, err);
			sent += got;
		}
		mailimap_fetch_list_free(result);
		if (rc == 0 && (!seen || got == 0))
			rc = arca_err_set(err, ARCA_EFORMAT, "%s: uid %u: the server sent %llu of %u bytes",
					  a->account, p->m.uid, (unsigned long long)sent, p->rfc822_size);
		off += got;
	}
	struct pull_content c;
	if (rc) {
		a->sink->put_abort(a->sink->ctx, rc, err->msg);
		return rc;
	}
	rc = a->sink->put_end(a->sink->ctx, &c, err);
	if (rc == 0) {
		p->m.content_type = c.type;
		memcpy(p->m.content_id, c.id, ARCA_ID_LEN);
		p->m.size = c.size;
	}
	return rc;
}

static int fetch_bodies(struct acct *a, struct folder_work *w, struct arca_err *err)
{
	int rc = 0;
	size_t i = 0;
	while (i < w->np && rc == 0) {
		if (!w->p[i].need_body) {
			i++;
			continue;
		}
		if (w->p[i].rfc822_size > PULL_INMEM_MAX) {
			rc = fetch_large(a, &w->p[i], err);
			w->p[i].need_body = false;
			i++;
			continue;
		}
		/* a batch: consecutive small messages up to the limits */
		struct mailimap_set *set = mailimap_set_new_empty();
		if (set == NULL)
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		size_t start = i, count = 0;
		uint64_t bytes = 0;
		for (; i < w->np && count < PULL_FETCH_BATCH && bytes < PULL_FETCH_BATCH_BYTES; i++) {
			struct pending *p = &w->p[i];
			if (!p->need_body)
				continue;
			if (p->rfc822_size > PULL_INMEM_MAX)
				break;
			if (mailimap_set_add_single(set, p->m.uid) != 0) {
				mailimap_set_free(set);
				return arca_err_set(err, ARCA_ENOMEM, "out of memory");
			}
			count++;
			bytes += p->rfc822_size;
		}
		size_t end = i;
		struct mailimap_fetch_type *ft = body_fetch_type(0, 0, false);
		if (ft == NULL) {
			mailimap_set_free(set);
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		}
		clist *result = NULL;
		int r = mailimap_uid_fetch(a->c->imap, set, ft, &result);
		mailimap_fetch_type_free(ft);
		mailimap_set_free(set);
		if (r != MAILIMAP_NO_ERROR)
			return imap_conn_fail(a->c, r, "UID FETCH BODY.PEEK[]", err);
		if ((rc = imap_conn_check_ok(a->c, "UID FETCH BODY.PEEK[]", err)) != 0) {
			mailimap_fetch_list_free(result);
			return rc;
		}
		for (clistiter *it = clist_begin(result); it && rc == 0; it = clist_next(it)) {
			struct imap_fetched fe;
			imap_fetched_parse(clist_content(it), &fe);
			if (!fe.has_uid || !fe.has_body)
				continue;
			/* the pending record with that uid, in this batch */
			struct pending *p = NULL;
			for (size_t k = start; k < end && p == NULL; k++)
				if (w->p[k].need_body && w->p[k].m.uid == fe.uid)
					p = &w->p[k];
			if (p == NULL)
				continue;
			rc = store_body(a, p, (const uint8_t *)fe.body, fe.body_len, err);
			p->need_body = false;
		}
		mailimap_fetch_list_free(result);
		for (size_t k = start; k < end && rc == 0; k++)
			if (w->p[k].need_body) {
				/* expunged by another client between the two fetches:
				 * it is not in this snapshot */
				w->p[k].need_body = false;
				w->p[k].m.uid = 0;
			}
	}
	return rc;
}

/* Merge pending records into f (replacing same-uid records), sorted. */
static int apply_pending(struct folder_work *w, struct arca_err *err)
{
	struct snap_folder *f = w->f;
	size_t sorted = f->nmsgs;   /* new records go after these, sorted at the end */
	for (size_t i = 0; i < w->np; i++) {
		struct pending *p = &w->p[i];
		if (p->m.uid == 0) {
			msg_free_fields(&p->m);
			continue;
		}
		struct snap_msg *old = find_uid_n(f, sorted, p->m.uid);
		if (old) {
			msg_free_fields(old);
			*old = p->m;
		} else {
			/* appended unsorted, sorted below (ownership moves) */
			if (f->nmsgs == f->msgs_cap) {
				size_t cap = f->msgs_cap ? f->msgs_cap * 2 : 64;
				struct snap_msg *v = realloc(f->msgs, cap * sizeof(*v));
				if (v == NULL) {
					for (size_t k = i; k < w->np; k++)
						msg_free_fields(&w->p[k].m);
					w->np = 0;
					return arca_err_set(err, ARCA_ENOMEM, "out of memory");
				}
				f->msgs = v;
				f->msgs_cap = cap;
			}
			f->msgs[f->nmsgs++] = p->m;
		}
		memset(&p->m, 0, sizeof(p->m));
	}
	w->np = 0;
	if (f->nmsgs > sorted) {
		/* a server that answers a UID twice: sort, then keep one record
		 * per UID (which of the equal ones is not specified) */
		qsort(f->msgs, f->nmsgs, sizeof(*f->msgs), cmp_uid);
		size_t k = 0;
		for (size_t i = 0; i < f->nmsgs; i++) {
			if (k > 0 && f->msgs[k - 1].uid == f->msgs[i].uid) {
				msg_free_fields(&f->msgs[i]);
				continue;
			}
			f->msgs[k++] = f->msgs[i];
		}
		f->nmsgs = k;
	}
	return 0;
}

static int add_uid_list(uint32_t **v, size_t *n, size_t *cap, uint32_t uid)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		uint32_t *nv = realloc(*v, c * sizeof(*nv));
		if (nv == NULL)
			return ARCA_ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = uid;
	return 0;
}

/* Every UID the folder holds now (UID SEARCH ALL). */
static int search_all(struct acct *a, uint32_t **uids_r, size_t *n_r, struct arca_err *err)
{
	struct mailimap_search_key *key = mailimap_search_key_new_all();
	if (key == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	clist *result = NULL;
	int r = mailimap_uid_search(a->c->imap, NULL, key, &result);
	mailimap_search_key_free(key);
	if (r != MAILIMAP_NO_ERROR)
		return imap_conn_fail(a->c, r, "UID SEARCH ALL", err);
	if (imap_conn_check_ok(a->c, "UID SEARCH ALL", err) != 0) {
		mailimap_search_result_free(result);
		return ARCA_EIO;
	}
	uint32_t *v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	for (clistiter *it = clist_begin(result); it && rc == 0; it = clist_next(it)) {
		uint32_t *u = clist_content(it);
		if (u && *u != 0)
			rc = add_uid_list(&v, &n, &cap, *u);
	}
	mailimap_search_result_free(result);
	if (rc) {
		free(v);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_u32);
	*uids_r = v;
	*n_r = n;
	return 0;
}

static int cmp_base_idx(const void *x, const void *y, void *ctx)
{
	const struct snap_folder *f = ctx;
	size_t a = *(const size_t *)x, b = *(const size_t *)y;
	int c = strcmp(f->msgs[a].base, f->msgs[b].base);
	return c ? c : (a < b ? -1 : a > b);
}

/* Give every record but the first of a base name a name of its own. */
static int unique_bases(struct snap_folder *f, struct arca_err *err)
{
	if (f->nmsgs < 2)
		return 0;
	size_t *ix = malloc(f->nmsgs * sizeof(*ix));
	if (ix == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	for (size_t i = 0; i < f->nmsgs; i++)
		ix[i] = i;
	qsort_r(ix, f->nmsgs, sizeof(*ix), cmp_base_idx, f);
	int rc = 0;
	/* renames collected first: renaming while sorted would break runs */
	for (size_t i = 1; i < f->nmsgs && rc == 0; i++) {
		if (strcmp(f->msgs[ix[i]].base, f->msgs[ix[i - 1]].base) != 0)
			continue;
		size_t j = i;
		while (j < f->nmsgs && strcmp(f->msgs[ix[j]].base, f->msgs[ix[i - 1]].base) == 0)
			j++;
		for (size_t k = i; k < j && rc == 0; k++) {
			struct snap_msg *m = &f->msgs[ix[k]];
			char made[64];
			snprintf(made, sizeof(made), "%u.%u.arca-pull", f->uidvalidity, m->uid);
			char *b = strdup(made);
			if (b == NULL)
				rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			else {
				free(m->base);
				m->base = b;
			}
		}
		i = j;
	}
	free(ix);
	return rc;
}

/* Read a folder whose STATUS changed into f (which holds the cached
 * records when the UIDVALIDITY is the same, else nothing). */
static int pull_folder(struct acct *a, const struct listed *l, struct snap_folder *f,
		       const struct status *st, bool incremental, struct arca_err *err)
{
	uint64_t hms = 0;
	int r = a->c->condstore ? mailimap_examine_condstore(a->c->imap, l->wire, &hms)
				: mailimap_examine(a->c->imap, l->wire);
	if (r != MAILIMAP_NO_ERROR)
		return imap_conn_fail(a->c, r, "EXAMINE", err);
	struct mailimap_selection_info *sel = a->c->imap->imap_selection_info;
	/* UID SEARCH ALL and the CHANGEDSINCE fetch grow with the folder:
	 * their answers (only) may be larger by its message count */
	uint32_t records = sel && sel->sel_has_exists ? sel->sel_exists : st->messages;
	uint32_t uidvalidity = sel ? sel->sel_uidvalidity : st->uidvalidity;
	uint32_t uidnext = sel ? sel->sel_uidnext : st->uidnext;
	if (uidvalidity != f->uidvalidity) {
		incremental = false;
		for (size_t i = 0; i < f->nmsgs; i++)
			msg_free_fields(&f->msgs[i]);
		f->nmsgs = 0;
	}
	f->uidvalidity = uidvalidity;
	struct folder_work w = { .f = f };
	int rc = 0;
	if (incremental && a->c->enabled_qresync && f->highestmodseq > 0) {
		/* what changed since the last pull, and what vanished */
		struct mailimap_set *set = mailimap_set_new_interval(1, 0);
		struct uid_ranges vanished = { 0 };
		if (set == NULL)
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		imap_conn_expect_records(a->c, records);
		rc = fetch_meta(a, &w, set, f->highestmodseq, &vanished, err);
		imap_conn_expect_records(a->c, 0);
		mailimap_set_free(set);
		uint32_t *gone = NULL;
		size_t ngone = 0, gcap = 0;
		for (size_t vi = 0; vi < vanished.n && rc == 0; vi++) {
			uint32_t lo = vanished.v[vi][0], hi = vanished.v[vi][1];
			if (hi == 0)
				hi = uidnext ? uidnext - 1 : UINT32_MAX;   /* '*' */
			if (lo > hi) {
				uint32_t t = lo;
				lo = hi;
				hi = t;
			}
			/* only UIDs we hold can vanish: walk our records, not the range */
			for (size_t i = 0; i < f->nmsgs && rc == 0; i++)
				if (f->msgs[i].uid >= lo && f->msgs[i].uid <= hi)
					rc = add_uid_list(&gone, &ngone, &gcap, f->msgs[i].uid);
		}
		free(vanished.v);
		if (rc == 0 && ngone > 0) {
			qsort(gone, ngone, sizeof(*gone), cmp_u32);
			drop_uids(f, gone, ngone);
		}
		free(gone);
		rc = rc ? rc : fetch_bodies(a, &w, err);
		rc = rc ? rc : apply_pending(&w, err);
		/* The delta must leave exactly the messages EXAMINE counted; if
		 * not (a VANISHED we didn't get, a server bug), read it all. */
		if (rc == 0 && sel && sel->sel_has_exists && f->nmsgs != sel->sel_exists) {
			warn(a, "folder %s: %zu records after the changes, the server counts %u: reading it in full",
			     f->name, f->nmsgs, sel->sel_exists);
			incremental = false;
		}
	}
	if (rc == 0 && !(incremental && a->c->enabled_qresync && f->highestmodseq > 0)) {
		/* every record: the UIDs first, then metadata in batches */
		uint32_t *uids = NULL;
		size_t n = 0;
		imap_conn_expect_records(a->c, records);
		rc = search_all(a, &uids, &n, err);
		imap_conn_expect_records(a->c, 0);
		if (rc == 0) {
			/* records we had and the server no longer has */
			uint32_t *gone = NULL;
			size_t ngone = 0, gcap = 0;
			for (size_t i = 0; i < f->nmsgs && rc == 0; i++)
				if (n == 0 || !bsearch(&f->msgs[i].uid, uids, n, sizeof(*uids), cmp_u32))
					rc = add_uid_list(&gone, &ngone, &gcap, f->msgs[i].uid);
			if (rc == 0)
				drop_uids(f, gone, ngone);
			free(gone);
		}
		for (size_t i = 0; i < n && rc == 0; i += PULL_META_BATCH) {
			struct mailimap_set *set = mailimap_set_new_empty();
			if (set == NULL) {
				rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
				break;
			}
			size_t end = i + PULL_META_BATCH < n ? i + PULL_META_BATCH : n;
			for (size_t k = i; k < end && rc == 0; k++) {
				/* runs of consecutive UIDs as one interval */
				size_t j = k;
				while (j + 1 < end && uids[j + 1] == uids[j] + 1)
					j++;
				if (mailimap_set_add_interval(set, uids[k], uids[j]) != 0)
					rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
				k = j;
			}
			if (rc == 0)
				rc = fetch_meta(a, &w, set, 0, NULL, err);
			mailimap_set_free(set);
			/* bodies per batch keep memory bounded */
			rc = rc ? rc : fetch_bodies(a, &w, err);
			rc = rc ? rc : apply_pending(&w, err);
		}
		free(uids);
	}
	rc = rc ? rc : fetch_bodies(a, &w, err);
	rc = rc ? rc : apply_pending(&w, err);
	for (size_t i = 0; i < w.np; i++)
		msg_free_fields(&w.p[i].m);
	free(w.p);
	if (rc)
		return rc;
	/* one file name per message within a folder (COPY within a folder
	 * gives two UIDs the same X-GUID) */
	rc = unique_bases(f, err);
	if (rc)
		return rc;
	f->highestmodseq = hms ? hms : st->highestmodseq;
	uint32_t last = f->nmsgs ? f->msgs[f->nmsgs - 1].uid : 0;
	f->nextuid = uidnext > last ? uidnext : last + 1;
	f->message_count = f->nmsgs;
	a->folders_examined++;
	return 0;
}

/* ---- the account ---- */

static int copy_folder_record(struct snap_folder *dst, const struct snap_folder *src)
{
	/* keywords, counts, pages; messages are moved by the caller */
	for (size_t k = 0; k < src->nkeywords; k++)
		if (snap_folder_keyword(dst, src->keywords[k]) < 0)
			return ARCA_ENOMEM;
	dst->uidvalidity = src->uidvalidity;
	dst->nextuid = src->nextuid;
	dst->highestmodseq = src->highestmodseq;
	dst->message_count = src->message_count;
	dst->bytes = src->bytes;
	return 0;
}

static int pull_sieve(struct acct *a, struct arca_err *err)
{
	const struct pull_opts *o = a->o;
	struct managesieve_opts mo = { .net = o->sieve };
	if (o->master_user) {
		mo.authzid = a->account;
		mo.authcid = o->master_user;
	} else {
		mo.authcid = a->account;
	}
	mo.password = o->account_password ? o->account_password(o->ctx, a->account) : o->password;
	if (mo.password == NULL)
		return arca_err_set(err, ARCA_EKEY, "%s: no password for ManageSieve", a->account);
	struct sieve_scripts sc = { 0 };
	int rc = managesieve_fetch_all(&mo, &sc, err);
	if (rc)
		return rc;
	a->s->has_sieve = true;
	for (size_t i = 0; i < sc.n && rc == 0; i++) {
		struct pull_content c;
		rc = a->sink->put_sieve(a->sink->ctx, sc.v[i].data, sc.v[i].len, &c, err);
		struct snap_sieve sv = { .name = sc.v[i].name, .active = sc.v[i].active,
					 .size = c.size, .content_type = c.type };
		memcpy(sv.content_id, c.id, ARCA_ID_LEN);
		if (rc == 0 && snapshot_add_sieve(a->s, &sv) != 0)
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	sieve_scripts_release(&sc);
	return rc;
}

static int pull_one(struct acct *a, struct arca_err *err)
{
	const struct pull_opts *o = a->o;
	uint64_t t0 = arca_now_ns();
	const struct pull_prev_blobs *blobs = NULL;
	int rc = a->sink->begin(a->sink->ctx, a->account, &blobs, err);
	if (rc)
		return rc;
	rc = pull_prev_decode(blobs, a->account, &a->prev, a->sink->warn, a->sink->ctx, err);
	if (rc)
		return rc;
	char user[1300];
	if (o->master_user)
		snprintf(user, sizeof(user), "%s%c%s", a->account, o->separator ? o->separator : '*', o->master_user);
	else
		snprintf(user, sizeof(user), "%s", a->account);
	const char *pw = o->account_password ? o->account_password(o->ctx, a->account) : o->password;
	if (pw == NULL)
		return arca_err_set(err, ARCA_EKEY, "%s: no password", a->account);
	struct imap_conn_opts co = { .net = o->imap, .user = user, .password = pw };
	rc = imap_conn_open(&co, &a->c, err);
	if (rc == ARCA_EKEY && a->prev.root != NULL) {
		/* pulled before, refused now: the store side decides what
		 * that means (an alarm when many go at once) */
		struct arca_err ferr = { 0 };
		(void)a->sink->finish(a->sink->ctx, NULL, true, 0, &ferr);
	}
	if (rc)
		return rc;
	a->s = snapshot_new(a->account, "imap");
	if (a->s == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	a->s->time_ns = t0;
	struct listed *ls = NULL;
	size_t nls = 0;
	struct seen_delim sd = { 0 };
	rc = list_folders(a, &ls, &nls, &sd, err);
	a->s->layout = pull_layout_of_separator(sd.first, sd.nil, sd.mixed);
	if (rc == 0)
		note_separator(a, &sd);
	rc = rc ? rc : list_subscriptions(a, err);
	for (size_t i = 0; i < nls && rc == 0; i++) {
		struct listed *l = &ls[i];
		struct snap_folder *f = snapshot_add_folder(a->s, l->name);
		if (f == NULL) {
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			break;
		}
		for (size_t k = 0; k < a->s->nsubscriptions; k++)
			if (strcmp(a->s->subscriptions[k], l->name) == 0)
				f->attrs |= SNAP_FOLDER_SUBSCRIBED;
		free(f->special_use);
		f->special_use = strdup(l->special);
		if (f->special_use == NULL) {
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			break;
		}
		if (!l->selectable)
			continue;
		f->attrs |= SNAP_FOLDER_SELECTABLE;
		struct status st;
		rc = folder_status(a, l->wire, &st, err);
		if (rc)
			break;
		size_t ci = 0;
		struct snap_folder *cf = cached_folder(a, l->name, &ci);
		/* Unchanged: same UIDVALIDITY, UIDNEXT, MESSAGES and (with
		 * CONDSTORE) HIGHESTMODSEQ: the cached record and its pages. */
		if (cf && cf->uidvalidity == st.uidvalidity && a->prev.status[ci][0] == st.messages &&
		    a->prev.status[ci][1] == st.uidnext && a->c->condstore &&
		    cf->highestmodseq == st.highestmodseq) {
			/* the store side puts its own cached records in */
			f->pages_reused = true;
			continue;
		}
		/* changed: start from (a copy of) the cached records */
		bool incremental = false;
		if (cf) {
			rc = copy_folder_record(f, cf);
			if (rc) {
				rc = arca_err_set(err, rc, "out of memory");
				break;
			}
			for (size_t k = 0; k < cf->nmsgs && rc == 0; k++)
				if (snap_folder_add_msg(f, &cf->msgs[k]) != 0)
					rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			incremental = true;
		}
		rc = rc ? rc : pull_folder(a, l, f, &st, incremental, err);
	}
	for (size_t i = 0; i < nls; i++) {
		free(ls[i].name);
		free(ls[i].wire);
	}
	free(ls);
	if (rc)
		return rc;
	if (o->sieve.port != 0) {
		rc = pull_sieve(a, err);
		if (rc)
			return rc;
	}
	return a->sink->finish(a->sink->ctx, a->s, false, a->folders_examined, err);
}

int pull_engine_account(const struct pull_opts *o, const struct pull_sink *sink,
			const char *account, struct arca_err *err)
{
	struct acct a = { .o = o, .sink = sink, .account = account };
	int rc = pull_one(&a, err);
	if (a.c)
		imap_conn_close(a.c);
	pull_prev_release(&a.prev);
	snapshot_free(a.s);
	abuf_release(&a.tmp);
	abuf_release(&a.norm);
	return rc;
}
