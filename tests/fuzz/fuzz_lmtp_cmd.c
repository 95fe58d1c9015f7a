/* LMTP command lines: split the input as arcad would (1000-byte buffer),
 * parse every line and the whole input as one line, and check the result:
 * reply and error agree, strings are bounded and free of control
 * characters, a path formats to a line that parses to the same address, and
 * a journal address maps to an account that maps back to itself. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);
	if (n > max)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

static void check_journal(const char *addr)
{
	char acct[JOURNAL_ACCOUNT_MAX + 1], again[JOURNAL_ACCOUNT_MAX + 64];
	char acct2[JOURNAL_ACCOUNT_MAX + 1];
	enum journal_dir dir, dir2;
	struct arca_err err = { 0 };
	int rc = journal_addr_map(addr, "journal.invalid", acct, sizeof(acct), &dir, &err);
	if (rc != 0) {
		if (rc != ARCA_ENOENT && rc != ARCA_EFORMAT && rc != ARCA_ELIMIT)
			abort();
		if (err.msg[0] == '\0' || acct[0] != '\0')
			abort();
		return;
	}
	check_text(acct, JOURNAL_ACCOUNT_MAX);
	const char *at = strrchr(acct, '@');
	if (at == NULL || at == acct || at[1] == '\0')
		abort();
	for (const char *p = at + 1; *p; p++)
		if (*p >= 'A' && *p <= 'Z' && strncmp(at + 1, "[IPv6:", 6) != 0)
			abort();
	snprintf(again, sizeof(again), "%.*s=%s@%sjournal.invalid", (int)(at - acct), acct,
		 at + 1, dir == JOURNAL_OUT ? "out." : "");
	if (journal_addr_map(again, "journal.invalid", acct2, sizeof(acct2), &dir2, NULL) != 0 ||
	    strcmp(acct, acct2) != 0 || dir != dir2)
		abort();
}

static void check_path(const struct lmtp_cmd *c)
{
	static struct lmtp_cmd c2;
	const struct lmtp_path *p = &c->path;
	char want[LMTP_ADDR_MAX + 2];
	check_text(p->local, LMTP_LOCAL_MAX);
	check_text(p->domain, LMTP_DOMAIN_MAX);
	check_text(p->addr, LMTP_ADDR_MAX);
	if (p->null) {
		if (c->verb != LMTP_MAIL || p->addr[0] || p->local[0] || p->domain[0])
			abort();
	} else {
		snprintf(want, sizeof(want), "%s%s%s", p->local, p->domain[0] ? "@" : "",
			 p->domain);
		if (strcmp(want, p->addr) != 0)
			abort();
	}
	bool hi = false;
	for (const char *q = p->addr; *q; q++)
		hi |= (unsigned char)*q >= 0x80;
	if (hi != p->utf8 || (p->utf8 && !c->utf8))
		abort();

	struct abuf b = ABUF_INIT, line = ABUF_INIT;
	if (lmtp_path_format(p, &b) != 0)
		abort();
	if (abuf_printf(&line, "%s%s%s", p->null ? "MAIL FROM:" : "RCPT TO:",
			(const char *)b.data, p->null ? "" : "") != 0)
		abort();
	int rc = lmtp_parse_command((const char *)line.data, line.len, &c2, NULL);
	if (b.len > LMTP_PATH_MAX) {
		if (rc != ARCA_ELIMIT || c2.error != LMTP_PE_RCPT_TOO_LONG)
			abort();
	} else if (rc != 0 || strcmp(c2.path.local, p->local) != 0 ||
		   strcmp(c2.path.domain, p->domain) != 0 ||
		   strcmp(c2.path.addr, p->addr) != 0 || c2.path.null != p->null) {
		abort();
	}
	abuf_release(&b);
	abuf_release(&line);
	if (c->verb == LMTP_RCPT)
		check_journal(p->addr);
}

static void check_line(const uint8_t *s, size_t n)
{
	static struct lmtp_cmd c;
	struct arca_err err = { 0 };
	int rc = lmtp_parse_command((const char *)s, n, &c, &err);
	if (rc == 0) {
		if (c.error != LMTP_PE_NONE || c.reply != NULL || err.code != 0)
			abort();
	} else {
		if (rc != ARCA_EFORMAT && rc != ARCA_ELIMIT)
			abort();
		if (c.error == LMTP_PE_NONE || c.reply != lmtp_reply_for(c.error) ||
		    err.code != rc || err.msg[0] == '\0')
			abort();
		if (c.error >= LMTP_PE_MSG_TOO_BIG)   /* not parser errors */
			abort();
		return;
	}
	check_text(c.arg, LMTP_CMD_MAX);
	check_text(c.orcpt, LMTP_ORCPT_MAX);
	check_text(c.orcpt_type, LMTP_ORCPT_TYPE_MAX);
	switch (c.verb) {
	case LMTP_MAIL:
		if (c.utf8 && !c.smtputf8)
			abort();
		/* fall through */
	case LMTP_RCPT:
		check_path(&c);
		break;
	case LMTP_HELO:
	case LMTP_EHLO:
	case LMTP_VERB_NONE:
		abort();   /* never succeed */
	default:
		if (c.path.addr[0] || c.path.null)
			abort();
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_line(data, size);

	/* as the server reads: a buffer of LMTP_LINE_MAX bytes */
	struct lmtp_lines s;
	lmtp_lines_init(&s);
	uint8_t buf[LMTP_LINE_MAX];
	size_t have = 0, pos = 0;
	for (;;) {
		size_t room = sizeof(buf) - have, take = size - pos;
		if (take > room)
			take = room;
		memcpy(buf + have, data + pos, take);
		have += take;
		pos += take;
		size_t len, used;
		int st = lmtp_line_next(&s, buf, have, &len, &used);
		if (st < 0 || used > have || len > LMTP_CMD_MAX)
			abort();
		if (st == LMTP_LINE_OK) {
			if (used < len + 1 || buf[used - 1] != '\n')
				abort();
			check_line(buf, len);
		} else if (st == LMTP_LINE_TOOLONG) {
			if (used == 0 || buf[used - 1] != '\n')
				abort();
		} else if (have == sizeof(buf) && used == 0) {
			abort();   /* a full buffer must make progress */
		}
		memmove(buf, buf + used, have - used);
		have -= used;
		if (st == LMTP_LINE_NEED && pos == size)
			break;
	}
	return 0;
}
