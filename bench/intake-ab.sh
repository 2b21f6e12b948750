#!/usr/bin/env bash
# Two epigrid binaries side by side (issue #6): each serves its own fresh
# 2,000-resident demo on SQLite, and the load generator drives hello-world,
# A and B in turn, ROUNDS times, so the machine's drift falls on all three
# alike. Prints each run (rps, server CPU µs per request, loadgen CPU µs per
# request) and the medians, with A's and B's ratio to hello-world. CPU per
# request, read from /proc before and after each run, moves less with the
# machine's noise than the rate does.
#
#   bench/intake-ab.sh BIN_A BIN_B [CONNECTIONS] [SECONDS] [ROUNDS]
#
# e.g. build the base with `git stash; cargo build --release -p epigrid;
# cp target/release/epigrid /tmp/epi-a; git stash pop`, then the change.
# hello, loadgen and bench-pass come from target/release (`cargo build
# --release -p epigrid-bench`).
# EPIGRID_BENCH_POSTGRES=1 serves A and B on PostgreSQL at 127.0.0.1:5432
# instead (databases epigrid_ab_a and epigrid_ab_b, created and dropped);
# the server's CPU then includes every postgres process's (only the server
# under load has busy backends).
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1; B=$2; conns=${3:-64}; secs=${4:-4}; rounds=${5:-4}
bin=target/release
work=$(mktemp -d)
pids=()
postgres=${EPIGRID_BENCH_POSTGRES:-}
pg() { psql -h 127.0.0.1 -U postgres -d postgres -qc "$1" 2>/dev/null; }
pg_url() { echo "postgres://postgres@127.0.0.1:5432/epigrid_ab_$(basename "$1")"; } # dir
cleanup() {
  for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$postgres" ]; then
    sleep 0.5
    for d in a b; do pg "DROP DATABASE IF EXISTS epigrid_ab_$d"; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT
wait_up() { for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$1$2" >/dev/null && return 0; sleep 0.05; done; echo "no server on $1" >&2; exit 1; }
cpu_ticks() { # the server's, and with PostgreSQL its processes' too
  { awk '{ print $14 + $15 }' "/proc/$1/stat"
    [ -z "$postgres" ] || for p in $(pgrep -x postgres); do awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null; done
  } | awk '{ t += $1 } END { print t }'
}
"$bin/hello" 127.0.0.1:18290 2>/dev/null & hello_pid=$!; pids+=($hello_pid)
start() { # binary port dir
  local db=()
  if [ -n "$postgres" ]; then
    pg "DROP DATABASE IF EXISTS epigrid_ab_$(basename "$3")"; pg "CREATE DATABASE epigrid_ab_$(basename "$3")"
    db=(--database "$(pg_url "$3")")
  fi
  "$1" demo --no-serve --residents 2000 --data-dir "$3" "${db[@]}" >/dev/null 2>&1
  EPIGRID_PUBLIC_RATE_PER_CLIENT=0 EPIGRID_LOG=warn "$1" serve --data-dir "$3" \
      --config "$work/none.toml" --listen "127.0.0.1:$2" "${db[@]}" 2>/dev/null &
  pids+=($!); echo $! > "$3.pid"
  wait_up "$2" /healthz
}
start "$A" 18291 "$work/a"; start "$B" 18292 "$work/b"
wait_up 18290 /
. bench/lib.sh
pass_for() { # dir
  if [ -n "$postgres" ]; then
    "$bin/bench-pass" "$(pg_url "$1")" "$(cat "$1/secret.key")" 1
  else
    mint_pass "$bin" "$1"
  fi
}
read -r pass_a _ resident_a < <(pass_for "$work/a")
read -r pass_b _ resident_b < <(pass_for "$work/b")
run() { # label port pid pass resident
  local body="{\"idempotency_key\":\"{key}\",\"entries\":[{\"resident_id\":\"$5\",\"temperature\":36.6,\"symptoms\":[],\"whereabouts\":\"at_home\"}]}"
  local before after n rps user sys
  before=$(cpu_ticks "$3")
  /usr/bin/time -f "%U %S" -o "$work/loadgen_time" "$bin/loadgen" \
      --url "http://127.0.0.1:$2/api/v1/public/health-reports" --connections "$conns" \
      --seconds "$secs" --max-requests 20000000 --body "$body" \
      --header "Authorization: Bearer $4" > "$work/out"
  after=$(cpu_ticks "$3")
  n=$(tr ' ' '\n' < "$work/out" | grep '^requests=' | cut -d= -f2)
  rps=$(tr ' ' '\n' < "$work/out" | grep '^ok_rps=' | cut -d= -f2)
  read -r user sys < "$work/loadgen_time"
  awk -v l="$1" -v n="$n" -v rps="$rps" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" \
      -v u="$user" -v s="$sys" 'BEGIN { printf "%s %s %.1f %.1f\n", l, rps, t / hz * 1e6 / n, (u + s) * 1e6 / n }'
}
# One warm-up round, not counted.
run hello 18290 "$hello_pid" x x >/dev/null
run A 18291 "$(cat "$work/a.pid")" "$pass_a" "$resident_a" >/dev/null
run B 18292 "$(cat "$work/b.pid")" "$pass_b" "$resident_b" >/dev/null
for _ in $(seq 1 "$rounds"); do
  run hello 18290 "$hello_pid" x x
  run A 18291 "$(cat "$work/a.pid")" "$pass_a" "$resident_a"
  run B 18292 "$(cat "$work/b.pid")" "$pass_b" "$resident_b"
done | tee "$work/runs"
echo "== $conns connections, $rounds rounds of ${secs}s: medians (rps, server µs/request, ratio to hello)"
awk '
  { rps[$1, ++n[$1]] = $2; us[$1, n[$1]] = $3 }
  function median(a, k, m,   i, j, t, v) {
    for (i = 1; i <= m; i++) v[i] = a[k, i]
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
  }
  END {
    h = median(rps, "hello", n["hello"])
    split("hello A B", keys, " ")
    for (i = 1; i <= 3; i++) {
      k = keys[i]
      printf "%-5s rps=%.0f server_us_per_request=%.1f ratio=%.3f\n", k, median(rps, k, n[k]), median(us, k, n[k]), median(rps, k, n[k]) / h
    }
  }' "$work/runs"
