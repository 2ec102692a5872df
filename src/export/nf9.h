/* NetFlow V9 encoder (RFC 3954): a pure function, records in, datagram out. */
#ifndef EXPORT_NF9_H
#define EXPORT_NF9_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "meter/flow.h"

#define NF9_HDR_LEN 20

struct nf9_msg {
	int64_t now_us;    /* export time: unix_secs */
	int64_t boot_us;   /* exporter start: sysUptime, and systemInitTime in the options */
	uint32_t sequence; /* export datagrams sent before this one (RFC 3954 §5.1) */
	uint32_t source_id;
	uint32_t sampling_interval; /* 1: every packet is metered */
	bool templates;    /* prepend the IPv4, IPv6 and options templates and the options record */
};

/* Encodes the header, the templates if asked, then as many of recs[0..n) as
 * fit in cap; *used tells how many. Returns the length, 0 if even the header
 * and templates do not fit. */
size_t nf9_encode(const struct nf9_msg *m, const struct flow_rec *recs, size_t n, size_t *used, uint8_t *out,
		  size_t cap);

#endif
