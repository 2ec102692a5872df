# Shared by bench/api/*.sh (sourced, after `work` is set): process cleanup, a
# free port, a `sagflow serve` on a fresh database, and nginx serving $work.
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

# start_serve [SERVE OPTIONS...]: sets $port; the benchmark key is benchkey/benchsecret.
start_serve() {
	export SAGFLOW_ACCESS_KEY_ID=benchkey SAGFLOW_ACCESS_KEY_SECRET=benchsecret
	"$BIN" serve --listen 127.0.0.1:0 --db "$work/bench.db" "$@" >"$work/serve.out" 2>"$work/serve.log" &
	pids+=($!)
	for _ in $(seq 100); do grep -q 'listening on' "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
	port=$(grep -o 'listening on [0-9.]*:[0-9]*' "$work/serve.out" | sed 's/.*://')
}

# start_nginx: nginx (2 workers, no access log) serving the files of $work; sets $nport.
start_nginx() {
	nport=$(free_port)
	cat >"$work/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  default_type application/json;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work; uwsgi_temp_path $work; scgi_temp_path $work;
  server { listen 127.0.0.1:$nport; root $work; }
}
CONF
	nginx -c "$work/nginx.conf" -g 'daemon off;' &
	pids+=($!)
	sleep 0.5
}
