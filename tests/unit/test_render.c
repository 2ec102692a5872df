#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api/flowlog.h"
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

/* The reference: the fields of DescribeFlowLogs' items (spec §3.2) as a tree. */
static json_t *flowlog_json(const struct flowlog *fl)
{
	json_t *o = json_object();
	json_object_set_new_nocheck(o, "FlowLogId", json_string(fl->id));
	json_object_set_new_nocheck(o, "Name", json_string(fl->name));
	json_object_set_new_nocheck(o, "Description", json_string(fl->description));
	json_object_set_new_nocheck(o, "Status", json_string(flowlog_status_name(fl->status)));
	json_object_set_new_nocheck(o, "OutputType", json_string(flowlog_output_name(fl->output)));
	json_object_set_new_nocheck(o, "SlsRegionId", json_string(fl->sls_region_id));
	json_object_set_new_nocheck(o, "ProjectName", json_string(fl->project_name));
	json_object_set_new_nocheck(o, "LogstoreName", json_string(fl->logstore_name));
	json_object_set_new_nocheck(o, "NetflowServerIp", json_string(fl->netflow_server_ip));
	/* Always a number (spec §2): Terraform's formatInt panics on "". */
	json_object_set_new_nocheck(o, "NetflowServerPort", json_integer(fl->netflow_server_port));
	json_object_set_new_nocheck(o, "NetflowVersion",
				    json_string(netflow_version_name(fl->netflow_version)));
	json_object_set_new_nocheck(o, "ActiveAging", json_integer(fl->active_aging));
	json_object_set_new_nocheck(o, "InactiveAging", json_integer(fl->inactive_aging));
	json_object_set_new_nocheck(o, "TotalSagNum", json_integer(fl->total_sag_num));
	json_object_set_new_nocheck(o, "ResourceGroupId", json_string(fl->resource_group_id));
	return o;
}

/* DescribeFlowLogs writes its items into a render_list; the page must be the
 * very bytes the jansson tree of the same flow logs renders to, in JSON and
 * XML, for empty, one and several items with awkward text. */
static void page_both_ways(enum render_format f, const struct flowlog *fls, size_t n)
{
	json_t *tree = json_object(), *list = json_object();
	json_object_set_new(tree, "TotalCount", json_integer((json_int_t)n));
	json_t *items = json_array();
	struct render_list l;
	render_list_init(&l, f, "FlowLogSetType");
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(items, flowlog_json(&fls[i]));
		flowlog_emit(&l, &fls[i]);
	}
	json_t *w = json_object();
	json_object_set_new(w, "FlowLogSetType", items);
	json_object_set_new(tree, "FlowLogs", w);
	json_object_set_new(list, "TotalCount", json_integer((json_int_t)n));
	w = json_object();
	json_object_set_new(w, "FlowLogSetType", render_list_take(&l));
	json_object_set_new(list, "FlowLogs", w);

	struct render_out a, b;
	render_success(tree, RID, STR_LIT("DescribeFlowLogs"), f, &a);
	render_success(list, RID, STR_LIT("DescribeFlowLogs"), f, &b);
	assert_string_equal(b.body, a.body);
	assert_int_equal(b.len, a.len);
	assert_string_equal(b.content_type, a.content_type);
	free(a.body);
	free(b.body);
	json_decref(tree);
	json_decref(list);
}

static void test_list_same_as_tree(void **state)
{
	struct flowlog fls[3];
	memset(fls, 0, sizeof(fls));
	for (int i = 0; i < 3; i++) {
		snprintf(fls[i].id, sizeof(fls[i].id), "fl-%020d", i);
		snprintf(fls[i].resource_group_id, sizeof(fls[i].resource_group_id), "rg-acfm%011d", i);
		fls[i].status = i ? FLOWLOG_INACTIVE : FLOWLOG_ACTIVE;
		fls[i].active_aging = 300 - i;
		fls[i].inactive_aging = 15 + i;
		fls[i].total_sag_num = i * 1000000000000LL;
	}
	snprintf(fls[0].name, sizeof(fls[0].name), "a<b>&'\"\\ /\t\n\x01");
	snprintf(fls[0].description, sizeof(fls[0].description), "\xe4\xb8\xad\xe6\x96\x87 ]]> <!--");
	fls[0].output = FLOWLOG_OUT_NETFLOW;
	snprintf(fls[0].netflow_server_ip, sizeof(fls[0].netflow_server_ip), "192.168.0.1");
	fls[0].netflow_server_port = 9995;
	fls[0].netflow_version = NETFLOW_V10;
	fls[1].output = FLOWLOG_OUT_SLS;
	snprintf(fls[1].sls_region_id, sizeof(fls[1].sls_region_id), "cn-shanghai");
	snprintf(fls[1].project_name, sizeof(fls[1].project_name), "proj");
	snprintf(fls[1].logstore_name, sizeof(fls[1].logstore_name), "store");
	fls[2].output = FLOWLOG_OUT_ALL;
	fls[2].netflow_version = NETFLOW_V5;
	for (int f = RENDER_JSON; f <= RENDER_XML; f++)
		for (size_t n = 0; n <= 3; n++)
			page_both_ways((enum render_format)f, fls, n);
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
		cmocka_unit_test(test_list_same_as_tree),
		cmocka_unit_test(test_xml_success),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_error_bad_utf8_detail),
		cmocka_unit_test(test_xml_control_chars),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
