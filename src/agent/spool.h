/* The Log Service leg's queue of groups waiting to be delivered: on disk in
 * --state-dir (one file per group, written to a temporary name, fsync'd and
 * renamed, so a crash leaves a group whole or absent), or in memory without a
 * state directory. Bounded in bytes: when a new group does not fit, the
 * oldest are dropped and counted. A file that does not parse (torn, foreign,
 * bit rot: the format has a magic, a version and a CRC-32) is removed and
 * counted as corrupt. Not thread-safe: its owner (agent/slssend.c) guards it
 * with a mutex. Several senders may each have a group in flight: a claimed
 * group is neither handed out again nor dropped until it is finished.
 *
 * File format (little endian):
 *   "SAGSPOOL" | u8 version (1) | 3 zero bytes | u32 records | u32 raw_len |
 *   5 x (u16 len | bytes): pack_id, project, logstore, url_base, connect_to |
 *   u32 body_len | body (the LZ4 block) | u32 CRC-32 of every byte before it */
#ifndef AGENT_SPOOL_H
#define AGENT_SPOOL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

#define SPOOL_VERSION 1
#define SPOOL_MAX_STRING 512		   /* bytes of each string field */
#define SPOOL_MAX_BODY (11u << 20)	   /* bytes of a compressed group (LZ4 bound of 10 MB) */
#define SPOOL_MAX_RECORDS 4096		   /* records of one group */
#define SPOOL_MAX_RAW (10u << 20)	   /* raw bytes of one group */
#define SPOOL_MAX_BYTES_DEFAULT (256ull << 20) /* --sls-spool-max */
#define SPOOL_DIR_NAME "sls-spool"

/* One queued group; slices point into the bytes it was parsed from. */
struct spool_group {
	struct str pack_id, project, logstore, url_base, connect_to;
	uint32_t records, raw_len;
	struct str body;
};

/* Parses one spool file's bytes: 0, or -1 when they are not a whole,
 * intact group of this version. */
int spool_parse(const uint8_t *p, size_t n, struct spool_group *out);
/* The bytes of g in the file format (appended to out). */
void spool_serialize(const struct spool_group *g, struct buf *out);

struct spool_stats {
	uint64_t groups, bytes, records; /* queued now */
	uint64_t dropped_groups, dropped_records; /* dropped because of the bound */
	uint64_t corrupt;		/* files removed because they did not parse */
};

struct spool;

/* dir: the state directory (the spool lives in dir/sls-spool), or NULL for a
 * queue in memory. Loads what a previous run left. NULL when dir/sls-spool
 * cannot be created (logged). */
struct spool *spool_open(const char *dir, uint64_t max_bytes);
void spool_close(struct spool *s); /* NULL is a no-op; queued groups stay on disk */
/* Queues g; drops the oldest groups while the bound is exceeded. 0, or -1
 * when g cannot be written (then it is dropped, counted and logged). */
int spool_push(struct spool *s, const struct spool_group *g);
/* spool_push in two halves, so the file's write and fsyncs need no lock
 * (slssend.c): spool_prepare serializes g and, with a directory, writes it;
 * only one thread may prepare (it hands out the sequence numbers).
 * spool_commit, under the lock that guards the rest of the spool, queues it
 * (dropping the oldest while the bound is exceeded) or counts it dropped;
 * it frees p's bytes either way. Returns as spool_push. */
enum spool_prep_rc { SPOOL_PREP_OK, SPOOL_PREP_TOO_BIG, SPOOL_PREP_UNWRITTEN };
struct spool_prep {
	struct buf b;
	uint64_t seq;
	uint32_t records;
	enum spool_prep_rc rc;
};
int spool_prepare(struct spool *s, const struct spool_group *g, struct spool_prep *p);
int spool_commit(struct spool *s, struct spool_prep *p);
/* The oldest group not claimed yet into *g (its bytes in *store, which the
 * caller frees), now claimed, and its sequence number in *seq: 0, or 1 when
 * every queued group is claimed or none is queued. Unreadable files are
 * skipped and counted. */
int spool_claim(struct spool *s, struct buf *store, struct spool_group *g, uint64_t *seq);
/* Ends the claim on group seq: removes it (delivered, or refused for good),
 * or with remove false puts it back to be claimed again (a retry). A group
 * the bound dropped meanwhile is not found: a no-op. */
void spool_finish(struct spool *s, uint64_t seq, bool remove);
void spool_get_stats(const struct spool *s, struct spool_stats *out);
uint64_t spool_records(const struct spool *s); /* records queued now */
bool spool_persistent(const struct spool *s);  /* on disk (survives a restart) */

#endif
