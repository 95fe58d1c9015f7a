/* IMAP commands of serve-imap: the input is parsed as one whole command
 * (imapd_parse) and each of its lines as one, checking what a parsed command
 * promises (kinds, sets, sections, search trees within the limits); then
 * the same bytes are a client's stream into a whole session over an
 * in-memory io and a small in-memory vault view (logged in first when the
 * input's first byte is odd; shown with Maildir++'s '.' separator, which
 * hides "x.y", when its bit 2 is set), which must end, answer with a greeting first,
 * and return one of the codes it documents. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arca_err.h"
#include "buf.h"
#include "imapd_parse.h"
#include "imapd_session.h"
#include "vault_view.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- parser checks --------------------------------------------------------- */

static void check_set(const struct imapd_seqset *s, bool may_be_empty)
{
	if (s->n == 0 && !may_be_empty)
		abort();
	if (s->n > IMAPD_SEQ_RANGES_MAX)
		abort();
}

static size_t check_keys(const struct imapd_search_key *k, unsigned depth)
{
	size_t n = 0;
	if (depth > IMAPD_SEARCH_DEPTH_MAX + 1)
		abort();
	for (; k; k = k->next) {
		n++;
		switch (k->op) {
		case IMAPD_SK_AND:
			break;
		case IMAPD_SK_OR:
			if (k->child == NULL || k->child->next == NULL || k->child->next->next)
				abort();
			break;
		case IMAPD_SK_NOT:
			if (k->child == NULL || k->child->next)
				abort();
			break;
		case IMAPD_SK_SEQSET:
		case IMAPD_SK_UIDSET:
			check_set(&k->set, false);
			break;
		case IMAPD_SK_HEADER:
			if (k->field == NULL || k->str == NULL)
				abort();
			break;
		case IMAPD_SK_BODY: case IMAPD_SK_TEXT: case IMAPD_SK_KEYWORD: case IMAPD_SK_UNKEYWORD:
			if (k->str == NULL)
				abort();
			break;
		default:
			if (k->child)
				abort();
		}
		n += check_keys(k->child, depth + 1);
	}
	return n;
}

static void check_parse(const char *p, size_t n)
{
	struct imapd_cmd c;
	int rc = imapd_parse(p, n, &c);
	if (rc != 0) {
		if ((rc != ARCA_EFORMAT && rc != ARCA_ELIMIT && rc != ARCA_ENOMEM) || c.error == NULL)
			abort();
		imapd_cmd_release(&c);
		return;
	}
	if (c.kind == IMAPD_CMD_NONE || c.tag == NULL || c.tag[0] == '\0' ||
	    strlen(c.tag) > IMAPD_TAG_MAX || c.arena_total > IMAPD_ARENA_MAX)
		abort();
	switch (c.kind) {
	case IMAPD_CMD_FETCH:
		check_set(&c.set, false);
		if (c.natts == 0 || c.natts > IMAPD_FETCH_ATTS_MAX)
			abort();
		for (size_t i = 0; i < c.natts; i++) {
			const struct imapd_fetch_att *a = &c.atts[i];
			if (a->partial && a->count == 0)
				abort();
			if (a->section.nparts > IMAPD_MIME_DEPTH_MAX ||
			    a->section.nfields > IMAPD_SECTION_FIELDS_MAX)
				abort();
			for (size_t k = 0; k < a->section.nparts; k++)
				if (a->section.part[k] == 0)
					abort();
			if (a->section.kind == IMAPD_SECTION_MIME && a->section.nparts == 0)
				abort();
			bool hf = a->section.kind == IMAPD_SECTION_HEADER_FIELDS ||
				  a->section.kind == IMAPD_SECTION_HEADER_FIELDS_NOT;
			if (hf != (a->section.nfields > 0))
				abort();
			for (size_t k = 0; k < a->section.nfields; k++)
				if (a->section.fields[k] == NULL || a->section.fields[k][0] == '\0' ||
				    strchr(a->section.fields[k], ':'))
					abort();
		}
		if (c.vanished && !(c.uid && c.changedsince_given))
			abort();
		break;
	case IMAPD_CMD_SEARCH:
		if (c.search == NULL || c.search->op != IMAPD_SK_AND || c.search->child == NULL)
			abort();
		if (check_keys(c.search, 0) > IMAPD_SEARCH_KEYS_MAX)
			abort();
		break;
	case IMAPD_CMD_LOGIN:
		if (c.a1 == NULL || c.a2 == NULL || strlen(c.a2) != c.a2_len)
			abort();
		break;
	case IMAPD_CMD_SELECT: case IMAPD_CMD_EXAMINE: case IMAPD_CMD_STATUS:
		if (c.a1 == NULL)
			abort();
		if (c.kind == IMAPD_CMD_STATUS && c.status_items == 0)
			abort();
		check_set(&c.qr_known_uids, true);
		if ((c.qr_seq_match.n == 0) != (c.qr_uid_match.n == 0))
			abort();
		break;
	case IMAPD_CMD_LIST: case IMAPD_CMD_LSUB:
		if (c.a1 == NULL || c.nstrs == 0 || c.nstrs > IMAPD_PATTERNS_MAX)
			abort();
		for (size_t i = 0; i < c.nstrs; i++)
			if (c.strs[i] == NULL)
				abort();
		break;
	case IMAPD_CMD_STORE:
		/* what the keeper takes: atoms, each once, system flags only as bits */
		check_set(&c.set, false);
		if (c.nstore_keywords > IMAPD_STORE_KEYWORDS_MAX || c.store_mode < -1 || c.store_mode > 1 ||
		    (c.store_flags & ~(uint32_t)(VV_SEEN | VV_ANSWERED | VV_FLAGGED | VV_DELETED | VV_DRAFT)))
			abort();
		for (size_t i = 0; i < c.nstore_keywords; i++) {
			if (!vv_keyword_ok(c.store_keywords[i]))
				abort();
			for (size_t j = 0; j < i; j++)
				if (strcasecmp(c.store_keywords[i], c.store_keywords[j]) == 0)
					abort();
		}
		break;
	case IMAPD_CMD_COPY: case IMAPD_CMD_MOVE:
		check_set(&c.set, false);
		break;
	default:
		break;
	}
	imapd_cmd_release(&c);
}

/* ---- a whole session ------------------------------------------------------- */

struct memio {
	const uint8_t *in;
	size_t len, pos;
	size_t out;
	bool greeted;
};

static ssize_t mem_read(void *ctx, void *buf, size_t n)
{
	struct memio *m = ctx;
	/* small reads: lines and literals cross read boundaries */
	size_t k = m->len - m->pos;
	if (k > n)
		k = n;
	if (k > 97)
		k = 97;
	if (k == 0)
		return 0;
	memcpy(buf, m->in + m->pos, k);
	m->pos += k;
	return (ssize_t)k;
}

static int mem_write(void *ctx, const void *buf, size_t n)
{
	struct memio *m = ctx;
	if (!m->greeted) {
		if (n < 17 || memcmp(buf, "* OK [CAPABILITY ", 17) != 0)
			abort();
		m->greeted = true;
	}
	m->out += n;
	return 0;
}

static int mem_wait(void *ctx, int ms)
{
	(void)ctx;
	(void)ms;
	return 1;   /* at the end, read() says end of stream */
}

static int mem_starttls(void *ctx)
{
	(void)ctx;
	return 0;
}

static const char msg1[] =
	"From: A <a@example.test>\r\nTo: b@example.test\r\nSubject: hi\r\n"
	"Date: Mon, 2 Jan 2023 10:00:00 +0000\r\n\r\nbody text\r\n";
static const char msg2[] =
	"From: B <b@example.test>\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\n"
	"one\r\n--x\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ntwo\r\n--x--\r\n";

static struct vv_folder folders[] = {
	{ "INBOX", VV_SELECTABLE | VV_SUBSCRIBED, "", 7, 10, 9, 3, 1 },
	{ "Sent", VV_SELECTABLE, "\\Sent", 8, 3, 2, 1, 0 },
	{ "a/b", VV_SUBSCRIBED | VV_NONEXISTENT, "", 0, 1, 1, 0, 0 },
	{ "a/b/Entwürfe", VV_SELECTABLE, "\\Drafts", 9, 1, 1, 0, 0 },
	{ "x.y", VV_SELECTABLE, "", 10, 1, 1, 0, 0 },
};

/* subscriptions whose folders are gone: one under an existing parent, one
 * that '.' can't show */
static char *gone[] = { "Old/Gone", "a/Gone", "x.y/z" };
static struct vv_account account = { '/', gone, 3 };

static const struct vv_msg inbox_msgs[] = {
	{ 1, 3, VV_SEEN, 1, 1672653600, sizeof(msg1) - 1, false },
	{ 4, 9, VV_FLAGGED, 2, 1672790400, sizeof(msg2) - 1, false },
	{ 9, 1, VV_SEEN | VV_ANSWERED, 0, -5, sizeof(msg1) - 1, false },
};

static bool bound;

static int v_login(void *ctx, const char *user, const char *pass)
{
	(void)ctx;
	if (bound)
		return ARCA_ESTATE;
	if (strcmp(user, "busy") == 0)
		return ARCA_EBUSY;
	if (strcmp(user, "u") != 0 || strcmp(pass, "p") != 0)
		return ARCA_EKEY;
	bound = true;
	return 0;
}

static int v_folders(void *ctx, const struct vv_folder **l, size_t *n)
{
	(void)ctx;
	if (!bound)
		abort();   /* the session asked before login */
	*l = folders;
	*n = sizeof(folders) / sizeof(folders[0]);
	return 0;
}

static int v_open(void *ctx, size_t f, struct vv_mailbox *mb)
{
	(void)ctx;
	memset(mb, 0, sizeof(*mb));
	if (!bound || f >= sizeof(folders) / sizeof(folders[0]))
		abort();
	if (f == 1)
		return ARCA_EIO;   /* a view in trouble */
	size_t n = f == 0 ? 3 : 0;
	mb->msgs = malloc(sizeof(inbox_msgs));
	mb->keywords = calloc(2, sizeof(char *));
	if (mb->msgs == NULL || mb->keywords == NULL)
		abort();
	memcpy(mb->msgs, inbox_msgs, n * sizeof(inbox_msgs[0]));
	mb->nmsgs = n;
	mb->keywords[0] = strdup("$Label1");
	mb->keywords[1] = strdup("bad keyword");   /* never shown */
	mb->nkeywords = 2;
	return 0;
}

static int v_body(void *ctx, size_t f, uint32_t uid, struct abuf *out)
{
	(void)ctx;
	if (!bound || f != 0)
		abort();
	if (uid == 4)
		return abuf_add(out, msg2, sizeof(msg2) - 1);
	if (uid == 1 || uid == 9)
		return abuf_add(out, msg1, sizeof(msg1) - 1);
	abort();
}

static int v_account(void *ctx, const struct vv_account **a)
{
	(void)ctx;
	if (!bound)
		abort();
	*a = &account;
	return 0;
}

static void v_free(void *ctx)
{
	(void)ctx;
}

static bool v_can_store(void *ctx)
{
	(void)ctx;
	return true;
}

/* A STORE as the keeper answers it (nothing kept between calls): the
 * session must ask only for UIDs of its mailbox, ascending. */
static int v_store(void *ctx, size_t f, const struct vv_store *req, struct vv_store_result *res)
{
	(void)ctx;
	memset(res, 0, sizeof(*res));
	if (!bound || f != 0 || req->nuids == 0)
		abort();
	char *kw[VV_KEYWORDS_MAX] = { strdup("$Label1"), strdup("bad keyword") };
	size_t nkw = 2;
	uint64_t mask;
	int rc = vv_store_keywords(kw, &nkw, req, &mask);
	if (rc == 0) {
		res->msgs = calloc(3, sizeof(*res->msgs));
		res->modified = calloc(3, sizeof(*res->modified));
		res->keywords = calloc(nkw, sizeof(char *));
		if (res->msgs == NULL || res->modified == NULL || res->keywords == NULL)
			abort();
	}
	for (size_t i = 0; rc == 0 && i < req->nuids; i++) {
		if (i > 0 && req->uids[i] <= req->uids[i - 1])
			abort();
		for (size_t k = 0; k < 3; k++) {
			if (inbox_msgs[k].uid != req->uids[i])
				continue;
			if (req->has_unchangedsince && inbox_msgs[k].modseq > req->unchangedsince) {
				res->modified[res->nmodified++] = inbox_msgs[k].uid;
				break;
			}
			struct vv_msg m = inbox_msgs[k];
			vv_store_one(req, mask, &m.flags, &m.keywords);
			m.modseq = 10;
			res->msgs[res->nmsgs++] = m;
		}
	}
	for (size_t i = 0; i < nkw; i++) {
		if (rc == 0)
			res->keywords[res->nkeywords++] = kw[i];
		else
			free(kw[i]);
	}
	return rc;
}

/* Another session's changes: the inbox as if each message had changed. */
static int v_changes(void *ctx, size_t f, uint64_t since, struct vv_store_result *res)
{
	(void)ctx;
	memset(res, 0, sizeof(*res));
	/* only a folder the session could select (1 never opens) */
	if (!bound || f >= sizeof(folders) / sizeof(folders[0]) || f == 1)
		abort();
	if (f != 0)
		return 0;   /* the empty folders: nothing changed */
	res->msgs = calloc(3, sizeof(*res->msgs));
	res->keywords = calloc(3, sizeof(char *));
	if (res->msgs == NULL || res->keywords == NULL)
		abort();
	for (size_t k = 0; k < 3; k++) {
		struct vv_msg m = inbox_msgs[k];
		m.modseq = since + 1 + k;
		m.flags ^= VV_FLAGGED;
		m.keywords = 4;            /* a keyword new to the session */
		res->msgs[res->nmsgs++] = m;
	}
	res->keywords[0] = strdup("$Label1");
	res->keywords[1] = strdup("bad keyword");
	res->keywords[2] = strdup("Other");
	res->nkeywords = 3;
	return 0;
}

static const struct vault_view_ops view = {
	.login = v_login, .folders = v_folders, .open = v_open, .body = v_body, .free = v_free,
	.account = v_account, .can_store = v_can_store, .store = v_store, .changes = v_changes,
};

static void run_session(const uint8_t *data, size_t size)
{
	struct abuf in = ABUF_INIT;
	bool login = size > 0 && (data[0] & 1);
	if (login && abuf_add(&in, "L LOGIN u p\r\n", 13) != 0)
		abort();
	if (size > 0 && abuf_add(&in, data + 1, size - 1) != 0)
		abort();
	struct memio m = { .in = in.data, .len = in.len };
	struct imapd_io io = { .read = mem_read, .write = mem_write, .wait = mem_wait,
			       .starttls = (size > 0 && (data[0] & 2)) ? mem_starttls : NULL,
			       .loopback = true, .ctx = &m };
	struct imapd_session_opts o = { .greeting_name = "fuzz", .max_bad = 50 };
	bound = false;
	account.separator = size > 0 && (data[0] & 4) ? '.' : '/';
	int rc = imapd_session_run(&io, &view, NULL, &o);
	if (rc != 0 && rc != ARCA_ELIMIT && rc != ARCA_EIO && rc != ARCA_EFORMAT &&
	    rc != ARCA_ENOMEM)
		abort();
	if (!m.greeted)
		abort();
	abuf_release(&in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_parse((const char *)data, size);
	/* each line on its own, as the session hands over a command without literals */
	size_t start = 0;
	for (size_t i = 0; i < size; i++) {
		if (data[i] == '\n') {
			size_t end = i > start && data[i - 1] == '\r' ? i - 1 : i;
			check_parse((const char *)data + start, end - start);
			start = i + 1;
		}
	}
	run_session(data, size);
	return 0;
}
