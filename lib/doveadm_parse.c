#include "doveadm_parse.h"

#include <string.h>

#include "arca_err.h"
#include "banned.h"

int dva_split_lines(char *buf, size_t len, char **lines, size_t max, size_t *n_r)
{
	*n_r = 0;
	if (buf == NULL || len == 0)
		return 0;
	if (memchr(buf, '\0', len) != NULL)
		return ARCA_EFORMAT;
	buf[len] = '\0';
	size_t n = 0;
	char *p = buf, *end = buf + len;
	while (p < end) {
		char *e = memchr(p, '\n', (size_t)(end - p));
		char *stop = e ? e : end;
		if ((size_t)(stop - p) > DVA_LINE_MAX)
			return ARCA_ELIMIT;
		*stop = '\0';
		if (stop > p && stop[-1] == '\r')
			stop[-1] = '\0';
		if (*p) {
			if (n == max)
				return ARCA_ELIMIT;
			lines[n++] = p;
		}
		p = stop + 1;
	}
	*n_r = n;
	return 0;
}

/* "KEY=DECIMAL" in p[0..len): *key_r its index in keys[], *v the value. */
static bool field(const char *p, size_t len, const char *const *keys, size_t nkeys, size_t *key_r,
		  uint64_t *v)
{
	const char *eq = memchr(p, '=', len);
	if (eq == NULL)
		return false;
	size_t kl = (size_t)(eq - p);
	*key_r = nkeys;
	for (size_t i = 0; i < nkeys; i++)
		if (strlen(keys[i]) == kl && memcmp(keys[i], p, kl) == 0)
			*key_r = i;
	if (*key_r == nkeys)
		return false;
	const char *q = eq + 1, *end = p + len;
	if (q == end)
		return false;
	uint64_t x = 0;
	for (; q < end; q++) {
		if (*q < '0' || *q > '9')
			return false;
		unsigned d = (unsigned)(*q - '0');
		if (x > (UINT64_MAX - d) / 10)
			return false;
		x = x * 10 + d;
	}
	*v = x;
	return true;
}

int dva_status_line(char *line, struct dva_status *st)
{
	static const char *const keys[] = { "uidvalidity", "uidnext", "highestmodseq", "messages" };
	uint64_t vals[4] = { 0 };
	bool seen[4] = { false };
	size_t end = strlen(line);
	/* the four fields from the end: each after the last space before it */
	for (int i = 0; i < 4; i++) {
		size_t sp = end;
		while (sp > 0 && line[sp - 1] != ' ')
			sp--;
		if (sp == 0)
			return ARCA_EFORMAT;   /* no name before the fields */
		size_t k;
		uint64_t v;
		if (!field(line + sp, end - sp, keys, 4, &k, &v) || seen[k])
			return ARCA_EFORMAT;
		seen[k] = true;
		vals[k] = v;
		end = sp - 1;   /* the space */
	}
	if (end == 0)
		return ARCA_EFORMAT;
	line[end] = '\0';
	st->uidvalidity = vals[0];
	st->uidnext = vals[1];
	st->highestmodseq = vals[2];
	st->messages = vals[3];
	return 0;
}

int dva_status_find(char *const *names, const struct dva_status *st, size_t n, const char *box,
		    struct dva_status *out)
{
	bool found = false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], box) != 0)
			continue;
		if (found)
			return ARCA_ECORRUPT;
		found = true;
		*out = st[i];
	}
	return found ? 0 : ARCA_ENOENT;
}

char dva_detect_sep(const char *const *folders, size_t nf, char *const *lines, size_t nl)
{
	for (size_t i = 0; i < nf; i++) {
		const char *f = folders[i];
		if (strchr(f, '/') == NULL)
			continue;
		size_t fl = strlen(f);
		for (size_t k = 0; k < nl; k++) {
			if (strlen(lines[k]) != fl)
				continue;
			char sep = 0;
			bool ok = true;
			for (size_t j = 0; j < fl && ok; j++) {
				if (f[j] == '/') {
					if (sep == 0)
						sep = lines[k][j];
					ok = lines[k][j] == sep;
				} else {
					ok = lines[k][j] == f[j];
				}
			}
			/* split_lines leaves neither NUL nor '\n' inside a line */
			if (ok && sep != 0 && sep != '\n')
				return sep;
		}
	}
	return 0;
}

int dva_vname(const char *name, char sep, struct abuf *out)
{
	abuf_reset(out);
	for (const char *p = name; *p; p++) {
		char c = *p == '/' ? sep : *p;
		if (abuf_add(out, &c, 1) != 0)
			return ARCA_ENOMEM;
	}
	return abuf_cstr(out);
}

int dva_sieve_list(char **lines, size_t n, long *active_r)
{
	static const char act[] = " ACTIVE";
	const size_t al = sizeof(act) - 1;
	*active_r = -1;
	for (size_t k = 0; k < n; k++) {
		char *l = lines[k];
		size_t len = strlen(l);
		/* the trailing space first: "x ACTIVE " is the inactive script
		 * named "x ACTIVE" */
		if (len > 0 && l[len - 1] == ' ') {
			l[len - 1] = '\0';
		} else if (len > al && memcmp(l + len - al, act, al) == 0) {
			if (*active_r >= 0)
				return ARCA_EFORMAT;
			l[len - al] = '\0';
			*active_r = (long)k;
		}
		if (l[0] == '\0')
			return ARCA_EFORMAT;
	}
	return 0;
}

int dva_mail_location(const char *out, bool *known_r, bool *layout_fs_r)
{
	*known_r = false;
	*layout_fs_r = false;
	size_t len = strcspn(out, "\n");
	if (len == 0)
		return 0;   /* not set: Dovecot looks for the mail itself */
	if (len < 8 || memcmp(out, "maildir:", 8) != 0)
		return ARCA_EINVAL;
	*known_r = true;
	/* the path, then ':'-separated options; "::" is a ':' inside one */
	size_t seg = 8, i = 8;
	bool first = true;
	while (i <= len) {
		if (i < len && out[i] == ':' && i + 1 < len && out[i + 1] == ':') {
			i += 2;
			continue;
		}
		if (i == len || out[i] == ':') {
			if (!first && i - seg == 9 && memcmp(out + seg, "LAYOUT=fs", 9) == 0)
				*layout_fs_r = true;
			first = false;
			seg = i + 1;
		}
		i++;
	}
	return 0;
}

bool dva_user_ok(const char *user)
{
	if (*user == '\0')
		return false;
	for (const unsigned char *u = (const unsigned char *)user; *u; u++)
		if (*u <= ' ' || *u == 0x7f)
			return false;
	return true;
}

int dva_line_user(char **line, const char *const *users, size_t n, size_t *idx_r)
{
	size_t best = n, blen = 0;
	for (size_t i = 0; i < n; i++) {
		size_t ul = strlen(users[i]);
		if (ul > blen && strncmp(*line, users[i], ul) == 0 && (*line)[ul] == ' ') {
			best = i;
			blen = ul;
		}
	}
	if (best == n)
		return ARCA_EFORMAT;
	*idx_r = best;
	*line += blen + 1;
	return 0;
}

int dva_sieve_get(const uint8_t *out, size_t len, size_t *body_off_r)
{
	size_t pl = sizeof(DVA_SIEVE_GET_PREFIX) - 1;
	if (out == NULL || len < pl || memcmp(out, DVA_SIEVE_GET_PREFIX, pl) != 0)
		return ARCA_EFORMAT;
	*body_off_r = pl;
	return 0;
}
