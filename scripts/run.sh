#!/usr/bin/env bash
# make run: the control plane on 127.0.0.1:8080 with an SQLite store under ./var/,
# the console at /console/, and the demo (scripts/demo.mjs: a flow log and a
# gateway whose agent meters generated traffic). SAGFLOW_DEMO=0: no demo.
# Ctrl-C (SIGINT to the group) or SIGTERM stops serve, the demo and its agent.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var
: "${SAGFLOW_LISTEN:=127.0.0.1:8080}"
: "${SAGFLOW_DB:=var/sagflow.db}"
: "${SAGFLOW_BIN:=build/sagflow}"
: "${SAGFLOW_DEMO:=1}"
export SAGFLOW_BIN
# A development key for the default account, so the example below works at once.
export SAGFLOW_ACCESS_KEY_ID=${SAGFLOW_ACCESS_KEY_ID:-devkey}
if [ -z "${SAGFLOW_ACCESS_KEY_SECRET:-}" ]; then
	if [ ! -f var/dev-secret ]; then
		(umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=' > var/dev-secret)
	fi
	SAGFLOW_ACCESS_KEY_SECRET=$(cat var/dev-secret)
	export SAGFLOW_ACCESS_KEY_SECRET
fi
port=${SAGFLOW_LISTEN##*:}
cat <<MSG
sagflow control plane: http://$SAGFLOW_LISTEN  (store: $SAGFLOW_DB)
console: http://$SAGFLOW_LISTEN/console/   (sign in with the key below)
development credentials (default account):
  AccessKeyId:     $SAGFLOW_ACCESS_KEY_ID
  AccessKeySecret: $SAGFLOW_ACCESS_KEY_SECRET   (kept in var/dev-secret)
try it (Node.js with the pinned @alicloud/pop-core that 'make run' installed):
  cd tests/e2e && node -e "const C=require('@alicloud/pop-core');new C({accessKeyId:'$SAGFLOW_ACCESS_KEY_ID',accessKeySecret:'$SAGFLOW_ACCESS_KEY_SECRET',endpoint:'http://127.0.0.1:$port',apiVersion:'2018-03-13'}).request('DescribeRegions',{}).then(r=>console.log(JSON.stringify(r)))"
health: curl http://127.0.0.1:$port/healthz
stop with Ctrl-C.
MSG
if [ "$SAGFLOW_DEMO" = 0 ]; then
	exec "$SAGFLOW_BIN" serve --listen "$SAGFLOW_LISTEN" --db "$SAGFLOW_DB"
fi
"$SAGFLOW_BIN" serve --listen "$SAGFLOW_LISTEN" --db "$SAGFLOW_DB" &
serve_pid=$!
demo_pid=
# Background jobs of a script ignore SIGINT, so Ctrl-C reaches this trap, which
# passes it on as SIGTERM (serve and the demo both stop cleanly on it).
stop() {
	trap - INT TERM
	if [ -n "$demo_pid" ]; then kill -TERM "$demo_pid" 2>/dev/null || true; fi
	kill -TERM "$serve_pid" 2>/dev/null || true
	wait || true
	exit "${1:-0}"
}
trap stop INT TERM
# The demo waits for /healthz itself (no curl on a fresh machine).
echo "demo: starting (SAGFLOW_DEMO=0 make run for the bare control plane)"
node scripts/demo.mjs "http://$SAGFLOW_LISTEN" &
demo_pid=$!
rc=0
wait "$serve_pid" || rc=$?
stop "$rc" # serve ended by itself: take the demo with it
