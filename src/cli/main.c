#include "cli/commands.h"

#include <stdio.h>
#include <string.h>

#include "core/xmalloc.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

/* Subcommands are added here as they land; --help lists exactly this table. */
static const struct command commands[] = {
	{"serve", cmd_serve, "serve the Smartag RPC API (flow logs, gateways) over HTTP"},
	{"keys", cmd_keys, "create, list and delete access keys"},
	{"meter", cmd_meter, "meter packets into flow records, export NetFlow V5/V9/IPFIX"},
	{"agent", cmd_agent, "run as a gateway device: follow its bound flow log, meter and export"},
	{"demo", cmd_demo, "serve with the console and a demo gateway delivering live traffic"},
	{NULL, NULL, NULL},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: sagflow COMMAND [OPTIONS]\n\n"
		   "sagflow " SAGFLOW_VERSION
		   " - a self-hosted Smart Access Gateway flow-log control plane and meter.\n\n"
		   "commands:\n");
	for (const struct command *c = commands; c->name; c++)
		fprintf(f, "  %-8s %s\n", c->name, c->summary);
	fprintf(f, "  %-8s %s\n", "version", "print the version");
	fprintf(f, "\nRun 'sagflow COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
	xmalloc_policy();
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *name = argv[1];
	if (!strcmp(name, "-h") || !strcmp(name, "--help") || !strcmp(name, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(name, "version") || !strcmp(name, "--version")) {
		printf("sagflow %s\n", SAGFLOW_VERSION);
		return 0;
	}
	for (const struct command *c = commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c->run(argc - 1, argv + 1);
	fprintf(stderr, "sagflow: unknown command '%s'\n\n", name);
	usage(stderr);
	return 2;
}
