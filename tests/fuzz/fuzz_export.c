/* Encode-then-decode round trip of each exporter: arbitrary bytes become flow
 * records, the pure encoder writes a datagram, and an independent reader here
 * (templates taken from the message itself when present) must get every
 * record back field for field. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "export/exporter.h"
#include "export/ipfix.h"
#include "export/nf5.h"
#include "export/nf9.h"
#include "export/nftmpl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_REC_BYTES 64
#define FUZZ_MAX_RECS 64
#define FUZZ_MAX_FIELDS 32
#define FUZZ_BASE_US 1600000000000000LL

#define CHECK(x)                     \
	do {                         \
		if (!(x))            \
			__builtin_trap(); \
	} while (0)

static uint64_t rd(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static void make_record(const uint8_t *b, struct flow_rec *r, bool v5)
{
	memset(r, 0, sizeof(*r));
	r->key.af = (b[0] & 1) && !v5 ? 6 : 4;
	memcpy(r->key.src, b + 1, r->key.af == 6 ? 16 : 4);
	memcpy(r->key.dst, b + 17, r->key.af == 6 ? 16 : 4);
	r->key.sport = (uint16_t)rd(b + 33, 2);
	r->key.dport = (uint16_t)rd(b + 35, 2);
	r->key.proto = b[37];
	r->key.tos = b[38];
	r->tcp_flags = b[39];
	r->key.inport = (uint16_t)rd(b + 40, 2);
	r->outport = (uint16_t)rd(b + 42, 2);
	r->end = b[44] % FLOW_END_COUNT;
	/* Whole milliseconds after the base, so the ms encodings are exact. */
	r->first_us = FUZZ_BASE_US + (int64_t)(rd(b + 45, 3) * 1000);
	r->last_us = r->first_us + (int64_t)(rd(b + 48, 2) * 1000);
	r->packets = rd(b + 50, v5 ? 4 : 7);
	r->bytes = rd(b + 57, v5 ? 4 : 7);
}

struct tmpl {
	uint16_t id, n;
	uint16_t type[FUZZ_MAX_FIELDS], len[FUZZ_MAX_FIELDS];
};

static void check_field(const struct flow_rec *r, uint16_t type, const uint8_t *p, uint16_t len)
{
	size_t alen = r->key.af == 6 ? 16 : 4;
	switch (type) {
	case 1: CHECK(rd(p, len) == r->bytes); break;
	case 2: CHECK(rd(p, len) == r->packets); break;
	case 4: CHECK(p[0] == r->key.proto); break;
	case 5: CHECK(p[0] == r->key.tos); break;
	case 6: CHECK(p[0] == r->tcp_flags); break;
	case 7: CHECK(rd(p, len) == r->key.sport); break;
	case 11: CHECK(rd(p, len) == r->key.dport); break;
	case 10: CHECK(rd(p, len) == r->key.inport); break;
	case 14: CHECK(rd(p, len) == r->outport); break;
	case 8: case 27: CHECK(len == alen && memcmp(p, r->key.src, alen) == 0); break;
	case 12: case 28: CHECK(len == alen && memcmp(p, r->key.dst, alen) == 0); break;
	case 152: CHECK(rd(p, len) == (uint64_t)(r->first_us / 1000)); break;
	case 153: CHECK(rd(p, len) == (uint64_t)(r->last_us / 1000)); break;
	case 136: CHECK(p[0] == flow_end_ie((enum flow_end)r->end)); break;
	default: CHECK(0);
	}
}

/* Walks the sets of a V9 (hdr 20) or IPFIX (hdr 16) message; returns the
 * number of flow records checked. */
static size_t read_sets(const uint8_t *p, size_t len, size_t hdr, const struct flow_rec *recs, size_t n)
{
	struct tmpl t[2], known[2];
	int have = 0;
	size_t k = 0;
	/* Without templates in the message, the reader uses the layouts a
	 * collector would have learned from an earlier message. */
	for (int i = 0; i < 2; i++) {
		const struct nftmpl_field *f = nftmpl_fields(i ? 6 : 4);
		known[i].id = (uint16_t)(256 + i);
		known[i].n = NFTMPL_FIELDS;
		for (int j = 0; j < NFTMPL_FIELDS; j++) {
			known[i].type[j] = f[j].id;
			known[i].len[j] = f[j].len;
		}
	}
	for (size_t off = hdr; off < len;) {
		CHECK(len - off >= 4);
		uint16_t id = (uint16_t)rd(p + off, 2), slen = (uint16_t)rd(p + off + 2, 2);
		CHECK(slen >= 4 && slen <= len - off);
		if (id == 0 || id == 2) {
			size_t q = off + 4;
			for (int i = 0; i < 2; i++) {
				t[i].id = (uint16_t)rd(p + q, 2);
				t[i].n = (uint16_t)rd(p + q + 2, 2);
				CHECK(t[i].n <= FUZZ_MAX_FIELDS);
				q += 4;
				for (uint16_t f = 0; f < t[i].n; f++, q += 4) {
					t[i].type[f] = (uint16_t)rd(p + q, 2);
					t[i].len[f] = (uint16_t)rd(p + q + 2, 2);
				}
			}
			CHECK(q == off + slen);
			have = 1;
		} else if (id == 256 || id == 257) {
			size_t q = off + 4;
			while (q < off + slen) {
				CHECK(k < n);
				const struct flow_rec *r = &recs[k++];
				CHECK((id == 257) == (r->key.af == 6));
				const struct tmpl *tt = have ? &t[id - 256] : &known[id - 256];
				for (uint16_t f = 0; f < tt->n; f++) {
					check_field(r, tt->type[f], p + q, tt->len[f]);
					q += tt->len[f];
				}
			}
			CHECK(q == off + slen);
		}
		off += slen;
	}
	return k;
}

static void round_trip_v5(const struct flow_rec *r, size_t n)
{
	uint8_t buf[EXPORT_MAX_DATAGRAM];
	if (n > NF5_MAX_RECORDS)
		n = NF5_MAX_RECORDS;
	struct nf5_header h = {FUZZ_BASE_US + 5000000000LL, FUZZ_BASE_US, 17, 0, 1, 0};
	size_t len = nf5_encode(&h, r, n, buf, sizeof(buf));
	if (n == 0) {
		CHECK(len == 0);
		return;
	}
	CHECK(len == NF5_HDR_LEN + n * NF5_REC_LEN);
	CHECK(rd(buf + 2, 2) == n);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *q = buf + NF5_HDR_LEN + i * NF5_REC_LEN;
		CHECK(memcmp(q, r[i].key.src, 4) == 0 && memcmp(q + 4, r[i].key.dst, 4) == 0);
		CHECK(rd(q + 16, 4) == r[i].packets && rd(q + 20, 4) == r[i].bytes);
		CHECK(rd(q + 24, 4) == (uint64_t)((r[i].first_us - FUZZ_BASE_US) / 1000));
		CHECK(rd(q + 32, 2) == r[i].key.sport && rd(q + 34, 2) == r[i].key.dport);
		CHECK(q[37] == r[i].tcp_flags && q[38] == r[i].key.proto && q[39] == r[i].key.tos);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	int version = data[0] % 3;
	bool templates = data[1] & 1;
	struct flow_rec recs[FUZZ_MAX_RECS];
	memset(recs, 0, sizeof(recs)); /* -O3 cannot see that only recs[0..n) is read */
	size_t n = 0;
	for (size_t off = 2; off + FUZZ_REC_BYTES <= size && n < FUZZ_MAX_RECS; off += FUZZ_REC_BYTES)
		make_record(data + off, &recs[n++], version == 0);
	if (version == 0) {
		round_trip_v5(recs, n);
		return 0;
	}
	uint8_t buf[EXPORT_MAX_DATAGRAM];
	size_t done = 0;
	uint32_t seq = 0;
	/* Encode everything, datagram after datagram, as the exporter would. */
	do {
		size_t used = 0, len;
		if (version == 1) {
			struct nf9_msg m = {FUZZ_BASE_US, FUZZ_BASE_US, seq, 3, 1, templates};
			len = nf9_encode(&m, recs + done, n - done, &used, buf, sizeof(buf));
			CHECK(len >= NF9_HDR_LEN && len <= sizeof(buf));
			CHECK(read_sets(buf, len, NF9_HDR_LEN, recs + done, used) == used);
		} else {
			struct ipfix_msg m = {FUZZ_BASE_US, FUZZ_BASE_US, seq, 3, 1, templates};
			len = ipfix_encode(&m, recs + done, n - done, &used, buf, sizeof(buf));
			CHECK(len >= IPFIX_HDR_LEN && len <= sizeof(buf) && rd(buf + 2, 2) == len);
			CHECK(read_sets(buf, len, IPFIX_HDR_LEN, recs + done, used) == used);
		}
		CHECK(used > 0 || n == done);
		done += used;
		seq++;
	} while (done < n);
	return 0;
}
