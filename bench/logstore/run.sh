#!/usr/bin/env bash
# bench/logstore: the log store against the performance goals of issue 10, on a
# release `sagflow serve` with a fresh database and logs directory.
#   RECORDS=10000000 ROUNDS=3 CONNS=4 REPS=5 SEED=1 BUILD=build bench/logstore/run.sh
# Ingest (PutLogs, lz4 LogGroups of 4,096 records with __pack_id__, CONNS
# keep-alive connections) interleaved with a bare SQLite loop inserting the
# same rows in the same directory; then top-10 srcaddr by sum(bytes) over the
# day and the last hour and a 96-bucket GetHistograms of the day, REPS times
# each, every answer checked against sums computed from the generated records;
# then the bytes on disk per record: the logstore's directory while serve runs
# and after it stopped (its WAL checkpointed and removed). JSON lines on stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BIN=${SAGFLOW_BIN:-$BUILD/sagflow}
BENCH=${LS_BENCH:-$BUILD/bench/ls_bench}
RECORDS=${RECORDS:-10000000}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/sagflow-lsbench-XXXXXX")
source bench/api/lib.sh
start_serve --logs-dir "$work/logs"
echo "{\"machine\":\"$(nproc) cores, $(df -T "$work" | awk 'NR==2{print $2}') at $work\",\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"commit\":\"$(git rev-parse --short HEAD)$(git diff --quiet || echo +dirty)\"}"
"$BENCH" --port "$port" --akid benchkey --secret benchsecret --bare-dir "$work" \
	--records "$RECORDS" --rounds "${ROUNDS:-3}" --conns "${CONNS:-4}" --reps "${REPS:-5}" --seed "${SEED:-1}"
echo "{\"load_after\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
disk() { du -s -B1 "$work/logs" | cut -f1; }
live=$(disk)
stop_serve
stopped=$(disk)
bare=$(du -s -B1 -c "$work"/bare.db* | tail -1 | cut -f1)
echo "{\"disk_bytes_live\":$live,\"disk_bytes_stopped\":$stopped,\"bytes_per_record_live\":$(( live / RECORDS )),\"bytes_per_record\":$(( stopped / RECORDS )),\"bare_bytes_per_record\":$(( bare / RECORDS )),\"files\":\"$(ls "$work"/logs/* | tr '\n' ' ')\"}"
