/* NetFlow V5 encoder: a pure function, records in, datagram bytes out. */
#ifndef EXPORT_NF5_H
#define EXPORT_NF5_H
#include <stddef.h>
#include <stdint.h>
#include "meter/flow.h"

#define NF5_HDR_LEN 24
#define NF5_REC_LEN 48
#define NF5_MAX_RECORDS 28 /* 24 + 28 * 48 = 1368 bytes, within EXPORT_MAX_DATAGRAM */

struct nf5_header {
	int64_t now_us;         /* export time (unix_secs, unix_nsecs) */
	int64_t boot_us;        /* exporter start: sysUptime and First/Last are relative to it */
	uint32_t flow_sequence; /* flows exported before this datagram */
	uint8_t engine_type, engine_id;
	uint16_t sampling;
};

/* Encodes n (1..NF5_MAX_RECORDS) IPv4 records. Returns the length, or 0 when
 * n is out of range, a record is not IPv4, or cap is too small. */
size_t nf5_encode(const struct nf5_header *h, const struct flow_rec *recs, size_t n, uint8_t *out, size_t cap);

#endif
