#include "sls/body.h"

#include <lz4.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "core/log.h"
#include "core/num.h"
#include "core/xmalloc.h"

int sls_compress_parse(struct str v, enum sls_compress *out)
{
	static const struct {
		const char *name;
		enum sls_compress c;
	} names[] = {{"lz4", SLS_COMPRESS_LZ4}, {"deflate", SLS_COMPRESS_DEFLATE},
		     {"zstd", SLS_COMPRESS_ZSTD}};
	if (!v.p || v.len == 0) {
		*out = SLS_COMPRESS_NONE;
		return 0;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (str_caseeq(v, names[i].name)) {
			*out = names[i].c;
			return 0;
		}
	return -1;
}

/* Each decompressor fills exactly n bytes or fails. */
static int unlz4(struct str in, char *out, size_t n)
{
	if (in.len > (size_t)INT32_MAX)
		return -1;
	int got = LZ4_decompress_safe(in.p, out, (int)in.len, (int)n);
	return got >= 0 && (size_t)got == n ? 0 : -1;
}

static int undeflate(struct str in, char *out, size_t n)
{
	uLongf got = (uLongf)n;
	return uncompress((Bytef *)out, &got, (const Bytef *)in.p, (uLong)in.len) == Z_OK &&
			       got == n
		       ? 0
		       : -1;
}

static int unzstd(struct str in, char *out, size_t n)
{
	size_t got = ZSTD_decompress(out, n, in.p, in.len);
	return !ZSTD_isError(got) && got == n ? 0 : -1;
}

enum sls_err sls_body_raw(enum sls_compress c, struct str body, struct str rawsize,
			  struct str *raw, char **owned, const char **detail)
{
	static int (*const fns[])(struct str, char *, size_t) = {
		[SLS_COMPRESS_LZ4] = unlz4, [SLS_COMPRESS_DEFLATE] = undeflate,
		[SLS_COMPRESS_ZSTD] = unzstd};
	int64_t n;
	*owned = NULL;
	if (c == SLS_COMPRESS_NONE) {
		*detail = "raw body larger than 10 MB";
		if (body.len > SLS_MAX_RAW_BODY)
			return SLS_ERR_POST_BODY_TOO_LARGE;
		*raw = body;
		return SLS_ERR_OK;
	}
	if (!rawsize.p)
		return SLS_ERR_MISSING_BODY_RAW_SIZE;
	*detail = "not a decimal byte count";
	if (num_parse_i64(rawsize, 0, INT64_MAX, &n) != 0)
		return SLS_ERR_INVALID_BODY_RAW_SIZE;
	*detail = "x-log-bodyrawsize above 10 MB";
	if ((uint64_t)n > SLS_MAX_RAW_BODY)
		return SLS_ERR_POST_BODY_TOO_LARGE;
	char *out = xmalloc((size_t)n + 1);
	if (fns[c](body, out, (size_t)n) != 0) {
		free(out);
		*detail = "the data does not decompress to x-log-bodyrawsize bytes";
		return SLS_ERR_POST_BODY_UNCOMPRESS_ERROR;
	}
	*raw = (struct str){out, (size_t)n};
	*owned = out;
	return SLS_ERR_OK;
}

/* protobuf-c allocator with a budget: allocation fails past it, so unpack
 * returns NULL instead of taking what a hostile body asks for. */
/* protobuf-c's objects for one body live in an arena: a LogGroup of 4,096
 * logs of 16 fields is ~200,000 objects, and a malloc and a free for each cost
 * more than everything else PutLogs does (bench/logstore). The arena's header
 * sits in its first chunk, right before the first object protobuf-c allocates,
 * which is the LogGroup itself; so sls_loggroup_free and sls_loggroup_stamp
 * find the arena from the group. Freeing an object is a no-op; the arena goes
 * whole. */
struct pb_chunk {
	struct pb_chunk *next;
	size_t cap;
	max_align_t data[];
};

struct pb_arena {
	char *cur, *end;	 /* the newest chunk's room left */
	struct pb_chunk *chunks; /* the newest first; the last holds this header */
	size_t used;             /* bytes handed out, against limit */
	size_t limit;            /* SLS_DECODE_MEMORY_MAX, or what a group's Logs have left */
	void *first;             /* the first object: the LogGroup */
};

#define PB_ALIGN (_Alignof(max_align_t)) /* 16 on x86-64, where sizeof is 32 */
#define PB_HEAD_SIZE ((sizeof(struct pb_arena) + PB_ALIGN - 1) / PB_ALIGN * PB_ALIGN)

static struct pb_chunk *pb_chunk_new(size_t cap)
{
	struct pb_chunk *c = xmalloc(sizeof(*c) + cap);
	c->next = NULL;
	c->cap = cap;
	return c;
}

/* c becomes the newest chunk, its first `skip` bytes taken. */
static void pb_use_chunk(struct pb_arena *a, struct pb_chunk *c, size_t skip)
{
	a->cur = (char *)c->data + skip;
	a->end = (char *)c->data + c->cap;
}

/* Out of line, so the common case in pb_alloc saves no registers. */
__attribute__((noinline)) static void *pb_alloc_slow(struct pb_arena *a, size_t need)
{
	size_t cap = need > SLS_DECODE_CHUNK ? need : SLS_DECODE_CHUNK;
	struct pb_chunk *c = pb_chunk_new(cap);
	c->next = a->chunks;
	a->chunks = c;
	pb_use_chunk(a, c, need);
	if (!a->first)
		a->first = c->data;
	return c->data;
}

/* protobuf-c calls this for every message, key and value it decodes (~30
 * times a Log): the common case (room in the newest chunk) is a bump of
 * a->cur. The budget counts what was asked for. */
static void *pb_alloc(void *data, size_t size)
{
	struct pb_arena *a = data;
	if (size > a->limit - a->used)
		return NULL;
	a->used += size;
	size_t need = (size + PB_ALIGN - !!size) & ~(PB_ALIGN - 1); /* 0: one unit */
	char *p = a->cur;
	if (need > (size_t)(a->end - p))
		return pb_alloc_slow(a, need);
	a->cur = p + need;
	if (!a->first)
		a->first = p;
	return p;
}

static void pb_free(void *data, void *p)
{
}

/* What the server itself adds (stamped fields) is not counted against the
 * decode budget: it is bounded by the logs and the fields. */
static void *pb_alloc_nofail(struct pb_arena *a, size_t size)
{
	size_t used = a->used;
	a->used = 0;
	void *p = pb_alloc(a, size);
	a->used = used;
	return p;
}

/* A new arena in its own first chunk; *alloc allocates from it. */
static struct pb_arena *pb_arena_new(ProtobufCAllocator *alloc)
{
	struct pb_chunk *c = pb_chunk_new(SLS_DECODE_CHUNK);
	struct pb_arena *a = (struct pb_arena *)(void *)c->data;
	*a = (struct pb_arena){.chunks = c, .limit = SLS_DECODE_MEMORY_MAX};
	pb_use_chunk(a, c, PB_HEAD_SIZE);
	*alloc = (ProtobufCAllocator){.alloc = pb_alloc, .free = pb_free, .allocator_data = a};
	return a;
}

static void pb_arena_free(struct pb_arena *a)
{
	for (struct pb_chunk *c = a->chunks, *next; c; c = next) {
		next = c->next;
		free(c); /* the header is in the last one */
	}
}

/* Empty again but for its first chunk (which holds the header), kept. */
static void pb_arena_reset(struct pb_arena *a)
{
	struct pb_chunk *c = a->chunks;
	while (c->next) {
		struct pb_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->chunks = c;
	pb_use_chunk(a, c, PB_HEAD_SIZE);
	a->used = 0;
	a->first = NULL;
}

/* The arena of a group decoded by sls_loggroup_decode. */
static struct pb_arena *pb_arena_of(Sls__LogGroup *g)
{
	return (struct pb_arena *)(void *)((char *)g - PB_HEAD_SIZE);
}

static struct pb_arena *pb_arena_of_packed(Sls__LogGroupPacked *g)
{
	return (struct pb_arena *)(void *)((char *)g - PB_HEAD_SIZE);
}

static enum sls_err check_log(const Sls__Log *l, const char **detail)
{
	*detail = "too many contents in a log";
	if (l->n_contents > SLS_MAX_CONTENTS_PER_LOG)
		return SLS_ERR_POST_BODY_INVALID;
	for (size_t i = 0; i < l->n_contents; i++) {
		*detail = "a key is longer than 256 bytes";
		if (l->contents[i]->key.len > SLS_MAX_KEY_LEN)
			return SLS_ERR_POST_BODY_INVALID;
		*detail = "a value is longer than 1 MB";
		if (l->contents[i]->value.len > SLS_MAX_VALUE_LEN)
			return SLS_ERR_POST_BODY_INVALID;
	}
	return SLS_ERR_OK;
}

/* The limits of a group but for its logs', on either view of it. */
#define CHECK_GROUP_HEAD(g, detail)                                                            \
	do {                                                                                   \
		*(detail) = "more than 4096 logs in the LogGroup";                               \
		if ((g)->n_logs > SLS_MAX_LOGS_PER_GROUP)                                        \
			return SLS_ERR_POST_BODY_INVALID;                                        \
		*(detail) = "too many LogTags";                                                  \
		if ((g)->n_logtags > SLS_MAX_TAGS_PER_GROUP)                                     \
			return SLS_ERR_POST_BODY_INVALID;                                        \
		*(detail) = "Topic or Source longer than 1024 bytes";                            \
		if (((g)->has_topic && (g)->topic.len > SLS_MAX_TOPIC_LEN) ||                    \
		    ((g)->has_source && (g)->source.len > SLS_MAX_TOPIC_LEN))                    \
			return SLS_ERR_POST_BODY_INVALID;                                        \
		for (size_t i_ = 0; i_ < (g)->n_logtags; i_++) {                                 \
			*(detail) = "a tag key or value is too long";                            \
			if ((g)->logtags[i_]->key.len > SLS_MAX_KEY_LEN ||                       \
			    (g)->logtags[i_]->value.len > SLS_MAX_TOPIC_LEN)                     \
				return SLS_ERR_POST_BODY_INVALID;                                \
		}                                                                              \
	} while (0)

static enum sls_err check_group(const Sls__LogGroup *g, const char **detail)
{
	CHECK_GROUP_HEAD(g, detail);
	for (size_t i = 0; i < g->n_logs; i++) {
		enum sls_err e = check_log(g->logs[i], detail);
		if (e != SLS_ERR_OK)
			return e;
	}
	return SLS_ERR_OK;
}

static enum sls_err check_packed_group(const Sls__LogGroupPacked *g, const char **detail)
{
	CHECK_GROUP_HEAD(g, detail);
	return SLS_ERR_OK;
}

enum sls_err sls_loggroup_decode(struct str raw, Sls__LogGroup **out, const char **detail)
{
	ProtobufCAllocator alloc;
	struct pb_arena *a = pb_arena_new(&alloc);
	*out = NULL;
	*detail = "not a LogGroup protobuf";
	Sls__LogGroup *g = sls__log_group__unpack(&alloc, raw.len, (const uint8_t *)raw.p);
	if (g && (void *)g != a->first)
		fatal("sls: protobuf-c did not allocate the LogGroup first");
	enum sls_err e = g ? check_group(g, detail) : SLS_ERR_POST_BODY_INVALID;
	if (e != SLS_ERR_OK) {
		pb_arena_free(a);
		return e;
	}
	*out = g;
	return SLS_ERR_OK;
}

void sls_loggroup_free(Sls__LogGroup *g)
{
	if (g)
		pb_arena_free(pb_arena_of(g));
}

/* Bit k set when a key of f is k bytes long (k < 64), for stamped_index. */
static uint64_t key_lens(const struct sls_field *f, size_t n)
{
	uint64_t lens = 0;
	for (size_t i = 0; i < n; i++)
		lens |= f[i].key.len < 64 ? 1ull << f[i].key.len : 0;
	return lens;
}

/* The index in f of the stamped field key k is, or n. Most keys are none of
 * them, and most of those have a length none of them has (lens: key_lens). */
static size_t stamped_key(struct str k, const struct sls_field *f, size_t n, uint64_t lens)
{
	if (k.len < 64 && !(lens >> k.len & 1))
		return n;
	for (size_t i = 0; i < n; i++)
		if (k.len == f[i].key.len && k.len && k.p[0] == f[i].key.p[0] &&
		    memcmp(k.p, f[i].key.p, f[i].key.len) == 0)
			return i;
	return n;
}

static size_t stamped_index(const Sls__Log__Content *c, const struct sls_field *f, size_t n,
			    uint64_t lens)
{
	return stamped_key(sls_pb_str(c->key), f, n, lens);
}

static ProtobufCBinaryData arena_copy(struct pb_arena *a, struct str s)
{
	uint8_t *p = pb_alloc_nofail(a, s.len + 1);
	memcpy(p, s.p, s.len);
	p[s.len] = 0;
	return (ProtobufCBinaryData){s.len, p};
}

static Sls__Log__Content *content_new(struct pb_arena *a, const struct sls_field *f)
{
	Sls__Log__Content *c = pb_alloc_nofail(a, sizeof(*c));
	sls__log__content__init(c);
	c->key = arena_copy(a, f->key);
	c->value = arena_copy(a, f->value);
	return c;
}

/* True when l carries each stamped field exactly once, with its value: what
 * a well-behaved sender (sagflow's agent) sends, so nothing is rebuilt. */
static bool stamped_already(const Sls__Log *l, const struct sls_field *f, size_t n)
{
	uint64_t seen = 0, lens = key_lens(f, n);
	for (size_t i = 0; i < l->n_contents; i++) {
		const Sls__Log__Content *c = l->contents[i];
		size_t j = stamped_index(c, f, n, lens);
		if (j == n)
			continue;
		if (seen >> j & 1 || c->value.len != f[j].value.len ||
		    memcmp(c->value.data, f[j].value.p, f[j].value.len) != 0)
			return false;
		seen |= 1ull << j;
	}
	return seen == (n == 64 ? ~0ull : (1ull << n) - 1);
}

/* In the group's arena, so sls_loggroup_free frees it with the rest; the
 * replaced contents stay there unused until then. The stamped contents are
 * shared by every log of the group (nothing writes a decoded group). */
static void stamp_log(struct pb_arena *a, Sls__Log *l, Sls__Log__Content *const *stamp,
		      const struct sls_field *f, size_t n)
{
	if (stamped_already(l, f, n))
		return;
	Sls__Log__Content **out = pb_alloc_nofail(a, (l->n_contents + n) * sizeof(*out));
	size_t k = 0;
	uint64_t lens = key_lens(f, n);
	for (size_t i = 0; i < l->n_contents; i++)
		if (stamped_index(l->contents[i], f, n, lens) == n)
			out[k++] = l->contents[i];
	for (size_t i = 0; i < n; i++)
		out[k++] = stamp[i];
	l->contents = out;
	l->n_contents = k;
}

void sls_loggroup_stamp(Sls__LogGroup *g, const struct sls_field *f, size_t n)
{
	struct pb_arena *a = pb_arena_of(g);
	Sls__Log__Content **stamp = pb_alloc_nofail(a, (n ? n : 1) * sizeof(*stamp));
	for (size_t i = 0; i < n; i++)
		stamp[i] = content_new(a, &f[i]);
	for (size_t i = 0; i < g->n_logs; i++)
		stamp_log(a, g->logs[i], stamp, f, n);
}

/* ---- a LogGroup decoded Log by Log ---- */

/* Contents kept with their packed bytes, SLS_LOGS_WAYS for each index of a
 * Log: a sender's logs repeat most Contents from one log to the next (the
 * device identity always; of flow records, protocol, times, ports, flags and
 * interfaces take a few values each), and a Content whose bytes equal a
 * slot's decodes to the slot's Content, so protobuf-c unpacks only the others
 * (a nested message is protobuf-c's costliest step: docs/logstore.md
 * "Layout"). Only short Contents are kept, in place, so the slots cost no
 * allocation and a fixed amount of memory; a new one replaces the oldest. */
struct logs_slot {
	size_t len;			  /* of bytes; 0: empty */
	uint8_t bytes[SLS_LOGS_SLOT_BYTES]; /* the packed Content */
	uint8_t kv[SLS_LOGS_SLOT_BYTES];    /* its key, then its value */
	Sls__Log__Content c;		  /* decoded, into kv */
};

/* An index whose last SLS_LOGS_COLD Contents matched no way (a flow's
 * addresses, ports, byte counts) is cold: its Contents are unpacked where
 * they are, without comparing them with the ways or copying them in, but
 * for every SLS_LOGS_PROBE-th, which uses the ways as before; one hit warms
 * the index again. */
struct logs_index {
	struct logs_slot way[SLS_LOGS_WAYS];
	size_t next;	/* the way to replace */
	uint32_t misses; /* in a row */
	uint32_t skipped; /* Contents unpacked while cold */
};

/* sls_logs_same: a way that gave Content k of two Logs in a row gave the
 * same bytes both times, since only Content k of a Log rewrites the ways of
 * index k, and the second Log's hit did not. */
_Static_assert(SLS_LOGS_SLOTS <= 64, "sls_logs_same is one bit an index");

struct sls_logs {
	Sls__LogGroupPacked *g; /* first in its arena: each Log still packed */
	struct pb_arena *log;	/* the current Log's */
	ProtobufCAllocator log_alloc;
	struct logs_index slot[SLS_LOGS_SLOTS];
	const struct logs_slot *from[SLS_LOGS_SLOTS]; /* the way Content k of the last Log came from, or NULL */
	size_t next;  /* the index of the Log that follows the last one got, or SIZE_MAX */
	size_t nfrom; /* entries of from that may be set */
	uint64_t same; /* sls_logs_same */
};

enum sls_err sls_logs_open(struct str raw, struct sls_logs **out, const char **detail)
{
	ProtobufCAllocator alloc;
	struct pb_arena *a = pb_arena_new(&alloc);
	*out = NULL;
	*detail = "not a LogGroup protobuf";
	Sls__LogGroupPacked *g =
		sls__log_group_packed__unpack(&alloc, raw.len, (const uint8_t *)raw.p);
	if (g && (void *)g != a->first)
		fatal("sls: protobuf-c did not allocate the LogGroup first");
	enum sls_err e = g ? check_packed_group(g, detail) : SLS_ERR_POST_BODY_INVALID;
	if (e != SLS_ERR_OK) {
		pb_arena_free(a);
		return e;
	}
	struct sls_logs *s = xmalloc(sizeof(*s));
	s->g = g;
	s->log = pb_arena_new(&s->log_alloc);
	s->log->limit = SLS_DECODE_MEMORY_MAX - a->used; /* both together: the one budget */
	for (size_t i = 0; i < SLS_LOGS_SLOTS; i++) {
		for (size_t w = 0; w < SLS_LOGS_WAYS; w++)
			s->slot[i].way[w].len = 0;
		s->slot[i].next = 0;
		s->slot[i].misses = s->slot[i].skipped = 0;
		s->from[i] = NULL;
	}
	s->next = SIZE_MAX;
	s->nfrom = 0;
	s->same = 0;
	*out = s;
	return SLS_ERR_OK;
}

const Sls__LogGroupPacked *sls_logs_group(const struct sls_logs *s)
{
	return s->g;
}

size_t sls_logs_count(const struct sls_logs *s)
{
	return s->g->n_logs;
}

/* A bytes field copied into at, as protobuf-c leaves it (no data when empty). */
static ProtobufCBinaryData slot_copy(ProtobufCBinaryData b, uint8_t *at)
{
	if (b.len)
		memcpy(at, b.data, b.len);
	return (ProtobufCBinaryData){b.len, b.len ? at : NULL};
}

/* Content b (packed) kept in slot t, with c, its decoding. */
static void slot_keep(struct logs_slot *t, ProtobufCBinaryData b, const Sls__Log__Content *c)
{
	t->len = b.len;
	memcpy(t->bytes, b.data, b.len);
	t->c = *c;
	t->c.key = slot_copy(c->key, t->kv);
	t->c.value = slot_copy(c->value, t->kv + c->key.len);
}

/* Content i of a Log, packed as b: a slot's when its bytes are b's, else
 * unpacked by protobuf-c (and kept when short); NULL when it does not decode.
 * *way: the slot it is in, or NULL. */
static Sls__Log__Content *logs_content(struct sls_logs *s, size_t i, ProtobufCBinaryData b,
				       const struct logs_slot **way)
{
	*way = NULL;
	struct logs_index *x = i < SLS_LOGS_SLOTS ? &s->slot[i] : NULL;
	if (x && x->misses >= SLS_LOGS_COLD && ++x->skipped % SLS_LOGS_PROBE != 0)
		x = NULL; /* cold */
	/* The ways of an index hold the same key, so values differ at the end:
	 * the last byte first, before memcmp. */
	for (size_t w = 0; x && w < SLS_LOGS_WAYS; w++) {
		struct logs_slot *t = &x->way[w];
		if (t->len && t->len == b.len && t->bytes[b.len - 1] == b.data[b.len - 1] &&
		    memcmp(t->bytes, b.data, b.len) == 0) {
			x->misses = 0;
			*way = t;
			return &t->c;
		}
	}
	/* A nested message: protobuf-c generates no unpack function of its own. */
	Sls__Log__Content *c = (Sls__Log__Content *)protobuf_c_message_unpack(
		&sls__log__content__descriptor, &s->log_alloc, b.len, b.data);
	if (x)
		x->misses++;
	if (!c || !x || b.len > SLS_LOGS_SLOT_BYTES) /* key + value < the packed bytes */
		return c;
	struct logs_slot *t = &x->way[x->next];
	x->next = (x->next + 1) % SLS_LOGS_WAYS;
	slot_keep(t, b, c);
	*way = t;
	return &t->c;
}

/* Content k of Log i came from way (or NULL): sls_logs_same's bit k. */
static void logs_note(struct sls_logs *s, size_t i, size_t k, const struct logs_slot *way)
{
	if (k >= SLS_LOGS_SLOTS)
		return;
	if (way && way == s->from[k] && s->next == i)
		s->same |= 1ull << k;
	s->from[k] = way;
}

/* Log i is unpacked as LogPacked (the same wire format, each Content left
 * packed), then each Content on its own: what unpacking it as a Log does,
 * but for the Contents a slot already holds. fuzz_loggroup holds the result
 * to the whole-group decoder's. */
static enum sls_err logs_get(struct sls_logs *s, size_t i, const Sls__Log **out,
			     const char **detail)
{
	pb_arena_reset(s->log);
	*out = NULL;
	s->same = 0;
	size_t was = s->nfrom;
	s->nfrom = SLS_LOGS_SLOTS; /* until this Log is through: from[] may hold anything */
	*detail = "not a LogGroup protobuf";
	Sls__LogPacked *p = sls__log_packed__unpack(&s->log_alloc, s->g->logs[i].len, s->g->logs[i].data);
	if (!p)
		return SLS_ERR_POST_BODY_INVALID;
	*detail = "too many contents in a log";
	if (p->n_contents > SLS_MAX_CONTENTS_PER_LOG)
		return SLS_ERR_POST_BODY_INVALID;
	Sls__Log *l = pb_alloc(s->log, sizeof(*l));
	Sls__Log__Content **c = pb_alloc(s->log, (p->n_contents ? p->n_contents : 1) * sizeof(*c));
	*detail = "not a LogGroup protobuf";
	if (!l || !c)
		return SLS_ERR_POST_BODY_INVALID;
	sls__log__init(l);
	l->time = p->time;
	l->has_timens = p->has_timens;
	l->timens = p->timens;
	l->n_contents = p->n_contents;
	l->contents = c;
	for (size_t k = 0; k < p->n_contents; k++) {
		const struct logs_slot *way;
		if (!(c[k] = logs_content(s, k, p->contents[k], &way)))
			return SLS_ERR_POST_BODY_INVALID;
		logs_note(s, i, k, way);
	}
	size_t kept = p->n_contents < SLS_LOGS_SLOTS ? p->n_contents : SLS_LOGS_SLOTS;
	for (size_t k = kept; k < was; k++)
		s->from[k] = NULL; /* no Content k in this Log: none in the next is "the same" */
	s->nfrom = kept;
	*out = l;
	return check_log(l, detail);
}

/* The Log got before this one is the one before it (i - 1), or none of
 * Log i's Contents is "the same". */
enum sls_err sls_logs_get(struct sls_logs *s, size_t i, const Sls__Log **out, const char **detail)
{
	enum sls_err e = logs_get(s, i, out, detail);
	s->next = e == SLS_ERR_OK ? i + 1 : SIZE_MAX;
	if (e != SLS_ERR_OK)
		s->same = 0;
	return e;
}

uint64_t sls_logs_same(const struct sls_logs *s)
{
	return s->same;
}

void sls_logs_free(struct sls_logs *s)
{
	if (!s)
		return;
	pb_arena_free(s->log);
	pb_arena_free(pb_arena_of_packed(s->g));
	free(s);
}

/* The stamped field Content i (k, v) is, and whether its value is that
 * field's: from the memo when the Content is the previous Log's (same),
 * else looked up and remembered. */
static size_t stamped_field(struct sls_stamp_memo *m, size_t i, uint64_t same, struct str k,
			    struct str v, const struct sls_field *f, size_t n, uint64_t lens,
			    bool *value_eq)
{
	if (i < SLS_LOGS_SLOTS && (same >> i & 1)) {
		*value_eq = m->value_eq[i];
		return m->field[i];
	}
	size_t j = stamped_key(k, f, n, lens);
	*value_eq = j < n && str_eq(v, f[j].value);
	if (i < SLS_LOGS_SLOTS) {
		m->field[i] = (uint8_t)j;
		m->value_eq[i] = *value_eq;
	}
	return j;
}

/* One pass over l for the common case (the identity there already, each
 * field once with its value: every content kept as it is); a second over the
 * slices to drop the stamped keys otherwise. */
size_t sls_log_stamped(const Sls__Log *l, const struct sls_field *f, size_t n, uint64_t same,
		       struct sls_stamp_memo *m, struct str *k, struct str *v)
{
	struct sls_stamp_memo local;
	if (!m) {
		m = &local;
		same = 0;
	}
	uint64_t seen = 0, lens = key_lens(f, n);
	bool as_is = true, eq;
	for (size_t i = 0; i < l->n_contents; i++) {
		k[i] = sls_pb_str(l->contents[i]->key);
		v[i] = sls_pb_str(l->contents[i]->value);
		size_t j = stamped_field(m, i, same, k[i], v[i], f, n, lens, &eq);
		if (j == n)
			continue;
		as_is &= !(seen >> j & 1) && eq;
		seen |= 1ull << j;
	}
	m->as_is = as_is && seen == (n == 64 ? ~0ull : (1ull << n) - 1);
	if (m->as_is)
		return l->n_contents;
	size_t out = 0;
	for (size_t i = 0; i < l->n_contents; i++)
		if ((i < SLS_LOGS_SLOTS ? m->field[i] : stamped_key(k[i], f, n, lens)) == n) {
			k[out] = k[i];
			v[out++] = v[i];
		}
	for (size_t i = 0; i < n; i++) {
		k[out] = f[i].key;
		v[out++] = f[i].value;
	}
	return out;
}
