-- A household's own requests and reports, newest first, for its
-- self-service menu (issue #6): the tasks about its members or itself.
-- Tasks are written by the office and after the intake's commit, never on
-- the intake's own path, so the index costs the peak nothing.
CREATE INDEX tasks_subject_created ON tasks (subject_id, created_at);
