/* Serves the embedded console (console.h). */
#include "console/console.h"

#include <string.h>

#include "console/console_assets.h"
#include "core/xmalloc.h"

/* Every page and asset gets these. The console loads nothing from another
 * origin and has no inline script or style, so 'self' is all it needs;
 * frame-ancestors 'none' keeps it out of other sites' frames. */
#define CONSOLE_CSP                                                                        \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "   \
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "         \
	"form-action 'self'; frame-ancestors 'none'"

static const struct http_hdr console_hdrs[] = {
	{"Content-Security-Policy", CONSOLE_CSP},
	{"X-Content-Type-Options", "nosniff"},
	{"Referrer-Policy", "no-referrer"},
	{"X-Frame-Options", "DENY"},
	/* The assets change with the binary: revalidate, never serve a stale bundle. */
	{"Cache-Control", "no-cache"},
};

static const struct {
	const char *ext, *type;
} console_types[] = {
	{".html", "text/html;charset=utf-8"},
	{".js", "text/javascript;charset=utf-8"},
	{".css", "text/css;charset=utf-8"},
	{".svg", "image/svg+xml"},
};

static const char *console_type(const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < sizeof(console_types) / sizeof(console_types[0]); i++) {
		size_t e = strlen(console_types[i].ext);
		if (n >= e && strcmp(name + n - e, console_types[i].ext) == 0)
			return console_types[i].type;
	}
	return "application/octet-stream";
}

static const struct console_asset *console_find(struct str name)
{
	if (name.len == 0)
		name = str_c("index.html");
	for (unsigned i = 0; i < console_nassets; i++)
		if (str_eqc(name, console_assets[i].name))
			return &console_assets[i];
	return NULL;
}

static void console_answer(struct http_request *r, int status, const char *type, const void *p,
			   size_t len)
{
	char *body = xmemdup0(p, len);
	http_respond_hdrs(r, status, type, body, len, console_hdrs,
			  sizeof(console_hdrs) / sizeof(console_hdrs[0]));
}

static void console_handle(struct http_request *r)
{
	size_t pl = sizeof(CONSOLE_PREFIX) - 1;
	struct str name = {r->path.p + pl, r->path.len - pl};
	const struct console_asset *a = console_find(name);
	if (!a) {
		static const char msg[] = "404 not a console file\n";
		console_answer(r, 404, "text/plain;charset=utf-8", msg, sizeof(msg) - 1);
		return;
	}
	console_answer(r, 200, console_type(a->name), a->data, a->len);
}

/* "/console" without the slash: relative asset URLs need the slash. */
static void console_redirect(struct http_request *r)
{
	static const struct http_hdr loc[] = {{"Location", CONSOLE_PREFIX}};
	http_respond_hdrs(r, 301, NULL, NULL, 0, loc, 1);
}

void console_routes_add(struct http_server *h)
{
	http_route_add(h, "GET", "/console", console_redirect, NULL);
	http_route_add(h, "GET", CONSOLE_PREFIX, console_handle, NULL);
}
