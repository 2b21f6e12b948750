-- Photos taken for a step of a task's history (issue 5). The bytes live in
-- the database beside the step, so a backup holds them and every instance
-- serves them; the service has checked their type (by magic bytes) and size.
CREATE TABLE task_photos (
    id           BLOB PRIMARY KEY NOT NULL,
    task_id      BLOB NOT NULL REFERENCES tasks (id),
    history_id   BLOB NOT NULL REFERENCES task_history (id),
    community_id BLOB NOT NULL,
    content_type TEXT NOT NULL,
    byte_size    INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    data         BLOB NOT NULL
);
CREATE INDEX task_photos_task ON task_photos (task_id, created_at);
