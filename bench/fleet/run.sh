#!/usr/bin/env bash
# bench/fleet: N devices (default 20,000) against one release `sagflow serve`:
#   1. long-poll at rest: serve's CPU and memory with every device held;
#   2. a ModifyFlowLogAttribute: time until the last device has applied it (p100);
#   3. the same fleet polling every 5 s: syncs/s, p99, serve's CPU.
# Needs: ulimit -Hn above N + 300 for serve (the simulator splits itself into
# processes of at most 10,000 devices each). Results: docs/benchmarks.md.
#   N=20000 bench/fleet/run.sh        (THREADS=serve threads, REST=seconds at rest)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-20000}
THREADS=${THREADS:-$(nproc)}
REST=${REST:-20}
POLL_SECONDS=${POLL_SECONDS:-30}
BIN=${BIN:-build/sagflow}
SIM=${SIM:-build/bench/fleet_sim}
PER_SIM=10000
work=$(mktemp -d /tmp/sagflow-fleet-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"; }
trap cleanup EXIT

held=$((N + 200))
conns=$(( (held * 4 + 2) / 3 + 64 ))
export SAGFLOW_ACCESS_KEY_ID=fleetbench SAGFLOW_ACCESS_KEY_SECRET=fleetbenchsecret
"$BIN" serve --listen 127.0.0.1:0 --db "$work/fleet.db" --threads "$THREADS" \
	--rate-limit key=1000000 --max-connections "$conns" --max-held-syncs "$held" \
	--metrics-listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.log" &
spid=$!
pids+=("$spid")
for _ in $(seq 100); do grep -q '^listening on' "$work/serve.out" && break; sleep 0.1; done
port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$work/serve.out")
mport=$(sed -n 's/^metrics on 127.0.0.1:\([0-9]*\)$/\1/p' "$work/serve.out")
url="http://127.0.0.1:$port"
node=(node bench/fleet/fleet.mjs)
key=(fleetbench fleetbenchsecret)

metric() { curl -s "http://127.0.0.1:$mport/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
cpu_s() { awk '{print ($14 + $15) / 100}' "/proc/$spid/stat"; }
rss_mb() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$spid/status"; }

# sims MODE SECONDS EXTRA...: one simulator process per PER_SIM devices.
sims() {
	local mode=$1 secs=$2; shift 2
	split -l "$PER_SIM" -d "$work/devices.txt" "$work/part."
	local i=0
	for f in "$work"/part.*; do
		"$SIM" --port "$port" --devices "$f" --mode "$mode" --seconds "$secs" --threads 2 "$@" \
			>"$work/sim.$mode.$i.json" 2>"$work/sim.$mode.$i.log" &
		pids+=("$!")
		i=$((i + 1))
	done
}

echo "provisioning $N devices..." >&2
t=$(date +%s)
"${node[@]}" provision "$url" "${key[@]}" "$N" "$work"
sims once 600
wait "${pids[@]:1}" 2>/dev/null || true
"${node[@]}" associate "$url" "${key[@]}" "$work"
echo "provisioned in $(( $(date +%s) - t )) s" >&2

# 1-2: long-poll.
sims longpoll $((REST + 40)) --wait 60
for _ in $(seq 600); do [ "$(metric sagflow_held_syncs)" = "$N" ] && break; sleep 0.5; done
echo "held: $(metric sagflow_held_syncs) of $N" >&2
c0=$(cpu_s); sleep "$REST"; c1=$(cpu_s)
rest_cpu=$(awk -v a="$c0" -v b="$c1" -v s="$REST" 'BEGIN {printf "%.1f", 100 * (b - a) / s}')
rest_rss=$(rss_mb)
rest_conns=$(metric sagflow_connections)
AFTER=${AFTER:-10}
mod=$("${node[@]}" modify "$url" "${key[@]}" "$work" 2056 2>"$work/modify.err") || { echo "modify failed: $(cat "$work/modify.err")" >&2; }
sleep "$AFTER"
for p in $(jobs -p); do [ "$p" = "$spid" ] || kill -TERM "$p" 2>/dev/null || true; done
sleep 2
t0=$(echo "$mod" | sed 's/.*"modify_rt_ms":\([0-9]*\).*/\1/')
cat "$work"/sim.longpoll.*.json | awk -v t0="$t0" '
	{ match($0, /"devices":[0-9]+/); d += substr($0, RSTART + 10, RLENGTH - 10)
	  match($0, /"changed":\{"devices":[0-9]+/); a += substr($0, RSTART + 21, RLENGTH - 21)
	  match($0, /"last_rt_ms":-?[0-9]+/); l = substr($0, RSTART + 13, RLENGTH - 13); if (l > last) last = l
	  match($0, /"errors":[0-9]+/); e += substr($0, RSTART + 9, RLENGTH - 9) }
	END { printf "longpoll: %d devices, %d applied the Modify, last after %d ms (p100), errors %d\n", d, a, last - t0, e }'
echo "longpoll at rest: serve CPU ${rest_cpu}% of one core, RSS ${rest_rss} MiB, ${rest_conns} connections"
grep -h . "$work"/sim.longpoll.*.json

# 3: plain 5 s polling, once the long-poll connections are gone (a held sync
# whose client left is noticed within 5 s).
for _ in $(seq 120); do [ "$(metric sagflow_connections)" -lt 100 ] && break; sleep 0.5; done
sims poll "$POLL_SECONDS" --interval 5
sleep 5
c0=$(cpu_s); sleep $((POLL_SECONDS - 10)); c1=$(cpu_s)
poll_cpu=$(awk -v a="$c0" -v b="$c1" -v s="$((POLL_SECONDS - 10))" 'BEGIN {printf "%.1f", 100 * (b - a) / s}')
sleep 7
echo "poll 5 s: serve CPU ${poll_cpu}% of one core, RSS $(rss_mb) MiB"
grep -h . "$work"/sim.poll.*.json
