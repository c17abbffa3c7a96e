#!/bin/bash
# `serve --workers 2` next to `--workers 1` and a tokio multi-thread echo
# server with 2 workers, TCP echo, 1,000 connections, alternating, one run.
#
# On a 2-core machine the load generator shares the cores with the
# workers, so a speed-up is not what this measures: it reports each
# server's CPU per message (user+sys from /proc, over the run) and, for
# sockloop, how the connections spread over the workers (the
# accepted_per_worker field of the last --stats line).
#
# Build first:
#   cargo build --release
#   cargo build --release --manifest-path ../shared/yardstick/Cargo.toml --target-dir /tmp/yard
# then: bash benches/workers.sh   (TOKIO_ECHO=/path/to/tokio-echo, SECS=5, CONNS=1000, ROUNDS=2)
set -u
cd "$(dirname "$0")/.."
S=target/release/sockloop
TOKIO_ECHO=${TOKIO_ECHO:-/tmp/yard/release/tokio-echo}
SECS=${SECS:-5}
CONNS=${CONNS:-1000}
ROUNDS=${ROUNDS:-2}
PORT=7431

cpu_secs() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }

# run NAME COMMAND...: start the server, load it, print one table row.
run() {
  local name=$1; shift
  "$@" >/dev/null 2>/tmp/workers-bench.err &
  local pid=$!
  sleep 0.5
  local c0; c0=$(cpu_secs $pid)
  local json; json=$($S load tcp://127.0.0.1:$PORT --conns "$CONNS" --duration "$SECS" --json 2>/dev/null)
  local c1; c1=$(cpu_secs $pid)
  kill -TERM $pid; wait $pid 2>/dev/null
  local spread; spread=$(grep -o 'accepted_per_worker=[0-9/]*' /tmp/workers-bench.err | tail -1 | cut -d= -f2)
  echo "$json" | python3 -c "
import json, sys
d = json.load(sys.stdin)
n = max(d['messages'], 1)
spread = '${spread:-n/a}'
dev = 'n/a'
if '/' in spread and spread.replace('/', '').isdigit():
    xs = [int(x) for x in spread.split('/')]
    mean = sum(xs) / len(xs)
    dev = '%+.1f %%' % (100 * max(abs(x - mean) for x in xs) / mean)
print('| $name | %d | %.0f | %.0f | %.2f | %s | %s |' % (
    d['connections'], d['messages_per_sec'], d['latency_us']['p99'],
    ($c1 - $c0) / n * 1e6, spread, dev))
"
}

echo "TCP echo, $CONNS connections, 64 B, pipeline 1, $SECS s each, no pinning (2 cores shared with the load generator)"
echo "| server | connections | msgs/s | p99 µs | server CPU µs/msg | accepted per worker | worst worker vs mean |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
  run "sockloop --workers 1" $S serve --listen echo=tcp://127.0.0.1:$PORT --stats 3600
  run "sockloop --workers 2" $S serve --listen echo=tcp://127.0.0.1:$PORT --workers 2 --stats 3600
  if [ -x "$TOKIO_ECHO" ]; then
    run "tokio multi-thread, 2 workers" "$TOKIO_ECHO" --rt multi --workers 2 --port $PORT
  fi
done
