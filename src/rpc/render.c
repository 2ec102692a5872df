#include "rpc/render.h"

#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"

#define RENDER_MSG_MAX 512
#define RENDER_RECOMMEND_BASE "https://api.aliyun.com/troubleshoot?q="

enum render_format render_format_of(struct str format_param)
{
	return str_caseeq(format_param, "XML") ? RENDER_XML : RENDER_JSON;
}

/* json_dumps grows its buffer by doubling and copying (a 20 KB DescribeFlowLogs
 * page took a dozen reallocs); dumping into a per-thread scratch buffer and
 * copying once costs one malloc. A body larger than the scratch falls back. */
#define RENDER_SCRATCH (128 * 1024)

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

/* glibc returns a thread arena's free top to the kernel once it exceeds 128 KB,
 * and a 50-item DescribeFlowLogs page frees ~200 KB of jansson nodes at once:
 * every such request trimmed the arena and page-faulted it back in (sysmalloc
 * and page faults were ~20 % of perf's samples, ~6 % with this). Keeping up to
 * this much free per arena stops that; the renderer sets it because it is
 * where those trees end. */
#define RENDER_MALLOC_TRIM (4 * 1024 * 1024)

static void scratch_init(void)
{
	mallopt(M_TRIM_THRESHOLD, RENDER_MALLOC_TRIM);
	/* The destructor frees a thread's buffer when it exits (no leak reports). */
	if (pthread_key_create(&scratch_key, free) != 0)
		fatal("render: pthread_key_create failed");
}

static char *scratch_get(void)
{
	pthread_once(&scratch_once, scratch_init);
	char *p = pthread_getspecific(scratch_key);
	if (!p) {
		p = xmalloc(RENDER_SCRATCH);
		pthread_setspecific(scratch_key, p);
	}
	return p;
}

static void json_out(json_t *doc, struct render_out *r)
{
	char *scratch = scratch_get();
	size_t n = json_dumpb(doc, scratch, RENDER_SCRATCH, JSON_COMPACT);
	if (n > 0 && n <= RENDER_SCRATCH) {
		r->body = xmalloc(n + 1);
		memcpy(r->body, scratch, n);
		r->body[n] = '\0';
		r->len = n;
	} else {
		r->body = json_dumps(doc, JSON_COMPACT);
		if (!r->body)
			fatal("render: json_dumps failed");
		r->len = strlen(r->body);
	}
	r->content_type = RENDER_CT_JSON;
}

/* XML 1.0 text: the five entities escaped, and the control characters XML
 * cannot carry at all replaced (jansson strings are valid UTF-8 already). */
static void xml_text(struct buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '&': buf_adds(b, "&amp;"); break;
		case '<': buf_adds(b, "&lt;"); break;
		case '>': buf_adds(b, "&gt;"); break;
		case '"': buf_adds(b, "&quot;"); break;
		case '\'': buf_adds(b, "&apos;"); break;
		default:
			buf_addc(b, (c < 0x20 && c != '\t' && c != '\n' && c != '\r') ? '?' : (char)c);
		}
	}
}

static void xml_value(struct buf *b, const char *key, json_t *v, int depth);

static void xml_object(struct buf *b, json_t *o, int depth)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v) {
		if (json_is_array(v)) {
			/* A list repeats the element named by its key (spec §5.5). */
			size_t i;
			json_t *e;
			json_array_foreach(v, i, e) xml_value(b, k, e, depth + 1);
		} else {
			xml_value(b, k, v, depth + 1);
		}
	}
}

static void xml_scalar(struct buf *b, json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING: xml_text(b, json_string_value(v), json_string_length(v)); break;
	case JSON_INTEGER: buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
	case JSON_REAL: buf_printf(b, "%.17g", json_real_value(v)); break;
	case JSON_TRUE: buf_adds(b, "true"); break;
	case JSON_FALSE: buf_adds(b, "false"); break;
	default: break; /* null: an empty element */
	}
}

static void xml_value(struct buf *b, const char *key, json_t *v, int depth)
{
	if (depth > RENDER_MAX_DEPTH)
		return;
	buf_printf(b, "<%s>", key);
	if (json_is_object(v)) {
		xml_object(b, v, depth);
	} else if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) xml_value(b, key, e, depth + 1);
	} else {
		xml_scalar(b, v);
	}
	buf_printf(b, "</%s>", key);
}

static void xml_out(struct buf *b, struct render_out *r)
{
	r->len = b->len;
	r->body = buf_steal(b);
	r->content_type = RENDER_CT_XML;
}

/* Action names reach here only after api_action_find matched them, but the
 * root element is built from bytes, so keep it to a safe XML name anyway. */
static void xml_root_name(struct str action, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < action.len && o + 1 < cap; i++) {
		char c = action.p[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			out[o++] = c;
	}
	if (o == 0)
		out[o++] = 'X';
	out[o] = '\0';
}

void render_success(json_t *out, const char *request_id, struct str action, enum render_format f,
		    struct render_out *r)
{
	json_t *doc = json_object();
	json_object_set_new(doc, "RequestId", json_string(request_id));
	if (out) {
		const char *k;
		json_t *v;
		json_object_foreach(out, k, v) {
			if (strcmp(k, "RequestId") != 0)
				json_object_set(doc, k, v);
		}
	}
	if (f == RENDER_JSON) {
		json_out(doc, r);
	} else {
		char root[RENDER_MAX_ACTION + 1];
		struct buf b = {0};
		xml_root_name(action, root, sizeof(root));
		buf_adds(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
		buf_printf(&b, "<%sResponse>", root);
		xml_object(&b, doc, 0);
		buf_printf(&b, "</%sResponse>", root);
		xml_out(&b, r);
	}
	json_decref(doc);
}

void render_error(enum err e, const char *detail, const char *request_id, const char *host_id,
		  enum render_format f, struct render_out *r)
{
	const struct err_info *info = err_info(e);
	char msg[RENDER_MSG_MAX];
	struct buf rec = {0};
	err_message(e, detail, msg, sizeof(msg));
	buf_printf(&rec, RENDER_RECOMMEND_BASE "%s&product=Smartag&requestId=%s", info->code,
		   request_id);
	json_t *doc = json_object();
	json_object_set_new(doc, "RequestId", json_string(request_id));
	json_object_set_new(doc, "HostId", json_string(host_id ? host_id : RENDER_DEFAULT_HOST_ID));
	json_object_set_new(doc, "Code", json_string(info->code));
	/* A detail that is not valid UTF-8 (a handler passing client bytes) must not
	 * lose the Message: fall back to the message without it. */
	json_t *m = json_string(msg);
	if (!m) {
		err_message(e, "?", msg, sizeof(msg));
		m = json_string(msg);
	}
	json_object_set_new(doc, "Message", m);
	json_object_set_new(doc, "Recommend", json_string(buf_cstr(&rec)));
	buf_free(&rec);
	if (f == RENDER_JSON) {
		json_out(doc, r);
	} else {
		struct buf b = {0};
		buf_adds(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error>");
		xml_object(&b, doc, 0);
		buf_adds(&b, "</Error>");
		xml_out(&b, r);
	}
	json_decref(doc);
}
