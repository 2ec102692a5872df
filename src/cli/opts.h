/* Option parsing shared by the subcommands that take long options by hand. */
#ifndef CLI_OPTS_H
#define CLI_OPTS_H
#include <stddef.h>
#include <stdint.h>

/* Accepts "--name VALUE" and "--name=VALUE" at argv[*i] (advancing *i past a
 * separate value). Returns the value, or NULL when argv[*i] is another option
 * or the value is missing. */
const char *cli_opt_value(const char *name, int argc, char **argv, int *i);

/* Parses "HOST:PORT" or "[V6ADDR]:PORT" (port 0-65535) into host (cap bytes
 * with the NUL) and *port. 0, or -1 when malformed or the host is too long. */
int cli_parse_hostport(const char *s, char *host, size_t cap, uint16_t *port);

#endif
