#!/bin/bash
# `sockloop load --reply http` next to wrk, alternating, against one nginx
# (one worker, CPU 0, serving a 100-byte file; both generators on CPU 1),
# at the points of issue 19: -t 1 -c 50 and -c 1000.
#   cargo build --release && bash benches/vs_wrk.sh
# on an idle machine (on a shared one, under a `flock LOCKFILE` that other
# benchmarks take too).
# (ROUNDS=2, SECS=4; needs nginx-light and wrk: .ci/run installs them.)
#
# Each row: requests/s of both, their ratio, and CPU per request of each
# generator (user+sys of the whole process from /usr/bin/time).
set -euo pipefail
S=$(dirname "$0")/../target/release/sockloop
ROUNDS=${ROUNDS:-2}
SECS=${SECS:-4}
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
  server { listen 127.0.0.1:$PORT; root $DIR/www; location = / { try_files /index.html =404; } } }
CONF
taskset -c 0 nginx -p "$DIR" -c "$DIR/nginx.conf" & SP=$!
trap 'kill $SP 2>/dev/null; sleep 0.2; rm -rf "$DIR"' EXIT
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT))" 2>/dev/null; do sleep 0.05; done
ulimit -n 10000
REQ='GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'
for c in 50 1000; do
  for round in $(seq "$ROUNDS"); do
    w=$( { /usr/bin/time -f "TIME %U %S" taskset -c 1 wrk -t 1 -c "$c" -d "${SECS}s" "http://127.0.0.1:$PORT/" 2>&1 >&3 | grep "^TIME" >"$DIR/tw"; } 3>&1 )
    l=$( { /usr/bin/time -f "TIME %U %S" taskset -c 1 "$S" load "tcp://127.0.0.1:$PORT" --conns "$c" --duration "$SECS" \
        --request "$REQ" --reply http --expect 'HTTP/1.1 200' --json 2>&1 >&3 | grep "^TIME" >"$DIR/tl"; } 3>&1 )
    WRK="$w" LOAD="$l" python3 -c "
import json, os, re
w = os.environ['WRK']; d = json.loads(os.environ['LOAD'])
m = re.search(r'Requests/sec:\s+([0-9.]+)', w); rps = float(m.group(1)) if m else 0.0
m = re.search(r'([0-9]+) requests in', w); reqs = max(int(m.group(1)) if m else 0, 1)
if 'Socket errors' in w: print('wrk:', re.search(r'Socket errors.*', w).group(0))
_, wu, ws = open('$DIR/tw').read().split(); _, lu, ls = open('$DIR/tl').read().split()
print('-t 1 -c %-4d round %d | wrk %8d req/s %5.2f us/req | load %8d req/s %5.2f us/req errors %d | ratio %.2f' % (
    $c, $round, rps, (float(wu)+float(ws)) / reqs * 1e6, d['messages_per_sec'],
    (float(lu)+float(ls)) / max(d['messages'], 1) * 1e6, d['errors'], d['messages_per_sec'] / max(rps, 1)))"
  done
done
