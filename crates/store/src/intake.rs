//! Storage of intake (issue #6): self-service submissions (health reports,
//! arrivals, help requests, volunteer offers) and the per-grid, per-day
//! counters kept up to date in the same transaction as each write, so the
//! "reported today" share costs O(grids), never a count over raw reports.
//!
//! The one hot method is `write_intake_batch`: the service's single intake
//! writer hands it everything that arrived within a few milliseconds, and it
//! commits the lot in one transaction (group commit), so a durable fsync is
//! paid once per batch, not once per resident.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use epigrid_domain::AreaPath;
use uuid::Uuid;

use crate::{AuditRecord, ResidentRecord, StoreResult};

/// One stored submission. `payload` is the validated submission as JSON
/// (`epigrid_domain::intake::Submission`); it may hold a free-text note, but
/// never an ID number or phone (the service builds it from typed fields).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRecord {
    pub id: Uuid,
    /// `SubmissionKind::as_str`.
    pub kind: String,
    pub household_id: Uuid,
    /// The household's path (unit included); `community` and `grid` are set.
    pub path: AreaPath,
    /// The local date the report counts for ("today" in the configured zone).
    pub day: NaiveDate,
    pub created_at: DateTime<Utc>,
    /// Unique per household: a second report with the same key and
    /// household is a replay.
    pub idempotency_key: String,
    /// Shown to the resident, e.g. `JK-20261129-7K3F9QXA`.
    pub reference: String,
    /// `resident` (self-service) or `staff` (a grid worker at the door).
    pub source: String,
    pub actor_account_id: Option<Uuid>,
    pub payload: String,
    /// Entries at or above the fever threshold, or with a symptom.
    pub flagged: u32,
    /// Tasks the rules call for and not yet created. The writer clears it
    /// once they exist; the catch-up pass finds any left after a crash.
    pub tasks_pending: bool,
}

/// The residents a health report covers, for the daily counters: each
/// (grid, day, resident) counts once however often it is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportedResident {
    pub resident_id: Uuid,
}

/// One submission of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct IntakeWrite {
    pub report: ReportRecord,
    /// Members reported healthy-or-not today (health reports only).
    pub residents: Vec<ReportedResident>,
}

/// What the batch did with one submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntakeOutcome {
    /// Stored now.
    Stored { id: Uuid, reference: String },
    /// The idempotency key was stored before (earlier, or earlier in the same
    /// batch): nothing was written; this is the original answer.
    Duplicate { id: Uuid, reference: String },
}

impl IntakeOutcome {
    pub fn reference(&self) -> &str {
        match self {
            Self::Stored { reference, .. } | Self::Duplicate { reference, .. } => reference,
        }
    }

    pub fn id(&self) -> Uuid {
        match self {
            Self::Stored { id, .. } | Self::Duplicate { id, .. } => *id,
        }
    }
}

/// One grid's figures for one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GridDayCounter {
    pub grid_id: Uuid,
    pub community_id: Uuid,
    pub day: NaiveDate,
    /// Distinct residents with a health entry that day.
    pub residents_reported: i64,
    pub health_reports: i64,
    /// Entries with fever or a symptom.
    pub flagged: i64,
    pub arrivals: i64,
    pub help_requests: i64,
    pub volunteer_offers: i64,
}

/// Reports filter, newest last (id order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportQuery {
    /// No index leads with the household (an index by household scatters
    /// a batch's writes over as many pages as households: migration 17),
    /// so this filter alone reads every report. Nothing on a hot path uses it.
    pub household_id: Option<Uuid>,
    pub grid_id: Option<Uuid>,
    pub day: Option<NaiveDate>,
    pub kind: Option<String>,
    /// Only grid workers' door-to-door reports (source `staff`). With
    /// `grid_id` and `day`, the only query the index on grid and day
    /// serves: it holds staff reports only, so that residents' reports at
    /// the peak do not write it.
    pub staff_only: bool,
    pub after: Option<Uuid>,
    pub limit: u32,
}

/// How a batch is audited. The intake writer keeps one running summary
/// (counts, no personal data) of everything it committed since its last
/// entry in the audit chain, and each batch stores the summary, itself
/// included, in its own transaction: kept pending in place of the writer's
/// previous one, or appended to the chain. Appending about once a second
/// rather than per batch spares each batch the audit log's table and eight
/// indexes, a third of the pages it wrote (docs/PERFORMANCE.md), while every
/// committed submission stays covered, in the chain or pending, through a
/// crash (`append_pending_audit`).
#[derive(Debug, Clone, Copy)]
pub struct BatchAudit<'a> {
    /// The writer, one per running process.
    pub writer: Uuid,
    /// Everything the writer committed since its last appended entry,
    /// this batch included.
    pub summary: &'a AuditRecord,
    /// Append `summary` to the chain now and clear the writer's pending
    /// one, or keep it pending in place of the previous one.
    pub append: bool,
}

/// Which pending summaries `append_pending_audit` appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingAudit {
    /// This writer's own (when it goes idle, or stops).
    Of(Uuid),
    /// Those of writers that stopped without appending theirs (a crash, a
    /// server taken away): every writer but `except` whose summary was last
    /// replaced before `before`. A running writer appends its own within
    /// seconds, so an old one is left by a writer that is gone. (A writer
    /// that could not reach the database for that long while another
    /// server could would count that summary twice: never fewer.)
    StaleBefore { before: DateTime<Utc>, except: Uuid },
}

#[async_trait]
pub trait IntakeStore: Send + Sync {
    /// Commits a batch in ONE transaction: each report is inserted unless
    /// its household already has its idempotency key (then the original id
    /// and reference come back), the covered residents are recorded for the day, the per-grid
    /// counters are raised by what was new, and `audit` (if given) is kept
    /// pending or appended to the chain (see `BatchAudit`). All or
    /// nothing: on error nothing of the batch is stored and the writer's
    /// pending summary is as before. Outcomes are in the order of `writes`.
    async fn write_intake_batch(
        &self,
        writes: &[IntakeWrite],
        audit: Option<BatchAudit<'_>>,
    ) -> StoreResult<Vec<IntakeOutcome>>;

    /// Whether `write_intake_batch` may keep what it holds (on SQLite, the
    /// turn at the write lock) for the next batch, briefly: the intake
    /// writer says yes while it has batches back to back, and no (which
    /// gives it back at once) when its queue is empty and before any other
    /// write of its own. Off until asked; the default holds nothing.
    fn keep_intake_turn(&self, _keep: bool) {}

    /// Keeps free space ahead in the database file, for the intake writer
    /// to call again and again while idle. Once less than half of
    /// `target_bytes` is free inside the file, each call takes one short
    /// step to fill it again (writes one slice of about a MiB, or frees the
    /// slices written) and returns the bytes it wrote or freed; 0 when there
    /// is nothing to do, or where the store keeps no room (PostgreSQL
    /// extends its own files). On SQLite a database that
    /// grows extends its file at every checkpoint, and the checkpoint's sync
    /// then also commits the file system's journal for the new blocks, which
    /// stalls the intake's commits behind it (docs/PERFORMANCE.md, session
    /// 21). Pages written once and freed are reused by later writes, so the
    /// checkpoints that follow write into blocks the file already has.
    async fn keep_room(&self, _target_bytes: u64) -> StoreResult<u64> {
        Ok(0)
    }

    /// Appends the chosen pending summaries to the audit chain, oldest
    /// first, and clears them, in one transaction. Returns how many.
    async fn append_pending_audit(&self, which: PendingAudit) -> StoreResult<u32>;

    /// The pending summaries, oldest first (for tests and `epigrid audit`).
    async fn pending_audit(&self) -> StoreResult<Vec<(Uuid, AuditRecord)>>;

    async fn get_report(&self, id: Uuid) -> StoreResult<Option<ReportRecord>>;
    /// The reports of `ids` that exist (purged ones are left out), in no
    /// particular order: a worker's list of tasks, each made from one.
    async fn get_reports(&self, ids: &[Uuid]) -> StoreResult<Vec<ReportRecord>>;
    async fn get_report_by_key(
        &self,
        household_id: Uuid,
        key: &str,
    ) -> StoreResult<Option<ReportRecord>>;
    async fn list_reports(&self, query: &ReportQuery) -> StoreResult<Vec<ReportRecord>>;

    /// Reports whose tasks are not yet created, in id order after `after`.
    async fn reports_pending_tasks(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<ReportRecord>>;
    /// Marks the reports' tasks as created.
    async fn clear_tasks_pending(&self, ids: &[Uuid]) -> StoreResult<()>;

    /// The counters of `day` for the given grids (grids without a report
    /// that day are left out).
    async fn grid_day_counters(
        &self,
        grid_ids: &[Uuid],
        day: NaiveDate,
    ) -> StoreResult<Vec<GridDayCounter>>;
    /// Every day's counters up to and including `until` for the given
    /// grids, in (grid, day) order: the daily report sums them into
    /// cumulative figures.
    async fn grid_day_counters_until(
        &self,
        grid_ids: &[Uuid],
        until: NaiveDate,
    ) -> StoreResult<Vec<GridDayCounter>>;
    /// The counters of `day` for every grid of a community (or of every
    /// community when `None`).
    async fn community_day_counters(
        &self,
        community_id: Option<Uuid>,
        day: NaiveDate,
    ) -> StoreResult<Vec<GridDayCounter>>;

    /// Which of `residents` (of grid `grid_id`) have a health entry on
    /// `day`, in no particular order: a household's "reported today" marks
    /// on its self-service menu. A read of the grid-and-day key.
    async fn reported_among(
        &self,
        grid_id: Uuid,
        day: NaiveDate,
        residents: &[Uuid],
    ) -> StoreResult<Vec<Uuid>>;

    /// Residents of a grid with no health entry on `day`, in id order after
    /// `after`: the "who has not reported today" list.
    async fn unreported_residents(
        &self,
        grid_id: Uuid,
        day: NaiveDate,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<ResidentRecord>>;
}

/// What one batch adds to one grid's day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GridDayDelta {
    pub community_id: Uuid,
    pub residents_reported: i64,
    pub health_reports: i64,
    pub flagged: i64,
    pub arrivals: i64,
    pub help_requests: i64,
    pub volunteer_offers: i64,
}

/// A row of `intake_reported_residents`: (grid, day, resident, community).
pub type ReportedRow = (Uuid, NaiveDate, Uuid, Uuid);

/// Reports already stored under a `(household, key)`: their `(id,
/// reference)`.
pub type StoredKeys = std::collections::HashMap<(Uuid, String), (Uuid, String)>;

/// How a batch's submissions map onto rows, the backends' common logic
/// (they differ only in how they talk to the database). A key repeated
/// within the batch (a double tap) is written once: later copies answer
/// with the first copy's outcome.
#[derive(Debug)]
pub struct BatchPlan {
    /// For each write, the index of the first write with its key.
    first_of: Vec<usize>,
    /// The writes to insert: the first of each key, in batch order.
    pub fresh: Vec<usize>,
}

impl BatchPlan {
    pub fn new(writes: &[IntakeWrite]) -> Self {
        let mut seen: std::collections::HashMap<(Uuid, &str), usize> =
            std::collections::HashMap::with_capacity(writes.len());
        let mut first_of = Vec::with_capacity(writes.len());
        let mut fresh = Vec::with_capacity(writes.len());
        for (i, write) in writes.iter().enumerate() {
            let key = (write.report.household_id, write.report.idempotency_key.as_str());
            let first = *seen.entry(key).or_insert(i);
            if first == i {
                fresh.push(i);
            }
            first_of.push(first);
        }
        Self { first_of, fresh }
    }

    /// The outcome of every write, what the batch adds to each grid's day,
    /// and the "reported today" rows to insert, once the fresh writes were
    /// inserted. `originals` holds, for keys the insert skipped because a
    /// row already had them, that row's `(id, reference)`: a stored row
    /// carrying the write's own id was stored by this batch (a backend that
    /// cannot tell per row looks every key up when its count falls short).
    pub fn settle(
        &self,
        writes: &[IntakeWrite],
        originals: &StoredKeys,
    ) -> StoreResult<SettledBatch> {
        let mut outcomes = Vec::with_capacity(writes.len());
        let mut deltas: std::collections::BTreeMap<(Uuid, NaiveDate), GridDayDelta> =
            std::collections::BTreeMap::new();
        let mut reported = Vec::new();
        for (i, write) in writes.iter().enumerate() {
            let r = &write.report;
            let first = &writes[self.first_of[i]].report;
            // Nearly always empty (no retries in the batch): no key is
            // copied to look it up then.
            let original = (!originals.is_empty())
                .then(|| originals.get(&(r.household_id, r.idempotency_key.clone())))
                .flatten()
                .filter(|(id, _)| *id != first.id);
            if self.first_of[i] != i || original.is_some() {
                let (id, reference) = match original {
                    Some((id, reference)) => (*id, reference.clone()),
                    None => (first.id, first.reference.clone()),
                };
                outcomes.push(IntakeOutcome::Duplicate { id, reference });
                continue;
            }
            let (Some(grid), Some(community)) = (r.path.grid, r.path.community) else {
                return Err(crate::StoreError::Other(
                    "an intake report needs a grid and community".into(),
                ));
            };
            let delta = deltas
                .entry((grid, r.day))
                .or_insert_with(|| GridDayDelta { community_id: community, ..Default::default() });
            match r.kind.as_str() {
                "health" => {
                    delta.health_reports += 1;
                    delta.flagged += i64::from(r.flagged);
                }
                "arrival" => delta.arrivals += 1,
                "help" => delta.help_requests += 1,
                "volunteer" => delta.volunteer_offers += 1,
                _ => {}
            }
            reported
                .extend(write.residents.iter().map(|x| (grid, r.day, x.resident_id, community)));
            outcomes.push(IntakeOutcome::Stored { id: r.id, reference: r.reference.clone() });
        }
        Ok(SettledBatch { outcomes, deltas, reported })
    }
}

/// A batch worked out by [`BatchPlan::settle`]. The caller inserts
/// `reported` (a resident counts once a day: each row new to the table
/// raises its grid's `residents_reported`), then upserts `deltas`.
#[derive(Debug)]
pub struct SettledBatch {
    pub outcomes: Vec<IntakeOutcome>,
    pub deltas: std::collections::BTreeMap<(Uuid, NaiveDate), GridDayDelta>,
    pub reported: Vec<ReportedRow>,
}
