#!/usr/bin/env bash
# No slowdown as reports pile up (issue #6): sends CHUNKS x PER_CHUNK new
# health reports to epigrid on SQLite at 64 connections, one loadgen run per
# chunk, and prints each chunk's rate and the ratio last/first. The issue's
# figure is over 10 million reports; the default here is 10 x 50,000 so the
# run fits a CI-sized machine, and the scale is printed with the result.
#
#   bench/growth.sh [CHUNKS] [PER_CHUNK]
set -euo pipefail
cd "$(dirname "$0")/.."
chunks="${1:-10}"
per_chunk="${2:-50000}"
[ -n "${EPIGRID_BENCH_NO_BUILD:-}" ] || cargo build --release -q -p epigrid -p epigrid-bench
bin=target/release
work=$(mktemp -d)
trap 'kill "${epi_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
port=18092
"$bin/epigrid" demo --no-serve --residents 2000 --data-dir "$work/data" >/dev/null 2>&1
EPIGRID_PUBLIC_RATE_PER_CLIENT=0 EPIGRID_LOG=warn "$bin/epigrid" serve --data-dir "$work/data" \
    --config "$work/none.toml" --listen "127.0.0.1:$port" 2>/dev/null & epi_pid=$!
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.05; done
read -r pass _ resident < <("$bin/bench-pass" "sqlite://$work/data/epigrid.db" "$(cat "$work/data/secret.key")")
body="{\"idempotency_key\":\"{key}\",\"entries\":[{\"resident_id\":\"$resident\",\"temperature\":36.6,\"symptoms\":[],\"whereabouts\":\"at_home\"}]}"
first=""; last=""
for i in $(seq 1 "$chunks"); do
  out=$("$bin/loadgen" --url "http://127.0.0.1:$port/api/v1/public/health-reports" --connections 64 \
      --seconds 120 --max-requests "$per_chunk" --body "$body" --header "Authorization: Bearer $pass")
  rps=$(echo "$out" | tr ' ' '\n' | grep '^ok_rps=' | cut -d= -f2)
  p99=$(echo "$out" | tr ' ' '\n' | grep '^p99_ms=' | cut -d= -f2)
  echo "chunk $i: reports $(( (i - 1) * per_chunk ))..$(( i * per_chunk )) rps=$rps p99=${p99}ms"
  [ -z "$first" ] && first=$rps
  last=$rps
done
size=$(du -sh "$work/data" | cut -f1)
echo "total $(( chunks * per_chunk )) reports (database dir $size): last/first = $(awk -v a="$last" -v b="$first" 'BEGIN { printf "%.2f", a / b }')"
