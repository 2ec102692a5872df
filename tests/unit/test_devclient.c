/* The device-channel client's parsers (src/device/client.c): the control-plane
 * URL and the sync answer (HTTP itself is libcurl's, device/transport.c). The exchange itself is tested
 * end to end (tests/e2e/agent.test.mjs) against the real server and hostile
 * ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "device/client.h"

#define SECRET "abcdefghijklmnopqrstuvwxyz012345"

static struct str S(const char *s)
{
	return str_c(s);
}

static void test_url(void **state)
{
	(void)state;
	char err[256];
	const char *good[] = {"http://127.0.0.1:8080", "http://127.0.0.1:8080/", "HTTP://localhost",
			      "http://[::1]:9", "http://cp.example-1.net:65535", "https://h"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct devclient *c = devclient_new(good[i], "SN1", SECRET, NULL, err, sizeof(err));
		assert_non_null(c);
		devclient_free(c);
	}
	struct devclient_url u;
	assert_int_equal(devclient_parse_url("https://[::1]", &u, err, sizeof(err)), 0);
	assert_true(u.https);
	assert_string_equal(u.host, "::1");
	assert_string_equal(u.authority, "[::1]:443");
	assert_int_equal(devclient_parse_url("http://cp:8080/", &u, err, sizeof(err)), 0);
	assert_false(u.https);
	assert_string_equal(u.authority, "cp:8080");
	const char *bad[] = {"127.0.0.1:8080", "http://", "http://h:0", "http://h:65536", "http://h:80/x",
			     "http://[::1", "http://[::1]x", "http://h:8a", "http://a b", "ftp://h", "http://h:"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(devclient_new(bad[i], "SN1", SECRET, NULL, err, sizeof(err)));
		assert_non_null(strstr(err, "http"));
	}
	char longurl[DEVCLIENT_URL_MAX + 16] = "http://";
	memset(longurl + 7, 'a', DEVCLIENT_URL_MAX);
	longurl[DEVCLIENT_URL_MAX + 7] = '\0';
	assert_null(devclient_new(longurl, "SN1", SECRET, NULL, err, sizeof(err)));
	assert_null(devclient_new("http://h", "bad serial", SECRET, NULL, err, sizeof(err)));
	assert_null(devclient_new("http://h", "SN1", "", NULL, err, sizeof(err)));
	/* A secret too long is refused without echoing it. */
	assert_null(devclient_new("http://h", "SN1", SECRET "XYZ", NULL, err, sizeof(err)));
	assert_null(strstr(err, "abcdef"));
}

#define ANSWER(flowlog)                                                                              \
	"{\"SmartAGId\":\"sag-abc\",\"SerialNumber\":\"SN1\",\"ConfigVersion\":\"0123456789abcdef\","   \
	"\"Changed\":true,\"Export\":true,\"FlowLog\":" flowlog ",\"PollIntervalSeconds\":5}"
#define NETFLOW(ip, port, ver, act, inact)                                                          \
	"{\"FlowLogId\":\"fl-1\",\"OutputType\":\"netflow\",\"NetflowServerIp\":\"" ip "\","          \
	"\"NetflowServerPort\":" port ",\"NetflowVersion\":\"" ver "\",\"ActiveAging\":" act            \
	",\"InactiveAging\":" inact ",\"SlsRegionId\":\"\",\"ProjectName\":\"\",\"LogstoreName\":\"\"}"

static void test_answer(void **state)
{
	(void)state;
	char err[256];
	struct devclient_answer a;
	memset(&a, 0, sizeof(a));
	assert_int_equal(devclient_parse_answer(S(ANSWER(NETFLOW("10.0.0.1", "2055", "V10", "300", "15"))), &a, err,
						sizeof(err)),
			 0);
	assert_string_equal(a.sag_id, "sag-abc");
	assert_string_equal(a.config_version, "0123456789abcdef");
	assert_true(a.changed && a.exports && a.has_flowlog);
	assert_int_equal(a.poll_interval_s, 5);
	assert_int_equal(a.next_sync_s, -1); /* a server without long-poll sends none */
	assert_string_equal(a.flowlog.server_ip, "10.0.0.1");
	assert_int_equal(a.flowlog.server_port, 2055);
	assert_int_equal(a.flowlog.version, 10);
	assert_int_equal(a.flowlog.active_aging_s, 300);
	assert_int_equal(a.flowlog.inactive_aging_s, 15);
	memset(&a, 0, sizeof(a));
	assert_int_equal(devclient_parse_answer(S(ANSWER("null")), &a, err, sizeof(err)), 0);
	assert_false(a.has_flowlog);
	/* sls only: the NetFlow fields are not needed. */
	assert_int_equal(devclient_parse_answer(S(ANSWER("{\"FlowLogId\":\"fl-2\",\"OutputType\":\"sls\","
							 "\"ActiveAging\":60,\"InactiveAging\":10,"
							 "\"ProjectName\":\"p\",\"LogstoreName\":\"l\"}")),
						&a, err, sizeof(err)),
			 0);
	assert_int_equal(a.flowlog.version, 0);
	assert_string_equal(a.flowlog.logstore, "l");
	const char *bad[] = {
		ANSWER(NETFLOW("10.0.0.1", "0", "V10", "300", "15")),
		ANSWER(NETFLOW("10.0.0.1", "65536", "V10", "300", "15")),
		ANSWER(NETFLOW("10.0.0.x", "2055", "V10", "300", "15")),
		ANSWER(NETFLOW("10.0.0.1", "2055", "V7", "300", "15")),
		ANSWER(NETFLOW("10.0.0.1", "2055", "V9", "59", "15")),
		ANSWER(NETFLOW("10.0.0.1", "2055", "V9", "300", "601")),
		ANSWER(NETFLOW("10.0.0.1", "\"2055\"", "V9", "300", "15")),
		ANSWER("[]"),
		ANSWER("{\"FlowLogId\":\"fl-1\",\"OutputType\":\"kafka\",\"ActiveAging\":60,\"InactiveAging\":10}"),
		"{\"SmartAGId\":\"sag-abc\",\"ConfigVersion\":\"0123456789ABCDEF\",\"Changed\":true,\"Export\":true}",
		"{\"SmartAGId\":\"sag-abc\",\"ConfigVersion\":\"0123\",\"Changed\":true,\"Export\":true}",
		"{\"SmartAGId\":\"sag-abc\",\"ConfigVersion\":\"0123456789abcdef\",\"Changed\":1,\"Export\":true}",
		"{\"SmartAGId\":\"sag-abc\",\"ConfigVersion\":\"0123456789abcdef\",\"Changed\":true,\"Export\":true,"
		"\"PollIntervalSeconds\":0}",
		"{\"SmartAGId\":\"sag-abc\",\"ConfigVersion\":\"0123456789abcdef\",\"Changed\":true,\"Export\":true,"
		"\"NextSyncSeconds\":-1}",
		"{\"SmartAGId\":\"sag-abc\",\"SmartAGId\":\"x\",\"ConfigVersion\":\"0123456789abcdef\",\"Changed\":true,"
		"\"Export\":true}",
		"not json",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&a, 0, sizeof(a));
		assert_int_equal(devclient_parse_answer(S(bad[i]), &a, err, sizeof(err)), -1);
	}
	memset(&a, 0, sizeof(a));
	assert_int_equal(devclient_parse_answer(S("{\"SmartAGId\":\"sag-abc\",\"ConfigVersion\":"
						  "\"0123456789abcdef\",\"Changed\":false,"
						  "\"Export\":true,\"NextSyncSeconds\":0}"),
						&a, err, sizeof(err)),
			 0);
	assert_int_equal(a.next_sync_s, 0);
	/* A string with an embedded NUL is refused, not truncated. */
	static const char nul[] = ANSWER("{\"FlowLogId\":\"fl\\u0000x\",\"OutputType\":\"sls\",\"ActiveAging\":60,"
					 "\"InactiveAging\":10}");
	assert_int_equal(devclient_parse_answer((struct str){nul, sizeof(nul) - 1}, &a, err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_answer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
