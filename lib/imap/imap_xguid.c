/*
 * imap_xguid.c - the X-GUID fetch item as a libetpan extension (imap_xguid.h).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libetpan/mailimap.h>
#include <libetpan/condstore.h>
#include <libetpan/qresync.h>
#include <libetpan/enable.h>
#include <libetpan/mailimap_extension.h>

#include "imap_xguid.h"

static bool atom_char(unsigned char c)
{
	/* RFC 3501 ATOM-CHAR: any CHAR except atom-specials */
	return c > 0x20 && c < 0x7f && !strchr("(){%*\"\\]", c);
}

int imap_xguid_parse(const char *p, size_t len, size_t *pos, char **guid_r)
{
	size_t i = *pos;
	static const char item[] = "X-GUID ";
	if (len - i < sizeof(item) - 1 || strncasecmp(p + i, item, sizeof(item) - 1) != 0)
		return -1;
	i += sizeof(item) - 1;
	char buf[IMAP_XGUID_MAX + 1];
	size_t n = 0;
	if (i < len && p[i] == '"') {
		for (i++;; i++) {
			if (i >= len)
				return -1;
			unsigned char c = (unsigned char)p[i];
			if (c == '"')
				break;
			if (c == '\\') {
				if (++i >= len || (p[i] != '"' && p[i] != '\\'))
					return -1;
				c = (unsigned char)p[i];
			}
			if (c < 0x20 || c >= 0x7f || n == IMAP_XGUID_MAX)
				return -1;
			buf[n++] = (char)c;
		}
		i++;   /* closing quote */
	} else {
		while (i < len && atom_char((unsigned char)p[i])) {
			if (n == IMAP_XGUID_MAX)
				return -1;
			buf[n++] = p[i++];
		}
		/* NIL is not a GUID */
		if (n == 3 && strncasecmp(buf, "NIL", 3) == 0)
			return -1;
	}
	if (n == 0)
		return -1;
	/* the item must end where the attribute list goes on or closes */
	if (i < len && p[i] != ' ' && p[i] != ')')
		return -1;
	char *g = malloc(n + 1);
	if (g == NULL)
		return -1;
	memcpy(g, buf, n);
	g[n] = '\0';
	*guid_r = g;
	*pos = i;
	return 0;
}

static int xguid_ext_parse(int calling_parser, mailstream *fd, MMAPString *buffer,
			   struct mailimap_parser_context *ctx, size_t *indx,
			   struct mailimap_extension_data **result, size_t progr_rate,
			   progress_function *progr_fun);
static void xguid_ext_free(struct mailimap_extension_data *d);

static struct mailimap_extension_api xguid_api = {
	.ext_name = "X-GUID",
	.ext_id = -1,
	.ext_parser = xguid_ext_parse,
	.ext_free = xguid_ext_free,
};

static int xguid_ext_parse(int calling_parser, mailstream *fd, MMAPString *buffer,
			   struct mailimap_parser_context *ctx, size_t *indx,
			   struct mailimap_extension_data **result, size_t progr_rate,
			   progress_function *progr_fun)
{
	(void)fd; (void)ctx; (void)progr_rate; (void)progr_fun;
	if (calling_parser != MAILIMAP_EXTENDED_PARSER_FETCH_DATA)
		return MAILIMAP_ERROR_PARSE;
	size_t pos = *indx;
	char *guid = NULL;
	if (pos > buffer->len || imap_xguid_parse(buffer->str, buffer->len, &pos, &guid) != 0)
		return MAILIMAP_ERROR_PARSE;
	struct mailimap_extension_data *d = mailimap_extension_data_new(&xguid_api, 0, guid);
	if (d == NULL) {
		free(guid);
		return MAILIMAP_ERROR_MEMORY;
	}
	*indx = pos;
	*result = d;
	return MAILIMAP_NO_ERROR;
}

static void xguid_ext_free(struct mailimap_extension_data *d)
{
	if (d == NULL)
		return;
	free(d->ext_data);
	free(d);
}

const char *imap_xguid_of(const struct mailimap_extension_data *ext)
{
	return ext && ext->ext_extension == &xguid_api ? ext->ext_data : NULL;
}

static void register_once(void)
{
	(void)mailimap_extension_register(&xguid_api);
}

void imap_xguid_register(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, register_once);
}
