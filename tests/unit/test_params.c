#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/xmalloc.h"
#include "rpc/params.h"

static enum err parse(struct params *p, const char *s, enum params_src src, char *detail)
{
	return params_parse(p, str_c(s), src, detail);
}

static void test_decode(void **state)
{
	char d[PARAMS_DETAIL_MAX];
	struct params *p = params_new();
	assert_int_equal(parse(p, "A=1&Name=a+b%20c%2A%e4%b8%ad&&Empty=&Bare", PARAMS_QUERY, d), ERR_OK);
	assert_int_equal(params_count(p), 4);
	assert_true(str_eqc(params_get(p, "A"), "1"));
	assert_true(str_eqc(params_get(p, "Name"), "a b c*\xe4\xb8\xad"));
	assert_true(params_has(p, "Empty"));
	assert_int_equal(params_get(p, "Empty").len, 0);
	assert_true(params_has(p, "Bare"));
	assert_false(params_has(p, "a"));       /* names are case-sensitive */
	assert_null(params_get(p, "Nope").p);
	assert_int_equal(parse(p, "B=x%3D%26y", PARAMS_BODY, d), ERR_OK);
	assert_int_equal(params_find(p, "B")->src, PARAMS_BODY);
	assert_int_equal(params_find(p, "A")->src, PARAMS_QUERY);
	assert_true(str_eqc(params_get(p, "B"), "x=&y"));
	params_free(p);
	params_free(NULL);
}

static void test_bad_escapes(void **state)
{
	static const char *bad[] = {"A=%", "A=%4", "A=%zz", "A=%4g", "%=1", "A=%00", "=1", "A%=1"};
	char d[PARAMS_DETAIL_MAX];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct params *p = params_new();
		assert_int_equal(parse(p, bad[i], PARAMS_QUERY, d), ERR_MALFORMED_REQUEST);
		assert_true(d[0] != '\0');
		params_free(p);
	}
}

static void test_duplicates(void **state)
{
	char d[PARAMS_DETAIL_MAX];
	struct params *p = params_new();
	assert_int_equal(parse(p, "A=1&A=2", PARAMS_QUERY, d), ERR_INVALID_PARAMETER);
	assert_string_equal(d, "A");
	params_free(p);
	/* Across query and body: the signed value must be the value used. */
	p = params_new();
	assert_int_equal(parse(p, "Name=x", PARAMS_QUERY, d), ERR_OK);
	assert_int_equal(parse(p, "Na%6De=y", PARAMS_BODY, d), ERR_INVALID_PARAMETER);
	assert_string_equal(d, "Name");
	params_free(p);
	/* A non-printable name is reported printably. */
	p = params_new();
	assert_int_equal(parse(p, "%01\"=1&%01\"=2", PARAMS_QUERY, d), ERR_INVALID_PARAMETER);
	assert_string_equal(d, "??");
	params_free(p);
}

static void test_limits(void **state)
{
	char d[PARAMS_DETAIL_MAX];
	struct buf b = {0};
	for (int i = 0; i <= PARAMS_MAX_COUNT; i++)
		buf_printf(&b, "%sP%d=%d", i ? "&" : "", i, i);
	struct params *p = params_new();
	assert_int_equal(params_parse(p, (struct str){b.p, b.len}, PARAMS_QUERY, d),
			 ERR_REQUEST_TOO_LARGE);
	assert_int_equal(params_count(p), PARAMS_MAX_COUNT);
	params_free(p);
	buf_reset(&b);

	for (int i = 0; i <= PARAMS_MAX_NAME; i++)
		buf_addc(&b, 'n');
	buf_adds(&b, "=1");
	p = params_new();
	assert_int_equal(params_parse(p, (struct str){b.p, b.len}, PARAMS_QUERY, d),
			 ERR_REQUEST_TOO_LARGE);
	params_free(p);
	buf_reset(&b);

	buf_adds(&b, "V=");
	for (int i = 0; i <= PARAMS_MAX_VALUE; i++)
		buf_addc(&b, 'v');
	p = params_new();
	assert_int_equal(params_parse(p, (struct str){b.p, b.len}, PARAMS_QUERY, d),
			 ERR_INVALID_PARAMETER);
	assert_string_equal(d, "V");
	params_free(p);
	/* Exactly at the limit is fine; escapes count decoded bytes. */
	buf_reset(&b);
	buf_adds(&b, "V=");
	for (int i = 0; i < PARAMS_MAX_VALUE; i++)
		buf_adds(&b, "%41");
	p = params_new();
	assert_int_equal(params_parse(p, (struct str){b.p, b.len}, PARAMS_QUERY, d), ERR_OK);
	assert_int_equal(params_get(p, "V").len, PARAMS_MAX_VALUE);
	params_free(p);
	buf_free(&b);
}

static void test_not_nul_terminated(void **state)
{
	/* Input is (ptr,len): bytes after len must never be read. */
	char d[PARAMS_DETAIL_MAX];
	char *in = xmalloc(5);
	memcpy(in, "A=%4", 4);
	in[4] = '1';
	struct params *p = params_new();
	assert_int_equal(params_parse(p, (struct str){in, 4}, PARAMS_QUERY, d), ERR_MALFORMED_REQUEST);
	params_free(p);
	free(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_bad_escapes),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_not_nul_terminated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
