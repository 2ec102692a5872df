/* The agent's parsers of what a control plane sends back in a sync answer's
 * body (HTTP itself is libcurl's): the JSON answer, and a FlowLog object as
 * the agent also reads it from its state file. */
#include <stddef.h>
#include <stdint.h>

#include "device/client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct str in = {(const char *)data, size};
	struct devclient_answer a;
	struct devclient_flowlog f;
	(void)devclient_parse_answer(in, &a, err, sizeof(err));
	(void)devclient_parse_flowlog(in.p, in.len, &f, err, sizeof(err));
	return 0;
}
