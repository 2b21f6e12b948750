-- Events and tasks of the closed loop (RULES.md §1.2) and their history.
-- Times are UTC. Deadlines are computed by the service from the catalogue and
-- the working calendar and stored, so escalation needs no timer in memory.
CREATE TABLE tasks (
    id                        BLOB PRIMARY KEY NOT NULL,
    category                  TEXT NOT NULL,
    priority                  TEXT NOT NULL,
    state                     TEXT NOT NULL,
    source_kind               TEXT NOT NULL,
    source_detail             TEXT NOT NULL,
    subject_kind              TEXT NOT NULL,
    subject_id                BLOB NOT NULL,
    sub_district_id           BLOB,
    community_id              BLOB NOT NULL,
    grid_id                   BLOB,
    building_id               BLOB,
    unit_id                   BLOB,
    assignee_account_id       BLOB,
    reserve_pool_community_id BLOB,
    stage                     TEXT,
    stage_started_at          TEXT,
    stage_deadline            TEXT,
    escalation_level          INTEGER NOT NULL DEFAULT 0,
    filed_at                  TEXT,
    handled_at                TEXT,
    handled_by                BLOB,
    handle_deadline           TEXT,
    handling_seconds          INTEGER,
    closed_at                 TEXT,
    reopened                  INTEGER NOT NULL DEFAULT 0,
    created_at                TEXT NOT NULL,
    updated_at                TEXT NOT NULL,
    version                   INTEGER NOT NULL,
    idempotency_key           TEXT
);
CREATE UNIQUE INDEX tasks_idempotency_key ON tasks (idempotency_key);
CREATE INDEX tasks_community ON tasks (community_id);
-- "my open tasks"
CREATE INDEX tasks_assignee_state ON tasks (assignee_account_id, state);
-- "open tasks of a grid by deadline"
CREATE INDEX tasks_grid_state_deadline ON tasks (grid_id, state, stage_deadline);
-- the escalation pass: overdue open tasks
CREATE INDEX tasks_state_deadline ON tasks (state, stage_deadline);

CREATE TABLE task_history (
    id               BLOB PRIMARY KEY NOT NULL,
    task_id          BLOB NOT NULL REFERENCES tasks (id),
    community_id     BLOB NOT NULL,
    transition       TEXT NOT NULL,
    from_state       TEXT,
    to_state         TEXT NOT NULL,
    actor_account_id BLOB,
    actor_name       TEXT NOT NULL,
    at               TEXT NOT NULL,
    note             TEXT,
    idempotency_key  TEXT
);
CREATE INDEX task_history_task ON task_history (task_id, at);
CREATE UNIQUE INDEX task_history_idempotency_key ON task_history (idempotency_key);
