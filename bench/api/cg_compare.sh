#!/usr/bin/env bash
# bench/api/cg_compare.sh: user-space instructions per request of two builds of
# `sagflow serve` on SQLite (the default backend), under callgrind, for the
# write and read paths. The question it answers: did a change (the store_ops
# table, a new backend beside SQLite) cost the SQLite build anything?
#   BASE=/path/to/old/sagflow BIN=build/sagflow ROUNDS=2 REQ_SECONDS=10 bench/api/cg_compare.sh
# Each side in turn, ROUNDS times (base, new, new, base, ...): a fresh database,
# serve --threads 1 under callgrind (every thread counted: the writer's SQLite
# work is in the figure), a 3 s warm-up of the same action, counters zeroed,
# REQ_SECONDS of load over 8 connections, dump. Actions (ACTIONS): CreateFlowLog
# (a durable write), DescribeFlowLogs page 1 cached and uncached (--no-answer-cache,
# after 200 flow logs were created).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-build/sagflow}
BASE=${BASE:?set BASE to the path of the old build}
LOADGEN=${LOADGEN:-build/bench/loadgen}
ROUNDS=${ROUNDS:-2}
REQ=${REQ_SECONDS:-10}
ACTIONS=${ACTIONS:-create describe describe-uncached}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/sagflow-cg-XXXXXX")
source bench/api/lib.sh

create_q='OutputType=netflow&NetflowServerIp=192.168.0.2&RegionId=cn-shanghai'
describe_q='PageNumber=1&PageSize=50&RegionId=cn-shanghai'
lg() { "$LOADGEN" --port "$1" --signed --akid benchkey --secret benchsecret --action "$2" \
	--query "$3" --connections 8 --seconds "$4" --warmup 0; }

# side BIN ACTION: one measurement, printed as a JSON line.
side() {
	local bin=$1 action=$2 opts=() name=CreateFlowLog query=$create_q
	rm -f "$work"/bench.db* "$work"/cg.*
	[ "$action" = describe-uncached ] && opts=(--no-answer-cache)
	SAGFLOW_ACCESS_KEY_ID=benchkey SAGFLOW_ACCESS_KEY_SECRET=benchsecret \
		valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" -- "$bin" serve \
		--listen 127.0.0.1:0 --db "$work/bench.db" --rate-limit key=1000000 --threads 1 \
		--flowlog-quota 1000000 "${opts[@]}" >"$work/serve.out" 2>"$work/serve.log" &
	local pid=$!
	pids+=("$pid")
	for _ in $(seq 600); do grep -q 'listening on' "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
	local port
	port=$(grep -o 'listening on [0-9.]*:[0-9]*' "$work/serve.out" | sed 's/.*://')
	if [ "$action" != create ]; then
		name=DescribeFlowLogs query=$describe_q
		lg "$port" CreateFlowLog "$create_q" 2 >/dev/null
	fi
	lg "$port" "$name" "$query" 3 >/dev/null
	callgrind_control -z "$pid" >/dev/null 2>&1
	local res
	res=$(lg "$port" "$name" "$query" "$REQ")
	callgrind_control -d "$pid" >/dev/null 2>&1
	sleep 1
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	local ir n
	ir=$(grep -h "^summary:" "$work"/cg.*.1 | awk '{s+=$2} END{print s}')
	n=$(echo "$res" | node -e "const j=JSON.parse(require('fs').readFileSync(0,'utf8'));process.stdout.write(String(j.requests-j.non2xx-j.errors))")
	echo "{\"bin\":\"$bin\",\"action\":\"$action\",\"requests\":$n,\"per_request\":$((ir / n))}"
}

echo "# callgrind, serve --threads 1, 8 connections, ${REQ}s measured; base $BASE, new $BIN"
for r in $(seq "$ROUNDS"); do
	order=("$BASE" "$BIN")
	[ $((r % 2)) -eq 0 ] && order=("$BIN" "$BASE")
	for a in $ACTIONS; do
		for b in "${order[@]}"; do side "$b" "$a"; done
	done
done
