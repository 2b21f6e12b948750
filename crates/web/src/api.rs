//! The JSON API under `/api/v1`. Each handler extracts, calls the service,
//! and renders: the rules, including scope, live in the service.

use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use epigrid_service::accounts::{NewUser, UserChanges};
use epigrid_service::privacy::{UnmaskField, UnmaskReason};
use epigrid_service::registry::{
    AreaChanges, AreaListing, NewArea, NewHousehold, NewResident, ResidentChanges, ResidentSearch,
};
use serde::Deserialize;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{
    CurrentActor, JsonBody, QueryParams, clear_session_cookie, session_cookie, session_token,
};
use crate::i18n::Lang;

type ApiResult<T> = Result<T, ApiError>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/me", get(me))
        .route("/stats", get(stats))
        .route("/areas", get(list_areas).post(create_area))
        .route("/areas/{id}", get(get_area).patch(update_area))
        .route("/areas/{id}/staff", get(area_staff))
        .route("/households", get(list_households).post(create_household))
        .route("/households/{id}", get(get_household))
        .route("/households/{id}/members", get(household_members))
        .route("/residents", get(search_residents_get).post(create_resident))
        // POST keeps ID numbers and phones out of URLs, and so out of proxy
        // and access logs.
        .route("/residents/search", post(search_residents_post))
        .route("/residents/{id}", get(get_resident).patch(update_resident))
        .route("/residents/{id}/unmask", post(unmask_resident))
        .route("/audit", get(audit_log))
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(get_user).patch(update_user))
        .route("/tasks", get(task_board).post(report_task))
        .route("/tasks/{id}", get(get_task))
        // Steps and visits may carry photos: these two read larger bodies
        // (see `field_api::PhotoJson`).
        .route(
            "/tasks/{id}/transitions",
            post(crate::field_api::transition_task).layer(DefaultBodyLimit::disable()),
        )
        .route("/tasks/{id}/photos", get(crate::field_api::task_photos))
        .route("/tasks/{id}/contact", post(crate::field_api::task_contact))
        .route("/visits", post(crate::field_api::record_visit).layer(DefaultBodyLimit::disable()))
        .route("/field-tasks", get(crate::field_api::field_tasks))
        .route("/my-tasks", get(my_tasks))
        .route("/evaluation", get(task_evaluation))
        // Masked exports are GETs; the unmasked one is a POST with its
        // reason in the body (CSRF-checked, out of access logs).
        .route(
            "/exports/residents",
            get(crate::pages::exports::api_residents)
                .post(crate::pages::exports::api_residents_unmasked),
        )
        .route("/exports/tasks", get(crate::pages::exports::api_tasks))
        .route("/exports/daily-report", get(crate::pages::exports::api_daily_report))
        .fallback(not_found)
}

async fn not_found(lang: Lang) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", lang)
}

/// A path id that is not a UUID is as unknown as one that does not exist.
fn parse_id(text: &str, lang: Lang) -> ApiResult<Uuid> {
    Uuid::try_parse(text).map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", lang))
}

fn service_error(lang: Lang) -> impl Fn(epigrid_service::ServiceError) -> ApiError {
    move |e| ApiError::from_service(e, lang)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    lang: Lang,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    JsonBody(request): JsonBody<LoginRequest>,
) -> ApiResult<Response> {
    let login = state
        .service
        .login(&request.username, &request.password, Some(peer.ip().to_string()))
        .await
        .map_err(service_error(lang))?;
    // Scripts send `csrf_token` back in `X-CSRF-Token` with every
    // state-changing call made with the cookie.
    let csrf_token = crate::csrf::csrf_token(&state, &login.token);
    let mut response =
        Json(serde_json::json!({ "user": login.user, "csrf_token": csrf_token })).into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie(&state, &login.token));
    Ok(response)
}

async fn logout(
    State(state): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(token) = session_token(&headers) {
        let actor = state.service.authenticate(&token).await.ok();
        state.service.logout(actor.as_ref(), &token).await.map_err(service_error(lang))?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, clear_session_cookie());
    Ok(response)
}

async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
    CurrentActor(actor): CurrentActor,
) -> Json<serde_json::Value> {
    let csrf_token = session_token(&headers).map(|token| crate::csrf::csrf_token(&state, &token));
    Json(serde_json::json!({
        "username": actor.username,
        "role": actor.role,
        "scope": actor.scope,
        "csrf_token": csrf_token,
    }))
}

async fn stats(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(state.service.stats(&actor).await.map_err(service_error(lang))?))
}

async fn list_areas(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    QueryParams(listing): QueryParams<AreaListing>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(state.service.list_areas(&actor, listing).await.map_err(service_error(lang))?))
}

async fn create_area(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    JsonBody(new): JsonBody<NewArea>,
) -> ApiResult<impl IntoResponse> {
    let area = state.service.create_area(&actor, new).await.map_err(service_error(lang))?;
    Ok((StatusCode::CREATED, Json(area)))
}

async fn get_area(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id, lang)?;
    Ok(Json(state.service.get_area(&actor, id).await.map_err(service_error(lang))?))
}

async fn update_area(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
    JsonBody(changes): JsonBody<AreaChanges>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id, lang)?;
    Ok(Json(state.service.update_area(&actor, id, changes).await.map_err(service_error(lang))?))
}

async fn area_staff(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id, lang)?;
    let staff = state.service.area_staff(&actor, id).await.map_err(service_error(lang))?;
    Ok(Json(serde_json::json!({ "items": staff })))
}

#[derive(Debug, Default, Deserialize)]
struct HouseholdListing {
    area_id: Option<Uuid>,
    cursor: Option<Uuid>,
    limit: Option<u32>,
}

async fn list_households(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    QueryParams(listing): QueryParams<HouseholdListing>,
) -> ApiResult<impl IntoResponse> {
    let page = state
        .service
        .list_households(&actor, listing.area_id, listing.cursor, listing.limit)
        .await
        .map_err(service_error(lang))?;
    Ok(Json(page))
}

async fn create_household(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    JsonBody(new): JsonBody<NewHousehold>,
) -> ApiResult<impl IntoResponse> {
    let household =
        state.service.create_household(&actor, new).await.map_err(service_error(lang))?;
    Ok((StatusCode::CREATED, Json(household)))
}

async fn get_household(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id, lang)?;
    Ok(Json(state.service.get_household(&actor, id).await.map_err(service_error(lang))?))
}

async fn household_members(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id, lang)?;
    let members = state.service.household_members(&actor, id).await.map_err(service_error(lang))?;
    Ok(Json(serde_json::json!({ "items": members })))
}

async fn search_residents_get(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    QueryParams(search): QueryParams<ResidentSearch>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(state.service.search_residents(&actor, search).await.map_err(service_error(lang))?))
}

async fn search_residents_post(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    JsonBody(search): JsonBody<ResidentSearch>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(state.service.search_residents(&actor, search).await.map_err(service_error(lang))?))
}

async fn create_resident(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    JsonBody(new): JsonBody<NewResident>,
) -> ApiResult<impl IntoResponse> {
    let resident = state.service.create_resident(&actor, new).await.map_err(service_error(lang))?;
    Ok((StatusCode::CREATED, Json(resident)))
}

async fn get_resident(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id, lang)?;
    Ok(Json(state.service.get_resident(&actor, id).await.map_err(service_error(lang))?))
}

async fn update_resident(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
    JsonBody(changes): JsonBody<ResidentChanges>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id, lang)?;
    Ok(Json(state.service.update_resident(&actor, id, changes).await.map_err(service_error(lang))?))
}

#[derive(Debug, Default, Deserialize)]
struct UserListing {
    /// The `next_cursor` of the page before: a username.
    cursor: Option<String>,
    limit: Option<u32>,
}

async fn list_users(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    QueryParams(listing): QueryParams<UserListing>,
) -> ApiResult<impl IntoResponse> {
    let page = state
        .service
        .list_users(&actor, listing.cursor.filter(|c| !c.is_empty()), listing.limit.unwrap_or(50))
        .await
        .map_err(service_error(lang))?;
    Ok(Json(page))
}

async fn create_user(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    JsonBody(new): JsonBody<NewUser>,
) -> ApiResult<impl IntoResponse> {
    let user = state.service.create_user(&actor, new).await.map_err(service_error(lang))?;
    Ok((StatusCode::CREATED, Json(user)))
}

async fn get_user(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id, lang)?;
    Ok(Json(state.service.get_user(&actor, id).await.map_err(service_error(lang))?))
}

async fn update_user(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
    JsonBody(changes): JsonBody<UserChanges>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id, lang)?;
    Ok(Json(state.service.update_user(&actor, id, changes).await.map_err(service_error(lang))?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnmaskRequest {
    field: UnmaskField,
    reason: UnmaskReason,
}

/// The clear value of one field. Never cached: the response says so, and the
/// value is in this one response only.
async fn unmask_resident(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<UnmaskRequest>,
) -> ApiResult<Response> {
    let id = parse_id(&id, lang)?;
    let value = state
        .service
        .unmask_resident(&actor, id, request.field, request.reason)
        .await
        .map_err(service_error(lang))?;
    let mut response =
        Json(serde_json::json!({ "field": request.field, "value": value })).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Debug, Default, Deserialize)]
struct AuditListing {
    actor: Option<String>,
    action: Option<String>,
    target_id: Option<Uuid>,
    before: Option<Uuid>,
    limit: Option<u32>,
}

async fn audit_log(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    QueryParams(listing): QueryParams<AuditListing>,
) -> ApiResult<impl IntoResponse> {
    let entries = state
        .service
        .audit_log(
            &actor,
            epigrid_store::AuditQuery {
                actor_name: listing.actor,
                action: listing.action,
                target_id: listing.target_id,
                before: listing.before,
                limit: listing.limit.unwrap_or(50).clamp(1, 200),
                ..Default::default()
            },
        )
        .await
        .map_err(service_error(lang))?;
    let items: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "id": e.id, "at": e.at, "actor": e.actor_name, "role": e.actor_role,
                "action": e.action, "target_kind": e.target_kind, "target_id": e.target_id,
                "client_addr": e.client_addr, "outcome": e.outcome,
                "detail": serde_json::from_str::<serde_json::Value>(&e.detail).unwrap_or_default(),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "items": items })))
}

// ---- tasks (the closed loop) ---------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportTaskRequest {
    category: String,
    priority: Option<epigrid_domain::tasks::Priority>,
    subject: epigrid_domain::tasks::Subject,
    note: Option<String>,
    idempotency_key: Option<String>,
}

/// The `Idempotency-Key` header, when the body names no key.
fn idempotency_header(headers: &HeaderMap) -> Option<String> {
    headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn report_task(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    headers: HeaderMap,
    JsonBody(request): JsonBody<ReportTaskRequest>,
) -> ApiResult<impl IntoResponse> {
    let event = epigrid_service::tasks::ReportEvent {
        category: request.category,
        priority: request.priority,
        subject: request.subject,
        note: request.note,
        idempotency_key: request.idempotency_key.or_else(|| idempotency_header(&headers)),
    };
    let task = state.service.report_event(&actor, event).await.map_err(service_error(lang))?;
    Ok((StatusCode::CREATED, Json(task)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BoardListing {
    /// Comma-separated states, e.g. `dispatched,in_progress`.
    state: Option<String>,
    category: Option<String>,
    grid: Option<Uuid>,
    overdue: Option<bool>,
    /// The `next_cursor` of the page before: a task id.
    cursor: Option<Uuid>,
    limit: Option<u32>,
}

async fn task_board(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    QueryParams(listing): QueryParams<BoardListing>,
) -> ApiResult<impl IntoResponse> {
    let mut states = Vec::new();
    for name in listing.state.iter().flat_map(|s| s.split(',')).map(str::trim) {
        if name.is_empty() {
            continue;
        }
        let parsed = epigrid_domain::tasks::EventState::parse(name).ok_or_else(|| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "task.unknown_state", lang)
        })?;
        states.push(parsed);
    }
    let limit = listing.limit.unwrap_or(50).clamp(1, 500);
    let filter = epigrid_service::tasks::BoardFilter {
        states,
        category: listing.category.filter(|c| !c.is_empty()),
        grid: listing.grid,
        overdue: listing.overdue.unwrap_or(false),
        after: listing.cursor,
        limit,
    };
    let items = state.service.task_board(&actor, filter).await.map_err(service_error(lang))?;
    let next_cursor = (items.len() == limit as usize).then(|| items.last().map(|t| t.id)).flatten();
    Ok(Json(serde_json::json!({ "items": items, "next_cursor": next_cursor })))
}

async fn get_task(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id, lang)?;
    Ok(Json(state.service.task_detail(&actor, id).await.map_err(service_error(lang))?))
}

async fn my_tasks(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
) -> ApiResult<impl IntoResponse> {
    let items = state.service.my_tasks(&actor).await.map_err(service_error(lang))?;
    Ok(Json(serde_json::json!({ "items": items })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvaluationQuery {
    from: epigrid_service::chrono::DateTime<epigrid_service::chrono::Utc>,
    to: epigrid_service::chrono::DateTime<epigrid_service::chrono::Utc>,
    group_by: Option<epigrid_domain::tasks::GroupBy>,
}

async fn task_evaluation(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    QueryParams(query): QueryParams<EvaluationQuery>,
) -> ApiResult<impl IntoResponse> {
    let group_by = query.group_by.unwrap_or(epigrid_domain::tasks::GroupBy::Worker);
    let rows = state
        .service
        .evaluation(&actor, query.from, query.to, group_by)
        .await
        .map_err(service_error(lang))?;
    Ok(Json(serde_json::json!({ "group_by": group_by, "rows": rows })))
}
