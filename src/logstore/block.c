#include "logstore/block.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "sls/body.h"

#define BLOCK_MAGIC "B2"
#define BLOCK_MAGIC_V1 "B1" /* one zstd frame of everything: blocks stored before B2 */

static void put_varint(struct buf *b, uint64_t v)
{
	char t[10];
	size_t n = 0;
	do {
		t[n++] = (char)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
		v >>= 7;
	} while (v);
	buf_add(b, t, n);
}

/* The streaming encoder (block.h): logs are added one at a time and copied
 * at once into one buffer per column, so nothing of a log is needed after it
 * was added. Before, the encoder kept the whole decoded LogGroup and
 * gathered each column's values from it by pointer, after two more passes
 * over it (docs/logstore.md "Layout"). */
struct block_key {
	size_t off, len; /* in keytext */
};

struct block_enc {
	size_t n, nkeys, cap;	      /* logs, keys, room in key/col/val/seen */
	struct block_key *key;
	struct buf keytext, *col;
	uint32_t *slot, mask;	      /* the key dictionary: index + 1, 0 = empty; at most half full */
	size_t *kof, nkof, cap_kof;   /* the key of each content of the last log that was not `same` */
	bool kof_all;		      /* kof names every key once: a `same` log fills every column */
	struct str *val;	      /* each key's value in the log being added ... */
	size_t *seen;		      /* ... when seen[k] is n + 1 */
	struct buf times, ns;	      /* uint32_t each */
	bool has_ns;
};

static uint32_t key_hash(struct str k)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < k.len; i++)
		h = (h ^ (unsigned char)k.p[i]) * 16777619u;
	return h;
}

static struct str enc_key(const struct block_enc *e, size_t k)
{
	return (struct str){e->keytext.p + e->key[k].off, e->key[k].len};
}

static uint32_t *enc_slot(struct block_enc *e, struct str k)
{
	for (uint32_t i = key_hash(k) & e->mask;; i = (i + 1) & e->mask)
		if (!e->slot[i] || str_eq(enc_key(e, e->slot[i] - 1), k))
			return &e->slot[i];
}

static void enc_rehash(struct block_enc *e, uint32_t slots)
{
	free(e->slot);
	e->slot = xcalloc(slots, sizeof(*e->slot));
	e->mask = slots - 1;
	for (size_t k = 0; k < e->nkeys; k++)
		*enc_slot(e, enc_key(e, k)) = (uint32_t)k + 1;
}

/* Room for one more key, and a new key's column: absent in the logs before. */
static size_t enc_new_key(struct block_enc *e, struct str k)
{
	if (e->nkeys == e->cap) {
		size_t cap = e->cap ? 2 * e->cap : 16;
		e->key = xrealloc(e->key, cap * sizeof(*e->key));
		e->col = xrealloc(e->col, cap * sizeof(*e->col));
		e->val = xrealloc(e->val, cap * sizeof(*e->val));
		e->seen = xrealloc(e->seen, cap * sizeof(*e->seen));
		for (size_t i = e->cap; i < cap; i++)
			e->col[i] = (struct buf){0};
		e->cap = cap;
	}
	size_t i = e->nkeys++;
	e->key[i] = (struct block_key){e->keytext.len, k.len};
	buf_add(&e->keytext, k.p, k.len);
	e->seen[i] = 0;
	e->col[i].len = 0;
	buf_reserve(&e->col[i], e->n);
	memset(e->col[i].p, 0, e->n);
	e->col[i].len = e->n;
	if (2 * (e->nkeys + 1) > (size_t)e->mask + 1)
		enc_rehash(e, 2 * (e->mask + 1));
	return i;
}

static size_t enc_find(struct block_enc *e, struct str k, bool add)
{
	uint32_t *s = enc_slot(e, k);
	if (*s)
		return *s - 1;
	if (!add)
		return SIZE_MAX;
	size_t i = enc_new_key(e, k);
	*enc_slot(e, k) = (uint32_t)i + 1; /* after a rehash, s moved */
	return i;
}

/* Logs of one sender have the same keys in the same order, log after log:
 * comparing with the previous log is cheaper than hashing every key, and a
 * key the caller knows to be the previous log's (bit c of known) needs no
 * comparison at all. */
static bool enc_same_keys(const struct block_enc *e, const struct str *k, size_t nc,
			  uint64_t known)
{
	if (e->n == 0 || nc != e->nkof)
		return false;
	for (size_t c = 0; c < nc; c++)
		if (!(c < 64 && (known >> c & 1)) && !str_eq(k[c], enc_key(e, e->kof[c])))
			return false;
	return true;
}

struct block_enc *block_enc_new(void)
{
	struct block_enc *e = xcalloc(1, sizeof(*e));
	enc_rehash(e, 64);
	return e;
}

void block_enc_free(struct block_enc *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->cap; i++)
		buf_free(&e->col[i]);
	free(e->key);
	free(e->col);
	free(e->val);
	free(e->seen);
	free(e->slot);
	free(e->kof);
	buf_free(&e->keytext);
	buf_free(&e->times);
	buf_free(&e->ns);
	free(e);
}

size_t block_enc_logs(const struct block_enc *e)
{
	return e->n;
}

/* The key of each content in e->kof, new keys added. */
static void enc_map_keys(struct block_enc *e, const struct str *k, size_t nc)
{
	if (nc > e->cap_kof) {
		e->cap_kof = nc;
		e->kof = xrealloc(e->kof, nc * sizeof(*e->kof));
	}
	for (size_t c = 0; c < nc; c++)
		e->kof[c] = enc_find(e, k[c], true);
	e->nkof = nc;
	/* Every key once (nc keys, none twice): seen marks them, as no log is
	 * being added yet. */
	e->kof_all = nc == e->nkeys;
	for (size_t c = 0; c < nc && e->kof_all; c++) {
		e->kof_all = e->seen[e->kof[c]] != SIZE_MAX;
		e->seen[e->kof[c]] = SIZE_MAX;
	}
	for (size_t c = 0; c < nc; c++)
		e->seen[e->kof[c]] = 0;
}

static void put_u32(struct buf *b, uint32_t v)
{
	buf_add(b, &v, sizeof(v));
}

/* A column's cell: 0 (absent, v NULL) or len + 1 and the bytes; one reserve,
 * the varint inline (this runs for every value of every log). */
static void put_cell(struct buf *col, const struct str *v)
{
	size_t len = v ? v->len : 0;
	buf_reserve(col, 10 + len);
	uint8_t *at = (uint8_t *)col->p + col->len;
	uint64_t x = v ? len + 1 : 0;
	while (x >= 0x80) {
		*at++ = (uint8_t)(x | 0x80);
		x >>= 7;
	}
	*at++ = (uint8_t)x;
	if (len)
		memcpy(at, v->p, len);
	col->len = (size_t)((char *)at - col->p) + len;
}

/* A log of the previous log's keys, each once, that has every key of the
 * block: its values go straight to their columns. */
static void enc_put_all(struct block_enc *e, const struct str *v, size_t nc)
{
	for (size_t c = 0; c < nc; c++)
		put_cell(&e->col[e->kof[c]], &v[c]);
}

int block_enc_add(struct block_enc *e, const struct str *k, const struct str *v, size_t nc,
		  uint64_t known, uint32_t time, bool has_ns, uint32_t ns)
{
	bool same = enc_same_keys(e, k, nc, known);
	size_t keys = e->nkeys;
	for (size_t c = 0; c < nc && !same; c++)
		keys += enc_find(e, k[c], false) == SIZE_MAX; /* duplicates count twice: a bound */
	if (e->n > 0 && keys * (e->n + 1) > BLOCK_MAX_CELLS)
		return 1;
	if (!same)
		enc_map_keys(e, k, nc);
	if (same && e->kof_all) {
		enc_put_all(e, v, nc);
	} else {
		for (size_t c = 0; c < nc; c++) {
			e->val[e->kof[c]] = v[c]; /* the last one wins */
			e->seen[e->kof[c]] = e->n + 1;
		}
		for (size_t i = 0; i < e->nkeys; i++)
			put_cell(&e->col[i], e->seen[i] == e->n + 1 ? &e->val[i] : NULL);
	}
	put_u32(&e->times, time);
	put_u32(&e->ns, has_ns ? ns : 0);
	e->has_ns |= has_ns;
	e->n++;
	return 0;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* The rollup: how many logs of the block have each second, as varint pairs
 * (seconds after the previous pair's second, or after t_min for the first;
 * count), seconds ascending. */
static void put_counts(struct buf *out, const uint32_t *times, size_t n, uint32_t tmin)
{
	uint32_t *t = xmalloc((n ? n : 1) * sizeof(*t));
	memcpy(t, times, n * sizeof(*t));
	size_t sorted = 1;
	while (sorted < n && t[sorted - 1] <= t[sorted])
		sorted++;
	if (sorted < n) /* a sender's logs mostly come in time order */
		qsort(t, n, sizeof(*t), u32_cmp);
	uint32_t prev = tmin;
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && t[j] == t[i]; j++)
			;
		put_varint(out, t[i] - prev);
		put_varint(out, j - i);
		prev = t[i];
	}
	free(t);
}

/* One compression context per thread: ZSTD_compress would allocate and
 * free one (a megabyte at level 1) per block. */
static pthread_key_t zstd_key;
static pthread_once_t zstd_once = PTHREAD_ONCE_INIT;

struct zstd_ctx {
	ZSTD_CCtx *c;
	ZSTD_DCtx *d;
};

static void zstd_ctx_free(void *p)
{
	struct zstd_ctx *z = p;
	ZSTD_freeCCtx(z->c);
	ZSTD_freeDCtx(z->d);
	free(z);
}

static void zstd_key_make(void)
{
	if (pthread_key_create(&zstd_key, zstd_ctx_free) != 0)
		fatal("logstore: cannot create a thread key");
}

static struct zstd_ctx *zstd_ctx(void)
{
	pthread_once(&zstd_once, zstd_key_make);
	struct zstd_ctx *z = pthread_getspecific(zstd_key);
	if (!z) {
		z = xcalloc(1, sizeof(*z));
		z->c = ZSTD_createCCtx();
		z->d = ZSTD_createDCtx();
		if (!z->c || !z->d)
			fatal("logstore: no memory for zstd");
		pthread_setspecific(zstd_key, z);
	}
	return z;
}

/* zstd of p appended to out. */
static void compress_append(struct buf *out, const struct buf *p)
{
	size_t cap = ZSTD_compressBound(p->len);
	buf_reserve(out, cap);
	size_t z = ZSTD_compressCCtx(zstd_ctx()->c, out->p + out->len, cap, p->p, p->len,
				     BLOCK_ZSTD_LEVEL);
	if (ZSTD_isError(z))
		fatal("logstore: zstd cannot compress a block: %s", ZSTD_getErrorName(z));
	out->len += z;
}

/* The header: n, nkeys, has_ns, the keys, the times (and ns). */
static void put_header(struct buf *h, const struct block_enc *e, const uint32_t *t,
		       uint32_t *tmin, uint32_t *tmax)
{
	put_varint(h, e->n);
	put_varint(h, e->nkeys);
	put_varint(h, e->has_ns);
	*tmin = UINT32_MAX;
	*tmax = 0;
	for (size_t i = 0; i < e->n; i++) {
		*tmin = t[i] < *tmin ? t[i] : *tmin;
		*tmax = t[i] > *tmax ? t[i] : *tmax;
	}
	for (size_t k = 0; k < e->nkeys; k++) {
		put_varint(h, e->key[k].len);
		buf_add(h, e->keytext.p + e->key[k].off, e->key[k].len);
	}
	for (size_t i = 0; i < e->n; i++)
		put_varint(h, t[i]);
	const uint32_t *ns = (const uint32_t *)(const void *)e->ns.p;
	for (size_t i = 0; e->has_ns && i < e->n; i++)
		put_varint(h, ns[i]);
}

/* Empty again, keeping its memory. */
static void enc_reset(struct block_enc *e)
{
	memset(e->slot, 0, ((size_t)e->mask + 1) * sizeof(*e->slot));
	e->n = e->nkeys = e->nkof = 0;
	e->keytext.len = e->times.len = e->ns.len = 0;
	e->has_ns = false;
}

void block_enc_finish(struct block_enc *e, struct buf *out, struct buf *counts, uint32_t *tmin,
		      uint32_t *tmax)
{
	const uint32_t *t = (const uint32_t *)(const void *)e->times.p;
	struct buf h = {0}, frames = {0};
	put_header(&h, e, t, tmin, tmax);
	for (size_t k = 0; k < e->nkeys; k++) {
		size_t before = frames.len;
		compress_append(&frames, &e->col[k]);
		put_varint(&h, frames.len - before);
	}
	buf_reset(out);
	buf_add(out, BLOCK_MAGIC, 2);
	struct buf zh = {0};
	compress_append(&zh, &h);
	put_varint(out, zh.len);
	buf_add(out, zh.p, zh.len);
	buf_add(out, frames.p, frames.len);
	buf_free(&zh);
	buf_free(&h);
	buf_free(&frames);
	buf_reset(counts);
	put_counts(counts, t, e->n, *tmin);
	enc_reset(e);
}

/* A log's contents as slices, in *k and *v (grown to fit). */
static void log_slices(const Sls__Log *l, struct str **k, struct str **v, size_t *cap)
{
	if (l->n_contents > *cap) {
		*cap = l->n_contents;
		*k = xrealloc(*k, *cap * sizeof(**k));
		*v = xrealloc(*v, *cap * sizeof(**v));
	}
	for (size_t c = 0; c < l->n_contents; c++) {
		(*k)[c] = sls_pb_str(l->contents[c]->key);
		(*v)[c] = sls_pb_str(l->contents[c]->value);
	}
}

void block_encode(const Sls__LogGroup *g, size_t from, size_t *to_out, struct buf *out,
		  struct buf *counts, uint32_t *tmin, uint32_t *tmax)
{
	struct block_enc *e = block_enc_new();
	struct str *k = NULL, *v = NULL;
	size_t cap = 0, to = from;
	for (; to < g->n_logs; to++) {
		const Sls__Log *l = g->logs[to];
		log_slices(l, &k, &v, &cap);
		if (block_enc_add(e, k, v, l->n_contents, 0, l->time, l->has_timens, l->timens) != 0)
			break;
	}
	block_enc_finish(e, out, counts, tmin, tmax);
	block_enc_free(e);
	free(k);
	free(v);
	*to_out = to;
}

static void enc_emit(struct block_enc *e, void (*emit)(struct block_out *b, void *arg), void *arg)
{
	struct block_out b = {.n = block_enc_logs(e)};
	block_enc_finish(e, &b.data, &b.counts, &b.tmin, &b.tmax);
	emit(&b, arg);
}

enum sls_err block_encode_logs(struct sls_logs *s, const struct sls_field *f, size_t nf,
			       void (*emit)(struct block_out *b, void *arg), void *arg,
			       const char **detail)
{
	struct block_enc *e = block_enc_new();
	struct str *k = NULL, *v = NULL;
	size_t cap = 0;
	enum sls_err err = SLS_ERR_OK;
	struct sls_stamp_memo memo = {0};
	for (size_t i = 0; i < sls_logs_count(s) && err == SLS_ERR_OK; i++) {
		const Sls__Log *l;
		if ((err = sls_logs_get(s, i, &l, detail)) != SLS_ERR_OK)
			break;
		if (l->n_contents + nf > cap) {
			cap = l->n_contents + nf;
			k = xrealloc(k, cap * sizeof(*k));
			v = xrealloc(v, cap * sizeof(*v));
		}
		/* Contents of the Log before, unchanged, keep their place and key
		 * when both Logs came out of stamping as they were. */
		uint64_t same = sls_logs_same(s);
		bool was_as_is = memo.as_is;
		size_t nc = sls_log_stamped(l, f, nf, same, &memo, k, v);
		uint64_t known = was_as_is && memo.as_is ? same : 0;
		if (block_enc_add(e, k, v, nc, known, l->time, l->has_timens, l->timens) != 0) {
			enc_emit(e, emit, arg);
			block_enc_add(e, k, v, nc, 0, l->time, l->has_timens, l->timens);
		}
	}
	if (err == SLS_ERR_OK && block_enc_logs(e))
		enc_emit(e, emit, arg);
	block_enc_free(e);
	free(k);
	free(v);
	return err;
}

/* A bounds-checked read cursor over the payload. */
struct cur {
	const char *p, *end;
	bool bad;
};

static uint64_t get_varint(struct cur *c)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (c->p >= c->end) {
			c->bad = true;
			return 0;
		}
		unsigned char b = (unsigned char)*c->p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	c->bad = true;
	return 0;
}

static struct str get_bytes(struct cur *c, uint64_t n)
{
	if (c->bad || n > (uint64_t)(c->end - c->p)) {
		c->bad = true;
		return (struct str){"", 0};
	}
	struct str s = {c->p, (size_t)n};
	c->p += n;
	return s;
}

static char *decompress(struct str data, size_t *len)
{
	unsigned long long n = ZSTD_getFrameContentSize(data.p, data.len);
	if (n == ZSTD_CONTENTSIZE_UNKNOWN || n == ZSTD_CONTENTSIZE_ERROR || n > BLOCK_MAX_RAW)
		return NULL;
	char *raw = xmalloc((size_t)n + 1);
	size_t got = ZSTD_decompressDCtx(zstd_ctx()->d, raw, (size_t)n, data.p, data.len);
	if (ZSTD_isError(got) || got != n) {
		free(raw);
		return NULL;
	}
	*len = (size_t)n;
	return raw;
}

/* n, nkeys, has_ns, the keys and the times. */
static int decode_header(struct cur *c, struct block *b, bool *has_ns)
{
	uint64_t n = get_varint(c), nkeys = get_varint(c);
	if (c->bad || n > SLS_MAX_LOGS_PER_GROUP || nkeys > BLOCK_MAX_CELLS ||
	    n * nkeys > BLOCK_MAX_CELLS)
		return -1;
	b->n = (size_t)n;
	b->nkeys = (size_t)nkeys;
	*has_ns = get_varint(c) != 0;
	b->keys = xcalloc(b->nkeys ? b->nkeys : 1, sizeof(*b->keys));
	for (size_t k = 0; k < b->nkeys && !c->bad; k++)
		b->keys[k] = get_bytes(c, get_varint(c));
	b->time = xcalloc(b->n ? b->n : 1, sizeof(*b->time));
	for (size_t i = 0; i < b->n && !c->bad; i++)
		b->time[i] = (uint32_t)get_varint(c);
	if (*has_ns) {
		b->ns = xcalloc(b->n ? b->n : 1, sizeof(*b->ns));
		for (size_t i = 0; i < b->n && !c->bad; i++)
			b->ns[i] = (uint32_t)get_varint(c);
	}
	b->col = xcalloc(b->nkeys ? b->nkeys : 1, sizeof(*b->col));
	b->colraw = xcalloc(b->nkeys ? b->nkeys : 1, sizeof(*b->colraw));
	return c->bad ? -1 : 0;
}

/* One column's cells: for each log, 0 (absent) or len+1 and the bytes. */
static int decode_column(struct cur *c, struct block *b, size_t k)
{
	b->col[k] = xcalloc(b->n ? b->n : 1, sizeof(struct str));
	for (size_t i = 0; i < b->n && !c->bad; i++) {
		uint64_t l = get_varint(c);
		if (l)
			b->col[k][i] = get_bytes(c, l - 1);
	}
	return c->bad ? -1 : 0;
}

/* B1: everything in one frame, every column decoded now. */
static int decode_v1(struct block *b, struct str data)
{
	size_t len = 0;
	bool has_ns;
	if (!(b->raw = decompress(data, &len)) || len < 2 || memcmp(b->raw, BLOCK_MAGIC_V1, 2))
		return -1;
	struct cur c = {b->raw + 2, b->raw + len, false};
	if (decode_header(&c, b, &has_ns) != 0)
		return -1;
	for (size_t k = 0; k < b->nkeys; k++)
		if (decode_column(&c, b, k) != 0)
			return -1;
	return 0;
}

/* B2: "B2", the header's frame length and frame, then one frame per column,
 * whose lengths end the header. Columns are decoded when first asked for. */
static int decode_v2(struct block *b, struct str data)
{
	struct cur d = {data.p + 2, data.p + data.len, false};
	struct str zh = get_bytes(&d, get_varint(&d));
	size_t len = 0;
	bool has_ns;
	if (d.bad || !(b->raw = decompress(zh, &len)))
		return -1;
	struct cur c = {b->raw, b->raw + len, false};
	if (decode_header(&c, b, &has_ns) != 0)
		return -1;
	b->frame = xcalloc(b->nkeys ? b->nkeys : 1, sizeof(*b->frame));
	for (size_t k = 0; k < b->nkeys && !c.bad; k++)
		b->frame[k] = get_bytes(&d, get_varint(&c));
	return c.bad || d.bad || d.p != d.end ? -1 : 0;
}

int block_decode(struct str data, struct block *b)
{
	memset(b, 0, sizeof(*b));
	int rc = data.len >= 2 && !memcmp(data.p, BLOCK_MAGIC, 2) ? decode_v2(b, data)
								  : decode_v1(b, data);
	if (rc != 0)
		block_free(b);
	return rc;
}

void block_column(struct block *b, size_t k)
{
	size_t len = 0;
	char *raw = decompress(b->frame[k], &len);
	struct cur c = {raw, raw ? raw + len : NULL, !raw}; /* no arithmetic on NULL (UB) */
	if (c.bad || decode_column(&c, b, k) != 0 || c.p != c.end) {
		free(b->col[k]);
		b->col[k] = xcalloc(b->n ? b->n : 1, sizeof(struct str)); /* absent */
		b->corrupt = true;
	}
	b->colraw[k] = raw;
}

void block_load_all(struct block *b)
{
	for (size_t k = 0; k < b->nkeys; k++)
		if (!b->col[k])
			block_column(b, k);
}

void block_free(struct block *b)
{
	for (size_t k = 0; b->col && k < b->nkeys; k++) {
		free(b->col[k]);
		free(b->colraw[k]);
	}
	free(b->col);
	free(b->colraw);
	free(b->frame);
	free(b->keys);
	free(b->time);
	free(b->ns);
	free(b->raw);
	memset(b, 0, sizeof(*b));
}

int block_counts_each(struct str counts, uint32_t tmin,
		      void (*fn)(uint32_t t, uint64_t n, void *arg), void *arg)
{
	struct cur c = {counts.p, counts.p ? counts.p + counts.len : NULL, false};
	uint64_t t = tmin;
	while (c.p < c.end && !c.bad) {
		uint64_t dt = get_varint(&c), n = get_varint(&c);
		t += dt;
		if (c.bad || t > UINT32_MAX || n > SLS_MAX_LOGS_PER_GROUP)
			return -1;
		fn((uint32_t)t, n, arg);
	}
	return c.bad ? -1 : 0;
}
