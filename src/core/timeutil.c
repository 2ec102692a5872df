#include "core/timeutil.h"

#include <stdio.h>
#include <time.h>

int64_t time_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct timespec time_deadline(clockid_t clock, int64_t us)
{
	struct timespec t;
	clock_gettime(clock, &t);
	int64_t ns = (int64_t)t.tv_nsec + us % 1000000 * 1000;
	t.tv_sec += (time_t)(us / 1000000 + ns / 1000000000);
	t.tv_nsec = (long)(ns % 1000000000);
	return t;
}

static int time_digits(const char *p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return 0;
}

int time_parse_iso8601(struct str s, int64_t *epoch_sec)
{
	int y, mo, d, h, mi, se;
	const char *p = s.p;
	if (s.len != 20 || p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' ||
	    p[16] != ':' || p[19] != 'Z')
		return -1;
	if (time_digits(p, 4, &y) || time_digits(p + 5, 2, &mo) || time_digits(p + 8, 2, &d) ||
	    time_digits(p + 11, 2, &h) || time_digits(p + 14, 2, &mi) ||
	    time_digits(p + 17, 2, &se))
		return -1;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return -1;
	/* Days from civil (Howard Hinnant's algorithm): no timegm/TZ dependence. */
	int yy = y - (mo <= 2);
	int era = yy / 400;
	int yoe = yy - era * 400;
	int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = (int64_t)era * 146097 + doe - 719468;
	*epoch_sec = days * 86400 + h * 3600 + mi * 60 + se;
	return 0;
}

void time_format_iso8601(int64_t epoch_sec, char out[21])
{
	time_t t = (time_t)epoch_sec;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
