/* Gateways (spec §4): create, describe, delete, and binding the serial numbers
 * of their devices. What devices report on the device channel (docs/device-
 * protocol.md) is what Status, SoftwareVersion, BackupSoftwareVersion and the
 * Devices list show here. */
#include "api/gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/flowlog.h"
#include "core/ids.h"
#include "core/num.h"
#include "core/timeutil.h"
#include "core/xmalloc.h"

#define GATEWAY_ORDER_FIELD_MAX 256 /* bytes of each stored order detail */
#define GATEWAY_MAX_BANDWIDTH 10000 /* Mbit/s */
#define GATEWAY_ORDER_ID_DIGITS 15
#define GATEWAY_IDS_FILTER_MAX 50 /* SmartAGIds.N of DescribeSmartAccessGateways */
#define GATEWAY_TERM_MS (365LL * 24 * 3600 * 1000) /* EndTime: a one-year term */

/* The order details of CreateSmartAccessGateway: accepted, bounded and kept
 * (a self-hosted server places no order), never required. */
static const char *const order_params[] = {
	"ChargeType",      "Period",          "AutoPay",          "BuyerMessage",
	"ReceiverAddress", "ReceiverCity",    "ReceiverCountry",  "ReceiverDistrict",
	"ReceiverEmail",   "ReceiverMobile",  "ReceiverName",     "ReceiverPhone",
	"ReceiverState",   "ReceiverTown",    "ReceiverZip",      "AlreadyHaveSag",
	"CPEVersion",      "HardWareSpec",    "HaType",           "MaxBandWidth",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct create_job {
	struct sag g;
	char order_id[GATEWAY_ORDER_ID_DIGITS + 1];
	char *order_json;
};

static int create_tx(struct store_tx *tx, void *arg)
{
	struct sag_job *j = arg;
	struct create_job *cj = j->data;
	return store_sag_insert(tx, &cj->g, cj->order_id, cj->order_json);
}

static void create_render(struct sag_job *j)
{
	struct create_job *cj = j->data;
	json_t *o = j->c->out;
	json_object_set_new(o, "SmartAGId", json_string(cj->g.id));
	json_object_set_new(o, "OrderId", json_string(cj->order_id));
	json_object_set_new(o, "Name", json_string(cj->g.name));
	json_object_set_new(o, "Description", json_string(cj->g.description));
	json_object_set_new(o, "ResourceGroupId", json_string(cj->g.resource_group_id));
}

static void create_cleanup(void *data)
{
	struct create_job *cj = data;
	free(cj->order_json);
}

/* Returns the failing parameter's name, or NULL. */
static const char *read_order(struct api_call *c, char **json_out)
{
	json_t *order = json_object();
	for (size_t i = 0; i < NELEM(order_params); i++) {
		struct opt p = sag_param(c, order_params[i]);
		if (!p.set)
			continue;
		if (p.v.len > GATEWAY_ORDER_FIELD_MAX) {
			json_decref(order);
			return order_params[i];
		}
		json_t *v = json_stringn(p.v.p, p.v.len); /* NULL when not UTF-8 */
		if (!v) {
			json_decref(order);
			return order_params[i];
		}
		json_object_set_new(order, order_params[i], v);
	}
	*json_out = json_dumps(order, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(order);
	return NULL;
}

static int period_valid(struct str s)
{
	int64_t v;
	if (num_parse_i64(s, 1, 36, &v) < 0)
		return 0;
	return v <= 9 || v == 12 || v == 24 || v == 36;
}

/* Validates the instance parameters into g; the failing name, or NULL. */
static const char *read_instance(struct api_call *c, struct sag *g, enum err *e)
{
	struct opt spec = sag_param(c, "HardWareSpec"), ha = sag_param(c, "HaType");
	struct opt name = sag_param(c, "Name"), desc = sag_param(c, "Description");
	struct opt bw = sag_param(c, "MaxBandWidth"), period = sag_param(c, "Period");
	*e = ERR_MISSING_PARAMETER;
	if (!spec.set || !spec.v.len)
		return "HardWareSpec";
	if (!ha.set || !ha.v.len)
		return "HaType";
	*e = ERR_INVALID_PARAMETER;
	if (sag_spec_parse(spec.v, &g->spec) < 0)
		return "HardWareSpec";
	if (sag_ha_parse(ha.v, &g->ha) < 0)
		return "HaType";
	if (name.set && name.v.len &&
	    (!domain_name_valid(name.v) || domain_copy(g->name, sizeof(g->name), name.v) < 0))
		return "Name";
	if (desc.set && (!domain_description_valid(desc.v) ||
			 domain_copy(g->description, sizeof(g->description), desc.v) < 0))
		return "Description";
	int64_t v = 0;
	if (bw.set && bw.v.len && num_parse_i64(bw.v, 1, GATEWAY_MAX_BANDWIDTH, &v) < 0)
		return "MaxBandWidth";
	g->max_bandwidth = (int)v;
	if (period.set && period.v.len && !period_valid(period.v))
		return "Period";
	return NULL;
}

static void create_gateway(struct api_call *c)
{
	struct sag_job *j = sag_job_new(c, sizeof(struct create_job));
	struct create_job *cj = j->data;
	enum err e;
	if (sag_owner(c, j->region, &j->o) != ERR_OK)
		goto out;
	const char *bad = read_instance(c, &cj->g, &e);
	if (!bad && (bad = read_order(c, &cj->order_json)) != NULL)
		e = ERR_INVALID_PARAMETER;
	if (bad) {
		api_fail(c, e, bad);
		goto out;
	}
	ids_resource(cj->g.id, sizeof(cj->g.id), "sag-");
	memcpy(cj->g.region_id, j->region, sizeof(cj->g.region_id));
	sag_resource_group(c->account_id, cj->g.resource_group_id);
	cj->g.account_id = c->account_id;
	cj->g.created_ms = time_now_ms();
	/* A decimal order number like the real API's, from the CSPRNG. */
	unsigned char rnd[GATEWAY_ORDER_ID_DIGITS];
	ids_random(rnd, sizeof(rnd));
	for (int i = 0; i < GATEWAY_ORDER_ID_DIGITS; i++)
		cj->order_id[i] = (char)('0' + (i == 0 ? 1 + rnd[i] % 9 : rnd[i] % 10));
	j->render = create_render;
	j->cleanup = create_cleanup;
	sag_job_submit(j, create_tx);
	return;
out:
	free(cj->order_json);
	free(j->data);
	free(j);
}

/* ---- rendering ---- */

static void serials(const struct sag *g, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	for (int i = 0; i < g->ndevices; i++) {
		int w = snprintf(out + n, cap - n, "%s%s", i ? "," : "", g->devices[i].serial_number);
		if (w < 0 || (size_t)w >= cap - n)
			return;
		n += (size_t)w;
	}
}

static const char *version_of(const struct device *d)
{
	return d ? d->software_version : "";
}

/* The fields Describe and DescribeAttribute share (spec §4.1). */
static void common_json(json_t *o, const struct sag *g, int64_t online_ms)
{
	char sn[(DOMAIN_SN_MAX + 1) * DOMAIN_MAX_DEVICES + 1], bw[16];
	int64_t now = time_now_ms();
	const struct device *standby = sag_standby_device(g);
	serials(g, sn, sizeof(sn));
	snprintf(bw, sizeof(bw), "%d", g->max_bandwidth);
	json_object_set_new(o, "SmartAGId", json_string(g->id));
	json_object_set_new(o, "Name", json_string(g->name));
	json_object_set_new(o, "Description", json_string(g->description));
	json_object_set_new(o, "Status", json_string(sag_status(g, now, online_ms)));
	json_object_set_new(o, "HardwareVersion", json_string(sag_spec_name(g->spec)));
	json_object_set_new(o, "SoftwareVersion", json_string(version_of(sag_active_device(g))));
	json_object_set_new(o, "BackupSoftwareVersion", json_string(version_of(standby)));
	json_object_set_new(o, "BackupStatus",
			    json_string(standby && standby->reported_ms ? "Active" : ""));
	json_object_set_new(o, "SerialNumber", json_string(sn));
	json_object_set_new(o, "MaxBandwidth", json_string(bw));
	json_object_set_new(o, "CreateTime", json_integer(g->created_ms));
	json_object_set_new(o, "EndTime", json_integer(g->created_ms + GATEWAY_TERM_MS));
	json_object_set_new(o, "ResourceGroupId", json_string(g->resource_group_id));
	json_object_set_new(o, "CidrBlock", json_string(""));
	json_object_set_new(o, "City", json_string(""));
	json_object_set_new(o, "AssociatedCcnId", json_string(""));
	json_object_set_new(o, "AssociatedCcnName", json_string(""));
}

static json_t *wrap(const char *key, json_t *arr)
{
	json_t *w = json_object();
	json_object_set_new(w, key, arr);
	return w;
}

/* sagflow's own field: the flow log's Log Service leg as the device reports
 * it (docs/device-protocol.md §6, docs/api.md): whether it is delivered, the
 * sender's counts, and its last error with the time. */
static json_t *sls_delivery_json(const struct device *d)
{
	json_t *o = json_object();
	char when[32] = "";
	if (d->sls.last_error_ms > 0)
		time_format_iso8601(d->sls.last_error_ms / 1000, when);
	json_object_set_new(o, "Status", json_string(d->sls_delivery));
	json_object_set_new(o, "Delivered", json_integer(d->sls.delivered));
	json_object_set_new(o, "Queued", json_integer(d->sls.queued));
	json_object_set_new(o, "Dropped", json_integer(d->sls.dropped));
	json_object_set_new(o, "LastError", json_string(d->sls.last_error));
	json_object_set_new(o, "LastErrorTime", json_string(when));
	return o;
}

static json_t *device_json(const struct device *d)
{
	json_t *o = json_object();
	json_object_set_new(o, "SerialNumber", json_string(d->serial_number));
	json_object_set_new(o, "SoftwareVersion", json_string(d->software_version));
	json_object_set_new(o, "HaState", json_string(device_ha_name(d->ha_state)));
	json_object_set_new(o, "HcState", json_string(d->reported_ms ? "Normal" : ""));
	/* sagflow's own, like SlsDelivery: Alibaba's answer has no time of the
	 * device's last report, and the console's device list shows it. */
	char reported[21] = "";
	if (d->reported_ms)
		time_format_iso8601(d->reported_ms / 1000, reported);
	json_object_set_new(o, "LastReportTime", json_string(reported));
	json_object_set_new(o, "SlsDelivery", sls_delivery_json(d));
	json_object_set_new(o, "MonitorVersion", json_string(""));
	json_object_set_new(o, "DpiSignatureDbVersion", json_string(""));
	/* Shown to the owner on purpose (spec §4.2): it is how the operator
	 * provisions the device; it is never logged. */
	json_object_set_new(o, "SecretKey", json_string(d->secret_key));
	json_object_set_new(o, "DistributeSkStatus", json_integer(1));
	return o;
}

static void attribute_json(json_t *o, const struct sag *g, int64_t online_ms)
{
	common_json(o, g, online_ms);
	json_object_set_new(o, "InstanceType", json_string(sag_spec_name(g->spec)));
	json_object_set_new(o, "HaType", json_string(sag_ha_name(g->ha)));
	json_t *fl = json_array();
	if (g->flowlog_id[0])
		json_array_append_new(fl, json_string(g->flowlog_id));
	json_object_set_new(o, "FlowLogIds", wrap("FlowLogId", fl));
	json_object_set_new(o, "AclIds", wrap("AclId", json_array()));
	json_object_set_new(o, "QosIds", wrap("QosId", json_array()));
	json_object_set_new(o, "IRIds", wrap("IRId", json_array()));
	json_t *devs = json_array();
	for (int i = 0; i < g->ndevices; i++)
		json_array_append_new(devs, device_json(&g->devices[i]));
	json_object_set_new(o, "Devices", wrap("Device", devs));
	json_object_set_new(o, "Links", wrap("Link", json_array()));
}

/* ---- DescribeSmartAccessGateways ---- */

struct list_read {
	struct owner o;
	struct sag_filter f;
	int64_t total;
	json_t *items;
};

static int list_cb(const struct sag *g, void *arg)
{
	struct list_read *r = arg;
	json_t *o = json_object();
	common_json(o, g, r->f.online_ms);
	json_object_set_new(o, "AclIds", json_string(""));
	json_object_set_new(o, "QosIds", json_string(""));
	json_object_set_new(o, "IRIds", json_string(""));
	json_array_append_new(r->items, o);
	return 0;
}

static int list_tx(struct store_tx *tx, void *arg)
{
	struct list_read *r = arg;
	return store_sag_list(tx, r->o, &r->f, &r->total, list_cb, r);
}

static const char *filter_param(struct api_call *c, const char *name)
{
	struct opt p = sag_param(c, name);
	return p.set && p.v.len ? p.v.p : NULL;
}

/* The instance states of spec §4.1; this server derives Init, Active and
 * Offline from device reports, so the others match nothing. */
static bool status_known(struct str s)
{
	static const char *const known[] = {"Ordered", "Delivered", "Received", "Returning", "Active",
					    "Init", "Offline", "Unconfirmed", "Arrearage"};
	for (size_t i = 0; i < NELEM(known); i++)
		if (str_eqc(s, known[i]))
			return true;
	return false;
}

/* SmartAGIds.1 .. SmartAGIds.N (pop-core's flattening of a list) as a JSON
 * array for the query; NULL when absent. Returns the bad parameter's name. */
static const char *smartag_ids(struct api_call *c, char **json_out)
{
	json_t *arr = json_array();
	char name[32];
	for (int i = 1; i <= GATEWAY_IDS_FILTER_MAX + 1; i++) {
		snprintf(name, sizeof(name), "SmartAGIds.%d", i);
		struct opt p = sag_param(c, name);
		if (!p.set)
			break;
		json_t *v = json_stringn(p.v.p, p.v.len);
		if (i > GATEWAY_IDS_FILTER_MAX || p.v.len > DOMAIN_ID_MAX || !v) {
			json_decref(v);
			json_decref(arr);
			return "SmartAGIds";
		}
		json_array_append_new(arr, v);
	}
	*json_out = json_array_size(arr) ? json_dumps(arr, JSON_COMPACT) : NULL;
	json_decref(arr);
	return NULL;
}

/* The list filters into f; -1 after failing the call. *ids is malloc'd (or NULL). */
static int read_filters(struct api_call *c, struct sag_filter *f, char **ids)
{
	struct opt hw = sag_param(c, "HardwareType");
	enum sag_spec spec;
	f->spec = -1;
	if (hw.set && hw.v.len) {
		if (sag_spec_parse(hw.v, &spec) < 0) {
			api_fail(c, ERR_INVALID_PARAMETER, "HardwareType");
			return -1;
		}
		f->spec = (int)spec;
	}
	f->status = filter_param(c, "Status");
	if (f->status && !status_known(str_c(f->status))) {
		api_fail(c, ERR_INVALID_PARAMETER, "Status");
		return -1;
	}
	const char *bad = smartag_ids(c, ids);
	if (bad) {
		api_fail(c, ERR_INVALID_PARAMETER, bad);
		return -1;
	}
	f->ids_json = *ids;
	f->now_ms = time_now_ms();
	f->online_ms = c->cfg->device_online_ms;
	f->sag_id = filter_param(c, "SmartAGId");
	f->name = filter_param(c, "Name");
	f->serial_number = filter_param(c, "SerialNumber");
	f->resource_group_id = filter_param(c, "ResourceGroupId");
	return 0;
}

static void describe_gateways(struct api_call *c)
{
	char region[DOMAIN_REGION_MAX + 1];
	struct list_read r = {0};
	int64_t page, size;
	char *ids = NULL;
	if (sag_owner(c, region, &r.o) != ERR_OK ||
	    sag_paging(c, SAG_PAGE_SIZE_MAX, &page, &size) != ERR_OK ||
	    read_filters(c, &r.f, &ids) < 0)
		return;
	r.f.offset = (page - 1) * size;
	r.f.limit = size;
	r.items = json_array();
	int rc = store_read(c->store, list_tx, &r);
	free(ids);
	if (rc == 0) {
		json_object_set_new(c->out, "TotalCount", json_integer(r.total));
		json_object_set_new(c->out, "PageNumber", json_integer(page));
		json_object_set_new(c->out, "PageSize", json_integer(size));
		json_object_set_new(c->out, "SmartAccessGateways", wrap("SmartAccessGateway", r.items));
	} else {
		json_decref(r.items);
	}
	sag_finish_read(c, rc, NULL);
}

/* ---- DescribeSmartAccessGatewayAttribute ---- */

struct one_read {
	struct owner o;
	char sag_id[DOMAIN_ID_MAX + 1];
	struct sag g;
};

static int one_tx(struct store_tx *tx, void *arg)
{
	struct one_read *r = arg;
	int rc = store_sag_get(tx, r->o, r->sag_id, &r->g);
	return rc == 1 ? ERR_INVALID_SMARTAG_ID_NOT_FOUND : rc;
}

/* A required gateway id parameter (SmartAGId, or InstanceId for Delete). */
static int sag_id_param(struct api_call *c, const char *name, char id[DOMAIN_ID_MAX + 1])
{
	struct opt p = sag_param(c, name);
	if (!p.set || p.v.len == 0) {
		api_fail(c, ERR_MISSING_PARAMETER, name);
		return -1;
	}
	if (domain_copy(id, DOMAIN_ID_MAX + 1, p.v) < 0)
		snprintf(id, DOMAIN_ID_MAX + 1, "sag-"); /* too long to exist */
	return 0;
}

static void describe_attribute(struct api_call *c)
{
	char region[DOMAIN_REGION_MAX + 1];
	struct one_read *r = xcalloc(1, sizeof(*r));
	if (sag_id_param(c, "SmartAGId", r->sag_id) == 0 && sag_owner(c, region, &r->o) == ERR_OK) {
		int rc = store_read(c->store, one_tx, r);
		if (rc == 0)
			attribute_json(c->out, &r->g, c->cfg->device_online_ms);
		sag_finish_read(c, rc, NULL);
	}
	free(r);
}

/* ---- Delete, BindSerialNumber, UnbindSerialNumber ---- */

enum gw_op { GW_DELETE, GW_BIND, GW_UNBIND };

struct gw_job {
	enum gw_op op;
	char sag_id[DOMAIN_ID_MAX + 1];
	struct device d;
};

static int bind_tx(struct store_tx *tx, struct sag_job *j, struct sag *g)
{
	struct gw_job *w = j->data;
	struct sag owner;
	int rc = store_device_owner(tx, w->d.serial_number, &owner);
	if (rc == 0) { /* bound already: here is idempotent, elsewhere refused */
		if (owner.rowid == g->rowid)
			return 0;
		snprintf(j->detail, sizeof(j->detail), "SerialNumber");
		return ERR_INVALID_PARAMETER;
	}
	if (rc != 1)
		return rc;
	if (g->ndevices >= sag_max_devices(g)) {
		snprintf(j->detail, sizeof(j->detail), "SerialNumber");
		return ERR_INVALID_PARAMETER;
	}
	ids_alnum(w->d.secret_key, DOMAIN_SECRET_LEN);
	return store_device_insert(tx, g, &w->d, time_now_ms());
}

static int gw_tx(struct store_tx *tx, void *arg)
{
	struct sag_job *j = arg;
	struct gw_job *w = j->data;
	struct sag g;
	int rc = store_sag_get(tx, j->o, w->sag_id, &g);
	if (rc != 0)
		return rc == 1 ? ERR_INVALID_SMARTAG_ID_NOT_FOUND : rc;
	switch (w->op) {
	case GW_DELETE:
		/* A bound gateway would leave its flow log counting a ghost. */
		return g.flowlog_id[0] ? (int)ERR_DEPENDENCY_VIOLATION_FLOWLOG : store_sag_delete(tx, &g);
	case GW_BIND:
		return bind_tx(tx, j, &g);
	case GW_UNBIND:
		rc = store_device_delete(tx, &g, w->d.serial_number);
		if (rc == 1)
			snprintf(j->detail, sizeof(j->detail), "SerialNumber");
		return rc == 1 ? ERR_INVALID_PARAMETER : rc;
	}
	return STORE_EIO;
}

static void gateway_op(struct api_call *c, enum gw_op op)
{
	struct sag_job *j = sag_job_new(c, sizeof(struct gw_job));
	struct gw_job *w = j->data;
	w->op = op;
	if (sag_id_param(c, op == GW_DELETE ? "InstanceId" : "SmartAGId", w->sag_id) < 0)
		goto out;
	if (op != GW_DELETE) {
		struct opt sn = sag_param(c, "SerialNumber");
		if (!sn.set || !sn.v.len) {
			api_fail(c, ERR_MISSING_PARAMETER, "SerialNumber");
			goto out;
		}
		if (!domain_serial_valid(sn.v) ||
		    domain_copy(w->d.serial_number, sizeof(w->d.serial_number), sn.v) < 0) {
			api_fail(c, ERR_INVALID_PARAMETER, "SerialNumber");
			goto out;
		}
	}
	if (sag_owner(c, j->region, &j->o) != ERR_OK)
		goto out;
	sag_job_submit(j, gw_tx);
	return;
out:
	free(j->data);
	free(j);
}

static void delete_gateway(struct api_call *c)
{
	gateway_op(c, GW_DELETE);
}

static void bind_serial(struct api_call *c)
{
	gateway_op(c, GW_BIND);
}

static void unbind_serial(struct api_call *c)
{
	gateway_op(c, GW_UNBIND);
}

const struct api_action gateway_actions[] = {
	{"CreateSmartAccessGateway", create_gateway, false},
	{"DescribeSmartAccessGateways", describe_gateways, false},
	{"DescribeSmartAccessGatewayAttribute", describe_attribute, false},
	{"DeleteSmartAccessGateway", delete_gateway, false},
	{"BindSerialNumber", bind_serial, false},
	{"UnbindSerialNumber", unbind_serial, false},
	{NULL, NULL, false},
};
