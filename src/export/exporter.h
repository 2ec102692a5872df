/* Where closed flow records go. An exporter is an object with an ops table:
 * the NetFlow/IPFIX exporter (netflow.c) and the JSON-lines sink (jsonl.c).
 * The meter drives them with its own clock (packet time), so replays and
 * live capture export identically. */
#ifndef EXPORT_EXPORTER_H
#define EXPORT_EXPORTER_H
#include <stdint.h>
#include <stdio.h>
#include "meter/flow.h"

#define EXPORT_MAX_DATAGRAM 1400 /* stays under common path MTUs without fragmenting */

struct export_stats {
	uint64_t records;        /* records accepted for export */
	uint64_t not_exportable; /* e.g. IPv6 records under V5 */
	uint64_t datagrams, bytes;
	uint64_t send_errors;
};

struct exporter;

struct exporter_ops {
	void (*record)(struct exporter *ex, const struct flow_rec *rec);
	/* The clock moved to now_us: send what has waited too long, refresh templates. */
	void (*tick)(struct exporter *ex, int64_t now_us);
	/* Send everything pending now. */
	void (*flush)(struct exporter *ex);
	void (*free)(struct exporter *ex);
};

struct exporter {
	const struct exporter_ops *ops;
	const char *name;
	struct export_stats st;
};

static inline void exporter_record(struct exporter *ex, const struct flow_rec *rec)
{
	ex->ops->record(ex, rec);
}

static inline void exporter_tick(struct exporter *ex, int64_t now_us)
{
	ex->ops->tick(ex, now_us);
}

static inline void exporter_flush(struct exporter *ex)
{
	ex->ops->flush(ex);
}

static inline void exporter_free(struct exporter *ex)
{
	if (ex)
		ex->ops->free(ex);
}

/* Sends one datagram; returns 0 or -1. Never blocks. */
typedef int (*export_send_fn)(void *ctx, const uint8_t *p, size_t len);

#define NETFLOW_TEMPLATE_REFRESH_DATAGRAMS 20 /* resend templates every N datagrams */
#define NETFLOW_TEMPLATE_REFRESH_US (30 * 1000000LL) /* and every 30 s of meter time */
#define NETFLOW_MAX_DELAY_US 1000000LL /* a closed record waits at most 1 s to be sent */

/* What a collector sees as one exporter's stream: the sequence numbers and
 * the boot time sysUptime counts from. An exporter keeps its own unless the
 * caller passes one to netflow_exporter_new_stream: then a replacement
 * exporter for the same collector (the agent reconfiguring its meter)
 * continues the stream instead of restarting it, and collectors count no
 * sequence failure. */
struct netflow_stream {
	int booted;
	int64_t boot_us;
	uint32_t seq_flows;     /* V5: flows exported before */
	uint32_t seq_datagrams; /* V9: datagrams sent before */
	uint32_t seq_records;   /* IPFIX: data records sent before */
	uint32_t seq_options;   /* IPFIX: options records sent before in the process domain */
};

struct netflow_config {
	int version;      /* 5, 9 or 10 (IPFIX) */
	uint32_t domain;  /* V9 source id / IPFIX observation domain / V5 engine id (low 8 bits) */
	export_send_fn send;
	void *send_ctx;   /* owned by the caller */
};

struct exporter *netflow_exporter_new(const struct netflow_config *cfg);
/* The same, continuing *stream (zeroed for a new one; owned by the caller,
 * must outlive the exporter). */
struct exporter *netflow_exporter_new_stream(const struct netflow_config *cfg, struct netflow_stream *stream);
/* JSON lines to f, one object per record (spec §1 field names); the exporter
 * closes f on free when own is set. */
struct exporter *jsonl_exporter_new(FILE *f, int own);

#endif
