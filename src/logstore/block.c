#include "logstore/block.h"

#include <stdlib.h>
#include <zstd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "sls/body.h"

#define BLOCK_MAGIC "B1"

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

static void put_column(struct buf *b, const Sls__LogGroup *g, size_t from, size_t to,
		       struct str key)
{
	for (size_t i = from; i < to; i++) {
		const Sls__Log *l = g->logs[i];
		const ProtobufCBinaryData *v = NULL;
		for (size_t c = 0; c < l->n_contents; c++)
			if (str_eq(sls_pb_str(l->contents[c]->key), key))
				v = &l->contents[c]->value; /* the last one wins */
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
		size_t keys = m->n + new_keys(m, l);
		if (to > from && keys * (to - from + 1) > BLOCK_MAX_CELLS)
			break;
		for (size_t c = 0; c < l->n_contents; c++)
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

void block_encode(const Sls__LogGroup *g, size_t from, size_t *to_out, struct buf *out,
		  uint32_t *tmin, uint32_t *tmax)
{
	struct keymap m;
	keymap_init(&m, g, from);
	size_t to = choose_logs(g, from, &m);
	struct buf p = {0};
	buf_add(&p, BLOCK_MAGIC, 2);
	put_varint(&p, to - from);
	put_varint(&p, m.n);
	size_t ns_at = p.len;
	put_times(&p, g, from, to, tmin, tmax);
	bool has_ns = p.p[ns_at] != 0;
	for (size_t k = 0; k < m.n; k++) {
		put_varint(&p, m.keys[k].len);
		buf_add(&p, m.keys[k].p, m.keys[k].len);
	}
	for (size_t i = from; i < to; i++)
		put_varint(&p, g->logs[i]->time);
	for (size_t i = from; has_ns && i < to; i++)
		put_varint(&p, g->logs[i]->has_timens ? g->logs[i]->timens : 0);
	for (size_t k = 0; k < m.n; k++)
		put_column(&p, g, from, to, m.keys[k]);
	free(m.slot);
	free(m.keys);
	size_t cap = ZSTD_compressBound(p.len);
	buf_reset(out);
	buf_reserve(out, cap);
	size_t z = ZSTD_compress(out->p, cap, p.p, p.len, BLOCK_ZSTD_LEVEL);
	if (ZSTD_isError(z))
		fatal("logstore: zstd cannot compress a block: %s", ZSTD_getErrorName(z));
	out->len = z;
	buf_free(&p);
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
	size_t got = ZSTD_decompress(raw, (size_t)n, data.p, data.len);
	if (ZSTD_isError(got) || got != n) {
		free(raw);
		return NULL;
	}
	*len = (size_t)n;
	return raw;
}

static int decode_body(struct cur *c, struct block *b)
{
	bool has_ns = get_varint(c) != 0;
	b->keys = xcalloc(b->nkeys ? b->nkeys : 1, sizeof(*b->keys));
	for (size_t k = 0; k < b->nkeys && !c->bad; k++)
		b->keys[k] = get_bytes(c, get_varint(c));
	b->time = xcalloc(b->n ? b->n : 1, sizeof(*b->time));
	for (size_t i = 0; i < b->n && !c->bad; i++)
		b->time[i] = (uint32_t)get_varint(c);
	if (has_ns) {
		b->ns = xcalloc(b->n ? b->n : 1, sizeof(*b->ns));
		for (size_t i = 0; i < b->n && !c->bad; i++)
			b->ns[i] = (uint32_t)get_varint(c);
	}
	size_t cells = b->n * b->nkeys;
	b->vals = xcalloc(cells ? cells : 1, sizeof(*b->vals));
	for (size_t k = 0; k < b->nkeys && !c->bad; k++)
		for (size_t i = 0; i < b->n && !c->bad; i++) {
			uint64_t l = get_varint(c);
			if (l)
				b->vals[i * b->nkeys + k] = get_bytes(c, l - 1);
		}
	return c->bad ? -1 : 0;
}

int block_decode(struct str data, struct block *b)
{
	memset(b, 0, sizeof(*b));
	size_t len = 0;
	b->raw = decompress(data, &len);
	if (!b->raw)
		return -1;
	struct cur c = {b->raw, b->raw + len, false};
	if (get_bytes(&c, 2).p != b->raw || memcmp(b->raw, BLOCK_MAGIC, 2) != 0) {
		block_free(b);
		return -1;
	}
	uint64_t n = get_varint(&c), nkeys = get_varint(&c);
	if (c.bad || n > SLS_MAX_LOGS_PER_GROUP || nkeys > BLOCK_MAX_CELLS ||
	    n * nkeys > BLOCK_MAX_CELLS) {
		block_free(b);
		return -1;
	}
	b->n = (size_t)n;
	b->nkeys = (size_t)nkeys;
	if (decode_body(&c, b) != 0) {
		block_free(b);
		return -1;
	}
	return 0;
}

void block_free(struct block *b)
{
	free(b->keys);
	free(b->time);
	free(b->ns);
	free(b->vals);
	free(b->raw);
	memset(b, 0, sizeof(*b));
}
