#!/bin/bash
# The yardstick loadgen next to `sockloop load`, alternating, against one
# `sockloop serve` (CPU 0; generators on CPU 1). Build both first:
#   cargo build --release
#   cargo build --release --manifest-path ../shared/yardstick/Cargo.toml --target-dir /tmp/yard
# then: bash benches/load_vs_loadgen.sh   (YARD=/path/to/loadgen to override)
# server on CPU 0; both generators on CPU 1, alternating, same server
S=$(dirname "$0")/../target/release/sockloop
YARD=${YARD:-/tmp/yard/release/loadgen}
taskset -c 0 $S serve --listen echo=tcp://127.0.0.1:7420 >/dev/null 2>&1 & SP=$!
sleep 0.5
for point in "50 64 1" "50 64 16" "50 512 16" "1000 64 1"; do
  set -- $point
  for round in 1 2; do
    y=$(taskset -c 1 $YARD --addr 127.0.0.1:7420 -c $1 -s $2 -k $3 -d 4 -w 1 --server-pid $SP 2>/dev/null | grep "^run" )
    l=$(taskset -c 1 $S load tcp://127.0.0.1:7420 --conns $1 --size $2 --pipeline $3 --duration 4 --json 2>/dev/null)
    echo "c=$1 s=$2 k=$3 round $round | yard: $y | load: $(echo $l | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["messages_per_sec"]), "msg/s p50", d["latency_us"]["p50"], "errors", d["errors"])')"
  done
done
kill $SP
