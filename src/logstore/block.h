/* A block: up to SLS_MAX_LOGS_PER_GROUP logs of one LogGroup, stored as one
 * SQLite row. Inside, the logs are laid out by column (every log's value of
 * key 1, then key 2, ...) and the whole is compressed with zstd: values of one
 * key look alike, so they compress together, and a reader that needs two
 * columns of a million rows will not have to touch the other fourteen once
 * columns get frames of their own (docs/logstore.md, "Layout").
 *
 * Payload (before zstd), all integers LEB128 varints:
 *   "B1" n nkeys has_ns  key*nkeys(len bytes)  time*n  [ns*n]
 *   for each key, for each log: 0 (absent) or len+1, then len bytes.
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
	struct str *keys; /* nkeys */
	uint32_t *time;   /* n */
	uint32_t *ns;     /* n, or NULL when no log had TimeNs */
	struct str *vals; /* n * nkeys, row-major: vals[i * nkeys + k]; .p NULL = absent */
	char *raw;        /* the decompressed payload the slices point into */
};

/* Encodes logs [from, *to) of g into out (compressed), stopping early at
 * BLOCK_MAX_CELLS: *to is set to the first log not encoded (at least one more
 * than from). tmin/tmax: the logs' time range. */
void block_encode(const Sls__LogGroup *g, size_t from, size_t *to, struct buf *out,
		  uint32_t *tmin, uint32_t *tmax);

/* 0, or -1 when data is not a block (corrupt file): b is then empty. */
int block_decode(struct str data, struct block *b);
void block_free(struct block *b);

#endif
