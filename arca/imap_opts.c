/*
 * imap_opts.c - options shared by arca pull imap and arca restore imap
 * (imap_opts.h).
 */
#include "imap_opts.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <sodium.h>

#include "buf.h"
#include "cli.h"
#include "banned.h"

int strv_add(struct strv *s, const char *str, size_t len)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		char **v = realloc(s->v, cap * sizeof(*v));
		if (v == NULL)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	char *d = strndup(str, len);
	if (d == NULL)
		return -1;
	s->v[s->n++] = d;
	return 0;
}

void strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

int accounts_from_text(struct strv *out, const char *text, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t e = i;
		while (e < len && text[e] != '\n')
			e++;
		size_t a = i;
		while (a < e && isspace((unsigned char)text[a]))
			a++;
		size_t b = a;
		while (b < e && !isspace((unsigned char)text[b]))
			b++;
		if (b > a && text[a] != '#') {
			bool dup = false;
			for (size_t k = 0; k < out->n && !dup; k++)
				dup = strlen(out->v[k]) == b - a && memcmp(out->v[k], text + a, b - a) == 0;
			if (!dup && strv_add(out, text + a, b - a) != 0)
				return -1;
		}
		i = e + 1;
	}
	return 0;
}

static int read_all_fd(FILE *f, struct abuf *b)
{
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		if (abuf_add(b, buf, n) != 0)
			return -1;
	return ferror(f) ? -1 : 0;
}

int load_accounts(const char *from, struct strv *out)
{
	struct abuf b = ABUF_INIT;
	struct stat st;
	int rc = 0;
	if (stat(from, &st) == 0 && S_ISREG(st.st_mode)) {
		FILE *f = fopen(from, "r");
		if (f == NULL || read_all_fd(f, &b) != 0)
			rc = cli_failf("%s: cannot read the account list", from);
		if (f)
			fclose(f);
	} else if (strchr(from, ' ') || from[0] == '|') {
		const char *cmd = from[0] == '|' ? from + 1 : from;
		FILE *p = popen(cmd, "r");
		if (p == NULL)
			return cli_failf("cannot run %s", cmd);
		int r = read_all_fd(p, &b);
		int status = pclose(p);
		if (r != 0 || status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			rc = cli_failf("account command failed (%s): %s", cmd,
				       WIFEXITED(status) ? "non-zero exit" : "killed");
	} else {
		return cli_failf("%s: no such file (a command needs a space or a leading '|')", from);
	}
	if (rc == 0 && accounts_from_text(out, (const char *)b.data, b.len) != 0)
		rc = cli_failf("out of memory");
	abuf_release(&b);
	return rc;
}

char *read_first_line(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, f);
	fclose(f);
	if (n < 0) {
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return line;
}

int load_credentials(const char *path, struct creds *c)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return cli_failf("%s: cannot open the credentials file", path);
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;
	while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		char *p = line;
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		char *sp = p;
		while (*sp && !isspace((unsigned char)*sp))
			sp++;
		if (*sp == '\0') {
			rc = cli_failf("%s: a line without a password", path);
			break;
		}
		size_t nl = (size_t)(sp - p);
		while (isspace((unsigned char)*sp))
			sp++;
		if (strv_add(&c->names, p, nl) != 0 || strv_add(&c->passwords, sp, strlen(sp)) != 0)
			rc = cli_failf("out of memory");
	}
	if (line) {
		sodium_memzero(line, cap);
		free(line);
	}
	fclose(f);
	return rc;
}

const char *creds_password(const struct creds *c, const char *account)
{
	for (size_t i = 0; i < c->names.n; i++)
		if (strcmp(c->names.v[i], account) == 0)
			return c->passwords.v[i];
	return NULL;
}

void creds_free(struct creds *c)
{
	for (size_t i = 0; i < c->passwords.n; i++)
		sodium_memzero(c->passwords.v[i], strlen(c->passwords.v[i]));
	strv_free(&c->names);
	strv_free(&c->passwords);
}

int imap_opts_plain_ok(const char *host, bool tls, bool insecure)
{
	if (tls || insecure || strcmp(host, "127.0.0.1") == 0 || strcmp(host, "::1") == 0 ||
	    strcmp(host, "localhost") == 0)
		return 0;
	return cli_failf("%s: refusing to send passwords without TLS to a host that is not loopback (use --tls, --starttls, or --insecure)", host);
}
