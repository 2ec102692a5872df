#!/usr/bin/env bash
# bench/api: signed DescribeRegions through `sagflow serve` versus nginx serving a
# static file holding the very same response body, with the same load generator,
# in one run: ROUNDS interleaved rounds of nginx (1 and 2 workers), sagflow with
# one thread per core the generator leaves free (THREADS) and sagflow with its
# default (one thread per core). Prints one JSON line per measurement, then the
# best round of each and each round's ratio to the faster nginx of that round.
#   CONNS=64 SECONDS_=10 ROUNDS=3 bench/api/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${SAGFLOW_BIN:-build/sagflow}
LOADGEN=${LOADGEN:-build/bench/loadgen}
CONNS=${CONNS:-64}
DUR=${SECONDS_:-10}
ROUNDS=${ROUNDS:-3}
work=$(mktemp -d)
source bench/api/lib.sh
THREADS=${THREADS:-$(bench_threads)}

# 1. sagflow serve on fresh databases with a benchmark key: THREADS and the default.
# Each signs ~0.5 M requests a round: every SignatureNonce must stay remembered for
# 15 minutes, so the replay cache is sized for it (the default 2 Mi entries would
# fill after four rounds and answer Throttling; 64 Mi entries = 1 GiB).
REPLAY=${REPLAY_CACHE:-67108864}
start_serve --threads "$THREADS" --replay-cache "$REPLAY"
sport=$port
mv "$work/serve.log" "$work/serve-tuned.log"
SAGFLOW_ACCESS_KEY_ID=benchkey SAGFLOW_ACCESS_KEY_SECRET=benchsecret \
	"$BIN" serve --listen 127.0.0.1:0 --db "$work/default.db" --replay-cache "$REPLAY" --rate-limit key=1000000 >"$work/serve-default.out" 2>"$work/serve-default.log" &
pids+=($!)
for _ in $(seq 100); do grep -q 'listening on' "$work/serve-default.out" 2>/dev/null && break; sleep 0.1; done
dport=$(grep -o 'listening on [0-9.]*:[0-9]*' "$work/serve-default.out" | sed 's/.*://')

# 2. The same response body as a static file for nginx.
(cd tests/e2e && node -e "
const C=require('@alicloud/pop-core');
new C({accessKeyId:'benchkey',accessKeySecret:'benchsecret',endpoint:'http://127.0.0.1:$sport',apiVersion:'2018-03-13'})
 .request('DescribeRegions',{}).then(r=>process.stdout.write(JSON.stringify(r)))") >"$work/regions.json"
start_nginx 1
n1port=$nport
start_nginx 2
n2port=$nport

size=$(stat -c %s "$work/regions.json")
echo "# response body: $size bytes; $CONNS connections; ${DUR}s after a 2s warm-up; $(nproc) cores; sagflow --threads $THREADS and default; $ROUNDS rounds"
static() { "$LOADGEN" --port "$1" --path /regions.json --connections "$CONNS" --seconds "$DUR"; }
signed() { "$LOADGEN" --port "$1" --signed --akid benchkey --secret benchsecret --connections "$CONNS" --seconds "$DUR"; }
for r in $(seq "$ROUNDS"); do
	echo "{\"round\":$r,\"side\":\"nginx-1-worker\",\"result\":$(static "$n1port")}"
	echo "{\"round\":$r,\"side\":\"nginx-2-workers\",\"result\":$(static "$n2port")}"
	echo "{\"round\":$r,\"side\":\"sagflow-threads-$THREADS\",\"result\":$(signed "$sport")}"
	echo "{\"round\":$r,\"side\":\"sagflow-default-threads\",\"result\":$(signed "$dport")}"
done | tee "$work/rounds.jsonl"
node -e "
const rounds={}, best={};
for (const l of require('fs').readFileSync(process.argv[1],'utf8').trim().split('\n')) {
  const j=JSON.parse(l); (rounds[j.round]??={})[j.side]=j.result;
  // A round with errors measures the error path, not the answer.
  if (j.result.non2xx||j.result.errors) { console.log('discarded (non-2xx): '+j.side+' round '+j.round); continue; }
  if (!best[j.side]||j.result.rps>best[j.side].rps) best[j.side]=j.result;
}
for (const [k,v] of Object.entries(best)) console.log('best '+k+': '+v.rps+' req/s p50 '+v.p50_ms+' ms p99 '+v.p99_ms+' ms');
const clean=(x)=>!x.non2xx&&!x.errors, ratios={};
for (const [r,m] of Object.entries(rounds)) {
  const n=Math.max(m['nginx-1-worker'].rps, m['nginx-2-workers'].rps);
  for (const k of Object.keys(m).filter(k=>k.startsWith('sagflow')&&clean(m[k]))) (ratios[k]??=[]).push(m[k].rps/n*100);
}
// The host's speed drifts between one side's 10 s and the next: the median
// round is the summary, the range is the honesty.
for (const [k,v] of Object.entries(ratios)) { v.sort((a,b)=>a-b);
  console.log('median '+k+': '+v[v.length>>1].toFixed(1)+'% of the faster nginx (rounds '+v[0].toFixed(1)+'-'+v[v.length-1].toFixed(1)+'%)'); }
for (const [r,m] of Object.entries(rounds)) {
  const n=Math.max(m['nginx-1-worker'].rps, m['nginx-2-workers'].rps);
  console.log('round '+r+': '+Object.keys(m).filter(k=>k.startsWith('sagflow')).map(k=>k+' '+
    (clean(m[k])?(m[k].rps/n*100).toFixed(1)+'% of the faster nginx, p99 '+m[k].p99_ms+' ms':'discarded (non-2xx)')).join('; '));
}" "$work/rounds.jsonl"
