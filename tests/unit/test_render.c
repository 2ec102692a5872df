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
		cmocka_unit_test(test_xml_success),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_error_bad_utf8_detail),
		cmocka_unit_test(test_xml_control_chars),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
