/* The flow-log, gateway and firmware rules of src/domain (spec §2, §3, §10). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "domain/domain.h"

#define OPT(s) ((struct opt){true, STR_LIT(s)})

static enum err create(struct flowlog *fl, const struct flowlog_patch *p)
{
	char detail[64];
	flowlog_init(fl);
	return flowlog_apply(fl, p, true, detail, sizeof(detail));
}

static void test_create_defaults(void **state)
{
	struct flowlog fl;
	struct flowlog_patch p = {0};
	p.output_type = OPT("netflow");
	p.netflow_server_ip = OPT("192.168.0.2");
	assert_int_equal(create(&fl, &p), ERR_OK);
	assert_int_equal(fl.status, FLOWLOG_ACTIVE);
	assert_int_equal(fl.active_aging, 300);
	assert_int_equal(fl.inactive_aging, 15);
	assert_int_equal(fl.netflow_server_port, 9995);
	assert_string_equal(netflow_version_name(fl.netflow_version), "V9");
	assert_string_equal(flowlog_output_name(fl.output), "netflow");
}

static void test_create_output_type(void **state)
{
	struct flowlog fl;
	struct flowlog_patch p = {0};
	assert_int_equal(create(&fl, &p), ERR_ILLEGAL_PARAM_OUTPUT_TYPE);
	p.output_type = OPT("");
	assert_int_equal(create(&fl, &p), ERR_ILLEGAL_PARAM_OUTPUT_TYPE);
	p.output_type = OPT("NetFlow");
	assert_int_equal(create(&fl, &p), ERR_ILLEGAL_PARAM_OUTPUT_TYPE);
	p.output_type = OPT("sls");
	assert_int_equal(create(&fl, &p), ERR_MISSING_PARAM_SLS_REGION_ID);
	p.sls_region_id = OPT("cn-shanghai");
	assert_int_equal(create(&fl, &p), ERR_MISSING_PARAM_PROJECT_NAME);
	p.project_name = OPT("proj");
	assert_int_equal(create(&fl, &p), ERR_MISSING_PARAM_LOGSTORE_NAME);
	p.logstore_name = OPT("store");
	assert_int_equal(create(&fl, &p), ERR_OK);
	p.output_type = OPT("all");
	assert_int_equal(create(&fl, &p), ERR_MISSING_PARAM_NETFLOW_SERVER_IP);
	p.netflow_server_ip = OPT("2001:db8::1");
	assert_int_equal(create(&fl, &p), ERR_OK);
	p.netflow_server_port = OPT("");
	assert_int_equal(create(&fl, &p), ERR_MISSING_PARAM_NETFLOW_SERVER_PORT);
	p.netflow_server_port = OPT("2055");
	p.netflow_version = OPT("");
	assert_int_equal(create(&fl, &p), ERR_MISSING_PARAM_NETFLOW_VERSION);
}

static void test_ranges(void **state)
{
	static const struct {
		size_t off;
		const char *value;
		enum err want;
	} cases[] = {
		{offsetof(struct flowlog_patch, active_aging), "59", ERR_ILLEGAL_PARAM_ACTIVE_AGING},
		{offsetof(struct flowlog_patch, active_aging), "6001", ERR_ILLEGAL_PARAM_ACTIVE_AGING},
		{offsetof(struct flowlog_patch, active_aging), "1e3", ERR_ILLEGAL_PARAM_ACTIVE_AGING},
		{offsetof(struct flowlog_patch, active_aging), "60", ERR_OK},
		{offsetof(struct flowlog_patch, active_aging), "6000", ERR_OK},
		{offsetof(struct flowlog_patch, inactive_aging), "9", ERR_ILLEGAL_PARAM_INACTIVE_AGING},
		{offsetof(struct flowlog_patch, inactive_aging), "601", ERR_ILLEGAL_PARAM_INACTIVE_AGING},
		{offsetof(struct flowlog_patch, inactive_aging), "10", ERR_OK},
		{offsetof(struct flowlog_patch, netflow_version), "V7", ERR_ILLEGAL_PARAM_NETFLOW_VERSION},
		{offsetof(struct flowlog_patch, netflow_version), "v9", ERR_ILLEGAL_PARAM_NETFLOW_VERSION},
		{offsetof(struct flowlog_patch, netflow_version), "V10", ERR_OK},
		{offsetof(struct flowlog_patch, netflow_server_port), "0", ERR_ILLEGAL_PARAM_NETFLOW_SERVER_PORT},
		{offsetof(struct flowlog_patch, netflow_server_port), "65536", ERR_ILLEGAL_PARAM_NETFLOW_SERVER_PORT},
		{offsetof(struct flowlog_patch, netflow_server_port), "-1", ERR_ILLEGAL_PARAM_NETFLOW_SERVER_PORT},
		{offsetof(struct flowlog_patch, netflow_server_port), "65535", ERR_OK},
		{offsetof(struct flowlog_patch, netflow_server_ip), "example.com", ERR_ILLEGAL_PARAM_NETFLOW_SERVER_IP},
		{offsetof(struct flowlog_patch, netflow_server_ip), "256.1.1.1", ERR_ILLEGAL_PARAM_NETFLOW_SERVER_IP},
		{offsetof(struct flowlog_patch, netflow_server_ip), "10.0.0.1 ", ERR_ILLEGAL_PARAM_NETFLOW_SERVER_IP},
		{offsetof(struct flowlog_patch, netflow_server_ip), "::1", ERR_OK},
		{offsetof(struct flowlog_patch, sls_region_id), "Shanghai", ERR_ILLEGAL_PARAM_SLS_REGION_ID},
		{offsetof(struct flowlog_patch, sls_region_id), "cn-", ERR_ILLEGAL_PARAM_SLS_REGION_ID},
		{offsetof(struct flowlog_patch, sls_region_id), "ap-southeast-1", ERR_OK},
		{offsetof(struct flowlog_patch, name), "1abc", ERR_INVALID_PARAMETER},
		{offsetof(struct flowlog_patch, name), "a", ERR_INVALID_PARAMETER},
		{offsetof(struct flowlog_patch, name), "http://x", ERR_INVALID_PARAMETER},
		{offsetof(struct flowlog_patch, name), "ab\x01", ERR_INVALID_PARAMETER},
		{offsetof(struct flowlog_patch, name), "\xc0\xaf" "ab", ERR_INVALID_PARAMETER},
		{offsetof(struct flowlog_patch, name), "tf-testAcc_1.x", ERR_OK},
		{offsetof(struct flowlog_patch, name), "\xe4\xb8\xad\xe6\x96\x87", ERR_OK},
		{offsetof(struct flowlog_patch, description), "a\nb", ERR_INVALID_PARAMETER},
		{offsetof(struct flowlog_patch, description), "any text, really", ERR_OK},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct flowlog fl;
		struct flowlog_patch p = {0};
		p.output_type = OPT("all");
		p.netflow_server_ip = OPT("192.0.2.1");
		p.sls_region_id = OPT("cn-shanghai");
		p.project_name = OPT("proj");
		p.logstore_name = OPT("store");
		struct opt *o = (struct opt *)((char *)&p + cases[i].off);
		*o = (struct opt){true, str_c(cases[i].value)};
		enum err got = create(&fl, &p);
		if (got != cases[i].want)
			fail_msg("case %zu (%s): got %d want %d", i, cases[i].value, got, cases[i].want);
	}
}

static void test_check_order(void **state)
{
	/* Several bad parameters at once: the first in the documented order wins. */
	struct flowlog fl;
	struct flowlog_patch p = {0};
	p.output_type = OPT("bogus");
	p.active_aging = OPT("1");
	assert_int_equal(create(&fl, &p), ERR_ILLEGAL_PARAM_OUTPUT_TYPE);
	p.output_type = OPT("netflow");
	p.inactive_aging = OPT("1");
	assert_int_equal(create(&fl, &p), ERR_ILLEGAL_PARAM_ACTIVE_AGING);
	p.active_aging.set = false;
	assert_int_equal(create(&fl, &p), ERR_ILLEGAL_PARAM_INACTIVE_AGING);
	p.inactive_aging.set = false;
	p.netflow_server_ip = OPT("nope");
	p.netflow_version = OPT("V1");
	assert_int_equal(create(&fl, &p), ERR_ILLEGAL_PARAM_NETFLOW_VERSION);
	p.netflow_version.set = false;
	assert_int_equal(create(&fl, &p), ERR_ILLEGAL_PARAM_NETFLOW_SERVER_IP);
}

static void test_modify_partial(void **state)
{
	struct flowlog fl;
	struct flowlog_patch p = {0};
	p.output_type = OPT("netflow");
	p.netflow_server_ip = OPT("192.168.0.2");
	p.name = OPT("first");
	assert_int_equal(create(&fl, &p), ERR_OK);
	/* Terraform's Update: empty SLS strings, port and version changed. */
	struct flowlog_patch m = {0};
	m.sls_region_id = OPT("");
	m.project_name = OPT("");
	m.logstore_name = OPT("");
	m.netflow_server_port = OPT("9999");
	m.netflow_version = OPT("V10");
	assert_int_equal(flowlog_apply(&fl, &m, false, NULL, 0), ERR_OK);
	assert_string_equal(fl.name, "first");
	assert_string_equal(fl.netflow_server_ip, "192.168.0.2");
	assert_int_equal(fl.netflow_server_port, 9999);
	assert_string_equal(netflow_version_name(fl.netflow_version), "V10");
	/* Switching to sls without its fields is refused; a bad one too. */
	struct flowlog_patch s = {0};
	s.output_type = OPT("sls");
	assert_int_equal(flowlog_apply(&fl, &s, false, NULL, 0), ERR_MISSING_PARAM_SLS_REGION_ID);
	struct flowlog_patch c = {0};
	c.netflow_server_ip = OPT("");
	struct flowlog fl2;
	create(&fl2, &p);
	assert_int_equal(flowlog_apply(&fl2, &c, false, NULL, 0), ERR_MISSING_PARAM_NETFLOW_SERVER_IP);
	char detail[32];
	struct flowlog_patch n = {0};
	n.project_name = OPT("bad name");
	assert_int_equal(flowlog_apply(&fl2, &n, false, detail, sizeof(detail)), ERR_INVALID_PARAMETER);
	assert_string_equal(detail, "ProjectName");
}

static void test_status_machine(void **state)
{
	assert_int_equal(flowlog_transition(FLOWLOG_ACTIVE, false), FLOWLOG_INACTIVE);
	assert_int_equal(flowlog_transition(FLOWLOG_INACTIVE, true), FLOWLOG_ACTIVE);
	assert_int_equal(flowlog_transition(FLOWLOG_ACTIVE, true), FLOWLOG_ACTIVE);
	assert_int_equal(flowlog_transition(FLOWLOG_INACTIVE, false), FLOWLOG_INACTIVE);
	enum flowlog_status st;
	assert_int_equal(flowlog_status_parse(STR_LIT("Active"), &st), 0);
	assert_int_equal(flowlog_status_parse(STR_LIT("active"), &st), -1);
	assert_int_equal(flowlog_status_parse(STR_LIT(""), &st), -1);
	struct flowlog fl;
	flowlog_init(&fl);
	assert_int_equal(flowlog_delete_check(&fl), ERR_OK);
	fl.total_sag_num = 1;
	assert_int_equal(flowlog_delete_check(&fl), ERR_DEPENDENCY_VIOLATION_FLOWLOG);
}

static void add_device(struct sag *g, const char *model, const char *fw, enum device_ha ha)
{
	struct device *d = &g->devices[g->ndevices++];
	memset(d, 0, sizeof(*d));
	strcpy(d->serial_number, "SN");
	if (fw) {
		strcpy(d->model, model);
		strcpy(d->software_version, fw);
		d->ha_state = ha;
		d->reported_ms = 1;
	}
}

static void mk(struct flowlog *fl, struct sag *g, enum sag_spec spec, enum sag_ha ha)
{
	flowlog_init(fl);
	strcpy(fl->id, "fl-a");
	memset(g, 0, sizeof(*g));
	strcpy(g->id, "sag-a");
	g->spec = spec;
	g->ha = ha;
}

static void test_assoc_single(void **state)
{
	struct flowlog fl;
	struct sag g;
	mk(&fl, &g, SAG_SPEC_100WM, SAG_HA_NONE);
	add_device(&g, "sag-100wm", "2.0.0", DEVICE_HA_UNKNOWN);
	assert_int_equal(assoc_check(&fl, &g), ERR_OPERATION_UNSUPPORTED_ASSOCIATE_FLOWLOG);
	mk(&fl, &g, SAG_SPEC_VCPE, SAG_HA_NONE);
	assert_int_equal(assoc_check(&fl, &g), ERR_OPERATION_UNSUPPORTED_ASSOCIATE_FLOWLOG);
	mk(&fl, &g, SAG_SPEC_1000, SAG_HA_NONE);
	assert_int_equal(assoc_check(&fl, &g), ERR_FEATURE_NOT_SUPPORT); /* no device at all */
	add_device(&g, NULL, NULL, DEVICE_HA_UNKNOWN);
	assert_int_equal(assoc_check(&fl, &g), ERR_FEATURE_NOT_SUPPORT); /* never reported */
	mk(&fl, &g, SAG_SPEC_1000, SAG_HA_NONE);
	add_device(&g, "sag-1000", "1.6.9", DEVICE_HA_UNKNOWN);
	assert_int_equal(assoc_check(&fl, &g), ERR_FEATURE_NOT_SUPPORT);
	strcpy(g.devices[0].software_version, "1.7");
	assert_int_equal(assoc_check(&fl, &g), ERR_OK);
	strcpy(g.devices[0].software_version, "1.10.0");
	assert_int_equal(assoc_check(&fl, &g), ERR_OK);
	strcpy(g.devices[0].model, "sag-100wm"); /* the box says otherwise */
	assert_int_equal(assoc_check(&fl, &g), ERR_OPERATION_UNSUPPORTED_ASSOCIATE_FLOWLOG);
	strcpy(g.devices[0].model, "sag-1000");
	/* Bound elsewhere, bound here, flow log stopped. */
	strcpy(g.flowlog_id, "fl-b");
	assert_int_equal(assoc_check(&fl, &g), ERR_OPERATION_FAILED_ASSOCIATE_FLOWLOG);
	strcpy(g.flowlog_id, "fl-a");
	assert_int_equal(assoc_check(&fl, &g), ERR_OK);
	fl.status = FLOWLOG_INACTIVE;
	assert_int_equal(assoc_check(&fl, &g), ERR_INCORRECT_STATUS_FLOWLOG);
}

static void test_assoc_ha(void **state)
{
	struct flowlog fl;
	struct sag g;
	mk(&fl, &g, SAG_SPEC_1000, SAG_HA_WARM);
	add_device(&g, "sag-1000", "1.6.0", DEVICE_HA_STANDBY);
	add_device(&g, "sag-1000", "2.1.0", DEVICE_HA_ACTIVE);
	assert_ptr_equal(sag_active_device(&g), &g.devices[1]);
	assert_ptr_equal(sag_standby_device(&g), &g.devices[0]);
	assert_int_equal(assoc_check(&fl, &g), ERR_FEATURE_NOT_SUPPORT_STANDBY);
	g.devices[0].ha_state = DEVICE_HA_ACTIVE;
	g.devices[1].ha_state = DEVICE_HA_STANDBY;
	assert_int_equal(assoc_check(&fl, &g), ERR_FEATURE_NOT_SUPPORT_ACTIVE);
	strcpy(g.devices[0].software_version, "1.7.0");
	assert_int_equal(assoc_check(&fl, &g), ERR_OK);
	/* A standby that never reported cannot be confirmed. */
	g.devices[1].reported_ms = 0;
	assert_int_equal(assoc_check(&fl, &g), ERR_FEATURE_NOT_SUPPORT_STANDBY);
	assert_int_equal(sag_max_devices(&g), 2);
	g.ha = SAG_HA_NONE;
	assert_int_equal(sag_max_devices(&g), 1);
}

static void test_status_of_gateway(void **state)
{
	struct flowlog fl;
	struct sag g;
	mk(&fl, &g, SAG_SPEC_1000, SAG_HA_NONE);
	assert_string_equal(sag_status(&g, 1000, DEVICE_ONLINE_MS), "Init");
	add_device(&g, "sag-1000", "2.0.0", DEVICE_HA_UNKNOWN);
	g.devices[0].reported_ms = 1000;
	assert_string_equal(sag_status(&g, 1000 + DEVICE_ONLINE_MS, DEVICE_ONLINE_MS), "Active");
	assert_string_equal(sag_status(&g, 1001 + DEVICE_ONLINE_MS, DEVICE_ONLINE_MS), "Offline");
}

static void test_syntax(void **state)
{
	assert_true(domain_serial_valid(STR_LIT("sag12345-AB_9")));
	assert_false(domain_serial_valid(STR_LIT("")));
	assert_false(domain_serial_valid(STR_LIT("a b")));
	assert_true(domain_version_valid(STR_LIT("2.3.0.0")));
	assert_false(domain_version_valid(STR_LIT("2.x")));
	assert_false(domain_version_valid(STR_LIT("1..2")));
	assert_true(domain_model_valid(STR_LIT("sag-1000")));
	assert_false(domain_model_valid(STR_LIT("SAG 1000")));
	assert_true(domain_region_syntax(STR_LIT("cn-shanghai-finance-1")));
	assert_false(domain_region_syntax(STR_LIT("1n-shanghai")));
	assert_false(domain_region_syntax(STR_LIT("cn--x")));
	assert_true(domain_region_known(STR_LIT("cn-shanghai-finance-1")));
	assert_false(domain_region_known(STR_LIT("cn-beijing"))); /* well-formed, not a Smartag region */
	assert_false(domain_region_known(STR_LIT("cn-shanghai ")));
	enum sag_spec sp;
	enum sag_ha ha;
	enum device_ha dh;
	assert_int_equal(sag_spec_parse(STR_LIT("sag-100wm"), &sp), 0);
	assert_int_equal(sag_spec_parse(STR_LIT("sag-10wm"), &sp), -1);
	assert_int_equal(sag_ha_parse(STR_LIT("warm_backup"), &ha), 0);
	assert_int_equal(device_ha_parse(STR_LIT("standby"), &dh), 0);
	assert_int_equal(device_ha_parse(STR_LIT(""), &dh), -1);
	char small[4];
	assert_int_equal(domain_copy(small, sizeof(small), STR_LIT("abcd")), -1);
	assert_int_equal(domain_copy(small, sizeof(small), STR_LIT("abc")), 0);
}

/* Log Service naming (issue 10): project 3-63 of [a-z0-9-], logstore 3-63 of
 * [a-z0-9_-], neither starting nor ending with '-'. */
static void test_sls_names(void **state)
{
	static const char *const projects_ok[] = {"abc", "sag-flowlog-shanghai", "a-1", "123",
		"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk"};
	static const char *const projects_bad[] = {"ab", "-abc", "abc-", "Abc", "a_b", "a b", "a.b", "",
		"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl"};
	static const char *const logstores_ok[] = {"abc", "store_1", "_ab", "ab_", "sag-shanghai"};
	static const char *const logstores_bad[] = {"ab", "-ab", "ab-", "Store", "a.b", "a/b"};
	for (size_t i = 0; i < sizeof(projects_ok) / sizeof(projects_ok[0]); i++)
		assert_true(domain_sls_project_valid(str_c(projects_ok[i])));
	for (size_t i = 0; i < sizeof(projects_bad) / sizeof(projects_bad[0]); i++)
		assert_false(domain_sls_project_valid(str_c(projects_bad[i])));
	for (size_t i = 0; i < sizeof(logstores_ok) / sizeof(logstores_ok[0]); i++)
		assert_true(domain_sls_logstore_valid(str_c(logstores_ok[i])));
	for (size_t i = 0; i < sizeof(logstores_bad) / sizeof(logstores_bad[0]); i++)
		assert_false(domain_sls_logstore_valid(str_c(logstores_bad[i])));
	assert_false(domain_sls_project_valid(STR_LIT("store_1"))); /* '_' only in logstores */
	/* Through CreateFlowLog: each parameter named in the detail. */
	static const struct {
		const char *param, *value;
		enum err e;
	} rows[] = {
		{"SlsRegionId", "cn-beijing", ERR_ILLEGAL_PARAM_SLS_REGION_ID},
		{"ProjectName", "Proj", ERR_INVALID_PARAMETER},
		{"ProjectName", "pr", ERR_INVALID_PARAMETER},
		{"LogstoreName", "store-", ERR_INVALID_PARAMETER},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct flowlog fl;
		struct flowlog_patch p = {0};
		char detail[32] = "";
		p.output_type = OPT("sls");
		p.sls_region_id = OPT("cn-shanghai");
		p.project_name = OPT("proj");
		p.logstore_name = OPT("store");
		struct opt *o = !strcmp(rows[i].param, "SlsRegionId")   ? &p.sls_region_id
				: !strcmp(rows[i].param, "ProjectName") ? &p.project_name
									: &p.logstore_name;
		*o = (struct opt){true, str_c(rows[i].value)};
		flowlog_init(&fl);
		assert_int_equal(flowlog_apply(&fl, &p, true, detail, sizeof(detail)), rows[i].e);
		if (rows[i].e == ERR_INVALID_PARAMETER)
			assert_string_equal(detail, rows[i].param);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_defaults), cmocka_unit_test(test_create_output_type),
		cmocka_unit_test(test_ranges),          cmocka_unit_test(test_check_order),
		cmocka_unit_test(test_modify_partial),  cmocka_unit_test(test_status_machine),
		cmocka_unit_test(test_assoc_single),    cmocka_unit_test(test_assoc_ha),
		cmocka_unit_test(test_status_of_gateway), cmocka_unit_test(test_syntax), cmocka_unit_test(test_sls_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
