/*
 * ipc.h - the typed messages between arcad's processes (docs/protocol/ipc.md).
 *
 * The LMTP listener (no keys, no repository, dropped privileges) hands each
 * message to the store process over a socketpair; the store answers with one
 * reply per recipient once the message is durable (or not).  Frames:
 *
 *     u32le length (of what follows) | u8 type | payload
 *
 * Decoding is strict (OpenSMTPD's m_end): every field bounded, the payload
 * consumed exactly, anything else is a protocol error and the peer is cut
 * off.  The store treats the listener as hostile: it re-validates every
 * address and maps recipients to accounts itself.
 */
#ifndef ARCAD_IPC_H
#define ARCAD_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define IPC_BODY_MAX (256u << 20)              /* hard ceiling of a message */
#define IPC_FRAME_MAX (IPC_BODY_MAX + (1u << 20))
#define IPC_STR_MAX 1024
#define IPC_RCPT_MAX 1000
#define IPC_TEXT_MAX 256

enum ipc_type {
	IPC_DELIVER = 1,   /* listener -> store: one message, its envelope */
	IPC_RESULT = 2,    /* store -> listener: one reply per recipient */
	IPC_STATUS = 3,    /* store -> listener: accepting or not (disk, health) */
	IPC_EVENT = 4,     /* listener -> store: something to log / alarm on */
};

/* IPC_DELIVER.  Pointers point into the decoded frame (valid while it is). */
struct ipc_deliver {
	uint64_t txn;                   /* listener's id, echoed in the result */
	uint64_t time_ns;               /* when DATA ended */
	const char *client;             /* "ip:port" of the LMTP client */
	const char *helo;               /* LHLO argument */
	const char *mail_from;          /* reverse path, "" for <> */
	uint8_t flags;                  /* JOURNAL_F_* (journal.h) */
	uint16_t nrcpt;
	const char *rcpts[IPC_RCPT_MAX];
	const uint8_t *body;
	uint64_t body_len;
};

/* IPC_RESULT: per recipient, an LMTP reply line without CRLF, e.g.
 * "250 2.0.0 journaled" or "451 4.3.0 journal write failed" (decoded:
 * pointers into the `strings` buffer given to the decoder). */
struct ipc_result {
	uint64_t txn;
	uint16_t n;
	const char *text[IPC_RCPT_MAX];
};

/* IPC_STATUS: what the listener should say before DATA. */
struct ipc_status {
	bool accepting;                 /* false: 452/421 to new transactions */
	char text[IPC_TEXT_MAX];        /* the reply to give when not accepting */
};

/* IPC_EVENT: a line for the store's log; alarm says raise an alarm. */
struct ipc_event {
	bool alarm;
	char text[IPC_TEXT_MAX];
};

/* Each appends a whole frame (length prefix included) to out. */
int ipc_deliver_encode(const struct ipc_deliver *d, struct abuf *out);
int ipc_result_encode(const struct ipc_result *r, struct abuf *out);
int ipc_status_encode(const struct ipc_status *s, struct abuf *out);
int ipc_event_encode(const struct ipc_event *e, struct abuf *out);

/* Decode a frame's payload (after the type byte).  Strings are copied into
 * `strings` (reset first) for deliver; 0 or ARCA_EFORMAT. */
int ipc_deliver_decode(const uint8_t *p, size_t len, struct ipc_deliver *d,
		       struct abuf *strings);
int ipc_result_decode(const uint8_t *p, size_t len, struct ipc_result *r,
		      struct abuf *strings);
int ipc_status_decode(const uint8_t *p, size_t len, struct ipc_status *s);
int ipc_event_decode(const uint8_t *p, size_t len, struct ipc_event *e);

/* Buffered frame reader for a non-blocking fd. */
struct ipc_reader {
	struct abuf buf;
	size_t off;                     /* start of unconsumed bytes */
	size_t max;                     /* largest frame accepted */
};
void ipc_reader_init(struct ipc_reader *rd, size_t max);
void ipc_reader_release(struct ipc_reader *rd);
/* Reads what the fd has.  Returns 1 if bytes came, 0 on EAGAIN, -1 at EOF
 * or error (errno set; 0 at EOF). */
int ipc_reader_fill(struct ipc_reader *rd, int fd);
/* Next complete frame: 1 and *type_r, *p_r, *len_r (valid until the next
 * fill), 0 if none yet, ARCA_EFORMAT for a frame over the limit or empty. */
int ipc_reader_next(struct ipc_reader *rd, uint8_t *type_r, const uint8_t **p_r,
		    size_t *len_r);

/* Writes all of b to a blocking-or-not fd (waits with poll on EAGAIN). */
int ipc_write_all(int fd, const void *p, size_t n);

#endif
