/* The ACS3-HMAC-SHA256 Authorization header parser on arbitrary bytes, and the
 * canonical request built from whatever it accepts. */
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "rpc/sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct str any_header(void *arg, const char *name)
{
	(void)arg;
	return name[0] == 'h' ? (struct str){" 127.0.0.1:8080 ", 16} : (struct str){"v", 1};
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sig_v3_auth a;
	if (sig_v3_parse_auth((struct str){(const char *)data, size}, &a) != 0)
		return 0;
	(void)sig_v3_required_signed(&a);
	struct params *p = params_new();
	struct buf cr = {0};
	if (sig_v3_canonical_request(&cr, (struct str){"POST", 4}, p, &a, any_header, NULL,
				     (struct str){"e3", 2}) == 0)
		(void)sig_v3_verify(&a, (struct str){cr.p, cr.len}, (struct str){"s", 1});
	buf_free(&cr);
	params_free(p);
	return 0;
}
