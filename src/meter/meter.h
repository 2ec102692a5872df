/* The flow meter as a library: packets (with their timestamps) in, closed
 * records out through one or more exporters. The CLI (`sagflow meter`) and
 * the gateway agent both drive it:
 *
 *   struct meter *m = meter_new(&cfg, exporters, n);
 *   meter_packet(m, linktype, ts_us, bytes, caplen);   // per packet
 *   meter_advance(m, now_us);                          // when time passes without packets
 *   meter_reconfigure(m, &cfg2, exporters2, n2);       // new settings, nothing lost or doubled
 *   meter_flush(m); meter_free(m);
 *
 * The meter's clock is the packet timestamps (never the wall clock), so a
 * replayed capture ages exactly as it would have live. Not thread-safe: one
 * thread owns a meter. */
#ifndef METER_METER_H
#define METER_METER_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "export/exporter.h"
#include "meter/decode.h"
#include "meter/flowtable.h"

/* Spec §1 ranges, in seconds. */
#define METER_ACTIVE_MIN 60
#define METER_ACTIVE_MAX 6000
#define METER_ACTIVE_DEFAULT 300
#define METER_INACTIVE_MIN 10
#define METER_INACTIVE_MAX 600
#define METER_INACTIVE_DEFAULT 15
#define METER_MAX_FLOWS_DEFAULT 262144
#define METER_MAX_EXPORTERS 4

struct meter_config {
	int64_t active_aging_s, inactive_aging_s;
	uint32_t max_flows;
	uint16_t inport; /* ingress interface index written into every key */
};

struct meter_stats {
	uint64_t packets, decoded;
	uint64_t skipped[DECODE_STATUS_COUNT];
	struct flowtable_stats table;
};

struct meter;

/* Returns NULL with a message in err when cfg is out of range. The meter owns
 * the exporters from then on. */
struct meter *meter_new(const struct meter_config *cfg, struct exporter **ex, size_t nex, char *err,
			size_t errlen);
/* Frees the meter and its exporters (call meter_flush first to keep records). */
void meter_free(struct meter *m);
/* Decodes and counts one packet; returns the decode status (skipped if not
 * OK). Counting may wait for up to 16 packets (a cache-friendly batch, same
 * order); every other call below completes it first. */
enum decode_status meter_packet(struct meter *m, int linktype, int64_t ts_us, const uint8_t *p, size_t caplen);
/* Moves the clock to now_us: closes every record whose aging passed, lets
 * exporters send what waited. */
void meter_advance(struct meter *m, int64_t now_us);
/* Closes every open record (reason forced) and sends everything. */
void meter_flush(struct meter *m);
/* Closes and exports every record counted under the old settings through the
 * old exporters, frees them, and continues under cfg with the new exporters.
 * Returns -1 (nothing changed) if cfg is out of range. */
int meter_reconfigure(struct meter *m, const struct meter_config *cfg, struct exporter **ex, size_t nex,
		      char *err, size_t errlen);
void meter_get_stats(struct meter *m, struct meter_stats *out);
/* Every exporter's statistics added up, including exporters replaced by
 * meter_reconfigure. */
void meter_get_export_stats(const struct meter *m, struct export_stats *out);
/* Meter and exporter statistics, one "name: value" a line. */
void meter_print_stats(struct meter *m, FILE *f);
/* Bytes per tracked flow the table reserves (record slot + bucket share). */
double meter_bytes_per_flow(const struct meter *m);

#endif
