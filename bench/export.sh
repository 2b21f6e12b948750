#!/usr/bin/env bash
# Export of a demo sub-district of N residents (default 50,000) through the
# CLI, as the office would run it: residents masked as .xlsx and .csv, the
# task list, and the daily report of the whole sub-district. Each run is its
# own process under /usr/bin/time -v (wall time and peak memory).
#
#   bench/export.sh [RESIDENTS]
#
# SQLite in a temp directory; the demo's sub-district code is 371602001.
set -euo pipefail
cd "$(dirname "$0")/.."
residents="${1:-50000}"
cargo build -q --release -p epigrid
bin=target/release/epigrid
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export EPIGRID_SECRET_KEY=$("$bin" keygen)
common=(--data-dir "$work" --config "$work/none.toml")
"$bin" "${common[@]}" demo --residents "$residents" --admin-password bench-password-1 --no-serve >/dev/null 2>&1
code=371602001
echo "demo: $residents residents, sub-district $code"
run() { # label, then export arguments
    local label=$1; shift
    /usr/bin/time -v "$bin" "${common[@]}" export "$@" 2>"$work/time" >/dev/null
    local wall peak
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time")
    peak=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$work/time")
    echo "$label: wall $wall, peak ${peak} MiB, $(grep -o '[0-9]* rows' "$work/time" | head -1)"
}
run "residents xlsx (masked)" residents --scope "$code" --format xlsx --out "$work/r.xlsx"
run "residents csv (masked)" residents --scope "$code" --format csv --out "$work/r.csv"
run "residents xlsx (unmasked)" residents --scope "$code" --format xlsx --unmask --reason report_upward --out "$work/u.xlsx"
run "tasks xlsx" tasks --scope "$code" --format xlsx --out "$work/t.xlsx"
run "daily report xlsx" daily-report --scope "$code" --out "$work/d.xlsx"
ls -l "$work"/*.xlsx "$work"/*.csv | awk '{print $5, $9}' | sed "s|$work/||"
