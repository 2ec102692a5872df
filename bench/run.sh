#!/usr/bin/env bash
# make bench: every benchmark of bench/, one after the other, on the release build.
# Results go to stdout; docs/benchmarks.md records them with the machine's state.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== bench/api: signed DescribeRegions vs nginx static"
bench/api/run.sh
echo "== bench/api: signed DescribeRegions, metrics on vs off"
bench/api/metrics_run.sh
echo "== bench/store: bare SQLite loop vs group commit"
build/bench/store_bench
echo "== bench/api: flow-log mixes"
BUILD=build bench/api/flowlog_run.sh
echo "== bench/logstore: PutLogs vs a bare SQLite loop, top-10 and histogram queries, bytes per record"
BUILD=build bench/logstore/run.sh
echo "== bench/meter: sagflow meter vs softflowd"
bench/meter/run.sh
echo "== bench/pg: serve on PostgreSQL vs pgbench, cached reads vs SQLite, 2 nodes vs 1, recovery"
BUILD=build bench/pg/run.sh
