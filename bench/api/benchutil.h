/* Helpers shared by the bench/api load generators (loadgen.c, flowlog_bench.c).
 * They sign requests on their own, independently of src/rpc, so a bug in the
 * server's canonicalisation cannot cancel out in the measurement. */
#ifndef BENCH_BENCHUTIL_H
#define BENCH_BENCHUTIL_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

static inline int64_t bench_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Spec §5.3 percent-encoding of a NUL-terminated string (uppercase hex). */
static inline void bench_pct(const char *in, char *out, size_t cap)
{
	static const char hx[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < cap; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hx[*p >> 4];
			out[o++] = hx[*p & 15];
		}
	}
	out[o] = '\0';
}

#endif
