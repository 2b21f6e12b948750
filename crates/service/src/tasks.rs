//! The closed loop of grid work (RULES.md §1.2): reporting events, moving
//! tasks through the state machine, fair automatic dispatch, escalation of
//! overdue tasks and evaluation.
//!
//! The rules are `epigrid_domain::tasks`; this module stores what they
//! decide. Deadlines are computed from the catalogue and the working
//! calendar in local time (`Settings::time_zone_offset`) and stored in UTC
//! with the stage's start and escalation level, so the escalation pass is a
//! pure function of stored rows and the clock it is given: running it twice,
//! or after a restart, never escalates anything twice.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SubsecRound, TimeZone, Utc};
use epigrid_domain::tasks::{
    Assignee, Candidate, Catalogue, DispatchDecision, DispatchPolicy, EscalationLevel,
    EscalationPolicy, EventState, GroupBy, Metrics, Party, Period, Priority, Source, Stage,
    Subject, TimeLimit, Transition, TransitionKind, WorkCalendar, choose_assignee,
};
use epigrid_domain::{AreaKind, AreaPath, ReasonCode, Role, Scope};
use epigrid_store::tasks::AuditedTaskStep;
use epigrid_store::{
    EvaluationKey, ReportRecord, TaskHistoryRecord, TaskQuery, TaskRecord, TaskWrite, UserQuery,
    page_size,
};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::Target;
use crate::{Actor, Service, ServiceError, ServiceResult};

/// The rules of the loop a deployment configures.
#[derive(Debug, Clone)]
pub struct TaskSettings {
    pub catalogue: Catalogue,
    pub calendar: WorkCalendar,
    pub dispatch: DispatchPolicy,
    pub escalation: EscalationPolicy,
}

impl Default for TaskSettings {
    fn default() -> Self {
        Self {
            catalogue: Catalogue::default_epidemic(),
            calendar: WorkCalendar::default_china(),
            dispatch: DispatchPolicy::default(),
            escalation: EscalationPolicy::default(),
        }
    }
}

/// A new event, reported by a member of staff.
#[derive(Debug, Clone)]
pub struct ReportEvent {
    pub category: String,
    /// The category's default when absent.
    pub priority: Option<Priority>,
    pub subject: Subject,
    pub note: Option<String>,
    /// A retried report with the same key returns the first task.
    pub idempotency_key: Option<String>,
}

/// A step asked for by a caller.
#[derive(Debug, Clone)]
pub struct TransitionRequest {
    pub transition: Transition,
    pub note: Option<String>,
    pub idempotency_key: Option<String>,
}

/// A task as shown to callers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskView {
    pub id: Uuid,
    pub category: String,
    pub priority: Priority,
    pub state: EventState,
    pub source: serde_json::Value,
    pub subject: Subject,
    pub sub_district_id: Option<Uuid>,
    pub community_id: Option<Uuid>,
    pub grid_id: Option<Uuid>,
    pub assignee: Option<Assignee>,
    pub stage: Option<Stage>,
    pub stage_started_at: Option<DateTime<Utc>>,
    pub stage_deadline: Option<DateTime<Utc>>,
    pub escalation_level: u8,
    pub overdue: bool,
    pub possible_transitions: Vec<TransitionKind>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// The resident's (or a worker's) report the task was made from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryView {
    /// The step's id, which its photos name.
    pub id: Uuid,
    pub transition: String,
    pub from_state: Option<EventState>,
    pub to_state: EventState,
    pub actor_account_id: Option<Uuid>,
    pub actor_name: String,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskDetail {
    pub task: TaskView,
    pub history: Vec<HistoryView>,
    /// For a task made from a resident's report (or a worker's report for
    /// them): what that report said about the task's subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<TaskReport>,
    /// For a task whose category holds health data: how long its notes and
    /// photos are kept (the retention purge then deletes them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<HealthDataRetention>,
}

/// How long a health task's notes and photos are kept (PIPL Art. 19): as
/// long as the task is open, then `retention_days` after it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "kept", rename_all = "snake_case")]
pub enum HealthDataRetention {
    /// Open: kept while the work goes on, then `days` days after it ends.
    WhileOpen { days: u32 },
    /// Ended: kept through `until`, then deleted.
    Until { until: NaiveDate },
    /// Past its time: deleted by the day's purge (`days` after it ended).
    Expired { days: u32 },
}

/// The report a task was made from: its reference (the resident's receipt),
/// when it was made, and what it said about the task's subject.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskReport {
    pub reference: String,
    pub at: DateTime<Utc>,
    pub lines: Vec<ReportedLine>,
}

/// One line of a report: `label` is a translation key (`task.reported.…`);
/// the value is either `codes`, translation keys of coded answers
/// (`intake.symptom.cough`…), or `text` as written (a temperature, a date,
/// a note).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportedLine {
    pub label: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// What a transition did. `replayed` is true when the idempotency key had
/// been used: nothing was applied again.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransitionOutcome {
    pub task: TaskView,
    pub replayed: bool,
}

/// Board filters.
#[derive(Debug, Clone, Default)]
pub struct BoardFilter {
    pub states: Vec<EventState>,
    pub category: Option<String>,
    pub grid: Option<Uuid>,
    pub overdue: bool,
    pub after: Option<Uuid>,
    pub limit: u32,
}

/// What one escalation pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EscalationCounts {
    pub examined: u32,
    pub to_grid_leader: u32,
    pub to_community_admin: u32,
}

/// Evaluation figures of one group (a worker, grid or community).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EvaluationRow {
    pub group_id: Uuid,
    pub metrics: Metrics,
    pub on_time_rate: Option<f64>,
    pub closing_rate: Option<f64>,
    pub rework_rate: Option<f64>,
    pub average_handling_seconds: Option<i64>,
}

const PAGE: u32 = 500;

pub(crate) fn now_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// The subject a stored task concerns.
pub(crate) fn subject_of(t: &TaskRecord) -> Subject {
    match t.subject_kind.as_str() {
        "resident" => Subject::Resident(t.subject_id),
        "household" => Subject::Household(t.subject_id),
        "building" => Subject::Building(t.subject_id),
        _ => Subject::Area(t.subject_id),
    }
}

fn task_view(t: &TaskRecord, now: DateTime<Utc>) -> TaskView {
    let assignee = match (t.assignee_account_id, t.reserve_pool_community_id) {
        (Some(account_id), _) => Some(Assignee::Worker { account_id }),
        (None, Some(community_id)) => Some(Assignee::ReservePool { community_id }),
        _ => None,
    };
    let subject = subject_of(t);
    TaskView {
        id: t.id,
        category: t.category.clone(),
        priority: t.priority,
        state: t.state,
        source: serde_json::from_str(&t.source_detail).unwrap_or(serde_json::Value::Null),
        subject,
        sub_district_id: t.path.sub_district,
        community_id: t.path.community,
        grid_id: t.path.grid,
        assignee,
        stage: t.stage,
        stage_started_at: t.stage_started_at,
        stage_deadline: t.stage_deadline,
        escalation_level: t.escalation_level,
        overdue: t.state.stage().is_some() && t.stage_deadline.is_some_and(|d| d < now),
        possible_transitions: t.state.possible_transitions(),
        created_at: t.created_at,
        updated_at: t.updated_at,
        version: t.version,
        report_id: t.idempotency_key.as_deref().and_then(crate::intake::report_of_task_key),
    }
}

/// What `report` said about `subject` (`Submission::lines_about`), for the
/// task made from it.
pub(crate) fn task_report(report: &ReportRecord, subject: Subject) -> ServiceResult<TaskReport> {
    use epigrid_domain::intake::{ReportValue, Submission, WorkSubject};
    let submission: Submission = serde_json::from_str(&report.payload)
        .map_err(|e| ServiceError::Internal(format!("stored submission: {e}")))?;
    let subject = match subject {
        Subject::Resident(id) => WorkSubject::Resident(id),
        Subject::Household(id) => WorkSubject::Household(id),
        // Reports are about people and households only.
        Subject::Building(_) | Subject::Area(_) => {
            return Ok(TaskReport {
                reference: report.reference.clone(),
                at: report.created_at,
                lines: Vec::new(),
            });
        }
    };
    let lines = submission
        .lines_about(subject)
        .into_iter()
        .map(|line| {
            let (codes, text) = match line.value {
                ReportValue::Codes(codes) => (codes, None),
                ReportValue::Text(text) => (Vec::new(), Some(text)),
            };
            ReportedLine { label: line.label.to_owned(), codes, text }
        })
        .collect();
    Ok(TaskReport { reference: report.reference.clone(), at: report.created_at, lines })
}

fn history_view(h: &TaskHistoryRecord) -> HistoryView {
    HistoryView {
        id: h.id,
        transition: h.transition.clone(),
        from_state: h.from_state,
        to_state: h.to_state,
        actor_account_id: h.actor_account_id,
        actor_name: h.actor_name.clone(),
        at: h.at,
        note: h.note.clone(),
    }
}

pub(crate) fn check_note(note: Option<String>) -> ServiceResult<Option<String>> {
    let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
        return Err(ServiceError::invalid("note", "task.note_too_long"));
    }
    Ok(note)
}

fn check_key(key: Option<String>) -> ServiceResult<Option<String>> {
    let key = key.map(|k| k.trim().to_owned()).filter(|k| !k.is_empty());
    if key.as_ref().is_some_and(|k| k.len() > 200) {
        return Err(ServiceError::invalid("idempotency_key", "task.idempotency_key_too_long"));
    }
    Ok(key)
}

impl Service {
    fn task_settings(&self) -> &TaskSettings {
        &self.settings().tasks
    }

    fn to_local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&self.settings().time_zone_offset).naive_local()
    }

    fn to_utc(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let offset = self.settings().time_zone_offset;
        offset
            .from_local_datetime(&local)
            .single()
            .map_or_else(|| local.and_utc() - offset, |d| d.with_timezone(&Utc))
    }

    /// The limit of a stage for a task; the catalogue's default limits for a
    /// category no longer in the catalogue.
    fn stage_limit(&self, category: &str, stage: Stage, priority: Priority) -> TimeLimit {
        let catalogue = &self.task_settings().catalogue;
        match catalogue.get(category) {
            Some(c) => c.limit(stage, priority),
            None => catalogue.default_limits().get(stage).for_priority(priority),
        }
    }

    fn stage_deadline(
        &self,
        category: &str,
        stage: Stage,
        priority: Priority,
        start: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let limit = self.stage_limit(category, stage, priority);
        self.to_utc(limit.deadline_from(self.to_local(start), &self.task_settings().calendar))
    }

    /// The path an event's subject lies on, if it exists and the actor
    /// covers it.
    async fn subject_path(&self, actor: &Actor, subject: Subject) -> ServiceResult<AreaPath> {
        let store = self.store();
        let path = match subject {
            Subject::Resident(id) => store.get_resident(id).await?.map(|r| r.path),
            Subject::Household(id) => store.get_household(id).await?.map(|h| h.path),
            Subject::Building(id) => {
                store.get_area(id).await?.filter(|a| a.kind == AreaKind::Building).map(|a| a.path)
            }
            Subject::Area(id) => store.get_area(id).await?.map(|a| a.path),
        };
        match path {
            Some(path) if path.community.is_some() && actor.covers(&path) => Ok(path),
            _ => Err(ServiceError::NotFound),
        }
    }

    /// A task the actor may see: within their scope, or assigned to them.
    pub(crate) async fn visible_task(&self, actor: &Actor, id: Uuid) -> ServiceResult<TaskRecord> {
        let task = self.store().get_task(id).await?.ok_or(ServiceError::NotFound)?;
        let assigned = actor.user_id.is_some() && task.assignee_account_id == actor.user_id;
        // Volunteers see areas, never personal records: only their own tasks.
        let in_scope = actor.role != Role::Volunteer && actor.covers(&task.path);
        if in_scope || assigned { Ok(task) } else { Err(ServiceError::NotFound) }
    }

    /// A new task in `Reported` and its first history row, not yet stored:
    /// `report_event` stores one, list matching stores thousands at once.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn reported_task(
        &self,
        actor: &Actor,
        category: &epigrid_domain::tasks::Category,
        priority: Option<Priority>,
        subject: Subject,
        path: AreaPath,
        note: Option<String>,
        key: Option<String>,
        now: DateTime<Utc>,
    ) -> ServiceResult<(TaskRecord, TaskHistoryRecord)> {
        let priority = priority.unwrap_or(category.default_priority);
        let source = match actor.user_id {
            Some(account_id) => Source::Staff { account_id },
            None => Source::SystemRule { rule: "system".into() },
        };
        let state = EventState::Reported;
        let stage = state.stage();
        let task = TaskRecord {
            id: Uuid::now_v7(),
            category: category.code.clone(),
            priority,
            state,
            source_kind: source.kind_str().to_owned(),
            source_detail: serde_json::to_string(&source)
                .map_err(|e| ServiceError::Internal(e.to_string()))?,
            subject_kind: subject.kind_str().to_owned(),
            subject_id: subject.id(),
            path,
            assignee_account_id: None,
            reserve_pool_community_id: None,
            stage,
            stage_started_at: Some(now),
            stage_deadline: stage.map(|s| self.stage_deadline(&category.code, s, priority, now)),
            escalation_level: 0,
            filed_at: None,
            handled_at: None,
            handled_by: None,
            handle_deadline: None,
            handling_seconds: None,
            closed_at: None,
            reopened: 0,
            created_at: now,
            updated_at: now,
            version: 1,
            idempotency_key: key,
        };
        let first = TaskHistoryRecord {
            id: Uuid::now_v7(),
            task_id: task.id,
            community_id: path.community.unwrap_or_default(),
            transition: "report".into(),
            from_state: None,
            to_state: state,
            actor_account_id: actor.user_id,
            actor_name: actor.username.clone(),
            at: now,
            note,
            idempotency_key: None,
        };
        Ok((task, first))
    }

    /// Records a new event as a task in `Reported`, with its verification
    /// deadline.
    pub async fn report_event(&self, actor: &Actor, event: ReportEvent) -> ServiceResult<TaskView> {
        if actor.role == Role::Volunteer && actor.user_id.is_some() {
            return Err(ServiceError::Forbidden);
        }
        let note = check_note(event.note)?;
        let key = check_key(event.idempotency_key)?.map(|k| format!("report:{k}"));
        let now = now_micros(self.now());
        if let Some(key) = &key
            && let Some(existing) = self.store().get_task_by_idempotency_key(key).await?
        {
            return if actor.covers(&existing.path) {
                Ok(task_view(&existing, now))
            } else {
                Err(ServiceError::NotFound)
            };
        }
        let category = self
            .task_settings()
            .catalogue
            .get(event.category.trim())
            .ok_or_else(|| ServiceError::invalid("category", "task.unknown_category"))?
            .clone();
        let path = self.subject_path(actor, event.subject).await?;
        let (task, first) = self.reported_task(
            actor,
            &category,
            event.priority,
            event.subject,
            path,
            note,
            key.clone(),
            now,
        )?;
        let priority = task.priority;
        match self.store().insert_task(&task, &first).await {
            Ok(()) => {}
            Err(epigrid_store::StoreError::Conflict { .. }) if key.is_some() => {
                // A concurrent retry won the race: answer with its task.
                let key = key.unwrap_or_default();
                let existing = self
                    .store()
                    .get_task_by_idempotency_key(&key)
                    .await?
                    .ok_or(ServiceError::NotFound)?;
                return Ok(task_view(&existing, now));
            }
            Err(e) => return Err(e.into()),
        }
        self.audit(
            actor,
            "task.report",
            Some(Target { kind: "task", id: task.id, path: Some(&task.path) }),
            "ok",
            json!({ "category": task.category, "priority": priority.as_str(),
                    "subject_kind": task.subject_kind, "subject_id": task.subject_id }),
        )
        .await?;
        Ok(task_view(&task, now))
    }

    /// One task with its history.
    pub async fn task_detail(&self, actor: &Actor, id: Uuid) -> ServiceResult<TaskDetail> {
        let task = self.visible_task(actor, id).await?;
        let history = self.store().list_task_history(id).await?;
        // Volunteers see areas, never personal records (`visible_task`).
        let report =
            if actor.role == Role::Volunteer { None } else { self.report_of(&task).await? };
        Ok(TaskDetail {
            task: task_view(&task, self.now()),
            history: history.iter().map(history_view).collect(),
            report,
            retention: self.health_data_retention(&task),
        })
    }

    /// `None` unless the task's category holds health data. The purge takes
    /// a task's notes once it ended before the cut-off day
    /// (`retention_cut_off`), so they are kept through the day `days` after
    /// the day it ended.
    fn health_data_retention(&self, task: &TaskRecord) -> Option<HealthDataRetention> {
        let category = self.settings().tasks.catalogue.get(&task.category)?;
        if !category.holds_health_data {
            return None;
        }
        let days = self.settings().retention_days;
        if task.state.is_open() {
            return Some(HealthDataRetention::WhileOpen { days });
        }
        // As the purge reads it: a rejected task has no close time.
        let ended = task.closed_at.unwrap_or(task.updated_at).date_naive();
        let until = ended.checked_add_days(chrono::Days::new(u64::from(days)))?;
        Some(if until < self.today() {
            HealthDataRetention::Expired { days }
        } else {
            HealthDataRetention::Until { until }
        })
    }

    /// What the report a task was made from said about the task's subject;
    /// none for other tasks, or once the retention purge removed the report.
    async fn report_of(&self, task: &TaskRecord) -> ServiceResult<Option<TaskReport>> {
        let key = task.idempotency_key.as_deref();
        let Some(report_id) = key.and_then(crate::intake::report_of_task_key) else {
            return Ok(None);
        };
        let Some(report) = self.store().get_report(report_id).await? else { return Ok(None) };
        task_report(&report, subject_of(task)).map(Some)
    }

    /// Checks that a named assignee may hold the task: a worker account of
    /// the task's community that is not disabled, or that community's pool.
    async fn check_assignee(&self, task: &TaskRecord, assignee: Assignee) -> ServiceResult<()> {
        match assignee {
            Assignee::Worker { account_id } => {
                let user = self.store().get_user(account_id).await?;
                match user {
                    Some(u)
                        if !u.disabled
                            && u.scope_path.community.is_some()
                            && u.scope_path.community == task.path.community =>
                    {
                        Ok(())
                    }
                    _ => Err(ServiceError::invalid("assignee", "task.assignee_unknown")),
                }
            }
            Assignee::ReservePool { community_id } => {
                if Some(community_id) == task.path.community {
                    Ok(())
                } else {
                    Err(ServiceError::invalid("assignee", "task.assignee_unknown"))
                }
            }
        }
    }

    /// Takes one step of the loop. A request whose idempotency key was used
    /// before returns the task as it is, with `replayed`, and applies nothing.
    /// Filing or reopening a task dispatches it automatically.
    pub async fn transition_task(
        &self,
        actor: &Actor,
        task_id: Uuid,
        request: TransitionRequest,
    ) -> ServiceResult<TransitionOutcome> {
        self.transition_task_with_photos(actor, task_id, request, Vec::new()).await
    }

    /// As `transition_task`, with photos taken for the step (raw bytes; see
    /// `crate::photos` for the limits). They are checked before anything is
    /// written and stored in the step's transaction.
    pub async fn transition_task_with_photos(
        &self,
        actor: &Actor,
        task_id: Uuid,
        request: TransitionRequest,
        photos: Vec<Vec<u8>>,
    ) -> ServiceResult<TransitionOutcome> {
        let task = self.visible_task(actor, task_id).await?;
        let key = check_key(request.idempotency_key)?.map(|k| format!("{task_id}:{k}"));
        if let Some(key) = &key {
            let history = self.store().list_task_history(task_id).await?;
            if history.iter().any(|h| h.idempotency_key.as_deref() == Some(key)) {
                return Ok(TransitionOutcome {
                    task: task_view(&task, self.now()),
                    replayed: true,
                });
            }
        }
        let note = check_note(request.note)?;
        let photos = crate::photos::check_photos(&self.settings().photos, photos)?;
        let photo_count = photos.len();
        let transition = request.transition;
        let party = match actor.user_id {
            None => Party::System,
            Some(id) => {
                Party::Staff { role: actor.role, is_assignee: task.assignee_account_id == Some(id) }
            }
        };
        let next = task
            .state
            .apply(&transition)
            .map_err(|e| ServiceError::invalid("transition", e.code()))?;
        party.authorize(transition.kind()).map_err(|_| ServiceError::Forbidden)?;
        if let Some(assignee) = transition.new_assignee() {
            self.check_assignee(&task, assignee).await?;
        }
        let (task, replayed) =
            self.apply_step(actor, task, &transition, next, note, key, photos).await?;
        if replayed {
            return Ok(TransitionOutcome { task: task_view(&task, self.now()), replayed });
        }
        self.audit(
            actor,
            &format!("task.{}", transition.kind().as_str()),
            Some(Target { kind: "task", id: task.id, path: Some(&task.path) }),
            "ok",
            json!({ "to_state": task.state.as_str(), "assignee": transition.new_assignee(),
                    "photos": photo_count }),
        )
        .await?;
        // A filed task, and a reopened one, goes out again at once.
        let task = if matches!(transition.kind(), TransitionKind::File | TransitionKind::Reopen) {
            self.dispatch(task).await?
        } else {
            task
        };
        Ok(TransitionOutcome { task: task_view(&task, self.now()), replayed: false })
    }

    /// Writes one step: the new state, the stage clock, the figures for
    /// evaluation, and the history row.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn apply_step(
        &self,
        actor: &Actor,
        task: TaskRecord,
        transition: &Transition,
        next: EventState,
        note: Option<String>,
        key: Option<String>,
        photos: Vec<crate::photos::CheckedPhoto>,
    ) -> ServiceResult<(TaskRecord, bool)> {
        let now = now_micros(self.now());
        let mut updated = task.clone();
        updated.state = next;
        updated.updated_at = now;
        updated.version = task.version + 1;
        if let Some(assignee) = transition.new_assignee() {
            match assignee {
                Assignee::Worker { account_id } => {
                    updated.assignee_account_id = Some(account_id);
                    updated.reserve_pool_community_id = None;
                }
                Assignee::ReservePool { community_id } => {
                    updated.assignee_account_id = None;
                    updated.reserve_pool_community_id = Some(community_id);
                }
            }
        }
        match transition.kind() {
            TransitionKind::File => updated.filed_at = updated.filed_at.or(Some(now)),
            TransitionKind::ReportHandled => {
                updated.handled_at = Some(now);
                updated.handled_by = actor.user_id.or(task.assignee_account_id);
                updated.handle_deadline = task.stage_deadline;
                if let (Some(stage), Some(start)) = (task.stage, task.stage_started_at) {
                    let limit = self.stage_limit(&task.category, stage, task.priority);
                    let spent = limit.measure(
                        self.to_local(start),
                        self.to_local(now),
                        &self.task_settings().calendar,
                    );
                    updated.handling_seconds = Some(spent.num_seconds());
                }
            }
            TransitionKind::Close => updated.closed_at = Some(now),
            TransitionKind::Reopen => updated.reopened += 1,
            _ => {}
        }
        if task.state.starts_stage_clock(next) {
            updated.stage = next.stage();
            updated.stage_started_at = Some(now);
            updated.stage_deadline =
                next.stage().map(|s| self.stage_deadline(&task.category, s, task.priority, now));
            updated.escalation_level = 0;
        } else if next.stage().is_none() {
            updated.stage = None;
            updated.stage_deadline = None;
            updated.escalation_level = 0;
        }
        let reason = match transition {
            Transition::Reject { reason }
            | Transition::Reopen { reason }
            | Transition::Reassign { reason, .. } => Some(reason.as_str().to_owned()),
            Transition::Evaluate { score } => Some(format!("score {}", score.get())),
            _ => None,
        };
        let note = match (reason, note) {
            (Some(r), Some(n)) => Some(format!("{r}\n{n}")),
            (r, n) => r.or(n),
        };
        let step = TaskHistoryRecord {
            id: Uuid::now_v7(),
            task_id: task.id,
            community_id: task.path.community.unwrap_or_default(),
            transition: transition.kind().as_str().to_owned(),
            from_state: Some(task.state),
            to_state: next,
            actor_account_id: actor.user_id,
            actor_name: actor.username.clone(),
            at: now,
            note,
            idempotency_key: key,
        };
        let photos = crate::photos::photo_records(&step, photos);
        match self
            .store()
            .apply_task_step_with_photos(&updated, task.version, &step, &photos)
            .await?
        {
            TaskWrite::Applied => Ok((updated, false)),
            TaskWrite::Replayed(_) => {
                let current =
                    self.store().get_task(task.id).await?.ok_or(ServiceError::NotFound)?;
                Ok((current, true))
            }
            TaskWrite::Stale => Err(ServiceError::Conflict {
                field: "version".into(),
                code: "task.changed_concurrently",
            }),
        }
    }

    /// Dispatches a filed (or reopened) task automatically: to the active
    /// grid worker of the task's grid with the least open weighted load, or
    /// to the community's reserve pool when every one is overloaded.
    pub async fn dispatch(&self, task: TaskRecord) -> ServiceResult<TaskRecord> {
        let decision = self.choose_for(&task).await?;
        let assignee = match decision {
            DispatchDecision::ToWorker(account_id) => Assignee::Worker { account_id },
            DispatchDecision::ToReservePool => {
                Assignee::ReservePool { community_id: task.path.community.unwrap_or_default() }
            }
        };
        let transition = Transition::Dispatch { assignee };
        let next = task
            .state
            .apply(&transition)
            .map_err(|e| ServiceError::invalid("transition", e.code()))?;
        let system = Actor::system();
        let (task, _) =
            self.apply_step(&system, task, &transition, next, None, None, Vec::new()).await?;
        self.audit(
            &system,
            "task.dispatch",
            Some(Target { kind: "task", id: task.id, path: Some(&task.path) }),
            "ok",
            json!({ "assignee": assignee, "automatic": true }),
        )
        .await?;
        Ok(task)
    }

    async fn choose_for(&self, task: &TaskRecord) -> ServiceResult<DispatchDecision> {
        let Some(grid) = task.path.grid else {
            return Ok(DispatchDecision::ToReservePool);
        };
        let policy = self.task_settings().dispatch;
        let mut workers = Vec::new();
        let mut after = None;
        loop {
            let query = UserQuery {
                within: Some(Scope { kind: AreaKind::Grid, area_id: grid }),
                after: after.clone(),
                limit: PAGE,
            };
            let page = self.store().list_users(&query).await?;
            let short = page.len() < page_size(PAGE) as usize;
            after = page.last().map(|u| u.username.clone());
            workers.extend(
                page.into_iter()
                    .filter(|u| u.role == Role::GridWorker && !u.disabled)
                    .map(|u| u.id),
            );
            if short {
                break;
            }
        }
        let mut open: BTreeMap<Uuid, Vec<Priority>> =
            workers.iter().map(|&id| (id, Vec::new())).collect();
        for row in self.store().grid_workload(grid).await? {
            if let Some(list) = open.get_mut(&row.account_id) {
                list.extend(std::iter::repeat_n(row.priority, row.count as usize));
            }
        }
        let candidates: Vec<Candidate> = open
            .into_iter()
            .map(|(id, priorities)| Candidate::from_open_tasks(id, priorities, &policy.weights))
            .collect();
        Ok(choose_assignee(&candidates, policy.overload_threshold))
    }

    /// Escalates every task past its stage deadline to the levels now due
    /// (grid leader, then community admin), recording and auditing each
    /// level once. The stored level makes repeated passes, and passes after
    /// a restart, escalate nothing twice.
    pub async fn escalation_pass(&self, now: DateTime<Utc>) -> ServiceResult<EscalationCounts> {
        let now = now_micros(now);
        let system = Actor::system();
        let top = EscalationLevel::CommunityAdmin.as_u8();
        let mut counts = EscalationCounts::default();
        let mut after = None;
        loop {
            let page = self.store().tasks_due_for_escalation(now, top, after, PAGE).await?;
            let short = page.len() < page_size(PAGE) as usize;
            after = page.last().map(|t| t.id);
            // A page's escalations are written together, each step with its
            // audit entries, in one transaction: one commit per page rather
            // than two per task, which is what keeps a pass over a busy
            // sub-district within a second.
            let mut batch = Vec::new();
            let mut levels = Vec::new();
            for task in page {
                counts.examined += 1;
                let (Some(stage), Some(deadline), Some(started)) =
                    (task.stage, task.stage_deadline, task.stage_started_at)
                else {
                    continue;
                };
                let limit = self.stage_limit(&task.category, stage, task.priority);
                let deadlines = self.task_settings().escalation.deadlines(
                    self.to_local(deadline),
                    limit,
                    &self.task_settings().calendar,
                );
                let current = EscalationLevel::from_u8(task.escalation_level)
                    .unwrap_or(EscalationLevel::None);
                let due = deadlines.due(self.to_local(now), current);
                let Some(&reached) = due.last() else { continue };
                let mut updated = task.clone();
                updated.escalation_level = reached.as_u8();
                updated.updated_at = now;
                updated.version = task.version + 1;
                let step = TaskHistoryRecord {
                    id: Uuid::now_v7(),
                    task_id: task.id,
                    community_id: task.path.community.unwrap_or_default(),
                    transition: "escalate".into(),
                    from_state: Some(task.state),
                    to_state: task.state,
                    actor_account_id: None,
                    actor_name: system.username.clone(),
                    at: now,
                    note: Some(format!("level {}", reached.as_u8())),
                    idempotency_key: Some(format!(
                        "escalate:{}:{}:{}",
                        task.id,
                        started.timestamp_micros(),
                        reached.as_u8()
                    )),
                };
                let audit = due
                    .iter()
                    .map(|level| {
                        self.audit_record(
                            &system,
                            "task.escalate",
                            Some(Target { kind: "task", id: task.id, path: Some(&task.path) }),
                            "ok",
                            json!({
                                "level": level.as_u8(),
                                "notifies": level.notifies().map(Role::as_str),
                                "stage": stage.as_str(),
                                "stage_deadline": deadline,
                            }),
                        )
                    })
                    .collect();
                batch.push(AuditedTaskStep {
                    task: updated,
                    expected_version: task.version,
                    step,
                    audit,
                });
                levels.push(due);
            }
            let writes = self.store().apply_task_steps_audited(&batch).await?;
            for (write, due) in writes.iter().zip(levels) {
                // Replayed or Stale: another pass got there first, or the
                // task moved on; neither is counted.
                if *write != TaskWrite::Applied {
                    continue;
                }
                for level in due {
                    match level {
                        EscalationLevel::GridLeader => counts.to_grid_leader += 1,
                        EscalationLevel::CommunityAdmin => counts.to_community_admin += 1,
                        EscalationLevel::None => {}
                    }
                }
            }
            if short {
                return Ok(counts);
            }
        }
    }

    /// The actor's open tasks, most urgent first (priority, then deadline).
    pub async fn my_tasks(&self, actor: &Actor) -> ServiceResult<Vec<TaskView>> {
        let Some(me) = actor.user_id else { return Ok(Vec::new()) };
        let states: Vec<EventState> = EventState::ALL.into_iter().filter(|s| s.is_open()).collect();
        let mut tasks = Vec::new();
        let mut after = None;
        loop {
            let query = TaskQuery {
                states: states.clone(),
                assignee: Some(me),
                after,
                limit: PAGE,
                ..TaskQuery::default()
            };
            let page = self.store().list_tasks(&query).await?;
            let short = page.len() < page_size(PAGE) as usize;
            after = page.last().map(|t| t.id);
            tasks.extend(page);
            if short {
                break;
            }
        }
        tasks.sort_by_key(|t| (t.priority, t.stage_deadline.is_none(), t.stage_deadline, t.id));
        let now = self.now();
        Ok(tasks.iter().map(|t| task_view(t, now)).collect())
    }

    /// The task board of the actor's scope, a page at a time.
    pub async fn task_board(
        &self,
        actor: &Actor,
        filter: BoardFilter,
    ) -> ServiceResult<Vec<TaskView>> {
        if actor.role == Role::Volunteer {
            return Err(ServiceError::Forbidden);
        }
        let now = now_micros(self.now());
        // "Overdue" means a running stage clock past its deadline.
        let states = if filter.overdue && filter.states.is_empty() {
            EventState::ALL.into_iter().filter(|s| s.stage().is_some()).collect()
        } else {
            filter.states
        };
        let query = TaskQuery {
            within: actor.scope,
            states,
            category: filter.category,
            grid: filter.grid,
            assignee: None,
            overdue_at: filter.overdue.then_some(now),
            after: filter.after,
            limit: if filter.limit == 0 { 100 } else { filter.limit },
        };
        let tasks = self.store().list_tasks(&query).await?;
        Ok(tasks.iter().map(|t| task_view(t, now)).collect())
    }

    /// Evaluation figures over `[from, to)` per worker, grid or community,
    /// for the tasks of the actor's scope.
    pub async fn evaluation(
        &self,
        actor: &Actor,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        group_by: GroupBy,
    ) -> ServiceResult<Vec<EvaluationRow>> {
        if !matches!(actor.role, Role::SubDistrictAdmin | Role::CommunityAdmin | Role::GridLeader) {
            return Err(ServiceError::Forbidden);
        }
        Period::new(self.to_local(from), self.to_local(to))
            .map_err(|e| ServiceError::invalid("to", e.code()))?;
        // Counted by the database in one grouped query (the definitions of
        // `Metrics::over`, checked against it by the store contract suite):
        // a sub-district's tens of thousands of tasks never leave it.
        let key = match group_by {
            GroupBy::Worker => EvaluationKey::Worker,
            GroupBy::Grid => EvaluationKey::Grid,
            GroupBy::Community => EvaluationKey::Community,
        };
        let now = now_micros(self.now());
        let counts = self.store().task_evaluation(actor.scope, key, from, to, now).await?;
        let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(counts
            .into_iter()
            .map(|c| {
                let metrics = Metrics {
                    handled: count(c.handled),
                    handled_on_time: count(c.handled_on_time),
                    filed: count(c.filed),
                    filed_and_closed: count(c.filed_and_closed),
                    closed: count(c.closed),
                    closed_after_rework: count(c.closed_after_rework),
                    overdue: count(c.overdue),
                    timed: count(c.timed),
                    total_handling_time: chrono::TimeDelta::seconds(c.total_handling_seconds),
                };
                EvaluationRow {
                    group_id: c.group_id,
                    on_time_rate: metrics.on_time_rate(),
                    closing_rate: metrics.closing_rate(),
                    rework_rate: metrics.rework_rate(),
                    average_handling_seconds: metrics
                        .average_handling_time()
                        .map(|d| d.num_seconds()),
                    metrics,
                }
            })
            .collect())
    }
}
