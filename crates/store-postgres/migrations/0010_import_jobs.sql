-- Import jobs: one row per import of a file. Counters grow in the same
-- transaction as each chunk of rows, so after a crash they say exactly what
-- was written, and a re-run of the same file (same SHA-256) finds the job.

CREATE TABLE import_jobs (
    id            UUID PRIMARY KEY,
    file_sha256   BYTEA NOT NULL,
    actor_user_id UUID,
    actor_name    TEXT NOT NULL,
    mode          TEXT NOT NULL,
    status        TEXT NOT NULL,
    total_rows    BIGINT NOT NULL DEFAULT 0,
    inserted      BIGINT NOT NULL DEFAULT 0,
    updated       BIGINT NOT NULL DEFAULT 0,
    unchanged     BIGINT NOT NULL DEFAULT 0,
    rejected      BIGINT NOT NULL DEFAULT 0,
    chunks_done   BIGINT NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX import_jobs_file ON import_jobs (file_sha256, id);
