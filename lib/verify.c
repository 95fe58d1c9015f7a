#include "verify.h"
#include "alarm.h"
#include "journal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "buf.h"
#include "fsutil.h"
#include <unistd.h>
#include "compress.h"
#include "mlog.h"
#include "pack.h"
#include "snapshot.h"
#include "banned.h"

/* What verification learned about each object: where it is and whether it
 * checked out. */
struct vobj {
	uint8_t id[ARCA_ID_LEN];
	uint8_t type;
	bool ok;
};

struct vctx {
	struct repo *r;
	struct backend *be;
	verify_report_fn *report;
	void *ctx;
	struct verify_result *res;
	struct vobj *objs;       /* open addressing on the id */
	size_t nobjs, cap;
	uint8_t (*packs)[ARCA_ID_LEN];
	uint64_t *pack_sizes;
	size_t npacks, packs_cap;
	struct snap_info *snaps;
	size_t nsnaps, snaps_cap;
};

static void problem(struct vctx *v, bool fatal, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void problem(struct vctx *v, bool fatal, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (fatal)
		v->res->errors++;
	else
		v->res->warnings++;
	if (v->report)
		v->report(v->ctx, fatal, msg);
}

static struct vobj *obj_slot(struct vctx *v, const uint8_t id[ARCA_ID_LEN])
{
	size_t i = (size_t)get_u64le(id) & (v->cap - 1);
	while (v->objs[i].type != 0 && memcmp(v->objs[i].id, id, ARCA_ID_LEN) != 0)
		i = (i + 1) & (v->cap - 1);
	return &v->objs[i];
}

static int obj_add(struct vctx *v, const uint8_t id[ARCA_ID_LEN], uint8_t type, bool ok)
{
	if ((v->nobjs + 1) * 2 > v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 4096;
		struct vobj *old = v->objs;
		size_t oldcap = v->cap;
		v->objs = calloc(cap, sizeof(*v->objs));
		if (v->objs == NULL) {
			v->objs = old;
			return ARCA_ENOMEM;
		}
		v->cap = cap;
		for (size_t i = 0; i < oldcap; i++)
			if (old[i].type)
				*obj_slot(v, old[i].id) = old[i];
		free(old);
	}
	struct vobj *o = obj_slot(v, id);
	if (o->type == 0) {
		memcpy(o->id, id, ARCA_ID_LEN);
		o->type = type;
		o->ok = ok;
		v->nobjs++;
	} else if (ok) {
		o->ok = true; /* a good copy in another pack */
	}
	return 0;
}

static const struct vobj *obj_find(struct vctx *v, const uint8_t id[ARCA_ID_LEN])
{
	if (v->cap == 0)
		return NULL;
	struct vobj *o = obj_slot(v, id);
	return o->type ? o : NULL;
}

/* Phase 1: the log, from entry 0, trusting nothing cached. */
static int check_log(struct vctx *v, struct arca_err *err)
{
	const struct arca_public_keys *pub = repo_public_keys(v->r);
	struct mlog_state st;
	mlog_state_init(&st);
	struct abuf b = ABUF_INIT;
	int rc = 0;
	/* Entry 0 records the config's hash.  Compare before checking its
	 * signature: a damaged config (its signing key, say) would otherwise
	 * show only as "bad signature" on the log. */
	char first[48];
	mlog_name(0, first);
	if (v->be->ops->get(v->be, first, 4096, &b, NULL) == 0 && b.len >= 68 + ARCA_ID_LEN &&
	    get_u32le(b.data + 64) == ARCA_ID_LEN &&
	    memcmp(b.data + 68, repo_config_hash(v->r), ARCA_ID_LEN) != 0)
		problem(v, true, "%s/config: does not match the hash recorded in %s (damaged or replaced)",
			repo_path(v->r), first);
	for (;;) {
		struct mlog_entry e;
		struct arca_err sub = { 0 };
		char name[48];
		mlog_name(st.count, name);
		rc = mlog_read(v->be, st.count, pub->sign_pk, &b, &e, &sub);
		if (rc == ARCA_ENOENT) {
			rc = 0;
			break;
		}
		if (rc == 0)
			rc = mlog_state_apply(&st, &e, &sub);
		if (rc) {
			/* the chain is broken here: nothing after it can be trusted */
			problem(v, true, "%s/%s: %s", repo_path(v->r), name, sub.msg);
			rc = 0;
			break;
		}
		v->res->log_entries++;
		if (e.kind == MLOG_PACK || e.kind == MLOG_JOURNAL) {
			if (e.kind == MLOG_PACK ? e.payload_len != ARCA_ID_LEN + 12
			    : e.payload_len < ARCA_ID_LEN + 12 ||
			      journal_marks_check(e.payload + ARCA_ID_LEN + 12,
						  e.payload_len - ARCA_ID_LEN - 12) != 0) {
				problem(v, true, "%s: malformed %s record", name,
					e.kind == MLOG_PACK ? "pack" : "journal");
				continue;
			}
			if (v->npacks == v->packs_cap) {
				size_t cap = v->packs_cap ? v->packs_cap * 2 : 64;
				void *p1 = realloc(v->packs, cap * ARCA_ID_LEN);
				if (p1)
					v->packs = p1;
				void *p2 = realloc(v->pack_sizes, cap * sizeof(uint64_t));
				if (p2)
					v->pack_sizes = p2;
				if (!p1 || !p2) {
					rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
					break;
				}
				v->packs_cap = cap;
			}
			memcpy(v->packs[v->npacks], e.payload, ARCA_ID_LEN);
			v->pack_sizes[v->npacks++] = get_u64le(e.payload + ARCA_ID_LEN);
		} else if (e.kind == MLOG_SNAPSHOT) {
			if (v->nsnaps == v->snaps_cap) {
				size_t cap = v->snaps_cap ? v->snaps_cap * 2 : 64;
				void *p = realloc(v->snaps, cap * sizeof(*v->snaps));
				if (p == NULL) {
					rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
					break;
				}
				v->snaps = p;
				v->snaps_cap = cap;
			}
			if (snap_info_decode(e.payload, e.payload_len, &v->snaps[v->nsnaps]) != 0) {
				problem(v, true, "%s: malformed snapshot record", name);
				continue;
			}
			v->snaps[v->nsnaps++].seq = e.seq;
		} else if (e.kind == MLOG_DICT) {
			if (e.payload_len != ARCA_ID_LEN + 4)
				problem(v, true, "%s: malformed dictionary record", name);
		} else if (e.kind == MLOG_ALARM) {
			struct alarm a;
			if (alarm_decode(e.payload, e.payload_len, &a) != 0)
				problem(v, true, "%s: malformed alarm record", name);
			else
				alarm_release(&a);
		} else if (e.kind == MLOG_ALARM_CLEAR) {
			uint64_t aseq;
			if (alarm_clear_decode(e.payload, e.payload_len, &aseq, NULL) != 0 || aseq >= e.seq)
				problem(v, true, "%s: malformed alarm-clear record", name);
		} else if (e.kind == MLOG_INIT) {
			if (e.seq != 0)
				problem(v, true, "%s: a second INIT entry", name);
			else if (e.payload_len != ARCA_ID_LEN)
				problem(v, true, "%s: malformed init record", name);
		} else {
			problem(v, true, "%s: unknown entry kind %u", name, e.kind);
		}
	}
	abuf_release(&b);
	if (rc)
		return rc;
	if (st.count == 0)
		problem(v, true, "%s: the log is missing (no log/000000000000/0000000000000000)", repo_path(v->r));
	/* An entry after the first gap means entries were removed. */
	for (uint64_t s = st.count + 1; s < st.count + 64; s++) {
		char name[48];
		uint64_t sz;
		mlog_name(s, name);
		if (v->be->ops->size(v->be, name, &sz, NULL) == 0) {
			problem(v, true, "%s/%s exists but entry %llu before it is missing or damaged",
				repo_path(v->r), name, (unsigned long long)st.count);
			break;
		}
	}
	/* The index remembers how long the log was: a shorter log now means
	 * entries at the end were deleted. */
	if (repo_log_count(v->r) > st.count) {
		char name[48];
		mlog_name(st.count, name);
		problem(v, true, "%s/%s: missing: the log has %llu entries but had %llu (entries at the end were removed)",
			repo_path(v->r), name, (unsigned long long)st.count,
			(unsigned long long)repo_log_count(v->r));
	}
	return 0;
}

/* Phase 2: every pack, by hash; with the key, every object. */
static int check_pack(struct vctx *v, size_t i, struct arca_err *err)
{
	char name[80];
	pack_name(v->packs[i], name);
	struct backend *be = v->be;
	uint64_t size;
	struct arca_err sub = { 0 };
	int rc = be->ops->size(be, name, &size, &sub);
	if (rc) {
		problem(v, true, "%s/%s: missing (%s)", repo_path(v->r), name, sub.msg);
		return 0;
	}
	/* hash the whole file in 1 MiB reads */
	struct acrypto_hash_state hs;
	acrypto_hash_init(&hs);
	uint8_t *buf = malloc(1u << 20);
	if (buf == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	for (uint64_t off = 0; off < size && rc == 0;) {
		size_t n = size - off < (1u << 20) ? (size_t)(size - off) : (1u << 20);
		rc = be->ops->get_range(be, name, off, n, buf, &sub);
		if (rc == 0)
			acrypto_hash_update(&hs, buf, n);
		off += n;
	}
	free(buf);
	if (rc) {
		problem(v, true, "%s/%s: %s", repo_path(v->r), name, sub.msg);
		return 0;
	}
	uint8_t h[ARCA_ID_LEN];
	acrypto_hash_final(&hs, h);
	if (memcmp(h, v->packs[i], ARCA_ID_LEN) != 0) {
		problem(v, true, "%s/%s: content does not match its hash (damaged)", repo_path(v->r), name);
		return 0;
	}
	if (size != v->pack_sizes[i]) {
		problem(v, true, "%s/%s: size %llu, the log says %llu", repo_path(v->r), name,
			(unsigned long long)size, (unsigned long long)v->pack_sizes[i]);
		return 0;
	}
	struct pack_header hdr;
	struct pack_entry *es = NULL;
	size_t n = 0;
	memset(&sub, 0, sizeof(sub));
	rc = pack_read_index(be, name, size, &hdr, &es, &n, &sub);
	if (rc) {
		problem(v, true, "%s/%s: %s", repo_path(v->r), name, sub.msg);
		return 0;
	}
	v->res->packs++;
	v->res->bytes += size;
	const struct arca_restore_key *rk = repo_restore_key(v->r);
	uint8_t key[ARCA_PACK_KEY_LEN];
	bool have_key = false;
	if (rk != NULL) {
		memset(&sub, 0, sizeof(sub));
		if (pack_open_key(&hdr, rk, key, &sub) == 0)
			have_key = true;
		else
			problem(v, true, "%s/%s: %s", repo_path(v->r), name, sub.msg);
	}
	struct abuf out = ABUF_INIT;
	for (size_t k = 0; k < n && rc == 0; k++) {
		bool ok = true;
		if (es[k].type == PACK_MARK_TYPE)
			continue;   /* plaintext journal mark, covered by the file hash */
		if (have_key) {
			memset(&sub, 0, sizeof(sub));
			if (pack_read_object(be, name, hdr.cipher, key, &es[k],
					     repo_ingest_keys(v->r), &out, &sub) != 0) {
				problem(v, true, "%s/%s", repo_path(v->r), sub.msg);
				ok = false;
			} else if (es[k].type == OBJ_DICT && zdict_register(out.data, out.len) != 0) {
				/* packs are checked in log order, and a dictionary's
				 * pack comes before any object that uses it */
				problem(v, true, "%s/%s: object %zu is not a zstd dictionary",
					repo_path(v->r), name, k);
				ok = false;
			}
		}
		v->res->objects++;
		rc = obj_add(v, es[k].id, es[k].type, ok);
		if (rc)
			arca_err_set(err, rc, "out of memory");
	}
	abuf_release(&out);
	free(es);
	return rc;
}

static int note_pack_file(const char *name, void *ctx)
{
	struct vctx *v = ctx;
	uint8_t h[ARCA_ID_LEN];
	if (pack_name_parse(name, h) != 0) {
		problem(v, false, "%s/%s: not a pack name (ignored)", repo_path(v->r), name);
		return 0;
	}
	for (size_t i = 0; i < v->npacks; i++)
		if (memcmp(v->packs[i], h, ARCA_ID_LEN) == 0)
			return 0;
	problem(v, false, "%s/%s: not in the log (left by an interrupted run; unused)",
		repo_path(v->r), name);
	return 0;
}

static void need_obj(struct vctx *v, const struct snap_info *s, const uint8_t id[ARCA_ID_LEN],
		     uint8_t type, const char *what)
{
	const struct vobj *o = obj_find(v, id);
	char hex[2 * ARCA_ID_LEN + 1];
	hex_encode(hex, id, ARCA_ID_LEN);
	char root[2 * ARCA_ID_LEN + 1];
	hex_encode(root, s->root, ARCA_ID_LEN);
	if (o == NULL)
		problem(v, true, "snapshot %s of %s: %s %s is missing", root, s->account, what, hex);
	else if (o->type != type)
		problem(v, true, "snapshot %s of %s: %s %s has the wrong type", root, s->account, what, hex);
	else if (!o->ok)
		problem(v, true, "snapshot %s of %s: %s %s is damaged", root, s->account, what, hex);
}

/* Phase 3 (with the key): every snapshot's tree is complete. */
static int check_snapshot(struct vctx *v, const struct snap_info *si, struct arca_err *err)
{
	char hex[2 * ARCA_ID_LEN + 1];
	hex_encode(hex, si->root, ARCA_ID_LEN);
	const struct vobj *o = obj_find(v, si->root);
	if (o == NULL || !o->ok) {
		problem(v, true, "snapshot %s of %s: root object %s", hex, si->account,
			o ? "is damaged" : "is missing");
		return 0;
	}
	struct snapshot *s = NULL;
	struct arca_err sub = { 0 };
	if (snapshot_load(v->r, si->root, &s, &sub) != 0) {
		problem(v, true, "snapshot %s of %s: %s", hex, si->account, sub.msg);
		return 0;
	}
	struct abuf b = ABUF_INIT;
	for (size_t i = 0; i < s->nfolders; i++) {
		struct snap_folder *f = &s->folders[i];
		memset(&sub, 0, sizeof(sub));
		if (snapshot_load_msgs(v->r, f, &sub) != 0) {
			problem(v, true, "snapshot %s of %s, folder %s: %s", hex, si->account, f->name, sub.msg);
			continue;
		}
		for (size_t m = 0; m < f->nmsgs; m++) {
			const struct snap_msg *msg = &f->msgs[m];
			need_obj(v, si, msg->content_id, msg->content_type, "message");
			if (msg->content_type == OBJ_CHUNKLIST) {
				memset(&sub, 0, sizeof(sub));
				if (repo_get(v->r, msg->content_id, OBJ_CHUNKLIST, &b, &sub) != 0) {
					problem(v, true, "snapshot %s: %s", hex, sub.msg);
					continue;
				}
				struct adec d;
				adec_init(&d, b.data, b.len);
				uint64_t total = 0;
				if (adec_u8(&d) != 1) {
					problem(v, true, "snapshot %s of %s: message in %s has a chunk list of unknown version",
						hex, si->account, f->name);
					continue;
				}
				while (!d.failed && adec_left(&d) > 0) {
					const uint8_t *cid = adec_raw(&d, ARCA_ID_LEN);
					total += adec_varint(&d);
					if (cid && !d.failed)
						need_obj(v, si, cid, OBJ_CHUNK, "chunk");
				}
				if (d.failed || total != msg->size)
					problem(v, true, "snapshot %s of %s: message %s in %s has a %s chunk list",
						hex, si->account, msg->base, f->name,
						d.failed ? "malformed" : "wrong-length");
			}
		}
	}
	abuf_release(&b);
	snapshot_free(s);
	v->res->snapshots++;
	(void)err;
	return 0;
}

int verify_repo(struct repo *r, verify_report_fn *report, void *ctx,
		struct verify_result *res, struct arca_err *err)
{
	memset(res, 0, sizeof(*res));
	struct vctx v = { .r = r, .be = repo_backend(r), .report = report, .ctx = ctx, .res = res };
	/* the vault host's ingest key, if here, must belong to this repository */
	char *ikpath = fs_join(repo_path(r), "keys/ingest.key");
	if (ikpath != NULL && access(ikpath, F_OK) == 0) {
		struct arca_ingest_keys *ik = NULL;
		struct arca_err sub = { 0 };
		if (ingestkey_read(ikpath, repo_public_keys(r)->repo_id, &ik, &sub) != 0)
			problem(&v, true, "%s", sub.msg);
		else if (!acrypto_ingest_matches(ik, repo_public_keys(r)))
			problem(&v, true, "%s: its signing key is not this repository's", ikpath);
		acrypto_ingest_keys_free(ik);
	}
	free(ikpath);
	int rc = check_log(&v, err);
	for (size_t i = 0; i < v.npacks && rc == 0; i++)
		rc = check_pack(&v, i, err);
	if (rc == 0)
		rc = v.be->ops->list(v.be, "data/", note_pack_file, &v, err);
	if (repo_restore_key(r) != NULL)
		for (size_t i = 0; i < v.nsnaps && rc == 0; i++)
			rc = check_snapshot(&v, &v.snaps[i], err);
	else
		res->snapshots = v.nsnaps;
	free(v.objs);
	free(v.packs);
	free(v.pack_sizes);
	snap_infos_free(v.snaps, v.nsnaps);
	return rc;
}
