#!/usr/bin/env bash
# Flow-meter benchmark: one generated capture (>= 1 M packets, >= 50 k
# concurrent flows) replayed by `sagflow meter` and by softflowd into nfcapd,
# one after the other. Prints packets/s for both, their ratio, peak RSS and
# bytes per tracked flow, and what each collector received.
#   PACKETS=N FLOWS=N    capture size (default 2000000 packets, 60000 flows)
#   REPEAT=N             rounds, best run of each tool reported (default 5)
#   VERSION=V5|V9|V10    export version for both tools (default V10)
#   BUILD=dir            release build of sagflow (default build-meter-release)
set -euo pipefail
cd "$(dirname "$0")/../.."
PACKETS=${PACKETS:-2000000}
REPEAT=${REPEAT:-5} # rounds; each tool's fastest run counts (the machine may be shared)
FLOWS=${FLOWS:-60000}
VERSION=${VERSION:-V10}
BUILD=${BUILD:-build-meter-release}
MAX_FLOWS=131072 # both tools get the same table size (softflowd's default is 8192)
SOFTFLOWD_V=$([ "$VERSION" = V5 ] && echo 5 || ([ "$VERSION" = V9 ] && echo 9 || echo 10))

scripts/deps.sh bench >/dev/null
if [ ! -f "$BUILD/build.ninja" ]; then
	meson setup "$BUILD" --buildtype=release -Db_ndebug=true >/dev/null
fi
ninja -C "$BUILD" sagflow >/dev/null
BIN=$(cd "$BUILD" && pwd)/sagflow

work=$(mktemp -d)
nfpid=
cleanup() {
	[ -n "$nfpid" ] && kill "$nfpid" 2>/dev/null && wait "$nfpid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

echo "generating $PACKETS packets over $FLOWS concurrent flows..."
node tests/e2e/lib/pcapgen.mjs bench "$work/bench.pcap" "$PACKETS" "$FLOWS" >"$work/gen.json"
# Same length, few flows: the RSS difference is what the extra flows cost.
BASE_FLOWS=1000
node tests/e2e/lib/pcapgen.mjs bench "$work/base.pcap" "$PACKETS" "$BASE_FLOWS" >/dev/null
PORT=$(node -e 'const s=require("dgram").createSocket("udp4");s.bind(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')

start_nfcapd() {
	rm -rf "$work/nf" && mkdir "$work/nf"
	nfcapd -b 127.0.0.1 -p "$PORT" -w "$work/nf" -B 33554432 >/dev/null 2>&1 &
	nfpid=$!
	for _ in $(seq 100); do grep -qi ":$(printf %04X "$PORT") " /proc/net/udp && return; sleep 0.05; done
	echo "nfcapd did not start" >&2
	exit 1
}

# Stops nfcapd (it writes its file on exit) and leaves nfdump's totals in NF.
stop_nfcapd() {
	sleep 1
	kill "$nfpid" && wait "$nfpid" 2>/dev/null || true
	nfpid=
	NF=$(nfdump -R "$work/nf" -I 2>&1 | awk -F': ' '/^(Flows|Packets|Sequence failures):/{printf "%s=%s ", $1, $2}') || true
}

# Runs a command under GNU time; sets ELAPSED and CPU (user+sys) in seconds and
# RSS_KB; the command's stderr is kept in $work/err.
timed() {
	/usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" >"$work/out" 2>"$work/err"
	read -r ELAPSED USER SYS RSS_KB <"$work/time"
	CPU=$(awk -v u="$USER" -v s="$SYS" 'BEGIN{printf "%.2f", u + s}')
}

meter=("$BIN" meter --collector "127.0.0.1:$PORT" --netflow-version "$VERSION" --max-flows "$MAX_FLOWS" --read)
softflowd=(softflowd -d -v "$SOFTFLOWD_V" -n "127.0.0.1:$PORT" -m "$MAX_FLOWS" -r)

timed "${meter[@]}" "$work/base.pcap"
M_BASE_KB=$RSS_KB
timed "${softflowd[@]}" "$work/base.pcap"
S_BASE_KB=$RSS_KB

# REPEAT rounds, each running both tools into a fresh nfcapd, interleaved so
# both see the same background load; the fastest run of each tool counts.
# run_one TAG CMD...: sets <TAG>_S, _CPU, _KB, _NF (nfdump's view) when faster.
run_one() {
	local tag=$1
	shift
	start_nfcapd
	timed "$@"
	stop_nfcapd
	local best="${tag}_S"
	if [ -z "${!best:-}" ] || awk -v a="$ELAPSED" -v b="${!best}" 'BEGIN{exit !(a < b)}'; then
		printf -v "${tag}_S" %s "$ELAPSED"
		printf -v "${tag}_CPU" %s "$CPU"
		printf -v "${tag}_KB" %s "$RSS_KB"
		printf -v "${tag}_NF" %s "$NF"
		cp "$work/err" "$work/$tag.err"
	fi
}

M_S= S_S=
for round in $(seq "$REPEAT"); do
	echo "round $round of $REPEAT..."
	run_one M "${meter[@]}" "$work/bench.pcap"
	run_one S "${softflowd[@]}" "$work/bench.pcap"
done
PEAK=$(awk -F': ' '/^peak table size/{print $2}' "$work/M.err")
STRUCT=$(awk -F': ' '/^table bytes per flow/{print $2}' "$work/M.err")

node -e '
const [pk, fl, ms, mc, mkb, mbase, peak, st, ss, sc, skb, sbase, mnf, snf, bfl] = process.argv.slice(1);
const r = (x) => Math.round(x).toLocaleString("en-US");
console.log(`capture: ${r(pk)} packets, ${r(fl)} concurrent flows; sagflow peak table ${r(peak)} records`);
console.log(`sagflow meter : ${r(pk / ms)} packets/s wall (${ms} s), ${r(pk / mc)} packets/s of CPU (${mc} s); peak RSS ${r(mkb)} kB; ${((mkb - mbase) * 1024 / (peak - bfl)).toFixed(1)} bytes/flow measured (RSS growth from ${r(bfl)} to ${r(peak)} flows), ${st} bytes/flow reserved by the table`);
console.log(`softflowd     : ${r(pk / ss)} packets/s wall (${ss} s), ${r(pk / sc)} packets/s of CPU (${sc} s); peak RSS ${r(skb)} kB; ${((skb - sbase) * 1024 / (fl - bfl)).toFixed(1)} bytes/flow measured`);
console.log(`ratio         : ${(ss / ms).toFixed(2)}x wall, ${(sc / mc).toFixed(2)}x CPU`);
console.log(`nfcapd got    : sagflow ${mnf}| softflowd ${snf}`);
' "$PACKETS" "$FLOWS" "$M_S" "$M_CPU" "$M_KB" "$M_BASE_KB" "$PEAK" "$STRUCT" "$S_S" "$S_CPU" "$S_KB" "$S_BASE_KB" "$M_NF" "$S_NF" "$BASE_FLOWS"
