//! Retention (PIPL Art. 19 and 47): personal health, movement and help
//! records are deleted a configured number of days after the day they
//! cover; the per-grid, per-day counters (aggregates, no person in them)
//! stay. Kept apart from the intake trait because it is a different duty
//! with a different caller (a daily job and `epigrid purge`).

use async_trait::async_trait;
use chrono::NaiveDate;
use serde::Serialize;

use crate::{AuditRecord, StoreResult};

/// How many records a purge deleted (or would delete), per kind. These
/// counts, never contents, are what the audit log records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PurgeCounts {
    pub health_reports: u64,
    pub arrivals: u64,
    pub help_requests: u64,
    /// "Resident R reported on day D" marks behind the not-reported lists.
    pub reported_marks: u64,
    /// Rows of matched lists (协查名单) uploaded before the cut-off: the
    /// names, ID numbers and phones as received. The list and its counts stay.
    pub match_rows: u64,
    /// Notes cleared from the steps of ended tasks that hold health data
    /// (a temperature, a delivery to a quarantined flat). The steps stay.
    pub task_notes: u64,
    /// Photos of those tasks' steps, deleted.
    pub task_photos: u64,
    /// Those tasks made anonymous: a resident or household they were about
    /// is replaced by the task's grid (its building and unit cleared), and
    /// so are the resident in their source, the household in the names of
    /// steps taken through self-service, and their idempotency key (made
    /// of the report's and the subject's ids). The task stays in its grid's
    /// figures and its assignee's evaluation.
    pub task_subjects: u64,
}

impl PurgeCounts {
    pub fn total(&self) -> u64 {
        self.health_reports
            + self.arrivals
            + self.help_requests
            + self.reported_marks
            + self.match_rows
            + self.task_notes
            + self.task_photos
            + self.task_subjects
    }
}

/// What a purge reaches: records of days before `before`, and the notes and
/// photos of tasks in `health_categories` that ended (closed, evaluated or
/// rejected) before that day began.
#[derive(Debug, Clone, Copy)]
pub struct PurgeScope<'a> {
    pub before: NaiveDate,
    /// Category codes whose tasks hold health data (the catalogue says which).
    pub health_categories: &'a [String],
}

#[async_trait]
pub trait RetentionStore {
    /// What `purge_personal_records(scope, …)` would delete now.
    async fn count_purgeable(&self, scope: PurgeScope<'_>) -> StoreResult<PurgeCounts>;

    /// Deletes health reports, arrivals and help requests of days before
    /// `scope.before` whose follow-up tasks exist (a report still waiting for
    /// its task has not served its purpose), and the per-resident reported
    /// marks of those days, and the rows of match lists uploaded before that
    /// day. Of tasks in `scope.health_categories` that ended before that day,
    /// it clears the steps' notes, deletes their photos and makes the tasks
    /// anonymous (`PurgeCounts::task_subjects`); an open task keeps all of
    /// it, whatever its age. Volunteer offers, the per-grid counters, the
    /// lists' counts and the tasks' steps, times, actors and grids stay.
    /// `audit` is appended in the same transaction, its `detail` replaced by
    /// the counts as JSON: the deletion and its record commit together.
    async fn purge_personal_records(
        &self,
        scope: PurgeScope<'_>,
        audit: &AuditRecord,
    ) -> StoreResult<PurgeCounts>;
}
