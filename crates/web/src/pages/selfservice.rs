//! Resident self-service pages under `/s/{building_token}` (issue #6): no
//! login and no app. A resident scans the building's QR code, picks their
//! household from labels ("3单元 502", never names), identifies with a
//! member's name and the last four characters of their ID number, and then
//! reports for the household: the daily health report, an arrival, a request
//! for help, an offer to volunteer. Every submission is confirmed with its
//! reference.
//!
//! How the pass travels: after a successful identification the signed
//! resident pass (see `epigrid_service::selfservice`) is set as a cookie,
//! `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page
//! sends it), `Path=/s/` (staff pages never see it) and `Max-Age` of the
//! pass's own lifetime. Keeping it in the page instead would make every
//! link a form post and break the back button on cheap phones. Because the
//! forms are authenticated by that cookie, each carries a second token,
//! `_s`: an HMAC of the pass under the server's key, checked on every post
//! (the same idea as the staff `_csrf`; another site can neither read nor
//! compute it). A staff session cookie on the same phone is honoured too:
//! the page then also carries that session's `_csrf`, which the global
//! middleware wants.
//!
//! Double taps and retries: each rendering of a form carries a fresh
//! idempotency key in a hidden field. Without JavaScript a resubmission of
//! the same page posts the same key; `/static/selfservice.js` posts the form
//! with `fetch`, retries network failures and 503s with exponential backoff
//! (honouring `Retry-After`) with the same body and so the same key. The
//! service answers a repeated key with the original reference.
//!
//! Nothing personal enters a URL: names and ID digits go in POST bodies,
//! and the request log records method and path only.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::{DateTime, Datelike, Utc};
use epigrid_domain::intake::{
    Availability, HelpKind, REGIONS, Skill, Symptom, TravelMeans, Urgency, Whereabouts,
};
use epigrid_service::ServiceError;
use epigrid_service::intake::{FollowUp, HealthEntryForm, Receipt, SubmissionForm};
use epigrid_service::selfservice::{
    BuildingView, IdentifyRequest, MemberView, ResidentPass, household_label,
};
use serde_json::json;
use tower::ServiceBuilder;
use uuid::Uuid;

use super::{Chrome, render};
use crate::AppState;
use crate::extract::{cookie, session_token};
use crate::i18n::{Lang, t};
use crate::public_api::ClientLimiter;

/// The cookie holding the resident pass.
pub const PASS_COOKIE: &str = "epigrid_pass";
/// The form field holding the pass-bound anti-forgery token.
const PASS_CSRF_FIELD: &str = "_s";
/// Members a health form shows at most (a pass carries at most 32).
const MAX_MEMBERS: usize = 32;

pub fn routes(state: &AppState) -> Router<AppState> {
    // The same shedding as the public JSON routes: beyond the configured
    // concurrency a page answers 503 with Retry-After at once rather than
    // queueing, so a burst of scans cannot starve the intake writer.
    let limits = state.service.settings().intake.public.clone();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(limits.concurrency.max(1)));
    // Per client address, as on the public JSON routes (a bucket of its own).
    let limiter = Arc::new(ClientLimiter::new(limits.rate_per_client, limits.burst_per_client));
    Router::new()
        .route("/s/{token}", get(building_page))
        .route("/s/{token}/identify", axum::routing::post(identify))
        .route("/s/{token}/menu", get(menu))
        .route("/s/{token}/leave", axum::routing::post(leave))
        .route("/s/{token}/{kind}", get(form_page).post(submit))
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn_with_state(limiter, rate_limit))
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async { busy_page() }))
                .load_shed()
                .layer(tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(semaphore))
                .timeout(limits.timeout),
        )
        .route("/static/selfservice.js", get(script))
        .route("/static/selfservice.css", get(stylesheet))
}

/// Too many requests from one address: 429 with `Retry-After`, as a page or,
/// for the script, as JSON (which it retries with the same key).
async fn rate_limit(
    State(limiter): State<Arc<ClientLimiter>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    let Some(wait) = client.and_then(|ip| limiter.check(ip)) else {
        return next.run(request).await;
    };
    let headers = request.headers();
    let lang = Lang::from_accept_language(
        headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or(""),
    );
    let message = t(lang, "intake.rate_limited");
    let mut response = if wants_json(headers) {
        (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({ "error": { "code": "intake.rate_limited", "message": message } })),
        )
            .into_response()
    } else {
        super::message_page(lang, StatusCode::TOO_MANY_REQUESTS, message)
    };
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
    response
}

fn busy_page() -> Response {
    let mut response =
        (StatusCode::SERVICE_UNAVAILABLE, t(Lang::ZhCn, "intake.busy")).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("../../static/selfservice.js"))
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", include_str!("../../static/selfservice.css"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}

// ---- the four forms ---------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Health,
    Arrival,
    Help,
    Volunteer,
}

impl Kind {
    fn parse(text: &str) -> Option<Kind> {
        match text {
            "health" => Some(Kind::Health),
            "arrival" => Some(Kind::Arrival),
            "help" => Some(Kind::Help),
            "volunteer" => Some(Kind::Volunteer),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::Health => "health",
            Kind::Arrival => "arrival",
            Kind::Help => "help",
            Kind::Volunteer => "volunteer",
        }
    }

    fn title_key(self) -> String {
        format!("s.{}.title", self.as_str())
    }
}

/// A choice in a select, radio group or checkbox list.
#[derive(Debug, Clone)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// One household member's block of the health form.
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub index: usize,
    pub id: Uuid,
    pub name: String,
    pub include: bool,
    /// Already has a health entry today: left out of a fresh form.
    pub reported_today: bool,
    pub temperature: String,
    pub symptoms: Vec<Choice>,
    pub away: bool,
}

/// The fields of a posted form, several values per name allowed.
#[derive(Debug, Default, Clone)]
struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(body: &[u8]) -> Fields {
        Fields(form_urlencoded::parse(body).into_owned().collect())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_owned()
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone()).collect()
    }

    fn has(&self, name: &str, value: &str) -> bool {
        self.0.iter().any(|(n, v)| n == name && v == value)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn choices<T: Copy>(
    tr: Lang,
    all: &[T],
    code: fn(T) -> &'static str,
    prefix: &str,
    selected: impl Fn(&str) -> bool,
) -> Vec<Choice> {
    all.iter()
        .map(|x| {
            let value = code(*x);
            Choice {
                value: value.to_owned(),
                label: t(tr, &format!("intake.{prefix}.{value}")),
                selected: selected(value),
            }
        })
        .collect()
}

fn optional_note(text: String) -> Option<String> {
    Some(text).filter(|n| !n.trim().is_empty())
}

fn member_id(text: &str) -> Uuid {
    // Anything but a member's id is refused by the service as "not a member".
    Uuid::try_parse(text.trim()).unwrap_or_default()
}

/// The service form from the posted fields, and for each health entry the
/// member index it came from (to name the member in an error).
fn submission(kind: Kind, fields: &Fields, members: &[MemberView]) -> (SubmissionForm, Vec<usize>) {
    match kind {
        Kind::Health if fields.get("all_normal").is_some() => {
            // "Everyone normal": the household's every member, fine and at home.
            let entries = members
                .iter()
                .map(|m| HealthEntryForm {
                    resident_id: m.id,
                    temperature: "36.5".into(),
                    symptoms: Vec::new(),
                    whereabouts: Whereabouts::AtHome.as_str().into(),
                })
                .collect();
            (SubmissionForm::Health { entries }, (0..members.len()).collect())
        }
        Kind::Health => {
            let mut entries = Vec::new();
            let mut origin = Vec::new();
            for i in 0..MAX_MEMBERS {
                let Some(id) = fields.get(&format!("m{i}")) else { continue };
                if fields.get(&format!("inc{i}")).is_none() {
                    continue;
                }
                origin.push(i);
                entries.push(HealthEntryForm {
                    resident_id: member_id(id),
                    temperature: fields.text(&format!("t{i}")),
                    symptoms: fields.all(&format!("s{i}")),
                    whereabouts: fields.text(&format!("w{i}")),
                });
            }
            (SubmissionForm::Health { entries }, origin)
        }
        Kind::Arrival => (
            SubmissionForm::Arrival {
                resident_id: member_id(&fields.text("resident_id")),
                origin: fields.text("origin"),
                arrived_on: fields.text("arrived_on"),
                travel: fields.text("travel"),
                note: optional_note(fields.text("note")),
            },
            Vec::new(),
        ),
        Kind::Help => (
            SubmissionForm::Help {
                resident_id: fields.get("resident_id").filter(|v| !v.is_empty()).map(member_id),
                kind: fields.text("kind"),
                urgency: fields.text("urgency"),
                note: optional_note(fields.text("note")),
            },
            Vec::new(),
        ),
        Kind::Volunteer => (
            SubmissionForm::Volunteer {
                resident_id: member_id(&fields.text("resident_id")),
                skills: fields.all("skills"),
                availability: fields.all("availability"),
                note: optional_note(fields.text("note")),
            },
            Vec::new(),
        ),
    }
}

// ---- what every page shares -------------------------------------------------

/// The parts of a self-service page beyond the chrome.
#[derive(Debug, Clone)]
pub struct SelfChrome {
    pub token: String,
    pub building: String,
    pub address: String,
    /// The pass-bound token of the forms (empty before identification).
    pub pass_csrf: String,
}

fn path_of(token: &str, rest: &str) -> String {
    if rest.is_empty() { format!("/s/{token}") } else { format!("/s/{token}/{rest}") }
}

/// The page frame. Its `csrf` is the staff session's token when this phone
/// also carries a staff session (the global middleware then wants it on
/// every post), else empty and unchecked.
fn chrome(state: &AppState, headers: &HeaderMap, lang: Lang, token: &str, rest: &str) -> Chrome {
    let mut chrome = Chrome::new(lang, None, "selfservice", &path_of(token, rest));
    chrome.csrf =
        session_token(headers).map(|s| crate::csrf::csrf_token(state, &s)).unwrap_or_default();
    chrome
}

fn self_chrome(
    state: &AppState,
    token: &str,
    building: &BuildingView,
    pass: Option<&str>,
) -> SelfChrome {
    SelfChrome {
        token: token.to_owned(),
        building: building.name.clone(),
        address: building.address.clone().unwrap_or_default(),
        pass_csrf: pass.map(|p| pass_csrf(state, p)).unwrap_or_default(),
    }
}

/// The anti-forgery token bound to a pass.
fn pass_csrf(state: &AppState, pass: &str) -> String {
    hex::encode(state.service.cipher().blind_index("selfservice-form", pass))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn private(mut response: Response) -> Response {
    let headers = response.headers_mut();
    // Pages with a household's members: never kept by a shared phone's cache
    // nor by a proxy. (The referrer policy stays the global `same-origin`:
    // with `no-referrer` browsers send `Origin: null` on form posts, which
    // the same-origin check must refuse.)
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn not_found(lang: Lang) -> Response {
    super::message_page(lang, StatusCode::NOT_FOUND, t(lang, "s.unknown_building"))
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

/// A service error as the resident reads it: status, field, message, and
/// the seconds to wait when there is one.
struct Refusal {
    status: StatusCode,
    field: Option<String>,
    message: String,
    retry_after: Option<u64>,
}

fn refusal(error: ServiceError, lang: Lang) -> Refusal {
    match error {
        ServiceError::TooManyAttempts { retry_after_secs } => {
            let minutes = retry_after_secs.div_ceil(60).max(1);
            Refusal {
                status: StatusCode::TOO_MANY_REQUESTS,
                field: None,
                message: t(lang, "intake.too_many_attempts")
                    .replace("{minutes}", &minutes.to_string()),
                retry_after: Some(retry_after_secs),
            }
        }
        ServiceError::Unavailable => Refusal {
            status: StatusCode::SERVICE_UNAVAILABLE,
            field: None,
            message: t(lang, "intake.busy"),
            retry_after: Some(1),
        },
        other => {
            let api = crate::error::ApiError::from_service(other, lang);
            Refusal {
                status: api.status,
                field: api.field.clone(),
                message: api.message(),
                retry_after: api.retry_after,
            }
        }
    }
}

fn json_response(
    status: StatusCode,
    body: serde_json::Value,
    retry_after: Option<u64>,
) -> Response {
    let mut response = private((status, axum::Json(body)).into_response());
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn forbidden(lang: Lang, json: bool) -> Response {
    if json {
        let message = t(lang, "csrf.invalid");
        return json_response(
            StatusCode::FORBIDDEN,
            json!({ "error": { "code": "csrf.invalid", "message": message } }),
            None,
        );
    }
    super::message_page(lang, StatusCode::FORBIDDEN, t(lang, "csrf.invalid"))
}

// ---- picking the household and identifying ------------------------------------

#[derive(Template)]
#[template(path = "s_building.html")]
struct BuildingPage {
    chrome: Chrome,
    s: SelfChrome,
    households: Vec<Choice>,
    name: String,
    error: Option<String>,
    error_field: String,
    /// A valid pass for this building is already held: offer to go on.
    identified: bool,
}

async fn building_view(
    state: &AppState,
    lang: Lang,
    token: &str,
) -> Result<BuildingView, Response> {
    state.service.building_for_token(token).await.map_err(|e| match e {
        ServiceError::NotFound => not_found(lang),
        other => super::error_page(lang, other),
    })
}

/// The pass from the cookie, when valid and for a household of this building.
fn held_pass(
    state: &AppState,
    headers: &HeaderMap,
    building_id: Uuid,
) -> Option<(String, ResidentPass)> {
    let text = cookie(headers, PASS_COOKIE)?;
    let pass = state.service.verify_pass(text).ok()?;
    (pass.path.building == Some(building_id)).then(|| (text.to_owned(), pass))
}

#[allow(clippy::too_many_arguments)]
fn picker(
    state: &AppState,
    lang: Lang,
    headers: &HeaderMap,
    token: &str,
    view: &BuildingView,
    chosen: Option<Uuid>,
    name: String,
    refused: Option<Refusal>,
) -> Response {
    let identified = held_pass(state, headers, view.building_id).is_some();
    let status = refused.as_ref().map_or(StatusCode::OK, |r| r.status);
    let retry_after = refused.as_ref().and_then(|r| r.retry_after);
    let page = BuildingPage {
        chrome: chrome(state, headers, lang, token, ""),
        s: self_chrome(state, token, view, None),
        households: view
            .households
            .iter()
            .map(|h| Choice {
                value: h.id.to_string(),
                label: h.label.clone(),
                selected: Some(h.id) == chosen,
            })
            .collect(),
        name,
        error_field: refused.as_ref().and_then(|r| r.field.clone()).unwrap_or_default(),
        error: refused.map(|r| r.message),
        identified,
    };
    let mut response = private((status, render(&page)).into_response());
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

pub async fn building_page(
    State(state): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, Response> {
    let view = building_view(&state, lang, &token).await?;
    Ok(picker(&state, lang, &headers, &token, &view, None, String::new(), None))
}

fn pass_cookie(state: &AppState, pass: &str, max_age: i64) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{PASS_COOKIE}={pass}; Path=/s/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("epigrid_pass=; Path=/s/; Max-Age=0"))
}

pub async fn identify(
    State(state): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
    parts: ClientAddr,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    if !crate::csrf::same_origin(&headers) {
        return Err(forbidden(lang, false));
    }
    let view = building_view(&state, lang, &token).await?;
    let fields = Fields::parse(&body);
    let household = Uuid::try_parse(fields.get("household_id").unwrap_or_default().trim()).ok();
    let name = fields.text("name");
    let request = IdentifyRequest {
        building_token: token.clone(),
        household_id: household.unwrap_or_default(),
        name: name.clone(),
        id_last4: fields.text("id_last4"),
        client_addr: parts.0,
    };
    match state.service.identify(request).await {
        Ok(identified) => {
            let max_age = (identified.expires_at - state.service.now()).num_seconds().max(1);
            let mut response = Redirect::to(&path_of(&token, "menu")).into_response();
            response
                .headers_mut()
                .insert(header::SET_COOKIE, pass_cookie(&state, &identified.pass, max_age));
            Ok(private(response))
        }
        // Wrong name or digits: the name typed stays, the digits never do.
        Err(error) => Ok(picker(
            &state,
            lang,
            &headers,
            &token,
            &view,
            household,
            name,
            Some(refusal(error, lang)),
        )),
    }
}

/// The client's address, for the identification limits.
#[derive(Debug)]
pub struct ClientAddr(Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(crate::extract::client_addr(parts)))
    }
}

pub async fn leave(
    State(state): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    if !crate::csrf::same_origin(&headers) {
        return forbidden(lang, false);
    }
    let mut response = Redirect::to(&path_of(&token, "")).into_response();
    response.headers_mut().insert(header::SET_COOKIE, pass_cookie(&state, "", 0));
    private(response)
}

// ---- the menu -----------------------------------------------------------------

#[derive(Template)]
#[template(path = "s_menu.html")]
struct MenuPage {
    chrome: Chrome,
    s: SelfChrome,
    household: String,
    /// Each member, and whether they have reported their health today.
    members: Vec<(MemberView, bool)>,
    everyone_reported: bool,
    /// The household's own requests of the last days, newest first.
    requests: Vec<RequestRow>,
    requests_title: String,
    expires: String,
}

/// A request on the menu, in the resident's words.
#[derive(Debug)]
struct RequestRow {
    what: String,
    progress: String,
    /// `received`, `assigned`, `done` or `declined`, for the colour.
    progress_code: &'static str,
    at: String,
    reference: Option<String>,
}

/// The building and the held pass, or the way back to the picker.
async fn identified(
    state: &AppState,
    lang: Lang,
    headers: &HeaderMap,
    token: &str,
) -> Result<(BuildingView, String, ResidentPass), Response> {
    let view = building_view(state, lang, token).await?;
    match held_pass(state, headers, view.building_id) {
        Some((text, pass)) => Ok((view, text, pass)),
        None => Err(private(Redirect::to(&path_of(token, "")).into_response())),
    }
}

fn label_of(view: &BuildingView, household: Uuid) -> String {
    view.households
        .iter()
        .find(|h| h.id == household)
        .map(|h| household_label(&h.unit, &h.room))
        .unwrap_or_default()
}

pub async fn menu(
    State(state): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, Response> {
    let (view, text, pass) = identified(&state, lang, &headers, &token).await?;
    let service = &state.service;
    let (members, reported, requests) = tokio::join!(
        service.pass_members(&pass),
        service.reported_today(&pass),
        service.household_requests(&pass)
    );
    let members = members.map_err(|e| super::error_page(lang, e))?;
    let reported = reported.map_err(|e| super::error_page(lang, e))?;
    let requests = requests.map_err(|e| super::error_page(lang, e))?;
    let members: Vec<(MemberView, bool)> = members
        .into_iter()
        .map(|m| {
            let done = reported.contains(&m.id);
            (m, done)
        })
        .collect();
    let offset = state.service.settings().time_zone_offset;
    Ok(private(render(&MenuPage {
        chrome: chrome(&state, &headers, lang, &token, "menu"),
        s: self_chrome(&state, &token, &view, Some(&text)),
        household: label_of(&view, pass.household_id),
        everyone_reported: !members.is_empty() && members.iter().all(|(_, done)| *done),
        members,
        requests: requests
            .iter()
            .map(|r| RequestRow {
                what: t(lang, &format!("task.category.{}", r.category)),
                progress: t(lang, &format!("s.requests.{}", r.progress.as_str())),
                progress_code: r.progress.as_str(),
                at: r.at.with_timezone(&offset).format("%m-%d %H:%M").to_string(),
                reference: r.reference.clone(),
            })
            .collect(),
        requests_title: t(lang, "s.requests.title")
            .replace("{days}", &epigrid_service::selfservice::REQUESTS_SHOWN_DAYS.to_string()),
        expires: pass.expires_at.with_timezone(&offset).format("%H:%M").to_string(),
    })))
}

// ---- the forms ------------------------------------------------------------------

#[derive(Template)]
#[template(path = "s_form.html")]
struct FormPage {
    chrome: Chrome,
    s: SelfChrome,
    kind: &'static str,
    title: String,
    household: String,
    key: String,
    normal_key: String,
    error: Option<String>,
    error_field: String,
    /// Health: one block per member.
    members: Vec<MemberRow>,
    /// Arrival, help, volunteer: who it is about.
    people: Vec<Choice>,
    regions: Vec<Choice>,
    travel: Vec<Choice>,
    help_kinds: Vec<Choice>,
    urgency: Vec<Choice>,
    skills: Vec<Choice>,
    availability: Vec<Choice>,
    arrived_on: String,
    today: String,
    note: String,
}

fn fresh_key() -> String {
    Uuid::now_v7().simple().to_string()
}

#[allow(clippy::too_many_arguments)]
fn form(
    state: &AppState,
    lang: Lang,
    headers: &HeaderMap,
    token: &str,
    view: &BuildingView,
    pass_text: &str,
    pass: &ResidentPass,
    kind: Kind,
    members: &[MemberView],
    reported: &[Uuid],
    fields: &Fields,
    refused: Option<Refusal>,
) -> Response {
    let fresh = fields.is_empty();
    let key = fields.get("idempotency_key").map(str::to_owned).unwrap_or_else(fresh_key);
    let person = |v: &str| fields.has("resident_id", v);
    let members_rows = members
        .iter()
        .enumerate()
        .map(|(i, m)| MemberRow {
            index: i,
            id: m.id,
            name: m.masked_name.clone(),
            // A fresh form leaves out whoever has reported today, so that a
            // second relative does not report them again by mistake.
            include: if fresh {
                !reported.contains(&m.id)
            } else {
                fields.get(&format!("inc{i}")).is_some()
            },
            reported_today: reported.contains(&m.id),
            temperature: fields.text(&format!("t{i}")),
            symptoms: choices(lang, Symptom::ALL, Symptom::as_str, "symptom", |v| {
                fields.has(&format!("s{i}"), v)
            }),
            away: fields.has(&format!("w{i}"), Whereabouts::Away.as_str()),
        })
        .collect();
    let people = members
        .iter()
        .map(|m| Choice {
            value: m.id.to_string(),
            label: m.masked_name.clone(),
            selected: person(&m.id.to_string()),
        })
        .collect();
    let today = state.service.today().format("%Y-%m-%d").to_string();
    let status = refused.as_ref().map_or(StatusCode::OK, |r| r.status);
    let retry_after = refused.as_ref().and_then(|r| r.retry_after);
    let page = FormPage {
        chrome: chrome(state, headers, lang, token, kind.as_str()),
        s: self_chrome(state, token, view, Some(pass_text)),
        kind: kind.as_str(),
        title: t(lang, &kind.title_key()),
        household: label_of(view, pass.household_id),
        key,
        normal_key: fresh_key(),
        error_field: refused.as_ref().and_then(|r| r.field.clone()).unwrap_or_default(),
        error: refused.map(|r| r.message),
        members: members_rows,
        people,
        regions: REGIONS
            .iter()
            .map(|(code, name)| Choice {
                value: (*code).to_owned(),
                label: (*name).to_owned(),
                selected: fields.has("origin", code),
            })
            .collect(),
        travel: choices(lang, TravelMeans::ALL, TravelMeans::as_str, "travel", |v| {
            fields.has("travel", v)
        }),
        help_kinds: choices(lang, HelpKind::ALL, HelpKind::as_str, "help_kind", |v| {
            fields.has("kind", v)
        }),
        urgency: choices(lang, Urgency::ALL, Urgency::as_str, "urgency", |v| {
            fields.has("urgency", v) || (fields.get("urgency").is_none() && v == "normal")
        }),
        skills: choices(lang, Skill::ALL, Skill::as_str, "skill", |v| fields.has("skills", v)),
        availability: choices(lang, Availability::ALL, Availability::as_str, "availability", |v| {
            fields.has("availability", v)
        }),
        arrived_on: fields.get("arrived_on").map_or_else(|| today.clone(), str::to_owned),
        today,
        note: fields.text("note"),
    };
    let mut response = private((status, render(&page)).into_response());
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Who in the household has reported today, for the health form (the other
/// forms do not ask).
async fn reported_if_health(
    state: &AppState,
    lang: Lang,
    pass: &ResidentPass,
    kind: Kind,
) -> Result<Vec<Uuid>, Response> {
    if kind != Kind::Health {
        return Ok(Vec::new());
    }
    state.service.reported_today(pass).await.map_err(|e| super::error_page(lang, e))
}

pub async fn form_page(
    State(state): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
    Path((token, kind)): Path<(String, String)>,
) -> Result<Response, Response> {
    let kind = Kind::parse(&kind).ok_or_else(|| not_found(lang))?;
    let (view, text, pass) = identified(&state, lang, &headers, &token).await?;
    let members =
        state.service.pass_members(&pass).await.map_err(|e| super::error_page(lang, e))?;
    let reported = reported_if_health(&state, lang, &pass, kind).await?;
    Ok(form(
        &state,
        lang,
        &headers,
        &token,
        &view,
        &text,
        &pass,
        kind,
        &members,
        &reported,
        &Fields::default(),
        None,
    ))
}

#[derive(Template)]
#[template(path = "s_done.html")]
struct DonePage {
    chrome: Chrome,
    s: SelfChrome,
    title: String,
    reference: String,
    replayed: bool,
    /// What to expect now (`next_steps`), a paragraph each.
    next: Vec<String>,
}

pub async fn submit(
    State(state): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
    Path((token, kind)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, Response> {
    let json = wants_json(&headers);
    let kind = Kind::parse(&kind).ok_or_else(|| not_found(lang))?;
    if !crate::csrf::same_origin(&headers) {
        return Err(forbidden(lang, json));
    }
    let view = building_view(&state, lang, &token).await?;
    let Some((text, pass)) = held_pass(&state, &headers, view.building_id) else {
        // Expired or never identified: back to the picker to identify again.
        let back = path_of(&token, "");
        if json {
            let message = t(lang, "intake.pass_invalid");
            return Err(json_response(
                StatusCode::UNAUTHORIZED,
                json!({ "error": { "code": "intake.pass_invalid", "message": message }, "location": back }),
                None,
            ));
        }
        return Err(private(Redirect::to(&back).into_response()));
    };
    let fields = Fields::parse(&body);
    let presented = fields.get(PASS_CSRF_FIELD).unwrap_or_default();
    if !constant_time_eq(presented.as_bytes(), pass_csrf(&state, &text).as_bytes()) {
        return Err(forbidden(lang, json));
    }
    let members =
        state.service.pass_members(&pass).await.map_err(|e| super::error_page(lang, e))?;
    let (submission, origin) = submission(kind, &fields, &members);
    let key = fields.text("idempotency_key");
    match state.service.submit(&pass, submission, &key).await {
        Ok(receipt) => Ok(done(&state, lang, &headers, &token, &view, &text, kind, receipt, json)),
        Err(error) => {
            let mut refused = refusal(error, lang);
            // "entries[1].temperature" → the member's masked name first.
            if let Some(index) = refused
                .field
                .as_deref()
                .and_then(|f| f.strip_prefix("entries["))
                .and_then(|f| f.split(']').next())
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| origin.get(i))
                .and_then(|m| members.get(*m))
            {
                refused.message = format!("{}：{}", index.masked_name, refused.message);
            }
            if json {
                let body =
                    json!({ "error": { "message": refused.message, "field": refused.field } });
                return Err(json_response(refused.status, body, refused.retry_after));
            }
            let reported = reported_if_health(&state, lang, &pass, kind).await?;
            Err(form(
                &state,
                lang,
                &headers,
                &token,
                &view,
                &text,
                &pass,
                kind,
                &members,
                &reported,
                &fields,
                Some(refused),
            ))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn done(
    state: &AppState,
    lang: Lang,
    headers: &HeaderMap,
    token: &str,
    view: &BuildingView,
    pass_text: &str,
    kind: Kind,
    receipt: Receipt,
    json: bool,
) -> Response {
    let status = if receipt.replayed { StatusCode::OK } else { StatusCode::CREATED };
    let next = receipt.follow_up.as_ref().map(|f| next_steps(state, lang, f)).unwrap_or_default();
    if json {
        let message = t(lang, if receipt.replayed { "s.done.replayed" } else { "s.done.stored" });
        return json_response(
            status,
            json!({ "reference": receipt.reference, "replayed": receipt.replayed,
                    "message": message, "next": next }),
            None,
        );
    }
    // 200 either way for the page: a browser shows it the same.
    private(render(&DonePage {
        chrome: chrome(state, headers, lang, token, kind.as_str()),
        s: self_chrome(state, token, view, Some(pass_text)),
        title: t(lang, &kind.title_key()),
        reference: receipt.reference,
        replayed: receipt.replayed,
        next,
    }))
}

/// What the resident should expect after a report that made work: advice
/// for a fever or a call for medical help, then by when a grid worker will
/// be in touch (the task's handling deadline, which escalates it if missed).
fn next_steps(state: &AppState, lang: Lang, follow_up: &FollowUp) -> Vec<String> {
    let advice = match follow_up.category.as_str() {
        "fever_follow_up" => Some("s.next.fever"),
        "medical_assistance" => Some("s.next.medical"),
        "volunteer_offer_contact" => Some("s.next.volunteer"),
        _ => None,
    };
    let contact = match follow_up.due_by {
        Some(due) => t(lang, "s.next.contact_by").replace("{time}", &due_text(state, lang, due)),
        None => t(lang, "s.next.contact_later"),
    };
    advice.map(|key| t(lang, key)).into_iter().chain([contact]).collect()
}

/// "今天 17:30", "明天 10:00" or "12月2日（周二）10:00", in the office's zone.
fn due_text(state: &AppState, lang: Lang, due: DateTime<Utc>) -> String {
    let local = due.with_timezone(&state.service.settings().time_zone_offset);
    let time = local.format("%H:%M").to_string();
    let day = local.date_naive();
    let today = state.service.today();
    if day == today {
        return t(lang, "s.next.today").replace("{time}", &time);
    }
    if today.succ_opt() == Some(day) {
        return t(lang, "s.next.tomorrow").replace("{time}", &time);
    }
    let weekday = t(lang, &format!("s.next.weekday.{}", day.weekday().num_days_from_monday()));
    t(lang, "s.next.on_date")
        .replace("{month}", &day.month().to_string())
        .replace("{month_name}", &day.format("%b").to_string())
        .replace("{day}", &day.day().to_string())
        .replace("{weekday}", &weekday)
        .replace("{time}", &time)
}
