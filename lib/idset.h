/*
 * idset.h - a set of 32-byte ids (object ids, message keys): open
 * addressing on the id's first 8 bytes (ids are hashes, so that spreads).
 * Zero-initialise (IDSET_INIT) before use; idset_free releases.
 */
#ifndef ARCA_IDSET_H
#define ARCA_IDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

struct idset {
	uint8_t (*ids)[ARCA_ID_LEN];
	uint8_t *used;
	size_t count, cap;
};
#define IDSET_INIT { NULL, NULL, 0, 0 }

bool idset_has(const struct idset *s, const uint8_t id[ARCA_ID_LEN]);
/* Adds id (already present: nothing changes).  0 or ARCA_ENOMEM. */
int idset_add(struct idset *s, const uint8_t id[ARCA_ID_LEN]);
/* Empties the set, keeping its memory. */
void idset_clear(struct idset *s);
void idset_free(struct idset *s);

#endif
