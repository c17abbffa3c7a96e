#!/bin/bash
# `sockloop load --rate` next to tcpkali 1.2 at the same offered rate,
# alternating, against one `sockloop serve` echo listener (server on CPU 0,
# generators on CPU 1): latency p50/p90/p99, `load`'s send lateness, and
# each generator's CPU (user+sys over its whole process, from
# /usr/bin/time). Also `load` unpaced (closed loop) for the round trip
# itself. Issue 18's table; figures in BENCHMARKS.md.
#
#   cargo build --release
#   bash benches/latency_vs_tcpkali.sh    (on an idle machine; on a shared
#   one, under a `flock LOCKFILE` that other benchmarks take too)
#   (TCPKALI=/path/to/tcpkali, ROUNDS=2, SECS=4, CONNS=50, RATES="10000 50000")
#
# tcpkali is built from ../shared/yardstick/tcpkali/ (its build.sh prints
# the binary's path; about 20 s the first time). Its latency is
# --latency-marker's, in 0.1 ms steps; it does not correct for
# coordinated omission (a message is timed from its send).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
S=$here/../target/release/sockloop
TCPKALI=${TCPKALI:-$(bash "$here/../../shared/yardstick/tcpkali/build.sh")}
ROUNDS=${ROUNDS:-2}
SECS=${SECS:-4}
CONNS=${CONNS:-50}
RATES=${RATES:-"10000 50000"}
tmp=$(mktemp -d)
trap 'kill $SP 2>/dev/null; rm -rf "$tmp"' EXIT
taskset -c 0 "$S" serve --listen echo=tcp://127.0.0.1:0 >"$tmp/serve.out" 2>&1 & SP=$!
for _ in $(seq 50); do grep -q "ready" "$tmp/serve.out" && break; sleep 0.1; done
ADDR=$(grep -o "127.0.0.1:[0-9]*" "$tmp/serve.out" | head -1)
MSG="$(printf 'x%.0s' $(seq 59))HELLO"   # 64 bytes, the marker at its end
cputime() { awk '/^TIME/ {print $2 + $3}' "$1"; }
load_row() { # rate (or "-" for closed loop) round
  local rate=$1 args=()
  [ "$rate" != "-" ] && args=(--rate "$rate")
  /usr/bin/time -f "TIME %U %S" -o "$tmp/time" taskset -c 1 "$S" load "tcp://$ADDR" --conns "$CONNS" \
    --size 64 --duration "$SECS" "${args[@]}" --json 2>/dev/null >"$tmp/load.json" || true
  python3 - "$rate" "$2" "$(cputime "$tmp/time")" "$tmp/load.json" <<'PY'
import json, sys
rate, rnd, cpu, path = sys.argv[1:]
d = json.load(open(path))
l = d["latency_us"]; late = d.get("send_lateness_us")
lat = "late p50 %.1f p99 %.1f max %.0f" % (late["p50"], late["p99"], late["max"]) if late else "(closed loop)"
print("| %s | load | %s | %.0f | %.0f | %.0f | %.0f | %s | %.2f |" % (
    rate, rnd, d["messages_per_sec"], l["p50"], l["p90"], l["p99"], lat, float(cpu)))
PY
}
kali_row() { # rate round
  local per=$(python3 -c "print($1 / $CONNS)")
  /usr/bin/time -f "TIME %U %S" -o "$tmp/time" taskset -c 1 "$TCPKALI" "$ADDR" -c "$CONNS" \
    --connect-rate 5000 -w 1 -r "$per" -T "$SECS" -m "$MSG" --latency-marker HELLO \
    --latency-percentiles 50,90,99 >"$tmp/kali.out" 2>&1 || true
  python3 - "$1" "$2" "$(cputime "$tmp/time")" "$tmp/kali.out" "$SECS" <<'PY'
import re, sys
rate, rnd, cpu, path, secs = sys.argv[1:]
t = open(path).read()
m = re.search(r"latency at percentiles: ([\d.]+)/([\d.]+)/([\d.]+) ms", t)
p = re.search(r"Packet rate estimate: ([\d.]+)", t)
p50, p90, p99 = (float(x) * 1000 for x in m.groups()) if m else (0, 0, 0)
print("| %s | tcpkali | %s | %.0f | %.0f | %.0f | %.0f | | %.2f |" % (
    rate, rnd, float(p.group(1)) if p else 0, p50, p90, p99, float(cpu)))
PY
}
echo "$(date -u +%F) $(uname -r) $(nproc) CPUs; $CONNS connections, 64-byte messages, $SECS s each"
echo "| rate | tool | round | msg/s | p50 µs | p90 µs | p99 µs | send lateness µs | CPU s |"
echo "|---|---|---|---|---|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
  load_row - "$round"
  for rate in $RATES; do
    kali_row "$rate" "$round"
    load_row "$rate" "$round"
  done
done
