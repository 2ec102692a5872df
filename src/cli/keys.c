/* sagflow keys: create, list and delete access keys in the store.
 *
 * Output is one JSON object per line on stdout (for scripts: `jq`, or node);
 * messages go to stderr. The secret is printed once, by create, and nowhere
 * else: list never shows it and nothing logs it. */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "rpc/errors.h"
#include "store/store.h"

#define KEYS_EXIT_OK 0
#define KEYS_EXIT_FAIL 1  /* not found, invalid value, database failure */
#define KEYS_EXIT_USAGE 2

struct keys_opts {
	const char *db;
	const char *account;
	const char *akid;
};

static void keys_usage(FILE *f)
{
	fprintf(f,
		"usage: sagflow keys create --db DB --account NAME\n"
		"       sagflow keys list   --db DB\n"
		"       sagflow keys delete --db DB --access-key-id ID\n"
		"\n"
		"Manages the access keys clients sign their requests with.\n"
		"\n"
		"  create  makes the account NAME if it is new (1-64 of A-Z a-z 0-9 . _ @ -),\n"
		"          creates a key for it and prints one line\n"
		"          {\"AccountId\":N,\"AccessKeyId\":\"LTAI...\",\"AccessKeySecret\":\"...\"}.\n"
		"          The secret is shown only here; store it now.\n"
		"  list    prints one line per key, without its secret:\n"
		"          {\"AccountId\":N,\"AccountName\":\"...\",\"AccessKeyId\":\"...\",\"CreatedAt\":\"...\"}\n"
		"  delete  removes the key; exits 1 when there is no such key.\n"
		"\n"
		"Every running serve refuses a deleted key from its next request on. With a\n"
		"PostgreSQL DB, create and delete return once every live serve node has\n"
		"acknowledged the change (at most 3.5 s; a node that stopped renewing its\n"
		"lease is not waited for, and uses no cached key until it has renewed).\n"
		"\n"
		"options:\n"
		"  --db DB               the SQLite database file (create makes it, mode 0600), or\n"
		"                        a PostgreSQL URI postgresql://... or postgres://...\n"
		"                        (libpq's syntax: several hosts, target_session_attrs)\n"
		"  --account NAME        the account to create the key for (create)\n"
		"  --access-key-id ID    the key to delete (delete)\n"
		"  -h, --help            this help\n"
		"\n"
		"Exit status: 0 success, 1 failure (message on stderr), 2 usage error.\n");
}

static int parse_opts(int argc, char **argv, struct keys_opts *o)
{
	for (int i = 2; i < argc; i++) {
		const char *v;
		if ((v = cli_opt_value("--db", argc, argv, &i)))
			o->db = v;
		else if ((v = cli_opt_value("--account", argc, argv, &i)))
			o->account = v;
		else if ((v = cli_opt_value("--access-key-id", argc, argv, &i)))
			o->akid = v;
		else {
			fprintf(stderr, "sagflow keys: unknown or incomplete option '%s'\n", argv[i]);
			return -1;
		}
	}
	if (!o->db || !*o->db) {
		fprintf(stderr, "sagflow keys: --db DB is required\n");
		return -1;
	}
	return 0;
}

static int print_json_line(json_t *obj)
{
	char *line = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (!line)
		return -1;
	int rc = puts(line) < 0 ? -1 : 0;
	free(line);
	return rc;
}

/* ---- create ---- */

struct create_job {
	const char *account;
	struct store_key k;
};

static int create_fn(struct store_tx *tx, void *arg)
{
	struct create_job *c = arg;
	int rc = store_account_ensure(tx, c->account, &c->k.account_id);
	if (rc)
		return rc;
	/* 20 random alnum characters: a collision is all but impossible, but
	 * insert reports one (1) rather than overwriting, so try again. */
	for (int attempt = 0; attempt < 3; attempt++) {
		store_key_generate(&c->k);
		rc = store_key_insert(tx, &c->k);
		if (rc != 1)
			return rc;
	}
	return STORE_EIO;
}

static int keys_create(struct store *s, const struct keys_opts *o)
{
	if (!o->account) {
		fprintf(stderr, "sagflow keys create: --account NAME is required\n");
		return KEYS_EXIT_USAGE;
	}
	struct create_job c = {.account = o->account};
	int rc = store_write(s, create_fn, &c);
	if (rc == ERR_INVALID_PARAMETER) {
		fprintf(stderr, "sagflow keys create: invalid account name (1-%d of A-Z a-z 0-9 . _ @ -)\n",
			STORE_MAX_ACCOUNT_NAME);
		return KEYS_EXIT_FAIL;
	}
	if (rc != 0) {
		fprintf(stderr, "sagflow keys create: the key could not be stored\n");
		return KEYS_EXIT_FAIL;
	}
	json_t *o_json = json_object();
	json_object_set_new(o_json, "AccountId", json_integer(c.k.account_id));
	json_object_set_new(o_json, "AccessKeyId", json_string(c.k.akid));
	json_object_set_new(o_json, "AccessKeySecret", json_string(c.k.secret));
	memset(c.k.secret, 0, sizeof(c.k.secret));
	if (print_json_line(o_json) != 0 || fflush(stdout) != 0) {
		fprintf(stderr, "sagflow keys create: cannot write the key to stdout; delete %s\n",
			c.k.akid);
		return KEYS_EXIT_FAIL;
	}
	return KEYS_EXIT_OK;
}

/* ---- list ---- */

static int list_one(const struct store_key *k, void *arg)
{
	char when[21];
	time_format_iso8601(k->created_ms / 1000, when);
	json_t *o = json_object();
	json_object_set_new(o, "AccountId", json_integer(k->account_id));
	json_object_set_new(o, "AccountName", json_string(k->account_name));
	json_object_set_new(o, "AccessKeyId", json_string(k->akid));
	json_object_set_new(o, "CreatedAt", json_string(when));
	return print_json_line(o) != 0 ? STORE_EIO : 0;
}

static int list_fn(struct store_tx *tx, void *arg)
{
	return store_key_each(tx, list_one, arg);
}

static int keys_list(struct store *s, const struct keys_opts *o)
{
	if (store_read(s, list_fn, NULL) != 0 || fflush(stdout) != 0) {
		fprintf(stderr, "sagflow keys list: listing failed\n");
		return KEYS_EXIT_FAIL;
	}
	return KEYS_EXIT_OK;
}

/* ---- delete ---- */

static int delete_fn(struct store_tx *tx, void *arg)
{
	return store_key_delete(tx, arg);
}

static int keys_delete(struct store *s, const struct keys_opts *o)
{
	if (!o->akid) {
		fprintf(stderr, "sagflow keys delete: --access-key-id ID is required\n");
		return KEYS_EXIT_USAGE;
	}
	int rc = store_write(s, delete_fn, (void *)(uintptr_t)o->akid);
	if (rc == 1) {
		fprintf(stderr, "sagflow keys delete: no such access key\n");
		return KEYS_EXIT_FAIL;
	}
	if (rc != 0) {
		fprintf(stderr, "sagflow keys delete: the key could not be deleted\n");
		return KEYS_EXIT_FAIL;
	}
	fprintf(stderr, "sagflow keys delete: deleted %s\n", o->akid);
	return KEYS_EXIT_OK;
}

static const struct {
	const char *name;
	int (*run)(struct store *s, const struct keys_opts *o);
	bool creates_db; /* list and delete on a mistyped path must not make a new file */
} keys_subcommands[] = {
	{"create", keys_create, true},
	{"list", keys_list, false},
	{"delete", keys_delete, false},
};

int cmd_keys(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			keys_usage(stdout);
			return KEYS_EXIT_OK;
		}
	if (argc < 2) {
		keys_usage(stderr);
		return KEYS_EXIT_USAGE;
	}
	size_t n = sizeof(keys_subcommands) / sizeof(keys_subcommands[0]), i;
	for (i = 0; i < n && strcmp(keys_subcommands[i].name, argv[1]); i++)
		;
	if (i == n) {
		fprintf(stderr, "sagflow keys: unknown subcommand '%s'\n\n", argv[1]);
		keys_usage(stderr);
		return KEYS_EXIT_USAGE;
	}
	struct keys_opts o = {0};
	if (parse_opts(argc, argv, &o) != 0)
		return KEYS_EXIT_USAGE;
	/* A URI may carry a password: it is never echoed. */
	bool pg = store_path_is_pg(o.db);
	const char *shown = pg ? "(the PostgreSQL URI)" : o.db;
	struct stat st;
	if (!pg && !keys_subcommands[i].creates_db && stat(o.db, &st) != 0 && errno == ENOENT) {
		fprintf(stderr, "sagflow keys: no database at %s\n", o.db);
		return KEYS_EXIT_FAIL;
	}
	/* Migration notices would clutter a command whose output is the point. */
	log_set_level(LOG_WARN);
	struct store *s = store_open(o.db);
	if (!s) {
		fprintf(stderr, "sagflow keys: cannot open the database %s\n", shown);
		return KEYS_EXIT_FAIL;
	}
	if (!store_ready(s)) {
		fprintf(stderr, "sagflow keys: the database %s is unreachable\n", shown);
		store_close(s);
		return KEYS_EXIT_FAIL;
	}
	int rc = keys_subcommands[i].run(s, &o);
	store_close(s);
	return rc;
}
