/* src/logstore/ldata.c: what a read sees while the writer creates a
 * logstore's first day file. A read must find either nothing or complete
 * data: before the fix, a GetLogs that listed the directory between the
 * writer's open(O_CREAT) and the schema's COMMIT found a file without the
 * blocks table, ldata_scan returned LDATA_EIO and serve answered 500
 * InternalServerError (docs/logstore.md, "Layout"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include <string.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../fuzz/logstore_fixture.h"
#include "core/xmalloc.h"
#include "logstore/ldata.h"

#define RACE_LOGSTORES 150 /* new logstores, each raced by a reader */

static enum ldata_rc put_and_wait(struct ldata *d, int64_t logstore, const Sls__LogGroup *g)
{
	return lsfix_put(d, logstore, g, time(NULL), "");
}

static int count_block(const struct ldata_block *b, void *arg)
{
	(void)b;
	++*(int *)arg;
	return 0;
}

/* Blocks of the logstore through all three read paths (the fewest any of
 * them saw); -1 if any failed. */
static int blocks_seen(struct ldata *d, int64_t logstore)
{
	int a = 0, r = 0, i = 0;
	if (ldata_scan(d, logstore, 0, INT32_MAX, count_block, &a) < 0 ||
	    ldata_scan_rollups(d, logstore, 0, INT32_MAX, count_block, &r) < 0)
		return -1;
	struct ldata_iter *it = ldata_iter_open(d, logstore, 0, INT32_MAX);
	struct ldata_block b;
	int rc;
	while ((rc = ldata_iter_next(it, &b)) == 1)
		i++;
	ldata_iter_close(it);
	if (rc < 0)
		return -1;
	return a < r ? (a < i ? a : i) : (r < i ? r : i);
}

/* A path of today's file of a logstore, with suffix. */
static void today_path(const char *dir, int64_t logstore, const char *suffix, char *out, size_t cap)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	snprintf(out, cap, "%s/%lld/%04d%02d%02d.db%s", dir, (long long)logstore, tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, suffix);
}

/* Entries of a logstore's directory left under the new-file name. */
static int strays(const char *dir, int64_t logstore)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%lld", dir, (long long)logstore);
	DIR *dd = opendir(path);
	assert_non_null(dd);
	int n = 0;
	for (struct dirent *e; (e = readdir(dd));)
		if (e->d_name[0] != '.' && strstr(e->d_name, "-new"))
			n++;
	closedir(dd);
	return n;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

struct racer {
	struct ldata *d;
	int64_t logstore; /* the one being created; 0: stop */
	int reads, errors, stale;
	int64_t acked;    /* the last logstore whose put was acknowledged */
};

/* Reads the logstore being created, as fast as it can. */
static void *racer_main(void *arg)
{
	struct racer *r = arg;
	int64_t ls;
	while ((ls = __atomic_load_n(&r->logstore, __ATOMIC_SEQ_CST)) != 0) {
		int64_t acked = __atomic_load_n(&r->acked, __ATOMIC_SEQ_CST);
		int n = blocks_seen(r->d, ls);
		r->reads++;
		if (n < 0)
			r->errors++;
		else if (acked == ls && n != 1) /* acknowledged before this read began */
			r->stale++;
	}
	return NULL;
}

/* A reader racing the first put of many new logstores never fails, and once
 * the put is acknowledged it sees the block. */
static void test_first_put_race(void **state)
{
	(void)state;
	char dir[] = "/tmp/sagflow-test-ldata-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct ldata *d = ldata_open(dir);
	assert_non_null(d);
	struct lsfix *f = xmalloc(sizeof(*f));
	lsfix_init(f);
	struct racer r = {.d = d, .logstore = 1};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, racer_main, &r), 0);
	for (int64_t ls = 1; ls <= RACE_LOGSTORES; ls++) {
		__atomic_store_n(&r.logstore, ls, __ATOMIC_SEQ_CST);
		usleep(200); /* let the reader start on the empty logstore */
		assert_int_equal(put_and_wait(d, ls, &f->g), LDATA_STORED);
		__atomic_store_n(&r.acked, ls, __ATOMIC_SEQ_CST);
		usleep(200);
	}
	__atomic_store_n(&r.logstore, 0, __ATOMIC_SEQ_CST);
	pthread_join(t, NULL);
	printf("# %d reads, %d failed, %d stale\n", r.reads, r.errors, r.stale);
	assert_int_equal(r.errors, 0);
	assert_int_equal(r.stale, 0);
	for (int64_t ls = 1; ls <= RACE_LOGSTORES; ls++) {
		assert_int_equal(blocks_seen(d, ls), 1);
		assert_int_equal(strays(dir, ls), 0); /* nothing left under the new name */
		ldata_drop(d, ls);
	}
	ldata_close(d);
	assert_int_equal(rmdir(dir), 0);
	lsfix_free(f);
	free(f);
}

/* A half-made new file left by a crash before its rename (and a -wal that
 * SQLite would replay into it) is replaced by a whole one, never read. */
static void test_crash_leftover(void **state)
{
	(void)state;
	char dir[] = "/tmp/sagflow-test-ldata-XXXXXX", path[512];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/9", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	today_path(dir, 9, "-new", path, sizeof(path));
	write_file(path, "not a database");
	today_path(dir, 9, "-new-wal", path, sizeof(path));
	write_file(path, "not a wal either");
	struct ldata *d = ldata_open(dir);
	assert_non_null(d);
	assert_int_equal(blocks_seen(d, 9), 0); /* never listed */
	struct lsfix *f = xmalloc(sizeof(*f));
	lsfix_init(f);
	assert_int_equal(put_and_wait(d, 9, &f->g), LDATA_STORED);
	assert_int_equal(blocks_seen(d, 9), 1);
	assert_int_equal(strays(dir, 9), 0);
	ldata_drop(d, 9);
	ldata_close(d);
	assert_int_equal(rmdir(dir), 0);
	lsfix_free(f);
	free(f);
}

/* Yesterday's file, opened read-only by the writer to look for a pack id
 * (after a restart, so it had no handle of it), is still written when a
 * group received yesterday comes after that (queued after midnight). */
static void test_yesterday_written_after_pack_check(void **state)
{
	(void)state;
	char dir[] = "/tmp/sagflow-test-ldata-XXXXXX";
	assert_non_null(mkdtemp(dir));
	int64_t now = time(NULL), yesterday = now - 86400;
	struct lsfix *f = xmalloc(sizeof(*f));
	lsfix_init(f);
	struct ldata *d = ldata_open(dir);
	assert_int_equal(lsfix_put(d, 3, &f->g, yesterday, "pack-a"), LDATA_STORED);
	ldata_close(d);
	d = ldata_open(dir);
	assert_int_equal(lsfix_put(d, 3, &f->g, now, "pack-b"), LDATA_STORED);     /* reads yesterday's */
	assert_int_equal(lsfix_put(d, 3, &f->g, now, "pack-a"), LDATA_DUPLICATE);  /* found there */
	assert_int_equal(lsfix_put(d, 3, &f->g, yesterday, "pack-c"), LDATA_STORED); /* written there */
	assert_int_equal(blocks_seen(d, 3), 3);
	ldata_drop(d, 3);
	ldata_close(d);
	assert_int_equal(rmdir(dir), 0);
	lsfix_free(f);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_put_race),
		cmocka_unit_test(test_crash_leftover),
		cmocka_unit_test(test_yesterday_written_after_pack_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
