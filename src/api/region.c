#include "api/region.h"

#include <pthread.h>
#include <stdio.h>

#include "rpc/params.h"

struct region {
	const char *id;
	const char *name_zh;
	const char *name_en;
};

/* The endpoint map of spec §1, in the order the product's own docs list them. */
static const struct region regions[REGION_COUNT] = {
	{"cn-shanghai", "华东2（上海）", "China (Shanghai)"},
	{"cn-hangzhou", "华东1（杭州）", "China (Hangzhou)"},
	{"cn-hongkong", "中国香港", "China (Hong Kong)"},
	{"cn-shanghai-finance-1", "华东2 金融云", "China East 2 Finance"},
	{"ap-southeast-1", "新加坡", "Singapore"},
	{"ap-southeast-2", "澳大利亚（悉尼）", "Australia (Sydney)"},
	{"ap-southeast-3", "马来西亚（吉隆坡）", "Malaysia (Kuala Lumpur)"},
	{"ap-southeast-5", "印度尼西亚（雅加达）", "Indonesia (Jakarta)"},
	{"ap-northeast-1", "日本（东京）", "Japan (Tokyo)"},
	{"eu-central-1", "德国（法兰克福）", "Germany (Frankfurt)"},
};

bool region_valid(struct str id)
{
	for (size_t i = 0; i < REGION_COUNT; i++)
		if (str_eqc(id, regions[i].id))
			return true;
	return false;
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
			snprintf(endpoint, sizeof(endpoint), "smartag.%s.aliyuncs.com", regions[i].id);
			json_t *r = json_object();
			json_object_set_new(r, "RegionId", json_string(regions[i].id));
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
