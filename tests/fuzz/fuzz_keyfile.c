/*
 * Fuzz keyfile_read: the input is written to a temporary file and read with
 * a passphrase that is never the right one, so every input must fail
 * cleanly.  keyfile_read runs Argon2id with the cost recorded in the file
 * (capped at 64 passes and 4 GiB); to keep each run to microseconds this
 * target only accepts inputs whose cost fields are the minimum (1 pass,
 * 8 KiB) whenever the file is long enough to reach the KDF at all.
 */
#include <fcntl.h>
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KF_LEN 165     /* docs/format/keys.md */
#define KF_OPS_OFF 77
#define KF_MEM_OFF 85

static char path[256];

static void setup(void)
{
	if (path[0] != '\0')
		return;
	if (acrypto_setup() != 0)
		abort();
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(path, sizeof(path), "%s/arca-fuzz-keyfile-%ld", base, (long)getpid());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	if (size == KF_LEN &&
	    (get_u64le(data + KF_OPS_OFF) != crypto_pwhash_OPSLIMIT_MIN ||
	     get_u64le(data + KF_MEM_OFF) != crypto_pwhash_MEMLIMIT_MIN))
		return -1; /* too slow to derive: not added to the corpus */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	if (size > 0 && write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	struct arca_restore_key *rk = NULL;
	struct arca_err err = { 0 };
	int rc = keyfile_read(path, "not the passphrase", &rk, &err);
	unlink(path);
	if (rc == 0 || rk != NULL || err.code != rc || err.msg[0] == '\0')
		abort();
	return 0;
}
