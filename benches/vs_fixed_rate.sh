#!/bin/bash
# Latency at a fixed rate (issue 19's last target): `sockloop load --rate R`
# next to redis-benchmark and wrk, against redis-server and nginx (one
# worker) on CPU 0, every generator on CPU 1, alternating.
#   cargo build --release && bash benches/vs_fixed_rate.sh
# (SOCKLOOP=path: another build of sockloop, e.g. a copy, so that building
# on does not change the binary under test.)
# on an idle machine (on a shared one, under a `flock LOCKFILE` that other
# benchmarks take too, and under `chrt -f 10`: servers and generators alike).
# (ROUNDS=3, SECS=5, CONNS="1 10"; needs redis-server, redis-tools,
# nginx-light and wrk: .ci/run installs them.)
#
# Neither peer can hold a rate: both are closed-loop (a connection sends
# its next request when the last reply is in). So the comparison is:
#  1. the peer closed-loop on C connections, for SECS: its latency
#     percentiles and the rate R_peer it reached (on one connection that is
#     the lowest load it can put on the server, and its latency the
#     server's unloaded round trip as that peer measures it);
#  2. `load --conns C --rate R` with R = R_peer / 2 (FRACTION), open-loop,
#     latency from each message's due time (no coordinated omission): the
#     same connections and a rate the server keeps up with easily, so a
#     request does not queue behind another and what is left is the round
#     trip plus what the generator adds (its timer's lateness included);
#  3. `load --conns C` closed-loop, as the peer ran, for reference.
# Target: (2)'s p50 and p99 within 50 µs of (1)'s.
# Percentiles: redis-benchmark --csv p50/p99 (ms, 3 decimals), wrk
# --latency 50%/99%, load --json latency_us.p50/p99 (all in µs here).
set -euo pipefail
S=${SOCKLOOP:-$(dirname "$0")/../target/release/sockloop}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
CONNS=${CONNS:-1 10}
FRACTION=${FRACTION:-0.5}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RPORT=$(free_port); NPORT=$(free_port)
DIR=$(mktemp -d); chmod 755 "$DIR"; mkdir -p "$DIR/www" "$DIR/tmp"
head -c 99 /dev/zero | tr '\0' 'a' >"$DIR/www/index.html"; echo >>"$DIR/www/index.html"
cat >"$DIR/nginx.conf" <<CONF
daemon off; worker_processes 1; pid $DIR/nginx.pid; error_log $DIR/error.log;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $DIR/tmp; proxy_temp_path $DIR/tmp;
  fastcgi_temp_path $DIR/tmp; uwsgi_temp_path $DIR/tmp; scgi_temp_path $DIR/tmp;
  keepalive_requests 100000000;
  server { listen 127.0.0.1:$NPORT; root $DIR/www; location = / { try_files /index.html =404; } } }
CONF
taskset -c 0 redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" >"$DIR/log" 2>&1 & RP=$!
taskset -c 0 nginx -p "$DIR" -c "$DIR/nginx.conf" & NP=$!
trap 'kill $RP $NP 2>/dev/null; sleep 0.2; rm -rf "$DIR"' EXIT
until redis-cli -p "$RPORT" ping >/dev/null 2>&1; do sleep 0.05; done
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $NPORT))" 2>/dev/null; do sleep 0.05; done
REQ='GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'

# Each generator writes to a file, read once it has ended: a reader
# started beside it (a pipe) would start up at the same real-time priority,
# take its CPU for ~0.1 s and show up as a 0.1 s stall in its latency.
# load_run ARGS... → "rps p50 p99 errors" (µs)
load_run() {
  taskset -c 1 "$S" load --duration "$SECS" --json "$@" >"$DIR/out" 2>/dev/null || true
  python3 <"$DIR/out" -c "
import json, sys
d = json.load(sys.stdin); l = d['latency_us']
print('%d %.0f %.0f %d' % (d['messages_per_sec'], l['p50'], l['p99'], d['errors']))"
}
# rb_run C N → "rps p50 p99" (µs)
rb_run() {
  taskset -c 1 redis-benchmark -p "$RPORT" -c "$1" -P 1 -t ping_inline -n "$2" --csv >"$DIR/out" 2>/dev/null
  python3 <"$DIR/out" -c "
import csv, sys
r = [r for r in csv.reader(sys.stdin) if len(r) > 1 and r[0] != 'test'][0]
print('%d %.0f %.0f' % (float(r[1]), float(r[4]) * 1e3, float(r[6]) * 1e3))"
}
# wrk_run C → "rps p50 p99" (µs)
wrk_run() {
  taskset -c 1 wrk -t 1 -c "$1" -d "${SECS}s" --latency "http://127.0.0.1:$NPORT/" >"$DIR/out"
  python3 <"$DIR/out" -c "
import re, sys
w = sys.stdin.read()
us = lambda v, u: float(v) * {'us': 1, 'ms': 1e3, 's': 1e6}[u]
q = {p: us(v, u) for p, v, u in re.findall(r'^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$', w, re.M)}
print('%d %.0f %.0f' % (float(re.search(r'Requests/sec:\s+([0-9.]+)', w).group(1)), q['50'], q['99']))"
}
row() { # name C round peer_rps peer_p50 peer_p99 rate load_rps load_p50 load_p99 errs closed_p50 closed_p99
  python3 -c "
n, c, r, prps, p50, p99, rate, lrps, l50, l99, e, c50, c99 = '$*'.split()
print('%-15s -c %-2s round %s | peer closed-loop %6s req/s p50 %5s p99 %5s | load --rate %6s: %6s req/s p50 %5s p99 %5s (errors %s) | diff p50 %+5d p99 %+5d us | load closed-loop p50 %5s p99 %5s' % (
  n, c, r, prps, p50, p99, rate, lrps, l50, l99, e, int(l50) - int(p50), int(l99) - int(p99), c50, c99))"
}
echo "# $(date -u +%FT%TZ) $(uptime)"
echo "# latency in us; load --rate R with R = $FRACTION x the peer's closed-loop req/s on the same connections"
for c in $CONNS; do
  for round in $(seq "$ROUNDS"); do
    # redis-benchmark runs a count: sized from a short run to last ~SECS.
    read -r cal _ < <(rb_run "$c" 5000)
    read -r prps p50 p99 < <(rb_run "$c" $((cal * SECS)))
    rate=$(python3 -c "print(max(1, int($prps * $FRACTION)))")
    read -r lrps l50 l99 e < <(load_run "tcp://127.0.0.1:$RPORT" --conns "$c" --rate "$rate" --request 'PING\r\n' --reply resp)
    read -r _ c50 c99 _ < <(load_run "tcp://127.0.0.1:$RPORT" --conns "$c" --request 'PING\r\n' --reply resp)
    row redis-benchmark "$c" "$round" "$prps" "$p50" "$p99" "$rate" "$lrps" "$l50" "$l99" "$e" "$c50" "$c99"
    read -r prps p50 p99 < <(wrk_run "$c")
    rate=$(python3 -c "print(max(1, int($prps * $FRACTION)))")
    read -r lrps l50 l99 e < <(load_run "tcp://127.0.0.1:$NPORT" --conns "$c" --rate "$rate" --request "$REQ" --reply http)
    read -r _ c50 c99 _ < <(load_run "tcp://127.0.0.1:$NPORT" --conns "$c" --request "$REQ" --reply http)
    row wrk "$c" "$round" "$prps" "$p50" "$p99" "$rate" "$lrps" "$l50" "$l99" "$e" "$c50" "$c99"
  done
done
