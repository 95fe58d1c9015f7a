/*
 * vault_view.c - what the view types need besides the ops table: releasing
 * a mailbox that open() filled (the session calls it, whichever view filled
 * it: serve_client.c or the tests' in-memory view).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

void vv_store_result_release(struct vv_store_result *r)
{
	if (r == NULL)
		return;
	free(r->msgs);
	for (size_t i = 0; i < r->nkeywords; i++)
		free(r->keywords[i]);
	free(r->keywords);
	free(r->modified);
	memset(r, 0, sizeof(*r));
}

bool vv_keyword_ok(const char *k)
{
	if (k == NULL || *k == '\0' || *k == '\\' || strlen(k) > 255)
		return false;
	for (; *k; k++) {
		unsigned char ch = (unsigned char)*k;
		/* RFC 3501 ATOM-CHAR */
		if (ch <= 0x20 || ch >= 0x7f || strchr("(){%*\"\\]", ch) != NULL)
			return false;
	}
	return true;
}

int vv_store_keywords(char **kw, size_t *nkw, const struct vv_store *req, uint64_t *mask_r)
{
	uint64_t mask = 0;
	size_t n = *nkw;
	for (size_t i = 0; i < req->nkeywords; i++) {
		size_t j = 0;
		while (j < n && (kw[j] == NULL || strcasecmp(kw[j], req->keywords[i]) != 0))
			j++;
		if (j == n && req->mode == VV_STORE_REMOVE)
			continue;     /* removing a name the folder doesn't have: nothing */
		if (j == n) {
			if (n >= VV_KEYWORDS_MAX) {
				for (size_t k = *nkw; k < n; k++) {
					free(kw[k]);
					kw[k] = NULL;
				}
				return ARCA_ELIMIT;
			}
			if ((kw[n] = strdup(req->keywords[i])) == NULL) {
				for (size_t k = *nkw; k < n; k++) {
					free(kw[k]);
					kw[k] = NULL;
				}
				return ARCA_ENOMEM;
			}
			n++;
		}
		mask |= UINT64_C(1) << j;
	}
	*nkw = n;
	*mask_r = mask;
	return 0;
}

void vv_store_one(const struct vv_store *req, uint64_t mask, uint32_t *flags, uint64_t *keywords)
{
	switch (req->mode) {
	case VV_STORE_ADD:
		*flags |= req->flags;
		*keywords |= mask;
		break;
	case VV_STORE_REMOVE:
		*flags &= ~req->flags;
		*keywords &= ~mask;
		break;
	default:
		*flags = req->flags;
		*keywords = mask;
		break;
	}
}
