#!/usr/bin/env bash
# No slowdown as reports pile up (issue #6): sends CHUNKS x PER_CHUNK new
# health reports to epigrid on SQLite at 64 connections, one loadgen run per
# chunk (at most 120 s each), and prints each chunk's rate and the ratio of
# the last 10 % of the chunks' mean rate to the first 10 %'s. The issue's
# figure is over 10 million reports (e.g. `bench/growth.sh 50 200000`); the
# default here is 10 x 50,000 so the run fits a CI-sized machine, and the
# scale is printed with the result.
#
#   bench/growth.sh [CHUNKS] [PER_CHUNK]
#
# EPIGRID_BENCH_LOADGEN=--spread-keys sends each connection's keys in a
# range of its own (64 insertion points in the key index, as clients that
# make random keys would) instead of time-ordered keys that only ever
# append at the index's right edge.
# EPIGRID_BENCH_HOUSEHOLDS=N spreads the reports over N households, a pass
# each (connection i reports for household i mod N), as in bench/intake.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
chunks="${1:-10}"
per_chunk="${2:-50000}"
[ -n "${EPIGRID_BENCH_NO_BUILD:-}" ] || cargo build --release -q -p epigrid -p epigrid-bench
bin=${EPIGRID_BENCH_BIN:-target/release}
work=$(mktemp -d)
trap 'kill "${epi_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
port=18092
"$bin/epigrid" demo --no-serve --residents 2000 --data-dir "$work/data" >/dev/null 2>&1
EPIGRID_PUBLIC_RATE_PER_CLIENT=0 EPIGRID_LOG=warn "$bin/epigrid" serve --data-dir "$work/data" \
    --config "$work/none.toml" --listen "127.0.0.1:$port" 2>/dev/null & epi_pid=$!
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.05; done
households=${EPIGRID_BENCH_HOUSEHOLDS:-1}
mint_pass "$bin" "$work/data" "$households" | awk '{ print $1, $3 }' > "$work/vars"
body='{"idempotency_key":"{key}","entries":[{"resident_id":"{2}","temperature":36.6,"symptoms":[],"whereabouts":"at_home"}]}'
rates=()
total=0
for i in $(seq 1 "$chunks"); do
  out=$("$bin/loadgen" --url "http://127.0.0.1:$port/api/v1/public/health-reports" --connections 64 \
      --seconds 120 --max-requests "$per_chunk" --body "$body" --header "Authorization: Bearer {1}" --vars "$work/vars" \
      ${EPIGRID_BENCH_LOADGEN:-})
  rps=$(echo "$out" | tr ' ' '\n' | grep '^ok_rps=' | cut -d= -f2)
  p99=$(echo "$out" | tr ' ' '\n' | grep '^p99_ms=' | cut -d= -f2)
  ok=$(echo "$out" | tr ' ' '\n' | grep '^ok=' | cut -d= -f2)
  total=$(( total + ok ))
  echo "chunk $i: $ok reports, $total in all, rps=$rps p99=${p99}ms"
  rates+=("$rps")
done
size=$(du -sh "$work/data" | cut -f1)
tenth=$(( (chunks + 9) / 10 ))
echo "total $total reports from $households household(s) (database dir $size): last/first 10 % of chunks = $(printf '%s\n' "${rates[@]}" |
  awk -v n="$tenth" -v c="$chunks" '{ r[NR] = $1 } END { for (i = 1; i <= n; i++) { f += r[i]; l += r[c - n + i] } printf "%.2f", l / f }')"
