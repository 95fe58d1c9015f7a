/*
 * buf.h - growable byte buffer and strict little-endian encoders/decoders.
 *
 * Every repository record is built with struct abuf and read back with
 * struct adec.  adec never reads past `end`: a short or malformed input sets
 * `failed` and every later read returns zero, so a parser checks once, at the
 * end, with adec_finish() (which also rejects trailing bytes, as OpenSMTPD's
 * "not at msg end" does).
 */
#ifndef ARCA_BUF_H
#define ARCA_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* `data` is NULL only while cap == 0; len <= cap always. Owned by the buffer. */
struct abuf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

#define ABUF_INIT { NULL, 0, 0 }

void abuf_init(struct abuf *b);
void abuf_release(struct abuf *b);           /* frees, leaves an empty buffer */
void abuf_reset(struct abuf *b);             /* len = 0, keeps memory */
/* All appenders return 0 or ARCA_ENOMEM; on failure the buffer is unchanged. */
int abuf_reserve(struct abuf *b, size_t extra);
int abuf_add(struct abuf *b, const void *p, size_t n);
int abuf_add_u8(struct abuf *b, uint8_t v);
int abuf_add_u16(struct abuf *b, uint16_t v);
int abuf_add_u32(struct abuf *b, uint32_t v);
int abuf_add_u64(struct abuf *b, uint64_t v);
int abuf_add_varint(struct abuf *b, uint64_t v);   /* LEB128, at most 10 bytes */
/* varint length, then the bytes */
int abuf_add_bytes(struct abuf *b, const void *p, size_t n);
int abuf_add_str(struct abuf *b, const char *s);
/* NUL-terminate without counting the NUL in len (for text built in a buffer) */
int abuf_cstr(struct abuf *b);
int abuf_printf(struct abuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

struct adec {
	const uint8_t *p;
	const uint8_t *end;
	bool failed;
};

void adec_init(struct adec *d, const void *data, size_t len);
uint8_t adec_u8(struct adec *d);
uint16_t adec_u16(struct adec *d);
uint32_t adec_u32(struct adec *d);
uint64_t adec_u64(struct adec *d);
uint64_t adec_varint(struct adec *d);   /* rejects overlong or >64-bit values */
/* Copies exactly n bytes into out (zeroes it on failure). */
void adec_fixed(struct adec *d, void *out, size_t n);
/* Returns a pointer into the input; sets *len_r; length must be <= max. */
const uint8_t *adec_bytes(struct adec *d, size_t *len_r, size_t max);
/* Returns a pointer to n raw bytes of the input, or NULL. */
const uint8_t *adec_raw(struct adec *d, size_t n);
/* Length-prefixed string copied to a new NUL-terminated heap string (caller
 * frees); rejects embedded NULs and strings longer than max. NULL on failure. */
char *adec_strdup(struct adec *d, size_t max);
size_t adec_left(const struct adec *d);
/* 0 when every read succeeded and all input was consumed, else ARCA_EFORMAT. */
int adec_finish(const struct adec *d);

/* Little-endian helpers for fixed headers. */
void put_u32le(uint8_t *p, uint32_t v);
void put_u64le(uint8_t *p, uint64_t v);
uint32_t get_u32le(const uint8_t *p);
uint64_t get_u64le(const uint8_t *p);

/* Lower-case hex of n bytes into out (2n+1 bytes with the NUL). */
void hex_encode(char *out, const uint8_t *in, size_t n);
/* Exactly 2n hex digits into n bytes; 0 or ARCA_EFORMAT. */
int hex_decode(uint8_t *out, size_t n, const char *in);

#endif
