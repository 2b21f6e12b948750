//! The storage boundary. `Store` is one trait with one implementation per
//! backend crate (SQLite embedded, PostgreSQL for a district or city), and one
//! contract suite (in `epigrid-testkit`) runs against both.
//!
//! The store is deliberately dumb: it persists records the service layer has
//! already validated, authorised and sealed. Sensitive fields arrive here as
//! ciphertext plus a keyed blind index, so no backend ever sees them in clear.

pub mod audit_chain;
pub mod audited;
pub mod backup;
pub mod import;
pub mod intake;
pub mod matching;
pub mod photos;
mod records;
pub mod retention;
pub mod tasks;

pub use audit_chain::{AuditLink, ChainBreak, ChainVerdict, ChainVerifier};
pub use audited::{AuditedWrites, RegistryWrite};
pub use backup::BackupSummary;
pub use import::{ImportChunk, ImportJobRecord, ImportStore};
pub use intake::{
    BatchAudit, BatchPlan, GridDayCounter, GridDayDelta, IntakeOutcome, IntakeStore, IntakeWrite,
    PendingAudit, ReportQuery, ReportRecord, ReportedResident, ReportedRow, SettledBatch,
    StoredKeys,
};
pub use matching::{MatchListRecord, MatchRowRecord, MatchingStore};
pub use photos::{TaskPhotoMeta, TaskPhotoRecord};
pub use records::*;
pub use retention::{PurgeCounts, PurgeScope, RetentionStore};
pub use tasks::{
    EvaluationCounts, EvaluationKey, GridTaskFigures, TaskHistoryRecord, TaskQuery, TaskRecord,
    TaskWrite, WorkloadRow,
};

use async_trait::async_trait;
use uuid::Uuid;

pub type StoreResult<T> = Result<T, StoreError>;

/// The resident figures of a scope: per area of one level, per (birth
/// year, sex) in year order, and per tag in tag order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResidentFigures {
    pub areas: Vec<AreaFigures>,
    pub birth_years: Vec<BirthYearCount>,
    pub tags: Vec<TagCount>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken; `constraint` names it (e.g. `residents_id_blind`).
    #[error("conflict on {constraint}")]
    Conflict { constraint: String },
    /// A referenced row does not exist (e.g. a parent area).
    #[error("reference to a missing {what}")]
    MissingReference { what: String },
    /// The database cannot be reached or timed out waiting for a connection.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(String),
}

#[async_trait]
pub trait Store:
    AuditedWrites
    + IntakeStore
    + ImportStore
    + RetentionStore
    + MatchingStore
    + Send
    + Sync
    + std::fmt::Debug
    + 'static
{
    /// Backend name for logs and test output: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Applies the embedded migrations. Safe to run again.
    async fn migrate(&self) -> StoreResult<()>;

    /// Refreshes the query planner's statistics. Call after a bulk load: an
    /// index that looks selective on empty tables (every resident shares one
    /// sub-district) must not be chosen over the name index afterwards.
    async fn refresh_statistics(&self) -> StoreResult<()>;

    /// Cheap round trip for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;

    // ---- areas -------------------------------------------------------------
    async fn insert_area(&self, area: &AreaRecord) -> StoreResult<()>;
    async fn get_area(&self, id: Uuid) -> StoreResult<Option<AreaRecord>>;
    async fn get_area_by_code(&self, code: &str) -> StoreResult<Option<AreaRecord>>;
    /// Several areas at once (missing ids are left out), so a page listing
    /// fifty residents with their addresses makes one query, not a hundred.
    async fn get_areas(&self, ids: &[Uuid]) -> StoreResult<Vec<AreaRecord>>;
    async fn list_areas(&self, query: &AreaQuery) -> StoreResult<Vec<AreaRecord>>;
    /// Updates name, code, grid kind, boundary and address. The parent of an
    /// area never changes: paths are denormalised onto every record below it.
    async fn update_area(&self, area: &AreaRecord) -> StoreResult<bool>;

    // ---- households --------------------------------------------------------
    async fn insert_household(&self, household: &HouseholdRecord) -> StoreResult<()>;
    async fn get_household(&self, id: Uuid) -> StoreResult<Option<HouseholdRecord>>;
    async fn get_households(&self, ids: &[Uuid]) -> StoreResult<Vec<HouseholdRecord>>;
    async fn list_households(&self, query: &HouseholdQuery) -> StoreResult<Vec<HouseholdRecord>>;
    async fn update_household(&self, household: &HouseholdRecord) -> StoreResult<bool>;

    // ---- residents ---------------------------------------------------------
    async fn insert_resident(&self, resident: &ResidentRecord) -> StoreResult<()>;
    /// Inserts many households and residents in one transaction: all or none.
    async fn insert_bulk(
        &self,
        households: &[HouseholdRecord],
        residents: &[ResidentRecord],
    ) -> StoreResult<()>;
    async fn get_resident(&self, id: Uuid) -> StoreResult<Option<ResidentRecord>>;
    async fn update_resident(&self, resident: &ResidentRecord) -> StoreResult<bool>;
    async fn search_residents(&self, query: &ResidentQuery) -> StoreResult<Vec<ResidentRecord>>;

    // ---- accounts and sessions ---------------------------------------------
    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()>;
    async fn get_user(&self, id: Uuid) -> StoreResult<Option<UserRecord>>;
    async fn get_user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    /// Accounts within the scope, ordered by username (in the database's
    /// collation: byte order on SQLite, the column's collation on
    /// PostgreSQL), after the username `query.after`.
    async fn list_users(&self, query: &UserQuery) -> StoreResult<Vec<UserRecord>>;
    async fn update_user(&self, user: &UserRecord) -> StoreResult<bool>;

    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()>;
    async fn get_session(&self, token_hash: &[u8]) -> StoreResult<Option<SessionRecord>>;
    async fn touch_session(
        &self,
        token_hash: &[u8],
        seen_at: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<()>;
    async fn delete_session(&self, token_hash: &[u8]) -> StoreResult<()>;
    async fn delete_user_sessions(&self, user_id: Uuid) -> StoreResult<u64>;

    // ---- audit ---------------------------------------------------------------
    /// Appends to the audit log. There is no update or delete.
    async fn append_audit(&self, entry: &AuditRecord) -> StoreResult<()>;
    /// Audit entries, newest first.
    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>>;
    /// How many entries match, and the oldest one's time.
    async fn count_audit(&self, query: &AuditCount) -> StoreResult<AuditTally>;
    /// Up to `limit` entries with their chain links, in `seq` order, after
    /// `after_seq` (0 for the start of the log).
    async fn audit_chain(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<AuditLink>>;

    /// Walks the whole audit log in `seq` order, a page at a time, and
    /// checks its hash chain: the first bad entry, or the count and head.
    async fn verify_audit_chain(&self) -> StoreResult<ChainVerdict> {
        const PAGE: u32 = 1000;
        let mut verifier = ChainVerifier::new();
        loop {
            let page = self.audit_chain(verifier.last_seq(), PAGE).await?;
            for link in &page {
                if let Err(broken) = verifier.check(link) {
                    return Ok(ChainVerdict::Broken(broken));
                }
            }
            if page.len() < PAGE as usize {
                return Ok(verifier.finish());
            }
        }
    }

    // ---- figures -----------------------------------------------------------
    /// Counts of every level of the hierarchy within a scope (everything when `None`).
    async fn level_counts(&self, within: Option<epigrid_domain::Scope>)
    -> StoreResult<LevelCounts>;

    /// Like `level_counts` for the area levels only (households and
    /// residents left at 0): dashboards take those two from `area_figures`,
    /// which reads the residents once instead of twice.
    async fn area_level_counts(
        &self,
        within: Option<epigrid_domain::Scope>,
    ) -> StoreResult<LevelCounts>;

    /// Residents, households, floating residents and residents in a key
    /// group, per area of level `by` (e.g. per grid) within a scope.
    async fn area_figures(
        &self,
        within: Option<epigrid_domain::Scope>,
        by: epigrid_domain::AreaKind,
    ) -> StoreResult<Vec<AreaFigures>>;

    /// Residents per (birth year, sex) within a scope: the age pyramid.
    async fn birth_year_counts(
        &self,
        within: Option<epigrid_domain::Scope>,
    ) -> StoreResult<Vec<BirthYearCount>>;

    /// Residents per key-group tag within a scope.
    async fn tag_counts(&self, within: Option<epigrid_domain::Scope>)
    -> StoreResult<Vec<TagCount>>;

    /// `area_figures`, `birth_year_counts` and `tag_counts` aggregated from
    /// the resident and household rows, whatever the scope. Those three
    /// read per-grid counters kept on write for scopes and groupings at
    /// grid level and above; this is what the counters must equal. It costs
    /// O(residents): for checks and benchmarks, not for pages.
    async fn recount_resident_figures(
        &self,
        within: Option<epigrid_domain::Scope>,
        by: epigrid_domain::AreaKind,
    ) -> StoreResult<ResidentFigures>;

    // ---- tasks ---------------------------------------------------------------
    /// Inserts a task and its first history row in one transaction. A reused
    /// `idempotency_key` is a `Conflict` on `tasks_idempotency_key`.
    async fn insert_task(&self, task: &TaskRecord, first: &TaskHistoryRecord) -> StoreResult<()>;
    async fn get_task(&self, id: Uuid) -> StoreResult<Option<TaskRecord>>;
    async fn get_task_by_idempotency_key(&self, key: &str) -> StoreResult<Option<TaskRecord>>;
    /// Tasks matching the filters, in id order after `query.after`.
    async fn list_tasks(&self, query: &TaskQuery) -> StoreResult<Vec<TaskRecord>>;
    /// Tasks about any of `subjects` made from `source_kind` (e.g.
    /// `resident`: residents' own reports) since `since`, newest first, at
    /// most `limit`: a household's requests on its self-service menu.
    async fn tasks_about(
        &self,
        subjects: &[Uuid],
        source_kind: &str,
        since: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> StoreResult<Vec<TaskRecord>>;
    /// The task's history, oldest first.
    async fn list_task_history(&self, task_id: Uuid) -> StoreResult<Vec<TaskHistoryRecord>>;
    /// Writes `task` (whose `version` must be `expected_version + 1`) if the
    /// stored version is still `expected_version`, and appends `step`, in one
    /// transaction. A step whose idempotency key is already recorded writes
    /// nothing and returns the recorded step.
    async fn apply_task_step(
        &self,
        task: &TaskRecord,
        expected_version: i64,
        step: &TaskHistoryRecord,
    ) -> StoreResult<TaskWrite>;
    /// Open tasks (dispatched or in progress) held by workers of a grid, per
    /// worker and priority.
    async fn grid_workload(&self, grid_id: Uuid) -> StoreResult<Vec<WorkloadRow>>;
    /// As `apply_task_step`, and stores `photos` (taken for `step`) in the
    /// same transaction: a refused or replayed step keeps none of them.
    async fn apply_task_step_with_photos(
        &self,
        task: &TaskRecord,
        expected_version: i64,
        step: &TaskHistoryRecord,
        photos: &[TaskPhotoRecord],
    ) -> StoreResult<TaskWrite>;
    /// One photo with its bytes.
    async fn get_task_photo(&self, id: Uuid) -> StoreResult<Option<TaskPhotoRecord>>;
    /// A task's photos without their bytes, oldest first.
    async fn list_task_photos(&self, task_id: Uuid) -> StoreResult<Vec<TaskPhotoMeta>>;
    /// Open tasks whose stage deadline is before `now` and whose escalation
    /// level is below `max_level`, in id order after `after`.
    async fn tasks_due_for_escalation(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        max_level: u8,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<TaskRecord>>;
    /// Inserts many tasks, each with its first history row, in one
    /// transaction: all or none (bulk loads and benches).
    async fn insert_tasks_bulk(&self, tasks: &[(TaskRecord, TaskHistoryRecord)])
    -> StoreResult<()>;
    /// Task figures per (community, grid) within a scope, in one grouped
    /// query: open, overdue at `now`, closed since `day_start`, escalated
    /// open tasks and escalation steps since `day_start`. Groups with no task
    /// are left out.
    async fn grid_task_figures(
        &self,
        within: Option<epigrid_domain::Scope>,
        now: chrono::DateTime<chrono::Utc>,
        day_start: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Vec<GridTaskFigures>>;
    /// Evaluation counts per group over `[from, to)` for the tasks of a
    /// scope that have a grid, as `Metrics::over` defines them; `now`
    /// decides which deadlines have passed. Groups with no task in scope
    /// are left out; a group whose tasks fall outside the period has zeros.
    async fn task_evaluation(
        &self,
        within: Option<epigrid_domain::Scope>,
        by: EvaluationKey,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Vec<EvaluationCounts>>;
    /// Several accounts at once (missing ids are left out): the names of a
    /// page's assignees in one query.
    async fn get_users(&self, ids: &[Uuid]) -> StoreResult<Vec<UserRecord>>;
    /// Applies many steps, each as `apply_task_step` would (compare-and-set
    /// on the version, idempotency key), and appends the audit entries of
    /// each step that applied, all in one transaction under the audit
    /// append lock: one commit for a whole escalation pass page instead of
    /// two per task. The answer is one `TaskWrite` per step, in order.
    async fn apply_task_steps_audited(
        &self,
        steps: &[tasks::AuditedTaskStep],
    ) -> StoreResult<Vec<TaskWrite>>;
}
