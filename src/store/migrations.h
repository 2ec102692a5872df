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
/* The PostgreSQL set (sql/pg/), numbered like the SQLite one. */
extern const struct store_migration store_pg_migrations[];
extern const int store_pg_migrations_count;

#endif
