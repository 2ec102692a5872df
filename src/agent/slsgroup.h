/* Flow records as a Log Service LogGroup (spec log-service.md §2.2): one Log
 * per record with the SAG flow-log fields, exactly as named there, all values
 * strings; __time__ is the record's end. Packed by protobuf-c (the log store's
 * own sls_logs.proto) and compressed into a raw LZ4 block, as PutLogs takes
 * it (x-log-compresstype: lz4, x-log-bodyrawsize). */
#ifndef AGENT_SLSGROUP_H
#define AGENT_SLSGROUP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "meter/flow.h"

#define SLSGROUP_MAX_LOGS 4096		/* logs in one group (SLS's PutLogs limit) */
#define SLSGROUP_MAX_RAW (10u << 20)	/* raw bytes of one group (SLS's 10 MB) */
#define SLSGROUP_FIELDS 16		/* contents of one Log */
#define SLSGROUP_MAX_LOG_RAW 1024	/* raw bytes one Log can take, at most (bounds a group) */
#define SLSGROUP_PACK_ID_TAG "__pack_id__"
#define SLSGROUP_MAX_ID 128		/* bytes of the identity strings and the pack id */

struct slsgroup_meta {
	const char *topic;	 /* __topic__: the flow log's id */
	const char *source;	 /* __source__: the device's address */
	const char *pack_id;	 /* tag __pack_id__, unique per group */
	const char *instance_id; /* Instance_id: the gateway (SmartAGId) */
	const char *snid;	 /* snid: the device's serial number */
	const char *ali_uid;	 /* ali-uid: the gateway owner's account id ("" if unknown) */
};

/* Memory an encoder keeps from one group to the next (a few MB for a full
 * group: allocated afresh, it was page-faulted in again for every group):
 * the packed Logs, their slices, the packed group. Zero-initialise;
 * slsgroup_scratch_free releases it. */
#define SLSGROUP_CONTENT_ROOM 72 /* bytes of one packed, framed Content of a record's value */
struct slsgroup_cached {
	uint64_t v[3]; /* the value (slsgroup.c) */
	bool valid;
	size_t len;
	uint8_t packed[SLSGROUP_CONTENT_ROOM];
};
#define SLSGROUP_WAYS 4 /* packed Contents kept per field, the oldest replaced */
struct slsgroup_field_cache {
	struct slsgroup_cached way[SLSGROUP_WAYS];
	size_t next; /* the way to replace */
};
struct slsgroup_scratch {
	struct buf logs, refs, packed;
	struct slsgroup_field_cache cache[SLSGROUP_FIELDS]; /* each field's last packed Contents */
	uint32_t time;		 /* of the last Log packed, */
	size_t time_len;	 /* its packed Time's length (0: none yet) */
	uint8_t time_packed[16]; /* and its packed Time */
};
void slsgroup_scratch_free(struct slsgroup_scratch *sc);

/* Encodes n (1..SLSGROUP_MAX_LOGS) records: out gets the LZ4 block (appended),
 * *raw_len the packed size. -1 when it cannot (n out of range, LZ4 failed). */
int slsgroup_encode(const struct slsgroup_meta *m, const struct flow_rec *r, size_t n,
		    struct slsgroup_scratch *sc, struct buf *out, size_t *raw_len);

#endif
