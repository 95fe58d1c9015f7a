/*
 * imapd_session.h - one read-only IMAP4rev1 session over the vault
 * (`arca serve-imap`): greeting, login through the vault view, then every
 * command a syncing client uses, answered from one snapshot with the
 * original UIDVALIDITYs, UIDs, MODSEQs, flags, keywords, dates and bytes.
 * Writes are refused.  Runs in the network-facing process (no key).
 */
#ifndef ARCA_IMAPD_SESSION_H
#define ARCA_IMAPD_SESSION_H

#include <stdbool.h>

#include "imapd_io.h"
#include "vault_view.h"

struct imapd_session_opts {
	const char *greeting_name;    /* "Arca vault" in "* OK [CAPABILITY ...] ..." */
	int idle_timeout_ms;          /* no command for this long: BYE (0: 30 min) */
	int login_timeout_ms;         /* not logged in after this long: BYE (0: 60 s) */
	unsigned max_bad;             /* BAD answers before BYE (0: 20) */
	/* Called with a line for the log (login ok/failed, logout, errors), or NULL. */
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
};

/* Serve until LOGOUT, end of stream, timeout or a fatal error.  Returns 0
 * after LOGOUT or the client's end of stream, else an ARCA_E* code.  Does
 * not free the view. */
int imapd_session_run(const struct imapd_io *io, const struct vault_view_ops *vv, void *vctx,
		      const struct imapd_session_opts *o);

#endif
