/* The PutLogs body path on arbitrary bytes: byte 0 picks the compression
 * (none, lz4, deflate, zstd), bytes 1-3 the claimed x-log-bodyrawsize (24-bit,
 * so claims past the 10 MB limit are exercised too), the rest is the body. A
 * LogGroup that decodes is then written as blocks and read back: every log
 * must come back with its time and values; then a device's identity is
 * stamped into it (sls_loggroup_stamp) and it must round-trip again. The
 * log store's own path, Log by Log (sls_logs_open, block_encode_logs), must
 * accept exactly the bodies the whole-group decoder accepts and write the
 * same blocks byte for byte, stamped and not. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logstore/block.h"
#include "sls/body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The value of key k in log l as the block must keep it: the last one. */
static const ProtobufCBinaryData *last_value(const Sls__Log *l, struct str k)
{
	const ProtobufCBinaryData *v = NULL;
	for (size_t c = 0; c < l->n_contents; c++)
		if (str_eq(sls_pb_str(l->contents[c]->key), k))
			v = &l->contents[c]->value;
	return v;
}

/* Every log of [from, to) as the block holds it: its time, and each key's
 * value byte for byte (absent where the log has none). */
static void check_block(const Sls__LogGroup *g, size_t from, size_t to, struct block *b)
{
	if (b->n != to - from)
		abort();
	for (size_t i = 0; i < b->n; i++) {
		const Sls__Log *l = g->logs[from + i];
		if (b->time[i] != l->time)
			abort();
		for (size_t c = 0; c < l->n_contents; c++) {
			struct str k = sls_pb_str(l->contents[c]->key);
			size_t col = 0;
			while (col < b->nkeys && !str_eq(b->keys[col], k))
				col++;
			if (col == b->nkeys)
				abort();
		}
		for (size_t col = 0; col < b->nkeys; col++) {
			const ProtobufCBinaryData *v = last_value(l, b->keys[col]);
			struct str got = block_value(b, i, col);
			if (!v != !got.p || (v && !str_eq(got, sls_pb_str(*v))))
				abort();
		}
	}
}

struct count_check {
	const Sls__LogGroup *g;
	size_t from, to, total;
	int64_t prev;
};

static void count_second(uint32_t t, uint64_t n, void *arg)
{
	struct count_check *c = arg;
	uint64_t want = 0;
	for (size_t i = c->from; i < c->to; i++)
		want += c->g->logs[i]->time == t;
	if ((int64_t)t <= c->prev || n != want || n == 0)
		abort();
	c->prev = t;
	c->total += n;
}

/* The rollup: each second once, ascending, with as many logs as it has. */
static void check_counts(const Sls__LogGroup *g, size_t from, size_t to, struct str counts,
			 uint32_t tmin)
{
	struct count_check c = {g, from, to, 0, -1};
	if (block_counts_each(counts, tmin, count_second, &c) != 0 || c.total != to - from)
		abort();
}

static void roundtrip(const Sls__LogGroup *g)
{
	struct buf out = {0}, counts = {0};
	for (size_t from = 0, to; from < g->n_logs; from = to) {
		uint32_t tmin, tmax;
		struct block b;
		block_encode(g, from, &to, &out, &counts, &tmin, &tmax);
		if (to <= from || block_decode((struct str){out.p, out.len}, &b) != 0)
			abort();
		check_block(g, from, to, &b);
		if (b.corrupt)
			abort();
		check_counts(g, from, to, (struct str){counts.p, counts.len}, tmin);
		block_free(&b);
	}
	buf_free(&out);
	buf_free(&counts);
}

static const struct sls_field fuzz_stamp[] = {{STR_LIT("Instance_id"), STR_LIT("sag-fuzz")},
					       {STR_LIT("snid"), STR_LIT("SN-FUZZ")},
					       {STR_LIT("ali-uid"), STR_LIT("42")}};

/* A device's identity stamped over whatever the group said: each log then has
 * each field exactly once, with the server's value. */
static void stamp_check(Sls__LogGroup *g)
{
	const struct sls_field *f = fuzz_stamp;
	sls_loggroup_stamp(g, f, 3);
	for (size_t i = 0; i < g->n_logs; i++)
		for (size_t k = 0; k < 3; k++) {
			size_t seen = 0;
			for (size_t c = 0; c < g->logs[i]->n_contents; c++)
				if (str_eq(sls_pb_str(g->logs[i]->contents[c]->key), f[k].key)) {
					seen++;
					if (!str_eq(sls_pb_str(g->logs[i]->contents[c]->value), f[k].value))
						abort();
				}
			if (seen != 1)
				abort();
		}
}

struct stream_check {
	const Sls__LogGroup *g;
	size_t from;
};

/* Each streamed block equals block_encode's of the same logs. */
static void same_block(struct block_out *b, void *arg)
{
	struct stream_check *c = arg;
	struct buf out = {0}, counts = {0};
	uint32_t tmin, tmax;
	size_t to;
	block_encode(c->g, c->from, &to, &out, &counts, &tmin, &tmax);
	if (to - c->from != b->n || tmin != b->tmin || tmax != b->tmax || out.len != b->data.len ||
	    memcmp(out.p, b->data.p, out.len) || counts.len != b->counts.len ||
	    memcmp(counts.p, b->counts.p, counts.len))
		abort();
	c->from = to;
	buf_free(&out);
	buf_free(&counts);
	buf_free(&b->data);
	buf_free(&b->counts);
}

static void drop_block(struct block_out *b, void *arg)
{
	buf_free(&b->data);
	buf_free(&b->counts);
}

/* raw through the Log-by-Log path: the same verdict as sls_loggroup_decode
 * (ok), and, when it decoded, the blocks of g (stamped or not, as g is). Past
 * a sixteenth of the decode budget in raw bytes, the whole group may exceed
 * the budget where one Log at a time does not: only then may the Log-by-Log
 * path accept what the other refused. */
static void stream_check(struct str raw, bool ok, const Sls__LogGroup *g, size_t nf)
{
	struct sls_logs *s = NULL;
	const char *detail;
	enum sls_err e = sls_logs_open(raw, &s, &detail);
	struct stream_check c = {g, 0};
	if (e == SLS_ERR_OK)
		e = ok ? block_encode_logs(s, fuzz_stamp, nf, same_block, &c, &detail)
		       : block_encode_logs(s, fuzz_stamp, nf, drop_block, NULL, &detail);
	bool budget = raw.len > SLS_DECODE_MEMORY_MAX / 16;
	if ((ok && e != SLS_ERR_OK) || (!ok && e == SLS_ERR_OK && !budget) ||
	    (ok && c.from != g->n_logs))
		abort();
	sls_logs_free(s);
}

static void count_any(uint32_t t, uint64_t n, void *arg)
{
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	enum sls_compress c = (enum sls_compress)(data[0] % 4);
	char rawsize[16];
	snprintf(rawsize, sizeof(rawsize), "%u", (unsigned)data[1] << 16 | (unsigned)data[2] << 8 | data[3]);
	struct str body = {(const char *)data + 4, size - 4}, raw;
	char *owned = NULL;
	const char *detail;
	Sls__LogGroup *g = NULL;
	if (sls_body_raw(c, body, str_c(rawsize), &raw, &owned, &detail) == SLS_ERR_OK) {
		bool ok = sls_loggroup_decode(raw, &g, &detail) == SLS_ERR_OK;
		stream_check(raw, ok, g, 0);
		if (ok) {
			roundtrip(g);
			stamp_check(g);
			roundtrip(g);
			stream_check(raw, ok, g, 3);
		}
	}
	sls_loggroup_free(g);
	free(owned);
	/* A block decoder fed the same bytes must refuse or decode, never crash. */
	struct block b;
	if (block_decode(body, &b) == 0) {
		block_load_all(&b);
		block_free(&b);
	}
	block_counts_each(body, 0, count_any, NULL);
	return 0;
}
