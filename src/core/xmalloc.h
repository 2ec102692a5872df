/* Allocation wrappers that abort on failure: every input is bounded, so an
 * allocation failure means the machine is out of memory, not a client error. */
#ifndef CORE_XMALLOC_H
#define CORE_XMALLOC_H
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xmemdup0(const void *p, size_t n); /* copies n bytes and adds a NUL */

/* The allocator's policy for the whole process (xmalloc.c says why); main()
 * calls it first. */
void xmalloc_policy(void);

#endif
