#include "meter/meter.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

#define METER_US_PER_S 1000000LL
/* Decoded packets wait in a small batch so the table's cache misses (bucket,
 * then record: ~75% of the per-packet cost with tens of thousands of flows)
 * overlap instead of queueing; processing order is unchanged. */
#define METER_BATCH 16

struct meter_pending {
	struct flow_key key;
	uint8_t tcp_flags;
	uint32_t ip_len, hash;
	int64_t ts_us;
};

struct meter {
	struct meter_config cfg;
	struct flowtable *ft;
	struct exporter *ex[METER_MAX_EXPORTERS];
	size_t nex;
	uint64_t packets, decoded;
	uint64_t skipped[DECODE_STATUS_COUNT];
	struct meter_pending batch[METER_BATCH];
	size_t nbatch;
	/* Counters of earlier tables (before a reconfigure), so stats stay cumulative. */
	struct flowtable_stats past;
	struct export_stats past_ex;
};

static int meter_check(const struct meter_config *cfg, size_t nex, char *err, size_t errlen)
{
	if (cfg->active_aging_s < METER_ACTIVE_MIN || cfg->active_aging_s > METER_ACTIVE_MAX) {
		snprintf(err, errlen, "active aging must be %d-%d seconds", METER_ACTIVE_MIN, METER_ACTIVE_MAX);
		return -1;
	}
	if (cfg->inactive_aging_s < METER_INACTIVE_MIN || cfg->inactive_aging_s > METER_INACTIVE_MAX) {
		snprintf(err, errlen, "inactive aging must be %d-%d seconds", METER_INACTIVE_MIN,
			 METER_INACTIVE_MAX);
		return -1;
	}
	if (cfg->max_flows < FLOWTABLE_MIN_FLOWS || cfg->max_flows > FLOWTABLE_MAX_FLOWS) {
		snprintf(err, errlen, "max flows must be %u-%u", FLOWTABLE_MIN_FLOWS, FLOWTABLE_MAX_FLOWS);
		return -1;
	}
	if (nex > METER_MAX_EXPORTERS) {
		snprintf(err, errlen, "at most %d exporters", METER_MAX_EXPORTERS);
		return -1;
	}
	return 0;
}

static void meter_emit(void *ctx, const struct flow_rec *rec)
{
	struct meter *m = ctx;
	for (size_t i = 0; i < m->nex; i++)
		exporter_record(m->ex[i], rec);
}

static void meter_install(struct meter *m, const struct meter_config *cfg, struct exporter **ex, size_t nex)
{
	struct flowtable_config fc = {cfg->active_aging_s * METER_US_PER_S, cfg->inactive_aging_s * METER_US_PER_S,
				      cfg->max_flows};
	m->cfg = *cfg;
	m->ft = flowtable_new(&fc, meter_emit, m);
	m->nex = nex;
	for (size_t i = 0; i < nex; i++)
		m->ex[i] = ex[i];
}

struct meter *meter_new(const struct meter_config *cfg, struct exporter **ex, size_t nex, char *err,
			size_t errlen)
{
	if (meter_check(cfg, nex, err, errlen) < 0)
		return NULL;
	struct meter *m = xcalloc(1, sizeof(*m));
	meter_install(m, cfg, ex, nex);
	return m;
}

static void meter_drop_exporters(struct meter *m)
{
	for (size_t i = 0; i < m->nex; i++) {
		m->past_ex.records += m->ex[i]->st.records;
		m->past_ex.not_exportable += m->ex[i]->st.not_exportable;
		m->past_ex.datagrams += m->ex[i]->st.datagrams;
		m->past_ex.bytes += m->ex[i]->st.bytes;
		m->past_ex.send_errors += m->ex[i]->st.send_errors;
		exporter_free(m->ex[i]);
	}
	m->nex = 0;
}

void meter_free(struct meter *m)
{
	if (m == NULL)
		return;
	meter_drop_exporters(m);
	flowtable_free(m->ft);
	free(m);
}

static void meter_drain(struct meter *m)
{
	size_t n = m->nbatch;
	if (n == 0)
		return;
	m->nbatch = 0;
	for (size_t i = 0; i < n; i++) {
		m->batch[i].hash = flowtable_hash(m->ft, &m->batch[i].key);
		flowtable_prefetch_bucket(m->ft, m->batch[i].hash);
	}
	for (size_t i = 0; i < n; i++)
		flowtable_prefetch_entry(m->ft, m->batch[i].hash);
	for (size_t i = 0; i < n; i++) {
		const struct meter_pending *p = &m->batch[i];
		flowtable_packet_hashed(m->ft, p->ts_us, &p->key, p->hash, p->tcp_flags, p->ip_len);
	}
	for (size_t i = 0; i < m->nex; i++)
		exporter_tick(m->ex[i], m->batch[n - 1].ts_us);
}

enum decode_status meter_packet(struct meter *m, int linktype, int64_t ts_us, const uint8_t *p, size_t caplen)
{
	struct decoded d;
	m->packets++;
	enum decode_status st = decode_packet(linktype, p, caplen, &d);
	if (st != DECODE_OK) {
		m->skipped[st]++;
		/* Time moves even for packets we skip: they are still evidence of "now". */
		meter_advance(m, ts_us);
		return st;
	}
	m->decoded++;
	struct meter_pending *b = &m->batch[m->nbatch++];
	memset(&b->key, 0, sizeof(b->key));
	memcpy(b->key.src, d.src, sizeof(b->key.src));
	memcpy(b->key.dst, d.dst, sizeof(b->key.dst));
	b->key.sport = d.sport;
	b->key.dport = d.dport;
	b->key.proto = d.proto;
	b->key.tos = d.tos;
	b->key.af = d.af;
	b->key.inport = m->cfg.inport;
	b->tcp_flags = d.tcp_flags;
	b->ip_len = d.ip_len;
	b->ts_us = ts_us;
	if (m->nbatch == METER_BATCH)
		meter_drain(m);
	return DECODE_OK;
}

void meter_advance(struct meter *m, int64_t now_us)
{
	meter_drain(m);
	flowtable_expire(m->ft, now_us);
	for (size_t i = 0; i < m->nex; i++)
		exporter_tick(m->ex[i], now_us);
}

void meter_flush(struct meter *m)
{
	meter_drain(m);
	flowtable_flush(m->ft, FLOW_END_FORCED);
	for (size_t i = 0; i < m->nex; i++)
		exporter_flush(m->ex[i]);
}

static void meter_add_past(struct meter *m)
{
	struct flowtable_stats s;
	flowtable_stats(m->ft, &s);
	m->past.opened += s.opened;
	for (int i = 0; i < FLOW_END_COUNT; i++)
		m->past.closed[i] += s.closed[i];
	if (s.peak > m->past.peak)
		m->past.peak = s.peak;
}

int meter_reconfigure(struct meter *m, const struct meter_config *cfg, struct exporter **ex, size_t nex,
		      char *err, size_t errlen)
{
	if (meter_check(cfg, nex, err, errlen) < 0)
		return -1;
	meter_drain(m);
	/* Every record counted so far closes and leaves through the exporters it
	 * was counted for; the new exporters only ever see packets that arrive
	 * after this call, so nothing is lost or counted twice. */
	flowtable_flush(m->ft, FLOW_END_RECONFIG);
	for (size_t i = 0; i < m->nex; i++)
		exporter_flush(m->ex[i]);
	meter_add_past(m);
	meter_drop_exporters(m);
	flowtable_free(m->ft);
	meter_install(m, cfg, ex, nex);
	return 0;
}

void meter_get_stats(struct meter *m, struct meter_stats *out)
{
	meter_drain(m);
	memset(out, 0, sizeof(*out));
	out->packets = m->packets;
	out->decoded = m->decoded;
	memcpy(out->skipped, m->skipped, sizeof(out->skipped));
	flowtable_stats(m->ft, &out->table);
	out->table.opened += m->past.opened;
	for (int i = 0; i < FLOW_END_COUNT; i++)
		out->table.closed[i] += m->past.closed[i];
	if (m->past.peak > out->table.peak)
		out->table.peak = m->past.peak;
}

void meter_get_export_stats(const struct meter *m, struct export_stats *out)
{
	*out = m->past_ex;
	for (size_t i = 0; i < m->nex; i++) {
		out->records += m->ex[i]->st.records;
		out->not_exportable += m->ex[i]->st.not_exportable;
		out->datagrams += m->ex[i]->st.datagrams;
		out->bytes += m->ex[i]->st.bytes;
		out->send_errors += m->ex[i]->st.send_errors;
	}
}

double meter_bytes_per_flow(const struct meter *m)
{
	return (double)flowtable_memory(m->ft) / (double)m->cfg.max_flows;
}

void meter_print_stats(struct meter *m, FILE *f)
{
	struct meter_stats s;
	meter_get_stats(m, &s);
	fprintf(f, "packets seen: %" PRIu64 "\npackets decoded: %" PRIu64 "\n", s.packets, s.decoded);
	for (int i = 1; i < DECODE_STATUS_COUNT; i++)
		fprintf(f, "packets skipped (%s): %" PRIu64 "\n", decode_status_text((enum decode_status)i),
			s.skipped[i]);
	fprintf(f, "records opened: %" PRIu64 "\nrecords open: %u\npeak table size: %u\n", s.table.opened,
		s.table.open, s.table.peak);
	for (int i = 0; i < FLOW_END_COUNT; i++)
		fprintf(f, "records closed (%s): %" PRIu64 "\n", flow_end_text((enum flow_end)i), s.table.closed[i]);
	fprintf(f, "table bytes per flow: %.1f\n", meter_bytes_per_flow(m));
	/* Per exporter: a JSON-lines sink and a collector each see every record. */
	for (size_t i = 0; i <= m->nex; i++) {
		const struct export_stats *e = i < m->nex ? &m->ex[i]->st : &m->past_ex;
		const char *name = i < m->nex ? m->ex[i]->name : "earlier exporters";
		if (i == m->nex && e->records + e->not_exportable == 0)
			break;
		fprintf(f,
			"%s records exported: %" PRIu64 "\n%s records not exportable: %" PRIu64
			"\n%s datagrams sent: %" PRIu64 "\n%s bytes sent: %" PRIu64 "\n%s send errors: %" PRIu64 "\n",
			name, e->records, name, e->not_exportable, name, e->datagrams, name, e->bytes, name,
			e->send_errors);
	}
	fflush(f);
}
