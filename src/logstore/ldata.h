/* The logs themselves: one directory per logstore under --logs-dir, one SQLite
 * file per day of arrival in it (DIR/<logstore id>/YYYYMMDD.db), each holding
 * blocks (logstore/block.h) and the pack ids it has stored. Retention drops
 * whole files; nothing kept is scanned to expire what is not (docs/logstore.md).
 *
 * Writes go through one writer thread with group commit, as the control
 * plane's store does: it takes every queued LogGroup, writes each into its
 * day's file inside a savepoint (a group is stored whole or not at all),
 * COMMITs each file touched once (WAL, synchronous=FULL: one fsync per file per
 * batch), and only then calls the jobs' done(). A LogGroup whose __pack_id__
 * tag is already in today's or yesterday's file is acknowledged and not stored
 * again. A day file appears under its name only with its tables in it, so a
 * read racing the first write of a logstore or a day sees nothing or whole
 * groups. */
#ifndef LOGSTORE_LDATA_H
#define LOGSTORE_LDATA_H
#include <stdbool.h>
#include <stdint.h>

#include "core/str.h"
#include "logstore/block.h"
#include "sls/sls_logs.pb-c.h"

#define LDATA_PARTITION_S 86400          /* one file per UTC day of arrival */
#define LDATA_MAX_OPEN 64                /* partition files the writer keeps open */
#define LDATA_QUEUE_MAX_BYTES (256u << 20) /* raw bytes of queued groups before ServerBusy */
#define LDATA_BATCH_MAX 1024             /* jobs per writer batch */
#define LDATA_MAX_PARTITIONS 4096        /* files of one logstore a read looks at */
#define LDATA_MAX_PACK_ID 256            /* bytes of a __pack_id__ that is remembered */
#define LDATA_CKPT_FRAMES 1000           /* new WAL frames of a file that call for a checkpoint */

enum ldata_rc { LDATA_STORED = 0, LDATA_DUPLICATE = 1, LDATA_EIO = -1, LDATA_BUSY = -2 };

struct ldata;
struct ldata_enc;

/* One PutLogs: the caller fills it, keeps it (and g or logs) alive until done(). */
struct ldata_put {
	int64_t logstore;
	const Sls__LogGroup *g;	 /* the group, encoded by ldata_put; or NULL, and then */
	struct sls_logs *logs;	 /* the group Log by Log, encoded by ldata_encode before */
	struct str pack_id; /* empty: none */
	int64_t received_s;
	size_t raw_bytes;   /* for the queue bound */
	void (*done)(struct ldata_put *p, enum ldata_rc rc);
	/* private */
	struct ldata_enc *enc; /* its blocks, encoded before queueing */
	size_t nenc;
	struct ldata_put *next;
	int kind; /* a put, or a drop / expiry job of the writer */
};

/* Creates dir (0700) when missing and starts the writer; NULL with a logged reason. */
struct ldata *ldata_open(const char *dir);
void ldata_close(struct ldata *d); /* drains the queue; NULL is a no-op */

/* p's blocks from logs (sls_logs_open), each Log stamped with the nf fields
 * f (sls_log_stamped), a Log at a time, before ldata_put(p): SLS_ERR_OK, or
 * the first bad Log's error (then nothing is kept). Sets p->logs. */
enum sls_err ldata_encode(struct ldata_put *p, struct sls_logs *logs, const struct sls_field *f,
			  size_t nf, const char **detail);

/* Frees the blocks of a put that ldata_put did not take (it frees those it
 * takes before done()); a put without blocks is a no-op. */
void ldata_encoded_free(struct ldata_put *p);

/* Queues a put; done() runs on the writer thread, or at once (LDATA_BUSY) on
 * the caller's when the queue is full or closing. */
void ldata_put(struct ldata *d, struct ldata_put *p);

/* Removes a deleted logstore's files (through the writer, which closes them
 * first); blocks until done. */
void ldata_drop(struct ldata *d, int64_t logstore);

/* Retention: a logstore's ttl in days, counted from when a group was stored
 * (its day of arrival), not from the logs' __time__, so a replayed old capture
 * is kept. A day file is removed whole once its newest possible group is older
 * than ttl days: the file of day D goes when D + 1 + ttl <= today, so data is
 * kept at least ttl and at most ttl + 1 days. Nothing kept is read. */
struct ldata_ttl {
	int64_t logstore;
	int64_t ttl_days; /* >= 1 */
};

/* Removes the expired day files of the listed logstores at now_s (through the
 * writer, which closes its handles of them first; a read that has a file open
 * keeps reading it, nothing waits for a read); blocks until done and returns
 * how many .db files went. */
int ldata_expire(struct ldata *d, const struct ldata_ttl *t, size_t n, int64_t now_s);

/* A stored block as a read sees it. */
struct ldata_block {
	int part;      /* its file: the UTC day of arrival, days since the epoch */
	int64_t id;    /* its row in that file */
	uint32_t t_min, t_max;
	struct str topic, source, tags; /* tags: varint-length-prefixed key, value pairs */
	struct str data;                /* block_decode() input (empty from ldata_scan_rollups) */
	struct str counts;              /* the rollup (block_counts_each); empty for blocks
					 * stored before rollups existed */
};

/* Calls fn for every block of the logstore that may hold a log with
 * from <= time < to, file by file; stops when fn returns non-zero and returns
 * that. 0 when the logstore has no data yet; LDATA_EIO on a read failure. */
int ldata_scan(struct ldata *d, int64_t logstore, int64_t from, int64_t to,
	       int (*fn)(const struct ldata_block *b, void *arg), void *arg);
/* The same blocks without their data (.data empty), for what their rollups
 * answer: the writer stores a block's data after its rollup in the row, so
 * SQLite never reads the data's overflow pages here. */
int ldata_scan_rollups(struct ldata *d, int64_t logstore, int64_t from, int64_t to,
		       int (*fn)(const struct ldata_block *b, void *arg), void *arg);
/* The block (part, id) of an earlier scan with the same arguments; 1 when gone. */
int ldata_fetch(struct ldata *d, int64_t logstore, int part, int64_t id,
		int (*fn)(const struct ldata_block *b, void *arg), void *arg);

/* The same blocks as ldata_scan, pulled one at a time (the SQL virtual
 * table's cursor): 1 with *out valid until the next call, 0 at the end,
 * LDATA_EIO. Each call holds one day file open at most. */
struct ldata_iter;
struct ldata_iter *ldata_iter_open(struct ldata *d, int64_t logstore, int64_t from, int64_t to);
int ldata_iter_next(struct ldata_iter *it, struct ldata_block *out);
void ldata_iter_close(struct ldata_iter *it); /* NULL is a no-op */

/* Tags encoded as stored: for each tag, varint key length, key, varint value length, value. */
void ldata_tags_encode(const Sls__LogGroup *g, struct buf *out);
/* Walks an encoded tag list; -1 if malformed. */
int ldata_tags_each(struct str tags, int (*fn)(struct str k, struct str v, void *arg), void *arg);

#endif
