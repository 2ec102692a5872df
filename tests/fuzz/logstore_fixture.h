/* A tiny in-memory logstore for the query tests and fuzz targets: one block
 * of LSFIX_N SAG flow records at times LSFIX_T0 + i, with values computed
 * from i so a test can compute every answer itself. */
#ifndef TESTS_LOGSTORE_FIXTURE_H
#define TESTS_LOGSTORE_FIXTURE_H
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "logstore/block.h"
#include "logstore/ldata.h"
#include "logstore/sql.h"

#define LSFIX_N 64
#define LSFIX_T0 1000
#define LSFIX_KEYS 6

struct lsfix {
	char vals[LSFIX_N][LSFIX_KEYS][24];
	Sls__Log__Content content[LSFIX_N][LSFIX_KEYS];
	Sls__Log__Content *cptr[LSFIX_N][LSFIX_KEYS];
	Sls__Log log[LSFIX_N];
	Sls__Log *lptr[LSFIX_N];
	Sls__LogGroup g;
	struct buf data, counts;
	struct ldata_block block;
	struct sql_memory mem;
};

static const char *const lsfix_keys[LSFIX_KEYS] = {"srcaddr", "dstport", "bytes", "protocol",
						    "start", "end"};

/* srcaddr 10.0.0.(i%4), dstport 80 or 443 (i odd), bytes 100*(i+1), protocol 6
 * or 17 (i%3==0), start i, end i+10. */
static inline void lsfix_value(int i, int k, char *out, size_t cap)
{
	switch (k) {
	case 0: snprintf(out, cap, "10.0.0.%d", i % 4); break;
	case 1: snprintf(out, cap, "%d", i % 2 ? 443 : 80); break;
	case 2: snprintf(out, cap, "%d", 100 * (i + 1)); break;
	case 3: snprintf(out, cap, "%d", i % 3 ? 6 : 17); break;
	case 4: snprintf(out, cap, "%d", i); break;
	default: snprintf(out, cap, "%d", i + 10); break;
	}
}

static inline void lsfix_init(struct lsfix *f)
{
	memset(f, 0, sizeof(*f));
	f->g = (Sls__LogGroup)SLS__LOG_GROUP__INIT;
	for (int i = 0; i < LSFIX_N; i++) {
		f->log[i] = (Sls__Log)SLS__LOG__INIT;
		f->log[i].time = LSFIX_T0 + (uint32_t)i;
		for (int k = 0; k < LSFIX_KEYS; k++) {
			lsfix_value(i, k, f->vals[i][k], sizeof(f->vals[i][k]));
			f->content[i][k] = (Sls__Log__Content)SLS__LOG__CONTENT__INIT;
			f->content[i][k].key = (ProtobufCBinaryData){strlen(lsfix_keys[k]),
								     (uint8_t *)(uintptr_t)lsfix_keys[k]};
			f->content[i][k].value = (ProtobufCBinaryData){strlen(f->vals[i][k]),
								       (uint8_t *)f->vals[i][k]};
			f->cptr[i][k] = &f->content[i][k];
		}
		f->log[i].n_contents = LSFIX_KEYS;
		f->log[i].contents = f->cptr[i];
		f->lptr[i] = &f->log[i];
	}
	f->g.n_logs = LSFIX_N;
	f->g.logs = f->lptr;
	size_t to;
	uint32_t tmin, tmax;
	block_encode(&f->g, 0, &to, &f->data, &f->counts, &tmin, &tmax);
	f->block = (struct ldata_block){.part = 0, .id = 1, .t_min = tmin, .t_max = tmax,
					.topic = STR_LIT("flowlog"), .source = STR_LIT("10.9.9.9"),
					.tags = {"", 0}, .data = {f->data.p, f->data.len},
					.counts = {f->counts.p, f->counts.len}};
	f->mem = (struct sql_memory){&f->block, 1};
}

static inline void lsfix_free(struct lsfix *f)
{
	buf_free(&f->data);
	buf_free(&f->counts);
}

/* One ldata_put, waited for (polling: the writer answers on its own thread);
 * pack_id "" for none. */
struct lsfix_put_wait {
	struct ldata_put p;
	enum ldata_rc rc;
	int done;
};

static inline void lsfix_put_done(struct ldata_put *p, enum ldata_rc rc)
{
	struct lsfix_put_wait *w = (struct lsfix_put_wait *)p;
	w->rc = rc;
	__atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
}

static inline enum ldata_rc lsfix_put(struct ldata *d, int64_t logstore, const Sls__LogGroup *g,
				      int64_t received_s, const char *pack_id)
{
	struct lsfix_put_wait w = {.p = {.logstore = logstore,
					 .g = g,
					 .received_s = received_s,
					 .pack_id = str_c(pack_id),
					 .raw_bytes = 1,
					 .done = lsfix_put_done}};
	ldata_put(d, &w.p);
	while (!__atomic_load_n(&w.done, __ATOMIC_SEQ_CST))
		usleep(100);
	return w.rc;
}

#endif
