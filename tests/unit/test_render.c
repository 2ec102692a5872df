#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rpc/render.h"

#define RID "A6E1680B-B34F-4BB7-B504-F8ED675E721C"

static json_t *flowlogs(void)
{
	json_error_t e;
	json_t *o = json_loads("{\"TotalCount\":2,\"FlowLogs\":{\"FlowLogSetType\":[{\"FlowLogId\":"
			       "\"fl-1\",\"Name\":\"a<b>&'\\\"\"},{\"FlowLogId\":\"fl-2\",\"Ok\":true,"
			       "\"Nothing\":null}]},\"Empty\":{\"Sag\":[]}}", 0, &e);
	assert_non_null(o);
	return o;
}

static void test_json_success(void **state)
{
	json_t *o = flowlogs();
	struct render_out r;
	render_success(o, RID, STR_LIT("DescribeFlowLogs"), render_format_of(STR_LIT("json")), &r);
	assert_string_equal(r.content_type, "application/json;charset=utf-8");
	/* RequestId first, then the handler's fields in insertion order; no Code. */
	assert_string_equal(r.body, "{\"RequestId\":\"" RID "\",\"TotalCount\":2,\"FlowLogs\":{"
				    "\"FlowLogSetType\":[{\"FlowLogId\":\"fl-1\",\"Name\":\"a<b>&'\\\"\"},"
				    "{\"FlowLogId\":\"fl-2\",\"Ok\":true,\"Nothing\":null}]},"
				    "\"Empty\":{\"Sag\":[]}}");
	assert_int_equal(r.len, strlen(r.body));
	assert_null(strstr(r.body, "Code"));
	free(r.body);
	json_decref(o);
}

/* The JSON writer against jansson's json_dumps(JSON_COMPACT), byte for byte:
 * every escape, control characters, UTF-8, integer extremes, reals, nesting. */
static void test_json_same_as_jansson(void **state)
{
	json_t *o = json_object();
	json_object_set_new(o, "esc", json_string("q\" b\\ / \b\f\n\r\t \x01\x1f\x7f end"));
	json_object_set_new(o, "utf8", json_string("\xe4\xb8\xad\xe6\x96\x87 \xe2\x80\xa8 \xf0\x9f\x98\x80"));
	json_object_set_new(o, "nul", json_stringn("a\0b", 3));
	json_object_set_new(o, "empty", json_string(""));
	json_object_set_new(o, "k\"ey\n", json_true());
	json_object_set_new(o, "min", json_integer(INT64_MIN));
	json_object_set_new(o, "max", json_integer(INT64_MAX));
	json_object_set_new(o, "zero", json_integer(0));
	json_object_set_new(o, "neg", json_integer(-42));
	json_object_set_new(o, "r1", json_real(1.0));
	json_object_set_new(o, "r2", json_real(-0.1));
	json_object_set_new(o, "r3", json_real(1e300));
	json_object_set_new(o, "r4", json_real(-2.5e-7));
	json_object_set_new(o, "r5", json_real(123456789.0));
	json_object_set_new(o, "f", json_false());
	json_object_set_new(o, "n", json_null());
	json_object_set_new(o, "eo", json_object());
	json_object_set_new(o, "ea", json_array());
	json_t *a = json_array();
	for (int i = 0; i < 3; i++) {
		json_t *x = json_object();
		json_object_set_new(x, "i", json_integer(i));
		json_object_set_new(x, "l", json_pack("[s,i,[],{}]", "x", i));
		json_array_append_new(a, x);
	}
	json_object_set_new(o, "list", a);

	struct render_out r;
	render_success(o, RID, STR_LIT("DescribeFlowLogs"), RENDER_JSON, &r);
	json_t *doc = json_object();
	json_object_set_new(doc, "RequestId", json_string(RID));
	json_object_update(doc, o);
	char *want = json_dumps(doc, JSON_COMPACT);
	assert_non_null(want);
	assert_string_equal(r.body, want);
	assert_int_equal(r.len, strlen(want));
	free(want);
	free(r.body);
	json_decref(doc);
	json_decref(o);
}

static void test_xml_success(void **state)
{
	json_t *o = flowlogs();
	struct render_out r;
	assert_int_equal(render_format_of(STR_LIT("xMl")), RENDER_XML);
	assert_int_equal(render_format_of(STR_NULL), RENDER_JSON);
	render_success(o, RID, STR_LIT("DescribeFlowLogs"), RENDER_XML, &r);
	assert_string_equal(r.content_type, "text/xml;charset=utf-8");
	assert_string_equal(r.body,
			    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><DescribeFlowLogsResponse>"
			    "<RequestId>" RID "</RequestId><TotalCount>2</TotalCount><FlowLogs>"
			    "<FlowLogSetType><FlowLogId>fl-1</FlowLogId><Name>a&lt;b&gt;&amp;&apos;&quot;"
			    "</Name></FlowLogSetType><FlowLogSetType><FlowLogId>fl-2</FlowLogId>"
			    "<Ok>true</Ok><Nothing></Nothing></FlowLogSetType></FlowLogs><Empty></Empty>"
			    "</DescribeFlowLogsResponse>");
	free(r.body);
	json_decref(o);
}

static void test_errors(void **state)
{
	struct render_out r;
	render_error(ERR_MISSING_PARAMETER, "SmartAGId", RID, "smartag.cn-shanghai.aliyuncs.com",
		     RENDER_JSON, &r);
	assert_string_equal(r.content_type, "application/json;charset=utf-8");
	json_error_t e;
	json_t *o = json_loads(r.body, 0, &e);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "RequestId")), RID);
	assert_string_equal(json_string_value(json_object_get(o, "HostId")),
			    "smartag.cn-shanghai.aliyuncs.com");
	assert_string_equal(json_string_value(json_object_get(o, "Code")), "MissingParameter");
	assert_string_equal(json_string_value(json_object_get(o, "Message")),
			    "The input parameter \"SmartAGId\" that is mandatory for processing this "
			    "request is not supplied.");
	assert_non_null(strstr(json_string_value(json_object_get(o, "Recommend")),
			       "q=MissingParameter&product=Smartag&requestId=" RID));
	assert_int_equal(json_object_size(o), 5);
	json_decref(o);
	free(r.body);

	render_error(ERR_SIGNATURE_DOES_NOT_MATCH, NULL, RID, NULL, RENDER_XML, &r);
	assert_string_equal(r.content_type, "text/xml;charset=utf-8");
	assert_non_null(strstr(r.body, "<Error><RequestId>" RID "</RequestId><HostId>"
					"smartag.aliyuncs.com</HostId><Code>SignatureDoesNotMatch</Code>"
					"<Message>Specified signature is not matched with our "
					"calculation.</Message><Recommend>https://"));
	assert_non_null(strstr(r.body, "&amp;product=Smartag"));
	assert_non_null(strstr(r.body, "</Recommend></Error>"));
	free(r.body);
}

static void test_error_bad_utf8_detail(void **state)
{
	struct render_out r;
	render_error(ERR_INVALID_PARAMETER, "\xff\xfe", RID, NULL, RENDER_JSON, &r);
	json_error_t e;
	json_t *o = json_loads(r.body, 0, &e);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "Message")),
			    "The specified parameter \"?\" is not valid.");
	json_decref(o);
	free(r.body);
}

static void test_xml_control_chars(void **state)
{
	json_t *o = json_object();
	json_object_set_new(o, "V", json_string("a\x01" "b\tc"));
	json_object_set_new(o, "N", json_integer(-42));
	struct render_out r;
	render_success(o, RID, STR_LIT("X<y"), RENDER_XML, &r);
	assert_non_null(strstr(r.body, "<XyResponse>"));
	assert_non_null(strstr(r.body, "<V>a?b\tc</V><N>-42</N>"));
	free(r.body);
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_success),
		cmocka_unit_test(test_json_same_as_jansson),
		cmocka_unit_test(test_xml_success),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_error_bad_utf8_detail),
		cmocka_unit_test(test_xml_control_chars),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
