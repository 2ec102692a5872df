#!/usr/bin/env bash
# Installs what sagflow needs on a Debian machine, and only what is missing.
#   scripts/deps.sh build   - compiler, meson, libraries, Node.js + the console's
#                             bundler (console/package-lock.json)
#   scripts/deps.sh run     - build + Node.js and the npm clients (make run's example call)
#   scripts/deps.sh test    - build + cmocka, clang/libFuzzer, collectors, npm clients,
#                             systemd-analyze (checks contrib/systemd), PostgreSQL
#                             (scripts/pg-test.sh runs a private cluster for make test)
#   scripts/deps.sh bench   - test + nginx, wrk, softflowd
#   scripts/deps.sh fresh   - what scripts/fresh-machine.sh needs on the host
set -euo pipefail
cd "$(dirname "$0")/.."
level=${1:-build}

build_pkgs=(gcc make pkg-config meson ninja-build libmicrohttpd-dev libgnutls28-dev libssl-dev
	libjansson-dev libsqlite3-dev libpcap-dev libpq-dev
	libprotobuf-c-dev protobuf-c-compiler liblz4-dev zlib1g-dev libzstd-dev libcurl4-openssl-dev
	nodejs npm)
test_pkgs=(libcmocka-dev clang libclang-rt-14-dev nodejs npm nfdump tshark iproute2 procps
	openssl curl prometheus systemd chromium postgresql)
bench_pkgs=(nginx-light wrk softflowd time)
fresh_pkgs=(debootstrap git curl python3)

want=("${build_pkgs[@]}")
case "$level" in
build) ;;
run) ;;
test) want+=("${test_pkgs[@]}") ;;
bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
fresh) want=("${fresh_pkgs[@]}") ;;
*) echo "usage: $0 build|run|test|bench|fresh" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
	# node and npm may come from outside Debian (the machine image has them).
	if [ "$p" = nodejs ] && command -v node >/dev/null; then continue; fi
	if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}" >&2
	SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
	# tshark asks whether non-root users may capture unless told not to.
	echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
	# flock: other builds on a shared machine may run apt-get at the same time.
	$SUDO flock /tmp/apt.lock env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$SUDO flock /tmp/apt.lock env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
	# prometheus is here for promtool (tests/e2e/metrics.test.mjs). Under systemd
	# its package starts a server on every interface: stop what we just installed.
	if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
		$SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
	fi
	# postgresql makes and starts a cluster "main" on localhost:5432; the tests
	# use their own (scripts/pg-test.sh), so stop the one we just installed.
	if [[ " ${missing[*]} " == *" postgresql "* ]] && [ -d /run/systemd/system ]; then
		$SUDO systemctl disable --now postgresql >/dev/null 2>&1 || true
	fi
fi

# The console's bundler (esbuild, Preact, htm, uPlot) runs at build time
# (src/console/meson.build), so every level but fresh needs it.
if [ "$level" != fresh ]; then
	if [ ! -d console/node_modules ] || [ console/package-lock.json -nt console/node_modules/.package-lock.json ]; then
		(cd console && npm ci --no-audit --no-fund --loglevel=error) >&2
	fi
fi

if [ "$level" != build ] && [ "$level" != fresh ] && [ -f tests/e2e/package-lock.json ]; then
	if [ ! -d tests/e2e/node_modules ] || [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.package-lock.json ]; then
		(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error) >&2
	fi
fi
