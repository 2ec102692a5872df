#!/bin/sh
# SAGFLOW_BIN for bench/agent/profile.mjs: `sagflow serve` under callgrind
# (output SERVE_CG, zeroed and dumped by the script), every other command as
# is; REAL_BIN is the sagflow binary.
if [ "$1" = serve ] && [ -n "$SERVE_CG" ]; then
	exec valgrind --tool=callgrind --callgrind-out-file="$SERVE_CG" "$REAL_BIN" "$@"
fi
exec "$REAL_BIN" "$@"
