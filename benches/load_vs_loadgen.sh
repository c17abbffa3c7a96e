#!/bin/bash
# The yardstick loadgen next to `sockloop load`, alternating, against one
# `sockloop serve` (CPU 0; generators on CPU 1). Build both first:
#   cargo build --release
#   cargo build --release --manifest-path ../shared/yardstick/Cargo.toml --target-dir /tmp/yard
# then: bash benches/load_vs_loadgen.sh   (YARD=/path/to/loadgen, ROUNDS=2, SECS=4,
# SOCKLOOP=another build of sockloop, e.g. a copy)
#
# Each `load` row also gives CPU per message: `load`'s own (user+sys of the
# whole process, ramp included, from /usr/bin/time) and the server's over
# the same run (from /proc/PID/stat).
S=${SOCKLOOP:-$(dirname "$0")/../target/release/sockloop}
YARD=${YARD:-/tmp/yard/release/loadgen}
ROUNDS=${ROUNDS:-2}
SECS=${SECS:-4}
# The server on a free port (port 0): its ready line says which.
out=$(mktemp); times=$(mktemp)
taskset -c 0 $S serve --listen echo=tcp://127.0.0.1:0 >"$out" 2>&1 & SP=$!
trap 'kill $SP 2>/dev/null; rm -f "$out" "$times"' EXIT
for _ in $(seq 50); do grep -q "ready" "$out" && break; sleep 0.1; done
ADDR=$(grep -o "127.0.0.1:[0-9]*" "$out" | head -1)
[ -n "$ADDR" ] || { echo "error: the server did not say where it listens" >&2; cat "$out" >&2; exit 1; }
cpu() { awk '{print ($14 + $15) / 100}' /proc/$SP/stat; }
for point in "50 64 1" "50 64 16" "50 512 16" "1000 64 1"; do
  set -- $point
  for round in $(seq $ROUNDS); do
    y=$(taskset -c 1 $YARD --addr $ADDR -c $1 -s $2 -k $3 -d $SECS -w 1 --server-pid $SP 2>/dev/null | grep "^run" | grep -o "msgs_per_s=[0-9]*")
    c0=$(cpu)
    l=$( { /usr/bin/time -f "TIME %U %S" taskset -c 1 $S load tcp://$ADDR --conns $1 --size $2 --pipeline $3 --duration $SECS --json 2>&1 >&3 | grep "^TIME" >"$times"; } 3>&1 )
    c1=$(cpu)
    echo "$l" | python3 -c "
import json, sys
d = json.load(sys.stdin)
_, u, s = open('$times').read().split()
n = d['messages'] / ($SECS + 1.0) * $SECS  # messages over the whole process, roughly: see the note
yard = int('$y'.split('=')[1]) if '=' in '$y' else 0
print('c=$1 s=$2 k=$3 round $round | loadgen %d msg/s | load %d msg/s | ratio %.2f | load CPU %.2f us/msg | server CPU %.2f us/msg | errors %d' % (
    yard, d['messages_per_sec'], d['messages_per_sec'] / max(yard, 1),
    (float(u) + float(s)) / d['messages'] * 1e6, ($c1 - $c0) / d['messages'] * 1e6, d['errors']))
"
  done
done
