/*
 * maildir_name.c - "<base>:2,<info>" file names.
 */
#include "maildir.h"

#include <stdlib.h>
#include <string.h>

#include "mail_private.h"
#include "banned.h"

int maildir_name_parse(const char *filename, struct maildir_name *out,
		       struct arca_err *err)
{
	memset(out, 0, sizeof(*out));
	size_t len = strnlen(filename, MAILDIR_NAME_MAX + 1);
	if (len > MAILDIR_NAME_MAX)
		return arca_err_set(err, ARCA_EFORMAT, "maildir file name longer than %d bytes",
				    MAILDIR_NAME_MAX);
	/* Dovecot splits at the first ':'; so do we, so that both agree on
	 * the base that dovecot-uidlist records. */
	const char *colon = memchr(filename, ':', len);
	size_t base_len = colon ? (size_t)(colon - filename) : len;
	if (!mail_base_valid(filename, base_len))
		return arca_err_set(err, ARCA_EFORMAT, "invalid maildir base name");
	uint32_t flags = 0, keywords = 0;
	if (colon != NULL) {
		if (colon[1] != '2' || colon[2] != ',')
			return arca_err_set(err, ARCA_EFORMAT,
					    "maildir file name with info other than \":2,\"");
		for (const char *p = colon + 3; *p != '\0'; p++) {
			if (*p >= 'A' && *p <= 'Z')
				flags |= MAILDIR_FLAG(*p);
			else if (*p >= 'a' && *p <= 'z')
				keywords |= UINT32_C(1) << (*p - 'a');
			else
				return arca_err_set(err, ARCA_EFORMAT,
						    "maildir file name info has byte 0x%02x",
						    (unsigned char)*p);
		}
	}
	out->base = mail_strndup(filename, base_len);
	if (out->base == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	out->flags = flags;
	out->keywords = keywords;
	out->has_info = colon != NULL;
	return 0;
}

void maildir_name_release(struct maildir_name *n)
{
	free(n->base);
	memset(n, 0, sizeof(*n));
}

int maildir_name_format(const char *base, uint32_t flags, uint32_t keywords,
			struct abuf *out)
{
	abuf_reset(out);
	size_t n = strnlen(base, MAILDIR_NAME_MAX + 1);
	if (!mail_base_valid(base, n) || (flags >> 26) != 0 || (keywords >> 26) != 0)
		return ARCA_EINVAL;
	int rc = abuf_add(out, base, n);
	if (rc == 0)
		rc = abuf_add(out, ":2,", 3);
	for (int i = 0; i < 26 && rc == 0; i++)
		if (flags & (UINT32_C(1) << i))
			rc = abuf_add_u8(out, (uint8_t)('A' + i));
	for (int i = 0; i < 26 && rc == 0; i++)
		if (keywords & (UINT32_C(1) << i))
			rc = abuf_add_u8(out, (uint8_t)('a' + i));
	if (rc == 0 && out->len > MAILDIR_NAME_MAX)
		rc = ARCA_EINVAL; /* no file system would take it */
	if (rc == 0)
		rc = abuf_cstr(out);
	return rc;
}

bool maildir_name_size(const char *base, uint64_t *size_r)
{
	const char *p = base;
	while ((p = strstr(p, ",S=")) != NULL) {
		p += 3;
		uint64_t v = 0;
		size_t digits = 0;
		bool overflow = false;
		while (*p >= '0' && *p <= '9') {
			unsigned d = (unsigned)(*p - '0');
			if (v > (UINT64_MAX - d) / 10)
				overflow = true;
			else
				v = v * 10 + d;
			digits++;
			p++;
		}
		if (digits > 0 && digits <= 20 && !overflow &&
		    (*p == '\0' || *p == ',' || *p == ':')) {
			*size_r = v;
			return true;
		}
	}
	return false;
}
