//! Resident self-service and intake over JSON (issue #6): the resident
//! routes with a stack of their own (`resident_routes`), and the staff's
//! intake routes, merged into the `/api/v1` router (`staff_routes`).
//!
//! Public routes (no session, no CSRF token: a browser never adds
//! `Authorization: Bearer` by itself, and nothing here reads a cookie):
//!
//! | Method and path | Body / auth | Answer |
//! |---|---|---|
//! | `GET /api/v1/public/options` | — | the codes each form accepts |
//! | `GET /api/v1/public/buildings/{token}` | — | building name, address, households (labels only) |
//! | `POST /api/v1/public/identify` | `{building_token, household_id, name, id_last4}` | `{pass, expires_at, household_id, household_label, members:[{id, masked_name}]}` |
//! | `GET /api/v1/public/household` | pass | `{household_id, expires_at, members}` |
//! | `POST /api/v1/public/health-reports` | pass; `{idempotency_key, entries:[{resident_id, temperature, symptoms, whereabouts}]}` | `{reference, replayed}` |
//! | `POST /api/v1/public/arrivals` | pass; `{idempotency_key, resident_id, origin, arrived_on, travel, note?}` | same |
//! | `POST /api/v1/public/help-requests` | pass; `{idempotency_key, resident_id?, kind, urgency, note?}` | same |
//! | `POST /api/v1/public/volunteer-offers` | pass; `{idempotency_key, resident_id, skills, availability, note?}` | same |
//!
//! A pass travels as `Authorization: Bearer <pass>`. A new submission
//! answers 201, a replay (same `idempotency_key`) 200 with the original
//! reference. A full intake queue answers 503 with `Retry-After` at once.
//!
//! Staff routes (session; CSRF token when the session is a cookie):
//! `POST /api/v1/households/{id}/health-reports` with
//! `{idempotency_key, whole_household_normal: true}` or
//! `{idempotency_key, entries:[…]}`; `GET /api/v1/grids/{id}/unreported?after=&limit=`;
//! `GET /api/v1/intake/reporting` (today's reported share per grid in scope).
//!
//! The public routes sit behind their own layers (`resident_routes`): a
//! per-client rate limit, then load shedding over a global concurrency limit
//! (excess answered 503 at once rather than queued), then a timeout.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Json, Router};
use epigrid_domain::intake::{
    Availability, HelpKind, REGIONS, Skill, Symptom, TravelMeans, Urgency, Whereabouts,
};
use epigrid_service::ServiceError;
use epigrid_service::intake::{HealthEntryForm, Receipt, StaffHealthForm, SubmissionForm};
use epigrid_service::selfservice::{IdentifyRequest, ResidentPass};
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceBuilder;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{CurrentActor, JsonBody, QueryParams, client_addr};
use crate::i18n::Lang;

type ApiResult<T> = Result<T, ApiError>;

/// Seconds a refused submitter is asked to wait: short, because the queue
/// drains in milliseconds; the page's script adds jittered backoff.
const BUSY_RETRY_AFTER: u64 = 1;

/// The resident routes, with full paths and their own layers, for
/// `crate::router` to merge outside the stack every other route passes.
///
/// Their stack, outermost first: the security headers, the per-client rate
/// limit (a bare pass-through when it is off: a benchmark from one address,
/// or a proxy doing it), the body limit, then load shedding over a
/// global concurrency limit (excess answered 503 at once rather than queued)
/// and one timeout, which answers 503 too.
///
/// What they skip, and why that is safe: the CSRF check (they take a pass in
/// `Authorization: Bearer`, which a browser never adds by itself, and read
/// no cookie), the request span (a failure is logged where it arises:
/// `ApiError::from_service` and `overloaded`), and the 30-second timeout
/// (theirs is shorter). At the peak these routes are most of the traffic,
/// and each layer is polled twice per submission (before and after the
/// batch commits): the stack cost more CPU per request than the handler
/// (docs/PERFORMANCE.md, session 7).
pub fn resident_routes(state: &AppState) -> Router<AppState> {
    let limits = state.service.settings().intake.public.clone();
    let limiter = Arc::new(ClientLimiter::new(limits.rate_per_client, limits.burst_per_client));
    let routes: Router<AppState> = Router::new()
        .route("/api/v1/public/options", get(options))
        .route("/api/v1/public/buildings/{token}", get(building))
        .route("/api/v1/public/identify", post(identify))
        .route("/api/v1/public/household", get(household))
        .route("/api/v1/public/health-reports", post(health_report))
        .route("/api/v1/public/arrivals", post(arrival))
        .route("/api/v1/public/help-requests", post(help_request))
        .route("/api/v1/public/volunteer-offers", post(volunteer_offer));
    let rate_limit = (limits.rate_per_client > 0)
        .then(|| axum::middleware::from_fn_with_state(limiter, rate_limit));
    let semaphore = Arc::new(tokio::sync::Semaphore::new(limits.concurrency.max(1)));
    // One `layer` call for the whole stack: each call wraps every route in
    // a boxed service of its own, cloned for each request. The first
    // listed is the outermost.
    routes.layer(
        ServiceBuilder::new()
            .layer(tower::util::MapResponseLayer::new(crate::security_headers))
            .option_layer(rate_limit)
            .layer(DefaultBodyLimit::max(crate::MAX_BODY_BYTES))
            .layer(HandleErrorLayer::new(overloaded))
            .load_shed()
            .layer(tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(semaphore))
            .timeout(limits.timeout),
    )
}

/// The staff's intake routes, under `/api/v1` with the rest of the API.
pub fn staff_routes() -> Router<AppState> {
    Router::new()
        .route("/households/{id}/health-reports", post(staff_health_report))
        .route("/grids/{id}/unreported", get(unreported))
        .route("/intake/reporting", get(reporting))
}

/// The answer to a shed or timed-out public request.
async fn overloaded(error: BoxError) -> Response {
    let figures = epigrid_service::metrics::figures();
    if error.is::<tower::timeout::error::Elapsed>() {
        figures.public_timed_out.inc();
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        figures.public_shed.inc();
    } else {
        tracing::error!(%error, "public route failed");
    }
    busy(Lang::ZhCn)
}

/// 503 with `Retry-After`. Under a storm most answers are this one, so its
/// body is made once per language and shared: a refusal costs little more
/// than writing it, and leaves the CPU to the submissions let in.
fn busy(lang: Lang) -> Response {
    static BODIES: std::sync::OnceLock<[axum::body::Bytes; 2]> = std::sync::OnceLock::new();
    let bodies = BODIES.get_or_init(|| {
        [Lang::ZhCn, Lang::En].map(|lang| {
            let mut error = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "intake.busy", lang);
            error.retry_after = Some(BUSY_RETRY_AFTER);
            // The same body as every other error answer, serialised once.
            let body = serde_json::to_vec(&error.body()).expect("an error body serialises");
            axum::body::Bytes::from(body)
        })
    });
    let body = bodies[usize::from(lang == Lang::En)].clone();
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::RETRY_AFTER, HeaderValue::from(BUSY_RETRY_AFTER)),
        ],
        body,
    )
        .into_response()
}

/// Refuses a submission with 503 at once, before its body is read, when
/// the intake queue is full (the queue would refuse it anyway).
#[derive(Debug)]
pub struct IntakeRoom;

impl FromRequestParts<AppState> for IntakeRoom {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if state.service.intake_has_room() {
            Ok(IntakeRoom)
        } else {
            epigrid_service::metrics::figures().intake_refused.inc();
            let lang = Lang::from_request_parts(parts, state).await.unwrap_or(Lang::ZhCn);
            Err(busy(lang))
        }
    }
}

/// Per-client-address token buckets: `rate` requests a second sustained,
/// `burst` at once. Zero rate: no limit (benchmarks from one address). The
/// map is pruned as it grows, so a scan from many addresses cannot exhaust
/// memory.
#[derive(Debug)]
pub(crate) struct ClientLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

const MAX_TRACKED_CLIENTS: usize = 100_000;

impl ClientLimiter {
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        Self { rate: f64::from(rate), burst: f64::from(burst.max(1)), buckets: Mutex::default() }
    }

    /// `None` when allowed, or the seconds until a token is free.
    pub(crate) fn check(&self, client: IpAddr) -> Option<u64> {
        if self.rate <= 0.0 {
            return None;
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED_CLIENTS {
            // Full buckets carry no information: drop them.
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(client).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            None
        } else {
            Some(((1.0 - *tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

async fn rate_limit(
    State(limiter): State<Arc<ClientLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    if let Some(wait) = client.and_then(|ip| limiter.check(ip)) {
        epigrid_service::metrics::figures().public_rate_limited.inc();
        let lang = Lang::from_accept_language(
            request
                .headers()
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        );
        let mut error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "intake.rate_limited", lang);
        error.retry_after = Some(wait);
        return error.into_response();
    }
    next.run(request).await
}

fn service_error(lang: Lang) -> impl Fn(ServiceError) -> ApiError {
    move |error| match error {
        // The intake queue is full (or the store is down): come back soon.
        ServiceError::Unavailable => {
            let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "intake.busy", lang);
            e.retry_after = Some(BUSY_RETRY_AFTER);
            e
        }
        ServiceError::TooManyAttempts { retry_after_secs } => {
            let mut e =
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "intake.too_many_attempts", lang);
            e.retry_after = Some(retry_after_secs);
            e
        }
        other => ApiError::from_service(other, lang),
    }
}

/// A verified resident pass from `Authorization: Bearer`.
#[derive(Debug, Clone)]
pub struct PassHolder(pub ResidentPass);

impl FromRequestParts<AppState> for PassHolder {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let lang = Lang::from_request_parts(parts, state).await.unwrap_or(Lang::ZhCn);
        let refused = || ApiError::new(StatusCode::UNAUTHORIZED, "intake.pass_invalid", lang);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(refused)?;
        state.service.verify_pass(token).map(PassHolder).map_err(|_| refused())
    }
}

fn parse_id(text: &str, lang: Lang) -> ApiResult<Uuid> {
    Uuid::try_parse(text).map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", lang))
}

/// 201 for a new submission, 200 for a replay.
fn receipt(receipt: Receipt) -> Response {
    let status = if receipt.replayed { StatusCode::OK } else { StatusCode::CREATED };
    // The body by hand when the reference needs no escaping (always, for
    // the references this server makes): every submission at the peak is
    // answered here, and through `Json` the receipt took 3 % of the
    // workers' time (docs/PERFORMANCE.md, session 10).
    let plain = receipt.reference.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && receipt.follow_up.is_none();
    let body = if plain {
        let replayed = if receipt.replayed { "true" } else { "false" };
        let mut body = String::with_capacity(receipt.reference.len() + 32);
        body.push_str(r#"{"reference":""#);
        body.push_str(&receipt.reference);
        body.push_str(r#"","replayed":"#);
        body.push_str(replayed);
        body.push('}');
        body
    } else {
        serde_json::to_string(&receipt).unwrap_or_default()
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
        // Answers carry a reference tied to a household: never cache them.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    (status, headers, body).into_response()
}

#[utoipa::path(
    get, path = "/api/v1/public/options", tag = "public",
    summary = "The codes each self-service form accepts",
    responses((status = 200, description = "Codes", body = crate::openapi::PublicOptions))
)]
async fn options() -> Json<Value> {
    fn codes<T: Copy>(all: &[T], f: fn(T) -> &'static str) -> Vec<&'static str> {
        all.iter().map(|x| f(*x)).collect()
    }
    Json(json!({
        "symptoms": codes(Symptom::ALL, Symptom::as_str),
        "whereabouts": codes(Whereabouts::ALL, Whereabouts::as_str),
        "travel": codes(TravelMeans::ALL, TravelMeans::as_str),
        "help_kinds": codes(HelpKind::ALL, HelpKind::as_str),
        "urgency": codes(Urgency::ALL, Urgency::as_str),
        "skills": codes(Skill::ALL, Skill::as_str),
        "availability": codes(Availability::ALL, Availability::as_str),
        "regions": REGIONS.iter().map(|(code, name)| json!({ "code": code, "name": name })).collect::<Vec<_>>(),
    }))
}

#[utoipa::path(
    get, path = "/api/v1/public/buildings/{token}", tag = "public",
    summary = "The building behind a QR code",
    description = "Its name, address and households as labels (\"1单元 502\"), never names.",
    params(("token" = String, Path, description = "The building token of the QR code")),
    responses((status = 200, description = "The building", body = epigrid_service::selfservice::BuildingView),
        (status = 404, description = "No building has this token", body = crate::error::ErrorBody))
)]
async fn building(
    State(state): State<AppState>,
    lang: Lang,
    Path(token): Path<String>,
) -> ApiResult<Json<Value>> {
    let view = state.service.building_for_token(&token).await.map_err(service_error(lang))?;
    Ok(Json(json!(view)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct IdentifyBody {
    building_token: String,
    household_id: Uuid,
    name: String,
    id_last4: String,
}

#[utoipa::path(
    post, path = "/api/v1/public/identify", tag = "public",
    summary = "Identify as a member of a household",
    description = "A member's name and the last four characters of their ID number. Failures are audited and rate-limited per household and per address. The pass answered goes in `Authorization: Bearer` on the other public calls.",
    request_body = IdentifyBody,
    responses((status = 200, description = "Identified: the pass and the household's members (names masked)", body = epigrid_service::selfservice::Identified),
        (status = 401, description = "No member of the household matches", body = crate::error::ErrorBody),
        (status = 404, description = "No such building or household", body = crate::error::ErrorBody),
        (status = 422, description = "A field is invalid; `field` names it", body = crate::error::ErrorBody))
)]
async fn identify(
    State(state): State<AppState>,
    lang: Lang,
    parts: ClientAddr,
    JsonBody(body): JsonBody<IdentifyBody>,
) -> ApiResult<Response> {
    let identified = state
        .service
        .identify(IdentifyRequest {
            building_token: body.building_token,
            household_id: body.household_id,
            name: body.name,
            id_last4: body.id_last4,
            client_addr: parts.0,
        })
        .await
        .map_err(service_error(lang))?;
    let mut response = Json(identified).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The client's address (None without connection info, as in `oneshot` tests).
#[derive(Debug)]
struct ClientAddr(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_addr(parts)))
    }
}

#[utoipa::path(
    get, path = "/api/v1/public/household", tag = "public",
    summary = "The household of a pass",
    security(("resident_pass" = [])),
    responses((status = 200, description = "Its members (names masked)", body = crate::openapi::PassHousehold))
)]
async fn household(
    State(state): State<AppState>,
    lang: Lang,
    PassHolder(pass): PassHolder,
) -> ApiResult<Json<Value>> {
    let members = state.service.pass_members(&pass).await.map_err(service_error(lang))?;
    let reported_today = state.service.reported_today(&pass).await.map_err(service_error(lang))?;
    let requests = state.service.household_requests(&pass).await.map_err(service_error(lang))?;
    Ok(Json(json!({
        "household_id": pass.household_id,
        "expires_at": pass.expires_at,
        "members": members,
        "reported_today": reported_today,
        "requests": requests,
    })))
}

/// A temperature as a number (`37.5`) or as typed (`"37.5"`, `"abc"`); the
/// domain names what is wrong with it.
fn temperature_text(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EntryBody {
    resident_id: Uuid,
    /// °C, as a number (`37.5`) or as typed (`"37.5"`).
    #[schema(value_type = crate::openapi::Temperature)]
    temperature: Value,
    #[serde(default)]
    symptoms: Vec<String>,
    whereabouts: String,
}

impl EntryBody {
    fn form(self) -> HealthEntryForm {
        HealthEntryForm {
            resident_id: self.resident_id,
            temperature: temperature_text(&self.temperature),
            symptoms: self.symptoms,
            whereabouts: self.whereabouts,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct HealthBody {
    idempotency_key: String,
    entries: Vec<EntryBody>,
}

#[utoipa::path(
    post, path = "/api/v1/public/health-reports", tag = "public",
    summary = "The household's daily health report",
    description = "One entry per member reported. Acknowledged only once stored; a fever or symptom becomes a follow-up task in the grid.",
    security(("resident_pass" = [])),
    request_body = HealthBody,
    responses((status = 201, description = "Stored: the reference to show", body = Receipt),
        (status = 200, description = "A replay of an earlier submission (same `idempotency_key`): its reference", body = Receipt),
        (status = 422, description = "A field is invalid; `field` names it", body = crate::error::ErrorBody))
)]
async fn health_report(
    State(state): State<AppState>,
    lang: Lang,
    PassHolder(pass): PassHolder,
    _room: IntakeRoom,
    JsonBody(body): JsonBody<HealthBody>,
) -> ApiResult<Response> {
    let form =
        SubmissionForm::Health { entries: body.entries.into_iter().map(EntryBody::form).collect() };
    let done = state.service.submit(&pass, form, &body.idempotency_key).await;
    done.map(receipt).map_err(service_error(lang))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ArrivalBody {
    idempotency_key: String,
    resident_id: Uuid,
    origin: String,
    arrived_on: String,
    travel: String,
    note: Option<String>,
}

#[utoipa::path(
    post, path = "/api/v1/public/arrivals", tag = "public",
    summary = "Register an arrival",
    security(("resident_pass" = [])),
    request_body = ArrivalBody,
    responses((status = 201, description = "Stored: the reference to show", body = Receipt),
        (status = 200, description = "A replay of an earlier submission (same `idempotency_key`): its reference", body = Receipt),
        (status = 422, description = "A field is invalid; `field` names it", body = crate::error::ErrorBody))
)]
async fn arrival(
    State(state): State<AppState>,
    lang: Lang,
    PassHolder(pass): PassHolder,
    _room: IntakeRoom,
    JsonBody(body): JsonBody<ArrivalBody>,
) -> ApiResult<Response> {
    let form = SubmissionForm::Arrival {
        resident_id: body.resident_id,
        origin: body.origin,
        arrived_on: body.arrived_on,
        travel: body.travel,
        note: body.note,
    };
    let done = state.service.submit(&pass, form, &body.idempotency_key).await;
    done.map(receipt).map_err(service_error(lang))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct HelpBody {
    idempotency_key: String,
    resident_id: Option<Uuid>,
    kind: String,
    urgency: String,
    note: Option<String>,
}

#[utoipa::path(
    post, path = "/api/v1/public/help-requests", tag = "public",
    summary = "Ask for help",
    security(("resident_pass" = [])),
    request_body = HelpBody,
    responses((status = 201, description = "Stored: the reference to show", body = Receipt),
        (status = 200, description = "A replay of an earlier submission (same `idempotency_key`): its reference", body = Receipt),
        (status = 422, description = "A field is invalid; `field` names it", body = crate::error::ErrorBody))
)]
async fn help_request(
    State(state): State<AppState>,
    lang: Lang,
    PassHolder(pass): PassHolder,
    _room: IntakeRoom,
    JsonBody(body): JsonBody<HelpBody>,
) -> ApiResult<Response> {
    let form = SubmissionForm::Help {
        resident_id: body.resident_id,
        kind: body.kind,
        urgency: body.urgency,
        note: body.note,
    };
    let done = state.service.submit(&pass, form, &body.idempotency_key).await;
    done.map(receipt).map_err(service_error(lang))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct VolunteerBody {
    idempotency_key: String,
    resident_id: Uuid,
    skills: Vec<String>,
    availability: Vec<String>,
    note: Option<String>,
}

#[utoipa::path(
    post, path = "/api/v1/public/volunteer-offers", tag = "public",
    summary = "Offer to volunteer",
    security(("resident_pass" = [])),
    request_body = VolunteerBody,
    responses((status = 201, description = "Stored: the reference to show", body = Receipt),
        (status = 200, description = "A replay of an earlier submission (same `idempotency_key`): its reference", body = Receipt),
        (status = 422, description = "A field is invalid; `field` names it", body = crate::error::ErrorBody))
)]
async fn volunteer_offer(
    State(state): State<AppState>,
    lang: Lang,
    PassHolder(pass): PassHolder,
    _room: IntakeRoom,
    JsonBody(body): JsonBody<VolunteerBody>,
) -> ApiResult<Response> {
    let form = SubmissionForm::Volunteer {
        resident_id: body.resident_id,
        skills: body.skills,
        availability: body.availability,
        note: body.note,
    };
    let done = state.service.submit(&pass, form, &body.idempotency_key).await;
    done.map(receipt).map_err(service_error(lang))
}

/// Either `whole_household_normal: true` or `entries`, not both.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StaffHealthBody {
    idempotency_key: String,
    #[serde(default)]
    whole_household_normal: bool,
    entries: Option<Vec<EntryBody>>,
}

#[utoipa::path(
    post, path = "/api/v1/households/{id}/health-reports", tag = "intake",
    summary = "A health report given at the door",
    description = "By a grid worker for a household in scope: every member normal in one step, or one entry per member.",
    params(("id" = Uuid, Path, description = "Household id")),
    request_body = StaffHealthBody,
    responses(
        (status = 201, description = "Stored", body = Receipt),
        (status = 200, description = "A replay (same `idempotency_key`)", body = Receipt),
        (status = 403, description = "The role may not do this", body = crate::error::ErrorBody),
        (status = 404, description = "No such household in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody),
        (status = 429, description = "Too many attempts: wait `Retry-After` seconds", body = crate::error::ErrorBody, headers(("retry-after" = u64))),
        (status = 503, description = "The intake queue is full: retry after `Retry-After` seconds with the same body", body = crate::error::ErrorBody, headers(("retry-after" = u64))),
    )
)]
async fn staff_health_report(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<StaffHealthBody>,
) -> ApiResult<Response> {
    let id = parse_id(&id, lang)?;
    let form = match (body.whole_household_normal, body.entries) {
        (true, None) => StaffHealthForm::WholeHouseholdNormal,
        (false, Some(entries)) => {
            StaffHealthForm::Entries(entries.into_iter().map(EntryBody::form).collect())
        }
        (true, Some(_)) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "intake.normal_or_entries",
                lang,
            )
            .with_field("entries"));
        }
        (false, None) => {
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "field.required", lang)
                .with_field("entries"));
        }
    };
    let done = state.service.staff_health_report(&actor, id, form, &body.idempotency_key).await;
    done.map(receipt).map_err(service_error(lang))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UnreportedQuery {
    /// The `next_after` of the page before.
    after: Option<Uuid>,
    /// Residents a page (0: the default).
    #[serde(default)]
    #[param(required = false)]
    limit: u32,
}

#[utoipa::path(
    get, path = "/api/v1/grids/{id}/unreported", tag = "intake",
    summary = "Who in a grid has not reported today",
    params(("id" = Uuid, Path, description = "Grid id"), UnreportedQuery),
    responses((status = 200, description = "The grid's share reported today and a page of residents without a report (masked)", body = epigrid_service::intake::UnreportedPage),
        (status = 403, description = "The role may not do this", body = crate::error::ErrorBody),
        (status = 404, description = "No such grid in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody))
)]
async fn unreported(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<UnreportedQuery>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id, lang)?;
    let page = state
        .service
        .unreported_today(&actor, id, query.after, query.limit)
        .await
        .map_err(service_error(lang))?;
    Ok(Json(json!(page)))
}

#[utoipa::path(
    get, path = "/api/v1/intake/reporting", tag = "intake",
    summary = "Today's reporting per grid in scope",
    responses((status = 200, description = "Per grid", body = crate::openapi::ReportingAnswer),
        (status = 403, description = "The role may not do this", body = crate::error::ErrorBody))
)]
async fn reporting(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
) -> ApiResult<Json<Value>> {
    let grids = state.service.reporting_by_grid(&actor).await.map_err(service_error(lang))?;
    Ok(Json(json!({ "day": state.service.today(), "grids": grids })))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answered(reference: &str, replayed: bool) -> (StatusCode, Value) {
        answered_with(Receipt { reference: reference.into(), replayed, follow_up: None }).await
    }

    async fn answered_with(given: Receipt) -> (StatusCode, Value) {
        let response = receipt(given);
        let status = response.status();
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_receipt_is_the_same_json_built_by_hand_or_by_serde() {
        let (status, body) = answered("JK-20261129-7K3F9QXA", false).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(body, json!({ "reference": "JK-20261129-7K3F9QXA", "replayed": false }));
        let (status, body) = answered("JK-20261129-7K3F9QXA", true).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({ "reference": "JK-20261129-7K3F9QXA", "replayed": true }));
        // A reference that needs escaping (none this server makes) goes
        // through serde and still reads back as itself.
        let odd = "say \"hi\" \\ 回执";
        let (_, body) = answered(odd, false).await;
        assert_eq!(body, json!({ "reference": odd, "replayed": false }));
        // A follow-up goes through serde too.
        let due_by = "2026-11-29T09:30:00Z".parse().unwrap();
        let category = "fever_follow_up".to_owned();
        let follow_up = Some(epigrid_service::intake::FollowUp { category, due_by: Some(due_by) });
        let reference = "JK-20261129-7K3F9QXA".to_owned();
        let (_, body) = answered_with(Receipt { reference, replayed: false, follow_up }).await;
        assert_eq!(
            body,
            json!({ "reference": "JK-20261129-7K3F9QXA", "replayed": false,
                    "follow_up": { "category": "fever_follow_up", "due_by": "2026-11-29T09:30:00Z" } })
        );
    }
}
