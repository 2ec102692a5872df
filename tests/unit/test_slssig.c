/* src/sls/sig.c against the requests captured from the real npm clients (spec
 * log-service.md §1.7: AccessKeyId testAccessKeyId, secret testAccessKeySecret),
 * and src/sls/body.c's decompression and LogGroup limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include <lz4.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "logstore/server.h"
#include "sls/body.h"
#include "sls/sig.h"

#define SECRET STR_LIT("testAccessKeySecret")
#define KV(k, v) {STR_LIT(k), STR_LIT(v)}

/* @alicloud/log postLogStoreLogs: hmac-sha1, body MD5, x-log-bodyrawsize. */
static void test_v1_putlogs_sha1(void **state)
{
	static const struct sls_kv h[] = {
		KV("content-type", "application/x-protobuf"), KV("date", "Tue, 01 Dec 2026 07:36:47 GMT"),
		KV("x-log-apiversion", "0.6.0"), KV("x-log-signaturemethod", "hmac-sha1"),
		KV("user-agent", "aliyun-log-nodejs-sdk"), KV("x-log-bodyrawsize", "103"),
		KV("content-md5", "64A576EAFDB58993FEE71A9EF90EEE8F"), KV("content-length", "103"),
		KV("host", "flowproj.sagflow.test:35813")};
	struct sls_sig_input in = {STR_LIT("POST"), STR_LIT("/logstores/flowstore/shards/lb"), h, 9,
				   NULL, 0};
	struct buf sts = {0};
	sls_v1_string_to_sign(&sts, &in, SLS_SIG_SORT_PAIRS);
	assert_string_equal(sts.p, "POST\n64A576EAFDB58993FEE71A9EF90EEE8F\napplication/x-protobuf\n"
				   "Tue, 01 Dec 2026 07:36:47 GMT\nx-log-apiversion:0.6.0\n"
				   "x-log-bodyrawsize:103\nx-log-signaturemethod:hmac-sha1\n"
				   "/logstores/flowstore/shards/lb");
	char sig[SLS_SIG_V1_MAX_B64];
	sls_v1_sign(SLS_SIG_HMAC_SHA1, SECRET, (struct str){sts.p, sts.len}, sig);
	assert_string_equal(sig, "NuEyMx13SrC0nfH3BLE36B5emxE=");
	assert_true(sls_v1_verify(&in, SLS_SIG_HMAC_SHA1, SECRET, STR_LIT("NuEyMx13SrC0nfH3BLE36B5emxE=")));
	assert_false(sls_v1_verify(&in, SLS_SIG_HMAC_SHA1, STR_LIT("other"),
				   STR_LIT("NuEyMx13SrC0nfH3BLE36B5emxE=")));
	assert_false(sls_v1_verify(&in, SLS_SIG_HMAC_SHA256, SECRET,
				   STR_LIT("NuEyMx13SrC0nfH3BLE36B5emxE=")));
	buf_free(&sts);
}

/* @alicloud/log getLogs: decoded query values, sorted "k=v", empty topic= kept. */
static void test_v1_getlogs_query(void **state)
{
	static const struct sls_kv h[] = {
		KV("content-type", "application/json"), KV("date", "Tue, 01 Dec 2026 07:36:47 GMT"),
		KV("x-log-apiversion", "0.6.0"), KV("x-log-signaturemethod", "hmac-sha1")};
	static const struct sls_kv q[] = {
		KV("query", "* | select srcaddr, sum(bytes) as b group by srcaddr order by b desc limit 10"),
		KV("line", "100"), KV("offset", "0"), KV("reverse", "false"), KV("topic", ""),
		KV("type", "log"), KV("from", "1700000000"), KV("to", "1700000900")};
	struct sls_sig_input in = {STR_LIT("GET"), STR_LIT("/logstores/flowstore"), h, 4, q, 8};
	assert_true(sls_v1_verify(&in, SLS_SIG_HMAC_SHA1, SECRET, STR_LIT("USLCOWvUaN+ewcgvtMtgHOErxUE=")));
}

/* @alicloud/log listLogStore and createProject (no project in the Host). */
static void test_v1_list_and_create(void **state)
{
	static const struct sls_kv h[] = {
		KV("content-type", "application/json"), KV("date", "Tue, 01 Dec 2026 07:36:47 GMT"),
		KV("x-log-apiversion", "0.6.0"), KV("x-log-signaturemethod", "hmac-sha1")};
	static const struct sls_kv q[] = {KV("logstoreName", ""), KV("offset", "0"), KV("size", "100")};
	struct sls_sig_input in = {STR_LIT("GET"), STR_LIT("/logstores"), h, 4, q, 3};
	assert_true(sls_v1_verify(&in, SLS_SIG_HMAC_SHA1, SECRET, STR_LIT("0CZQmL/0s0zclTKZzCv2HXABll0=")));
	static const struct sls_kv hc[] = {
		KV("content-type", "application/json"), KV("date", "Tue, 01 Dec 2026 07:36:47 GMT"),
		KV("x-log-apiversion", "0.6.0"), KV("x-log-signaturemethod", "hmac-sha1"),
		KV("x-log-bodyrawsize", "44"), KV("content-md5", "C7859B870E3135A3CF23584679996C60")};
	struct sls_sig_input ic = {STR_LIT("POST"), STR_LIT("/"), hc, 6, NULL, 0};
	assert_true(sls_v1_verify(&ic, SLS_SIG_HMAC_SHA1, SECRET, STR_LIT("7aj0BuH71eWlpiTvA86U0QghOoI=")));
	char md5[SLS_SIG_MD5_HEX + 1];
	sls_md5_hex_upper(STR_LIT("{\"projectName\":\"flowproj\",\"description\":\"d\"}"), md5);
	assert_string_equal(md5, "C7859B870E3135A3CF23584679996C60");
}

/* sls20201230: hmac-sha256, an empty content-md5 header, x-log-bodyrawsize: 0. */
static void test_v1_sha256(void **state)
{
	static const struct sls_kv h[] = {
		KV("accept", "application/json"), KV("host", "flowproj.sagflow.test:35813"),
		KV("x-log-apiversion", "0.6.0"), KV("x-log-bodyrawsize", "0"),
		KV("x-log-signaturemethod", "hmac-sha256"), KV("date", "Tue, 01 Dec 2026 07:36:47 GMT"),
		KV("content-md5", "")};
	static const struct sls_kv q[] = {
		KV("from", "1700000000"), KV("line", "100"), KV("offset", "0"), KV("powerSql", "false"),
		KV("query", "* | select srcaddr, sum(bytes) as b group by srcaddr order by b desc limit 10"),
		KV("reverse", "false"), KV("to", "1700000900"), KV("topic", ""), KV("type", "log")};
	struct sls_sig_input in = {STR_LIT("GET"), STR_LIT("/logstores/flowstore"), h, 7, q, 9};
	enum sls_sig_alg alg;
	assert_int_equal(sls_sig_method(STR_LIT("hmac-sha256"), &alg), 0);
	assert_int_equal(alg, SLS_SIG_HMAC_SHA256);
	assert_int_equal(sls_sig_method(STR_NULL, &alg), 0);
	assert_int_equal(alg, SLS_SIG_HMAC_SHA1);
	assert_int_equal(sls_sig_method(STR_LIT("md5"), &alg), -1);
	assert_true(sls_v1_verify(&in, SLS_SIG_HMAC_SHA256, SECRET,
				  STR_LIT("sokk3wAnYbdXK+uH0JZIBbfvnpHog5hJuI/LWAWzr0Y=")));
	static const struct sls_kv hp[] = {
		KV("accept", "application/json"), KV("host", "flowproj.sagflow.test:35813"),
		KV("x-log-apiversion", "0.6.0"), KV("x-log-bodyrawsize", "0"),
		KV("x-log-signaturemethod", "hmac-sha256"), KV("date", "Tue, 01 Dec 2026 07:36:47 GMT"),
		KV("content-md5", "")};
	struct sls_sig_input ip = {STR_LIT("GET"), STR_LIT("/"), hp, 7, NULL, 0};
	assert_true(sls_v1_verify(&ip, SLS_SIG_HMAC_SHA256, SECRET,
				  STR_LIT("dl/YesYxaHb+daFpCjpjiXsWTAr8cFN0gi37Oow0e6U=")));
}

/* sls20201230 getLogs with signatureVersion v4: the JS encoder's first-'*' quirk. */
static void test_v4_vector(void **state)
{
	static const struct sls_kv h[] = {
		KV("accept", "application/json"), KV("host", "flowproj.@127.0.0.1:36895"),
		KV("user-agent", "AlibabaCloud (linux; x64) Node.js/v20.20.2 Core/1.0.1 TeaDSL/2"),
		KV("x-log-apiversion", "0.6.0"), KV("x-log-bodyrawsize", "0"),
		KV("x-log-date", "20261201T073757Z"),
		KV("x-log-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")};
	static const struct sls_kv q[] = {
		KV("from", "1700000000"), KV("line", "10"),
		KV("query", "* | select srcaddr, count(*) as c group by srcaddr"), KV("to", "1700000900"),
		KV("type", "log")};
	struct sls_sig_input in = {STR_LIT("GET"), STR_LIT("/logstores/fs"), h, 7, q, 5};
	struct buf cr = {0};
	sls_v4_canonical_request(&cr, &in, SLS_V4_JS_QUIRK,
				 STR_LIT("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	assert_string_equal(cr.p,
			    "GET\n/logstores/fs\nfrom=1700000000&line=10&query=%2A%20%7C%20select%20srcaddr%2C%20"
			    "count(*)%20as%20c%20group%20by%20srcaddr&to=1700000900&type=log\n"
			    "host:flowproj.@127.0.0.1:36895\nx-log-apiversion:0.6.0\nx-log-bodyrawsize:0\n"
			    "x-log-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
			    "x-log-date:20261201T073757Z\n\n"
			    "host;x-log-apiversion;x-log-bodyrawsize;x-log-content-sha256;x-log-date\n"
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	struct sls_v4_auth a;
	assert_int_equal(sls_v4_parse_auth(STR_LIT("SLS4-HMAC-SHA256 Credential=testAccessKeyId/20261201/cn-hangzhou/sls/aliyun_v4_request,Signature=4ffe10d0b69ce30728de86cabbe7f5cf342b7ce50ce27b6d07ca1e98dc4c0602"), &a), 0);
	assert_true(str_eqc(a.akid, "testAccessKeyId"));
	assert_true(str_eqc(a.region, "cn-hangzhou"));
	assert_true(sls_v4_verify(&in, &a, SECRET));
	assert_false(sls_v4_verify(&in, &a, STR_LIT("wrong")));
	char sig[SLS_SIG_V4_HEX + 1];
	sls_v4_sign(SECRET, STR_LIT("cn-hangzhou"), STR_LIT("20261201T073757Z"),
		    (struct str){cr.p, cr.len}, sig);
	assert_string_equal(sig, "4ffe10d0b69ce30728de86cabbe7f5cf342b7ce50ce27b6d07ca1e98dc4c0602");
	assert_int_equal(sls_v4_parse_auth(STR_LIT("SLS4-HMAC-SHA256 Credential=a/2026/r/sls/aliyun_v4_request,Signature=00"), &a), -1);
	assert_int_equal(sls_v4_parse_auth(STR_LIT("LOG a:b"), &a), -1);
	buf_free(&cr);
}

static void test_auth_and_dates(void **state)
{
	struct str ak, sig;
	assert_int_equal(sls_v1_parse_auth(STR_LIT("LOG testAccessKeyId:NuEy="), &ak, &sig), 0);
	assert_true(str_eqc(ak, "testAccessKeyId"));
	assert_true(str_eqc(sig, "NuEy="));
	assert_int_equal(sls_v1_parse_auth(STR_LIT("LOG :x"), &ak, &sig), -1);
	assert_int_equal(sls_v1_parse_auth(STR_LIT("LOG ab"), &ak, &sig), -1);
	assert_int_equal(sls_v1_parse_auth(STR_LIT("ACS3 a:b"), &ak, &sig), -1);
	int64_t t;
	assert_int_equal(sls_parse_http_date(STR_LIT("Tue, 01 Dec 2026 07:36:47 GMT"), &t), 0);
	assert_int_equal(t, 1796110607);
	char out[30];
	sls_format_http_date(t, out);
	assert_string_equal(out, "Tue, 01 Dec 2026 07:36:47 GMT");
	assert_int_equal(sls_parse_http_date(STR_LIT("Tue, 01 Foo 2026 07:36:47 GMT"), &t), -1);
	assert_int_equal(sls_parse_http_date(STR_LIT("Tue, 01 Dec 2026 07:36:47 UTC"), &t), -1);
	assert_int_equal(sls_parse_v4_date(STR_LIT("20261201T073757Z"), &t), 0);
	assert_int_equal(t, 1796110677);
	assert_int_equal(sls_parse_v4_date(STR_LIT("20261301T073757Z"), &t), -1);
}

/* A LogGroup packed with protobuf-c itself, the way the agent will send one. */
static size_t pack_group(uint8_t **out, size_t nlogs)
{
	Sls__LogGroup g = SLS__LOG_GROUP__INIT;
	Sls__Log **logs = calloc(nlogs, sizeof(*logs));
	Sls__Log *lv = calloc(nlogs, sizeof(*lv));
	Sls__Log__Content c = SLS__LOG__CONTENT__INIT, *cp = &c;
	c.key = (ProtobufCBinaryData){5, (uint8_t *)"bytes"};
	c.value = (ProtobufCBinaryData){4, (uint8_t *)"1500"};
	for (size_t i = 0; i < nlogs; i++) {
		sls__log__init(&lv[i]);
		lv[i].time = 1700000000 + (uint32_t)i;
		lv[i].n_contents = 1;
		lv[i].contents = &cp;
		logs[i] = &lv[i];
	}
	g.n_logs = nlogs;
	g.logs = logs;
	*out = malloc(sls__log_group__get_packed_size(&g));
	size_t n = sls__log_group__pack(&g, *out);
	free(logs);
	free(lv);
	return n;
}

static void test_body_compressions(void **state)
{
	uint8_t *pb;
	size_t n = pack_group(&pb, 10);
	struct str raw, in = {(const char *)pb, n};
	char *owned, sz[16];
	const char *detail;
	snprintf(sz, sizeof(sz), "%zu", n);
	char lz[1024], zz[1024], zs[1024];
	int lzn = LZ4_compress_default((const char *)pb, lz, (int)n, sizeof(lz));
	uLongf zn = sizeof(zz);
	assert_int_equal(compress((Bytef *)zz, &zn, pb, n), Z_OK);
	size_t zsn = ZSTD_compress(zs, sizeof(zs), pb, n, 1);
	struct {
		enum sls_compress c;
		struct str body;
	} cases[] = {{SLS_COMPRESS_NONE, in}, {SLS_COMPRESS_LZ4, {lz, (size_t)lzn}},
		     {SLS_COMPRESS_DEFLATE, {zz, zn}}, {SLS_COMPRESS_ZSTD, {zs, zsn}}};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(sls_body_raw(cases[i].c, cases[i].body, str_c(sz), &raw, &owned, &detail),
				 SLS_ERR_OK);
		Sls__LogGroup *g;
		assert_int_equal(sls_loggroup_decode(raw, &g, &detail), SLS_ERR_OK);
		assert_int_equal(g->n_logs, 10);
		assert_int_equal(g->logs[9]->time, 1700000009);
		assert_memory_equal(g->logs[0]->contents[0]->value.data, "1500", 4);
		sls_loggroup_free(g);
		free(owned);
	}
	/* The raw size is checked before anything is allocated, and must be exact. */
	assert_int_equal(sls_body_raw(SLS_COMPRESS_LZ4, (struct str){lz, (size_t)lzn}, STR_LIT("99999999"),
				      &raw, &owned, &detail), SLS_ERR_POST_BODY_TOO_LARGE);
	assert_int_equal(sls_body_raw(SLS_COMPRESS_LZ4, (struct str){lz, (size_t)lzn}, STR_NULL, &raw,
				      &owned, &detail), SLS_ERR_MISSING_BODY_RAW_SIZE);
	assert_int_equal(sls_body_raw(SLS_COMPRESS_LZ4, (struct str){lz, (size_t)lzn}, STR_LIT("-1"),
				      &raw, &owned, &detail), SLS_ERR_INVALID_BODY_RAW_SIZE);
	char small[16];
	snprintf(small, sizeof(small), "%zu", n - 1);
	for (size_t i = 1; i < 4; i++)
		assert_int_equal(sls_body_raw(cases[i].c, cases[i].body, str_c(small), &raw, &owned, &detail),
				 SLS_ERR_POST_BODY_UNCOMPRESS_ERROR);
	enum sls_compress c;
	assert_int_equal(sls_compress_parse(STR_LIT("snappy"), &c), -1);
	assert_int_equal(sls_compress_parse(STR_LIT("LZ4"), &c), 0);
	assert_int_equal(c, SLS_COMPRESS_LZ4);
	free(pb);
}

static void test_group_limits(void **state)
{
	uint8_t *pb;
	size_t n = pack_group(&pb, SLS_MAX_LOGS_PER_GROUP + 1);
	Sls__LogGroup *g;
	const char *detail;
	assert_int_equal(sls_loggroup_decode((struct str){(const char *)pb, n}, &g, &detail),
			 SLS_ERR_POST_BODY_INVALID);
	assert_null(g);
	free(pb);
	/* A required field missing (Log without Time). */
	static const char bad[] = {0x0a, 0x02, 0x12, 0x00};
	assert_int_equal(sls_loggroup_decode((struct str){bad, sizeof(bad)}, &g, &detail),
			 SLS_ERR_POST_BODY_INVALID);
}

/* A body within every limit whose decoded objects would pass
 * SLS_DECODE_MEMORY_MAX: Logs of SLS_MAX_CONTENTS_PER_LOG empty Contents, 6
 * bytes on the wire and ~72 in the arena each. Decoded whole, the arena's
 * budget refuses it (protobuf-c's allocation fails, so does the unpack);
 * decoded Log by Log, each Log's arena starts again and every Log decodes. */
static void test_decode_budget(void **state)
{
	enum { LOGS = 1600 };
	Sls__Log__Content c = SLS__LOG__CONTENT__INIT;
	c.key = c.value = (ProtobufCBinaryData){0, NULL};
	Sls__Log__Content *cs[SLS_MAX_CONTENTS_PER_LOG];
	for (size_t i = 0; i < SLS_MAX_CONTENTS_PER_LOG; i++)
		cs[i] = &c;
	Sls__Log l = SLS__LOG__INIT, *ls[LOGS];
	l.time = 1700000000;
	l.n_contents = SLS_MAX_CONTENTS_PER_LOG;
	l.contents = cs;
	for (size_t i = 0; i < LOGS; i++)
		ls[i] = &l;
	Sls__LogGroup g = SLS__LOG_GROUP__INIT;
	g.n_logs = LOGS;
	g.logs = ls;
	size_t n = sls__log_group__get_packed_size(&g);
	assert_true(n <= SLS_MAX_RAW_BODY);
	/* The Contents and their pointers alone pass the budget. */
	assert_true((size_t)LOGS * SLS_MAX_CONTENTS_PER_LOG * (sizeof(c) + sizeof(cs[0])) >
		    SLS_DECODE_MEMORY_MAX);
	uint8_t *pb = malloc(n);
	assert_int_equal(sls__log_group__pack(&g, pb), n);
	struct str raw = {(const char *)pb, n};
	Sls__LogGroup *d;
	const char *detail;
	assert_int_equal(sls_loggroup_decode(raw, &d, &detail), SLS_ERR_POST_BODY_INVALID);
	assert_null(d);
	assert_string_equal(detail, "not a LogGroup protobuf");
	struct sls_logs *s;
	assert_int_equal(sls_logs_open(raw, &s, &detail), SLS_ERR_OK);
	for (size_t i = 0; i < LOGS; i++) {
		const Sls__Log *got;
		assert_int_equal(sls_logs_get(s, i, &got, &detail), SLS_ERR_OK);
		assert_int_equal(got->n_contents, SLS_MAX_CONTENTS_PER_LOG);
	}
	sls_logs_free(s);
	free(pb);
}

/* The worked example of docs/device-protocol.md §8: a device's PutLogs,
 * signed with its SecretKey; body MD5 and signature computed here. */
static void test_device_example(void **state)
{
	static const unsigned char body[] = {
		0x0a, 0x3f, 0x08, 0xe4, 0xd3, 0xb8, 0xd8, 0x06, 0x12, 0x13, 0x0a, 0x07, 0x73, 0x72, 0x63,
		0x61, 0x64, 0x64, 0x72, 0x12, 0x08, 0x31, 0x30, 0x2e, 0x30, 0x2e, 0x30, 0x2e, 0x31, 0x12,
		0x13, 0x0a, 0x07, 0x64, 0x73, 0x74, 0x61, 0x64, 0x64, 0x72, 0x12, 0x08, 0x31, 0x30, 0x2e,
		0x30, 0x2e, 0x30, 0x2e, 0x32, 0x12, 0x0d, 0x0a, 0x05, 0x62, 0x79, 0x74, 0x65, 0x73, 0x12,
		0x04, 0x31, 0x35, 0x30, 0x30};
	char md5[SLS_SIG_MD5_HEX + 1];
	sls_md5_hex_upper((struct str){(const char *)body, sizeof(body)}, md5);
	assert_string_equal(md5, "96B117BAB7A7E9AAB2268916D0605473");
	const struct sls_kv h[] = {
		KV("content-type", "application/x-protobuf"), KV("date", "Tue, 01 Dec 2026 02:00:00 GMT"),
		KV("x-log-apiversion", "0.6.0"), KV("x-log-signaturemethod", "hmac-sha1"),
		KV("x-log-bodyrawsize", "65"), KV("content-md5", "96B117BAB7A7E9AAB2268916D0605473"),
		KV("host", "sag-flowlog-shanghai.sls.example.net:8080")};
	struct sls_sig_input in = {STR_LIT("POST"), STR_LIT("/logstores/sag-shanghai/shards/lb"), h, 7,
				   NULL, 0};
	struct buf sts = {0};
	sls_v1_string_to_sign(&sts, &in, SLS_SIG_SORT_PAIRS);
	assert_string_equal(sts.p, "POST\n96B117BAB7A7E9AAB2268916D0605473\napplication/x-protobuf\n"
				   "Tue, 01 Dec 2026 02:00:00 GMT\nx-log-apiversion:0.6.0\n"
				   "x-log-bodyrawsize:65\nx-log-signaturemethod:hmac-sha1\n"
				   "/logstores/sag-shanghai/shards/lb");
	char sig[SLS_SIG_V1_MAX_B64];
	sls_v1_sign(SLS_SIG_HMAC_SHA1, STR_LIT("Zr4mXq0bN8sV1tY6uW3eK9pA2dF5gH7j"),
		    (struct str){sts.p, sts.len}, sig);
	assert_string_equal(sig, "im0dPGzOHxrL0s3engXxpZkYdvk=");
	buf_free(&sts);
	Sls__LogGroup *g;
	const char *detail;
	assert_int_equal(sls_loggroup_decode((struct str){(const char *)body, sizeof(body)}, &g, &detail),
			 SLS_ERR_OK);
	assert_int_equal(g->logs[0]->time, 1796090340); /* 2026-12-01T01:59:00Z */
	sls_loggroup_free(g);
}

/* A device's records: the identity keys are replaced wherever and however
 * often the payload had them; everything else stays, in order. */
static void test_stamp(void **state)
{
	Sls__LogGroup g = SLS__LOG_GROUP__INIT;
	Sls__Log l = SLS__LOG__INIT, *lp = &l;
	Sls__Log__Content c[4] = {SLS__LOG__CONTENT__INIT, SLS__LOG__CONTENT__INIT,
				  SLS__LOG__CONTENT__INIT, SLS__LOG__CONTENT__INIT};
	Sls__Log__Content *cp[4] = {&c[0], &c[1], &c[2], &c[3]};
	static char kv[4][2][16] = {{"snid", "EVIL"}, {"bytes", "1500"}, {"snid", "EVIL2"}, {"Instance_id", "sag-x"}};
	for (int i = 0; i < 4; i++) {
		c[i].key = (ProtobufCBinaryData){strlen(kv[i][0]), (uint8_t *)kv[i][0]};
		c[i].value = (ProtobufCBinaryData){strlen(kv[i][1]), (uint8_t *)kv[i][1]};
	}
	l.time = 1700000000;
	l.n_contents = 4;
	l.contents = cp;
	g.n_logs = 1;
	g.logs = &lp;
	uint8_t buf[256];
	size_t n = sls__log_group__pack(&g, buf);
	Sls__LogGroup *d;
	const char *detail;
	assert_int_equal(sls_loggroup_decode((struct str){(const char *)buf, n}, &d, &detail), SLS_ERR_OK);
	const struct sls_field f[] = {{STR_LIT("Instance_id"), STR_LIT("sag-real")},
				      {STR_LIT("snid"), STR_LIT("SN1")},
				      {STR_LIT("ali-uid"), STR_LIT("7")}};
	sls_loggroup_stamp(d, f, 3);
	const char *want[4][2] = {{"bytes", "1500"}, {"Instance_id", "sag-real"}, {"snid", "SN1"}, {"ali-uid", "7"}};
	assert_int_equal(d->logs[0]->n_contents, 4);
	for (int i = 0; i < 4; i++) {
		assert_true(str_eqc(sls_pb_str(d->logs[0]->contents[i]->key), want[i][0]));
		assert_true(str_eqc(sls_pb_str(d->logs[0]->contents[i]->value), want[i][1]));
	}
	sls_loggroup_free(d); /* ASan: what stamp allocated is freed with the rest */
}

/* Logs that already carry the identity, each key once with its value, are
 * left as they are (order kept); a correct value twice or a missing key
 * still means a rebuild. */
static void test_stamp_kept(void **state)
{
	(void)state;
	static const char *logs[3][4][2] = {
	    {{"snid", "SN1"}, {"bytes", "1"}, {"ali-uid", "7"}, {"Instance_id", "sag-real"}},
	    {{"snid", "SN1"}, {"snid", "SN1"}, {"ali-uid", "7"}, {"Instance_id", "sag-real"}},
	    {{"snid", "SN1"}, {"bytes", "3"}, {"ali-uid", "7"}, {"tos", "0"}},
	};
	Sls__LogGroup g = SLS__LOG_GROUP__INIT;
	Sls__Log l[3] = {SLS__LOG__INIT, SLS__LOG__INIT, SLS__LOG__INIT}, *lp[3];
	Sls__Log__Content c[3][4], *cp[3][4];
	for (int i = 0; i < 3; i++) {
		for (int j = 0; j < 4; j++) {
			sls__log__content__init(&c[i][j]);
			c[i][j].key = (ProtobufCBinaryData){strlen(logs[i][j][0]), (uint8_t *)(uintptr_t)logs[i][j][0]};
			c[i][j].value = (ProtobufCBinaryData){strlen(logs[i][j][1]), (uint8_t *)(uintptr_t)logs[i][j][1]};
			cp[i][j] = &c[i][j];
		}
		l[i].time = 1700000000;
		l[i].n_contents = 4;
		l[i].contents = cp[i];
		lp[i] = &l[i];
	}
	g.n_logs = 3;
	g.logs = lp;
	uint8_t buf[512];
	size_t n = sls__log_group__pack(&g, buf);
	Sls__LogGroup *d;
	const char *detail;
	assert_int_equal(sls_loggroup_decode((struct str){(const char *)buf, n}, &d, &detail), SLS_ERR_OK);
	const struct sls_field f[] = {{STR_LIT("Instance_id"), STR_LIT("sag-real")},
				      {STR_LIT("snid"), STR_LIT("SN1")},
				      {STR_LIT("ali-uid"), STR_LIT("7")}};
	sls_loggroup_stamp(d, f, 3);
	const char *want[3][5] = {{"snid", "bytes", "ali-uid", "Instance_id"},
				  {"Instance_id", "snid", "ali-uid"},
				  {"bytes", "tos", "Instance_id", "snid", "ali-uid"}};
	const size_t count[3] = {4, 3, 5};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(d->logs[i]->n_contents, count[i]);
		for (size_t j = 0; j < count[i]; j++)
			assert_true(str_eqc(sls_pb_str(d->logs[i]->contents[j]->key), want[i][j]));
	}
	sls_loggroup_free(d);
}

/* Log i of the group packed in buf, through sls_logs_get (its Content slots)
 * and through the whole-group decoder: the same Contents, byte for byte. */
static void assert_logs_equal(const uint8_t *buf, size_t n)
{
	struct str raw = {(const char *)buf, n};
	Sls__LogGroup *d;
	struct sls_logs *s;
	const char *detail;
	assert_int_equal(sls_loggroup_decode(raw, &d, &detail), SLS_ERR_OK);
	assert_int_equal(sls_logs_open(raw, &s, &detail), SLS_ERR_OK);
	assert_int_equal(sls_logs_count(s), d->n_logs);
	for (size_t i = 0; i < d->n_logs; i++) {
		const Sls__Log *l, *w = d->logs[i];
		assert_int_equal(sls_logs_get(s, i, &l, &detail), SLS_ERR_OK);
		assert_int_equal(l->time, w->time);
		assert_int_equal(l->has_timens, w->has_timens);
		assert_int_equal(l->n_contents, w->n_contents);
		for (size_t c = 0; c < w->n_contents; c++) {
			assert_true(str_eq(sls_pb_str(l->contents[c]->key), sls_pb_str(w->contents[c]->key)));
			assert_true(str_eq(sls_pb_str(l->contents[c]->value), sls_pb_str(w->contents[c]->value)));
			assert_true(!l->contents[c]->value.data == !w->contents[c]->value.data);
		}
	}
	sls_logs_free(s);
	sls_loggroup_free(d);
}

/* The n logs packed as one LogGroup, then assert_logs_equal. */
static void assert_group_logs_equal(Sls__Log **logs, size_t n)
{
	Sls__LogGroup g = SLS__LOG_GROUP__INIT;
	g.n_logs = n;
	g.logs = logs;
	size_t len = sls__log_group__get_packed_size(&g);
	uint8_t *buf = malloc(len);
	sls__log_group__pack(&g, buf);
	assert_logs_equal(buf, len);
	free(buf);
}

/* sls_logs_get reuses a Content whose packed bytes equal one kept at the same
 * index from the logs before: logs that repeat, change a value (of the same
 * length too), reorder, shrink, grow past SLS_LOGS_SLOTS, hold an empty value
 * or one too long for a slot, cycle through fewer and more values than
 * SLS_LOGS_WAYS; and a Content that does not decode after one
 * at the same index that did. */
static void test_logs_slots(void **state)
{
	(void)state;
	enum { LOGS = 6 + 4 * SLS_LOGS_WAYS, MAXC = SLS_LOGS_SLOTS + 6 };
	static char longv[SLS_LOGS_SLOT_BYTES + 40];
	memset(longv, 'L', sizeof(longv) - 1);
	static char text[LOGS][MAXC][2][24];
	Sls__Log l[LOGS], *lp[LOGS];
	static Sls__Log__Content c[LOGS][MAXC], *cp[LOGS][MAXC];
	size_t nc[LOGS] = {5, 5, 5, 3, MAXC, MAXC};
	for (size_t i = 6; i < LOGS; i++)
		nc[i] = 8; /* value j of log i cycles through j + 1 values: more than the ways, too */
	for (size_t i = 0; i < LOGS; i++) {
		sls__log__init(&l[i]);
		l[i].time = 1700000000 + (uint32_t)i;
		for (size_t j = 0; j < nc[i]; j++) {
			/* logs 0-1 alike but for the value of 2 (same length); log 2 reversed */
			size_t k = i == 2 ? nc[i] - 1 - j : j;
			snprintf(text[i][j][0], sizeof(text[i][j][0]), "k%zu", k);
			char last = i == 1 && k == 2 ? 'x' : i >= 6 ? (char)('a' + i % (k + 1)) : i >= 4 ? (char)('a' + i) : 'y';
			snprintf(text[i][j][1], sizeof(text[i][j][1]), "v%zu%c", k, last);
			sls__log__content__init(&c[i][j]);
			c[i][j].key = (ProtobufCBinaryData){strlen(text[i][j][0]), (uint8_t *)text[i][j][0]};
			const char *v = k == 3 ? longv : k == 4 ? "" : text[i][j][1];
			c[i][j].value = (ProtobufCBinaryData){strlen(v), (uint8_t *)(uintptr_t)v};
			cp[i][j] = &c[i][j];
		}
		l[i].n_contents = nc[i];
		l[i].contents = cp[i];
		lp[i] = &l[i];
	}
	assert_group_logs_equal(lp, LOGS);
	/* Log 1's Content 0 is a varint 1, not a Content, after log 0's good one. */
	static const uint8_t bad[] = {0x0a, 0x0c, 0x08, 0x01, 0x12, 0x08, 0x0a, 0x02, 'k', '0', 0x12, 0x02, 'v', '0',
				      0x0a, 0x06, 0x08, 0x01, 0x12, 0x02, 0x08, 0x01};
	struct sls_logs *s;
	const Sls__Log *got;
	const char *detail;
	assert_int_equal(sls_logs_open((struct str){(const char *)bad, sizeof(bad)}, &s, &detail), SLS_ERR_OK);
	assert_int_equal(sls_logs_get(s, 0, &got, &detail), SLS_ERR_OK);
	assert_int_equal(sls_logs_get(s, 1, &got, &detail), SLS_ERR_POST_BODY_INVALID);
	sls_logs_free(s);
	Sls__LogGroup *d;
	assert_int_equal(sls_loggroup_decode((struct str){(const char *)bad, sizeof(bad)}, &d, &detail),
			 SLS_ERR_POST_BODY_INVALID);
}

/* An index whose Contents miss the ways SLS_LOGS_COLD times in a row is
 * unpacked without them until a probe (one Log in SLS_LOGS_PROBE) hits:
 * Content 0 is new in every Log for a while and then one value for good,
 * Content 1 alternates between two, Content 2 is new in every Log but for
 * one in five, which repeats a value its ways held before the index went
 * cold. Every Log decodes as the whole-group decoder decodes it. */
static void test_logs_cold(void **state)
{
	(void)state;
	enum { LOGS = 4 * SLS_LOGS_PROBE + 7, NC = 3 };
	static char text[LOGS][NC][2][24];
	static Sls__Log l[LOGS], *lp[LOGS];
	static Sls__Log__Content c[LOGS][NC], *cp[LOGS][NC];
	for (size_t i = 0; i < LOGS; i++) {
		sls__log__init(&l[i]);
		l[i].time = 1700000000;
		for (size_t j = 0; j < NC; j++) {
			snprintf(text[i][j][0], sizeof(text[i][j][0]), "k%zu", j);
			if (j == 0)
				snprintf(text[i][j][1], sizeof(text[i][j][1]), "%s%zu",
					 i < 2 * SLS_LOGS_PROBE ? "u" : "same", i < 2 * SLS_LOGS_PROBE ? i : 0);
			else if (j == 1)
				snprintf(text[i][j][1], sizeof(text[i][j][1]), "a%zu", i % 2);
			else
				snprintf(text[i][j][1], sizeof(text[i][j][1]), "n%zu", i % 5 ? i : 0);
			sls__log__content__init(&c[i][j]);
			c[i][j].key = (ProtobufCBinaryData){strlen(text[i][j][0]), (uint8_t *)text[i][j][0]};
			c[i][j].value = (ProtobufCBinaryData){strlen(text[i][j][1]), (uint8_t *)text[i][j][1]};
			cp[i][j] = &c[i][j];
		}
		l[i].n_contents = NC;
		l[i].contents = cp[i];
		lp[i] = &l[i];
	}
	assert_group_logs_equal(lp, LOGS);
}

/* Logs of "key=value" strings (at most 8 Contents, NULL-ended), packed as
 * one LogGroup into a malloc'd buffer: its length in *n. */
#define SAME_MAXC 8
static uint8_t *pack_kv_logs(const char *const (*kv)[SAME_MAXC + 1], size_t nlogs, size_t *n)
{
	Sls__LogGroup g = SLS__LOG_GROUP__INIT;
	Sls__Log *l = calloc(nlogs, sizeof(*l)), **lp = calloc(nlogs, sizeof(*lp));
	Sls__Log__Content *c = calloc(nlogs * SAME_MAXC, sizeof(*c)), **cp = calloc(nlogs * SAME_MAXC, sizeof(*cp));
	for (size_t i = 0; i < nlogs; i++) {
		sls__log__init(&l[i]);
		l[i].time = 1700000000;
		l[i].contents = &cp[i * SAME_MAXC];
		for (size_t j = 0; kv[i][j]; j++) {
			Sls__Log__Content *x = &c[i * SAME_MAXC + j];
			sls__log__content__init(x);
			const char *eq = strchr(kv[i][j], '=');
			x->key = (ProtobufCBinaryData){(size_t)(eq - kv[i][j]), (uint8_t *)(uintptr_t)kv[i][j]};
			x->value = (ProtobufCBinaryData){strlen(eq + 1), (uint8_t *)(uintptr_t)(eq + 1)};
			cp[i * SAME_MAXC + j] = x;
			l[i].n_contents = j + 1;
		}
		lp[i] = &l[i];
	}
	g.n_logs = nlogs;
	g.logs = lp;
	*n = sls__log_group__get_packed_size(&g);
	uint8_t *buf = malloc(*n);
	sls__log_group__pack(&g, buf);
	free(l);
	free(lp);
	free(c);
	free(cp);
	return buf;
}

/* sls_logs_same sets bit k only when Content k came from the way Content k
 * of the Log just before came from: never for a value that changed, nor for
 * one that went back to an older value (another way), nor past the end of a
 * shorter Log before, nor for a value too long for a way, nor after a Log
 * got out of order or one that failed. */
static void test_logs_same(void **state)
{
	(void)state;
	static char longv[SLS_LOGS_SLOT_BYTES + 10] = "z=";
	memset(longv + 2, 'L', sizeof(longv) - 3);
	const char *const kv[][SAME_MAXC + 1] = {
	    {"a=1", "b=2", "c=3", "d=4", "e=5"},	/* 0 */
	    {"a=1", "b=2", "c=3", "d=4", "e=5"},	/* 1: all the same */
	    {"a=9", "b=2", "c=3", "d=4", "e=5"},	/* 2: a changed */
	    {"a=1", "b=2", "c=3", "d=4", "e=5"},	/* 3: a back to log 1's, in another way */
	    {"a=1", "b=2", "c=3"},			/* 4: shorter */
	    {"a=1", "b=2", "c=3", "d=4", "e=5"},	/* 5: d, e again, but log 4 had none */
	    {"b=2", "a=1", "c=3", longv, "e=5"},	/* 6: a and b swapped; a long value */
	    {"b=2", "a=1", "c=3", longv, "e=5"},	/* 7: the same, but the long one is in no way */
	};
	const uint64_t want[] = {0, 0x1f, 0x1e, 0x1e, 0x7, 0x7, 0x14, 0x17};
	enum { N = sizeof(want) / sizeof(want[0]) };
	size_t n;
	uint8_t *buf = pack_kv_logs(kv, N, &n);
	assert_logs_equal(buf, n);
	struct sls_logs *s;
	const Sls__Log *l;
	const char *detail;
	assert_int_equal(sls_logs_open((struct str){(const char *)buf, n}, &s, &detail), SLS_ERR_OK);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(sls_logs_get(s, i, &l, &detail), SLS_ERR_OK);
		assert_int_equal(sls_logs_same(s), want[i]);
	}
	/* Out of order: log 1 after log 7 is like no log before it; log 2
	 * after it is in order again. */
	assert_int_equal(sls_logs_get(s, 1, &l, &detail), SLS_ERR_OK);
	assert_int_equal(sls_logs_same(s), 0);
	assert_int_equal(sls_logs_get(s, 2, &l, &detail), SLS_ERR_OK);
	assert_int_equal(sls_logs_same(s), 0x1e);
	sls_logs_free(s);
	free(buf);
	/* A Log that fails leaves nothing "the same" for the one after it. */
	static const uint8_t bad[] = {0x0a, 0x0c, 0x08, 0x01, 0x12, 0x08, 0x0a, 0x02, 'k', '0', 0x12, 0x02, 'v', '0',
				      0x0a, 0x06, 0x08, 0x01, 0x12, 0x02, 0x08, 0x01,
				      0x0a, 0x0c, 0x08, 0x01, 0x12, 0x08, 0x0a, 0x02, 'k', '0', 0x12, 0x02, 'v', '0'};
	assert_int_equal(sls_logs_open((struct str){(const char *)bad, sizeof(bad)}, &s, &detail), SLS_ERR_OK);
	assert_int_equal(sls_logs_get(s, 0, &l, &detail), SLS_ERR_OK);
	assert_int_equal(sls_logs_get(s, 1, &l, &detail), SLS_ERR_POST_BODY_INVALID);
	assert_int_equal(sls_logs_same(s), 0);
	assert_int_equal(sls_logs_get(s, 2, &l, &detail), SLS_ERR_OK);
	assert_int_equal(sls_logs_same(s), 0);
	sls_logs_free(s);
}

/* sls_log_stamped through a memo (the Contents sls_logs_same names taken
 * from it) gives what it gives without one, Log after Log: the identity
 * right, then one value of it wrong, the same wrong Log again (its memo
 * entries reused: still rebuilt), the identity right again, a stamped key
 * twice. */
static void test_stamped_memo(void **state)
{
	(void)state;
	const char *const kv[][SAME_MAXC + 1] = {
	    {"Instance_id=sag-real", "snid=SN1", "ali-uid=7", "bytes=1"},
	    {"Instance_id=sag-real", "snid=SN1", "ali-uid=7", "bytes=2"},
	    {"Instance_id=sag-real", "snid=EVIL", "ali-uid=7", "bytes=2"},
	    {"Instance_id=sag-real", "snid=EVIL", "ali-uid=7", "bytes=2"},
	    {"Instance_id=sag-real", "snid=SN1", "ali-uid=7", "bytes=2"},
	    {"Instance_id=sag-real", "snid=SN1", "ali-uid=7", "bytes=2", "snid=SN1"},
	    {"Instance_id=sag-real", "snid=SN1", "ali-uid=7", "bytes=2", "snid=SN1"},
	};
	const bool as_is[] = {true, true, false, false, true, false, false};
	enum { N = sizeof(as_is) / sizeof(as_is[0]) };
	const struct sls_field f[] = {{STR_LIT("Instance_id"), STR_LIT("sag-real")},
				      {STR_LIT("snid"), STR_LIT("SN1")},
				      {STR_LIT("ali-uid"), STR_LIT("7")}};
	size_t n;
	uint8_t *buf = pack_kv_logs(kv, N, &n);
	struct sls_logs *s;
	const Sls__Log *l;
	const char *detail;
	assert_int_equal(sls_logs_open((struct str){(const char *)buf, n}, &s, &detail), SLS_ERR_OK);
	struct sls_stamp_memo memo = {0};
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(sls_logs_get(s, i, &l, &detail), SLS_ERR_OK);
		struct str k1[SAME_MAXC + 3], v1[SAME_MAXC + 3], k2[SAME_MAXC + 3], v2[SAME_MAXC + 3];
		size_t n1 = sls_log_stamped(l, f, 3, sls_logs_same(s), &memo, k1, v1);
		size_t n2 = sls_log_stamped(l, f, 3, 0, NULL, k2, v2);
		assert_int_equal(memo.as_is, as_is[i]);
		assert_int_equal(n1, n2);
		for (size_t j = 0; j < n1; j++) {
			assert_true(str_eq(k1[j], k2[j]));
			assert_true(str_eq(v1[j], v2[j]));
		}
		if (i == 3) /* the wrong Log again: its memo did the work */
			assert_int_equal(sls_logs_same(s), 0xf);
	}
	sls_logs_free(s);
	free(buf);
}

/* The Hosts (and absolute-form authorities) the Log Service claims. */
static void test_host_forms(void **state)
{
	static const struct {
		const char *host, *project; /* project NULL: not the Log Service's */
	} rows[] = {
		{"sls.localhost", ""},
		{"flowproj.sls.localhost:8080", "flowproj"},
		{"FlowProj.SLS.localhost", "FlowProj"}, /* the name rule refuses it later */
		{"flowproj.@127.0.0.1:8080", "flowproj"},
		{"@127.0.0.1:8080", ""},
		{"flowproj.127.0.0.1:8080", "flowproj"},
		{"flowproj.127.0.0.1", "flowproj"},
		{"127.0.0.1:8080", NULL},
		{"localhost:8080", NULL},
		{"user@127.0.0.1", NULL},
		{"flowproj.example.com", NULL},
		{"flowproj.127.0.0", NULL},
		{"[::1]:8080", NULL},
		{".127.0.0.1", NULL},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct str p = STR_NULL;
		int rc = logstore_host_project(str_c(rows[i].host), STR_LIT("sls.localhost"), &p);
		assert_int_equal(rc, rows[i].project != NULL);
		if (rows[i].project)
			assert_true(str_eqc(p, rows[i].project));
	}
}

/* The path form a browser can send: "/sls/<project>/<rest>". */
static void test_path_forms(void **state)
{
	static const struct {
		const char *path, *project, *rest; /* project NULL: not claimed */
	} rows[] = {
		{"/sls/flowproj/logstores/flows", "flowproj", "/logstores/flows"},
		{"/sls/flowproj/", "flowproj", "/"},
		{"/sls/flowproj", "flowproj", "/"},
		{"/sls//logstores", "", "/logstores"},
		{"/sls/", NULL, NULL},
		{"/sls", NULL, NULL},
		{"/slsx/p/logstores", NULL, NULL},
		{"/", NULL, NULL},
		{"/logstores/flows", NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct str p = STR_NULL, rest = STR_NULL;
		int rc = logstore_path_project(str_c(rows[i].path), &p, &rest);
		assert_int_equal(rc, rows[i].project != NULL);
		if (rows[i].project) {
			assert_true(str_eqc(p, rows[i].project));
			assert_true(str_eqc(rest, rows[i].rest));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_putlogs_sha1), cmocka_unit_test(test_v1_getlogs_query),
		cmocka_unit_test(test_v1_list_and_create), cmocka_unit_test(test_v1_sha256),
		cmocka_unit_test(test_v4_vector), cmocka_unit_test(test_auth_and_dates),
		cmocka_unit_test(test_body_compressions), cmocka_unit_test(test_group_limits),
		cmocka_unit_test(test_decode_budget),
		cmocka_unit_test(test_stamp), cmocka_unit_test(test_stamp_kept), cmocka_unit_test(test_logs_slots), cmocka_unit_test(test_logs_cold), cmocka_unit_test(test_logs_same), cmocka_unit_test(test_stamped_memo), cmocka_unit_test(test_host_forms),
		cmocka_unit_test(test_path_forms),
		cmocka_unit_test(test_device_example),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
