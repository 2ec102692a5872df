#!/usr/bin/env bash
# Flow-meter benchmark: one generated capture (>= 1 M packets, >= 50 k
# concurrent flows) replayed by `sagflow meter` and by softflowd into nfcapd,
# one after the other. Prints packets/s for both, their ratio, peak RSS and
# bytes per tracked flow, and what each collector received.
#   PACKETS=N FLOWS=N    capture size (default 1200000 packets, 60000 flows)
#   VERSION=V5|V9|V10    export version for both tools (default V10)
#   BUILD=dir            release build of sagflow (default build-meter-release)
set -euo pipefail
cd "$(dirname "$0")/../.."
PACKETS=${PACKETS:-1200000}
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
node tests/e2e/lib/pcapgen.mjs bench "$work/tiny.pcap" 10 10 >/dev/null
PORT=$(node -e 'const s=require("dgram").createSocket("udp4");s.bind(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')

start_nfcapd() {
	rm -rf "$work/nf" && mkdir "$work/nf"
	nfcapd -b 127.0.0.1 -p "$PORT" -w "$work/nf" -B 33554432 >/dev/null 2>&1 &
	nfpid=$!
	for _ in $(seq 100); do grep -qi ":$(printf %04X "$PORT") " /proc/net/udp && return; sleep 0.05; done
	echo "nfcapd did not start" >&2
	exit 1
}

stop_nfcapd() {
	sleep 1
	kill "$nfpid" && wait "$nfpid" 2>/dev/null || true
	nfpid=
	nfdump -R "$work/nf" -I | awk -F': ' '/^(Flows|Packets|Sequence failures):/{printf "%s=%s ", $1, $2}'
}

# Runs a command under GNU time; sets ELAPSED (s) and RSS_KB; stderr kept in $work/err.
timed() {
	/usr/bin/time -v -o "$work/time" "$@" >"$work/out" 2>"$work/err"
	ELAPSED=$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$work/time")
	RSS_KB=$(awk -F': ' '/Maximum resident set size/{print $2}' "$work/time")
}

meter=("$BIN" meter --collector "127.0.0.1:$PORT" --netflow-version "$VERSION" --max-flows "$MAX_FLOWS" --read)
softflowd=(softflowd -d -v "$SOFTFLOWD_V" -n "127.0.0.1:$PORT" -m "$MAX_FLOWS" -r)

timed "${meter[@]}" "$work/tiny.pcap"
M_BASE_KB=$RSS_KB
timed "${softflowd[@]}" "$work/tiny.pcap"
S_BASE_KB=$RSS_KB

start_nfcapd
timed "${meter[@]}" "$work/bench.pcap"
M_S=$ELAPSED M_KB=$RSS_KB
PEAK=$(awk -F': ' '/^peak table size/{print $2}' "$work/err")
STRUCT=$(awk -F': ' '/^table bytes per flow/{print $2}' "$work/err")
M_NF=$(stop_nfcapd)

start_nfcapd
timed "${softflowd[@]}" "$work/bench.pcap"
S_S=$ELAPSED S_KB=$RSS_KB
S_NF=$(stop_nfcapd)

node -e '
const [pk, fl, ms, mkb, mbase, peak, st, ss, skb, sbase, mnf, snf] = process.argv.slice(1);
const mp = pk / ms, sp = pk / ss;
const r = (x) => Math.round(x).toLocaleString("en-US");
console.log(`capture: ${r(pk)} packets, ${r(fl)} concurrent flows; peak table ${r(peak)} records`);
console.log(`sagflow meter : ${r(mp)} packets/s (${ms} s), peak RSS ${r(mkb)} kB, ${((mkb - mbase) * 1024 / peak).toFixed(1)} bytes/flow measured (RSS over the tiny-capture baseline), ${st} bytes/flow reserved by the table`);
console.log(`softflowd     : ${r(sp)} packets/s (${ss} s), peak RSS ${r(skb)} kB, ${((skb - sbase) * 1024 / fl).toFixed(1)} bytes/flow measured`);
console.log(`ratio         : ${(mp / sp).toFixed(2)}x softflowd packets/s`);
console.log(`nfcapd received: sagflow ${mnf}| softflowd ${snf}`);
' "$PACKETS" "$FLOWS" "$M_S" "$M_KB" "$M_BASE_KB" "$PEAK" "$STRUCT" "$S_S" "$S_KB" "$S_BASE_KB" "$M_NF" "$S_NF"
