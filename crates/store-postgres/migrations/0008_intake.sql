-- Intake (issue #6): self-service submissions and the per-grid, per-day
-- counters the writer keeps up to date in the same transaction.
CREATE TABLE intake_reports (
    id                 UUID PRIMARY KEY,
    kind               TEXT NOT NULL,
    household_id       UUID NOT NULL,
    sub_district_id    UUID,
    community_id       UUID NOT NULL,
    grid_id            UUID NOT NULL,
    building_id        UUID,
    unit_id            UUID,
    day                DATE NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    idempotency_key    TEXT NOT NULL,
    reference          TEXT NOT NULL,
    source             TEXT NOT NULL,
    actor_account_id   UUID,
    payload            TEXT NOT NULL,
    flagged            INTEGER NOT NULL DEFAULT 0,
    tasks_pending      BOOLEAN NOT NULL DEFAULT FALSE
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
    grid_id      UUID NOT NULL,
    day          DATE NOT NULL,
    resident_id  UUID NOT NULL,
    community_id UUID NOT NULL,
    PRIMARY KEY (grid_id, day, resident_id)
);

CREATE TABLE intake_grid_days (
    grid_id            UUID NOT NULL,
    day                DATE NOT NULL,
    community_id       UUID NOT NULL,
    residents_reported BIGINT NOT NULL DEFAULT 0,
    health_reports     BIGINT NOT NULL DEFAULT 0,
    flagged            BIGINT NOT NULL DEFAULT 0,
    arrivals           BIGINT NOT NULL DEFAULT 0,
    help_requests      BIGINT NOT NULL DEFAULT 0,
    volunteer_offers   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (grid_id, day)
);
CREATE INDEX intake_grid_days_community ON intake_grid_days (community_id, day);
