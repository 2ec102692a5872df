/* The record layouts V9 and IPFIX share: the same information elements
 * (RFC 3954 §8 field types are IPFIX IEs 1-127; 136, 152, 153 are IPFIX IEs
 * that V9 collectors accept), so one writer serves both encoders. */
#ifndef EXPORT_NFTMPL_H
#define EXPORT_NFTMPL_H
#include <stddef.h>
#include <stdint.h>
#include "export/wire.h"
#include "meter/flow.h"

#define NFTMPL_ID_IPV4 256
#define NFTMPL_ID_IPV6 257
#define NFTMPL_ID_OPTIONS 258
#define NFTMPL_FIELDS 14
#define NFTMPL_REC_LEN_IPV4 52 /* both multiples of 4: data sets need no padding */
#define NFTMPL_REC_LEN_IPV6 76
#define NFTMPL_OPT_FIELDS 3    /* scope (source id / observation domain), samplingInterval, systemInitTime */
#define NFTMPL_OPT_REC_LEN 16
#define NFTMPL_SET_HDR 4

struct nftmpl_field {
	uint16_t id, len;
};

/* Template (IPv4 or IPv6) field list, NFTMPL_FIELDS entries. */
const struct nftmpl_field *nftmpl_fields(int af);
size_t nftmpl_rec_len(int af);
uint16_t nftmpl_id(int af);
/* Writes one data record in the template's order. */
void nftmpl_write_record(struct wbuf *w, const struct flow_rec *r);
/* Writes the field specifiers of a template record (no header). */
void nftmpl_write_fields(struct wbuf *w, int af);
/* The options fields after the scope: samplingInterval(34), systemInitTimeMilliseconds(160). */
extern const struct nftmpl_field nftmpl_opt_fields[NFTMPL_OPT_FIELDS - 1];
/* Pads a set that started at set_start to 4 bytes and fills in its length. */
void nftmpl_close_set(struct wbuf *w, size_t set_start);

/* Writes data sets (one per run of records of the same family) for as many
 * of recs[0..n) as fit; returns how many were written. */
size_t nftmpl_write_data(struct wbuf *w, const struct flow_rec *recs, size_t n);

#endif
