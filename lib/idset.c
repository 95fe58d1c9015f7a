#include "idset.h"

#include <stdlib.h>
#include <string.h>

#include "arca_err.h"
#include "buf.h"
#include "banned.h"

static size_t idset_slot(const uint8_t id[ARCA_ID_LEN], size_t cap)
{
	return (size_t)get_u64le(id) & (cap - 1);
}

bool idset_has(const struct idset *s, const uint8_t id[ARCA_ID_LEN])
{
	if (s->cap == 0)
		return false;
	for (size_t i = idset_slot(id, s->cap);; i = (i + 1) & (s->cap - 1)) {
		if (!s->used[i])
			return false;
		if (memcmp(s->ids[i], id, ARCA_ID_LEN) == 0)
			return true;
	}
}

int idset_add(struct idset *s, const uint8_t id[ARCA_ID_LEN])
{
	if (idset_has(s, id))
		return 0;
	if ((s->count + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		struct idset n = { calloc(cap, ARCA_ID_LEN), calloc(cap, 1), 0, cap };
		if (n.ids == NULL || n.used == NULL) {
			free(n.ids);
			free(n.used);
			return ARCA_ENOMEM;
		}
		for (size_t i = 0; i < s->cap; i++)
			if (s->used[i])
				idset_add(&n, s->ids[i]);
		free(s->ids);
		free(s->used);
		*s = n;
	}
	size_t i = idset_slot(id, s->cap);
	while (s->used[i])
		i = (i + 1) & (s->cap - 1);
	memcpy(s->ids[i], id, ARCA_ID_LEN);
	s->used[i] = 1;
	s->count++;
	return 0;
}

void idset_clear(struct idset *s)
{
	if (s->cap)
		memset(s->used, 0, s->cap);
	s->count = 0;
}

void idset_free(struct idset *s)
{
	free(s->ids);
	free(s->used);
	memset(s, 0, sizeof(*s));
}
