#include "snapshot.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "buf.h"
#include "compress.h"
#include "maildir.h"
#include "pack.h"
#include "banned.h"

#define SNAP_VERSION 1           /* without Sieve scripts */
#define SNAP_VERSION_SIEVE 2     /* with the Sieve section */
#define PAGE_VERSION 1
#define PAGE_MAX_RECORDS 4096
#define PAGE_CUT_MASK 127               /* ~128 records a page */

struct snapshot *snapshot_new(const char *account, const char *source)
{
	struct snapshot *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->account = strdup(account);
	s->source = strdup(source);
	if (s->account == NULL || s->source == NULL) {
		snapshot_free(s);
		return NULL;
	}
	return s;
}

void snap_msg_release(struct snap_msg *m)
{
	free(m->base);
	free(m->uidlist_ext);
	free(m->uidlist_info);
	m->base = m->uidlist_ext = m->uidlist_info = NULL;
}

void snap_folder_drop_msgs(struct snap_folder *f)
{
	for (size_t i = 0; i < f->nmsgs; i++)
		snap_msg_release(&f->msgs[i]);
	free(f->msgs);
	f->msgs = NULL;
	f->nmsgs = f->msgs_cap = 0;
}

static void folder_release(struct snap_folder *f)
{
	free(f->name);
	free(f->special_use);
	free(f->guid);
	free(f->uidlist_extra);
	for (size_t i = 0; i < f->nkeywords; i++)
		free(f->keywords[i]);
	for (size_t i = 0; i < f->nmsgs; i++)
		snap_msg_release(&f->msgs[i]);
	free(f->msgs);
	free(f->pages);
}

void snapshot_free(struct snapshot *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nfolders; i++)
		folder_release(&s->folders[i]);
	free(s->folders);
	for (size_t i = 0; i < s->nsubscriptions; i++)
		free(s->subscriptions[i]);
	free(s->subscriptions);
	for (size_t i = 0; i < s->nsieve; i++)
		free(s->sieve[i].name);
	free(s->sieve);
	free(s->account);
	free(s->source);
	free(s);
}

bool snapshot_has_sieve_named(const struct snapshot *s, const char *name)
{
	for (size_t i = 0; i < s->nsieve; i++)
		if (strcmp(s->sieve[i].name, name) == 0)
			return true;
	return false;
}

int snapshot_add_sieve(struct snapshot *s, const struct snap_sieve *sv)
{
	if (s->nsieve >= SNAP_SIEVE_MAX)
		return ARCA_ELIMIT;
	struct snap_sieve *v = realloc(s->sieve, (s->nsieve + 1) * sizeof(*v));
	if (v == NULL)
		return ARCA_ENOMEM;
	s->sieve = v;
	v[s->nsieve] = *sv;
	if ((v[s->nsieve].name = strdup(sv->name)) == NULL)
		return ARCA_ENOMEM;
	s->nsieve++;
	s->has_sieve = true;
	return 0;
}

struct snap_folder *snapshot_add_folder(struct snapshot *s, const char *name)
{
	if (s->nfolders == s->folders_cap) {
		size_t cap = s->folders_cap ? s->folders_cap * 2 : 16;
		struct snap_folder *v = realloc(s->folders, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		s->folders = v;
		s->folders_cap = cap;
	}
	struct snap_folder *f = &s->folders[s->nfolders];
	memset(f, 0, sizeof(*f));
	f->name = strdup(name);
	f->special_use = strdup("");
	f->guid = strdup("");
	f->uidlist_extra = strdup("");
	if (!f->name || !f->special_use || !f->guid || !f->uidlist_extra) {
		folder_release(f);
		return NULL;
	}
	s->nfolders++;
	return f;
}

int snapshot_add_subscription(struct snapshot *s, const char *name)
{
	char **v = realloc(s->subscriptions, (s->nsubscriptions + 1) * sizeof(*v));
	if (v == NULL)
		return ARCA_ENOMEM;
	s->subscriptions = v;
	if ((v[s->nsubscriptions] = strdup(name)) == NULL)
		return ARCA_ENOMEM;
	s->nsubscriptions++;
	return 0;
}

int snap_folder_add_msg(struct snap_folder *f, const struct snap_msg *m)
{
	if (f->nmsgs == f->msgs_cap) {
		size_t cap = f->msgs_cap ? f->msgs_cap * 2 : 64;
		struct snap_msg *v = realloc(f->msgs, cap * sizeof(*v));
		if (v == NULL)
			return ARCA_ENOMEM;
		f->msgs = v;
		f->msgs_cap = cap;
	}
	struct snap_msg *n = &f->msgs[f->nmsgs];
	*n = *m;
	n->base = strdup(m->base ? m->base : "");
	n->uidlist_ext = strdup(m->uidlist_ext ? m->uidlist_ext : "");
	n->uidlist_info = strdup(m->uidlist_info ? m->uidlist_info : "");
	if (n->base == NULL || n->uidlist_ext == NULL || n->uidlist_info == NULL) {
		snap_msg_release(n);
		return ARCA_ENOMEM;
	}
	f->nmsgs++;
	return 0;
}

int snap_folder_keyword(struct snap_folder *f, const char *name)
{
	for (size_t i = 0; i < f->nkeywords; i++)
		if (strcmp(f->keywords[i], name) == 0)
			return (int)i;
	if (f->nkeywords == SNAP_KEYWORDS_MAX)
		return -1;
	if ((f->keywords[f->nkeywords] = strdup(name)) == NULL)
		return -1;
	return (int)f->nkeywords++;
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

_Static_assert(SNAP_UIDLIST_INFO_MAX == MAILDIR_NAME_MAX, "uidlist_info limit");

/* A record's uidlist_info, when there is one: what the uidlist parser keeps. */
static bool uidlist_info_ok(const char *s, size_t n)
{
	return n > 0 && uidlist_info_valid(s, n);
}

static int encode_msg(struct abuf *b, const struct snap_msg *m)
{
	/* never write what the reader would refuse */
	if (strlen(m->base) > SNAP_FIELD_MAX || strlen(m->uidlist_ext) > SNAP_FIELD_MAX)
		return ARCA_ELIMIT;
	int rc = abuf_add_varint(b, m->uid);
	rc = rc ? rc : abuf_add_varint(b, m->modseq);
	rc = rc ? rc : abuf_add_u8(b, m->content_type);
	rc = rc ? rc : abuf_add(b, m->content_id, ARCA_ID_LEN);
	rc = rc ? rc : abuf_add_varint(b, m->size);
	rc = rc ? rc : abuf_add_varint(b, zigzag(m->date_sec));
	rc = rc ? rc : abuf_add_varint(b, (uint64_t)m->date_nsec);
	const char *info = m->uidlist_info ? m->uidlist_info : "";
	if ((uint64_t)m->flags >> 27 || (*info != '\0' && !uidlist_info_ok(info, strlen(info))))
		return ARCA_EINVAL;
	uint64_t flags = m->flags | (*info ? SNAP_MSG_WIRE_UIDLIST_INFO : 0);
	rc = rc ? rc : abuf_add_varint(b, flags);
	rc = rc ? rc : abuf_add_varint(b, m->keywords);
	rc = rc ? rc : abuf_add_str(b, m->base);
	rc = rc ? rc : abuf_add_str(b, m->uidlist_ext);
	rc = rc ? rc : abuf_add_u8(b, m->in_new ? 1 : 0);
	if (*info)
		rc = rc ? rc : abuf_add_str(b, info);
	return rc;
}

/* FNV-1a of the file name decides page boundaries: stable when neighbours
 * come and go, unlike "every N records". */
static bool page_cut_after(const struct snap_msg *m)
{
	uint32_t h = 2166136261u;
	for (const char *p = m->base; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h ^= m->uid;
	return (h & PAGE_CUT_MASK) == 0;
}

static int store_pages(struct repo *r, struct snap_folder *f, struct arca_err *err)
{
	if (f->pages_reused)
		return 0;   /* unchanged since the last snapshot: same page objects */
	struct abuf page = ABUF_INIT, body = ABUF_INIT;
	free(f->pages);
	f->pages = NULL;
	f->npages = 0;
	size_t cap = 0, start = 0;
	int rc = 0;
	f->message_count = f->nmsgs;
	f->bytes = 0;
	for (size_t i = 0; i < f->nmsgs && rc == 0; i++) {
		f->bytes += f->msgs[i].size;
		bool last = i + 1 == f->nmsgs;
		if (!last && i + 1 - start < PAGE_MAX_RECORDS && !page_cut_after(&f->msgs[i]))
			continue;
		abuf_reset(&body);
		for (size_t j = start; j <= i && rc == 0; j++)
			rc = encode_msg(&body, &f->msgs[j]);
		if (rc == ARCA_ELIMIT) {
			arca_err_set(err, rc, "folder %s: a file name or dovecot-uidlist field is too long", f->name);
			break;
		}
		abuf_reset(&page);
		rc = rc ? rc : abuf_add_u8(&page, PAGE_VERSION);
		rc = rc ? rc : abuf_add_varint(&page, i + 1 - start);
		rc = rc ? rc : abuf_add(&page, body.data, body.len);
		if (rc) {
			arca_err_set(err, rc, "out of memory");
			break;
		}
		if (f->npages == cap) {
			cap = cap ? cap * 2 : 8;
			struct snap_page_ref *v = realloc(f->pages, cap * sizeof(*v));
			if (v == NULL) {
				rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
				break;
			}
			f->pages = v;
		}
		struct snap_page_ref *ref = &f->pages[f->npages++];
		ref->count = i + 1 - start;
		rc = repo_put(r, OBJ_FOLDER_PAGE, page.data, page.len, ref->id, NULL, err);
		start = i + 1;
	}
	abuf_release(&page);
	abuf_release(&body);
	return rc;
}

static bool root_fits(const struct snapshot *s)
{
	if (strlen(s->account) > SNAP_ACCOUNT_MAX || strlen(s->source) > 256)
		return false;
	for (size_t i = 0; i < s->nsubscriptions; i++)
		if (strlen(s->subscriptions[i]) > SNAP_NAME_MAX)
			return false;
	for (size_t i = 0; i < s->nfolders; i++) {
		const struct snap_folder *f = &s->folders[i];
		if (strlen(f->name) > SNAP_NAME_MAX || strlen(f->special_use) > 64 ||
		    strlen(f->guid) > 64 || strlen(f->uidlist_extra) > SNAP_FIELD_MAX)
			return false;
		for (size_t k = 0; k < f->nkeywords; k++)
			if (strlen(f->keywords[k]) > 256)
				return false;
	}
	return true;
}

int snap_folder_encode(const struct snap_folder *f, struct abuf *b)
{
	int rc = abuf_add_str(b, f->name);
	rc = rc ? rc : abuf_add_varint(b, f->attrs);
	rc = rc ? rc : abuf_add_str(b, f->special_use);
	rc = rc ? rc : abuf_add_u32(b, f->uidvalidity);
	rc = rc ? rc : abuf_add_u32(b, f->nextuid);
	rc = rc ? rc : abuf_add_u64(b, f->highestmodseq);
	rc = rc ? rc : abuf_add_str(b, f->guid);
	rc = rc ? rc : abuf_add_str(b, f->uidlist_extra);
	rc = rc ? rc : abuf_add_varint(b, f->nkeywords);
	for (size_t k = 0; k < f->nkeywords && rc == 0; k++)
		rc = abuf_add_str(b, f->keywords[k]);
	rc = rc ? rc : abuf_add_varint(b, f->message_count);
	rc = rc ? rc : abuf_add_varint(b, f->bytes);
	rc = rc ? rc : abuf_add_varint(b, f->npages);
	for (size_t p = 0; p < f->npages && rc == 0; p++) {
		rc = abuf_add(b, f->pages[p].id, ARCA_ID_LEN);
		rc = rc ? rc : abuf_add_varint(b, f->pages[p].count);
	}
	return rc;
}

static int encode_root(const struct snapshot *s, struct abuf *b)
{
	if (!root_fits(s))
		return ARCA_ELIMIT;
	for (size_t i = 0; i < s->nsieve; i++)
		if (strlen(s->sieve[i].name) > SNAP_SIEVE_NAME_MAX)
			return ARCA_ELIMIT;
	int rc = abuf_add_u8(b, s->has_sieve ? SNAP_VERSION_SIEVE : SNAP_VERSION);
	rc = rc ? rc : abuf_add_str(b, s->account);
	rc = rc ? rc : abuf_add_u64(b, s->time_ns);
	rc = rc ? rc : abuf_add_str(b, s->source);
	rc = rc ? rc : abuf_add_u8(b, s->layout);
	rc = rc ? rc : abuf_add_varint(b, s->nsubscriptions);
	for (size_t i = 0; i < s->nsubscriptions && rc == 0; i++)
		rc = abuf_add_str(b, s->subscriptions[i]);
	rc = rc ? rc : abuf_add_varint(b, s->nfolders);
	for (size_t i = 0; i < s->nfolders && rc == 0; i++)
		rc = snap_folder_encode(&s->folders[i], b);
	if (!s->has_sieve)
		return rc;
	rc = rc ? rc : abuf_add_varint(b, s->nsieve);
	for (size_t i = 0; i < s->nsieve && rc == 0; i++) {
		const struct snap_sieve *v = &s->sieve[i];
		rc = abuf_add_str(b, v->name);
		rc = rc ? rc : abuf_add_u8(b, v->active ? 1 : 0);
		rc = rc ? rc : abuf_add_u8(b, v->content_type);
		rc = rc ? rc : abuf_add(b, v->content_id, ARCA_ID_LEN);
		rc = rc ? rc : abuf_add_varint(b, v->size);
	}
	return rc;
}

int snapshot_store_pages(struct repo *r, struct snapshot *s, struct arca_err *err)
{
	for (size_t i = 0; i < s->nfolders; i++) {
		int rc = store_pages(r, &s->folders[i], err);
		if (rc)
			return rc;
		s->folders[i].pages_reused = true;
	}
	return 0;
}

int snapshot_digest(const struct snapshot *s, uint8_t out[ARCA_ID_LEN])
{
	struct snapshot t = *s;
	t.time_ns = 0;
	struct abuf b = ABUF_INIT;
	int rc = encode_root(&t, &b);
	if (rc == 0)
		crypto_generichash(out, ARCA_ID_LEN, b.data, b.len, NULL, 0);
	abuf_release(&b);
	return rc;
}

int snapshot_store(struct repo *r, struct snapshot *s, uint8_t root_r[ARCA_ID_LEN],
		   uint64_t *messages_r, uint64_t *bytes_r, struct arca_err *err)
{
	uint64_t msgs = 0, bytes = 0;
	for (size_t i = 0; i < s->nfolders; i++) {
		int rc = store_pages(r, &s->folders[i], err);
		if (rc)
			return rc;
		msgs += s->folders[i].message_count;
		bytes += s->folders[i].bytes;
	}
	struct abuf b = ABUF_INIT;
	int rc = encode_root(s, &b);
	if (rc == ARCA_ELIMIT)
		rc = arca_err_set(err, rc, "account %.64s: a name or field is longer than a snapshot can hold", s->account);
	else if (rc)
		rc = arca_err_set(err, rc, "out of memory");
	else if (b.len > ARCA_OBJECT_MAX)
		rc = arca_err_set(err, ARCA_ELIMIT, "account %s has too many folders for one snapshot", s->account);
	else
		rc = repo_put(r, OBJ_SNAPSHOT, b.data, b.len, root_r, NULL, err);
	abuf_release(&b);
	*messages_r = msgs;
	*bytes_r = bytes;
	return rc;
}

/* One folder record (the root's and the ingest cache's), appended to s. */
static int decode_folder(struct adec *d, struct snapshot *s)
{
	int rc = ARCA_EFORMAT;
	char *name = adec_strdup(d, SNAP_NAME_MAX);
	if (name == NULL)
		return ARCA_EFORMAT;
	struct snap_folder *f = snapshot_add_folder(s, name);
	free(name);
	if (f == NULL)
		return ARCA_ENOMEM;
	{
		uint64_t attrs = adec_varint(d);
		if (attrs & ~(uint64_t)(SNAP_FOLDER_SELECTABLE | SNAP_FOLDER_SUBSCRIBED))
			goto fail;   /* bits this version doesn't know */
		f->attrs = (uint32_t)attrs;
		free(f->special_use);
		f->special_use = adec_strdup(d, 64);
		f->uidvalidity = adec_u32(d);
		f->nextuid = adec_u32(d);
		f->highestmodseq = adec_u64(d);
		free(f->guid);
		f->guid = adec_strdup(d, 64);
		free(f->uidlist_extra);
		f->uidlist_extra = adec_strdup(d, SNAP_FIELD_MAX);
		uint64_t nk = adec_varint(d);
		if (d->failed || !f->special_use || !f->guid || !f->uidlist_extra ||
		    nk > SNAP_KEYWORDS_MAX)
			goto fail;
		for (; f->nkeywords < nk; f->nkeywords++)
			if ((f->keywords[f->nkeywords] = adec_strdup(d, 256)) == NULL)
				goto fail;
		f->message_count = adec_varint(d);
		f->bytes = adec_varint(d);
		uint64_t np = adec_varint(d);
		if (d->failed || f->message_count > SNAP_MESSAGES_MAX ||
		    np > f->message_count || np * (ARCA_ID_LEN + 1) > adec_left(d))
			goto fail;
		f->pages = calloc(np ? np : 1, sizeof(*f->pages));
		if (f->pages == NULL) {
			rc = ARCA_ENOMEM;
			goto fail;
		}
		uint64_t sum = 0;
		for (; f->npages < np; f->npages++) {
			adec_fixed(d, f->pages[f->npages].id, ARCA_ID_LEN);
			f->pages[f->npages].count = adec_varint(d);
			if (f->pages[f->npages].count == 0)
				goto fail;
			sum += f->pages[f->npages].count;
		}
		if (d->failed || sum != f->message_count)
			goto fail;
	}
	return 0;
fail:
	return rc;
}

int snap_folder_encode_full(const struct snap_folder *f, struct abuf *out)
{
	int rc = snap_folder_encode(f, out);
	rc = rc ? rc : abuf_add_varint(out, f->nmsgs);
	for (size_t i = 0; i < f->nmsgs && rc == 0; i++)
		rc = encode_msg(out, &f->msgs[i]);
	return rc;
}

static int decode_msgs(struct adec *d, struct snap_folder *f, uint64_t n);

int snap_folder_decode_full(const uint8_t *p, size_t len, struct snapshot *s)
{
	struct adec d;
	adec_init(&d, p, len);
	int rc = decode_folder(&d, s);
	if (rc)
		return rc;
	struct snap_folder *f = &s->folders[s->nfolders - 1];
	uint64_t n = adec_varint(&d);
	/* each record takes at least 43 bytes */
	if (d.failed || n > SNAP_MESSAGES_MAX || n > adec_left(&d) / 43)
		return ARCA_EFORMAT;
	rc = decode_msgs(&d, f, n);
	return rc ? rc : adec_finish(&d);
}

int snapshot_encode_root(const struct snapshot *s, struct abuf *out)
{
	return encode_root(s, out);
}

int snap_folder_decode(const uint8_t *p, size_t len, struct snapshot *s)
{
	struct adec d;
	adec_init(&d, p, len);
	int rc = decode_folder(&d, s);
	return rc ? rc : adec_finish(&d);
}

int snapshot_decode_root(const uint8_t *p, size_t len, struct snapshot **s_r)
{
	struct adec d;
	adec_init(&d, p, len);
	uint8_t version = adec_u8(&d);
	if (version != SNAP_VERSION && version != SNAP_VERSION_SIEVE)
		return ARCA_EVERSION;
	struct snapshot *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return ARCA_ENOMEM;
	int rc = ARCA_EFORMAT;
	s->account = adec_strdup(&d, SNAP_ACCOUNT_MAX);
	s->time_ns = adec_u64(&d);
	s->source = adec_strdup(&d, 256);
	s->layout = adec_u8(&d);
	if (s->layout > 2)    /* enum maildir_layout */
		goto fail;
	uint64_t nsubs = adec_varint(&d);
	if (d.failed || s->account == NULL || s->source == NULL || nsubs > SNAP_FOLDERS_MAX ||
	    nsubs > adec_left(&d))
		goto fail;
	s->subscriptions = calloc(nsubs ? nsubs : 1, sizeof(char *));
	if (s->subscriptions == NULL) {
		rc = ARCA_ENOMEM;
		goto fail;
	}
	for (; s->nsubscriptions < nsubs; s->nsubscriptions++)
		if ((s->subscriptions[s->nsubscriptions] = adec_strdup(&d, SNAP_NAME_MAX)) == NULL)
			goto fail;
	uint64_t nf = adec_varint(&d);
	if (d.failed || nf > SNAP_FOLDERS_MAX || nf > adec_left(&d))
		goto fail;
	for (uint64_t i = 0; i < nf; i++) {
		int frc = decode_folder(&d, s);
		if (frc) {
			rc = frc;
			goto fail;
		}
	}
	if (version == SNAP_VERSION_SIEVE) {
		s->has_sieve = true;
		uint64_t ns = adec_varint(&d);
		if (d.failed || ns > SNAP_SIEVE_MAX || ns * (ARCA_ID_LEN + 4) > adec_left(&d))
			goto fail;
		s->sieve = calloc(ns ? ns : 1, sizeof(*s->sieve));
		if (s->sieve == NULL) {
			rc = ARCA_ENOMEM;
			goto fail;
		}
		for (; s->nsieve < ns; s->nsieve++) {
			struct snap_sieve *v = &s->sieve[s->nsieve];
			v->name = adec_strdup(&d, SNAP_SIEVE_NAME_MAX);
			uint8_t active = adec_u8(&d);
			v->content_type = adec_u8(&d);
			adec_fixed(&d, v->content_id, ARCA_ID_LEN);
			v->size = adec_varint(&d);
			if (d.failed || v->name == NULL || active > 1 ||
			    (v->content_type != OBJ_BLOB && v->content_type != OBJ_CHUNKLIST)) {
				s->nsieve += v->name != NULL;
				goto fail;
			}
			v->active = active == 1;
		}
	}
	if (adec_finish(&d) != 0)
		goto fail;
	*s_r = s;
	return 0;
fail:
	snapshot_free(s);
	return rc;
}

int snapshot_decode_page(const uint8_t *p, size_t len, struct snap_folder *f)
{
	struct adec d;
	adec_init(&d, p, len);
	if (adec_u8(&d) != PAGE_VERSION)
		return ARCA_EVERSION;
	uint64_t n = adec_varint(&d);
	if (d.failed || n > PAGE_MAX_RECORDS || n > adec_left(&d))
		return ARCA_EFORMAT;
	int rc = decode_msgs(&d, f, n);
	if (rc)
		return rc;
	return adec_finish(&d);
}

int snapshot_load(struct repo *r, const uint8_t root[ARCA_ID_LEN],
		  struct snapshot **s_r, struct arca_err *err)
{
	struct abuf b = ABUF_INIT;
	int rc = repo_get(r, root, OBJ_SNAPSHOT, &b, err);
	if (rc == 0) {
		rc = snapshot_decode_root(b.data, b.len, s_r);
		if (rc) {
			char hex[2 * ARCA_ID_LEN + 1];
			hex_encode(hex, root, ARCA_ID_LEN);
			rc = arca_err_set(err, ARCA_ECORRUPT, "snapshot %s is malformed", hex);
		}
	}
	abuf_release(&b);
	return rc;
}

int snapshot_load_msgs(struct repo *r, struct snap_folder *f, struct arca_err *err)
{
	if (f->msgs != NULL || f->npages == 0)
		return 0;
	struct abuf b = ABUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < f->npages && rc == 0; i++) {
		size_t before = f->nmsgs;
		rc = repo_get(r, f->pages[i].id, OBJ_FOLDER_PAGE, &b, err);
		if (rc == 0 && (snapshot_decode_page(b.data, b.len, f) != 0 ||
				f->nmsgs - before != f->pages[i].count))
			rc = arca_err_set(err, ARCA_ECORRUPT, "folder %s: a message page is malformed", f->name);
	}
	abuf_release(&b);
	if (rc)   /* never leave a partly loaded folder that looks complete */
		snap_folder_drop_msgs(f);
	return rc;
}

/* n message records (the layout of docs/format/objects.md FOLDER_PAGE). */
static int decode_msgs(struct adec *d, struct snap_folder *f, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		struct snap_msg m = { 0 };
		uint64_t uid = adec_varint(d);
		m.uid = (uint32_t)uid;
		m.modseq = adec_varint(d);
		m.content_type = adec_u8(d);
		adec_fixed(d, m.content_id, ARCA_ID_LEN);
		m.size = adec_varint(d);
		m.date_sec = unzigzag(adec_varint(d));
		uint64_t nsec = adec_varint(d);
		m.date_nsec = (int32_t)nsec;
		uint64_t flags = adec_varint(d);
		m.flags = (uint32_t)(flags & ~SNAP_MSG_WIRE_UIDLIST_INFO);
		m.keywords = adec_varint(d);
		char *base = adec_strdup(d, SNAP_FIELD_MAX);
		char *ext = adec_strdup(d, SNAP_FIELD_MAX);
		uint8_t in_new = adec_u8(d);
		char *info = NULL;
		if (flags & SNAP_MSG_WIRE_UIDLIST_INFO)
			info = adec_strdup(d, SNAP_UIDLIST_INFO_MAX);
		int rc = 0;
		if (d->failed || uid > UINT32_MAX || nsec >= 1000000000u || flags >> 28 ||
		    in_new > 1 || (m.content_type != OBJ_BLOB && m.content_type != OBJ_CHUNKLIST) ||
		    (f->nkeywords < 64 && (m.keywords >> f->nkeywords) != 0) ||
		    (info != NULL && !uidlist_info_ok(info, strlen(info))))
			rc = ARCA_EFORMAT;
		m.in_new = in_new == 1;
		m.base = base;
		m.uidlist_ext = ext;
		m.uidlist_info = info;
		if (rc == 0)
			rc = snap_folder_add_msg(f, &m);
		free(base);
		free(ext);
		free(info);
		if (rc)
			return rc;
	}
	return 0;
}
