/* The Host (or absolute-form authority) parser of the log store
 * (logstore_host_project): any bytes, against the default domain and a
 * one-letter one. A claimed project must be a slice of the host that ends
 * before it. */
#include <stdint.h>
#include <stdlib.h>

#include "logstore/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(struct str host, struct str domain)
{
	struct str p = STR_NULL;
	int rc = logstore_host_project(host, domain, &p);
	if (rc != 0 && rc != 1)
		abort();
	if (rc == 1 && (p.p < host.p || p.len > host.len || p.p + p.len > host.p + host.len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct str host = {(const char *)data, size};
	check(host, STR_LIT(LOGSTORE_DEFAULT_DOMAIN));
	check(host, STR_LIT("a"));
	return 0;
}
