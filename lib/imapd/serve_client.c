/*
 * serve_client.c - the session's vault view over the keeper's channel
 * (serve_client.h).
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve_client.h"
#include "serve_proto.h"
#include "banned.h"

struct serve_client {
	int fd;
	bool bound;
	bool broken;
	struct abuf frame, in;
	struct serve_folder_list folders;
	struct serve_name_list gone;    /* came with folders */
	struct vv_account acct;         /* points into gone */
	bool have_folders;
	bool can_store;                 /* the keeper keeps flag changes */
};

struct serve_client *serve_client_new(int fd)
{
	struct serve_client *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	return c;
}

static void client_free(void *ctx)
{
	struct serve_client *c = ctx;
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	serve_folder_list_release(&c->folders);
	serve_name_list_release(&c->gone);
	abuf_release(&c->frame);
	abuf_release(&c->in);
	free(c);
}

/* Send the frame in c->frame, then receive one answer into c->in. */
static int call(struct serve_client *c, uint8_t *type_r)
{
	if (c->broken)
		return ARCA_EIO;
	int rc = serve_send(c->fd, &c->frame, NULL);
	rc = rc ? rc : serve_recv(c->fd, type_r, &c->in, NULL);
	if (rc) {
		c->broken = true;
		return ARCA_EIO;
	}
	return 0;
}

static int next(struct serve_client *c, uint8_t want)
{
	uint8_t type = 0;
	if (serve_recv(c->fd, &type, &c->in, NULL) != 0 || type != want) {
		c->broken = true;
		return ARCA_EIO;
	}
	return 0;
}

static int broken(struct serve_client *c)
{
	c->broken = true;
	return ARCA_EIO;
}

/* An ERR answer: its code (ARCA_ENOENT and kin pass through). */
static int err_answer(struct serve_client *c)
{
	int rc = serve_decode_err(c->in.data, c->in.len, NULL);
	return rc == ARCA_EFORMAT ? broken(c) : rc;
}

static int client_login(void *ctx, const char *user, const char *password)
{
	struct serve_client *c = ctx;
	if (c->bound)
		return ARCA_ESTATE;
	if (serve_encode_login(&c->frame, user, password) != 0) {
		/* too long to be anyone's: as wrong as a wrong password */
		sodium_memzero(c->frame.data, c->frame.cap);
		return ARCA_EKEY;
	}
	uint8_t type = 0;
	int rc = call(c, &type);
	sodium_memzero(c->frame.data, c->frame.cap);
	if (rc)
		return rc;
	if (type == SERVE_OK) {
		uint8_t flags;
		if (serve_decode_ok(c->in.data, c->in.len, &flags) != 0)
			return broken(c);
		c->bound = true;
		c->can_store = (flags & SERVE_OK_STORE) != 0;
		return 0;
	}
	uint8_t reason;
	char text[SERVE_TEXT_MAX + 1];
	if (type != SERVE_NO || serve_decode_no(c->in.data, c->in.len, &reason, text) != 0)
		return broken(c);
	return reason == SERVE_NO_BAD ? ARCA_EKEY : reason == SERVE_NO_THROTTLED ? ARCA_EBUSY : ARCA_ENOENT;
}

static int client_folders(void *ctx, const struct vv_folder **list_r, size_t *n_r)
{
	struct serve_client *c = ctx;
	if (!c->bound)
		return ARCA_ESTATE;
	serve_folder_list_release(&c->folders);
	serve_name_list_release(&c->gone);
	c->have_folders = false;
	if (serve_encode_folders(&c->frame) != 0)
		return ARCA_ENOMEM;
	uint8_t type = 0;
	int rc = call(c, &type);
	if (rc)
		return rc;
	if (type == SERVE_ERR)
		return err_answer(c);
	for (;;) {
		bool last = false;
		if (type != SERVE_FOLDER_LIST)
			return broken(c);
		rc = serve_decode_folder_list(c->in.data, c->in.len, &c->folders, &last);
		if (rc == ARCA_ENOMEM) {
			c->broken = true;   /* the rest of the answer is still coming */
			return rc;
		}
		if (rc)
			return broken(c);
		if (last)
			break;
		if (serve_recv(c->fd, &type, &c->in, NULL) != 0)
			return broken(c);
	}
	/* then the subscriptions to folders that are gone, up to their last */
	for (bool last = false; !last;) {
		if (next(c, SERVE_GONE_SUBS) != 0)
			return ARCA_EIO;
		rc = serve_decode_gone_subs(c->in.data, c->in.len, &c->gone, &last);
		if (rc == ARCA_ENOMEM) {
			c->broken = true;   /* frames may still be coming */
			return rc;
		}
		if (rc)
			return broken(c);
	}
	c->acct.separator = c->folders.separator;
	c->acct.gone_subs = c->gone.v;
	c->acct.ngone_subs = c->gone.n;
	c->have_folders = true;
	*list_r = c->folders.v;
	*n_r = c->folders.n;
	return 0;
}

static int client_account(void *ctx, const struct vv_account **acct_r)
{
	struct serve_client *c = ctx;
	if (!c->bound)
		return ARCA_ESTATE;
	if (!c->have_folders) {
		const struct vv_folder *f;
		size_t n;
		int rc = client_folders(ctx, &f, &n);
		if (rc)
			return rc;
	}
	*acct_r = &c->acct;
	return 0;
}

/* The MSGS frames that follow a head announcing `total` records: into
 * *msgs_r (grown with what arrives, not with what the head announced),
 * each checked: UIDs ascending, keyword bits within nkw, MODSEQ above
 * `above`.  0, or ARCA_ENOMEM / ARCA_EIO with the view broken. */
static int recv_msgs(struct serve_client *c, size_t total, size_t nkw, uint64_t above,
		     struct vv_msg **msgs_r, size_t *n_r)
{
	size_t cap = 0;
	uint64_t kwmask = nkw >= 64 ? UINT64_MAX : (UINT64_C(1) << nkw) - 1;
	int rc = 0;
	while (rc == 0 && *n_r < total) {
		if (next(c, SERVE_MSGS) != 0)
			return ARCA_EIO;
		size_t room = total - *n_r;
		if (room > SERVE_MSGS_PER_FRAME)
			room = SERVE_MSGS_PER_FRAME;
		if (*n_r + room > cap) {
			size_t ncap = cap ? cap * 2 : SERVE_MSGS_PER_FRAME;
			while (ncap < *n_r + room)
				ncap *= 2;
			if (ncap > total)
				ncap = total;
			struct vv_msg *m = realloc(*msgs_r, ncap * sizeof(*m));
			if (m == NULL) {
				c->broken = true;   /* the rest of the answer is still coming */
				return ARCA_ENOMEM;
			}
			*msgs_r = m;
			cap = ncap;
		}
		size_t got = 0;
		if (serve_decode_msgs(c->in.data, c->in.len, *msgs_r + *n_r, room, &got) != 0)
			return broken(c);
		for (size_t i = *n_r; i < *n_r + got; i++) {
			const struct vv_msg *m = &(*msgs_r)[i];
			if ((i > 0 && m->uid <= (*msgs_r)[i - 1].uid) || (m->keywords & ~kwmask) != 0 ||
			    m->modseq <= above)
				rc = broken(c);
		}
		*n_r += got;
	}
	return rc;
}

static int client_open(void *ctx, size_t folder, struct vv_mailbox *mb_r)
{
	struct serve_client *c = ctx;
	memset(mb_r, 0, sizeof(*mb_r));
	if (!c->bound)
		return ARCA_ESTATE;
	if (serve_encode_open(&c->frame, folder) != 0)
		return ARCA_ENOENT;
	uint8_t type = 0;
	int rc = call(c, &type);
	if (rc)
		return rc;
	if (type == SERVE_ERR)
		return err_answer(c);
	uint64_t total = 0;
	if (type != SERVE_MAILBOX)
		return broken(c);
	rc = serve_decode_mailbox(c->in.data, c->in.len, mb_r, &total);
	if (rc) {
		c->broken = true;   /* MSGS frames may follow */
		return rc == ARCA_ENOMEM ? rc : ARCA_EIO;
	}
	rc = recv_msgs(c, (size_t)total, mb_r->nkeywords, 0, &mb_r->msgs, &mb_r->nmsgs);
	if (rc)
		vv_mailbox_release(mb_r);
	return rc;
}

static int client_body(void *ctx, size_t folder, uint32_t uid, struct abuf *out)
{
	struct serve_client *c = ctx;
	if (!c->bound)
		return ARCA_ESTATE;
	if (serve_encode_body(&c->frame, folder, uid) != 0)
		return ARCA_ENOENT;
	uint8_t type = 0;
	int rc = call(c, &type);
	if (rc)
		return rc;
	if (type == SERVE_ERR)
		return err_answer(c);
	uint64_t size = 0;
	if (type != SERVE_BODY_R || serve_decode_body_r(c->in.data, c->in.len, &size) != 0)
		return broken(c);
	size_t start = out->len;
	if (abuf_reserve(out, (size_t)size) != 0) {
		/* the data is on its way: the channel can't be used again */
		c->broken = true;
		return ARCA_ENOMEM;
	}
	while (out->len - start < size) {
		if (next(c, SERVE_DATA) != 0 || c->in.len == 0 || c->in.len > size - (out->len - start)) {
			out->len = start;
			return broken(c);
		}
		memcpy(out->data + out->len, c->in.data, c->in.len);
		out->len += c->in.len;
	}
	return 0;
}

static bool client_can_store(void *ctx)
{
	const struct serve_client *c = ctx;
	return c->bound && c->can_store && !c->broken;
}

/* Send c->frame (a STORE or CHANGES) and take the STORED answer with its
 * message records (at most max, each MODSEQ above `above`) into res.  On
 * failure res is released. */
static int call_stored(struct serve_client *c, uint64_t above, size_t max, struct vv_store_result *res)
{
	uint8_t type = 0;
	int rc = call(c, &type);
	if (rc)
		return rc;
	if (type == SERVE_ERR)
		return err_answer(c);
	if (type != SERVE_STORED)
		return broken(c);
	size_t total = 0;
	rc = serve_decode_stored(c->in.data, c->in.len, res, &total, max);
	if (rc) {
		c->broken = true;   /* MSGS frames may follow */
		return rc == ARCA_ENOMEM ? rc : ARCA_EIO;
	}
	rc = recv_msgs(c, total, res->nkeywords, above, &res->msgs, &res->nmsgs);
	if (rc)
		vv_store_result_release(res);
	return rc;
}

/* One STORE frame's answer appended to res. */
static int store_chunk(struct serve_client *c, size_t folder, const struct vv_store *req,
		       struct vv_store_result *res)
{
	if (serve_encode_store(&c->frame, folder, req) != 0)
		return ARCA_ELIMIT;
	struct vv_store_result part = { 0 };
	int rc = call_stored(c, 0, SERVE_STORE_UIDS_MAX, &part);
	if (rc)
		return rc;
	/* what the keeper says must be about this request: UIDs of it */
	size_t j = 0;
	for (size_t i = 0; i < part.nmodified && rc == 0; i++) {
		while (j < req->nuids && req->uids[j] < part.modified[i])
			j++;
		if (j == req->nuids || req->uids[j] != part.modified[i])
			rc = ARCA_EIO;
	}
	j = 0;
	for (size_t i = 0; i < part.nmsgs && rc == 0; i++) {
		while (j < req->nuids && req->uids[j] < part.msgs[i].uid)
			j++;
		if (j == req->nuids || req->uids[j] != part.msgs[i].uid)
			rc = ARCA_EIO;
	}
	if (rc == 0) {
		uint32_t *mod = part.nmodified == 0 ? res->modified :
				realloc(res->modified, (res->nmodified + part.nmodified) * sizeof(*mod));
		struct vv_msg *msgs = part.nmsgs == 0 ? res->msgs :
				      realloc(res->msgs, (res->nmsgs + part.nmsgs) * sizeof(*msgs));
		if (mod)
			res->modified = mod;
		if (msgs)
			res->msgs = msgs;
		if ((part.nmodified && mod == NULL) || (part.nmsgs && msgs == NULL)) {
			rc = ARCA_ENOMEM;
		} else {
			if (part.nmodified)
				memcpy(res->modified + res->nmodified, part.modified, part.nmodified * sizeof(*mod));
			res->nmodified += part.nmodified;
			if (part.nmsgs)
				memcpy(res->msgs + res->nmsgs, part.msgs, part.nmsgs * sizeof(*msgs));
			res->nmsgs += part.nmsgs;
			/* the keyword list of the last answer is the folder's now */
			for (size_t i = 0; i < res->nkeywords; i++)
				free(res->keywords[i]);
			free(res->keywords);
			res->keywords = part.keywords;
			res->nkeywords = part.nkeywords;
			part.keywords = NULL;
			part.nkeywords = 0;
		}
	}
	if (rc == ARCA_EIO)
		c->broken = true;
	vv_store_result_release(&part);
	return rc;
}

static int client_store(void *ctx, size_t folder, const struct vv_store *req, struct vv_store_result *res)
{
	struct serve_client *c = ctx;
	memset(res, 0, sizeof(*res));
	if (!c->bound || !c->can_store)
		return ARCA_ESTATE;
	int rc = 0;
	/* a STORE over more UIDs than a frame takes goes as several */
	for (size_t off = 0; rc == 0 && off < req->nuids; off += SERVE_STORE_UIDS_MAX) {
		struct vv_store part = *req;
		part.uids = req->uids + off;
		part.nuids = req->nuids - off > SERVE_STORE_UIDS_MAX ? SERVE_STORE_UIDS_MAX : req->nuids - off;
		rc = store_chunk(c, folder, &part, res);
	}
	if (rc)
		vv_store_result_release(res);
	return rc;
}

static int client_changes(void *ctx, size_t folder, uint64_t since, struct vv_store_result *res)
{
	struct serve_client *c = ctx;
	memset(res, 0, sizeof(*res));
	if (!c->bound || !c->can_store)
		return ARCA_ESTATE;
	if (serve_encode_changes(&c->frame, folder, since) != 0)
		return ARCA_ENOENT;
	int rc = call_stored(c, since, SERVE_MSGS_MAX, res);
	if (rc == 0 && res->nmodified != 0) {
		vv_store_result_release(res);
		rc = broken(c);
	}
	return rc;
}

const struct vault_view_ops serve_client_ops = {
	.login = client_login,
	.folders = client_folders,
	.open = client_open,
	.body = client_body,
	.free = client_free,
	.account = client_account,
	.can_store = client_can_store,
	.store = client_store,
	.changes = client_changes,
};
