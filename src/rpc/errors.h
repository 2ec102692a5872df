/* The error catalogue: one X-macro table gives each error its enum value, HTTP
 * status, API code and message (spec §3.1, §5.7 and the decisions of §10).
 * A "{}" in a message is replaced by the request's detail (a parameter name). */
#ifndef RPC_ERRORS_H
#define RPC_ERRORS_H

#define ERR_MAP(X)                                                                               \
	X(OK, 200, "", "")                                                                       \
	/* Gateway (protocol and authentication) errors, spec §5.7 and §10. */                   \
	X(SIGNATURE_DOES_NOT_MATCH, 400, "SignatureDoesNotMatch",                                \
	  "Specified signature is not matched with our calculation.")                            \
	X(INCOMPLETE_SIGNATURE, 400, "IncompleteSignature",                                      \
	  "The request signature does not conform to Aliyun standards.")                         \
	X(INVALID_ACCESS_KEY_ID_NOT_FOUND, 404, "InvalidAccessKeyId.NotFound",                   \
	  "Specified access key is not found.")                                                  \
	X(SIGNATURE_NONCE_USED, 400, "SignatureNonceUsed",                                       \
	  "Specified signature nonce was used already.")                                         \
	X(INVALID_TIMESTAMP_EXPIRED, 400, "InvalidTimeStamp.Expired",                            \
	  "Specified time stamp or date value is expired.")                                      \
	X(ILLEGAL_TIMESTAMP, 400, "IllegalTimestamp",                                            \
	  "The input parameter \"Timestamp\" that is mandatory for processing this request is "  \
	  "not supplied.")                                                                       \
	X(INVALID_VERSION, 400, "InvalidVersion", "Specified parameter Version is not valid.")   \
	X(INVALID_ACTION_NOT_FOUND, 404, "InvalidAction.NotFound",                               \
	  "Specified api is not found, please check your url and method.")                       \
	X(MISSING_PARAMETER, 400, "MissingParameter",                                            \
	  "The input parameter \"{}\" that is mandatory for processing this request is not "     \
	  "supplied.")                                                                           \
	X(INVALID_PARAMETER, 400, "InvalidParameter", "The specified parameter \"{}\" is not valid.") \
	X(MALFORMED_REQUEST, 400, "InvalidParameter", "The request is malformed: {}.")           \
	X(REQUEST_TOO_LARGE, 413, "RequestEntityTooLarge",                                       \
	  "The request exceeds the size limit: {}.")                                             \
	X(UNSUPPORTED_HTTP_METHOD, 405, "UnsupportedHTTPMethod",                                 \
	  "The HTTP method is not supported; use GET or POST.")                                  \
	/* The replay cache is full of live nonces: refuse (clients retry Throttling). */            \
	X(THROTTLING, 400, "Throttling", "Request was denied due to request throttling.")        \
	/* This AccessKey spent its request budget (serve --rate-limit key=...). */                 \
	X(THROTTLING_USER, 400, "Throttling.User", "Request was denied due to user flow control.") \
	X(FORBIDDEN, 403, "Forbidden", "User not authorized to operate on the specified resource.") \
	X(INTERNAL_ERROR, 500, "InternalError",                                                  \
	  "The request processing has failed due to some unknown error, exception or failure.")  \
	X(SERVICE_UNAVAILABLE, 503, "ServiceUnavailable",                                        \
	  "The request has failed due to a temporary failure of the server.")                    \
	/* STORE_ADMIT_EARLY: signed before the replay horizon of a database crash. */           \
	X(SERVICE_UNAVAILABLE_RESIGN, 503, "ServiceUnavailable",                                 \
	  "The request was signed before the database recovered from a crash and its nonce "     \
	  "cannot be checked: sign it again.")                                                   \
	/* STORE_EUNKNOWN: the database connection was lost after COMMIT was sent. */            \
	X(INTERNAL_ERROR_COMMIT_UNKNOWN, 500, "InternalError",                                   \
	  "The outcome of the request is unknown: the connection to the database was lost "      \
	  "while the change was being committed. Read the resource before retrying.")           \
	/* Flow-log errors, spec §3.1 (messages exact). */                                       \
	X(DEPENDENCY_VIOLATION_FLOWLOG, 400, "DependencyViolation.FlowLog",                      \
	  "This FlowLog instance is bound to an SAG instance.")                                  \
	X(INCORRECT_STATUS_FLOWLOG, 400, "IncorrectStatus.FlowLog",                              \
	  "The current FlowLog instance status does not support this operation.")                \
	X(INVALID_FLOWLOG_ID_NOT_FOUND, 400, "InvalidFlowLogId.NotFound",                        \
	  "The specified FlowLogId does not exist.")                                             \
	X(MISSING_PARAM_FLOWLOG_ID, 400, "MissingParam.FlowLogId", "Specify the FlowLogId parameter.") \
	X(OPERATION_FAILED_ASSOCIATE_FLOWLOG, 400, "OperationFailed.AssociateFlowLog",           \
	  "The operation failed. The specified SAG instance has already been associated with "   \
	  "another FlowLog instance.")                                                           \
	X(OPERATION_UNSUPPORTED_ASSOCIATE_FLOWLOG, 400, "OperationUnsupported.AssociateFlowLog", \
	  "You cannot bind the SAG device of the current version or model to a FlowLog "         \
	  "instance.")                                                                           \
	X(QUOTA_EXCEEDED_FLOWLOG, 400, "QuotaExceeded.Flowlog",                                  \
	  "The maximum number of FlowLog instances is exceeded.")                                \
	X(MISSING_PARAM_LOGSTORE_NAME, 400, "MissingParam.LogstoreName",                         \
	  "Specify the LogstoreName parameter.")                                                 \
	X(MISSING_PARAM_NETFLOW_SERVER_IP, 400, "MissingParam.NetflowServerIp",                  \
	  "Specify the NetflowServerIp parameter.")                                              \
	X(MISSING_PARAM_NETFLOW_SERVER_PORT, 400, "MissingParam.NetflowServerPort",              \
	  "Specify the NetflowServerPort parameter.")                                            \
	X(MISSING_PARAM_NETFLOW_VERSION, 400, "MissingParam.NetflowVersion",                     \
	  "Specify the NetflowVersion parameter.")                                               \
	X(MISSING_PARAM_PROJECT_NAME, 400, "MissingParam.ProjectName",                           \
	  "Specify the ProjectName parameter.")                                                  \
	X(MISSING_PARAM_SLS_REGION_ID, 400, "MissingParam.SlsRegionId",                          \
	  "Specify the SlsRegionId parameter.")                                                  \
	X(ILLEGAL_PARAM_ACTIVE_AGING, 400, "IllegalParam.ActiveAging",                           \
	  "The specified ActiveAging is invalid.")                                               \
	X(ILLEGAL_PARAM_INACTIVE_AGING, 400, "IllegalParam.InactiveAging",                       \
	  "The specified InactiveAging is invalid.")                                             \
	X(ILLEGAL_PARAM_NETFLOW_SERVER_IP, 400, "IllegalParam.NetflowServerIp",                  \
	  "The specified NetflowServerIp is invalid.")                                           \
	X(ILLEGAL_PARAM_NETFLOW_SERVER_PORT, 400, "IllegalParam.NetflowServerPort",              \
	  "The specified NetflowServerPort is invalid.")                                         \
	X(ILLEGAL_PARAM_NETFLOW_VERSION, 400, "IllegalParam.NetflowVersion",                     \
	  "The specified NetflowVersion is invalid.")                                            \
	X(ILLEGAL_PARAM_OUTPUT_TYPE, 400, "IllegalParam.OutputType",                             \
	  "The specified OutputType is invalid.")                                                \
	X(ILLEGAL_PARAM_REGION_ID, 400, "IllegalParam.RegionId", "The specified RegionId is invalid.") \
	X(ILLEGAL_PARAM_SLS_REGION_ID, 400, "IllegalParam.SlsRegionId",                          \
	  "The specified SlsRegionId is invalid.")                                               \
	X(ILLEGAL_PARAM_STATUS, 400, "IllegalParam.Status",                                      \
	  "The specified Status parameter is invalid.")                                          \
	X(INVALID_SMARTAG_ID_NOT_FOUND, 400, "InvalidSmartAGId.NotFound",                        \
	  "The specified SmartAGId does not exist.")                                             \
	X(FEATURE_NOT_SUPPORT, 403, "FeatureNotSupport",                                         \
	  "The current edition of the smart access gateway does not support this feature.")      \
	X(FEATURE_NOT_SUPPORT_ACTIVE, 403, "FeatureNotSupportForActiveSmartAG",                  \
	  "The current edition of the active smart access gateway does not support this "        \
	  "feature.")                                                                            \
	X(FEATURE_NOT_SUPPORT_STANDBY, 403, "FeatureNotSupportForStandBySmartAG",                \
	  "The current edition of the standby smart access gateway does not support this "       \
	  "feature.")

enum err {
#define ERR_ENUM(name, http, code, msg) ERR_##name,
	ERR_MAP(ERR_ENUM)
#undef ERR_ENUM
	ERR__COUNT
};

struct err_info {
	int http;
	const char *code;
	const char *message;
};

const struct err_info *err_info(enum err e);
/* Writes the message of e with "{}" replaced by detail (or "" when NULL). */
void err_message(enum err e, const char *detail, char *out, unsigned cap);
/* Looks an error up by its API code; ERR__COUNT when unknown (tests, tooling). */
enum err err_by_code(const char *code);

#endif
