#!/usr/bin/env bash
# make run: the control plane on 127.0.0.1:8080 with an SQLite store under ./var/,
# the console at /console/, and the demo (`sagflow demo`: a flow log and a
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
example() {
	cat <<MSG
try it (Node.js with the pinned @alicloud/pop-core that 'make run' installed):
  cd tests/e2e && node -e "const C=require('@alicloud/pop-core');new C({accessKeyId:'$SAGFLOW_ACCESS_KEY_ID',accessKeySecret:'$SAGFLOW_ACCESS_KEY_SECRET',endpoint:'http://127.0.0.1:$port',apiVersion:'2018-03-13'}).request('DescribeRegions',{}).then(r=>console.log(JSON.stringify(r)))"
health: curl http://127.0.0.1:$port/healthz
MSG
}
if [ "$SAGFLOW_DEMO" = 0 ]; then
	cat <<MSG
sagflow control plane: http://$SAGFLOW_LISTEN  (store: $SAGFLOW_DB)
console: http://$SAGFLOW_LISTEN/console/   (sign in with the key below)
development credentials (default account):
  AccessKeyId:     $SAGFLOW_ACCESS_KEY_ID
  AccessKeySecret: $SAGFLOW_ACCESS_KEY_SECRET   (kept in var/dev-secret)
MSG
	example
	echo "stop with Ctrl-C."
	exec "$SAGFLOW_BIN" serve --listen "$SAGFLOW_LISTEN" --db "$SAGFLOW_DB"
fi
# The demo is 'sagflow demo' (src/cli/demo.c): it prints the console's URL and
# the key, starts serve and the demo's agent, and stops both on Ctrl-C
# (SIGINT to the group) or SIGTERM. exec: one demo, whether from make or not.
echo "demo: starting (SAGFLOW_DEMO=0 make run for the bare control plane)"
example
exec "$SAGFLOW_BIN" demo --listen "$SAGFLOW_LISTEN" --db "$SAGFLOW_DB"
