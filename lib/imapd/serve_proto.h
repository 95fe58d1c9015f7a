/*
 * serve_proto.h - the channel between an `arca serve-imap` session process
 * (network-facing, no key) and the keeper (holds the restore key), and the
 * control socket on which the acceptor hands the keeper a new channel
 * (docs/protocol/serve.md).
 *
 * A channel frame: u32le length of what follows (type + payload, 1 ..
 * SERVE_FRAME_MAX), u8 type, payload.  Strings are a LEB128 length and the
 * bytes (no NUL inside).  Every decoder is strict: each field bounded,
 * counts checked against the frame's length before anything is allocated,
 * trailing bytes rejected.  The keeper decodes what a session sends as
 * hostile input (a session process may have been taken over by its
 * client); the session decodes the keeper's answers just as strictly.  The
 * decoders are fuzzed (tests/fuzz/fuzz_serve_proto.c).
 *
 * Ownership: encoders reset `out` and write one whole frame into it;
 * decoders copy what they keep (strings on the heap, freed by the matching
 * _free/_release) and never keep a pointer into the payload.
 */
#ifndef ARCA_SERVE_PROTO_H
#define ARCA_SERVE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arca_err.h"
#include "buf.h"
#include "vault_view.h"

#define SERVE_FRAME_MAX ((1u << 20) + 1024)   /* type + payload */
#define SERVE_DATA_MAX (1u << 20)             /* DATA payload at most */
#define SERVE_USER_MAX 1024                   /* LOGIN user name, bytes */
#define SERVE_PASSWORD_MAX 1024               /* LOGIN password, bytes */
#define SERVE_TEXT_MAX 256                    /* NO / ERR text */
#define SERVE_PEER_MAX 64                     /* peer address text */
#define SERVE_FOLDER_NAME_MAX 4096            /* = SNAP_NAME_MAX */
#define SERVE_SPECIAL_USE_MAX 64
#define SERVE_FOLDERS_MAX 100000              /* = SNAP_FOLDERS_MAX */
#define SERVE_FOLDERS_PER_FRAME 200           /* 200 * (4096 + 96) < a frame */
#define SERVE_SUBS_MAX 100000                 /* gone subscriptions, = snapshot's limit */
#define SERVE_SUBS_PER_FRAME 200              /* 200 * (4096 + 3) < a frame */
#define SERVE_KEYWORD_MAX 255                 /* one keyword's bytes */
#define SERVE_KEYWORDS_MAX 64                 /* per mailbox */
#define SERVE_MSGS_MAX 10000000u              /* per mailbox */
#define SERVE_MSGS_PER_FRAME 16384            /* 16384 * 38 bytes < a frame */
#define SERVE_MSG_RECORD 38                   /* bytes of one message record */
#define SERVE_BODY_MAX (UINT64_C(1) << 30)    /* one message as served */
#define SERVE_STORE_UIDS_MAX 65536            /* UIDs of one STORE frame (and its answer) */

enum serve_type {
	/* session -> keeper */
	SERVE_LOGIN = 1,        /* str user, str password */
	SERVE_FOLDERS = 2,      /* empty */
	SERVE_OPEN = 3,         /* varint folder index */
	SERVE_BODY = 4,         /* varint folder index, u32 uid */
	SERVE_STORE = 5,        /* varint folder, u8 mode, u8 flags, varint nkw, strs,
				   u8 has_unchangedsince, u64 unchangedsince, varint n, n u32 uids */
	SERVE_CHANGES = 6,      /* varint folder, u64 since */
	/* keeper -> session */
	SERVE_OK = 64,          /* u8 flags (SERVE_OK_STORE): LOGIN accepted */
	SERVE_NO = 65,          /* u8 reason, str text: LOGIN refused */
	SERVE_FOLDER_LIST = 66, /* u8 last, u8 separator, varint n, n folder records */
	SERVE_MAILBOX = 67,     /* varint nkeywords, strs, varint nmsgs; MSGS follow */
	SERVE_MSGS = 68,        /* varint n, n message records */
	SERVE_BODY_R = 69,      /* u64 size; DATA follow */
	SERVE_DATA = 70,        /* bytes */
	SERVE_ERR = 71,         /* u32 -code, str text: OPEN or BODY failed */
	SERVE_GONE_SUBS = 72,   /* u8 last, varint n, n str: after the last FOLDER_LIST */
	SERVE_STORED = 73,      /* varint nkw, strs, varint nmod, nmod u32, varint nmsgs; MSGS follow */
};

/* SERVE_OK's flags. */
#define SERVE_OK_STORE 1        /* flag changes are kept (serve-imap --overlay) */

/* Why a LOGIN was refused. */
enum serve_no_reason {
	SERVE_NO_BAD = 1,         /* unknown user or wrong password */
	SERVE_NO_THROTTLED = 2,   /* too many failures: not even checked */
	SERVE_NO_UNAVAILABLE = 3, /* the account can't be served (no snapshot, trouble) */
};

/* Blocking I/O on a stream socket (EINTR retried).  send: ARCA_EIO with
 * errno as send(2) left it (EAGAIN: the socket's SO_SNDTIMEO ran out).
 * recv: a whole frame, its length checked before the payload is
 * allocated; EOF before the first byte is ARCA_ENOENT (the other side hung
 * up between frames). */
int serve_send(int fd, const struct abuf *frame, struct arca_err *err);
int serve_recv(int fd, uint8_t *type_r, struct abuf *payload, struct arca_err *err);

/* ---- encoders (0, ARCA_ELIMIT for a field over its limit, ARCA_ENOMEM) ---- */
int serve_encode_login(struct abuf *out, const char *user, const char *password);
int serve_encode_folders(struct abuf *out);
int serve_encode_open(struct abuf *out, size_t folder);
int serve_encode_body(struct abuf *out, size_t folder, uint32_t uid);
int serve_encode_ok(struct abuf *out, uint8_t flags);
/* A STORE of req->uids (1 .. SERVE_STORE_UIDS_MAX, ascending, keywords
 * that vv_keyword_ok). */
int serve_encode_store(struct abuf *out, size_t folder, const struct vv_store *req);
int serve_encode_changes(struct abuf *out, size_t folder, uint64_t since);
/* The answer's head (to STORE: nmsgs <= SERVE_STORE_UIDS_MAX; to CHANGES:
 * nmodified 0, nmsgs <= SERVE_MSGS_MAX); nmsgs MSGS records follow in
 * SERVE_MSGS frames. */
int serve_encode_stored(struct abuf *out, char *const *kw, size_t nkw, const uint32_t *modified,
			size_t nmodified, size_t nmsgs);
int serve_encode_no(struct abuf *out, uint8_t reason, const char *text);
/* One frame of the folder list: folders[0..n) with n <= SERVE_FOLDERS_PER_FRAME;
 * separator '.' or '/' (the same in every frame of one answer). */
int serve_encode_folder_list(struct abuf *out, bool last, char separator,
			     const struct vv_folder *folders, size_t n);
/* One frame of the gone subscriptions: names[0..n), n <= SERVE_SUBS_PER_FRAME. */
int serve_encode_gone_subs(struct abuf *out, bool last, char *const *names, size_t n);
int serve_encode_mailbox(struct abuf *out, char *const *keywords, size_t nkeywords, uint64_t nmsgs);
int serve_encode_msgs(struct abuf *out, const struct vv_msg *msgs, size_t n);
int serve_encode_body_r(struct abuf *out, uint64_t size);
int serve_encode_data(struct abuf *out, const void *p, size_t n);
int serve_encode_err(struct abuf *out, int code, const char *text);

/* ---- decoders: the payload after the type; 0, ARCA_EFORMAT or ARCA_ENOMEM ---- */

/* user and password NUL-terminated into the caller's buffers; the
 * password buffer should be wiped after use. */
int serve_decode_login(const uint8_t *p, size_t len, char user[SERVE_USER_MAX + 1],
		       char password[SERVE_PASSWORD_MAX + 1]);
int serve_decode_empty(const uint8_t *p, size_t len);
int serve_decode_ok(const uint8_t *p, size_t len, uint8_t *flags_r);
/* STORE into req (keywords and uids malloc'ed: serve_store_release). */
int serve_decode_store(const uint8_t *p, size_t len, size_t *folder_r, struct vv_store *req);
void serve_store_release(struct vv_store *req);
/* STORED into res (keywords, modified; res->msgs left alone), the count of
 * message records to follow. */
int serve_decode_stored(const uint8_t *p, size_t len, struct vv_store_result *res, size_t *nmsgs_r,
			size_t max_msgs);
int serve_decode_changes(const uint8_t *p, size_t len, size_t *folder_r, uint64_t *since_r);
int serve_decode_open(const uint8_t *p, size_t len, size_t *folder_r);
int serve_decode_body(const uint8_t *p, size_t len, size_t *folder_r, uint32_t *uid_r);
int serve_decode_no(const uint8_t *p, size_t len, uint8_t *reason_r, char text[SERVE_TEXT_MAX + 1]);

/* A folder list being received: frames are appended until `last`. */
struct serve_folder_list {
	struct vv_folder *v;
	size_t n, cap;
	char separator;           /* 0 until the first frame */
};
/* Appends one frame's folders; *last_r says whether the list is complete.
 * More than SERVE_FOLDERS_MAX in all, or a separator other than '.' and
 * '/' or unlike the earlier frames', is ARCA_EFORMAT. */
int serve_decode_folder_list(const uint8_t *p, size_t len, struct serve_folder_list *l, bool *last_r);
void serve_folder_list_release(struct serve_folder_list *l);

/* The gone subscriptions being received, frames appended until `last`. */
struct serve_name_list {
	char **v;
	size_t n, cap;
};
/* More than SERVE_SUBS_MAX in all, an empty name or one over
 * SERVE_FOLDER_NAME_MAX is ARCA_EFORMAT. */
int serve_decode_gone_subs(const uint8_t *p, size_t len, struct serve_name_list *l, bool *last_r);
void serve_name_list_release(struct serve_name_list *l);

/* MAILBOX: the keywords into mb (mb->msgs left alone), the count. */
int serve_decode_mailbox(const uint8_t *p, size_t len, struct vv_mailbox *mb, uint64_t *nmsgs_r);
/* MSGS: at most `room` records into out; *n_r how many. */
int serve_decode_msgs(const uint8_t *p, size_t len, struct vv_msg *out, size_t room, size_t *n_r);
int serve_decode_body_r(const uint8_t *p, size_t len, uint64_t *size_r);
/* ERR into err; returns its (negative) code. */
int serve_decode_err(const uint8_t *p, size_t len, struct arca_err *err);

/*
 * The control socket (SOCK_SEQPACKET, acceptor -> keeper): one message per
 * new connection, the payload "u8 version (1), str peer address, u16le
 * peer port" with exactly one file descriptor attached (SCM_RIGHTS): the
 * keeper's end of the channel for that connection.  The peer address
 * (numeric IPv4 or IPv6 text) is what login throttling counts by: it comes
 * from the acceptor, never from the session that logs in.
 */
int serve_ctl_send(int sock, int fd, const char *peer, uint16_t port, struct arca_err *err);
/* 0 with *fd_r a new descriptor (close-on-exec) and the peer filled;
 * ARCA_ENOENT when the acceptor hung up; ARCA_EBUSY when a well-formed
 * message's descriptor could not be received (MSG_CTRUNC with none: the
 * receiver's descriptor table is full; the peer is filled, that one
 * connection is lost, the next message may be fine); ARCA_EFORMAT for a
 * malformed message (any descriptors that came with it are closed). */
int serve_ctl_recv(int sock, int *fd_r, char peer[SERVE_PEER_MAX + 1], uint16_t *port_r,
		   struct arca_err *err);
/* The control payload alone (for the fuzzer): peer must be a numeric
 * address. */
int serve_ctl_decode(const uint8_t *p, size_t len, char peer[SERVE_PEER_MAX + 1], uint16_t *port_r);
int serve_ctl_encode(struct abuf *out, const char *peer, uint16_t port);

#endif
