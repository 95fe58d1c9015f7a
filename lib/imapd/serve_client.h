/*
 * serve_client.h - the vault view of a serve-imap session process: a
 * struct vault_view_ops whose every call is a request to the keeper over
 * the session's channel (serve_proto.h).  The session process holds no
 * key and no repository; what it can get is what the keeper answers for
 * the account whose login the keeper checked.
 *
 * Not thread-safe (one session, one channel).  The keeper's answers are
 * decoded strictly; one that breaks the protocol leaves the view broken
 * (every later call fails with ARCA_EIO).
 */
#ifndef ARCA_SERVE_CLIENT_H
#define ARCA_SERVE_CLIENT_H

#include "arca_err.h"
#include "vault_view.h"

struct serve_client;

/* A view over channel fd (taken over: closed by the view's free()). */
struct serve_client *serve_client_new(int fd);

/* login: ARCA_EKEY wrong, ARCA_EBUSY throttled, ARCA_ENOENT the account
 * can't be served, ARCA_ESTATE already bound, ARCA_EIO channel gone.
 * folders/open/body before a login: ARCA_ESTATE (never sent: the keeper
 * would end the channel).  open of a folder that isn't selectable and
 * body of a UID that isn't there: ARCA_ENOENT. */
extern const struct vault_view_ops serve_client_ops;

#endif
