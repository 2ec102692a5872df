#!/usr/bin/env bash
# bench/fleet noisy neighbour: two AccessKeys on one release `sagflow serve` with
# the default budgets (key=100:300). The noisy key sends signed DescribeRegions
# at full speed (64 connections, closed loop); the well-behaved key 50 requests
# a second on one connection. Reports the well-behaved key's latency alone and
# beside the noisy one (docs/benchmarks.md). SECONDS_RUN=20 THREADS=nproc.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-build/sagflow}
LG=${LG:-build/bench/loadgen}
THREADS=${THREADS:-$(nproc)}
SECS=${SECONDS_RUN:-20}
work=$(mktemp -d /tmp/sagflow-noisy-XXXXXX)
spid=
cleanup() { [ -n "$spid" ] && kill "$spid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
"$BIN" serve --listen 127.0.0.1:0 --db "$work/n.db" --threads "$THREADS" >"$work/serve.out" 2>"$work/serve.log" &
spid=$!
for _ in $(seq 100); do grep -q '^listening on' "$work/serve.out" && break; sleep 0.1; done
port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$work/serve.out")
# keys create prints id and secret once: read both from one call.
read -r nid nsec < <("$BIN" keys create --db "$work/n.db" --account noisy |
	sed -n 's/.*"AccessKeyId":"\([^"]*\)","AccessKeySecret":"\([^"]*\)".*/\1 \2/p')
read -r qid qsec < <("$BIN" keys create --db "$work/n.db" --account quiet |
	sed -n 's/.*"AccessKeyId":"\([^"]*\)","AccessKeySecret":"\([^"]*\)".*/\1 \2/p')
quiet=("$LG" --port "$port" --signed --akid "$qid" --secret "$qsec" --connections 1 --rate 50
	--seconds "$SECS" --warmup 1)
echo "quiet alone:  $("${quiet[@]}")"
"$LG" --port "$port" --signed --akid "$nid" --secret "$nsec" --connections 64 --seconds "$((SECS + 2))" \
	--warmup 0 >"$work/noisy.json" &
lpid=$!
sleep 1
echo "quiet beside: $("${quiet[@]}")"
wait "$lpid"
echo "noisy:        $(cat "$work/noisy.json")"
echo "serve answered: $(grep -c 'code=Throttling.User' "$work/serve.log" || true) Throttling.User," \
	"$(grep -c 'akid='"$qid"'.*code=OK' "$work/serve.log" || true) OK for the quiet key," \
	"$(grep -c 'akid='"$qid"' .*code=[^O]' "$work/serve.log" || true) errors for it"
