/* doveadm's answers as arca restore dovecot reads them (lib/doveadm_parse.h).
 * The first byte picks what the rest is taken for:
 *   0  mailbox status lines: split, each line parsed; a parsed line's name
 *      is found again by dva_status_find with the same numbers; the names
 *      then serve for separator detection against folders made of the
 *      same names with '.' turned into '/', whose vname must be a line;
 *   1  mailbox list lines: separator detection with the lines themselves
 *      as folder names (found exactly when one holds a '/'), and vname;
 *   2  sieve list: at most one active script, no empty name;
 *   3  config -h mail_location.
 * With bit 3 of the first byte set, the rest is a `sieve get` answer.
 * With bit 2 of the first byte set, the lines are many users' status
 * (mailbox status -F): the first up to 4 lines that dva_user_ok takes are
 * the users, every other line is given to its user (dva_line_user) and the
 * rest parsed as a status line.
 * Every call must return a defined code and touch nothing outside its
 * buffer (ASan), whatever the bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arca_err.h"
#include "doveadm_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXL 256

static void status_lines(char **lines, size_t n)
{
	char *names[MAXL];
	struct dva_status st[MAXL];
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		size_t before = strlen(lines[i]);
		struct dva_status s;
		int rc = dva_status_line(lines[i], &s);
		if (rc != 0) {
			if (rc != ARCA_EFORMAT || strlen(lines[i]) != before)
				abort();   /* a refused line is left as it was */
			continue;
		}
		size_t after = strlen(lines[i]);
		if (after == 0 || after >= before)
			abort();
		names[k] = lines[i];
		st[k++] = s;
	}
	for (size_t i = 0; i < k; i++) {
		struct dva_status got;
		int rc = dva_status_find(names, st, k, names[i], &got);
		if (rc == ARCA_ECORRUPT)
			continue;   /* the same name twice */
		if (rc != 0 || memcmp(&got, &st[i], sizeof(got)) != 0)
			abort();
	}
	/* folders: the names with '.' as the separator */
	char *folders[MAXL];
	size_t nf = 0;
	for (size_t i = 0; i < k; i++) {
		folders[nf] = strdup(names[i]);
		if (folders[nf] == NULL)
			break;
		for (char *p = folders[nf]; *p; p++)
			if (*p == '.')
				*p = '/';
		nf++;
	}
	char sep = dva_detect_sep((const char *const *)folders, nf, names, k);
	if (sep != 0) {
		/* some nested folder's vname is one of the names */
		struct abuf v = ABUF_INIT;
		int hit = 0;
		for (size_t i = 0; i < nf && !hit; i++) {
			if (strchr(folders[i], '/') == NULL || dva_vname(folders[i], sep, &v) != 0)
				continue;
			for (size_t j = 0; j < k && !hit; j++)
				hit = strcmp((const char *)v.data, names[j]) == 0;
		}
		abuf_release(&v);
		if (!hit || sep == '\n')
			abort();
	}
	for (size_t i = 0; i < nf; i++)
		free(folders[i]);
}

static void list_lines(char **lines, size_t n)
{
	char sep = dva_detect_sep((const char *const *)lines, n, lines, n);
	/* a nested name matches at least itself */
	int nested = 0;
	for (size_t i = 0; i < n; i++)
		nested |= strchr(lines[i], '/') != NULL;
	if (nested != (sep != 0))
		abort();
	struct abuf v = ABUF_INIT;
	for (size_t i = 0; i < n; i++) {
		if (dva_vname(lines[i], '.', &v) != 0 || v.len != strlen(lines[i]))
			abort();
	}
	abuf_release(&v);
}

static void user_lines(char **lines, size_t n)
{
	const char *users[4];
	size_t nu = 0, first = 0;
	while (first < n && nu < 4 && dva_user_ok(lines[first]))
		users[nu++] = lines[first++];
	for (size_t i = first; i < n; i++) {
		char *p = lines[i];
		size_t who = 99;
		int rc = dva_line_user(&p, users, nu, &who);
		if (rc == ARCA_EFORMAT) {
			if (p != lines[i])
				abort();
			continue;
		}
		size_t ul = who < nu ? strlen(users[who]) : 0;
		if (rc != 0 || who >= nu || p != lines[i] + ul + 1 || strncmp(lines[i], users[who], ul) != 0 ||
		    lines[i][ul] != ' ')
			abort();
		/* no longer name begins it */
		for (size_t k = 0; k < nu; k++) {
			size_t kl = strlen(users[k]);
			if (kl > ul && strncmp(lines[i], users[k], kl) == 0 && lines[i][kl] == ' ')
				abort();
		}
		struct dva_status st;
		(void)dva_status_line(p, &st);
	}
}

static void sieve_lines(char **lines, size_t n)
{
	long act = -2;
	int rc = dva_sieve_list(lines, n, &act);
	if (rc == 0) {
		if (act < -1 || act >= (long)n)
			abort();
		for (size_t i = 0; i < n; i++)
			if (lines[i][0] == '\0')
				abort();
	} else if (rc != ARCA_EFORMAT) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > (1u << 20))
		return 0;
	if (data[0] & 8) {
		size_t off = 99;
		int g = dva_sieve_get(data + 1, size - 1, &off);
		if (g == 0 ? off != sizeof(DVA_SIEVE_GET_PREFIX) - 1 || off > size - 1 : g != ARCA_EFORMAT)
			abort();
		return 0;
	}
	int mode = data[0] & 3;
	char *buf = malloc(size);   /* size - 1 bytes and room for the NUL */
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 1, size - 1);
	if (mode == 3) {
		buf[size - 1] = '\0';
		bool known = true, fs = true;
		int rc = dva_mail_location(buf, &known, &fs);
		if (rc != 0 && rc != ARCA_EINVAL)
			abort();
		if ((rc != 0 || !known) && fs)
			abort();
		free(buf);
		return 0;
	}
	char *lines[MAXL];
	size_t n = 0;
	int rc = dva_split_lines(buf, size - 1, lines, MAXL, &n);
	if (rc == 0) {
		for (size_t i = 0; i < n; i++)
			if (lines[i][0] == '\0' || strchr(lines[i], '\n') != NULL)
				abort();
		if (data[0] & 4)
			user_lines(lines, n);
		else if (mode == 0)
			status_lines(lines, n);
		else if (mode == 1)
			list_lines(lines, n);
		else
			sieve_lines(lines, n);
	} else if (rc != ARCA_EFORMAT && rc != ARCA_ELIMIT) {
		abort();
	}
	free(buf);
	return 0;
}
