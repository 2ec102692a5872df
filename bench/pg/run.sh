#!/usr/bin/env bash
# bench/pg: sagflow serve on PostgreSQL (issue 13, spec scale-out.md §7.10) in
# one run, ROUNDS interleaved rounds of:
#   create-api       durable CreateFlowLog through the API, 1 node, CONNS connections (loadgen)
#   create-pgbench-K bench/pg/create.sql (the same statements per transaction, one job each)
#                    with as many clients as serve has writers (--pg-writers K)
#   create-pgbench-1 the same with one client (the bare loop)
#   assoc-api        Associate+Disassociate through the API (flowlog_bench --phases assoc)
#   assoc-pgbench-K / assoc-pgbench-1   bench/pg/assoc.sql likewise
#   describe-pg / describe-sqlite       cached DescribeFlowLogs page 1 (50) on PostgreSQL
#                    and on an SQLite serve of the same build
#   create-2-nodes   CreateFlowLog over two serves on the one database (CONNS/2 each;
#                    the second is started for it and stopped after, so the
#                    1-node phases run a node alone)
# then once: throughput in 1-second slices while PostgreSQL is stopped with
# `pg_ctl stop -m immediate` and started again under load.
#   BUILD=build SECONDS_=10 ROUNDS=3 CONNS=64 PG_WRITERS=2 PG_THREADS=1 bench/pg/run.sh
# PHASES (default: all) runs only the named groups, space- or comma-separated:
# create, assoc, describe, nodes, recovery; e.g. PHASES=describe for the
# cached-read rounds alone (describe-pg against describe-sqlite).
# The PostgreSQL serves run PG_THREADS HTTP threads, by default as many as the
# SQLite serve's THREADS (the cores the load generator leaves, its best
# setting, docs/benchmarks.md): admission is asynchronous, so no HTTP thread
# waits for its batch and more threads do not make bigger batches (docs/store.md
# "N nodes"; before, each request parked its thread and this was 16). Session 9
# checked 2 against 1 in interleaved runs: 2 cost serve more CPU a request.
# BASE_BIN=other/sagflow starts one more PostgreSQL serve, of that binary (an
# older commit's, say), on the same database, and each describe round runs
# describe-pg-base between describe-pg and describe-sqlite: old against new in
# the same rounds, on a machine whose speed moves from minute to minute.
# Runs under scripts/pg-test.sh (a private cluster) unless SAGFLOW_TEST_PG is set.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${SAGFLOW_TEST_PG:-}" ]; then
	exec scripts/pg-test.sh "$0" "$@"
fi
BUILD=${BUILD:-build}
BIN=${SAGFLOW_BIN:-$BUILD/sagflow}
LOADGEN=$BUILD/bench/loadgen
FB=$BUILD/bench/flowlog_bench
CONNS=${CONNS:-64}
DUR=${SECONDS_:-10}
ROUNDS=${ROUNDS:-3}
K=${PG_WRITERS:-2}
PGBIN=${SAGFLOW_TEST_PG_BIN:-$(pg_config --bindir)}
export PATH="$PGBIN:$PATH"
work=$(mktemp -d "${TMPDIR:-/var/tmp}/sagflow-bench-pg-XXXXXX")
source bench/api/lib.sh
THREADS=${THREADS:-$(bench_threads)}
PG_THREADS=${PG_THREADS:-$THREADS}
REPLAY=${REPLAY_CACHE:-67108864}
PHASES=" ${PHASES:-create assoc describe nodes recovery} "
PHASES=${PHASES//,/ }
phase() { [[ "$PHASES" == *" $1 "* ]]; }

uri_of() { node -e "const u=new URL(process.argv[1]);u.pathname='/'+process.argv[2];console.log(u.toString())" "$SAGFLOW_TEST_PG" "$1"; }
psql -X -q -d "$SAGFLOW_TEST_PG" -c 'DROP DATABASE IF EXISTS bench_pg WITH (FORCE)' -c 'CREATE DATABASE bench_pg'
DB=$(uri_of bench_pg)
q() { psql -X -A -t -q -d "$DB" -c "$1"; }

# serve_on NAME DB [OPTIONS...]: a release serve, its port in $NAME_port.
serve_on() {
	local name=$1 db=$2
	shift 2
	SAGFLOW_ACCESS_KEY_ID=benchkey SAGFLOW_ACCESS_KEY_SECRET=benchsecret "${SERVE_BIN:-$BIN}" serve --listen 127.0.0.1:0 \
		--db "$db" --rate-limit key=1000000 --flowlog-quota 1000000 --replay-cache "$REPLAY" \
		"$@" >"$work/$name.out" 2>"$work/$name.log" &
	pids+=($!)
	printf -v "${name}_pid" %s "$!"
	for _ in $(seq 300); do grep -q 'listening on' "$work/$name.out" 2>/dev/null && break; sleep 0.1; done
	local p
	p=$(grep -o 'listening on [0-9.]*:[0-9]*' "$work/$name.out" | sed 's/.*://') ||
		{ echo "serve $name did not start:" >&2; tail -20 "$work/$name.log" >&2; exit 1; }
	printf -v "${name}_port" %s "$p"
}

serve_on a "$DB" --threads "$PG_THREADS" --pg-writers "$K" --logs-dir "$work/logs-a"
# Node b runs only in the 2-node phase: beside a live lease, node a's writers
# linger for bigger batches (docs/store.md "Linger under load"), and the
# 1-node phases measure a node alone (a clean stop deletes b's lease).
start_b() { serve_on b "$DB" --threads "$PG_THREADS" --pg-writers "$K" --log-store-at "http://127.0.0.1:$a_port"; }
stop_b() { kill -TERM "$b_pid" && wait "$b_pid" || true; }
serve_on lite "$work/lite.db" --threads "$THREADS"
# (A BASE_BIN serve stays up for the whole run: node a's 1-node writes then
# run beside a live peer.)
if [ -n "${BASE_BIN:-}" ]; then
	SERVE_BIN=$BASE_BIN serve_on base "$DB" --threads "$PG_THREADS" --pg-writers "$K" \
		--log-store-at "http://127.0.0.1:$a_port"
fi
ACCT=$(q "SELECT account_id FROM access_keys WHERE akid = 'benchkey'")

create_q='OutputType=netflow&NetflowServerIp=192.168.0.2&RegionId=cn-shanghai'
describe_q='PageNumber=1&PageSize=50&RegionId=cn-shanghai'
lg() { "$LOADGEN" --port "$1" --signed --akid "${AKID:-benchkey}" --secret "${SECRET:-benchsecret}" --action "$2" --query "$3" \
	--connections "${4:-$CONNS}" --seconds "${5:-$DUR}" --warmup "${6:-2}"; }

# CPU seconds (utime + stime) so far of the PostgreSQL cluster (the postmaster
# and its children: the backends serve and the benchmark talk to) and of one
# process; lg_cpu adds both per request to loadgen's JSON, over loadgen's
# measured seconds only: its requests exclude the warm-up (lg's 6th argument,
# default 2 s), so the CPU is sampled once the warm-up is over (before
# session 7 it included it, ~20 % too much per request on both backends).
TICK=$(getconf CLK_TCK)
pg_cpu() {
	local pm
	pm=$(head -1 "$SAGFLOW_TEST_PG_DATA/postmaster.pid")
	for p in $pm $(pgrep -P "$pm"); do cat "/proc/$p/stat" 2>/dev/null; done |
		awk -v tick="$TICK" '{ sub(/^.*\) /, ""); t += $12 + $13 } END { printf "%.6f", t / tick }'
}
proc_cpu() { cat "/proc/$1/stat" | awk -v tick="$TICK" '{ sub(/^.*\) /, ""); printf "%.6f", ($12 + $13) / tick }'; }
lg_cpu() {
	local pid=$1 p0 s0 out lgp
	shift
	lg "$@" >"$work/lg_cpu.json" &
	lgp=$!
	sleep "${6:-2}"
	p0=$(pg_cpu) s0=$(proc_cpu "$pid")
	wait "$lgp"
	out=$(cat "$work/lg_cpu.json")
	node -e '
const [o, p0, p1, s0, s1] = [JSON.parse(process.argv[1]), ...process.argv.slice(2).map(Number)];
const n = o.requests || 1;
o.pg_cpu_us_per_req = Math.round((p1 - p0) * 1e6 / n * 10) / 10;
o.serve_cpu_us_per_req = Math.round((s1 - s0) * 1e6 / n * 10) / 10;
console.log(JSON.stringify(o));' "$out" "$p0" "$(pg_cpu)" "$s0" "$(proc_cpu "$pid")"
}

# pgbench → the same JSON shape as loadgen's (rps, latency average; no p99).
pgb() {
	local script=$1 clients=$2 out
	shift 2
	out=$(pgbench -n -M prepared -T "$DUR" -c "$clients" -j "$clients" -f "bench/pg/$script" \
		-D acct="$ACCT" -D writers="$K" "$@" "$DB" 2>&1) || { echo "$out" >&2; exit 1; }
	node -e '
const t=process.argv[1];
const tps=Number((t.match(/^tps = ([0-9.]+)/m)||[])[1]), lat=Number((t.match(/^latency average = ([0-9.]+) ms/m)||[])[1]);
const failed=Number((t.match(/^number of failed transactions: (\d+)/m)||[0,0])[1]);
console.log(JSON.stringify({rps:Math.round(tps),mean_ms:lat,errors:failed}));' "$out"
}

# Seeds: page 1 for the reads on both backends, and gateways with devices for
# the pgbench Associate script (flowlog_bench seeds its own each round).
lg "$a_port" CreateFlowLog "$create_q" 8 2 0 >/dev/null
lg "$lite_port" CreateFlowLog "$create_q" 8 2 0 >/dev/null
"$FB" --port "$a_port" --db "$DB" --conns 8 --seconds 1 --flowlogs 8 --gateways 8 --phases assoc >/dev/null
FL0=$(q "SELECT min(id) FROM flowlogs WHERE account_id = $ACCT")
# The create-heavy phases each write for an account of their own: at 10 k
# creates a second, one account would reach serve's largest --flowlog-quota
# (1,000,000) within the run, and every later create would be refused.
key_for() { "$BIN" keys create --db "$DB" --account "$1" | node -e '
const k = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(k.AccessKeyId, k.AccessKeySecret)'; }
read -r NODES_AKID NODES_SECRET < <(key_for bench-nodes)
read -r REC_AKID REC_SECRET < <(key_for bench-recovery)
SAG0=$(q "SELECT min(id) FROM sags WHERE account_id = $ACCT")

echo "# $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); PostgreSQL $(postgres --version | awk '{print $3}') (fsync on, synchronous_commit on) on $(df -T "$SAGFLOW_TEST_PG_DATA" | awk 'NR==2{print $2}'); serve on PostgreSQL --threads $PG_THREADS --pg-writers $K, on SQLite --threads $THREADS; $CONNS connections, ${DUR}s each, $ROUNDS rounds${BASE_BIN:+; describe-pg-base: $BASE_BIN}"
{
for r in $(seq "$ROUNDS"); do
	if phase create; then
		echo "{\"round\":$r,\"side\":\"create-api\",\"result\":$(lg "$a_port" CreateFlowLog "$create_q")}"
		echo "{\"round\":$r,\"side\":\"create-pgbench-$K\",\"result\":$(pgb create.sql "$K")}"
		echo "{\"round\":$r,\"side\":\"create-pgbench-1\",\"result\":$(pgb create.sql 1)}"
	fi
	if phase assoc; then
		fb=$("$FB" --port "$a_port" --db "$DB" --conns "$CONNS" --seconds "$DUR" --flowlogs "$CONNS" \
			--gateways "$CONNS" --phases assoc | grep '"associate+disassociate"')
		echo "{\"round\":$r,\"side\":\"assoc-api\",\"result\":$fb}"
		echo "{\"round\":$r,\"side\":\"assoc-pgbench-$K\",\"result\":$(pgb assoc.sql "$K" -D fl0="$FL0" -D sag0="$SAG0")}"
		echo "{\"round\":$r,\"side\":\"assoc-pgbench-1\",\"result\":$(pgb assoc.sql 1 -D fl0="$FL0" -D sag0="$SAG0")}"
	fi
	if phase describe; then
		echo "{\"round\":$r,\"side\":\"describe-pg\",\"result\":$(lg_cpu "$a_pid" "$a_port" DescribeFlowLogs "$describe_q")}"
		if [ -n "${BASE_BIN:-}" ]; then
			echo "{\"round\":$r,\"side\":\"describe-pg-base\",\"result\":$(lg_cpu "$base_pid" "$base_port" DescribeFlowLogs "$describe_q")}"
		fi
		echo "{\"round\":$r,\"side\":\"describe-sqlite\",\"result\":$(lg_cpu "$lite_pid" "$lite_port" DescribeFlowLogs "$describe_q")}"
	fi
	if phase nodes; then
		start_b
		AKID=$NODES_AKID SECRET=$NODES_SECRET lg "$a_port" CreateFlowLog "$create_q" $((CONNS / 2)) >"$work/two-a.json" &
		AKID=$NODES_AKID SECRET=$NODES_SECRET lg "$b_port" CreateFlowLog "$create_q" $((CONNS / 2)) >"$work/two-b.json"
		wait $!
		stop_b
		echo "{\"round\":$r,\"side\":\"create-2-nodes\",\"result\":$(node -e '
const [a,b]=process.argv.slice(1).map(f=>JSON.parse(require("fs").readFileSync(f,"utf8")));
console.log(JSON.stringify({rps:a.rps+b.rps,p99_ms:Math.max(a.p99_ms,b.p99_ms),non2xx:a.non2xx+b.non2xx,errors:a.errors+b.errors,nodes:[a.rps,b.rps]}))' "$work/two-a.json" "$work/two-b.json")}"
	fi
done
} | tee "$work/rounds.jsonl"

# Recovery: 1-second slices of CreateFlowLog on node a; PostgreSQL stopped
# (immediate) after 5 s and started again at once.
crash=0 accepting=0
: >"$work/slices.jsonl"
if phase recovery; then
{
	for i in $(seq 30); do
		echo "{\"t\":$(date +%s.%N),\"result\":$(AKID=$REC_AKID SECRET=$REC_SECRET lg "$a_port" CreateFlowLog "$create_q" "$CONNS" 1 0)}"
	done >"$work/slices.jsonl"
} &
slicer=$!
sleep 5
crash=$(date +%s.%N)
"$SAGFLOW_TEST_PG_CTL" stop -m immediate -w >/dev/null
"$SAGFLOW_TEST_PG_CTL" start -w >/dev/null
until pg_isready -q -d "$DB"; do sleep 0.05; done
accepting=$(date +%s.%N)
wait "$slicer"
fi
node - "$work/rounds.jsonl" "$work/slices.jsonl" "$crash" "$accepting" "$K" <<'JS'
const fs = require('fs');
const [roundsF, slicesF, crash, accepting, K] = process.argv.slice(2);
const rounds = {};
for (const l of fs.readFileSync(roundsF, 'utf8').trim().split('\n')) {
  const j = JSON.parse(l); (rounds[j.round] ??= {})[j.side] = j.result;
}
const med = (v) => { v = v.slice().sort((a, b) => a - b); return v[v.length >> 1]; };
const ratio = (a, b) => Object.values(rounds).map((m) => m[a].rps / m[b].rps);
const has = (...sides) => sides.every((x) => rounds[1] && rounds[1][x]);
const fmt = (v) => `median ${med(v).toFixed(2)}x (rounds ${v.map((x) => x.toFixed(2)).join(', ')})`;
for (const side of Object.keys(rounds[1])) {
  const v = Object.values(rounds).map((m) => m[side]);
  console.log(`${side}: rps ${v.map((x) => x.rps).join(' / ')}; p99 ${v.map((x) => x.p99_ms ?? '-').join(' / ')} ms; errors ${v.map((x) => (x.non2xx || 0) + (x.errors || 0)).join(' / ')}`);
}
if (has('create-api')) console.log(`G1 create: api / pgbench -c ${K}: ${fmt(ratio('create-api', `create-pgbench-${K}`))}; api / pgbench -c 1: ${fmt(ratio('create-api', 'create-pgbench-1'))}`);
if (has('assoc-api')) console.log(`G1 assoc:  api / pgbench -c ${K}: ${fmt(ratio('assoc-api', `assoc-pgbench-${K}`))}; api / pgbench -c 1: ${fmt(ratio('assoc-api', 'assoc-pgbench-1'))}`);
if (has('describe-pg', 'describe-sqlite')) console.log(`G2 cached DescribeFlowLogs: pg / sqlite: ${fmt(ratio('describe-pg', 'describe-sqlite'))}`);
if (has('describe-pg-base', 'describe-sqlite')) console.log(`   BASE_BIN: pg-base / sqlite: ${fmt(ratio('describe-pg-base', 'describe-sqlite'))}; pg / pg-base: ${fmt(ratio('describe-pg', 'describe-pg-base'))}`);
if (has('create-2-nodes', 'create-api')) console.log(`G3 2 nodes / 1 node (CreateFlowLog): ${fmt(ratio('create-2-nodes', 'create-api'))}`);
const slicesText = fs.readFileSync(slicesF, 'utf8').trim();
if (!slicesText) process.exit(0);
const slices = slicesText.split('\n').map((l) => JSON.parse(l));
// Throughput is what succeeded: a 503 while PostgreSQL is away is fast, not work done.
const ok = (s) => Math.max(0, Math.round((s.result.requests - s.result.non2xx - s.result.errors) / s.result.seconds));
const before = med(slices.filter((s) => s.t + 1 < Number(crash)).map(ok));
const back = slices.find((s) => s.t >= Number(accepting) && ok(s) >= 0.9 * before);
console.log(`G5 recovery: before the stop ${before} successful req/s (median 1-s slice); PostgreSQL accepting again ${(accepting - crash).toFixed(2)} s after the stop began; ` +
  (back ? `the first slice at >= 90% began ${(back.t - accepting).toFixed(2)} s after that (${ok(back)} req/s)` : 'never back to 90% within the run'));
console.log('slices (s after the stop: successful req/s / non-2xx): ' + slices.map((s) => `${(s.t - crash).toFixed(1)}: ${ok(s)}/${s.result.non2xx}`).join('; '));
JS
