#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rpc/params.h"
#include "rpc/sig.h"

#define SECRET STR_LIT("testsecret")
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static const char v1_params[] =
	"AccessKeyId=testid&Action=AssociateFlowLog&FlowLogId=fl-l934tsa5504yuc0001&Format=JSON"
	"&RegionId=cn-shanghai&SignatureMethod=HMAC-SHA1"
	"&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf&SignatureVersion=1.0"
	"&SmartAGId=sag-39u6j9a49i03wk0001&Timestamp=2024-01-01T12%3A00%3A00Z&Version=2018-03-13";

static struct params *parse(const char *q, const char *body)
{
	char d[PARAMS_DETAIL_MAX];
	struct params *p = params_new();
	assert_int_equal(params_parse(p, str_c(q), PARAMS_QUERY, d), ERR_OK);
	if (body)
		assert_int_equal(params_parse(p, str_c(body), PARAMS_BODY, d), ERR_OK);
	return p;
}

static void test_percent_encode(void **state)
{
	struct buf b = {0};
	sig_percent_encode(&b, str_c("a b*c~d!(e)'f+g/\xe4\xb8\xad&=%:Az09-_."));
	assert_string_equal(buf_cstr(&b), "a%20b%2Ac~d%21%28e%29%27f%2Bg%2F%E4%B8%AD%26%3D%25%3AAz09-_.");
	buf_free(&b);
}

static void test_v1_vector(void **state)
{
	struct params *p = parse(v1_params, NULL);
	struct buf sts = {0};
	char sig[SIG_V1_B64_LEN + 1];
	sig_v1_string_to_sign(&sts, STR_LIT("GET"), p);
	assert_string_equal(
		buf_cstr(&sts),
		"GET&%2F&AccessKeyId%3Dtestid%26Action%3DAssociateFlowLog%26FlowLogId%3Dfl-l934tsa5504yuc0001"
		"%26Format%3DJSON%26RegionId%3Dcn-shanghai%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D"
		"3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26SmartAGId%3D"
		"sag-39u6j9a49i03wk0001%26Timestamp%3D2024-01-01T12%253A00%253A00Z%26Version%3D2018-03-13");
	sig_v1_sign(SECRET, (struct str){sts.p, sts.len}, sig);
	assert_string_equal(sig, "2GhyQ6F19NZT8RCSvR8bHNo90P0=");
	buf_reset(&sts);
	sig_v1_string_to_sign(&sts, STR_LIT("POST"), p);
	sig_v1_sign(SECRET, (struct str){sts.p, sts.len}, sig);
	assert_string_equal(sig, "eX1Axf5zbZ17Qnea5OADMeabQcY=");
	buf_free(&sts);
	params_free(p);
}

static void test_v1_verify_split_and_order(void **state)
{
	/* tea-rpc shape: common params in the query, API params in the body, in
	 * any order; Signature itself is excluded from the string to sign. */
	struct params *p = parse("Version=2018-03-13&Timestamp=2024-01-01T12%3A00%3A00Z&Signature="
				 "eX1Axf5zbZ17Qnea5OADMeabQcY%3D&SignatureVersion=1.0&SignatureNonce="
				 "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf&SignatureMethod=HMAC-SHA1&Format=JSON"
				 "&Action=AssociateFlowLog&AccessKeyId=testid",
				 "SmartAGId=sag-39u6j9a49i03wk0001&RegionId=cn-shanghai"
				 "&FlowLogId=fl-l934tsa5504yuc0001");
	assert_true(sig_v1_verify(STR_LIT("POST"), p, SECRET));
	assert_false(sig_v1_verify(STR_LIT("GET"), p, SECRET));
	assert_false(sig_v1_verify(STR_LIT("POST"), p, STR_LIT("testsecreT")));
	params_free(p);
	p = parse("AccessKeyId=testid&Signature=short", NULL);
	assert_false(sig_v1_verify(STR_LIT("POST"), p, SECRET));
	params_free(p);
}

static void test_v1_awkward_characters(void **state)
{
	/* Expected values from @alicloud/openapi-util getRPCSignature; the wire form
	 * is node querystring's (leaves *!'() unescaped), as a client sends it. */
	struct params *p = parse(
		"AccessKeyId=testid&Action=CreateFlowLog&Format=JSON"
		"&Name=a%20b*c~d!(e)'f%2Bg%2F%E4%B8%AD%E6%96%87%26%3D%25&RegionId=cn-shanghai"
		"&SignatureMethod=HMAC-SHA1&SignatureNonce=n1&SignatureVersion=1.0"
		"&Timestamp=2024-01-01T12%3A00%3A00Z&Version=2018-03-13",
		NULL);
	struct buf sts = {0};
	char sig[SIG_V1_B64_LEN + 1];
	sig_v1_string_to_sign(&sts, STR_LIT("GET"), p);
	sig_v1_sign(SECRET, (struct str){sts.p, sts.len}, sig);
	assert_string_equal(sig, "zkZrdn3Y0NzufpxbuYvBpJhtpSQ=");
	buf_reset(&sts);
	sig_v1_string_to_sign(&sts, STR_LIT("POST"), p);
	sig_v1_sign(SECRET, (struct str){sts.p, sts.len}, sig);
	assert_string_equal(sig, "rIRoS+s0QIsmdON1TwOu6GHScRc=");
	buf_free(&sts);
	params_free(p);
	/* Go clients send spaces as '+' in the body: same decoded value, same signature. */
	p = parse("AccessKeyId=testid&Action=CreateFlowLog&Format=JSON&RegionId=cn-shanghai"
		  "&SignatureMethod=HMAC-SHA1&SignatureNonce=n1&SignatureVersion=1.0"
		  "&Timestamp=2024-01-01T12%3A00%3A00Z&Version=2018-03-13"
		  "&Signature=zkZrdn3Y0NzufpxbuYvBpJhtpSQ%3D",
		  "Name=a+b%2Ac%7Ed%21%28e%29%27f%2Bg%2F%E4%B8%AD%E6%96%87%26%3D%25");
	assert_true(sig_v1_verify(STR_LIT("GET"), p, SECRET));
	params_free(p);
}

struct hdrs {
	const char *const *kv;
};

static struct str get_header(void *arg, const char *name)
{
	const struct hdrs *h = arg;
	for (size_t i = 0; h->kv[i]; i += 2)
		if (strcmp(h->kv[i], name) == 0)
			return str_c(h->kv[i + 1]);
	return STR_NULL;
}

static const char *const v3_headers[] = {
	"host", "127.0.0.1:8080", "x-acs-action", "AssociateFlowLog", "x-acs-version", " 2018-03-13 ",
	"x-acs-date", "2024-01-01T12:00:00Z", "x-acs-signature-nonce", "3ee8c1b883d344afa94f4e0ad82fd6cf",
	"x-acs-content-sha256", EMPTY_SHA, NULL};

#define V3_AUTH                                                                                 \
	"ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action;x-acs-content-sha256;" \
	"x-acs-date;x-acs-signature-nonce;x-acs-version,Signature="

static void test_v3_vector(void **state)
{
	struct params *p = parse("RegionId=cn-shanghai&FlowLogId=fl-l934tsa5504yuc0001"
				 "&SmartAGId=sag-39u6j9a49i03wk0001",
				 "Ignored=body");
	struct sig_v3_auth a;
	struct hdrs h = {v3_headers};
	struct buf cr = {0};
	char hex[SIG_V3_HEX_LEN + 1];
	assert_int_equal(sig_v3_parse_auth(str_c(V3_AUTH "a29ac4b34e4380361c939f3ae24230f2070fda05ec81d"
						   "5658ce4c702ded0a2b2"), &a), 0);
	assert_true(str_eqc(a.credential, "testid"));
	assert_int_equal(a.nheaders, 6);
	assert_true(sig_v3_required_signed(&a));
	sig_sha256_hex(STR_LIT(""), hex);
	assert_string_equal(hex, EMPTY_SHA);
	assert_int_equal(sig_v3_canonical_request(&cr, STR_LIT("POST"), p, &a, get_header, &h,
						  str_c(hex)), 0);
	assert_string_equal(buf_cstr(&cr),
			    "POST\n/\nFlowLogId=fl-l934tsa5504yuc0001&RegionId=cn-shanghai&SmartAGId="
			    "sag-39u6j9a49i03wk0001\nhost:127.0.0.1:8080\nx-acs-action:AssociateFlowLog\n"
			    "x-acs-content-sha256:" EMPTY_SHA "\nx-acs-date:2024-01-01T12:00:00Z\n"
			    "x-acs-signature-nonce:3ee8c1b883d344afa94f4e0ad82fd6cf\n"
			    "x-acs-version:2018-03-13\n\nhost;x-acs-action;x-acs-content-sha256;x-acs-date;"
			    "x-acs-signature-nonce;x-acs-version\n" EMPTY_SHA);
	sig_sha256_hex((struct str){cr.p, cr.len}, hex);
	assert_string_equal(hex, "82477ee947deb8d2e5c4a248f7e5611bc35873b877875d6f2ad2498d8356eaaa");
	assert_true(sig_v3_verify(&a, (struct str){cr.p, cr.len}, SECRET));
	assert_false(sig_v3_verify(&a, (struct str){cr.p, cr.len}, STR_LIT("testsecret&")));
	buf_free(&cr);
	params_free(p);
}

static void test_v3_parse_strict(void **state)
{
	static const char *bad[] = {
		"",
		"ACS3-HMAC-SHA256",
		"ACS3-HMAC-SHA1 Credential=a,SignedHeaders=host,Signature=" EMPTY_SHA,
		"ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=" EMPTY_SHA,
		"ACS3-HMAC-SHA256 Credential=a, SignedHeaders=host,Signature=" EMPTY_SHA,
		"ACS3-HMAC-SHA256 Credential=a,SignedHeaders=,Signature=" EMPTY_SHA,
		"ACS3-HMAC-SHA256 Credential=a,SignedHeaders=Host,Signature=" EMPTY_SHA,
		"ACS3-HMAC-SHA256 Credential=a,SignedHeaders=x;host,Signature=" EMPTY_SHA,
		"ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host;host,Signature=" EMPTY_SHA,
		"ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host;,Signature=" EMPTY_SHA,
		"ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=abc",
		"ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=" EMPTY_SHA "0",
		"ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature="
		"E3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"ACS3-HMAC-SHA256 Credential=a b,SignedHeaders=host,Signature=" EMPTY_SHA,
	};
	struct sig_v3_auth a;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sig_v3_parse_auth(str_c(bad[i]), &a), -1);
	assert_int_equal(sig_v3_parse_auth(str_c("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,"
						 "Signature=" EMPTY_SHA), &a), 0);
	assert_false(sig_v3_required_signed(&a));
}

static void test_v3_missing_signed_header(void **state)
{
	static const char *const partial[] = {"host", "h", NULL};
	struct hdrs h = {partial};
	struct params *p = parse("", NULL);
	struct sig_v3_auth a;
	struct buf cr = {0};
	assert_int_equal(sig_v3_parse_auth(str_c(V3_AUTH EMPTY_SHA), &a), 0);
	assert_int_equal(sig_v3_canonical_request(&cr, STR_LIT("POST"), p, &a, get_header, &h,
						  STR_LIT(EMPTY_SHA)), -1);
	buf_free(&cr);
	params_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_percent_encode),
		cmocka_unit_test(test_v1_vector),
		cmocka_unit_test(test_v1_verify_split_and_order),
		cmocka_unit_test(test_v1_awkward_characters),
		cmocka_unit_test(test_v3_vector),
		cmocka_unit_test(test_v3_parse_strict),
		cmocka_unit_test(test_v3_missing_signed_header),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
