/*
 * serve_keeper.c - the key-holding side of serve-imap (serve_keeper.h).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "pack.h"
#include "serve_keeper.h"
#include "serve_proto.h"
#include "snapshot.h"
#include "maildir.h"
#include "banned.h"

/* ---- pure helpers ---- */

static bool parse_digits(const char *p, const char *stops, uint64_t *v_r)
{
	uint64_t v = 0;
	size_t digits = 0;
	for (; *p >= '0' && *p <= '9'; p++, digits++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (digits == 0 || digits > 20 || (*p != '\0' && strchr(stops, *p) == NULL))
		return false;
	*v_r = v;
	return true;
}

bool serve_served_size_hint(const char *base, const char *uidlist_ext, uint64_t *size_r)
{
	/* ",W=<digits>" ended by ',' ':' or the end, as maildir_name_size
	 * reads ",S=" */
	for (const char *p = base; p && (p = strstr(p, ",W=")) != NULL;) {
		p += 3;
		if (parse_digits(p, ",:", size_r))
			return true;
	}
	/* dovecot-uidlist's extension fields: "W1234 S1200 ..." */
	for (const char *p = uidlist_ext; p && *p;) {
		while (*p == ' ')
			p++;
		if (*p == 'W' && parse_digits(p + 1, " ", size_r))
			return true;
		while (*p && *p != ' ')
			p++;
	}
	return false;
}

int serve_crlf(const uint8_t *p, size_t n, struct abuf *out)
{
	size_t bare = 0;
	for (size_t i = 0; i < n; i++)
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			bare++;
	if (abuf_reserve(out, n + bare) != 0)
		return ARCA_ENOMEM;
	uint8_t *w = out->data + out->len;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			*w++ = '\r';
		*w++ = p[i];
	}
	out->len += n + bare;
	return 0;
}

size_t serve_crlf_chunk(const uint8_t *p, size_t n, size_t *pos, uint8_t *out, size_t cap)
{
	size_t i = *pos, w = 0;
	while (i < n) {
		bool bare = p[i] == '\n' && (i == 0 || p[i - 1] != '\r');
		if (w + (bare ? 2 : 1) > cap)
			break;
		if (bare)
			out[w++] = '\r';
		out[w++] = p[i++];
	}
	*pos = i;
	return w;
}

static uint64_t served_len(const uint8_t *p, size_t n)
{
	uint64_t len = n;
	for (size_t i = 0; i < n; i++)
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			len++;
	return len;
}

/* A name for the log: printable ASCII kept, the rest '?', cut at 128. */
static void log_name(char out[130], const char *s)
{
	size_t i = 0;
	for (; s[i] && i < 128; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	out[i] = '\0';
}

/* ---- the account cache ---- */

struct kmsg {
	struct vv_msg v;
	uint64_t raw_size;
	uint32_t seq;                   /* position in the snapshot's folder */
	uint8_t ctype;
	bool size_known;                /* v.size is the served size */
	bool renumber;                  /* gets a new UID (convert_folder) */
	uint8_t cid[ARCA_ID_LEN];
};

struct kfolder {
	struct vv_folder f;             /* name, special_use owned */
	char **keywords;
	size_t nkeywords;
	struct kmsg *msgs;              /* ascending UID */
	size_t nmsgs;
	bool sizes_done;
};

struct kacct {
	struct kacct *next;
	char *account;
	uint8_t root[ARCA_ID_LEN];
	uint64_t time_ns;
	unsigned refs;                  /* channels bound to it */
	uint64_t last_used;
	bool loaded;
	struct kfolder *folders;
	struct vv_folder *list;         /* shallow copies of folders[i].f */
	size_t nfolders;
	char separator;                 /* '.' or '/' */
	char **gone;                    /* subscriptions to no folder, sorted, each once */
	size_t ngone;
	size_t bytes;                   /* what the loaded state takes, roughly */
};

struct serve_keeper {
	struct serve_keeper_opts o;
	pthread_mutex_t lock;           /* repo, accounts, cache_bytes */
	struct kacct *accts;
	size_t cache_bytes;
	struct login_throttle *thr;
	/* channels */
	pthread_mutex_t chlock;
	pthread_cond_t chcond;
	int *chfds;                     /* -1: free slot */
	unsigned nchannels;
	bool stopping;
};

static void klog(struct serve_keeper *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void klog(struct serve_keeper *k, const char *fmt, ...)
{
	if (k->o.log == NULL)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	k->o.log(k->o.log_ctx, line);
}

static void kfolders_free(struct kfolder *f, size_t n)
{
	for (size_t i = 0; f && i < n; i++) {
		free(f[i].f.name);
		free(f[i].f.special_use);
		for (size_t j = 0; j < f[i].nkeywords; j++)
			free(f[i].keywords[j]);
		free(f[i].keywords);
		free(f[i].msgs);
	}
	free(f);
}

static void acct_unload(struct serve_keeper *k, struct kacct *a)
{
	kfolders_free(a->folders, a->nfolders);
	for (size_t i = 0; i < a->ngone; i++)
		free(a->gone[i]);
	free(a->gone);
	a->gone = NULL;
	a->ngone = 0;
	free(a->list);
	a->folders = NULL;
	a->list = NULL;
	a->nfolders = 0;
	a->loaded = false;
	k->cache_bytes -= a->bytes;
	a->bytes = 0;
}

/* by UID, equal UIDs in the snapshot's order (qsort is not stable) */
static int kmsg_uid_cmp(const void *a, const void *b)
{
	const struct kmsg *x = a, *y = b;
	if (x->v.uid != y->v.uid)
		return x->v.uid < y->v.uid ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int kmsg_seq_cmp(const void *a, const void *b)
{
	const struct kmsg *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static uint32_t maildir_flags_to_vv(uint32_t f)
{
	uint32_t v = 0;
	if (f & (UINT32_C(1) << ('S' - 'A')))
		v |= VV_SEEN;
	if (f & (UINT32_C(1) << ('R' - 'A')))
		v |= VV_ANSWERED;
	if (f & (UINT32_C(1) << ('F' - 'A')))
		v |= VV_FLAGGED;
	if (f & (UINT32_C(1) << ('T' - 'A')))
		v |= VV_DELETED;
	if (f & (UINT32_C(1) << ('D' - 'A')))
		v |= VV_DRAFT;
	return v;
}

/* One snapshot folder (messages loaded) into what is served.  maildirpp:
 * the snapshot's layout has no directory for a folder that only holds
 * others, so Dovecot showed it \NonExistent. */
static int convert_folder(const struct snap_folder *sf, bool maildirpp, struct kfolder *kf)
{
	memset(kf, 0, sizeof(*kf));
	kf->f.name = strdup(sf->name);
	kf->f.special_use = strdup(sf->special_use ? sf->special_use : "");
	if (kf->f.name == NULL || kf->f.special_use == NULL)
		return ARCA_ENOMEM;
	if (strlen(kf->f.special_use) > SERVE_SPECIAL_USE_MAX || strlen(kf->f.name) > SERVE_FOLDER_NAME_MAX)
		return ARCA_ELIMIT;
	kf->f.attrs = ((sf->attrs & SNAP_FOLDER_SELECTABLE) ? VV_SELECTABLE :
		       maildirpp ? VV_NONEXISTENT : 0) |
		      ((sf->attrs & SNAP_FOLDER_SUBSCRIBED) ? VV_SUBSCRIBED : 0);
	kf->f.uidvalidity = sf->uidvalidity;
	uint64_t hms = sf->highestmodseq ? sf->highestmodseq : 1;
	uint64_t next = sf->nextuid ? sf->nextuid : 1;
	if (sf->nkeywords > 0) {
		kf->keywords = calloc(sf->nkeywords, sizeof(char *));
		if (kf->keywords == NULL)
			return ARCA_ENOMEM;
		for (size_t i = 0; i < sf->nkeywords; i++) {
			if ((kf->keywords[i] = strdup(sf->keywords[i])) == NULL)
				return ARCA_ENOMEM;
			kf->nkeywords++;
			if (kf->keywords[i][0] == '\0' || strlen(kf->keywords[i]) > SERVE_KEYWORD_MAX)
				return ARCA_ELIMIT;
		}
	}
	uint64_t kwmask = sf->nkeywords >= 64 ? UINT64_MAX : (UINT64_C(1) << sf->nkeywords) - 1;
	if (sf->nmsgs > SERVE_MSGS_MAX)
		return ARCA_ELIMIT;
	if (sf->nmsgs > 0 && (kf->msgs = calloc(sf->nmsgs, sizeof(*kf->msgs))) == NULL)
		return ARCA_ENOMEM;
	for (size_t i = 0; i < sf->nmsgs; i++) {
		const struct snap_msg *m = &sf->msgs[i];
		struct kmsg *k = &kf->msgs[i];
		k->v.uid = m->uid;
		k->v.modseq = m->modseq ? m->modseq : 1;
		k->v.flags = maildir_flags_to_vv(m->flags);
		k->v.keywords = m->keywords & kwmask;
		k->v.date = m->date_sec;
		k->v.recent = m->in_new;
		k->raw_size = m->size;
		k->seq = (uint32_t)i;
		k->ctype = m->content_type;
		memcpy(k->cid, m->content_id, ARCA_ID_LEN);
		uint64_t w;
		if (serve_served_size_hint(m->base, m->uidlist_ext, &w) && w >= m->size && w <= SERVE_BODY_MAX) {
			k->v.size = w;
			k->size_known = true;
		}
		if (k->v.modseq > hms)
			hms = k->v.modseq;
	}
	kf->nmsgs = sf->nmsgs;
	/* ascending UIDs; a UID seen again (a damaged record: the first in
	 * the snapshot's order keeps it) and messages that never got one are
	 * given new UIDs after the highest, in the snapshot's order, as
	 * Dovecot would on seeing the files.  A flag marks them, not a UID
	 * value: every u32 but 0 is a real UID. */
	if (kf->nmsgs > 1)
		qsort(kf->msgs, kf->nmsgs, sizeof(*kf->msgs), kmsg_uid_cmp);
	size_t nrenum = 0;
	uint64_t maxuid = 0;            /* the highest UID kept; 0: none */
	for (size_t i = 0; i < kf->nmsgs; i++) {
		struct kmsg *m = &kf->msgs[i];
		if (m->v.uid == 0 || (maxuid != 0 && m->v.uid == maxuid)) {
			m->renumber = true;
			nrenum++;
		} else {
			maxuid = m->v.uid;  /* ascending: the last kept is the highest */
		}
	}
	if (maxuid + 1 > next)
		next = maxuid + 1;
	if (nrenum > 0) {
		if (next + nrenum > UINT32_MAX)
			return ARCA_ELIMIT;
		qsort(kf->msgs, kf->nmsgs, sizeof(*kf->msgs), kmsg_seq_cmp);
		for (size_t i = 0; i < kf->nmsgs; i++)
			if (kf->msgs[i].renumber) {
				kf->msgs[i].v.uid = (uint32_t)next++;
				kf->msgs[i].renumber = false;
			}
		qsort(kf->msgs, kf->nmsgs, sizeof(*kf->msgs), kmsg_uid_cmp);
	}
	if (next > UINT32_MAX)
		return ARCA_ELIMIT;
	kf->f.uidnext = (uint32_t)next;
	kf->f.highestmodseq = hms;
	kf->f.messages = (uint32_t)kf->nmsgs;
	for (size_t i = 0; i < kf->nmsgs; i++)
		if (!(kf->msgs[i].v.flags & VV_SEEN))
			kf->f.unseen++;
	return 0;
}

/* The overlay's changes of a converted folder newer than its snapshot
 * (overlay_apply does the same for a restore, on the snapshot's UIDs;
 * here a message renumbered by convert_folder keeps the changes made to
 * it under the UID it is served with). */
static int kfolder_overlay(const struct overlay *ov, const char *account, uint64_t snap_time,
			   struct kfolder *kf)
{
	const struct ovl_folder *of = overlay_folder(ov, account, kf->f.name, kf->f.uidvalidity);
	if (of == NULL)
		return 0;
	int map[OVL_KEYWORDS_MAX];
	for (size_t i = 0; i < of->nkeywords; i++) {
		map[i] = -1;
		for (size_t j = 0; j < kf->nkeywords && map[i] < 0; j++)
			if (strcmp(kf->keywords[j], of->keywords[i]) == 0)
				map[i] = (int)j;
	}
	bool any = false;
	for (size_t i = 0; i < kf->nmsgs; i++) {
		struct kmsg *m = &kf->msgs[i];
		const struct overlay_msg *o = ovl_folder_msg(of, m->v.uid);
		if (o == NULL || o->time_ns <= snap_time)
			continue;
		uint64_t kw = 0;
		for (size_t k = 0; k < of->nkeywords; k++) {
			if (!(o->keywords & (UINT64_C(1) << k)))
				continue;
			if (map[k] < 0) {
				if (kf->nkeywords >= SERVE_KEYWORDS_MAX)
					continue;   /* never made: the keeper refuses a 65th */
				char **g = realloc(kf->keywords, (kf->nkeywords + 1) * sizeof(char *));
				if (g == NULL)
					return ARCA_ENOMEM;
				kf->keywords = g;
				if ((g[kf->nkeywords] = strdup(of->keywords[k])) == NULL)
					return ARCA_ENOMEM;
				map[k] = (int)kf->nkeywords++;
			}
			kw |= UINT64_C(1) << map[k];
		}
		m->v.flags = o->flags;
		m->v.keywords = kw;
		if (o->modseq > m->v.modseq)
			m->v.modseq = o->modseq;
		any = true;
	}
	if (!any)
		return 0;
	kf->f.unseen = 0;
	for (size_t i = 0; i < kf->nmsgs; i++) {
		if (!(kf->msgs[i].v.flags & VV_SEEN))
			kf->f.unseen++;
		if (kf->msgs[i].v.modseq > kf->f.highestmodseq)
			kf->f.highestmodseq = kf->msgs[i].v.modseq;
	}
	return 0;
}

static int strp_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The snapshot's subscriptions that name no folder (Dovecot keeps a
 * subscription when its folder is deleted, and lists it), sorted, each
 * once, at most SERVE_SUBS_MAX; names the channel can't carry (empty,
 * too long) are left out. */
static int gone_subscriptions(const struct snapshot *s, char ***gone_r, size_t *n_r)
{
	*gone_r = NULL;
	*n_r = 0;
	if (s->nsubscriptions == 0)
		return 0;
	const char **names = malloc((s->nfolders ? s->nfolders : 1) * sizeof(*names));
	char **gone = calloc(s->nsubscriptions, sizeof(*gone));
	if (names == NULL || gone == NULL) {
		free(names);
		free(gone);
		return ARCA_ENOMEM;
	}
	bool have_inbox = false;
	for (size_t i = 0; i < s->nfolders; i++) {
		names[i] = s->folders[i].name;
		have_inbox |= strcmp(names[i], "INBOX") == 0;
	}
	qsort(names, s->nfolders, sizeof(*names), strp_cmp);
	size_t n = 0;
	int rc = 0;
	for (size_t i = 0; i < s->nsubscriptions && n < SERVE_SUBS_MAX; i++) {
		const char *sub = s->subscriptions[i];
		size_t len = strlen(sub);
		if (len == 0 || len > SERVE_FOLDER_NAME_MAX ||
		    (have_inbox && strcasecmp(sub, "INBOX") == 0) ||
		    (s->nfolders > 0 && bsearch(&sub, names, s->nfolders, sizeof(*names), strp_cmp) != NULL))
			continue;
		if ((gone[n] = strdup(sub)) == NULL) {
			rc = ARCA_ENOMEM;
			break;
		}
		n++;
	}
	free(names);
	if (rc) {
		for (size_t i = 0; i < n; i++)
			free(gone[i]);
		free(gone);
		return rc;
	}
	qsort(gone, n, sizeof(*gone), strp_cmp);
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		if (w > 0 && strcmp(gone[w - 1], gone[i]) == 0) {
			free(gone[i]);
			continue;
		}
		gone[w++] = gone[i];
	}
	if (w == 0) {
		free(gone);
		gone = NULL;
	}
	*gone_r = gone;
	*n_r = w;
	return 0;
}

/* The separator Dovecot showed for the snapshot's Maildir layout:
 * Maildir++ (and 0, a root that doesn't say) '.', LAYOUT=fs '/'; the
 * --separator option overrides it for every account. */
static char layout_separator(const struct serve_keeper *k, uint8_t layout)
{
	if (k->o.separator != '\0')
		return k->o.separator;
	return layout == MAILDIR_LAYOUT_FS ? '/' : '.';
}

/* Evict loaded accounts no channel uses, least recently used first,
 * until the cache fits. */
static void cache_trim(struct serve_keeper *k)
{
	while (k->cache_bytes > k->o.cache_bytes) {
		struct kacct *victim = NULL;
		for (struct kacct *a = k->accts; a; a = a->next)
			if (a->loaded && a->refs == 0 && (victim == NULL || a->last_used < victim->last_used))
				victim = a;
		if (victim == NULL)
			return;
		acct_unload(k, victim);
	}
}

/* Under the lock: the account's folders and messages in memory. */
static int acct_load(struct serve_keeper *k, struct kacct *a, struct arca_err *err)
{
	if (a->loaded)
		return 0;
	struct snapshot *s = NULL;
	int rc = snapshot_load(k->o.repo, a->root, &s, err);
	if (rc)
		return rc;
	if (s->nfolders > SERVE_FOLDERS_MAX) {
		snapshot_free(s);
		return arca_err_set(err, ARCA_ELIMIT, "%zu folders", s->nfolders);
	}
	struct kfolder *kf = calloc(s->nfolders ? s->nfolders : 1, sizeof(*kf));
	struct vv_folder *list = calloc(s->nfolders ? s->nfolders : 1, sizeof(*list));
	size_t bytes = sizeof(*a);
	size_t done = 0;
	if (kf == NULL || list == NULL)
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	for (; rc == 0 && done < s->nfolders; done++) {
		struct snap_folder *sf = &s->folders[done];
		if (sf->attrs & SNAP_FOLDER_SELECTABLE)
			rc = snapshot_load_msgs(k->o.repo, sf, err);
		if (rc == 0) {
			rc = convert_folder(sf, s->layout != MAILDIR_LAYOUT_FS, &kf[done]);
			if (rc)
				arca_err_set(err, rc, "folder %.200s: %s", sf->name,
					     rc == ARCA_ELIMIT ? "beyond the served limits" : "out of memory");
		}
		/* the flag changes kept since: served again after an unload,
		 * and after a restart of serve-imap, on the UIDs as served */
		if (rc == 0 && k->o.overlay != NULL &&
		    (rc = kfolder_overlay(k->o.overlay, a->account, s->time_ns, &kf[done])) != 0)
			arca_err_set(err, rc, "out of memory");
		/* the snapshot's records are not kept: only what is served */
		snap_folder_drop_msgs(sf);
		if (rc) {
			done++;
			break;
		}
		list[done] = kf[done].f;
		bytes += sizeof(*kf) + sizeof(*list) + strlen(kf[done].f.name) + 64 +
			 kf[done].nmsgs * sizeof(struct kmsg);
	}
	char **gone = NULL;
	size_t ngone = 0;
	if (rc == 0 && (rc = gone_subscriptions(s, &gone, &ngone)) != 0)
		arca_err_set(err, rc, "out of memory");
	for (size_t i = 0; i < ngone; i++)
		bytes += sizeof(char *) + strlen(gone[i]) + 1;
	char sep = layout_separator(k, s->layout);
	snapshot_free(s);
	if (rc) {
		kfolders_free(kf, done);
		free(list);
		return rc;
	}
	a->separator = sep;
	a->gone = gone;
	a->ngone = ngone;
	a->folders = kf;
	a->list = list;
	a->nfolders = done;
	a->loaded = true;
	a->bytes = bytes;
	k->cache_bytes += bytes;
	cache_trim(k);
	return 0;
}

/* Read a content object (BLOB or CHUNKLIST) into out. */
static int read_content(struct repo *r, uint8_t type, const uint8_t id[ARCA_ID_LEN],
			uint64_t limit, struct abuf *out, struct arca_err *err)
{
	abuf_reset(out);
	if (type == OBJ_BLOB) {
		int rc = repo_get(r, id, OBJ_BLOB, out, err);
		if (rc == 0 && out->len > limit)
			rc = arca_err_set(err, ARCA_ELIMIT, "a message larger than served");
		return rc;
	}
	if (type != OBJ_CHUNKLIST)
		return arca_err_set(err, ARCA_ECORRUPT, "not a content type: %u", type);
	/* the chunk list as repo_get_stream reads it (docs/format/objects.md):
	 * u8 version 1, then (32-byte chunk id, varint length) to the end */
	struct abuf list = ABUF_INIT, chunk = ABUF_INIT;
	int rc = repo_get(r, id, OBJ_CHUNKLIST, &list, err);
	struct adec d;
	adec_init(&d, list.data, list.len);
	if (rc == 0 && adec_u8(&d) != 1)
		rc = arca_err_set(err, ARCA_ECORRUPT, "a chunk list of an unknown version");
	while (rc == 0 && adec_left(&d) > 0) {
		const uint8_t *cid = adec_raw(&d, ARCA_ID_LEN);
		uint64_t len = adec_varint(&d);
		if (d.failed) {
			rc = arca_err_set(err, ARCA_ECORRUPT, "a malformed chunk list");
			break;
		}
		if (len > limit - out->len) {
			rc = arca_err_set(err, ARCA_ELIMIT, "a message larger than served");
			break;
		}
		rc = repo_get(r, cid, OBJ_CHUNK, &chunk, err);
		if (rc == 0 && chunk.len != len)
			rc = arca_err_set(err, ARCA_ECORRUPT, "a chunk of the wrong length");
		if (rc == 0 && abuf_add(out, chunk.data, chunk.len) != 0)
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	abuf_release(&list);
	abuf_release(&chunk);
	return rc;
}

/* Under the lock: every message of the folder with its served size. */
static int folder_sizes(struct serve_keeper *k, struct kfolder *f, struct arca_err *err)
{
	if (f->sizes_done)
		return 0;
	struct abuf b = ABUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < f->nmsgs && rc == 0; i++) {
		struct kmsg *m = &f->msgs[i];
		if (m->size_known)
			continue;
		rc = read_content(k->o.repo, m->ctype, m->cid, SERVE_BODY_MAX, &b, err);
		if (rc == 0) {
			uint64_t s = served_len(b.data, b.len);
			if (s > SERVE_BODY_MAX)
				rc = arca_err_set(err, ARCA_ELIMIT, "a message larger than served");
			m->v.size = s;
			m->size_known = true;
		}
	}
	abuf_release(&b);
	if (rc == 0)
		f->sizes_done = true;
	return rc;
}

static struct kacct *acct_find(struct serve_keeper *k, const char *account)
{
	for (struct kacct *a = k->accts; a; a = a->next)
		if (strcmp(a->account, account) == 0)
			return a;
	return NULL;
}

/* ---- the default pick: the account's latest snapshot ---- */

static int pick_latest(void *ctx, struct repo *r, const char *account, uint8_t root_r[ARCA_ID_LEN],
		       uint64_t *time_ns_r, struct arca_err *err)
{
	(void)ctx;
	struct snap_info *list;
	size_t n;
	int rc = repo_snapshots(r, &list, &n, err);
	if (rc)
		return rc;
	const struct snap_info *pick = NULL;
	static const uint8_t zero[ARCA_ID_LEN];
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].account, account) == 0 && memcmp(list[i].root, zero, ARCA_ID_LEN) != 0 &&
		    (pick == NULL || list[i].time_ns >= pick->time_ns))
			pick = &list[i];
	if (pick) {
		memcpy(root_r, pick->root, ARCA_ID_LEN);
		*time_ns_r = pick->time_ns;
	}
	snap_infos_free(list, n);
	return pick ? 0 : arca_err_set(err, ARCA_ENOENT, "no snapshot of this account");
}

/* ---- the keeper ---- */

int serve_keeper_new(const struct serve_keeper_opts *o, struct serve_keeper **k_r,
		     struct arca_err *err)
{
	*k_r = NULL;
	if (o->repo == NULL || o->users == NULL)
		return arca_err_set(err, ARCA_EINVAL, "serve keeper: no repository or users");
	if (sodium_init() < 0)
		return arca_err_set(err, ARCA_EIO, "libsodium does not start");
	struct serve_keeper *k = calloc(1, sizeof(*k));
	if (k == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	k->o = *o;
	if (k->o.pick == NULL)
		k->o.pick = pick_latest;
	if (k->o.cache_bytes == 0)
		k->o.cache_bytes = (size_t)256 << 20;
	if (k->o.max_channels == 0)
		k->o.max_channels = 1000;
	if (k->o.login_tries == 0)
		k->o.login_tries = 10;
	if (k->o.send_timeout_ms == 0)
		k->o.send_timeout_ms = 60000;
	k->thr = login_throttle_new(&o->throttle);
	k->chfds = malloc(k->o.max_channels * sizeof(int));
	if (k->thr == NULL || k->chfds == NULL) {
		login_throttle_free(k->thr);
		free(k->chfds);
		free(k);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	for (unsigned i = 0; i < k->o.max_channels; i++)
		k->chfds[i] = -1;
	pthread_mutex_init(&k->lock, NULL);
	pthread_mutex_init(&k->chlock, NULL);
	pthread_cond_init(&k->chcond, NULL);
	*k_r = k;
	return 0;
}

unsigned serve_keeper_channels(struct serve_keeper *k)
{
	pthread_mutex_lock(&k->chlock);
	unsigned n = k->nchannels;
	pthread_mutex_unlock(&k->chlock);
	return n;
}

void serve_keeper_free(struct serve_keeper *k)
{
	if (k == NULL)
		return;
	pthread_mutex_lock(&k->chlock);
	k->stopping = true;
	for (unsigned i = 0; i < k->o.max_channels; i++)
		if (k->chfds[i] >= 0)
			shutdown(k->chfds[i], SHUT_RDWR);
	while (k->nchannels > 0)
		pthread_cond_wait(&k->chcond, &k->chlock);
	pthread_mutex_unlock(&k->chlock);
	for (struct kacct *a = k->accts, *next; a; a = next) {
		next = a->next;
		acct_unload(k, a);
		free(a->account);
		free(a);
	}
	login_throttle_free(k->thr);
	pthread_mutex_destroy(&k->lock);
	pthread_mutex_destroy(&k->chlock);
	pthread_cond_destroy(&k->chcond);
	free(k->chfds);
	free(k);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

struct chan {
	struct serve_keeper *k;
	int fd;
	char peer[SERVE_PEER_MAX + 1];
	struct kacct *acct;             /* bound account, or NULL */
	unsigned tries;
	struct abuf in, out;
	const char *violation;          /* set: the channel ends */
};

static int send_out(struct chan *c)
{
	struct arca_err err = { 0 };
	if (serve_send(c->fd, &c->out, &err) != 0) {
		int e = errno;    /* send's, kept by arca_err_errno */
		if (e == EAGAIN || e == EWOULDBLOCK) {
			char shown[130];
			log_name(shown, c->acct ? c->acct->account : "(not logged in)");
			klog(c->k, "session of %s from %s took nothing from its channel for %u ms: channel closed",
			     shown, c->peer, c->k->o.send_timeout_ms);
		}
		c->violation = "";      /* the session is gone (or stuck): no protocol break */
		return -1;
	}
	return 0;
}

static void answer_no(struct chan *c, uint8_t reason, const char *text)
{
	if (serve_encode_no(&c->out, reason, text) == 0)
		(void)send_out(c);
}

static void answer_err(struct chan *c, int code, const char *text)
{
	if (serve_encode_err(&c->out, code, text) == 0)
		(void)send_out(c);
}

static void do_login(struct chan *c)
{
	struct serve_keeper *k = c->k;
	char user[SERVE_USER_MAX + 1], pass[SERVE_PASSWORD_MAX + 1];
	if (serve_decode_login(c->in.data, c->in.len, user, pass) != 0) {
		sodium_memzero(c->in.data, c->in.len);
		c->violation = "a malformed LOGIN";
		return;
	}
	sodium_memzero(c->in.data, c->in.len);
	if (c->acct != NULL) {
		sodium_memzero(pass, sizeof(pass));
		c->violation = "a LOGIN after a login";
		return;
	}
	char norm[PASSWD_USER_MAX + 1], shown[130];
	bool valid = passwd_user_norm(user, norm);
	log_name(shown, valid ? norm : user);
	if (!valid)
		snprintf(norm, sizeof(norm), "?");
	c->tries++;
	const char *which = "channel";
	uint64_t now = arca_mono_ns();
	/* the check is reserved here, under the throttle's lock, and ended
	 * by login_throttle_fail/_ok: parallel channels can't all pass the
	 * throttle before the first failure is counted */
	if (c->tries > k->o.login_tries ||
	    login_throttle_begin(k->thr, norm, c->peer, now, &which) != 0) {
		sodium_memzero(pass, sizeof(pass));
		klog(k, "login refused: %s from %s: too many failures (throttled by %s)", shown, c->peer, which);
		/* the refusal is slowed down too: hammering gains nothing */
		sleep_ms(k->o.throttle.delay_ms ? k->o.throttle.delay_ms : 250);
		answer_no(c, SERVE_NO_THROTTLED, "too many failed logins; try again later");
		return;
	}
	struct arca_err err = { 0 };
	char warning[ARCA_ERR_MSG_MAX];
	int rc = valid ? passwd_check(k->o.users, norm, pass, &err, warning)
		       : arca_err_set(&err, ARCA_EKEY, "an impossible user name");
	sodium_memzero(pass, sizeof(pass));
	if (valid && warning[0])
		klog(k, "warning: users file: %s", warning);
	if (rc != 0) {
		unsigned delay = login_throttle_fail(k->thr, norm, c->peer, arca_mono_ns());
		klog(k, "login failed: %s from %s: %s", shown, c->peer, err.msg);
		sleep_ms(delay);
		answer_no(c, SERVE_NO_BAD, "wrong user name or password");
		return;
	}
	login_throttle_ok(k->thr, norm, c->peer);
	/* bind: the account's snapshot, picked once for the keeper's life */
	pthread_mutex_lock(&k->lock);
	struct kacct *a = acct_find(k, norm);
	if (a == NULL) {
		a = calloc(1, sizeof(*a));
		uint8_t root[ARCA_ID_LEN];
		uint64_t t = 0;
		if (a == NULL || (a->account = strdup(norm)) == NULL) {
			free(a);
			a = NULL;
			arca_err_set(&err, ARCA_ENOMEM, "out of memory");
		} else if ((rc = k->o.pick(k->o.pick_ctx, k->o.repo, norm, root, &t, &err)) != 0) {
			free(a->account);
			free(a);
			a = NULL;
		} else {
			memcpy(a->root, root, ARCA_ID_LEN);
			a->time_ns = t;
			a->next = k->accts;
			k->accts = a;
		}
	}
	if (a)
		a->refs++;
	pthread_mutex_unlock(&k->lock);
	if (a == NULL) {
		klog(k, "login refused: %s from %s: the vault can't serve this account: %s", shown, c->peer,
		     err.msg[0] ? err.msg : arca_strerror(rc));
		answer_no(c, SERVE_NO_UNAVAILABLE, "this account can't be served from the vault");
		return;
	}
	c->acct = a;
	char hex[2 * ARCA_ID_LEN + 1];
	hex_encode(hex, a->root, ARCA_ID_LEN);
	time_t sec = (time_t)(a->time_ns / 1000000000u);
	struct tm tm;
	char when[32];
	gmtime_r(&sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	klog(k, "login: %s from %s (snapshot %.16s of %s)", shown, c->peer, hex, when);
	if (serve_encode_ok(&c->out, k->o.overlay ? SERVE_OK_STORE : 0) == 0)
		(void)send_out(c);
}

static void do_folders(struct chan *c)
{
	struct serve_keeper *k = c->k;
	struct arca_err err = { 0 };
	pthread_mutex_lock(&k->lock);
	int rc = acct_load(k, c->acct, &err);
	/* a copy: a STORE changes counts (unseen, HIGHESTMODSEQ) under the
	 * lock; names and special-use strings stay while a channel is bound */
	size_t n = rc == 0 ? c->acct->nfolders : 0;
	struct vv_folder *list = NULL;
	if (rc == 0 && n > 0 && (list = malloc(n * sizeof(*list))) == NULL)
		rc = arca_err_set(&err, ARCA_ENOMEM, "out of memory");
	if (list)
		memcpy(list, c->acct->list, n * sizeof(*list));
	pthread_mutex_unlock(&k->lock);
	if (rc) {
		char shown[130];
		log_name(shown, c->acct->account);
		klog(k, "error: %s: cannot load the snapshot: %s", shown, err.msg);
		answer_err(c, rc, "the vault can't read this account's snapshot");
		return;
	}
	size_t off = 0;
	do {
		size_t m = n - off > SERVE_FOLDERS_PER_FRAME ? SERVE_FOLDERS_PER_FRAME : n - off;
		bool last = off + m == n;
		if (serve_encode_folder_list(&c->out, last, c->acct->separator, list + off, m) != 0) {
			c->violation = "cannot encode the folder list";
			free(list);
			return;
		}
		if (send_out(c) != 0) {
			free(list);
			return;
		}
		off += m;
	} while (off < n);
	free(list);
	/* then the subscriptions whose folder is gone (at least one frame) */
	char *const *gone = c->acct->gone;
	n = c->acct->ngone;
	off = 0;
	do {
		size_t m = n - off > SERVE_SUBS_PER_FRAME ? SERVE_SUBS_PER_FRAME : n - off;
		if (serve_encode_gone_subs(&c->out, off + m == n, gone + off, m) != 0) {
			c->violation = "cannot encode the subscriptions";
			return;
		}
		if (send_out(c) != 0)
			return;
		off += m;
	} while (off < n);
}

/* Under the lock: the bound account loaded and folder i selectable. */
static struct kfolder *folder_get(struct chan *c, size_t i, struct arca_err *err, int *rc_r)
{
	*rc_r = acct_load(c->k, c->acct, err);
	if (*rc_r)
		return NULL;
	if (i >= c->acct->nfolders || !(c->acct->folders[i].f.attrs & VV_SELECTABLE)) {
		*rc_r = arca_err_set(err, ARCA_ENOENT, "no such folder");
		return NULL;
	}
	return &c->acct->folders[i];
}

static char **strv_dup(char *const *v, size_t n)
{
	if (n == 0)
		return NULL;
	char **d = calloc(n, sizeof(*d));
	for (size_t i = 0; d && i < n; i++)
		if ((d[i] = strdup(v[i])) == NULL) {
			for (size_t j = 0; j < i; j++)
				free(d[j]);
			free(d);
			d = NULL;
		}
	return d;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static void do_open(struct chan *c)
{
	struct serve_keeper *k = c->k;
	size_t fi;
	if (serve_decode_open(c->in.data, c->in.len, &fi) != 0) {
		c->violation = "a malformed OPEN";
		return;
	}
	struct arca_err err = { 0 };
	int rc;
	struct vv_msg *msgs = NULL;
	size_t n = 0;
	char **kw = NULL;
	size_t nkw = 0;
	pthread_mutex_lock(&k->lock);
	struct kfolder *f = folder_get(c, fi, &err, &rc);
	if (f)
		rc = folder_sizes(k, f, &err);
	if (rc == 0) {
		/* a copy to send outside the lock */
		n = f->nmsgs;
		/* copies: a STORE may change them once the lock is let go */
		if ((kw = strv_dup(f->keywords, f->nkeywords)) == NULL && f->nkeywords > 0)
			rc = arca_err_set(&err, ARCA_ENOMEM, "out of memory");
		else
			nkw = f->nkeywords;
		if (rc == 0 && n > 0 && (msgs = malloc(n * sizeof(*msgs))) == NULL)
			rc = arca_err_set(&err, ARCA_ENOMEM, "out of memory");
		for (size_t i = 0; rc == 0 && i < n; i++)
			msgs[i] = f->msgs[i].v;
	}
	pthread_mutex_unlock(&k->lock);
	if (rc) {
		if (rc != ARCA_ENOENT) {
			char shown[130];
			log_name(shown, c->acct->account);
			klog(k, "error: %s: folder %zu: %s", shown, fi, err.msg);
		}
		free(msgs);
		strv_free(kw, nkw);
		answer_err(c, rc, rc == ARCA_ENOENT ? "no such folder" : "the vault can't read this folder");
		return;
	}
	int enc = serve_encode_mailbox(&c->out, kw, nkw, n);
	strv_free(kw, nkw);
	if (enc != 0) {
		free(msgs);
		c->violation = "cannot encode a mailbox";
		return;
	}
	int sent = send_out(c);
	for (size_t off = 0; sent == 0 && off < n;) {
		size_t m = n - off > SERVE_MSGS_PER_FRAME ? SERVE_MSGS_PER_FRAME : n - off;
		if (serve_encode_msgs(&c->out, msgs + off, m) != 0) {
			c->violation = "cannot encode messages";
			break;
		}
		sent = send_out(c);
		off += m;
	}
	free(msgs);
}

static struct kmsg *msg_find(struct kfolder *f, uint32_t uid)
{
	size_t lo = 0, hi = f->nmsgs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->msgs[mid].v.uid == uid)
			return &f->msgs[mid];
		if (f->msgs[mid].v.uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void do_body(struct chan *c)
{
	struct serve_keeper *k = c->k;
	size_t fi;
	uint32_t uid;
	if (serve_decode_body(c->in.data, c->in.len, &fi, &uid) != 0) {
		c->violation = "a malformed BODY";
		return;
	}
	struct arca_err err = { 0 };
	struct abuf raw = ABUF_INIT;
	int rc;
	bool size_known = false;
	uint64_t size = 0;
	/* under the lock only what needs it: the repository read (struct
	 * repo is not thread-safe); counting, converting and sending go on
	 * outside it */
	pthread_mutex_lock(&k->lock);
	struct kfolder *f = folder_get(c, fi, &err, &rc);
	struct kmsg *m = f ? msg_find(f, uid) : NULL;
	if (f && m == NULL)
		rc = ARCA_ENOENT;
	if (m)
		rc = read_content(k->o.repo, m->ctype, m->cid, SERVE_BODY_MAX, &raw, &err);
	if (m && rc == 0 && raw.len != m->raw_size)
		rc = arca_err_set(&err, ARCA_ECORRUPT, "the content is %zu bytes, its record says %llu",
				  raw.len, (unsigned long long)m->raw_size);
	if (m) {
		size_known = m->size_known;
		size = m->v.size;
	}
	pthread_mutex_unlock(&k->lock);
	/* the served bytes are counted, never held: DATA frames are
	 * converted from the raw content one at a time */
	uint64_t served = rc == 0 ? served_len(raw.data, raw.len) : 0;
	if (rc == 0 && served > SERVE_BODY_MAX)
		rc = arca_err_set(&err, ARCA_ELIMIT, "a message larger than served");
	if (rc == 0 && (!size_known || served != size)) {
		/* the content wins for later sessions; when W= said
		 * otherwise this answer fails rather than contradict the
		 * RFC822.SIZE this session was told.  The account stays
		 * loaded while this channel is bound: m is still valid. */
		pthread_mutex_lock(&k->lock);
		m->v.size = served;
		m->size_known = true;
		pthread_mutex_unlock(&k->lock);
		if (size_known)
			rc = arca_err_set(&err, ARCA_ECORRUPT, "served as %llu bytes, W= says %llu (corrected)",
					  (unsigned long long)served, (unsigned long long)size);
	}
	if (rc) {
		abuf_release(&raw);
		if (rc != ARCA_ENOENT) {
			char shown[130];
			log_name(shown, c->acct->account);
			klog(k, "error: %s: folder %zu uid %u: %s", shown, fi, uid, err.msg);
		}
		answer_err(c, rc, rc == ARCA_ENOENT ? "no such message" : "the vault can't read this message");
		return;
	}
	uint8_t *chunk = served > 0 ? malloc(served < SERVE_DATA_MAX ? (size_t)served : SERVE_DATA_MAX) : NULL;
	if (served > 0 && chunk == NULL) {
		abuf_release(&raw);
		answer_err(c, ARCA_ENOMEM, "the vault can't read this message");
		return;
	}
	int sent = serve_encode_body_r(&c->out, served) == 0 ? send_out(c) : -1;
	size_t pos = 0;
	while (sent == 0 && pos < raw.len) {
		size_t n = serve_crlf_chunk(raw.data, raw.len, &pos, chunk,
					    served < SERVE_DATA_MAX ? (size_t)served : SERVE_DATA_MAX);
		if (n == 0 || serve_encode_data(&c->out, chunk, n) != 0) {
			c->violation = "cannot encode a message";
			break;
		}
		sent = send_out(c);
	}
	free(chunk);
	abuf_release(&raw);
}

/* Under the lock: apply a checked STORE to folder f of the bound account.
 * The change is made durable in the overlay first; only then does what
 * is served change.  res gets every message of the request that is there
 * (as it is now), the keyword list and the UIDs UNCHANGEDSINCE kept. */
static int store_apply(struct chan *c, size_t fi, struct kfolder *f, const struct vv_store *req,
		       struct vv_store_result *res, struct arca_err *err)
{
	char *kw[VV_KEYWORDS_MAX];
	size_t nkw = f->nkeywords;
	if (nkw > 0)
		memcpy(kw, f->keywords, nkw * sizeof(*kw));
	uint64_t mask;
	int rc = vv_store_keywords(kw, &nkw, req, &mask);
	if (rc)
		return arca_err_set(err, rc, rc == ARCA_ELIMIT ? "more than %d keywords in the folder"
							  : "out of memory", VV_KEYWORDS_MAX);
	size_t nnew = nkw - f->nkeywords;
	struct overlay_msg *ch = malloc(req->nuids * sizeof(*ch));
	struct kmsg **which = malloc(req->nuids * sizeof(*which));
	res->msgs = malloc(req->nuids * sizeof(*res->msgs));
	res->modified = malloc(req->nuids * sizeof(*res->modified));
	size_t nch = 0;
	if (ch == NULL || which == NULL || res->msgs == NULL || res->modified == NULL) {
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		goto out;
	}
	/* whatever can fail is done before the write: once a change is
	 * durable it is served, and the answer says so */
	if (nnew > 0) {
		char **grown = realloc(f->keywords, nkw * sizeof(char *));
		if (grown == NULL) {
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			goto out;
		}
		f->keywords = grown;    /* room only: nkeywords is still the old count */
	}
	if ((res->keywords = strv_dup(kw, nkw)) == NULL && nkw > 0) {
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		goto out;
	}
	res->nkeywords = nkw;
	uint64_t modseq = f->f.highestmodseq + 1;
	/* after the snapshot's time even if this host's clock is behind the
	 * one that took it: a change older than its snapshot is not applied */
	uint64_t now = arca_now_ns();
	if (now <= c->acct->time_ns)
		now = c->acct->time_ns + 1;
	uint64_t used = 0;
	for (size_t i = 0; i < req->nuids; i++) {
		struct kmsg *m = msg_find(f, req->uids[i]);
		if (m == NULL)
			continue;        /* not in this folder: nothing to do (RFC 3501 6.4.8) */
		if (req->has_unchangedsince && m->v.modseq > req->unchangedsince) {
			res->modified[res->nmodified++] = m->v.uid;
			continue;
		}
		uint32_t fl = m->v.flags;
		uint64_t kwm = m->v.keywords;
		vv_store_one(req, mask, &fl, &kwm);
		if (fl == m->v.flags && kwm == m->v.keywords)
			continue;
		ch[nch] = (struct overlay_msg){ .uid = m->v.uid, .flags = fl, .keywords = kwm,
						.modseq = modseq, .time_ns = now };
		which[nch++] = m;
		used |= kwm;
	}
	if (nch > 0) {
		/* the record names only the keywords its messages hold (each
		 * name once: a snapshot may list one twice) */
		char *rkw[VV_KEYWORDS_MAX];
		uint8_t to[VV_KEYWORDS_MAX];
		size_t nr = 0;
		for (size_t k = 0; k < nkw; k++) {
			if (!(used & (UINT64_C(1) << k)))
				continue;
			size_t j = 0;
			while (j < nr && strcmp(rkw[j], kw[k]) != 0)
				j++;
			if (j == nr)
				rkw[nr++] = kw[k];
			to[k] = (uint8_t)j;
		}
		struct overlay_msg *rec = malloc(nch * sizeof(*rec));
		if (rec == NULL) {
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			goto out;
		}
		for (size_t i = 0; i < nch; i++) {
			rec[i] = ch[i];
			rec[i].keywords = 0;
			for (size_t k = 0; k < nkw; k++)
				if (ch[i].keywords & (UINT64_C(1) << k))
					rec[i].keywords |= UINT64_C(1) << to[k];
		}
		rc = overlay_record(c->k->o.overlay, c->acct->account, f->f.name, f->f.uidvalidity,
				    rkw, nr, rec, nch, now, err);
		free(rec);
		if (rc)
			goto out;
		/* durable: now served */
		for (size_t i = 0; i < nch; i++) {
			struct kmsg *m = which[i];
			if ((m->v.flags & VV_SEEN) != (ch[i].flags & VV_SEEN))
				f->f.unseen += (ch[i].flags & VV_SEEN) ? (uint32_t)-1 : 1;
			m->v.flags = ch[i].flags;
			m->v.keywords = ch[i].keywords;
			m->v.modseq = modseq;
		}
		f->f.highestmodseq = modseq;
		if (nnew > 0) {
			memcpy(f->keywords + f->nkeywords, kw + f->nkeywords, nnew * sizeof(char *));
			f->nkeywords = nkw;
			nnew = 0;    /* owned by the folder now */
		}
		c->acct->list[fi] = f->f;    /* the copy FOLDERS sends (under the lock) */
	} else if (nnew > 0) {
		/* nothing changed: the names are not the folder's */
		for (size_t i = f->nkeywords; i < nkw; i++)
			free(res->keywords[i]);
		res->nkeywords = f->nkeywords;
	}
	/* the messages of the request, but those UNCHANGEDSINCE kept */
	for (size_t i = 0, j = 0; i < req->nuids; i++) {
		while (j < res->nmodified && res->modified[j] < req->uids[i])
			j++;
		if (j < res->nmodified && res->modified[j] == req->uids[i])
			continue;
		const struct kmsg *m = msg_find(f, req->uids[i]);
		if (m != NULL)
			res->msgs[res->nmsgs++] = m->v;
	}
out:
	for (size_t i = nkw - nnew; i < nkw; i++)
		free(kw[i]);         /* names the change did not keep */
	free(ch);
	free(which);
	return rc;
}

/* STORED and its MSGS frames (the answer to STORE and to CHANGES).  One
 * that can't be encoded ends the channel: the session must not wait for
 * it. */
static void send_stored(struct chan *c, const struct vv_store_result *res)
{
	if (serve_encode_stored(&c->out, res->keywords, res->nkeywords, res->modified, res->nmodified,
				res->nmsgs) != 0) {
		c->violation = "cannot encode a STORED answer";
		return;
	}
	int sent = send_out(c);
	for (size_t off = 0; sent == 0 && off < res->nmsgs;) {
		size_t m = res->nmsgs - off > SERVE_MSGS_PER_FRAME ? SERVE_MSGS_PER_FRAME : res->nmsgs - off;
		if (serve_encode_msgs(&c->out, res->msgs + off, m) != 0) {
			c->violation = "cannot encode messages";
			return;
		}
		sent = send_out(c);
		off += m;
	}
}

/* one STORE frame is one overlay record (overlay_record takes no more) */
_Static_assert(SERVE_STORE_UIDS_MAX <= OVL_MSGS_PER_RECORD, "a STORE frame must fit one overlay record");

static void do_store(struct chan *c)
{
	struct serve_keeper *k = c->k;
	if (k->o.overlay == NULL) {
		c->violation = "a STORE on a read-only vault";
		return;
	}
	size_t fi;
	struct vv_store req;
	int rc = serve_decode_store(c->in.data, c->in.len, &fi, &req);
	if (rc) {
		c->violation = rc == ARCA_ENOMEM ? "" : "a malformed STORE";
		return;
	}
	struct arca_err err = { 0 };
	struct vv_store_result res = { 0 };
	pthread_mutex_lock(&k->lock);
	struct kfolder *f = folder_get(c, fi, &err, &rc);
	if (f)
		rc = store_apply(c, fi, f, &req, &res, &err);
	pthread_mutex_unlock(&k->lock);
	serve_store_release(&req);
	char shown[130];
	log_name(shown, c->acct->account);
	if (rc) {
		vv_store_result_release(&res);
		if (rc != ARCA_ENOENT && rc != ARCA_ELIMIT)
			klog(k, "error: %s: folder %zu: a flag change was not kept: %s", shown, fi, err.msg);
		answer_err(c, rc, rc == ARCA_ENOENT ? "no such folder"
				  : rc == ARCA_ELIMIT ? "too many keywords in this folder"
				  : rc == ARCA_ENOSPC ? "the overlay is full"
				  : "the flag change could not be kept");
		return;
	}
	send_stored(c, &res);
	vv_store_result_release(&res);
}

/* The messages of a folder changed since a MODSEQ (by any session of the
 * account): a session's poll on NOOP, CHECK and IDLE. */
static void do_changes(struct chan *c)
{
	struct serve_keeper *k = c->k;
	if (k->o.overlay == NULL) {
		c->violation = "a CHANGES on a read-only vault";
		return;
	}
	size_t fi;
	uint64_t since;
	if (serve_decode_changes(c->in.data, c->in.len, &fi, &since) != 0) {
		c->violation = "a malformed CHANGES";
		return;
	}
	struct arca_err err = { 0 };
	struct vv_store_result res = { 0 };
	int rc;
	pthread_mutex_lock(&k->lock);
	struct kfolder *f = folder_get(c, fi, &err, &rc);
	if (f && f->f.highestmodseq > since) {
		size_t n = 0;
		for (size_t i = 0; i < f->nmsgs; i++)
			n += f->msgs[i].v.modseq > since;
		if (n > 0 && (res.msgs = malloc(n * sizeof(*res.msgs))) == NULL)
			rc = arca_err_set(&err, ARCA_ENOMEM, "out of memory");
		for (size_t i = 0; rc == 0 && i < f->nmsgs; i++)
			if (f->msgs[i].v.modseq > since)
				res.msgs[res.nmsgs++] = f->msgs[i].v;
	}
	if (f && rc == 0) {
		if ((res.keywords = strv_dup(f->keywords, f->nkeywords)) == NULL && f->nkeywords > 0)
			rc = arca_err_set(&err, ARCA_ENOMEM, "out of memory");
		else
			res.nkeywords = f->nkeywords;
	}
	pthread_mutex_unlock(&k->lock);
	if (rc) {
		vv_store_result_release(&res);
		answer_err(c, rc, rc == ARCA_ENOENT ? "no such folder" : "the vault can't read this folder");
		return;
	}
	send_stored(c, &res);
	vv_store_result_release(&res);
}

static void channel_serve(struct serve_keeper *k, int fd, const char *peer)
{
	struct chan c = { .k = k, .fd = fd };
	snprintf(c.peer, sizeof(c.peer), "%s", peer);
	/* a session that doesn't read its channel loses it: it would hold
	 * this thread, and the message in memory, for good */
	struct timeval tv = { .tv_sec = k->o.send_timeout_ms / 1000,
			      .tv_usec = (long)(k->o.send_timeout_ms % 1000) * 1000 };
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (c.violation == NULL) {
		uint8_t type = 0;
		struct arca_err err = { 0 };
		int rc = serve_recv(fd, &type, &c.in, &err);
		if (rc == ARCA_ENOENT)
			break;
		if (rc) {
			c.violation = rc == ARCA_EFORMAT ? "an oversized frame" : "";
			break;
		}
		if (type != SERVE_LOGIN && c.acct == NULL) {
			c.violation = "a request before a login";
			break;
		}
		switch (type) {
		case SERVE_LOGIN:
			do_login(&c);
			break;
		case SERVE_FOLDERS:
			if (serve_decode_empty(c.in.data, c.in.len) != 0)
				c.violation = "a malformed FOLDERS";
			else
				do_folders(&c);
			break;
		case SERVE_OPEN:
			do_open(&c);
			break;
		case SERVE_BODY:
			do_body(&c);
			break;
		case SERVE_STORE:
			do_store(&c);
			break;
		case SERVE_CHANGES:
			do_changes(&c);
			break;
		default:
			c.violation = "an unknown request";
			break;
		}
	}
	if (c.violation && c.violation[0]) {
		char shown[130];
		log_name(shown, c.acct ? c.acct->account : "(not logged in)");
		klog(k, "session of %s from %s broke the channel protocol (%s): channel closed",
		     shown, c.peer, c.violation);
	}
	if (c.acct) {
		pthread_mutex_lock(&k->lock);
		c.acct->refs--;
		c.acct->last_used = arca_mono_ns();
		cache_trim(k);
		pthread_mutex_unlock(&k->lock);
	}
	if (c.in.data)
		sodium_memzero(c.in.data, c.in.cap);
	abuf_release(&c.in);
	abuf_release(&c.out);
}

void serve_keeper_channel(struct serve_keeper *k, int fd, const char *peer)
{
	channel_serve(k, fd, peer);
	close(fd);
}

struct spawn_arg {
	struct serve_keeper *k;
	unsigned slot;
	int fd;
	char peer[SERVE_PEER_MAX + 1];
};

static void *channel_main(void *p)
{
	struct spawn_arg *sa = p;
	struct serve_keeper *k = sa->k;
	channel_serve(k, sa->fd, sa->peer);
	/* closed under the lock, so serve_keeper_free never shuts down a
	 * descriptor number already reused */
	pthread_mutex_lock(&k->chlock);
	k->chfds[sa->slot] = -1;
	close(sa->fd);
	k->nchannels--;
	pthread_cond_broadcast(&k->chcond);
	pthread_mutex_unlock(&k->chlock);
	free(sa);
	return NULL;
}

int serve_keeper_spawn(struct serve_keeper *k, int fd, const char *peer, struct arca_err *err)
{
	pthread_mutex_lock(&k->chlock);
	if (k->stopping || k->nchannels >= k->o.max_channels) {
		pthread_mutex_unlock(&k->chlock);
		close(fd);
		return arca_err_set(err, ARCA_EBUSY, "%u sessions open already", k->o.max_channels);
	}
	unsigned slot = 0;
	while (k->chfds[slot] != -1 && slot < k->o.max_channels)
		slot++;
	struct spawn_arg *sa = calloc(1, sizeof(*sa));
	if (sa == NULL || slot == k->o.max_channels) {
		pthread_mutex_unlock(&k->chlock);
		free(sa);
		close(fd);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	sa->k = k;
	sa->slot = slot;
	sa->fd = fd;
	snprintf(sa->peer, sizeof(sa->peer), "%s", peer);
	k->chfds[slot] = fd;
	k->nchannels++;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t th;
	int e = pthread_create(&th, &attr, channel_main, sa);
	pthread_attr_destroy(&attr);
	if (e != 0) {
		k->chfds[slot] = -1;
		k->nchannels--;
		pthread_mutex_unlock(&k->chlock);
		free(sa);
		close(fd);
		return arca_err_errno(err, ARCA_ENOMEM, e, "cannot start a thread");
	}
	pthread_mutex_unlock(&k->chlock);
	return 0;
}

int serve_keeper_run(struct serve_keeper *k, int ctl, volatile sig_atomic_t *stop,
		     struct arca_err *err)
{
	while (stop == NULL || !*stop) {
		struct pollfd p = { .fd = ctl, .events = POLLIN };
		int r = poll(&p, 1, 500);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return arca_err_errno(err, ARCA_EIO, errno, "poll");
		if (r == 0)
			continue;
		int fd;
		char peer[SERVE_PEER_MAX + 1];
		uint16_t port;
		struct arca_err e2 = { 0 };
		int rc = serve_ctl_recv(ctl, &fd, peer, &port, &e2);
		if (rc == ARCA_ENOENT)
			return 0;
		if (rc == ARCA_EBUSY) {
			/* the session's channel end sees end of file: its
			 * client is told the vault is unavailable */
			klog(k, "connection from %s port %u refused: no file descriptor left in the keeper",
			     peer[0] ? peer : "?", (unsigned)port);
			continue;
		}
		if (rc)
			return arca_err_set(err, rc, "%s", e2.msg);
		if (serve_keeper_spawn(k, fd, peer, &e2) != 0)
			klog(k, "connection from %s port %u refused: %s", peer, (unsigned)port, e2.msg);
	}
	return 0;
}
