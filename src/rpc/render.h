/* Response bodies: a handler's jansson object rendered as JSON (the default)
 * or XML (Format=XML), and the error envelope of spec §5.6 in either format. */
#ifndef RPC_RENDER_H
#define RPC_RENDER_H
#include <jansson.h>
#include <stddef.h>

#include "core/str.h"
#include "rpc/errors.h"

#define RENDER_CT_JSON "application/json;charset=utf-8"
#define RENDER_CT_XML "text/xml;charset=utf-8"
#define RENDER_MAX_DEPTH 32       /* nesting of handler objects rendered as XML */
#define RENDER_MAX_ACTION 64      /* bytes of an action name used as the XML root */
#define RENDER_DEFAULT_HOST_ID "smartag.aliyuncs.com"

enum render_format { RENDER_JSON, RENDER_XML };

/* Format parameter → format: "XML" in any case is XML, anything else JSON. */
enum render_format render_format_of(struct str format_param);

struct render_out {
	char *body; /* malloc'd, NUL-terminated */
	size_t len;
	const char *content_type;
};

/* {"RequestId": id, ...out} as JSON, or <ActionResponse><RequestId>..</RequestId>..</ActionResponse>. */
void render_success(json_t *out, const char *request_id, struct str action, enum render_format f,
		    struct render_out *r);
/* RequestId, HostId, Code, Message, Recommend; detail replaces "{}" in the message. */
void render_error(enum err e, const char *detail, const char *request_id, const char *host_id,
		  enum render_format f, struct render_out *r);

#endif
