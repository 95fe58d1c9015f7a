/*
 * imapd_io.h - the byte stream under an IMAP session: a plain socket or
 * TLS (serve_net.c), or a pipe in the tests.  The session buffers its
 * answers and calls write() with whole chunks.
 */
#ifndef ARCA_IMAPD_IO_H
#define ARCA_IMAPD_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct imapd_io {
	/* Up to n bytes: > 0 read, 0 end of stream, < 0 error or timeout
	 * (the session then ends without a word). */
	ssize_t (*read)(void *ctx, void *buf, size_t n);
	/* All n bytes, or < 0. */
	int (*write)(void *ctx, const void *buf, size_t n);
	/* Wait for input (buffered TLS bytes count): 1 readable, 0 after
	 * timeout_ms, < 0 error.  For IDLE's keepalives. */
	int (*wait)(void *ctx, int timeout_ms);
	/* NULL when STARTTLS isn't offered.  Called right after the session
	 * wrote "OK Begin TLS negotiation now"; 0 when the handshake is done
	 * and the same io now carries TLS.  Bytes the client sent after its
	 * STARTTLS line and before the handshake are an error (injection). */
	int (*starttls)(void *ctx);
	bool tls;                 /* already encrypted (implicit TLS, or after starttls) */
	bool loopback;            /* peer is 127.0.0.0/8 or ::1 (LOGIN allowed without TLS) */
	void *ctx;
};

#endif
