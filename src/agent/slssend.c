/* The delivery threads (slssend.h). The capture thread only appends a batch
 * to a list under the mutex. The encoder thread turns batches into groups in
 * the spool (encoding, compression, the spool's fsyncs); SLSSEND_SENDERS
 * sender threads each PutLogs the oldest group nobody has in flight. With
 * one group in flight at a time, the end of a --read replay waited for ~25
 * PutLogs in a row while serve's ingest used one of its threads; two in
 * flight kept the encoder and serve's ingest threads busy at once. Once both
 * ends cost a third less, two were the limit: each PutLogs is answered only
 * after the log store's commit (an fsync), so two groups in flight left the
 * cores idle while both waited for it; with four, two are decoded while the
 * others wait, and the writer commits them together (docs/benchmarks.md
 * "Agent delivery"). Groups may so reach the log store out of order, which
 * Log Service allows: every Log carries its own time. */
#include "agent/slssend.h"

#include <inttypes.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/spool.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "core/xmalloc.h"
#include "device/transport.h"
#include "sls/sig.h"

#define SLSSEND_AKID_PREFIX "device."
#define SLSSEND_PACK_PREFIX_BYTES 8 /* random bytes naming this run's pack ids */

struct batch {
	struct batch *next;
	struct slssend_dest d;
	struct flow_rec *r;
	size_t n;
};

struct slssend {
	pthread_t encoder, senders[SLSSEND_SENDERS];
	struct transport *t[SLSSEND_SENDERS]; /* sender i's own */
	pthread_mutex_t mu;
	pthread_cond_t cv;	/* batches for the encoder, or quit */
	pthread_cond_t send_cv; /* groups for the senders, a finished send, or quit */
	/* under mu */
	struct batch *head, *tail;
	size_t npending;
	bool quit, encoded_all; /* encoded_all: quit, and the last batch is in the spool */
	int64_t stop_by_us;	/* monotonic: give up retrying after this once quit */
	struct slssend_stats st;
	uint64_t overflow;
	struct spool *spool;
	int failures;
	int64_t retry_at_us;
	/* constant, or the encoder's own */
	char akid[80], secret[64];
	char pack_prefix[2 * SLSSEND_PACK_PREFIX_BYTES + 1];
	uint64_t pack_seq;
	struct slsgroup_scratch scratch;
};

/* ---- encoding ---- */

static void hex_random(char *out, size_t nbytes)
{
	static const char digits[] = "0123456789ABCDEF";
	unsigned char r[32];
	if (RAND_bytes(r, (int)nbytes) != 1)
		fatal("RAND_bytes failed");
	for (size_t i = 0; i < nbytes; i++) {
		out[2 * i] = digits[r[i] >> 4];
		out[2 * i + 1] = digits[r[i] & 15];
	}
	out[2 * nbytes] = '\0';
}

/* One batch into the spool: the group's bytes are fixed from here on, so a
 * resend is the same request body with the same pack id. */
static void spool_batch(struct slssend *s, const struct batch *b)
{
	char pack[SLSGROUP_MAX_ID];
	snprintf(pack, sizeof(pack), "%s-%" PRIX64, s->pack_prefix, s->pack_seq++);
	const struct slsgroup_meta m = {b->d.topic, b->d.source, pack, b->d.instance_id, b->d.snid,
					b->d.ali_uid};
	struct buf body = {0};
	size_t raw = 0;
	if (slsgroup_encode(&m, b->r, b->n, &s->scratch, &body, &raw) < 0) {
		log_err("sls: cannot encode a group of %zu records: dropped", b->n);
		pthread_mutex_lock(&s->mu);
		s->overflow += b->n;
		pthread_mutex_unlock(&s->mu);
		buf_free(&body);
		return;
	}
	struct spool_group g = {str_c(pack),	     str_c(b->d.project),   str_c(b->d.logstore),
				str_c(b->d.url_base), str_c(b->d.connect_to), (uint32_t)b->n,
				(uint32_t)raw,	      {body.p, body.len}};
	/* The file's write and fsyncs outside mu: the capture thread takes mu
	 * to hand over a batch and must not wait for the disk. */
	struct spool_prep prep;
	spool_prepare(s->spool, &g, &prep);
	pthread_mutex_lock(&s->mu);
	spool_commit(s->spool, &prep);
	pthread_cond_broadcast(&s->send_cv);
	pthread_mutex_unlock(&s->mu);
	buf_free(&body);
}

/* ---- one PutLogs ---- */

enum outcome { SENT, RETRY, REFUSED };

struct put_headers {
	char line[8][256];
	const char *v[8];
	struct sls_kv kv[7];
};

static void header(struct put_headers *h, size_t i, const char *name, const char *value)
{
	snprintf(h->line[i], sizeof(h->line[i]), "%s: %s", name, value);
	h->v[i] = h->line[i];
	if (i < 7)
		h->kv[i] = (struct sls_kv){str_c(name), str_c(h->line[i] + strlen(name) + 2)};
}

/* The headers of spec log-service.md §1.2–1.4, signed (V1, hmac-sha1). */
static void sign_put(const struct slssend *s, const struct spool_group *g, struct str path,
		     struct put_headers *h)
{
	char md5[SLS_SIG_MD5_HEX + 1], date[30], raw[16], sig[SLS_SIG_V1_MAX_B64], auth[160];
	sls_md5_hex_upper(g->body, md5);
	sls_format_http_date(time_now_ms() / 1000, date);
	snprintf(raw, sizeof(raw), "%" PRIu32, g->raw_len);
	header(h, 0, "content-type", "application/x-protobuf");
	header(h, 1, "content-md5", md5);
	header(h, 2, "date", date);
	header(h, 3, "x-log-apiversion", "0.6.0");
	header(h, 4, "x-log-bodyrawsize", raw);
	header(h, 5, "x-log-compresstype", "lz4");
	header(h, 6, "x-log-signaturemethod", "hmac-sha1");
	struct sls_sig_input in = {STR_LIT("POST"), path, h->kv, 7, NULL, 0};
	struct buf sts = {0};
	sls_v1_string_to_sign(&sts, &in, SLS_SIG_SORT_PAIRS);
	sls_v1_sign(SLS_SIG_HMAC_SHA1, str_c(s->secret), (struct str){sts.p, sts.len}, sig);
	buf_free(&sts);
	snprintf(auth, sizeof(auth), "LOG %s:%s", s->akid, sig);
	header(h, 7, "authorization", auth);
	OPENSSL_cleanse(sig, sizeof(sig));
}

/* "errorCode: errorMessage" of a Log Service error answer. */
static void answer_error(const struct transport_answer *a, char *out, size_t cap)
{
	json_error_t jerr;
	json_t *o = json_loadb(a->body.p ? a->body.p : "", a->body.len, 0, &jerr);
	const char *code = json_string_value(json_object_get(o, "errorCode"));
	const char *msg = json_string_value(json_object_get(o, "errorMessage"));
	snprintf(out, cap, "PutLogs answered %ld %s%s%s", a->status, code ? code : "(no code)",
		 msg ? ": " : "", msg ? msg : "");
	json_decref(o);
}

/* 5xx, 429 and 408 are the endpoint's trouble: retried. Other refusals say
 * the group can never be stored (wrong logstore, revoked key, bad body). */
static enum outcome put_group(const struct slssend *s, struct transport *t,
			      const struct spool_group *g, char *err, size_t errlen)
{
	char path[200], url[SLSSEND_URL_MAX + 200], cto[SLSSEND_URL_MAX];
	snprintf(path, sizeof(path), "/logstores/%.*s/shards/lb", (int)g->logstore.len,
		 g->logstore.p);
	snprintf(url, sizeof(url), "%.*s%s", (int)g->url_base.len, g->url_base.p, path);
	snprintf(cto, sizeof(cto), "%.*s", (int)g->connect_to.len, g->connect_to.p);
	struct put_headers h;
	sign_put(s, g, str_c(path), &h);
	struct transport_req rq = {url,
				   cto[0] ? cto : NULL,
				   h.v,
				   8,
				   g->body,
				   SLSSEND_CONNECT_TIMEOUT_MS,
				   SLSSEND_TIMEOUT_MS,
				   SLSSEND_MAX_ANSWER, false};
	struct transport_answer a = {0};
	char why[SLSSEND_ERR_MAX] = "";
	enum transport_status ts = transport_post(t, &rq, &a, why, sizeof(why));
	enum outcome o = RETRY;
	if (ts != TRANSPORT_OK)
		snprintf(err, errlen, "cannot reach the Log Service endpoint: %s", why);
	else if (a.status == 200)
		o = SENT;
	else {
		answer_error(&a, err, errlen);
		if (a.status < 500 && a.status != 429 && a.status != 408)
			o = REFUSED;
	}
	buf_free(&a.body);
	return o;
}

/* ---- the threads ---- */

/* Under mu. */
static void publish(struct slssend *s)
{
	struct spool_stats sp;
	spool_get_stats(s->spool, &sp);
	s->st.queued = sp.records;
	s->st.queued_bytes = sp.bytes;
	s->st.dropped = sp.dropped_records + s->overflow;
}

static int64_t backoff_ms(int failures)
{
	int64_t wait = SLSSEND_BACKOFF_MIN_MS;
	for (int i = 0; i < failures && wait < SLSSEND_BACKOFF_MAX_MS; i++)
		wait *= 2;
	return wait > SLSSEND_BACKOFF_MAX_MS ? SLSSEND_BACKOFF_MAX_MS : wait;
}

/* Under mu: what one PutLogs of group seq came to. */
static void account(struct slssend *s, const struct spool_group *g, uint64_t seq, enum outcome o,
		    const char *err)
{
	spool_finish(s->spool, seq, o != RETRY);
	s->st.delivered += o == SENT ? g->records : 0;
	s->overflow += o == REFUSED ? g->records : 0;
	s->st.retries += o == RETRY;
	s->st.groups_sent += o == SENT;
	if (o == REFUSED)
		log_warn("sls: group %.*s (%" PRIu32 " records) refused for good, dropped: %s",
			 (int)g->pack_id.len, g->pack_id.p, g->records, err);
	if (o == SENT && s->failures) {
		log_info("sls: the Log Service endpoint takes groups again after %d failures",
			 s->failures);
		s->failures = 0;
	}
	if (o != SENT) {
		snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", err);
		s->st.last_error_ms = time_now_ms();
	}
	if (o == RETRY) {
		int64_t wait = backoff_ms(s->failures++);
		log_warn("sls: delivery failed (%d in a row): %s; %" PRIu64
			 " records queued; retrying in %" PRId64 " ms",
			 s->failures, err, spool_records(s->spool), wait);
		s->retry_at_us = time_mono_us() + wait * 1000;
	}
	publish(s);
}

/* Under mu: waits on cv until wake_us (monotonic) or a signal. */
static void wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t wake_us)
{
	int64_t d = wake_us - time_mono_us();
	if (d <= 0)
		return;
	struct timespec ts = time_deadline(CLOCK_MONOTONIC, d);
	pthread_cond_timedwait(cv, mu, &ts);
}

/* Under mu: a sender is done once the encoder is and the queue is empty,
 * or the stop's deadline passed. */
static bool senders_done(const struct slssend *s)
{
	return s->encoded_all &&
	       (spool_records(s->spool) == 0 || time_mono_us() >= s->stop_by_us);
}

struct sender_arg {
	struct slssend *s;
	struct transport *t;
};

static void *send_main(void *arg)
{
	struct slssend *s = ((struct sender_arg *)arg)->s;
	struct transport *t = ((struct sender_arg *)arg)->t;
	free(arg);
	struct buf store = {0};
	struct spool_group g;
	uint64_t seq;
	pthread_mutex_lock(&s->mu);
	while (!senders_done(s)) {
		int64_t now = time_mono_us(), idle = now + 1000000;
		if (s->quit && s->stop_by_us < idle)
			idle = s->stop_by_us;
		if (now < s->retry_at_us) {
			wait_until(&s->send_cv, &s->mu, s->retry_at_us < idle ? s->retry_at_us : idle);
			continue;
		}
		if (spool_claim(s->spool, &store, &g, &seq) != 0) {
			wait_until(&s->send_cv, &s->mu, idle);
			continue;
		}
		pthread_mutex_unlock(&s->mu);
		char err[SLSSEND_ERR_MAX] = "";
		enum outcome o = put_group(s, t, &g, err, sizeof(err));
		pthread_mutex_lock(&s->mu);
		account(s, &g, seq, o, err);
		pthread_cond_broadcast(&s->send_cv);
	}
	pthread_mutex_unlock(&s->mu);
	buf_free(&store);
	return NULL;
}

static void *encode_main(void *arg)
{
	struct slssend *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		struct batch *b = s->head;
		s->head = s->tail = NULL;
		s->npending = 0;
		pthread_mutex_unlock(&s->mu);
		while (b) {
			struct batch *next = b->next;
			spool_batch(s, b);
			free(b->r);
			free(b);
			b = next;
		}
		pthread_mutex_lock(&s->mu);
		publish(s);
		if (s->quit && !s->head)
			break;
		if (!s->head)
			pthread_cond_wait(&s->cv, &s->mu);
	}
	s->encoded_all = true;
	pthread_cond_broadcast(&s->send_cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Signals are the capture thread's business. */
static void spawn(pthread_t *th, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(th, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		fatal("cannot start an sls thread: %s", strerror(rc));
}

struct slssend *slssend_start(const struct slssend_config *c)
{
	struct slssend *s = xcalloc(1, sizeof(*s));
	s->spool = spool_open(c->state_dir, c->spool_max);
	if (!s->spool) {
		free(s);
		return NULL;
	}
	snprintf(s->akid, sizeof(s->akid), SLSSEND_AKID_PREFIX "%s", c->serial);
	snprintf(s->secret, sizeof(s->secret), "%s", c->secret);
	hex_random(s->pack_prefix, SLSSEND_PACK_PREFIX_BYTES);
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_cond_init(&s->send_cv, &ca);
	pthread_condattr_destroy(&ca);
	publish(s);
	spawn(&s->encoder, encode_main, s);
	for (int i = 0; i < SLSSEND_SENDERS; i++) {
		struct sender_arg *a = xmalloc(sizeof(*a));
		*a = (struct sender_arg){s, s->t[i] = transport_new(c->ca_file)};
		spawn(&s->senders[i], send_main, a);
	}
	return s;
}

void slssend_submit(struct slssend *s, const struct slssend_dest *d, struct flow_rec *r, size_t n)
{
	if (!n) {
		free(r);
		return;
	}
	pthread_mutex_lock(&s->mu);
	if (s->npending >= SLSSEND_MAX_PENDING) {
		/* The thread is far behind (a disk that does not take writes):
		 * the capture thread must not wait, so the batch is counted lost. */
		s->overflow += n;
		s->st.dropped += n;
		pthread_mutex_unlock(&s->mu);
		free(r);
		log_warn("sls: %zu records dropped: the delivery thread is %d batches behind", n,
			 SLSSEND_MAX_PENDING);
		return;
	}
	pthread_mutex_unlock(&s->mu);
	struct batch *b = xcalloc(1, sizeof(*b));
	b->d = *d;
	b->r = r;
	b->n = n;
	pthread_mutex_lock(&s->mu);
	if (s->tail)
		s->tail->next = b;
	else
		s->head = b;
	s->tail = b;
	s->npending++;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

void slssend_get_stats(struct slssend *s, struct slssend_stats *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->st;
	pthread_mutex_unlock(&s->mu);
}

void slssend_stop(struct slssend *s, int64_t timeout_ms, struct slssend_stats *last)
{
	if (last)
		*last = (struct slssend_stats){0};
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->quit = true;
	s->stop_by_us = time_mono_us() + timeout_ms * 1000;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->encoder, NULL);
	for (int i = 0; i < SLSSEND_SENDERS; i++)
		pthread_join(s->senders[i], NULL);
	publish(s);
	struct slssend_stats st = s->st;
	if (last)
		*last = st;
	if (st.queued)
		log_warn("sls: %" PRIu64 " records (%" PRIu64 " bytes) still queued at exit%s", st.queued,
			 st.queued_bytes, spool_persistent(s->spool) ? "; the next run delivers them"
								      : " and lost (no --state-dir)");
	log_info("sls: %" PRIu64 " records delivered, %" PRIu64 " queued, %" PRIu64 " dropped",
		 st.delivered, st.queued, st.dropped);
	spool_close(s->spool);
	for (int i = 0; i < SLSSEND_SENDERS; i++)
		transport_free(s->t[i]);
	slsgroup_scratch_free(&s->scratch);
	OPENSSL_cleanse(s->secret, sizeof(s->secret));
	pthread_cond_destroy(&s->cv);
	pthread_cond_destroy(&s->send_cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
