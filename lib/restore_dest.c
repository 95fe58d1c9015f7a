#include "restore_dest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arca_err.h"
#include "banned.h"

/* A name that can be one path component: not empty, ".", "..", nor
 * holding '/' (account names from the journal come from the mail server,
 * and a quoted local part may hold anything). */
static bool component_ok(const char *p, size_t n)
{
	if (n == 0 || memchr(p, '/', n) != NULL || memchr(p, '\0', n) != NULL)
		return false;
	return !(n == 1 && p[0] == '.') && !(n == 2 && p[0] == '.' && p[1] == '.');
}

int restore_expand(const char *pattern, const char *account, struct abuf *out)
{
	const char *at = strrchr(account, '@');
	size_t nlen = at ? (size_t)(at - account) : strlen(account);
	const char *dom = at ? at + 1 : "";
	if (!component_ok(account, strlen(account)) || !component_ok(account, nlen) ||
	    (at && !component_ok(dom, strlen(dom))))
		return ARCA_EINVAL;
	abuf_reset(out);
	int rc = 0;
	for (const char *p = pattern; *p && rc == 0; p++) {
		if (p[0] == '%' && p[1] == 'u') {
			rc = abuf_add(out, account, strlen(account));
			p++;
		} else if (p[0] == '%' && p[1] == 'n') {
			rc = abuf_add(out, account, nlen);
			p++;
		} else if (p[0] == '%' && p[1] == 'd') {
			rc = abuf_add(out, dom, strlen(dom));
			p++;
		} else {
			rc = abuf_add(out, p, 1);
		}
	}
	return rc ? rc : abuf_cstr(out);
}

bool restore_pattern_ok(const char *pattern)
{
	return strstr(pattern, "%u") != NULL || strstr(pattern, "%n") != NULL;
}

struct dest {
	char *path;     /* "//" made "/", no trailing '/' */
	size_t i;       /* the account's index */
};

static int dest_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dest *)a)->path, ((const struct dest *)b)->path);
}

/* The entry whose path is p[0..len), or NULL. */
static const struct dest *dest_find(const struct dest *v, size_t n, const char *p, size_t len)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strncmp(v[mid].path, p, len);
		if (c == 0 && v[mid].path[len] != '\0')
			c = 1;
		if (c == 0)
			return &v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Every account's expansion of pattern, normalised and sorted; *n_r of
 * them (accounts that can't be expanded left out).  NULL when out of memory. */
static struct dest *dests_of(const char *const *accounts, size_t n, const char *pattern, size_t *n_r)
{
	struct dest *v = calloc(n ? n : 1, sizeof(*v));
	struct abuf b = ABUF_INIT;
	size_t k = 0;
	bool oom = v == NULL;
	for (size_t i = 0; i < n && !oom; i++) {
		if (restore_expand(pattern, accounts[i], &b) != 0)
			continue;
		char *p = malloc(b.len + 1);
		if (p == NULL) {
			oom = true;
			break;
		}
		size_t o = 0;
		for (size_t j = 0; j < b.len; j++)
			if (!(b.data[j] == '/' && o > 0 && p[o - 1] == '/'))
				p[o++] = (char)b.data[j];
		while (o > 1 && p[o - 1] == '/')
			o--;
		p[o] = '\0';
		v[k++] = (struct dest){ p, i };
	}
	abuf_release(&b);
	if (oom) {
		for (size_t i = 0; v && i < k; i++)
			free(v[i].path);
		free(v);
		return NULL;
	}
	qsort(v, k, sizeof(*v), dest_cmp);
	*n_r = k;
	return v;
}

static void dests_free(struct dest *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

static void refuse(bool *refused, size_t a, size_t b, long *count)
{
	*count += !refused[a] + !refused[b];
	refused[a] = refused[b] = true;
}

long restore_dest_conflicts(const char *prog, const char *const *accounts, size_t n,
			    const char *maildir_pattern, const char *stage_suffix,
			    const char *home_pattern, bool *refused_r)
{
	long count = 0;
	size_t nd = 0, nh = 0;
	struct dest *d = maildir_pattern ? dests_of(accounts, n, maildir_pattern, &nd) : NULL;
	struct dest *h = home_pattern ? dests_of(accounts, n, home_pattern, &nh) : NULL;
	if ((maildir_pattern && d == NULL) || (home_pattern && h == NULL)) {
		dests_free(d, nd);
		dests_free(h, nh);
		return -1;
	}
	size_t slen = stage_suffix ? strlen(stage_suffix) : 0;
	for (size_t k = 0; k < nd; k++) {
		const char *p = d[k].path;
		const char *acc = accounts[d[k].i];
		if (k > 0 && strcmp(d[k - 1].path, p) == 0) {
			fprintf(stderr, "%s: %s and %s would both be restored into %s: neither is restored "
				"(--maildir %s must name a directory of its own for each account: %%u, or %%d with %%n)\n",
				prog, accounts[d[k - 1].i], acc, p, maildir_pattern);
			refuse(refused_r, d[k - 1].i, d[k].i, &count);
		}
		/* inside another's: every leading part of the path */
		for (size_t j = 1; p[j] != '\0'; j++) {
			if (p[j] != '/')
				continue;
			const struct dest *o = dest_find(d, nd, p, j);
			if (o != NULL && o->i != d[k].i) {
				fprintf(stderr, "%s: the Maildir of %s (%s) would be inside that of %s (%s): neither is restored\n",
					prog, acc, p, accounts[o->i], o->path);
				refuse(refused_r, o->i, d[k].i, &count);
			}
			/* inside another's staging directory (moved or removed
			 * with it) */
			if (slen > 0 && j > slen && strncmp(p + j - slen, stage_suffix, slen) == 0) {
				o = dest_find(d, nd, p, j - slen);
				if (o != NULL && o->i != d[k].i) {
					fprintf(stderr, "%s: the Maildir of %s (%s) would be inside the staging directory of %s: neither is restored\n",
						prog, acc, p, accounts[o->i]);
					refuse(refused_r, o->i, d[k].i, &count);
				}
			}
		}
		size_t len = strlen(p);
		if (slen > 0 && len > slen && strcmp(p + len - slen, stage_suffix) == 0) {
			const struct dest *o = dest_find(d, nd, p, len - slen);
			if (o != NULL && o->i != d[k].i) {
				fprintf(stderr, "%s: the Maildir of %s (%s) has the name of the staging directory of %s: neither is restored\n",
					prog, acc, p, accounts[o->i]);
				refuse(refused_r, o->i, d[k].i, &count);
			}
		}
	}
	for (size_t k = 1; k < nh; k++)
		if (strcmp(h[k - 1].path, h[k].path) == 0) {
			fprintf(stderr, "%s: %s and %s would share the Sieve home %s: neither is restored "
				"(--sieve-home %s must name a directory of its own for each account)\n",
				prog, accounts[h[k - 1].i], accounts[h[k].i], h[k].path, home_pattern);
			refuse(refused_r, h[k - 1].i, h[k].i, &count);
		}
	dests_free(d, nd);
	dests_free(h, nh);
	return count;
}
