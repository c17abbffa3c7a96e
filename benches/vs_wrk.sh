#!/bin/bash
# `sockloop load --reply http` next to wrk, alternating, against one nginx
# (one worker, CPU 0, serving a 100-byte file; both generators on CPU 1),
# at the points of issue 19: -t 1 -c 50 and -c 1000.
#   cargo build --release && bash benches/vs_wrk.sh
# (SOCKLOOP=path: another build of sockloop, e.g. a copy, so that building
# on does not change the binary under test.)
# on an idle machine (on a shared one, under a `flock LOCKFILE` that other
# benchmarks take too, and under `chrt -f 10`: server and generators alike).
# (ROUNDS=3, SKIP=1, WIN=3; needs nginx-light and wrk: .ci/run installs them.)
#
# Both generators are measured the same way, by benches/vs_window.py, over
# a window of WIN seconds that starts SKIP seconds after the generator
# starts (so neither's connection ramp, nor its start-up and summary, is
# in it) and ends before it stops: requests/s = requests nginx counted
# (stub_status) in the window / the window; CPU per request = the
# generator's CPU time in the window (/proc/PID/task/*/schedstat, every
# thread) / those requests. The window starts no sooner than nginx has
# taken in all the connections (at -c 1000 that takes it 1-2 s). nginx's own CPU per request in the same window
# is printed too: it is the server that limits both here.
set -euo pipefail
B=$(dirname "$0")
S=${SOCKLOOP:-$B/../target/release/sockloop}
ROUNDS=${ROUNDS:-3}
SKIP=${SKIP:-1}
WIN=${WIN:-3}
# Long enough for any ramp: vs_window.py stops each generator when its
# window ends.
RUN=$(python3 -c "print(int($SKIP + $WIN + 10))")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIR=$(mktemp -d); chmod 755 "$DIR"; mkdir -p "$DIR/www" "$DIR/tmp"
head -c 99 /dev/zero | tr '\0' 'a' >"$DIR/www/index.html"; echo >>"$DIR/www/index.html"
cat >"$DIR/nginx.conf" <<CONF
daemon off; worker_processes 1; pid $DIR/nginx.pid; error_log $DIR/error.log;
worker_rlimit_nofile 10000;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $DIR/tmp; proxy_temp_path $DIR/tmp;
  fastcgi_temp_path $DIR/tmp; uwsgi_temp_path $DIR/tmp; scgi_temp_path $DIR/tmp;
  keepalive_requests 100000000;
  server { listen 127.0.0.1:$PORT; root $DIR/www; location = / { try_files /index.html =404; }
           location = /status { stub_status; } } }
CONF
taskset -c 0 nginx -p "$DIR" -c "$DIR/nginx.conf" & SP=$!
trap 'kill $SP 2>/dev/null; sleep 0.2; rm -rf "$DIR"' EXIT
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT))" 2>/dev/null; do sleep 0.05; done
WORKER=$(pgrep -P "$SP" | head -1)
ulimit -n 10000
REQ='GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'
W="python3 $B/vs_window.py --server nginx:$PORT/status --server-pid $WORKER --skip $SKIP --window $WIN"
echo "# $(date -u +%FT%TZ) $(uptime)"
echo "# req/s and CPU/req over the same ${WIN}s window (after ${SKIP}s) for both; nginx's CPU/req and CPU-s/s (busy) beside"
for c in 50 1000; do
  for round in $(seq "$ROUNDS"); do
    read -r wr wc wb ws _ < <($W --conns "$c" --out "$DIR/wrk.out" -- taskset -c 1 wrk -t 1 -c "$c" -d "${RUN}s" "http://127.0.0.1:$PORT/")
    read -r lr lc lb ls _ < <($W --conns "$c" --out "$DIR/load.json" -- taskset -c 1 "$S" load "tcp://127.0.0.1:$PORT" --conns "$c" \
        --duration "$RUN" --request "$REQ" --reply http --expect 'HTTP/1.1 200' --json)
    errs=$(python3 -c "import json; print(json.load(open('$DIR/load.json'))['errors'])" 2>/dev/null || echo '?')
    werr=$(grep -o 'Socket errors.*\|Non-2xx.*' "$DIR/wrk.out" | tr '\n' ' ' || true)
    python3 -c "print('-t 1 -c %-4d round %d | wrk %7d req/s %5.2f us/req (nginx %5.2f, busy %.2f) | load %7d req/s %5.2f us/req (nginx %5.2f, busy %.2f) errors %s | ratio req/s %.2f  CPU/req %.2f %s' % (
      $c, $round, $wr, $wc, $ws, $wr * $ws / 1e6, $lr, $lc, $ls, $lr * $ls / 1e6, '$errs', $lr / max($wr, 1), $lc / max($wc, 1e-9), '$werr'))"
  done
done
