/* Option parsing shared by the subcommands that take long options by hand. */
#ifndef CLI_OPTS_H
#define CLI_OPTS_H

/* Accepts "--name VALUE" and "--name=VALUE" at argv[*i] (advancing *i past a
 * separate value). Returns the value, or NULL when argv[*i] is another option
 * or the value is missing. */
const char *cli_opt_value(const char *name, int argc, char **argv, int *i);

#endif
