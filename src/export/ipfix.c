#include "export/ipfix.h"

#include "export/nftmpl.h"

#define IPFIX_VERSION 10
#define IPFIX_TEMPLATE_SET 2
#define IPFIX_OPTIONS_TEMPLATE_SET 3
#define IPFIX_IE_OBSERVATION_DOMAIN 149 /* the options scope */

static void ipfix_templates(struct wbuf *w)
{
	size_t set = w->len;
	wbuf_u16(w, IPFIX_TEMPLATE_SET);
	wbuf_u16(w, 0);
	for (int af = 4; af <= 6; af += 2) {
		wbuf_u16(w, nftmpl_id(af));
		wbuf_u16(w, NFTMPL_FIELDS);
		nftmpl_write_fields(w, af);
	}
	nftmpl_close_set(w, set);
}

static void ipfix_header(struct wbuf *w, const struct ipfix_msg *m)
{
	int64_t now = m->now_us < 0 ? 0 : m->now_us;
	wbuf_u16(w, IPFIX_VERSION);
	wbuf_u16(w, 0); /* length, filled in at the end */
	wbuf_u32(w, (uint32_t)(now / 1000000));
	wbuf_u32(w, m->sequence);
	wbuf_u32(w, m->domain);
}

size_t ipfix_encode_options(const struct ipfix_msg *m, uint32_t scoped_domain, uint8_t *out, size_t cap)
{
	struct wbuf w = {out, cap > UINT16_MAX ? UINT16_MAX : cap, 0, false};
	ipfix_header(&w, m);
	/* RFC 7011 §3.4.2.2: field count, then scope field count, then specifiers. */
	size_t set = w.len;
	wbuf_u16(&w, IPFIX_OPTIONS_TEMPLATE_SET);
	wbuf_u16(&w, 0);
	wbuf_u16(&w, NFTMPL_ID_OPTIONS);
	wbuf_u16(&w, NFTMPL_OPT_FIELDS);
	wbuf_u16(&w, 1);
	wbuf_u16(&w, IPFIX_IE_OBSERVATION_DOMAIN);
	wbuf_u16(&w, 4);
	for (size_t i = 0; i < NFTMPL_OPT_FIELDS - 1; i++) {
		wbuf_u16(&w, nftmpl_opt_fields[i].id);
		wbuf_u16(&w, nftmpl_opt_fields[i].len);
	}
	nftmpl_close_set(&w, set);

	set = w.len;
	wbuf_u16(&w, NFTMPL_ID_OPTIONS);
	wbuf_u16(&w, 0);
	wbuf_u32(&w, scoped_domain);
	wbuf_u32(&w, m->sampling_interval);
	wbuf_u64(&w, m->boot_us > 0 ? (uint64_t)(m->boot_us / 1000) : 0);
	nftmpl_close_set(&w, set);
	wbuf_put16_at(&w, 2, (uint16_t)w.len);
	return w.err ? 0 : w.len;
}

size_t ipfix_encode(const struct ipfix_msg *m, const struct flow_rec *recs, size_t n, size_t *used,
		    uint8_t *out, size_t cap)
{
	struct wbuf w = {out, cap > UINT16_MAX ? UINT16_MAX : cap, 0, false};
	*used = 0;
	ipfix_header(&w, m);
	if (m->templates)
		ipfix_templates(&w);
	if (w.err)
		return 0;
	*used = nftmpl_write_data(&w, recs, n);
	wbuf_put16_at(&w, 2, (uint16_t)w.len);
	return w.err ? 0 : w.len;
}
