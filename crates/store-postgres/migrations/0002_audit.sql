-- The append-only audit log. Nothing in epigrid updates or deletes a row.
CREATE TABLE audit_log (
    id            UUID PRIMARY KEY,
    at            TIMESTAMPTZ NOT NULL,
    actor_user_id UUID,
    actor_name    TEXT NOT NULL,
    actor_role    TEXT,
    action        TEXT NOT NULL,
    target_kind   TEXT,
    target_id     UUID,
    community_id  UUID,
    client_addr   TEXT,
    outcome       TEXT NOT NULL,
    detail        TEXT NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor_name, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_target ON audit_log (target_id, id);
CREATE INDEX audit_log_at ON audit_log (at);
