-- One index for a report's key and its household (issue #6): unique on
-- (household_id, idempotency_key), it answers the key's lookup (a retry,
-- a double tap) and lists a household's reports, in place of an index on
-- the key and another on the household. A resident's report at the peak
-- writes one index fewer. Stored keys keep their household prefix, so a
-- key stays unique as before and a retry across the upgrade still finds
-- its original.
CREATE UNIQUE INDEX intake_reports_household_key ON intake_reports (household_id, idempotency_key);
DROP INDEX intake_reports_idempotency_key;
DROP INDEX intake_reports_household;
