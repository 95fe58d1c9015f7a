#include "faultinject.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

static int configured = -1;               /* -1: not read yet */
static unsigned long target[FAULT_KIND_COUNT];
static unsigned long seen[FAULT_KIND_COUNT];

static void configure(void)
{
	static const char *names[FAULT_KIND_COUNT] = { "write", "fsync", "crash" };
	configured = 0;
	const char *spec = getenv("ARCA_FAULT");
	if (spec == NULL || *spec == '\0')
		return;
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
	if (++seen[kind] != target[kind])
		return false;
	errno = kind == FAULT_WRITE ? ENOSPC : EIO;   /* what the callers report */
	return true;
}

void fault_crash_point(void)
{
	if (fault_hit(FAULT_CRASH))
		kill(getpid(), SIGKILL);
}
