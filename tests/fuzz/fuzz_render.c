/* Differential: the renderer's own JSON writer against jansson's json_dumps,
 * and a render_list against the jansson tree of the same items, in JSON and
 * XML, on arbitrary text. The input is split at 0xFF bytes into values; those
 * that are valid UTF-8 (what jansson and the domain's validators let through)
 * become strings, every piece also yields an integer. Any difference aborts. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/render.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_RENDER_VALUES 16
#define RID "A6E1680B-B34F-4BB7-B504-F8ED675E721C"

static void same_or_abort(const struct render_out *a, const struct render_out *b)
{
	if (a->len != b->len || memcmp(a->body, b->body, a->len) != 0 ||
	    strcmp(a->content_type, b->content_type) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *vals[FUZZ_RENDER_VALUES];
	int64_t nums[FUZZ_RENDER_VALUES];
	size_t n = 0, start = 0;
	for (size_t i = 0; i <= size && n < FUZZ_RENDER_VALUES; i++) {
		if (i < size && data[i] != 0xff)
			continue;
		vals[n] = json_stringn((const char *)data + start, i - start);
		uint64_t h = 1469598103934665603u;
		for (size_t j = start; j < i; j++)
			h = (h ^ data[j]) * 1099511628211u;
		nums[n] = (int64_t)h;
		if (vals[n])
			n++;
		start = i + 1;
	}

	for (int f = RENDER_JSON; f <= RENDER_XML; f++) {
		json_t *tree = json_object(), *list = json_object();
		json_t *items = json_array();
		struct render_list l;
		render_list_init(&l, (enum render_format)f, "Item");
		for (size_t i = 0; i < n; i++) {
			json_t *o = json_object();
			json_object_set_new(o, "S", json_incref(vals[i]));
			json_object_set_new(o, "N", json_integer(nums[i]));
			json_object_set_new(o, "T", json_incref(vals[(i + 1) % n]));
			json_array_append_new(items, o);
			render_list_item_begin(&l);
			render_list_str(&l, "S", json_string_value(vals[i]));
			render_list_int(&l, "N", nums[i]);
			render_list_str(&l, "T", json_string_value(vals[(i + 1) % n]));
			render_list_item_end(&l);
		}
		json_object_set_new(tree, "Top", n ? json_incref(vals[0]) : json_null());
		json_object_set_new(list, "Top", n ? json_incref(vals[0]) : json_null());
		json_t *w = json_object();
		json_object_set_new(w, "Item", items);
		json_object_set_new(tree, "Items", w);
		w = json_object();
		json_object_set_new(w, "Item", render_list_take(&l));
		json_object_set_new(list, "Items", w);

		struct render_out a, b;
		render_success(tree, RID, STR_LIT("DescribeThings"), (enum render_format)f, &a);
		render_success(list, RID, STR_LIT("DescribeThings"), (enum render_format)f, &b);
		/* Strings with a NUL byte: jansson's tree keeps them, the list takes C
		 * strings; only compare when every value is NUL-free. */
		bool nul = false;
		for (size_t i = 0; i < n; i++)
			nul |= strlen(json_string_value(vals[i])) != json_string_length(vals[i]);
		if (!nul)
			same_or_abort(&a, &b);
		if (f == RENDER_JSON) {
			json_t *doc = json_object();
			json_object_set_new(doc, "RequestId", json_string(RID));
			json_object_update(doc, tree);
			char *want = json_dumps(doc, JSON_COMPACT);
			if (!want || strlen(want) != a.len || memcmp(want, a.body, a.len) != 0)
				abort();
			free(want);
			json_decref(doc);
		}
		free(a.body);
		free(b.body);
		json_decref(tree);
		json_decref(list);
	}
	for (size_t i = 0; i < n; i++)
		json_decref(vals[i]);
	return 0;
}
