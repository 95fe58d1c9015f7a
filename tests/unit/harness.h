/*
 * harness.h - the in-tree unit test harness.
 *
 * A test file defines functions `static void test_x(void)` and lists them in
 * main() with RUN(test_x).  Each prints "ok - name" or "not ok - name" (TAP
 * style); tests/run counts those lines.  CHECK() records a failure and goes
 * on; REQUIRE() returns from the test function.
 */
#ifndef ARCA_TEST_HARNESS_H
#define ARCA_TEST_HARNESS_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int harness_failed_total;
static int harness_failed_current;

#define CHECK(cond)                                                         \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "  %s:%d: check failed: %s\n",      \
				__FILE__, __LINE__, #cond);                 \
			harness_failed_current = 1;                         \
		}                                                           \
	} while (0)

#define REQUIRE(cond)                                                       \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "  %s:%d: required: %s\n",          \
				__FILE__, __LINE__, #cond);                 \
			harness_failed_current = 1;                         \
			return;                                             \
		}                                                           \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                  \
	do {                                                                \
		long long va_ = (long long)(a), vb_ = (long long)(b);        \
		if (va_ != vb_) {                                           \
			fprintf(stderr, "  %s:%d: %s == %lld, want %lld\n", \
				__FILE__, __LINE__, #a, va_, vb_);           \
			harness_failed_current = 1;                         \
		}                                                           \
	} while (0)

#define CHECK_STR(a, b)                                                     \
	do {                                                                \
		const char *sa_ = (a), *sb_ = (b);                          \
		if (sa_ == NULL || sb_ == NULL || strcmp(sa_, sb_) != 0) {  \
			fprintf(stderr, "  %s:%d: %s == \"%s\", want \"%s\"\n", \
				__FILE__, __LINE__, #a, sa_ ? sa_ : "(null)", \
				sb_ ? sb_ : "(null)");                      \
			harness_failed_current = 1;                         \
		}                                                           \
	} while (0)

#define RUN(fn)                                                             \
	do {                                                                \
		harness_failed_current = 0;                                 \
		fn();                                                       \
		printf("%s - %s\n", harness_failed_current ? "not ok" : "ok", #fn); \
		fflush(stdout);                                             \
		harness_failed_total += harness_failed_current;             \
	} while (0)

#define HARNESS_EXIT() return harness_failed_total ? 1 : 0

/* A fresh empty directory under $TMPDIR (or /tmp); caller frees the string. */
static inline char *harness_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	if (base == NULL || *base == '\0')
		base = "/tmp";
	size_t n = strlen(base) + strlen(tag) + 32;
	char *p = malloc(n);
	if (p == NULL)
		abort();
	snprintf(p, n, "%s/arca-%s-XXXXXX", base, tag);
	if (mkdtemp(p) == NULL)
		abort();
	return p;
}

static inline int harness_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(p);
}

/* Removes dir and everything under it (symlinks not followed). */
static inline void harness_rm_rf(const char *dir)
{
	nftw(dir, harness_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
