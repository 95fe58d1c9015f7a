/*
 * serve-imap's process side without the network: the channel codec
 * (round trips and rejections), the passwd-file (every scheme, with
 * hashes made by crypt_r, libsodium, `openssl passwd -6` and `doveadm pw`),
 * throttling, and the keeper over socketpairs with a small repository made
 * here: logins right, wrong and throttled; nothing before a login; the
 * served view (UIDs, flags, keywords, MODSEQ, sizes, bare LF -> CRLF);
 * another account's mail out of reach; a session that breaks the protocol
 * loses its channel.
 */
#include <crypt.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "pack.h"
#include "passwd.h"
#include "repo.h"
#include "serve_client.h"
#include "overlay.h"
#include "serve_keeper.h"
#include "serve_proto.h"
#include "snapshot.h"
#include "maildir.h"

/* ---- codec ---- */

static void test_proto_roundtrip(void)
{
	struct abuf f = ABUF_INIT;
	char user[SERVE_USER_MAX + 1], pass[SERVE_PASSWORD_MAX + 1];
	REQUIRE(serve_encode_login(&f, "alice@example.test", "p:w d") == 0);
	CHECK_EQ_INT(f.data[4], SERVE_LOGIN);
	CHECK_EQ_INT(get_u32le(f.data), f.len - 4);
	REQUIRE(serve_decode_login(f.data + 5, f.len - 5, user, pass) == 0);
	CHECK_STR(user, "alice@example.test");
	CHECK_STR(pass, "p:w d");

	size_t folder;
	uint32_t uid;
	REQUIRE(serve_encode_open(&f, 12345) == 0);
	CHECK(serve_decode_open(f.data + 5, f.len - 5, &folder) == 0 && folder == 12345);
	REQUIRE(serve_encode_body(&f, 3, 4000000000u) == 0);
	CHECK(serve_decode_body(f.data + 5, f.len - 5, &folder, &uid) == 0 && folder == 3 && uid == 4000000000u);

	uint8_t reason;
	char text[SERVE_TEXT_MAX + 1];
	REQUIRE(serve_encode_no(&f, SERVE_NO_THROTTLED, "later") == 0);
	CHECK(serve_decode_no(f.data + 5, f.len - 5, &reason, text) == 0 && reason == SERVE_NO_THROTTLED);
	CHECK_STR(text, "later");

	struct vv_folder fo[2] = {
		{ .name = "INBOX", .attrs = VV_SELECTABLE | VV_SUBSCRIBED, .special_use = "",
		  .uidvalidity = 77, .uidnext = 9, .highestmodseq = 1ull << 40, .messages = 3, .unseen = 2 },
		{ .name = "Archive/\xc3\xa9t\xc3\xa9", .attrs = 0, .special_use = "\\Archive",
		  .uidvalidity = 0, .uidnext = 1, .highestmodseq = 1, .messages = 0, .unseen = 0 },
	};
	struct serve_folder_list l = { 0 };
	bool last = true;
	REQUIRE(serve_encode_folder_list(&f, false, '.', fo, 1) == 0);
	REQUIRE(serve_decode_folder_list(f.data + 5, f.len - 5, &l, &last) == 0);
	CHECK(!last);
	CHECK(l.separator == '.');
	REQUIRE(serve_encode_folder_list(&f, true, '.', fo + 1, 1) == 0);
	REQUIRE(serve_decode_folder_list(f.data + 5, f.len - 5, &l, &last) == 0);
	CHECK(last);
	REQUIRE(l.n == 2);
	CHECK_STR(l.v[0].name, "INBOX");
	CHECK_EQ_INT(l.v[0].highestmodseq, 1ull << 40);
	CHECK_EQ_INT(l.v[0].unseen, 2);
	CHECK_STR(l.v[1].special_use, "\\Archive");
	CHECK_STR(l.v[1].name, "Archive/\xc3\xa9t\xc3\xa9");
	serve_folder_list_release(&l);
	REQUIRE(serve_encode_folder_list(&f, true, '/', NULL, 0) == 0);
	REQUIRE(serve_decode_folder_list(f.data + 5, f.len - 5, &l, &last) == 0);
	CHECK(last && l.n == 0 && l.separator == '/');
	serve_folder_list_release(&l);

	char *subs[] = { "Old/Gone", "\xe6\x97\xa5", "x" };
	struct serve_name_list nl = { 0 };
	REQUIRE(serve_encode_gone_subs(&f, false, subs, 2) == 0);
	REQUIRE(serve_decode_gone_subs(f.data + 5, f.len - 5, &nl, &last) == 0);
	CHECK(!last && nl.n == 2);
	REQUIRE(serve_encode_gone_subs(&f, true, subs + 2, 1) == 0);
	REQUIRE(serve_decode_gone_subs(f.data + 5, f.len - 5, &nl, &last) == 0);
	CHECK(last && nl.n == 3);
	REQUIRE(nl.n == 3);
	CHECK_STR(nl.v[0], "Old/Gone");
	CHECK_STR(nl.v[1], "\xe6\x97\xa5");
	CHECK_STR(nl.v[2], "x");
	serve_name_list_release(&nl);
	REQUIRE(serve_encode_gone_subs(&f, true, NULL, 0) == 0);
	REQUIRE(serve_decode_gone_subs(f.data + 5, f.len - 5, &nl, &last) == 0);
	CHECK(last && nl.n == 0);

	char *kw[] = { "$Work", "custom" };
	struct vv_mailbox mb = { 0 };
	uint64_t n = 0;
	REQUIRE(serve_encode_mailbox(&f, kw, 2, 2) == 0);
	REQUIRE(serve_decode_mailbox(f.data + 5, f.len - 5, &mb, &n) == 0);
	CHECK(n == 2 && mb.nkeywords == 2);
	CHECK_STR(mb.keywords[1], "custom");
	vv_mailbox_release(&mb);

	struct vv_msg m[2] = {
		{ .uid = 1, .modseq = 5, .flags = VV_SEEN | VV_DRAFT, .keywords = 3, .date = -86400,
		  .size = 12345, .recent = true },
		{ .uid = 7, .modseq = UINT64_MAX, .flags = 0, .keywords = 1ull << 63, .date = 1700000000,
		  .size = 0, .recent = false },
	};
	struct vv_msg back[2];
	size_t got = 0;
	REQUIRE(serve_encode_msgs(&f, m, 2) == 0);
	CHECK_EQ_INT(f.len, 5 + 1 + 2 * SERVE_MSG_RECORD);
	REQUIRE(serve_decode_msgs(f.data + 5, f.len - 5, back, 2, &got) == 0);
	CHECK(got == 2 && memcmp(&back[0].uid, &m[0].uid, 4) == 0);
	CHECK(back[0].date == -86400 && back[0].recent && back[0].flags == (VV_SEEN | VV_DRAFT));
	CHECK(back[1].modseq == UINT64_MAX && back[1].keywords == 1ull << 63 && !back[1].recent);
	CHECK(serve_decode_msgs(f.data + 5, f.len - 5, back, 1, &got) == ARCA_EFORMAT);   /* no room */

	uint64_t size;
	REQUIRE(serve_encode_body_r(&f, SERVE_BODY_MAX) == 0);
	CHECK(serve_decode_body_r(f.data + 5, f.len - 5, &size) == 0 && size == SERVE_BODY_MAX);
	struct arca_err err = { 0 };
	REQUIRE(serve_encode_err(&f, ARCA_ENOENT, "no such folder") == 0);
	CHECK_EQ_INT(serve_decode_err(f.data + 5, f.len - 5, &err), ARCA_ENOENT);
	CHECK_STR(err.msg, "no such folder");

	char peer[SERVE_PEER_MAX + 1];
	uint16_t port;
	REQUIRE(serve_ctl_encode(&f, "2001:db8::1", 993) == 0);
	CHECK(serve_ctl_decode(f.data, f.len, peer, &port) == 0 && port == 993);
	CHECK_STR(peer, "2001:db8::1");
	abuf_release(&f);
}

static void test_proto_rejects(void)
{
	struct abuf f = ABUF_INIT;
	char user[SERVE_USER_MAX + 1], pass[SERVE_PASSWORD_MAX + 1];
	/* trailing byte */
	REQUIRE(serve_encode_login(&f, "a", "b") == 0);
	REQUIRE(abuf_add_u8(&f, 0) == 0);
	CHECK(serve_decode_login(f.data + 5, f.len - 5, user, pass) == ARCA_EFORMAT);
	/* cut */
	REQUIRE(serve_encode_login(&f, "a", "b") == 0);
	CHECK(serve_decode_login(f.data + 5, f.len - 6, user, pass) == ARCA_EFORMAT);
	/* empty user, NUL inside */
	REQUIRE(serve_encode_login(&f, "", "b") == 0);
	CHECK(serve_decode_login(f.data + 5, f.len - 5, user, pass) == ARCA_EFORMAT);
	uint8_t nul[] = { 3, 'a', 0, 'b', 1, 'x' };
	CHECK(serve_decode_login(nul, sizeof(nul), user, pass) == ARCA_EFORMAT);
	/* over the limits: the encoders refuse, the decoders too */
	char *big = malloc(SERVE_PASSWORD_MAX + 2);
	REQUIRE(big != NULL);
	memset(big, 'x', SERVE_PASSWORD_MAX + 1);
	big[SERVE_PASSWORD_MAX + 1] = '\0';
	CHECK(serve_encode_login(&f, "a", big) == ARCA_ELIMIT);
	struct abuf raw = ABUF_INIT;
	REQUIRE(abuf_add_str(&raw, "a") == 0 && abuf_add_str(&raw, big) == 0);
	CHECK(serve_decode_login(raw.data, raw.len, user, pass) == ARCA_EFORMAT);
	free(big);
	abuf_release(&raw);
	/* FOLDERS with a payload, a folder index past the limit, UID 0 */
	uint8_t one = 0;
	CHECK(serve_decode_empty(&one, 1) == ARCA_EFORMAT);
	size_t folder;
	uint32_t uid;
	REQUIRE(abuf_add_varint(&raw, SERVE_FOLDERS_MAX) == 0);
	CHECK(serve_decode_open(raw.data, raw.len, &folder) == ARCA_EFORMAT);
	CHECK(serve_encode_body(&f, 0, 0) == ARCA_ELIMIT);
	uint8_t b0[] = { 0, 0, 0, 0, 0 };
	CHECK(serve_decode_body(b0, sizeof(b0), &folder, &uid) == ARCA_EFORMAT);
	/* a NO with an unknown reason */
	uint8_t no[] = { 9, 0 };
	uint8_t reason;
	char text[SERVE_TEXT_MAX + 1];
	CHECK(serve_decode_no(no, sizeof(no), &reason, text) == ARCA_EFORMAT);
	/* a folder list claiming more records than its bytes can hold */
	uint8_t fl[] = { 1, '/', 100, 1, 'X' };
	struct serve_folder_list l = { 0 };
	bool last;
	CHECK(serve_decode_folder_list(fl, sizeof(fl), &l, &last) == ARCA_EFORMAT);
	CHECK(l.n == 0);
	/* a folder with unknown attribute bits, selectable and nonexistent at
	 * once; unseen > messages */
	struct vv_folder bad = { .name = "INBOX", .attrs = 8, .special_use = "", .uidnext = 1, .highestmodseq = 1 };
	CHECK(serve_encode_folder_list(&f, true, '/', &bad, 1) == ARCA_ELIMIT);
	bad.attrs = VV_SELECTABLE | VV_NONEXISTENT;
	CHECK(serve_encode_folder_list(&f, true, '/', &bad, 1) == ARCA_ELIMIT);
	bad.attrs = VV_NONEXISTENT;
	REQUIRE(serve_encode_folder_list(&f, true, '/', &bad, 1) == 0);
	f.data[5 + 3 + 6] |= VV_SELECTABLE;   /* last, separator, n, "INBOX", then attrs */
	CHECK(serve_decode_folder_list(f.data + 5, f.len - 5, &l, &last) == ARCA_EFORMAT);
	f.data[5 + 3 + 6] = 8;
	CHECK(serve_decode_folder_list(f.data + 5, f.len - 5, &l, &last) == ARCA_EFORMAT);
	f.data[5 + 3 + 6] = VV_NONEXISTENT;
	REQUIRE(serve_decode_folder_list(f.data + 5, f.len - 5, &l, &last) == 0);
	CHECK(l.n == 1 && l.v[0].attrs == VV_NONEXISTENT);
	serve_folder_list_release(&l);
	bad.attrs = 1;
	bad.unseen = 2;
	REQUIRE(serve_encode_folder_list(&f, true, '/', &bad, 1) == 0);
	CHECK(serve_decode_folder_list(f.data + 5, f.len - 5, &l, &last) == ARCA_EFORMAT);
	CHECK(l.n == 0);
	/* separators: only '.' and '/', and the same in every frame */
	bad.unseen = 0;
	CHECK(serve_encode_folder_list(&f, true, '\\', &bad, 1) == ARCA_ELIMIT);
	REQUIRE(serve_encode_folder_list(&f, true, '/', &bad, 1) == 0);
	f.data[6] = ':';
	CHECK(serve_decode_folder_list(f.data + 5, f.len - 5, &l, &last) == ARCA_EFORMAT);
	f.data[6] = 0;
	CHECK(serve_decode_folder_list(f.data + 5, f.len - 5, &l, &last) == ARCA_EFORMAT);
	CHECK(l.n == 0 && l.separator == 0);
	REQUIRE(serve_encode_folder_list(&f, false, '.', &bad, 1) == 0);
	REQUIRE(serve_decode_folder_list(f.data + 5, f.len - 5, &l, &last) == 0);
	REQUIRE(serve_encode_folder_list(&f, true, '/', &bad, 1) == 0);
	CHECK(serve_decode_folder_list(f.data + 5, f.len - 5, &l, &last) == ARCA_EFORMAT);
	CHECK(l.n == 1 && l.separator == '.');
	serve_folder_list_release(&l);
	/* gone subscriptions: an empty name, a count past the bytes, past the
	 * frame's limit, n = 0 before the last frame, trailing bytes */
	struct serve_name_list nl = { 0 };
	char *empty[] = { "" };
	CHECK(serve_encode_gone_subs(&f, true, empty, 1) == ARCA_ELIMIT);
	CHECK(serve_encode_gone_subs(&f, false, NULL, 0) == ARCA_ELIMIT);
	uint8_t g0[] = { 1, 1, 0 };
	CHECK(serve_decode_gone_subs(g0, sizeof(g0), &nl, &last) == ARCA_EFORMAT);
	uint8_t g1[] = { 1, 3, 1, 'a' };
	CHECK(serve_decode_gone_subs(g1, sizeof(g1), &nl, &last) == ARCA_EFORMAT);
	uint8_t g2[] = { 0, 0 };
	CHECK(serve_decode_gone_subs(g2, sizeof(g2), &nl, &last) == ARCA_EFORMAT);
	uint8_t g3[] = { 1, 1, 1, 'a', 'b' };
	CHECK(serve_decode_gone_subs(g3, sizeof(g3), &nl, &last) == ARCA_EFORMAT);
	uint8_t g4[] = { 2, 1, 1, 'a' };
	CHECK(serve_decode_gone_subs(g4, sizeof(g4), &nl, &last) == ARCA_EFORMAT);
	struct abuf many = ABUF_INIT;
	REQUIRE(abuf_add_u8(&many, 1) == 0 && abuf_add_varint(&many, SERVE_SUBS_PER_FRAME + 1) == 0);
	for (int i = 0; i <= SERVE_SUBS_PER_FRAME; i++)
		REQUIRE(abuf_add_str(&many, "a") == 0);
	CHECK(serve_decode_gone_subs(many.data, many.len, &nl, &last) == ARCA_EFORMAT);
	abuf_release(&many);
	CHECK(nl.n == 0);
	serve_name_list_release(&nl);
	/* messages: wrong record count for the bytes, flags beyond the five */
	struct vv_msg m = { .uid = 1, .modseq = 1 };
	REQUIRE(serve_encode_msgs(&f, &m, 1) == 0);
	struct vv_msg back[2];
	size_t got;
	f.data[5] = 2;
	CHECK(serve_decode_msgs(f.data + 5, f.len - 5, back, 2, &got) == ARCA_EFORMAT);
	f.data[5] = 1;
	f.data[5 + 1 + 4 + 8] = 0x20;   /* the flags byte */
	CHECK(serve_decode_msgs(f.data + 5, f.len - 5, back, 2, &got) == ARCA_EFORMAT);
	m.modseq = 0;
	CHECK(serve_encode_msgs(&f, &m, 1) == ARCA_ELIMIT);
	/* a body over the limit */
	uint64_t size;
	uint8_t br[8];
	put_u64le(br, SERVE_BODY_MAX + 1);
	CHECK(serve_decode_body_r(br, 8, &size) == ARCA_EFORMAT);
	/* control: a name, not an address */
	char peer[SERVE_PEER_MAX + 1];
	uint16_t port;
	REQUIRE(serve_ctl_encode(&f, "evil.example", 1) == 0);
	CHECK(serve_ctl_decode(f.data, f.len, peer, &port) == ARCA_EFORMAT);
	REQUIRE(serve_ctl_encode(&f, "127.0.0.1", 1) == 0);
	f.data[0] = 2;
	CHECK(serve_ctl_decode(f.data, f.len, peer, &port) == ARCA_EFORMAT);
	abuf_release(&f);
	abuf_release(&raw);
}

/* A frame of an absurd length is refused before anything is allocated. */
static void test_proto_recv_limits(void)
{
	int sv[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	uint8_t hdr[5];
	put_u32le(hdr, SERVE_FRAME_MAX + 1);
	hdr[4] = SERVE_DATA;
	REQUIRE(write(sv[0], hdr, 5) == 5);
	struct abuf in = ABUF_INIT;
	uint8_t type;
	CHECK_EQ_INT(serve_recv(sv[1], &type, &in, NULL), ARCA_EFORMAT);
	CHECK(in.cap == 0);
	put_u32le(hdr, 0);
	REQUIRE(write(sv[0], hdr, 5) == 5);
	CHECK_EQ_INT(serve_recv(sv[1], &type, &in, NULL), ARCA_EFORMAT);
	close(sv[0]);
	CHECK_EQ_INT(serve_recv(sv[1], &type, &in, NULL), ARCA_ENOENT);
	close(sv[1]);
	abuf_release(&in);
}

/* The control socket: exactly one descriptor, a stream socket. */
static void test_proto_ctl(void)
{
	int ctl[2], ch[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, ctl) == 0);
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, ch) == 0);
	CHECK(serve_ctl_send(ctl[0], ch[0], "192.0.2.7", 40000, NULL) == 0);
	int fd = -1;
	char peer[SERVE_PEER_MAX + 1];
	uint16_t port = 0;
	CHECK(serve_ctl_recv(ctl[1], &fd, peer, &port, NULL) == 0);
	CHECK_STR(peer, "192.0.2.7");
	CHECK_EQ_INT(port, 40000);
	CHECK(fd >= 0);
	/* what comes through is the same socket */
	if (fd >= 0) {
		CHECK(write(fd, "x", 1) == 1);
		char c = 0;
		CHECK(read(ch[1], &c, 1) == 1 && c == 'x');
		close(fd);
	}
	/* a message without a descriptor */
	struct abuf b = ABUF_INIT;
	REQUIRE(serve_ctl_encode(&b, "127.0.0.1", 1) == 0);
	REQUIRE(send(ctl[0], b.data, b.len, 0) == (ssize_t)b.len);
	CHECK_EQ_INT(serve_ctl_recv(ctl[1], &fd, peer, &port, NULL), ARCA_EFORMAT);
	/* a pipe is not a channel */
	int p[2];
	REQUIRE(pipe(p) == 0);
	CHECK(serve_ctl_send(ctl[0], p[0], "127.0.0.1", 1, NULL) == 0);
	CHECK_EQ_INT(serve_ctl_recv(ctl[1], &fd, peer, &port, NULL), ARCA_EFORMAT);
	close(p[0]);
	close(p[1]);
	close(ctl[0]);
	CHECK_EQ_INT(serve_ctl_recv(ctl[1], &fd, peer, &port, NULL), ARCA_ENOENT);
	close(ctl[1]);
	close(ch[0]);
	close(ch[1]);
	abuf_release(&b);
}

static void test_crlf(void)
{
	struct abuf b = ABUF_INIT;
	const char *in = "a\nb\r\nc\rd\n\n";
	REQUIRE(serve_crlf((const uint8_t *)in, strlen(in), &b) == 0);
	CHECK(b.len == strlen("a\r\nb\r\nc\rd\r\n\r\n") && memcmp(b.data, "a\r\nb\r\nc\rd\r\n\r\n", b.len) == 0);
	abuf_reset(&b);
	REQUIRE(serve_crlf((const uint8_t *)"\n", 1, &b) == 0);
	CHECK(b.len == 2 && memcmp(b.data, "\r\n", 2) == 0);
	abuf_release(&b);
	uint64_t w = 0;
	CHECK(serve_served_size_hint("1700000000.M1P2.host,S=1200,W=1234", "", &w) && w == 1234);
	CHECK(serve_served_size_hint("1700000000.M1P2.host,W=99,S=98", "", &w) && w == 99);
	CHECK(!serve_served_size_hint("1700000000.M1P2.host,S=1200", "", &w));
	CHECK(!serve_served_size_hint("x,W=", "", &w));
	CHECK(!serve_served_size_hint("x,W=12a", "", &w));
	CHECK(!serve_served_size_hint("x,W=123456789012345678901", "", &w));
	CHECK(serve_served_size_hint("x", "S1200 W1234", &w) && w == 1234);
	CHECK(!serve_served_size_hint("x", "S1200 W12x", &w));

	/* piece by piece: the same bytes whatever the piece size (a bare LF
	 * at a piece's edge, a CR LF split across two) */
	const char *cases[] = { "a\nb\r\nc\rd\n\n", "\n\n\n", "\r\n\r\n", "x\r", "\rx\n\r\n\n", "" };
	for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
		const uint8_t *p = (const uint8_t *)cases[ci];
		size_t n = strlen(cases[ci]);
		abuf_reset(&b);
		REQUIRE(serve_crlf(p, n, &b) == 0);
		for (size_t cap = 2; cap <= 9; cap++) {
			uint8_t out[64], piece[16];
			size_t pos = 0, len = 0, got;
			while ((got = serve_crlf_chunk(p, n, &pos, piece, cap)) > 0) {
				CHECK(got <= cap);
				memcpy(out + len, piece, got);
				len += got;
			}
			CHECK(pos == n);
			CHECK(len == b.len && memcmp(out, b.data, len) == 0);
		}
	}
	abuf_release(&b);
}

/* ---- passwd ---- */

static char *crypt_hash(const char *prefix, const char *password)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data cd;
	memset(&cd, 0, sizeof(cd));
	if (crypt_gensalt_rn(prefix, 0, NULL, 0, setting, sizeof(setting)) == NULL)
		return NULL;
	const char *h = crypt_rn(password, setting, &cd, sizeof(cd));
	return h && h[0] != '*' ? strdup(h) : NULL;
}

static void test_passwd_schemes(void)
{
	REQUIRE(sodium_init() >= 0);
	/* made by libxcrypt here */
	const char *prefixes[] = { "$6$", "$5$", "$2b$", "$1$", "$y$" };
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		char *h = crypt_hash(prefixes[i], "s3cret");
		if (h == NULL) {
			fprintf(stderr, "  libxcrypt can't make %s hashes here\n", prefixes[i]);
			CHECK(strcmp(prefixes[i], "$y$") == 0);
			continue;
		}
		char stored[512];
		snprintf(stored, sizeof(stored), "{CRYPT}%s", h);
		CHECK_EQ_INT(passwd_verify(h, "s3cret"), 1);
		CHECK_EQ_INT(passwd_verify(stored, "s3cret"), 1);
		CHECK_EQ_INT(passwd_verify(h, "s3cret "), 0);
		CHECK_EQ_INT(passwd_verify(h, ""), 0);
		free(h);
	}
	/* `openssl passwd -6 -salt abcdefgh secret1` */
	CHECK_EQ_INT(passwd_verify("$6$abcdefgh$oGoxMtczJ0/xYkNKQnGuC3pOdNoGsZRZNs7n5JzX8KfMJWEmD2Bx4wBt/tMCPvjE87aPyrlQPEKxEcxV6d4J6.", "secret1"), 1);
	CHECK_EQ_INT(passwd_verify("$6$abcdefgh$oGoxMtczJ0/xYkNKQnGuC3pOdNoGsZRZNs7n5JzX8KfMJWEmD2Bx4wBt/tMCPvjE87aPyrlQPEKxEcxV6d4J6.", "secret2"), 0);
	/* `doveadm pw -s SCHEME` (Dovecot 2.3) */
	static const struct { const char *stored, *pw; } dv[] = {
		{ "{SHA512-CRYPT}$6$E8LxhZrZRktDtTMN$fHhNaumsVDOYmwsA2AVoGLb6VzoEzhan2vFxLEZheHe.JzK.6Ee51gx89Q7uxL3wuuu8VQpBABBYkiuCcrWnW0", "secret2" },
		{ "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$+ZyWCIl71jttpTxByoBTdA$k+dVeQwCTCc4e6QLXmmcH/pQnX0hVQWpGCKc1VpoAoQ", "secret3" },
		{ "{BLF-CRYPT}$2y$05$OfQppchkgUC4VTsGy./u4uxTtRerX1m26D8726RG.DmqIRFGSEuCu", "secret4" },
		{ "{SSHA512}yaRumiT5SGVUWv3BFYevREraGiNc6FFPvdSEAFNw2Y1Q9xY2k7TAxYMPElIj4UaQp49JT5VYNsjjqIokvHGX/Yf/Z+U=", "secret5" },
		{ "{MD5-CRYPT}$1$qKz6ip.j$FCnCUU.HMT6//xaq9GS8v1", "secret6" },
		{ "{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$ffFn1zsjfo0Q6M8SNbVuEQ$qEI677/ZF8aNXhQfkiCCDX3PTPCMeASyO1XqIzpmVk0", "secret7" },
		{ "{SHA256-CRYPT}$5$jazkt0496Xo8dilS$ybv4uVFPa/zKJQMpkYhI2kmu/09.eMJ8vLDAqfZ3vHD", "secret8" },
		{ "{CRYPT}$2y$05$rClYu0Ks/RTTodYCncjWLO6b0W/CP9WG2NbJ1tgKWqdyGDlfHtLNa", "secret9" },
		{ "{SHA256}eI0yiPRaHw/ojXYKeINjeig4dBtxOpHxj7n2U314Stc=", "secret10" },
		{ "{SSHA256}AO/l23qS5O4kgh7IMx8zrNQn3RH0rOrIIc0QGp9Fb4VDkp51", "secret11" },
		{ "{SHA512}HV78kzZBYdjHnUd58OK9tCTgtTEGEOd7JP9AeyEaoXOzWgsKTb9Jxkaw6+/X5tsjNepzdUczjI4UEoIDTKJcMA==", "secret12" },
		{ "{PLAIN}pw", "pw" },
		{ "{cleartext}a:b", "a:b" },
	};
	for (size_t i = 0; i < sizeof(dv) / sizeof(dv[0]); i++) {
		if (passwd_verify(dv[i].stored, dv[i].pw) != 1)
			fprintf(stderr, "  not verified: %s\n", dv[i].stored);
		CHECK_EQ_INT(passwd_verify(dv[i].stored, dv[i].pw), 1);
		CHECK_EQ_INT(passwd_verify(dv[i].stored, "wrong"), 0);
	}
	/* argon2 made here with libsodium */
	char a2[crypto_pwhash_STRBYTES];
	REQUIRE(crypto_pwhash_str(a2, "lib", 3, crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN) == 0);
	char stored[256];
	snprintf(stored, sizeof(stored), "{ARGON2ID}%s", a2);
	CHECK_EQ_INT(passwd_verify(stored, "lib"), 1);
	CHECK_EQ_INT(passwd_verify(stored, "li"), 0);
	/* not supported: never a match */
	CHECK_EQ_INT(passwd_verify("{CRAM-MD5}abcdef", "abcdef"), ARCA_EVERSION);
	CHECK_EQ_INT(passwd_verify("{PLAIN", "{PLAIN"), ARCA_EVERSION);
	/* a damaged crypt string never matches, not even itself */
	CHECK_EQ_INT(passwd_verify("$6$abc", "$6$abc"), 0);
	CHECK_EQ_INT(passwd_verify("*", "*"), 0);
	CHECK_EQ_INT(passwd_verify("{SSHA512}!!!", ""), 0);
}

static void test_passwd_file(void)
{
	const char *text =
		"# users\n"
		"\n"
		"Alice@Example.Test:{PLAIN}pw:5000:5000::/home/a::userdb_quota_rule=*:storage=1G\r\n"
		"bob@example.test:{SHA512-CRYPT}$6$E8LxhZrZRktDtTMN$fHhNaumsVDOYmwsA2AVoGLb6VzoEzhan2vFxLEZheHe.JzK.6Ee51gx89Q7uxL3wuuu8VQpBABBYkiuCcrWnW0\n"
		"alice@example.test:{PLAIN}second\n"
		"nocolon\n"
		":{PLAIN}x\n"
		"dave:{OTP}xyz:::\n"
		"erin::::\n"
		"frank:$1$qKz6ip.j$FCnCUU.HMT6//xaq9GS8v1";
	struct passwd_table *t = NULL;
	struct arca_err err = { 0 };
	REQUIRE(passwd_table_parse((const uint8_t *)text, strlen(text), &t, &err) == 0);
	struct passwd_stats st;
	passwd_table_stats(t, &st);
	CHECK_EQ_INT(st.users, 3);
	CHECK_EQ_INT(st.plain, 1);
	CHECK_EQ_INT(st.duplicates, 1);
	CHECK_EQ_INT(st.malformed, 2);
	CHECK_EQ_INT(st.unsupported, 2);
	int scheme;
	const char *hash;
	CHECK(passwd_table_lookup(t, "ALICE@example.test", &scheme, &hash));
	CHECK_STR(hash, "pw");   /* the first line wins */
	CHECK(passwd_table_lookup(t, "frank", &scheme, &hash));
	CHECK(!passwd_table_lookup(t, "dave", &scheme, &hash));
	CHECK(!passwd_table_lookup(t, "nobody", &scheme, &hash));
	passwd_table_free(t);

	/* limits */
	char *longline = malloc(PASSWD_LINE_MAX + 10);
	REQUIRE(longline != NULL);
	memset(longline, 'a', PASSWD_LINE_MAX + 9);
	longline[3] = ':';
	CHECK(passwd_table_parse((const uint8_t *)longline, PASSWD_LINE_MAX + 9, &t, &err) == ARCA_ELIMIT);
	free(longline);

	/* the file: check, reload on change, a broken new file keeps the old */
	char *dir = harness_tmpdir("passwd");
	char path[4096];
	snprintf(path, sizeof(path), "%s/users", dir);
	FILE *f = fopen(path, "w");
	REQUIRE(f != NULL);
	fputs(text, f);
	fclose(f);
	struct passwd_db *db = NULL;
	REQUIRE(passwd_open(path, &db, &err) == 0);
	char warn[ARCA_ERR_MSG_MAX];
	CHECK_EQ_INT(passwd_check(db, "alice@example.test", "pw", NULL, warn), 0);
	CHECK_EQ_INT(passwd_check(db, "Alice@Example.test", "pw", NULL, warn), 0);
	CHECK_EQ_INT(passwd_check(db, "alice@example.test", "second", NULL, warn), ARCA_EKEY);
	CHECK_EQ_INT(passwd_check(db, "bob@example.test", "secret2", NULL, warn), 0);
	CHECK_EQ_INT(passwd_check(db, "frank", "secret6", NULL, warn), 0);
	arca_err_clear(&err);
	CHECK_EQ_INT(passwd_check(db, "zed", "pw", &err, warn), ARCA_EKEY);
	CHECK_STR(err.msg, "unknown user");
	CHECK_EQ_INT(passwd_check(db, "dave", "xyz", NULL, warn), ARCA_EKEY);
	CHECK_EQ_INT(passwd_check(db, "bad\001name", "pw", NULL, warn), ARCA_EKEY);
	/* the provider changes a password: the next login sees it */
	sleep(0);
	f = fopen(path, "w");
	REQUIRE(f != NULL);
	fputs("alice@example.test:{PLAIN}new\ngina:{PLAIN}g\n", f);
	fclose(f);
	CHECK_EQ_INT(passwd_check(db, "alice@example.test", "pw", NULL, warn), ARCA_EKEY);
	CHECK_EQ_INT(passwd_check(db, "alice@example.test", "new", NULL, warn), 0);
	CHECK_EQ_INT(passwd_check(db, "gina", "g", NULL, warn), 0);
	CHECK_EQ_INT(passwd_check(db, "bob@example.test", "secret2", NULL, warn), ARCA_EKEY);
	/* removed: the old table stays, with one warning */
	REQUIRE(unlink(path) == 0);
	CHECK_EQ_INT(passwd_check(db, "gina", "g", NULL, warn), 0);
	CHECK(warn[0] != '\0');
	CHECK_EQ_INT(passwd_check(db, "gina", "g", NULL, warn), 0);
	CHECK(warn[0] == '\0');
	passwd_free(db);
	harness_rm_rf(dir);
	free(dir);
}

static void test_throttle(void)
{
	struct login_throttle_opts o = { .fails = 3, .window_s = 60, .lock_s = 30, .delay_ms = 100 };
	struct login_throttle *t = login_throttle_new(&o);
	REQUIRE(t != NULL);
	uint64_t s = 1000000000ull, now = 1000 * s;
	const char *which = NULL;
	CHECK_EQ_INT(login_throttle_begin(t, "u", "192.0.2.1", now, &which), 0);
	CHECK_EQ_INT(login_throttle_fail(t, "u", "192.0.2.1", now), 100);
	CHECK_EQ_INT(login_throttle_begin(t, "u", "192.0.2.1", now + s, &which), 0);
	CHECK_EQ_INT(login_throttle_fail(t, "u", "192.0.2.1", now + s), 200);
	CHECK_EQ_INT(login_throttle_begin(t, "u", "192.0.2.1", now + s, &which), 0);
	CHECK_EQ_INT(login_throttle_fail(t, "u", "192.0.2.1", now + 2 * s), 400);
	CHECK_EQ_INT(login_throttle_begin(t, "u", "192.0.2.9", now + 3 * s, &which), ARCA_EBUSY);
	CHECK_STR(which, "user");
	CHECK_EQ_INT(login_throttle_begin(t, "v", "192.0.2.1", now + 3 * s, &which), ARCA_EBUSY);
	CHECK_STR(which, "address");
	CHECK_EQ_INT(login_throttle_begin(t, "v", "192.0.2.9", now + 3 * s, &which), 0);
	login_throttle_ok(t, "v", "192.0.2.9");
	/* a success doesn't lift a standing lock */
	login_throttle_ok(t, "u", "192.0.2.9");
	CHECK_EQ_INT(login_throttle_begin(t, "u", "192.0.2.9", now + 4 * s, &which), ARCA_EBUSY);
	/* the lock ends */
	CHECK_EQ_INT(login_throttle_begin(t, "u", "192.0.2.1", now + 33 * s, &which), 0);
	login_throttle_ok(t, "u", "192.0.2.1");
	/* failures outside the window don't add up */
	CHECK_EQ_INT(login_throttle_fail(t, "w", "198.51.100.1", now), 100);
	CHECK_EQ_INT(login_throttle_fail(t, "w", "198.51.100.1", now + 61 * s), 100);
	/* a flood of names can't push out a locked one */
	for (int i = 0; i < 20000; i++) {
		char u[32];
		snprintf(u, sizeof(u), "flood%d", i);
		(void)login_throttle_fail(t, u, "203.0.113.5", now + 5 * s);
	}
	CHECK_EQ_INT(login_throttle_begin(t, "x", "203.0.113.5", now + 6 * s, &which), ARCA_EBUSY);
	login_throttle_free(t);

	/* one check in flight per user and per address: a second waits for
	 * the first's outcome (here, in vain: wait_ms 100) */
	struct login_throttle_opts o2 = { .fails = 3, .delay_ms = 1, .wait_ms = 100, .max_checks = 2 };
	t = login_throttle_new(&o2);
	REQUIRE(t != NULL);
	CHECK_EQ_INT(login_throttle_begin(t, "a", "192.0.2.1", now, &which), 0);
	CHECK_EQ_INT(login_throttle_begin(t, "a", "192.0.2.2", now, &which), ARCA_EBUSY);
	CHECK_STR(which, "busy");
	CHECK_EQ_INT(login_throttle_begin(t, "b", "192.0.2.1", now, &which), ARCA_EBUSY);
	CHECK_EQ_INT(login_throttle_begin(t, "b", "192.0.2.2", now, &which), 0);
	/* and at most max_checks in all */
	CHECK_EQ_INT(login_throttle_begin(t, "c", "192.0.2.3", now, &which), ARCA_EBUSY);
	CHECK_STR(which, "busy");
	login_throttle_ok(t, "b", "192.0.2.2");
	CHECK_EQ_INT(login_throttle_begin(t, "c", "192.0.2.3", now, &which), 0);
	login_throttle_ok(t, "c", "192.0.2.3");
	(void)login_throttle_fail(t, "a", "192.0.2.1", now);
	CHECK_EQ_INT(login_throttle_begin(t, "a", "192.0.2.2", now, &which), 0);
	(void)login_throttle_fail(t, "a", "192.0.2.2", now);
	login_throttle_free(t);
}

/* 40 parallel guesses of one user from one address, each check taking
 * 10 ms, with fails = 5: exactly 5 checks run (they were 30-odd when the
 * throttle was only looked at before the check and the failure counted
 * after it). */
struct guess_arg {
	struct login_throttle *t;
	int checked;
};

static void *guess_main(void *p)
{
	struct guess_arg *g = p;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	if (login_throttle_begin(g->t, "alice", "192.0.2.66", ns, NULL) == 0) {
		g->checked = 1;
		usleep(10000);   /* the hash */
		clock_gettime(CLOCK_MONOTONIC, &now);
		ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
		(void)login_throttle_fail(g->t, "alice", "192.0.2.66", ns);
	}
	return NULL;
}

static void test_throttle_parallel(void)
{
	struct login_throttle_opts o = { .fails = 5, .delay_ms = 1 };
	struct login_throttle *t = login_throttle_new(&o);
	REQUIRE(t != NULL);
	enum { N = 40 };
	pthread_t th[N];
	struct guess_arg g[N];
	for (int i = 0; i < N; i++) {
		g[i] = (struct guess_arg){ .t = t };
		REQUIRE(pthread_create(&th[i], NULL, guess_main, &g[i]) == 0);
	}
	int checked = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		checked += g[i].checked;
	}
	CHECK_EQ_INT(checked, 5);
	login_throttle_free(t);
}

/* ---- the keeper ---- */

struct kenv {
	char *dir;
	char repo[4096], key[4096], users[4096];
	struct repo *r;
	struct passwd_db *pw;
	struct serve_keeper *k;
	pthread_mutex_t loglock;
	struct abuf log;
	struct abuf big;                /* the large message's file */
	struct overlay *ov;             /* with kenv_overlay */
	char ovpath[4096];
};

static void on_log(void *ctx, const char *line)
{
	struct kenv *e = ctx;
	pthread_mutex_lock(&e->loglock);
	abuf_printf(&e->log, "%s\n", line);
	abuf_cstr(&e->log);
	pthread_mutex_unlock(&e->loglock);
}

static bool log_has(struct kenv *e, const char *what)
{
	pthread_mutex_lock(&e->loglock);
	bool has = e->log.data && strstr((const char *)e->log.data, what) != NULL;
	pthread_mutex_unlock(&e->loglock);
	return has;
}

static int add_msg(struct repo *r, struct snap_folder *f, const char *content, size_t len,
		   uint32_t uid, uint64_t modseq, const char *flags, uint64_t kw, const char *base,
		   bool in_new)
{
	struct arca_err err = { 0 };
	struct snap_msg m = { .uid = uid, .modseq = modseq, .size = len, .keywords = kw,
			      .date_sec = 1700000000 + uid, .base = (char *)base, .uidlist_ext = "",
			      .in_new = in_new };
	for (const char *p = flags; *p; p++)
		m.flags |= UINT32_C(1) << (*p - 'A');
	if (repo_put_content(r, content, len, &m.content_type, m.content_id, &err) != 0) {
		fprintf(stderr, "  %s\n", err.msg);
		return -1;
	}
	return snap_folder_add_msg(f, &m);
}

static int commit(struct repo *r, struct snapshot *s)
{
	struct arca_err err = { 0 };
	uint8_t root[ARCA_ID_LEN];
	uint64_t msgs, bytes;
	int rc = snapshot_store(r, s, root, &msgs, &bytes, &err);
	struct snap_info info = { .time_ns = s->time_ns, .account = s->account, .source = s->source,
				  .messages = msgs, .bytes = bytes, .folders = s->nfolders };
	memcpy(info.root, root, ARCA_ID_LEN);
	rc = rc ? rc : repo_commit_snapshot(r, &info, &err);
	if (rc)
		fprintf(stderr, "  commit: %s\n", err.msg);
	snapshot_free(s);
	return rc;
}

#define M1 "Subject: one\nFrom: a@example.test\n\nhello\n"
#define M2 "Subject: two\r\n\r\nalready CRLF\r\n"
#define M3 "Subject: three\r\n\nmixed\r\nends\nno newline"
#define M6 "x\ny\n"
#define BOB "Subject: bob's secret\n\nonly bob may read this\n"

static int build_repo(struct kenv *e)
{
	struct arca_err err = { 0 };
	struct repo_create_opts o = { .restore_key_path = e->key, .passphrase = "test passphrase",
				      .fast_kdf = true };
	struct repo *r = NULL;
	if (repo_create(e->repo, &o, &err) != 0 || repo_open(e->repo, REPO_OPEN_WRITE, &r, &err) != 0) {
		fprintf(stderr, "  %s\n", err.msg);
		return -1;
	}
	struct snapshot *s = snapshot_new("alice@example.test", "imap");
	s->time_ns = 1790000000000000000ull;
	struct snap_folder *f = snapshot_add_folder(s, "INBOX");
	f->attrs = SNAP_FOLDER_SELECTABLE | SNAP_FOLDER_SUBSCRIBED;
	f->uidvalidity = 1700000001;
	f->nextuid = 15;           /* stale: the highest UID is 20 */
	f->highestmodseq = 3;      /* below a message's MODSEQ */
	snap_folder_keyword(f, "$Work");
	snap_folder_keyword(f, "custom");
	char b1[128], b4[128];
	snprintf(b1, sizeof(b1), "1700000001.M1P1.host,S=%zu,W=%zu", strlen(M1), strlen(M1) + 4);
	/* a large message, chunked in the repository: lines of LF */
	for (int i = 0; i < 60000; i++)
		abuf_printf(&e->big, "line %05d of a large message, with some text\n", i);
	snprintf(b4, sizeof(b4), "1700000004.M4P4.host,S=%zu,W=%zu", e->big.len, e->big.len + 60000);
	int rc = add_msg(r, f, M1, strlen(M1), 10, 5, "S", 0, b1, false);
	rc = rc ? rc : add_msg(r, f, M2, strlen(M2), 11, 0, "", 1, "1700000002.M2P2.host", true);
	rc = rc ? rc : add_msg(r, f, M3, strlen(M3), 12, 2, "RFTDP", 3, "1700000003.M3P3.host", false);
	rc = rc ? rc : add_msg(r, f, (const char *)e->big.data, e->big.len, 20, 4, "S", 0, b4, false);
	rc = rc ? rc : add_msg(r, f, M6, strlen(M6), 0, 0, "S", 0, "1700000006.M6P6.host,S=4,W=9", true);
	f = snapshot_add_folder(s, "Archive");     /* a parent only */
	f = snapshot_add_folder(s, "Archive/2020");
	f->attrs = SNAP_FOLDER_SELECTABLE;
	/* Maildir++; subscribed: folders that exist, and two that are gone
	 * (one twice, as a subscriptions file may hold it) */
	s->layout = MAILDIR_LAYOUT_MAILDIRPP;
	const char *subs[] = { "INBOX", "Zed/Gone", "Archive/2020", "Old/Gone", "Zed/Gone", "inbox" };
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]) && rc == 0; i++)
		rc = snapshot_add_subscription(s, subs[i]);
	f->uidvalidity = 7;
	f->nextuid = 1;
	rc = rc ? rc : commit(r, s);
	/* bob */
	s = snapshot_new("bob@example.test", "imap");
	s->time_ns = 1790000000000000001ull;
	s->layout = MAILDIR_LAYOUT_FS;
	f = snapshot_add_folder(s, "INBOX");
	f->attrs = SNAP_FOLDER_SELECTABLE;
	f->uidvalidity = 99;
	f->nextuid = 50;
	rc = rc ? rc : add_msg(r, f, BOB, strlen(BOB), 10, 0, "", 0, "b1", false);
	rc = rc ? rc : add_msg(r, f, BOB "2", strlen(BOB) + 1, 11, 0, "", 0, "b2", false);
	rc = rc ? rc : commit(r, s);
	/* dave: a UID recorded three times, one without a UID */
	s = snapshot_new("dave@example.test", "imap");
	s->time_ns = 1790000000000000002ull;
	f = snapshot_add_folder(s, "INBOX");
	f->attrs = SNAP_FOLDER_SELECTABLE;
	f->uidvalidity = 5;
	f->nextuid = 7;
	rc = rc ? rc : add_msg(r, f, "d1\n", 3, 5, 0, "", 0, "d1", false);
	rc = rc ? rc : add_msg(r, f, "d2\n", 3, 5, 0, "", 0, "d2", false);
	rc = rc ? rc : add_msg(r, f, "d3\n", 3, 0, 0, "", 0, "d3", false);
	rc = rc ? rc : add_msg(r, f, "d4\n", 3, 5, 0, "", 0, "d4", false);
	rc = rc ? rc : add_msg(r, f, "d5\n", 3, 9, 0, "", 0, "d5", false);
	rc = rc ? rc : commit(r, s);
	/* erin: a real UID 4294967295 (after it no UIDNEXT exists) */
	s = snapshot_new("erin@example.test", "imap");
	s->time_ns = 1790000000000000003ull;
	f = snapshot_add_folder(s, "INBOX");
	f->attrs = SNAP_FOLDER_SELECTABLE;
	f->uidvalidity = 6;
	rc = rc ? rc : add_msg(r, f, "e1\n", 3, 5, 0, "", 0, "e1", false);
	rc = rc ? rc : add_msg(r, f, "e2\n", 3, UINT32_MAX, 0, "", 0, "e2", false);
	rc = rc ? rc : commit(r, s);
	repo_close(r);
	return rc;
}

static char kenv_separator;       /* the keeper's --separator; 0: none */
static bool kenv_overlay;         /* the keeper keeps flag changes in dir/overlay */
static unsigned kenv_send_timeout_ms;   /* 0: the keeper's default */

static int kenv_init(struct kenv *e, const struct login_throttle_opts *thr)
{
	memset(e, 0, sizeof(*e));
	pthread_mutex_init(&e->loglock, NULL);
	e->dir = harness_tmpdir("serve");
	snprintf(e->repo, sizeof(e->repo), "%s/repo", e->dir);
	snprintf(e->key, sizeof(e->key), "%s/restore.key", e->dir);
	snprintf(e->users, sizeof(e->users), "%s/users", e->dir);
	if (build_repo(e) != 0)
		return -1;
	FILE *f = fopen(e->users, "w");
	if (f == NULL)
		return -1;
	fputs("alice@example.test:{PLAIN}pw::::::\n"
	      "bob@example.test:$6$abcdefgh$oGoxMtczJ0/xYkNKQnGuC3pOdNoGsZRZNs7n5JzX8KfMJWEmD2Bx4wBt/tMCPvjE87aPyrlQPEKxEcxV6d4J6.\n"
	      "carol@other.test:{PLAIN}cpw\n"
	      "dave@example.test:{PLAIN}dpw\n"
	      "erin@example.test:{PLAIN}epw\n", f);
	fclose(f);
	struct arca_err err = { 0 };
	struct arca_restore_key *rk = NULL;
	char warn[ARCA_ERR_MSG_MAX];
	snprintf(e->ovpath, sizeof(e->ovpath), "%s/overlay", e->dir);
	if (repo_open(e->repo, REPO_OPEN_READ, &e->r, &err) != 0 ||
	    keyfile_read(e->key, "test passphrase", &rk, &err) != 0 ||
	    (kenv_overlay && overlay_open(e->ovpath, rk, true, &e->ov, warn, &err) != 0) ||
	    repo_set_restore_key(e->r, rk, &err) != 0 || passwd_open(e->users, &e->pw, &err) != 0) {
		fprintf(stderr, "  %s\n", err.msg);
		return -1;
	}
	struct serve_keeper_opts o = { .repo = e->r, .users = e->pw, .log = on_log, .log_ctx = e,
				       .max_channels = 8, .separator = kenv_separator,
				       .send_timeout_ms = kenv_send_timeout_ms, .overlay = e->ov };
	if (thr)
		o.throttle = *thr;
	else
		o.throttle.delay_ms = 1;
	if (serve_keeper_new(&o, &e->k, &err) != 0) {
		fprintf(stderr, "  %s\n", err.msg);
		return -1;
	}
	return 0;
}

static void kenv_release(struct kenv *e)
{
	serve_keeper_free(e->k);
	overlay_free(e->ov);
	passwd_free(e->pw);
	repo_close(e->r);
	harness_rm_rf(e->dir);
	free(e->dir);
	abuf_release(&e->log);
	abuf_release(&e->big);
	pthread_mutex_destroy(&e->loglock);
}

/* A session's view on a new channel served by the keeper's thread. */
static struct serve_client *session(struct kenv *e, const char *peer, int *raw_r)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return NULL;
	if (serve_keeper_spawn(e->k, sv[0], peer, NULL) != 0) {
		close(sv[1]);
		return NULL;
	}
	if (raw_r)
		*raw_r = sv[1];
	return serve_client_new(sv[1]);
}

static const struct vault_view_ops *V = &serve_client_ops;

static void test_keeper_login(void)
{
	struct kenv e;
	REQUIRE(kenv_init(&e, NULL) == 0);
	struct serve_client *c = session(&e, "127.0.0.1", NULL);
	REQUIRE(c != NULL);
	const struct vv_folder *fl;
	size_t n;
	/* nothing before a login (the view doesn't even ask) */
	CHECK_EQ_INT(V->folders(c, &fl, &n), ARCA_ESTATE);
	CHECK_EQ_INT(V->login(c, "alice@example.test", "wrong"), ARCA_EKEY);
	CHECK_EQ_INT(V->login(c, "nobody@example.test", "pw"), ARCA_EKEY);
	CHECK_EQ_INT(V->login(c, "alice@example.test", "pw"), 0);
	CHECK_EQ_INT(V->login(c, "bob@example.test", "secret1"), ARCA_ESTATE);
	CHECK_EQ_INT(V->folders(c, &fl, &n), 0);
	V->free(c);
	/* bob's crypt hash, the user name in any case */
	c = session(&e, "127.0.0.1", NULL);
	REQUIRE(c != NULL);
	CHECK_EQ_INT(V->login(c, "Bob@Example.TEST", "secret1"), 0);
	V->free(c);
	/* carol may log in but has no snapshot */
	c = session(&e, "127.0.0.1", NULL);
	REQUIRE(c != NULL);
	CHECK_EQ_INT(V->login(c, "carol@other.test", "cpw"), ARCA_ENOENT);
	V->free(c);
	CHECK(log_has(&e, "login failed: alice@example.test from 127.0.0.1: wrong password"));
	CHECK(log_has(&e, "login failed: nobody@example.test from 127.0.0.1: unknown user"));
	CHECK(log_has(&e, "login: alice@example.test from 127.0.0.1 (snapshot "));
	CHECK(log_has(&e, "login refused: carol@other.test"));
	kenv_release(&e);
}

static void test_keeper_throttle(void)
{
	struct kenv e;
	struct login_throttle_opts thr = { .fails = 3, .window_s = 60, .lock_s = 60, .delay_ms = 1 };
	REQUIRE(kenv_init(&e, &thr) == 0);
	struct serve_client *c = session(&e, "192.0.2.1", NULL);
	REQUIRE(c != NULL);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(V->login(c, "alice@example.test", "guess"), ARCA_EKEY);
	/* now even the right password is refused, from anywhere */
	CHECK_EQ_INT(V->login(c, "alice@example.test", "pw"), ARCA_EBUSY);
	V->free(c);
	c = session(&e, "198.51.100.2", NULL);
	REQUIRE(c != NULL);
	CHECK_EQ_INT(V->login(c, "alice@example.test", "pw"), ARCA_EBUSY);
	/* other users from the first address are refused too (3 failures
	 * there); bob from elsewhere is not */
	V->free(c);
	c = session(&e, "192.0.2.1", NULL);
	REQUIRE(c != NULL);
	CHECK_EQ_INT(V->login(c, "bob@example.test", "secret1"), ARCA_EBUSY);
	V->free(c);
	c = session(&e, "198.51.100.2", NULL);
	REQUIRE(c != NULL);
	CHECK_EQ_INT(V->login(c, "bob@example.test", "secret1"), 0);
	V->free(c);
	CHECK(log_has(&e, "throttled by user"));
	CHECK(log_has(&e, "throttled by address"));
	kenv_release(&e);

	/* per channel: at most login_tries attempts */
	struct login_throttle_opts lax = { .fails = 100, .delay_ms = 1 };
	REQUIRE(kenv_init(&e, &lax) == 0);
	c = session(&e, "127.0.0.1", NULL);
	REQUIRE(c != NULL);
	int last = 0;
	for (int i = 0; i < 10; i++)
		last = V->login(c, i % 2 ? "x" : "y", "z");
	CHECK_EQ_INT(last, ARCA_EKEY);
	CHECK_EQ_INT(V->login(c, "alice@example.test", "pw"), ARCA_EBUSY);
	V->free(c);
	kenv_release(&e);
}

static void test_keeper_view(void)
{
	struct kenv e;
	REQUIRE(kenv_init(&e, NULL) == 0);
	struct serve_client *c = session(&e, "127.0.0.1", NULL);
	REQUIRE(c != NULL);
	REQUIRE(V->login(c, "alice@example.test", "pw") == 0);
	const struct vv_folder *fl;
	size_t n;
	REQUIRE(V->folders(c, &fl, &n) == 0);
	REQUIRE(n == 3);
	CHECK_STR(fl[0].name, "INBOX");
	CHECK_EQ_INT(fl[0].attrs, VV_SELECTABLE | VV_SUBSCRIBED);
	CHECK_EQ_INT(fl[0].uidvalidity, 1700000001);
	CHECK_EQ_INT(fl[0].messages, 5);
	CHECK_EQ_INT(fl[0].unseen, 2);
	CHECK_EQ_INT(fl[0].highestmodseq, 5);
	/* UID 0 got 21, after the highest (20): the next is 22 */
	CHECK_EQ_INT(fl[0].uidnext, 22);
	CHECK_STR(fl[1].name, "Archive");
	CHECK_EQ_INT(fl[1].attrs, VV_NONEXISTENT);   /* Maildir++: no directory of its own */
	CHECK_STR(fl[2].name, "Archive/2020");
	CHECK_EQ_INT(fl[2].uidnext, 1);
	CHECK_EQ_INT(fl[2].highestmodseq, 1);
	/* Maildir++: Dovecot's '.'; the subscriptions whose folders are gone,
	 * sorted, each once (INBOX in any case is the folder) */
	const struct vv_account *ac = NULL;
	REQUIRE(V->account(c, &ac) == 0);
	CHECK(ac->separator == '.');
	REQUIRE(ac->ngone_subs == 2);
	CHECK_STR(ac->gone_subs[0], "Old/Gone");
	CHECK_STR(ac->gone_subs[1], "Zed/Gone");

	struct vv_mailbox mb;
	CHECK_EQ_INT(V->open(c, 1, &mb), ARCA_ENOENT);    /* not selectable */
	CHECK_EQ_INT(V->open(c, 3, &mb), ARCA_ENOENT);
	REQUIRE(V->open(c, 0, &mb) == 0);
	REQUIRE(mb.nmsgs == 5 && mb.nkeywords == 2);
	CHECK_STR(mb.keywords[0], "$Work");
	uint32_t uids[] = { 10, 11, 12, 20, 21 };
	for (size_t i = 0; i < 5; i++)
		CHECK_EQ_INT(mb.msgs[i].uid, uids[i]);
	CHECK_EQ_INT(mb.msgs[0].flags, VV_SEEN);
	CHECK_EQ_INT(mb.msgs[0].modseq, 5);
	CHECK_EQ_INT(mb.msgs[0].size, strlen(M1) + 4);
	CHECK_EQ_INT(mb.msgs[0].date, 1700000010);
	CHECK_EQ_INT(mb.msgs[1].flags, 0);
	CHECK_EQ_INT(mb.msgs[1].modseq, 1);          /* 0 is served as 1 */
	CHECK_EQ_INT(mb.msgs[1].keywords, 1);
	CHECK(mb.msgs[1].recent);
	CHECK_EQ_INT(mb.msgs[1].size, strlen(M2));   /* no W=: computed, no bare LF */
	CHECK_EQ_INT(mb.msgs[2].flags, VV_ANSWERED | VV_FLAGGED | VV_DELETED | VV_DRAFT);
	CHECK_EQ_INT(mb.msgs[2].keywords, 3);
	CHECK_EQ_INT(mb.msgs[2].size, strlen(M3) + 2);
	CHECK_EQ_INT(mb.msgs[3].size, e.big.len + 60000);
	CHECK_EQ_INT(mb.msgs[4].size, 9);            /* what W= says, until read */
	vv_mailbox_release(&mb);

	struct abuf b = ABUF_INIT;
	REQUIRE(V->body(c, 0, 10, &b) == 0);
	const char *want1 = "Subject: one\r\nFrom: a@example.test\r\n\r\nhello\r\n";
	CHECK(b.len == strlen(want1) && memcmp(b.data, want1, b.len) == 0);
	abuf_reset(&b);
	REQUIRE(V->body(c, 0, 11, &b) == 0);
	CHECK(b.len == strlen(M2) && memcmp(b.data, M2, b.len) == 0);
	abuf_reset(&b);
	REQUIRE(V->body(c, 0, 12, &b) == 0);
	const char *want3 = "Subject: three\r\n\r\nmixed\r\nends\r\nno newline";
	CHECK(b.len == strlen(want3) && memcmp(b.data, want3, b.len) == 0);
	abuf_reset(&b);
	/* the large one, chunked in the repository and sent in DATA frames */
	REQUIRE(V->body(c, 0, 20, &b) == 0);
	CHECK_EQ_INT(b.len, e.big.len + 60000);
	CHECK(b.len > 2 * SERVE_DATA_MAX);
	static const char head[] = "line 00000 of a large message, with some text\r\nline 00001";
	CHECK(b.len > sizeof(head) && memcmp(b.data, head, sizeof(head) - 1) == 0);
	CHECK(b.len >= 2 && memcmp(b.data + b.len - 2, "\r\n", 2) == 0);
	abuf_reset(&b);
	/* W= lied: the answer fails rather than contradict RFC822.SIZE, and
	 * the size is right from then on */
	CHECK_EQ_INT(V->body(c, 0, 21, &b), ARCA_ECORRUPT);
	CHECK(log_has(&e, "W= says 9"));
	REQUIRE(V->open(c, 0, &mb) == 0);
	CHECK(mb.nmsgs == 5 && mb.msgs[4].size == 6);
	vv_mailbox_release(&mb);
	abuf_reset(&b);
	REQUIRE(V->body(c, 0, 21, &b) == 0);
	CHECK(b.len == 6 && memcmp(b.data, "x\r\ny\r\n", 6) == 0);
	abuf_reset(&b);
	/* no such UID; an empty folder */
	CHECK_EQ_INT(V->body(c, 0, 13, &b), ARCA_ENOENT);
	CHECK_EQ_INT(b.len, 0);
	REQUIRE(V->open(c, 2, &mb) == 0);
	CHECK(mb.nmsgs == 0);
	vv_mailbox_release(&mb);
	/* the channel still works after the errors */
	CHECK_EQ_INT(V->body(c, 0, 10, &b), 0);
	V->free(c);
	abuf_release(&b);
	kenv_release(&e);
}

/* Bound to alice, nothing of bob's can be had: not by folder index, not
 * by UID (bob's UIDs 10 and 11 exist in alice's INBOX too: alice's
 * messages come back). */
static void test_keeper_other_account(void)
{
	struct kenv e;
	REQUIRE(kenv_init(&e, NULL) == 0);
	struct serve_client *a = session(&e, "127.0.0.1", NULL);
	struct serve_client *b = session(&e, "127.0.0.1", NULL);
	REQUIRE(a != NULL && b != NULL);
	REQUIRE(V->login(a, "alice@example.test", "pw") == 0);
	REQUIRE(V->login(b, "bob@example.test", "secret1") == 0);
	/* bob's snapshot came from LAYOUT=fs: '/', no gone subscriptions */
	const struct vv_account *ac = NULL;
	REQUIRE(V->account(b, &ac) == 0);
	CHECK(ac->separator == '/' && ac->ngone_subs == 0);
	struct abuf body = ABUF_INIT;
	bool leaked = false;
	for (size_t f = 0; f < 5; f++)
		for (uint32_t uid = 1; uid < 60; uid++) {
			abuf_reset(&body);
			if (V->body(a, f, uid, &body) == 0 &&
			    memmem(body.data, body.len, "only bob", 8) != NULL)
				leaked = true;
		}
	CHECK(!leaked);
	abuf_reset(&body);
	REQUIRE(V->body(a, 0, 10, &body) == 0);
	CHECK(memmem(body.data, body.len, "Subject: one", 12) != NULL);
	abuf_reset(&body);
	REQUIRE(V->body(b, 0, 10, &body) == 0);
	CHECK(memmem(body.data, body.len, "only bob", 8) != NULL);
	const struct vv_folder *fl;
	size_t n;
	REQUIRE(V->folders(b, &fl, &n) == 0);
	CHECK(n == 1 && fl[0].uidvalidity == 99 && fl[0].uidnext == 50);
	V->free(a);
	V->free(b);
	abuf_release(&body);
	kenv_release(&e);
}

static bool channel_closed(int fd)
{
	struct abuf in = ABUF_INIT;
	uint8_t type;
	int rc;
	/* skip what the keeper answered before it hung up */
	while ((rc = serve_recv(fd, &type, &in, NULL)) == 0)
		;
	abuf_release(&in);
	return rc == ARCA_ENOENT;
}

/* A session that breaks the protocol loses its channel. */
/* --separator overrides each snapshot's own, for every account. */
static void test_keeper_separator(void)
{
	struct kenv e;
	kenv_separator = '/';
	int rc = kenv_init(&e, NULL);
	kenv_separator = '\0';
	REQUIRE(rc == 0);
	struct serve_client *a = session(&e, "127.0.0.1", NULL);
	REQUIRE(a != NULL);
	REQUIRE(V->login(a, "alice@example.test", "pw") == 0);
	const struct vv_account *ac = NULL;
	REQUIRE(V->account(a, &ac) == 0);    /* before any folders(): asks for them */
	CHECK(ac->separator == '/' && ac->ngone_subs == 2);
	const struct vv_folder *fl;
	size_t n;
	REQUIRE(V->folders(a, &fl, &n) == 0 && n == 3);
	REQUIRE(V->account(a, &ac) == 0);
	CHECK(ac->separator == '/' && ac->ngone_subs == 2);
	V->free(a);
	kenv_release(&e);
}

static void test_keeper_violations(void)
{
	struct kenv e;
	REQUIRE(kenv_init(&e, NULL) == 0);
	struct abuf f = ABUF_INIT;
	int fd;
	/* a request before a login */
	int sv[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	REQUIRE(serve_keeper_spawn(e.k, sv[0], "127.0.0.1", NULL) == 0);
	fd = sv[1];
	REQUIRE(serve_encode_body(&f, 0, 10) == 0);
	REQUIRE(serve_send(fd, &f, NULL) == 0);
	CHECK(channel_closed(fd));
	close(fd);
	CHECK(log_has(&e, "(a request before a login)"));
	/* a second LOGIN after a login */
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	REQUIRE(serve_keeper_spawn(e.k, sv[0], "127.0.0.1", NULL) == 0);
	fd = sv[1];
	REQUIRE(serve_encode_login(&f, "alice@example.test", "pw") == 0);
	REQUIRE(serve_send(fd, &f, NULL) == 0);
	REQUIRE(serve_encode_login(&f, "bob@example.test", "secret1") == 0);
	REQUIRE(serve_send(fd, &f, NULL) == 0);
	CHECK(channel_closed(fd));
	close(fd);
	CHECK(log_has(&e, "(a LOGIN after a login)"));
	/* a malformed OPEN after a login; an unknown type; an oversized frame */
	const uint8_t opens[][8] = {
		{ 2, 0, 0, 0, SERVE_OPEN, 0 },              /* index 0 + a trailing byte */
		{ 1, 0, 0, 0, 99 },                         /* unknown type */
		{ 0xff, 0xff, 0xff, 0x7f, SERVE_DATA },      /* far too long */
	};
	for (size_t i = 0; i < 3; i++) {
		REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
		REQUIRE(serve_keeper_spawn(e.k, sv[0], "127.0.0.1", NULL) == 0);
		fd = sv[1];
		REQUIRE(serve_encode_login(&f, "alice@example.test", "pw") == 0);
		REQUIRE(serve_send(fd, &f, NULL) == 0);
		uint8_t raw[8];
		memcpy(raw, opens[i], 8);
		if (i == 0)
			raw[6] = 0;   /* OPEN payload: varint 0 then a stray byte */
		size_t len = i == 0 ? 7 : 5;
		if (i == 0)
			put_u32le(raw, 3);
		REQUIRE(write(fd, raw, len) == (ssize_t)len);
		CHECK(channel_closed(fd));
		close(fd);
	}
	CHECK(log_has(&e, "(a malformed OPEN)"));
	CHECK(log_has(&e, "(an unknown request)"));
	CHECK(log_has(&e, "(an oversized frame)"));
	/* every channel thread ended */
	for (int i = 0; i < 100 && serve_keeper_channels(e.k) > 0; i++)
		usleep(10000);
	CHECK_EQ_INT(serve_keeper_channels(e.k), 0);
	abuf_release(&f);
	kenv_release(&e);
}

static int store1(struct serve_client *c, uint32_t *uids, size_t n, int mode, uint32_t flags,
		  const char *kw, int64_t unchangedsince, struct vv_store_result *res)
{
	char *k[1] = { (char *)kw };
	struct vv_store req = { .mode = mode, .flags = flags, .keywords = k, .nkeywords = kw ? 1 : 0,
				.uids = uids, .nuids = n, .has_unchangedsince = unchangedsince >= 0,
				.unchangedsince = unchangedsince >= 0 ? (uint64_t)unchangedsince : 0 };
	return V->store(c, 0, &req, res);
}

/* With an overlay: STORE is checked, kept (durably) and served to every
 * session, and again by a new keeper over the same overlay file; without
 * one, a STORE breaks the channel. */
static void test_keeper_store(void)
{
	struct kenv e;
	kenv_overlay = true;
	int rc = kenv_init(&e, NULL);
	kenv_overlay = false;
	REQUIRE(rc == 0);
	struct serve_client *c = session(&e, "127.0.0.1", NULL);
	REQUIRE(c != NULL);
	REQUIRE(V->login(c, "alice@example.test", "pw") == 0);
	CHECK(V->can_store(c));
	struct vv_store_result res;
	uint32_t u[] = { 10, 11, 13 };           /* 13: not in the folder */
	REQUIRE(store1(c, u, 3, VV_STORE_ADD, VV_FLAGGED, NULL, -1, &res) == 0);
	REQUIRE(res.nmsgs == 2);
	CHECK_EQ_INT(res.msgs[0].flags, VV_SEEN | VV_FLAGGED);
	CHECK_EQ_INT(res.msgs[0].modseq, 6);     /* above the folder's 5 */
	CHECK_EQ_INT(res.msgs[1].flags, VV_FLAGGED);
	CHECK_EQ_INT(res.msgs[1].keywords, 1);   /* kept */
	CHECK_EQ_INT(res.nmodified, 0);
	vv_store_result_release(&res);
	uint32_t u12[] = { 12 };
	REQUIRE(store1(c, u12, 1, VV_STORE_SET, VV_SEEN, "later", -1, &res) == 0);
	REQUIRE(res.nmsgs == 1 && res.nkeywords == 3);
	CHECK_STR(res.keywords[2], "later");
	CHECK_EQ_INT(res.msgs[0].flags, VV_SEEN);
	CHECK_EQ_INT(res.msgs[0].keywords, 4);
	CHECK_EQ_INT(res.msgs[0].modseq, 7);
	vv_store_result_release(&res);
	/* UNCHANGEDSINCE below 10's MODSEQ: left alone */
	uint32_t u10[] = { 10 };
	REQUIRE(store1(c, u10, 1, VV_STORE_REMOVE, VV_SEEN, NULL, 5, &res) == 0);
	CHECK(res.nmodified == 1 && res.modified[0] == 10);
	CHECK(res.nmsgs == 0);
	vv_store_result_release(&res);
	/* a keyword that is no atom is refused by the encoder: never sent */
	CHECK_EQ_INT(store1(c, u10, 1, VV_STORE_ADD, 0, "two words", -1, &res), ARCA_ELIMIT);
	/* another session sees the changes, and STATUS-like counts follow */
	struct serve_client *c2 = session(&e, "127.0.0.1", NULL);
	REQUIRE(c2 != NULL);
	REQUIRE(V->login(c2, "alice@example.test", "pw") == 0);
	const struct vv_folder *fl;
	size_t n;
	REQUIRE(V->folders(c2, &fl, &n) == 0);
	CHECK_EQ_INT(fl[0].highestmodseq, 7);
	CHECK_EQ_INT(fl[0].unseen, 1);            /* 11 only; 12 is seen now */
	/* what changed since a MODSEQ, for a session's NOOP/IDLE */
	REQUIRE(V->changes(c2, 0, 5, &res) == 0);
	REQUIRE(res.nmsgs == 3 && res.nkeywords == 3 && res.nmodified == 0);
	CHECK(res.msgs[0].uid == 10 && res.msgs[1].uid == 11 && res.msgs[2].uid == 12);
	CHECK_EQ_INT(res.msgs[2].modseq, 7);
	vv_store_result_release(&res);
	REQUIRE(V->changes(c2, 0, 7, &res) == 0);
	CHECK(res.nmsgs == 0);
	vv_store_result_release(&res);
	struct vv_mailbox mb;
	REQUIRE(V->open(c2, 0, &mb) == 0);
	REQUIRE(mb.nmsgs == 5 && mb.nkeywords == 3);
	CHECK_EQ_INT(mb.msgs[0].flags, VV_SEEN | VV_FLAGGED);
	CHECK_EQ_INT(mb.msgs[2].flags, VV_SEEN);
	CHECK_EQ_INT(mb.msgs[2].keywords, 4);
	vv_mailbox_release(&mb);
	V->free(c2);
	V->free(c);
	/* dave's folder has a UID twice and a message without one: they are
	 * served renumbered (10, 11, 12), and a change to one of them stays
	 * with it, not with the UID 5 it shared */
	struct serve_client *cd = session(&e, "127.0.0.1", NULL);
	REQUIRE(cd != NULL);
	REQUIRE(V->login(cd, "dave@example.test", "dpw") == 0);
	uint32_t u11[] = { 11 };
	REQUIRE(store1(cd, u11, 1, VV_STORE_ADD, VV_FLAGGED, NULL, -1, &res) == 0);
	CHECK(res.nmsgs == 1 && res.msgs[0].flags == VV_FLAGGED);
	vv_store_result_release(&res);
	/* removing a keyword the folder lacks: no change, no new keyword */
	REQUIRE(store1(cd, u11, 1, VV_STORE_REMOVE, 0, "nothere", -1, &res) == 0);
	CHECK(res.nmsgs == 1 && res.nkeywords == 0);
	vv_store_result_release(&res);
	V->free(cd);
	/* a new keeper over the same overlay (serve-imap restarted) */
	for (int i = 0; i < 100 && serve_keeper_channels(e.k) > 0; i++)
		usleep(10000);
	serve_keeper_free(e.k);
	e.k = NULL;
	overlay_free(e.ov);
	e.ov = NULL;
	struct arca_err err = { 0 };
	struct arca_restore_key *rk = NULL;
	char warn[ARCA_ERR_MSG_MAX];
	REQUIRE(keyfile_read(e.key, "test passphrase", &rk, &err) == 0);
	REQUIRE(overlay_open(e.ovpath, rk, true, &e.ov, warn, &err) == 0);
	acrypto_restore_key_free(rk);
	struct serve_keeper_opts o = { .repo = e.r, .users = e.pw, .log = on_log, .log_ctx = &e,
				       .max_channels = 8, .overlay = e.ov };
	o.throttle.delay_ms = 1;
	REQUIRE(serve_keeper_new(&o, &e.k, &err) == 0);
	c = session(&e, "127.0.0.1", NULL);
	REQUIRE(c != NULL);
	REQUIRE(V->login(c, "alice@example.test", "pw") == 0);
	REQUIRE(V->open(c, 0, &mb) == 0);
	REQUIRE(mb.nmsgs == 5 && mb.nkeywords == 3);
	CHECK_STR(mb.keywords[2], "later");
	CHECK_EQ_INT(mb.msgs[0].flags, VV_SEEN | VV_FLAGGED);
	CHECK_EQ_INT(mb.msgs[0].modseq, 6);
	CHECK_EQ_INT(mb.msgs[1].flags, VV_FLAGGED);
	CHECK_EQ_INT(mb.msgs[2].keywords, 4);
	CHECK_EQ_INT(mb.msgs[2].modseq, 7);
	CHECK_EQ_INT(mb.msgs[3].flags, VV_SEEN);  /* untouched */
	vv_mailbox_release(&mb);
	cd = session(&e, "127.0.0.1", NULL);
	REQUIRE(cd != NULL);
	REQUIRE(V->login(cd, "dave@example.test", "dpw") == 0);
	REQUIRE(V->open(cd, 0, &mb) == 0);
	REQUIRE(mb.nmsgs == 5);
	for (size_t i = 0; i < 5; i++)
		CHECK_EQ_INT(mb.msgs[i].flags, mb.msgs[i].uid == 11 ? VV_FLAGGED : 0);
	vv_mailbox_release(&mb);
	V->free(cd);
	/* a hostile session: a keyword that is no atom, sent raw */
	int sv[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	REQUIRE(serve_keeper_spawn(e.k, sv[0], "127.0.0.1", NULL) == 0);
	struct abuf f = ABUF_INIT;
	REQUIRE(serve_encode_login(&f, "alice@example.test", "pw") == 0);
	REQUIRE(serve_send(sv[1], &f, NULL) == 0);
	uint8_t t;
	REQUIRE(serve_recv(sv[1], &t, &f, NULL) == 0 && t == SERVE_OK);
	char *sp[1] = { "ok" };
	struct vv_store req = { .mode = VV_STORE_ADD, .keywords = sp, .nkeywords = 1, .uids = u10, .nuids = 1 };
	REQUIRE(serve_encode_store(&f, 0, &req) == 0);
	f.data[f.len - 4 - 1 - 8 - 1 - 2] = ' ';  /* "ok" -> " k" */
	REQUIRE(serve_send(sv[1], &f, NULL) == 0);
	CHECK(channel_closed(sv[1]));
	close(sv[1]);
	CHECK(log_has(&e, "(a malformed STORE)"));
	V->free(c);
	abuf_release(&f);
	kenv_release(&e);

	/* without an overlay: a STORE ends the channel */
	REQUIRE(kenv_init(&e, NULL) == 0);
	c = session(&e, "127.0.0.1", NULL);
	REQUIRE(c != NULL);
	REQUIRE(V->login(c, "alice@example.test", "pw") == 0);
	CHECK(!V->can_store(c));
	CHECK_EQ_INT(store1(c, u10, 1, VV_STORE_ADD, VV_FLAGGED, NULL, -1, &res), ARCA_ESTATE);
	V->free(c);
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	REQUIRE(serve_keeper_spawn(e.k, sv[0], "127.0.0.1", NULL) == 0);
	REQUIRE(serve_encode_login(&f, "alice@example.test", "pw") == 0);
	REQUIRE(serve_send(sv[1], &f, NULL) == 0);
	REQUIRE(serve_recv(sv[1], &t, &f, NULL) == 0 && t == SERVE_OK);
	sp[0] = "ok";
	REQUIRE(serve_encode_store(&f, 0, &req) == 0);
	REQUIRE(serve_send(sv[1], &f, NULL) == 0);
	CHECK(channel_closed(sv[1]));
	close(sv[1]);
	CHECK(log_has(&e, "(a STORE on a read-only vault)"));
	abuf_release(&f);
	kenv_release(&e);
}

/* Renumbering: a UID recorded three times keeps it once (the first in
 * the snapshot's order), the others and a message without a UID get new
 * ones after the highest, in the snapshot's order; a real UID 4294967295
 * is not taken for a marker (and leaves no room for a UIDNEXT: the
 * folder is beyond what can be served). */
static void test_keeper_renumber(void)
{
	struct kenv e;
	REQUIRE(kenv_init(&e, NULL) == 0);
	struct serve_client *c = session(&e, "127.0.0.1", NULL);
	REQUIRE(c != NULL);
	REQUIRE(V->login(c, "dave@example.test", "dpw") == 0);
	const struct vv_folder *fl;
	size_t n;
	REQUIRE(V->folders(c, &fl, &n) == 0 && n == 1);
	CHECK_EQ_INT(fl[0].uidnext, 13);
	struct vv_mailbox mb;
	REQUIRE(V->open(c, 0, &mb) == 0);
	REQUIRE(mb.nmsgs == 5);
	/* d1 keeps 5, d5 keeps 9; d2, d3, d4 get 10, 11, 12 */
	static const uint32_t uids[] = { 5, 9, 10, 11, 12 };
	static const char *const bodies[] = { "d1\r\n", "d5\r\n", "d2\r\n", "d3\r\n", "d4\r\n" };
	struct abuf b = ABUF_INIT;
	for (size_t i = 0; i < 5; i++) {
		CHECK_EQ_INT(mb.msgs[i].uid, uids[i]);
		abuf_reset(&b);
		CHECK(V->body(c, 0, uids[i], &b) == 0 && b.len == 4 && memcmp(b.data, bodies[i], 4) == 0);
	}
	abuf_release(&b);
	vv_mailbox_release(&mb);
	V->free(c);
	c = session(&e, "127.0.0.1", NULL);
	REQUIRE(c != NULL);
	REQUIRE(V->login(c, "erin@example.test", "epw") == 0);
	CHECK(V->folders(c, &fl, &n) != 0);
	CHECK(log_has(&e, "beyond the served limits"));
	V->free(c);
	kenv_release(&e);
}

/* A session that asks for a large message and never reads its channel
 * loses it after the keeper's send timeout (it held a thread and the
 * message for good). */
static void test_keeper_send_timeout(void)
{
	struct kenv e;
	kenv_send_timeout_ms = 300;
	int rc0 = kenv_init(&e, NULL);
	kenv_send_timeout_ms = 0;
	REQUIRE(rc0 == 0);
	int raw = -1;
	struct serve_client *c = session(&e, "192.0.2.44", &raw);
	REQUIRE(c != NULL);
	REQUIRE(V->login(c, "alice@example.test", "pw") == 0);
	struct abuf req = ABUF_INIT;
	REQUIRE(serve_encode_body(&req, 0, 20) == 0);   /* the 3 MB one */
	REQUIRE(send(raw, req.data, req.len, MSG_NOSIGNAL) == (ssize_t)req.len);
	abuf_release(&req);
	int i = 0;
	for (; i < 300 && serve_keeper_channels(e.k) > 0; i++)
		usleep(10000);
	CHECK_EQ_INT(serve_keeper_channels(e.k), 0);
	CHECK(log_has(&e, "session of alice@example.test from 192.0.2.44 took nothing from its channel for 300 ms"));
	V->free(c);
	kenv_release(&e);
}

/* The keeper: 30 sessions from one address guess alice's password at
 * once; with --login-fails 5 only 5 passwords are checked, the rest are
 * refused unchecked. */
struct par_arg {
	struct kenv *e;
	int rc;
};

static void *par_main(void *p)
{
	struct par_arg *a = p;
	struct serve_client *c = session(a->e, "192.0.2.77", NULL);
	a->rc = c ? V->login(c, "alice@example.test", "guess") : -1;
	if (c)
		V->free(c);
	return NULL;
}

static void test_keeper_throttle_parallel(void)
{
	struct kenv e;
	struct login_throttle_opts thr = { .fails = 5, .delay_ms = 1 };
	REQUIRE(kenv_init(&e, &thr) == 0);
	/* more channels than the 8 of kenv: a keeper of its own size */
	serve_keeper_free(e.k);
	struct serve_keeper_opts o = { .repo = e.r, .users = e.pw, .log = on_log, .log_ctx = &e,
				       .max_channels = 64, .throttle = thr };
	struct arca_err err = { 0 };
	REQUIRE(serve_keeper_new(&o, &e.k, &err) == 0);
	enum { N = 30 };
	pthread_t th[N];
	struct par_arg a[N];
	for (int i = 0; i < N; i++) {
		a[i] = (struct par_arg){ .e = &e };
		REQUIRE(pthread_create(&th[i], NULL, par_main, &a[i]) == 0);
	}
	int bad = 0, busy = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		bad += a[i].rc == ARCA_EKEY;
		busy += a[i].rc == ARCA_EBUSY;
	}
	CHECK_EQ_INT(bad, 5);
	CHECK_EQ_INT(busy, N - 5);
	kenv_release(&e);
}

/* The keeper takes channels from a control socket; at most max_channels;
 * freeing it ends open channels. */
static void test_keeper_run(void)
{
	struct kenv e;
	REQUIRE(kenv_init(&e, NULL) == 0);
	int ctl[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) == 0);
	int ends[10];
	for (int i = 0; i < 10; i++) {
		int sv[2];
		REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
		REQUIRE(serve_ctl_send(ctl[0], sv[0], "127.0.0.1", (uint16_t)(1000 + i), NULL) == 0);
		close(sv[0]);
		ends[i] = sv[1];
	}
	close(ctl[0]);
	CHECK_EQ_INT(serve_keeper_run(e.k, ctl[1], NULL, NULL), 0);
	close(ctl[1]);
	/* 8 served, 2 refused (closed at once) */
	CHECK(log_has(&e, "port 1008 refused: 8 sessions open already"));
	struct serve_client *c = serve_client_new(ends[0]);
	CHECK_EQ_INT(V->login(c, "alice@example.test", "pw"), 0);
	struct serve_client *d = serve_client_new(ends[9]);
	CHECK_EQ_INT(V->login(d, "alice@example.test", "pw"), ARCA_EIO);
	V->free(d);
	CHECK_EQ_INT(serve_keeper_channels(e.k), 8);
	for (int i = 1; i < 8; i++)
		close(ends[i]);
	close(ends[8]);
	/* c still open: the keeper's free ends it */
	kenv_release(&e);
	const struct vv_folder *fl;
	size_t n;
	CHECK_EQ_INT(V->folders(c, &fl, &n), ARCA_EIO);
	V->free(c);
}

/* Fill the descriptor table: the soft limit lowered to the first free
 * number, every hole below it taken.  Returns how many were taken (into
 * held[]), *old_r the limit to put back. */
static size_t fd_table_fill(int held[], size_t max, struct rlimit *old_r)
{
	getrlimit(RLIMIT_NOFILE, old_r);
	int probe = dup(0);
	if (probe < 0)
		return 0;
	close(probe);
	struct rlimit low = { .rlim_cur = (rlim_t)probe + 1, .rlim_max = old_r->rlim_max };
	if (setrlimit(RLIMIT_NOFILE, &low) != 0)
		return 0;
	size_t n = 0;
	int fd;
	while (n < max && (fd = dup(0)) >= 0)
		held[n++] = fd;
	return n;
}

static void fd_table_release(int held[], size_t n, const struct rlimit *old)
{
	for (size_t i = 0; i < n; i++)
		close(held[i]);
	setrlimit(RLIMIT_NOFILE, old);
}

/* A full descriptor table in the keeper loses that one connection (the
 * kernel drops the descriptor and sets MSG_CTRUNC): not a malformed
 * message, the keeper goes on. */
static void test_ctl_fd_table_full(void)
{
	struct kenv e;
	REQUIRE(kenv_init(&e, NULL) == 0);
	int ctl[2], ch[2], ch2[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) == 0);
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch) == 0);
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch2) == 0);
	REQUIRE(serve_ctl_send(ctl[0], ch[0], "192.0.2.7", 40000, NULL) == 0);
	REQUIRE(serve_ctl_send(ctl[0], ch2[0], "192.0.2.8", 40001, NULL) == 0);
	close(ch[0]);
	close(ch2[0]);
	int held[4096];
	struct rlimit old;
	size_t n = fd_table_fill(held, 4096, &old);
	REQUIRE(n > 0);
	int fd = -1;
	char peer[SERVE_PEER_MAX + 1];
	uint16_t port = 0;
	int rc = serve_ctl_recv(ctl[1], &fd, peer, &port, NULL);
	fd_table_release(held, n, &old);
	CHECK_EQ_INT(rc, ARCA_EBUSY);
	CHECK_STR(peer, "192.0.2.7");
	CHECK_EQ_INT(fd, -1);
	/* the session's end sees the channel gone */
	char c;
	CHECK(read(ch[1], &c, 1) == 0);
	/* the keeper's loop: the second one is lost the same way, and the
	 * loop goes on to the end of the control socket */
	close(ctl[0]);
	n = fd_table_fill(held, 4096, &old);
	REQUIRE(n > 0);
	rc = serve_keeper_run(e.k, ctl[1], NULL, NULL);
	fd_table_release(held, n, &old);
	CHECK_EQ_INT(rc, 0);
	CHECK(log_has(&e, "connection from 192.0.2.8 port 40001 refused: no file descriptor left"));
	close(ctl[1]);
	close(ch[1]);
	close(ch2[1]);
	kenv_release(&e);
}

int main(void)
{
	RUN(test_proto_roundtrip);
	RUN(test_proto_rejects);
	RUN(test_proto_recv_limits);
	RUN(test_proto_ctl);
	RUN(test_crlf);
	RUN(test_passwd_schemes);
	RUN(test_passwd_file);
	RUN(test_throttle);
	RUN(test_throttle_parallel);
	RUN(test_keeper_login);
	RUN(test_keeper_throttle);
	RUN(test_keeper_view);
	RUN(test_keeper_other_account);
	RUN(test_keeper_separator);
	RUN(test_keeper_violations);
	RUN(test_keeper_store);
	RUN(test_keeper_renumber);
	RUN(test_keeper_send_timeout);
	RUN(test_keeper_throttle_parallel);
	RUN(test_keeper_run);
	RUN(test_ctl_fd_table_full);
	HARNESS_EXIT();
}
