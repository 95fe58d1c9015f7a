/*
 * Fuzz arcad's channel between the listener and the store
 * (docs/protocol/ipc.md): the store decodes what a possibly compromised
 * listener sends, the listener what the store sends.  The input is a byte
 * stream of frames, read as the processes read them.  Accepted DELIVER and
 * RESULT frames must encode back to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ipc_deliver d;
static struct ipc_result r;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fds[2];
	if (pipe(fds) != 0)
		abort();
	if (size > 60000)
		size = 60000;   /* what a pipe holds without blocking */
	if (write(fds[1], data, size) != (ssize_t)size)
		abort();
	close(fds[1]);
	struct ipc_reader rd;
	ipc_reader_init(&rd, 1u << 20);
	struct abuf strings = ABUF_INIT, again = ABUF_INIT;
	while (ipc_reader_fill(&rd, fds[0]) > 0) {
		uint8_t type;
		const uint8_t *p;
		size_t len;
		int k;
		while ((k = ipc_reader_next(&rd, &type, &p, &len)) == 1) {
			abuf_reset(&again);
			if (type == IPC_DELIVER && ipc_deliver_decode(p, len, &d, &strings) == 0) {
				if (ipc_deliver_encode(&d, &again) != 0 || again.len != len + 5 ||
				    memcmp(again.data + 5, p, len) != 0)
					abort();
			} else if (type == IPC_RESULT && ipc_result_decode(p, len, &r, &strings) == 0) {
				for (size_t i = 0; i < r.n; i++)
					if (strlen(r.text[i]) < 4 || strchr(r.text[i], '\n') || strchr(r.text[i], '\r'))
						abort();
				if (ipc_result_encode(&r, &again) != 0 || again.len != len + 5 ||
				    memcmp(again.data + 5, p, len) != 0)
					abort();
			} else if (type == IPC_STATUS) {
				struct ipc_status st;
				(void)ipc_status_decode(p, len, &st);
			} else if (type == IPC_EVENT) {
				struct ipc_event ev;
				(void)ipc_event_decode(p, len, &ev);
			}
		}
		if (k < 0)
			break;
	}
	close(fds[0]);
	ipc_reader_release(&rd);
	abuf_release(&strings);
	abuf_release(&again);
	return 0;
}
