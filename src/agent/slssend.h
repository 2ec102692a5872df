/* The Log Service leg's delivery (docs/agent.md, "Log Service delivery"): a
 * thread of its own takes batches of closed records from the capture thread,
 * encodes each as a LogGroup (agent/slsgroup.h) with a pack id unique per
 * group, queues it in the spool (agent/spool.h) and PutLogs it, signed with
 * the LOG signature (V1, hmac-sha1) as the device ("device.<serial>" and its
 * SecretKey). Failures are retried with backoff, resending the same bytes and
 * pack id, so the log store keeps one copy; refusals drop the group and say
 * why. The capture thread never waits for the network or the disk. */
#ifndef AGENT_SLSSEND_H
#define AGENT_SLSSEND_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/slsgroup.h"
#include "domain/domain.h"
#include "meter/flow.h"

#define SLSSEND_CONNECT_TIMEOUT_MS 2000
#define SLSSEND_TIMEOUT_MS 10000    /* one PutLogs, connect included */
#define SLSSEND_MAX_ANSWER (64 << 10) /* bytes of an answer's body */
#define SLSSEND_BACKOFF_MIN_MS 250  /* first retry after a failure */
#define SLSSEND_BACKOFF_MAX_MS 4000 /* retries never wait longer */
#define SLSSEND_MAX_PENDING 64	    /* batches waiting for the encoder; more are dropped */
#define SLSSEND_SENDERS 4	    /* PutLogs in flight at once (slssend.c says why) */
#define SLSSEND_URL_MAX 1024
#define SLSSEND_ERR_MAX 256

/* Where a batch goes and what it says about itself. */
struct slssend_dest {
	char project[DOMAIN_SLS_NAME_MAX + 1], logstore[DOMAIN_SLS_NAME_MAX + 1];
	char url_base[SLSSEND_URL_MAX];	  /* http(s)://<project>.<domain>[:port] */
	char connect_to[SLSSEND_URL_MAX]; /* CURLOPT_CONNECT_TO entry, or "" */
	char topic[SLSGROUP_MAX_ID], source[SLSGROUP_MAX_ID];
	char instance_id[SLSGROUP_MAX_ID], snid[SLSGROUP_MAX_ID], ali_uid[SLSGROUP_MAX_ID];
};

struct slssend_config {
	const char *serial, *secret; /* the device's LOG credential: device.<serial>, SecretKey */
	const char *ca_file;	     /* or NULL: the system's CAs */
	const char *state_dir;	     /* the spool's home, or NULL: a queue in memory */
	uint64_t spool_max;	     /* bytes */
};

struct slssend_stats {
	uint64_t delivered;		 /* records the log store acknowledged */
	uint64_t queued, queued_bytes;	 /* records and spool bytes waiting */
	uint64_t dropped;		 /* records dropped: the bound, refusals, corrupt files */
	uint64_t groups_sent, retries;
	char last_error[SLSSEND_ERR_MAX]; /* "" when none yet */
	int64_t last_error_ms;		  /* wall clock */
};

struct slssend;

/* NULL when the spool cannot be opened (logged). */
struct slssend *slssend_start(const struct slssend_config *c);
/* Waits up to timeout_ms for the queue to empty, then stops the thread.
 * What is still queued stays in the spool. The last counts go to *last (when
 * not NULL; zeros for s NULL). NULL s is a no-op. */
void slssend_stop(struct slssend *s, int64_t timeout_ms, struct slssend_stats *last);
/* Hands n records to the thread, bound for d: r (from malloc) becomes the
 * thread's, which frees it (no copy on the capture thread; NULL r with n 0
 * is a no-op). */
void slssend_submit(struct slssend *s, const struct slssend_dest *d, struct flow_rec *r, size_t n);
void slssend_get_stats(struct slssend *s, struct slssend_stats *out);

#endif
