#include "logstore/block.h"

#include <pthread.h>
#include <stdlib.h>
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

/* The encoder's key dictionary: open addressing over indexes into keys[]. */
struct keymap {
	uint32_t *slot; /* index + 1, 0 = empty; mask + 1 slots, at least twice the keys */
	uint32_t mask;
	struct str *keys;
	size_t n;
};

static uint32_t key_hash(struct str k)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < k.len; i++)
		h = (h ^ (unsigned char)k.p[i]) * 16777619u;
	return h;
}

static size_t keymap_find(struct keymap *m, struct str k, bool add)
{
	uint32_t mask = m->mask;
	for (uint32_t i = key_hash(k) & mask;; i = (i + 1) & mask) {
		if (!m->slot[i]) {
			if (!add)
				return SIZE_MAX;
			m->keys[m->n] = k;
			m->slot[i] = (uint32_t)++m->n;
			return m->n - 1;
		}
		if (str_eq(m->keys[m->slot[i] - 1], k))
			return m->slot[i] - 1;
	}
}

/* New keys that log l would add to the dictionary. */
static size_t new_keys(struct keymap *m, const Sls__Log *l)
{
	size_t added = 0;
	for (size_t c = 0; c < l->n_contents; c++)
		if (keymap_find(m, sls_pb_str(l->contents[c]->key), false) == SIZE_MAX)
			added++; /* duplicates within l count twice: an upper bound is enough */
	return added;
}

/* Logs of one sender have the same keys in the same order, log after log:
 * comparing with the previous log is cheaper than hashing every key. */
static bool same_keys(const Sls__Log *a, const Sls__Log *b)
{
	if (a->n_contents != b->n_contents)
		return false;
	for (size_t c = 0; c < a->n_contents; c++)
		if (!str_eq(sls_pb_str(a->contents[c]->key), sls_pb_str(b->contents[c]->key)))
			return false;
	return true;
}

/* Each log's value of each key, found once per content through the key
 * dictionary (not once per key and content): cell[i * nkeys + k]. */
static const ProtobufCBinaryData **cells_of(const Sls__LogGroup *g, size_t from, size_t to,
					    struct keymap *m)
{
	const ProtobufCBinaryData **cell = xcalloc((to - from) * m->n + 1, sizeof(*cell));
	size_t *kof = NULL, cap = 0; /* the key index of each content of the previous log */
	for (size_t i = from; i < to; i++) {
		const Sls__Log *l = g->logs[i];
		bool same = i > from && same_keys(l, g->logs[i - 1]);
		if (l->n_contents > cap) {
			cap = l->n_contents;
			kof = xrealloc(kof, cap * sizeof(*kof));
		}
		for (size_t c = 0; c < l->n_contents; c++) {
			if (!same)
				kof[c] = keymap_find(m, sls_pb_str(l->contents[c]->key), false);
			cell[(i - from) * m->n + kof[c]] = &l->contents[c]->value; /* the last one wins */
		}
	}
	free(kof);
	return cell;
}

static void put_column(struct buf *b, const ProtobufCBinaryData **cell, size_t n, size_t nkeys,
		       size_t k)
{
	for (size_t i = 0; i < n; i++) {
		const ProtobufCBinaryData *v = cell[i * nkeys + k];
		put_varint(b, v ? v->len + 1 : 0);
		if (v)
			buf_add(b, v->data, v->len);
	}
}

static size_t choose_logs(const Sls__LogGroup *g, size_t from, struct keymap *m)
{
	size_t to = from;
	while (to < g->n_logs) {
		const Sls__Log *l = g->logs[to];
		bool same = to > from && same_keys(l, g->logs[to - 1]);
		size_t keys = same ? m->n : m->n + new_keys(m, l);
		if (to > from && keys * (to - from + 1) > BLOCK_MAX_CELLS)
			break;
		for (size_t c = 0; c < l->n_contents && !same; c++)
			keymap_find(m, sls_pb_str(l->contents[c]->key), true);
		to++;
	}
	return to;
}

static void put_times(struct buf *p, const Sls__LogGroup *g, size_t from, size_t to,
		      uint32_t *tmin, uint32_t *tmax)
{
	bool has_ns = false;
	*tmin = UINT32_MAX;
	*tmax = 0;
	for (size_t i = from; i < to; i++)
		has_ns |= g->logs[i]->has_timens;
	put_varint(p, has_ns);
	for (size_t i = from; i < to; i++) {
		uint32_t t = g->logs[i]->time;
		*tmin = t < *tmin ? t : *tmin;
		*tmax = t > *tmax ? t : *tmax;
	}
	return;
}

/* A table for at most as many keys as the logs from `from` have contents. */
static void keymap_init(struct keymap *m, const Sls__LogGroup *g, size_t from)
{
	size_t contents = 1;
	for (size_t i = from; i < g->n_logs && contents <= BLOCK_MAX_CELLS; i++)
		contents += g->logs[i]->n_contents;
	uint32_t slots = 16;
	while (slots < 2 * contents)
		slots *= 2;
	m->slot = xcalloc(slots, sizeof(uint32_t));
	m->mask = slots - 1;
	m->keys = xcalloc(contents, sizeof(*m->keys));
	m->n = 0;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* The rollup: how many logs of the block have each second, as varint pairs
 * (seconds after the previous pair's second, or after t_min for the first;
 * count), seconds ascending. */
static void put_counts(struct buf *out, const Sls__LogGroup *g, size_t from, size_t to,
		       uint32_t tmin)
{
	size_t n = to - from;
	uint32_t *t = xcalloc(n, sizeof(*t));
	for (size_t i = 0; i < n; i++)
		t[i] = g->logs[from + i]->time;
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
static void put_header(struct buf *h, const Sls__LogGroup *g, size_t from, size_t to,
		       const struct keymap *m, uint32_t *tmin, uint32_t *tmax)
{
	put_varint(h, to - from);
	put_varint(h, m->n);
	size_t ns_at = h->len;
	put_times(h, g, from, to, tmin, tmax);
	bool has_ns = h->p[ns_at] != 0;
	for (size_t k = 0; k < m->n; k++) {
		put_varint(h, m->keys[k].len);
		buf_add(h, m->keys[k].p, m->keys[k].len);
	}
	for (size_t i = from; i < to; i++)
		put_varint(h, g->logs[i]->time);
	for (size_t i = from; has_ns && i < to; i++)
		put_varint(h, g->logs[i]->has_timens ? g->logs[i]->timens : 0);
}

void block_encode(const Sls__LogGroup *g, size_t from, size_t *to_out, struct buf *out,
		  struct buf *counts, uint32_t *tmin, uint32_t *tmax)
{
	struct keymap m;
	keymap_init(&m, g, from);
	size_t to = choose_logs(g, from, &m);
	struct buf h = {0}, col = {0}, frames = {0};
	put_header(&h, g, from, to, &m, tmin, tmax);
	const ProtobufCBinaryData **cell = cells_of(g, from, to, &m);
	for (size_t k = 0; k < m.n; k++) {
		size_t before = frames.len;
		buf_reset(&col);
		put_column(&col, cell, to - from, m.n, k);
		compress_append(&frames, &col);
		put_varint(&h, frames.len - before);
	}
	free(cell);
	free(m.slot);
	free(m.keys);
	buf_reset(out);
	buf_add(out, BLOCK_MAGIC, 2);
	struct buf zh = {0};
	compress_append(&zh, &h);
	put_varint(out, zh.len);
	buf_add(out, zh.p, zh.len);
	buf_add(out, frames.p, frames.len);
	buf_free(&zh);
	buf_free(&h);
	buf_free(&col);
	buf_free(&frames);
	buf_reset(counts);
	put_counts(counts, g, from, to, *tmin);
	*to_out = to;
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
