#!/usr/bin/env bash
# Demo generation time and resident insert rate, SQLite and PostgreSQL side
# by side in one run (release build). Usage: bench/demo.sh [RESIDENTS]
# Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth) for the
# second half; it creates and drops the database epigrid_bench.
set -euo pipefail
cd "$(dirname "$0")/.."
residents="${1:-50000}"
cargo build --release -q -p epigrid
bin=target/release/epigrid
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== SQLite ($residents residents)"
"$bin" demo --no-serve --residents "$residents" --data-dir "$work/sqlite" 2>&1 >/dev/null \
    | grep -E "inserted|ready"

echo "== PostgreSQL ($residents residents)"
psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS epigrid_bench" 2>/dev/null
psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE epigrid_bench"
"$bin" demo --no-serve --residents "$residents" --data-dir "$work/pg" \
    --database postgres://postgres@127.0.0.1:5432/epigrid_bench 2>&1 >/dev/null \
    | grep -E "inserted|ready"
psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE epigrid_bench"
