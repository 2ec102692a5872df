#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static enum log_level log_min = LOG_INFO;
static const char *const log_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level lvl)
{
	log_min = lvl;
}

__attribute__((format(printf, 2, 0))) static void log_v(enum log_level lvl, const char *fmt, va_list ap)
{
	char line[4096], ts[32];
	struct timeval tv;
	struct tm tm;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	int n = snprintf(line, sizeof(line), "%s.%03dZ %s ", ts, (int)(tv.tv_usec / 1000),
			 log_names[lvl]);
	if (n < 0)
		return;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	/* One fputs per line: stdio locks the stream, so lines never interleave. */
	fprintf(stderr, "%s\n", line);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	if (lvl < log_min)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_v(lvl, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_v(LOG_ERR, fmt, ap);
	va_end(ap);
	exit(2);
}
