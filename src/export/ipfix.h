/* IPFIX encoder (RFC 7011): a pure function, records in, message out. */
#ifndef EXPORT_IPFIX_H
#define EXPORT_IPFIX_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "meter/flow.h"

#define IPFIX_HDR_LEN 16
#define IPFIX_OPTIONS_DATA_RECORDS 1 /* data records the templates block adds */

struct ipfix_msg {
	int64_t now_us;    /* Export Time (seconds) */
	int64_t boot_us;   /* systemInitTimeMilliseconds in the options record */
	uint32_t sequence; /* data records sent before this message (RFC 7011 §3.1) */
	uint32_t domain;   /* Observation Domain ID */
	uint32_t sampling_interval;
	bool templates;    /* prepend the templates, the options template and its record */
};

/* Like nf9_encode. The message holds *used flow records, plus
 * IPFIX_OPTIONS_DATA_RECORDS more data records when m->templates. */
size_t ipfix_encode(const struct ipfix_msg *m, const struct flow_rec *recs, size_t n, size_t *used,
		    uint8_t *out, size_t cap);

#endif
