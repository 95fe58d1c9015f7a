#include "faultinject.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

static int configured = -1;               /* -1: not read yet */
static unsigned long target[FAULT_KIND_COUNT];
static unsigned long seen[FAULT_KIND_COUNT];   /* atomic: points are passed by several threads */
static char stop_at[64];                       /* "stop:NAME" */
static int stopped;

static void configure(void)
{
	static const char *names[FAULT_KIND_COUNT] = { "write", "fsync", "crash" };
	configured = 0;
	const char *spec = getenv("ARCA_FAULT");
	if (spec == NULL || *spec == '\0')
		return;
	if (strncmp(spec, "stop:", 5) == 0 && strlen(spec + 5) < sizeof(stop_at)) {
		memcpy(stop_at, spec + 5, strlen(spec + 5) + 1);
		configured = 1;
		return;
	}
	for (int k = 0; k < FAULT_KIND_COUNT; k++) {
		size_t n = strlen(names[k]);
		if (strncmp(spec, names[k], n) == 0 && spec[n] == ':') {
			target[k] = strtoul(spec + n + 1, NULL, 10);
			configured = 1;
		}
	}
}

bool fault_hit(enum fault_kind kind)
{
	if (configured < 0)
		configure();
	if (configured == 0 || target[kind] == 0)
		return false;
	if (__atomic_add_fetch(&seen[kind], 1, __ATOMIC_RELAXED) != target[kind])
		return false;
	errno = kind == FAULT_WRITE ? ENOSPC : EIO;   /* what the callers report */
	return true;
}

void fault_crash_point(void)
{
	if (fault_hit(FAULT_CRASH))
		kill(getpid(), SIGKILL);
}

void fault_stop_point(const char *name)
{
	if (configured < 0)
		configure();
	if (configured == 0 || stop_at[0] == '\0' || strcmp(stop_at, name) != 0 ||
	    __atomic_exchange_n(&stopped, 1, __ATOMIC_RELAXED) != 0)
		return;
	/* raise: sent to this thread (tgkill), which stops at once with the
	 * rest of the process; sent to the process, another thread may take
	 * it while this one runs on past the point */
	raise(SIGSTOP);
}
