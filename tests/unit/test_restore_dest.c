/* lib/restore_dest: where a restore of many accounts puts each one, and
 * the accounts refused because two would share a directory. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "arca_err.h"
#include "buf.h"
#include "harness.h"
#include "restore_dest.h"

static void test_expand(void)
{
	struct abuf b = ABUF_INIT;
	REQUIRE(restore_expand("/srv/%d/%n/Maildir", "bob@example.test", &b) == 0);
	CHECK_STR((const char *)b.data, "/srv/example.test/bob/Maildir");
	REQUIRE(restore_expand("/m/%u", "bob@example.test", &b) == 0);
	CHECK_STR((const char *)b.data, "/m/bob@example.test");
	REQUIRE(restore_expand("/m/%d/%n", "bob", &b) == 0);
	CHECK_STR((const char *)b.data, "/m//bob");
	/* names that can't be a directory */
	CHECK_EQ_INT(restore_expand("/m/%n", "../x@d", &b), ARCA_EINVAL);
	CHECK_EQ_INT(restore_expand("/m/%n", "..@d", &b), ARCA_EINVAL);
	CHECK_EQ_INT(restore_expand("/m/%n", "a@..", &b), ARCA_EINVAL);
	CHECK_EQ_INT(restore_expand("/m/%n", "@d", &b), ARCA_EINVAL);
	CHECK(restore_pattern_ok("/m/%n") && restore_pattern_ok("/m/%u") && !restore_pattern_ok("/m/%d"));
	abuf_release(&b);
}

/* refused[] for the accounts under the patterns, as a string of 0/1 */
static long run(const char *const *acc, size_t n, const char *mp, const char *suffix, const char *hp,
		char *out)
{
	bool refused[16] = { false };
	long k = restore_dest_conflicts("test", acc, n, mp, suffix, hp, refused);
	for (size_t i = 0; i < n; i++)
		out[i] = refused[i] ? '1' : '0';
	out[n] = '\0';
	return k;
}

static void test_conflicts(void)
{
	char got[17];
	const char *a[] = { "a@x", "a@y", "b@x", "c@y" };
	/* %n alone: a@x and a@y are one directory */
	CHECK_EQ_INT(run(a, 4, "/m/%n", NULL, NULL, got), 2);
	CHECK_STR(got, "1100");
	CHECK_EQ_INT(run(a, 4, "/m/%d/%n/Maildir", NULL, NULL, got), 0);
	CHECK_STR(got, "0000");
	CHECK_EQ_INT(run(a, 4, "/m/%u", NULL, NULL, got), 0);
	/* "//" and a trailing '/' don't make a directory another one */
	const char *b[] = { "ab@c", "a@bc", "x@y" };
	CHECK_EQ_INT(run(b, 3, "/m/%n%d/", NULL, NULL, got), 2);
	CHECK_STR(got, "110");
	const char *c[] = { "bob", "Maildir@bob", "x@bob" };
	/* "/m//bob/Maildir" is "/m/bob/Maildir"; Maildir@bob's is inside it */
	CHECK_EQ_INT(run(c, 3, "/m/%d/%n/Maildir", NULL, NULL, got), 2);
	CHECK_STR(got, "110");
	/* a Maildir named as another's stage */
	const char *d[] = { "bob@d", "bob.arca-restore@d", "carol@d" };
	CHECK_EQ_INT(run(d, 3, "/m/%d/%n", ".arca-restore", NULL, got), 2);
	CHECK_STR(got, "110");
	CHECK_EQ_INT(run(d, 3, "/m/%d/%n", NULL, NULL, got), 0);
	/* a Maildir inside another's stage: bob (no domain) stages in
	 * "/m/bob.arca-restore", where x@bob.arca-restore's Maildir is */
	const char *d2[] = { "bob", "x@bob.arca-restore", "y@other" };
	CHECK_EQ_INT(run(d2, 3, "/m/%d/%n", ".arca-restore", NULL, got), 2);
	CHECK_STR(got, "110");
	/* with a trailing '/' in the pattern too */
	CHECK_EQ_INT(run(d, 3, "/m/%d/%n/", ".arca-restore", NULL, got), 2);
	/* a prefix that is not a whole directory is no conflict */
	const char *e[] = { "bo@d", "bob@d" };
	CHECK_EQ_INT(run(e, 2, "/m/%d/%n", ".arca-restore", NULL, got), 0);
	/* one Sieve home for two accounts */
	CHECK_EQ_INT(run(a, 4, "/m/%u", NULL, "/h/%n", got), 2);
	CHECK_STR(got, "1100");
	/* three in one directory: all three */
	const char *f[] = { "a@x", "a@y", "a@z", "b@z" };
	CHECK_EQ_INT(run(f, 4, "/m/%n", NULL, NULL, got), 3);
	CHECK_STR(got, "1110");
	/* names restore_expand refuses are left to the caller */
	const char *g[] = { "../a@x", "a@x" };
	CHECK_EQ_INT(run(g, 2, "/m/%n", NULL, NULL, got), 0);
	CHECK_EQ_INT(run(g, 0, "/m/%n", NULL, NULL, got), 0);
}

int main(void)
{
	RUN(test_expand);
	RUN(test_conflicts);
	HARNESS_EXIT();
}
