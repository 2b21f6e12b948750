#!/usr/bin/env bash
# Several `epigrid serve` instances on one PostgreSQL database (DESIGN.md's
# scale-out path), against one: each round drives one instance with
# CONNECTIONS connections, then N instances with CONNECTIONS / N each at
# once, and prints the reports a second of each. All instances share this
# machine's cores, so this shows what the database side gains or loses from
# more writers (each instance has its own intake writer), not what more
# machines would give.
#
#   bench/pg-instances.sh [INSTANCES] [CONNECTIONS] [SECONDS] [ROUNDS]
#
# The demo (2,000 residents) goes into the database epigrid_instances at
# 127.0.0.1:5432, created and dropped. EPIGRID_BENCH_HOUSEHOLDS=N spreads
# the load over N households (a pass each; default 1, so one grid: every
# batch raises that grid's day row). epigrid, loadgen and bench-pass come
# from target/release (`cargo build --release -p epigrid -p epigrid-bench`).
set -euo pipefail
cd "$(dirname "$0")/.."
instances=${1:-2}; connections=${2:-64}; secs=${3:-5}; rounds=${4:-3}
households=${EPIGRID_BENCH_HOUSEHOLDS:-1}
bin=target/release
work=$(mktemp -d)
url=postgres://postgres@127.0.0.1:5432/epigrid_instances
pg() { psql -h 127.0.0.1 -U postgres -d postgres -qc "$1" 2>/dev/null; }
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  pg "DROP DATABASE IF EXISTS epigrid_instances"
  rm -rf "$work"
}
trap cleanup EXIT
pg "DROP DATABASE IF EXISTS epigrid_instances"; pg "CREATE DATABASE epigrid_instances"
"$bin/epigrid" demo --no-serve --residents 2000 --data-dir "$work/data" --database "$url" >/dev/null 2>&1
ports=()
for i in $(seq 1 "$instances"); do
  port=$((18400 + i))
  EPIGRID_PUBLIC_RATE_PER_CLIENT=0 EPIGRID_LOG=warn "$bin/epigrid" serve --data-dir "$work/data" \
      --database "$url" --config "$work/none.toml" --listen "127.0.0.1:$port" 2>/dev/null &
  pids+=($!); ports+=("$port")
  for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.05; done
done
"$bin/bench-pass" "$url" "$(cat "$work/data/secret.key")" "$households" | awk '{ print $1, $3 }' > "$work/vars"
body='{"idempotency_key":"{key}","entries":[{"resident_id":"{2}","temperature":36.6,"symptoms":[],"whereabouts":"at_home"}]}'
load() { # port connections: prints the rate of answered submissions
  "$bin/loadgen" --url "http://127.0.0.1:$1/api/v1/public/health-reports" --connections "$2" \
      --seconds "$secs" --max-requests 20000000 --body "$body" --header "Authorization: Bearer {1}" \
      --vars "$work/vars" | tr ' ' '\n' | grep '^ok_rps=' | cut -d= -f2
}
share=$((connections / instances))
echo "== $instances instances on one PostgreSQL database, $households household(s), ${secs}s per run"
for round in $(seq 1 "$rounds"); do
  one=$(load "${ports[0]}" "$connections")
  loaders=()
  for port in "${ports[@]}"; do load "$port" "$share" > "$work/rate.$port" & loaders+=($!); done
  wait "${loaders[@]}"
  all=$(cat "$work"/rate.* | awk '{ t += $1 } END { print t }')
  each=$(cat "$work"/rate.* | paste -sd+ -)
  echo "round $round: one instance, $connections connections: $one rps | $instances instances, $share each: $all rps ($each)"
done
