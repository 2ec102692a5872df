/* Records to a compressed LogGroup (slsgroup.h). protobuf-c packs each of a
 * record's Contents on its own, framed as a Log's Contents field
 * (LogContents); a Log is its packed Time followed by those framed Contents,
 * laid out with memcpy, and the group is packed from the packed Logs
 * (LogGroupPacked): the bytes are those of packing a LogGroup, but every
 * Content is sized and packed once instead of sized three times over, no Log
 * is packed field by field (that was a third of the encoder), and the three
 * identity Contents, the same in every Log of a group, are packed once per
 * group (sls_logs.proto). A field whose value is one of the last
 * SLSGROUP_WAYS it had reuses that packed Content, so only what is new is
 * formatted (without printf: it was a fifth of the encoder's time) and
 * packed. The packed Logs of a group go one after the other into memory kept
 * from one group to the next (docs/benchmarks.md "Agent delivery"). */
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

/* The names of spec §2.2, in its order. */
static const char *const slsgroup_keys[SLSGROUP_FIELDS] = {
    "Instance_id", "snid",    "ali-uid", "start",   "end",	 "protocol",  "srcaddr", "srcport",
    "dstaddr",	   "dstport", "packets", "bytes",   "tcp-flags", "tos",	      "inport",	 "outport",
};

/* Bytes one packed Log can take, generously: 3 identity Contents of at most
 * SLSGROUP_MAX_ID bytes, 13 of at most an IPv6 address, each with its tags and
 * lengths (its own and its frame's), and the time. The packed Logs of a group
 * are laid out one after the other, each given this much room. */
#define SLSGROUP_LOG_ROOM                                                            \
	(8 + SLSGROUP_IDENTITY * (8 + 16 + SLSGROUP_MAX_ID) +                           \
	 (SLSGROUP_FIELDS - SLSGROUP_IDENTITY) * (8 + 16 + INET6_ADDRSTRLEN))
_Static_assert(SLSGROUP_CONTENT_ROOM >= 8 + 16 + INET6_ADDRSTRLEN, "a packed value Content fits");

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

/* A record's value of one field, comparable: a number, or an address (its
 * family and 16 bytes). */
struct raw_val {
	uint64_t w[3];
};

#define SLSGROUP_SRCADDR 6
#define SLSGROUP_DSTADDR 8

static struct raw_val addr_val(const struct flow_key *k, const uint8_t *a)
{
	struct raw_val v = {{k->af, 0, 0}};
	memcpy(&v.w[1], a, 16);
	return v;
}

/* The record's values in the order of slsgroup_keys (from SLSGROUP_IDENTITY
 * on; the slots before are unused). */
static void raw_values(const struct flow_rec *r, struct raw_val v[SLSGROUP_FIELDS])
{
	const struct flow_key *k = &r->key;
	const uint64_t num[SLSGROUP_FIELDS] = {
	    [3] = (uint64_t)(r->first_us / 1000000), (uint64_t)(r->last_us / 1000000), k->proto, 0,
	    k->sport, 0, k->dport, r->packets, r->bytes, r->tcp_flags, k->tos, k->inport, r->outport};
	for (size_t i = SLSGROUP_IDENTITY; i < SLSGROUP_FIELDS; i++)
		v[i] = (struct raw_val){{num[i], 0, 0}};
	v[SLSGROUP_SRCADDR] = addr_val(k, k->src);
	v[SLSGROUP_DSTADDR] = addr_val(k, k->dst);
}

/* Field i's value as text at `at`; its end. */
static char *put_value(size_t i, const struct raw_val *v, char *at)
{
	if (i != SLSGROUP_SRCADDR && i != SLSGROUP_DSTADDR)
		return str_put_u64(at, v->w[0]);
	uint8_t a[16];
	memcpy(a, &v->w[1], 16);
	return put_addr(&(struct flow_key){.af = (uint8_t)v->w[0]}, a, at);
}

static ProtobufCBinaryData bin(const char *s)
{
	return (ProtobufCBinaryData){strlen(s), (uint8_t *)(uintptr_t)s};
}

/* One Content packed by protobuf-c at out, framed as a Log's Contents field
 * (LogContents); its slice. */
static ProtobufCBinaryData pack_content(const char *key, ProtobufCBinaryData value, uint8_t *out)
{
	Sls__Log__Content c = SLS__LOG__CONTENT__INIT, *cs[1] = {&c};
	c.key = bin(key);
	c.value = value;
	Sls__LogContents l = SLS__LOG_CONTENTS__INIT;
	l.n_contents = 1;
	l.contents = cs;
	return (ProtobufCBinaryData){sls__log_contents__pack(&l, out), out};
}

/* Field i's packed Content for value v: one of the last SLSGROUP_WAYS it
 * packed when v is its value, else v packed into the oldest way. A field
 * takes a few values far more often than it takes new ones (protocol, the
 * well-known port, flags, interfaces, the second a flow started). */
static struct slsgroup_cached *cached(struct slsgroup_field_cache *f, size_t i,
				      const struct raw_val *v)
{
	for (size_t w = 0; w < SLSGROUP_WAYS; w++)
		if (f->way[w].valid && memcmp(f->way[w].v, v->w, sizeof(v->w)) == 0)
			return &f->way[w];
	struct slsgroup_cached *k = &f->way[f->next];
	f->next = (f->next + 1) % SLSGROUP_WAYS;
	char text[INET6_ADDRSTRLEN + STR_U64_MAX];
	char *end = put_value(i, v, text);
	ProtobufCBinaryData val = {(size_t)(end - text), (uint8_t *)text};
	k->len = pack_content(slsgroup_keys[i], val, k->packed).len;
	memcpy(k->v, v->w, sizeof(k->v));
	k->valid = true;
	return k;
}

/* A Log's Time packed (a LogPacked without Contents) at sc->time_packed,
 * kept while the next Log has the same: records closed together end in the
 * same second. */
static ProtobufCBinaryData time_piece(struct slsgroup_scratch *sc, uint32_t time)
{
	if (!sc->time_len || sc->time != time) {
		Sls__LogPacked l = SLS__LOG_PACKED__INIT;
		l.time = time;
		sc->time_len = sls__log_packed__pack(&l, sc->time_packed);
		sc->time = time;
	}
	return (ProtobufCBinaryData){sc->time_len, sc->time_packed};
}

static uint8_t *put(uint8_t *at, const uint8_t *p, size_t len)
{
	memcpy(at, p, len);
	return at + len;
}

/* Record r as one packed Log at out (SLSGROUP_LOG_ROOM bytes); its size. Its
 * Time, then its Contents, each already packed and framed: the identity's
 * (id), the same for every Log of the group, and the others packed when
 * their value is none of the last few the field had (sc->cache, cached). The
 * bytes are those sls__log_packed__pack gives (fields in their numbers'
 * order; test_spool.c holds them to packing the LogGroup). */
static size_t pack_log(const ProtobufCBinaryData id[SLSGROUP_IDENTITY], const struct flow_rec *r,
		       struct slsgroup_scratch *sc, uint8_t *out)
{
	struct raw_val v[SLSGROUP_FIELDS];
	raw_values(r, v);
	ProtobufCBinaryData t = time_piece(sc, (uint32_t)(r->last_us / 1000000));
	uint8_t *at = put(out, t.data, t.len);
	for (size_t i = 0; i < SLSGROUP_IDENTITY; i++)
		at = put(at, id[i].data, id[i].len);
	for (size_t i = SLSGROUP_IDENTITY; i < SLSGROUP_FIELDS; i++) {
		const struct slsgroup_cached *k = cached(&sc->cache[i], i, &v[i]);
		at = put(at, k->packed, k->len);
	}
	return (size_t)(at - out);
}

void slsgroup_scratch_free(struct slsgroup_scratch *sc)
{
	buf_free(&sc->logs);
	buf_free(&sc->refs);
	buf_free(&sc->packed);
}

/* The group's packed Logs in sc->logs, their slices in sc->refs. */
static ProtobufCBinaryData *pack_logs(const struct slsgroup_meta *m, const struct flow_rec *r,
				      size_t n, struct slsgroup_scratch *sc)
{
	uint8_t idbuf[SLSGROUP_IDENTITY][8 + 16 + SLSGROUP_MAX_ID];
	const char *idval[SLSGROUP_IDENTITY] = {m->instance_id, m->snid, m->ali_uid};
	ProtobufCBinaryData id[SLSGROUP_IDENTITY];
	for (size_t i = 0; i < SLSGROUP_IDENTITY; i++)
		id[i] = pack_content(slsgroup_keys[i], bin(idval[i]), idbuf[i]);
	sc->logs.len = sc->refs.len = 0;
	buf_reserve(&sc->logs, n * SLSGROUP_LOG_ROOM);
	buf_reserve(&sc->refs, n * sizeof(ProtobufCBinaryData));
	ProtobufCBinaryData *refs = (ProtobufCBinaryData *)(void *)sc->refs.p;
	uint8_t *at = (uint8_t *)sc->logs.p;
	for (size_t i = 0; i < n; i++) {
		refs[i] = (ProtobufCBinaryData){pack_log(id, &r[i], sc, at), at};
		at += refs[i].len;
	}
	return refs;
}

int slsgroup_encode(const struct slsgroup_meta *m, const struct flow_rec *r, size_t n,
		    struct slsgroup_scratch *sc, struct buf *out, size_t *raw_len)
{
	if (n == 0 || n > SLSGROUP_MAX_LOGS)
		return -1;
	Sls__LogTag tag = SLS__LOG_TAG__INIT, *tags[1] = {&tag};
	tag.key = bin(SLSGROUP_PACK_ID_TAG);
	tag.value = bin(m->pack_id);
	Sls__LogGroupPacked g = SLS__LOG_GROUP_PACKED__INIT;
	g.n_logs = n;
	g.logs = pack_logs(m, r, n, sc);
	g.has_topic = g.has_source = 1;
	g.topic = bin(m->topic);
	g.source = bin(m->source);
	g.n_logtags = 1;
	g.logtags = tags;
	size_t raw = sls__log_group_packed__get_packed_size(&g);
	if (raw > SLSGROUP_MAX_RAW)
		return -1;
	sc->packed.len = 0;
	buf_reserve(&sc->packed, raw);
	uint8_t *packed = (uint8_t *)sc->packed.p;
	sls__log_group_packed__pack(&g, packed);
	int bound = LZ4_compressBound((int)raw);
	buf_reserve(out, (size_t)bound);
	int z = LZ4_compress_default((const char *)packed, out->p + out->len, (int)raw, bound);
	if (z > 0)
		out->len += (size_t)z;
	*raw_len = raw;
	return z > 0 ? 0 : -1;
}
