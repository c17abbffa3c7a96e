#!/bin/bash
# `sockloop load --reply resp` next to redis-benchmark, alternating, against
# one redis-server (CPU 0; both generators on CPU 1), at the points of
# issue 19: -t ping_inline and -t set,get -d 64, -c 50, -P 1 and -P 16.
#   cargo build --release && bash benches/vs_redis_benchmark.sh
# (SOCKLOOP=path: another build of sockloop, e.g. a copy, so that building
# on does not change the binary under test.)
# on an idle machine (on a shared one, under a `flock LOCKFILE` that other
# benchmarks take too, and under `chrt -f 10`: server and generators alike).
# (ROUNDS=3, SKIP=1, WIN=3; needs redis-server and redis-tools: .ci/run
# installs them.)
#
# Both generators are measured the same way, by benches/vs_window.py, over
# a window of WIN seconds that starts SKIP seconds after the generator
# starts, once redis holds all 50 connections, and ends before it stops
# (so neither's start-up, ramp or summary is in it): requests/s =
# commands redis counted (INFO total_commands_processed) in the window /
# the window; CPU per request = the generator's CPU time in the window
# (/proc/PID/task/*/schedstat, every thread) / those commands. redis's own
# CPU per command is printed beside: it is the server that limits both at
# -P 16.
set -euo pipefail
B=$(dirname "$0")
S=${SOCKLOOP:-$B/../target/release/sockloop}
ROUNDS=${ROUNDS:-3}
SKIP=${SKIP:-1}
WIN=${WIN:-3}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIR=$(mktemp -d)
taskset -c 0 redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" >"$DIR/log" 2>&1 & SP=$!
trap 'kill $SP 2>/dev/null; rm -rf "$DIR"' EXIT
until redis-cli -p "$PORT" ping >/dev/null 2>&1; do sleep 0.05; done
VAL=$(printf 'v%.0s' $(seq 64))
# redis-benchmark -r 1000000 names its keys key:NNNNNNNNNNNN (12 digits, 1,000,000 of them):
# the same length here, so both ask redis the same work.
SET='*3\r\n$3\r\nSET\r\n$16\r\nkey:000000{key:1000000}\r\n$64\r\n'$VAL'\r\n'
GET='*2\r\n$3\r\nGET\r\n$16\r\nkey:000000{key:1000000}\r\n'
W="python3 $B/vs_window.py --server redis:$PORT --server-pid $SP --conns 50 --skip $SKIP --window $WIN"
echo "# $(date -u +%FT%TZ) $(uptime)"
echo "# req/s and CPU/req over the same ${WIN}s window (after ${SKIP}s) for both; redis-server's CPU/req and CPU-s/s (busy) beside"
for p in 1 16; do
  for t in ping_inline set get; do
    case $t in ping_inline) tpl='PING\r\n';; set) tpl=$SET;; get) tpl=$GET;; esac
    for round in $(seq "$ROUNDS"); do
      # Stopped by vs_window.py when the window ends: -n only has to be
      # more than it can do by then.
      read -r rr rc rb rs _ < <($W -- taskset -c 1 redis-benchmark -p "$PORT" -c 50 -P "$p" -t "$t" -d 64 -r 1000000 -n 100000000 -q)
      read -r lr lc lb ls _ < <($W --out "$DIR/load.json" -- taskset -c 1 "$S" load "tcp://127.0.0.1:$PORT" --conns 50 \
          --pipeline "$p" --duration 60 --request "$tpl" --reply resp --json)
      errs=$(python3 -c "import json; print(json.load(open('$DIR/load.json'))['errors'])" 2>/dev/null || echo '?')
      python3 -c "print('%-11s -c 50 -P %-2d round %d | redis-benchmark %8d req/s %5.2f us/req (redis %5.2f, busy %.2f) | load %8d req/s %5.2f us/req (redis %5.2f, busy %.2f) errors %s | ratio req/s %.2f  CPU/req %.2f' % (
        '$t', $p, $round, $rr, $rc, $rs, $rr * $rs / 1e6, $lr, $lc, $ls, $lr * $ls / 1e6, '$errs', $lr / max($rr, 1), $lc / max($rc, 1e-9)))"
    done
  done
done
