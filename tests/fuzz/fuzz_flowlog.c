/* The flow-log rules on arbitrary parameters: the input is decoded as a form
 * body (rpc/params), its values fed to flowlog_apply as a Create and then as a
 * Modify of the result, and to every field validator of src/domain. */
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "domain/domain.h"
#include "rpc/params.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct opt get(const struct params *p, const char *name)
{
	const struct param *x = params_find(p, name);
	return x ? (struct opt){true, x->value} : (struct opt){false, STR_NULL};
}

static void patch_from(const struct params *p, struct flowlog_patch *fp)
{
	fp->name = get(p, "Name");
	fp->description = get(p, "Description");
	fp->output_type = get(p, "OutputType");
	fp->active_aging = get(p, "ActiveAging");
	fp->inactive_aging = get(p, "InactiveAging");
	fp->sls_region_id = get(p, "SlsRegionId");
	fp->project_name = get(p, "ProjectName");
	fp->logstore_name = get(p, "LogstoreName");
	fp->netflow_server_ip = get(p, "NetflowServerIp");
	fp->netflow_server_port = get(p, "NetflowServerPort");
	fp->netflow_version = get(p, "NetflowVersion");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char detail[PARAMS_DETAIL_MAX];
	struct params *p = params_new();
	params_parse(p, (struct str){(const char *)data, size}, PARAMS_BODY, detail);
	struct flowlog_patch fp = {0};
	patch_from(p, &fp);
	struct flowlog fl;
	flowlog_init(&fl);
	char d[64];
	if (flowlog_apply(&fl, &fp, true, d, sizeof(d)) == ERR_OK) {
		struct flowlog next = fl;
		flowlog_apply(&next, &fp, false, d, sizeof(d));
	}
	/* Every validator, on every value. */
	for (size_t i = 0; i < params_count(p); i++) {
		struct str v = params_at(p, i)->value;
		(void)domain_name_valid(v);
		(void)domain_description_valid(v);
		(void)domain_region_syntax(v);
		(void)domain_ip_valid(v);
		(void)domain_region_known(v);
		(void)domain_sls_project_valid(v);
		(void)domain_sls_logstore_valid(v);
		(void)domain_serial_valid(v);
		(void)domain_version_valid(v);
		(void)domain_model_valid(v);
	}
	params_free(p);
	return 0;
}
