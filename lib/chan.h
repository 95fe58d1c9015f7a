/*
 * chan.h - the frames of Arca's internal channels between two processes
 * (the pull's, lib/imap/pull_ipc.c, and serve-imap's, lib/imapd/serve_proto.c;
 * docs/protocol/pull-ipc.md, serve.md): u32le length of what follows, one
 * type byte, the payload.  Each protocol decodes its payloads itself; this
 * is only the framing both share, so a length check lives in one place.
 */
#ifndef ARCA_CHAN_H
#define ARCA_CHAN_H

#include <stdint.h>

#include "buf.h"

/* Start a frame of `type` in out (reset): room for the length, the type. */
int chan_frame_start(struct abuf *out, uint8_t type);
/* Fill in the length; ARCA_ELIMIT when type + payload exceed max. */
int chan_frame_end(struct abuf *out, uint32_t max);

/* Write the whole frame (send with MSG_NOSIGNAL on a socket, so a gone
 * peer is an error, not SIGPIPE).  0, or ARCA_EIO with errno kept. */
int chan_send(int fd, const struct abuf *frame);
/* Read one frame: 0 with *type_r and the payload (without the type);
 * ARCA_ENOENT at a clean end before a frame; ARCA_EIO when the stream ends
 * or fails inside one (errno kept); ARCA_EFORMAT for a length of 0 or over
 * max; ARCA_ENOMEM. */
int chan_recv(int fd, uint32_t max, uint8_t *type_r, struct abuf *payload);

#endif
