#!/usr/bin/env bash
# CPU per request by thread, and the machine's idle share, under load
# (issue #6): where the time goes, read from /proc, which moves less with
# the machine's noise than the rate does.
#
#   bench/cpu-per-thread.sh hello|epigrid [CONNECTIONS] [SECONDS]
#
# epigrid serves a fresh 2,000-resident demo on SQLite and takes health
# reports, as in bench/intake.sh; EPIGRID_BENCH_EPIGRID=PATH runs another epigrid
# binary (an older build, side by side); EPIGRID_BENCH_HOUSEHOLDS=N spreads the
# load over N households (a pass each; default 1). Prints the rate, server CPU µs
# per request, the idle share of both cores, and per thread name (the load
# generator's as gen-…) the CPU µs (user and system), context switches (of
# them, preemptions: /proc/…/status's nonvoluntary_ctxt_switches) and µs
# spent runnable but waiting for a core (/proc/…/schedstat), per request.
# EPIGRID_BENCH_LOADGEN=--compete runs the load generator at the normal
# scheduling policy, as before session 24, instead of SCHED_BATCH.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
target=$1; connections=${2:-64}; secs=${3:-8}
households=${EPIGRID_BENCH_HOUSEHOLDS:-1}; vars=()
bin=target/release
epigrid=${EPIGRID_BENCH_EPIGRID:-$bin/epigrid}
work=$(mktemp -d); port=18192
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
path=/api/v1/public/health-reports
if [ "$target" = hello ]; then
  "$bin/hello" "127.0.0.1:$port" 2>/dev/null & pid=$!
  sleep 0.5
  body='{"idempotency_key":"{key}"}'; header="X-Bench: hello"
else
  "$epigrid" demo --no-serve --residents 2000 --data-dir "$work/data" >/dev/null 2>&1
  EPIGRID_PUBLIC_RATE_PER_CLIENT=0 EPIGRID_LOG=warn "$epigrid" serve --data-dir "$work/data" \
      --config "$work/none.toml" --listen "127.0.0.1:$port" 2>/dev/null & pid=$!
  for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.05; done
  # One pass per household: connection i reports for household i mod N.
  mint_pass "$bin" "$work/data" "$households" | awk '{ print $1, $3 }' > "$work/vars"
  body='{"idempotency_key":"{key}","entries":[{"resident_id":"{2}","temperature":36.6,"symptoms":[],"whereabouts":"at_home"}]}'
  header='Authorization: Bearer {1}'
  vars=(--vars "$work/vars")
fi
load() { "$bin/loadgen" ${EPIGRID_BENCH_LOADGEN:-} --url "http://127.0.0.1:$port$path" --connections "$connections" --seconds "$1" \
    --max-requests 20000000 --body "$body" --header "$header" "${vars[@]}"; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
idle() { awk '/^cpu / { print $5 + $6 }' /proc/stat; }
threads() { # name, user and system ticks, switches, preemptions, ns waiting for a core; by thread name
  # The load generator's threads too (named gen-…): it shares the two cores.
  for t in /proc/"$pid"/task/* /proc/"$generator"/task/*; do
    prefix=; case $t in /proc/"$generator"/*) prefix=gen-;; esac
    echo "$prefix$(tr ' ' _ < "$t/comm") $(awk '{ print $14, $15 }' "$t/stat") $(awk '/ctxt_switches/ { s += $2 } /^nonvoluntary/ { p = $2 } END { print s, p }' "$t/status") $(awk '{ print $2 }' "$t/schedstat")"
  done | awk '{ u[$1] += $2; y[$1] += $3; w[$1] += $4; p[$1] += $5; q[$1] += $6 } END { for (k in u) print k, u[k], y[k], w[k], p[k], q[k] }' | sort
}
load 1 >/dev/null
load "$secs" > "$work/load.txt" & loader=$!
sleep 0.3
generator=$(pgrep -P "$loader" loadgen)
s0=$(ticks "$pid"); i0=$(idle); t0=$(date +%s.%N); threads > "$work/t0"
sleep $((secs - 1))
s1=$(ticks "$pid"); i1=$(idle); t1=$(date +%s.%N); threads > "$work/t1"
wait "$loader"
rps=$(tr ' ' '\n' < "$work/load.txt" | grep '^ok_rps=' | cut -d= -f2)
hz=$(getconf CLK_TCK)
awk -v s=$((s1 - s0)) -v i=$((i1 - i0)) -v t0="$t0" -v t1="$t1" -v r="$rps" -v n="$target" -v hz="$hz" -v cores="$(nproc)" \
  'BEGIN { d = t1 - t0; printf "%s rps=%d server_us_per_request=%.1f idle=%.0f%%\n", n, r, s * 1e6 / hz / (r * d), 100 * i / hz / (cores * d) }'
join "$work/t0" "$work/t1" | awk -v r="$rps" -v d=$((secs - 1)) -v hz="$hz" \
  '{ n = r * d; u = ($7 - $2) * 1e6 / hz / n; s = ($8 - $3) * 1e6 / hz / n
     if (u + s > 0) printf "  %-20s cpu_us=%.1f (user %.1f, system %.1f) switches=%.2f preempted=%.3f runqueue_wait_us=%.1f\n", $1, u + s, u, s, ($9 - $4) / n, ($10 - $5) / n, ($11 - $6) / 1e3 / n }'
