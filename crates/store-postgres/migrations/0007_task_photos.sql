-- Photos taken for a step of a task's history (issue 5). The bytes live in
-- the database beside the step, so a backup holds them and every instance
-- serves them; the service has checked their type (by magic bytes) and size.
CREATE TABLE task_photos (
    id           UUID PRIMARY KEY,
    task_id      UUID NOT NULL REFERENCES tasks (id),
    history_id   UUID NOT NULL REFERENCES task_history (id),
    community_id UUID NOT NULL,
    content_type TEXT NOT NULL,
    byte_size    BIGINT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    data         BYTEA NOT NULL
);
CREATE INDEX task_photos_task ON task_photos (task_id, created_at);
