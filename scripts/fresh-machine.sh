#!/usr/bin/env bash
# The README's two commands on a clean Debian 12: builds a minbase bookworm root
# with debootstrap, clones this repository's committed HEAD (or REF) into it
# and, chrooted there, runs `make run` (checks /healthz and the pop-core call it
# prints), stops it, then runs `make test` and reports its final line.
#   scripts/fresh-machine.sh [REF]
#   FRESH_CACHE=DIR  reuse (or make) a debootstrap tarball in DIR, e.g.
#                    /var/cache/sagflow-fresh: skips the downloads of the base
#                    system, the root is still unpacked fresh (default: none)
#   FRESH_KEEP=1     keep the root afterwards (its path is printed)
#   FRESH_TMP=DIR    where the root goes (default /var/tmp)
# Needs root, ~2 GB of disk and the Debian mirror and npm registry this machine
# uses. Exits non-zero on any failure; stops and unmounts what it started.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
ref=${1:-HEAD}
suite=bookworm

[ "$(id -u)" -eq 0 ] || { echo "fresh-machine: needs root (debootstrap, chroot, mounts)" >&2; exit 2; }
sha=$(git -C "$repo" rev-parse --verify "$ref^{commit}")
if [ "$ref" = HEAD ] && [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
	echo "fresh-machine: note: uncommitted changes are not tested (the root gets $sha)" >&2
fi
command -v debootstrap >/dev/null || "$repo/scripts/deps.sh" fresh

# A signal's trap runs inside the redirections of the step it interrupts
# (e.g. `job ... >"$testlog"`): the cleanup writes to the script's own
# stdout/stderr, saved here.
exec 3>&1 4>&2
root=$(mktemp -d "${FRESH_TMP:-/var/tmp}/sagflow-fresh.XXXXXX")
chmod 0755 "$root" # apt's _apt user must reach the root's /var/lib/apt/lists
mounts=()
t_start=$SECONDS t_phase=$SECONDS
timings=()
phase_done() {
	timings+=("$(printf '%-28s %5ds' "$1" $((SECONDS - t_phase)))")
	echo "== $1: $((SECONDS - t_phase)) s"
	t_phase=$SECONDS
}
report() {
	echo "== fresh-machine summary ($sha, root $root)"
	printf '  %s\n' "${timings[@]}"
	printf '  %-28s %5ds\n' total $((SECONDS - t_start))
}

# Every process whose root directory is inside the chroot was started by us.
chroot_pids() {
	local p r
	for p in /proc/[0-9]*; do
		r=$(readlink "$p/root" 2>/dev/null) || continue
		case "$r" in "$root" | "$root"/*) echo "${p#/proc/}" ;; esac
	done
}
# Long steps run as their own process group, waited for with `wait`, so that
# a signal to this script is handled at once and can end the whole group.
jobs_started=()
job() {
	setsid "$@" &
	jobs_started+=($!)
	wait $!
}
cleanup() {
	local rc=$? pids i
	trap - EXIT INT TERM
	exec 1>&3 2>&4
	set +e # clean up as far as possible whatever fails
	[ "$rc" -eq 0 ] || echo "fresh-machine: failed (exit $rc); stopping what it started" >&2
	for i in "${jobs_started[@]}"; do kill -TERM -- -"$i" 2>/dev/null || true; done
	pids=$(chroot_pids)
	if [ -n "$pids" ]; then
		kill -TERM $pids 2>/dev/null || true
		sleep 2
		pids=$(chroot_pids)
		[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
	fi
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		umount -R "${mounts[i]}" 2>/dev/null || umount -R -l "${mounts[i]}"
	done
	rm -f "$root.debootstrap.log"
	if grep -q " $root[/ ]" /proc/mounts; then
		echo "fresh-machine: still mounted under $root; not removing it" >&2
		rc=1
	elif [ "${FRESH_KEEP:-0}" = 1 ]; then
		echo "fresh-machine: root kept in $root" >&2
	else
		rm -rf "$root"
	fi
	[ ${#timings[@]} -gt 0 ] && report
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "fresh-machine: interrupted" >&4; exit 130' INT TERM

# The Debian mirror this machine uses (first URI of its sources), so the root
# fetches from where this machine can reach.
mirror=$(grep -hsoE '^URIs: *[^ ]+/debian/?$' /etc/apt/sources.list.d/*.sources | head -1 | awk '{print $2}')
[ -n "$mirror" ] || mirror=$(grep -hsoE '^deb +[^ ]+/debian/? ' /etc/apt/sources.list | head -1 | awk '{print $2}')
mirror=${mirror:-http://deb.debian.org/debian}

echo "== debootstrap --variant=minbase $suite into $root ($mirror)"
if [ -n "${FRESH_CACHE:-}" ]; then
	tarball=$FRESH_CACHE/$suite-minbase.tgz
	mkdir -p "$FRESH_CACHE"
	[ -f "$tarball" ] || job debootstrap --variant=minbase --make-tarball="$tarball" "$suite" "$root/.mk" "$mirror" >/dev/null
	rm -rf "$root/.mk"
	set -- --unpack-tarball="$tarball"
fi
job debootstrap --variant=minbase "$@" "$suite" "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
	{ tail -n 30 "$root.debootstrap.log"; exit 1; }
phase_done debootstrap

# This machine's way out: apt sources and the apt settings that change how
# packages are fetched (proxies, snapshot mirrors' validity), DNS, the site's
# extra CAs (a TLS-intercepting egress proxy; ca-certificates, which nodejs
# pulls in, adds them to /etc/ssl/certs inside) and npm's configuration. None
# of this is sagflow's business on a real machine, where it is already set.
cp /etc/resolv.conf "$root/etc/resolv.conf"
# debootstrap wrote its own sources.list; this machine's set replaces it.
rm -f "$root/etc/apt/sources.list"
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$root/etc/apt/"
cp -a /etc/apt/sources.list.d/. "$root/etc/apt/sources.list.d/"
for f in /etc/apt/apt.conf.d/*; do
	grep -qiE '^ *Acquire::' "$f" && ! grep -qiE 'Invoke|Pre-Install' "$f" && cp "$f" "$root/etc/apt/apt.conf.d/"
done
mkdir -p "$root/usr/local/share/ca-certificates"
cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
[ -f /etc/npmrc ] && cp /etc/npmrc "$root/etc/npmrc"
[ -f "$HOME/.npmrc" ] && install -m 0600 "$HOME/.npmrc" "$root/root/.npmrc"
# A chroot is not a booted machine: keep package scripts from starting
# services (nfdump's nfcapd, nginx) in it, as every chroot builder does.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"

# The commit under test, cloned as a user would clone it (no network here:
# from this repository).
git clone -q --no-checkout "$repo" "$root/root/sagflow"
git -C "$root/root/sagflow" checkout -q --detach "$sha"

mnt() { mount "$@" && mounts+=("${@: -1}"); }
mnt -t proc proc "$root/proc"
mnt -t sysfs sysfs "$root/sys"
mnt --rbind /dev "$root/dev" # with /dev/pts and /dev/shm
mount --make-rslave "$root/dev"
mnt -t tmpfs tmpfs "$root/run"
phase_done "root prepared"

# The environment of a fresh login, plus this machine's proxy and npm settings.
envs=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 TERM=dumb)
while IFS= read -r v; do envs+=("$v"); done < <(env | grep -E '^((HTTPS?|NO|ALL)_PROXY|(https?|no|all)_proxy|npm_config_[a-z_]+|NODE_EXTRA_CA_CERTS)=' || true)
in_root() { job chroot "$root" /usr/bin/env -i "${envs[@]}" /bin/bash -c "$1"; }

# The README's prerequisite on a fresh machine (git is not needed here: the
# clone was made from outside).
in_root 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends make >/dev/null'
phase_done "install make"

# `make run` shares this machine's network (a chroot has no namespace of its
# own), so it gets a free port rather than 8080, which others may hold.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
runlog=$root/root/make-run.log
setsid chroot "$root" /usr/bin/env -i "${envs[@]}" SAGFLOW_LISTEN="127.0.0.1:$port" \
	/bin/bash -c 'cd /root/sagflow && exec make run' >"$runlog" 2>&1 </dev/null &
runpid=$!
jobs_started+=($runpid)
ready=0
for _ in $(seq 1800); do # make run installs, builds, then serves: up to 30 min
	if grep -q '^listening on ' "$runlog" || curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then
		ready=1 && break
	fi
	kill -0 "$runpid" 2>/dev/null || break
	sleep 1
done
if [ $ready -eq 0 ]; then
	tail -n 60 "$runlog"
	echo "fresh-machine: make run did not start serving"
	exit 1
fi
phase_done "make run (until serving)"

health=$(curl -fsS --retry 5 --retry-connrefused "http://127.0.0.1:$port/healthz")
echo "healthz: $health"
# The example call exactly as make run printed it, run where it says.
call=$(grep -m1 -E '^ +cd tests/e2e && node -e ' "$runlog" | sed -E 's/^ +//')
[ -n "$call" ] || { cat "$runlog"; echo "fresh-machine: make run printed no example call"; exit 1; }
answer=$(in_root "cd /root/sagflow && $call") || { echo "$answer"; echo "fresh-machine: the example call failed"; exit 1; }
echo "example call: ${answer:0:160}"
echo "$answer" | grep -q '"Regions"' || { echo "fresh-machine: the example call's answer has no Regions"; exit 1; }
kill -INT -- -"$runpid"
wait "$runpid" || true
! curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null ||
	{ echo "fresh-machine: make run still serves after Ctrl-C"; exit 1; }
phase_done "make run checks"

testlog=$root/root/make-test.log
: >"$testlog"
# Progress: the failures and the final line, as make test prints them.
tail -n +1 -f --pid=$$ "$testlog" |
	grep --line-buffered -E '^(FAILED|not ok)|^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT)|^\[ +(ERROR|LINE|FAILED) +\]|^[0-9]+ passed, [0-9]+ failed$' &
rc=0
in_root 'cd /root/sagflow && make test' >"$testlog" 2>&1 || rc=$?
sleep 1
phase_done "make test"
final=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$testlog" | tail -1)
echo "make test: ${final:-no final line} (exit $rc)"
if [ "$rc" -ne 0 ] || [ -z "$final" ]; then
	# The failures with their reasons (Node's test runner marks them ✖),
	# then the end of the log: the root is removed on exit.
	grep -E -A15 '^ *✖' "$testlog" | head -n 150
	tail -n 80 "$testlog"
	exit 1
fi
du -shx "$root" | awk '{print "root size: " $1}'
