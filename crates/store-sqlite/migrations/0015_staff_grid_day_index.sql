-- Only grid workers' door-to-door reports are listed by grid and day (the
-- daily report counts the households they checked), so only those rows
-- are indexed that way. A resident's self-service report, the bulk of the
-- peak, writes one index fewer: each index cost the intake writer about
-- 2 us per report (docs/PERFORMANCE.md). Queries spell `source = 'staff'`
-- as a literal, as here, so the planner can use the partial index.
DROP INDEX intake_reports_grid_day;
CREATE INDEX intake_reports_staff_grid_day ON intake_reports (grid_id, day, id)
    WHERE source = 'staff';
