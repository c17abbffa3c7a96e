#!/bin/bash
# `sockloop load --reply resp` next to redis-benchmark, alternating, against
# one redis-server (CPU 0; both generators on CPU 1), at the points of
# issue 19: -t ping_inline and -t set,get -d 64, -c 50, -P 1 and -P 16.
#   cargo build --release && bash benches/vs_redis_benchmark.sh
# on an idle machine (on a shared one, under a `flock LOCKFILE` that other
# benchmarks take too).
# (ROUNDS=2, SECS=4; needs redis-server and redis-tools: .ci/run installs them.)
#
# Each row: requests/s of both, their ratio, and CPU per request of each
# generator (user+sys of the whole process from /usr/bin/time, divided by
# the requests it made; load's ramp and warm-up included, so it is
# slightly pessimistic for load).
set -euo pipefail
S=$(dirname "$0")/../target/release/sockloop
ROUNDS=${ROUNDS:-2}
SECS=${SECS:-4}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIR=$(mktemp -d)
taskset -c 0 redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" >"$DIR/log" 2>&1 & SP=$!
trap 'kill $SP 2>/dev/null; rm -rf "$DIR"' EXIT
until redis-cli -p "$PORT" ping >/dev/null 2>&1; do sleep 0.05; done
VAL=$(printf 'v%.0s' $(seq 64))
SET='*3\r\n$3\r\nSET\r\n$10\r\nkey:{key:1000000}\r\n$64\r\n'$VAL'\r\n'
GET='*2\r\n$3\r\nGET\r\n$10\r\nkey:{key:1000000}\r\n'

# load_run K TEMPLATE → "rps cpu_us_per_req errors"
load_run() {
  local out
  out=$( { /usr/bin/time -f "TIME %U %S" taskset -c 1 "$S" load "tcp://127.0.0.1:$PORT" --conns 50 --pipeline "$1" \
      --duration "$SECS" --request "$2" --reply resp --json 2>&1 >&3 | grep "^TIME" >"$DIR/t"; } 3>&1 )
  echo "$out" | python3 -c "
import json, sys
d = json.load(sys.stdin); _, u, s = open('$DIR/t').read().split()
print('%d %.2f %d' % (d['messages_per_sec'], (float(u)+float(s)) / max(d['messages'],1) * 1e6, d['errors']))"
}
# rb_run K TEST N → "rps cpu_us_per_req"
rb_run() {
  local out
  out=$( { /usr/bin/time -f "TIME %U %S" taskset -c 1 redis-benchmark -p "$PORT" -c 50 -P "$1" -t "$2" -d 64 -r 1000000 -n "$3" --csv 2>&1 >&3 | grep "^TIME" >"$DIR/t"; } 3>&1 )
  echo "$out" | python3 -c "
import csv, sys
rows = [r for r in csv.reader(sys.stdin) if len(r) > 1 and r[0] != 'test']
rps = float(rows[0][1]); _, u, s = open('$DIR/t').read().split()
print('%d %.2f' % (rps, (float(u)+float(s)) / $3 * 1e6))"
}
# redis-benchmark runs a count of requests, not a time: it is given as
# many as load just made in SECS, so both run about as long.
for p in 1 16; do
  for t in ping_inline set get; do
    case $t in ping_inline) tpl='PING\r\n';; set) tpl=$SET;; get) tpl=$GET;; esac
    for round in $(seq "$ROUNDS"); do
      read -r lo locpu err < <(load_run "$p" "$tpl")
      n=$(( lo * SECS > 2000 ? lo * SECS : 2000 ))
      read -r rb rbcpu < <(rb_run "$p" "$t" "$n")
      python3 -c "print('%-11s -c 50 -P %-2d round %d | redis-benchmark %8d req/s %5.2f us/req | load %8d req/s %5.2f us/req errors %d | ratio %.2f' % ('$t', $p, $round, $rb, $rbcpu, $lo, $locpu, $err, $lo / max($rb, 1)))"
    done
  done
done
