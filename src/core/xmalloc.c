#include "core/xmalloc.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		fatal("out of memory (%zu bytes)", n);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (p == NULL)
		fatal("out of memory (%zu x %zu bytes)", nmemb, size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		fatal("out of memory (%zu bytes)", n);
	return q;
}

char *xmemdup0(const void *p, size_t n)
{
	char *q = xmalloc(n + 1);
	if (n)
		memcpy(q, p, n);
	q[n] = '\0';
	return q;
}

char *xstrndup(const char *s, size_t n)
{
	return xmemdup0(s, strnlen(s, n));
}

char *xstrdup(const char *s)
{
	return xmemdup0(s, strlen(s));
}

/* glibc returns a thread arena's free top to the kernel once it exceeds 128 KB,
 * and serves any allocation over 128 KB with a fresh mmap. Setting the trim
 * threshold (as session 2 did for large rendered answers, where sysmalloc and
 * page faults were ~20 % of perf's samples) also freezes glibc's dynamic mmap
 * threshold at 128 KB, so every 1 MiB arena chunk of a decoded LogGroup was
 * mmapped, page-faulted in and unmapped per PutLogs: ~20 % of serve's ingest
 * in perf (docs/benchmarks.md "Agent delivery"). Both thresholds together:
 * blocks up to XMALLOC_MMAP_MIN come from the arenas, which keep up to
 * XMALLOC_TRIM_KEEP free. */
#define XMALLOC_TRIM_KEEP (4 * 1024 * 1024)
#define XMALLOC_MMAP_MIN (32 * 1024 * 1024)

void xmalloc_policy(void)
{
	mallopt(M_TRIM_THRESHOLD, XMALLOC_TRIM_KEEP);
	mallopt(M_MMAP_THRESHOLD, XMALLOC_MMAP_MIN);
}
