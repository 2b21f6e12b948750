#!/usr/bin/env bash
# Schemathesis (from PyPI) against /api/openapi.json with a logged-in
# session (issue #7): no server error, no answer outside the document.
#
#   bench/schemathesis.sh [MAX_EXAMPLES] [extra `st run` options…]
#
# Builds the release binaries, makes a demo sub-district (2,000 residents)
# on a temporary SQLite database, serves it on 127.0.0.1:18093, logs in as
# the sub-district admin (`admin`, an office account that reaches every
# operation), mints a resident pass for the self-service calls (bench-pass),
# and runs `st run` with the session cookie, its X-CSRF-Token and the pass
# as headers. Schemathesis is installed into target/schemathesis-venv,
# pinned. Exits with Schemathesis's status.
#
# Left out, and why:
# - POST /api/v1/logout would end the session the run depends on.
# - positive_data_acceptance: it expects every request that fits the schema
#   to be accepted, but the registry rightly refuses many schema-valid
#   bodies (a random UUID names no household: 404; an ID number whose
#   checksum fails: 422; a code already used: 409). The schema describes
#   shapes, the service owns the rules.
# - ignored_auth stays on: a call without the session must be 401.
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-25}"
shift || true
version=4.32.5
venv="$PWD/target/schemathesis-venv"
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$version"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$version"
fi
# EPIGRID_BENCH_NO_BUILD=1 skips the build; BIN_DIR=… runs other binaries
# (a debug build, say). The server reads EPIGRID_* settings and refuses
# unknown ones, so the switch goes before it starts.
[ -n "${EPIGRID_BENCH_NO_BUILD:-}" ] || cargo build --release -q -p epigrid -p epigrid-bench
unset EPIGRID_BENCH_NO_BUILD
bin="${BIN_DIR:-target/release}"
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

port=18093
base="http://127.0.0.1:$port"
password=fuzz-office-pass-7
"$bin/epigrid" demo --no-serve --residents 2000 --data-dir "$work/data" \
    --admin-password "$password" >/dev/null 2>&1
# No per-client limit on the public routes: the run comes from one address
# and would otherwise test mostly the limiter's 429.
EPIGRID_PUBLIC_RATE_PER_CLIENT=0 EPIGRID_LOG=warn "$bin/epigrid" serve --data-dir "$work/data" \
    --config "$work/none.toml" --listen "127.0.0.1:$port" 2>"$work/server.log" & pid=$!
for _ in $(seq 1 200); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.05; done

login=$(curl -sf -c "$work/cookies" -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$password\"}" "$base/api/v1/login")
csrf=$(echo "$login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf_token"])')
session=$(awk '$6 == "epigrid_session" { print $7 }' "$work/cookies")
read -r pass pass_household pass_resident < <("$bin/bench-pass" "sqlite://$work/data/epigrid.db" \
    "$(cat "$work/data/secret.key")")

# Real identifiers, so that half the generated requests name records that
# exist (a resident, their household and areas, a task, a grid worker's
# account, a building's QR token) instead of ending in 404. Not the admin's
# own account: a PATCH that disables it would end the run's session.
BASE="$base" SESSION="$session" PASS_HOUSEHOLD="$pass_household" PASS_RESIDENT="$pass_resident" \
    python3 - > "$work/schemathesis.toml" <<'PY'
import json, os, re, urllib.request
base, session = os.environ["BASE"], os.environ["SESSION"]
def get(path, raw=False):
    request = urllib.request.Request(base + path, headers={"Cookie": f"epigrid_session={session}"})
    body = urllib.request.urlopen(request).read().decode()
    return body if raw else json.loads(body)
resident = get("/api/v1/residents?limit=1")["items"][0]
task = get("/api/v1/tasks?limit=1")["items"][0]
worker = next(u for u in get("/api/v1/users?limit=50")["items"] if u["role"] == "grid_worker")
token = re.search(r"/s/([A-Za-z0-9_-]+)", get(f"/areas/{resident['building_id']}/qr", raw=True)).group(1)
ids = [resident["id"], resident["household_id"], resident["grid_id"], resident["building_id"],
       resident["unit_id"], resident["community_id"], task["id"], worker["id"],
       os.environ["PASS_HOUSEHOLD"], os.environ["PASS_RESIDENT"]]
print("[dictionaries.ids]")
print("values = " + json.dumps(ids))
print("[dictionaries.tokens]")
print("values = " + json.dumps([token]))
print("[parameters]")
for key in ["path.id", "query.area_id", "query.parent_id", "query.household_id", "query.grid",
            "body.household_id", "body.resident_id", "body.unit_id", "body.parent_id",
            "body.area_id", "body.scope_area_id", "body.building_token"]:
    dictionary = "tokens" if key.endswith("token") else "ids"
    print(f'"{key}" = {{ dictionary = "{dictionary}", probability = 0.5 }}')
print('"path.token" = { dictionary = "tokens", probability = 0.5 }')
PY

set +e
# Run from the temporary directory: Schemathesis keeps a cache
# (.schemathesis/) where it runs.
cd "$work"
"$venv/bin/st" --config-file "$work/schemathesis.toml" run "$base/api/openapi.json" \
    --header "Cookie: epigrid_session=$session" \
    --header "X-CSRF-Token: $csrf" \
    --header "Authorization: Bearer $pass" \
    --checks all --exclude-checks positive_data_acceptance \
    --exclude-path /api/v1/logout \
    --max-examples "$examples" --seed 7 --workers 2 \
    --request-timeout 30 \
    "$@"
status=$?
set -e
if grep -q "internal error" "$work/server.log"; then
  echo "== server log: internal errors" >&2
  grep "internal error" "$work/server.log" | head -20 >&2
fi
exit "$status"
