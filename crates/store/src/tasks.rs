//! Task records (the closed loop of RULES.md §1.2) as stored, and the queries
//! over them. The rules live in `epigrid_domain::tasks`; the service computes
//! every state, deadline and level before a record reaches the store.

use chrono::{DateTime, Utc};
use epigrid_domain::tasks::{EventState, Priority, Stage};
use epigrid_domain::{AreaPath, Scope};
use uuid::Uuid;

/// One task. `version` rises by one on every write, for compare-and-set.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    pub id: Uuid,
    pub category: String,
    pub priority: Priority,
    pub state: EventState,
    /// `Source::kind_str`, and the whole source as JSON.
    pub source_kind: String,
    pub source_detail: String,
    /// `Subject::kind_str` and the subject's id.
    pub subject_kind: String,
    pub subject_id: Uuid,
    /// The subject's path; `community` is always set.
    pub path: AreaPath,
    pub assignee_account_id: Option<Uuid>,
    pub reserve_pool_community_id: Option<Uuid>,
    pub stage: Option<Stage>,
    pub stage_started_at: Option<DateTime<Utc>>,
    pub stage_deadline: Option<DateTime<Utc>>,
    /// `EscalationLevel::as_u8` of the current stage clock.
    pub escalation_level: u8,
    pub filed_at: Option<DateTime<Utc>>,
    pub handled_at: Option<DateTime<Utc>>,
    pub handled_by: Option<Uuid>,
    pub handle_deadline: Option<DateTime<Utc>>,
    pub handling_seconds: Option<i64>,
    pub closed_at: Option<DateTime<Utc>>,
    pub reopened: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub idempotency_key: Option<String>,
}

/// One step of a task's history: the report, each transition, each escalation.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskHistoryRecord {
    pub id: Uuid,
    pub task_id: Uuid,
    pub community_id: Uuid,
    /// `report`, `escalate` or a `TransitionKind::as_str`.
    pub transition: String,
    pub from_state: Option<EventState>,
    pub to_state: EventState,
    pub actor_account_id: Option<Uuid>,
    pub actor_name: String,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
    pub idempotency_key: Option<String>,
}

/// Board and list filters. Pages in id order (UUIDv7: creation order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskQuery {
    pub within: Option<Scope>,
    /// Empty: every state.
    pub states: Vec<EventState>,
    pub category: Option<String>,
    pub grid: Option<Uuid>,
    pub assignee: Option<Uuid>,
    /// Only tasks whose stage deadline is before this instant.
    pub overdue_at: Option<DateTime<Utc>>,
    /// Keyset cursor: only ids after this one.
    pub after: Option<Uuid>,
    pub limit: u32,
}

/// What applying a transition did.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskWrite {
    Applied,
    /// The idempotency key was used before: this is the step it recorded,
    /// and nothing was written.
    Replayed(TaskHistoryRecord),
    /// The task changed since it was read (version mismatch): nothing written.
    Stale,
}

/// Open tasks of one worker of one priority (for the workload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadRow {
    pub account_id: Uuid,
    pub priority: Priority,
    pub count: u32,
}

/// Task figures of one grid (and its community), for dashboards: counted in
/// one grouped query, never by loading tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GridTaskFigures {
    pub community_id: Uuid,
    /// `None` for tasks about a community as a whole.
    pub grid_id: Option<Uuid>,
    /// Open tasks: not rejected, closed or evaluated.
    pub open: i64,
    /// Open tasks whose stage deadline has passed.
    pub overdue: i64,
    /// Tasks closed since the start of the day.
    pub closed_today: i64,
    /// Open tasks escalated at least once on their current stage clock.
    pub escalated_open: i64,
    /// Escalation steps recorded since the start of the day.
    pub escalations_today: i64,
}

/// What evaluation groups tasks by, as a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvaluationKey {
    /// The account credited: the one who reported it handled, else the
    /// assignee.
    Worker,
    Grid,
    Community,
}

/// The counts of one evaluation group, as `epigrid_domain::tasks::Metrics`
/// defines them, computed by the database over a period `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvaluationCounts {
    pub group_id: Uuid,
    pub handled: i64,
    pub handled_on_time: i64,
    pub filed: i64,
    pub filed_and_closed: i64,
    pub closed: i64,
    pub closed_after_rework: i64,
    pub overdue: i64,
    pub timed: i64,
    pub total_handling_seconds: i64,
}

/// One step of a batch written by `Store::apply_task_steps_audited`: the
/// task as it becomes (`version` = `expected_version + 1`), its history row,
/// and the audit entries that record it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditedTaskStep {
    pub task: TaskRecord,
    pub expected_version: i64,
    pub step: TaskHistoryRecord,
    pub audit: Vec<crate::AuditRecord>,
}
