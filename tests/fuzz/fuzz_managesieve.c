/* ManageSieve client (lib/imap/managesieve.c): every pure parser on the
 * whole input, then a whole session against the input as the server's side
 * of the connection (the first byte picks STARTTLS and an authzid).
 * Checked: failures explain themselves and leave nothing behind; what is
 * accepted respects every limit (names valid, distinct, at most one active,
 * scripts and total bounded); response texts are printable UTF-8; and with
 * STARTTLS asked for, no AUTHENTICATE is ever sent before the handshake. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "managesieve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_fail(int rc, const struct arca_err *err)
{
	if (rc >= 0 || err->code != rc || err->msg[0] == '\0')
		abort();
}

static void check_printable(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);
	if (n > max)
		abort();
	if (n > 0 && msieve_name_check((const uint8_t *)s, n, NULL) != 0)
		abort();   /* valid UTF-8 without control characters */
}

static void parsers(const uint8_t *data, size_t size)
{
	struct arca_err err = { 0 };
	size_t n;
	bool plus;
	int rc = msieve_parse_literal_header(data, size, MSIEVE_SCRIPT_MAX, &n, &plus, &err);
	if (rc == 0 && (n > MSIEVE_SCRIPT_MAX || size < 3 || data[0] != '{'))
		abort();
	if (rc)
		check_fail(rc, &err);

	arca_err_clear(&err);
	rc = msieve_line_literal(data, size, 1000, &n, &err);
	if (rc == 1 && n > 1000)
		abort();
	if (rc < 0)
		check_fail(rc, &err);

	struct msieve_response r;
	arca_err_clear(&err);
	rc = msieve_parse_response(data, size, &r, &err);
	if (rc == 0) {
		check_printable(r.text, MSIEVE_TEXT_MAX);
		if (strlen(r.code) > MSIEVE_CODE_MAX)
			abort();
		for (const char *p = r.code; *p; p++)
			if (*p < 0x21 || *p > 0x7e || (*p >= 'a' && *p <= 'z'))
				abort();
	} else {
		check_fail(rc, &err);
		if (r.code[0] != '\0')
			abort();
	}

	struct msieve_caps caps;
	msieve_caps_init(&caps);
	arca_err_clear(&err);
	rc = msieve_parse_capability(data, size, &caps, &err);
	if (rc == 0) {
		check_printable(caps.implementation, sizeof(caps.implementation) - 1);
		check_printable(caps.sasl_list, sizeof(caps.sasl_list) - 1);
		if (caps.sasl_plain && !caps.sasl)
			abort();
	} else {
		check_fail(rc, &err);
	}

	static char name[MSIEVE_NAME_MAX + 1];
	bool active;
	arca_err_clear(&err);
	rc = msieve_parse_listscripts(data, size, name, &n, &active, &err);
	if (rc == 0) {
		if (n == 0 || n > MSIEVE_NAME_MAX || strlen(name) != n ||
		    msieve_name_check((const uint8_t *)name, n, NULL) != 0)
			abort();
	} else {
		check_fail(rc, &err);
		if (name[0] != '\0' || n != 0 || active)
			abort();
	}

	struct abuf b = ABUF_INIT;
	arca_err_clear(&err);
	rc = msieve_parse_string_line(data, size, 4096, &b, &err);
	if (rc == 0) {
		if (b.len > 4096 || b.len > size)
			abort();
		/* quoting it again gives something that parses back to it */
		struct abuf q = ABUF_INIT, back = ABUF_INIT;
		if (msieve_quote((const char *)b.data, b.len, &q) != 0 ||
		    msieve_parse_string_line(q.data, q.len, 4096, &back, NULL) != 0 ||
		    back.len != b.len || (b.len && memcmp(back.data, b.data, b.len) != 0))
			abort();
		abuf_release(&q);
		abuf_release(&back);
	} else {
		check_fail(rc, &err);
	}
	abuf_release(&b);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void session(const uint8_t *data, size_t size)
{
	if (size < 1)
		return;
	uint8_t mode = data[0];
	struct managesieve_opts o = {
		.net = { .host = "fuzz.invalid", .port = 4190,
			 .tls = (mode & 1) ? NETCONN_STARTTLS : NETCONN_PLAIN },
		.authzid = (mode & 2) ? "alice@example.test" : NULL,
		.authcid = (mode & 2) ? "admin" : "alice",
		.password = "pw",
	};
	struct msieve_memio m;
	struct msieve_io io;
	msieve_memio_init(&m, data + 1, size - 1, &io);
	struct sieve_scripts s = { NULL, 0 };
	struct arca_err err = { 0 };
	int rc = msieve_session(&io, &o, "fuzz.invalid:4190", &s, &err);

	/* never authenticate in the clear when TLS was asked for */
	if (o.net.tls == NETCONN_STARTTLS && m.tls_started == 0 &&
	    memmem(m.sent.data ? (const void *)m.sent.data : "", m.sent.len, "AUTHENTICATE", 12))
		abort();
	if (m.tls_started > 1)
		abort();

	if (rc != 0) {
		check_fail(rc, &err);
		if (s.v != NULL || s.n != 0 || strstr(err.msg, "fuzz.invalid:4190") == NULL)
			abort();
	} else {
		if (s.n > MSIEVE_SCRIPTS_MAX)
			abort();
		size_t active = 0, total = 0;
		char **names = malloc((s.n ? s.n : 1) * sizeof(*names));
		if (names == NULL)
			abort();
		for (size_t i = 0; i < s.n; i++) {
			const struct sieve_script *sc = &s.v[i];
			size_t nl = strlen(sc->name);
			if (msieve_name_check((const uint8_t *)sc->name, nl, NULL) != 0)
				abort();
			if (sc->len > MSIEVE_SCRIPT_MAX || sc->data == NULL)
				abort();
			total += sc->len;
			active += sc->active;
			names[i] = sc->name;
		}
		if (active > 1 || total > MSIEVE_TOTAL_MAX || total > size)
			abort();
		qsort(names, s.n, sizeof(*names), cmp_str);
		for (size_t i = 1; i < s.n; i++)
			if (strcmp(names[i - 1], names[i]) == 0)
				abort();
		free(names);
	}
	sieve_scripts_release(&s);
	msieve_memio_release(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	parsers(data, size);
	session(data, size);
	return 0;
}
