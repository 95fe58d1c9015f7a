/* export's writers on hostile names and bytes (lib/export.c): the input as
 * a folder name (the path never climbs out: no "." or ".." level, no
 * control character, no level with a reserved suffix), and as a message fed
 * to the mboxrd quoting in two chunkings that must give the same bytes,
 * which unquote back to the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void unquote(const uint8_t *p, size_t n, struct abuf *out)
{
	/* mboxrd: a line that is '>'+ "From " loses one '>' */
	size_t i = 0;
	while (i < n) {
		size_t e = i;
		while (e < n && p[e] != '\n')
			e++;
		size_t k = i;
		while (k < e && p[k] == '>')
			k++;
		size_t skip = (k > i && e - k >= 5 && memcmp(p + k, "From ", 5) == 0) ? 1 : 0;
		abuf_add(out, p + i + skip, (e < n ? e + 1 : e) - i - skip);
		i = e + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *name = malloc(size + 1);
	if (name == NULL)
		return 0;
	memcpy(name, data, size);
	name[size] = '\0';
	struct abuf p = ABUF_INIT;
	if (export_folder_path(name, &p) == 0) {
		const char *s = (const char *)p.data;
		for (size_t i = 0; i < p.len; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
				abort();
		const char *lv = s;
		for (;;) {
			const char *e = strchr(lv, '/');
			size_t n = e ? (size_t)(e - lv) : strlen(lv);
			if (n == 0 || lv[0] == '.')
				abort();
			if (e == NULL)
				break;
			lv = e + 1;
		}
	}
	abuf_release(&p);
	free(name);

	struct abuf a = ABUF_INIT, b = ABUF_INIT, u = ABUF_INIT;
	struct mboxrd q;
	mboxrd_init(&q);
	mboxrd_feed(&q, data, size, &a);
	mboxrd_finish(&q, &a);
	mboxrd_init(&q);
	size_t step = size > 0 ? (size_t)data[0] % 7 + 1 : 1;
	for (size_t i = 0; i < size; i += step)
		mboxrd_feed(&q, data + i, size - i < step ? size - i : step, &b);
	mboxrd_finish(&q, &b);
	if (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0))
		abort();
	unquote(a.data, a.len, &u);
	if (u.len != size || (size && memcmp(u.data, data, size) != 0))
		abort();
	abuf_release(&a);
	abuf_release(&b);
	abuf_release(&u);
	return 0;
}
