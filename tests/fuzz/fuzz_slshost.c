/* The Host (or absolute-form authority) parser of the log store
 * (logstore_host_project): any bytes, against the default domain and a
 * one-letter one. A claimed project must be a slice of the host that ends
 * before it. The same bytes as a path for logstore_path_project: the project
 * and the rest are slices of it. */
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

static int inside(struct str part, struct str whole)
{
	return part.p >= whole.p && part.p + part.len <= whole.p + whole.len;
}

static void check_path(struct str path)
{
	struct str p = STR_NULL, rest = STR_NULL;
	int rc = logstore_path_project(path, &p, &rest);
	if (rc != 0 && rc != 1)
		abort();
	if (rc == 1 && (!inside(p, path) || (rest.len > 1 && !inside(rest, path)) || rest.p[0] != '/'))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct str host = {(const char *)data, size};
	check_path(host);
	check(host, STR_LIT(LOGSTORE_DEFAULT_DOMAIN));
	check(host, STR_LIT("a"));
	return 0;
}
