#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "metrics/metrics.h"

static char *scrape(void)
{
	struct buf b = {0};
	metrics_write(&b);
	return buf_steal(&b);
}

static int reset(void **state)
{
	metrics_reset();
	return 0;
}

static const char *const colors[] = {"red", "say \"hi\"\\\n"};
static const char *const sizes[] = {"s", "m", "l"};

static void test_counter_labels_and_escaping(void **state)
{
	struct metrics_family *f = metrics_add(&(struct metrics_def){
	    .name = "t_things_total", .help = "Things\\counted\nhere.", .type = METRICS_COUNTER,
	    .label = {{"color", colors, 2}, {"size", sizes, 3}}});
	struct metrics_family *plain = metrics_add(&(struct metrics_def){
	    .name = "t_plain_total", .help = "Plain.", .type = METRICS_COUNTER});
	assert_non_null(f);
	metrics_count(f, 0, 2, 3);
	metrics_count(f, 1, 0, 1);
	metrics_count(f, 1, 0, 1);
	metrics_count(f, 2, 0, 100); /* out of range: ignored */
	metrics_count(f, 0, 3, 100);
	metrics_count(NULL, 0, 0, 1); /* not registered: a no-op */
	(void)plain;
	char *s = scrape();
	assert_string_equal(s, "# HELP t_things_total Things\\\\counted\\nhere.\n"
			       "# TYPE t_things_total counter\n"
			       "t_things_total{color=\"red\",size=\"l\"} 3\n"
			       "t_things_total{color=\"say \\\"hi\\\"\\\\\\n\",size=\"s\"} 2\n"
			       "# HELP t_plain_total Plain.\n"
			       "# TYPE t_plain_total counter\n"
			       "t_plain_total 0\n");
	free(s);
}

static void test_histogram_cumulative(void **state)
{
	static const uint64_t bounds[] = {10, 100, 1000};
	struct metrics_family *h = metrics_add(&(struct metrics_def){
	    .name = "t_wait_seconds", .help = "Waits.", .type = METRICS_HISTOGRAM,
	    .label = {{"size", sizes, 3}}, .bounds = bounds, .nbounds = 3, .scale = 1e-3});
	assert_non_null(h);
	/* A value equal to a bound belongs to that bucket (le is "less or equal"). */
	const uint64_t v[] = {0, 10, 11, 100, 5000, 5000};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		metrics_observe(h, 1, 0, v[i]);
	char *s = scrape();
	assert_string_equal(s, "# HELP t_wait_seconds Waits.\n"
			       "# TYPE t_wait_seconds histogram\n"
			       "t_wait_seconds_bucket{size=\"m\",le=\"0.01\"} 2\n"
			       "t_wait_seconds_bucket{size=\"m\",le=\"0.1\"} 4\n"
			       "t_wait_seconds_bucket{size=\"m\",le=\"1\"} 4\n"
			       "t_wait_seconds_bucket{size=\"m\",le=\"+Inf\"} 6\n"
			       "t_wait_seconds_sum{size=\"m\"} 10.121\n"
			       "t_wait_seconds_count{size=\"m\"} 6\n");
	free(s);
}

static void test_unlabelled_histogram_scale_one(void **state)
{
	static const uint64_t bounds[] = {1, 4};
	struct metrics_family *h = metrics_add(&(struct metrics_def){
	    .name = "t_batch", .help = "Batch.", .type = METRICS_HISTOGRAM, .bounds = bounds,
	    .nbounds = 2});
	char *s = scrape();
	/* Shown before anything is observed: it has no labels. */
	assert_non_null(strstr(s, "t_batch_bucket{le=\"+Inf\"} 0\nt_batch_sum 0\nt_batch_count 0\n"));
	free(s);
	metrics_observe(h, 0, 0, 3);
	metrics_observe(h, 0, 0, 7);
	s = scrape();
	assert_string_equal(s, "# HELP t_batch Batch.\n# TYPE t_batch histogram\n"
			       "t_batch_bucket{le=\"1\"} 0\nt_batch_bucket{le=\"4\"} 1\n"
			       "t_batch_bucket{le=\"+Inf\"} 2\nt_batch_sum 10\nt_batch_count 2\n");
	free(s);
}

static void set_gauge(void *arg)
{
	metrics_set(arg, 1, 0, -5);
}

static void test_gauges_info_and_hooks(void **state)
{
	struct metrics_family *g = metrics_add(&(struct metrics_def){
	    .name = "t_level", .help = "Level.", .type = METRICS_GAUGE,
	    .label = {{"size", sizes, 3}}});
	struct metrics_family *i = metrics_add(&(struct metrics_def){
	    .name = "t_version", .help = "Version.", .type = METRICS_INFO,
	    .label = {{"version", NULL, 0}}});
	assert_int_equal(metrics_on_scrape(set_gauge, g), 0);
	metrics_set(g, 0, 0, 7);
	metrics_count(g, 0, 0, 1); /* the wrong kind: ignored */
	char *s = scrape();
	assert_string_equal(s, "# HELP t_level Level.\n# TYPE t_level gauge\n"
			       "t_level{size=\"s\"} 7\nt_level{size=\"m\"} -5\nt_level{size=\"l\"} 0\n"
			       "# HELP t_version Version.\n# TYPE t_version gauge\n");
	free(s);
	metrics_info_set(i, "ab\"c");
	s = scrape();
	assert_non_null(strstr(s, "# TYPE t_version gauge\nt_version{version=\"ab\\\"c\"} 1\n"));
	free(s);
	metrics_info_set(i, NULL);
	s = scrape();
	assert_null(strstr(s, "t_version{"));
	free(s);
}

static void test_bad_definitions(void **state)
{
	static const uint64_t down[] = {5, 5};
	static const char *const many[METRICS_MAX_VALUES + 1] = {0};
	assert_null(metrics_add(&(struct metrics_def){.name = "t_h", .help = "h",
						      .type = METRICS_HISTOGRAM, .bounds = down,
						      .nbounds = 2}));
	assert_null(metrics_add(&(struct metrics_def){.name = "t_h", .help = "h",
						      .type = METRICS_HISTOGRAM}));
	assert_null(metrics_add(&(struct metrics_def){
	    .name = "t_c_total", .help = "c", .type = METRICS_COUNTER,
	    .label = {{"x", many, METRICS_MAX_VALUES + 1}}}));
	/* Cells run out before families do: 256 x 256 series are far past the limit. */
	assert_null(metrics_add(&(struct metrics_def){
	    .name = "t_d_total", .help = "d", .type = METRICS_COUNTER,
	    .label = {{"x", many, METRICS_MAX_VALUES}, {"y", many, METRICS_MAX_VALUES}}}));
}

#define T_THREADS (METRICS_SHARDS + 8) /* more threads than shards: some share one */
#define T_ADDS 2000

static void *adder(void *arg)
{
	for (int i = 0; i < T_ADDS; i++) {
		metrics_count(arg, 0, 0, 1);
	}
	return NULL;
}

static void test_threads_sum_exactly(void **state)
{
	struct metrics_family *f = metrics_add(&(struct metrics_def){
	    .name = "t_adds_total", .help = "Adds.", .type = METRICS_COUNTER});
	pthread_t t[T_THREADS];
	for (int i = 0; i < T_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, adder, f), 0);
	for (int i = 0; i < T_THREADS; i++)
		pthread_join(t[i], NULL);
	char *s = scrape();
	char want[64];
	snprintf(want, sizeof(want), "t_adds_total %d\n", T_THREADS * T_ADDS);
	assert_non_null(strstr(s, want));
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_counter_labels_and_escaping, reset),
	    cmocka_unit_test_setup(test_histogram_cumulative, reset),
	    cmocka_unit_test_setup(test_unlabelled_histogram_scale_one, reset),
	    cmocka_unit_test_setup(test_gauges_info_and_hooks, reset),
	    cmocka_unit_test_setup(test_bad_definitions, reset),
	    cmocka_unit_test_setup(test_threads_sum_exactly, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
