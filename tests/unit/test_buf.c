#include <stdint.h>

#include "buf.h"
#include "harness.h"

static void test_varint_roundtrip(void)
{
	static const uint64_t values[] = { 0, 1, 127, 128, 300, 16383, 16384,
					   UINT32_MAX, UINT64_MAX };
	struct abuf b = ABUF_INIT;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
		REQUIRE(abuf_add_varint(&b, values[i]) == 0);
	struct adec d;
	adec_init(&d, b.data, b.len);
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
		CHECK(adec_varint(&d) == values[i]);
	CHECK(adec_finish(&d) == 0);
	abuf_release(&b);
}

static void test_varint_rejects_overlong(void)
{
	static const uint8_t overlong[] = { 0x80, 0x00 };
	struct adec d;
	adec_init(&d, overlong, sizeof(overlong));
	adec_varint(&d);
	CHECK(d.failed);
	static const uint8_t toolong[11] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					     0xff, 0xff, 0xff, 0xff, 0x01 };
	adec_init(&d, toolong, sizeof(toolong));
	adec_varint(&d);
	CHECK(d.failed);
}

static void test_decoder_short_input(void)
{
	static const uint8_t in[] = { 5, 'a', 'b' };
	struct adec d;
	adec_init(&d, in, sizeof(in));
	size_t n;
	CHECK(adec_bytes(&d, &n, 100) == NULL);
	CHECK(adec_u32(&d) == 0);
	CHECK(adec_finish(&d) != 0);
}

static void test_trailing_bytes_rejected(void)
{
	static const uint8_t in[] = { 1, 2 };
	struct adec d;
	adec_init(&d, in, sizeof(in));
	CHECK(adec_u8(&d) == 1);
	CHECK(adec_finish(&d) != 0);
}

static void test_hex(void)
{
	uint8_t raw[3] = { 0x00, 0xab, 0xff }, back[3];
	char hex[7];
	hex_encode(hex, raw, 3);
	CHECK_STR(hex, "00abff");
	CHECK(hex_decode(back, 3, hex) == 0);
	CHECK(memcmp(raw, back, 3) == 0);
	CHECK(hex_decode(back, 3, "00abf") != 0);
	CHECK(hex_decode(back, 3, "00abfg") != 0);
}

int main(void)
{
	RUN(test_varint_roundtrip);
	RUN(test_varint_rejects_overlong);
	RUN(test_decoder_short_input);
	RUN(test_trailing_bytes_rejected);
	RUN(test_hex);
	HARNESS_EXIT();
}
