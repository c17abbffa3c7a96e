#!/bin/bash
# What /metrics costs the loop: TCP echo under `load --conns 1000
# --pipeline 16`, scraped every 100 ms and not scraped, alternating; then
# the time of one scrape with 10 and with 19,000 connections held.
#
# The server runs on CPU 0, the load and the scraper on CPU 1. The scraper
# is one long-lived process (python3: connect, GET /metrics, read to the
# server's close, every 100 ms), so that starting a client 10 times a
# second is not what is measured; each scraped run reports the scrapes' own
# latency. The connection holders are `load --idle` in a process of their
# own (the open-file limit is per process).
#
# Build first (cargo build --release), then, alone on the machine:
#   flock /path/to/bench.lock bash benches/metrics_scrape.sh
# (SECS=10 ROUNDS=3 HELD=19000 SCRAPES=50; SCRAPER_PRIO=N runs the scraper
# at SCHED_FIFO priority N, for when the whole script runs under `chrt -f`
# below N: else the generator, never blocking at pipeline 16, starves it)
set -u
cd "$(dirname "$0")/.."
S=$PWD/target/release/sockloop
SECS=${SECS:-10}
ROUNDS=${ROUNDS:-3}
HELD=${HELD:-19000}
SCRAPES=${SCRAPES:-50}
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$TMP"' EXIT

cpu_secs() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }

# start_server: a server on CPU 0, ports chosen by the system; sets PID,
# ECHO and METRICS.
start_server() {
  taskset -c 0 "$S" serve --listen echo=tcp://127.0.0.1:0 --listen metrics=tcp://127.0.0.1:0 \
    >"$TMP/out" 2>/dev/null &
  PID=$!
  for _ in $(seq 100); do
    grep -q "ready to receive" "$TMP/out" 2>/dev/null && break
    sleep 0.05
  done
  ECHO=$(awk '$2 == "echo" {print $4}' "$TMP/out")
  METRICS=$(awk '$2 == "metrics" {print $4}' "$TMP/out")
}

stop_server() { kill -TERM "$PID"; wait "$PID" 2>/dev/null; }

# scrape COUNT EVERY_S [STOPFILE]: scrape $METRICS COUNT times (0: until
# STOPFILE exists), one every EVERY_S seconds; each scrape's ms on stdout,
# the last body in $TMP/body.
scrape() {
  taskset -c 1 ${SCRAPER_PRIO:+chrt -f "$SCRAPER_PRIO"} python3 - "$METRICS" "$1" "$2" "${3:-}" "$TMP/body" <<'PY'
import os, socket, sys, time
addr, count, every, stop, body_file = sys.argv[1:]
host, port = addr.rsplit(':', 1)
count, every = int(count), float(every)
n, due, body = 0, time.monotonic(), b''
while (count and n < count) or (not count and not os.path.exists(stop)):
    t = time.monotonic()
    s = socket.create_connection((host, int(port)))
    s.sendall(b'GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n')
    chunks = []
    while True:
        b = s.recv(65536)
        if not b:
            break
        chunks.append(b)
    s.close()
    print('%.3f' % ((time.monotonic() - t) * 1000), flush=True)
    body = b''.join(chunks)
    assert body.startswith(b'HTTP/1.1 200 '), body[:80]
    n += 1
    due += every
    time.sleep(max(0.0, due - time.monotonic()))
open(body_file, 'wb').write(body.split(b'\r\n\r\n', 1)[1])
PY
}

# Scrape every 100 ms until $TMP/stop exists, times to $TMP/scrapes.
scraper() {
  scrape 0 0.1 "$TMP/stop" >"$TMP/scrapes"
}

# quantiles FILE: "n median p99 max" of a column of numbers.
quantiles() {
  sort -n "$1" | awk '{v[NR] = $1} END {
    if (NR == 0) { print "0 - - -"; exit }
    m = v[int((NR + 1) / 2)]; p = v[int(NR * 0.99 + 0.999)]; if (p == "") p = v[NR]
    printf "%d %.3f %.3f %.3f\n", NR, m, p, v[NR] }'
}

# run MODE (scraped|unscraped): one row of the table.
run() {
  start_server
  rm -f "$TMP/stop"
  [ "$1" = scraped ] && { scraper & SCRAPER=$!; }
  local c0; c0=$(cpu_secs "$PID")
  local json; json=$(taskset -c 1 "$S" load "tcp://$ECHO" --conns 1000 --pipeline 16 \
    --duration "$SECS" --json 2>/dev/null)
  local c1; c1=$(cpu_secs "$PID")
  touch "$TMP/stop"
  local q="0 - - -"
  if [ "$1" = scraped ]; then wait "$SCRAPER"; q=$(quantiles "$TMP/scrapes"); fi
  stop_server
  echo "$json" | python3 -c "
import json, sys
d = json.load(sys.stdin)
n, med, p99, mx = '$q'.split()
lat = d['latency_us']
print('| $1 | %.0f | %.0f | %.0f | %.2f | %s | %s | %s |' % (
    d['messages_per_sec'], lat['p99'], lat['p99_9'],
    ($c1 - $c0) / max(d['messages'], 1) * 1e6, n, med, p99))
print('%s %f %f' % ('$1', d['messages_per_sec'], lat['p99_9']), file=open('$TMP/pairs', 'a'))
"
}

echo "TCP echo, 1000 connections, pipeline 16, 64 B, $SECS s a run; server on CPU 0, load and scraper on CPU 1"
echo "(load average at the start: $(cut -d' ' -f1-3 /proc/loadavg))"
: >"$TMP/pairs"
echo "| run | msgs/s | p99 µs | p99.9 µs | server CPU µs/msg | scrapes | scrape median ms | scrape p99 ms |"
echo "|---|---|---|---|---|---|---|---|"
for _ in $(seq "$ROUNDS"); do
  run unscraped
  run scraped
done
# Each scraped run against the unscraped run just before it.
python3 -c "
rows = [l.split() for l in open('$TMP/pairs')]
un = [r for r in rows if r[0] == 'unscraped']
sc = [r for r in rows if r[0] == 'scraped']
ratios = sorted(float(s[1]) / float(u[1]) for u, s in zip(un, sc))
p999 = sorted(float(s[2]) / float(u[2]) for u, s in zip(un, sc))
med = lambda v: v[len(v) // 2]
print('scraped / unscraped, median of %d pairs: msgs/s x%.3f, p99.9 x%.3f (pairs: %s)' % (
    len(ratios), med(ratios), med(p999), ' '.join('%.3f' % r for r in ratios)))
"
echo "(load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"

# held N: median and p99 of $SCRAPES scrapes while N idle connections are held.
held() {
  local n=$1
  taskset -c 1 "$S" load "tcp://$ECHO" --idle --conns "$n" --connect-rate 20000 --duration 600 \
    >/dev/null 2>&1 &
  local holder=$!
  local label="service=\"echo\",proto=\"tcp\",addr=\"$ECHO\""
  for _ in $(seq 600); do
    scrape 1 0 >/dev/null
    grep -qF "sockloop_connections_open{$label} $n" "$TMP/body" && break
    sleep 0.1
  done
  grep -qF "sockloop_connections_open{$label} $n" "$TMP/body" || echo "warning: $n connections not all open"
  scrape "$SCRAPES" 0.05 >"$TMP/held"
  local bytes; bytes=$(wc -c <"$TMP/body")
  kill "$holder"; wait "$holder" 2>/dev/null
  read -r k med p99 mx < <(quantiles "$TMP/held")
  echo "| $n | $k | $med | $p99 | $mx | $bytes |"
}

echo
echo "One scrape (connect to the server's close) with N idle connections held; server on CPU 0"
echo "| connections held | scrapes | median ms | p99 ms | max ms | body bytes |"
echo "|---|---|---|---|---|---|"
start_server
held 10
sleep 1
held "$HELD"
stop_server
