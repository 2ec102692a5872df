/* Flow logs, gateways and devices in the store (schema: sql/0002_flowlogs_sags.sql).
 *
 * These run inside a store_fn (store_read or store_write_async), so a handler
 * composes them into one transaction: AssociateFlowLog reads the flow log and
 * the gateway, checks the rules and sets the binding in the same write job,
 * which makes the association rule a check-and-set. Lookups take the caller's
 * (account, region): another owner's rows are simply not found.
 *
 * Returns: 0 success, 1 not found (lookups), STORE_EIO (or STORE_EUNAVAIL) on
 * a database failure. Each is an entry of struct store_ops (store_impl.h),
 * implemented by sqlite_sag.c and pg_sag.c; store_sag.c dispatches on the
 * transaction's backend.
 *
 * Inside a write job on PostgreSQL, store_flowlog_get and store_sag_get lock
 * the row they return (SELECT ... FOR UPDATE) until the batch commits, so a
 * rule checked on them holds against other processes: always look up the
 * flow log before the gateway, and the gateway before its devices (the lock
 * order; docs/store.md). store_flowlog_get_config and store_device_owner
 * never lock. */
#ifndef STORE_STORE_SAG_H
#define STORE_STORE_SAG_H
#include <stdint.h>

#include "domain/domain.h"
#include "store/store.h"

struct owner {
	int64_t account_id;
	const char *region_id;
};

/* ---- flow logs ---- */

int store_flowlog_get(struct store_tx *tx, struct owner o, const char *flowlog_id,
		      struct flowlog *out);
/* store_flowlog_get without the count of bound gateways (it is 0 in out): the
 * device channel's read, O(1) however many gateways share the flow log. */
int store_flowlog_get_config(struct store_tx *tx, struct owner o, const char *flowlog_id,
			     struct flowlog *out);
int store_flowlog_count(struct store_tx *tx, struct owner o, int64_t *n);
int store_flowlog_insert(struct store_tx *tx, struct flowlog *fl); /* sets fl->rowid */
/* CreateFlowLog's check-and-set: inserts fl (setting fl->rowid) unless its
 * owner has quota flow logs already, then ERR_QUOTA_EXCEEDED_FLOWLOG. On
 * PostgreSQL the count is taken and raised in one conditional upsert of
 * flowlog_counts, so the quota holds across processes. A job's last store
 * call, whose result the job returns: on a PostgreSQL writer it returns 0
 * before the answer is in, the answer then decides the job's result and
 * sets fl->rowid, so fl must live until the job's done(). */
int store_flowlog_create(struct store_tx *tx, struct flowlog *fl, int64_t quota);
int store_flowlog_update(struct store_tx *tx, const struct flowlog *fl);
int store_flowlog_delete(struct store_tx *tx, const struct flowlog *fl);

/* DescribeFlowLogs filters; NULL / -1 means "any". */
struct flowlog_filter {
	const char *flowlog_id, *name, *description, *resource_group_id;
	int status; /* enum flowlog_status or -1 */
	int output; /* enum flowlog_output or -1 */
	int64_t offset, limit;
};

typedef int (*flowlog_each_fn)(const struct flowlog *fl, void *arg);
/* Calls fn for each matching log of the page (creation order); *total counts all matches. */
int store_flowlog_list(struct store_tx *tx, struct owner o, const struct flowlog_filter *f,
		       int64_t *total, flowlog_each_fn fn, void *arg);

/* ---- gateways ---- */

/* Fills g including its devices and bound flow-log id. */
int store_sag_get(struct store_tx *tx, struct owner o, const char *sag_id, struct sag *out);
int store_sag_insert(struct store_tx *tx, struct sag *g, const char *order_id,
		     const char *order_json); /* sets g->rowid */
int store_sag_delete(struct store_tx *tx, const struct sag *g); /* its devices go too */
/* Associate/DisassociateFlowLog's lookup: the flow log and the gateway
 * together, as store_flowlog_get then store_sag_get would find (and, on
 * PostgreSQL, lock) them, in one round trip where the backend can. 0; 1 when
 * the flow log is missing (whether the gateway is or not: spec §3.7 checks
 * it first); 2 when only the gateway is. g's devices are read only when
 * devices is true (otherwise g->ndevices may be 0); fl->total_sag_num is
 * not counted (0): neither action reads it. */
int store_flowlog_sag_get(struct store_tx *tx, struct owner o, const char *flowlog_id,
			  const char *sag_id, bool devices, struct flowlog *fl, struct sag *g);
/* What a write job's lookup will be, handed over with the job: its first
 * store call is store_flowlog_sag_get(o, flowlog_id, sag_id, devices), and
 * then it changes nothing but that gateway's binding (store_sag_set_flowlog):
 * Associate and Disassociate. A backend may run the lookups of several such
 * jobs of one batch ahead, in one round trip (PostgreSQL; docs/store.md,
 * "Prefetched lookups"); the job gets that answer only when its call has
 * exactly these arguments, and otherwise looks up as it would have. A
 * backend that cannot use it (SQLite) ignores it. The strings are copied. */
struct store_lock_hint {
	struct owner o;
	const char *flowlog_id, *sag_id;
	bool devices;
};
/* store_write_async_scoped with the hint h (NULL: none). */
void store_write_async_hinted(struct store *s, int64_t scope, const struct store_lock_hint *h,
			      store_fn fn, void *arg, store_done_fn done);
/* Binds g to flow log rowid fl_rowid, or unbinds it with 0. A job's last
 * store call, whose result the job returns (on a PostgreSQL writer its
 * answer may decide the job's result after it returned 0; docs/store.md,
 * "Deferred statements"). */
int store_sag_set_flowlog(struct store_tx *tx, const struct sag *g, int64_t fl_rowid);

struct sag_filter {
	const char *sag_id, *name, *serial_number, *resource_group_id;
	const char *status; /* the derived Status of domain.h's sag_status(), or NULL */
	const char *ids_json; /* SmartAGIds.N as a JSON array of strings, or NULL */
	int64_t now_ms;     /* the clock that Status is derived at */
	int64_t online_ms;  /* ... and how recent a report counts as online */
	int spec;           /* enum sag_spec or -1 */
	int64_t offset, limit;
};

typedef int (*sag_each_fn)(const struct sag *g, void *arg);
int store_sag_list(struct store_tx *tx, struct owner o, const struct sag_filter *f, int64_t *total,
		   sag_each_fn fn, void *arg);
/* Gateways bound to a flow log (DescribeFlowLogSags), a page of them. */
int store_sag_list_by_flowlog(struct store_tx *tx, const struct flowlog *fl, int64_t offset,
			      int64_t limit, int64_t *total, sag_each_fn fn, void *arg);
/* Gateways bound to no flow log (DescribeUnbindFlowLogSags), at most limit. */
int store_sag_list_unbound(struct store_tx *tx, struct owner o, int64_t limit, int64_t *total,
			   sag_each_fn fn, void *arg);

/* ---- devices ---- */

int store_device_insert(struct store_tx *tx, const struct sag *g, const struct device *d,
			int64_t now_ms);
/* 0, or 1 when that serial number is not bound to g. */
int store_device_delete(struct store_tx *tx, const struct sag *g, const char *serial_number);
/* 0 and the gateway that owns serial_number (any owner), or 1 when unbound. */
int store_device_owner(struct store_tx *tx, const char *serial_number, struct sag *g);
/* Records what a device of g reported (model, firmware, HA state) at now_ms:
 * 0, or 1 when serial_number is no longer bound to g (nothing is written, so
 * the write changes g's account's data and no other). */
int store_device_report(struct store_tx *tx, const struct sag *g, const char *serial_number,
			const struct device *d, int64_t now_ms);

/* Raises the device's last accepted X-Sag-Sequence to seq when seq is greater:
 * 0; 2 and *last when it is not (a replayed or older sync); 1 when
 * serial_number is no longer bound to g. */
int store_device_sequence(struct store_tx *tx, const struct sag *g, const char *serial_number,
			  int64_t seq, int64_t *last);

/* Every bound device by the status rule of sag_status() applied to its own
 * last report at now_ms: counts[0] never reported (Init), [1] reported within
 * online_ms (Active), [2] longer ago (Offline). One scan of the devices. */
int store_device_status_counts(struct store_tx *tx, int64_t now_ms, int64_t online_ms,
			       int64_t counts[3]);

#endif
