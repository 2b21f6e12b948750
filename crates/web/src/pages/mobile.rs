//! The grid worker's phone pages under `/m/`: "my tasks today" in the order
//! to do them, one task with its actions, and the call sheet. They are made
//! for a 360 px screen and for no signal: `/m/sw.js` (a service worker whose
//! scope is `/m/`) keeps them and their assets in the browser's cache, and
//! `/static/offline.js` turns the action forms into JSON API calls with an
//! idempotency key, queued in IndexedDB while the network is gone.
//!
//! Every form also works without the script: it posts here, and the page
//! answers with a redirect (photos need the script, which sends them as
//! base64 to the API).

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use epigrid_domain::tasks::{EventState, Transition, TransitionKind};
use epigrid_service::field_work::{FieldTask, VisitRequest};
use epigrid_service::tasks::TransitionRequest;
use serde::Deserialize;
use uuid::Uuid;

use super::{Chrome, PageActor, Tr, error_page, or_error_page, render};
use crate::AppState;
use crate::i18n::Lang;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/m", get(|| async { Redirect::permanent("/m/") }))
        .route("/m/", get(tasks_page))
        .route("/m/offline", get(offline_page))
        .route("/m/sw.js", get(service_worker))
        .route("/static/offline.js", get(offline_script))
        .route("/static/mobile.css", get(stylesheet))
        .route("/m/tasks/{id}", get(task_page))
        .route("/m/tasks/{id}/accept", post(accept))
        .route("/m/tasks/{id}/handle", post(handle))
        .route("/m/tasks/{id}/call", post(call))
        .route("/m/visits", post(visit))
        .route("/tasks/{id}/photos/{photo}", get(photo))
}

/// One task as the phone shows it.
#[derive(Debug, Clone)]
pub struct TaskCard {
    pub id: Uuid,
    pub category: String,
    pub priority: &'static str,
    pub priority_label: String,
    pub state_label: String,
    pub overdue: bool,
    pub deadline: String,
    pub address: String,
    pub household_id: Option<Uuid>,
    pub contact_name: String,
    pub contact_phone: String,
    pub has_contact: bool,
    pub can_accept: bool,
    pub can_handle: bool,
    /// The key of "accept" for this dispatch of the task: the same from the
    /// list and from the task page, so accepting twice (once alone, once
    /// before handling) is one step.
    pub accept_key: String,
    /// The key of "report handled" for the form without the script: a
    /// second press of the button is the same step.
    pub handle_key: String,
    pub handled: bool,
    /// What was reported, in one line ("38.5 °C · 咳嗽、乏力 · 在家"), for
    /// the list; the task's page shows it in full.
    pub reported: String,
}

fn card(task: &FieldTask, tr: &Tr, offset: chrono::FixedOffset) -> TaskCard {
    let t = &task.task;
    let state = t.state;
    let category_key = format!("task.category.{}", t.category);
    let category = if crate::i18n::has_key(tr.0, &category_key) {
        tr.t(&category_key)
    } else {
        t.category.clone()
    };
    let deadline = t
        .stage_deadline
        .map(|d| d.with_timezone(&offset).format("%m-%d %H:%M").to_string())
        .unwrap_or_default();
    let (contact_name, contact_phone, has_contact) = match &task.contact {
        Some(c) => {
            (c.name.clone(), c.phone_masked.clone().unwrap_or_default(), c.phone_masked.is_some())
        }
        None => (String::new(), String::new(), false),
    };
    TaskCard {
        id: t.id,
        category,
        priority: t.priority.as_str(),
        priority_label: tr.t(&format!("m.priority.{}", t.priority.as_str())),
        state_label: tr.t(&format!("m.state.{}", state.as_str())),
        overdue: t.overdue,
        deadline,
        address: task.address.clone(),
        household_id: task.household_id,
        contact_name,
        contact_phone,
        has_contact,
        can_accept: state == EventState::Dispatched,
        can_handle: matches!(state, EventState::Dispatched | EventState::InProgress),
        accept_key: format!("accept-v{}", t.version),
        handle_key: format!("handled-v{}", t.version),
        handled: state == EventState::HandledReported,
        reported: task
            .report
            .as_ref()
            .map(|r| {
                let rows = super::tasks::ReportRows::new(tr, r, String::new()).rows;
                rows.into_iter().map(|(_, value)| value).collect::<Vec<_>>().join(" · ")
            })
            .unwrap_or_default(),
    }
}

/// What the phone layout needs beyond the chrome: whose actions the queue
/// replays (a phone shared by two workers keeps each one's actions apart).
#[derive(Debug, Clone)]
pub struct PhoneChrome {
    pub chrome: Chrome,
    pub username: String,
}

impl PhoneChrome {
    fn new(page: &PageActor) -> Self {
        Self { chrome: page.chrome("mobile"), username: page.actor.username.clone() }
    }
}

#[derive(Template)]
#[template(path = "m_tasks.html")]
struct TasksPage {
    chrome: Chrome,
    phone: PhoneChrome,
    open: Vec<TaskCard>,
    handled: Vec<TaskCard>,
    summary: String,
    /// Today's reporting of each grid in the worker's scope, each a way to
    /// its "not reported yet" list: the day's other round.
    reporting: Vec<GridLine>,
}

/// One grid's reporting today on the phone's home.
#[derive(Debug)]
struct GridLine {
    id: Uuid,
    name: String,
    line: String,
}

/// Grids shown on the phone's home at most: a worker's grid or a leader's
/// few; a whole community is for the dashboard.
const MAX_GRID_LINES: usize = 5;

/// Today's reporting of the actor's grids, for the phone's home; none for
/// a scope of more than `MAX_GRID_LINES` grids or a role that may not see it.
async fn grid_lines(state: &AppState, page: &PageActor) -> Result<Vec<GridLine>, Response> {
    let service = &state.service;
    let grids = match service.reporting_by_grid(&page.actor).await {
        Ok(grids) if grids.len() <= MAX_GRID_LINES => grids,
        Ok(_) | Err(epigrid_service::ServiceError::Forbidden) => return Ok(Vec::new()),
        Err(error) => return Err(error_page(page.lang, error)),
    };
    let ids: Vec<Uuid> = grids.iter().map(|g| g.grid_id).collect();
    let names = or_error_page(page.lang, service.area_names(&page.actor, &ids).await)?;
    let tr = Tr(page.lang);
    Ok(grids
        .iter()
        .map(|g| GridLine {
            id: g.grid_id,
            name: names.get(&g.grid_id).map(|a| a.name.clone()).unwrap_or_default(),
            line: tr.fill(
                "m.reporting_line",
                &[
                    ("share", super::charts::percent(g.share)),
                    ("reported", g.reported.to_string()),
                    ("residents", g.residents.to_string()),
                ],
            ),
        })
        .collect())
}

pub async fn tasks_page(
    State(state): State<AppState>,
    page: PageActor,
) -> Result<Response, Response> {
    let lang = page.lang;
    let tasks = or_error_page(lang, state.service.field_tasks(&page.actor).await)?;
    let phone = PhoneChrome::new(&page);
    let tr = phone.chrome.tr;
    let offset = state.service.settings().time_zone_offset;
    let cards: Vec<TaskCard> = tasks.iter().map(|t| card(t, &tr, offset)).collect();
    let (handled, open): (Vec<TaskCard>, Vec<TaskCard>) =
        cards.into_iter().partition(|c| c.handled);
    let overdue = open.iter().filter(|c| c.overdue).count();
    let summary = tr
        .fill("m.summary", &[("count", open.len().to_string()), ("overdue", overdue.to_string())]);
    let reporting = grid_lines(&state, &page).await?;
    Ok(private(render(&TasksPage {
        chrome: phone.chrome.clone(),
        phone,
        open,
        handled,
        summary,
        reporting,
    })))
}

/// A history step with its photos.
#[derive(Debug, Clone)]
pub struct StepRow {
    pub at: String,
    pub label: String,
    pub actor: String,
    pub note: String,
    pub photos: Vec<String>,
}

#[derive(Template)]
#[template(path = "m_task.html")]
struct TaskPage {
    chrome: Chrome,
    phone: PhoneChrome,
    task: TaskCard,
    steps: Vec<StepRow>,
    photo_hint: String,
    visit_key: Uuid,
    reported: Option<super::tasks::ReportRows>,
    retention: Option<String>,
}

pub async fn task_page(
    State(state): State<AppState>,
    page: PageActor,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let lang = page.lang;
    let id = parse_id(&id, lang)?;
    let service = &state.service;
    // Through the service, which checks the scope: the web layer never
    // reads the store itself.
    let detail = or_error_page(lang, service.field_task(&page.actor, id).await)?;
    let (task, history) = (detail.task, detail.history);
    let photos = or_error_page(lang, service.task_photos(&page.actor, id).await)?;
    let phone = PhoneChrome::new(&page);
    let tr = phone.chrome.tr;
    let offset = service.settings().time_zone_offset;
    let steps = history
        .iter()
        .map(|h| StepRow {
            at: h.at.with_timezone(&offset).format("%m-%d %H:%M").to_string(),
            label: step_label(&tr, &h.transition),
            actor: super::tasks::step_actor_label(&tr, &h.actor_name),
            note: h.note.clone().unwrap_or_default(),
            photos: photos
                .iter()
                .filter(|p| p.history_id == h.id)
                .map(|p| format!("/tasks/{id}/photos/{}", p.id))
                .collect(),
        })
        .collect();
    let limits = service.settings().photos;
    let photo_hint = tr.fill(
        "m.photo_hint",
        &[
            ("count", limits.max_per_step.to_string()),
            ("mb", (limits.max_bytes / (1024 * 1024)).max(1).to_string()),
        ],
    );
    let reported = task.report.as_ref().map(|r| {
        let at = r.at.with_timezone(&offset).format("%m-%d %H:%M").to_string();
        super::tasks::ReportRows::new(&tr, r, at)
    });
    Ok(private(render(&TaskPage {
        reported,
        retention: detail.retention.map(|r| super::tasks::retention_text(&tr, r)),
        task: card(&task, &tr, offset),
        chrome: phone.chrome.clone(),
        phone,
        steps,
        photo_hint,
        visit_key: Uuid::now_v7(),
    })))
}

fn step_label(tr: &Tr, transition: &str) -> String {
    let key = format!("m.step.{transition}");
    if crate::i18n::has_key(tr.0, &key) { tr.t(&key) } else { transition.to_owned() }
}

#[derive(Template)]
#[template(path = "m_offline.html")]
struct OfflinePage {
    chrome: Chrome,
    phone: PhoneChrome,
}

/// What the service worker shows for a phone page it never kept.
pub async fn offline_page(page: PageActor) -> Response {
    let phone = PhoneChrome::new(&page);
    private(render(&OfflinePage { chrome: phone.chrome.clone(), phone }))
}

/// Personal data: never kept by a shared cache. The service worker keeps
/// its own copy in this browser only.
fn private(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    response
}

fn parse_id(text: &str, lang: Lang) -> Result<Uuid, Response> {
    Uuid::try_parse(text).map_err(|_| error_page(lang, epigrid_service::ServiceError::NotFound))
}

// ---- the forms without the script ---------------------------------------------

#[derive(Debug, Deserialize)]
pub struct StepForm {
    #[serde(default)]
    note: String,
    /// The accept step's key (see `TaskCard::accept_key`).
    #[serde(default)]
    accept_key: String,
    #[serde(default)]
    handle_key: String,
}

async fn step(
    state: &AppState,
    page: &PageActor,
    id: Uuid,
    transition: Transition,
    note: String,
    key: Option<String>,
) -> Result<(), Response> {
    let request = TransitionRequest {
        transition,
        note: Some(note).filter(|n| !n.trim().is_empty()),
        idempotency_key: key.filter(|k| !k.is_empty()),
    };
    or_error_page(page.lang, state.service.transition_task(&page.actor, id, request).await)?;
    Ok(())
}

pub async fn accept(
    State(state): State<AppState>,
    page: PageActor,
    Path(id): Path<String>,
    Form(form): Form<StepForm>,
) -> Result<Response, Response> {
    let id = parse_id(&id, page.lang)?;
    step(&state, &page, id, Transition::Accept, String::new(), Some(form.accept_key)).await?;
    Ok(Redirect::to(&format!("/m/tasks/{id}")).into_response())
}

/// Marks a task handled; a task not yet accepted is accepted first.
pub async fn handle(
    State(state): State<AppState>,
    page: PageActor,
    Path(id): Path<String>,
    Form(form): Form<StepForm>,
) -> Result<Response, Response> {
    let id = parse_id(&id, page.lang)?;
    let task = or_error_page(page.lang, state.service.task_detail(&page.actor, id).await)?.task;
    if task.possible_transitions.contains(&TransitionKind::Accept) {
        step(&state, &page, id, Transition::Accept, String::new(), Some(form.accept_key)).await?;
    }
    step(&state, &page, id, Transition::ReportHandled, form.note, Some(form.handle_key)).await?;
    Ok(Redirect::to("/m/").into_response())
}

#[derive(Debug, Deserialize)]
pub struct VisitForm {
    household_id: String,
    #[serde(default)]
    note: String,
    /// Rendered with the form, so a second press is the same visit.
    #[serde(default)]
    idempotency_key: String,
}

pub async fn visit(
    State(state): State<AppState>,
    page: PageActor,
    Form(form): Form<VisitForm>,
) -> Result<Response, Response> {
    let household_id = parse_id(&form.household_id, page.lang)?;
    let visit = VisitRequest {
        household_id,
        note: Some(form.note).filter(|n| !n.trim().is_empty()),
        idempotency_key: Some(form.idempotency_key).filter(|k| !k.is_empty()),
    };
    let outcome =
        or_error_page(page.lang, state.service.record_visit(&page.actor, visit, Vec::new()).await)?;
    Ok(Redirect::to(&format!("/m/tasks/{}", outcome.task.id)).into_response())
}

#[derive(Template)]
#[template(path = "m_call.html")]
struct CallPage {
    chrome: Chrome,
    phone: PhoneChrome,
    task_id: Uuid,
    name: String,
    number: Option<String>,
    tel: String,
}

/// The call sheet: the contact's number as a `tel:` link, after an audited
/// unmask. Never cached, and sent with no referrer.
pub async fn call(
    State(state): State<AppState>,
    page: PageActor,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let id = parse_id(&id, page.lang)?;
    let contact = or_error_page(page.lang, state.service.task_contact(&page.actor, id).await)?;
    let phone = PhoneChrome::new(&page);
    let tel = contact
        .phone
        .as_deref()
        .map(|p| p.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect())
        .unwrap_or_default();
    let mut response = render(&CallPage {
        chrome: phone.chrome.clone(),
        phone,
        task_id: id,
        name: contact.name,
        number: contact.phone,
        tel,
    });
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(response)
}

/// A task's photo, for those who may see the task. `private`: a shared
/// cache must never keep it.
pub async fn photo(
    State(state): State<AppState>,
    page: PageActor,
    Path((task, photo)): Path<(String, String)>,
) -> Result<Response, Response> {
    let (task, photo) = (parse_id(&task, page.lang)?, parse_id(&photo, page.lang)?);
    let record =
        or_error_page(page.lang, state.service.task_photo(&page.actor, task, photo).await)?;
    let content_type = HeaderValue::from_str(&record.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let mut response = (StatusCode::OK, record.data).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400"));
    Ok(response)
}

// ---- assets ---------------------------------------------------------------------

/// The service worker with its cache version filled in: a digest of the
/// assets it keeps, so a binary with changed assets brings a new worker,
/// which replaces the old cache.
fn service_worker_text() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for asset in [
            include_str!("../../static/sw.js"),
            include_str!("../../static/offline.js"),
            include_str!("../../static/mobile.css"),
            include_str!("../../static/app.css"),
        ] {
            // FNV-1a: a change detector, not a security measure.
            for byte in asset.bytes() {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        include_str!("../../static/sw.js").replace("__VERSION__", &format!("{hash:016x}"))
    })
}

fn script_response(body: &'static str, cache: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// The service worker. `no-cache` so that a new binary's worker is picked up
/// at the next visit; its scope is its own directory, `/m/`.
pub async fn service_worker() -> Response {
    let mut response = script_response(service_worker_text(), "no-cache");
    response.headers_mut().insert("service-worker-allowed", HeaderValue::from_static("/m/"));
    response
}

pub async fn offline_script() -> Response {
    // The service worker serves it from its own cache, refreshed when the
    // worker is replaced; an hour here, as for the other assets.
    script_response(include_str!("../../static/offline.js"), "public, max-age=3600")
}

pub async fn stylesheet() -> Response {
    let mut response = include_str!("../../static/mobile.css").into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}
