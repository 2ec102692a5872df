#include "logstore/sqlfn.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SQLFN_MAX_UNIX 253402300799.0 /* 9999-12-31 23:59:59: four-digit years */
#define SQLFN_OUT 512                 /* bytes of a formatted date */

static bool digits(const char **s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++, (*s)++) {
		if (**s < '0' || **s > '9')
			return false;
		v = v * 10 + (**s - '0');
	}
	*out = v;
	return true;
}

static bool expect(const char **s, char c)
{
	return **s == c ? (++*s, true) : false;
}

/* "YYYY-MM-DD[ HH:MM:SS[.fff]]" (or 'T' between) as unix seconds; -1 otherwise. */
static int parse_ts(const char *s, double *out)
{
	int y, mo, d, h = 0, mi = 0, sec = 0;
	double frac = 0, scale = 0.1;
	if (!digits(&s, 4, &y) || !expect(&s, '-') || !digits(&s, 2, &mo) || !expect(&s, '-') ||
	    !digits(&s, 2, &d))
		return -1;
	if (*s == ' ' || *s == 'T') {
		s++;
		if (!digits(&s, 2, &h) || !expect(&s, ':') || !digits(&s, 2, &mi) || !expect(&s, ':') ||
		    !digits(&s, 2, &sec))
			return -1;
		if (expect(&s, '.'))
			for (int i = 0; i < 9 && *s >= '0' && *s <= '9'; i++, s++, scale /= 10)
				frac += (*s - '0') * scale;
	}
	if (*s || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
			.tm_min = mi, .tm_sec = sec};
	*out = (double)timegm(&tm) + frac;
	return 0;
}

static int arg_time(sqlite3_value *v, double *out, bool *is_text)
{
	*is_text = false;
	switch (sqlite3_value_type(v)) {
	case SQLITE_INTEGER:
	case SQLITE_FLOAT: *out = sqlite3_value_double(v); break;
	case SQLITE_TEXT:
		*is_text = true;
		if (parse_ts((const char *)sqlite3_value_text(v), out) != 0)
			return -1;
		break;
	default: return -1;
	}
	return *out >= 0 && *out <= SQLFN_MAX_UNIX ? 0 : -1;
}

static void to_tm(double t, struct tm *tm, int *ms)
{
	time_t s = (time_t)floor(t);
	gmtime_r(&s, tm);
	*ms = (int)((t - floor(t)) * 1000.0);
	if (*ms > 999)
		*ms = 999;
}

static void result_ts(sqlite3_context *c, double t)
{
	struct tm tm;
	int ms;
	char out[96]; /* room for any int the compiler cannot bound */
	to_tm(t, &tm, &ms);
	snprintf(out, sizeof(out), "%04d-%02d-%02d %02d:%02d:%02d.%03d", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
	sqlite3_result_text(c, out, -1, SQLITE_TRANSIENT);
}

static void fn_from_unixtime(sqlite3_context *c, int argc, sqlite3_value **v)
{
	double t;
	bool text;
	if (sqlite3_value_type(v[0]) == SQLITE_NULL)
		return;
	if (sqlite3_value_type(v[0]) == SQLITE_TEXT || arg_time(v[0], &t, &text) != 0) {
		sqlite3_result_error(c, "from_unixtime: a unix time in seconds expected", -1);
		return;
	}
	result_ts(c, t);
}

static void fn_to_unixtime(sqlite3_context *c, int argc, sqlite3_value **v)
{
	double t;
	bool text;
	if (sqlite3_value_type(v[0]) == SQLITE_NULL)
		return;
	if (arg_time(v[0], &t, &text) != 0) {
		sqlite3_result_error(c, "to_unixtime: a timestamp expected", -1);
		return;
	}
	sqlite3_result_double(c, t);
}

/* Seconds of a unit for the units of fixed length; 0 for week/month/quarter/year. */
struct unit {
	const char *name;
	int64_t secs;
};

static const struct unit units[] = {
	{"second", 1}, {"minute", 60}, {"hour", 3600}, {"day", 86400},
	{"week", 0},   {"month", 0},   {"quarter", 0}, {"year", 0},
};

static double trunc_to(const struct unit *u, double t)
{
	if (u->secs)
		return floor(t / (double)u->secs) * (double)u->secs;
	struct tm tm;
	int ms;
	to_tm(t, &tm, &ms);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	if (!strcmp(u->name, "week"))
		tm.tm_mday -= (tm.tm_wday + 6) % 7; /* ISO weeks start on Monday */
	else
		tm.tm_mday = 1;
	if (!strcmp(u->name, "quarter"))
		tm.tm_mon -= tm.tm_mon % 3;
	else if (!strcmp(u->name, "year"))
		tm.tm_mon = 0;
	return (double)timegm(&tm);
}

static void fn_date_trunc(sqlite3_context *c, int argc, sqlite3_value **v)
{
	const char *name = (const char *)sqlite3_value_text(v[0]);
	const struct unit *u = NULL;
	for (size_t i = 0; name && i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcasecmp(name, units[i].name))
			u = &units[i];
	double t;
	bool text;
	if (!u) {
		sqlite3_result_error(c, "date_trunc: the unit is second, minute, hour, day, week, month, quarter or year", -1);
		return;
	}
	if (sqlite3_value_type(v[1]) == SQLITE_NULL)
		return;
	if (arg_time(v[1], &t, &text) != 0) {
		sqlite3_result_error(c, "date_trunc: a unix time or a timestamp expected", -1);
		return;
	}
	t = trunc_to(u, t);
	if (text)
		result_ts(c, t);
	else
		sqlite3_result_int64(c, (sqlite3_int64)t);
}

static const char *const day_names[] = {"Sunday", "Monday", "Tuesday", "Wednesday",
					"Thursday", "Friday", "Saturday"};
static const char *const month_names[] = {"January", "February", "March", "April",
					  "May", "June", "July", "August",
					  "September", "October", "November", "December"};

/* One MySQL format specifier (the date_format of SLS and Presto). */
static int put_spec(char f, const struct tm *tm, int ms, char *o, size_t cap)
{
	int h12 = tm->tm_hour % 12 ? tm->tm_hour % 12 : 12;
	switch (f) {
	case 'Y': return snprintf(o, cap, "%04d", tm->tm_year + 1900);
	case 'y': return snprintf(o, cap, "%02d", (tm->tm_year + 1900) % 100);
	case 'm': return snprintf(o, cap, "%02d", tm->tm_mon + 1);
	case 'c': return snprintf(o, cap, "%d", tm->tm_mon + 1);
	case 'd': return snprintf(o, cap, "%02d", tm->tm_mday);
	case 'e': return snprintf(o, cap, "%d", tm->tm_mday);
	case 'H': return snprintf(o, cap, "%02d", tm->tm_hour);
	case 'k': return snprintf(o, cap, "%d", tm->tm_hour);
	case 'h': case 'I': return snprintf(o, cap, "%02d", h12);
	case 'l': return snprintf(o, cap, "%d", h12);
	case 'i': return snprintf(o, cap, "%02d", tm->tm_min);
	case 's': case 'S': return snprintf(o, cap, "%02d", tm->tm_sec);
	case 'f': return snprintf(o, cap, "%06d", ms * 1000);
	case 'p': return snprintf(o, cap, "%s", tm->tm_hour < 12 ? "AM" : "PM");
	case 'T': return snprintf(o, cap, "%02d:%02d:%02d", tm->tm_hour, tm->tm_min, tm->tm_sec);
	case 'r': return snprintf(o, cap, "%02d:%02d:%02d %s", h12, tm->tm_min, tm->tm_sec, tm->tm_hour < 12 ? "AM" : "PM");
	case 'j': return snprintf(o, cap, "%03d", tm->tm_yday + 1);
	case 'W': return snprintf(o, cap, "%s", day_names[tm->tm_wday]);
	case 'a': return snprintf(o, cap, "%.3s", day_names[tm->tm_wday]);
	case 'M': return snprintf(o, cap, "%s", month_names[tm->tm_mon]);
	case 'b': return snprintf(o, cap, "%.3s", month_names[tm->tm_mon]);
	case 'w': return snprintf(o, cap, "%d", tm->tm_wday);
	default: return snprintf(o, cap, "%c", f); /* %% and unknown letters: the letter */
	}
}

static void fn_date_format(sqlite3_context *c, int argc, sqlite3_value **v)
{
	const char *fmt = (const char *)sqlite3_value_text(v[1]);
	double t;
	bool text;
	if (sqlite3_value_type(v[0]) == SQLITE_NULL || !fmt)
		return;
	if (arg_time(v[0], &t, &text) != 0 || strlen(fmt) > SQLFN_MAX_FORMAT) {
		sqlite3_result_error(c, "date_format: a unix time or timestamp and a format of at most 256 bytes expected", -1);
		return;
	}
	struct tm tm;
	int ms;
	char out[SQLFN_OUT];
	size_t n = 0;
	to_tm(t, &tm, &ms);
	for (const char *p = fmt; *p && n + 64 < sizeof(out); p++) {
		if (*p != '%' || !p[1]) {
			out[n++] = *p;
			continue;
		}
		int w = put_spec(*++p, &tm, ms, out + n, sizeof(out) - n);
		n += w > 0 ? (size_t)w : 0;
	}
	sqlite3_result_text(c, out, (int)n, SQLITE_TRANSIENT);
}

struct fn {
	const char *name;
	int argc;
	void (*fn)(sqlite3_context *, int, sqlite3_value **);
};

static const struct fn fns[] = {
	{"from_unixtime", 1, fn_from_unixtime},
	{"to_unixtime", 1, fn_to_unixtime},
	{"date_trunc", 2, fn_date_trunc},
	{"date_format", 2, fn_date_format},
};

int sqlfn_register(sqlite3 *db)
{
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		int rc = sqlite3_create_function_v2(db, fns[i].name, fns[i].argc,
						    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, fns[i].fn,
						    NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}
