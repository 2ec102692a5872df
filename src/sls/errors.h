/* The Log Service error catalogue (spec log-service.md §5.4 and §1.6): one
 * X-macro table gives each error its enum value, HTTP status, errorCode and
 * message, like src/rpc/errors.h for the RPC API. A "{}" in a message is
 * replaced by the request's detail. Statuses: the SLS common-error-code page
 * for the header/date/compression group (§1.6), the spec's choice otherwise. */
#ifndef SLS_ERRORS_H
#define SLS_ERRORS_H

#define SLS_ERR_MAP(X)                                                                           \
	X(OK, 200, "", "")                                                                       \
	X(UNAUTHORIZED, 401, "Unauthorized", "The AccessKeyId is not found or invalid: {}.")     \
	X(SIGNATURE_NOT_MATCH, 401, "SignatureNotMatch",                                         \
	  "The request signature does not match our calculation.")                              \
	X(DEVICE_AUTH_FAILED, 401, "Unauthorized",                                               \
	  "The serial number is not bound to a gateway or the signature does not match.")      \
	X(DEVICE_DENIED, 401, "Unauthorized", "Denied: a gateway device may only {}.")           \
	X(FLOWLOG_FORBIDDEN, 403, "FlowLogForbidden",                                            \
	  "The gateway's flow log does not deliver to Log Service now: {}.")                   \
	X(PROJECT_FORBIDDEN, 403, "ProjectForbidden",                                            \
	  "The project {} of the flow log belongs to another account.")                        \
	X(REQUEST_TIME_EXPIRED, 400, "RequestTimeExpired",                                       \
	  "The request time is more than 15 minutes away from the server time.")                \
	X(MISSING_DATE, 400, "MissingDate", "The request has no {} header.")                    \
	X(INVALID_DATE_FORMAT, 400, "InvalidDateFormat", "The {} header is not a valid date.")   \
	X(MISSING_HOST, 400, "MissingHost", "The request has no Host header naming a project.") \
	X(INVALID_SIGNATURE_METHOD, 400, "InvalidSignatureMethod",                               \
	  "The signature method is not supported: {}.")                                          \
	X(PROJECT_NOT_EXIST, 404, "ProjectNotExist", "The Project does not exist : {}")         \
	X(LOGSTORE_NOT_EXIST, 404, "LogStoreNotExist", "logstore {} does not exist")            \
	X(PROJECT_ALREADY_EXIST, 400, "ProjectAlreadyExist", "Project {} already exist")        \
	X(LOGSTORE_ALREADY_EXIST, 400, "LogStoreAlreadyExist", "logstore {} already exists")    \
	X(PARAMETER_INVALID, 400, "ParameterInvalid", "The parameter is invalid: {}.")          \
	X(INVALID_PARAMETER, 400, "InvalidParameter", "The parameter {} is invalid.")           \
	X(POST_BODY_INVALID, 400, "PostBodyInvalid", "The request body is invalid: {}.")        \
	X(POST_BODY_UNCOMPRESS_ERROR, 400, "PostBodyUncompressError",                            \
	  "The request body cannot be decompressed: {}.")                                        \
	X(INVALID_COMPRESS_TYPE, 400, "InvalidCompressType",                                     \
	  "The compress type is not supported: {}.")                                             \
	X(MISSING_BODY_RAW_SIZE, 400, "MissingBodyRawSize",                                      \
	  "A compressed body needs the x-log-bodyrawsize header.")                              \
	X(INVALID_BODY_RAW_SIZE, 400, "InvalidBodyRawSize",                                      \
	  "The x-log-bodyrawsize header is invalid: {}.")                                       \
	X(INVALID_CONTENT_MD5, 400, "InvalidContentMD5",                                         \
	  "The Content-MD5 header does not match the body.")                                    \
	X(INVALID_QUERY_STRING, 400, "InvalidQueryString", "The query is not supported: {}.")   \
	X(POST_BODY_TOO_LARGE, 413, "PostBodyTooLarge", "The request body is too large: {}.")   \
	X(REQUEST_URI_TOO_LONG, 414, "InvalidParameter", "The request target is too long.")     \
	X(API_NOT_FOUND, 404, "ParameterInvalid", "No Log Service API at {}.")                  \
	X(METHOD_NOT_ALLOWED, 405, "ParameterInvalid", "The HTTP method is not allowed here.")  \
	X(SERVER_BUSY, 503, "ServerBusy", "The server is busy, please try again later.")        \
	X(NOT_HELD, 421, "LogStoreNotHere",                                                      \
	  "This control-plane node holds no log store; the Log Service is at {}.")             \
	X(INTERNAL_SERVER_ERROR, 500, "InternalServerError",                                     \
	  "The server encountered an internal error; please try again later.")

enum sls_err {
#define SLS_ERR_ENUM(name, http, code, msg) SLS_ERR_##name,
	SLS_ERR_MAP(SLS_ERR_ENUM)
#undef SLS_ERR_ENUM
	SLS_ERR__COUNT
};

struct sls_err_info {
	int http;
	const char *code;
	const char *message;
};

const struct sls_err_info *sls_err_info(enum sls_err e);
/* The message of e with "{}" replaced by detail (NULL: ""), NUL-terminated in out. */
void sls_err_message(enum sls_err e, const char *detail, char *out, size_t cap);
/* The JSON error body {"errorCode":…,"errorMessage":…} (malloc'd; *len set). */
char *sls_err_body(enum sls_err e, const char *detail, size_t *len);

#endif
