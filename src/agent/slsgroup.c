/* Records to a compressed LogGroup (slsgroup.h). The values of one Log are
 * formatted into one fixed buffer per record, and protobuf-c's structs point
 * into it; the three identity values, the same in every Log of a group, point
 * at the caller's strings. One allocation per group for the structs and the
 * text, whatever the number of records, and no printf: it was a fifth of the
 * encoder's time (docs/benchmarks.md "Agent delivery"). */
#include "agent/slsgroup.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "sls/sls_logs.pb-c.h"

#define SLSGROUP_IDENTITY 3 /* Instance_id, snid, ali-uid: the group's, not the record's */
/* The formatted values of one record: two addresses and eleven numbers. */
#define SLSGROUP_TEXT_PER_LOG (2 * INET6_ADDRSTRLEN + 11 * STR_U64_MAX)

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

/* IPv4 by hand: glibc's inet_ntop formats it with sprintf. */
static char *put_addr(const struct flow_key *k, const uint8_t *a, char *at)
{
	if (k->af != 6) {
		for (int i = 0; i < 4; i++) {
			at = str_put_u64(at, a[i]);
			*at++ = '.';
		}
		return at - 1;
	}
	if (!inet_ntop(AF_INET6, a, at, INET6_ADDRSTRLEN))
		memcpy(at, "?", 2);
	return at + strnlen(at, INET6_ADDRSTRLEN);
}

/* The record's values in the order of slsgroup_keys, from SLSGROUP_IDENTITY
 * on; each entry's end is the next one's start. */
static void put_values(const struct flow_rec *r, char *at, char *ends[SLSGROUP_FIELDS])
{
	const struct flow_key *k = &r->key;
	const uint64_t num[] = {(uint64_t)(r->first_us / 1000000), (uint64_t)(r->last_us / 1000000),
				k->proto};
	size_t f = SLSGROUP_IDENTITY;
	for (size_t i = 0; i < sizeof(num) / sizeof(num[0]); i++)
		ends[f++] = at = str_put_u64(at, num[i]);
	ends[f++] = at = put_addr(k, k->src, at);
	ends[f++] = at = str_put_u64(at, k->sport);
	ends[f++] = at = put_addr(k, k->dst, at);
	const uint64_t tail[] = {k->dport, r->packets, r->bytes, r->tcp_flags, k->tos, k->inport,
				 r->outport};
	for (size_t i = 0; i < sizeof(tail) / sizeof(tail[0]); i++)
		ends[f++] = at = str_put_u64(at, tail[i]);
}

static ProtobufCBinaryData bin(const char *s)
{
	return (ProtobufCBinaryData){strlen(s), (uint8_t *)(uintptr_t)s};
}

static void fill_log(struct slsgroup_log *l, const ProtobufCBinaryData id[SLSGROUP_IDENTITY],
		     const struct flow_rec *r)
{
	char *ends[SLSGROUP_FIELDS];
	put_values(r, l->text, ends);
	sls__log__init(&l->log);
	char *at = l->text;
	for (size_t i = 0; i < SLSGROUP_FIELDS; i++) {
		Sls__Log__Content *c = &l->c[i];
		sls__log__content__init(c);
		c->key = bin(slsgroup_keys[i]);
		if (i < SLSGROUP_IDENTITY) {
			c->value = id[i];
		} else {
			c->value = (ProtobufCBinaryData){(size_t)(ends[i] - at), (uint8_t *)at};
			at = ends[i];
		}
		l->cp[i] = c;
	}
	l->log.time = (uint32_t)(r->last_us / 1000000);
	l->log.n_contents = SLSGROUP_FIELDS;
	l->log.contents = l->cp;
}

void slsgroup_scratch_free(struct slsgroup_scratch *sc)
{
	buf_free(&sc->structs);
	buf_free(&sc->packed);
}

int slsgroup_encode(const struct slsgroup_meta *m, const struct flow_rec *r, size_t n,
		    struct slsgroup_scratch *sc, struct buf *out, size_t *raw_len)
{
	if (n == 0 || n > SLSGROUP_MAX_LOGS)
		return -1;
	_Static_assert(sizeof(struct slsgroup_log) % sizeof(void *) == 0, "the pointers follow");
	sc->structs.len = 0;
	buf_reserve(&sc->structs, n * (sizeof(struct slsgroup_log) + sizeof(Sls__Log *)));
	struct slsgroup_log *logs = (struct slsgroup_log *)(void *)sc->structs.p;
	Sls__Log **lp = (Sls__Log **)(void *)(logs + n);
	const ProtobufCBinaryData id[SLSGROUP_IDENTITY] = {bin(m->instance_id), bin(m->snid),
							   bin(m->ali_uid)};
	for (size_t i = 0; i < n; i++) {
		fill_log(&logs[i], id, &r[i]);
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
	sc->packed.len = 0;
	buf_reserve(&sc->packed, raw);
	uint8_t *packed = (uint8_t *)sc->packed.p;
	sls__log_group__pack(&g, packed);
	int bound = LZ4_compressBound((int)raw);
	buf_reserve(out, (size_t)bound);
	int z = LZ4_compress_default((const char *)packed, out->p + out->len, (int)raw, bound);
	if (z > 0)
		out->len += (size_t)z;
	*raw_len = raw;
	return z > 0 ? 0 : -1;
}
