#!/usr/bin/env bash
# bench/api/metrics_run.sh: what counting costs on the request path (issue 9).
# Signed DescribeRegions through two `sagflow serve` processes that differ only
# in --metrics-listen: "on" counts every request and is scraped once a second
# (curl GET /metrics, as a Prometheus would), "off" counts nothing.
#
#   MODE=timed (default): ROUNDS interleaved rounds, the two sides in ABBA order
#     (off/on, then on/off, ...) so a drift of the host's speed hits both; prints
#     one JSON line per measurement, each round's on/off ratio and the median.
#     ROUNDS=6 SECONDS_=10 CONNS=64 THREADS=1 bench/api/metrics_run.sh
#   MODE=callgrind: each side in turn under valgrind's callgrind with one thread:
#     warm up, zero the counters, drive REQ_SECONDS of load, dump; prints
#     user-space instructions per request (the scrapes' included on the on side).
#     MODE=callgrind REQ_SECONDS=20 bench/api/metrics_run.sh
#   SCRAPE_EVERY=0 leaves the on side unscraped (counting alone); KEEP_CG=DIR
#   keeps the callgrind dumps.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${SAGFLOW_BIN:-build/sagflow}
LOADGEN=${LOADGEN:-build/bench/loadgen}
MODE=${MODE:-timed}
CONNS=${CONNS:-64}
DUR=${SECONDS_:-10}
ROUNDS=${ROUNDS:-6}
REQ_SECONDS=${REQ_SECONDS:-20}
SCRAPE_EVERY=${SCRAPE_EVERY:-1}
work=$(mktemp -d)
source bench/api/lib.sh
THREADS=${THREADS:-$(bench_threads)}
# Each side signs ~0.5 M requests a round; every nonce is remembered 15 minutes.
REPLAY=${REPLAY_CACHE:-16777216}

# serve_side NAME [PREFIX...] -- [SERVE OPTIONS...]: starts a serve (optionally
# under a wrapper such as valgrind) on its own database; sets ${NAME}_port,
# ${NAME}_pid and, with --metrics-listen, ${NAME}_mport.
serve_side() {
	local name=$1
	shift
	local pre=()
	while [ "$1" != -- ]; do pre+=("$1"); shift; done
	shift
	SAGFLOW_ACCESS_KEY_ID=benchkey SAGFLOW_ACCESS_KEY_SECRET=benchsecret \
		"${pre[@]}" "$BIN" serve --listen 127.0.0.1:0 --db "$work/$name.db" --rate-limit key=1000000 "$@" \
		>"$work/$name.out" 2>"$work/$name.log" &
	pids+=($!)
	eval "${name}_pid=$!"
	for _ in $(seq 600); do grep -q 'listening on' "$work/$name.out" 2>/dev/null && break; sleep 0.1; done
	eval "${name}_port=$(grep -o 'listening on [0-9.]*:[0-9]*' "$work/$name.out" | sed 's/.*://')"
	local m
	m=$(grep -o 'metrics on [0-9.]*:[0-9]*' "$work/$name.out" | sed 's/.*://' || true)
	eval "${name}_mport=${m:-}"
}

# A Prometheus stand-in: GET /metrics every SCRAPE_EVERY seconds; counts scrapes.
start_scraper() {
	(while :; do
		curl -sf -o /dev/null "http://127.0.0.1:$1/metrics" && echo >>"$work/scrapes"
		sleep "$SCRAPE_EVERY"
	done) &
	pids+=($!)
}

signed() {
	"$LOADGEN" --port "$1" --signed --akid benchkey --secret benchsecret --connections "$2" \
		--seconds "$3" --warmup "${4:-2}"
}

timed() {
	serve_side off -- --threads "$THREADS" --replay-cache "$REPLAY"
	serve_side on -- --threads "$THREADS" --replay-cache "$REPLAY" --metrics-listen 127.0.0.1:0
	[ "$SCRAPE_EVERY" != 0 ] && start_scraper "$on_mport"
	echo "# signed DescribeRegions; $CONNS connections; ${DUR}s after a 2s warm-up; $(nproc) cores;" \
		"--threads $THREADS; metrics on (scraped every ${SCRAPE_EVERY}s) vs off; $ROUNDS rounds, ABBA order"
	for r in $(seq "$ROUNDS"); do
		local order="off on"
		[ $((r % 2)) -eq 0 ] && order="on off"
		for side in $order; do
			local p="${side}_port"
			echo "{\"round\":$r,\"side\":\"$side\",\"result\":$(signed "${!p}" "$CONNS" "$DUR")}"
		done
	done | tee "$work/rounds.jsonl"
	echo "# scrapes answered: $(wc -l <"$work/scrapes" 2>/dev/null || echo 0)"
	node -e "
const rounds={};
for (const l of require('fs').readFileSync(process.argv[1],'utf8').trim().split('\n')) {
  const j=JSON.parse(l); (rounds[j.round]??={})[j.side]=j.result; }
const ratios=[];
for (const [r,m] of Object.entries(rounds)) {
  const bad=[m.on,m.off].some(x=>x.non2xx||x.errors);
  const q=m.on.rps/m.off.rps*100;
  if (!bad) ratios.push(q);
  console.log('round '+r+': off '+m.off.rps+' req/s (p99 '+m.off.p99_ms+' ms), on '+m.on.rps+
    ' req/s (p99 '+m.on.p99_ms+' ms): on/off '+(bad?'discarded (non-2xx)':q.toFixed(1)+'%'));
}
ratios.sort((a,b)=>a-b);
console.log('median on/off: '+ratios[ratios.length>>1].toFixed(1)+'% (rounds '+ratios[0].toFixed(1)+
  '-'+ratios[ratios.length-1].toFixed(1)+'%)');" "$work/rounds.jsonl"
}

# callgrind_side NAME [SERVE OPTIONS...]: instructions per request of one side.
callgrind_side() {
	local name=$1
	shift
	serve_side "$name" valgrind --tool=callgrind --callgrind-out-file="$work/$name.cg" -- \
		--threads 1 --replay-cache "$REPLAY" "$@"
	local p="${name}_port" m="${name}_mport" pid="${name}_pid"
	[ -n "${!m:-}" ] && [ "$SCRAPE_EVERY" != 0 ] && start_scraper "${!m}"
	signed "${!p}" 8 3 0 >/dev/null # warm-up: caches, connections, the key
	callgrind_control -z "${!pid}" >/dev/null 2>&1
	: >"$work/scrapes"
	local res
	res=$(signed "${!p}" 8 "$REQ_SECONDS" 0)
	callgrind_control -d "${!pid}" >/dev/null 2>&1
	local scrapes
	scrapes=$(wc -l <"$work/scrapes")
	sleep 1
	local ir
	ir=$(for f in "$work/$name.cg".*; do grep -h '^summary:' "$f" 2>/dev/null; done | awk '{s+=$2} END{print s}')
	local n
	n=$(echo "$res" | node -e "process.stdout.write(String(JSON.parse(require('fs').readFileSync(0,'utf8')).requests))")
	echo "{\"side\":\"$name\",\"requests\":$n,\"scrapes\":$scrapes,\"instructions\":$ir,\"per_request\":$((ir / n))}"
	kill "${!pid}" 2>/dev/null || true
	wait "${!pid}" 2>/dev/null || true
	# Only the scraper of this side is left in pids beyond the serve: stop it.
	if [ -n "${!m:-}" ] && [ "$SCRAPE_EVERY" != 0 ]; then kill "${pids[-1]}" 2>/dev/null || true; fi
	# KEEP_CG=DIR keeps the dumps, for callgrind_annotate --inclusive=yes.
	if [ -n "${KEEP_CG:-}" ]; then mkdir -p "$KEEP_CG" && cp "$work/$name.cg".1 "$KEEP_CG/$name.cg"; fi
	rm -f "$work/$name.cg".*
}

if [ "$MODE" = callgrind ]; then
	echo "# callgrind: signed DescribeRegions, --threads 1, 8 connections, ${REQ_SECONDS}s measured;" \
		"metrics on = --metrics-listen and a scrape every ${SCRAPE_EVERY}s"
	callgrind_side off
	callgrind_side on --metrics-listen 127.0.0.1:0
	# The same with no scraper: what counting alone costs a request.
	SCRAPE_EVERY=0 callgrind_side on_unscraped --metrics-listen 127.0.0.1:0
else
	timed
fi
