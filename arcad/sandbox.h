/* sandbox.h - seccomp for the listener.  Needs no_new_privs first.
 * Returns 0 when applied, 1 when this build can't apply it (sanitizers, an
 * architecture without a table here), -1 on failure (errno set). */
#ifndef ARCAD_SANDBOX_H
#define ARCAD_SANDBOX_H
int sandbox_listener(void);
#endif
