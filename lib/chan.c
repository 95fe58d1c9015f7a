/* chan.c - length-prefixed frames of the internal channels (chan.h). */
#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "arca_err.h"
#include "chan.h"
#include "pack.h"
#include "banned.h"

int chan_frame_start(struct abuf *out, uint8_t type)
{
	abuf_reset(out);
	int rc = abuf_add_u32(out, 0);
	return rc ? rc : abuf_add_u8(out, type);
}

int chan_frame_end(struct abuf *out, uint32_t max)
{
	if (out->len < 5 || out->len - 4 > max)
		return ARCA_ELIMIT;
	put_u32le(out->data, (uint32_t)(out->len - 4));
	return 0;
}

int chan_send(int fd, const struct abuf *frame)
{
	const uint8_t *p = frame->data;
	size_t n = frame->len;
	bool sock = true;
	while (n > 0) {
		ssize_t w = sock ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
		if (w < 0 && errno == ENOTSOCK && sock) {
			sock = false;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EPIPE;
			return ARCA_EIO;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* 1: n bytes read; 0: end of stream before the first; -1: error or end
 * inside (errno set). */
static int read_full(int fd, uint8_t *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0 && got == 0)
			return 0;
		if (r <= 0) {
			if (r == 0)
				errno = EPIPE;
			return -1;
		}
		got += (size_t)r;
	}
	return 1;
}

int chan_recv(int fd, uint32_t max, uint8_t *type_r, struct abuf *payload)
{
	uint8_t hdr[5];
	int r = read_full(fd, hdr, sizeof(hdr));
	if (r == 0)
		return ARCA_ENOENT;
	if (r < 0)
		return ARCA_EIO;
	uint32_t len = get_u32le(hdr);
	if (len == 0 || len > max)
		return ARCA_EFORMAT;
	*type_r = hdr[4];
	abuf_reset(payload);
	if (len > 1 && abuf_reserve(payload, len - 1) != 0)
		return ARCA_ENOMEM;
	if (len > 1 && read_full(fd, payload->data, len - 1) != 1)
		return ARCA_EIO;
	payload->len = len - 1;
	return 0;
}
