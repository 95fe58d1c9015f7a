/*
 * faultinject.h - failure injection for tests (Dovecot's fs-randomfail,
 * SQLite's test6.c).  ARCA_FAULT="write:N" makes the N-th write fail with
 * ENOSPC, "fsync:N" the N-th fsync, "crash:N" kills the process (SIGKILL) at
 * the N-th crash point, "stop:NAME" stops it (SIGSTOP) the first time it
 * passes the stop point NAME, so a test can change the world meanwhile and
 * let it go on (SIGCONT).  Unset, every check is one predictable branch.
 */
#ifndef ARCA_FAULTINJECT_H
#define ARCA_FAULTINJECT_H

#include <stdbool.h>

enum fault_kind { FAULT_WRITE, FAULT_FSYNC, FAULT_CRASH, FAULT_KIND_COUNT };

/* true when this call is the one configured to fail. */
bool fault_hit(enum fault_kind kind);

/* A point where a crash test may kill the process (FAULT_CRASH). */
void fault_crash_point(void);

/* A named point where a test may stop the process ("stop:NAME"). */
void fault_stop_point(const char *name);

#endif
