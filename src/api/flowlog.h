/* The flow-log actions (spec §3) and the helpers they share with gateway.c:
 * parameter reading, the caller's (account, region), and the write-job
 * plumbing that runs a check-and-set on the store's writer thread and finishes
 * the call from its done() callback. */
#ifndef API_FLOWLOG_H
#define API_FLOWLOG_H
#include <stddef.h>

#include "api/api.h"
#include "domain/domain.h"
#include "store/store_sag.h"

extern const struct api_action flowlog_actions[]; /* NULL-terminated */

/* One flow log as DescribeFlowLogs lists it, written into a render_list
 * (tests/unit/test_render.c checks it against the same fields as a tree). */
void flowlog_emit(struct render_list *l, const struct flowlog *fl);

/* ---- shared with gateway.c ---- */

/* A store failure (< 0: STORE_EIO, STORE_EUNAVAIL, STORE_EUNKNOWN) as the
 * API error it is answered with (docs/store.md, "Faults"). */
enum err api_store_err(int rc);

/* A parameter as an optional value (present, maybe empty). */
struct opt sag_param(const struct api_call *c, const char *name);

/* RegionId: absent → MissingParameter, unknown → IllegalParam.RegionId.
 * Copies it into region (the owner keeps pointing at it). */
enum err sag_owner(struct api_call *c, char region[DOMAIN_REGION_MAX + 1], struct owner *o);

/* PageNumber (default 1) and PageSize (default 10, at most max): an empty
 * value takes the default; anything else out of range is InvalidParameter. */
enum err sag_paging(struct api_call *c, int64_t max_size, int64_t *page, int64_t *size);

/* The account's resource group ("rg-acfm" + 11 base-36 digits of the id):
 * every resource has one, since Terraform checks ResourceGroupId is set. */
void sag_resource_group(int64_t account_id, char out[DOMAIN_ID_MAX + 1]);

/* A write job: fn runs inside the store's write transaction and returns 0 or
 * a positive enum err (its savepoint is then rolled back); on success render
 * fills c->out (on the writer thread, before api_finish). */
struct sag_job {
	struct api_call *c;
	struct owner o;
	char region[DOMAIN_REGION_MAX + 1];
	char detail[API_ERR_DETAIL_MAX];
	void (*render)(struct sag_job *j);
	void *data; /* the action's own state, freed with free() after done */
	void (*cleanup)(void *data); /* frees what data points to, or NULL */
};

struct sag_job *sag_job_new(struct api_call *c, size_t data_size);
/* Hands j to the writer; the call finishes from the done callback. */
void sag_job_submit(struct sag_job *j, store_fn fn);
/* The same for a job whose lookup is h (store_sag.h, store_lock_hint). */
void sag_job_submit_hinted(struct sag_job *j, store_fn fn, const struct store_lock_hint *h);
/* Finishes c from a store_read result rc (0, a positive enum err, STORE_EIO). */
void sag_finish_read(struct api_call *c, int rc, const char *detail);

/* {"Sags":{"Sag":[...]}} items: SmartAGId, Name (when set), Description. */
json_t *sag_brief_json(const struct sag *g);

#endif
