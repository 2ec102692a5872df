/* The NetFlow V5 / V9 / IPFIX exporter: batches closed records, encodes them
 * with the pure encoders, keeps the per-version sequence numbers of spec §3
 * and the template schedule, and hands datagrams to a send function. */
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "export/exporter.h"
#include "export/ipfix.h"
#include "export/nf5.h"
#include "export/nf9.h"

#define NETFLOW_PENDING_MAX 64 /* more than two full datagrams of any version */
#define NETFLOW_SAMPLING_INTERVAL 1

struct netflow_exporter {
	struct exporter ex;
	struct netflow_config cfg;
	struct flow_rec pending[NETFLOW_PENDING_MAX];
	size_t npending;
	int64_t now_us, oldest_us;
	int started;
	struct netflow_stream own, *s; /* s is own, or the caller's */
	uint32_t since_templates;
	int64_t templates_us;
	int templates_sent;
	uint8_t buf[EXPORT_MAX_DATAGRAM];
};

static void nx_start(struct netflow_exporter *nx, int64_t t_us)
{
	if (!nx->started) {
		nx->started = 1;
		nx->now_us = t_us;
		if (!nx->s->booted) {
			nx->s->booted = 1;
			nx->s->boot_us = t_us;
		}
	}
}

static int nx_templates_due(const struct netflow_exporter *nx)
{
	return !nx->templates_sent || nx->since_templates >= NETFLOW_TEMPLATE_REFRESH_DATAGRAMS ||
	       nx->now_us - nx->templates_us >= NETFLOW_TEMPLATE_REFRESH_US;
}

/* Encodes one datagram from the head of the queue; *full tells whether it
 * has no room for the next record. Returns the length (0 on failure). */
static size_t nx_encode(struct netflow_exporter *nx, int templates, size_t *used)
{
	size_t n = nx->npending;
	if (nx->cfg.version == 5) {
		struct nf5_header h = {nx->now_us, nx->s->boot_us, nx->s->seq_flows, 0, (uint8_t)nx->cfg.domain, 0};
		*used = n < NF5_MAX_RECORDS ? n : NF5_MAX_RECORDS;
		return nf5_encode(&h, nx->pending, *used, nx->buf, sizeof(nx->buf));
	}
	if (nx->cfg.version == 9) {
		struct nf9_msg m = {nx->now_us, nx->s->boot_us, nx->s->seq_datagrams, nx->cfg.domain,
				    NETFLOW_SAMPLING_INTERVAL, templates};
		return nf9_encode(&m, nx->pending, n, used, nx->buf, sizeof(nx->buf));
	}
	struct ipfix_msg m = {nx->now_us, nx->s->boot_us, nx->s->seq_records, nx->cfg.domain, NETFLOW_SAMPLING_INTERVAL,
			      templates};
	return ipfix_encode(&m, nx->pending, n, used, nx->buf, sizeof(nx->buf));
}

/* IPFIX: the Exporting Process options go first, in their own domain; with
 * flows in domain 0 itself they would disturb its sequence, so they are left out. */
static void nx_send_options(struct netflow_exporter *nx)
{
	if (nx->cfg.version != 10 || nx->cfg.domain == IPFIX_PROCESS_DOMAIN)
		return;
	struct ipfix_msg m = {nx->now_us, nx->s->boot_us, nx->s->seq_options, IPFIX_PROCESS_DOMAIN,
			      NETFLOW_SAMPLING_INTERVAL, false};
	size_t len = ipfix_encode_options(&m, nx->cfg.domain, nx->buf, sizeof(nx->buf));
	if (len == 0 || nx->cfg.send(nx->cfg.send_ctx, nx->buf, len) != 0)
		nx->ex.st.send_errors++;
	nx->ex.st.datagrams++;
	nx->ex.st.bytes += len;
	nx->s->seq_options++;
}

/* Sends one datagram. Without force, only a full one: records that would
 * leave the datagram part-empty keep waiting for company. Returns the
 * number of records sent. */
static size_t nx_send_one(struct netflow_exporter *nx, int force)
{
	int templates = nx->cfg.version != 5 && nx_templates_due(nx);
	size_t used = 0;
	size_t len = nx_encode(nx, templates, &used);
	if (len == 0 || used == 0) {
		/* Cannot happen with our own records; drop rather than spin. */
		nx->ex.st.send_errors++;
		nx->npending = 0;
		return 0;
	}
	if (!force && used == nx->npending && (nx->cfg.version != 5 || used < NF5_MAX_RECORDS))
		return 0;
	if (templates) {
		nx_send_options(nx);
		len = nx_encode(nx, templates, &used); /* the buffer was reused */
	}
	if (nx->cfg.send(nx->cfg.send_ctx, nx->buf, len) != 0)
		nx->ex.st.send_errors++;
	nx->ex.st.datagrams++;
	nx->ex.st.bytes += len;
	/* The sequence moves even when the send failed: the collector should
	 * see the loss. */
	nx->s->seq_flows += (uint32_t)used;
	nx->s->seq_datagrams++;
	nx->s->seq_records += (uint32_t)used;
	if (templates) {
		nx->templates_sent = 1;
		nx->since_templates = 0;
		nx->templates_us = nx->now_us;
	}
	nx->since_templates++;
	memmove(nx->pending, nx->pending + used, (nx->npending - used) * sizeof(nx->pending[0]));
	nx->npending -= used;
	if (nx->npending)
		nx->oldest_us = nx->now_us;
	return used;
}

static void nx_drain(struct netflow_exporter *nx, int force)
{
	while (nx->npending && nx_send_one(nx, force))
		;
}

static void nx_record(struct exporter *ex, const struct flow_rec *rec)
{
	struct netflow_exporter *nx = (struct netflow_exporter *)ex;
	nx_start(nx, rec->first_us);
	if (nx->cfg.version == 5 && rec->key.af != 4) {
		ex->st.not_exportable++;
		return;
	}
	ex->st.records++;
	if (nx->npending == 0)
		nx->oldest_us = nx->now_us;
	nx->pending[nx->npending++] = *rec;
	if (nx->npending == NETFLOW_PENDING_MAX)
		nx_drain(nx, 0);
}

static void nx_tick(struct exporter *ex, int64_t now_us)
{
	struct netflow_exporter *nx = (struct netflow_exporter *)ex;
	nx_start(nx, now_us);
	if (now_us > nx->now_us)
		nx->now_us = now_us;
	if (nx->npending && nx->now_us - nx->oldest_us >= NETFLOW_MAX_DELAY_US)
		nx_drain(nx, 1);
}

static void nx_flush(struct exporter *ex)
{
	nx_drain((struct netflow_exporter *)ex, 1);
}

static void nx_free(struct exporter *ex)
{
	free(ex);
}

static const struct exporter_ops netflow_ops = {nx_record, nx_tick, nx_flush, nx_free};

struct exporter *netflow_exporter_new(const struct netflow_config *cfg)
{
	struct netflow_exporter *nx = xcalloc(1, sizeof(*nx));
	nx->ex.ops = &netflow_ops;
	nx->ex.name = cfg->version == 5 ? "netflow-v5" : cfg->version == 9 ? "netflow-v9" : "ipfix";
	nx->cfg = *cfg;
	nx->s = &nx->own;
	return &nx->ex;
}

struct exporter *netflow_exporter_new_stream(const struct netflow_config *cfg, struct netflow_stream *stream)
{
	struct exporter *ex = netflow_exporter_new(cfg);
	((struct netflow_exporter *)ex)->s = stream;
	return ex;
}
