#!/bin/bash
# The pictures in BENCHMARKS.md: the headline comparisons run with their
# `load --json` objects saved in benches/results/, then drawn by
# `sockloop report` into docs/img/ (one SVG per chart, cut out of each report).
#
#   bash benches/charts.sh              # run (about 2 minutes), then draw
#   DRAW_ONLY=1 bash benches/charts.sh  # redraw from benches/results/ only
#
# Knobs: SECS (2 per run), PARTS (123: which comparisons to run), CHARTS
# (which charts of each report to keep, by slug of their title),
# YARDSTICK (../shared/yardstick). Timing-sensitive: on a shared machine run it alone
# (we wrap it in `flock` on a lock file). Needs the yardstick's tcpkali
# (../shared/yardstick/tcpkali/build.sh builds it; TCPKALI=path overrides);
# without it the tcpkali part fails loudly.
#
# 1. TCP echo, sockloop vs tokio (benches/echo_vs_tokio.rs, in one process:
#    two servers on a thread each, the generator on a third) at six points.
# 2. UDP echo, sockloop vs tokio (benches/udp_echo_vs_tokio.rs: servers on
#    CPU 0, generator on CPU 1), 64 and 512 B.
# 3. `load --rate` vs tcpkali at fixed rates (server on CPU 0, generators on
#    CPU 1): tcpkali's figures are its printed p50/p90/p99/p99.9 (0.1 ms
#    steps, counted from the actual send), written as a JSON object that
#    `sockloop report` reads like any other run.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-2}
PARTS=${PARTS:-123}
CHARTS=${CHARTS:-latency-by-percentile messages-per-second}
YARDSTICK=${YARDSTICK:-../shared/yardstick}
R=benches/results
IMG=docs/img
mkdir -p "$R" "$IMG"
S=target/release/sockloop

if [ -z "${DRAW_ONLY:-}" ]; then
  exes=$(cargo build --release --bench echo_vs_tokio --bench udp_echo_vs_tokio \
    --message-format=json 2>/dev/null | grep -o '"executable":"[^"]*"' | cut -d'"' -f4)
  ECHO=$(echo "$exes" | grep '/echo_vs_tokio-')
  UDP=$(echo "$exes" | grep '/udp_echo_vs_tokio-')

  if [[ $PARTS == *1* ]]; then
  echo "== 1. TCP echo, sockloop vs tokio, six points ($SECS s each)"
  for point in "50 64 1" "50 64 16" "50 512 1" "50 512 16" "1000 64 1" "1000 64 16"; do
    set -- $point
    BENCH_SECS=$SECS BENCH_CONNS=$1 BENCH_SIZE=$2 BENCH_PIPELINE=$3 BENCH_JSON_DIR=$R "$ECHO"
  done

  fi
  if [[ $PARTS == *2* ]]; then
  echo "== 2. UDP echo, sockloop vs tokio"
  BENCH_SECS=$SECS BENCH_ROUNDS=1 BENCH_JSON_DIR=$R "$UDP"
  fi
  if [[ $PARTS == *3* ]]; then

  echo "== 3. load --rate vs tcpkali, 50 connections"
  K=${TCPKALI:-$(bash $YARDSTICK/tcpkali/build.sh)}
  [ -x "$K" ] || { echo "error: no tcpkali at '$K'" >&2; exit 1; }
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  taskset -c 0 $S serve --listen echo=tcp://127.0.0.1:$port >/dev/null 2>&1 & SP=$!
  trap 'kill $SP 2>/dev/null' EXIT
  sleep 0.5
  msg="$(head -c 60 /dev/zero | tr '\0' a)ZQX\n"
  for rate in 10000 50000; do
    taskset -c 1 $S load tcp://127.0.0.1:$port --conns 50 --rate $rate --duration $SECS \
      --json 2>/dev/null > $R/rate-$rate-load.json
    out=$(taskset -c 1 "$K" -c 50 --connect-rate 5000 -r $((rate / 50)) -T ${SECS}s -m "$msg" \
      --latency-marker ZQX --latency-percentiles 50,90,99,99.9 127.0.0.1:$port 2>&1)
    echo "$out" | python3 -c "
import json, re, sys
t = sys.stdin.read()
p = [float(x) * 1000 for x in re.search(r'percentiles: ([0-9./]+) ms', t).group(1).split('/')]
rx = int(re.search(r'Total data received:.*\((\d+) bytes\)', t).group(1))
secs = float(re.search(r'Test duration: ([0-9.]+) s', t).group(1))
print(json.dumps({'connections': 50, 'messages': rx // 64, 'messages_per_sec': round(rx / 64 / secs, 1),
  'latency_us': dict(zip(['p50', 'p90', 'p99', 'p99_9'], p)),
  'settings': {'tool': 'tcpkali 1.2', 'rate': $rate, 'conns': 50, 'size': 64, 'duration_s': secs}}))
" > $R/rate-$rate-tcpkali.json
    echo "rate $rate: load p50/p99 $(python3 -c "import json; d=json.load(open('$R/rate-$rate-load.json'))['latency_us']; print(d['p50'], d['p99'])") µs; tcpkali $(python3 -c "import json; d=json.load(open('$R/rate-$rate-tcpkali.json'))['latency_us']; print(d['p50'], d['p99'])") µs"
  done
  kill $SP; trap - EXIT
  fi
fi

# One report per comparison; each chart cut out of it as docs/img/NAME-CHART.svg.
draw() {
  local name=$1; shift
  $S report "$@" --html $R/$name.html
  python3 - "$R/$name.html" "$IMG/$name" "$CHARTS" <<'EOF'
import re, sys
page, prefix, keep = sys.argv[1], sys.argv[2], sys.argv[3].split()
html = open(page, encoding='utf-8').read()
for title, svg in re.findall(r'<h2>(.*?)</h2>\s*<figure[^>]*>\s*(<svg.*?</svg>)', html, re.S):
    slug = re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')
    if slug in keep:
        open(f'{prefix}-{slug}.svg', 'w', encoding='utf-8').write(svg + '\n')
EOF
  rm -f $R/$name.html
}

echo "== drawing into $IMG/"
for point in "50 64 1" "50 64 16" "50 512 1" "50 512 16" "1000 64 1" "1000 64 16"; do
  set -- $point
  draw echo-c$1-s$2-k$3 $R/sockloop-c$1-s$2-k$3.json $R/tokio-c$1-s$2-k$3.json \
    --label "sockloop, $1 × $2 B, pipeline $3" --label "tokio, $1 × $2 B, pipeline $3"
done
for size in 64 512; do
  draw udp-s$size $R/udp-sockloop-s$size-r1.json $R/udp-tokio-s$size-r1.json \
    --label "sockloop UDP, $size B" --label "tokio UDP, $size B"
done
for rate in 10000 50000; do
  draw rate-$rate $R/rate-$rate-load.json $R/rate-$rate-tcpkali.json \
    --label "load --rate $rate" --label "tcpkali -r $((rate / 50)) × 50"
done
ls -l $IMG
