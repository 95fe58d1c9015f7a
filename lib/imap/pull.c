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
#include "snapshot.h"

#define PULL_FETCH_BATCH 256               /* bodies per UID FETCH */
#define PULL_FETCH_BATCH_BYTES (16u << 20)
#define PULL_META_BATCH 5000               /* records per metadata UID FETCH */
#define PULL_PIECE (8u << 20)              /* partial fetches of large messages */
#define PULL_INMEM_MAX (32u << 20)         /* above: fetched in pieces */
#define PULL_MESSAGE_MAX (UINT64_C(4) << 30)

/* ---- pure helpers ---- */

bool pull_base_ok(const char *base)
{
	size_t n = strlen(base);
	if (n == 0 || n > 255 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
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
		return abuf_add(out, "INBOX", 6) ? ARCA_ENOMEM : 0;
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

/* ---- cache keys ---- */

static int key_of(struct abuf *k, const char *kind, const char *account, const char *name)
{
	abuf_reset(k);
	int rc = abuf_add(k, "pull1:", 6);
	rc = rc ? rc : abuf_add(k, kind, strlen(kind) + 1);
	rc = rc ? rc : abuf_add(k, account, strlen(account) + 1);
	if (name)
		rc = rc ? rc : abuf_add(k, name, strlen(name));
	return rc;
}

/* ---- the run ---- */

struct run {
	struct repo *r;
	const struct pull_opts *o;
	char *const *accounts;
	size_t naccounts;
	pull_stage_fn *stage;
	pthread_mutex_t lock;           /* every repo_* call, staging, committing */
	atomic_size_t next;
	size_t failed;
	uint64_t fetched_since_commit;
	struct pull_account_result **staged;
	size_t nstaged, staged_cap;
	int fatal;                      /* the repository could not be written */
	struct arca_err fatal_err;
};

/* X-GUID -> content for the bodies fetched in this run (the cache's copy
 * only becomes readable when the batch is committed); open addressing. */
struct guidmap_ent {
	char *guid;                     /* NULL: empty slot */
	uint32_t rfc822_size;
	uint8_t type;
	bool stripped;
	uint8_t id[ARCA_ID_LEN];
	uint64_t size;
};
struct guidmap {
	struct guidmap_ent *v;
	size_t cap, n;
};

static uint64_t guid_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static struct guidmap_ent *guidmap_find(const struct guidmap *m, const char *guid)
{
	if (m->cap == 0)
		return NULL;
	for (size_t i = guid_hash(guid) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->v[i].guid == NULL)
			return NULL;
		if (strcmp(m->v[i].guid, guid) == 0)
			return &m->v[i];
	}
}

static int guidmap_put(struct guidmap *m, const struct guidmap_ent *e)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		struct guidmap_ent *v = calloc(cap, sizeof(*v));
		if (v == NULL)
			return ARCA_ENOMEM;
		for (size_t i = 0; i < m->cap; i++) {
			if (m->v[i].guid == NULL)
				continue;
			size_t k = guid_hash(m->v[i].guid) & (cap - 1);
			while (v[k].guid)
				k = (k + 1) & (cap - 1);
			v[k] = m->v[i];
		}
		free(m->v);
		m->v = v;
		m->cap = cap;
	}
	size_t k = guid_hash(e->guid) & (m->cap - 1);
	while (m->v[k].guid && strcmp(m->v[k].guid, e->guid) != 0)
		k = (k + 1) & (m->cap - 1);
	if (m->v[k].guid) {
		free(m->v[k].guid);
		m->n--;
	}
	m->v[k] = *e;
	if ((m->v[k].guid = strdup(e->guid)) == NULL)
		return ARCA_ENOMEM;
	m->n++;
	return 0;
}

static void guidmap_free(struct guidmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->v[i].guid);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

/* One account being pulled. */
struct acct {
	struct run *run;
	struct repo_worker *worker;
	const char *account;
	struct pull_account_result *res;
	struct imap_conn *c;
	struct snapshot *prev;          /* the last snapshot's root, or NULL */
	uint8_t prev_digest[ARCA_ID_LEN];
	struct snapshot **cachedv;      /* cached folder states, one folder each, msgs loaded */
	size_t ncached;
	uint32_t *cached_st;            /* per cached folder: STATUS MESSAGES, UIDNEXT */
	struct snapshot *s;             /* being built */
	struct abuf key, val, tmp, norm;
	struct repo_prepared prep;
	bool folders_changed;
	bool repo_failed;
	struct guidmap seen;            /* X-GUIDs stored in this run, not yet in the cache */               /* a repository write failed: stop the run */
};

static void run_lock(struct run *run)
{
	pthread_mutex_lock(&run->lock);
}

static void run_unlock(struct run *run)
{
	pthread_mutex_unlock(&run->lock);
}

static void warn(struct acct *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct acct *a, const char *fmt, ...)
{
	if (a->run->o->warn == NULL)
		return;
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	a->run->o->warn(a->run->o->ctx, a->account, msg);
}

/* The account's last snapshot root and cached folder states. */
static int load_cache(struct acct *a, struct arca_err *err)
{
	struct run *run = a->run;
	int rc = key_of(&a->key, "a", a->account, NULL);
	if (rc)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	run_lock(run);
	rc = repo_cache_get(run->r, a->key.data, a->key.len, &a->val);
	run_unlock(run);
	if (rc == ARCA_ENOENT)
		return 0;
	if (rc)
		return arca_err_set(err, rc, "%s: cannot read the pull cache", a->account);
	if (a->val.len < ARCA_ID_LEN ||
	    snapshot_decode_root(a->val.data + ARCA_ID_LEN, a->val.len - ARCA_ID_LEN, &a->prev) != 0) {
		/* a damaged cache entry only costs a full pull */
		warn(a, "pull cache entry damaged: pulling everything again");
		return 0;
	}
	memcpy(a->prev_digest, a->val.data, ARCA_ID_LEN);
	size_t nf = a->prev->nfolders ? a->prev->nfolders : 1;
	a->cachedv = calloc(nf, sizeof(*a->cachedv));
	a->cached_st = calloc(2 * nf, sizeof(uint32_t));
	if (a->cachedv == NULL || a->cached_st == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	for (size_t i = 0; i < a->prev->nfolders; i++) {
		const struct snap_folder *pf = &a->prev->folders[i];
		if (!(pf->attrs & SNAP_FOLDER_SELECTABLE))
			continue;
		if (key_of(&a->key, "f", a->account, pf->name) != 0)
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		run_lock(run);
		rc = repo_cache_get(run->r, a->key.data, a->key.len, &a->val);
		run_unlock(run);
		if (rc == ARCA_ENOENT)
			continue;
		if (rc)
			return arca_err_set(err, rc, "%s: cannot read the pull cache", a->account);
		struct snapshot *one = snapshot_new(a->account, "imap");
		if (one == NULL)
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		if (a->val.len < 8 || snap_folder_decode_full(a->val.data + 8, a->val.len - 8, one) != 0) {
			/* a damaged entry only costs pulling that folder in full */
			snapshot_free(one);
			warn(a, "pull cache of folder %s damaged: pulling it in full", pf->name);
			continue;
		}
		size_t k = a->ncached++;
		a->cachedv[k] = one;
		a->cached_st[2 * k] = get_u32le(a->val.data);
		a->cached_st[2 * k + 1] = get_u32le(a->val.data + 4);
	}
	return 0;
}

static struct snap_folder *cached_folder(struct acct *a, const char *name, size_t *idx_r)
{
	for (size_t i = 0; i < a->ncached; i++)
		if (strcmp(a->cachedv[i]->folders[0].name, name) == 0) {
			*idx_r = i;
			return &a->cachedv[i]->folders[0];
		}
	return NULL;
}

/* ---- LIST / LSUB ---- */

static const char *special_use_of(const char *ext)
{
	static const char *const uses[] = { "All", "Archive", "Drafts", "Flagged", "Junk", "Sent", "Trash" };
	for (size_t i = 0; i < sizeof(uses) / sizeof(uses[0]); i++)
		if (strcasecmp(ext, uses[i]) == 0)
			return uses[i];
	return NULL;
}

struct listed {
	char *name;          /* UTF-8, '/' */
	char *wire;          /* as the server spells it (mUTF-7) */
	bool selectable;
	char special[16];
};

static int list_folders(struct acct *a, struct listed **out, size_t *n_r, struct arca_err *err)
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
		if (pull_folder_name(mb->mb_name, mb->mb_delimiter, &a->tmp) != 0) {
			warn(a, "folder name %.200s can't be kept (not valid modified UTF-7 or has an empty level): skipped", mb->mb_name);
			continue;
		}
		struct listed *l = &v[n];
		l->selectable = true;
		struct mailimap_mbx_list_flags *fl = mb->mb_flag;
		if (fl && fl->mbf_type == MAILIMAP_MBX_LIST_FLAGS_SFLAG &&
		    fl->mbf_sflag == MAILIMAP_MBX_LIST_SFLAG_NOSELECT)
			l->selectable = false;
		for (clistiter *o = fl && fl->mbf_oflags ? clist_begin(fl->mbf_oflags) : NULL; o; o = clist_next(o)) {
			struct mailimap_mbx_list_oflag *of = clist_content(o);
			if (of->of_type != MAILIMAP_MBX_LIST_OFLAG_FLAG_EXT || of->of_flag_ext == NULL)
				continue;
			if (strcasecmp(of->of_flag_ext, "NonExistent") == 0 ||
			    strcasecmp(of->of_flag_ext, "Noselect") == 0)
				l->selectable = false;
			const char *su = special_use_of(of->of_flag_ext);
			if (su)
				snprintf(l->special, sizeof(l->special), "\\%s", su);
		}
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
	free(m->base);
	free(m->uidlist_ext);
	m->base = m->uidlist_ext = NULL;
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

/* Look up what content this account's message with that X-GUID has. */
static bool known_content(struct acct *a, const char *guid, uint32_t rfc822_size, struct snap_msg *m)
{
	if (guid[0] == '\0')
		return false;
	const struct guidmap_ent *e = guidmap_find(&a->seen, guid);
	if (e && e->rfc822_size == rfc822_size) {
		m->content_type = e->type;
		memcpy(m->content_id, e->id, ARCA_ID_LEN);
		m->size = e->size;
		if (e->stripped)
			pull_base_strip_sizes(m->base);
		return true;
	}
	if (key_of(&a->key, "c", a->account, guid) != 0)
		return false;
	run_lock(a->run);
	int rc = repo_cache_get(a->run->r, a->key.data, a->key.len, &a->val);
	run_unlock(a->run);
	/* u8 type, id, u64 stored size, u32 rfc822 size, u8 stripped */
	if (rc != 0 || a->val.len != 1 + ARCA_ID_LEN + 8 + 4 + 1)
		return false;
	const uint8_t *v = a->val.data;
	if ((v[0] != OBJ_BLOB && v[0] != OBJ_CHUNKLIST) || get_u32le(v + 41) != rfc822_size)
		return false;
	m->content_type = v[0];
	memcpy(m->content_id, v + 1, ARCA_ID_LEN);
	m->size = get_u64le(v + 33);
	if (v[45] == 1)
		pull_base_strip_sizes(m->base);
	return true;
}

static int remember_content(struct acct *a, const char *guid, uint32_t rfc822_size,
			    const struct snap_msg *m, bool stripped)
{
	if (guid[0] == '\0')
		return 0;
	struct guidmap_ent e = { .guid = (char *)guid, .rfc822_size = rfc822_size,
				 .type = m->content_type, .stripped = stripped, .size = m->size };
	memcpy(e.id, m->content_id, ARCA_ID_LEN);
	if (guidmap_put(&a->seen, &e) != 0)
		return ARCA_ENOMEM;
	uint8_t v[1 + ARCA_ID_LEN + 8 + 4 + 1];
	v[0] = m->content_type;
	memcpy(v + 1, m->content_id, ARCA_ID_LEN);
	put_u64le(v + 33, m->size);
	put_u32le(v + 41, rfc822_size);
	v[45] = stripped ? 1 : 0;
	if (key_of(&a->key, "c", a->account, guid) != 0)
		return ARCA_ENOMEM;
	return repo_cache_add(a->run->r, a->key.data, a->key.len, v, sizeof(v));
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
	int rc = 0;
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

static int commit_batch(struct run *run, struct arca_err *err);

/* Store one body (in memory) and fill m's content fields. */
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
	int rc;
	if (dlen <= REPO_BLOB_MAX) {
		/* hash and compress outside the lock */
		rc = repo_prepare(a->run->r, a->worker, OBJ_BLOB, data, dlen, &a->prep, err);
		if (rc == 0) {
			run_lock(a->run);
			rc = repo_put_prepared(a->run->r, &a->prep, NULL, err);
			run_unlock(a->run);
		}
		if (rc == 0) {
			p->m.content_type = OBJ_BLOB;
			memcpy(p->m.content_id, a->prep.id, ARCA_ID_LEN);
		}
	} else {
		run_lock(a->run);
		rc = repo_put_content(a->run->r, data, dlen, &p->m.content_type, p->m.content_id, err);
		run_unlock(a->run);
	}
	if (rc) {
		a->repo_failed = true;
		return rc;
	}
	p->m.size = dlen;
	run_lock(a->run);
	rc = remember_content(a, p->guid, p->rfc822_size, &p->m, strip);
	a->run->fetched_since_commit += len;
	/* A checkpoint: what was fetched so far (and the accounts already
	 * staged) is committed, so a killed pull doesn't fetch it again. */
	uint64_t every = a->run->o->commit_every ? a->run->o->commit_every : (256u << 20);
	if (rc == 0 && a->run->fatal == 0 && a->run->fetched_since_commit >= every) {
		rc = commit_batch(a->run, err);
		if (rc)
			a->repo_failed = true;
	}
	run_unlock(a->run);
	if (rc && a->repo_failed)
		return rc;
	a->res->messages_fetched++;
	a->res->bytes_fetched += len;
	return rc ? arca_err_set(err, rc, "out of memory") : 0;
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
static int fetch_large(struct acct *a, struct pending *p, struct arca_err *err)
{
	abuf_reset(&a->tmp);
	int rc = 0;
	for (uint64_t off = 0; off < p->rfc822_size && rc == 0;) {
		struct mailimap_fetch_type *ft = body_fetch_type((uint32_t)off, PULL_PIECE, true);
		struct mailimap_set *set = mailimap_set_new_single(p->m.uid);
		if (ft == NULL || set == NULL) {
			if (ft)
				mailimap_fetch_type_free(ft);
			if (set)
				mailimap_set_free(set);
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		}
		clist *result = NULL;
		int r = mailimap_uid_fetch(a->c->imap, set, ft, &result);
		mailimap_fetch_type_free(ft);
		mailimap_set_free(set);
		if (r != MAILIMAP_NO_ERROR)
			return imap_conn_fail(a->c, r, "UID FETCH BODY.PEEK[]", err);
		size_t got = 0;
		bool seen = false;
		for (clistiter *it = clist_begin(result); it && rc == 0; it = clist_next(it)) {
			struct imap_fetched fe;
			imap_fetched_parse(clist_content(it), &fe);
			if (!fe.has_uid || fe.uid != p->m.uid || !fe.has_body)
				continue;
			seen = true;
			got = fe.body_len;
			if (abuf_add(&a->tmp, fe.body, fe.body_len) != 0)
				rc = arca_err_set(err, ARCA_ENOMEM, "out of memory (message of %u bytes)", p->rfc822_size);
		}
		mailimap_fetch_list_free(result);
		if (rc == 0 && (!seen || got == 0))
			rc = arca_err_set(err, ARCA_EFORMAT, "%s: uid %u: the server sent %zu of %u bytes",
					  a->account, p->m.uid, a->tmp.len, p->rfc822_size);
		off += got;
	}
	if (rc == 0 && a->tmp.len != p->rfc822_size)
		rc = arca_err_set(err, ARCA_EFORMAT, "%s: uid %u: the server sent %zu bytes, not %u",
				  a->account, p->m.uid, a->tmp.len, p->rfc822_size);
	if (rc == 0) {
		struct abuf whole = a->tmp;
		a->tmp = (struct abuf)ABUF_INIT;
		rc = store_body(a, p, whole.data, whole.len, err);
		abuf_release(&whole);
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
	if (f->nmsgs > sorted)
		qsort(f->msgs, f->nmsgs, sizeof(*f->msgs), cmp_uid);
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
		rc = fetch_meta(a, &w, set, f->highestmodseq, &vanished, err);
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
	} else {
		/* every record: the UIDs first, then metadata in batches */
		uint32_t *uids = NULL;
		size_t n = 0;
		rc = search_all(a, &uids, &n, err);
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
	for (size_t i = 1; i < f->nmsgs; i++) {
		for (size_t j = 0; j < i; j++) {
			if (strcmp(f->msgs[i].base, f->msgs[j].base) != 0)
				continue;
			char made[64];
			snprintf(made, sizeof(made), "%u.%u.arca-pull", f->uidvalidity, f->msgs[i].uid);
			char *b = strdup(made);
			if (b == NULL)
				return arca_err_set(err, ARCA_ENOMEM, "out of memory");
			free(f->msgs[i].base);
			f->msgs[i].base = b;
			break;
		}
		if (i > 4096)
			break;   /* quadratic guard; X-GUIDs are unique in practice */
	}
	f->highestmodseq = hms ? hms : st->highestmodseq;
	uint32_t last = f->nmsgs ? f->msgs[f->nmsgs - 1].uid : 0;
	f->nextuid = uidnext > last ? uidnext : last + 1;
	f->message_count = f->nmsgs;
	a->res->folders_examined++;
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

/* Move the cached messages of src into dst (src keeps none). */
static void move_msgs(struct snap_folder *dst, struct snap_folder *src)
{
	dst->msgs = src->msgs;
	dst->nmsgs = src->nmsgs;
	dst->msgs_cap = src->msgs_cap;
	src->msgs = NULL;
	src->nmsgs = src->msgs_cap = 0;
}

static int pull_sieve(struct acct *a, struct arca_err *err)
{
	const struct pull_opts *o = a->run->o;
	struct managesieve_opts mo = { .net = o->sieve };
	char login[1200];
	if (o->master_user) {
		mo.authzid = a->account;
		mo.authcid = o->master_user;
	} else {
		mo.authcid = a->account;
	}
	(void)login;
	mo.password = o->account_password ? o->account_password(o->ctx, a->account) : o->password;
	if (mo.password == NULL)
		return arca_err_set(err, ARCA_EKEY, "%s: no password for ManageSieve", a->account);
	struct sieve_scripts sc = { 0 };
	int rc = managesieve_fetch_all(&mo, &sc, err);
	if (rc)
		return rc;
	a->s->has_sieve = true;
	for (size_t i = 0; i < sc.n && rc == 0; i++) {
		struct snap_sieve sv = { .name = sc.v[i].name, .active = sc.v[i].active,
					 .size = sc.v[i].len };
		run_lock(a->run);
		rc = repo_put_content(a->run->r, sc.v[i].data, sc.v[i].len, &sv.content_type,
				      sv.content_id, err);
		run_unlock(a->run);
		if (rc)
			a->repo_failed = true;
		if (rc == 0 && snapshot_add_sieve(a->s, &sv) != 0)
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	a->res->sieve_scripts = sc.n;
	sieve_scripts_release(&sc);
	return rc;
}

/* What the previous snapshot had that this one lacks: for the alarms. */
static int compare_with_prev(struct acct *a, struct arca_err *err)
{
	struct pull_account_result *res = a->res;
	if (a->prev == NULL)
		return 0;
	res->had_previous = true;
	struct idset now = IDSET_INIT;
	int rc = 0;
	for (size_t i = 0; i < a->s->nfolders && rc == 0; i++)
		for (size_t k = 0; k < a->s->folders[i].nmsgs && rc == 0; k++)
			rc = idset_add(&now, a->s->folders[i].msgs[k].content_id);
	for (size_t i = 0; i < a->prev->nfolders; i++) {
		const struct snap_folder *pf = &a->prev->folders[i];
		if (!(pf->attrs & SNAP_FOLDER_SELECTABLE))
			continue;
		res->prev_folders++;
		res->prev_messages += pf->message_count;
		const struct snap_folder *nf = NULL;
		for (size_t k = 0; k < a->s->nfolders && nf == NULL; k++)
			if (strcmp(a->s->folders[k].name, pf->name) == 0)
				nf = &a->s->folders[k];
		if (nf == NULL) {
			res->lost_folders++;
		} else if (pf->uidvalidity != 0 && nf->uidvalidity != pf->uidvalidity) {
			res->uidvalidity_changed++;
		}
	}
	/* messages: the previous content of every folder that changed (its
	 * cached records) that is nowhere in the new snapshot */
	if (rc == 0) {
		for (size_t i = 0; i < a->ncached; i++) {
			struct snap_folder *cf = &a->cachedv[i]->folders[0];
			for (size_t k = 0; k < cf->nmsgs; k++)
				if (!idset_has(&now, cf->msgs[k].content_id))
					res->lost_messages++;
		}
	}
	idset_free(&now);
	return rc ? arca_err_set(err, ARCA_ENOMEM, "out of memory") : 0;
}

static int stage_account(struct acct *a, struct arca_err *err);

static int pull_one(struct acct *a, struct arca_err *err)
{
	struct run *run = a->run;
	const struct pull_opts *o = run->o;
	uint64_t t0 = arca_now_ns();
	int rc = load_cache(a, err);
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
	if (rc == ARCA_EKEY && a->prev != NULL) {
		/* pulled before, refused now: deleted or locked out (the alarm
		 * decides what that means for the whole server) */
		a->res->gone = true;
		a->res->had_previous = true;
		for (size_t i = 0; i < a->prev->nfolders; i++)
			if (a->prev->folders[i].attrs & SNAP_FOLDER_SELECTABLE) {
				a->res->prev_folders++;
				a->res->prev_messages += a->prev->folders[i].message_count;
			}
		a->res->lost_messages = a->res->prev_messages;
		a->res->lost_folders = a->res->prev_folders;
	}
	if (rc)
		return rc;
	a->s = snapshot_new(a->account, "imap");
	if (a->s == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	a->s->time_ns = t0;
	a->s->layout = MAILDIR_LAYOUT_MAILDIRPP;
	struct listed *ls = NULL;
	size_t nls = 0;
	rc = list_folders(a, &ls, &nls, err);
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
		if (cf && cf->uidvalidity == st.uidvalidity && a->cached_st[2 * ci] == st.messages &&
		    a->cached_st[2 * ci + 1] == st.uidnext && a->c->condstore &&
		    cf->highestmodseq == st.highestmodseq) {
			rc = copy_folder_record(f, cf);
			if (rc == 0) {
				f->pages = cf->pages;
				f->npages = cf->npages;
				cf->pages = NULL;
				cf->npages = 0;
				f->pages_reused = true;
				move_msgs(f, cf);
			} else {
				rc = arca_err_set(err, rc, "out of memory");
			}
			continue;
		}
		/* changed: start from the cached records (moved, so the
		 * cache copy is empty afterwards except for the alarms' view) */
		bool incremental = false;
		if (cf) {
			rc = copy_folder_record(f, cf);
			if (rc) {
				rc = arca_err_set(err, rc, "out of memory");
				break;
			}
			/* keep a copy of the old records for the alarms: the
			 * cache folder keeps its msgs, f gets copies */
			for (size_t k = 0; k < cf->nmsgs && rc == 0; k++)
				if (snap_folder_add_msg(f, &cf->msgs[k]) != 0)
					rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			incremental = true;
		}
		rc = rc ? rc : pull_folder(a, l, f, &st, incremental, err);
		if (rc == 0)
			a->folders_changed = true;
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
	a->res->folders = a->s->nfolders;
	for (size_t i = 0; i < a->s->nfolders; i++)
		a->res->messages += a->s->folders[i].nmsgs ? a->s->folders[i].nmsgs
							   : a->s->folders[i].message_count;
	rc = compare_with_prev(a, err);
	rc = rc ? rc : stage_account(a, err);
	a->res->seconds_ms = (arca_now_ns() - t0) / 1000000;
	return rc;
}

/* Store pages, and unless the state is the same as last time, the root;
 * stage it with the cache entries that describe it. */
static int stage_account(struct acct *a, struct arca_err *err)
{
	struct run *run = a->run;
	struct snapshot *s = a->s;
	int rc;
	run_lock(run);
	rc = snapshot_store_pages(run->r, s, err);
	uint8_t digest[ARCA_ID_LEN];
	if (rc == 0 && snapshot_digest(s, digest) != 0)
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	if (rc == 0 && a->prev && memcmp(digest, a->prev_digest, ARCA_ID_LEN) == 0) {
		a->res->unchanged = true;
		run_unlock(run);
		return 0;
	}
	uint64_t msgs = 0, bytes = 0;
	if (rc == 0)
		rc = snapshot_store(run->r, s, a->res->info.root, &msgs, &bytes, err);
	/* the cache entries: each changed folder's state, then the root */
	for (size_t i = 0; i < s->nfolders && rc == 0; i++) {
		struct snap_folder *f = &s->folders[i];
		if (!(f->attrs & SNAP_FOLDER_SELECTABLE))
			continue;
		abuf_reset(&a->val);
		/* STATUS numbers as the server will report them while nothing
		 * changes: MESSAGES = records, UIDNEXT = nextuid */
		rc = abuf_add_u32(&a->val, (uint32_t)f->nmsgs);
		rc = rc ? rc : abuf_add_u32(&a->val, f->nextuid);
		rc = rc ? rc : snap_folder_encode_full(f, &a->val);
		rc = rc ? rc : key_of(&a->key, "f", a->account, f->name);
		rc = rc ? rc : repo_cache_add(run->r, a->key.data, a->key.len, a->val.data, a->val.len);
		if (rc)
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	if (rc == 0) {
		abuf_reset(&a->val);
		rc = abuf_add(&a->val, digest, ARCA_ID_LEN);
		struct abuf root = ABUF_INIT;
		rc = rc ? rc : snapshot_encode_root(s, &root);
		rc = rc ? rc : abuf_add(&a->val, root.data, root.len);
		abuf_release(&root);
		rc = rc ? rc : key_of(&a->key, "a", a->account, NULL);
		rc = rc ? rc : repo_cache_add(run->r, a->key.data, a->key.len, a->val.data, a->val.len);
		if (rc)
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	if (rc == 0) {
		struct snap_info *si = &a->res->info;
		si->time_ns = s->time_ns;
		si->messages = msgs;
		si->bytes = bytes;
		si->folders = s->nfolders;
		si->account = strdup(a->account);
		si->source = strdup("imap");
		if (si->account == NULL || si->source == NULL)
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		rc = rc ? rc : repo_stage_snapshot(run->r, si, err);
	}
	if (rc == 0) {
		if (run->nstaged == run->staged_cap) {
			size_t cap = run->staged_cap ? run->staged_cap * 2 : 64;
			struct pull_account_result **v = realloc(run->staged, cap * sizeof(*v));
			if (v == NULL)
				rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			else {
				run->staged = v;
				run->staged_cap = cap;
			}
		}
		if (rc == 0)
			run->staged[run->nstaged++] = a->res;
	}
	if (rc)
		a->repo_failed = true;
	run_unlock(run);
	return rc;
}

/* ---- the run: workers, batches ---- */

static void acct_release(struct acct *a)
{
	if (a->c)
		imap_conn_close(a->c);
	snapshot_free(a->prev);
	for (size_t i = 0; i < a->ncached; i++)
		snapshot_free(a->cachedv[i]);
	free(a->cachedv);
	free(a->cached_st);
	snapshot_free(a->s);
	abuf_release(&a->key);
	abuf_release(&a->val);
	abuf_release(&a->tmp);
	abuf_release(&a->norm);
	repo_prepared_release(&a->prep);
	guidmap_free(&a->seen);
}

/* Commit what is staged (the caller holds the lock).  The stage hook runs
 * first: alarms must be in the log before the snapshots they mark. */
static int commit_batch(struct run *run, struct arca_err *err)
{
	int rc = 0;
	if (run->stage && run->nstaged > 0)
		rc = run->stage(run->o->ctx, run->r, run->staged, run->nstaged, err);
	if (rc == 0)
		rc = repo_commit_staged(run->r, NULL, NULL, err);
	/* the seq of each committed snapshot: find it by root in the list */
	if (rc == 0 && run->nstaged > 0) {
		struct snap_info *list = NULL;
		size_t n = 0;
		if (repo_snapshots(run->r, &list, &n, NULL) == 0) {
			for (size_t i = 0; i < run->nstaged; i++)
				for (size_t k = n; k-- > 0;)
					if (memcmp(list[k].root, run->staged[i]->info.root, ARCA_ID_LEN) == 0) {
						run->staged[i]->info.seq = list[k].seq;
						break;
					}
			snap_infos_free(list, n);
		}
	}
	run->nstaged = 0;
	run->fetched_since_commit = 0;
	return rc;
}

struct worker_arg {
	struct run *run;
	struct pull_account_result *results;
};

static void *worker_main(void *arg)
{
	struct worker_arg *wa = arg;
	struct run *run = wa->run;
	struct repo_worker *rw = repo_worker_new(run->r);
	for (;;) {
		size_t i = atomic_fetch_add(&run->next, 1);
		if (i >= run->naccounts)
			break;
		run_lock(run);
		bool stop = run->fatal != 0;
		run_unlock(run);
		if (stop)
			break;
		struct pull_account_result *res = &wa->results[i];
		res->account = run->accounts[i];
		struct acct a = { .run = run, .worker = rw, .account = run->accounts[i], .res = res };
		if (rw == NULL)
			res->rc = arca_err_set(&res->err, ARCA_ENOMEM, "out of memory");
		else
			res->rc = pull_one(&a, &res->err);
		bool repo_failed = a.repo_failed;
		acct_release(&a);
		run_lock(run);
		if (res->rc)
			run->failed++;
		/* A failure to write the repository stops the run; a failed
		 * account (server, network, login) does not. */
		if (repo_failed && run->fatal == 0) {
			run->fatal = res->rc;
			run->fatal_err = res->err;
		}
		uint64_t every = run->o->commit_every ? run->o->commit_every : (256u << 20);
		if (run->fatal == 0 && (run->fetched_since_commit >= every || run->nstaged >= 1000)) {
			struct arca_err cerr = { 0 };
			int crc = commit_batch(run, &cerr);
			if (crc) {
				run->fatal = crc;
				run->fatal_err = cerr;
			}
		}
		run_unlock(run);
		if (run->o->done)
			run->o->done(run->o->ctx, res);
	}
	repo_worker_free(rw);
	return NULL;
}

int pull_accounts(struct repo *r, const struct pull_opts *o, char *const *accounts,
		  size_t naccounts, pull_stage_fn *stage, size_t *failed_r,
		  struct arca_err *err)
{
	struct run run = { .r = r, .o = o, .accounts = accounts, .naccounts = naccounts,
			   .stage = stage };
	pthread_mutex_init(&run.lock, NULL);
	atomic_init(&run.next, 0);
	struct pull_account_result *results = calloc(naccounts ? naccounts : 1, sizeof(*results));
	unsigned nw = o->parallel ? o->parallel : 1;
	if (nw > naccounts)
		nw = naccounts ? (unsigned)naccounts : 1;
	pthread_t *th = calloc(nw, sizeof(*th));
	if (results == NULL || th == NULL) {
		free(results);
		free(th);
		pthread_mutex_destroy(&run.lock);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	struct worker_arg wa = { &run, results };
	unsigned started = 0;
	for (; started < nw; started++)
		if (pthread_create(&th[started], NULL, worker_main, &wa) != 0)
			break;
	if (started == 0)
		worker_main(&wa);   /* no threads: do it here */
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	int rc = run.fatal;
	if (rc)
		*err = run.fatal_err;
	else
		rc = commit_batch(&run, err);
	*failed_r = run.failed;
	for (size_t i = 0; i < naccounts; i++)
		snap_info_release(&results[i].info);
	free(results);
	free(th);
	free(run.staged);
	pthread_mutex_destroy(&run.lock);
	return rc;
}
