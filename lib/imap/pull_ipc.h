/*
 * pull_ipc.h - frames between the pull's network process (the engine) and
 * its store process (docs/protocol/pull-ipc.md).
 *
 * A frame: u32le length of what follows (type + payload, at most
 * PULL_IPC_FRAME_MAX), u8 type, payload.  Every decoder is strict: exact
 * lengths, bounded strings, trailing bytes rejected (OpenSMTPD's "not at
 * msg end").  The store process decodes what the network process sends as
 * hostile input; the decoders are fuzzed (tests/fuzz/fuzz_pull_ipc.c).
 */
#ifndef ARCA_PULL_IPC_H
#define ARCA_PULL_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "arca_err.h"
#include "buf.h"
#include "pull_store.h"
#include "snapshot.h"

#define PULL_IPC_CHUNK (1u << 20)             /* DATA payload at most */
#define PULL_IPC_FRAME_MAX (64u << 20)        /* a FINISH with a large account */
#define PULL_IPC_PUT_MAX (UINT64_C(4) << 30)  /* one message */
#define PULL_IPC_SIEVE_MAX (16u << 20)        /* one Sieve script (as ManageSieve's limit) */

enum pull_ipc_type {
	/* network process -> store process */
	PULL_IPC_BEGIN = 1,      /* u32 account index */
	PULL_IPC_KNOWN = 2,      /* str guid, u32 RFC822.SIZE */
	PULL_IPC_PUT = 3,        /* u8 sieve, str guid, u32 size, u8 stripped, u64 total; DATA follow */
	PULL_IPC_DATA = 4,       /* bytes */
	PULL_IPC_WARN = 5,       /* str */
	PULL_IPC_FINISH = 6,     /* u8 gone, varint examined, the state (if not gone) */
	PULL_IPC_FAIL = 7,       /* u32 -code, str message */
	/* store process -> network process */
	PULL_IPC_PREV = 65,      /* the cached state blobs */
	PULL_IPC_KNOWN_R = 66,   /* u8 known, content */
	PULL_IPC_ERR = 68,       /* u32 -code, str message */
	PULL_IPC_OK = 69,        /* empty */
};

/* Blocking I/O on a stream socket.  recv: *type_r and the payload. */
int pull_ipc_send(int fd, const struct abuf *frame, struct arca_err *err);
int pull_ipc_recv(int fd, uint8_t *type_r, struct abuf *payload, struct arca_err *err);

/* Encoders write a whole frame (length and type included) into out. */
int pull_ipc_encode_begin(struct abuf *out, uint32_t index);
int pull_ipc_encode_known(struct abuf *out, const char *guid, uint32_t size);
int pull_ipc_encode_put(struct abuf *out, bool sieve, const char *guid, uint32_t size,
			bool stripped, uint64_t total);
int pull_ipc_encode_data(struct abuf *out, const void *p, size_t n);
int pull_ipc_encode_warn(struct abuf *out, const char *what);
int pull_ipc_encode_finish(struct abuf *out, const struct snapshot *s, bool gone, uint64_t examined);
int pull_ipc_encode_fail(struct abuf *out, int code, const char *msg);
int pull_ipc_encode_prev(struct abuf *out, const struct pull_prev_blobs *b);
int pull_ipc_encode_content(struct abuf *out, bool known, const struct pull_content *c);
int pull_ipc_encode_err(struct abuf *out, int code, const char *msg);
int pull_ipc_encode_ok(struct abuf *out);

/* Decoders take the payload (after the type); 0 or ARCA_EFORMAT/ENOMEM. */
struct pull_ipc_put {
	bool sieve, stripped;
	char guid[256];
	uint32_t rfc822_size;
	uint64_t total;
};
int pull_ipc_decode_begin(const uint8_t *p, size_t len, uint32_t *index_r);
int pull_ipc_decode_known(const uint8_t *p, size_t len, char guid[256], uint32_t *size_r);
int pull_ipc_decode_put(const uint8_t *p, size_t len, struct pull_ipc_put *put);
int pull_ipc_decode_warn(const uint8_t *p, size_t len, char *out, size_t outlen);
/* The state of `account`: *s_r is NULL when gone. */
int pull_ipc_decode_finish(const uint8_t *p, size_t len, const char *account,
			   struct snapshot **s_r, bool *gone_r, uint64_t *examined_r);
int pull_ipc_decode_fail(const uint8_t *p, size_t len, int *code_r, char *msg, size_t msglen);
int pull_ipc_decode_prev(const uint8_t *p, size_t len, struct pull_prev_blobs *b);
int pull_ipc_decode_content(const uint8_t *p, size_t len, int *known_r, struct pull_content *c);
/* An ERR payload into err; returns its (negative) code. */
int pull_ipc_decode_err(const uint8_t *p, size_t len, struct arca_err *err);

/* The split run (pull_run.c). */
struct pull_child;
/* Fork the network process: it drops to o->run_as (default nobody) when
 * started as root, sets no_new_privs, and pulls `accounts` through
 * o->parallel connections.  Call before the repository (and its keys) is
 * opened, so that the child never holds them. */
int pull_spawn(const struct pull_opts *o, char *const *accounts, size_t naccounts,
	       struct pull_child **child_r, struct arca_err *err);
/* A child made elsewhere (tests: a process that speaks the frames itself):
 * pid to kill and reap, fds the parent's ends (taken over). */
struct pull_child *pull_child_adopt(pid_t pid, const int *fds, unsigned n, char *const *accounts,
				    size_t naccounts);
/* Kill and reap a child that won't be served; frees it. */
void pull_abandon(struct pull_child *child);
/* Serve the child until it is done; commit; reap it.  Frees child. */
int pull_serve(struct repo *r, const struct pull_opts *o, struct pull_child *child,
	       pull_stage_fn *stage, size_t *failed_r, struct arca_err *err);

#endif
