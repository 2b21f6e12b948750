-- Intake (issue #6): self-service submissions and the per-grid, per-day
-- counters the writer keeps up to date in the same transaction.
CREATE TABLE intake_reports (
    id                 BLOB PRIMARY KEY NOT NULL,
    kind               TEXT NOT NULL,
    household_id       BLOB NOT NULL,
    sub_district_id    BLOB,
    community_id       BLOB NOT NULL,
    grid_id            BLOB NOT NULL,
    building_id        BLOB,
    unit_id            BLOB,
    day                TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    idempotency_key    TEXT NOT NULL,
    reference          TEXT NOT NULL,
    source             TEXT NOT NULL,
    actor_account_id   BLOB,
    payload            TEXT NOT NULL,
    flagged            INTEGER NOT NULL DEFAULT 0,
    tasks_pending      INTEGER NOT NULL DEFAULT 0
);
-- Retries and double taps: one row per key, whatever the batch.
CREATE UNIQUE INDEX intake_reports_idempotency_key ON intake_reports (idempotency_key);
CREATE INDEX intake_reports_household ON intake_reports (household_id, id);
CREATE INDEX intake_reports_grid_day ON intake_reports (grid_id, day, id);
-- The catch-up pass: only the few rows still waiting for their tasks.
CREATE INDEX intake_reports_tasks_pending ON intake_reports (id) WHERE tasks_pending = TRUE;

-- Who reported on a day, per grid: a resident counts once a day, and the
-- "not reported" list is an anti-join on this small table.
CREATE TABLE intake_reported_residents (
    grid_id      BLOB NOT NULL,
    day          TEXT NOT NULL,
    resident_id  BLOB NOT NULL,
    community_id BLOB NOT NULL,
    PRIMARY KEY (grid_id, day, resident_id)
) WITHOUT ROWID;

CREATE TABLE intake_grid_days (
    grid_id            BLOB NOT NULL,
    day                TEXT NOT NULL,
    community_id       BLOB NOT NULL,
    residents_reported INTEGER NOT NULL DEFAULT 0,
    health_reports     INTEGER NOT NULL DEFAULT 0,
    flagged            INTEGER NOT NULL DEFAULT 0,
    arrivals           INTEGER NOT NULL DEFAULT 0,
    help_requests      INTEGER NOT NULL DEFAULT 0,
    volunteer_offers   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (grid_id, day)
) WITHOUT ROWID;
CREATE INDEX intake_grid_days_community ON intake_grid_days (community_id, day);
