-- List matching (协查名单): a list of people sent from above, and each of
-- its rows with how it matched the registry. The rows keep the original
-- cells so that the result can be downloaded as the user's own file; the
-- task's state is read from `tasks` at download time, never copied here.

CREATE TABLE match_lists (
    id               UUID PRIMARY KEY,
    name             TEXT NOT NULL,
    uploaded_by      UUID,
    uploaded_by_name TEXT NOT NULL,
    scope_kind       TEXT,
    scope_area_id    UUID,
    headers          TEXT NOT NULL,
    total            BIGINT NOT NULL DEFAULT 0,
    exact            BIGINT NOT NULL DEFAULT 0,
    probable         BIGINT NOT NULL DEFAULT 0,
    unmatched        BIGINT NOT NULL DEFAULT 0,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX match_lists_created ON match_lists (created_at, id);

CREATE TABLE match_rows (
    list_id     UUID NOT NULL REFERENCES match_lists (id) ON DELETE CASCADE,
    row_number  BIGINT NOT NULL,
    cells       TEXT NOT NULL,
    class       TEXT NOT NULL,
    resident_id UUID,
    grid_id     UUID,
    task_id     UUID,
    reason      TEXT NOT NULL,
    PRIMARY KEY (list_id, row_number)
);
CREATE INDEX match_rows_resident ON match_rows (resident_id) WHERE resident_id IS NOT NULL;
