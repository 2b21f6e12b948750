-- Events and tasks of the closed loop (RULES.md §1.2) and their history.
-- Times are UTC. Deadlines are computed by the service from the catalogue and
-- the working calendar and stored, so escalation needs no timer in memory.
CREATE TABLE tasks (
    id                        UUID PRIMARY KEY,
    category                  TEXT NOT NULL,
    priority                  TEXT NOT NULL,
    state                     TEXT NOT NULL,
    source_kind               TEXT NOT NULL,
    source_detail             TEXT NOT NULL,
    subject_kind              TEXT NOT NULL,
    subject_id                UUID NOT NULL,
    sub_district_id           UUID,
    community_id              UUID NOT NULL,
    grid_id                   UUID,
    building_id               UUID,
    unit_id                   UUID,
    assignee_account_id       UUID,
    reserve_pool_community_id UUID,
    stage                     TEXT,
    stage_started_at          TIMESTAMPTZ,
    stage_deadline            TIMESTAMPTZ,
    escalation_level          INTEGER NOT NULL DEFAULT 0,
    filed_at                  TIMESTAMPTZ,
    handled_at                TIMESTAMPTZ,
    handled_by                UUID,
    handle_deadline           TIMESTAMPTZ,
    handling_seconds          BIGINT,
    closed_at                 TIMESTAMPTZ,
    reopened                  INTEGER NOT NULL DEFAULT 0,
    created_at                TIMESTAMPTZ NOT NULL,
    updated_at                TIMESTAMPTZ NOT NULL,
    version                   BIGINT NOT NULL,
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
    id               UUID PRIMARY KEY,
    task_id          UUID NOT NULL REFERENCES tasks (id),
    community_id     UUID NOT NULL,
    transition       TEXT NOT NULL,
    from_state       TEXT,
    to_state         TEXT NOT NULL,
    actor_account_id UUID,
    actor_name       TEXT NOT NULL,
    at               TIMESTAMPTZ NOT NULL,
    note             TEXT,
    idempotency_key  TEXT
);
CREATE INDEX task_history_task ON task_history (task_id, at);
CREATE UNIQUE INDEX task_history_idempotency_key ON task_history (idempotency_key);
