#!/usr/bin/env bash
# Import of N residents from .xlsx against the raw bulk-load rate of the same
# store, side by side in one run, on SQLite and PostgreSQL (issue #7).
#
#   bench/import.sh [ROWS] [--no-postgres]
#
# Builds the `import` bench (release), writes an .xlsx of ROWS residents
# (default 1,000,000), then for each store runs, each as its own process
# under /usr/bin/time -v (for peak memory):
#   raw    — the same people sealed in memory first, then ImportStore::bulk_load
#            timed alone (multi-row INSERTs on SQLite, COPY on PostgreSQL);
#   import — read the .xlsx, check every row, match, seal, write in audited
#            chunks (5,000 and 50,000 rows) under a job record: the whole
#            user-facing path.
# PostgreSQL uses a fresh schema of EPIGRID_TEST_PG
# (default postgres://postgres@127.0.0.1:5432/test).
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
postgres=yes
[[ "${2:-}" == "--no-postgres" ]] && postgres=no
export EPIGRID_TEST_PG="${EPIGRID_TEST_PG:-postgres://postgres@127.0.0.1:5432/test}"

cargo bench -q -p epigrid-service --bench import --no-run 2>/dev/null
bin=$(ls -t target/release/deps/import-* | grep -v '\.d$' | head -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
file="$work/residents.xlsx"

measure() { # label, then the bench's arguments
    local label=$1; shift
    /usr/bin/time -v "$bin" "$@" >"$work/out" 2>"$work/time"
    local result peak
    result=$(grep '^RESULT' "$work/out")
    peak=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$work/time")
    echo "$result peak_rss_mib=$peak"
    echo "$result" | sed -E 's/.*rows_per_s=([0-9]+).*/\1/' >"$work/rate.$label"
}

"$bin" gen "$rows" "$file" >/dev/null
echo "file: $rows rows, $(du -m "$file" | cut -f1) MiB"
backends=(sqlite)
[[ $postgres == yes ]] && backends+=(postgres)
for backend in "${backends[@]}"; do
    measure "raw.$backend" raw "$rows" "$backend"
    # The default chunk (5,000 rows: short write locks beside a live server)
    # and a large one (50,000: fewer commits, for a night-time bulk load).
    for chunk in 5000 50000; do
        measure "import.$backend.$chunk" import "$file" "$backend" "$chunk"
        awk -v r="$(cat "$work/rate.raw.$backend")" -v i="$(cat "$work/rate.import.$backend.$chunk")" \
            -v b="$backend" -v c="$chunk" \
            'BEGIN { printf "ratio %s, %d-row chunks: import / raw = %.0f%%\n", b, c, 100 * i / r }'
    done
done
