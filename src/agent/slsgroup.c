/* Records to a compressed LogGroup (slsgroup.h). The field values of one Log
 * are formatted into one fixed buffer per record, and protobuf-c's structs
 * point into it: one allocation per group for the structs, one per group for
 * the text, whatever the number of records. */
#include "agent/slsgroup.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "sls/sls_logs.pb-c.h"

#define SLSGROUP_TEXT_PER_LOG 320 /* the formatted values of one record, at most */

/* The names of spec §2.2, in its order. */
static const char *const slsgroup_keys[SLSGROUP_FIELDS] = {
    "Instance_id", "snid",    "ali-uid", "start",   "end",	 "protocol",  "srcaddr", "srcport",
    "dstaddr",	   "dstport", "packets", "bytes",   "tcp-flags", "tos",	      "inport",	 "outport",
};

struct slsgroup_log {
	Sls__Log log;
	Sls__Log__Content c[SLSGROUP_FIELDS];
	Sls__Log__Content *cp[SLSGROUP_FIELDS];
	char text[SLSGROUP_TEXT_PER_LOG];
};

static void addr_text(const struct flow_key *k, const uint8_t *a, char *out, size_t cap)
{
	if (!inet_ntop(k->af == 6 ? AF_INET6 : AF_INET, a, out, (socklen_t)cap))
		snprintf(out, cap, "?");
}

/* Appends one value to the log's text; the content points at it. */
static char *put(Sls__Log__Content *c, const char *key, char *at, const char *end, const char *v)
{
	size_t n = strnlen(v, (size_t)(end - at));
	memcpy(at, v, n);
	c->key = (ProtobufCBinaryData){strlen(key), (uint8_t *)(uintptr_t)key};
	c->value = (ProtobufCBinaryData){n, (uint8_t *)at};
	return at + n;
}

static void fill_log(struct slsgroup_log *l, const struct slsgroup_meta *m,
		     const struct flow_rec *r)
{
	char v[SLSGROUP_FIELDS][64];
	const struct flow_key *k = &r->key;
	snprintf(v[0], sizeof(v[0]), "%s", m->instance_id);
	snprintf(v[1], sizeof(v[1]), "%s", m->snid);
	snprintf(v[2], sizeof(v[2]), "%s", m->ali_uid);
	snprintf(v[3], sizeof(v[3]), "%" PRId64, r->first_us / 1000000);
	snprintf(v[4], sizeof(v[4]), "%" PRId64, r->last_us / 1000000);
	snprintf(v[5], sizeof(v[5]), "%u", k->proto);
	addr_text(k, k->src, v[6], sizeof(v[6]));
	snprintf(v[7], sizeof(v[7]), "%u", k->sport);
	addr_text(k, k->dst, v[8], sizeof(v[8]));
	snprintf(v[9], sizeof(v[9]), "%u", k->dport);
	snprintf(v[10], sizeof(v[10]), "%" PRIu64, r->packets);
	snprintf(v[11], sizeof(v[11]), "%" PRIu64, r->bytes);
	snprintf(v[12], sizeof(v[12]), "%u", r->tcp_flags);
	snprintf(v[13], sizeof(v[13]), "%u", k->tos);
	snprintf(v[14], sizeof(v[14]), "%u", k->inport);
	snprintf(v[15], sizeof(v[15]), "%u", r->outport);
	sls__log__init(&l->log);
	char *at = l->text, *end = l->text + sizeof(l->text);
	for (size_t i = 0; i < SLSGROUP_FIELDS; i++) {
		sls__log__content__init(&l->c[i]);
		at = put(&l->c[i], slsgroup_keys[i], at, end, v[i]);
		l->cp[i] = &l->c[i];
	}
	l->log.time = (uint32_t)(r->last_us / 1000000);
	l->log.n_contents = SLSGROUP_FIELDS;
	l->log.contents = l->cp;
}

static ProtobufCBinaryData bin(const char *s)
{
	return (ProtobufCBinaryData){strlen(s), (uint8_t *)(uintptr_t)s};
}

int slsgroup_encode(const struct slsgroup_meta *m, const struct flow_rec *r, size_t n,
		    struct buf *out, size_t *raw_len)
{
	if (n == 0 || n > SLSGROUP_MAX_LOGS)
		return -1;
	struct slsgroup_log *logs = xcalloc(n, sizeof(*logs));
	Sls__Log **lp = xcalloc(n, sizeof(*lp));
	for (size_t i = 0; i < n; i++) {
		fill_log(&logs[i], m, &r[i]);
		lp[i] = &logs[i].log;
	}
	Sls__LogTag tag = SLS__LOG_TAG__INIT, *tags[1] = {&tag};
	tag.key = bin(SLSGROUP_PACK_ID_TAG);
	tag.value = bin(m->pack_id);
	Sls__LogGroup g = SLS__LOG_GROUP__INIT;
	g.n_logs = n;
	g.logs = lp;
	g.has_topic = g.has_source = 1;
	g.topic = bin(m->topic);
	g.source = bin(m->source);
	g.n_logtags = 1;
	g.logtags = tags;
	size_t raw = sls__log_group__get_packed_size(&g);
	uint8_t *packed = xmalloc(raw);
	sls__log_group__pack(&g, packed);
	int bound = LZ4_compressBound((int)raw);
	buf_reserve(out, (size_t)bound);
	int z = LZ4_compress_default((const char *)packed, out->p + out->len, (int)raw, bound);
	if (z > 0)
		out->len += (size_t)z;
	free(packed);
	free(lp);
	free(logs);
	*raw_len = raw;
	return z > 0 ? 0 : -1;
}
