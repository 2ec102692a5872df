/* Flow logs, gateways and devices in a real SQLite store (src/store/sqlite_sag.c):
 * round trips, owner isolation, the derived TotalSagNum, paging, and the plan
 * of every statement the module ran (each must search an index, never scan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/sqlite_internal.h"
#include "store/store_sag.h"

#define N_FLOWLOGS 300

struct ctx {
	int64_t acct, acct2;
	int64_t seen;
	char last_id[DOMAIN_ID_MAX + 1];
	int plans_checked;
};

static void mk_flowlog(struct flowlog *fl, int64_t acct, const char *region, int i)
{
	flowlog_init(fl);
	snprintf(fl->id, sizeof(fl->id), "fl-test%011d", i);
	snprintf(fl->region_id, sizeof(fl->region_id), "%s", region);
	snprintf(fl->resource_group_id, sizeof(fl->resource_group_id), "rg-test");
	snprintf(fl->name, sizeof(fl->name), "log%d", i % 7);
	snprintf(fl->netflow_server_ip, sizeof(fl->netflow_server_ip), "192.0.2.1");
	fl->account_id = acct;
	fl->status = i % 2 ? FLOWLOG_INACTIVE : FLOWLOG_ACTIVE;
	fl->created_ms = 1000 + i;
}

static int seed(struct store_tx *tx, void *arg)
{
	struct ctx *c = arg;
	if (store_account_ensure(tx, "alice", &c->acct) || store_account_ensure(tx, "bob", &c->acct2))
		return STORE_EIO;
	for (int i = 0; i < N_FLOWLOGS; i++) {
		struct flowlog fl;
		mk_flowlog(&fl, c->acct, "cn-shanghai", i);
		if (store_flowlog_insert(tx, &fl))
			return STORE_EIO;
	}
	struct flowlog other;
	mk_flowlog(&other, c->acct2, "cn-shanghai", 9999);
	if (store_flowlog_insert(tx, &other))
		return STORE_EIO;
	struct sag g = {0};
	snprintf(g.id, sizeof(g.id), "sag-test1");
	snprintf(g.region_id, sizeof(g.region_id), "cn-shanghai");
	snprintf(g.resource_group_id, sizeof(g.resource_group_id), "rg-test");
	g.spec = SAG_SPEC_1000;
	g.ha = SAG_HA_WARM;
	g.account_id = c->acct;
	if (store_sag_insert(tx, &g, "order-1", "{}"))
		return STORE_EIO;
	struct device d = {0};
	snprintf(d.serial_number, sizeof(d.serial_number), "SN-A");
	snprintf(d.secret_key, sizeof(d.secret_key), "secretA");
	if (store_device_insert(tx, &g, &d, 1))
		return STORE_EIO;
	snprintf(d.serial_number, sizeof(d.serial_number), "SN-B");
	if (store_device_insert(tx, &g, &d, 2))
		return STORE_EIO;
	struct flowlog fl;
	struct owner o = {c->acct, "cn-shanghai"};
	if (store_flowlog_get(tx, o, "fl-test00000000000", &fl))
		return STORE_EIO;
	return store_sag_set_flowlog(tx, &g, fl.rowid);
}

static int count_cb(const struct flowlog *fl, void *arg)
{
	struct ctx *c = arg;
	assert_true(strcmp(fl->id, c->last_id) > 0); /* creation order, no repeats */
	snprintf(c->last_id, sizeof(c->last_id), "%s", fl->id);
	c->seen++;
	return 0;
}

static int sag_cb(const struct sag *g, void *arg)
{
	struct ctx *c = arg;
	c->seen++;
	assert_int_equal(g->ndevices, 2);
	return 0;
}

static int reads(struct store_tx *tx, void *arg)
{
	struct ctx *c = arg;
	struct owner o = {c->acct, "cn-shanghai"}, o2 = {c->acct2, "cn-shanghai"},
		     o3 = {c->acct, "cn-hangzhou"};
	struct flowlog fl;
	assert_int_equal(store_flowlog_get(tx, o, "fl-test00000000000", &fl), 0);
	assert_int_equal(fl.total_sag_num, 1);
	assert_int_equal(fl.netflow_server_port, 9995);
	assert_int_equal(fl.netflow_version, NETFLOW_V9);
	/* Another account's or region's log behaves as missing. */
	assert_int_equal(store_flowlog_get(tx, o2, "fl-test00000000000", &fl), 1);
	assert_int_equal(store_flowlog_get(tx, o3, "fl-test00000000000", &fl), 1);
	assert_int_equal(store_flowlog_get(tx, o, "fl-test00000009999", &fl), 1);
	int64_t n;
	assert_int_equal(store_flowlog_count(tx, o, &n), 0);
	assert_int_equal(n, N_FLOWLOGS);
	/* Paging until a short page visits every log exactly once. */
	int64_t total = 0;
	c->seen = 0;
	c->last_id[0] = '\0';
	for (int64_t page = 0;; page++) {
		struct flowlog_filter f = {.status = -1, .output = -1, .offset = page * 50, .limit = 50};
		int64_t before = c->seen;
		assert_int_equal(store_flowlog_list(tx, o, &f, &total, count_cb, c), 0);
		if (c->seen - before < 50)
			break;
	}
	assert_int_equal(total, N_FLOWLOGS);
	assert_int_equal(c->seen, N_FLOWLOGS);
	struct flowlog_filter f = {.status = FLOWLOG_INACTIVE, .output = -1, .name = "log3", .limit = 10};
	c->seen = 0;
	c->last_id[0] = '\0';
	assert_int_equal(store_flowlog_list(tx, o, &f, &total, count_cb, c), 0);
	assert_true(total > 0 && total < N_FLOWLOGS);
	struct flowlog_filter byid = {.flowlog_id = "fl-test00000000001", .status = -1, .output = -1,
				      .limit = 10};
	assert_int_equal(store_flowlog_list(tx, o2, &byid, &total, count_cb, c), 0);
	assert_int_equal(total, 0);
	/* The gateway, its devices and binding. */
	struct sag g;
	assert_int_equal(store_sag_get(tx, o, "sag-test1", &g), 0);
	assert_string_equal(g.flowlog_id, "fl-test00000000000");
	assert_int_equal(g.ndevices, 2);
	assert_string_equal(g.devices[0].serial_number, "SN-A");
	assert_int_equal(store_sag_get(tx, o2, "sag-test1", &g), 1);
	assert_int_equal(store_device_owner(tx, "SN-B", &g), 0);
	assert_string_equal(g.id, "sag-test1");
	assert_int_equal(store_device_owner(tx, "SN-C", &g), 1);
	struct flowlog bound;
	assert_int_equal(store_flowlog_get(tx, o, "fl-test00000000000", &bound), 0);
	c->seen = 0;
	assert_int_equal(store_sag_list_by_flowlog(tx, &bound, 0, 10, &total, sag_cb, c), 0);
	assert_int_equal(c->seen, 1);
	c->seen = 0;
	assert_int_equal(store_sag_list_unbound(tx, o, 100, &total, sag_cb, c), 0);
	assert_int_equal(total, 0);
	struct sag_filter sf = {.serial_number = "SN-B", .spec = -1, .limit = 10};
	assert_int_equal(store_sag_list(tx, o, &sf, &total, sag_cb, c), 0);
	assert_int_equal(total, 1);
	return 0;
}

static int writes(struct store_tx *tx, void *arg)
{
	struct ctx *c = arg;
	struct owner o = {c->acct, "cn-shanghai"};
	struct sag g;
	struct flowlog fl;
	if (store_sag_get(tx, o, "sag-test1", &g) || store_flowlog_get(tx, o, "fl-test00000000002", &fl))
		return STORE_EIO;
	struct device d = {0};
	snprintf(d.model, sizeof(d.model), "sag-1000");
	snprintf(d.software_version, sizeof(d.software_version), "1.8.0");
	d.ha_state = DEVICE_HA_ACTIVE;
	if (store_device_report(tx, &g, "SN-B", &d, 5000) || store_sag_set_flowlog(tx, &g, 0))
		return STORE_EIO;
	/* The sequence mark only grows; an equal or older one says what it is. */
	int64_t last = 0;
	if (store_device_sequence(tx, &g, "SN-B", 10, &last) != 0 ||
	    store_device_sequence(tx, &g, "SN-B", 10, &last) != 2 || last != 10 ||
	    store_device_sequence(tx, &g, "SN-B", 9, &last) != 2 || last != 10 ||
	    store_device_sequence(tx, &g, "SN-B", 11, &last) != 0 ||
	    store_device_sequence(tx, &g, "SN-NONE", 12, &last) != 1)
		return STORE_EIO;
	fl.active_aging = 600;
	if (store_flowlog_update(tx, &fl) || store_flowlog_delete(tx, &fl))
		return STORE_EIO;
	/* No cmocka asserts here: this runs on the store's writer thread. */
	if (store_device_delete(tx, &g, "SN-A") != 0 || store_device_delete(tx, &g, "SN-A") != 1)
		return STORE_EIO;
	return store_sag_delete(tx, &g);
}

/* Every cached statement that touches our tables must search an index. */
static int plans(struct store_tx *tx, void *arg)
{
	struct ctx *c = arg;
	sqlite3 *db = sqlite_tx_db(tx);
	for (sqlite3_stmt *st = sqlite3_next_stmt(db, NULL); st; st = sqlite3_next_stmt(db, st)) {
		const char *sql = sqlite3_sql(st);
		if (!strstr(sql, "flowlog") && !strstr(sql, "sags") && !strstr(sql, "devices"))
			continue;
		if (strncmp(sql, "SELECT", 6) && strncmp(sql, "UPDATE", 6) && strncmp(sql, "DELETE", 6))
			continue;
		char q[4096];
		snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
		sqlite3_stmt *ex;
		assert_int_equal(sqlite3_prepare_v2(db, q, -1, &ex, NULL), SQLITE_OK);
		while (sqlite3_step(ex) == SQLITE_ROW) {
			const char *d = (const char *)sqlite3_column_text(ex, 3);
			if ((!strncmp(d, "SCAN", 4) && !strstr(d, "INDEX")) || strstr(d, "TEMP B-TREE"))
				fail_msg("plan '%s' for: %s", d, sql);
		}
		sqlite3_finalize(ex);
		c->plans_checked++;
	}
	return 0;
}

#define MAX_WRITER_SQL 64

static char *writer_sql[MAX_WRITER_SQL];
static int n_writer_sql;

static int plans_collect(struct store_tx *tx, void *arg)
{
	sqlite3 *db = sqlite_tx_db(tx);
	for (sqlite3_stmt *st = sqlite3_next_stmt(db, NULL); st && n_writer_sql < MAX_WRITER_SQL;
	     st = sqlite3_next_stmt(db, st))
		writer_sql[n_writer_sql++] = strdup(sqlite3_sql(st));
	return 0;
}

static int plans_replay(struct store_tx *tx, void *arg)
{
	struct ctx *c = arg;
	sqlite3 *db = sqlite_tx_db(tx);
	for (int i = 0; i < n_writer_sql; i++) {
		const char *sql = writer_sql[i];
		if ((strstr(sql, "flowlogs") || strstr(sql, "sags") || strstr(sql, "devices")) &&
		    (!strncmp(sql, "UPDATE", 6) || !strncmp(sql, "DELETE", 6))) {
			char q[4096];
			snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
			sqlite3_stmt *ex;
			assert_int_equal(sqlite3_prepare_v2(db, q, -1, &ex, NULL), SQLITE_OK);
			while (sqlite3_step(ex) == SQLITE_ROW) {
				const char *d = (const char *)sqlite3_column_text(ex, 3);
				if (!strncmp(d, "SCAN", 4) && !strstr(d, "INDEX"))
					fail_msg("plan '%s' for: %s", d, sql);
			}
			sqlite3_finalize(ex);
			c->plans_checked++;
		}
		free(writer_sql[i]);
	}
	return 0;
}

/* The kept count follows inserts and deletes (triggers of 0003). */
static int count_after(struct store_tx *tx, void *arg)
{
	struct ctx *c = arg;
	struct owner o = {c->acct, "cn-shanghai"}, o2 = {c->acct2, "cn-shanghai"},
		     none = {c->acct, "eu-central-1"};
	int64_t n = -1, total = -1;
	assert_int_equal(store_flowlog_count(tx, o, &n), 0);
	assert_int_equal(n, N_FLOWLOGS - 1);
	assert_int_equal(store_flowlog_count(tx, o2, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_flowlog_count(tx, none, &n), 0);
	assert_int_equal(n, 0);
	struct flowlog_filter f = {.status = -1, .output = -1, .limit = 1};
	c->seen = 0;
	c->last_id[0] = '\0';
	assert_int_equal(store_flowlog_list(tx, o, &f, &total, count_cb, c), 0);
	assert_int_equal(total, N_FLOWLOGS - 1);
	return 0;
}

static void test_sag_store(void **state)
{
	char dir[] = "/tmp/sagflow-sag-XXXXXX", path[128];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/db.sqlite", dir);
	struct store *s = store_open(path);
	assert_non_null(s);
	struct ctx c = {0};
	assert_int_equal(store_write(s, seed, &c), 0);
	assert_int_equal(store_read(s, reads, &c), 0);
	assert_int_equal(store_read(s, plans, &c), 0);
	assert_true(c.plans_checked >= 10);
	assert_int_equal(store_write(s, writes, &c), 0);
	assert_int_equal(store_read(s, count_after, &c), 0);
	/* The writer's statements: checked on a read connection of this thread. */
	assert_int_equal(store_write(s, plans_collect, &c), 0);
	assert_int_equal(store_read(s, plans_replay, &c), 0);
	store_close(s);
	char cmd[192];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_sag_store)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
