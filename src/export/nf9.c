#include "export/nf9.h"

#include "export/nftmpl.h"

#define NF9_VERSION 9
#define NF9_TEMPLATE_FLOWSET 0
#define NF9_OPTIONS_FLOWSET 1
#define NF9_SCOPE_SYSTEM 1 /* RFC 3954 §6.1 scope field type */
#define NF9_SCOPE_LEN 4

static uint32_t nf9_rel_ms(int64_t t_us, int64_t boot_us)
{
	return t_us > boot_us ? (uint32_t)((t_us - boot_us) / 1000) : 0;
}

/* The template flowset, the options template flowset and the options data
 * record: four records for the header's count. */
static unsigned nf9_templates(struct wbuf *w, const struct nf9_msg *m)
{
	size_t set = w->len;
	wbuf_u16(w, NF9_TEMPLATE_FLOWSET);
	wbuf_u16(w, 0);
	for (int af = 4; af <= 6; af += 2) {
		wbuf_u16(w, nftmpl_id(af));
		wbuf_u16(w, NFTMPL_FIELDS);
		nftmpl_write_fields(w, af);
	}
	nftmpl_close_set(w, set);

	/* RFC 3954 §6.1: scope and option lengths are in bytes of specifiers. */
	set = w->len;
	wbuf_u16(w, NF9_OPTIONS_FLOWSET);
	wbuf_u16(w, 0);
	wbuf_u16(w, NFTMPL_ID_OPTIONS);
	wbuf_u16(w, 4);
	wbuf_u16(w, (NFTMPL_OPT_FIELDS - 1) * 4);
	wbuf_u16(w, NF9_SCOPE_SYSTEM);
	wbuf_u16(w, NF9_SCOPE_LEN);
	for (size_t i = 0; i < NFTMPL_OPT_FIELDS - 1; i++) {
		wbuf_u16(w, nftmpl_opt_fields[i].id);
		wbuf_u16(w, nftmpl_opt_fields[i].len);
	}
	nftmpl_close_set(w, set);

	set = w->len;
	wbuf_u16(w, NFTMPL_ID_OPTIONS);
	wbuf_u16(w, 0);
	wbuf_u32(w, m->source_id);
	wbuf_u32(w, m->sampling_interval);
	wbuf_u64(w, m->boot_us > 0 ? (uint64_t)(m->boot_us / 1000) : 0);
	nftmpl_close_set(w, set);
	return 4;
}

size_t nf9_encode(const struct nf9_msg *m, const struct flow_rec *recs, size_t n, size_t *used, uint8_t *out,
		  size_t cap)
{
	struct wbuf w = {out, cap, 0, false};
	int64_t now = m->now_us < 0 ? 0 : m->now_us;
	unsigned count = 0;
	*used = 0;
	wbuf_u16(&w, NF9_VERSION);
	wbuf_u16(&w, 0);
	wbuf_u32(&w, nf9_rel_ms(now, m->boot_us));
	wbuf_u32(&w, (uint32_t)(now / 1000000));
	wbuf_u32(&w, m->sequence);
	wbuf_u32(&w, m->source_id);
	if (m->templates)
		count += nf9_templates(&w, m);
	if (w.err)
		return 0;
	*used = nftmpl_write_data(&w, recs, n);
	count += (unsigned)*used;
	/* RFC 3954 §5.1: count is every record of every flowset, templates included. */
	wbuf_put16_at(&w, 2, (uint16_t)count);
	return w.err ? 0 : w.len;
}
