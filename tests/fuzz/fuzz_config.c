/* Fuzz the repository `config` parser (docs/format/repository.md). */
#include <stddef.h>
#include <stdint.h>

#include "repo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arca_public_keys pub;
	struct arca_err err = { 0 };
	repo_config_parse(data, size, &pub, &err);
	return 0;
}
