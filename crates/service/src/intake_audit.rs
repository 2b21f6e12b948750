//! The intake writer's audit summary (issue #6): one chained entry about
//! once a second (`IntakeSettings::audit_interval`) rather than one per
//! batch, with nothing lost through a crash.
//!
//! Each batch stores the writer's running summary (everything since its
//! last entry, this batch included) in the batch's own transaction, either
//! pending (one small row per writer) or appended to the chain, which
//! clears the pending one (`epigrid_store::BatchAudit`). So a committed
//! submission is always counted once: in the chain, or in its writer's
//! pending summary, which the writer appends when it goes idle or stops,
//! and the catch-up pass appends if the writer died first.
//!
//! The summary holds counts only, never personal data: the reports are
//! themselves append-only records of who (household or account), what and
//! when.

use std::collections::BTreeSet;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};
use epigrid_domain::intake::SubmissionKind;
use epigrid_store::{AuditRecord, BatchAudit, IntakeWrite};
use serde_json::json;
use uuid::Uuid;

/// How long a pending summary may sit before the catch-up pass takes its
/// writer for gone: a running writer appends its own within
/// `audit_interval` of its last batch, so a minute on top of that is ample.
pub(crate) const STALE_AFTER: StdDuration = StdDuration::from_secs(60);

/// What the writer has committed since its last entry in the chain.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct AuditTally {
    /// The entry's id, fixed when the tally starts, so a summary that is
    /// replaced and finally appended keeps one id.
    id: Option<Uuid>,
    since: Option<DateTime<Utc>>,
    batches: u64,
    submissions: u64,
    /// By kind, in `SubmissionKind::ALL` order.
    kinds: [u64; SubmissionKind::ALL.len()],
    by_staff: u64,
    /// Up to two communities: the entry names the community only when
    /// everything lies in one (so a community admin's audit view shows its
    /// own residents' submissions).
    communities: BTreeSet<Uuid>,
    first_report: Option<Uuid>,
    last_report: Option<Uuid>,
}

impl AuditTally {
    pub(crate) fn is_empty(&self) -> bool {
        self.batches == 0
    }

    /// This tally with one more batch, committed at `at`.
    pub(crate) fn with(&self, writes: &[IntakeWrite], at: DateTime<Utc>) -> Self {
        let mut next = self.clone();
        next.id.get_or_insert_with(Uuid::now_v7);
        next.since.get_or_insert(at);
        next.batches += 1;
        for write in writes {
            let report = &write.report;
            next.submissions += 1;
            if let Some(i) = SubmissionKind::ALL.iter().position(|k| k.as_str() == report.kind) {
                next.kinds[i] += 1;
            }
            if report.source == "staff" {
                next.by_staff += 1;
            }
            if next.communities.len() < 2
                && let Some(community) = report.path.community
            {
                next.communities.insert(community);
            }
            next.first_report.get_or_insert(report.id);
            next.last_report = Some(report.id);
        }
        next
    }

    /// The entry this tally makes, dated `at` (its last batch).
    pub(crate) fn summary(&self, at: DateTime<Utc>) -> AuditRecord {
        let kinds: serde_json::Map<String, serde_json::Value> = SubmissionKind::ALL
            .iter()
            .zip(self.kinds)
            .filter(|(_, n)| *n > 0)
            .map(|(kind, n)| (kind.as_str().to_owned(), json!(n)))
            .collect();
        AuditRecord {
            id: self.id.unwrap_or_else(Uuid::now_v7),
            at,
            actor_user_id: None,
            actor_name: "intake".into(),
            actor_role: None,
            action: "intake.batch".into(),
            target_kind: None,
            target_id: None,
            community_id: match self.communities.len() {
                1 => self.communities.first().copied(),
                _ => None,
            },
            client_addr: None,
            outcome: "ok".into(),
            detail: json!({
                "submissions": self.submissions,
                "kinds": kinds,
                "by_staff": self.by_staff,
                "batches": self.batches,
                "since": self.since,
                "first_report": self.first_report,
                "last_report": self.last_report,
            })
            .to_string(),
        }
    }
}

/// The writer's side of the summary: its id, the tally, and when it last
/// appended to the chain.
#[derive(Debug)]
pub(crate) struct AuditKeeper {
    pub(crate) writer: Uuid,
    interval: StdDuration,
    tally: AuditTally,
    appended_at: Option<Instant>,
}

/// A batch's summary, to be settled once the batch has committed.
#[derive(Debug)]
pub(crate) struct NextSummary {
    tally: AuditTally,
    record: AuditRecord,
    append: bool,
}

impl NextSummary {
    pub(crate) fn audit(&self, writer: Uuid) -> BatchAudit<'_> {
        BatchAudit { writer, summary: &self.record, append: self.append }
    }
}

impl AuditKeeper {
    pub(crate) fn new(writer: Uuid, interval: StdDuration) -> Self {
        Self { writer, interval, tally: AuditTally::default(), appended_at: None }
    }

    /// The summary a batch of `writes` stores: appended when the last entry
    /// is `interval` old (or there was none), pending otherwise.
    pub(crate) fn next(&self, writes: &[IntakeWrite], at: DateTime<Utc>) -> NextSummary {
        let tally = self.tally.with(writes, at);
        let record = tally.summary(at);
        let append = self.appended_at.is_none_or(|t| t.elapsed() >= self.interval);
        NextSummary { tally, record, append }
    }

    /// The batch committed with `next`.
    pub(crate) fn committed(&mut self, next: NextSummary) {
        if next.append {
            self.appended();
        } else {
            self.tally = next.tally;
        }
    }

    /// The pending summary was appended (by a batch or on its own).
    pub(crate) fn appended(&mut self) {
        self.tally = AuditTally::default();
        self.appended_at = Some(Instant::now());
    }

    /// When the pending summary is due to be appended on its own (the
    /// writer is idle), if there is one.
    pub(crate) fn due(&self) -> Option<Instant> {
        if self.tally.is_empty() {
            return None;
        }
        Some(self.appended_at.map_or_else(Instant::now, |t| t + self.interval))
    }

    /// Tried and failed to append: try again an interval later.
    pub(crate) fn postpone(&mut self) {
        self.appended_at = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use epigrid_domain::AreaPath;
    use epigrid_store::ReportRecord;

    fn write(kind: &str, source: &str, community: Uuid) -> IntakeWrite {
        IntakeWrite {
            report: ReportRecord {
                id: Uuid::now_v7(),
                kind: kind.into(),
                household_id: Uuid::now_v7(),
                path: AreaPath { community: Some(community), ..AreaPath::default() },
                day: chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap(),
                created_at: Utc::now(),
                idempotency_key: Uuid::now_v7().to_string(),
                reference: "JK".into(),
                source: source.into(),
                actor_account_id: None,
                payload: "{}".into(),
                flagged: 0,
                tasks_pending: false,
            },
            residents: vec![],
        }
    }

    #[test]
    fn a_tally_counts_batches_kinds_and_sources_and_keeps_one_id() {
        let (c1, c2) = (Uuid::now_v7(), Uuid::now_v7());
        let at = Utc::now();
        let one = AuditTally::default()
            .with(&[write("health", "resident", c1), write("help", "staff", c1)], at);
        let first = one.summary(at);
        assert_eq!(first.community_id, Some(c1));
        let two = one.with(&[write("health", "resident", c2)], at);
        let second = two.summary(at);
        assert_eq!(second.id, first.id, "a replaced summary keeps its id");
        assert_eq!(second.community_id, None, "two communities: none named");
        let detail: serde_json::Value = serde_json::from_str(&second.detail).unwrap();
        assert_eq!(detail["submissions"], 3);
        assert_eq!(detail["batches"], 2);
        assert_eq!(detail["by_staff"], 1);
        assert_eq!(detail["kinds"], json!({ "health": 2, "help": 1 }));
        assert!(!second.detail.contains("resident\""), "counts only");
    }

    #[test]
    fn the_keeper_appends_at_first_then_keeps_pending_until_the_interval() {
        let mut keeper = AuditKeeper::new(Uuid::now_v7(), StdDuration::from_secs(3600));
        let batch = [write("health", "resident", Uuid::now_v7())];
        let first = keeper.next(&batch, Utc::now());
        assert!(first.append, "nothing appended yet: the first batch appends");
        keeper.committed(first);
        assert_eq!(keeper.due(), None);
        let second = keeper.next(&batch, Utc::now());
        assert!(!second.append);
        keeper.committed(second);
        let third = keeper.next(&batch, Utc::now());
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&third.record.detail).unwrap()["submissions"],
            2,
            "the pending summary covers every batch since the last entry"
        );
        // A batch that failed leaves the tally as it was.
        drop(third);
        assert!(keeper.due().is_some());
        keeper.appended();
        assert_eq!(keeper.due(), None);
    }
}
