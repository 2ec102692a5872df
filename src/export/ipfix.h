/* IPFIX encoder (RFC 7011): a pure function, records in, message out. */
#ifndef EXPORT_IPFIX_H
#define EXPORT_IPFIX_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "meter/flow.h"

#define IPFIX_HDR_LEN 16
/* Whether the options data record sent with the templates advances the
 * sequence number. RFC 7011 §3.1 counts every Data Record, but nfdump 1.7
 * (the collector we test against, and the most common one) counts only the
 * records of non-options templates and reports a sequence failure on every
 * template refresh otherwise; we follow the collector. */
#define IPFIX_OPTIONS_DATA_RECORDS 0

struct ipfix_msg {
	int64_t now_us;    /* Export Time (seconds) */
	int64_t boot_us;   /* systemInitTimeMilliseconds in the options record */
	uint32_t sequence; /* data records sent before this message (RFC 7011 §3.1) */
	uint32_t domain;   /* Observation Domain ID */
	uint32_t sampling_interval;
	bool templates;    /* prepend the templates, the options template and its record */
};

/* Like nf9_encode. The message holds *used flow records (and one options
 * data record when m->templates, see IPFIX_OPTIONS_DATA_RECORDS). */
size_t ipfix_encode(const struct ipfix_msg *m, const struct flow_rec *recs, size_t n, size_t *used,
		    uint8_t *out, size_t cap);

#endif
