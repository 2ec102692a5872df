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
#include "sls/body.h"
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

/* The same, a log at a time: each log's keys and values are copied when it
 * is added, so a LogGroup can be decoded Log by Log (sls_logs_get) and
 * nothing of it kept. Blocks come out byte for byte as block_encode writes
 * them. */
struct block_enc;
struct block_enc *block_enc_new(void);
void block_enc_free(struct block_enc *e); /* NULL is a no-op */
/* Adds a log of nc contents (k[i], v[i]; a key given twice keeps its last
 * value). known: bit c (c < 64) when k[c] is, byte for byte, key c of the log
 * added just before (it is not compared again); 0 when nothing is known. 1,
 * adding nothing, when the block is full (BLOCK_MAX_CELLS): finish it and add
 * the log again. Never 1 on an empty block. */
int block_enc_add(struct block_enc *e, const struct str *k, const struct str *v, size_t nc,
		  uint64_t known, uint32_t time, bool has_ns, uint32_t ns);
size_t block_enc_logs(const struct block_enc *e); /* logs added since the last finish */
/* The block of those logs, as block_encode writes it; e is then empty again. */
void block_enc_finish(struct block_enc *e, struct buf *out, struct buf *counts, uint32_t *tmin,
		      uint32_t *tmax);

/* One encoded block of block_encode_logs, handed over to emit (which takes data and counts). */
struct block_out {
	struct buf data, counts;
	size_t n;
	uint32_t tmin, tmax;
};

/* Every log of s (sls_logs_open), decoded one at a time, stamped with the nf
 * fields f (sls_log_stamped), encoded into blocks: emit(b, arg) for each, in
 * order. SLS_ERR_OK, or the first bad log's error and its detail (blocks
 * already emitted stay the caller's to free). */
enum sls_err block_encode_logs(struct sls_logs *s, const struct sls_field *f, size_t nf,
			       void (*emit)(struct block_out *b, void *arg), void *arg,
			       const char **detail);

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
