#!/usr/bin/env bash
# scripts/pg-test.sh [--optional] CMD...: runs CMD beside a private, throwaway
# PostgreSQL cluster (spec scale-out.md §5), then stops and removes it — also
# when CMD fails and on SIGINT/SIGTERM.
#
# The cluster: initdb in a temporary folder (owned by the `postgres` system
# user when run as root, since initdb and postgres refuse root), --locale=C -E
# UTF8, trust authentication for superuser postgres, no TCP (listen_addresses
# ''), a Unix socket in the folder, fsync and synchronous_commit on (the tests
# check durability), max_connections for several serves plus a benchmark.
# CMD sees:
#   SAGFLOW_TEST_PG       a libpq URI of the superuser on database postgres,
#                         postgresql:///postgres?host=DIR/sock&user=postgres
#   SAGFLOW_TEST_PG_DATA  the data directory
#   SAGFLOW_TEST_PG_CTL   an executable: pg_ctl on this cluster as its owner
#                         ("$SAGFLOW_TEST_PG_CTL" stop -m immediate; ... start),
#                         run as root or as the owner (it switches when root)
#   SAGFLOW_TEST_PG_BIN   the PostgreSQL bin directory (psql, pgbench)
# Without the PostgreSQL server binaries it says so and exits 3, or with
# --optional runs CMD without these variables (the PG tests then skip).
set -uo pipefail
PG_TEST_MAX_CONNECTIONS=400 # 3 serves x (threads + writers + 2) + pgbench -c 64, with room
PG_TEST_STOP_WAIT_S=30       # CMD's grace after SIGTERM before SIGKILL

optional=0
[ "${1:-}" = --optional ] && { optional=1; shift; }
[ $# -gt 0 ] || { echo "usage: $0 [--optional] CMD..." >&2; exit 2; }

find_bindir() {
	local d
	for d in "$(pg_config --bindir 2>/dev/null)" /usr/lib/postgresql/15/bin; do
		[ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] &&
			{ echo "$d"; return 0; }
	done
	return 1
}

if ! bindir=$(find_bindir); then
	echo "pg-test: the PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed" \
		"(looked in \`pg_config --bindir\` and /usr/lib/postgresql/15/bin); on Debian:" \
		"apt-get install postgresql (scripts/deps.sh test does it)" >&2
	[ $optional -eq 1 ] || exit 3
	echo "pg-test: running without PostgreSQL: the PostgreSQL tests skip" >&2
	exec "$@"
fi

# As root the cluster belongs to `postgres`; otherwise to the caller.
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
	id postgres >/dev/null 2>&1 || { echo "pg-test: running as root needs the system user postgres (Debian's postgresql package makes it)" >&2; exit 3; }
	as_owner=(runuser -u postgres --)
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/sagflow-pg.XXXXXX") || exit 3
child=
cleanup() {
	trap - EXIT INT TERM
	if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
		kill -TERM "$child" 2>/dev/null
		for _ in $(seq $((PG_TEST_STOP_WAIT_S * 10))); do
			kill -0 "$child" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$child" 2>/dev/null
	fi
	if [ -f "$dir/data/postmaster.pid" ]; then
		"${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

mkdir -p "$dir/sock"
[ ${#as_owner[@]} -gt 0 ] && chown -R postgres: "$dir"
chmod 700 "$dir"

fail() {
	echo "pg-test: $*" >&2
	[ -f "$dir/log" ] && tail -n 30 "$dir/log" >&2
	exit 3
}

"${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -A trust -U postgres --locale=C -E UTF8 \
	>"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; fail "initdb failed"; }
cat >>"$dir/data/postgresql.conf" <<CONF
# scripts/pg-test.sh: private, Unix socket only, durable.
listen_addresses = ''
unix_socket_directories = '$dir/sock'
max_connections = $PG_TEST_MAX_CONNECTIONS
fsync = on
synchronous_commit = on
full_page_writes = on
max_wal_size = 1GB
CONF
# pg_ctl for the tests (crash tests stop and start it): one executable path,
# callable as root (it switches to the owner) or as the owner itself (a test
# may switch first); later -D/-l arguments override these.
owner_switch=
[ ${#as_owner[@]} -gt 0 ] && owner_switch='[ "$(id -u)" -eq 0 ] && exec runuser -u postgres -- "$0" "$@"'
cat >"$dir/pg_ctl" <<CTL
#!/bin/sh
$owner_switch
exec "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" "\$@"
CTL
chmod 755 "$dir/pg_ctl"
"$dir/pg_ctl" -w -t 60 start >/dev/null || fail "the server did not start"

export SAGFLOW_TEST_PG="postgresql:///postgres?host=$dir/sock&user=postgres"
export SAGFLOW_TEST_PG_DATA="$dir/data"
export SAGFLOW_TEST_PG_CTL="$dir/pg_ctl"
export SAGFLOW_TEST_PG_BIN="$bindir"
"$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$SAGFLOW_TEST_PG" -c 'SELECT 1' >/dev/null ||
	fail "cannot connect to $SAGFLOW_TEST_PG"
echo "pg-test: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on $dir/sock" >&2

# CMD in the background so that a signal reaches this script at once (bash
# runs traps only between commands); stdin passed on explicitly.
"$@" <&0 &
child=$!
rc=0
wait "$child" || rc=$?
child=
exit "$rc"
