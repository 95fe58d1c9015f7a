/*
 * Fuzz the decoders of serve-imap's channel (lib/imapd/serve_proto.c): the
 * keeper decodes what a session process sends (which its IMAP client may
 * have taken over), the session what the keeper answers, the keeper what
 * the acceptor sends on the control socket.  The first byte picks the
 * decoder.  What decodes must encode again to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const struct abuf *f, const uint8_t *p, size_t n)
{
	if (f->len != n + 5 || memcmp(f->data + 5, p, n) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t which = data[0] % 15;
	data++;
	size--;
	struct abuf f = ABUF_INIT;
	switch (which) {
	case 0: {
		char user[SERVE_USER_MAX + 1], pass[SERVE_PASSWORD_MAX + 1];
		if (serve_decode_login(data, size, user, pass) == 0) {
			if (serve_encode_login(&f, user, pass) != 0)
				abort();
			same(&f, data, size);
		}
		break;
	}
	case 1: {
		size_t folder;
		if (serve_decode_open(data, size, &folder) == 0) {
			if (serve_encode_open(&f, folder) != 0)
				abort();
			same(&f, data, size);
		}
		break;
	}
	case 2: {
		size_t folder;
		uint32_t uid;
		if (serve_decode_body(data, size, &folder, &uid) == 0) {
			if (serve_encode_body(&f, folder, uid) != 0)
				abort();
			same(&f, data, size);
		}
		break;
	}
	case 3: {
		uint8_t reason;
		char text[SERVE_TEXT_MAX + 1];
		if (serve_decode_no(data, size, &reason, text) == 0) {
			if (serve_encode_no(&f, reason, text) != 0)
				abort();
			same(&f, data, size);
		}
		break;
	}
	case 4: {
		struct serve_folder_list l = { 0 };
		bool last;
		if (serve_decode_folder_list(data, size, &l, &last) == 0) {
			if (serve_encode_folder_list(&f, last, l.separator, l.v, l.n) != 0)
				abort();
			same(&f, data, size);
		}
		serve_folder_list_release(&l);
		break;
	}
	case 5: {
		struct vv_mailbox mb = { 0 };
		uint64_t n;
		if (serve_decode_mailbox(data, size, &mb, &n) == 0) {
			if (serve_encode_mailbox(&f, mb.keywords, mb.nkeywords, n) != 0)
				abort();
			same(&f, data, size);
		}
		vv_mailbox_release(&mb);
		break;
	}
	case 6: {
		struct vv_msg *m = calloc(SERVE_MSGS_PER_FRAME, sizeof(*m));
		size_t n;
		if (m && serve_decode_msgs(data, size, m, SERVE_MSGS_PER_FRAME, &n) == 0) {
			if (serve_encode_msgs(&f, m, n) != 0)
				abort();
			same(&f, data, size);
		}
		free(m);
		break;
	}
	case 7: {
		uint64_t s;
		if (serve_decode_body_r(data, size, &s) == 0) {
			if (serve_encode_body_r(&f, s) != 0)
				abort();
			same(&f, data, size);
		}
		break;
	}
	case 8: {
		struct arca_err err = { 0 };
		(void)serve_decode_err(data, size, &err);
		break;
	}
	case 10: {
		struct serve_name_list l = { 0 };
		bool last;
		if (serve_decode_gone_subs(data, size, &l, &last) == 0) {
			if (serve_encode_gone_subs(&f, last, l.v, l.n) != 0)
				abort();
			same(&f, data, size);
		}
		serve_name_list_release(&l);
		break;
	}
	case 9: {
		char peer[SERVE_PEER_MAX + 1];
		uint16_t port;
		if (serve_ctl_decode(data, size, peer, &port) == 0) {
			if (serve_ctl_encode(&f, peer, port) != 0 || f.len != size || memcmp(f.data, data, size) != 0)
				abort();
		}
		break;
	}
	case 11: {
		uint8_t flags;
		if (serve_decode_ok(data, size, &flags) == 0) {
			if (serve_encode_ok(&f, flags) != 0)
				abort();
			same(&f, data, size);
		}
		break;
	}
	case 12: {
		size_t folder;
		struct vv_store req;
		if (serve_decode_store(data, size, &folder, &req) == 0) {
			if (serve_encode_store(&f, folder, &req) != 0)
				abort();
			same(&f, data, size);
			serve_store_release(&req);
		}
		break;
	}
	case 13: {
		struct vv_store_result res = { 0 };
		size_t nmsgs;
		if (serve_decode_stored(data, size, &res, &nmsgs, SERVE_MSGS_MAX) == 0) {
			if (serve_encode_stored(&f, res.keywords, res.nkeywords, res.modified, res.nmodified,
						nmsgs) != 0)
				abort();
			same(&f, data, size);
			vv_store_result_release(&res);
		}
		break;
	}
	case 14: {
		size_t folder;
		uint64_t since;
		if (serve_decode_changes(data, size, &folder, &since) == 0) {
			if (serve_encode_changes(&f, folder, since) != 0)
				abort();
			same(&f, data, size);
		}
		break;
	}
	}
	abuf_release(&f);
	return 0;
}
