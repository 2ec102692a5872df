/* The console's bundled files, embedded at build time (embed_assets.c over
 * console/build.mjs's output; the table is generated). */
#ifndef CONSOLE_CONSOLE_ASSETS_H
#define CONSOLE_CONSOLE_ASSETS_H
#include <stddef.h>

struct console_asset {
	const char *name; /* file name under /console/ */
	const unsigned char *data;
	size_t len;
};

extern const struct console_asset console_assets[];
extern const unsigned console_nassets;

#endif
