/* Response bodies: a handler's jansson object rendered as JSON (the default)
 * or XML (Format=XML), and the error envelope of spec §5.6 in either format. */
#ifndef RPC_RENDER_H
#define RPC_RENDER_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
/* Pre-rendered lists. A 50-item page built as a jansson tree, written and
 * freed costs ~25x what its bytes do. A handler may instead write the items
 * straight into a render_list, in the answer's format, and put the node
 * render_list_take() returns where the array would go (under the same key as
 * item): render_success copies it verbatim. Items hold strings and integers.
 * The bytes are the same as the tree's would be (tests/unit/test_render.c). */
struct render_list {
	enum render_format fmt;
	const char *item; /* the list's key: XML repeats it around each item */
	struct buf b;
	bool first_field;
};
void render_list_init(struct render_list *l, enum render_format f, const char *item);
void render_list_item_begin(struct render_list *l);
void render_list_str(struct render_list *l, const char *key, const char *s);
void render_list_int(struct render_list *l, const char *key, int64_t v);
void render_list_item_end(struct render_list *l);
json_t *render_list_take(struct render_list *l); /* the node; l is left empty */
void render_list_free(struct render_list *l);

/* RequestId, HostId, Code, Message, Recommend; detail replaces "{}" in the message. */
void render_error(enum err e, const char *detail, const char *request_id, const char *host_id,
		  enum render_format f, struct render_out *r);

#endif
