/* The domain functions of store_sag.h, dispatched to the backend of the
 * transaction (sqlite_sag.c, pg_sag.c). */
#include "store/store_impl.h"

int store_flowlog_get(struct store_tx *tx, struct owner o, const char *flowlog_id,
		      struct flowlog *out)
{
	return tx->ops->flowlog_get(tx, o, flowlog_id, out);
}

int store_flowlog_get_config(struct store_tx *tx, struct owner o, const char *flowlog_id,
			     struct flowlog *out)
{
	return tx->ops->flowlog_get_config(tx, o, flowlog_id, out);
}

int store_flowlog_count(struct store_tx *tx, struct owner o, int64_t *n)
{
	return tx->ops->flowlog_count(tx, o, n);
}

int store_flowlog_insert(struct store_tx *tx, struct flowlog *fl)
{
	return tx->ops->flowlog_insert(tx, fl);
}

int store_flowlog_create(struct store_tx *tx, struct flowlog *fl, int64_t quota)
{
	return tx->ops->flowlog_create(tx, fl, quota);
}

int store_flowlog_update(struct store_tx *tx, const struct flowlog *fl)
{
	return tx->ops->flowlog_update(tx, fl);
}

int store_flowlog_delete(struct store_tx *tx, const struct flowlog *fl)
{
	return tx->ops->flowlog_delete(tx, fl);
}

int store_flowlog_list(struct store_tx *tx, struct owner o, const struct flowlog_filter *f,
		       int64_t *total, flowlog_each_fn fn, void *arg)
{
	return tx->ops->flowlog_list(tx, o, f, total, fn, arg);
}

int store_sag_get(struct store_tx *tx, struct owner o, const char *sag_id, struct sag *out)
{
	return tx->ops->sag_get(tx, o, sag_id, out);
}

int store_flowlog_sag_each(struct store_tx *tx, struct owner o, const char *flowlog_id,
			   const char *sag_id, struct flowlog *fl, struct sag *g)
{
	int rc = store_flowlog_get(tx, o, flowlog_id, fl);
	if (rc != 0)
		return rc;
	fl->total_sag_num = 0; /* the same contract on both backends */
	rc = store_sag_get(tx, o, sag_id, g);
	return rc == 1 ? 2 : rc;
}

int store_flowlog_sag_get(struct store_tx *tx, struct owner o, const char *flowlog_id,
			  const char *sag_id, bool devices, struct flowlog *fl, struct sag *g)
{
	if (!tx->ops->flowlog_sag_get)
		return store_flowlog_sag_each(tx, o, flowlog_id, sag_id, fl, g);
	return tx->ops->flowlog_sag_get(tx, o, flowlog_id, sag_id, devices, fl, g);
}

int store_sag_insert(struct store_tx *tx, struct sag *g, const char *order_id,
		     const char *order_json)
{
	return tx->ops->sag_insert(tx, g, order_id, order_json);
}

int store_sag_delete(struct store_tx *tx, const struct sag *g)
{
	return tx->ops->sag_delete(tx, g);
}

int store_sag_set_flowlog(struct store_tx *tx, const struct sag *g, int64_t fl_rowid)
{
	return tx->ops->sag_set_flowlog(tx, g, fl_rowid);
}

int store_sag_list(struct store_tx *tx, struct owner o, const struct sag_filter *f, int64_t *total,
		   sag_each_fn fn, void *arg)
{
	return tx->ops->sag_list(tx, o, f, total, fn, arg);
}

int store_sag_list_by_flowlog(struct store_tx *tx, const struct flowlog *fl, int64_t offset,
			      int64_t limit, int64_t *total, sag_each_fn fn, void *arg)
{
	return tx->ops->sag_list_by_flowlog(tx, fl, offset, limit, total, fn, arg);
}

int store_sag_list_unbound(struct store_tx *tx, struct owner o, int64_t limit, int64_t *total,
			   sag_each_fn fn, void *arg)
{
	return tx->ops->sag_list_unbound(tx, o, limit, total, fn, arg);
}

int store_device_insert(struct store_tx *tx, const struct sag *g, const struct device *d,
			int64_t now_ms)
{
	return tx->ops->device_insert(tx, g, d, now_ms);
}

int store_device_delete(struct store_tx *tx, const struct sag *g, const char *serial_number)
{
	return tx->ops->device_delete(tx, g, serial_number);
}

int store_device_owner(struct store_tx *tx, const char *serial_number, struct sag *g)
{
	return tx->ops->device_owner(tx, serial_number, g);
}

int store_device_report(struct store_tx *tx, const struct sag *g, const char *serial_number,
			const struct device *d, int64_t now_ms)
{
	return tx->ops->device_report(tx, g, serial_number, d, now_ms);
}

int store_device_sequence(struct store_tx *tx, const struct sag *g, const char *serial_number,
			  int64_t seq, int64_t *last)
{
	return tx->ops->device_sequence(tx, g, serial_number, seq, last);
}

int store_device_status_counts(struct store_tx *tx, int64_t now_ms, int64_t online_ms,
			       int64_t counts[3])
{
	return tx->ops->device_status_counts(tx, now_ms, online_ms, counts);
}
