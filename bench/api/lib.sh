# Shared by bench/api/*.sh (sourced, after `work` is set): process cleanup, a
# free port, a `sagflow serve` on a fresh database, and nginx serving $work.
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

# start_serve [SERVE OPTIONS...]: sets $port and $serve_pid; the benchmark key is
# benchkey/benchsecret; the database is $work/bench.db (kept across restarts).
start_serve() {
	export SAGFLOW_ACCESS_KEY_ID=benchkey SAGFLOW_ACCESS_KEY_SECRET=benchsecret
	"$BIN" serve --listen 127.0.0.1:0 --db "$work/bench.db" --rate-limit key=1000000 "$@" >"$work/serve.out" 2>>"$work/serve.log" &
	serve_pid=$!
	pids+=($!)
	for _ in $(seq 100); do grep -q 'listening on' "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
	port=$(grep -o 'listening on [0-9.]*:[0-9]*' "$work/serve.out" | sed 's/.*://')
}

# stop_serve: SIGTERM to the serve of start_serve, and wait for it to drain and exit.
# Polls as well as waits: from a subshell the serve is not a child to wait for.
stop_serve() {
	kill "$serve_pid" 2>/dev/null || true
	wait "$serve_pid" 2>/dev/null || true
	for _ in $(seq 300); do kill -0 "$serve_pid" 2>/dev/null || return 0; sleep 0.1; done
}

# The load generator runs on the same cores and takes one of them; the server
# gets the rest (a production server's clients are not on its machine).
bench_threads() { local n; n=$(nproc); echo $(( n > 1 ? n - 1 : 1 )); }

# start_nginx [WORKERS]: nginx (default 2 workers, no access log) serving the files
# of $work; sets $nport. Several may run at once (one config and pid file each).
start_nginx() {
	local w=${1:-2}
	nport=$(free_port)
	cat >"$work/nginx-$nport.conf" <<CONF
worker_processes $w;
pid $work/nginx-$nport.pid;
error_log $work/nginx-$nport.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  default_type application/json;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work; uwsgi_temp_path $work; scgi_temp_path $work;
  server { listen 127.0.0.1:$nport; root $work; }
}
CONF
	nginx -c "$work/nginx-$nport.conf" -g 'daemon off;' &
	pids+=($!)
	sleep 0.5
}
