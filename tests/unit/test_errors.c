#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rpc/errors.h"

static void test_catalogue(void **state)
{
	assert_int_equal(err_info(ERR_OK)->http, 200);
	assert_string_equal(err_info(ERR_QUOTA_EXCEEDED_FLOWLOG)->code, "QuotaExceeded.Flowlog");
	assert_int_equal(err_info(ERR_FEATURE_NOT_SUPPORT_STANDBY)->http, 403);
	assert_int_equal(err_info(ERR_INVALID_ACCESS_KEY_ID_NOT_FOUND)->http, 404);
	assert_int_equal(err_info(ERR_INVALID_ACTION_NOT_FOUND)->http, 404);
	assert_int_equal(err_info(ERR_SIGNATURE_DOES_NOT_MATCH)->http, 400);
	assert_int_equal(err_info(ERR_REQUEST_TOO_LARGE)->http, 413);
	assert_int_equal(err_by_code("IllegalParam.Status"), ERR_ILLEGAL_PARAM_STATUS);
	assert_int_equal(err_by_code("NoSuchCode"), ERR__COUNT);
	/* A commit of unknown outcome is an InternalError that says so. */
	assert_string_equal(err_info(ERR_INTERNAL_ERROR_COMMIT_UNKNOWN)->code, "InternalError");
	assert_int_equal(err_info(ERR_INTERNAL_ERROR_COMMIT_UNKNOWN)->http, 500);
	assert_int_equal(err_by_code("InternalError"), ERR_INTERNAL_ERROR);
	/* Signed before a crash's replay horizon: a 503 a re-signed retry passes. */
	assert_string_equal(err_info(ERR_SERVICE_UNAVAILABLE_RESIGN)->code, "ServiceUnavailable");
	assert_int_equal(err_info(ERR_SERVICE_UNAVAILABLE_RESIGN)->http, 503);
	assert_int_equal(err_by_code("ServiceUnavailable"), ERR_SERVICE_UNAVAILABLE);
	/* Every client-caused error is 4xx: Terraform retries 5xx until it times out. */
	for (int i = 1; i < ERR__COUNT; i++) {
		const struct err_info *e = err_info((enum err)i);
		assert_true(e->code[0] != '\0');
		assert_true(e->message[0] != '\0');
		if (i != ERR_INTERNAL_ERROR && i != ERR_SERVICE_UNAVAILABLE &&
		    i != ERR_INTERNAL_ERROR_COMMIT_UNKNOWN && i != ERR_SERVICE_UNAVAILABLE_RESIGN)
			assert_true(e->http >= 400 && e->http < 500);
	}
}

static void test_message_detail(void **state)
{
	char m[256];
	err_message(ERR_MISSING_PARAMETER, "SmartAGId", m, sizeof(m));
	assert_string_equal(m, "The input parameter \"SmartAGId\" that is mandatory for processing "
			       "this request is not supplied.");
	err_message(ERR_INVALID_FLOWLOG_ID_NOT_FOUND, "ignored", m, sizeof(m));
	assert_string_equal(m, "The specified FlowLogId does not exist.");
	err_message(ERR_MISSING_PARAMETER, NULL, m, 10);
	assert_int_equal(strlen(m), 9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_catalogue),
		cmocka_unit_test(test_message_detail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
