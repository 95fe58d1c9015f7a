/*
 * overlay.c - the flag overlay file (overlay.h, docs/format/overlay.md).
 */
#include "overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "buf.h"
#include "faultinject.h"
#include "fsutil.h"
#include "idset.h"

#define OVL_MAGIC "ARCAOVL\n"
#define OVL_VERSION 1u
#define OVL_HEADER_LEN 64               /* magic 8, version 4, reserved 4, repo id 16, salt 16, check 16 */
#define OVL_CHECK_LEN 16
#define OVL_REC_KIND_FLAGS 1
#define OVL_SEAL_EXTRA (ARCA_XNONCE_LEN + ARCA_AEAD_TAG_LEN)   /* a record's nonce and tag */

struct overlay {
	int fd;                         /* -1: read-only, closed after loading */
	char *path;
	uint8_t header[OVL_HEADER_LEN];
	uint8_t key[ARCA_PACK_KEY_LEN];
	uint64_t end;                   /* offset after the last good record */
	uint64_t nrecords;
	bool broken;                    /* a write or sync failed: end unknown */
	uint64_t max_bytes;             /* 0: no limit */
	uint64_t account_max_bytes;     /* 0: no limit */
	struct ovl_acct **abuckets;     /* bytes of records per account */
	size_t nabuckets, naccts;
	struct ovl_folder **buckets;
	size_t nbuckets, nfolders;
	uint64_t nmsgs;
};

struct ovl_acct {
	struct ovl_acct *next;
	char *name;
	uint64_t bytes;
};

/* ---- records ---- */

void overlay_rec_release(struct overlay_rec *r)
{
	free(r->account);
	free(r->folder);
	for (size_t i = 0; i < r->nkw; i++)
		free(r->kw[i]);
	free(r->msgs);
	memset(r, 0, sizeof(*r));
}

int overlay_rec_encode(const struct overlay_rec *r, struct abuf *out)
{
	abuf_reset(out);
	if (r->n == 0 || r->n > OVL_MSGS_PER_RECORD || r->nkw > OVL_KEYWORDS_MAX ||
	    strlen(r->account) > OVL_ACCOUNT_MAX || r->account[0] == '\0' ||
	    strlen(r->folder) > OVL_FOLDER_MAX || r->folder[0] == '\0')
		return ARCA_ELIMIT;
	int rc = abuf_add_u8(out, OVL_REC_KIND_FLAGS);
	rc = rc ? rc : abuf_add_u64(out, r->time_ns);
	rc = rc ? rc : abuf_add_str(out, r->account);
	rc = rc ? rc : abuf_add_str(out, r->folder);
	rc = rc ? rc : abuf_add_u32(out, r->uidvalidity);
	rc = rc ? rc : abuf_add_varint(out, r->nkw);
	for (size_t i = 0; rc == 0 && i < r->nkw; i++) {
		size_t l = strlen(r->kw[i]);
		if (l == 0 || l > OVL_KEYWORD_MAX)
			return ARCA_ELIMIT;
		for (size_t j = 0; j < i; j++)
			if (strcmp(r->kw[j], r->kw[i]) == 0)
				return ARCA_EINVAL;   /* the decoder refuses it: never written */
		rc = abuf_add_str(out, r->kw[i]);
	}
	rc = rc ? rc : abuf_add_varint(out, r->n);
	uint64_t kwmask = r->nkw >= 64 ? UINT64_MAX : (UINT64_C(1) << r->nkw) - 1;
	for (size_t i = 0; rc == 0 && i < r->n; i++) {
		const struct overlay_msg *m = &r->msgs[i];
		if (m->uid == 0 || (i > 0 && m->uid <= r->msgs[i - 1].uid) || m->modseq == 0 ||
		    (m->flags & ~OVL_FLAGS_ALL) || (m->keywords & ~kwmask))
			return ARCA_EINVAL;
		rc = abuf_add_u32(out, m->uid);
		rc = rc ? rc : abuf_add_u64(out, m->modseq);
		rc = rc ? rc : abuf_add_u8(out, (uint8_t)m->flags);
		rc = rc ? rc : abuf_add_u64(out, m->keywords);
	}
	if (rc == 0 && out->len > OVL_RECORD_MAX)
		return ARCA_ELIMIT;
	return rc;
}

int overlay_rec_decode(const uint8_t *p, size_t len, struct overlay_rec *r)
{
	memset(r, 0, sizeof(*r));
	if (len > OVL_RECORD_MAX)
		return ARCA_EFORMAT;
	struct adec d;
	adec_init(&d, p, len);
	if (adec_u8(&d) != OVL_REC_KIND_FLAGS)
		return ARCA_EFORMAT;
	r->time_ns = adec_u64(&d);
	r->account = adec_strdup(&d, OVL_ACCOUNT_MAX);
	r->folder = adec_strdup(&d, OVL_FOLDER_MAX);
	r->uidvalidity = adec_u32(&d);
	uint64_t nkw = adec_varint(&d);
	int rc = ARCA_EFORMAT;
	if (d.failed || r->account[0] == '\0' || r->folder[0] == '\0' || nkw > OVL_KEYWORDS_MAX)
		goto bad;
	while (r->nkw < nkw) {
		char *k = adec_strdup(&d, OVL_KEYWORD_MAX);
		if (k == NULL)
			goto bad;
		r->kw[r->nkw++] = k;          /* owned by r from here */
		if (k[0] == '\0')
			goto bad;
		for (size_t j = 0; j + 1 < r->nkw; j++)
			if (strcmp(r->kw[j], k) == 0)
				goto bad;           /* each name once: a mask bit is one keyword */
	}
	uint64_t n = adec_varint(&d);
	/* 21 bytes a message: the count is checked against what is left
	 * before anything is allocated */
	if (d.failed || n == 0 || n > OVL_MSGS_PER_RECORD || n > adec_left(&d) / 21)
		goto bad;
	if ((r->msgs = calloc((size_t)n, sizeof(*r->msgs))) == NULL) {
		rc = ARCA_ENOMEM;
		goto bad;
	}
	uint64_t kwmask = nkw >= 64 ? UINT64_MAX : (UINT64_C(1) << nkw) - 1;
	for (r->n = 0; r->n < n; r->n++) {
		struct overlay_msg *m = &r->msgs[r->n];
		m->uid = adec_u32(&d);
		m->modseq = adec_u64(&d);
		m->flags = adec_u8(&d);
		m->keywords = adec_u64(&d);
		m->time_ns = r->time_ns;
		if (d.failed || m->uid == 0 || (r->n > 0 && m->uid <= r->msgs[r->n - 1].uid) ||
		    m->modseq == 0 || (m->flags & ~OVL_FLAGS_ALL) || (m->keywords & ~kwmask))
			goto bad;
	}
	if (adec_finish(&d) != 0)
		goto bad;
	return 0;
bad:
	overlay_rec_release(r);
	return rc;
}

/* ---- the state ---- */

static uint64_t folder_hash(const char *account, const char *name, uint32_t uidvalidity)
{
	uint64_t h = 1469598103934665603u;       /* FNV-1a */
	for (const char *p = account; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211u;
	h = (h ^ 0xff) * 1099511628211u;
	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211u;
	for (int i = 0; i < 4; i++)
		h = (h ^ ((uidvalidity >> (8 * i)) & 0xff)) * 1099511628211u;
	return h;
}

static struct ovl_folder *folder_lookup(const struct overlay *ov, const char *account,
					const char *name, uint32_t uidvalidity)
{
	if (ov->nbuckets == 0)
		return NULL;
	struct ovl_folder *f = ov->buckets[folder_hash(account, name, uidvalidity) & (ov->nbuckets - 1)];
	for (; f; f = f->next)
		if (f->uidvalidity == uidvalidity && strcmp(f->account, account) == 0 &&
		    strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

static int folder_add(struct overlay *ov, const char *account, const char *name,
		      uint32_t uidvalidity, struct ovl_folder **f_r)
{
	if (ov->nfolders + 1 > ov->nbuckets * 2) {
		size_t nb = ov->nbuckets ? ov->nbuckets * 4 : 64;
		struct ovl_folder **b = calloc(nb, sizeof(*b));
		if (b == NULL)
			return ARCA_ENOMEM;
		for (size_t i = 0; i < ov->nbuckets; i++)
			for (struct ovl_folder *f = ov->buckets[i], *nx; f; f = nx) {
				nx = f->next;
				size_t h = folder_hash(f->account, f->name, f->uidvalidity) & (nb - 1);
				f->next = b[h];
				b[h] = f;
			}
		free(ov->buckets);
		ov->buckets = b;
		ov->nbuckets = nb;
	}
	struct ovl_folder *f = calloc(1, sizeof(*f));
	if (f == NULL || (f->account = strdup(account)) == NULL || (f->name = strdup(name)) == NULL) {
		if (f)
			free(f->account);
		free(f);
		return ARCA_ENOMEM;
	}
	f->uidvalidity = uidvalidity;
	size_t h = folder_hash(account, name, uidvalidity) & (ov->nbuckets - 1);
	f->next = ov->buckets[h];
	ov->buckets[h] = f;
	ov->nfolders++;
	*f_r = f;
	return 0;
}

static void folder_free(struct ovl_folder *f)
{
	free(f->account);
	free(f->name);
	for (size_t i = 0; i < f->nkeywords; i++)
		free(f->keywords[i]);
	free(f->msgs);
	free(f);
}

static size_t msg_pos(const struct ovl_folder *f, uint32_t uid, bool *found_r)
{
	size_t lo = 0, hi = f->nmsgs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->msgs[mid].uid == uid) {
			*found_r = true;
			return mid;
		}
		if (f->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found_r = false;
	return lo;
}

const struct overlay_msg *ovl_folder_msg(const struct ovl_folder *f, uint32_t uid)
{
	bool found;
	size_t i = msg_pos(f, uid, &found);
	return found ? &f->msgs[i] : NULL;
}

/* The folder's keyword index of each of the record's keywords; names new
 * to the folder are counted in *nnew_r (added only when add is set). */
static int map_keywords(struct ovl_folder *f, char *const *kw, size_t nkw, bool add,
			uint8_t map[OVL_KEYWORDS_MAX], size_t *nnew_r)
{
	size_t nnew = 0;
	for (size_t i = 0; i < nkw; i++) {
		size_t j = 0;
		while (j < f->nkeywords && strcmp(f->keywords[j], kw[i]) != 0)
			j++;
		if (j == f->nkeywords) {
			if (f->nkeywords + nnew >= OVL_KEYWORDS_MAX)
				return ARCA_ELIMIT;
			if (add) {
				if ((f->keywords[f->nkeywords] = strdup(kw[i])) == NULL)
					return ARCA_ENOMEM;
				f->nkeywords++;
			} else {
				j = f->nkeywords + nnew;
				nnew++;
			}
		}
		map[i] = (uint8_t)j;
	}
	*nnew_r = nnew;
	return 0;
}

static uint64_t remap(uint64_t mask, const uint8_t *map, size_t nkw)
{
	uint64_t out = 0;
	for (size_t i = 0; i < nkw; i++)
		if (mask & (UINT64_C(1) << i))
			out |= UINT64_C(1) << map[i];
	return out;
}

/* Drop the folder's keywords no message holds any more, renumbering the
 * bits: the table is the union of every record's names, and names set and
 * cleared again must not use up the 64 for good.  Changes no state. */
static void compact_keywords(struct ovl_folder *f)
{
	uint64_t used = 0;
	for (size_t i = 0; i < f->nmsgs; i++)
		used |= f->msgs[i].keywords;
	uint8_t to[OVL_KEYWORDS_MAX];
	size_t n = 0;
	for (size_t k = 0; k < f->nkeywords; k++) {
		if (used & (UINT64_C(1) << k)) {
			to[k] = (uint8_t)n;
			f->keywords[n++] = f->keywords[k];
		} else {
			free(f->keywords[k]);
		}
	}
	for (size_t k = n; k < f->nkeywords; k++)
		f->keywords[k] = NULL;
	f->nkeywords = n;
	for (size_t i = 0; i < f->nmsgs; i++) {
		uint64_t m = f->msgs[i].keywords, out = 0;
		for (size_t k = 0; m; k++, m >>= 1)
			if (m & 1)
				out |= UINT64_C(1) << to[k];
		f->msgs[i].keywords = out;
	}
}

/* Would rec fit the state (keywords)?  The folder may not exist yet; its
 * table is compacted when that makes room. */
static int rec_fits(struct overlay *ov, const struct overlay_rec *rec)
{
	struct ovl_folder *f = folder_lookup(ov, rec->account, rec->folder, rec->uidvalidity);
	if (f == NULL)
		return 0;
	uint8_t map[OVL_KEYWORDS_MAX];
	size_t nnew;
	if (map_keywords(f, rec->kw, rec->nkw, false, map, &nnew) == 0)
		return 0;
	compact_keywords(f);
	return map_keywords(f, rec->kw, rec->nkw, false, map, &nnew);
}

/* Merge a record into the state: later records win. */
static int rec_merge(struct overlay *ov, const struct overlay_rec *rec)
{
	struct ovl_folder *f = folder_lookup(ov, rec->account, rec->folder, rec->uidvalidity);
	int rc = 0;
	if (f == NULL && (rc = folder_add(ov, rec->account, rec->folder, rec->uidvalidity, &f)) != 0)
		return rc;
	uint8_t map[OVL_KEYWORDS_MAX];
	size_t nnew;
	if (map_keywords(f, rec->kw, rec->nkw, false, map, &nnew) == ARCA_ELIMIT)
		compact_keywords(f);
	if ((rc = map_keywords(f, rec->kw, rec->nkw, true, map, &nnew)) != 0)
		return rc;
	for (size_t i = 0; i < rec->n; i++) {
		struct overlay_msg m = rec->msgs[i];
		m.keywords = remap(m.keywords, map, rec->nkw);
		m.time_ns = rec->time_ns;
		bool found;
		size_t pos = msg_pos(f, m.uid, &found);
		if (!found) {
			if (f->nmsgs == f->cap) {
				size_t nc = f->cap ? f->cap * 2 : 16;
				struct overlay_msg *v = realloc(f->msgs, nc * sizeof(*v));
				if (v == NULL)
					return ARCA_ENOMEM;
				f->msgs = v;
				f->cap = nc;
			}
			memmove(&f->msgs[pos + 1], &f->msgs[pos], (f->nmsgs - pos) * sizeof(*f->msgs));
			f->nmsgs++;
			ov->nmsgs++;
		}
		f->msgs[pos] = m;
		if (m.modseq > f->max_modseq)
			f->max_modseq = m.modseq;
	}
	return 0;
}

const struct ovl_folder *overlay_folder(const struct overlay *ov, const char *account,
					const char *folder, uint32_t uidvalidity)
{
	return folder_lookup(ov, account, folder, uidvalidity);
}

void overlay_set_max_bytes(struct overlay *ov, uint64_t max)
{
	ov->max_bytes = max;
}

void overlay_set_account_max_bytes(struct overlay *ov, uint64_t max)
{
	ov->account_max_bytes = max;
}

/* The account's byte count (made at 0 when add is set; NULL: none, or no
 * memory). */
static struct ovl_acct *acct_get(struct overlay *ov, const char *account, bool add)
{
	if (ov->nabuckets > 0) {
		struct ovl_acct *a = ov->abuckets[folder_hash(account, "", 0) & (ov->nabuckets - 1)];
		for (; a; a = a->next)
			if (strcmp(a->name, account) == 0)
				return a;
	}
	if (!add)
		return NULL;
	if (ov->naccts + 1 > ov->nabuckets * 2) {
		size_t nb = ov->nabuckets ? ov->nabuckets * 4 : 64;
		struct ovl_acct **b = calloc(nb, sizeof(*b));
		if (b == NULL)
			return NULL;
		for (size_t i = 0; i < ov->nabuckets; i++)
			for (struct ovl_acct *a = ov->abuckets[i], *nx; a; a = nx) {
				nx = a->next;
				size_t h = folder_hash(a->name, "", 0) & (nb - 1);
				a->next = b[h];
				b[h] = a;
			}
		free(ov->abuckets);
		ov->abuckets = b;
		ov->nabuckets = nb;
	}
	struct ovl_acct *a = calloc(1, sizeof(*a));
	if (a == NULL || (a->name = strdup(account)) == NULL) {
		free(a);
		return NULL;
	}
	size_t h = folder_hash(account, "", 0) & (ov->nabuckets - 1);
	a->next = ov->abuckets[h];
	ov->abuckets[h] = a;
	ov->naccts++;
	return a;
}

uint64_t overlay_bytes(const struct overlay *ov)
{
	return ov->end;
}

int overlay_each_folder(const struct overlay *ov,
			int (*fn)(const struct ovl_folder *f, void *ctx), void *ctx)
{
	for (size_t i = 0; i < ov->nbuckets; i++)
		for (const struct ovl_folder *f = ov->buckets[i]; f; f = f->next) {
			int rc = fn(f, ctx);
			if (rc)
				return rc;
		}
	return 0;
}

void overlay_counts(const struct overlay *ov, uint64_t *records_r, uint64_t *folders_r,
		    uint64_t *msgs_r)
{
	*records_r = ov->nrecords;
	*folders_r = ov->nfolders;
	*msgs_r = ov->nmsgs;
}

/* ---- the file ---- */

static void rec_ad(const struct overlay *ov, uint64_t index, uint8_t ad[OVL_HEADER_LEN + 8])
{
	memcpy(ad, ov->header, OVL_HEADER_LEN);
	put_u64le(ad + OVL_HEADER_LEN, index);
}

void overlay_free(struct overlay *ov)
{
	if (ov == NULL)
		return;
	if (ov->fd >= 0)
		close(ov->fd);      /* the flock goes with it */
	for (size_t i = 0; i < ov->nbuckets; i++)
		for (struct ovl_folder *f = ov->buckets[i], *nx; f; f = nx) {
			nx = f->next;
			folder_free(f);
		}
	free(ov->buckets);
	for (size_t i = 0; i < ov->nabuckets; i++)
		for (struct ovl_acct *a = ov->abuckets[i], *nx; a; a = nx) {
			nx = a->next;
			free(a->name);
			free(a);
		}
	free(ov->abuckets);
	free(ov->path);
	sodium_memzero(ov->key, sizeof(ov->key));
	free(ov);
}

/* The header's last field: BLAKE2b-128 of the rest under the file's key,
 * so a wrong key (or an altered header) is told at open, before any
 * record could be taken for a torn one. */
static void header_check(const uint8_t key[ARCA_PACK_KEY_LEN], const uint8_t *hdr,
			 uint8_t out[OVL_CHECK_LEN])
{
	crypto_generichash(out, OVL_CHECK_LEN, hdr, OVL_HEADER_LEN - OVL_CHECK_LEN, key,
			   ARCA_PACK_KEY_LEN);
}

/* A new overlay file: its header written whole under a temporary name and
 * linked in (fs_write_file), so a crash never leaves half a header. */
static int create_file(const char *path, const struct arca_restore_key *rk, struct arca_err *err)
{
	uint8_t hdr[OVL_HEADER_LEN], key[ARCA_PACK_KEY_LEN];
	memcpy(hdr, OVL_MAGIC, 8);
	put_u32le(hdr + 8, OVL_VERSION);
	put_u32le(hdr + 12, 0);
	memcpy(hdr + 16, rk->repo_id, ARCA_REPO_ID_LEN);
	randombytes_buf(hdr + 32, ARCA_OVERLAY_SALT_LEN);
	acrypto_overlay_key(rk, hdr + 32, key);
	header_check(key, hdr, hdr + OVL_HEADER_LEN - OVL_CHECK_LEN);
	sodium_memzero(key, sizeof(key));
	int rc = fs_write_file(path, hdr, sizeof(hdr), 0600, 1, err);
	return rc == ARCA_EEXIST ? 0 : rc;   /* made meanwhile: opened as it is */
}

static int check_header(struct overlay *ov, const struct arca_restore_key *rk, struct arca_err *err)
{
	if (memcmp(ov->header, OVL_MAGIC, 8) != 0)
		return arca_err_set(err, ARCA_EFORMAT, "%s is no Arca flag overlay", ov->path);
	uint32_t v = get_u32le(ov->header + 8);
	if (v != OVL_VERSION)
		return arca_err_set(err, ARCA_EVERSION, "%s: overlay version %u, this build knows %u",
				    ov->path, v, OVL_VERSION);
	if (get_u32le(ov->header + 12) != 0)
		return arca_err_set(err, ARCA_EFORMAT, "%s: reserved header field not zero", ov->path);
	if (sodium_memcmp(ov->header + 16, rk->repo_id, ARCA_REPO_ID_LEN) != 0)
		return arca_err_set(err, ARCA_EKEY, "%s belongs to another repository", ov->path);
	acrypto_overlay_key(rk, ov->header + 32, ov->key);
	uint8_t check[OVL_CHECK_LEN];
	header_check(ov->key, ov->header, check);
	if (sodium_memcmp(check, ov->header + OVL_HEADER_LEN - OVL_CHECK_LEN, OVL_CHECK_LEN) != 0)
		return arca_err_set(err, ARCA_EKEY, "%s: its header does not check with this restore key (altered, or written with another key)",
				    ov->path);
	return 0;
}

/* Read every record; a bad tail (short, or the last record failing
 * authentication) ends the good part at ov->end and is described in
 * warning. */
static int load_records(struct overlay *ov, uint64_t size, char *warning, struct arca_err *err)
{
	uint64_t off = OVL_HEADER_LEN;
	struct abuf ct = ABUF_INIT, pt = ABUF_INIT;
	int rc = 0;
	while (off < size) {
		uint8_t lenb[4];
		const char *torn = NULL;
		uint32_t clen = 0;
		if (size - off < 4) {
			torn = "a record's length cut short";
		} else if ((rc = fs_pread_exact(ov->fd, lenb, 4, off, ov->path, err)) != 0) {
			break;
		} else if ((clen = get_u32le(lenb)) <= OVL_SEAL_EXTRA ||
			   clen > OVL_RECORD_MAX + OVL_SEAL_EXTRA) {
			/* a length no writer makes: at the very end, a torn
			 * write; before it, the file was altered */
			if (size - off - 4 > OVL_RECORD_MAX + OVL_SEAL_EXTRA) {
				rc = arca_err_set(err, ARCA_ECORRUPT, "%s: record %llu at offset %llu has an impossible length %u",
						  ov->path, (unsigned long long)ov->nrecords,
						  (unsigned long long)off, clen);
				break;
			}
			torn = "a record with an impossible length at the end";
		} else if (clen > size - off - 4) {
			torn = "a record cut short";
		}
		if (torn == NULL) {
			abuf_reset(&ct);
			abuf_reset(&pt);
			rc = abuf_reserve(&ct, clen);
			rc = rc ? rc : abuf_reserve(&pt, clen);
			if (rc) {
				arca_err_set(err, rc, "out of memory");
				break;
			}
			if ((rc = fs_pread_exact(ov->fd, ct.data, clen, off + 4, ov->path, err)) != 0)
				break;
			uint8_t ad[OVL_HEADER_LEN + 8];
			rec_ad(ov, ov->nrecords, ad);
			if (acrypto_xopen(ov->key, ct.data, ad, sizeof(ad), ct.data + ARCA_XNONCE_LEN,
					  clen - ARCA_XNONCE_LEN, pt.data) != 0) {
				if (off + 4 + clen != size) {
					rc = arca_err_set(err, ARCA_ECORRUPT,
							  "%s: record %llu at offset %llu fails authentication: the file was altered or is not for this restore key",
							  ov->path, (unsigned long long)ov->nrecords,
							  (unsigned long long)off);
					break;
				}
				torn = "a last record that fails authentication (a torn write)";
			}
		}
		if (torn) {
			snprintf(warning, ARCA_ERR_MSG_MAX, "%s: %llu bytes at the end passed over: %s",
				 ov->path, (unsigned long long)(size - off), torn);
			break;
		}
		struct overlay_rec rec;
		if ((rc = overlay_rec_decode(pt.data, clen - OVL_SEAL_EXTRA, &rec)) != 0) {
			arca_err_set(err, rc == ARCA_ENOMEM ? rc : ARCA_ECORRUPT,
				     "%s: record %llu at offset %llu: %s", ov->path,
				     (unsigned long long)ov->nrecords, (unsigned long long)off,
				     rc == ARCA_ENOMEM ? "out of memory" : "malformed");
			rc = rc == ARCA_ENOMEM ? rc : ARCA_ECORRUPT;
			break;
		}
		rc = rec_merge(ov, &rec);
		struct ovl_acct *ac = rc == 0 ? acct_get(ov, rec.account, true) : NULL;
		if (rc == 0 && ac == NULL)
			rc = ARCA_ENOMEM;
		else if (ac)
			ac->bytes += 4 + (uint64_t)clen;
		overlay_rec_release(&rec);
		if (rc) {
			arca_err_set(err, rc == ARCA_ELIMIT ? ARCA_ECORRUPT : rc, "%s: record %llu: %s", ov->path,
				     (unsigned long long)ov->nrecords,
				     rc == ARCA_ELIMIT ? "more keywords in one folder than allowed" : "out of memory");
			rc = rc == ARCA_ELIMIT ? ARCA_ECORRUPT : rc;
			break;
		}
		ov->nrecords++;
		off += 4 + (uint64_t)clen;
	}
	ov->end = off;
	sodium_memzero(pt.data, pt.cap);
	abuf_release(&ct);
	abuf_release(&pt);
	return rc;
}

int overlay_open(const char *path, const struct arca_restore_key *rk, bool writable,
		 struct overlay **ov_r, char *warning, struct arca_err *err)
{
	*ov_r = NULL;
	warning[0] = '\0';
	struct overlay *ov = calloc(1, sizeof(*ov));
	if (ov == NULL || (ov->path = strdup(path)) == NULL) {
		free(ov);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	int rc = 0;
	if (writable) {
		struct stat st0;
		if (lstat(path, &st0) != 0 && errno == ENOENT)
			rc = create_file(path, rk, err);
	}
	ov->fd = rc ? -1 : open(path, writable ? O_RDWR | O_CLOEXEC | O_NOFOLLOW
					       : O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (rc) {
		/* err set */
	} else if (ov->fd < 0) {
		rc = arca_err_errno(err, errno == ENOENT ? ARCA_ENOENT : ARCA_EIO, errno, "open %s", path);
	} else if (writable && flock(ov->fd, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK
		     ? arca_err_set(err, ARCA_EBUSY, "%s is in use by another serve-imap", path)
		     : arca_err_errno(err, ARCA_EIO, errno, "lock %s", path);
	} else if (fstat(ov->fd, &st) != 0) {
		rc = arca_err_errno(err, ARCA_EIO, errno, "stat %s", path);
	} else if (!S_ISREG(st.st_mode)) {
		rc = arca_err_set(err, ARCA_EFORMAT, "%s is not a regular file", path);
	} else if ((uint64_t)st.st_size < OVL_HEADER_LEN) {
		rc = arca_err_set(err, ARCA_EFORMAT, "%s is too short for an overlay (%lld bytes)", path,
				  (long long)st.st_size);
	} else if ((rc = fs_pread_exact(ov->fd, ov->header, OVL_HEADER_LEN, 0, path, err)) == 0 &&
		   (rc = check_header(ov, rk, err)) == 0) {
		rc = load_records(ov, (uint64_t)st.st_size, warning, err);
		if (rc == 0 && writable && ov->end < (uint64_t)st.st_size) {
			if (ftruncate(ov->fd, (off_t)ov->end) != 0 ||
			    fault_hit(FAULT_FSYNC) || fsync(ov->fd) != 0)
				rc = arca_err_errno(err, ARCA_EIO, errno ? errno : EIO,
						    "cut the torn end of %s", path);
		}
	}
	if (rc == 0 && !writable) {
		close(ov->fd);
		ov->fd = -1;
	}
	if (rc) {
		overlay_free(ov);
		return rc;
	}
	*ov_r = ov;
	return 0;
}

int overlay_record(struct overlay *ov, const char *account, const char *folder,
		   uint32_t uidvalidity, char *const *kw, size_t nkw,
		   const struct overlay_msg *msgs, size_t n, uint64_t time_ns,
		   struct arca_err *err)
{
	if (ov->fd < 0)
		return arca_err_set(err, ARCA_ESTATE, "%s was opened read-only", ov->path);
	if (ov->broken)
		return arca_err_set(err, ARCA_ESTATE, "%s can't be written since a write to it failed",
				    ov->path);
	if (nkw > OVL_KEYWORDS_MAX)
		return arca_err_set(err, ARCA_ELIMIT, "more than %d keywords", OVL_KEYWORDS_MAX);
	/* one record per call: a torn end is only ever its last record */
	if (n > OVL_MSGS_PER_RECORD)
		return arca_err_set(err, ARCA_ELIMIT, "more than %d messages in one change", OVL_MSGS_PER_RECORD);
	if (n == 0)
		return arca_err_set(err, ARCA_EINVAL, "an empty change");
	struct abuf pt = ABUF_INIT, out = ABUF_INIT;
	struct overlay_rec rec = { .time_ns = time_ns, .account = (char *)account,
				   .folder = (char *)folder, .uidvalidity = uidvalidity, .nkw = nkw,
				   .msgs = (struct overlay_msg *)msgs, .n = n };
	if (nkw > 0)
		memcpy(rec.kw, kw, nkw * sizeof(*kw));
	int rc = overlay_rec_encode(&rec, &pt);
	if (rc)
		arca_err_set(err, rc, rc == ARCA_ENOMEM ? "out of memory" : "a change the overlay can't hold");
	else if ((rc = rec_fits(ov, &rec)) != 0)
		arca_err_set(err, rc, "more than %d keywords in one folder", OVL_KEYWORDS_MAX);
	else if ((rc = abuf_reserve(&out, 4 + pt.len + OVL_SEAL_EXTRA)) != 0)
		arca_err_set(err, rc, "out of memory");
	if (rc == 0) {
		put_u32le(out.data, (uint32_t)(pt.len + OVL_SEAL_EXTRA));
		uint8_t ad[OVL_HEADER_LEN + 8];
		rec_ad(ov, ov->nrecords, ad);
		/* a random nonce: after a torn end is cut, this index is
		 * written again, and one (key, nonce) must never seal two
		 * plaintexts */
		uint8_t *nonce = out.data + 4;
		randombytes_buf(nonce, ARCA_XNONCE_LEN);
		acrypto_xseal(ov->key, nonce, ad, sizeof(ad), pt.data, pt.len, nonce + ARCA_XNONCE_LEN);
		out.len = 4 + pt.len + OVL_SEAL_EXTRA;
	}
	if (rc == 0 && ov->max_bytes && ov->end + out.len > ov->max_bytes)
		rc = arca_err_set(err, ARCA_ENOSPC, "%s is full (%llu bytes, at most %llu)", ov->path,
				  (unsigned long long)ov->end, (unsigned long long)ov->max_bytes);
	struct ovl_acct *ac = rc == 0 ? acct_get(ov, account, true) : NULL;
	if (rc == 0 && ac == NULL)
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	if (rc == 0 && ov->account_max_bytes && ac->bytes + out.len > ov->account_max_bytes)
		rc = arca_err_set(err, ARCA_ENOSPC, "%s: %s has %llu bytes of changes, at most %llu", ov->path,
				  account, (unsigned long long)ac->bytes, (unsigned long long)ov->account_max_bytes);
	bool full = rc == ARCA_ENOSPC;
	if (rc == 0 && !full) {
		if (lseek(ov->fd, (off_t)ov->end, SEEK_SET) < 0) {
			rc = arca_err_errno(err, ARCA_EIO, errno, "seek %s", ov->path);
		} else if ((rc = fs_write_all(ov->fd, out.data, out.len, ov->path, err)) == 0) {
			fault_crash_point();    /* written, not yet synced (crash tests) */
			errno = 0;
			if (fault_hit(FAULT_FSYNC) || fdatasync(ov->fd) != 0) {
				int e = errno ? errno : EIO;
				rc = arca_err_errno(err, arca_errno_code(e), e, "fdatasync %s", ov->path);
			}
		}
		if (rc) {
			/* never retry a failed sync; cut what may be there so the
			 * next open sees no half record, and write no more */
			ov->broken = true;
			if (ftruncate(ov->fd, (off_t)ov->end) == 0)
				(void)fsync(ov->fd);
		}
	}
	/* the state follows the file: merged only once durable (the
	 * keyword check above makes this merge fail only for memory) */
	if (rc == 0 && (rc = rec_merge(ov, &rec)) != 0) {
		arca_err_set(err, rc, "out of memory (the change is on disk)");
		ov->broken = true;   /* state and file differ: write no more */
	}
	if (rc == 0) {
		ov->end += out.len;
		ov->nrecords++;
		ac->bytes += out.len;
	}
	sodium_memzero(pt.data, pt.cap);
	abuf_release(&pt);
	abuf_release(&out);
	return rc;
}

/* Maildir letters for the system flags (enum vv_flag order). */
static const char flag_letters[5] = { 'S', 'R', 'F', 'T', 'D' };

int overlay_apply(const struct overlay *ov, const char *account, uint64_t snapshot_time_ns,
		  struct snap_folder *sf, size_t *applied_r, size_t *dropped_kw_r)
{
	*applied_r = 0;
	*dropped_kw_r = 0;
	const struct ovl_folder *f = folder_lookup(ov, account, sf->name, sf->uidvalidity);
	if (f == NULL)
		return 0;
	/* the overlay's keyword i is the folder's map[i], or none (-1) */
	int map[OVL_KEYWORDS_MAX];
	for (size_t i = 0; i < f->nkeywords; i++) {
		size_t j = 0;
		while (j < sf->nkeywords && strcmp(sf->keywords[j], f->keywords[i]) != 0)
			j++;
		map[i] = (int)j;
		if (j == sf->nkeywords)
			map[i] = -1;      /* added below when a message needs it */
	}
	/* a UID recorded twice (a damaged record) names the first only,
	 * as serve-imap served it; a message without one never had it */
	struct idset done = IDSET_INIT;
	int rc = 0;
	for (size_t i = 0; i < sf->nmsgs && rc == 0; i++) {
		struct snap_msg *m = &sf->msgs[i];
		const struct overlay_msg *o = m->uid ? ovl_folder_msg(f, m->uid) : NULL;
		if (o == NULL || o->time_ns <= snapshot_time_ns)
			continue;
		uint8_t id[ARCA_ID_LEN] = { 0 };
		put_u32le(id, m->uid);
		if (idset_has(&done, id))
			continue;
		if (idset_add(&done, id) != 0) {
			rc = ARCA_ENOMEM;
			break;
		}
		uint32_t fl = m->flags;
		for (int b = 0; b < 5; b++) {
			uint32_t letter = UINT32_C(1) << (flag_letters[b] - 'A');
			if (o->flags & (1u << b))
				fl |= letter;
			else
				fl &= ~letter;
		}
		if (o->flags != 0)
			fl &= ~SNAP_MSG_NO_INFO;   /* the name needs its ":2," info now */
		uint64_t kw = 0;
		for (size_t k = 0; k < f->nkeywords; k++) {
			if (!(o->keywords & (UINT64_C(1) << k)))
				continue;
			if (map[k] < 0) {
				if (sf->nkeywords >= SNAP_KEYWORDS_MAX) {
					(*dropped_kw_r)++;
					continue;
				}
				if ((sf->keywords[sf->nkeywords] = strdup(f->keywords[k])) == NULL) {
					idset_free(&done);
					return ARCA_ENOMEM;
				}
				map[k] = (int)sf->nkeywords++;
			}
			kw |= UINT64_C(1) << map[k];
		}
		if (kw != 0)
			fl &= ~SNAP_MSG_NO_INFO;
		m->flags = fl;
		m->keywords = kw;
		if (o->modseq > m->modseq)
			m->modseq = o->modseq;
		(*applied_r)++;
	}
	idset_free(&done);
	/* HIGHESTMODSEQ above every MODSEQ served since the snapshot, also
	 * for changes of messages this restore can't name (served
	 * renumbered): a client never sees it go backwards */
	for (size_t i = 0; i < f->nmsgs; i++)
		if (f->msgs[i].time_ns > snapshot_time_ns && f->msgs[i].modseq > sf->highestmodseq)
			sf->highestmodseq = f->msgs[i].modseq;
	return rc;
}
