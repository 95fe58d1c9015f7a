/* restore imap's readers of server answers (lib/imap/imap_append.c): the
 * whole input as one answer line, as a header for iapp_message_id, and as
 * the server's side of an APPEND (a MULTIAPPEND of two messages with
 * synchronizing literals, or LITERAL+, picked by the first byte), then
 * CREATE and SUBSCRIBE on what is left.  Checked: failures explain
 * themselves; texts are printable; a Message-ID stays within its cap; an
 * answer is only ever OK, NO or BAD. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "imap_append.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void printable(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);
	if (n == cap)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			abort();
}

static void check_fail(int rc, const struct arca_err *e)
{
	if (rc < 0 && e->msg[0] == '\0')
		abort();
}

static int spool = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iapp_line l;
	struct arca_err err = { 0 };
	int rc = iapp_parse_line(data, size, "R1", &l, &err);
	check_fail(rc, &err);
	if (rc == 0) {
		printable(l.text, sizeof(l.text));
		printable(l.code, sizeof(l.code));
		if (l.kind == IAPP_TAGGED && l.status != IAPP_OK && l.status != IAPP_NO &&
		    l.status != IAPP_BAD)
			abort();
	}
	struct abuf id = ABUF_INIT;
	if (iapp_message_id(data, size, &id) == 1 && (id.len == 0 || id.len > IAPP_MSGID_MAX))
		abort();
	abuf_release(&id);

	if (spool < 0) {
		static const char msgs[] = "Subject: a\n\nx\nSubject: b\r\n\r\ny";
		spool = memfd_create("fuzz", 0);
		if (spool < 0 || write(spool, msgs, sizeof(msgs) - 1) != (ssize_t)(sizeof(msgs) - 1))
			abort();
	}
	struct iapp_caps caps = { .multiappend = true, .literal_plus = size > 0 && (data[0] & 1),
				  .create_special_use = size > 0 && (data[0] & 2) };
	struct iapp_msg m[2];
	memset(m, 0, sizeof(m));
	if (iapp_content_scan(spool, 0, 14, 1000, &m[0].content, &err) ||
	    iapp_content_scan(spool, 14, 15, 2000, &m[1].content, &err))
		abort();
	m[0].fd = m[1].fd = spool;
	m[1].off = 14;
	m[0].date = 1000;
	m[1].date = 2000;
	struct iapp_memio mem;
	struct iapp_io io;
	iapp_memio_init(&mem, data, size, &io);
	memset(&err, 0, sizeof(err));
	rc = iapp_append(&io, &caps, "INBOX", m, 2, &l, &err);
	check_fail(rc, &err);
	if (rc == 0 && (l.kind != IAPP_TAGGED || l.status == IAPP_NONE))
		abort();
	if (rc == 0) {
		rc = iapp_create(&io, &caps, "Sent", "\\Sent", &l, &err);
		check_fail(rc, &err);
	}
	if (rc == 0) {
		rc = iapp_subscribe(&io, "Sent", &l, &err);
		check_fail(rc, &err);
	}
	iapp_memio_release(&mem);
	return 0;
}
