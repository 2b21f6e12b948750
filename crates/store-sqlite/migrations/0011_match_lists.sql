-- List matching (协查名单): a list of people sent from above, and each of
-- its rows with how it matched the registry. The rows keep the original
-- cells so that the result can be downloaded as the user's own file; the
-- task's state is read from `tasks` at download time, never copied here.

CREATE TABLE match_lists (
    id               BLOB PRIMARY KEY NOT NULL,
    name             TEXT NOT NULL,
    uploaded_by      BLOB,
    uploaded_by_name TEXT NOT NULL,
    scope_kind       TEXT,
    scope_area_id    BLOB,
    headers          TEXT NOT NULL,
    total            INTEGER NOT NULL DEFAULT 0,
    exact            INTEGER NOT NULL DEFAULT 0,
    probable         INTEGER NOT NULL DEFAULT 0,
    unmatched        INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX match_lists_created ON match_lists (created_at, id);

CREATE TABLE match_rows (
    list_id     BLOB NOT NULL REFERENCES match_lists (id) ON DELETE CASCADE,
    row_number  INTEGER NOT NULL,
    cells       TEXT NOT NULL,
    class       TEXT NOT NULL,
    resident_id BLOB,
    grid_id     BLOB,
    task_id     BLOB,
    reason      TEXT NOT NULL,
    PRIMARY KEY (list_id, row_number)
);
CREATE INDEX match_rows_resident ON match_rows (resident_id) WHERE resident_id IS NOT NULL;
