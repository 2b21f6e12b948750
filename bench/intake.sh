#!/usr/bin/env bash
# Durable intake against hello-world, side by side in one run (issue #6).
#
#   bench/intake.sh [SECONDS] [--postgres]
#
# Builds release binaries, makes a small demo sub-district, mints a resident
# pass (bench-pass), then for 64 and 256 connections runs the load generator
# against `hello` (axum, same runtime, no storage) and against epigrid's
# POST /api/v1/public/health-reports (validation, queue, group commit with
# synchronous=FULL, counters, audit), each request a new submission. Then an
# overload run: 10x the connections of the saturating run (2560), with RSS
# sampled, its useful rate printed as a share of the peak (the median rate
# at 256 connections, and a 3 s run at 256 just before each storm, on a
# host that drifts), and a 64-connection run straight after to see
# recovery.
# EPIGRID_BENCH_BIN=DIR takes the binaries from DIR (e.g. an older build,
# to compare before and after on the same machine).
# With --postgres the epigrid half also runs on PostgreSQL at
# 127.0.0.1:5432 (database epigrid_bench, created and dropped).
# EPIGRID_BENCH_HOUSEHOLDS=N spreads the load over N households, a pass each
# (connection i reports for household i mod N; default 1); hello-world gets
# the same request bytes.
# EPIGRID_BENCH_ROUNDS=N runs each hello-world / epigrid pair N times in
# turn and prints the medians (rate, p99, ratio) after the rounds: on a
# noisy machine one pair can land on a slow moment of either side. Each
# kind of storm runs N times too, with its medians (useful share of the
# peak, refusals' and hello-world's p99, memory growth) after.
# Idempotency keys are time-ordered, like the UUIDv7 keys of epigrid's own
# pages; EPIGRID_BENCH_LOADGEN=--spread-keys sends keys scattered across the
# key space instead (a client generating random keys).
# The load generator runs at SCHED_BATCH, for hello-world and epigrid alike,
# so that its threads, woken by the answers, never preempt the server's (a
# client on another machine takes none of the server's cores at all);
# EPIGRID_BENCH_LOADGEN=--compete keeps it at the normal policy, as before
# session 24 (docs/PERFORMANCE.md, session 24).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
seconds="${1:-10}"
postgres="${2:-}"
[ -n "${EPIGRID_BENCH_NO_BUILD:-}" ] || cargo build --release -q -p epigrid -p epigrid-bench
bin=${EPIGRID_BENCH_BIN:-target/release}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

hello_port=18090
epi_port=18091
path=/api/v1/public/health-reports

wait_up() { for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$1$2" >/dev/null && return 0; sleep 0.05; done; echo "server on $1 did not start" >&2; exit 1; }

"$bin/hello" "127.0.0.1:$hello_port" 2>/dev/null & hello_pid=$!
pids+=($hello_pid)
wait_up "$hello_port" /

start_epigrid() { # $1 = database URL or empty for SQLite
  local db=()
  [ -n "$1" ] && db=(--database "$1")
  "$bin/epigrid" demo --no-serve --residents 2000 --data-dir "$work/data" "${db[@]}" >/dev/null 2>&1
  EPIGRID_PUBLIC_RATE_PER_CLIENT=0 EPIGRID_LOG=warn "$bin/epigrid" serve --data-dir "$work/data" \
      --config "$work/none.toml" --listen "127.0.0.1:$epi_port" "${db[@]}" 2>/dev/null & epi_pid=$!
  pids+=($epi_pid)
  wait_up "$epi_port" /healthz
  local url="${1:-sqlite://$work/data/epigrid.db}"
  # A pass per household; connection i reports for household i mod N.
  "$bin/bench-pass" "$url" "$(cat "$work/data/secret.key")" "$households" \
      | awk '{ print $1, $3 }' > "$work/vars"
}
households=${EPIGRID_BENCH_HOUSEHOLDS:-1}
rounds=${EPIGRID_BENCH_ROUNDS:-1}
body='{"idempotency_key":"{key}","entries":[{"resident_id":"{2}","temperature":36.6,"symptoms":[],"whereabouts":"at_home"}]}'

load() { # port connections seconds [loadgen flags…]
  local port=$1 connections=$2 secs=$3
  shift 3
  "$bin/loadgen" --url "http://127.0.0.1:$port$path" --connections "$connections" --seconds "$secs" \
      --max-requests 20000000 --body "$body" --header "Authorization: Bearer {1}" \
      --vars "$work/vars" ${EPIGRID_BENCH_LOADGEN:-} "$@"
}


run_pair() { # label
  for c in 64 256; do
    ratios=(); hellos=(); epis=(); p99s=()
    for round in $(seq 1 "$rounds"); do
      h=$(load "$hello_port" "$c" "$seconds")
      e=$(load "$epi_port" "$c" "$seconds")
      hr=$(echo "$h" | field ok_rps); er=$(echo "$e" | field ok_rps)
      ratio=$(awk -v a="$er" -v b="$hr" 'BEGIN { printf "%.3f", a / b }')
      ratios+=("$ratio"); hellos+=("$hr"); epis+=("$er"); p99s+=("$(echo "$e" | field p99_ms)")
      printf '%-9s c=%-4s hello rps=%-7s p50=%-6s p99=%-6s | epigrid rps=%-7s p50=%-6s p99=%-6s 503=%s | ratio=%.2f%s\n' \
        "$1" "$c" "$hr" "$(echo "$h" | field p50_ms)" "$(echo "$h" | field p99_ms)" \
        "$er" "$(echo "$e" | field p50_ms)" "$(echo "$e" | field p99_ms)" "$(echo "$e" | field s503)" \
        "$ratio" "$([ "$rounds" -gt 1 ] && echo " (round $round)")"
    done
    # The epigrid medians, kept: the overload's useful throughput is a
    # share of the peak, the rate at 256 connections (the load the storm is
    # 10x of); its share of the 64-connection rate is printed too.
    printf -v "epi_median_$c" '%s' "$(printf '%s\n' "${epis[@]}" | median)"
    if [ "$rounds" -gt 1 ]; then
      printf '%-9s c=%-4s medians of %s rounds: hello rps=%s epigrid rps=%s p99=%s ms | ratio=%.2f\n' "$1" "$c" "$rounds" \
        "$(printf '%s\n' "${hellos[@]}" | median)" "$(printf '%s\n' "${epis[@]}" | median)" \
        "$(printf '%s\n' "${p99s[@]}" | median)" "$(printf '%s\n' "${ratios[@]}" | median)"
    fi
  done
}

rss() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }

overload() { # [loadgen flags…], e.g. --honour-retry-after
  # One storm per round, like the pairs above: a single 5 s storm moved by
  # a fifth from one run to the next on a noisy host.
  local shares=() near_shares=() refused=() hellos=() growths=()
  # The steady level once, before the first storm: memory a storm leaves
  # behind must not become the next storm's baseline.
  steady=$(rss "$epi_pid")
  for round in $(seq 1 "$rounds"); do
    # The peak again just before this storm, on the same server: the host
    # drifts, and the 256-connection median above is minutes old (3 s, as
    # bench/overload-ab.sh takes it).
    rate_before=$(load "$epi_port" 256 3 | field ok_rps)
    peak=$steady
    load "$epi_port" 2560 "$seconds" "$@" > "$work/over.txt" & lg=$!
    while kill -0 "$lg" 2>/dev/null; do r=$(rss "$epi_pid"); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.2; done
    o=$(cat "$work/over.txt")
    # hello-world under the same burst, its RSS sampled the same way: the
    # connections' own buffers, which no intake design can avoid.
    hello_steady=$(rss "$hello_pid")
    hello_peak=$hello_steady
    load "$hello_port" 2560 "$seconds" > "$work/hello_over.txt" & lg=$!
    while kill -0 "$lg" 2>/dev/null; do r=$(rss "$hello_pid"); [ "$r" -gt "$hello_peak" ] && hello_peak=$r; sleep 0.2; done
    h=$(cat "$work/hello_over.txt")
    after=$(load "$epi_port" 64 5)
    useful=$(echo "$o" | field ok_rps)
    share() { awk -v a="$useful" -v b="$1" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
    echo "overload${1:+ ($1)} c=2560 epigrid useful rps=$useful ($(share "$epi_median_256") of the peak at c=256, $(share "$rate_before") of the $rate_before rps just before, $(share "$epi_median_64") of c=64) 503=$(echo "$o" | field s503) of $(echo "$o" | field requests)" \
         "refused p99=$(echo "$o" | field refused_p99_ms) ms, all p99=$(echo "$o" | field p99_ms) ms, errors=$(echo "$o" | field errors)" \
         "| hello p99=$(echo "$h" | field p99_ms) ms, RSS ${hello_steady}->${hello_peak} kB | RSS steady=${steady} kB peak=${peak} kB" \
         "| next 5 s at c=64: rps=$(echo "$after" | field ok_rps) p99=$(echo "$after" | field p99_ms) ms$([ "$rounds" -gt 1 ] && echo " (round $round)")"
    shares+=("$(awk -v a="$useful" -v b="$epi_median_256" 'BEGIN { print 100 * a / b }')")
    near_shares+=("$(awk -v a="$useful" -v b="$rate_before" 'BEGIN { print 100 * a / b }')")
    refused+=("$(echo "$o" | field refused_p99_ms)"); hellos+=("$(echo "$h" | field p99_ms)")
    growths+=("$(awk -v a="$peak" -v b="$steady" 'BEGIN { print a / b }')")
  done
  if [ "$rounds" -gt 1 ]; then
    printf 'overload%s medians of %s storms: useful %.0f%% of the peak at c=256 (%.0f%% of the peak just before each), refused p99=%s ms (hello p99=%s ms), RSS peak/steady=%.2f\n' \
      "${1:+ ($1)}" "$rounds" "$(printf '%s\n' "${shares[@]}" | median)" "$(printf '%s\n' "${near_shares[@]}" | median)" \
      "$(printf '%s\n' "${refused[@]}" | median)" \
      "$(printf '%s\n' "${hellos[@]}" | median)" "$(printf '%s\n' "${growths[@]}" | median)"
  fi
}

echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), ${seconds}s per run, $households household(s), $rounds round(s)$(case " ${EPIGRID_BENCH_LOADGEN:-} " in *" --compete "*) echo ", load generator at the normal policy";; *) echo ", load generator at SCHED_BATCH";; esac)"
start_epigrid ""
# A short warm-up so both servers have their connections and caches.
load "$hello_port" 64 1 >/dev/null; load "$epi_port" 64 1 >/dev/null
run_pair sqlite
overload
# The same burst from clients that wait for Retry-After (with jitter), as
# the self-service page's script does.
overload --honour-retry-after
echo "reports stored: $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$epi_port/healthz") (server alive after overload)"
kill "$epi_pid"; wait "$epi_pid" 2>/dev/null || true

if [ "$postgres" = "--postgres" ]; then
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS epigrid_bench" 2>/dev/null
  psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE epigrid_bench"
  rm -rf "$work/data"
  start_epigrid "postgres://postgres@127.0.0.1:5432/epigrid_bench"
  load "$epi_port" 64 1 >/dev/null
  run_pair postgres
  kill "$epi_pid"; wait "$epi_pid" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE epigrid_bench"
fi
