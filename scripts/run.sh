#!/usr/bin/env bash
# make run: the control plane on 127.0.0.1:8080 with an SQLite store under ./var/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var
: "${SAGFLOW_LISTEN:=127.0.0.1:8080}"
: "${SAGFLOW_DB:=var/sagflow.db}"
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
development credentials (default account):
  AccessKeyId:     $SAGFLOW_ACCESS_KEY_ID
  AccessKeySecret: $SAGFLOW_ACCESS_KEY_SECRET   (kept in var/dev-secret)
try it (Node.js with the pinned @alicloud/pop-core that 'make run' installed):
  cd tests/e2e && node -e "const C=require('@alicloud/pop-core');new C({accessKeyId:'$SAGFLOW_ACCESS_KEY_ID',accessKeySecret:'$SAGFLOW_ACCESS_KEY_SECRET',endpoint:'http://127.0.0.1:$port',apiVersion:'2018-03-13'}).request('DescribeRegions',{}).then(r=>console.log(JSON.stringify(r)))"
health: curl http://127.0.0.1:$port/healthz
stop with Ctrl-C.
MSG
exec build/sagflow serve --listen "$SAGFLOW_LISTEN" --db "$SAGFLOW_DB"
