-- Login rate limits count recent failed logins in the audit log, per
-- account and per client address.
CREATE INDEX audit_log_action_actor_at ON audit_log (action, actor_name, at);
CREATE INDEX audit_log_action_addr_at ON audit_log (action, client_addr, at);
