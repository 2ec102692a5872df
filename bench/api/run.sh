#!/usr/bin/env bash
# bench/api: signed DescribeRegions through `sagflow serve` versus nginx serving a
# static file holding the very same response body, with the same load generator,
# in one run. Prints one JSON line per measurement and a summary.
#   CONNS=64 SECONDS_=10 bench/api/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${SAGFLOW_BIN:-build/sagflow}
LOADGEN=${LOADGEN:-build/bench/loadgen}
CONNS=${CONNS:-64}
DUR=${SECONDS_:-10}
work=$(mktemp -d)
source bench/api/lib.sh

# 1. sagflow serve on a fresh database with a benchmark key.
start_serve
sport=$port

# 2. The same response body as a static file for nginx.
(cd tests/e2e && node -e "
const C=require('@alicloud/pop-core');
new C({accessKeyId:'benchkey',accessKeySecret:'benchsecret',endpoint:'http://127.0.0.1:$sport',apiVersion:'2018-03-13'})
 .request('DescribeRegions',{}).then(r=>process.stdout.write(JSON.stringify(r)))") >"$work/regions.json"
start_nginx

size=$(stat -c %s "$work/regions.json")
echo "# response body: $size bytes; $CONNS connections; ${DUR}s after a 2s warm-up; $(nproc) cores"
ng=$("$LOADGEN" --port "$nport" --path /regions.json --connections "$CONNS" --seconds "$DUR")
echo "nginx-static $ng"
sg=$("$LOADGEN" --port "$sport" --signed --akid benchkey --secret benchsecret --connections "$CONNS" --seconds "$DUR")
echo "sagflow-signed $sg"
node -e "
const n=JSON.parse(process.argv[1]), s=JSON.parse(process.argv[2]);
console.log('ratio sagflow/nginx = ' + (s.rps/n.rps*100).toFixed(1) + '%; sagflow p99 ' + s.p99_ms + ' ms; non-2xx ' + s.non2xx);
" "$ng" "$sg"
