#include "domain/domain.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <string.h>

#include "core/num.h"

/* Enum <-> name tables: one row per value, the parse is the reverse lookup. */
static const char *const status_names[] = {"Active", "Inactive"};
static const char *const output_names[] = {"sls", "netflow", "all"};
static const char *const netflow_names[] = {"", "V5", "V9", "V10"};
static const char *const spec_names[] = {"sag-1000", "sag-100wm", "sag-vcpe"};
static const char *const ha_names[] = {"no_backup", "cold_backup", "warm_backup"};
static const char *const device_ha_names[] = {"", "active", "standby"};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int table_parse(const char *const *names, size_t n, size_t first, struct str s)
{
	for (size_t i = first; i < n; i++)
		if (str_eqc(s, names[i]))
			return (int)i;
	return -1;
}

const char *flowlog_status_name(enum flowlog_status s)
{
	return status_names[s];
}

const char *flowlog_output_name(enum flowlog_output o)
{
	return output_names[o];
}

const char *netflow_version_name(enum netflow_version v)
{
	return netflow_names[v];
}

const char *sag_spec_name(enum sag_spec s)
{
	return spec_names[s];
}

const char *sag_ha_name(enum sag_ha h)
{
	return ha_names[h];
}

const char *device_ha_name(enum device_ha h)
{
	return device_ha_names[h];
}

int flowlog_status_parse(struct str s, enum flowlog_status *out)
{
	int i = table_parse(status_names, NELEM(status_names), 0, s);
	if (i < 0)
		return -1;
	*out = (enum flowlog_status)i;
	return 0;
}

int flowlog_output_parse(struct str s, enum flowlog_output *out)
{
	int i = table_parse(output_names, NELEM(output_names), 0, s);
	if (i < 0)
		return -1;
	*out = (enum flowlog_output)i;
	return 0;
}

int netflow_version_parse(struct str s, enum netflow_version *out)
{
	int i = table_parse(netflow_names, NELEM(netflow_names), 1, s);
	if (i < 0)
		return -1;
	*out = (enum netflow_version)i;
	return 0;
}

int sag_spec_parse(struct str s, enum sag_spec *out)
{
	int i = table_parse(spec_names, NELEM(spec_names), 0, s);
	if (i < 0)
		return -1;
	*out = (enum sag_spec)i;
	return 0;
}

int sag_ha_parse(struct str s, enum sag_ha *out)
{
	int i = table_parse(ha_names, NELEM(ha_names), 0, s);
	if (i < 0)
		return -1;
	*out = (enum sag_ha)i;
	return 0;
}

int device_ha_parse(struct str s, enum device_ha *out)
{
	int i = table_parse(device_ha_names, NELEM(device_ha_names), 1, s);
	if (i < 0)
		return -1;
	*out = (enum device_ha)i;
	return 0;
}

int domain_copy(char *dst, size_t cap, struct str s)
{
	if (s.len >= cap)
		return -1;
	if (s.len)
		memcpy(dst, s.p, s.len);
	dst[s.len] = '\0';
	return 0;
}

/* ---- field syntax ---- */

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Counts the code points of well-formed UTF-8 without control characters;
 * -1 when malformed (overlongs, surrogates and stray continuations included). */
static long utf8_chars(struct str s)
{
	long n = 0;
	for (size_t i = 0; i < s.len; n++) {
		unsigned char c = (unsigned char)s.p[i];
		size_t k;
		uint32_t cp;
		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				return -1;
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			k = 1, cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2, cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3, cp = c & 0x07;
		} else {
			return -1;
		}
		if (s.len - i - 1 < k)
			return -1;
		for (size_t j = 1; j <= k; j++) {
			unsigned char cc = (unsigned char)s.p[i + j];
			if ((cc & 0xc0) != 0x80)
				return -1;
			cp = (cp << 6) | (cc & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		i += k + 1;
	}
	return n;
}

static bool starts_with_url(struct str s)
{
	return (s.len >= 7 && !strncmp(s.p, "http://", 7)) ||
	       (s.len >= 8 && !strncmp(s.p, "https://", 8));
}

bool domain_name_valid(struct str s)
{
	/* The console's rule: 2-128 characters, starting with a letter (a
	 * non-ASCII letter such as a Chinese character counts), no URL. */
	long n = utf8_chars(s);
	if (n < 2 || n > DOMAIN_NAME_MAX || starts_with_url(s))
		return false;
	unsigned char c = (unsigned char)s.p[0];
	return is_alpha(c) || c >= 0x80;
}

bool domain_description_valid(struct str s)
{
	long n = utf8_chars(s);
	return n >= 0 && n <= DOMAIN_DESC_MAX && !starts_with_url(s);
}

bool domain_region_syntax(struct str s)
{
	/* Two or more lowercase groups joined by '-', the first letters only:
	 * "cn-hangzhou", "ap-southeast-1", "cn-shanghai-finance-1". */
	if (s.len < 4 || s.len > DOMAIN_REGION_MAX)
		return false;
	size_t group = 0, groups = 0;
	for (size_t i = 0; i <= s.len; i++) {
		unsigned char c = i < s.len ? (unsigned char)s.p[i] : '-';
		if (c == '-') {
			if (group == 0)
				return false;
			groups++, group = 0;
		} else if ((c >= 'a' && c <= 'z') || (groups > 0 && is_digit(c))) {
			group++;
		} else {
			return false;
		}
	}
	return groups >= 2;
}

const char *const domain_region_ids[DOMAIN_REGION_COUNT] = {
	"cn-shanghai",    "cn-hangzhou",    "cn-hongkong",    "cn-shanghai-finance-1",
	"ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-5",
	"ap-northeast-1", "eu-central-1",
};

bool domain_region_known(struct str s)
{
	for (size_t i = 0; i < DOMAIN_REGION_COUNT; i++)
		if (str_eqc(s, domain_region_ids[i]))
			return true;
	return false;
}

bool domain_ip_valid(struct str s)
{
	char tmp[DOMAIN_IP_MAX + 1];
	unsigned char addr[16];
	if (s.len == 0 || domain_copy(tmp, sizeof(tmp), s) < 0 || memchr(s.p, '\0', s.len))
		return false;
	return inet_pton(AF_INET, tmp, addr) == 1 || inet_pton(AF_INET6, tmp, addr) == 1;
}

static bool charset_ok(struct str s, size_t min, size_t max, const char *extra)
{
	if (s.len < min || s.len > max)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (!is_alpha(c) && !is_digit(c) && !(c && strchr(extra, c)))
			return false;
	}
	return true;
}

/* sagflow's own log store holds these names (docs/logstore.md), so they follow
 * the Log Service's rule exactly: a name it would refuse is refused here, at
 * CreateFlowLog, rather than at the first record a device sends. */
static bool sls_name_ok(struct str s, bool underscore)
{
	if (s.len < DOMAIN_SLS_NAME_MIN || s.len > DOMAIN_SLS_NAME_LEN || s.p[0] == '-' ||
	    s.p[s.len - 1] == '-')
		return false;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (!(c >= 'a' && c <= 'z') && !is_digit(c) && c != '-' && !(underscore && c == '_'))
			return false;
	}
	return true;
}

bool domain_sls_project_valid(struct str s)
{
	return sls_name_ok(s, false);
}

bool domain_sls_logstore_valid(struct str s)
{
	return sls_name_ok(s, true);
}

bool domain_serial_valid(struct str s)
{
	return charset_ok(s, 1, DOMAIN_SN_MAX, "-_");
}

bool domain_version_valid(struct str s)
{
	bool ok;
	if (s.len == 0 || s.len > DOMAIN_VERSION_MAX)
		return false;
	num_version_cmp(s, s, &ok);
	return ok;
}

bool domain_model_valid(struct str s)
{
	if (s.len == 0 || s.len > DOMAIN_MODEL_MAX)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (!(c >= 'a' && c <= 'z') && !is_digit(c) && c != '-')
			return false;
	}
	return true;
}

/* ---- flow logs ---- */

void flowlog_init(struct flowlog *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->status = FLOWLOG_ACTIVE;
	fl->output = FLOWLOG_OUT_NETFLOW;
	fl->netflow_server_port = FLOWLOG_PORT_DEFAULT;
	fl->netflow_version = NETFLOW_V9;
	fl->active_aging = FLOWLOG_ACTIVE_AGING_DEFAULT;
	fl->inactive_aging = FLOWLOG_INACTIVE_AGING_DEFAULT;
}

bool flowlog_exports_netflow(const struct flowlog *fl)
{
	return fl->output == FLOWLOG_OUT_NETFLOW || fl->output == FLOWLOG_OUT_ALL;
}

static bool exports_sls(const struct flowlog *fl)
{
	return fl->output == FLOWLOG_OUT_SLS || fl->output == FLOWLOG_OUT_ALL;
}

static void set_detail(char *detail, size_t cap, const char *s)
{
	if (detail && cap && domain_copy(detail, cap, str_c(s)) < 0)
		detail[0] = '\0';
}

/* An aging parameter: present and empty keeps the value (Terraform leaves
 * computed fields out, but hand-written clients send ""), else in range. */
static int apply_int(const struct opt *o, int64_t min, int64_t max, int *field)
{
	int64_t v;
	if (!o->set || o->v.len == 0)
		return 0;
	if (num_parse_i64(o->v, min, max, &v) < 0)
		return -1;
	*field = (int)v;
	return 0;
}

/* A string field: "" clears it, otherwise it must pass valid(). */
static int apply_str(const struct opt *o, bool (*valid)(struct str), char *field, size_t cap)
{
	if (!o->set)
		return 0;
	if (o->v.len && !valid(o->v))
		return -1;
	return domain_copy(field, cap, o->v);
}

static enum err apply_enums(struct flowlog *fl, const struct flowlog_patch *p, bool create)
{
	if (create && (!p->output_type.set || p->output_type.v.len == 0))
		return ERR_ILLEGAL_PARAM_OUTPUT_TYPE;
	if (p->output_type.set && p->output_type.v.len &&
	    flowlog_output_parse(p->output_type.v, &fl->output) < 0)
		return ERR_ILLEGAL_PARAM_OUTPUT_TYPE;
	if (apply_int(&p->active_aging, FLOWLOG_ACTIVE_AGING_MIN, FLOWLOG_ACTIVE_AGING_MAX,
		      &fl->active_aging) < 0)
		return ERR_ILLEGAL_PARAM_ACTIVE_AGING;
	if (apply_int(&p->inactive_aging, FLOWLOG_INACTIVE_AGING_MIN, FLOWLOG_INACTIVE_AGING_MAX,
		      &fl->inactive_aging) < 0)
		return ERR_ILLEGAL_PARAM_INACTIVE_AGING;
	if (p->netflow_version.set) {
		if (p->netflow_version.v.len == 0)
			fl->netflow_version = NETFLOW_NONE;
		else if (netflow_version_parse(p->netflow_version.v, &fl->netflow_version) < 0)
			return ERR_ILLEGAL_PARAM_NETFLOW_VERSION;
	}
	if (p->netflow_server_port.set) {
		int64_t port = 0;
		if (p->netflow_server_port.v.len &&
		    num_parse_i64(p->netflow_server_port.v, 1, 65535, &port) < 0)
			return ERR_ILLEGAL_PARAM_NETFLOW_SERVER_PORT;
		fl->netflow_server_port = (int)port;
	}
	return ERR_OK;
}

static enum err apply_strings(struct flowlog *fl, const struct flowlog_patch *p, char *detail,
			      size_t detail_cap)
{
	if (apply_str(&p->netflow_server_ip, domain_ip_valid, fl->netflow_server_ip,
		      sizeof(fl->netflow_server_ip)) < 0)
		return ERR_ILLEGAL_PARAM_NETFLOW_SERVER_IP;
	if (apply_str(&p->sls_region_id, domain_region_known, fl->sls_region_id,
		      sizeof(fl->sls_region_id)) < 0)
		return ERR_ILLEGAL_PARAM_SLS_REGION_ID;
	/* The remaining fields have no code of their own in the catalogue. */
	static const struct {
		const char *param;
		size_t patch_off, field_off, cap;
		bool (*valid)(struct str);
	} rows[] = {
		{"ProjectName", offsetof(struct flowlog_patch, project_name),
		 offsetof(struct flowlog, project_name), DOMAIN_SLS_NAME_MAX + 1, domain_sls_project_valid},
		{"LogstoreName", offsetof(struct flowlog_patch, logstore_name),
		 offsetof(struct flowlog, logstore_name), DOMAIN_SLS_NAME_MAX + 1, domain_sls_logstore_valid},
		{"Name", offsetof(struct flowlog_patch, name), offsetof(struct flowlog, name),
		 DOMAIN_NAME_BYTES + 1, domain_name_valid},
		{"Description", offsetof(struct flowlog_patch, description),
		 offsetof(struct flowlog, description), DOMAIN_DESC_BYTES + 1, domain_description_valid},
	};
	for (size_t i = 0; i < NELEM(rows); i++) {
		const struct opt *o = (const struct opt *)((const char *)p + rows[i].patch_off);
		char *field = (char *)fl + rows[i].field_off;
		if (apply_str(o, rows[i].valid, field, rows[i].cap) < 0) {
			set_detail(detail, detail_cap, rows[i].param);
			return ERR_INVALID_PARAMETER;
		}
	}
	return ERR_OK;
}

/* What the resulting configuration needs for its OutputType (spec §3.1). */
static enum err required_fields(const struct flowlog *fl)
{
	if (exports_sls(fl)) {
		if (!fl->sls_region_id[0])
			return ERR_MISSING_PARAM_SLS_REGION_ID;
		if (!fl->project_name[0])
			return ERR_MISSING_PARAM_PROJECT_NAME;
		if (!fl->logstore_name[0])
			return ERR_MISSING_PARAM_LOGSTORE_NAME;
	}
	if (flowlog_exports_netflow(fl)) {
		if (!fl->netflow_server_ip[0])
			return ERR_MISSING_PARAM_NETFLOW_SERVER_IP;
		if (!fl->netflow_server_port)
			return ERR_MISSING_PARAM_NETFLOW_SERVER_PORT;
		if (fl->netflow_version == NETFLOW_NONE)
			return ERR_MISSING_PARAM_NETFLOW_VERSION;
	}
	return ERR_OK;
}

enum err flowlog_apply(struct flowlog *fl, const struct flowlog_patch *p, bool create, char *detail,
		       size_t detail_cap)
{
	enum err e = apply_enums(fl, p, create);
	if (e == ERR_OK)
		e = apply_strings(fl, p, detail, detail_cap);
	if (e == ERR_OK)
		e = required_fields(fl);
	return e;
}

enum flowlog_status flowlog_transition(enum flowlog_status cur, bool activate)
{
	(void)cur; /* both directions are idempotent (spec §10) */
	return activate ? FLOWLOG_ACTIVE : FLOWLOG_INACTIVE;
}

enum err flowlog_delete_check(const struct flowlog *fl)
{
	return fl->total_sag_num > 0 ? ERR_DEPENDENCY_VIOLATION_FLOWLOG : ERR_OK;
}

/* ---- gateways ---- */

int sag_max_devices(const struct sag *g)
{
	return g->ha == SAG_HA_NONE ? 1 : DOMAIN_MAX_DEVICES;
}

const char *sag_status(const struct sag *g, int64_t now_ms, int64_t online_ms)
{
	int64_t last = 0;
	for (int i = 0; i < g->ndevices; i++)
		if (g->devices[i].reported_ms > last)
			last = g->devices[i].reported_ms;
	if (last == 0)
		return "Init";
	return now_ms - last <= online_ms ? "Active" : "Offline";
}

const struct device *sag_active_device(const struct sag *g)
{
	for (int i = 0; i < g->ndevices; i++)
		if (g->devices[i].ha_state == DEVICE_HA_ACTIVE)
			return &g->devices[i];
	return g->ndevices ? &g->devices[0] : NULL;
}

const struct device *sag_standby_device(const struct sag *g)
{
	const struct device *a = sag_active_device(g);
	for (int i = 0; i < g->ndevices; i++)
		if (&g->devices[i] != a)
			return &g->devices[i];
	return NULL;
}

/* -1 too old or unknown, 0 fine. A device that never reported cannot be
 * confirmed (spec §10), and neither can one reporting another model. */
static int device_firmware_ok(const struct device *d)
{
	bool ok;
	if (!d->reported_ms || !d->software_version[0])
		return -1;
	if (d->model[0] && strcmp(d->model, spec_names[SAG_SPEC_1000]) != 0)
		return -1;
	int c = num_version_cmp(str_c(d->software_version), STR_LIT(DOMAIN_FLOWLOG_MIN_FIRMWARE), &ok);
	return ok && c >= 0 ? 0 : -1;
}

static bool any_reported(const struct sag *g)
{
	for (int i = 0; i < g->ndevices; i++)
		if (g->devices[i].reported_ms)
			return true;
	return false;
}

enum err sag_firmware_check(const struct sag *g)
{
	/* Step 5: the instance's model. A device reporting another model than
	 * its instance says is treated like that model. */
	if (g->spec != SAG_SPEC_1000)
		return ERR_OPERATION_UNSUPPORTED_ASSOCIATE_FLOWLOG;
	for (int i = 0; i < g->ndevices; i++)
		if (g->devices[i].model[0] &&
		    strcmp(g->devices[i].model, spec_names[SAG_SPEC_1000]) != 0)
			return ERR_OPERATION_UNSUPPORTED_ASSOCIATE_FLOWLOG;
	/* Step 6: firmware; with nothing reported nothing can be confirmed. */
	if (!any_reported(g))
		return ERR_FEATURE_NOT_SUPPORT;
	if (g->ndevices == 1)
		return device_firmware_ok(&g->devices[0]) < 0 ? ERR_FEATURE_NOT_SUPPORT : ERR_OK;
	if (device_firmware_ok(sag_active_device(g)) < 0)
		return ERR_FEATURE_NOT_SUPPORT_ACTIVE;
	if (device_firmware_ok(sag_standby_device(g)) < 0)
		return ERR_FEATURE_NOT_SUPPORT_STANDBY;
	return ERR_OK;
}

enum err assoc_check(const struct flowlog *fl, const struct sag *g)
{
	if (fl->status != FLOWLOG_ACTIVE)
		return ERR_INCORRECT_STATUS_FLOWLOG;
	enum err e = sag_firmware_check(g);
	if (e != ERR_OK)
		return e;
	if (g->flowlog_id[0] && strcmp(g->flowlog_id, fl->id) != 0)
		return ERR_OPERATION_FAILED_ASSOCIATE_FLOWLOG;
	return ERR_OK;
}
