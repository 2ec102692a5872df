#!/usr/bin/env bash
# bench/pg/cost.sh: what one CreateFlowLog costs on 1 node and on 2 nodes of
# one database, as costs rather than rates (a shared machine moves rates by
# 2-3x, not CPU per request): CPU seconds per create of serve (by thread) and
# of PostgreSQL (by backend role), pg_stat_statements per statement, WAL per
# create (pg_stat_wal), the writers' batch sizes and round trips (/metrics),
# and the wait events of the writers' backends sampled during the run.
#   BUILD=build SECONDS_=8 CONNS=64 PG_WRITERS=2 bench/pg/cost.sh
# SAGFLOW_BIN picks another serve binary (the load generator stays BUILD's).
# Runs under scripts/pg-test.sh (a private cluster) unless SAGFLOW_TEST_PG is set;
# it adds pg_stat_statements to that cluster and restarts it.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${SAGFLOW_TEST_PG:-}" ]; then
	exec scripts/pg-test.sh "$0" "$@"
fi
BUILD=${BUILD:-build}
BIN=${SAGFLOW_BIN:-$BUILD/sagflow}
LOADGEN=$BUILD/bench/loadgen
CONNS=${CONNS:-64}
DUR=${SECONDS_:-8}
K=${PG_WRITERS:-2}
WARM=2
PGBIN=${SAGFLOW_TEST_PG_BIN:-$(pg_config --bindir)}
export PATH="$PGBIN:$PATH"
work=$(mktemp -d "${TMPDIR:-/var/tmp}/sagflow-bench-cost-XXXXXX")
source bench/api/lib.sh
THREADS=${PG_THREADS:-$(bench_threads)}
TICK=$(getconf CLK_TCK)

if ! grep -q "^shared_preload_libraries = 'pg_stat_statements'" "$SAGFLOW_TEST_PG_DATA/postgresql.conf"; then
	echo "shared_preload_libraries = 'pg_stat_statements'" >>"$SAGFLOW_TEST_PG_DATA/postgresql.conf"
	echo "pg_stat_statements.track_utility = on" >>"$SAGFLOW_TEST_PG_DATA/postgresql.conf"
	"$SAGFLOW_TEST_PG_CTL" restart -w >/dev/null
fi
uri_of() { node -e "const u=new URL(process.argv[1]);u.pathname='/'+process.argv[2];console.log(u.toString())" "$SAGFLOW_TEST_PG" "$1"; }
psql -X -q -d "$SAGFLOW_TEST_PG" -c 'DROP DATABASE IF EXISTS bench_cost WITH (FORCE)' -c 'CREATE DATABASE bench_cost'
DB=$(uri_of bench_cost)
q() { psql -X -A -t -q -d "$DB" -c "$1"; }
q 'CREATE EXTENSION pg_stat_statements'
# COMMIT_DELAY=US: the server's commit_delay (group commit; superuser only), to compare.
if [ -n "${COMMIT_DELAY:-}" ]; then
	q "ALTER SYSTEM SET commit_delay = ${COMMIT_DELAY}" && q 'SELECT pg_reload_conf()' >/dev/null
fi
# COMMIT_SIBLINGS=N: the other transactions commit_delay waits for (default 5).
if [ -n "${COMMIT_SIBLINGS:-}" ]; then
	q "ALTER SYSTEM SET commit_siblings = ${COMMIT_SIBLINGS}" && q 'SELECT pg_reload_conf()' >/dev/null
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
serve_on() {
	local name=$1
	shift
	SAGFLOW_ACCESS_KEY_ID=benchkey SAGFLOW_ACCESS_KEY_SECRET=benchsecret "$BIN" serve --listen 127.0.0.1:0 \
		--db "$DB" --rate-limit key=1000000 --flowlog-quota 1000000 --replay-cache 67108864 \
		--threads "$THREADS" --pg-writers "$K" --metrics-listen 127.0.0.1:0 \
		"$@" >"$work/$name.out" 2>"$work/$name.log" &
	pids+=($!)
	printf -v "${name}_pid" %s "$!"
	for _ in $(seq 300); do grep -q 'listening on' "$work/$name.out" 2>/dev/null && break; sleep 0.1; done
	printf -v "${name}_port" %s "$(grep -o 'listening on [0-9.]*:[0-9]*' "$work/$name.out" | sed 's/.*://')"
	printf -v "${name}_mport" %s "$(grep -o 'metrics on [0-9.]*:[0-9]*' "$work/$name.out" "$work/$name.log" | head -1 | sed 's/.*://')"
}
serve_on a --logs-dir "$work/logs-a"
serve_on b --log-store-at "http://127.0.0.1:$a_port"
# NO_CHECKS=1: flowlogs' CHECK constraints dropped (a prototype's measurement only:
# PostgreSQL re-reads them for every INSERT's executor).
if [ "${NO_CHECKS:-0}" = 1 ]; then
	q "SELECT 'ALTER TABLE flowlogs DROP CONSTRAINT ' || conname FROM pg_constraint
		WHERE conrelid = 'flowlogs'::regclass AND contype = 'c'" | while read -r stmt; do q "$stmt"; done
fi
key_for() { "$BIN" keys create --db "$DB" --account "$1" | node -e '
const k = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(k.AccessKeyId, k.AccessKeySecret)'; }
read -r ONE_AKID ONE_SECRET < <(key_for cost-one)
read -r TWO_AKID TWO_SECRET < <(key_for cost-two)
create_q='OutputType=netflow&NetflowServerIp=192.168.0.2&RegionId=cn-shanghai'
lg() { "$LOADGEN" --port "$1" --signed --akid "$2" --secret "$3" --action CreateFlowLog --query "$create_q" \
	--connections "$4" --seconds "$5" --warmup "$6"; }
# Warm-up: every connection prepared, both accounts' rows there.
lg "$a_port" "$ONE_AKID" "$ONE_SECRET" 8 2 0 >/dev/null
lg "$b_port" "$TWO_AKID" "$TWO_SECRET" 8 2 0 >/dev/null
lg "$a_port" "$TWO_AKID" "$TWO_SECRET" 8 2 0 >/dev/null

# Per-pid CPU seconds of the cluster, with each backend's role.
pg_cpu_snap() {
	local pm
	pm=$(head -1 "$SAGFLOW_TEST_PG_DATA/postmaster.pid")
	for p in $pm $(pgrep -P "$pm"); do
		[ -r "/proc/$p/stat" ] && awk -v p="$p" -v tick="$TICK" '{ sub(/^.*\) /, ""); printf "%s %.6f\n", p, ($12 + $13) / tick }' "/proc/$p/stat" || true # a backend that ended meanwhile
	done
}
pg_roles() {
	q "SELECT pid, CASE WHEN backend_type <> 'client backend' THEN replace(backend_type, ' ', '_')
		WHEN application_name = 'cost-sampler' THEN 'sampler'
		WHEN query LIKE '%nonce%' THEN 'admission'
		WHEN query LIKE 'LISTEN%' OR query LIKE '%node_lease%' THEN 'listener'
		WHEN query = 'SELECT 1' OR query LIKE '%advisory%' THEN 'health'
		WHEN query IN ('COMMIT', 'BEGIN', 'ROLLBACK') OR query LIKE '%flowlog_counts_raise%' OR query LIKE 'INSERT INTO flowlogs%' OR query LIKE '%account_version (account_id, shard%' THEN 'writer'
		ELSE 'other' END FROM pg_stat_activity" | tr '|' ' '
}
task_cpu() { # serve's CPU by thread name
	for t in /proc/"$1"/task/*; do
		awk -v tick="$TICK" '{ c = $0; sub(/^[^(]*\(/, "", c); sub(/\).*/, "", c); sub(/^.*\) /, ""); printf "%s %.6f\n", c, ($12 + $13) / tick }' "$t/stat" 2>/dev/null || true # a thread that ended meanwhile
	done | awk '{ a[$1] += $2 } END { for (k in a) printf "%s %.6f\n", k, a[k] }'
}
metrics() { curl -s "http://127.0.0.1:$1/metrics" | grep -E '^sagflow_store_(commit_batch_size_(sum|count)|round_trips_total|batch_run_seconds_(sum|count)|fsync_seconds_(sum|count)|commits_total)' || true; }

# run NAME NODES: CONNS connections over NODES serves, one account.
run() {
	local name=$1 nodes=$2 akid secret per lgps=()
	if [ "$nodes" = 1 ]; then akid=$ONE_AKID secret=$ONE_SECRET; else akid=$TWO_AKID secret=$TWO_SECRET; fi
	per=$((CONNS / nodes))
	lg "$a_port" "$akid" "$secret" "$per" "$DUR" "$WARM" >"$work/$name-a.json" &
	lgps+=($!)
	if [ "$nodes" = 2 ]; then
		# SPLIT=1: node b writes for another account (no shared rows)
		[ "${SPLIT:-0}" = 1 ] && akid=$ONE_AKID secret=$ONE_SECRET
		lg "$b_port" "$akid" "$secret" "$per" "$DUR" "$WARM" >"$work/$name-b.json" &
		lgps+=($!)
	fi
	sleep "$WARM"
	q "SELECT pg_stat_statements_reset(); SELECT pg_stat_reset_shared('wal')" >/dev/null
	metrics "$a_mport" >"$work/$name-ma0"; metrics "$b_mport" >"$work/$name-mb0"
	pg_cpu_snap >"$work/$name-pg0"
	task_cpu "$a_pid" >"$work/$name-sa0"; task_cpu "$b_pid" >"$work/$name-sb0"
	# Wait events of every client backend, sampled every 10 ms for DUR - 1 s.
	PGAPPNAME=cost-sampler psql -X -A -t -q -d "$DB" -c "CREATE TEMP TABLE s AS SELECT 0 AS i, ''::text AS role, ''::text AS w LIMIT 0;
	DO \$\$ BEGIN FOR i IN 1..$(((DUR - 1) * 100)) LOOP
		PERFORM pg_stat_clear_snapshot();
		INSERT INTO s SELECT i, CASE WHEN query LIKE '%nonce%' THEN 'admission' ELSE 'writer' END,
			coalesce(wait_event_type || ':' || wait_event, state)
		FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'
			AND pid <> pg_backend_pid() AND state <> 'idle' AND query NOT LIKE 'SELECT 1%';
		PERFORM pg_sleep(0.01); END LOOP; END \$\$;
	SELECT role, w, count(*) FROM s GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 14" >"$work/$name-waits" &
	local sampler=$!
	pg_roles >"$work/$name-roles"
	if [ "${PERF:-0}" = 1 ]; then
		local wp
		wp=$(awk '$2 == "writer" { printf "%s%s", s, $1; s = "," }' "$work/$name-roles")
		perf record -q -F 4999 -g -p "$wp" -o "$work/$name-perf.data" -- sleep $((DUR - 2)) 2>/dev/null
		perf report -q -i "$work/$name-perf.data" --no-children --sort sym --percent-limit 0.7 -g none 2>/dev/null | head -60 >"$work/$name-perf.txt" || true
		perf report -q -i "$work/$name-perf.data" --children --sort sym --percent-limit 3 -g none 2>/dev/null | head -60 >"$work/$name-perfc.txt" || true
	fi
	for p in "${lgps[@]}"; do wait "$p"; done
	pg_cpu_snap >"$work/$name-pg1"
	task_cpu "$a_pid" >"$work/$name-sa1"; task_cpu "$b_pid" >"$work/$name-sb1"
	metrics "$a_mport" >"$work/$name-ma1"; metrics "$b_mport" >"$work/$name-mb1"
	q "SELECT calls, round(total_exec_time::numeric, 1), rows, wal_records, wal_bytes, shared_blks_hit, left(regexp_replace(query, '\s+', ' ', 'g'), 70)
		FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY total_exec_time DESC LIMIT 12" >"$work/$name-stmts"
	q "SELECT wal_records, wal_fpi, wal_bytes, wal_write, wal_sync FROM pg_stat_wal" >"$work/$name-wal"
	wait "$sampler" || true
	node bench/pg/cost-report.js "$work" "$name" "$nodes"
	[ "${PERF:-0}" = 1 ] && { echo "perf (writers' backends, self):"; cat "$work/$name-perf.txt"; echo "perf (children):"; cat "$work/$name-perfc.txt"; }
	return 0
}
echo "# commit_delay $(q 'SHOW commit_delay'), commit_siblings $(q 'SHOW commit_siblings'); $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $BIN; $CONNS connections, ${DUR}s, --threads $THREADS --pg-writers $K"
for r in $(seq "${ROUNDS:-1}"); do
	run "one-$r" 1
	run "two-$r" 2
done
