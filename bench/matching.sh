#!/usr/bin/env bash
# List matching (协查名单): a list of 10,000 people against the demo
# registry of N residents (default 50,000), through the CLI as an office
# would run it, under /usr/bin/time -v (wall time and peak memory).
#
#   bench/matching.sh [RESIDENTS] [LIST_ROWS]
#
# The list is built from an unmasked export of the demo (so that it names
# real registered people): 60% by ID number (exact), 15% by phone only and
# 10% by name and address (probable), 10% unknown people and 5% with a bad
# check character (not matched, reported). SQLite in a temp directory.
set -euo pipefail
cd "$(dirname "$0")/.."
residents="${1:-50000}"
rows="${2:-10000}"
cargo build -q --release -p epigrid
bin=target/release/epigrid
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export EPIGRID_SECRET_KEY=$("$bin" keygen)
common=(--data-dir "$work" --config "$work/none.toml")
"$bin" "${common[@]}" demo --residents "$residents" --admin-password bench-password-1 --no-serve >/dev/null 2>&1
"$bin" "${common[@]}" export residents --scope 371602001 --format csv --unmask --reason report_upward \
    --out "$work/registry.csv" >/dev/null 2>&1
python3 - "$work/registry.csv" "$work/list.csv" "$rows" <<'PY'
import csv, random, sys
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
people = list(csv.DictReader(open(src, encoding="utf-8-sig")))
random.seed(7)
random.shuffle(people)
def check(first17):
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(c) * x for c, x in zip(first17, w)) % 11]
with_phone = [p for p in people if p["联系电话"]]
rows = []
for i in range(n):
    share = i / n
    p = people[i % len(people)]
    if share < 0.60:
        rows.append([p["姓名"], p["证件号码"], "", "武汉", "2026-11-01", "", ""])
    elif share < 0.75:
        q = with_phone[i % len(with_phone)]
        rows.append([q["姓名"], "", q["联系电话"], "上海", "2026/11/2", "", ""])
    elif share < 0.85:
        rows.append([p["姓名"], "", "", "广州", "", "", f"{p['楼栋']}{p['单元']}{p['房号']}"])
    elif share < 0.95:
        first = f"44030119{80 + i % 20}0{1 + i % 9}1{i % 10}{i % 1000:03d}"
        rows.append([f"外来{i}", first + check(first), "", "深圳", "", "", ""])
    else:
        first = f"44030119{80 + i % 20}0{1 + i % 9}1{i % 10}{i % 1000:03d}"
        bad = "0" if check(first) != "0" else "1"
        rows.append([f"错号{i}", first + bad, "", "", "", "", ""])
with open(out, "w", encoding="utf-8", newline="") as f:
    w = csv.writer(f)
    w.writerow(["姓名", "身份证号", "联系电话", "来源地", "抵达日期", "备注", "住址"])
    w.writerows(rows)
PY
echo "demo: $residents residents; list: $rows rows"
/usr/bin/time -v "$bin" "${common[@]}" match "$work/list.csv" --out "$work/result.xlsx" \
    >"$work/out" 2>"$work/time"
cat "$work/out"
grep -o 'list .* in .* s' "$work/time"
echo "wall $(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time"), peak $(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$work/time") MiB"
ls -l "$work/result.xlsx" | awk '{print $5, "bytes result.xlsx"}'
