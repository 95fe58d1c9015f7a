/*
 * journal_addr.c - journal recipient -> account ("a=example.test@journal.invalid"
 * -> "a@example.test"), docs/protocol/lmtp.md "Journal addresses".
 */
#include "lmtp.h"

#include <string.h>

#include "lmtp_private.h"
#include "banned.h"

static const char out_prefix[] = "out.";
#define OUT_PREFIX_LEN (sizeof(out_prefix) - 1)

int journal_addr_map(const char *rcpt, const char *journal_domain,
		     char *account_r, size_t cap, enum journal_dir *dir_r,
		     struct arca_err *err)
{
	if (account_r != NULL && cap > 0)
		account_r[0] = '\0';
	if (rcpt == NULL || journal_domain == NULL || account_r == NULL ||
	    cap == 0 || dir_r == NULL)
		return arca_err_set(err, ARCA_EINVAL, "journal address: NULL argument");
	size_t jl = strlen(journal_domain);
	if (jl + OUT_PREFIX_LEN > LMTP_DOMAIN_MAX ||
	    !lmtp_domain_ok(journal_domain, jl, true) || journal_domain[0] == '[')
		return arca_err_set(err, ARCA_EINVAL,
				    "journal address: the configured journal domain is not a host name");

	size_t rl = strnlen(rcpt, LMTP_ADDR_MAX + 1);
	if (rl > LMTP_ADDR_MAX)
		return arca_err_set(err, ARCA_ELIMIT,
				    "journal address: longer than %d bytes", LMTP_ADDR_MAX);
	const char *at = memrchr(rcpt, '@', rl);
	if (at == NULL)
		return arca_err_set(err, ARCA_ENOENT,
				    "journal address: no domain (not a journal address)");
	const char *jd = at + 1;
	size_t jdl = rl - (size_t)(jd - rcpt);
	enum journal_dir dir;
	if (jdl == jl && lmtp_ci_eq(jd, journal_domain, jl))
		dir = JOURNAL_IN;
	else if (jdl == jl + OUT_PREFIX_LEN &&
		 lmtp_ci_eq(jd, out_prefix, OUT_PREFIX_LEN) &&
		 lmtp_ci_eq(jd + OUT_PREFIX_LEN, journal_domain, jl))
		dir = JOURNAL_OUT;
	else
		return arca_err_set(err, ARCA_ENOENT,
				    "journal address: domain is not %s or out.%s",
				    journal_domain, journal_domain);

	size_t ll = (size_t)(at - rcpt);
	const char *eq = memrchr(rcpt, '=', ll);
	if (eq == NULL)
		return arca_err_set(err, ARCA_ENOENT,
				    "journal address: no '=' between local part and domain");
	size_t local_len = (size_t)(eq - rcpt);
	const char *dom = eq + 1;
	size_t dom_len = ll - local_len - 1;
	if (local_len == 0)
		return arca_err_set(err, ARCA_EFORMAT, "journal address: empty local part");
	if (local_len > LMTP_LOCAL_MAX)
		return arca_err_set(err, ARCA_EFORMAT,
				    "journal address: local part longer than %d bytes",
				    LMTP_LOCAL_MAX);
	if (!lmtp_text_ok((const uint8_t *)rcpt, local_len))
		return arca_err_set(err, ARCA_EFORMAT,
				    "journal address: control character or bad UTF-8 in the local part");
	if (dom_len == 0)
		return arca_err_set(err, ARCA_EFORMAT, "journal address: empty domain");
	if (dom_len > LMTP_DOMAIN_MAX || !lmtp_domain_ok(dom, dom_len, true))
		return arca_err_set(err, ARCA_EFORMAT,
				    "journal address: the account's domain is not a host name or address literal");
	if (local_len + 1 + dom_len >= cap)
		return arca_err_set(err, ARCA_ELIMIT,
				    "journal address: account name longer than %zu bytes",
				    cap - 1);

	memcpy(account_r, rcpt, local_len);
	char *d = account_r + local_len;
	*d++ = '@';
	for (size_t i = 0; i < dom_len; i++) {
		char c = dom[i];
		d[i] = c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
	}
	/* the literal tag in its RFC 5321 spelling: [IPv6:...] */
	if (dom_len > 6 && lmtp_ci_eq(d, "[ipv6:", 6))
		memcpy(d, "[IPv6:", 6);
	d[dom_len] = '\0';
	*dir_r = dir;
	return 0;
}
