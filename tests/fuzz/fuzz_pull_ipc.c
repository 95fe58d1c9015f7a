/*
 * Fuzz the decoders of the pull's IPC frames (lib/imap/pull_ipc.c): the
 * store process decodes what the network process sends as hostile input.
 * The first byte picks the decoder.  A FINISH state that decodes must
 * encode again and decode to the same snapshot digest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pull_ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t which = data[0] % 8;
	data++;
	size--;
	switch (which) {
	case 0: {
		struct snapshot *s = NULL;
		bool gone;
		uint64_t examined;
		if (pull_ipc_decode_finish(data, size, "a@b", &s, &gone, &examined) != 0)
			return 0;
		if (s == NULL) {
			if (!gone)
				abort();
			return 0;
		}
		struct abuf f = ABUF_INIT;
		if (pull_ipc_encode_finish(&f, s, false, examined) == 0) {
			struct snapshot *t = NULL;
			bool g2;
			uint64_t e2;
			if (f.len < 5 || pull_ipc_decode_finish(f.data + 5, f.len - 5, "a@b", &t, &g2, &e2) != 0 ||
			    t == NULL || t->nfolders != s->nfolders || t->nsieve != s->nsieve ||
			    t->nsubscriptions != s->nsubscriptions || e2 != examined)
				abort();
			snapshot_free(t);
		}
		abuf_release(&f);
		snapshot_free(s);
		return 0;
	}
	case 1: {
		struct pull_prev_blobs b;
		if (pull_ipc_decode_prev(data, size, &b) == 0)
			pull_prev_blobs_release(&b);
		return 0;
	}
	case 2: {
		struct pull_ipc_put put;
		(void)pull_ipc_decode_put(data, size, &put);
		return 0;
	}
	case 3: {
		char guid[256];
		uint32_t sz;
		if (pull_ipc_decode_known(data, size, guid, &sz) == 0 && strlen(guid) > 255)
			abort();
		return 0;
	}
	case 4: {
		int known;
		struct pull_content c;
		(void)pull_ipc_decode_content(data, size, &known, &c);
		return 0;
	}
	case 5: {
		int code;
		char msg[ARCA_ERR_MSG_MAX];
		if (pull_ipc_decode_fail(data, size, &code, msg, sizeof(msg)) == 0 && code >= 0)
			abort();
		return 0;
	}
	case 6: {
		char what[1100];
		(void)pull_ipc_decode_warn(data, size, what, sizeof(what));
		return 0;
	}
	default: {
		uint32_t i;
		(void)pull_ipc_decode_begin(data, size, &i);
		return 0;
	}
	}
}
