/*
 * passwd.c - passwd-file logins and throttling for serve-imap (passwd.h).
 */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "passwd.h"
#include "banned.h"

enum pw_scheme {
	PW_UNSUPPORTED = 0,
	PW_CRYPT,               /* anything libxcrypt takes: $6$, $5$, $2y$, $1$, DES */
	PW_ARGON2,              /* $argon2i$ / $argon2id$ (libsodium) */
	PW_PLAIN,
	PW_SHA256,
	PW_SHA512,
	PW_SSHA256,
	PW_SSHA512,
};

static const struct {
	const char *name;
	int scheme;
} schemes[] = {
	{ "CRYPT", PW_CRYPT },
	{ "SHA512-CRYPT", PW_CRYPT },
	{ "SHA256-CRYPT", PW_CRYPT },
	{ "BLF-CRYPT", PW_CRYPT },
	{ "MD5-CRYPT", PW_CRYPT },
	{ "DES-CRYPT", PW_CRYPT },
	{ "ARGON2I", PW_ARGON2 },
	{ "ARGON2ID", PW_ARGON2 },
	{ "PLAIN", PW_PLAIN },
	{ "CLEARTEXT", PW_PLAIN },
	{ "SHA256", PW_SHA256 },
	{ "SHA512", PW_SHA512 },
	{ "SSHA256", PW_SSHA256 },
	{ "SSHA512", PW_SSHA512 },
};

/* "{SCHEME}rest" -> scheme and rest; no braces: CRYPT.  An unknown
 * scheme's name goes to name_r (cut) for the message. */
static int split_scheme(const char *stored, const char **hash_r, char *name_r, size_t name_len)
{
	if (name_r && name_len)
		name_r[0] = '\0';
	if (stored[0] != '{') {
		*hash_r = stored;
		return PW_CRYPT;
	}
	const char *end = strchr(stored, '}');
	if (end == NULL) {
		*hash_r = stored;
		return PW_UNSUPPORTED;
	}
	size_t n = (size_t)(end - stored - 1);
	*hash_r = end + 1;
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strlen(schemes[i].name) == n && strncasecmp(stored + 1, schemes[i].name, n) == 0)
			return schemes[i].scheme;
	if (name_r && name_len)
		snprintf(name_r, name_len, "%.*s", (int)(n < 24 ? n : 24), stored + 1);
	return PW_UNSUPPORTED;
}

/* ---- verification ---- */

static int verify_crypt(const char *hash, const char *password)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		return 0;
	int ok = 0;
	const char *out = crypt_rn(password, hash, cd, (int)sizeof(*cd));
	/* a setting libxcrypt refuses gives NULL or a "*..." failure token,
	 * which never equals a stored hash (these never start with '*') */
	if (out != NULL && out[0] != '*') {
		size_t n = strlen(hash);
		ok = strlen(out) == n && sodium_memcmp(out, hash, n) == 0;
	}
	sodium_memzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

/* Equal strings of any length, in time that depends on neither. */
static int verify_plain(const char *stored, const char *password)
{
	uint8_t a[32], b[32];
	crypto_generichash(a, sizeof(a), (const uint8_t *)stored, strlen(stored), NULL, 0);
	crypto_generichash(b, sizeof(b), (const uint8_t *)password, strlen(password), NULL, 0);
	int ok = sodium_memcmp(a, b, sizeof(a)) == 0;
	sodium_memzero(b, sizeof(b));
	return ok;
}

/* Dovecot's {SHA*} and {SSHA*}: base64 of digest(password || salt) || salt. */
static int verify_sha(int scheme, const char *b64, const char *password)
{
	uint8_t raw[512];
	size_t rawlen = 0;
	if (sodium_base642bin(raw, sizeof(raw), b64, strlen(b64), NULL, &rawlen, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		return 0;
	bool big = scheme == PW_SHA512 || scheme == PW_SSHA512;
	bool salted = scheme == PW_SSHA256 || scheme == PW_SSHA512;
	size_t hl = big ? crypto_hash_sha512_BYTES : crypto_hash_sha256_BYTES;
	if (rawlen < hl || (!salted && rawlen != hl))
		return 0;
	const uint8_t *salt = raw + hl;
	size_t saltlen = rawlen - hl;
	uint8_t dig[crypto_hash_sha512_BYTES];
	if (big) {
		crypto_hash_sha512_state st;
		crypto_hash_sha512_init(&st);
		crypto_hash_sha512_update(&st, (const uint8_t *)password, strlen(password));
		crypto_hash_sha512_update(&st, salt, saltlen);
		crypto_hash_sha512_final(&st, dig);
	} else {
		crypto_hash_sha256_state st;
		crypto_hash_sha256_init(&st);
		crypto_hash_sha256_update(&st, (const uint8_t *)password, strlen(password));
		crypto_hash_sha256_update(&st, salt, saltlen);
		crypto_hash_sha256_final(&st, dig);
	}
	int ok = sodium_memcmp(dig, raw, hl) == 0;
	sodium_memzero(dig, sizeof(dig));
	return ok;
}

static int verify_scheme(int scheme, const char *hash, const char *password)
{
	switch (scheme) {
	case PW_CRYPT:
		return verify_crypt(hash, password);
	case PW_ARGON2:
		return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
	case PW_PLAIN:
		return verify_plain(hash, password);
	case PW_SHA256:
	case PW_SHA512:
	case PW_SSHA256:
	case PW_SSHA512:
		return verify_sha(scheme, hash, password);
	default:
		return ARCA_EVERSION;
	}
}

int passwd_verify(const char *stored, const char *password)
{
	if (sodium_init() < 0)
		return 0;
	const char *hash;
	int scheme = split_scheme(stored, &hash, NULL, 0);
	if (scheme == PW_UNSUPPORTED)
		return ARCA_EVERSION;
	return verify_scheme(scheme, hash, password);
}

/* ---- the table ---- */

struct pw_entry {
	char *user;             /* lower case */
	char *hash;             /* after the {SCHEME} */
	int scheme;
	size_t line;            /* for "the first wins" */
};

struct passwd_table {
	struct pw_entry *e;
	size_t n, cap;
	struct passwd_stats st;
};

void passwd_table_free(struct passwd_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->e[i].user);
		sodium_memzero(t->e[i].hash, strlen(t->e[i].hash));
		free(t->e[i].hash);
	}
	free(t->e);
	free(t);
}

bool passwd_user_norm(const char *user, char out[PASSWD_USER_MAX + 1])
{
	size_t n = strlen(user);
	if (n == 0 || n > PASSWD_USER_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)user[i];
		if (c < 0x20 || c == 0x7f || c == ':')
			return false;
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
	}
	out[n] = '\0';
	return true;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct pw_entry *x = a, *y = b;
	int c = strcmp(x->user, y->user);
	if (c)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int add_line(struct passwd_table *t, const char *line, size_t len, size_t lineno)
{
	if (len == 0 || line[0] == '#')
		return 0;
	const char *colon = memchr(line, ':', len);
	if (colon == NULL || colon == line || memchr(line, '\0', len) != NULL) {
		t->st.malformed++;
		return 0;
	}
	char user[PASSWD_USER_MAX + 1];
	size_t ulen = (size_t)(colon - line);
	if (ulen > PASSWD_USER_MAX) {
		t->st.malformed++;
		return 0;
	}
	memcpy(user, line, ulen);
	user[ulen] = '\0';
	char norm[PASSWD_USER_MAX + 1];
	if (!passwd_user_norm(user, norm)) {
		t->st.malformed++;
		return 0;
	}
	const char *pw = colon + 1;
	const char *pend = memchr(pw, ':', len - ulen - 1);
	size_t plen = pend ? (size_t)(pend - pw) : len - ulen - 1;
	if (plen == 0) {
		/* no password: never a login (Dovecot would need nopassword) */
		t->st.unsupported++;
		snprintf(t->st.unsupported_scheme, sizeof(t->st.unsupported_scheme), "(empty)");
		return 0;
	}
	char *stored = malloc(plen + 1);
	if (stored == NULL)
		return ARCA_ENOMEM;
	memcpy(stored, pw, plen);
	stored[plen] = '\0';
	const char *hash;
	char name[32];
	int scheme = split_scheme(stored, &hash, name, sizeof(name));
	if (scheme == PW_UNSUPPORTED) {
		t->st.unsupported++;
		snprintf(t->st.unsupported_scheme, sizeof(t->st.unsupported_scheme), "%s", name);
		sodium_memzero(stored, plen);
		free(stored);
		return 0;
	}
	if (t->n >= PASSWD_USERS_MAX) {
		sodium_memzero(stored, plen);
		free(stored);
		return ARCA_ELIMIT;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct pw_entry *e = realloc(t->e, cap * sizeof(*e));
		if (e == NULL) {
			free(stored);
			return ARCA_ENOMEM;
		}
		t->e = e;
		t->cap = cap;
	}
	struct pw_entry *e = &t->e[t->n];
	e->user = strdup(norm);
	e->hash = strdup(hash);
	e->scheme = scheme;
	e->line = lineno;
	sodium_memzero(stored, plen);
	free(stored);
	if (e->user == NULL || e->hash == NULL) {
		free(e->user);
		free(e->hash);
		return ARCA_ENOMEM;
	}
	t->n++;
	return 0;
}

int passwd_table_parse(const uint8_t *p, size_t len, struct passwd_table **t_r, struct arca_err *err)
{
	*t_r = NULL;
	if (len > PASSWD_FILE_MAX)
		return arca_err_set(err, ARCA_ELIMIT, "more than %u bytes", PASSWD_FILE_MAX);
	struct passwd_table *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	size_t lineno = 0;
	int rc = 0;
	for (size_t off = 0; off < len && rc == 0;) {
		const uint8_t *nl = memchr(p + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (p + off)) : len - off;
		lineno++;
		size_t m = n;
		if (m > 0 && p[off + m - 1] == '\r')
			m--;
		if (m > PASSWD_LINE_MAX)
			rc = arca_err_set(err, ARCA_ELIMIT, "line %zu: longer than %u bytes", lineno, PASSWD_LINE_MAX);
		else
			rc = add_line(t, (const char *)p + off, m, lineno);
		if (rc == ARCA_ELIMIT)
			arca_err_set(err, rc, "more than %u users", PASSWD_USERS_MAX);
		else if (rc)
			arca_err_set(err, rc, "out of memory");
		off += n + (nl ? 1 : 0);
	}
	if (rc) {
		passwd_table_free(t);
		return rc;
	}
	if (t->n > 1)
		qsort(t->e, t->n, sizeof(*t->e), entry_cmp);
	/* the first line of a user wins; drop the later ones */
	size_t w = 0;
	for (size_t i = 0; i < t->n; i++) {
		if (w > 0 && strcmp(t->e[w - 1].user, t->e[i].user) == 0) {
			t->st.duplicates++;
			free(t->e[i].user);
			sodium_memzero(t->e[i].hash, strlen(t->e[i].hash));
			free(t->e[i].hash);
			continue;
		}
		t->e[w++] = t->e[i];
	}
	t->n = w;
	t->st.users = t->n;
	for (size_t i = 0; i < t->n; i++)
		if (t->e[i].scheme == PW_PLAIN)
			t->st.plain++;
	*t_r = t;
	return 0;
}

static const struct pw_entry *table_find(const struct passwd_table *t, const char *user)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(t->e[mid].user, user);
		if (c == 0)
			return &t->e[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

bool passwd_table_lookup(const struct passwd_table *t, const char *user, int *scheme_r,
			 const char **hash_r)
{
	char norm[PASSWD_USER_MAX + 1];
	if (!passwd_user_norm(user, norm))
		return false;
	const struct pw_entry *e = table_find(t, norm);
	if (e == NULL)
		return false;
	*scheme_r = e->scheme;
	*hash_r = e->hash;
	return true;
}

void passwd_table_stats(const struct passwd_table *t, struct passwd_stats *st)
{
	*st = t->st;
}

/* ---- the file ---- */

struct passwd_db {
	pthread_mutex_t lock;
	char *path;
	struct stat st;                 /* of the file the table was read from */
	struct stat failed_st;          /* of a changed file that didn't read */
	bool failed;
	struct passwd_table *t;
};

static int read_table(const char *path, struct stat *st_r, struct passwd_table **t_r, struct arca_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return arca_err_errno(err, ARCA_EIO, errno, "%s", path);
	if (fstat(fd, st_r) != 0 || !S_ISREG(st_r->st_mode)) {
		close(fd);
		return arca_err_set(err, ARCA_EINVAL, "%s: not a regular file", path);
	}
	if ((uint64_t)st_r->st_size > PASSWD_FILE_MAX) {
		close(fd);
		return arca_err_set(err, ARCA_ELIMIT, "%s: larger than %u bytes", path, PASSWD_FILE_MAX);
	}
	struct abuf b = ABUF_INIT;
	int rc = 0;
	uint8_t chunk[65536];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = arca_err_errno(err, ARCA_EIO, errno, "%s", path);
			break;
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > PASSWD_FILE_MAX) {
			rc = arca_err_set(err, ARCA_ELIMIT, "%s: larger than %u bytes", path, PASSWD_FILE_MAX);
			break;
		}
		if (abuf_add(&b, chunk, (size_t)n) != 0) {
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			break;
		}
	}
	close(fd);
	sodium_memzero(chunk, sizeof(chunk));
	if (rc == 0) {
		struct arca_err e2 = { 0 };
		rc = passwd_table_parse(b.data, b.len, t_r, &e2);
		if (rc)
			arca_err_set(err, rc, "%s: %s", path, e2.msg);
	}
	if (b.data)
		sodium_memzero(b.data, b.cap);
	abuf_release(&b);
	return rc;
}

int passwd_open(const char *path, struct passwd_db **db_r, struct arca_err *err)
{
	*db_r = NULL;
	if (sodium_init() < 0)
		return arca_err_set(err, ARCA_EIO, "libsodium does not start");
	struct passwd_db *db = calloc(1, sizeof(*db));
	if (db == NULL || (db->path = strdup(path)) == NULL) {
		free(db);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	int rc = read_table(path, &db->st, &db->t, err);
	if (rc) {
		free(db->path);
		free(db);
		return rc;
	}
	pthread_mutex_init(&db->lock, NULL);
	*db_r = db;
	return 0;
}

void passwd_free(struct passwd_db *db)
{
	if (db == NULL)
		return;
	passwd_table_free(db->t);
	pthread_mutex_destroy(&db->lock);
	free(db->path);
	free(db);
}

void passwd_get_stats(struct passwd_db *db, struct passwd_stats *st)
{
	pthread_mutex_lock(&db->lock);
	*st = db->t->st;
	pthread_mutex_unlock(&db->lock);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Under the lock: read the file again if it changed. */
static void maybe_reload(struct passwd_db *db, char warning[ARCA_ERR_MSG_MAX])
{
	struct stat st;
	if (stat(db->path, &st) != 0) {
		if (!db->failed) {
			db->failed = true;
			memset(&db->failed_st, 0, sizeof(db->failed_st));
			if (warning)
				snprintf(warning, ARCA_ERR_MSG_MAX, "%.300s: %.100s (the users read before stay)",
					 db->path, strerror(errno));
		}
		return;
	}
	if (same_file(&st, &db->st) || (db->failed && same_file(&st, &db->failed_st)))
		return;
	struct passwd_table *t = NULL;
	struct stat nst;
	struct arca_err err = { 0 };
	if (read_table(db->path, &nst, &t, &err) != 0) {
		db->failed = true;
		db->failed_st = st;
		if (warning)
			snprintf(warning, ARCA_ERR_MSG_MAX, "%.400s (the users read before stay)", err.msg);
		return;
	}
	passwd_table_free(db->t);
	db->t = t;
	db->st = nst;
	db->failed = false;
}

int passwd_check(struct passwd_db *db, const char *user, const char *password,
		 struct arca_err *err, char reload_warning[ARCA_ERR_MSG_MAX])
{
	if (reload_warning)
		reload_warning[0] = '\0';
	char norm[PASSWD_USER_MAX + 1];
	bool valid = passwd_user_norm(user, norm);
	/* copy what the check needs, then hash outside the lock */
	char hash[PASSWD_LINE_MAX + 1];
	int scheme = PW_UNSUPPORTED;
	bool found = false;
	pthread_mutex_lock(&db->lock);
	maybe_reload(db, reload_warning);
	const struct pw_entry *e = valid ? table_find(db->t, norm) : NULL;
	if (e == NULL && db->t->n > 0)
		e = &db->t->e[0];       /* the decoy: the same work as a real check */
	else
		found = e != NULL;
	if (e != NULL) {
		snprintf(hash, sizeof(hash), "%s", e->hash);
		scheme = e->scheme;
	}
	pthread_mutex_unlock(&db->lock);
	int ok = e != NULL ? verify_scheme(scheme, hash, password) : 0;
	sodium_memzero(hash, sizeof(hash));
	if (!found)
		return arca_err_set(err, ARCA_EKEY, "unknown user");
	if (ok == 1)
		return 0;
	return arca_err_set(err, ARCA_EKEY, "wrong password");
}

/* ---- throttling ---- */

struct thr_entry {
	char key[2 + PASSWD_USER_MAX + 1];  /* "u:" user or "a:" address */
	unsigned count;
	uint64_t first_ns, last_ns, locked_until_ns;
};

#define THR_CHECKS_MAX 64

struct thr_inflight {
	char ku[2 + PASSWD_USER_MAX + 1], ka[2 + PASSWD_USER_MAX + 1];
};

struct login_throttle {
	pthread_mutex_t lock;
	pthread_cond_t turn;            /* a check ended */
	struct login_throttle_opts o;
	struct thr_entry *e;
	size_t n;
	struct thr_inflight inflight[THR_CHECKS_MAX];
	size_t ninflight;
};

struct login_throttle *login_throttle_new(const struct login_throttle_opts *o)
{
	struct login_throttle *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	if (o)
		t->o = *o;
	if (t->o.fails == 0)
		t->o.fails = 5;
	if (t->o.window_s == 0)
		t->o.window_s = 60;
	if (t->o.lock_s == 0)
		t->o.lock_s = 60;
	if (t->o.delay_ms == 0)
		t->o.delay_ms = 250;
	if (t->o.entries == 0)
		t->o.entries = 10000;
	if (t->o.max_checks == 0)
		t->o.max_checks = 4;
	if (t->o.max_checks > THR_CHECKS_MAX)
		t->o.max_checks = THR_CHECKS_MAX;
	if (t->o.wait_ms == 0)
		t->o.wait_ms = 10000;
	t->e = calloc(t->o.entries, sizeof(*t->e));
	if (t->e == NULL) {
		free(t);
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->turn, &ca);
	pthread_condattr_destroy(&ca);
	return t;
}

void login_throttle_free(struct login_throttle *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->turn);
	free(t->e);
	free(t);
}

static void make_key(char *out, size_t outlen, char kind, const char *name)
{
	snprintf(out, outlen, "%c:%s", kind, name);
}

/* Forget what has expired: the window is over and no lock stands. */
static bool expired(const struct login_throttle *t, const struct thr_entry *e, uint64_t now)
{
	return now >= e->locked_until_ns && now - e->first_ns >= (uint64_t)t->o.window_s * 1000000000u;
}

static struct thr_entry *find(struct login_throttle *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->e[i].key, key) == 0)
			return &t->e[i];
	return NULL;
}

static struct thr_entry *find_or_add(struct login_throttle *t, const char *key, uint64_t now)
{
	struct thr_entry *e = find(t, key);
	if (e)
		return e;
	if (t->n == t->o.entries) {
		/* full: drop what expired, else the longest-idle unlocked one
		 * (a flood of names can't free a locked one) */
		size_t w = 0;
		for (size_t i = 0; i < t->n; i++)
			if (!expired(t, &t->e[i], now))
				t->e[w++] = t->e[i];
		t->n = w;
		if (t->n == t->o.entries) {
			size_t victim = SIZE_MAX;
			for (size_t i = 0; i < t->n; i++)
				if (now >= t->e[i].locked_until_ns &&
				    (victim == SIZE_MAX || t->e[i].last_ns < t->e[victim].last_ns))
					victim = i;
			if (victim == SIZE_MAX)
				victim = 0;
			t->e[victim] = t->e[--t->n];
		}
	}
	e = &t->e[t->n++];
	memset(e, 0, sizeof(*e));
	snprintf(e->key, sizeof(e->key), "%s", key);
	e->first_ns = now;
	return e;
}

int login_throttle_begin(struct login_throttle *t, const char *user, const char *peer,
			 uint64_t now_ns, const char **which_r)
{
	char ku[sizeof(((struct thr_entry *)0)->key)], ka[sizeof(ku)];
	make_key(ku, sizeof(ku), 'u', user);
	make_key(ka, sizeof(ka), 'a', peer);
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += t->o.wait_ms / 1000;
	until.tv_nsec += (long)(t->o.wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	const char *which = NULL;
	pthread_mutex_lock(&t->lock);
	for (;;) {
		/* the lock as it stands now: a check that ended while this
		 * one waited may have set it */
		struct thr_entry *e = find(t, ku);
		if (e && now_ns < e->locked_until_ns) {
			which = "user";
			break;
		}
		e = find(t, ka);
		if (e && now_ns < e->locked_until_ns) {
			which = "address";
			break;
		}
		bool busy = t->ninflight >= t->o.max_checks;
		for (size_t i = 0; !busy && i < t->ninflight; i++)
			if (strcmp(t->inflight[i].ku, ku) == 0 || strcmp(t->inflight[i].ka, ka) == 0)
				busy = true;
		if (!busy) {
			struct thr_inflight *f = &t->inflight[t->ninflight++];
			memcpy(f->ku, ku, sizeof(ku));
			memcpy(f->ka, ka, sizeof(ka));
			pthread_mutex_unlock(&t->lock);
			return 0;
		}
		int r;
		do
			r = pthread_cond_timedwait(&t->turn, &t->lock, &until);
		while (r == EINTR);
		if (r == ETIMEDOUT) {
			which = "busy";
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	if (which_r)
		*which_r = which;
	return ARCA_EBUSY;
}

/* Under the lock: the check of (ku, ka) ended. */
static void end_check(struct login_throttle *t, const char *ku, const char *ka)
{
	for (size_t i = 0; i < t->ninflight; i++)
		if (strcmp(t->inflight[i].ku, ku) == 0 && strcmp(t->inflight[i].ka, ka) == 0) {
			t->inflight[i] = t->inflight[--t->ninflight];
			break;
		}
	pthread_cond_broadcast(&t->turn);
}

static unsigned fail_one(struct login_throttle *t, const char *key, uint64_t now)
{
	struct thr_entry *e = find_or_add(t, key, now);
	if (now - e->first_ns >= (uint64_t)t->o.window_s * 1000000000u && now >= e->locked_until_ns) {
		e->count = 0;
		e->first_ns = now;
	}
	e->count++;
	e->last_ns = now;
	if (e->count >= t->o.fails)
		e->locked_until_ns = now + (uint64_t)t->o.lock_s * 1000000000u;
	return e->count;
}

unsigned login_throttle_fail(struct login_throttle *t, const char *user, const char *peer,
			     uint64_t now_ns)
{
	char ku[sizeof(((struct thr_entry *)0)->key)], ka[sizeof(ku)];
	make_key(ku, sizeof(ku), 'u', user);
	make_key(ka, sizeof(ka), 'a', peer);
	pthread_mutex_lock(&t->lock);
	unsigned a = fail_one(t, ku, now_ns);
	unsigned b = fail_one(t, ka, now_ns);
	end_check(t, ku, ka);
	pthread_mutex_unlock(&t->lock);
	unsigned c = a > b ? a : b;
	unsigned shift = c > 4 ? 3 : c - 1;
	return t->o.delay_ms << shift;
}

void login_throttle_ok(struct login_throttle *t, const char *user, const char *peer)
{
	char ku[sizeof(((struct thr_entry *)0)->key)], ka[sizeof(ku)];
	make_key(ku, sizeof(ku), 'u', user);
	make_key(ka, sizeof(ka), 'a', peer);
	pthread_mutex_lock(&t->lock);
	struct thr_entry *e = find(t, ku);
	if (e && e->locked_until_ns == 0) {
		/* a standing lock stays: the success came through it only if
		 * the check was skipped, which it never is */
		*e = t->e[--t->n];
	} else if (e) {
		e->count = 0;
	}
	end_check(t, ku, ka);
	pthread_mutex_unlock(&t->lock);
}
