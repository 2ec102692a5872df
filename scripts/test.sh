#!/usr/bin/env bash
# make test: installs what the tests need, builds the sanitizer build, runs every
# suite (unit, fuzz-corpus replay, brief libFuzzer runs, end-to-end) and ends with
# one line "N passed, N failed".
#   FUZZ_SECONDS=N   how long each libFuzzer target runs (default 10, 0 to skip)
#   E2E_FILTER=glob  run only matching tests/e2e/*.test.mjs files
#   E2E_BACKENDS="sqlite pg"  the store backends the e2e files run on, each file
#                    once per backend (default: both when PostgreSQL is there)
# Everything runs beside a private PostgreSQL cluster (scripts/pg-test.sh):
# unit tests see SAGFLOW_TEST_PG, and each e2e serve of the pg run gets a fresh
# database on it (tests/e2e/lib/server.mjs). Set SAGFLOW_TEST_PG yourself to
# use another server instead.
set -uo pipefail
cd "$(dirname "$0")/.."
TESTBUILD=${TESTBUILD:-build-test}
FUZZBUILD=${FUZZBUILD:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
fuzz_only=0
[ "${1:-}" = --fuzz-only ] && fuzz_only=1

passed=0 failed=0
note_fail() { failed=$((failed + 1)); echo "FAILED: $*"; }

scripts/deps.sh test || { echo "0 passed, 1 failed"; exit 1; }

# The cluster lives as long as this script: re-run under scripts/pg-test.sh.
if [ $fuzz_only -eq 0 ] && [ -z "${SAGFLOW_TEST_PG:-}" ] && [ -z "${SAGFLOW_PG_TEST_WRAPPED:-}" ]; then
	export SAGFLOW_PG_TEST_WRAPPED=1
	exec scripts/pg-test.sh --optional "$0" "$@"
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [ $fuzz_only -eq 0 ]; then
	# The test build: ASan + UBSan, no recovery, warnings are errors.
	if [ ! -f "$TESTBUILD/build.ninja" ]; then
		meson setup "$TESTBUILD" --buildtype=debug -Db_sanitize=address,undefined \
			-Db_lundef=false -Dc_args=-fno-sanitize-recover=all -Dtests=enabled >/dev/null ||
			{ echo "0 passed, 1 failed"; exit 1; }
	elif ! meson introspect --buildoptions "$TESTBUILD" 2>/dev/null | grep -q '"name": "tests", "value": "enabled"'; then
		# A test build configured before the option existed (or by hand):
		# make sure a missing cmocka is an error, not fewer tests.
		# (--reconfigure: `meson configure` refuses an option the build
		# directory has not seen yet.)
		meson setup --reconfigure "$TESTBUILD" -Dtests=enabled >/dev/null ||
			{ echo "0 passed, 1 failed"; exit 1; }
	fi
	if ! ninja -C "$TESTBUILD" >"$TESTBUILD.log" 2>&1; then
		cat "$TESTBUILD.log"
		echo "0 passed, 1 failed"
		exit 1
	fi

	# Unit tests and fuzz-corpus replays (meson's runner).
	out=$(meson test -C "$TESTBUILD" --print-errorlogs 2>&1)
	echo "$out" | grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Fail|Expected Fail|Unexpected Pass|Skipped|Timeout):' || true
	ok=$(echo "$out" | awk '/^Ok:/{print $2}')
	ko=$(echo "$out" | awk '/^(Fail|Timeout|Unexpected Pass):/{s+=$NF} END{print s+0}')
	passed=$((passed + ${ok:-0}))
	failed=$((failed + ${ko:-0}))
	# A failed unit test's own lines first (cmocka's ERROR/LINE/FAILED; its
	# log is long with the store's info lines), then the end of the output.
	[ "${ko:-0}" -gt 0 ] && { echo "$out" | grep -E '^\[ +(ERROR|LINE|FAILED) +\]' | head -n 40; echo "$out" | tail -n 80; }
fi

# Brief libFuzzer runs of every target (clang build with ASan + UBSan).
if [ "$FUZZ_SECONDS" != 0 ] && ls tests/fuzz/*.c 2>/dev/null | grep -qv replay.c; then
	if [ ! -f "$FUZZBUILD/build.ninja" ]; then
		CC=clang meson setup "$FUZZBUILD" --buildtype=debugoptimized -Dfuzz=true \
			-Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	fi
	if ninja -C "$FUZZBUILD" >"$FUZZBUILD.log" 2>&1; then
		for t in "$FUZZBUILD"/tests/fuzz/fuzz_*; do
			[ -f "$t" ] && [ -x "$t" ] || continue
			name=$(basename "$t")
			work=$(mktemp -d)
			if "$t" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=10 \
				-artifact_prefix="$work/" "$work" "tests/fuzz/corpus/$name" >"$work/log" 2>&1; then
				passed=$((passed + 1))
				echo "fuzz $name: $(grep -Eo 'Done [0-9]+ runs' "$work/log" | tail -1)"
			else
				tail -n 40 "$work/log"
				note_fail "fuzz $name (artifacts kept in $work)"
				continue
			fi
			rm -rf "$work"
		done
	else
		cat "$FUZZBUILD.log"
		note_fail "fuzz build"
	fi
fi

# The backends the e2e files run on: SQLite always; PostgreSQL with a cluster
# and a binary that has the backend (before the backend existed in the source
# tree its absence is a skip, after that a failure).
e2e_backends() {
	backends=${E2E_BACKENDS:-sqlite pg}
	[[ " $backends " == *" pg "* ]] || return 0
	if [ -z "${SAGFLOW_TEST_PG:-}" ]; then
		echo "e2e: no PostgreSQL cluster: the pg run of the e2e files is skipped"
	elif [[ $("$SAGFLOW_BIN" serve --help 2>/dev/null) == *postgresql://* ]]; then
		return 0
	elif ! ls src/store/*pg*.c >/dev/null 2>&1; then
		echo "e2e: this tree has no PostgreSQL backend yet (src/store/*pg*.c): the pg run is skipped"
	else
		note_fail "e2e on pg: $SAGFLOW_BIN serve --help names no postgresql:// (built without libpq?)"
	fi
	backends=${backends//pg/}
}

# One run of the e2e files on one backend: adds to the counts and names each
# failed test with its backend.
e2e_run() {
	local backend=$1 tap ep ef
	shift
	tap=$(mktemp)
	echo "=== e2e on $backend ==="
	SAGFLOW_TEST_BACKEND=$backend node --test --test-concurrency=1 --test-reporter=spec \
		--test-reporter-destination=stdout --test-reporter=tap --test-reporter-destination="$tap" "$@"
	ep=$(awk '/^# pass /{print $3}' "$tap")
	ef=$(awk '/^# fail /{print $3}' "$tap")
	if [ -z "$ep" ]; then
		ef=$((${ef:-0} + 1))
		echo "FAILED [$backend]: the e2e runner reported nothing"
	fi
	awk -v b="$backend" -f scripts/tap-failures.awk "$tap"
	e2e_passed=$((e2e_passed + ${ep:-0}))
	e2e_failed=$((e2e_failed + ${ef:-0}))
	rm -f "$tap"
}

if [ $fuzz_only -eq 0 ] && ls tests/e2e/*.test.mjs >/dev/null 2>&1; then
	# End to end: the real binary (sanitizer build) driven by the real clients,
	# once per store backend ("one suite on every backend").
	export SAGFLOW_BIN=${SAGFLOW_BIN:-$PWD/$TESTBUILD/sagflow}
	files=$(ls tests/e2e/${E2E_FILTER:-*}.test.mjs)
	# No file matched: say so (node --test without files would run them all).
	[ -n "$files" ] || { note_fail "E2E_FILTER=$E2E_FILTER matches no tests/e2e/*.test.mjs"; files=; }
	e2e_passed=0 e2e_failed=0
	e2e_backends
	for backend in $([ -n "$files" ] && echo "$backends"); do
		start=$SECONDS
		before_p=$e2e_passed before_f=$e2e_failed
		e2e_run "$backend" $files
		echo "e2e on $backend: $((e2e_passed - before_p)) passed, $((e2e_failed - before_f)) failed in $((SECONDS - start)) s"
	done
	passed=$((passed + e2e_passed))
	failed=$((failed + e2e_failed))
fi

echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
