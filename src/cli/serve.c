/* sagflow serve: the control plane. Opens the store, makes sure the key from
 * SAGFLOW_ACCESS_KEY_ID/SAGFLOW_ACCESS_KEY_SECRET exists, and serves the RPC
 * API until SIGTERM or SIGINT, then drains in-flight requests and exits 0. */
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <errno.h>

#include "api/api.h"
#include "cli/commands.h"
#include "cli/metrics_listen.h"
#include "cli/opts.h"
#include "cli/serve_metrics.h"
#include "console/console.h"
#include "core/log.h"
#include "core/num.h"
#include "core/ratelimit.h"
#include "core/timeutil.h"
#include "device/client.h"
#include "device/device.h"
#include "domain/domain.h"
#include "http/http.h"
#include "logstore/server.h"
#include "rpc/cache.h"
#include "store/nonce.h"
#include "rpc/rpc.h"
#include "store/store.h"

#define SERVE_DEFAULT_LISTEN "127.0.0.1:8080"
#define SERVE_DEFAULT_DB "var/sagflow.db"
#define SERVE_READY_POLL_MS 100 /* how often start-up looks whether the database is back */
#define SERVE_DEFAULT_QUOTA 100
#define SERVE_MAX_QUOTA 1000000
#define SERVE_MAX_HOST 256
#define SERVE_DEFAULT_ACCOUNT "default"
#define SERVE_EXIT_USAGE 2
#define SERVE_MAX_PATH 4096
/* Default budgets (serve --rate-limit): a key may send 100 requests a second
 * with bursts of 300, a device sync twice a second with bursts of 10 — room
 * for one sync a second plus the re-sync after each long-poll wake. */
#define SERVE_KEY_RATE 100
#define SERVE_KEY_BURST 300
#define SERVE_DEVICE_RATE 2
#define SERVE_DEVICE_BURST 10
#define SERVE_MAX_CALLERS 65536 /* AccessKeys, and devices, tracked at once (each) */
#define SERVE_MAX_RATE_SPEC 128
#define SERVE_MAX_HELD_LIMIT (1u << 20)
#define SERVE_MIN_CONNS 64
#define SERVE_MAX_CONNS (1u << 20)
#define SERVE_FD_RESERVE 128 /* descriptors besides connections: SQLite, logs, metrics */

struct serve_opts {
	char host[SERVE_MAX_HOST];
	uint16_t port;
	const char *db;
	int64_t quota;
	unsigned threads;
	uint32_t replay_entries;
	bool no_answer_cache;
	int64_t online_ms;
	const char *sls_domain;
	struct device_sls_endpoint sls_eps[DEVICE_MAX_SLS_ENDPOINTS]; /* --sls-endpoint */
	char sls_regions[DEVICE_MAX_SLS_ENDPOINTS][DOMAIN_REGION_MAX + 1];
	size_t sls_neps;
	const char *logs_dir; /* NULL: "logs" beside the database */
	const char *log_store_at; /* --log-store-at: this node holds no log store */
	const char *tls_cert, *tls_key; /* both or neither */
	struct cli_metrics_addr metrics; /* --metrics-listen */
	struct ratelimit_rate key_rate, device_rate; /* --rate-limit */
	uint32_t max_callers;
	uint32_t max_held; /* --max-held-syncs */
	uint32_t max_conns; /* --max-connections */
	int pg_writers;     /* --pg-writers */
};

static void serve_usage(FILE *f)
{
	fprintf(f,
		"usage: sagflow serve [--listen HOST:PORT] [--db DB] [--pg-writers K]\n"
		"                     [--flowlog-quota N] [--threads N]\n"
		"                     [--replay-cache N] [--no-answer-cache]\n"
		"                     [--rate-limit key=RATE[:BURST],device=RATE[:BURST]]\n"
		"                     [--max-callers N] [--max-held-syncs N] [--max-connections N]\n"
		"                     [--device-offline-after SECONDS]\n"
		"                     [--tls-cert FILE --tls-key FILE]\n"
		"                     [--sls-domain DOMAIN] [--sls-endpoint REGION=URL]...\n"
		"                     [--logs-dir DIR | --log-store-at URL]\n"
		"                     [--metrics-listen HOST:PORT]\n"
		"\n"
		"Serves the Smartag 2018-03-13 RPC API (the flow-log and gateway actions) and the\n"
		"device channel over HTTP, or HTTPS with --tls-cert and --tls-key; and on the same\n"
		"listener a Log Service (SLS) API for requests whose Host is the --sls-domain or\n"
		"<project>.<domain>, or whose path is /sls/<project>/... (docs/logstore.md), and\n"
		"the web console at /console/ (docs/console.md).\n"
		"\n"
		"options:\n"
		"  --listen HOST:PORT    numeric address to listen on (default " SERVE_DEFAULT_LISTEN
		");\n"
		"                        IPv6 as [ADDR]:PORT; port 0 picks a free port\n"
		"  --db DB               SQLite database file (default " SERVE_DEFAULT_DB "), or a\n"
		"                        PostgreSQL URI postgresql://... or postgres://... (libpq's\n"
		"                        syntax: several hosts, target_session_attrs=read-write;\n"
		"                        docs/store.md). While PostgreSQL is unreachable, requests\n"
		"                        get 503 and /healthz says not ready; serve reconnects\n"
		"                        by itself\n"
		"  --pg-writers K        PostgreSQL writer connections, 1-%d (default %d); each\n"
		"                        account's writes go to one of them\n"
		"  --flowlog-quota N     flow logs per account and region (default %d)\n"
		"  --threads N           HTTP worker threads, 1-%d (default: one per core)\n"
		"  --replay-cache N      SignatureNonces remembered, all AccessKeys together,\n"
		"                        %u-%u (default %u; 20 bytes each, allocated as used).\n"
		"                        Each key has its own partition of at most RATE x 1801 +\n"
		"                        BURST of its budget (180,400 = 3.4 MiB at key=100:300), so\n"
		"                        no key can fill another's; size N >= keys x that for every\n"
		"                        key at full rate at once. Past N, Throttling, never replayable.\n"
		"                        SQLite only: with PostgreSQL the nonces are kept in the\n"
		"                        database, shared by every node\n"
		"  --rate-limit key=RATE[:BURST],device=RATE[:BURST]\n"
		"                        request budgets: each AccessKey may send RATE requests a\n"
		"                        second in bursts of BURST (default key=%d:%d), each device\n"
		"                        RATE syncs a second (default device=%d:%d); BURST\n"
		"                        defaults to 2 x RATE. Past it only that caller is refused:\n"
		"                        Throttling.User (HTTP 400), a device 429 Device.Throttled\n"
		"  --max-callers N       AccessKeys, and devices, whose budgets are tracked at once,\n"
		"                        %u-%u each (default %d, 40 bytes each); an idle caller is\n"
		"                        forgotten, and a new one past the bound gets Throttling\n"
		"  --max-connections N   connections served at once, %u-%u (default %u); past it a\n"
		"                        request gets 503 and its connection is closed. serve raises\n"
		"                        its descriptor limit to the hard limit and lowers N to fit\n"
		"                        (ulimit -Hn; README: operating a fleet)\n"
		"  --max-held-syncs N    device syncs held at once waiting for a change (long-poll,\n"
		"                        docs/device-protocol.md), 0-%u, at most 3/4 of\n"
		"                        --max-connections (default: 3/4 of it, %u); past it a sync\n"
		"                        is answered at once and the device polls\n"
		"  --no-answer-cache     build every read-only answer from the database; by default\n"
		"                        up to %d answers are kept, each until the next write\n"
		"                        (needed when another process writes an SQLite file; with\n"
		"                        PostgreSQL each answer's label is read from the database)\n"
		"  --device-offline-after SECONDS\n"
		"                        a gateway's Status turns Offline this long after its\n"
		"                        devices' last report, %d-%d (default %d)\n"
		"  --tls-cert FILE       serve HTTPS (TLS 1.2 and 1.3) on --listen with this PEM\n"
		"                        certificate chain: the server's certificate first, then\n"
		"                        any intermediates; at most %u bytes\n"
		"  --tls-key FILE        its PEM private key, unencrypted; the file must not be\n"
		"                        accessible by group or others (chmod 600 FILE)\n"
		"  --sls-domain DOMAIN   the Log Service endpoint's domain (default "
		LOGSTORE_DEFAULT_DOMAIN ");\n"
		"                        a project is addressed as <project>.DOMAIN[:port]\n"
		"                        (also <project>.@IP:PORT and <project>.IPV4:PORT)\n"
		"  --sls-endpoint REGION=URL\n"
		"                        gateway devices of flow logs in SlsRegionId REGION\n"
		"                        write to the Log Service at URL (http(s)://HOST[:PORT],\n"
		"                        Host <project>.HOST) instead of this server's own log\n"
		"                        store; repeatable, one per region\n"
		"  --logs-dir DIR        where the Log Service keeps logs (default: logs/ beside\n"
		"                        an SQLite --db), one directory per logstore, one file per\n"
		"                        day of arrival; a file older than its logstore's ttl\n"
		"                        (days) is removed, at start and every hour. Beside a\n"
		"                        PostgreSQL --db it is required on the one node that\n"
		"                        holds the log store (its projects and logstores are in\n"
		"                        the database, its logs in DIR)\n"
		"  --log-store-at URL    this node holds no log store: the node at URL\n"
		"                        (http(s)://HOST[:PORT]) does. Log Service requests here\n"
		"                        get 421 LogStoreNotHere naming URL, and devices are told\n"
		"                        to write to URL for every region without --sls-endpoint.\n"
		"                        The other nodes of a PostgreSQL control plane need it\n"
		"                        (docs/logstore.md)\n"
		"  --metrics-listen HOST:PORT\n"
		"                        serve GET /metrics (Prometheus text format) on this\n"
		"                        address, apart from the API; port 0 picks a free port.\n"
		"                        Off by default, and then nothing is counted\n"
		"  -h, --help            this help\n"
		"\n"
		"On start it prints 'listening on HOST:PORT' on stdout (after 'metrics on HOST:PORT'\n"
		"with --metrics-listen). When SAGFLOW_ACCESS_KEY_ID and\n"
		"SAGFLOW_ACCESS_KEY_SECRET are set (non-empty), that key is created (or its secret updated) for the\n"
		"account \"" SERVE_DEFAULT_ACCOUNT "\". Other keys: 'sagflow keys'. SIGTERM or SIGINT stops\n"
		"accepting, finishes in-flight requests and exits 0.\n",
		STORE_PG_WRITERS_MAX, STORE_PG_WRITERS, SERVE_DEFAULT_QUOTA, HTTP_MAX_THREADS, NONCE_MIN_ENTRIES, NONCE_LIMIT_ENTRIES,
		NONCE_MAX_ENTRIES, SERVE_KEY_RATE, SERVE_KEY_BURST, SERVE_DEVICE_RATE,
		SERVE_DEVICE_BURST, RATELIMIT_MIN_CALLERS, RATELIMIT_MAX_CALLERS, SERVE_MAX_CALLERS,
		SERVE_MIN_CONNS, SERVE_MAX_CONNS, HTTP_MAX_CONNECTIONS, SERVE_MAX_HELD_LIMIT,
		DEVICE_MAX_HELD,
		RCACHE_SHARDS * RCACHE_SLOTS, DEVICE_ONLINE_MIN_MS / 1000,
		DEVICE_ONLINE_MAX_MS / 1000, DEVICE_ONLINE_MS / 1000, HTTP_TLS_MAX_FILE);
}

/* REGION=URL: a known region, once, and a URL the agent can parse. The
 * strings stay in argv, which outlives the server. */
static int parse_sls_endpoint(const char *v, struct serve_opts *o)
{
	const char *eq = strchr(v, '=');
	struct devclient_url u;
	char err[128];
	if (!eq || o->sls_neps == DEVICE_MAX_SLS_ENDPOINTS || (size_t)(eq - v) > DOMAIN_REGION_MAX)
		return -1;
	struct str region = {v, (size_t)(eq - v)};
	const char *url = eq + 1;
	if (!domain_region_known(region) || devclient_parse_url(url, &u, err, sizeof(err)) < 0)
		return -1;
	char *r = o->sls_regions[o->sls_neps];
	memcpy(r, region.p, region.len);
	r[region.len] = '\0';
	for (size_t i = 0; i < o->sls_neps; i++)
		if (!strcmp(o->sls_eps[i].region, r))
			return -1;
	o->sls_eps[o->sls_neps++] = (struct device_sls_endpoint){r, url};
	return 0;
}

static int parse_listen(const char *s, struct serve_opts *o)
{
	return cli_parse_hostport(s, o->host, sizeof(o->host), &o->port);
}

/* "key=RATE[:BURST],device=RATE[:BURST]", either part alone, in any order. */
static int parse_rate_limit(const char *v, struct serve_opts *o)
{
	static const struct {
		const char *name;
		size_t off;
	} parts[] = {{"key=", offsetof(struct serve_opts, key_rate)},
		     {"device=", offsetof(struct serve_opts, device_rate)}};
	size_t len = strlen(v);
	if (!len || len > SERVE_MAX_RATE_SPEC)
		return -1;
	for (struct str rest = {v, len}; rest.len;) {
		const char *comma = memchr(rest.p, ',', rest.len);
		struct str item = {rest.p, comma ? (size_t)(comma - rest.p) : rest.len};
		rest = comma ? (struct str){comma + 1, rest.len - item.len - 1} : (struct str){"", 0};
		if (comma && !rest.len)
			return -1;
		size_t i = 0, n = 0;
		while (i < sizeof(parts) / sizeof(parts[0]) &&
		       (item.len < (n = strlen(parts[i].name)) || memcmp(item.p, parts[i].name, n)))
			i++;
		if (i == sizeof(parts) / sizeof(parts[0]) ||
		    ratelimit_rate_parse((struct str){item.p + n, item.len - n},
					 (struct ratelimit_rate *)((char *)o + parts[i].off)) < 0)
			return -1;
	}
	return 0;
}

static int parse_opts(int argc, char **argv, struct serve_opts *o)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	*o = (struct serve_opts){.db = SERVE_DEFAULT_DB, .quota = SERVE_DEFAULT_QUOTA,
				 .threads = ncpu > 0 ? (unsigned)ncpu : 1, .online_ms = DEVICE_ONLINE_MS,
				 .sls_domain = LOGSTORE_DEFAULT_DOMAIN,
				 .key_rate = {SERVE_KEY_RATE, SERVE_KEY_BURST},
				 .device_rate = {SERVE_DEVICE_RATE, SERVE_DEVICE_BURST},
				 .max_callers = SERVE_MAX_CALLERS, .max_held = DEVICE_MAX_HELD,
				 .max_conns = HTTP_MAX_CONNECTIONS};
	parse_listen(SERVE_DEFAULT_LISTEN, o);
	bool held_given = false;
	for (int i = 1; i < argc; i++) {
		const char *v;
		int64_t n;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			serve_usage(stdout);
			exit(0);
		} else if ((v = cli_opt_value("--listen", argc, argv, &i))) {
			if (parse_listen(v, o) < 0)
				return fprintf(stderr, "serve: bad --listen '%s' (HOST:PORT)\n", v), -1;
		} else if ((v = cli_opt_value("--db", argc, argv, &i))) {
			o->db = v;
		} else if ((v = cli_opt_value("--pg-writers", argc, argv, &i))) {
			if (num_parse_i64(str_c(v), 1, STORE_PG_WRITERS_MAX, &n) != 0)
				return fprintf(stderr, "serve: bad --pg-writers '%s' (1-%d)\n", v,
					       STORE_PG_WRITERS_MAX), -1;
			o->pg_writers = (int)n;
		} else if ((v = cli_opt_value("--flowlog-quota", argc, argv, &i))) {
			if (num_parse_i64(str_c(v), 0, SERVE_MAX_QUOTA, &n) != 0)
				return fprintf(stderr, "serve: bad --flowlog-quota '%s'\n", v), -1;
			o->quota = n;
		} else if ((v = cli_opt_value("--threads", argc, argv, &i))) {
			if (num_parse_i64(str_c(v), 1, HTTP_MAX_THREADS, &n) != 0)
				return fprintf(stderr, "serve: bad --threads '%s' (1-%d)\n", v,
					       HTTP_MAX_THREADS), -1;
			o->threads = (unsigned)n;
		} else if ((v = cli_opt_value("--replay-cache", argc, argv, &i))) {
			if (num_parse_i64(str_c(v), NONCE_MIN_ENTRIES, NONCE_LIMIT_ENTRIES, &n) != 0)
				return fprintf(stderr, "serve: bad --replay-cache '%s' (%u-%u)\n", v,
					       NONCE_MIN_ENTRIES, NONCE_LIMIT_ENTRIES), -1;
			o->replay_entries = (uint32_t)n;
		} else if ((v = cli_opt_value("--device-offline-after", argc, argv, &i))) {
			if (num_parse_i64(str_c(v), DEVICE_ONLINE_MIN_MS / 1000, DEVICE_ONLINE_MAX_MS / 1000,
					  &n) != 0)
				return fprintf(stderr, "serve: bad --device-offline-after '%s' (%d-%d)\n",
					       v, DEVICE_ONLINE_MIN_MS / 1000,
					       DEVICE_ONLINE_MAX_MS / 1000), -1;
			o->online_ms = n * 1000;
		} else if ((v = cli_opt_value("--sls-domain", argc, argv, &i))) {
			if (!v[0] || strlen(v) > LOGSTORE_MAX_DOMAIN || strchr(v, ':'))
				return fprintf(stderr, "serve: bad --sls-domain '%s'\n", v), -1;
			o->sls_domain = v;
		} else if ((v = cli_opt_value("--sls-endpoint", argc, argv, &i))) {
			if (parse_sls_endpoint(v, o) < 0)
				return fprintf(stderr, "serve: bad --sls-endpoint '%s' (REGION=URL, a "
					       "region of DescribeRegions, an http(s)://HOST[:PORT] "
					       "URL, each region once, at most %d)\n",
					       v, DEVICE_MAX_SLS_ENDPOINTS), -1;
		} else if ((v = cli_opt_value("--logs-dir", argc, argv, &i))) {
			o->logs_dir = v;
		} else if ((v = cli_opt_value("--log-store-at", argc, argv, &i))) {
			struct devclient_url u;
			char err[128];
			if (strlen(v) > LOGSTORE_MAX_URL ||
			    devclient_parse_url(v, &u, err, sizeof(err)) < 0)
				return fprintf(stderr, "serve: bad --log-store-at '%s' (an "
					       "http(s)://HOST[:PORT] URL)\n", v), -1;
			o->log_store_at = v;
		} else if ((v = cli_opt_value("--tls-cert", argc, argv, &i))) {
			o->tls_cert = v;
		} else if ((v = cli_opt_value("--tls-key", argc, argv, &i))) {
			o->tls_key = v;
		} else if ((v = cli_opt_value("--metrics-listen", argc, argv, &i))) {
			if (cli_metrics_parse(v, &o->metrics) < 0)
				return fprintf(stderr, "serve: bad --metrics-listen '%s' (HOST:PORT)\n",
					       v), -1;
		} else if ((v = cli_opt_value("--rate-limit", argc, argv, &i))) {
			if (parse_rate_limit(v, o) < 0)
				return fprintf(stderr, "serve: bad --rate-limit '%s' (key=RATE[:BURST],"
						       "device=RATE[:BURST]; RATE 1-%d, BURST 1-%d)\n",
					       v, RATELIMIT_MAX_RATE, RATELIMIT_MAX_BURST), -1;
		} else if ((v = cli_opt_value("--max-callers", argc, argv, &i))) {
			if (num_parse_i64(str_c(v), RATELIMIT_MIN_CALLERS, RATELIMIT_MAX_CALLERS, &n) != 0)
				return fprintf(stderr, "serve: bad --max-callers '%s' (%u-%u)\n", v,
					       RATELIMIT_MIN_CALLERS, RATELIMIT_MAX_CALLERS), -1;
			o->max_callers = (uint32_t)n;
		} else if ((v = cli_opt_value("--max-connections", argc, argv, &i))) {
			if (num_parse_i64(str_c(v), SERVE_MIN_CONNS, SERVE_MAX_CONNS, &n) != 0)
				return fprintf(stderr, "serve: bad --max-connections '%s' (%u-%u)\n", v,
					       SERVE_MIN_CONNS, SERVE_MAX_CONNS), -1;
			o->max_conns = (uint32_t)n;
			if (!held_given)
				o->max_held = o->max_conns / 4 * 3;
		} else if ((v = cli_opt_value("--max-held-syncs", argc, argv, &i))) {
			if (num_parse_i64(str_c(v), 0, SERVE_MAX_HELD_LIMIT, &n) != 0)
				return fprintf(stderr, "serve: bad --max-held-syncs '%s' (0-%u)\n", v,
					       SERVE_MAX_HELD_LIMIT), -1;
			o->max_held = (uint32_t)n;
			held_given = true;
		} else if (!strcmp(argv[i], "--no-answer-cache")) {
			o->no_answer_cache = true;
		} else {
			return fprintf(stderr, "serve: unknown option '%s'\n", argv[i]), -1;
		}
	}
	if (o->logs_dir && o->log_store_at)
		return fprintf(stderr, "serve: --logs-dir and --log-store-at exclude each other (a "
				       "node holds the log store or names the one that does)\n"), -1;
	if (store_path_is_pg(o->db) && !o->logs_dir && !o->log_store_at)
		return fprintf(stderr, "serve: with a PostgreSQL --db, say where the log store is: "
				       "--logs-dir DIR on the one node that holds it, --log-store-at URL "
				       "on the others (docs/logstore.md)\n"), -1;
	if (!o->tls_cert != !o->tls_key)
		return fprintf(stderr, "serve: --tls-cert and --tls-key go together (HTTPS needs "
				       "both, plain HTTP neither)\n"), -1;
	/* Held syncs are connections: a quarter stays for API callers and polls. */
	if (o->max_held > o->max_conns / 4 * 3)
		return fprintf(stderr, "serve: --max-held-syncs %u leaves too few of --max-connections "
				       "%u for other requests (at most %u)\n",
			       o->max_held, o->max_conns, o->max_conns / 4 * 3), -1;
	if (o->threads > HTTP_MAX_THREADS)
		o->threads = HTTP_MAX_THREADS;
	return 0;
}

struct env_key {
	const char *akid, *secret;
};

/* Creates the key for the default account, or replaces its secret/account
 * when the environment now says something else. */
static int ensure_env_key(struct store_tx *tx, void *arg)
{
	const struct env_key *e = arg;
	struct store_key k = {0}, cur = {0};
	int rc = store_account_ensure(tx, SERVE_DEFAULT_ACCOUNT, &k.account_id);
	if (rc != 0)
		return rc;
	rc = store_key_get(tx, e->akid, &cur);
	if (rc == 0 && cur.account_id == k.account_id && !strcmp(cur.secret, e->secret))
		goto out;
	if (rc == 0 && (rc = store_key_delete(tx, e->akid)) != 0)
		goto out;
	snprintf(k.akid, sizeof(k.akid), "%s", e->akid);
	snprintf(k.secret, sizeof(k.secret), "%s", e->secret);
	k.created_ms = time_now_ms();
	rc = store_key_insert(tx, &k);
out:
	OPENSSL_cleanse(&k, sizeof(k));
	OPENSSL_cleanse(&cur, sizeof(cur));
	return rc < 0 ? rc : 0;
}

/* PostgreSQL not reachable at start: the key from the environment is stored
 * once it is (a serve without it would refuse every request), and a stop
 * signal meanwhile ends the wait. -1 when a signal came. */
static int wait_ready(struct store *st, const sigset_t *stop)
{
	if (store_ready(st))
		return 0;
	log_warn("serve: waiting for the database to store the access key from the environment");
	const struct timespec step = {0, SERVE_READY_POLL_MS * 1000000L};
	while (!store_ready(st))
		if (sigtimedwait(stop, NULL, &step) > 0)
			return -1;
	return 0;
}

static int env_key(struct store *st, const sigset_t *stop)
{
	struct env_key e = {getenv("SAGFLOW_ACCESS_KEY_ID"), getenv("SAGFLOW_ACCESS_KEY_SECRET")};
	/* An empty variable counts as unset, as in most shells' idiom VAR= cmd. */
	if (e.akid && !e.akid[0])
		e.akid = NULL;
	if (e.secret && !e.secret[0])
		e.secret = NULL;
	if (!e.akid && !e.secret)
		return 0;
	if (!e.akid || !e.secret ||
	    strlen(e.akid) > STORE_MAX_KEY_FIELD || strlen(e.secret) > STORE_MAX_KEY_FIELD) {
		log_err("serve: SAGFLOW_ACCESS_KEY_ID and SAGFLOW_ACCESS_KEY_SECRET must both be set, "
			"1-%d bytes each", STORE_MAX_KEY_FIELD);
		return -1;
	}
	for (const char *p = e.akid; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == ',') {
			log_err("serve: SAGFLOW_ACCESS_KEY_ID must be printable ASCII without spaces "
				"or commas");
			return -1;
		}
	if (!strncmp(e.akid, DOMAIN_DEVICE_KEY_PREFIX, sizeof(DOMAIN_DEVICE_KEY_PREFIX) - 1)) {
		log_err("serve: SAGFLOW_ACCESS_KEY_ID must not start with \"%s\" (a gateway device's "
			"Log Service credential)", DOMAIN_DEVICE_KEY_PREFIX);
		return -1;
	}
	if (wait_ready(st, stop) != 0)
		return -1;
	if (store_write(st, ensure_env_key, &e) != 0) {
		log_err("serve: cannot store the access key from the environment");
		return -1;
	}
	log_info("serve: access key %s ready for account \"%s\"", e.akid, SERVE_DEFAULT_ACCOUNT);
	return 0;
}

/* --logs-dir, or "logs" in the directory of --db (of the working directory
 * when --db is a PostgreSQL URI). */
static void default_logs_dir(const struct serve_opts *o, char out[SERVE_MAX_PATH])
{
	if (o->logs_dir) {
		snprintf(out, SERVE_MAX_PATH, "%s", o->logs_dir);
		return;
	}
	const char *slash = store_path_is_pg(o->db) ? NULL : strrchr(o->db, '/');
	if (!slash)
		snprintf(out, SERVE_MAX_PATH, "logs");
	else
		snprintf(out, SERVE_MAX_PATH, "%.*s/logs", (int)(slash - o->db), o->db);
}

/* The log store of this node (docs/logstore.md, "Beside N control-plane
 * nodes"): none with --log-store-at, else its logs under --logs-dir. */
static struct logstore_server *open_logstore(const struct serve_opts *o, struct store *st)
{
	if (o->log_store_at) {
		log_info("serve: no log store here; it is at %s", o->log_store_at);
		return logstore_new_elsewhere(o->sls_domain, o->log_store_at);
	}
	char logs_dir[SERVE_MAX_PATH];
	default_logs_dir(o, logs_dir);
	return logstore_new(st, logs_dir, o->sls_domain);
}

/* Connections need descriptors: the soft limit goes up to what they need, at
 * most the hard limit (http lowers the bound to fit what it got). */
static void raise_fd_limit(uint32_t conns)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	rlim_t want = (rlim_t)conns + HTTP_CONN_HEADROOM + SERVE_FD_RESERVE;
	if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
		want = rl.rlim_max;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn("serve: cannot raise the descriptor limit to %llu: %s",
				 (unsigned long long)want, strerror(errno));
	}
}

static int wait_for_signal(const sigset_t *set)
{
	int sig = 0;
	while (sigwait(set, &sig) != 0)
		;
	return sig;
}

static struct http_server *start_http(const struct serve_opts *o, const struct http_tls *tls,
				      struct rpc_server *rpc, struct device_server *dev,
				      struct logstore_server *sls)
{
	struct http_config hc = {.host = o->host, .port = o->port, .threads = o->threads,
				 .max_connections = o->max_conns,
				 .tls = tls, .on_error = rpc_http_error, .vhost = logstore_vhost,
				 .vhost_arg = sls};
	struct http_server *h = http_server_new(&hc);
	http_route_add(h, "GET", "/healthz", rpc_healthz, rpc);
	console_routes_add(h); /* /console/ (docs/console.md) */
	http_route_add(h, NULL, "/", rpc_handle, rpc);
	device_routes_add(h, dev); /* /device/v1/... (docs/device-protocol.md) */
	if (http_server_start(h) < 0) {
		http_server_free(h);
		return NULL;
	}
	return h;
}

int cmd_serve(int argc, char **argv)
{
	struct serve_opts o;
	if (parse_opts(argc, argv, &o) < 0) {
		serve_usage(stderr);
		return SERVE_EXIT_USAGE;
	}
	/* Block the stop signals in every thread we start; main waits for them. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	raise_fd_limit(o.max_conns);
	if (o.metrics.on)
		serve_metrics_enable();
	/* The TLS files first: a refused key should not leave a new database behind. */
	struct http_tls tls = {0};
	if (o.tls_cert && http_tls_load(&tls, o.tls_cert, o.tls_key) < 0)
		return 1;
	struct store *st = store_open_with(o.db, &(struct store_options){.pg_writers = o.pg_writers, .node = true});
	if (!st) {
		http_tls_clear(&tls);
		return 1;
	}
	if (env_key(st, &set) < 0) {
		store_close(st);
		http_tls_clear(&tls);
		return 1;
	}
	struct api_config cfg = {.flowlog_quota = o.quota, .device_online_ms = o.online_ms};
	struct ratelimit *key_budgets = ratelimit_new(o.key_rate, o.max_callers);
	struct ratelimit *device_budgets = ratelimit_new(o.device_rate, o.max_callers);
	struct rpc_server *rpc = rpc_new(st, &cfg, o.replay_entries, !o.no_answer_cache, key_budgets);
	struct device_server *dev = device_server_new(st, o.online_ms, device_budgets, o.max_held);
	/* API writes wake the held syncs of their account (long-poll). */
	cfg.account_changed = device_server_account_changed;
	cfg.account_changed_arg = dev;
	device_server_set_sls(dev, o.sls_domain, o.sls_eps, o.sls_neps, o.log_store_at);
	struct logstore_server *sls = open_logstore(&o, st);
	struct http_server *mh = NULL;
	if (o.metrics.on) {
		serve_metrics_watch(st, rpc, dev, o.online_ms, key_budgets, device_budgets);
		mh = cli_metrics_start(&o.metrics);
	}
	struct http_server *h = !sls || (o.metrics.on && !mh)
					? NULL
					: start_http(&o, o.tls_cert ? &tls : NULL, rpc, dev, sls);
	if (!h) {
		http_server_free(mh);
		logstore_free(sls);
		device_server_free(dev);
		rpc_free(rpc);
		ratelimit_free(device_budgets);
		ratelimit_free(key_budgets);
		store_close(st);
		http_tls_clear(&tls);
		return 1;
	}
	serve_metrics_http(h);
	if (mh) {
		char where[CLI_METRICS_MAX_HOST + 16];
		cli_metrics_where(&o.metrics, mh, where, sizeof(where));
		printf("metrics on %s\n", where);
	}
	printf(strchr(o.host, ':') ? "listening on [%s]:%u\n" : "listening on %s:%u\n", o.host,
	       http_server_port(h));
	fflush(stdout);
	log_buffered_start();
	/* A PostgreSQL URI may hold a password: it is not logged. */
	log_info("serve: %u threads, database %s, flow-log quota %lld, %s", o.threads,
		 store_path_is_pg(o.db) ? "PostgreSQL" : o.db,
		 (long long)o.quota, o.tls_cert ? "HTTPS" : "plain HTTP");
	uint64_t per_key = nonce_per_key(o.key_rate.rate, o.key_rate.burst),
		 entries = o.replay_entries ? o.replay_entries : NONCE_MAX_ENTRIES;
	log_info("serve: replay cache bound %llu entries (%llu MiB); a key at its full budget "
		 "holds %llu (%llu MiB): room for %llu keys at full rate at once",
		 (unsigned long long)entries,
		 (unsigned long long)(entries * NONCE_ENTRY_BYTES >> 20), (unsigned long long)per_key,
		 (unsigned long long)(per_key * NONCE_ENTRY_BYTES >> 20),
		 (unsigned long long)(entries / per_key));
	log_info("serve: budgets key=%lld:%lld device=%lld:%lld, %u callers each",
		 (long long)o.key_rate.rate, (long long)o.key_rate.burst,
		 (long long)o.device_rate.rate, (long long)o.device_rate.burst, o.max_callers);
	unsigned conns_max;
	http_connections(h, &conns_max);
	log_info("serve: up to %u connections, %u of them held syncs", conns_max, o.max_held);
	if (o.tls_cert)
		log_info("serve: TLS certificate chain %s (%u certificate%s), key %s", o.tls_cert,
			 tls.chain_len, tls.chain_len == 1 ? "" : "s", o.tls_key);
	int sig = wait_for_signal(&set);
	log_info("serve: %s, draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	device_server_drain(dev); /* held syncs are answered first, or the drain below waits for them */
	http_server_stop(h, RPC_GRACE_MS);
	http_server_free(h);
	http_server_free(mh); /* before the store: a scrape reads it */
	logstore_free(sls);
	device_server_free(dev);
	rpc_free(rpc);
	ratelimit_free(device_budgets);
	ratelimit_free(key_budgets);
	store_close(st);
	http_tls_clear(&tls);
	log_info("serve: stopped");
	log_buffered_stop();
	return 0;
}
