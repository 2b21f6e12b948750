//! The office's side of the closed loop: the task board of the visitor's
//! scope (filters, keyset pages), one task with its subject, history and a
//! form for each step the visitor may take, and the form to report a new
//! event. The rules and scope checks are the service's; a step the rules
//! refuse comes back as the form with the reason in the visitor's language.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use epigrid_domain::ReasonCode;
use epigrid_domain::tasks::{
    Assignee, EvaluationScore, EventState, Party, Priority, Reason, Subject, Transition,
    TransitionKind,
};
use epigrid_domain::{AreaKind, Role};
use epigrid_service::ServiceError;
use epigrid_service::tasks::{
    BoardFilter, HealthDataRetention, ReportEvent, TaskDetail, TaskReport, TaskView,
    TransitionRequest,
};
use serde::Deserialize;
use uuid::Uuid;

use super::areas::parse_id;
use super::residents::{
    Choice, FormErrors, area_choice_label, form_body, form_status, with_status,
};
use super::{Chrome, PageActor, Tr, error_page, or_error_page, render};
use crate::AppState;
use crate::i18n::has_key;

/// Tasks per board page.
pub const BOARD_PAGE: u32 = 50;

// ---- shared labels ---------------------------------------------------------

pub fn state_label(tr: &Tr, state: EventState) -> String {
    tr.t(&format!("board.state.{}", state.as_str()))
}

pub fn priority_label(tr: &Tr, priority: Priority) -> String {
    tr.t(&format!("board.priority.{}", priority.as_str()))
}

/// A category's name: its translation, or its code for a category the
/// translations do not know (a locally configured one).
pub fn category_label(tr: &Tr, code: &str) -> String {
    let key = format!("task.category.{code}");
    if has_key(tr.0, &key) { tr.t(&key) } else { code.to_owned() }
}

fn step_label(tr: &Tr, step: &str) -> String {
    let key = format!("board.transition.{step}");
    if has_key(tr.0, &key) { tr.t(&key) } else { step.to_owned() }
}

fn level_label(tr: &Tr, level: u8) -> String {
    tr.t(&format!("board.level.{}", level.min(2)))
}

/// A time in the configured zone, as staff read it.
fn local_time(state: &AppState, at: DateTime<Utc>) -> String {
    at.with_timezone(&state.service.settings().time_zone_offset)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// Who took a step that no account took, in the reader's language: a
/// resident through self-service (audited as their household, never by
/// name) or the system's rules; anything else as recorded.
pub(crate) fn step_actor_label(tr: &Tr, actor_name: &str) -> String {
    if epigrid_service::selfservice::is_household_actor_name(actor_name) {
        tr.t("task.actor.resident")
    } else if actor_name == epigrid_service::Actor::SYSTEM_NAME {
        tr.t("task.actor.system")
    } else {
        actor_name.to_owned()
    }
}

/// How long a health task's notes and photos are kept, in the reader's
/// language: so that nobody mistakes a purged history for a missing one.
pub(crate) fn retention_text(tr: &Tr, retention: HealthDataRetention) -> String {
    match retention {
        HealthDataRetention::WhileOpen { days } => {
            tr.fill("task.retention.while_open", &[("days", days.to_string())])
        }
        HealthDataRetention::Until { until } => {
            tr.fill("task.retention.until", &[("date", until.to_string())])
        }
        HealthDataRetention::Expired { days } => {
            tr.fill("task.retention.expired", &[("days", days.to_string())])
        }
    }
}

/// What the report a task was made from said, in the reader's language:
/// its reference and time, then label and value rows (`_reported.html`).
#[derive(Debug)]
pub(crate) struct ReportRows {
    pub reference: String,
    pub at: String,
    pub rows: Vec<(String, String)>,
}

impl ReportRows {
    pub(crate) fn new(tr: &Tr, report: &TaskReport, at: String) -> Self {
        let separator = tr.t("task.reported.separator");
        let rows = report
            .lines
            .iter()
            .map(|line| {
                let value = match &line.text {
                    Some(text) => text.clone(),
                    None => line.codes.iter().map(|k| tr.t(k)).collect::<Vec<_>>().join(&separator),
                };
                (tr.t(&line.label), value)
            })
            .collect();
        Self { reference: report.reference.clone(), at, rows }
    }
}

fn assignee_label(tr: &Tr, assignee: Option<&Assignee>, names: &HashMap<Uuid, String>) -> String {
    match assignee {
        None => tr.t("board.unassigned"),
        Some(Assignee::ReservePool { .. }) => tr.t("board.reserve_pool"),
        Some(Assignee::Worker { account_id }) => {
            names.get(account_id).cloned().unwrap_or_else(|| tr.t("board.other_account"))
        }
    }
}

// ---- the board -------------------------------------------------------------

/// The board's filters as they travel in the URL.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BoardQuery {
    /// Empty, `open`, or one state.
    state: String,
    category: String,
    grid: String,
    overdue: String,
    cursor: String,
}

impl BoardQuery {
    fn overdue(&self) -> bool {
        matches!(self.overdue.as_str(), "1" | "on" | "true")
    }

    fn href(&self, cursor: Option<Uuid>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (key, value) in
            [("state", &self.state), ("category", &self.category), ("grid", &self.grid)]
        {
            if !value.trim().is_empty() {
                query.append_pair(key, value.trim());
            }
        }
        if self.overdue() {
            query.append_pair("overdue", "1");
        }
        if let Some(cursor) = cursor {
            query.append_pair("cursor", &cursor.to_string());
        }
        let query = query.finish();
        if query.is_empty() { "/tasks".to_owned() } else { format!("/tasks?{query}") }
    }
}

#[derive(Debug, Clone)]
struct BoardRow {
    href: String,
    category: String,
    priority: String,
    priority_code: &'static str,
    state: String,
    grid: String,
    assignee: String,
    deadline: Option<String>,
    deadline_iso: String,
    overdue: bool,
    level: u8,
    escalation: String,
}

#[derive(Template)]
#[template(path = "tasks.html")]
struct BoardPage {
    chrome: Chrome,
    overdue: bool,
    errors: FormErrors,
    states: Vec<Choice>,
    categories: Vec<Choice>,
    grids: Vec<Choice>,
    rows: Vec<BoardRow>,
    next_href: Option<String>,
    first_href: Option<String>,
    can_report: bool,
}

fn selected_choices(items: Vec<(String, String)>, current: &str) -> Vec<Choice> {
    items
        .into_iter()
        .map(|(value, label)| Choice { selected: value == current.trim(), value, label })
        .collect()
}

pub async fn board(
    State(state): State<AppState>,
    page: PageActor,
    query: Result<Query<BoardQuery>, QueryRejection>,
) -> Result<Response, Response> {
    let lang = page.lang;
    let service = &state.service;
    let actor = &page.actor;
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let chrome = page.chrome("tasks");
    let tr = chrome.tr;
    let mut errors = FormErrors::default();
    let states = match query.state.trim() {
        "" => Vec::new(),
        "open" => EventState::ALL.into_iter().filter(|s| s.is_open()).collect(),
        name => match EventState::parse(name) {
            Some(s) => vec![s],
            None => {
                errors = FormErrors::field(lang, "state", "task.unknown_state");
                Vec::new()
            }
        },
    };
    let grid = match query.grid.trim() {
        "" => None,
        text => match Uuid::try_parse(text) {
            Ok(id) => Some(id),
            Err(_) => {
                errors = FormErrors::field(lang, "grid", "not_found");
                None
            }
        },
    };
    let after = Uuid::try_parse(query.cursor.trim()).ok();
    let mut rows = Vec::new();
    let mut next_href = None;
    if errors.is_empty() {
        let filter = BoardFilter {
            states,
            category: Some(query.category.trim().to_owned()).filter(|c| !c.is_empty()),
            grid,
            overdue: query.overdue(),
            after,
            limit: BOARD_PAGE,
        };
        let tasks = or_error_page(lang, service.task_board(actor, filter).await)?;
        if tasks.len() == BOARD_PAGE as usize {
            next_href = tasks.last().map(|t| query.href(Some(t.id)));
        }
        rows = board_rows(&state, &page, &tasks, &tr).await?;
    }
    let grids = or_error_page(lang, service.area_choices(actor).await)?
        .into_iter()
        .filter(|c| c.kind == AreaKind::Grid)
        .map(|c| {
            (c.id.to_string(), area_choice_label(&tr, c.kind, &c.name, c.parent_name.as_deref()))
        })
        .collect();
    let mut state_items = vec![("open".to_owned(), tr.t("board.open_states"))];
    state_items.extend(EventState::ALL.map(|s| (s.as_str().to_owned(), state_label(&tr, s))));
    let category_items = service
        .settings()
        .tasks
        .catalogue
        .categories()
        .iter()
        .map(|c| (c.code.clone(), category_label(&tr, &c.code)))
        .collect();
    let status = form_status(&errors);
    let first_href = after.map(|_| query.href(None));
    Ok(with_status(
        status,
        render(&BoardPage {
            states: selected_choices(state_items, &query.state),
            categories: selected_choices(category_items, &query.category),
            grids: selected_choices(grids, &query.grid),
            overdue: query.overdue(),
            rows,
            next_href,
            first_href,
            can_report: actor.role != Role::Volunteer,
            errors,
            chrome,
        }),
    ))
}

async fn board_rows(
    state: &AppState,
    page: &PageActor,
    tasks: &[TaskView],
    tr: &Tr,
) -> Result<Vec<BoardRow>, Response> {
    let lang = page.lang;
    let service = &state.service;
    let grid_ids: Vec<Uuid> = tasks.iter().filter_map(|t| t.grid_id.or(t.community_id)).collect();
    let account_ids: Vec<Uuid> = tasks
        .iter()
        .filter_map(|t| match t.assignee {
            Some(Assignee::Worker { account_id }) => Some(account_id),
            _ => None,
        })
        .collect();
    let (areas, people) = tokio::join!(
        service.area_names(&page.actor, &grid_ids),
        service.account_names(&page.actor, &account_ids),
    );
    let areas = or_error_page(lang, areas)?;
    let people = or_error_page(lang, people)?;
    Ok(tasks
        .iter()
        .map(|t| BoardRow {
            href: format!("/tasks/{}", t.id),
            category: category_label(tr, &t.category),
            priority: priority_label(tr, t.priority),
            priority_code: t.priority.as_str(),
            state: state_label(tr, t.state),
            grid: t
                .grid_id
                .or(t.community_id)
                .and_then(|id| areas.get(&id))
                .map(|a| a.name.clone())
                .unwrap_or_default(),
            assignee: assignee_label(tr, t.assignee.as_ref(), &people),
            deadline: t.stage_deadline.map(|d| local_time(state, d)),
            deadline_iso: t.stage_deadline.map(|d| d.to_rfc3339()).unwrap_or_default(),
            overdue: t.overdue,
            level: t.escalation_level,
            escalation: level_label(tr, t.escalation_level),
        })
        .collect())
}

// ---- one task --------------------------------------------------------------

#[derive(Debug, Clone)]
struct TaskInfo {
    id: Uuid,
    title: String,
    state: String,
    priority: String,
    priority_code: &'static str,
    stage: Option<String>,
    deadline: Option<String>,
    deadline_iso: String,
    overdue: bool,
    level: u8,
    escalation: String,
    assignee: String,
    grid: Option<String>,
    grid_href: Option<String>,
    community: Option<String>,
    created: String,
}

#[derive(Debug, Clone)]
struct SubjectInfo {
    kind: String,
    label: String,
    href: String,
}

#[derive(Debug, Clone)]
struct HistoryRow {
    step: String,
    to_state: String,
    who: String,
    when: String,
    when_iso: String,
    note: Option<String>,
    /// Links to the photos taken with the step. Links, not images: each
    /// view of a photo is audited, so none is fetched unasked.
    photos: Vec<(String, String)>,
}

/// The form of one step the visitor may take.
#[derive(Debug, Clone)]
struct StepForm {
    kind: &'static str,
    label: String,
    needs_reason: bool,
    needs_assignee: bool,
    needs_score: bool,
    assignees: Vec<Choice>,
    /// A fresh idempotency key per rendered form: a double click or a
    /// resubmitted page applies the step once.
    key: String,
    errors: FormErrors,
    note: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "task.html")]
struct TaskPage {
    chrome: Chrome,
    task: TaskInfo,
    subject: SubjectInfo,
    history: Vec<HistoryRow>,
    forms: Vec<StepForm>,
    notice: Option<String>,
    reported: Option<ReportRows>,
    retention: Option<String>,
}

/// A submitted step form, as typed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StepInput {
    kind: String,
    note: String,
    reason: String,
    assignee: String,
    score: String,
    key: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DoneQuery {
    done: Option<String>,
    replayed: Option<String>,
    reported: Option<String>,
}

/// The steps the visitor may take on the task now: the ones that exist from
/// its state and that the permission table allows them. Dispatching by
/// hand is offered only while a task waits for it.
fn allowed_steps(actor: &epigrid_service::Actor, task: &TaskView) -> Vec<TransitionKind> {
    let Some(me) = actor.user_id else { return Vec::new() };
    let is_assignee = task.assignee == Some(Assignee::Worker { account_id: me });
    let party = Party::Staff { role: actor.role, is_assignee };
    task.possible_transitions.iter().copied().filter(|&kind| party.may_perform(kind)).collect()
}

async fn task_page(
    state: &AppState,
    page: &PageActor,
    id: Uuid,
    notice: Option<String>,
    failed: Option<(StepInput, FormErrors)>,
    status: StatusCode,
) -> Result<Response, Response> {
    let lang = page.lang;
    let service = &state.service;
    let actor = &page.actor;
    let TaskDetail { task, history, report, retention } =
        or_error_page(lang, service.task_detail(actor, id).await)?;
    let chrome = page.chrome("tasks");
    let tr = chrome.tr;
    let mut area_ids: Vec<Uuid> = [task.grid_id, task.community_id].into_iter().flatten().collect();
    if let Subject::Building(b) | Subject::Area(b) = task.subject {
        area_ids.push(b);
    }
    let mut account_ids: Vec<Uuid> = history.iter().filter_map(|h| h.actor_account_id).collect();
    if let Some(Assignee::Worker { account_id }) = task.assignee {
        account_ids.push(account_id);
    }
    let (areas, people, photos) = tokio::join!(
        service.area_names(actor, &area_ids),
        service.account_names(actor, &account_ids),
        service.task_photos(actor, task.id),
    );
    let areas = or_error_page(lang, areas)?;
    let people = or_error_page(lang, people)?;
    let photos = or_error_page(lang, photos)?;
    let area_name = |id: Option<Uuid>| id.and_then(|id| areas.get(&id)).map(|a| a.name.clone());
    let subject = match task.subject {
        Subject::Resident(r) => SubjectInfo {
            kind: tr.t("board.subject.resident"),
            label: tr.t("board.subject_open"),
            href: format!("/residents/{r}"),
        },
        Subject::Household(h) => SubjectInfo {
            kind: tr.t("board.subject.household"),
            label: tr.t("board.subject_open"),
            href: format!("/households/{h}"),
        },
        Subject::Building(a) | Subject::Area(a) => SubjectInfo {
            kind: tr.t(if matches!(task.subject, Subject::Building(_)) {
                "board.subject.building"
            } else {
                "board.subject.area"
            }),
            label: area_name(Some(a)).unwrap_or_else(|| tr.t("board.subject_open")),
            href: format!("/areas/{a}"),
        },
    };
    let info = TaskInfo {
        id: task.id,
        title: category_label(&tr, &task.category),
        state: state_label(&tr, task.state),
        priority: priority_label(&tr, task.priority),
        priority_code: task.priority.as_str(),
        stage: task.stage.map(|s| tr.t(&format!("board.stage.{}", s.as_str()))),
        deadline: task.stage_deadline.map(|d| local_time(state, d)),
        deadline_iso: task.stage_deadline.map(|d| d.to_rfc3339()).unwrap_or_default(),
        overdue: task.overdue,
        level: task.escalation_level,
        escalation: level_label(&tr, task.escalation_level),
        assignee: assignee_label(&tr, task.assignee.as_ref(), &people),
        grid: area_name(task.grid_id),
        grid_href: task.grid_id.map(|g| format!("/areas/{g}")),
        community: area_name(task.community_id),
        created: local_time(state, task.created_at),
    };
    let history_rows = history
        .iter()
        .map(|h| HistoryRow {
            step: step_label(&tr, &h.transition),
            to_state: state_label(&tr, h.to_state),
            who: h
                .actor_account_id
                .and_then(|id| people.get(&id).cloned())
                .unwrap_or_else(|| step_actor_label(&tr, &h.actor_name)),
            when: local_time(state, h.at),
            when_iso: h.at.to_rfc3339(),
            note: h.note.clone(),
            photos: photos
                .iter()
                .filter(|p| p.history_id == h.id)
                .enumerate()
                .map(|(i, p)| {
                    let label = tr.fill("board.photo", &[("n", (i + 1).to_string())]);
                    (format!("/tasks/{}/photos/{}", task.id, p.id), label)
                })
                .collect(),
        })
        .collect();
    let steps = allowed_steps(actor, &task);
    let needs_assignees =
        steps.iter().any(|k| matches!(k, TransitionKind::Reassign | TransitionKind::Dispatch));
    let choices = if needs_assignees {
        or_error_page(lang, service.reassign_choices(actor, task.id).await)?
    } else {
        Vec::new()
    };
    let mut forms: Vec<StepForm> = steps
        .iter()
        .map(|&kind| {
            let failed_here = failed.as_ref().filter(|(input, _)| input.kind == kind.as_str());
            let chosen = failed_here.map(|(input, _)| input.assignee.as_str()).unwrap_or("");
            let mut assignees = Vec::new();
            if matches!(kind, TransitionKind::Reassign | TransitionKind::Dispatch) {
                assignees = choices
                    .iter()
                    .filter(|c| {
                        task.assignee != Some(Assignee::Worker { account_id: c.account_id })
                    })
                    .map(|c| {
                        let value = format!("worker:{}", c.account_id);
                        let role = tr.t(&format!("role.{}", c.role.as_str()));
                        let place = if c.same_grid {
                            format!("{role} · {}", tr.t("board.worker_in_grid"))
                        } else {
                            role
                        };
                        Choice {
                            selected: chosen == value,
                            label: format!("{}（{place}）", c.display_name),
                            value,
                        }
                    })
                    .collect();
                if let Some(community) = task.community_id
                    && !matches!(task.assignee, Some(Assignee::ReservePool { .. }))
                {
                    let value = format!("pool:{community}");
                    assignees.push(Choice {
                        selected: chosen == value,
                        label: tr.t("board.reserve_pool"),
                        value,
                    });
                }
            }
            StepForm {
                kind: kind.as_str(),
                label: step_label(&tr, kind.as_str()),
                needs_reason: matches!(
                    kind,
                    TransitionKind::Reject | TransitionKind::Reopen | TransitionKind::Reassign
                ),
                needs_assignee: !assignees.is_empty()
                    || matches!(kind, TransitionKind::Reassign | TransitionKind::Dispatch),
                needs_score: kind == TransitionKind::Evaluate,
                assignees,
                key: Uuid::now_v7().to_string(),
                errors: failed_here.map(|(_, e)| e.clone()).unwrap_or_default(),
                note: failed_here.map(|(i, _)| i.note.clone()).unwrap_or_default(),
                reason: failed_here.map(|(i, _)| i.reason.clone()).unwrap_or_default(),
            }
        })
        .collect();
    // A refused step that is no longer on offer still says why, on top.
    let mut notice = notice;
    if let Some((input, errors)) = &failed
        && !forms.iter().any(|f| f.kind == input.kind)
    {
        notice = errors.general.clone().or_else(|| notice.take());
    }
    forms.sort_by_key(|f| f.needs_reason || f.needs_assignee || f.needs_score);
    let reported = report.map(|r| ReportRows::new(&tr, &r, local_time(state, r.at)));
    Ok(with_status(
        status,
        render(&TaskPage {
            task: info,
            subject,
            history: history_rows,
            forms,
            notice,
            reported,
            retention: retention.map(|r| retention_text(&tr, r)),
            chrome,
        }),
    ))
}

pub async fn show(
    State(state): State<AppState>,
    page: PageActor,
    Path(id): Path<String>,
    query: Result<Query<DoneQuery>, QueryRejection>,
) -> Result<Response, Response> {
    let lang = page.lang;
    let id = parse_id(&id, lang)?;
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let tr = Tr(lang);
    let notice = if query.replayed.is_some() {
        Some(tr.t("board.replayed"))
    } else if query.reported.is_some() {
        Some(tr.t("board.reported"))
    } else {
        query.done.map(|step| tr.fill("board.done", &[("step", step_label(&tr, &step))]))
    };
    task_page(&state, &page, id, notice, None, StatusCode::OK).await
}

/// The step a form asks for, or the error to show on it.
fn transition_of(input: &StepInput, lang: crate::i18n::Lang) -> Result<Transition, FormErrors> {
    let reason =
        || Reason::parse(&input.reason).map_err(|e| FormErrors::field(lang, "reason", e.code()));
    let assignee = || -> Result<Assignee, FormErrors> {
        let missing = || FormErrors::field(lang, "assignee", "board.assignee_required");
        let (kind, id) = input.assignee.split_once(':').ok_or_else(missing)?;
        let id = Uuid::try_parse(id).map_err(|_| missing())?;
        match kind {
            "worker" => Ok(Assignee::Worker { account_id: id }),
            "pool" => Ok(Assignee::ReservePool { community_id: id }),
            _ => Err(missing()),
        }
    };
    let kind = TransitionKind::parse(input.kind.trim())
        .ok_or_else(|| FormErrors::general(lang, "task.illegal_transition"))?;
    Ok(match kind {
        TransitionKind::Verify => Transition::Verify,
        TransitionKind::Reject => Transition::Reject { reason: reason()? },
        TransitionKind::File => Transition::File,
        TransitionKind::Dispatch => Transition::Dispatch { assignee: assignee()? },
        TransitionKind::Accept => Transition::Accept,
        TransitionKind::ReportHandled => Transition::ReportHandled,
        TransitionKind::Close => Transition::Close,
        TransitionKind::Reopen => Transition::Reopen { reason: reason()? },
        TransitionKind::Evaluate => {
            let score = input
                .score
                .trim()
                .parse::<u8>()
                .map_err(|_| FormErrors::field(lang, "score", "board.score_required"))?;
            let score = EvaluationScore::new(score)
                .map_err(|e| FormErrors::field(lang, "score", e.code()))?;
            Transition::Evaluate { score }
        }
        TransitionKind::Reassign => {
            // The reason is checked first: a reassignment always says why.
            let reason = reason()?;
            Transition::Reassign { to: assignee()?, reason }
        }
    })
}

pub async fn transition(
    State(state): State<AppState>,
    page: PageActor,
    Path(id): Path<String>,
    form: Result<Form<StepInput>, FormRejection>,
) -> Result<Response, Response> {
    let lang = page.lang;
    let id = parse_id(&id, lang)?;
    let input = match form_body(lang, form) {
        Ok(input) => input,
        Err(errors) => {
            let status = form_status(&errors);
            return task_page(
                &state,
                &page,
                id,
                None,
                Some((StepInput::default(), errors)),
                status,
            )
            .await;
        }
    };
    let transition = match transition_of(&input, lang) {
        Ok(t) => t,
        Err(errors) => {
            // Out of scope stays 404 before any form error is shown.
            or_error_page(lang, state.service.task_detail(&page.actor, id).await)?;
            let status = form_status(&errors);
            return task_page(&state, &page, id, None, Some((input, errors)), status).await;
        }
    };
    let request = TransitionRequest {
        transition,
        note: Some(input.note.clone()),
        idempotency_key: Some(input.key.clone()).filter(|k| !k.trim().is_empty()),
    };
    match state.service.transition_task(&page.actor, id, request).await {
        Ok(outcome) if outcome.replayed => {
            Ok(Redirect::to(&format!("/tasks/{id}?replayed=1")).into_response())
        }
        Ok(_) => {
            Ok(Redirect::to(&format!("/tasks/{id}?done={}", input.kind.trim())).into_response())
        }
        Err(ServiceError::Forbidden) => {
            let errors = FormErrors::general(lang, "task.transition_forbidden");
            task_page(&state, &page, id, None, Some((input, errors)), StatusCode::FORBIDDEN).await
        }
        Err(error) => {
            match FormErrors::from_service(lang, error, &["note", "reason", "assignee"]) {
                Ok(errors) => {
                    let status = form_status(&errors);
                    task_page(&state, &page, id, None, Some((input, errors)), status).await
                }
                Err(error) => Err(error_page(lang, error)),
            }
        }
    }
}

// ---- reporting a new event -------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ReportInput {
    category: String,
    priority: String,
    subject_kind: String,
    area: String,
    subject_id: String,
    note: String,
    key: String,
}

#[derive(Template)]
#[template(path = "task_new.html")]
struct ReportPage {
    chrome: Chrome,
    input: ReportInput,
    errors: FormErrors,
    categories: Vec<Choice>,
    priorities: Vec<Choice>,
    kinds: Vec<Choice>,
    areas: Vec<Choice>,
    key: String,
}

async fn report_page(
    state: &AppState,
    page: &PageActor,
    input: ReportInput,
    errors: FormErrors,
) -> Result<Response, Response> {
    let lang = page.lang;
    let service = &state.service;
    if page.actor.role == Role::Volunteer {
        return Err(error_page(lang, ServiceError::Forbidden));
    }
    let chrome = page.chrome("tasks");
    let tr = chrome.tr;
    let categories = service
        .settings()
        .tasks
        .catalogue
        .categories()
        .iter()
        .map(|c| (c.code.clone(), category_label(&tr, &c.code)))
        .collect();
    let priorities =
        Priority::ALL.iter().map(|p| (p.as_str().to_owned(), priority_label(&tr, *p))).collect();
    let kind = if input.subject_kind.is_empty() { "area" } else { input.subject_kind.as_str() };
    let kinds = ["area", "building", "household", "resident"]
        .iter()
        .map(|k| ((*k).to_owned(), tr.t(&format!("board.subject.{k}"))))
        .collect();
    let areas = or_error_page(lang, service.area_choices(&page.actor).await)?
        .into_iter()
        .filter(|c| c.kind != AreaKind::SubDistrict)
        .map(|c| {
            (c.id.to_string(), area_choice_label(&tr, c.kind, &c.name, c.parent_name.as_deref()))
        })
        .collect();
    let key =
        if input.key.trim().is_empty() { Uuid::now_v7().to_string() } else { input.key.clone() };
    let status = form_status(&errors);
    Ok(with_status(
        status,
        render(&ReportPage {
            categories: selected_choices(categories, &input.category),
            priorities: selected_choices(priorities, &input.priority),
            kinds: selected_choices(kinds, kind),
            areas: selected_choices(areas, &input.area),
            key,
            errors,
            input,
            chrome,
        }),
    ))
}

/// `/tasks/new`, optionally with the subject filled in
/// (`?subject_kind=household&subject_id=…` from a household's page).
pub async fn new_form(
    State(state): State<AppState>,
    page: PageActor,
    query: Result<Query<ReportInput>, QueryRejection>,
) -> Result<Response, Response> {
    let input = query.map(|Query(q)| q).unwrap_or_default();
    let input = ReportInput { key: String::new(), note: String::new(), ..input };
    report_page(&state, &page, input, FormErrors::default()).await
}

fn subject_of(input: &ReportInput, lang: crate::i18n::Lang) -> Result<Subject, FormErrors> {
    let kind = input.subject_kind.trim();
    if kind.is_empty() || kind == "area" {
        let area = input.area.trim();
        if area.is_empty() {
            return Err(FormErrors::field(lang, "area", "board.subject_required"));
        }
        return Uuid::try_parse(area)
            .map(Subject::Area)
            .map_err(|_| FormErrors::field(lang, "area", "board.subject_invalid"));
    }
    let text = input.subject_id.trim();
    if text.is_empty() {
        return Err(FormErrors::field(lang, "subject_id", "board.subject_required"));
    }
    let id = Uuid::try_parse(text)
        .map_err(|_| FormErrors::field(lang, "subject_id", "board.subject_invalid"))?;
    match kind {
        "building" => Ok(Subject::Building(id)),
        "household" => Ok(Subject::Household(id)),
        "resident" => Ok(Subject::Resident(id)),
        _ => Err(FormErrors::field(lang, "subject_kind", "board.subject_required")),
    }
}

pub async fn report(
    State(state): State<AppState>,
    page: PageActor,
    form: Result<Form<ReportInput>, FormRejection>,
) -> Result<Response, Response> {
    let lang = page.lang;
    let input = match form_body(lang, form) {
        Ok(input) => input,
        Err(errors) => return report_page(&state, &page, ReportInput::default(), errors).await,
    };
    let subject = match subject_of(&input, lang) {
        Ok(subject) => subject,
        Err(errors) => return report_page(&state, &page, input, errors).await,
    };
    let priority = match input.priority.trim() {
        "" => None,
        text => match Priority::parse(text) {
            Some(p) => Some(p),
            None => {
                let errors = FormErrors::field(lang, "priority", "field.required");
                return report_page(&state, &page, input, errors).await;
            }
        },
    };
    let event = ReportEvent {
        category: input.category.clone(),
        priority,
        subject,
        note: Some(input.note.clone()),
        idempotency_key: Some(input.key.clone()).filter(|k| !k.trim().is_empty()),
    };
    match state.service.report_event(&page.actor, event).await {
        Ok(task) => Ok(Redirect::to(&format!("/tasks/{}?reported=1", task.id)).into_response()),
        Err(ServiceError::NotFound) => {
            let field = if matches!(subject, Subject::Area(_)) { "area" } else { "subject_id" };
            let errors = FormErrors::field(lang, field, "board.subject_not_found");
            report_page(&state, &page, input, errors).await
        }
        Err(error) => match FormErrors::from_service(lang, error, &["category", "note"]) {
            Ok(errors) => report_page(&state, &page, input, errors).await,
            Err(error) => Err(error_page(lang, error)),
        },
    }
}
