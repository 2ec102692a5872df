/* The web console (issue 12, docs/console.md): its bundled files, served at
 * /console/ by `sagflow serve` with a strict Content-Security-Policy. The
 * console is a client of the public APIs only (RPC, and the Log Service under
 * /sls/<project>/); this module serves static bytes and nothing else. */
#ifndef CONSOLE_CONSOLE_H
#define CONSOLE_CONSOLE_H
#include "http/http.h"

#define CONSOLE_PREFIX "/console/"

/* Adds GET /console (a redirect) and GET /console/... to the route table. */
void console_routes_add(struct http_server *h);

#endif
