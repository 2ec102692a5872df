#include "export/nf5.h"

#include "export/wire.h"

static uint32_t nf5_rel_ms(int64_t t_us, int64_t boot_us)
{
	return t_us > boot_us ? (uint32_t)((t_us - boot_us) / 1000) : 0;
}

/* One record, Cisco's V5 layout: 48 bytes. */
static void nf5_record(struct wbuf *w, const struct flow_rec *r, int64_t boot_us)
{
	wbuf_bytes(w, r->key.src, 4);
	wbuf_bytes(w, r->key.dst, 4);
	wbuf_u32(w, 0); /* nexthop: a meter does not route */
	wbuf_u16(w, r->key.inport);
	wbuf_u16(w, r->outport);
	wbuf_u32(w, (uint32_t)r->packets);
	wbuf_u32(w, (uint32_t)r->bytes);
	wbuf_u32(w, nf5_rel_ms(r->first_us, boot_us));
	wbuf_u32(w, nf5_rel_ms(r->last_us, boot_us));
	wbuf_u16(w, r->key.sport);
	wbuf_u16(w, r->key.dport);
	wbuf_u8(w, 0);
	wbuf_u8(w, r->tcp_flags);
	wbuf_u8(w, r->key.proto);
	wbuf_u8(w, r->key.tos);
	wbuf_u32(w, 0); /* src_as, dst_as */
	wbuf_u32(w, 0); /* src_mask, dst_mask, pad2 */
}

size_t nf5_encode(const struct nf5_header *h, const struct flow_rec *recs, size_t n, uint8_t *out, size_t cap)
{
	struct wbuf w = {out, cap, 0, false};
	if (n == 0 || n > NF5_MAX_RECORDS)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (recs[i].key.af != 4 || recs[i].packets > UINT32_MAX || recs[i].bytes > UINT32_MAX)
			return 0;
	int64_t now = h->now_us < 0 ? 0 : h->now_us;
	wbuf_u16(&w, 5);
	wbuf_u16(&w, (uint16_t)n);
	wbuf_u32(&w, nf5_rel_ms(now, h->boot_us));
	wbuf_u32(&w, (uint32_t)(now / 1000000));
	wbuf_u32(&w, (uint32_t)(now % 1000000) * 1000);
	wbuf_u32(&w, h->flow_sequence);
	wbuf_u8(&w, h->engine_type);
	wbuf_u8(&w, h->engine_id);
	wbuf_u16(&w, h->sampling);
	for (size_t i = 0; i < n; i++)
		nf5_record(&w, &recs[i], h->boot_us);
	return w.err ? 0 : w.len;
}
