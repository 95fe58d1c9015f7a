#include "arca_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *arca_strerror(int code)
{
	switch (code) {
	case ARCA_OK: return "success";
	case ARCA_EIO: return "I/O error";
	case ARCA_ENOMEM: return "out of memory";
	case ARCA_ECORRUPT: return "stored data is damaged";
	case ARCA_EFORMAT: return "malformed input";
	case ARCA_EEXIST: return "already exists";
	case ARCA_ENOENT: return "not found";
	case ARCA_EKEY: return "wrong key or passphrase";
	case ARCA_EVERSION: return "unsupported format version";
	case ARCA_ELIMIT: return "limit exceeded";
	case ARCA_EINVAL: return "invalid argument";
	case ARCA_ENOSPC: return "no space left";
	case ARCA_EBUSY: return "busy";
	case ARCA_ESTATE: return "invalid state";
	}
	return "unknown error";
}

static int vset(struct arca_err *err, int code, int errno_val, const char *fmt,
		va_list ap)
{
	if (err == NULL || err->code != 0)
		return code;
	err->code = code;
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (n < 0)
		err->msg[0] = '\0';
	if (errno_val != 0) {
		size_t len = strlen(err->msg);
		snprintf(err->msg + len, sizeof(err->msg) - len, ": %s",
			 strerror(errno_val));
	}
	return code;
}

int arca_err_set(struct arca_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset(err, code, 0, fmt, ap);
	va_end(ap);
	return code;
}

int arca_err_errno(struct arca_err *err, int code, int errno_val,
		   const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset(err, code, errno_val, fmt, ap);
	va_end(ap);
	return code;
}

void arca_err_clear(struct arca_err *err)
{
	if (err != NULL) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}

int arca_errno_code(int errno_val)
{
	if (errno_val == ENOSPC || errno_val == EDQUOT)
		return ARCA_ENOSPC;
	if (errno_val == ENOMEM)
		return ARCA_ENOMEM;
	return ARCA_EIO;
}
