#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "core/timeutil.h"

/* A busy server writes one access-log line per request. Unbuffered, that is a
 * write(2) per request — on this kind of virtual machine a syscall costs more
 * than verifying the signature — so a server switches stderr to a block buffer
 * that a small thread flushes every LOG_FLUSH_MS; warnings and errors are
 * flushed at once so nothing important waits. */
#define LOG_FLUSH_MS 100
#define LOG_STDIO_BUFFER (1 << 16)
#define LOG_LINE_MAX 4096

static enum log_level log_min = LOG_INFO;
static const char *const log_names[] = {"debug", "info", "warn", "error"};

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_cv = PTHREAD_COND_INITIALIZER;
static pthread_t log_flusher;
static bool log_flusher_running, log_flusher_stop;

void log_set_level(enum log_level lvl)
{
	log_min = lvl;
}

static void *log_flush_loop(void *arg)
{
	pthread_mutex_lock(&log_mu);
	while (!log_flusher_stop) {
		struct timespec ts = time_deadline(CLOCK_REALTIME, (int64_t)LOG_FLUSH_MS * 1000);
		pthread_cond_timedwait(&log_cv, &log_mu, &ts);
		fflush(stderr);
	}
	pthread_mutex_unlock(&log_mu);
	return NULL;
}

void log_buffered_start(void)
{
	static char buf[LOG_STDIO_BUFFER];
	if (log_flusher_running)
		return;
	setvbuf(stderr, buf, _IOFBF, sizeof(buf));
	log_flusher_stop = false;
	if (pthread_create(&log_flusher, NULL, log_flush_loop, NULL) != 0) {
		setvbuf(stderr, NULL, _IONBF, 0);
		return;
	}
	log_flusher_running = true;
}

void log_buffered_stop(void)
{
	if (!log_flusher_running)
		return;
	pthread_mutex_lock(&log_mu);
	log_flusher_stop = true;
	pthread_cond_signal(&log_cv);
	pthread_mutex_unlock(&log_mu);
	pthread_join(log_flusher, NULL);
	log_flusher_running = false;
	fflush(stderr);
}

/* gmtime_r takes glibc's time-zone lock on every call; the formatted second is
 * cached per thread instead. */
static void log_stamp(char out[32])
{
	static __thread time_t last_sec = -1;
	static __thread char last[24];
	struct timeval tv;
	gettimeofday(&tv, NULL);
	if (tv.tv_sec != last_sec) {
		struct tm tm;
		gmtime_r(&tv.tv_sec, &tm);
		strftime(last, sizeof(last), "%Y-%m-%dT%H:%M:%S", &tm);
		last_sec = tv.tv_sec;
	}
	int ms = (int)(tv.tv_usec / 1000);
	size_t n = strlen(last);
	memcpy(out, last, n);
	out[n++] = '.';
	out[n++] = (char)('0' + ms / 100);
	out[n++] = (char)('0' + ms / 10 % 10);
	out[n++] = (char)('0' + ms % 10);
	out[n++] = 'Z';
	out[n] = '\0';
}

__attribute__((format(printf, 2, 0))) static void log_v(enum log_level lvl, const char *fmt,
							  va_list ap)
{
	char line[LOG_LINE_MAX], ts[32];
	log_stamp(ts);
	int n = snprintf(line, sizeof(line), "%s %s ", ts, log_names[lvl]);
	if (n < 0)
		return;
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(line) - 2) /* truncated by vsnprintf */
		len = sizeof(line) - 2;
	line[len++] = '\n';
	/* One call per line: stdio locks the stream, so lines never interleave. */
	fwrite(line, 1, len, stderr);
	if (lvl >= LOG_WARN)
		fflush(stderr);
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
