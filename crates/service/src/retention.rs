//! Retention (PIPL Art. 19 and 47): personal health, arrival and help
//! records are kept `retention_days` after the day they cover, then deleted
//! by `epigrid purge` or the daily job in `serve`; so are the notes and
//! photos of tasks whose category holds health data (the catalogue says
//! which), that long after the task ended. Only the per-grid, per-day
//! counts and the tasks' steps and times outlive them, and the audit log records how many records went,
//! never which.

use chrono::NaiveDate;
use epigrid_store::{AuditRecord, PurgeCounts, PurgeScope};
use uuid::Uuid;

use crate::{Service, ServiceResult};

/// 28 days: two 14-day monitoring periods, long enough to trace a cluster
/// back through its incubation and to re-check a report a week later; a
/// deployment sets its own with `retention_days`.
pub const DEFAULT_RETENTION_DAYS: u32 = 28;

/// What a purge did, or would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeReport {
    /// Records of days before this date are purged.
    pub before: NaiveDate,
    pub counts: PurgeCounts,
    /// True when nothing was deleted because only a count was asked for.
    pub dry_run: bool,
}

impl Service {
    /// The first day whose records are kept: today minus `retention_days`.
    pub fn retention_cut_off(&self) -> NaiveDate {
        let days = chrono::Days::new(u64::from(self.settings().retention_days));
        self.today().checked_sub_days(days).unwrap_or(NaiveDate::MIN)
    }

    /// Deletes what has outlived its retention period (or, with `dry_run`,
    /// counts it). Run by the system, not by a person: the audit entry names
    /// `actor` (e.g. "epigrid purge" or "daily retention job").
    pub async fn purge_expired(&self, actor: &str, dry_run: bool) -> ServiceResult<PurgeReport> {
        let before = self.retention_cut_off();
        let health_categories = self.settings().tasks.catalogue.health_data_categories();
        let scope = PurgeScope { before, health_categories: &health_categories };
        if dry_run {
            let counts = self.store().count_purgeable(scope).await?;
            return Ok(PurgeReport { before, counts, dry_run });
        }
        let entry = AuditRecord {
            id: Uuid::now_v7(),
            at: self.now(),
            actor_user_id: None,
            actor_name: actor.to_owned(),
            actor_role: None,
            action: "retention.purge".into(),
            target_kind: None,
            target_id: None,
            community_id: None,
            client_addr: None,
            outcome: "ok".into(),
            // The store fills in the counts, inside the purge's transaction.
            detail: String::new(),
        };
        let counts = self.store().purge_personal_records(scope, &entry).await?;
        Ok(PurgeReport { before, counts, dry_run })
    }
}
