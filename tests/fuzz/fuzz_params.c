/* The query / form-body decoder on arbitrary bytes: the first byte picks how
 * the input is split between query and body, so cross-source duplicates and
 * the arena sizing of both sources are exercised. */
#include <stdint.h>
#include <stddef.h>

#include "rpc/params.h"
#include "rpc/sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char detail[PARAMS_DETAIL_MAX];
	if (size == 0)
		return 0;
	size_t cut = data[0] % (size);
	const char *s = (const char *)data + 1;
	size_t n = size - 1;
	if (cut > n)
		cut = n;
	struct params *p = params_new();
	if (params_parse(p, (struct str){s, cut}, PARAMS_QUERY, detail) == ERR_OK)
		params_parse(p, (struct str){s + cut, n - cut}, PARAMS_BODY, detail);
	/* Whatever was accepted must canonicalise without trouble. */
	struct buf b = {0};
	sig_v1_string_to_sign(&b, (struct str){"GET", 3}, p);
	for (size_t i = 0; i < params_count(p); i++)
		(void)params_find(p, params_at(p, i)->name.p);
	buf_free(&b);
	params_free(p);
	return 0;
}
