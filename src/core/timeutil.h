#ifndef CORE_TIMEUTIL_H
#define CORE_TIMEUTIL_H
#include <stdint.h>
#include <time.h>
#include "core/str.h"

int64_t time_now_ms(void);      /* wall clock, ms since the epoch */
int64_t time_mono_us(void);     /* monotonic, microseconds */
/* The moment us microseconds from now on clock (CLOCK_REALTIME for a default
 * condition variable, CLOCK_MONOTONIC for one set to it), as
 * pthread_cond_timedwait takes it. */
struct timespec time_deadline(clockid_t clock, int64_t us);
/* Strict "YYYY-MM-DDThh:mm:ssZ" (UTC, as the Alibaba clients send it). */
int time_parse_iso8601(struct str s, int64_t *epoch_sec);
void time_format_iso8601(int64_t epoch_sec, char out[21]);

#endif
