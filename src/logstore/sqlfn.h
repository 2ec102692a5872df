/* The SLS/Presto date functions the SQL subset needs, as SQLite application
 * functions (docs/logstore.md, "Query"). Time is UTC: sagflow has no project
 * time zone (SLS defaults to the project's, often +08:00). A timestamp is the
 * text "YYYY-MM-DD HH:MM:SS.mmm", as SLS prints one; a unix time is a number.
 *   from_unixtime(s)        -> timestamp
 *   to_unixtime(t)          -> seconds (double); a number is returned as is
 *   date_trunc(unit, x)     -> x truncated to second/minute/hour/day/week/
 *                              month/quarter/year; a unix time stays one
 *                              (SLS accepts __time__ there), a timestamp stays one
 *   date_format(x, fmt)     -> MySQL-style format (%Y %m %d %H %i %s %f %a %b ...) */
#ifndef LOGSTORE_SQLFN_H
#define LOGSTORE_SQLFN_H
#include <sqlite3.h>

#define SQLFN_MAX_FORMAT 256 /* bytes of a date_format pattern */

/* Registers them on db; SQLITE_OK or an SQLite error code. */
int sqlfn_register(sqlite3 *db);

#endif
