#include "export/nftmpl.h"

/* IANA IPFIX information elements (= V9 field types for ids < 128). */
#define IE_OCTETS 1
#define IE_PACKETS 2
#define IE_PROTOCOL 4
#define IE_TOS 5
#define IE_TCP_FLAGS 6
#define IE_SRC_PORT 7
#define IE_SRC_V4 8
#define IE_INPUT 10
#define IE_DST_PORT 11
#define IE_DST_V4 12
#define IE_OUTPUT 14
#define IE_SRC_V6 27
#define IE_DST_V6 28
#define IE_SAMPLING_INTERVAL 34
#define IE_FLOW_END_REASON 136
#define IE_START_MS 152
#define IE_END_MS 153
#define IE_SYSTEM_INIT_MS 160

#define NFTMPL_FIELD_LIST(SRC, DST, ALEN)                                                          \
	{                                                                                          \
		{IE_OCTETS, 8}, {IE_PACKETS, 8}, {IE_PROTOCOL, 1}, {IE_TOS, 1}, {IE_TCP_FLAGS, 1}, \
		    {IE_SRC_PORT, 2}, {SRC, ALEN}, {IE_INPUT, 2}, {IE_DST_PORT, 2}, {DST, ALEN},   \
		    {IE_OUTPUT, 2}, {IE_START_MS, 8}, {IE_END_MS, 8}, {IE_FLOW_END_REASON, 1},     \
	}

static const struct nftmpl_field fields_v4[NFTMPL_FIELDS] = NFTMPL_FIELD_LIST(IE_SRC_V4, IE_DST_V4, 4);
static const struct nftmpl_field fields_v6[NFTMPL_FIELDS] = NFTMPL_FIELD_LIST(IE_SRC_V6, IE_DST_V6, 16);

const struct nftmpl_field nftmpl_opt_fields[NFTMPL_OPT_FIELDS - 1] = {
	{IE_SAMPLING_INTERVAL, 4},
	{IE_SYSTEM_INIT_MS, 8},
};

const struct nftmpl_field *nftmpl_fields(int af)
{
	return af == 6 ? fields_v6 : fields_v4;
}

size_t nftmpl_rec_len(int af)
{
	return af == 6 ? NFTMPL_REC_LEN_IPV6 : NFTMPL_REC_LEN_IPV4;
}

uint16_t nftmpl_id(int af)
{
	return af == 6 ? NFTMPL_ID_IPV6 : NFTMPL_ID_IPV4;
}

static uint64_t nftmpl_ms(int64_t us)
{
	return us > 0 ? (uint64_t)(us / 1000) : 0;
}

void nftmpl_write_record(struct wbuf *w, const struct flow_rec *r)
{
	size_t alen = r->key.af == 6 ? 16 : 4;
	wbuf_u64(w, r->bytes);
	wbuf_u64(w, r->packets);
	wbuf_u8(w, r->key.proto);
	wbuf_u8(w, r->key.tos);
	wbuf_u8(w, r->tcp_flags);
	wbuf_u16(w, r->key.sport);
	wbuf_bytes(w, r->key.src, alen);
	wbuf_u16(w, r->key.inport);
	wbuf_u16(w, r->key.dport);
	wbuf_bytes(w, r->key.dst, alen);
	wbuf_u16(w, r->outport);
	wbuf_u64(w, nftmpl_ms(r->first_us));
	wbuf_u64(w, nftmpl_ms(r->last_us));
	wbuf_u8(w, flow_end_ie((enum flow_end)r->end));
}

void nftmpl_write_fields(struct wbuf *w, int af)
{
	const struct nftmpl_field *f = nftmpl_fields(af);
	for (size_t i = 0; i < NFTMPL_FIELDS; i++) {
		wbuf_u16(w, f[i].id);
		wbuf_u16(w, f[i].len);
	}
}

void nftmpl_close_set(struct wbuf *w, size_t set_start)
{
	while ((w->len - set_start) % 4)
		wbuf_u8(w, 0);
	wbuf_put16_at(w, set_start + 2, (uint16_t)(w->len - set_start));
}

size_t nftmpl_write_data(struct wbuf *w, const struct flow_rec *recs, size_t n)
{
	size_t i, set_start = 0;
	int cur_af = 0;
	for (i = 0; i < n && !w->err; i++) {
		int af = recs[i].key.af == 6 ? 6 : 4;
		size_t need = nftmpl_rec_len(af) + (af != cur_af ? NFTMPL_SET_HDR : 0);
		if (w->cap - w->len < need)
			break;
		if (af != cur_af) {
			if (cur_af)
				nftmpl_close_set(w, set_start);
			set_start = w->len;
			wbuf_u16(w, nftmpl_id(af));
			wbuf_u16(w, 0);
			cur_af = af;
		}
		nftmpl_write_record(w, &recs[i]);
	}
	if (cur_af)
		nftmpl_close_set(w, set_start);
	return i;
}
