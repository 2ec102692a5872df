#include "api/region.h"

#include <pthread.h>
#include <stdio.h>

#include "domain/domain.h"
#include "rpc/params.h"

/* The local names of domain_region_ids[], row for row (the ids are the
 * domain's: SlsRegionId is checked against the same list). */
struct region_name {
	const char *name_zh;
	const char *name_en;
};

static const struct region_name regions[REGION_COUNT] = {
	/* cn-shanghai, cn-hangzhou, cn-hongkong, cn-shanghai-finance-1, ap-southeast-1, -2, -3, -5,
	 * ap-northeast-1, eu-central-1 */
	{"华东2（上海）", "China (Shanghai)"},
	{"华东1（杭州）", "China (Hangzhou)"},
	{"中国香港", "China (Hong Kong)"},
	{"华东2 金融云", "China East 2 Finance"},
	{"新加坡", "Singapore"},
	{"澳大利亚（悉尼）", "Australia (Sydney)"},
	{"马来西亚（吉隆坡）", "Malaysia (Kuala Lumpur)"},
	{"印度尼西亚（雅加达）", "Indonesia (Jakarta)"},
	{"日本（东京）", "Japan (Tokyo)"},
	{"德国（法兰克福）", "Germany (Frankfurt)"},
};

bool region_valid(struct str id)
{
	return domain_region_known(id);
}

/* The region list never changes, so each language's answer is built once and
 * shared: renderers only take references (jansson's reference counts are
 * atomic) and never modify it. */
static json_t *regions_doc[2];
static pthread_once_t regions_once = PTHREAD_ONCE_INIT;

static void regions_build(void)
{
	for (int en = 0; en < 2; en++) {
		json_t *list = json_array();
		for (size_t i = 0; i < REGION_COUNT; i++) {
			char endpoint[64];
			snprintf(endpoint, sizeof(endpoint), "smartag.%s.aliyuncs.com", domain_region_ids[i]);
			json_t *r = json_object();
			json_object_set_new(r, "RegionId", json_string(domain_region_ids[i]));
			json_object_set_new(r, "RegionEndpoint", json_string(endpoint));
			json_object_set_new(r, "LocalName",
					    json_string(en ? regions[i].name_en : regions[i].name_zh));
			json_array_append_new(list, r);
		}
		regions_doc[en] = json_object();
		json_object_set_new(regions_doc[en], "Region", list);
	}
}

static void describe_regions(struct api_call *c)
{
	struct str lang = params_get(c->params, "AcceptLanguage");
	bool en = false;
	if (lang.p && lang.len) {
		if (str_eqc(lang, "en-US"))
			en = true;
		else if (!str_eqc(lang, "zh-CN")) {
			api_fail(c, ERR_INVALID_PARAMETER, "AcceptLanguage");
			return;
		}
	}
	pthread_once(&regions_once, regions_build);
	json_object_set(c->out, "Regions", regions_doc[en]);
	api_finish(c, ERR_OK);
}

const struct api_action region_actions[] = {
	{"DescribeRegions", describe_regions, true},
	{NULL, NULL, false},
};
