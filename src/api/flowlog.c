/* The flow-log actions of spec §3: params -> domain rules -> store -> c->out.
 * Reads run on the calling thread (store_read); every durable change is one
 * write job on the store's writer thread that re-reads what it depends on,
 * applies the rule and writes, so checks and writes are one transaction. */
#include "api/flowlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/region.h"
#include "core/ids.h"
#include "core/num.h"
#include "core/timeutil.h"
#include "core/xmalloc.h"
#include "rpc/params.h"

/* ---- shared helpers ---- */

struct opt sag_param(const struct api_call *c, const char *name)
{
	const struct param *p = params_find(c->params, name);
	return p ? (struct opt){true, p->value} : (struct opt){false, STR_NULL};
}

enum err sag_owner(struct api_call *c, char region[DOMAIN_REGION_MAX + 1], struct owner *o)
{
	struct opt r = sag_param(c, "RegionId");
	if (!r.set || r.v.len == 0) {
		api_fail(c, ERR_MISSING_PARAMETER, "RegionId");
		return ERR_MISSING_PARAMETER;
	}
	if (!region_valid(r.v) || domain_copy(region, DOMAIN_REGION_MAX + 1, r.v) < 0) {
		api_finish(c, ERR_ILLEGAL_PARAM_REGION_ID);
		return ERR_ILLEGAL_PARAM_REGION_ID;
	}
	o->account_id = c->account_id;
	o->region_id = region;
	return ERR_OK;
}

static int parse_page_param(struct api_call *c, const char *name, int64_t max, int64_t *v)
{
	struct opt p = sag_param(c, name);
	if (!p.set || p.v.len == 0)
		return 0;
	if (num_parse_i64(p.v, 1, max, v) < 0) {
		api_fail(c, ERR_INVALID_PARAMETER, name);
		return -1;
	}
	return 0;
}

enum err sag_paging(struct api_call *c, int64_t max_size, int64_t *page, int64_t *size)
{
	*page = 1;
	*size = FLOWLOG_PAGE_SIZE_DEFAULT;
	if (parse_page_param(c, "PageNumber", DOMAIN_PAGE_NUMBER_MAX, page) < 0 ||
	    parse_page_param(c, "PageSize", max_size, size) < 0)
		return ERR_INVALID_PARAMETER;
	return ERR_OK;
}

void sag_resource_group(int64_t account_id, char out[DOMAIN_ID_MAX + 1])
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	char tail[12];
	uint64_t v = (uint64_t)account_id;
	for (int i = 10; i >= 0; i--, v /= 36)
		tail[i] = digits[v % 36];
	tail[11] = '\0';
	snprintf(out, DOMAIN_ID_MAX + 1, "rg-acfm%s", tail);
}

struct sag_job *sag_job_new(struct api_call *c, size_t data_size)
{
	struct sag_job *j = xcalloc(1, sizeof(*j));
	j->c = c;
	j->data = data_size ? xcalloc(1, data_size) : NULL;
	return j;
}

/* The store's failures as API errors: unreachable (nothing done, retry) is
 * 503, a commit of unknown outcome says so, anything else is InternalError. */
enum err api_store_err(int rc)
{
	switch (rc) {
	case STORE_EUNAVAIL:
		return ERR_SERVICE_UNAVAILABLE;
	case STORE_EUNKNOWN:
		return ERR_INTERNAL_ERROR_COMMIT_UNKNOWN;
	default:
		return ERR_INTERNAL_ERROR;
	}
}

static void finish_rc(struct api_call *c, int rc, const char *detail)
{
	if (rc < 0)
		api_finish(c, api_store_err(rc));
	else if (detail && detail[0])
		api_fail(c, (enum err)rc, detail);
	else
		api_finish(c, (enum err)rc);
}

static void job_done(void *arg, int rc)
{
	struct sag_job *j = arg;
	const struct api_config *cfg = j->c->cfg;
	if (rc == 0 && cfg && cfg->account_changed)
		cfg->account_changed(cfg->account_changed_arg, j->c->account_id);
	if (rc == 0 && j->render)
		j->render(j);
	finish_rc(j->c, rc, j->detail);
	if (j->cleanup)
		j->cleanup(j->data);
	free(j->data);
	free(j);
}

void sag_job_submit(struct sag_job *j, store_fn fn)
{
	sag_job_submit_hinted(j, fn, NULL);
}

void sag_job_submit_hinted(struct sag_job *j, store_fn fn, const struct store_lock_hint *h)
{
	/* Every API write changes the caller's account's data and no other's. */
	store_write_async_hinted(j->c->store, j->c->account_id, h, fn, j, job_done);
}

void sag_finish_read(struct api_call *c, int rc, const char *detail)
{
	finish_rc(c, rc, detail);
}

json_t *sag_brief_json(const struct sag *g)
{
	json_t *o = json_object();
	json_object_set_new(o, "SmartAGId", json_string(g->id));
	if (g->name[0])
		json_object_set_new(o, "Name", json_string(g->name));
	json_object_set_new(o, "Description", json_string(g->description));
	return o;
}

/* ---- flow-log helpers ---- */

/* FlowLogId: absent or empty → MissingParam.FlowLogId. */
static int flowlog_id_param(struct api_call *c, char id[DOMAIN_ID_MAX + 1])
{
	struct opt p = sag_param(c, "FlowLogId");
	if (!p.set || p.v.len == 0) {
		api_finish(c, ERR_MISSING_PARAM_FLOWLOG_ID);
		return -1;
	}
	/* A value too long to be an id cannot exist: keep it and let the lookup miss. */
	if (domain_copy(id, DOMAIN_ID_MAX + 1, p.v) < 0)
		snprintf(id, DOMAIN_ID_MAX + 1, "fl-");
	return 0;
}

/* A lookup result as an error: 1 (missing) → nf, STORE_EIO stays. */
static int found(int rc, enum err nf)
{
	return rc == 1 ? (int)nf : rc;
}

/* One flow log as DescribeFlowLogs lists it, written into the page. */
void flowlog_emit(struct render_list *l, const struct flowlog *fl)
{
	render_list_item_begin(l);
	render_list_str(l, "FlowLogId", fl->id);
	render_list_str(l, "Name", fl->name);
	render_list_str(l, "Description", fl->description);
	render_list_str(l, "Status", flowlog_status_name(fl->status));
	render_list_str(l, "OutputType", flowlog_output_name(fl->output));
	render_list_str(l, "SlsRegionId", fl->sls_region_id);
	render_list_str(l, "ProjectName", fl->project_name);
	render_list_str(l, "LogstoreName", fl->logstore_name);
	render_list_str(l, "NetflowServerIp", fl->netflow_server_ip);
	/* Always a number (spec §2): Terraform's formatInt panics on "". */
	render_list_int(l, "NetflowServerPort", fl->netflow_server_port);
	render_list_str(l, "NetflowVersion", netflow_version_name(fl->netflow_version));
	render_list_int(l, "ActiveAging", fl->active_aging);
	render_list_int(l, "InactiveAging", fl->inactive_aging);
	render_list_int(l, "TotalSagNum", fl->total_sag_num);
	render_list_str(l, "ResourceGroupId", fl->resource_group_id);
	render_list_item_end(l);
}

static void read_patch(struct api_call *c, struct flowlog_patch *p)
{
	static const struct {
		const char *name;
		size_t off;
	} fields[] = {
		{"Name", offsetof(struct flowlog_patch, name)},
		{"Description", offsetof(struct flowlog_patch, description)},
		{"OutputType", offsetof(struct flowlog_patch, output_type)},
		{"ActiveAging", offsetof(struct flowlog_patch, active_aging)},
		{"InactiveAging", offsetof(struct flowlog_patch, inactive_aging)},
		{"SlsRegionId", offsetof(struct flowlog_patch, sls_region_id)},
		{"ProjectName", offsetof(struct flowlog_patch, project_name)},
		{"LogstoreName", offsetof(struct flowlog_patch, logstore_name)},
		{"NetflowServerIp", offsetof(struct flowlog_patch, netflow_server_ip)},
		{"NetflowServerPort", offsetof(struct flowlog_patch, netflow_server_port)},
		{"NetflowVersion", offsetof(struct flowlog_patch, netflow_version)},
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		*(struct opt *)((char *)p + fields[i].off) = sag_param(c, fields[i].name);
}

/* ---- CreateFlowLog ---- */

/* Leading id characters that carry the creation time (base 36 milliseconds:
 * 36^8 ms is 89 years from the epoch). */
#define FLOWLOG_ID_TIME_CHARS 8

/* "fl-" + 18 [a-z0-9] like every resource id (spec §1), but the first 8 spell
 * the creation time and only the last 10 are random (36^10 ≈ 3.7e15 per ms).
 * New ids then land at the right edge of the UNIQUE flowlog_id index instead
 * of at random leaves: a batch of creates dirties a few index pages, not one
 * page each, which is what made CreateFlowLog's commits large. */
static void flowlog_new_id(char out[DOMAIN_ID_MAX + 1], int64_t now_ms)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	char rnd[DOMAIN_ID_MAX + 1];
	uint64_t v = (uint64_t)now_ms;
	ids_resource(rnd, sizeof(rnd), "fl-");
	memcpy(out, rnd, sizeof(rnd));
	for (int i = 3 + FLOWLOG_ID_TIME_CHARS - 1; i >= 3; i--, v /= 36)
		out[i] = digits[v % 36];
}

static int create_tx(struct store_tx *tx, void *arg)
{
	struct sag_job *j = arg;
	struct flowlog *fl = j->data;
	/* Counted and raised in the write transaction (store_sag.h): concurrent
	 * creates, in this process or another, cannot overshoot. The job's last
	 * store call: its answer is the job's result (fl lives in j until done). */
	return store_flowlog_create(tx, fl, j->c->cfg->flowlog_quota);
}

static void create_render(struct sag_job *j)
{
	struct flowlog *fl = j->data;
	json_object_set_new(j->c->out, "FlowLogId", json_string(fl->id));
}

static void create_flowlog(struct api_call *c)
{
	struct sag_job *j = sag_job_new(c, sizeof(struct flowlog));
	struct flowlog *fl = j->data;
	struct flowlog_patch p;
	if (sag_owner(c, j->region, &j->o) != ERR_OK)
		goto out;
	read_patch(c, &p);
	flowlog_init(fl);
	enum err e = flowlog_apply(fl, &p, true, j->detail, sizeof(j->detail));
	if (e != ERR_OK) {
		api_fail(c, e, j->detail);
		goto out;
	}
	fl->created_ms = time_now_ms();
	flowlog_new_id(fl->id, fl->created_ms);
	memcpy(fl->region_id, j->region, sizeof(fl->region_id));
	sag_resource_group(c->account_id, fl->resource_group_id);
	fl->account_id = c->account_id;
	j->render = create_render;
	sag_job_submit(j, create_tx);
	return;
out:
	free(j->data);
	free(j);
}

/* ---- the actions on one existing flow log ---- */

enum fl_op { OP_MODIFY, OP_ACTIVE, OP_DEACTIVE, OP_DELETE, OP_ASSOCIATE, OP_DISASSOCIATE };

struct fl_job {
	enum fl_op op;
	char flowlog_id[DOMAIN_ID_MAX + 1];
	char sag_id[DOMAIN_ID_MAX + 1];
	struct flowlog_patch patch; /* slices into c->params, valid until api_finish */
};

struct firmware_scan {
	enum err first;
};

static int firmware_cb(const struct sag *g, void *arg)
{
	struct firmware_scan *s = arg;
	s->first = sag_firmware_check(g);
	return s->first != ERR_OK;
}

/* ActiveFlowLog re-checks the bound gateways: a device may have reported a
 * downgrade while the log was stopped (the 403 codes of spec §3.6). */
static int activate_tx(struct store_tx *tx, struct flowlog *fl)
{
	if (fl->status == FLOWLOG_ACTIVE)
		return 0;
	struct firmware_scan s = {ERR_OK};
	int64_t total;
	int rc = store_sag_list_by_flowlog(tx, fl, 0, INT64_MAX, &total, firmware_cb, &s);
	if (rc != 0)
		return rc;
	if (s.first != ERR_OK)
		return s.first;
	fl->status = flowlog_transition(fl->status, true);
	return store_flowlog_update(tx, fl);
}

/* Associate and Disassociate look up the flow log and the gateway together
 * (one round trip on PostgreSQL, both locked); only Associate's firmware
 * rule needs the devices. The errors keep spec §3.7's order: a missing flow
 * log first. The binding's update is the job's last store call and its
 * result the job's (on PostgreSQL the writer does not wait for it). */
static int associate_tx(struct store_tx *tx, struct sag_job *j, bool bind)
{
	struct fl_job *f = j->data;
	struct flowlog fl;
	struct sag g;
	int rc = store_flowlog_sag_get(tx, j->o, f->flowlog_id, f->sag_id, bind, &fl, &g);
	if (rc == 1)
		return ERR_INVALID_FLOWLOG_ID_NOT_FOUND;
	if (rc == 2)
		return ERR_INVALID_SMARTAG_ID_NOT_FOUND;
	if (rc != 0)
		return rc;
	if (!bind) /* not bound to this log: idempotent success (spec §10) */
		return strcmp(g.flowlog_id, fl.id) ? 0 : store_sag_set_flowlog(tx, &g, 0);
	enum err e = assoc_check(&fl, &g);
	if (e != ERR_OK)
		return e;
	return strcmp(g.flowlog_id, fl.id) ? store_sag_set_flowlog(tx, &g, fl.rowid) : 0;
}

static int flowlog_op_tx(struct store_tx *tx, void *arg)
{
	struct sag_job *j = arg;
	struct fl_job *f = j->data;
	if (f->op == OP_ASSOCIATE || f->op == OP_DISASSOCIATE)
		return associate_tx(tx, j, f->op == OP_ASSOCIATE);
	struct flowlog fl;
	int rc = found(store_flowlog_get(tx, j->o, f->flowlog_id, &fl), ERR_INVALID_FLOWLOG_ID_NOT_FOUND);
	if (rc != 0)
		return rc;
	switch (f->op) {
	case OP_MODIFY: {
		struct flowlog next = fl;
		enum err e = flowlog_apply(&next, &f->patch, false, j->detail, sizeof(j->detail));
		return e != ERR_OK ? (int)e : store_flowlog_update(tx, &next);
	}
	case OP_ACTIVE:
		return activate_tx(tx, &fl);
	case OP_DEACTIVE:
		if (fl.status == FLOWLOG_INACTIVE)
			return 0;
		fl.status = flowlog_transition(fl.status, false);
		return store_flowlog_update(tx, &fl);
	case OP_DELETE: {
		enum err e = flowlog_delete_check(&fl);
		return e != ERR_OK ? (int)e : store_flowlog_delete(tx, &fl);
	}
	case OP_ASSOCIATE: /* above */
	case OP_DISASSOCIATE:
		break;
	}
	return STORE_EIO;
}

/* The check order of spec §3.7: FlowLogId, SmartAGId, RegionId, then the
 * store (flow log, gateway, rules) inside the write job. */
static void flowlog_op(struct api_call *c, enum fl_op op)
{
	struct sag_job *j = sag_job_new(c, sizeof(struct fl_job));
	struct fl_job *f = j->data;
	f->op = op;
	if (flowlog_id_param(c, f->flowlog_id) < 0)
		goto out;
	if (op == OP_ASSOCIATE || op == OP_DISASSOCIATE) {
		struct opt s = sag_param(c, "SmartAGId");
		if (!s.set || s.v.len == 0) {
			api_fail(c, ERR_MISSING_PARAMETER, "SmartAGId");
			goto out;
		}
		if (domain_copy(f->sag_id, sizeof(f->sag_id), s.v) < 0)
			snprintf(f->sag_id, sizeof(f->sag_id), "sag-");
	}
	if (sag_owner(c, j->region, &j->o) != ERR_OK)
		goto out;
	if (op == OP_MODIFY)
		read_patch(c, &f->patch);
	if (op != OP_ASSOCIATE && op != OP_DISASSOCIATE) {
		sag_job_submit(j, flowlog_op_tx);
		return;
	}
	/* associate_tx's lookup, which the store may run ahead with the other
	 * Associates of the batch (one round trip on PostgreSQL). */
	struct store_lock_hint h = {j->o, f->flowlog_id, f->sag_id, op == OP_ASSOCIATE};
	sag_job_submit_hinted(j, flowlog_op_tx, &h);
	return;
out:
	free(j->data);
	free(j);
}

static void modify_flowlog(struct api_call *c)
{
	flowlog_op(c, OP_MODIFY);
}

static void active_flowlog(struct api_call *c)
{
	flowlog_op(c, OP_ACTIVE);
}

static void deactive_flowlog(struct api_call *c)
{
	flowlog_op(c, OP_DEACTIVE);
}

static void delete_flowlog(struct api_call *c)
{
	flowlog_op(c, OP_DELETE);
}

static void associate_flowlog(struct api_call *c)
{
	flowlog_op(c, OP_ASSOCIATE);
}

static void disassociate_flowlog(struct api_call *c)
{
	flowlog_op(c, OP_DISASSOCIATE);
}

/* ---- DescribeFlowLogs ---- */

struct list_read {
	struct owner o;
	struct flowlog_filter f;
	int64_t total;
	struct render_list items;
};

static int list_cb(const struct flowlog *fl, void *arg)
{
	struct list_read *r = arg;
	flowlog_emit(&r->items, fl);
	return 0;
}

static int list_tx(struct store_tx *tx, void *arg)
{
	struct list_read *r = arg;
	return store_flowlog_list(tx, r->o, &r->f, &r->total, list_cb, r);
}

/* An optional filter: absent or empty means "any"; values are NUL-terminated
 * by the params arena, and one that is too long simply matches nothing. */
static const char *filter_param(struct api_call *c, const char *name)
{
	struct opt p = sag_param(c, name);
	return p.set && p.v.len ? p.v.p : NULL;
}

static int enum_filter(struct api_call *c, const char *name, int (*parse)(struct str, int *),
		       enum err bad)
{
	struct opt p = sag_param(c, name);
	int v = -1;
	if (p.set && p.v.len && parse(p.v, &v) < 0) {
		api_finish(c, bad);
		return -2;
	}
	return v;
}

static int parse_status(struct str s, int *v)
{
	enum flowlog_status st;
	if (flowlog_status_parse(s, &st) < 0)
		return -1;
	*v = (int)st;
	return 0;
}

static int parse_output(struct str s, int *v)
{
	enum flowlog_output o;
	if (flowlog_output_parse(s, &o) < 0)
		return -1;
	*v = (int)o;
	return 0;
}

static void describe_flowlogs(struct api_call *c)
{
	char region[DOMAIN_REGION_MAX + 1];
	struct list_read r = {0};
	int64_t page, size;
	if (sag_owner(c, region, &r.o) != ERR_OK)
		return;
	r.f.status = enum_filter(c, "Status", parse_status, ERR_ILLEGAL_PARAM_STATUS);
	if (r.f.status == -2)
		return;
	r.f.output = enum_filter(c, "OutputType", parse_output, ERR_ILLEGAL_PARAM_OUTPUT_TYPE);
	if (r.f.output == -2)
		return;
	if (sag_paging(c, FLOWLOG_PAGE_SIZE_MAX, &page, &size) != ERR_OK)
		return;
	r.f.flowlog_id = filter_param(c, "FlowLogId");
	r.f.name = filter_param(c, "FlowLogName");
	r.f.description = filter_param(c, "Description");
	r.f.resource_group_id = filter_param(c, "ResourceGroupId");
	r.f.offset = (page - 1) * size;
	r.f.limit = size;
	/* The page's items are written as they are read, not built as a tree. */
	render_list_init(&r.items, c->fmt, "FlowLogSetType");
	int rc = store_read(c->store, list_tx, &r);
	if (rc == 0) {
		json_object_set_new(c->out, "TotalCount", json_integer(r.total));
		json_object_set_new(c->out, "PageNumber", json_integer(page));
		json_object_set_new(c->out, "PageSize", json_integer(size));
		json_t *w = json_object();
		json_object_set_new(w, "FlowLogSetType", render_list_take(&r.items));
		json_object_set_new(c->out, "FlowLogs", w);
	} else {
		render_list_free(&r.items);
	}
	sag_finish_read(c, rc, NULL);
}

/* ---- DescribeFlowLogSags / DescribeUnbindFlowLogSags ---- */

/* Gateways listed without paging (DescribeUnbindFlowLogSags has none). */
#define FLOWLOG_UNBOUND_LIST_MAX 1000

struct sags_read {
	struct owner o;
	char flowlog_id[DOMAIN_ID_MAX + 1];
	int64_t offset, limit, total;
	json_t *items;
};

static int sags_cb(const struct sag *g, void *arg)
{
	struct sags_read *r = arg;
	json_array_append_new(r->items, sag_brief_json(g));
	return 0;
}

static int flowlog_sags_tx(struct store_tx *tx, void *arg)
{
	struct sags_read *r = arg;
	struct flowlog fl;
	int rc = found(store_flowlog_get(tx, r->o, r->flowlog_id, &fl), ERR_INVALID_FLOWLOG_ID_NOT_FOUND);
	if (rc != 0)
		return rc;
	return store_sag_list_by_flowlog(tx, &fl, r->offset, r->limit, &r->total, sags_cb, r);
}

static json_t *wrap_sags(json_t *items)
{
	json_t *w = json_object();
	json_object_set_new(w, "Sag", items);
	return w;
}

static void describe_flowlog_sags(struct api_call *c)
{
	char region[DOMAIN_REGION_MAX + 1];
	struct sags_read r = {0};
	int64_t page, size;
	if (flowlog_id_param(c, r.flowlog_id) < 0 || sag_owner(c, region, &r.o) != ERR_OK ||
	    sag_paging(c, SAG_PAGE_SIZE_MAX, &page, &size) != ERR_OK)
		return;
	r.offset = (page - 1) * size;
	r.limit = size;
	r.items = json_array();
	int rc = store_read(c->store, flowlog_sags_tx, &r);
	if (rc == 0) {
		json_object_set_new(c->out, "TotalCount", json_integer(r.total));
		json_object_set_new(c->out, "PageNumber", json_integer(page));
		json_object_set_new(c->out, "PageSize", json_integer(size));
		json_object_set_new(c->out, "Sags", wrap_sags(r.items));
	} else {
		json_decref(r.items);
	}
	sag_finish_read(c, rc, NULL);
}

static int unbound_tx(struct store_tx *tx, void *arg)
{
	struct sags_read *r = arg;
	return store_sag_list_unbound(tx, r->o, r->limit, &r->total, sags_cb, r);
}

static void describe_unbind_flowlog_sags(struct api_call *c)
{
	char region[DOMAIN_REGION_MAX + 1];
	struct sags_read r = {0};
	if (sag_owner(c, region, &r.o) != ERR_OK)
		return;
	r.limit = FLOWLOG_UNBOUND_LIST_MAX;
	r.items = json_array();
	int rc = store_read(c->store, unbound_tx, &r);
	if (rc == 0) {
		json_object_set_new(c->out, "Count", json_integer(r.total));
		json_object_set_new(c->out, "Sags", wrap_sags(r.items));
	} else {
		json_decref(r.items);
	}
	sag_finish_read(c, rc, NULL);
}

const struct api_action flowlog_actions[] = {
	{"CreateFlowLog", create_flowlog, false},
	{"DescribeFlowLogs", describe_flowlogs, true},
	{"ModifyFlowLogAttribute", modify_flowlog, false},
	{"ActiveFlowLog", active_flowlog, false},
	{"DeactiveFlowLog", deactive_flowlog, false},
	{"DeleteFlowLog", delete_flowlog, false},
	{"AssociateFlowLog", associate_flowlog, false},
	{"DisassociateFlowLog", disassociate_flowlog, false},
	{"DescribeFlowLogSags", describe_flowlog_sags, true},
	{"DescribeUnbindFlowLogSags", describe_unbind_flowlog_sags, true},
	{NULL, NULL, false},
};
