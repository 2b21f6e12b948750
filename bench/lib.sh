# Shared by the bench scripts (sourced, not run).

# mint_pass BIN_DIR DATA_DIR [COUNT]: prints "PASS HOUSEHOLD_ID RESIDENT_ID"
# for the demo in DATA_DIR, one line for each of COUNT households (default 1). bench-pass opens the database through the store, which
# migrates it to bench-pass's own schema, so it reads a copy (SQLite's
# online backup): an older epigrid in an A/B keeps the schema it knows.
mint_pass() {
  python3 -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))' \
      "$2/epigrid.db" "$2.pass.db"
  "$1/bench-pass" "sqlite://$2.pass.db" "$(cat "$2/secret.key")" "${3:-1}"
}

# field NAME: the value of NAME=… in a loadgen line read on stdin.
field() { tr ' ' '\n' | grep "^$1=" | cut -d= -f2; }

# median: the median of the numbers read on stdin, one a line.
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
