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
}

impl PurgeCounts {
    pub fn total(&self) -> u64 {
        self.health_reports
            + self.arrivals
            + self.help_requests
            + self.reported_marks
            + self.match_rows
    }
}

#[async_trait]
pub trait RetentionStore {
    /// What `purge_personal_records(before, …)` would delete now.
    async fn count_purgeable(&self, before: NaiveDate) -> StoreResult<PurgeCounts>;

    /// Deletes health reports, arrivals and help requests of days before
    /// `before` whose follow-up tasks exist (a report still waiting for its
    /// task has not served its purpose), and the per-resident reported marks
    /// of those days, and the rows of match lists uploaded before that day.
    /// Volunteer offers, the per-grid counters and the lists' counts stay.
    /// `audit` is appended in the same transaction, its `detail` replaced by
    /// the counts as JSON: the deletion and its record commit together.
    async fn purge_personal_records(
        &self,
        before: NaiveDate,
        audit: &AuditRecord,
    ) -> StoreResult<PurgeCounts>;
}
