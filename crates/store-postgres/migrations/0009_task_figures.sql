-- Office views of the closed loop (issue #5). The dashboard counts
-- "escalations today" from the history: this finds today's escalation
-- steps without reading every report and transition ever recorded.
CREATE INDEX task_history_transition_at ON task_history (transition, at);
-- Dashboard task figures per (community, grid) and the board's filters
-- within a community read this narrow index instead of the task rows (which
-- carry the source as JSON); `id` lets the figures join today's
-- escalations without touching the rows.
CREATE INDEX tasks_figures
    ON tasks (community_id, grid_id, state, stage_deadline, escalation_level, closed_at, id);
