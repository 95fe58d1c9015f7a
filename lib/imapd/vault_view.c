/*
 * vault_view.c - what the view types need besides the ops table: releasing
 * a mailbox that open() filled (the session calls it, whichever view filled
 * it: serve_client.c or the tests' in-memory view).
 */
#include <stdlib.h>
#include <string.h>

#include "vault_view.h"
#include "banned.h"

void vv_mailbox_release(struct vv_mailbox *mb)
{
	if (mb == NULL)
		return;
	free(mb->msgs);
	for (size_t i = 0; i < mb->nkeywords; i++)
		free(mb->keywords[i]);
	free(mb->keywords);
	memset(mb, 0, sizeof(*mb));
}
