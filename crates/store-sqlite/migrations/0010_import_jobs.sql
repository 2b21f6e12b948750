-- Import jobs: one row per import of a file. Counters grow in the same
-- transaction as each chunk of rows, so after a crash they say exactly what
-- was written, and a re-run of the same file (same SHA-256) finds the job.

CREATE TABLE import_jobs (
    id            BLOB PRIMARY KEY NOT NULL,
    file_sha256   BLOB NOT NULL,
    actor_user_id BLOB,
    actor_name    TEXT NOT NULL,
    mode          TEXT NOT NULL,
    status        TEXT NOT NULL,
    total_rows    INTEGER NOT NULL DEFAULT 0,
    inserted      INTEGER NOT NULL DEFAULT 0,
    updated       INTEGER NOT NULL DEFAULT 0,
    unchanged     INTEGER NOT NULL DEFAULT 0,
    rejected      INTEGER NOT NULL DEFAULT 0,
    chunks_done   INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX import_jobs_file ON import_jobs (file_sha256, id);
