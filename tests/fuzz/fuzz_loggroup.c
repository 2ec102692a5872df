/* The PutLogs body path on arbitrary bytes: byte 0 picks the compression
 * (none, lz4, deflate, zstd), bytes 1-3 the claimed x-log-bodyrawsize (24-bit,
 * so claims past the 10 MB limit are exercised too), the rest is the body. A
 * LogGroup that decodes is then written as blocks and read back: every log
 * must come back with its time and values; then a device's identity is
 * stamped into it (sls_loggroup_stamp) and it must round-trip again. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "logstore/block.h"
#include "sls/body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every log of [from, to) as the block holds it. */
static void check_block(const Sls__LogGroup *g, size_t from, size_t to, const struct block *b)
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
			if (col == b->nkeys || !b->vals[i * b->nkeys + col].p)
				abort();
		}
	}
}

static void roundtrip(const Sls__LogGroup *g)
{
	struct buf out = {0};
	for (size_t from = 0, to; from < g->n_logs; from = to) {
		uint32_t tmin, tmax;
		struct block b;
		block_encode(g, from, &to, &out, &tmin, &tmax);
		if (to <= from || block_decode((struct str){out.p, out.len}, &b) != 0)
			abort();
		check_block(g, from, to, &b);
		block_free(&b);
	}
	buf_free(&out);
}

/* A device's identity stamped over whatever the group said: each log then has
 * each field exactly once, with the server's value. */
static void stamp_check(Sls__LogGroup *g)
{
	static const struct sls_field f[] = {{STR_LIT("Instance_id"), STR_LIT("sag-fuzz")},
					     {STR_LIT("snid"), STR_LIT("SN-FUZZ")},
					     {STR_LIT("ali-uid"), STR_LIT("42")}};
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
	if (sls_body_raw(c, body, str_c(rawsize), &raw, &owned, &detail) == SLS_ERR_OK &&
	    sls_loggroup_decode(raw, &g, &detail) == SLS_ERR_OK) {
		roundtrip(g);
		stamp_check(g);
		roundtrip(g);
	}
	sls_loggroup_free(g);
	free(owned);
	/* A block decoder fed the same bytes must refuse or decode, never crash. */
	struct block b;
	if (block_decode(body, &b) == 0)
		block_free(&b);
	return 0;
}
