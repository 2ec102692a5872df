/* The spool reader (src/agent/spool.c): a file left in --state-dir by a
 * previous run — torn, corrupt or hostile — must parse into an intact group
 * or be refused, and what parses must serialize back to the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spool_group g;
	if (spool_parse(data, size, &g) != 0)
		return 0;
	struct buf b = {0};
	spool_serialize(&g, &b);
	if (b.len != size || memcmp(b.p, data, size) != 0)
		abort();
	buf_free(&b);
	return 0;
}
