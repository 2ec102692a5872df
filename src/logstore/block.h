/* A block: up to SLS_MAX_LOGS_PER_GROUP logs of one LogGroup, stored as one
 * SQLite row. Inside, the logs are laid out by column, and each column is
 * its own zstd frame: values of one key look alike, so they compress
 * together, and a query that reads two columns of ten million rows
 * decompresses those two and not the other fourteen (docs/logstore.md,
 * "Layout").
 *
 * Format B2, all integers LEB128 varints:
 *   "B2" hlen zstd(header) zstd(column 1) ... zstd(column nkeys)
 *   header: n nkeys has_ns  key*nkeys(len bytes)  time*n  [ns*n]  flen*nkeys
 *   column: for each log, 0 (absent) or len+1, then len bytes.
 * Format B1 (blocks stored before B2, still read): one zstd frame of
 *   "B1" and the header without flen, then every column.
 * A key that occurs twice in one log keeps its last value. */
#ifndef LOGSTORE_BLOCK_H
#define LOGSTORE_BLOCK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "sls/sls_logs.pb-c.h"

#define BLOCK_MAX_CELLS (1u << 20)   /* logs x distinct keys of one block */
#define BLOCK_MAX_RAW (24u << 20)    /* decompressed payload bytes a block may claim */
#define BLOCK_ZSTD_LEVEL 1           /* fast: ingest-bound, and zstd -1 already finds the repeats */

struct block {
	size_t n, nkeys;
	struct str *keys;   /* nkeys */
	uint32_t *time;     /* n */
	uint32_t *ns;       /* n, or NULL when no log had TimeNs */
	struct str **col;   /* nkeys: column k's n values (.p NULL = absent), NULL until decoded */
	char **colraw;      /* nkeys: the decompressed columns col[k] points into */
	struct str *frame;  /* nkeys: B2 column frames, slices of the data given to block_decode */
	char *raw;          /* the decompressed header (B2) or payload (B1) */
	bool corrupt;       /* a column's frame did not decode: its values read as absent */
};

/* Encodes logs [from, *to) of g into out (compressed), stopping early at
 * BLOCK_MAX_CELLS: *to is set to the first log not encoded (at least one more
 * than from). tmin/tmax: the logs' time range. counts: the block's rollup, how
 * many logs it has in each second (block_counts_each), stored beside the
 * block so GetHistograms need not decode it: per second, because every
 * histogram bucket and [from, to) are whole seconds, so it is exact for all. */
void block_encode(const Sls__LogGroup *g, size_t from, size_t *to, struct buf *out,
		  struct buf *counts, uint32_t *tmin, uint32_t *tmax);

/* Calls fn(second, logs) for each second of a rollup, ascending; -1 if malformed. */
int block_counts_each(struct str counts, uint32_t tmin,
		      void (*fn)(uint32_t t, uint64_t n, void *arg), void *arg);

/* 0, or -1 when data is not a block (corrupt file): b is then empty. The
 * columns of a B2 block are decoded on first use (block_value), from data,
 * which must then stay valid until block_free or block_load_all. */
int block_decode(struct str data, struct block *b);
void block_column(struct block *b, size_t k); /* decodes column k now */
void block_load_all(struct block *b);         /* every column: data is no longer needed */
void block_free(struct block *b);

/* The value of key k in log i (.p NULL = absent). */
static inline struct str block_value(struct block *b, size_t i, size_t k)
{
	if (!b->col[k])
		block_column(b, k);
	return b->col[k][i];
}

#endif
