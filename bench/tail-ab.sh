#!/usr/bin/env bash
# Two epigrid binaries' tails side by side (issue #6): each serves its own
# fresh 2,000-resident demo on SQLite, and the load generator drives A and
# B in turn, ROUNDS times, printing each round's rate, p50 and p99, then
# the medians and in how many rounds B's p99 was the lower. After each
# run the script waits PAUSE seconds (default 3), so that work a server
# does when idle (the room it keeps ahead in its file) is done before the
# other is measured, as it would be on a machine of its own.
#
#   bench/tail-ab.sh BIN_A BIN_B [CONNECTIONS] [ROUNDS] [SECONDS]
#
# A and B may be wrapper scripts that set a setting, e.g. the same build
# with `EPIGRID_STORAGE_ROOM_MB=0 exec target/release/epigrid "$@"`.
# loadgen and bench-pass come from target/release (`cargo build --release
# -p epigrid-bench`).
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1; B=$2; conns=${3:-256}; rounds=${4:-6}; secs=${5:-5}; pause=${EPIGRID_BENCH_PAUSE:-3}
bin=target/release
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
. bench/lib.sh
start() { # binary port dir
  "$1" demo --no-serve --residents 2000 --data-dir "$3" >/dev/null 2>&1
  EPIGRID_PUBLIC_RATE_PER_CLIENT=0 EPIGRID_LOG=warn "$1" serve --data-dir "$3" \
      --listen "127.0.0.1:$2" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$2/healthz" >/dev/null && return 0; sleep 0.05; done
  echo "no server on $2" >&2; exit 1
}
start "$A" 18591 "$work/a"; start "$B" 18592 "$work/b"
declare -A body pass
for side in a b; do
  read -r pass[$side] _ resident < <(mint_pass "$bin" "$work/$side")
  body[$side]="{\"idempotency_key\":\"{key}\",\"entries\":[{\"resident_id\":\"$resident\",\"temperature\":36.6,\"symptoms\":[],\"whereabouts\":\"at_home\"}]}"
done
sleep "$pause"
declare -A rps p99
lower=0
for r in $(seq 1 "$rounds"); do
  for side in a b; do
    port=$([ "$side" = a ] && echo 18591 || echo 18592)
    out=$("$bin/loadgen" --url "http://127.0.0.1:$port/api/v1/public/health-reports" \
        --connections "$conns" --seconds "$secs" --max-requests 20000000 --body "${body[$side]}" \
        --header "Authorization: Bearer ${pass[$side]}")
    rps[$side$r]=$(echo "$out" | field ok_rps); p99[$side$r]=$(echo "$out" | field p99_ms)
    printf '%s c=%-4s round %s: rps=%-7s p50=%-6s p99=%s ms\n' "${side^^}" "$conns" "$r" \
        "${rps[$side$r]}" "$(echo "$out" | field p50_ms)" "${p99[$side$r]}"
    sleep "$pause"
  done
  awk -v a="${p99[a$r]}" -v b="${p99[b$r]}" 'BEGIN { exit !(b < a) }' && lower=$((lower + 1))
done
for side in a b; do
  printf '%s medians of %s rounds: rps=%s p99=%s ms\n' "${side^^}" "$rounds" \
    "$(for r in $(seq 1 "$rounds"); do echo "${rps[$side$r]}"; done | median)" \
    "$(for r in $(seq 1 "$rounds"); do echo "${p99[$side$r]}"; done | median)"
done
echo "B's p99 lower in $lower of $rounds rounds"
