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
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

# 1. sagflow serve on a fresh database with a benchmark key.
export SAGFLOW_ACCESS_KEY_ID=benchkey SAGFLOW_ACCESS_KEY_SECRET=benchsecret
"$BIN" serve --listen 127.0.0.1:0 --db "$work/bench.db" >"$work/serve.out" 2>"$work/serve.log" &
pids+=($!)
for _ in $(seq 100); do grep -q 'listening on' "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
sport=$(grep -o 'listening on [0-9.]*:[0-9]*' "$work/serve.out" | sed 's/.*://')

# 2. The same response body as a static file for nginx.
(cd tests/e2e && node -e "
const C=require('@alicloud/pop-core');
new C({accessKeyId:'benchkey',accessKeySecret:'benchsecret',endpoint:'http://127.0.0.1:$sport',apiVersion:'2018-03-13'})
 .request('DescribeRegions',{}).then(r=>process.stdout.write(JSON.stringify(r)))") >"$work/regions.json"
nport=$(free_port)
cat >"$work/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  default_type application/json;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work; uwsgi_temp_path $work; scgi_temp_path $work;
  server { listen 127.0.0.1:$nport; root $work; }
}
CONF
nginx -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)
sleep 0.5

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
