#include "sls/body.h"

#include <lz4.h>
#include <stdlib.h>
#include <zlib.h>
#include <zstd.h>

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
struct pb_budget {
	size_t used;
};

static void *pb_alloc(void *data, size_t size)
{
	struct pb_budget *b = data;
	if (size > SLS_DECODE_MEMORY_MAX - b->used)
		return NULL;
	b->used += size;
	return xmalloc(size ? size : 1);
}

static void pb_free(void *data, void *p)
{
	free(p);
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

static enum sls_err check_group(const Sls__LogGroup *g, const char **detail)
{
	*detail = "more than 4096 logs in the LogGroup";
	if (g->n_logs > SLS_MAX_LOGS_PER_GROUP)
		return SLS_ERR_POST_BODY_INVALID;
	*detail = "too many LogTags";
	if (g->n_logtags > SLS_MAX_TAGS_PER_GROUP)
		return SLS_ERR_POST_BODY_INVALID;
	*detail = "Topic or Source longer than 1024 bytes";
	if ((g->has_topic && g->topic.len > SLS_MAX_TOPIC_LEN) ||
	    (g->has_source && g->source.len > SLS_MAX_TOPIC_LEN))
		return SLS_ERR_POST_BODY_INVALID;
	for (size_t i = 0; i < g->n_logtags; i++) {
		*detail = "a tag key or value is too long";
		if (g->logtags[i]->key.len > SLS_MAX_KEY_LEN ||
		    g->logtags[i]->value.len > SLS_MAX_TOPIC_LEN)
			return SLS_ERR_POST_BODY_INVALID;
	}
	for (size_t i = 0; i < g->n_logs; i++) {
		enum sls_err e = check_log(g->logs[i], detail);
		if (e != SLS_ERR_OK)
			return e;
	}
	return SLS_ERR_OK;
}

enum sls_err sls_loggroup_decode(struct str raw, Sls__LogGroup **out, const char **detail)
{
	struct pb_budget budget = {0};
	ProtobufCAllocator a = {.alloc = pb_alloc, .free = pb_free, .allocator_data = &budget};
	*out = NULL;
	*detail = "not a LogGroup protobuf";
	Sls__LogGroup *g = sls__log_group__unpack(&a, raw.len, (const uint8_t *)raw.p);
	if (!g)
		return SLS_ERR_POST_BODY_INVALID;
	enum sls_err e = check_group(g, detail);
	if (e != SLS_ERR_OK) {
		sls__log_group__free_unpacked(g, &a);
		return e;
	}
	*out = g;
	return SLS_ERR_OK;
}

void sls_loggroup_free(Sls__LogGroup *g)
{
	struct pb_budget budget = {0};
	ProtobufCAllocator a = {.alloc = pb_alloc, .free = pb_free, .allocator_data = &budget};
	if (g)
		sls__log_group__free_unpacked(g, &a);
}

static bool stamped_key(const Sls__Log__Content *c, const struct sls_field *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (c->key.len == f[i].key.len && memcmp(c->key.data, f[i].key.p, f[i].key.len) == 0)
			return true;
	return false;
}

static Sls__Log__Content *content_new(const struct sls_field *f)
{
	Sls__Log__Content *c = xmalloc(sizeof(*c));
	sls__log__content__init(c);
	c->key = (ProtobufCBinaryData){f->key.len, (uint8_t *)xmemdup0(f->key.p, f->key.len)};
	c->value = (ProtobufCBinaryData){f->value.len, (uint8_t *)xmemdup0(f->value.p, f->value.len)};
	return c;
}

/* Everything is malloc'd as pb_alloc does, so sls_loggroup_free frees it. */
static void stamp_log(Sls__Log *l, const struct sls_field *f, size_t n)
{
	Sls__Log__Content **out = xcalloc(l->n_contents + n, sizeof(*out));
	size_t k = 0;
	for (size_t i = 0; i < l->n_contents; i++) {
		if (stamped_key(l->contents[i], f, n))
			protobuf_c_message_free_unpacked(&l->contents[i]->base, NULL);
		else
			out[k++] = l->contents[i];
	}
	for (size_t i = 0; i < n; i++)
		out[k++] = content_new(&f[i]);
	free(l->contents);
	l->contents = out;
	l->n_contents = k;
}

void sls_loggroup_stamp(Sls__LogGroup *g, const struct sls_field *f, size_t n)
{
	for (size_t i = 0; i < g->n_logs; i++)
		stamp_log(g->logs[i], f, n);
}
