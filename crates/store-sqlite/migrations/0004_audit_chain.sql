-- Hash-chains the audit log (the encoding is in epigrid_store::audit_chain):
-- every entry gets its position `seq` (1, 2, 3, … without gaps), the hash of
-- the entry before it and its own hash.
--
-- SQL cannot compute those hashes, so entries written before this migration
-- are not rewritten here: the old table is set aside as
-- `audit_log_unchained`, and the store's `migrate` appends its rows to the
-- chained table in the order they were written (by id, a UUIDv7), then
-- drops it, all in one transaction.
ALTER TABLE audit_log RENAME TO audit_log_unchained;
DROP INDEX audit_log_actor;
DROP INDEX audit_log_action;
DROP INDEX audit_log_target;
DROP INDEX audit_log_at;
DROP INDEX audit_log_action_actor_at;
DROP INDEX audit_log_action_addr_at;

-- Append-only: nothing in epigrid updates or deletes a row.
CREATE TABLE audit_log (
    id            BLOB PRIMARY KEY NOT NULL,
    seq           INTEGER NOT NULL UNIQUE,
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
    detail        TEXT NOT NULL,
    prev_hash     BLOB NOT NULL,
    hash          BLOB NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor_name, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_target ON audit_log (target_id, id);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_action_actor_at ON audit_log (action, actor_name, at);
CREATE INDEX audit_log_action_addr_at ON audit_log (action, client_addr, at);
