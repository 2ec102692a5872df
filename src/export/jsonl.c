/* The JSON-lines sink: one object per closed record, with the Log Service
 * field names of spec §1, for piping flows into other tools. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "core/xmalloc.h"
#include "export/exporter.h"

struct jsonl_exporter {
	struct exporter ex;
	FILE *f;
	int own, dirty;
	int64_t flushed_us;
};

#define JSONL_FLUSH_US 1000000LL /* a reader of a live run sees records within 1 s */

static void jl_record(struct exporter *ex, const struct flow_rec *r)
{
	struct jsonl_exporter *jl = (struct jsonl_exporter *)ex;
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	int fam = r->key.af == 6 ? AF_INET6 : AF_INET;
	inet_ntop(fam, r->key.src, src, sizeof(src));
	inet_ntop(fam, r->key.dst, dst, sizeof(dst));
	/* Addresses come from inet_ntop and everything else is a number, so no
	 * JSON escaping is needed. */
	int n = fprintf(jl->f,
			"{\"start\":%" PRId64 ",\"end\":%" PRId64 ",\"protocol\":%u,\"srcaddr\":\"%s\","
			"\"srcport\":%u,\"dstaddr\":\"%s\",\"dstport\":%u,\"packets\":%" PRIu64
			",\"bytes\":%" PRIu64 ",\"tcp-flags\":%u,\"tos\":%u,\"inport\":%u,\"outport\":%u,"
			"\"end-reason\":\"%s\"}\n",
			r->first_us / 1000000, r->last_us / 1000000, r->key.proto, src, r->key.sport, dst,
			r->key.dport, r->packets, r->bytes, r->tcp_flags, r->key.tos, r->key.inport, r->outport,
			flow_end_text((enum flow_end)r->end));
	ex->st.records++;
	jl->dirty = 1;
	if (n < 0)
		ex->st.send_errors++;
	else
		ex->st.bytes += (uint64_t)n;
}

static void jl_tick(struct exporter *ex, int64_t now_us)
{
	struct jsonl_exporter *jl = (struct jsonl_exporter *)ex;
	if (jl->dirty && now_us - jl->flushed_us >= JSONL_FLUSH_US) {
		jl->flushed_us = now_us;
		jl->dirty = 0;
		if (fflush(jl->f) != 0)
			ex->st.send_errors++;
	}
}

static void jl_flush(struct exporter *ex)
{
	struct jsonl_exporter *jl = (struct jsonl_exporter *)ex;
	jl->dirty = 0;
	if (fflush(jl->f) != 0)
		ex->st.send_errors++;
}

static void jl_free(struct exporter *ex)
{
	struct jsonl_exporter *jl = (struct jsonl_exporter *)ex;
	fflush(jl->f);
	if (jl->own)
		fclose(jl->f);
	free(jl);
}

static const struct exporter_ops jsonl_ops = {jl_record, jl_tick, jl_flush, jl_free};

struct exporter *jsonl_exporter_new(FILE *f, int own)
{
	struct jsonl_exporter *jl = xcalloc(1, sizeof(*jl));
	jl->ex.ops = &jsonl_ops;
	jl->ex.name = "jsonl";
	jl->f = f;
	jl->own = own;
	return &jl->ex;
}
