/*
 * Fuzz the FETCH side of a pull: the input is what a hostile IMAP server
 * answers to pull.c's metadata fetch (UID FLAGS INTERNALDATE RFC822.SIZE
 * MODSEQ X-GUID), parsed by libetpan's real parser with our X-GUID
 * extension (lib/imap/imap_xguid.c) registered, and every FETCH result goes
 * through imap_fetched_parse (lib/imap/imap_fetch.c).
 *
 * The connection is a libetpan stream driver that reads "* OK ready\r\n"
 * (prepended, so every input reaches the command's responses) then the
 * input, then fails (EOF as an error: see feed_read), through the same
 * literal guard as imap_conn.c's driver (imap_tagwatch_take: libetpan
 * would allocate a "{4444444444}" literal whole); what libetpan writes
 * is dropped (FUZZ_IMAP_DEBUG=1 shows it).  The session is put in
 * the SELECTED state by hand (as after EXAMINE) and runs UID FETCH, then
 * again as UID FETCH ... (CHANGEDSINCE n VANISHED) as pull.c does with
 * QRESYNC, each in a new session.  libetpan tags a session's first command
 * "1": a seed looks like "* 1 FETCH (UID 7 X-GUID abc ...)\r\n1 OK done\r\n".
 * libetpan itself is not instrumented (the system library): coverage
 * guides the fuzzer through our code (imap_fetch.c, imap_xguid.c) only.
 *
 * Checked: whatever libetpan accepts reduces to a record within limits (at
 * most SNAP_KEYWORDS_MAX keywords, only Maildir's five flags, a GUID that is
 * printable and bounded, a body that is readable for body_len bytes), and
 * nothing leaks.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/allocator_interface.h>

#include <libetpan/mailimap.h>
#include <libetpan/qresync.h>

#include "imap_conn.h"
#include "imap_fetch.h"
#include "imap_xguid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* Leaks inside libetpan 1.9's own parser on malformed input (not ours, not
 * fixable here; each only on an answer that fails the command): named by
 * the libetpan function that allocated the lost object, never broader. */
const char *__lsan_default_suppressions(void)
{
	return
		/* "BODY[7 BODY[]": section-spec dropped on a parse error */
		"leak:mailimap_section_spec_new\n"
		/* an MMAPString (libetpan's line/literal buffers; we never make
		 * one) lost once in a long run, not reproducible alone */
		"leak:mmap_string_sized_new\n";
}

static const char greeting[] = "* OK ready\r\n";

struct feed {
	const uint8_t *data;
	size_t size, pos;            /* pos counts the greeting first */
	struct imap_tagwatch tags;   /* as imap_conn.c's driver: refuses huge literals */
};

static ssize_t feed_read(mailstream_low *s, void *buf, size_t len)
{
	struct feed *f = s->data;
	size_t g = sizeof(greeting) - 1, n = 0;
	while (n < len && f->pos < g + f->size) {
		size_t left = f->pos < g ? g - f->pos : g + f->size - f->pos;
		size_t k = left < len - n ? left : len - n;
		const uint8_t *from = f->pos < g ? (const uint8_t *)greeting + f->pos
						 : f->data + (f->pos - g);
		memcpy((uint8_t *)buf + n, from, k);
		n += k;
		f->pos += k;
	}
	/* End of stream is -1, not 0: libetpan 1.9 reads a literal in a loop
	 * that takes 0 as "nothing yet" and spins forever when the stream ends
	 * inside one (e.g. "* 1 FETCH (BODY[] {6}\r\nab" then EOF).  The same
	 * holds for lib/imap/imap_conn.c's driver, whose read passes
	 * netconn_read's 0 at EOF through: see tests/unit/test_pull.c. */
	if (n == 0 || imap_tagwatch_take(&f->tags, buf, n) != 0)
		return -1;
	return (ssize_t)n;
}

static bool debug;   /* FUZZ_IMAP_DEBUG=1: show what libetpan sends and gets */

static ssize_t feed_write(mailstream_low *s, const void *buf, size_t len)
{
	(void)s;
	if (debug)
		fprintf(stderr, "C: %.*s", (int)len, (const char *)buf);
	return (ssize_t)len;
}

static int feed_close(mailstream_low *s)
{
	(void)s;
	return 0;
}

static int feed_get_fd(mailstream_low *s)
{
	(void)s;
	return -1;
}

static void feed_free(mailstream_low *s)
{
	free(s);   /* the feed itself lives on the caller's stack */
}

static void feed_cancel(mailstream_low *s)
{
	(void)s;
}

static struct mailstream_cancel *feed_get_cancel(mailstream_low *s)
{
	(void)s;
	return NULL;
}

static carray *feed_get_chain(mailstream_low *s)
{
	(void)s;
	return NULL;
}

static mailstream_low_driver feed_driver = {
	.mailstream_read = feed_read,
	.mailstream_write = feed_write,
	.mailstream_close = feed_close,
	.mailstream_get_fd = feed_get_fd,
	.mailstream_free = feed_free,
	.mailstream_cancel = feed_cancel,
	.mailstream_get_cancel = feed_get_cancel,
	.mailstream_get_certificate_chain = feed_get_chain,
};

/* pull.c's meta_fetch_type on a Dovecot with CONDSTORE */
static struct mailimap_fetch_type *meta_fetch_type(void)
{
	struct mailimap_fetch_type *t = mailimap_fetch_type_new_fetch_att_list_empty();
	if (t == NULL)
		abort();
	struct mailimap_fetch_att *atts[] = {
		mailimap_fetch_att_new_uid(), mailimap_fetch_att_new_flags(),
		mailimap_fetch_att_new_internaldate(), mailimap_fetch_att_new_rfc822_size(),
		mailimap_fetch_att_new_modseq(), mailimap_fetch_att_new_extension(strdup("X-GUID")),
	};
	for (size_t i = 0; i < sizeof(atts) / sizeof(atts[0]); i++)
		if (atts[i] == NULL || mailimap_fetch_type_new_fetch_att_list_add(t, atts[i]) != 0)
			abort();
	return t;
}

static volatile uint8_t sink;

static void check_record(const struct mailimap_msg_att *ma)
{
	struct imap_fetched f;
	imap_fetched_parse(ma, &f);
	const uint32_t maildir_flags = 1u << ('R' - 'A') | 1u << ('F' - 'A') | 1u << ('T' - 'A') |
				       1u << ('S' - 'A') | 1u << ('D' - 'A');
	if (f.flags & ~maildir_flags)
		abort();
	if (f.flags && !f.has_flags)
		abort();
	if (f.nkw > SNAP_KEYWORDS_MAX || (f.kw_overflow && f.nkw != SNAP_KEYWORDS_MAX))
		abort();
	for (size_t i = 0; i < f.nkw; i++) {
		if (f.keywords[i] == NULL)
			abort();
		sink ^= (uint8_t)strlen(f.keywords[i]);
	}
	if (f.guid != NULL) {
		size_t n = strlen(f.guid);
		if (n == 0 || n > IMAP_XGUID_MAX)
			abort();
		for (size_t i = 0; i < n; i++)
			if (f.guid[i] < 0x20 || f.guid[i] > 0x7e)
				abort();
	}
	if (f.has_body) {
		if (f.body_len && f.body == NULL)
			abort();
		for (size_t i = 0; i < f.body_len; i++)
			sink ^= (uint8_t)f.body[i];   /* ASan: all of it is there */
	} else if (f.body != NULL || f.body_len != 0) {
		abort();
	}
	if (!f.has_uid && f.uid != 0)
		abort();
	if (!f.has_size && f.size != 0)
		abort();
	if (!f.has_date && f.date != 0)
		abort();
}

static void session(const uint8_t *data, size_t size, bool qresync)
{
	struct feed feed = { data, size, 0, { 0 } };
	imap_tagwatch_init(&feed.tags);
	mailimap *imap = mailimap_new(0, NULL);
	mailstream_low *low = imap ? mailstream_low_new(&feed, &feed_driver) : NULL;
	mailstream *stream = low ? mailstream_new(low, 8192) : NULL;
	if (stream == NULL)
		abort();
	int r = mailimap_connect(imap, stream);
	if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED && r != MAILIMAP_NO_ERROR_AUTHENTICATED) {
		mailimap_free(imap);
		return;
	}
	/* as after EXAMINE */
	imap->imap_state = MAILIMAP_STATE_SELECTED;
	if (imap->imap_selection_info == NULL &&
	    (imap->imap_selection_info = mailimap_selection_info_new()) == NULL)
		abort();

	struct mailimap_set *set = mailimap_set_new_interval(1, 0);
	struct mailimap_fetch_type *ft = meta_fetch_type();
	if (set == NULL)
		abort();
	clist *result = NULL;
	struct mailimap_qresync_vanished *van = NULL;
	if (qresync)
		r = mailimap_uid_fetch_qresync(imap, set, ft, 1, &result, &van);
	else
		r = mailimap_uid_fetch(imap, set, ft, &result);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	if (debug)
		fprintf(stderr, "%s: %d, %d results\n", qresync ? "UID FETCH QRESYNC" : "UID FETCH", r,
			r == MAILIMAP_NO_ERROR && result ? clist_count(result) : -1);
	if (r == MAILIMAP_NO_ERROR) {
		for (clistiter *it = clist_begin(result); it; it = clist_next(it))
			check_record(clist_content(it));
		mailimap_fetch_list_free(result);
		if (van)
			mailimap_qresync_vanished_free(van);
	}
	/* on an error libetpan has freed the lists, but may leave result and
	 * van pointing at them (a tagged NO with no FETCH): never touched.
	 * Then LOGOUT, as imap_conn_close does: only when the stream is in
	 * step (no parse or stream error, nothing refused), and what it reads
	 * goes through the same guard. */
	if (r != MAILIMAP_ERROR_PARSE && r != MAILIMAP_ERROR_STREAM && r != MAILIMAP_ERROR_MEMORY &&
	    feed.tags.refused == NULL)
		(void)mailimap_logout(imap);
	mailimap_free(imap);
}

/* The guard's own check: whatever the input, libetpan never allocates for
 * a literal beyond what IMAP_LITERAL_MAX allows.  It rounds a literal's
 * buffer up to a power of two above N (64 MiB for the largest N let
 * through), and the inputs are far too small for a line buffer to grow
 * that large: a bigger allocation is a "{N}" the lexer let through. */
static void on_malloc(const volatile void *p, size_t n)
{
	(void)p;
	if (n > (size_t)IMAP_LITERAL_MAX) {
		fprintf(stderr, "libetpan allocated %zu bytes: a literal got past the guard\n", n);
		abort();
	}
}

static void on_free(const volatile void *p)
{
	(void)p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool hooked;
	if (!hooked)
		hooked = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free) != 0;
	imap_xguid_register();
	debug = getenv("FUZZ_IMAP_DEBUG") != NULL;
	session(data, size, false);
	session(data, size, true);
	return 0;
}
