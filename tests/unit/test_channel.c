/* The device channel's signing (src/device/channel.c) against the test vector
 * published in docs/device-protocol.md §3. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "device/device.h"

#define BODY "{\"Model\":\"sag-1000\",\"SoftwareVersion\":\"1.7.0\",\"HaState\":\"active\"}"
#define BODY_SHA "723a5d60e1f5e9cbc660e789ea6f336cadc9e9c67b62f579ddf1e036cb6dceee"

static void test_vector(void **state)
{
	char sha[DEVICE_HEX_SHA256 + 1], sig[DEVICE_HEX_SHA256 + 1];
	device_body_sha256(STR_LIT(BODY), sha);
	assert_string_equal(sha, BODY_SHA);
	struct buf sts = {0};
	device_string_to_sign(&sts, STR_LIT("POST"), STR_LIT("/device/v1/sync"),
			      STR_LIT("SAG1000-0001"), STR_LIT("2026-11-28T02:00:00Z"),
			      STR_LIT("1795831200000"), STR_LIT(BODY_SHA));
	assert_string_equal(buf_cstr(&sts), "SAG-HMAC-SHA256\nPOST\n/device/v1/sync\nSAG1000-0001\n"
					    "2026-11-28T02:00:00Z\n1795831200000\n" BODY_SHA);
	device_sign(STR_LIT("Zr4mXq0bN8sV1tY6uW3eK9pA2dF5gH7j"), (struct str){sts.p, sts.len}, sig);
	assert_string_equal(sig, "8fa91ac2cb79a4b9357fabec8e6c7cb33a6bdf0949c26824e2f678b855501d0a");
	buf_free(&sts);
	device_body_sha256(STR_NULL, sha);
	assert_string_equal(sha, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_vector)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
