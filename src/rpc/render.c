#include "rpc/render.h"

#include <inttypes.h>
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

/* Our own JSON writer over the jansson tree, into a per-thread buffer that
 * keeps its capacity, then one exact-size copy. jansson's json_dumpb was half
 * of an uncached 50-item DescribeFlowLogs (~80 instructions per output byte:
 * it escapes character by character through a callback); here each string is
 * written in one pass into space reserved for its worst case. Output is what
 * json_dumps(JSON_COMPACT) gives:
 * insertion order, UTF-8 kept, only '"', '\\' and control characters escaped. */
#define RENDER_SCRATCH_KEEP (256 * 1024) /* a thread keeps at most this much scratch */

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;


static void scratch_free(void *p)
{
	buf_free(p);
	free(p);
}

static void scratch_init(void)
{
	/* The destructor frees a thread's buffer when it exits (no leak reports). */
	if (pthread_key_create(&scratch_key, scratch_free) != 0)
		fatal("render: pthread_key_create failed");
}

static struct buf *scratch_get(void)
{
	pthread_once(&scratch_once, scratch_init);
	struct buf *b = pthread_getspecific(scratch_key);
	if (!b) {
		b = xcalloc(1, sizeof(*b));
		pthread_setspecific(scratch_key, b);
	}
	b->len = 0;
	return b;
}

static void json_string_out(struct buf *b, const char *s, size_t n)
{
	/* Non-zero: escaped; the short form where JSON has one, else \u00XX. */
	static const unsigned char esc[256] = {[0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1};
	static const char short_esc[128] = {['"'] = '"', ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f',
					    ['\n'] = 'n', ['\r'] = 'r',  ['\t'] = 't'};
	static const char hex[] = "0123456789ABCDEF";
	buf_reserve(b, n * 6 + 2); /* the worst case: every byte as \u00XX */
	char *o = b->p + b->len;
	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!esc[c]) {
			*o++ = (char)c;
		} else if (short_esc[c]) {
			*o++ = '\\';
			*o++ = short_esc[c];
		} else {
			memcpy(o, "\\u00", 4);
			o[4] = hex[c >> 4];
			o[5] = hex[c & 15];
			o += 6;
		}
	}
	*o++ = '"';
	b->len = (size_t)(o - b->p);
}

/* A render_list's node: an object whose only key is this (no handler's key
 * starts with a control character), holding the fragment as a string. */
#define RENDER_RAW_KEY "\001raw"

static json_t *raw_of(json_t *v)
{
	return json_object_size(v) == 1 ? json_object_get(v, RENDER_RAW_KEY) : NULL;
}

static void json_value_out(struct buf *b, json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *x;
		bool first = true;
		json_t *raw = raw_of(v);
		if (raw) {
			buf_add(b, json_string_value(raw), json_string_length(raw));
			break;
		}
		buf_addc(b, '{');
		json_object_foreach(v, k, x) {
			if (!first)
				buf_addc(b, ',');
			first = false;
			json_string_out(b, k, strlen(k));
			buf_addc(b, ':');
			json_value_out(b, x);
		}
		buf_addc(b, '}');
		break;
	}
	case JSON_ARRAY: {
		buf_addc(b, '[');
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				buf_addc(b, ',');
			json_value_out(b, json_array_get(v, i));
		}
		buf_addc(b, ']');
		break;
	}
	case JSON_STRING: json_string_out(b, json_string_value(v), json_string_length(v)); break;
	case JSON_INTEGER: {
		json_int_t n = json_integer_value(v);
		if (n < 0)
			buf_addc(b, '-');
		buf_add_u64(b, n < 0 ? 0 - (uint64_t)n : (uint64_t)n);
		break;
	}
	case JSON_REAL: {
		/* As jansson: 17 significant digits, and a ".0" when that looks integral. */
		char d[40];
		int n = snprintf(d, sizeof(d) - 2, "%.17g", json_real_value(v));
		if (n <= 0 || (size_t)n >= sizeof(d) - 2)
			n = 0;
		d[n] = '\0';
		char *e = strchr(d, 'e');
		if (e) { /* "1e+300" and "1e-05" become "1e300" and "1e-5" */
			char *from = e + 1, *to = e + 1;
			if (*from == '+')
				from++;
			else if (*from == '-')
				from++, to++;
			while (*from == '0' && from[1])
				from++;
			memmove(to, from, strlen(from) + 1);
			n = (int)strlen(d);
		} else if (n > 0 && !strpbrk(d, ".n")) {
			memcpy(d + n, ".0", 3), n += 2;
		}
		buf_add(b, d, (size_t)n);
		break;
	}
	case JSON_TRUE: buf_adds(b, "true"); break;
	case JSON_FALSE: buf_adds(b, "false"); break;
	case JSON_NULL: buf_adds(b, "null"); break;
	}
}

static void json_out(json_t *doc, struct render_out *r)
{
	struct buf *b = scratch_get();
	json_value_out(b, doc);
	r->body = xmemdup0(b->p, b->len);
	r->len = b->len;
	r->content_type = RENDER_CT_JSON;
	if (b->cap > RENDER_SCRATCH_KEEP) /* one huge answer does not pin its memory */
		buf_free(b);
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
		json_t *raw = json_is_object(v) ? raw_of(v) : NULL;
		if (raw) { /* a render_list: its items carry their elements */
			buf_add(b, json_string_value(raw), json_string_length(raw));
		} else if (json_is_array(v)) {
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

void render_list_init(struct render_list *l, enum render_format f, const char *item)
{
	*l = (struct render_list){.fmt = f, .item = item};
	if (f == RENDER_JSON)
		buf_addc(&l->b, '[');
}

void render_list_item_begin(struct render_list *l)
{
	if (l->fmt == RENDER_JSON) {
		if (l->b.len > 1)
			buf_addc(&l->b, ',');
		buf_addc(&l->b, '{');
	} else {
		buf_addc(&l->b, '<');
		buf_adds(&l->b, l->item);
		buf_addc(&l->b, '>');
	}
	l->first_field = true;
}

/* "key": (JSON, with its comma) or <key> (XML). */
static void list_key(struct render_list *l, const char *key)
{
	if (l->fmt == RENDER_JSON) {
		if (!l->first_field)
			buf_addc(&l->b, ',');
		json_string_out(&l->b, key, strlen(key));
		buf_addc(&l->b, ':');
	} else {
		buf_addc(&l->b, '<');
		buf_adds(&l->b, key);
		buf_addc(&l->b, '>');
	}
	l->first_field = false;
}

static void list_key_end(struct render_list *l, const char *key)
{
	if (l->fmt == RENDER_XML) {
		buf_add(&l->b, "</", 2);
		buf_adds(&l->b, key);
		buf_addc(&l->b, '>');
	}
}

void render_list_str(struct render_list *l, const char *key, const char *s)
{
	list_key(l, key);
	if (l->fmt == RENDER_JSON)
		json_string_out(&l->b, s, strlen(s));
	else
		xml_text(&l->b, s, strlen(s));
	list_key_end(l, key);
}

void render_list_int(struct render_list *l, const char *key, int64_t v)
{
	list_key(l, key);
	if (v < 0)
		buf_addc(&l->b, '-');
	buf_add_u64(&l->b, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
	list_key_end(l, key);
}

void render_list_item_end(struct render_list *l)
{
	if (l->fmt == RENDER_JSON) {
		buf_addc(&l->b, '}');
	} else {
		buf_add(&l->b, "</", 2);
		buf_adds(&l->b, l->item);
		buf_addc(&l->b, '>');
	}
}

json_t *render_list_take(struct render_list *l)
{
	if (l->fmt == RENDER_JSON)
		buf_addc(&l->b, ']');
	json_t *o = json_object();
	json_object_set_new_nocheck(o, RENDER_RAW_KEY, json_stringn_nocheck(l->b.p ? l->b.p : "", l->b.len));
	render_list_free(l);
	return o;
}

void render_list_free(struct render_list *l)
{
	buf_free(&l->b);
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
