/* gen-maildir — seeded generator of Dovecot 2.3 Maildir++ trees for bench/.
 *
 *   gen-maildir [--accounts A] [--messages M] [--seed S] [--corpus DIR]
 *               [--jobs N] --out DIR
 *   gen-maildir --mutate PCT [--jobs N] --out DIR
 *
 * Writes DIR/mail/DOMAIN/USER/Maildir/ for A accounts of about M messages
 * each, DIR/accounts.tsv ("user@domain<TAB>DOMAIN/USER/Maildir") and
 * DIR/gen-state (the parameters, used by --mutate).  Everything is a pure
 * function of the parameters: the same arguments give the same bytes, names
 * and mtimes.  See bench/README.md for what the corpus looks like.
 *
 * --mutate PCT changes about PCT% of the messages of an existing tree:
 * new deliveries (into new/, some of them list posts delivered to many
 * accounts), flag changes (renames, new/ -> cur/), and a few expunges, with
 * dovecot-uidlist rewritten (temp file + rename) as Dovecot would.  Each
 * call is a new round with its own changes; files are never modified in
 * place.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---------- small helpers ---------- */

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("gen-maildir: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

static void mkdirs(const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, 0700) && errno != EEXIST)
				die("mkdir %s: %s", tmp, strerror(errno));
			*p = '/';
		}
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		die("mkdir %s: %s", tmp, strerror(errno));
}

static void write_file(const char *path, const void *buf, size_t len, time_t mtime)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	const char *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0)
			die("write %s: %s", path, strerror(errno));
		p += w;
		len -= (size_t)w;
	}
	if (mtime) {
		struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
		futimens(fd, ts);
	}
	close(fd);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* ---------- RNG: splitmix64 seeding, xoshiro256** ---------- */

typedef struct { uint64_t s[4]; } rng_t;

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t mix(uint64_t a, uint64_t b)
{
	uint64_t x = a ^ (b * 0xd6e8feb86659fd93ULL);
	return splitmix(&x);
}

static void rng_seed(rng_t *r, uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
	uint64_t x = mix(mix(mix(a, b), c), d);
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rnext(rng_t *r)
{
	uint64_t *s = r->s;
	uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
	s[2] ^= t; s[3] = rotl(s[3], 45);
	return res;
}

static inline uint32_t rbelow(rng_t *r, uint32_t n) { return (uint32_t)(((rnext(r) >> 32) * (uint64_t)n) >> 32); }
static inline double runif(rng_t *r) { return (double)(rnext(r) >> 11) * (1.0 / 9007199254740992.0); }
static inline int rchance(rng_t *r, double p) { return runif(r) < p; }
static double rnorm(rng_t *r)
{
	double u = runif(r), v = runif(r);
	if (u < 1e-300)
		u = 1e-300;
	return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}
static double rlognorm(rng_t *r, double median, double sigma) { return median * exp(sigma * rnorm(r)); }

/* ---------- growable buffer ---------- */

typedef struct { char *p; size_t len, cap; } buf_t;

static void bgrow(buf_t *b, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
}
static void bput(buf_t *b, const void *s, size_t n) { bgrow(b, n); memcpy(b->p + b->len, s, n); b->len += n; b->p[b->len] = 0; }
static void bstr(buf_t *b, const char *s) { bput(b, s, strlen(s)); }
static void bchr(buf_t *b, char c) { bgrow(b, 1); b->p[b->len++] = c; b->p[b->len] = 0; }
static void bprintf(buf_t *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	bgrow(b, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* ---------- vocabulary ---------- */

/* Common English words, roughly by frequency (Zipf-sampled below), plus the
 * vocabulary of business and technical mail. */
static const char *WORDS[] = {
	"the", "to", "and", "of", "a", "in", "is", "that", "for", "it", "you", "we", "on", "with", "this",
	"be", "are", "as", "have", "not", "at", "will", "can", "I", "or", "if", "from", "by", "but", "all",
	"an", "was", "so", "do", "would", "they", "there", "our", "has", "more", "what", "one", "about",
	"which", "your", "should", "also", "any", "like", "some", "just", "when", "been", "out", "no",
	"time", "them", "new", "other", "their", "could", "think", "only", "up", "get", "then", "need",
	"how", "use", "than", "see", "these", "me", "us", "were", "now", "may", "here", "make", "because",
	"know", "into", "who", "its", "please", "way", "much", "work", "first", "next", "well", "very",
	"thanks", "people", "going", "problem", "still", "same", "want", "where", "each", "even", "two",
	"after", "good", "last", "week", "before", "over", "did", "being", "most", "list", "used",
	"change", "why", "take", "back", "both", "let", "set", "might", "since", "such", "had", "my",
	"look", "case", "those", "file", "point", "find", "code", "without", "between", "does", "many",
	"through", "number", "version", "patch", "send", "meeting", "issue", "system", "data", "support",
	"report", "question", "team", "project", "update", "today", "tomorrow", "release", "message",
	"server", "test", "tests", "build", "user", "users", "mail", "email", "information", "attached",
	"document", "review", "changes", "current", "already", "sure", "right", "around", "while",
	"another", "under", "following", "something", "everyone", "again", "part", "feel", "free",
	"help", "working", "support", "customer", "order", "account", "service", "contract", "price",
	"offer", "invoice", "payment", "schedule", "agenda", "minutes", "call", "discuss", "proposal",
	"budget", "quarter", "year", "month", "day", "morning", "afternoon", "office", "department",
	"manager", "director", "client", "product", "market", "sales", "plan", "plans", "result",
	"results", "progress", "status", "deadline", "draft", "final", "version", "copy", "note", "notes",
	"idea", "ideas", "option", "options", "solution", "approach", "design", "feature", "features",
	"bug", "fix", "fixed", "error", "errors", "log", "logs", "config", "configuration", "package",
	"kernel", "driver", "network", "database", "query", "index", "cache", "memory", "disk",
	"performance", "security", "access", "password", "login", "backup", "restore", "storage",
	"install", "installed", "running", "run", "ran", "upgrade", "download", "link", "page", "site",
	"website", "browser", "client", "request", "response", "thread", "process", "function", "value",
	"values", "type", "types", "string", "default", "option", "command", "line", "lines", "output",
	"input", "source", "branch", "commit", "merge", "upstream", "maintainer", "developers",
	"documentation", "manual", "example", "examples", "details", "detail", "reason", "reasons",
	"however", "therefore", "although", "actually", "probably", "maybe", "perhaps", "really",
	"quite", "rather", "simply", "exactly", "instead", "otherwise", "indeed", "especially",
	"currently", "recently", "finally", "unfortunately", "hopefully", "certainly", "clearly",
	"important", "possible", "different", "available", "similar", "easy", "hard", "simple",
	"better", "best", "great", "small", "large", "long", "short", "old", "high", "low", "early",
	"late", "little", "few", "several", "every", "own", "whole", "full", "open", "closed", "ready",
	"able", "happy", "glad", "sorry", "interested", "correct", "wrong", "clear", "true", "false",
	"agree", "believe", "suggest", "expect", "understand", "remember", "forget", "consider",
	"provide", "include", "includes", "including", "require", "requires", "required", "allow",
	"allows", "receive", "received", "confirm", "check", "checked", "add", "added", "remove",
	"removed", "create", "created", "move", "moved", "keep", "start", "started", "stop", "try",
	"tried", "give", "given", "show", "shows", "tell", "ask", "asked", "answer", "reply", "write",
	"wrote", "read", "follow", "mean", "means", "seems", "seem", "become", "happen", "happened",
	"contact", "share", "prepare", "finish", "finished", "arrange", "attend", "join", "visit",
	"travel", "flight", "hotel", "conference", "workshop", "training", "presentation", "slides",
	"spreadsheet", "table", "figure", "chart", "summary", "overview", "background", "context",
	"policy", "process", "procedure", "requirement", "requirements", "specification", "standard",
	"quality", "risk", "risks", "cost", "costs", "savings", "revenue", "growth", "strategy",
	"decision", "approval", "feedback", "comments", "comment", "thoughts", "concern", "concerns",
	"family", "weekend", "holiday", "vacation", "lunch", "dinner", "coffee", "home", "house",
	"city", "country", "world", "school", "university", "student", "students", "course", "paper",
	"research", "analysis", "experiment", "model", "models", "sample", "measure", "measurements",
	"January", "February", "March", "April", "May", "June", "July", "August", "September",
	"October", "November", "December", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
	"Linux", "Debian", "Windows", "Python", "Apache", "Postfix", "Dovecot", "IMAP", "SMTP", "DNS",
	"HTTP", "TLS", "SSL", "API", "PDF", "USB", "RAID", "SQL", "XML", "JSON", "CPU", "RAM",
};
#define NWORDS (sizeof WORDS / sizeof WORDS[0])

static const char *FIRST[] = {
	"Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hans", "Ines", "Jonas", "Karin", "Lukas",
	"Maria", "Nils", "Olga", "Paul", "Rita", "Stefan", "Tina", "Uwe", "Vera", "Walter", "Yara", "Zoe",
	"James", "Mary", "Robert", "Linda", "Michael", "Susan", "William", "Karen", "Thomas", "Nancy",
	"Daniel", "Lisa", "Mark", "Sandra", "Steven", "Ashley", "Pierre", "Sophie", "Marco", "Giulia",
	"Pedro", "Lucia", "Piotr", "Agnieszka", "Kenji", "Mei",
};
static const char *LAST[] = {
	"Schmidt", "Miller", "Smith", "Johnson", "Brown", "Garcia", "Martinez", "Davis", "Wilson",
	"Anderson", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris",
	"Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright", "Lopez", "Hill", "Scott",
	"Green", "Adams", "Baker", "Nelson", "Carter", "Mitchell", "Roberts", "Turner", "Phillips",
	"Campbell", "Parker", "Evans", "Edwards", "Collins", "Stewart", "Morris", "Rossi", "Dubois",
	"Novak", "Kowalski", "Tanaka", "Weber",
};
#define NFIRST (sizeof FIRST / sizeof FIRST[0])
#define NLAST (sizeof LAST / sizeof LAST[0])

static const char *ACCT_DOMAINS[] = {"example.com", "example.net", "example.org", "mail.example.edu"};
#define NACCT_DOMAINS 4
static const char *EXT_DOMAINS[] = {
	"gmail.com", "outlook.com", "yahoo.com", "gmx.de", "web.de", "posteo.de", "protonmail.com",
	"icloud.com", "acme-corp.com", "globex.net", "initech.org", "umbrella.co.uk", "hooli.io",
	"example-university.edu", "bigbank.example", "shop.example", "travel.example", "news.example",
};
#define NEXT_DOMAINS (sizeof EXT_DOMAINS / sizeof EXT_DOMAINS[0])
static const char *LISTS[] = {
	"debian-devel", "linux-kernel", "postfix-users", "dovecot", "python-dev", "announce",
	"sales-team", "all-staff", "security-alerts", "newsletter", "book-club", "dev",
};
#define NLISTS (sizeof LISTS / sizeof LISTS[0])
static const char *RELAYS[] = {
	"mail-ed1-f52.google.com", "mail-wm1-f48.google.com", "EUR05-AM6-obe.outbound.protection.outlook.com",
	"mout.gmx.net", "mout-p-101.mailbox.org", "mx1.acme-corp.com", "smtp.globex.net",
	"out.mailgun.example", "bounce.news.example", "lists.example.org", "mta7.amazonses.com",
};
#define NRELAYS (sizeof RELAYS / sizeof RELAYS[0])

static double ZCDF[NWORDS];

static void zipf_init(void)
{
	double t = 0;
	for (size_t i = 0; i < NWORDS; i++)
		t += 1.0 / pow((double)i + 2.7, 1.05);
	double c = 0;
	for (size_t i = 0; i < NWORDS; i++) {
		c += 1.0 / pow((double)i + 2.7, 1.05) / t;
		ZCDF[i] = c;
	}
	ZCDF[NWORDS - 1] = 1.0;
}

static const char *zipf_word(rng_t *r)
{
	double u = runif(r);
	size_t lo = 0, hi = NWORDS - 1;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ZCDF[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return WORDS[lo];
}

/* A made-up word (names, jargon, typos): keeps the vocabulary open. */
static void rare_word(rng_t *r, buf_t *b)
{
	static const char *syl[] = {"ka", "lo", "mi", "ter", "van", "sch", "en", "ro", "tis", "pa", "dor",
		"qu", "ex", "ul", "bri", "sto", "na", "gel", "fi", "zu", "ment", "ion", "ly", "ver"};
	int n = 2 + (int)rbelow(r, 3);
	for (int i = 0; i < n; i++)
		bstr(b, syl[rbelow(r, sizeof syl / sizeof syl[0])]);
}

/* ---------- real-corpus text (optional) ---------- */

static char *CORPUS;        /* filtered body lines, '\n'-separated */
static size_t CORPUS_LEN;

static int line_is_text(const char *s, size_t n)
{
	if (n < 20 || n > 160)
		return 0;
	size_t alpha = 0, tok = 0, maxtok = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c | 32) >= 'a' && (c | 32) <= 'z')
			alpha++;
		if (c == ' ' || c == '\t') {
			if (tok > maxtok)
				maxtok = tok;
			tok = 0;
		} else
			tok++;
		if (c == '<' || (c == '=' && i + 2 < n && s[i + 1] != ' '))
			return 0; /* HTML, quoted-printable */
	}
	if (tok > maxtok)
		maxtok = tok;
	return maxtok < 25 && alpha * 10 >= n * 6;
}

static void corpus_load(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		die("corpus %s: %s", dir, strerror(errno));
	struct dirent *e;
	char **names = NULL;
	size_t nn = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		names = xrealloc(names, (nn + 1) * sizeof *names);
		names[nn++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, nn, sizeof *names, cmp_str);
	buf_t out = {0};
	char path[4096];
	for (size_t i = 0; i < nn; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		FILE *f = fopen(path, "rb");
		free(names[i]);
		if (!f)
			continue;
		char *line = NULL;
		size_t cap = 0;
		ssize_t n;
		int inbody = 0;
		while ((n = getline(&line, &cap, f)) > 0) {
			while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
				line[--n] = 0;
			if (!inbody) {
				if (n == 0)
					inbody = 1;
				continue;
			}
			if (line_is_text(line, (size_t)n)) {
				bput(&out, line, (size_t)n);
				bchr(&out, '\n');
			}
		}
		free(line);
		fclose(f);
	}
	free(names);
	if (out.len < 100000)
		die("corpus %s: too little text (%zu bytes)", dir, out.len);
	CORPUS = out.p;
	CORPUS_LEN = out.len;
}

/* ---------- text generation ---------- */

/* Appends about `target` bytes of prose, wrapped at ~72 columns, each line
 * prefixed by `prefix` (for quoted replies). */
static void gen_prose(rng_t *r, buf_t *b, size_t target, const char *prefix)
{
	size_t start = b->len, col = 0;
	size_t plen = strlen(prefix);
	if (CORPUS) {
		/* runs of real lines from random places of the real corpus */
		while (b->len - start < target) {
			size_t pos = (size_t)(rnext(r) % CORPUS_LEN);
			while (pos > 0 && CORPUS[pos - 1] != '\n')
				pos--;
			int nlines = 2 + (int)rbelow(r, 8);
			for (int i = 0; i < nlines && pos < CORPUS_LEN && b->len - start < target; i++) {
				const char *nl = memchr(CORPUS + pos, '\n', CORPUS_LEN - pos);
				size_t len = nl ? (size_t)(nl - (CORPUS + pos)) : CORPUS_LEN - pos;
				bput(b, prefix, plen);
				bput(b, CORPUS + pos, len);
				bchr(b, '\n');
				pos += len + 1;
			}
			if (rchance(r, 0.5)) {
				bput(b, prefix, plen);
				bchr(b, '\n');
			}
		}
		return;
	}
	bput(b, prefix, plen);
	col = plen;
	int sent_words = 0, sent_len = 6 + (int)rbelow(r, 16), para_sent = 0,
	    para_len = 2 + (int)rbelow(r, 5);
	int cap_next = 1;
	while (b->len - start < target) {
		char w[64];
		buf_t tmp = {w, 0, 0};
		const char *word;
		if (rchance(r, 0.04)) {
			buf_t rb = {0};
			rare_word(r, &rb);
			snprintf(w, sizeof w, "%s", rb.p);
			free(rb.p);
			word = w;
		} else if (rchance(r, 0.015)) {
			snprintf(w, sizeof w, "%u", (unsigned)(rnext(r) % (rchance(r, 0.5) ? 100 : 100000)));
			word = w;
		} else
			word = zipf_word(r);
		(void)tmp;
		size_t wl = strlen(word);
		if (col + wl + 1 > 72) {
			bchr(b, '\n');
			bput(b, prefix, plen);
			col = plen;
		} else if (col > plen) {
			bchr(b, ' ');
			col++;
		}
		if (cap_next && word[0] >= 'a' && word[0] <= 'z') {
			bchr(b, (char)(word[0] - 32));
			bput(b, word + 1, wl - 1);
		} else
			bput(b, word, wl);
		cap_next = 0;
		col += wl;
		if (++sent_words >= sent_len) {
			bchr(b, rchance(r, 0.12) ? '?' : rchance(r, 0.05) ? '!' : '.');
			col++;
			cap_next = 1;
			sent_words = 0;
			sent_len = 5 + (int)rbelow(r, 18);
			if (++para_sent >= para_len) {
				bchr(b, '\n');
				bput(b, prefix, plen);
				bchr(b, '\n');
				bput(b, prefix, plen);
				col = plen;
				para_sent = 0;
				para_len = 1 + (int)rbelow(r, 6);
			}
		} else if (rchance(r, 0.07)) {
			bchr(b, ',');
			col++;
		}
	}
	bchr(b, '\n');
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_lines(buf_t *b, const unsigned char *src, size_t n)
{
	bgrow(b, n / 57 * 78 + 80);
	char *o = b->p + b->len;
	size_t i = 0;
	while (i < n) {
		size_t chunk = n - i < 57 ? n - i : 57;
		size_t j = 0;
		for (; j + 3 <= chunk; j += 3) {
			uint32_t v = (uint32_t)src[i + j] << 16 | (uint32_t)src[i + j + 1] << 8 | src[i + j + 2];
			*o++ = B64[v >> 18]; *o++ = B64[(v >> 12) & 63]; *o++ = B64[(v >> 6) & 63]; *o++ = B64[v & 63];
		}
		if (chunk - j == 1) {
			uint32_t v = (uint32_t)src[i + j] << 16;
			*o++ = B64[v >> 18]; *o++ = B64[(v >> 12) & 63]; *o++ = '='; *o++ = '=';
		} else if (chunk - j == 2) {
			uint32_t v = (uint32_t)src[i + j] << 16 | (uint32_t)src[i + j + 1] << 8;
			*o++ = B64[v >> 18]; *o++ = B64[(v >> 12) & 63]; *o++ = B64[(v >> 6) & 63]; *o++ = '=';
		}
		*o++ = '\n';
		i += chunk;
	}
	b->len = (size_t)(o - b->p);
	b->p[b->len] = 0;
}

static void b64_random(rng_t *r, buf_t *b, size_t n, const char *magic)
{
	unsigned char *raw = xmalloc(n + 8);
	size_t ml = strlen(magic);
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = rnext(r);
		memcpy(raw + i, &v, 8);
	}
	memcpy(raw, magic, ml < n ? ml : n);
	b64_lines(b, raw, n);
	free(raw);
}

static void rand_b64(rng_t *r, buf_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		bchr(b, B64[rbelow(r, 64)]);
}

static void rand_hex(rng_t *r, buf_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		bchr(b, "0123456789abcdef"[rbelow(r, 16)]);
}

static void rfc2822_date(buf_t *b, time_t t, int tzmin)
{
	time_t lt = t + tzmin * 60;
	struct tm tm;
	gmtime_r(&lt, &tm);
	static const char *dn[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *mn[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	int a = tzmin < 0 ? -tzmin : tzmin;
	bprintf(b, "%s, %d %s %d %02d:%02d:%02d %c%02d%02d", dn[tm.tm_wday], tm.tm_mday, mn[tm.tm_mon],
		tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, tzmin < 0 ? '-' : '+', a / 60, a % 60);
}

/* ---------- messages ---------- */

typedef struct {
	const char *user, *domain; /* recipient account; NULL for list posts (same bytes everywhere) */
	int list;                  /* index into LISTS or -1 */
	int sent;                  /* written by the account (Sent/Drafts) */
	time_t date;
} msgctx_t;

static void person(rng_t *r, buf_t *name, buf_t *addr)
{
	const char *f = FIRST[rbelow(r, NFIRST)], *l = LAST[rbelow(r, NLAST)];
	bprintf(name, "%s %s", f, l);
	const char *d = EXT_DOMAINS[rbelow(r, NEXT_DOMAINS)];
	int style = (int)rbelow(r, 3);
	for (const char *p = f; *p; p++)
		bchr(addr, (char)(*p | 32));
	if (style == 0)
		bchr(addr, '.');
	if (style != 2)
		for (const char *p = l; *p; p++)
			bchr(addr, (char)(*p | 32));
	else
		bprintf(addr, "%u", (unsigned)rbelow(r, 1000));
	bprintf(addr, "@%s", d);
}

static void subject(rng_t *r, buf_t *b)
{
	static const char *pre[] = {"", "", "", "Re: ", "Re: ", "Fwd: ", "RE: ", "AW: "};
	bstr(b, pre[rbelow(r, 8)]);
	int n = 2 + (int)rbelow(r, 8);
	for (int i = 0; i < n; i++) {
		const char *w = zipf_word(r);
		if (i == 0 && w[0] >= 'a' && w[0] <= 'z') {
			bchr(b, (char)(w[0] - 32));
			bstr(b, w + 1);
		} else
			bstr(b, w);
		if (i + 1 < n)
			bchr(b, ' ');
	}
}

static void gen_body_text(rng_t *r, buf_t *b, size_t target, const char *to_first, const char *from_name)
{
	static const char *greet[] = {"Hi", "Hello", "Dear", "Hey", "Good morning"};
	static const char *close[] = {"Best regards", "Thanks", "Cheers", "Kind regards", "Best", "Thank you"};
	size_t start = b->len;
	bprintf(b, "%s %s,\n\n", greet[rbelow(r, 5)], to_first);
	size_t quote = 0;
	if (target > 1500 && rchance(r, 0.4))
		quote = target * (3 + rbelow(r, 5)) / 10;
	size_t own = target > quote + 300 ? target - quote - 300 : 200;
	gen_prose(r, b, own, "");
	bprintf(b, "\n%s,\n%s\n", close[rbelow(r, 6)], from_name);
	if (rchance(r, 0.5))
		bprintf(b, "\n-- \n%s\nPhone: +1 555 %03u %04u\n", from_name, (unsigned)rbelow(r, 1000), (unsigned)rbelow(r, 10000));
	if (rchance(r, 0.1))
		bstr(b, "\nCONFIDENTIALITY NOTICE: This e-mail message, including any attachments, is for the\n"
			"sole use of the intended recipient(s) and may contain confidential and privileged\n"
			"information. Any unauthorized review, use, disclosure or distribution is prohibited.\n"
			"If you are not the intended recipient, please contact the sender by reply e-mail and\n"
			"destroy all copies of the original message.\n");
	if (quote) {
		buf_t n = {0}, a = {0};
		person(r, &n, &a);
		bstr(b, "\nOn ");
		rfc2822_date(b, 1500000000 + (time_t)(rnext(r) % 200000000), 60);
		bprintf(b, ", %s <%s> wrote:\n", n.p, a.p);
		gen_prose(r, b, b->len - start < target ? target - (b->len - start) : 100, "> ");
		free(n.p);
		free(a.p);
	}
}

static void html_of(buf_t *b, const char *text, size_t n)
{
	bstr(b, "<!DOCTYPE html>\n<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\n"
		"<style type=\"text/css\">body{font-family:Calibri,Arial,sans-serif;font-size:11pt;}</style></head>\n"
		"<body dir=\"ltr\">\n<div class=\"WordSection1\">\n<p class=\"MsoNormal\">");
	for (size_t i = 0; i < n; i++) {
		char c = text[i];
		if (c == '\n' && i + 1 < n && text[i + 1] == '\n') {
			bstr(b, "</p>\n<p class=\"MsoNormal\">");
			i++;
		} else if (c == '\n')
			bstr(b, "<br>\n");
		else if (c == '<')
			bstr(b, "&lt;");
		else if (c == '>')
			bstr(b, "&gt;");
		else if (c == '&')
			bstr(b, "&amp;");
		else
			bchr(b, c);
	}
	bstr(b, "</p>\n</div>\n</body></html>\n");
}

/* Builds one message into b.  All randomness comes from r, so a list post
 * seeded the same way is byte-identical in every account. */
static void gen_message(rng_t *r, buf_t *b, const msgctx_t *m)
{
	/* size model: total bytes of the message */
	double u = runif(r);
	size_t attach = 0;
	int attach_text = 0;
	if (u < 0.0004)
		attach = (size_t)exp(log(1 << 20) + runif(r) * (log(10 << 20) - log(1 << 20))); /* 1..10 MiB */
	else if (u < 0.027)
		attach = (size_t)fmin(rlognorm(r, 24 << 10, 1.1), 900 << 10);
	if (attach && rchance(r, 0.15))
		attach_text = 1;
	size_t text = (size_t)fmax(fmin(rlognorm(r, 3500, 0.75), 300 << 10), 200);
	int html = m->list < 0 ? rchance(r, 0.45) : rchance(r, 0.2);

	buf_t fromn = {0}, froma = {0}, ton = {0}, toa = {0};
	if (m->sent) {
		bprintf(&fromn, "%s", m->user);
		fromn.p[0] = (char)(fromn.p[0] & ~32);
		for (char *p = fromn.p; *p; p++)
			if (*p == '.') {
				*p = ' ';
				p[1] = (char)(p[1] & ~32);
			}
		bprintf(&froma, "%s@%s", m->user, m->domain);
		person(r, &ton, &toa);
	} else {
		person(r, &fromn, &froma);
		if (m->user) {
			bprintf(&ton, "%s", m->user);
			bprintf(&toa, "%s@%s", m->user, m->domain);
		} else {
			bprintf(&ton, "%s", LISTS[m->list]);
			bprintf(&toa, "%s@lists.example.org", LISTS[m->list]);
		}
	}
	const char *fromdom = strchr(froma.p, '@') + 1;
	int tz = ((int)rbelow(r, 25) - 12) * 60;
	time_t t = m->date;

	/* trace headers, newest first */
	if (!m->sent) {
		if (m->user) {
			bprintf(b, "Return-Path: <%s>\nDelivered-To: %s\n", froma.p, toa.p);
			bprintf(b, "Received: from mx.%s\n\tby mail.%s with LMTP\n\tid ", m->domain, m->domain);
			rand_b64(r, b, 22);
			bprintf(b, "\n\t(envelope-from <%s>)\n\tfor <%s>; ", froma.p, toa.p);
			rfc2822_date(b, t, 60);
			bchr(b, '\n');
		}
		int hops = 1 + (int)rbelow(r, 4);
		for (int h = 0; h < hops; h++) {
			const char *relay = m->list >= 0 && h == 0 ? "lists.example.org" : RELAYS[rbelow(r, NRELAYS)];
			bprintf(b, "Received: from %s (%s [%u.%u.%u.%u])\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n"
				"\t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)\n"
				"\t(No client certificate requested)\n\tby %s (Postfix) with ESMTPS id ",
				relay, relay, 10 + rbelow(r, 200), rbelow(r, 256), rbelow(r, 256), 1 + rbelow(r, 254),
				h == 0 && m->user ? "mx.example.com" : RELAYS[rbelow(r, NRELAYS)]);
			rand_hex(r, b, 1);
			bchr(b, 'X');
			rand_b64(r, b, 10);
			bstr(b, "; ");
			rfc2822_date(b, t - h * 3 - (time_t)rbelow(r, 3), tz);
			bchr(b, '\n');
		}
		if (rchance(r, 0.8)) {
			bprintf(b, "Authentication-Results: mx.example.com;\n\tdkim=pass (2048-bit key; unprotected) header.d=%s header.i=@%s header.b=", fromdom, fromdom);
			rand_b64(r, b, 8);
			bprintf(b, ";\n\tdmarc=pass (p=none dis=none) header.from=%s;\n\tspf=pass smtp.mailfrom=%s\n", fromdom, fromdom);
			bprintf(b, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s;\n\ts=selector%u; t=%lld; x=%lld; bh=",
				fromdom, 1 + rbelow(r, 2), (long long)t, (long long)t + 604800);
			rand_b64(r, b, 43);
			bstr(b, "=;\n\th=From:To:Subject:Date:Message-ID:MIME-Version:Content-Type;\n\tb=");
			for (int i = 0; i < 5; i++) {
				rand_b64(r, b, i < 4 ? 70 : 62);
				bstr(b, i < 4 ? "\n\t " : "==\n");
			}
		}
		if (rchance(r, 0.6))
			bprintf(b, "X-Spam-Status: No, score=%d.%d required=5.0 tests=BAYES_00,DKIM_SIGNED,\n\tDKIM_VALID,DKIM_VALID_AU,RCVD_IN_DNSWL_NONE,SPF_HELO_NONE,SPF_PASS\n\tautolearn=ham autolearn_force=no version=3.4.6\n",
				-(int)rbelow(r, 3), (int)rbelow(r, 10));
	}
	bstr(b, "Message-ID: <");
	rand_hex(r, b, 16);
	bchr(b, '.');
	rand_hex(r, b, 8);
	bprintf(b, "@%s>\nDate: ", fromdom);
	rfc2822_date(b, t - 2 - (time_t)rbelow(r, 30), tz);
	bprintf(b, "\nFrom: \"%s\" <%s>\nTo: %s <%s>\n", fromn.p, froma.p, ton.p, toa.p);
	if (rchance(r, 0.2)) {
		buf_t cn = {0}, ca = {0};
		person(r, &cn, &ca);
		bprintf(b, "Cc: %s <%s>\n", cn.p, ca.p);
		free(cn.p);
		free(ca.p);
	}
	bstr(b, "Subject: ");
	if (m->list >= 0)
		bprintf(b, "[%s] ", LISTS[m->list]);
	subject(r, b);
	bchr(b, '\n');
	if (rchance(r, 0.35)) {
		bstr(b, "In-Reply-To: <");
		rand_hex(r, b, 16);
		bprintf(b, "@%s>\nReferences: <", EXT_DOMAINS[rbelow(r, NEXT_DOMAINS)]);
		rand_hex(r, b, 16);
		bprintf(b, "@%s>\n", EXT_DOMAINS[rbelow(r, NEXT_DOMAINS)]);
	}
	if (m->list >= 0)
		bprintf(b, "List-Id: %s <%s.lists.example.org>\nList-Unsubscribe: <https://lists.example.org/mailman/options/%s>,\n"
			" <mailto:%s-request@lists.example.org?subject=unsubscribe>\nList-Post: <mailto:%s@lists.example.org>\n"
			"Precedence: list\n", LISTS[m->list], LISTS[m->list], LISTS[m->list], LISTS[m->list], LISTS[m->list]);
	static const char *agents[] = {"Mozilla/5.0 (X11; Linux x86_64; rv:102.0) Gecko/20100101 Thunderbird/102.15.1",
		"Microsoft Outlook 16.0", "Roundcube Webmail/1.6.4", "Apple Mail (2.3731.700.6)", "Mutt/2.2.9 (2022-11-12)"};
	if (rchance(r, 0.5))
		bprintf(b, "%s: %s\n", rchance(r, 0.5) ? "User-Agent" : "X-Mailer", agents[rbelow(r, 5)]);
	bstr(b, "MIME-Version: 1.0\n");

	/* body */
	buf_t body = {0};
	char tofirst[64];
	snprintf(tofirst, sizeof tofirst, "%s", ton.p);
	for (char *p = tofirst; *p; p++)
		if (*p == ' ' || *p == '.') {
			*p = 0;
			break;
		}
	if (tofirst[0] >= 'a' && tofirst[0] <= 'z')
		tofirst[0] = (char)(tofirst[0] - 32);
	gen_body_text(r, &body, text, tofirst, fromn.p);
	if (m->list >= 0)
		bprintf(&body, "_______________________________________________\n%s mailing list\n%s@lists.example.org\n"
			"https://lists.example.org/mailman/listinfo/%s\n", LISTS[m->list], LISTS[m->list], LISTS[m->list]);

	char bnd1[40], bnd2[40];
	snprintf(bnd1, sizeof bnd1, "=_%016llx", (unsigned long long)rnext(r));
	snprintf(bnd2, sizeof bnd2, "000000000000%012llx", (unsigned long long)(rnext(r) >> 16));
	const char *te = "Content-Transfer-Encoding: 8bit\n";
	if (!attach && !html) {
		bstr(b, "Content-Type: text/plain; charset=\"utf-8\"; format=flowed\n");
		bstr(b, te);
		bchr(b, '\n');
		bput(b, body.p, body.len);
	} else {
		if (attach) {
			bprintf(b, "Content-Type: multipart/mixed;\n\tboundary=\"%s\"\n\nThis is a multi-part message in MIME format.\n\n--%s\n", bnd1, bnd1);
		}
		if (html) {
			bprintf(b, "Content-Type: multipart/alternative; boundary=\"%s\"\n\n--%s\n", bnd2, bnd2);
		}
		bprintf(b, "Content-Type: text/plain; charset=\"utf-8\"\n%s\n", te);
		bput(b, body.p, body.len);
		if (html) {
			bprintf(b, "\n--%s\nContent-Type: text/html; charset=\"utf-8\"\n%s\n", bnd2, te);
			html_of(b, body.p, body.len);
			bprintf(b, "\n--%s--\n", bnd2);
		}
		if (attach) {
			static const struct { const char *type, *ext, *magic; } kinds[] = {
				{"application/pdf", "pdf", "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"},
				{"image/jpeg", "jpg", "\xff\xd8\xff\xe0\x00\x10JFIF\x00"},
				{"image/png", "png", "\x89PNG\r\n\x1a\n"},
				{"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx", "PK\x03\x04"},
				{"application/zip", "zip", "PK\x03\x04"},
			};
			int k = (int)rbelow(r, 5);
			buf_t fn = {0};
			subject(r, &fn);
			for (char *p = fn.p; *p; p++)
				if (*p == ' ' || *p == ':' || *p == '/')
					*p = '_';
			if (attach_text) {
				bprintf(b, "\n--%s\nContent-Type: text/csv; charset=\"utf-8\"; name=\"%s.csv\"\n"
					"Content-Disposition: attachment; filename=\"%s.csv\"\nContent-Transfer-Encoding: base64\n\n",
					bnd1, fn.p, fn.p);
				buf_t csv = {0};
				while (csv.len < attach) {
					bprintf(&csv, "%u,%s,%s,%u.%02u,", (unsigned)rbelow(r, 100000), FIRST[rbelow(r, NFIRST)],
						LAST[rbelow(r, NLAST)], (unsigned)rbelow(r, 5000), (unsigned)rbelow(r, 100));
					bstr(&csv, zipf_word(r));
					bchr(&csv, '\n');
				}
				b64_lines(b, (unsigned char *)csv.p, csv.len);
				free(csv.p);
			} else {
				bprintf(b, "\n--%s\nContent-Type: %s; name=\"%s.%s\"\nContent-Disposition: attachment; filename=\"%s.%s\"\n"
					"Content-Transfer-Encoding: base64\n\n", bnd1, kinds[k].type, fn.p, kinds[k].ext, fn.p, kinds[k].ext);
				b64_random(r, b, attach, kinds[k].magic);
			}
			bprintf(b, "\n--%s--\n", bnd1);
			free(fn.p);
		}
	}
	free(body.p);
	free(fromn.p);
	free(froma.p);
	free(ton.p);
	free(toa.p);
}

/* ---------- accounts, folders ---------- */

typedef struct {
	char name[64];     /* IMAP name with '.' separators, "" = INBOX */
	int exists;        /* 0: parent only (no directory of its own) */
	double weight;     /* share of the account's unique mail */
	int year;          /* Archive.YYYY: messages from this year, else 0 */
	int keywords;      /* has a dovecot-keywords file */
	int sent;          /* Sent/Drafts: written by the owner */
	int lists;         /* list posts are filed here */
	uint32_t uidvalidity;
} folder_t;

static void account_name(int a, char *user, size_t un, char *dom, size_t dn)
{
	const char *f = FIRST[a % NFIRST], *l = LAST[(a / NFIRST) % NLAST];
	char u[64];
	int k = a / (int)(NFIRST * NLAST);
	if (k)
		snprintf(u, sizeof u, "%s.%s%d", f, l, k);
	else
		snprintf(u, sizeof u, "%s.%s", f, l);
	for (char *p = u; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p | 32 : *p);
	snprintf(user, un, "%s", u);
	snprintf(dom, dn, "%s", ACCT_DOMAINS[a % NACCT_DOMAINS]);
}

static int make_folders(rng_t *r, folder_t *F, time_t created)
{
	int n = 0;
#define FOLDER(nm, w, y, kw, s, l) do { folder_t *f = &F[n++]; memset(f, 0, sizeof *f); \
	snprintf(f->name, sizeof f->name, "%s", nm); f->exists = 1; f->weight = w; f->year = y; \
	f->keywords = kw; f->sent = s; f->lists = l; } while (0)
	FOLDER("", 40, 0, 1, 0, 0);
	FOLDER("Sent", 14, 0, 0, 1, 0);
	FOLDER("Drafts", 0.5, 0, 0, 1, 0);
	FOLDER("Trash", 4, 0, 0, 0, 0);
	FOLDER("Junk", 3, 0, 1, 0, 0);
	FOLDER("Archive", 6, 0, 1, 0, 0);
	int y0 = 2016 + (int)rbelow(r, 4);
	for (int y = y0; y <= 2022; y++)
		if (rchance(r, 0.8))
{
			FOLDER("", 22.0 / (2023 - y0), y, 1, 0, 0);
			snprintf(F[n - 1].name, sizeof F[n - 1].name, "Archive.%d", y);
		}
	/* list folders; "Lists" itself exists only as a parent for some accounts */
	if (rchance(r, 0.4)) {
		FOLDER("Lists", 0, 0, 0, 0, 0);
	}
	FOLDER("Lists.dev", 1, 0, 0, 0, 1);
	FOLDER("Lists.announce", 1, 0, 0, 0, 1);
	if (rchance(r, 0.5)) {
		FOLDER("Projects.Alpha", 3, 0, 1, 0, 0);
		if (rchance(r, 0.5))
			FOLDER("Projects.Alpha.Contracts", 1, 0, 1, 0, 0);
		if (rchance(r, 0.5))
			FOLDER("Projects", 1, 0, 0, 0, 0);
	}
	if (rchance(r, 0.3))
		FOLDER("Family & Friends", 2, 0, 0, 0, 0); /* stored as Family &- Friends (mUTF-7) */
	if (rchance(r, 0.2))
		FOLDER("Receipts", 1.5, 0, 0, 0, 0);
#undef FOLDER
	for (int i = 0; i < n; i++)
		F[i].uidvalidity = (uint32_t)created + (uint32_t)i;
	return n;
}

/* Directory name on disk for a folder: Maildir++ ".A.B", mUTF-7 for '&'. */
static void folder_dir(const folder_t *f, char *out, size_t n)
{
	if (!f->name[0]) {
		snprintf(out, n, ".");
		return;
	}
	char tmp[128];
	size_t j = 0;
	for (const char *p = f->name; *p && j + 3 < sizeof tmp; p++) {
		if (*p == '&') {
			tmp[j++] = '&';
			tmp[j++] = '-';
		} else
			tmp[j++] = *p;
	}
	tmp[j] = 0;
	snprintf(out, n, ".%s", tmp);
}

typedef struct {
	int folder;
	time_t t;
	int64_t pool;     /* list post index or -1 */
	uint32_t slot;
	uint32_t uid;
	char flags[16];
	int in_new;
} msg_t;

typedef struct {
	int accounts, messages;
	uint64_t seed;
	const char *out;
	int jobs;
} params_t;

static const time_t T_END = 1704067200; /* 2024-01-01 */

/* date of list post j: 2015..2023, the same for every account */
static time_t pool_date(uint64_t seed, int64_t j)
{
	rng_t pr;
	rng_seed(&pr, seed, 2, (uint64_t)j, 0);
	return 1420070400 + (time_t)(rnext(&pr) % (uint64_t)(T_END - 1420070400));
}

static int cmp_msg(const void *a, const void *b)
{
	const msg_t *x = a, *y = b;
	if (x->folder != y->folder)
		return x->folder - y->folder;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return (int)x->slot - (int)y->slot;
}

static void pick_flags(rng_t *r, const folder_t *f, char *out, int recent)
{
	char fl[16];
	int n = 0;
	int seen = f->sent || !recent ? rchance(r, 0.97) : rchance(r, 0.5);
	if (!strcmp(f->name, "Drafts"))
		fl[n++] = 'D';
	if (rchance(r, 0.04))
		fl[n++] = 'F';
	int fwd = !f->sent && rchance(r, 0.02);
	if (fwd)
		fl[n++] = 'P';
	if (!f->sent && rchance(r, 0.12))
		fl[n++] = 'R';
	if (seen)
		fl[n++] = 'S';
	if (!strcmp(f->name, "Trash") && rchance(r, 0.3))
		fl[n++] = 'T';
	if (f->keywords) {
		if (fwd)
			fl[n++] = 'a'; /* $Forwarded */
		if (!strcmp(f->name, "Junk"))
			fl[n++] = 'b'; /* $Junk */
		else if (rchance(r, 0.05))
			fl[n++] = 'c'; /* NonJunk */
		if (rchance(r, 0.03))
			fl[n++] = 'd'; /* $label1 */
	}
	fl[n] = 0;
	snprintf(out, 16, "%s", fl);
}

static const char *KEYWORDS = "0 $Forwarded\n1 $Junk\n2 NonJunk\n3 $label1\n";

static size_t count_lf(const char *p, size_t n)
{
	size_t c = 0;
	const char *e = p + n;
	while ((p = memchr(p, '\n', (size_t)(e - p)))) {
		c++;
		p++;
	}
	return c;
}

/* Writes a message file and returns its name (base + flags). */
static void write_msg(rng_t *nr, const char *dir, const msg_t *m, const buf_t *b, int host, char *name, size_t nn)
{
	static const char *hosts[] = {"mail", "mail2", "imap1.example.com"};
	char base[160];
	snprintf(base, sizeof base, "%lld.M%uP%u.%s,S=%zu,W=%zu", (long long)m->t, (unsigned)rbelow(nr, 1000000),
		1000 + (unsigned)rbelow(nr, 60000), hosts[host % 3], b->len, b->len + count_lf(b->p, b->len));
	if (m->in_new)
		snprintf(name, nn, "%s", base);
	else
		snprintf(name, nn, "%s:2,%s", base, m->flags);
	char path[4096];
	snprintf(path, sizeof path, "%s/%s/%s", dir, m->in_new ? "new" : "cur", name);
	write_file(path, b->p, b->len, m->t);
}

static void gen_account(const params_t *P, int a, int64_t pool_size, int shared_per_acct)
{
	char user[64], dom[64];
	account_name(a, user, sizeof user, dom, sizeof dom);
	char root[4096];
	snprintf(root, sizeof root, "%s/mail/%s/%s/Maildir", P->out, dom, user);
	rng_t r;
	rng_seed(&r, P->seed, 1, (uint64_t)a, 0);
	time_t created = 1420070400 + (time_t)(rnext(&r) % (5 * 365 * 86400ULL)); /* 2015..2019 */
	folder_t F[32];
	int nf = make_folders(&r, F, created);
	int host = (int)rbelow(&r, 3);
	int M = P->messages;
	msg_t *msgs = xmalloc(sizeof *msgs * (size_t)M);
	int64_t pool_start = pool_size ? (int64_t)(rnext(&r) % (uint64_t)pool_size) : 0;
	int list_folders[4], nlf = 0;
	double wsum = 0;
	for (int i = 0; i < nf; i++) {
		if (F[i].lists && nlf < 4)
			list_folders[nlf++] = i;
		if (F[i].exists)
			wsum += F[i].weight;
	}
	for (int i = 0; i < M; i++) {
		msg_t *m = &msgs[i];
		memset(m, 0, sizeof *m);
		m->slot = (uint32_t)i;
		m->pool = -1;
		if (i < shared_per_acct && pool_size) {
			m->pool = (pool_start + i) % pool_size;
			m->t = pool_date(P->seed, m->pool) + 2 + (time_t)rbelow(&r, 40);
			m->folder = rchance(&r, 0.7) ? list_folders[rbelow(&r, (uint32_t)nlf)] : 0;
		} else {
			double u = runif(&r) * wsum;
			int f = 0;
			for (; f < nf; f++) {
				if (!F[f].exists)
					continue;
				if (u < F[f].weight)
					break;
				u -= F[f].weight;
			}
			if (f >= nf)
				f = 0;
			m->folder = f;
			if (F[f].year) {
				struct tm tm = {.tm_year = F[f].year - 1900, .tm_mon = 0, .tm_mday = 1};
				time_t y = timegm(&tm);
				m->t = y + (time_t)(rnext(&r) % (365 * 86400ULL));
			} else
				m->t = created + (time_t)(rnext(&r) % (uint64_t)(T_END - created));
		}
	}
	qsort(msgs, (size_t)M, sizeof *msgs, cmp_msg);

	/* per folder: uids with gaps, flags, new/ for recent unread */
	buf_t b = {0}, ul = {0};
	rng_t nr;
	rng_seed(&nr, P->seed, 3, (uint64_t)a, 0);
	mkdirs(root);
	buf_t subs = {0};
	bstr(&subs, "V\t2\n\n");
	for (int f = 0, i = 0; f < nf; f++) {
		char fd[160], dir[4096];
		folder_dir(&F[f], fd, sizeof fd);
		snprintf(dir, sizeof dir, "%s/%s", root, fd);
		if (F[f].name[0]) {
			/* storage name (mUTF-7, as the directory), '\t' for the separator */
			char tn[160];
			snprintf(tn, sizeof tn, "%s", fd + 1);
			for (char *p = tn; *p; p++)
				if (*p == '.')
					*p = '\t';
			if (F[f].exists || rchance(&r, 0.3)) {
				bstr(&subs, tn);
				bchr(&subs, '\n');
			}
		}
		if (!F[f].exists)
			continue;
		char sub[4200];
		for (int k = 0; k < 3; k++) {
			snprintf(sub, sizeof sub, "%s/%s", dir, (const char *[]){"cur", "new", "tmp"}[k]);
			mkdirs(sub);
		}
		if (F[f].name[0]) {
			snprintf(sub, sizeof sub, "%s/maildirfolder", dir);
			write_file(sub, "", 0, created);
		}
		if (F[f].keywords) {
			snprintf(sub, sizeof sub, "%s/dovecot-keywords", dir);
			write_file(sub, KEYWORDS, strlen(KEYWORDS), 0);
		}
		int j = i;
		while (j < M && msgs[j].folder == f)
			j++;
		int nnew = (f == 0 || F[f].lists) && rchance(&r, 0.35) ? (int)rbelow(&r, 8) : 0;
		uint32_t uid = 1 + (rchance(&r, 0.3) ? rbelow(&r, 5000) : 0);
		ul.len = 0;
		bprintf(&ul, "3 V%u N%%010u G", F[f].uidvalidity);
		rand_hex(&nr, &ul, 32);
		bchr(&ul, '\n');
		for (int k = i; k < j; k++) {
			msg_t *m = &msgs[k];
			if (rchance(&r, 0.03))
				uid += 1 + rbelow(&r, 20); /* expunged earlier */
			m->uid = uid++;
			m->in_new = k >= j - nnew;
			pick_flags(&r, &F[f], m->flags, k >= j - 30);
			rng_t mr;
			msgctx_t c = {.user = user, .domain = dom, .list = -1, .sent = F[f].sent, .date = m->t};
			if (m->pool >= 0) {
				rng_seed(&mr, P->seed, 2, (uint64_t)m->pool, 1);
				c.user = NULL;
				c.domain = NULL;
				c.sent = 0;
				c.list = (int)(m->pool % NLISTS);
				c.date = pool_date(P->seed, m->pool);
			} else
				rng_seed(&mr, P->seed, 4, (uint64_t)a, m->slot);
			b.len = 0;
			gen_message(&mr, &b, &c);
			char name[256];
			write_msg(&nr, dir, m, &b, host, name, sizeof name);
			/* Dovecot records the name it saw: APPENDed mail with its flags,
			 * delivered mail without */
			if (F[f].sent) {
				bprintf(&ul, "%u :%s\n", m->uid, name);
			} else {
				char *colon = strchr(name, ':');
				if (colon)
					*colon = 0;
				bprintf(&ul, "%u :%s\n", m->uid, name);
			}
		}
		uint32_t next = uid + (rchance(&r, 0.1) ? 1 + rbelow(&r, 3) : 0);
		char hdr[16];
		snprintf(hdr, sizeof hdr, "%010u", next);
		char *ph = strstr(ul.p, "%010u");
		/* replace the placeholder with the number (shorter, so shift) */
		size_t hl = strlen(hdr), pl = 5;
		(void)hl;
		char tmpn[16];
		snprintf(tmpn, sizeof tmpn, "%u", next);
		size_t tl = strlen(tmpn);
		memmove(ph + tl, ph + pl, ul.len - (size_t)(ph + pl - ul.p) + 1);
		memcpy(ph, tmpn, tl);
		ul.len = ul.len - pl + tl;
		snprintf(sub, sizeof sub, "%s/dovecot-uidlist", dir);
		write_file(sub, ul.p, ul.len, 0);
		i = j;
	}
	char sp[4200];
	snprintf(sp, sizeof sp, "%s/subscriptions", root);
	write_file(sp, subs.p, subs.len, 0);
	free(subs.p);
	free(ul.p);
	free(b.p);
	free(msgs);
}

/* ---------- mutate ---------- */

typedef struct { char *dir; char *name; int cur; } ent_t;

static int cmp_ent(const void *a, const void *b)
{
	const ent_t *x = a, *y = b;
	int c = strcmp(x->dir, y->dir);
	if (c)
		return c;
	if (x->cur != y->cur)
		return x->cur - y->cur;
	return strcmp(x->name, y->name);
}

static void list_dir(const char *fdir, int cur, ent_t **E, size_t *n, size_t *cap)
{
	char p[4200];
	snprintf(p, sizeof p, "%s/%s", fdir, cur ? "cur" : "new");
	DIR *d = opendir(p);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 1024;
			*E = xrealloc(*E, *cap * sizeof **E);
		}
		(*E)[*n].dir = strdup(fdir);
		(*E)[*n].name = strdup(e->d_name);
		(*E)[*n].cur = cur;
		(*n)++;
	}
	closedir(d);
}

/* Rewrites dir/dovecot-uidlist: drops records whose base name is in del,
 * appends records for add (names), updates N. */
static void uidlist_update(const char *dir, char **del, int ndel, char **add, int nadd)
{
	char p[4200], tp[4300];
	snprintf(p, sizeof p, "%s/dovecot-uidlist", dir);
	FILE *f = fopen(p, "r");
	if (!f)
		die("%s: %s", p, strerror(errno));
	char *line = NULL;
	size_t cap = 0;
	buf_t out = {0};
	unsigned v = 0, next = 1;
	char guid[64] = "";
	if (getline(&line, &cap, f) <= 0 || sscanf(line, "3 V%u N%u G%63s", &v, &next, guid) != 3)
		die("%s: bad header", p);
	buf_t recs = {0};
	ssize_t n;
	while ((n = getline(&line, &cap, f)) > 0) {
		char *nm = strstr(line, " :");
		int drop = 0;
		if (nm) {
			nm += 2;
			size_t bl = strcspn(nm, ":\n");
			for (int i = 0; i < ndel && !drop; i++)
				if (strlen(del[i]) >= bl && !strncmp(del[i], nm, bl) && (del[i][bl] == ':' || !del[i][bl]))
					drop = 1;
		}
		if (!drop)
			bput(&recs, line, (size_t)n);
	}
	free(line);
	fclose(f);
	for (int i = 0; i < nadd; i++)
		bprintf(&recs, "%u :%s\n", next++, add[i]);
	bprintf(&out, "3 V%u N%u G%s\n", v, next, guid);
	bput(&out, recs.p ? recs.p : "", recs.len);
	snprintf(tp, sizeof tp, "%s/dovecot-uidlist.tmp", dir);
	write_file(tp, out.p, out.len, 0);
	if (rename(tp, p))
		die("rename %s: %s", tp, strerror(errno));
	free(out.p);
	free(recs.p);
}

static char *flags_of(const char *name)
{
	char *c = strstr(name, ":2,");
	return c ? c + 3 : NULL;
}

static void mutate_account(const params_t *P, int a, int round, double pct, const char *relpath)
{
	char root[4096];
	snprintf(root, sizeof root, "%s/mail/%s", P->out, relpath);
	char user[64], dom[64];
	account_name(a, user, sizeof user, dom, sizeof dom);
	/* folders: root and every .X directory with cur/ */
	char **dirs = NULL;
	int nd = 0;
	DIR *d = opendir(root);
	if (!d)
		die("%s: %s", root, strerror(errno));
	struct dirent *e;
	dirs = xrealloc(dirs, sizeof *dirs);
	dirs[nd++] = strdup(root);
	while ((e = readdir(d))) {
		if (e->d_name[0] != '.' || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char p[4200];
		snprintf(p, sizeof p, "%s/%s/cur", root, e->d_name);
		struct stat st;
		if (stat(p, &st) || !S_ISDIR(st.st_mode))
			continue;
		dirs = xrealloc(dirs, sizeof *dirs * (size_t)(nd + 1));
		snprintf(p, sizeof p, "%s/%s", root, e->d_name);
		dirs[nd++] = strdup(p);
	}
	closedir(d);
	qsort(dirs + 1, (size_t)nd - 1, sizeof *dirs, cmp_str);
	ent_t *E = NULL;
	size_t ne = 0, cap = 0;
	for (int i = 0; i < nd; i++) {
		list_dir(dirs[i], 1, &E, &ne, &cap);
		list_dir(dirs[i], 0, &E, &ne, &cap);
	}
	qsort(E, ne, sizeof *E, cmp_ent);
	rng_t r;
	rng_seed(&r, P->seed, 10 + (uint64_t)round, (uint64_t)a, 0);
	int total = (int)(ne * pct / 100.0 + runif(&r));
	int ndeliver = total / 2, nflag = total * 4 / 10, ndel = total - ndeliver - nflag;
	/* flag changes and expunges: distinct random entries */
	char *used = calloc(ne ? ne : 1, 1);
	char **deleted = xmalloc(sizeof(char *) * (size_t)(ndel + 1));
	char **deldir = xmalloc(sizeof(char *) * (size_t)(ndel + 1));
	int nd_done = 0;
	for (int k = 0; k < nflag + ndel && ne; k++) {
		size_t i = rnext(&r) % ne;
		for (size_t tries = 0; used[i] && tries < ne; tries++)
			i = (i + 1) % ne;
		if (used[i])
			break;
		used[i] = 1;
		char from[8400], to[8400];
		snprintf(from, sizeof from, "%s/%s/%s", E[i].dir, E[i].cur ? "cur" : "new", E[i].name);
		if (k < nflag) {
			/* flag change: read (new -> cur, +S), answered, flagged, unflagged */
			char base[300], fl[32] = "";
			snprintf(base, sizeof base, "%s", E[i].name);
			char *c = strstr(base, ":2,");
			if (c) {
				snprintf(fl, sizeof fl, "%s", c + 3);
				*c = 0;
			}
			char add = "SRFSSR"[rbelow(&r, 6)];
			char nf[40];
			if (strchr(fl, add) && add == 'F') {
				/* unflag */
				size_t o = 0;
				for (char *q = fl; *q; q++)
					if (*q != 'F')
						nf[o++] = *q;
				nf[o] = 0;
			} else {
				int have = strchr(fl, add) != NULL;
				if (have)
					add = strchr(fl, 'S') ? (strchr(fl, 'R') ? 'F' : 'R') : 'S';
				snprintf(nf, sizeof nf, "%s%c", fl, strchr(fl, add) ? 0 : add);
				/* keep ASCII order as Dovecot does */
				size_t L = strlen(nf);
				for (size_t x = 1; x < L; x++)
					for (size_t y = x; y > 0 && nf[y - 1] > nf[y]; y--) {
						char t = nf[y];
						nf[y] = nf[y - 1];
						nf[y - 1] = t;
					}
			}
			snprintf(to, sizeof to, "%s/cur/%s:2,%s", E[i].dir, base, nf);
			if (strcmp(from, to) && rename(from, to))
				die("rename %s: %s", from, strerror(errno));
		} else {
			if (unlink(from))
				die("unlink %s: %s", from, strerror(errno));
			deleted[nd_done] = E[i].name;
			deldir[nd_done++] = E[i].dir;
		}
	}
	/* expunges: rewrite the uidlists concerned */
	for (int i = 0; i < nd; i++) {
		char *dl[64];
		int n = 0;
		for (int k = 0; k < nd_done && n < 64; k++)
			if (!strcmp(deldir[k], dirs[i]))
				dl[n++] = deleted[k];
		if (n)
			uidlist_update(dirs[i], dl, n, NULL, 0);
	}
	/* deliveries: INBOX or a list folder, into new/; plus this round's list
	 * posts, the same bytes in every account that gets them */
	time_t t0 = T_END + (time_t)round * 86400;
	buf_t b = {0};
	char **added = xmalloc(sizeof(char *) * (size_t)(ndeliver + 16));
	int *addto = xmalloc(sizeof(int) * (size_t)(ndeliver + 16));
	int na = 0;
	int nposts = 1 + (int)(pct * 2);
	for (int k = 0; k < ndeliver + nposts; k++) {
		msg_t m = {0};
		msgctx_t c = {.user = user, .domain = dom, .list = -1, .sent = 0};
		rng_t mr;
		int fi = 0;
		if (k >= ndeliver) {
			int j = k - ndeliver;
			rng_t sel;
			rng_seed(&sel, P->seed, 20 + (uint64_t)round, (uint64_t)j, (uint64_t)a);
			if (!rchance(&sel, 0.4))
				continue;
			rng_seed(&mr, P->seed, 21 + (uint64_t)round, (uint64_t)j, 0);
			c.user = c.domain = NULL;
			c.list = j % (int)NLISTS;
			c.date = t0 + j * 3000;
			m.t = c.date + 2 + (time_t)rbelow(&sel, 40);
			for (int i = 0; i < nd; i++)
				if (strstr(dirs[i], "/.Lists.dev"))
					fi = i;
		} else {
			rng_seed(&mr, P->seed, 30 + (uint64_t)round, (uint64_t)a, (uint64_t)k);
			time_t step = 80000 / (ndeliver + 1);
			m.t = c.date = t0 + (time_t)k * step + (time_t)rbelow(&r, (uint32_t)step / 2 + 1);
		}
		m.in_new = 1;
		b.len = 0;
		gen_message(&mr, &b, &c);
		char name[256];
		write_msg(&r, dirs[fi], &m, &b, 0, name, sizeof name);
		added[na] = strdup(name);
		addto[na++] = fi;
	}
	for (int i = 0; i < nd; i++) {
		char *al[256];
		int n = 0;
		for (int k = 0; k < na && n < 256; k++)
			if (addto[k] == i)
				al[n++] = added[k];
		if (n)
			uidlist_update(dirs[i], NULL, 0, al, n);
	}
	for (int k = 0; k < na; k++)
		free(added[k]);
	free(added);
	free(addto);
	free(b.p);
	free(deleted);
	free(deldir);
	free(used);
	for (size_t i = 0; i < ne; i++) {
		free(E[i].dir);
		free(E[i].name);
	}
	free(E);
	for (int i = 0; i < nd; i++)
		free(dirs[i]);
	free(dirs);
	(void)flags_of;
}

/* ---------- main ---------- */

static void run_jobs(const params_t *P, void (*fn)(const params_t *, int, void *), void *arg)
{
	int jobs = P->jobs < 1 ? 1 : P->jobs;
	pid_t *pids = xmalloc(sizeof(pid_t) * (size_t)jobs);
	for (int j = 0; j < jobs; j++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (pid == 0) {
			for (int a = j; a < P->accounts; a += jobs)
				fn(P, a, arg);
			_exit(0);
		}
		pids[j] = pid;
	}
	int bad = 0;
	for (int j = 0; j < jobs; j++) {
		int st;
		waitpid(pids[j], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			bad = 1;
	}
	free(pids);
	if (bad)
		die("a worker failed");
}

struct genarg { int64_t pool; int shared; };
static void gen_cb(const params_t *P, int a, void *arg)
{
	struct genarg *g = arg;
	gen_account(P, a, g->pool, g->shared);
}
struct mutarg { int round; double pct; };
static void mut_cb(const params_t *P, int a, void *arg)
{
	struct mutarg *m = arg;
	char user[64], dom[64], rel[200];
	account_name(a, user, sizeof user, dom, sizeof dom);
	snprintf(rel, sizeof rel, "%s/%s/Maildir", dom, user);
	mutate_account(P, a, m->round, m->pct, rel);
}

static void usage(void)
{
	fprintf(stderr, "usage: gen-maildir [--accounts A] [--messages M] [--seed S] [--corpus DIR] [--jobs N] --out DIR\n"
		"       gen-maildir --mutate PCT [--jobs N] --out DIR\n");
	exit(2);
}

int main(int argc, char **argv)
{
	params_t P = {.accounts = 100, .messages = 2000, .seed = 1, .out = NULL, .jobs = 2};
	const char *corpus = NULL;
	double mutate = -1;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (!strcmp(o, "--accounts"))
			P.accounts = atoi(v);
		else if (!strcmp(o, "--messages"))
			P.messages = atoi(v);
		else if (!strcmp(o, "--seed"))
			P.seed = strtoull(v, NULL, 0);
		else if (!strcmp(o, "--out"))
			P.out = v;
		else if (!strcmp(o, "--corpus"))
			corpus = v;
		else if (!strcmp(o, "--jobs"))
			P.jobs = atoi(v);
		else if (!strcmp(o, "--mutate"))
			mutate = atof(v);
		else
			usage();
	}
	if (!P.out || P.accounts < 1 || P.messages < 1)
		usage();
	zipf_init();
	char sp[4096];
	snprintf(sp, sizeof sp, "%s/gen-state", P.out);
	if (mutate >= 0) {
		FILE *f = fopen(sp, "r");
		if (!f)
			die("%s: %s (not a generated tree?)", sp, strerror(errno));
		int round = 0, jobs = P.jobs;
		char cpath[4096] = "";
		if (fscanf(f, "accounts %d\nmessages %d\nseed %llu\nround %d\ncorpus %4095s\n", &P.accounts, &P.messages,
			(unsigned long long *)&P.seed, &round, cpath) < 4)
			die("%s: unreadable", sp);
		fclose(f);
		P.jobs = jobs;
		if (strcmp(cpath, "-") && cpath[0])
			corpus_load(cpath);
		round++;
		struct mutarg m = {round, mutate};
		run_jobs(&P, mut_cb, &m);
		f = fopen(sp, "w");
		fprintf(f, "accounts %d\nmessages %d\nseed %llu\nround %d\ncorpus %s\n", P.accounts, P.messages,
			(unsigned long long)P.seed, round, cpath[0] ? cpath : "-");
		fclose(f);
		return 0;
	}
	if (corpus)
		corpus_load(corpus);
	mkdirs(P.out);
	char mp[4096];
	snprintf(mp, sizeof mp, "%s/mail", P.out);
	struct stat st;
	if (stat(mp, &st) == 0)
		die("%s exists; remove it first", mp);
	/* list posts: 10% of every account's mail, each post in ~min(A,25) accounts */
	int shared = (int)(P.messages * 0.10);
	int per = P.accounts < 25 ? P.accounts : 25;
	int64_t pool = (int64_t)P.accounts * shared / per;
	if (pool < shared)
		pool = shared;
	struct genarg g = {pool, shared};
	run_jobs(&P, gen_cb, &g);
	FILE *f = fopen(sp, "w");
	fprintf(f, "accounts %d\nmessages %d\nseed %llu\nround 0\ncorpus %s\n", P.accounts, P.messages,
		(unsigned long long)P.seed, corpus ? corpus : "-");
	fclose(f);
	snprintf(sp, sizeof sp, "%s/accounts.tsv", P.out);
	f = fopen(sp, "w");
	for (int a = 0; a < P.accounts; a++) {
		char user[64], dom[64];
		account_name(a, user, sizeof user, dom, sizeof dom);
		fprintf(f, "%s@%s\t%s/%s/Maildir\n", user, dom, dom, user);
	}
	fclose(f);
	return 0;
}
