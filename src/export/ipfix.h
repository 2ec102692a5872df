/* IPFIX encoder (RFC 7011): a pure function, records in, message out. */
#ifndef EXPORT_IPFIX_H
#define EXPORT_IPFIX_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "meter/flow.h"

#define IPFIX_HDR_LEN 16
/* The options record (system init time, sampling) describes the Exporting
 * Process, so it travels in Observation Domain 0 (RFC 7011 §3.1: "SHOULD be 0
 * when no specific Observation Domain ID is relevant"), scoped to the flow
 * domain. Keeping it out of the flow domain's stream keeps that stream's
 * sequence numbers right for every collector: RFC 7011 and tshark count
 * options data records, nfdump 1.7 does not. */
#define IPFIX_PROCESS_DOMAIN 0

struct ipfix_msg {
	int64_t now_us;    /* Export Time (seconds) */
	int64_t boot_us;   /* systemInitTimeMilliseconds in the options record */
	uint32_t sequence; /* data records sent before this message (RFC 7011 §3.1) */
	uint32_t domain;   /* Observation Domain ID */
	uint32_t sampling_interval;
	bool templates;    /* prepend the IPv4 and IPv6 templates */
};

/* Like nf9_encode: a message of *used flow records (all data records). */
size_t ipfix_encode(const struct ipfix_msg *m, const struct flow_rec *recs, size_t n, size_t *used,
		    uint8_t *out, size_t cap);

/* The Exporting Process message: the options template and one options data
 * record scoped to scoped_domain; m->domain should be IPFIX_PROCESS_DOMAIN and
 * m->sequence counts this stream's earlier options records. */
size_t ipfix_encode_options(const struct ipfix_msg *m, uint32_t scoped_domain, uint8_t *out, size_t cap);

#endif
