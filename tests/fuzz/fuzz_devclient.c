/* The agent's parsers of what a control plane sends back: an HTTP/1.x
 * response (as complete or still arriving) and the JSON answer in its body. */
#include <stddef.h>
#include <stdint.h>

#include "device/client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	int status;
	struct str body;
	struct str in = {(const char *)data, size};
	(void)devclient_response_complete(in);
	if (devclient_parse_response(in, true, &status, &body, err, sizeof(err)) == 0) {
		struct devclient_answer a;
		(void)devclient_parse_answer(body, &a, err, sizeof(err));
	}
	/* The body alone, as an answer and as a stored FlowLog. */
	struct devclient_answer a;
	struct devclient_flowlog f;
	(void)devclient_parse_answer(in, &a, err, sizeof(err));
	(void)devclient_parse_flowlog(in.p, in.len, &f, err, sizeof(err));
	return 0;
}
