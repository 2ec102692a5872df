#!/usr/bin/env bash
# bench/api flow-log mixes (flowlog_bench.c) against a release `sagflow serve`
# on a fresh database: seeds FLOWLOGS flow logs and GATEWAYS gateways through the
# API (measuring CreateFlowLog as durable writes), then DescribeFlowLogs by page,
# CreateFlowLog on the seeded store, Associate/Disassociate and an 80/20
# read/write mix, and the bare SQLite one-INSERT-per-transaction loop in the same
# run and directory. Then DescribeFlowLogs (page 1, PageSize 50 and 10, and the
# middle and last pages) against nginx serving a static file holding the same
# page body, with one load generator (loadgen) for both, ROUNDS interleaved rounds.
#   BUILD=build-rel CONNS=64 SECONDS_=10 FLOWLOGS=100000 GATEWAYS=10000 ROUNDS=3 bench/api/flowlog_run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-rel}
BIN=${SAGFLOW_BIN:-$BUILD/sagflow}
BENCH=${FLOWLOG_BENCH:-$BUILD/bench/flowlog_bench}
LOADGEN=${LOADGEN:-$BUILD/bench/loadgen}
CONNS=${CONNS:-64}
DUR=${SECONDS_:-10}
FLOWLOGS=${FLOWLOGS:-100000}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/sagflow-bench-XXXXXX")
source bench/api/lib.sh

# The run signs ~4 million requests within 15 minutes: every SignatureNonce must
# stay remembered, so the replay cache is sized for it (64 Mi entries, 1 GiB).
start_serve --flowlog-quota 1000000 --replay-cache "${REPLAY_CACHE:-67108864}"
echo "# $(nproc) cores; $(df -T "$work" | awk 'NR==2{print $2}') at $work; $CONNS connections"
"$BENCH" --port "$port" --db "$work/bench.db" --conns "$CONNS" --seconds "$DUR" \
	--flowlogs "$FLOWLOGS" --gateways "${GATEWAYS:-10000}" --bare-dir "$work" --page-dir "$work"

# nginx serving the saved page bodies (same bytes as a DescribeFlowLogs answer),
# with 1 and with 2 workers; each round's ratio is to the faster of the two.
start_nginx 1
n1port=$nport
start_nginx 2
n2port=$nport
THREADS=${THREADS:-$(bench_threads)}
signed() { "$LOADGEN" --port "$port" --signed --akid benchkey --secret benchsecret --action DescribeFlowLogs \
	--query "PageNumber=$1&PageSize=$2&RegionId=cn-shanghai" --connections "$CONNS" --seconds "$DUR"; }
static() { "$LOADGEN" --port "$1" --path "/flowlogs-$2.json" --connections "$CONNS" --seconds "$DUR"; }
# The store now holds the seeded logs plus the timed CreateFlowLog phase's:
# the middle and last pages come from its TotalCount.
total=$(cd tests/e2e && node -e "
const C=require('@alicloud/pop-core');
new C({accessKeyId:'benchkey',accessKeySecret:'benchsecret',endpoint:'http://127.0.0.1:$port',apiVersion:'2018-03-13'})
 .request('DescribeFlowLogs',{RegionId:'cn-shanghai',PageSize:50}).then(r=>console.log(r.TotalCount))")
last=$(( (total + 49) / 50 ))
echo "# DescribeFlowLogs against nginx: the store holds $total flow logs (pages 1, $(( (last + 1) / 2 )), $last); sagflow with --threads $THREADS (the cores the generator leaves) and with its default, restarted on the same database between them"
# The rounds run in a subshell (the pipe to tee): the serves they start are not
# in the parent's cleanup list, so the subshell stops its last one itself.
{
trap stop_serve EXIT
for r in $(seq "${ROUNDS:-3}"); do
	for size in 50 10; do
		for w in 1 2; do
			np=$n1port; [ "$w" = 2 ] && np=$n2port
			echo "{\"round\":$r,\"side\":\"nginx-$w\",\"page\":1,\"size\":$size,\"bytes\":$(stat -c %s "$work/flowlogs-$size.json"),\"result\":$(static "$np" $size)}"
		done
	done
	for t in "$THREADS" default uncached; do
		stop_serve
		case $t in
		default) start_serve --replay-cache "${REPLAY_CACHE:-67108864}" ;;
		uncached) start_serve --threads "$THREADS" --no-answer-cache --replay-cache "${REPLAY_CACHE:-67108864}" ;;
		*) start_serve --threads "$t" --replay-cache "${REPLAY_CACHE:-67108864}" ;;
		esac
		for size in 50 10; do
			echo "{\"round\":$r,\"side\":\"sagflow-threads-$t\",\"page\":1,\"size\":$size,\"result\":$(signed 1 $size)}"
		done
		if [ "$t" = "$THREADS" ]; then
			for page in $(( (last + 1) / 2 )) "$last"; do
				echo "{\"round\":$r,\"side\":\"sagflow-threads-$t\",\"page\":$page,\"size\":50,\"result\":$(signed "$page" 50)}"
			done
		fi
	done
done
} | tee "$work/reads.jsonl"
# Best round of each (side, page, size), and each round's ratio of page 1 to the
# faster nginx of that round for the same bytes.
node -e "
const best={}, rounds={};
for (const l of require('fs').readFileSync(process.argv[1],'utf8').trim().split('\n')) {
  const j=JSON.parse(l), k=j.side+' page '+j.page+' size '+j.size;
  // A round with errors (e.g. Throttling from a full replay cache) measures
  // the error path, not the answer: it never counts as a result.
  if(j.result.non2xx||j.result.errors){console.log('discarded (non-2xx): '+k+' round '+j.round);continue;}
  ((rounds[j.round]??={})[k]=j.result);
  if(!best[k]||j.result.rps>best[k].rps) best[k]=j.result;
}
for (const [k,v] of Object.entries(best)) console.log('best '+k+': '+v.rps+' req/s p50 '+v.p50_ms+' ms p99 '+v.p99_ms+' ms');
for (const [r,m] of Object.entries(rounds)) for (const s of [50,10]) {
  const n=Math.max(m['nginx-1 page 1 size '+s]?.rps??0, m['nginx-2 page 1 size '+s]?.rps??0);
  const parts=Object.keys(m).filter(k=>k.startsWith('sagflow')&&k.endsWith(' page 1 size '+s))
    .map(k=>k.split(' ')[0]+' '+(m[k].rps/n*100).toFixed(1)+'% (p99 '+m[k].p99_ms+' ms)');
  console.log('round '+r+' PageSize '+s+': '+parts.join('; '));
}" "$work/reads.jsonl"
