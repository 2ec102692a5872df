#!/usr/bin/env bash
# bench/api flow-log mixes (flowlog_bench.c) against a release `sagflow serve`
# on a fresh database: seeds FLOWLOGS flow logs and GATEWAYS gateways through the
# API (measuring CreateFlowLog as durable writes), then DescribeFlowLogs by page,
# Associate/Disassociate and an 80/20 read/write mix, and the bare SQLite
# one-INSERT-per-transaction loop in the same run and directory.
#   BUILD=build-rel CONNS=64 SECONDS_=10 FLOWLOGS=100000 GATEWAYS=10000 bench/api/flowlog_run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-rel}
BIN=${SAGFLOW_BIN:-$BUILD/sagflow}
BENCH=${FLOWLOG_BENCH:-$BUILD/bench/flowlog_bench}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/sagflow-bench-XXXXXX")
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export SAGFLOW_ACCESS_KEY_ID=benchkey SAGFLOW_ACCESS_KEY_SECRET=benchsecret
"$BIN" serve --listen 127.0.0.1:0 --db "$work/bench.db" --flowlog-quota 1000000 \
	>"$work/serve.out" 2>"$work/serve.log" &
pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
port=$(grep -o 'listening on [0-9.]*:[0-9]*' "$work/serve.out" | sed 's/.*://')
echo "# $(nproc) cores; $(df -T "$work" | awk 'NR==2{print $2}') at $work; ${CONNS:-64} connections"
"$BENCH" --port "$port" --db "$work/bench.db" --conns "${CONNS:-64}" --seconds "${SECONDS_:-10}" \
	--flowlogs "${FLOWLOGS:-100000}" --gateways "${GATEWAYS:-10000}" --bare-dir "$work"
grep -c ' code=OK ' "$work/serve.log" >/dev/null || true
