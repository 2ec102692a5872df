/* The device-channel client's parsers (src/device/client.c): the control-plane
 * URL, HTTP/1.x responses and the sync answer. The exchange itself is tested
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
			      "http://[::1]:9", "http://cp.example-1.net:65535"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct devclient *c = devclient_new(good[i], "SN1", SECRET, err, sizeof(err));
		assert_non_null(c);
		devclient_free(c);
	}
	const char *bad[] = {"127.0.0.1:8080", "http://", "http://h:0", "http://h:65536", "http://h:80/x",
			     "http://[::1", "http://[::1]x", "http://h:8a", "http://a b", "ftp://h", "http://h:"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(devclient_new(bad[i], "SN1", SECRET, err, sizeof(err)));
		assert_non_null(strstr(err, "http://"));
	}
	assert_null(devclient_new("https://h", "SN1", SECRET, err, sizeof(err)));
	assert_non_null(strstr(err, "no TLS"));
	char longurl[DEVCLIENT_URL_MAX + 16] = "http://";
	memset(longurl + 7, 'a', DEVCLIENT_URL_MAX);
	longurl[DEVCLIENT_URL_MAX + 7] = '\0';
	assert_null(devclient_new(longurl, "SN1", SECRET, err, sizeof(err)));
	assert_null(devclient_new("http://h", "bad serial", SECRET, err, sizeof(err)));
	assert_null(devclient_new("http://h", "SN1", "", err, sizeof(err)));
	/* A secret too long is refused without echoing it. */
	assert_null(devclient_new("http://h", "SN1", SECRET "XYZ", err, sizeof(err)));
	assert_null(strstr(err, "abcdef"));
}

static void test_response(void **state)
{
	(void)state;
	char err[256];
	int status = 0;
	struct str body;
	const char *ok = "HTTP/1.1 200 OK\r\nContent-Type: x\r\nContent-Length: 2\r\n\r\n{}trailing";
	assert_int_equal(devclient_parse_response(S(ok), true, &status, &body, err, sizeof(err)), 0);
	assert_int_equal(status, 200);
	assert_true(str_eqc(body, "{}"));
	/* Without Content-Length the body is whatever came before the close. */
	const char *eof = "HTTP/1.0 401 Unauthorized\r\n\r\n{\"Code\":1}";
	assert_int_equal(devclient_parse_response(S(eof), true, &status, &body, err, sizeof(err)), 0);
	assert_int_equal(status, 401);
	assert_int_equal(body.len, 10);
	assert_false(devclient_response_complete(S(eof)));
	assert_true(devclient_response_complete(S(ok)));
	assert_false(devclient_response_complete(S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}")));
	const char *bad[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}",          /* short */
		"HTTP/1.1 200 OK\r\nContent-Length: 2",                     /* headers never end */
		"HTTP/2 200 OK\r\n\r\n",                                    /* not 1.x */
		"HTTP/1.1 20 OK\r\n\r\n",                                   /* status */
		"HTTP/1.1 2000 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(devclient_parse_response(S(bad[i]), true, &status, &body, err, sizeof(err)), -1);
	/* Too many header lines. */
	struct buf b = {0};
	buf_adds(&b, "HTTP/1.1 200 OK\r\n");
	for (int i = 0; i <= DEVCLIENT_MAX_HEADER_LINES; i++)
		buf_adds(&b, "X: y\r\n");
	buf_adds(&b, "\r\n");
	assert_int_equal(devclient_parse_response((struct str){b.p, b.len}, true, &status, &body, err, sizeof(err)),
			 -1);
	buf_free(&b);
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
		cmocka_unit_test(test_response),
		cmocka_unit_test(test_answer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
