#!/usr/bin/env bash
# bench/pg/assoc-cost.sh: what one Associate or Disassociate costs on PostgreSQL,
# as costs rather than rates (a shared machine moves rates by 2-3x): one serve
# (--threads 1, 2 writers), flowlog_bench's assoc phase (64 connections, each
# with its own flow log and gateway), and over MEAS seconds in the middle of it
# the CPU of PostgreSQL (every backend) and of serve per binding UPDATE, with
# pg_stat_statements' top statements (calls, total ms, µs a call), and from
# serve's /metrics over the same seconds where a write's time goes (mean ms a
# job queued, a batch running, its COMMIT; jobs and round trips a batch; an
# admission queued and its batch's statement).
#   BUILD=build SECS=9 MEAS=5 bench/pg/assoc-cost.sh
# SAGFLOW_BIN picks another serve binary (flowlog_bench stays BUILD's). Runs
# under scripts/pg-test.sh (a private cluster) unless SAGFLOW_TEST_PG is set; it
# adds pg_stat_statements to that cluster and restarts it.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${SAGFLOW_TEST_PG:-}" ]; then exec scripts/pg-test.sh "$0" "$@"; fi
BUILD=${BUILD:-build}
BIN=${SAGFLOW_BIN:-$BUILD/sagflow}
FB=$BUILD/bench/flowlog_bench
SECS=${SECS:-9}
MEAS=${MEAS:-5}
TICK=$(getconf CLK_TCK)
if ! grep -q "^shared_preload_libraries = 'pg_stat_statements'" "$SAGFLOW_TEST_PG_DATA/postgresql.conf"; then
	echo "shared_preload_libraries = 'pg_stat_statements'" >>"$SAGFLOW_TEST_PG_DATA/postgresql.conf"
	"$SAGFLOW_TEST_PG_CTL" restart -w >/dev/null
fi
uri_of() { node -e "const u=new URL(process.argv[1]);u.pathname='/'+process.argv[2];console.log(u.toString())" "$SAGFLOW_TEST_PG" "$1"; }
psql -X -q -d "$SAGFLOW_TEST_PG" -c 'DROP DATABASE IF EXISTS bench_assoc WITH (FORCE)' -c 'CREATE DATABASE bench_assoc' 2>/dev/null
DB=$(uri_of bench_assoc)
q() { psql -X -A -t -q -d "$DB" -c "$1"; }
q 'CREATE EXTENSION pg_stat_statements'
work=$(mktemp -d "${TMPDIR:-/var/tmp}/sagflow-bench-assoc-XXXXXX")
SAGFLOW_ACCESS_KEY_ID=benchkey SAGFLOW_ACCESS_KEY_SECRET=benchsecret "$BIN" serve --listen 127.0.0.1:0 --db "$DB" \
	--rate-limit key=1000000 --replay-cache 67108864 --threads "${THREADS:-1}" --pg-writers 2 \
	--metrics-listen 127.0.0.1:0 --logs-dir "$work/logs" >"$work/out" 2>"$work/log" &
sp=$!
trap 'kill $sp 2>/dev/null; wait; rm -rf "$work"' EXIT
for _ in $(seq 300); do grep -q 'listening on' "$work/out" 2>/dev/null && break; sleep 0.1; done
port=$(grep -o 'listening on [0-9.]*:[0-9]*' "$work/out" | sed 's/.*://')
mport=$(grep -o 'metrics on [0-9.]*:[0-9]*' "$work/out" | sed 's/.*://')
metrics() { curl -s "http://127.0.0.1:$mport/metrics" | grep -E '^sagflow_store_[a-z_]+(_sum|_count|_total) ' || true; }
"$FB" --port "$port" --db "$DB" --conns 8 --seconds 1 --flowlogs 8 --gateways 8 --phases assoc >/dev/null
pg_cpu() {
	local pm
	pm=$(head -1 "$SAGFLOW_TEST_PG_DATA/postmaster.pid")
	for p in $pm $(pgrep -P "$pm"); do cat "/proc/$p/stat" 2>/dev/null; done |
		awk -v t="$TICK" '{ sub(/^.*\) /, ""); s += ($12 + $13) / t } END { printf "%.4f\n", s }'
}
serve_cpu() { awk -v t="$TICK" '{ sub(/^.*\) /, ""); printf "%.4f\n", ($12 + $13) / t }' "/proc/$sp/stat"; }
"$FB" --port "$port" --db "$DB" --conns 64 --seconds "$SECS" --flowlogs 64 --gateways 64 --phases assoc >"$work/fb" &
fbp=$!
sleep $(((SECS - MEAS) / 2))
q 'SELECT pg_stat_statements_reset()' >/dev/null
p0=$(pg_cpu) s0=$(serve_cpu)
metrics >"$work/m0"
sleep "$MEAS"
p1=$(pg_cpu) s1=$(serve_cpu)
metrics >"$work/m1"
echo "# $BIN; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "calls | total ms | µs a call | statement"
q "SELECT calls, round(total_exec_time::numeric, 1), round((total_exec_time / calls * 1000)::numeric, 1),
	left(regexp_replace(query, '\s+', ' ', 'g'), 80) FROM pg_stat_statements
	WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
	ORDER BY total_exec_time DESC LIMIT 8"
n=$(q "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE 'UPDATE sags SET flowlog_rowid%'")
wait "$fbp"
grep associate "$work/fb"
awk 'FNR == NR { a[$1] = $2; next } { d[$1] = $2 - a[$1] }
function per(x, y) { return d[y] ? d[x] / d[y] : 0 }
END {
	printf "store: a job queued %.2f ms, a batch running %.2f ms, its COMMIT %.2f ms; %.1f jobs and %.2f round trips a batch; an admission queued %.2f ms, its statement %.2f ms (%.1f a batch)\n",
		per("sagflow_store_job_queued_seconds_sum", "sagflow_store_job_queued_seconds_count") * 1e3,
		per("sagflow_store_batch_run_seconds_sum", "sagflow_store_batch_run_seconds_count") * 1e3,
		per("sagflow_store_fsync_seconds_sum", "sagflow_store_fsync_seconds_count") * 1e3,
		per("sagflow_store_commit_batch_size_sum", "sagflow_store_commit_batch_size_count"),
		per("sagflow_store_round_trips_total", "sagflow_store_commit_batch_size_count"),
		per("sagflow_store_admission_queued_seconds_sum", "sagflow_store_admission_queued_seconds_count") * 1e3,
		per("sagflow_store_admission_run_seconds_sum", "sagflow_store_admission_run_seconds_count") * 1e3,
		per("sagflow_store_admission_batch_size_sum", "sagflow_store_admission_batch_size_count")
}' "$work/m0" "$work/m1"
awk -v n="$n" -v p0="$p0" -v p1="$p1" -v s0="$s0" -v s1="$s1" 'BEGIN {
	printf "%d bindings changed in %s s: PostgreSQL %.0f µs, serve %.0f µs of CPU each\n", n, '"$MEAS"', (p1 - p0) * 1e6 / n, (s1 - s0) * 1e6 / n }'
