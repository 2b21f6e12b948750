-- The report's key first in its unique index, and stored without the
-- household prefix (issue #6). Keys are time-ordered (UUIDv7 from the
-- pages' scripts), so with the key first a batch's reports go into one
-- place in the index whatever their households. With the household first
-- (migration 16), and the household also spelt at the head of every key,
-- each report of a batch from many households wrote a leaf page of its
-- own: 38 of a commit's 48 pages with 64 households reporting at once
-- (docs/PERFORMANCE.md, session 7). The household stays in the index, so
-- a key is unique per household as before. Every key stored until now is
-- `<household id>:<key>` (36 characters, a colon): the prefix goes. This
-- rewrites every report; run `epigrid migrate` at a quiet hour.
DROP INDEX intake_reports_household_key;
UPDATE intake_reports SET idempotency_key = substr(idempotency_key, 38)
 WHERE substr(idempotency_key, 37, 1) = ':';
CREATE UNIQUE INDEX intake_reports_key_household ON intake_reports (idempotency_key, household_id);
