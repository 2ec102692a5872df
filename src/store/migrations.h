/* The schema migrations embedded at build time (see embed_sql.c and docs/store.md). */
#ifndef STORE_MIGRATIONS_H
#define STORE_MIGRATIONS_H

struct store_migration {
	int version;      /* NNNN of sql/NNNN_name.sql; dense from 1 */
	const char *name; /* "0001_accounts_keys" */
	const char *sql;
};

extern const struct store_migration store_migrations[];
extern const int store_migrations_count;

#endif
