-- The intake writer's running audit summary (issue #6). Each batch
-- replaces its writer's row in the batch's own transaction, and the
-- summary is appended to the audit chain (and the row deleted) about once
-- a second, so a batch no longer writes the audit log and its eight
-- indexes. A row left by a writer that stopped (a crash) is appended by
-- the catch-up pass: every committed submission is in the chain or here.
CREATE TABLE intake_audit_pending (
    writer_id     BLOB PRIMARY KEY NOT NULL,
    id            BLOB NOT NULL,
    at            TEXT NOT NULL,
    actor_user_id BLOB,
    actor_name    TEXT NOT NULL,
    actor_role    TEXT,
    action        TEXT NOT NULL,
    target_kind   TEXT,
    target_id     BLOB,
    community_id  BLOB,
    client_addr   TEXT,
    outcome       TEXT NOT NULL,
    detail        TEXT NOT NULL
) WITHOUT ROWID;
