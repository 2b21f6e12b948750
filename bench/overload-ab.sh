#!/usr/bin/env bash
# Two epigrid binaries side by side under the overload of issue #6: each
# round starts each binary on a fresh 2,000-resident demo on SQLite, takes
# its peak (256 connections, the saturating load, 3 s), then sends 2,560
# connections for 5 s (10x the saturating load), and
# prints the useful rate and its share of the peak, the 503s, the refusals'
# p99 and the memory (RSS, steady → highest, sampled every 0.2 s). A and B
# take turns, so the machine's drift falls on both alike.
#
#   bench/overload-ab.sh BIN_A BIN_B [ROUNDS] [LOADGEN FLAGS…]
#
# e.g. `bench/overload-ab.sh /tmp/epi-a target/release/epigrid 3` for
# clients that retry at once, or with `--honour-retry-after` for clients
# that wait as the self-service page does. loadgen and bench-pass come from
# target/release (`cargo build --release -p epigrid-bench`).
# EPIGRID_BENCH_TLS=1 serves both over TLS (`tls_cert`, `tls_key`: a
# self-signed certificate made with openssl) and drives them over https; the
# line then also gives the storm's connections made (handshakes) a second.
# EPIGRID_BENCH_STORM=N sends N connections in the storm instead of 2,560.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1; B=$2; rounds=${3:-3}; shift $(( $# < 3 ? $# : 3 ))
bin=target/release
port=18390
work=$(mktemp -d)
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
. bench/lib.sh
scheme=http; tls_env=(); ca=()
if [ -n "${EPIGRID_BENCH_TLS:-}" ]; then
  # Not a CA: rustls (webpki) refuses a CA certificate as the server's own.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
      -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
      -addext basicConstraints=critical,CA:FALSE \
      -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
  scheme=https; tls_env=(EPIGRID_TLS_CERT="$work/cert.pem" EPIGRID_TLS_KEY="$work/key.pem")
  ca=(--ca "$work/cert.pem")
fi
url="$scheme://127.0.0.1:$port"
storm=${EPIGRID_BENCH_STORM:-2560}
rss() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
one() { # label binary [loadgen flags…]
  local label=$1 exe=$2; shift 2
  rm -rf "$work/data" "$work/data.pass.db"
  "$exe" demo --no-serve --residents 2000 --data-dir "$work/data" >/dev/null 2>&1
  env "${tls_env[@]}" EPIGRID_PUBLIC_RATE_PER_CLIENT=0 EPIGRID_LOG=warn "$exe" serve --data-dir "$work/data" \
      --config "$work/none.toml" --listen "127.0.0.1:$port" 2>/dev/null & pid=$!
  for _ in $(seq 1 200); do
    curl -sf ${ca:+--cacert "$work/cert.pem"} "$url/healthz" >/dev/null && break; sleep 0.05
  done
  local pass resident
  read -r pass _ resident < <(mint_pass "$bin" "$work/data")
  local body="{\"idempotency_key\":\"{key}\",\"entries\":[{\"resident_id\":\"$resident\",\"temperature\":36.6,\"symptoms\":[],\"whereabouts\":\"at_home\"}]}"
  load() { # connections seconds [flags…]
    local c=$1 s=$2; shift 2
    "$bin/loadgen" --url "$url/api/v1/public/health-reports" "${ca[@]}" --connections "$c" \
        --seconds "$s" --max-requests 20000000 --body "$body" --header "Authorization: Bearer $pass" "$@"
  }
  load 64 1 >/dev/null
  local peak steady highest out
  peak=$(load 256 3 | field ok_rps)
  steady=$(rss "$pid"); highest=$steady
  load "$storm" 5 "$@" > "$work/storm" & local generator=$!
  while kill -0 "$generator" 2>/dev/null; do
    local now; now=$(rss "$pid"); [ "$now" -gt "$highest" ] && highest=$now; sleep 0.2
  done
  out=$(cat "$work/storm")
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  local useful; useful=$(echo "$out" | field ok_rps)
  awk -v n="$label" -v p="$peak" -v u="$useful" -v r="$(echo "$out" | field s503)" \
      -v q="$(echo "$out" | field refused_p99_ms)" -v s="$steady" -v h="$highest" \
      -v c="$(echo "$out" | field connects)" -v t="$(echo "$out" | field seconds)" 'BEGIN {
    printf "%s peak(256)=%6d useful=%6d share=%.2f 503=%6d refused_p99=%7.1f ms rss=%d->%d kB (%.2fx) connects/s=%d\n",
      n, p, u, u / p, r, q, s, h, h / s, c / t }'
}
echo "== overload side by side over $scheme: $(nproc) cores, $rounds round(s), loadgen flags: ${*:-none (clients retry at once)}"
for _ in $(seq 1 "$rounds"); do
  one A "$A" "$@"
  one B "$B" "$@"
done
