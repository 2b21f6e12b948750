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
use epigrid_service::tasks::{EvaluationRow, TaskDetail, TaskView};
use epigrid_service::views::{AreaView, HouseholdView, Page, ResidentView, UserView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
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

/// A list answer: `{"items": […]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

impl<T> Items<T> {
    fn of(items: Vec<T>) -> Json<Self> {
        Json(Self { items })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct LoginAnswer {
    user: UserView,
    /// Send as `X-CSRF-Token` with every state-changing call made with the
    /// session cookie.
    csrf_token: String,
}

#[utoipa::path(
    post, path = "/api/v1/login", tag = "session",
    summary = "Log in",
    description = "Checks the password and starts a session: the answer sets the `epigrid_session` cookie (HttpOnly) and carries the CSRF token to send as `X-CSRF-Token` with every state-changing call made with that cookie. The cookie's value also works as `Authorization: Bearer`. Failed logins are rate-limited per account and per address.",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginAnswer,
            headers(("set-cookie" = String, description = "`epigrid_session=…; Path=/; HttpOnly; SameSite=Lax`"))),
        (status = 401, description = "Wrong username or password, or the account is disabled", body = crate::error::ErrorBody),
        (status = 403, description = "`Origin` names another host", body = crate::error::ErrorBody),
        (status = 429, description = "Too many failed logins: wait `Retry-After` seconds", body = crate::error::ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait"))),
    )
)]
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
    let mut response = Json(LoginAnswer { user: login.user, csrf_token }).into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie(&state, &login.token));
    Ok(response)
}

#[utoipa::path(
    post, path = "/api/v1/logout", tag = "session",
    summary = "Log out",
    description = "Ends the session (if any) and clears the cookie. Without a session it still answers 204.",
    responses((status = 204, description = "Logged out; the cookie is cleared"))
)]
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

#[utoipa::path(
    get, path = "/api/v1/me", tag = "session",
    summary = "Who is logged in",
    description = "The account, its role and scope, and the session's CSRF token (for scripts that keep the cookie but not the token).",
    responses((status = 200, description = "The caller", body = MeAnswer))
)]
async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
    CurrentActor(actor): CurrentActor,
) -> Json<MeAnswer> {
    let csrf_token = session_token(&headers).map(|token| crate::csrf::csrf_token(&state, &token));
    Json(MeAnswer { username: actor.username, role: actor.role, scope: actor.scope, csrf_token })
}

#[derive(Debug, Serialize, ToSchema)]
struct MeAnswer {
    username: String,
    role: epigrid_domain::Role,
    /// `null` for an account without a scope.
    scope: Option<epigrid_domain::Scope>,
    /// The session's CSRF token (the same for a bearer token's session).
    csrf_token: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/stats", tag = "registry",
    summary = "Counts of areas, households and residents in scope",
    responses((status = 200, description = "Counts", body = epigrid_service::views::Stats))
)]
async fn stats(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(state.service.stats(&actor).await.map_err(service_error(lang))?))
}

#[utoipa::path(
    get, path = "/api/v1/areas", tag = "registry",
    summary = "List areas",
    description = "Areas in the caller's scope, optionally the children of one parent or of one kind, a page at a time (keyset by id).",
    params(AreaListing),
    responses((status = 200, description = "A page of areas", body = Page<AreaView>),
        (status = 404, description = "No such parent area in the caller's scope", body = crate::error::ErrorBody))
)]
async fn list_areas(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    QueryParams(listing): QueryParams<AreaListing>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(state.service.list_areas(&actor, listing).await.map_err(service_error(lang))?))
}

#[utoipa::path(
    post, path = "/api/v1/areas", tag = "registry",
    summary = "Create an area",
    description = "A community, grid, building or unit under a parent in the caller's scope. Codes follow the national format of the level.",
    request_body = NewArea,
    responses((status = 201, description = "Created", body = AreaView), (status = 403, description = "The role may not do this", body = crate::error::ErrorBody), (status = 404, description = "No such parent in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody), (status = 409, description = "Conflicts with an existing record (e.g. a code or identity document already used)", body = crate::error::ErrorBody))
)]
async fn create_area(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    JsonBody(new): JsonBody<NewArea>,
) -> ApiResult<impl IntoResponse> {
    let area = state.service.create_area(&actor, new).await.map_err(service_error(lang))?;
    Ok((StatusCode::CREATED, Json(area)))
}

#[utoipa::path(
    get, path = "/api/v1/areas/{id}", tag = "registry",
    summary = "One area",
    params(("id" = Uuid, Path, description = "Area id")),
    responses((status = 200, description = "The area", body = AreaView), (status = 404, description = "No such area in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody))
)]
async fn get_area(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id, lang)?;
    Ok(Json(state.service.get_area(&actor, id).await.map_err(service_error(lang))?))
}

#[utoipa::path(
    patch, path = "/api/v1/areas/{id}", tag = "registry",
    summary = "Change an area",
    description = "Absent fields stay as they are; `null` clears `boundary` or `address`.",
    params(("id" = Uuid, Path, description = "Area id")),
    request_body = AreaChanges,
    responses((status = 200, description = "The changed area", body = AreaView), (status = 403, description = "The role may not do this", body = crate::error::ErrorBody), (status = 404, description = "No such area in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody), (status = 409, description = "Conflicts with an existing record (e.g. a code or identity document already used)", body = crate::error::ErrorBody))
)]
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

#[utoipa::path(
    get, path = "/api/v1/areas/{id}/staff", tag = "registry",
    summary = "Accounts scoped to an area",
    params(("id" = Uuid, Path, description = "Area id")),
    responses((status = 200, description = "The accounts", body = Items<UserView>), (status = 403, description = "The role may not do this", body = crate::error::ErrorBody), (status = 404, description = "No such area in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody))
)]
async fn area_staff(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id, lang)?;
    let staff = state.service.area_staff(&actor, id).await.map_err(service_error(lang))?;
    Ok(Items::of(staff))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct HouseholdListing {
    /// Only households under this area.
    area_id: Option<Uuid>,
    /// The `next_cursor` of the page before.
    cursor: Option<Uuid>,
    /// 1–200, default 50.
    limit: Option<u32>,
}

#[utoipa::path(
    get, path = "/api/v1/households", tag = "registry",
    summary = "List households",
    params(HouseholdListing),
    responses((status = 200, description = "A page of households", body = Page<HouseholdView>),
        (status = 404, description = "No such area in the caller's scope", body = crate::error::ErrorBody))
)]
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

#[utoipa::path(
    post, path = "/api/v1/households", tag = "registry",
    summary = "Create a household",
    request_body = NewHousehold,
    responses((status = 201, description = "Created", body = HouseholdView), (status = 403, description = "The role may not do this", body = crate::error::ErrorBody), (status = 404, description = "No such unit in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody), (status = 409, description = "Conflicts with an existing record (e.g. a code or identity document already used)", body = crate::error::ErrorBody))
)]
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

#[utoipa::path(
    get, path = "/api/v1/households/{id}", tag = "registry",
    summary = "One household",
    params(("id" = Uuid, Path, description = "Household id")),
    responses((status = 200, description = "The household", body = HouseholdView), (status = 404, description = "No such household in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody))
)]
async fn get_household(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id, lang)?;
    Ok(Json(state.service.get_household(&actor, id).await.map_err(service_error(lang))?))
}

#[utoipa::path(
    get, path = "/api/v1/households/{id}/members", tag = "registry",
    summary = "The residents of a household",
    params(("id" = Uuid, Path, description = "Household id")),
    responses((status = 200, description = "Its residents, masked", body = Items<ResidentView>), (status = 404, description = "No such household in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody))
)]
async fn household_members(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id, lang)?;
    let members = state.service.household_members(&actor, id).await.map_err(service_error(lang))?;
    Ok(Items::of(members))
}

#[utoipa::path(
    get, path = "/api/v1/residents", tag = "registry",
    summary = "Search residents",
    description = "By name prefix, tag, area or household. Prefer `POST /api/v1/residents/search` for ID numbers and phones, which should not travel in URLs.",
    params(ResidentSearch),
    responses((status = 200, description = "A page of residents, masked", body = Page<ResidentView>), (status = 404, description = "No such area or household in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody))
)]
async fn search_residents_get(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    QueryParams(search): QueryParams<ResidentSearch>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(state.service.search_residents(&actor, search).await.map_err(service_error(lang))?))
}

#[utoipa::path(
    post, path = "/api/v1/residents/search", tag = "registry",
    summary = "Search residents (criteria in the body)",
    description = "As `GET /api/v1/residents`, with the criteria in the body so that ID numbers and phones stay out of URLs and access logs.",
    request_body = ResidentSearch,
    responses((status = 200, description = "A page of residents, masked", body = Page<ResidentView>), (status = 404, description = "No such area or household in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody))
)]
async fn search_residents_post(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    JsonBody(search): JsonBody<ResidentSearch>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(state.service.search_residents(&actor, search).await.map_err(service_error(lang))?))
}

#[utoipa::path(
    post, path = "/api/v1/residents", tag = "registry",
    summary = "Register a resident",
    description = "Sex and birth date may be left out when the identity document carries them; when both are given they must agree with it.",
    request_body = NewResident,
    responses((status = 201, description = "Created (masked)", body = ResidentView), (status = 403, description = "The role may not do this", body = crate::error::ErrorBody), (status = 404, description = "No such household in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody), (status = 409, description = "Conflicts with an existing record (e.g. a code or identity document already used)", body = crate::error::ErrorBody))
)]
async fn create_resident(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    JsonBody(new): JsonBody<NewResident>,
) -> ApiResult<impl IntoResponse> {
    let resident = state.service.create_resident(&actor, new).await.map_err(service_error(lang))?;
    Ok((StatusCode::CREATED, Json(resident)))
}

#[utoipa::path(
    get, path = "/api/v1/residents/{id}", tag = "registry",
    summary = "One resident (masked)",
    params(("id" = Uuid, Path, description = "Resident id")),
    responses((status = 200, description = "The resident, ID number and phone masked", body = ResidentView), (status = 404, description = "No such resident in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody))
)]
async fn get_resident(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id, lang)?;
    Ok(Json(state.service.get_resident(&actor, id).await.map_err(service_error(lang))?))
}

#[utoipa::path(
    patch, path = "/api/v1/residents/{id}", tag = "registry",
    summary = "Change a resident",
    description = "Absent fields stay as they are; `null` clears an optional one.",
    params(("id" = Uuid, Path, description = "Resident id")),
    request_body = ResidentChanges,
    responses((status = 200, description = "The changed resident (masked)", body = ResidentView), (status = 403, description = "The role may not do this", body = crate::error::ErrorBody), (status = 404, description = "No such resident or household in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody), (status = 409, description = "Conflicts with an existing record (e.g. a code or identity document already used)", body = crate::error::ErrorBody))
)]
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

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UserListing {
    /// The `next_cursor` of the page before: a username.
    cursor: Option<String>,
    limit: Option<u32>,
}

#[utoipa::path(
    get, path = "/api/v1/users", tag = "accounts",
    summary = "List accounts",
    params(UserListing),
    responses((status = 200, description = "A page of accounts", body = Page<UserView>), (status = 403, description = "The role may not do this", body = crate::error::ErrorBody))
)]
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

#[utoipa::path(
    post, path = "/api/v1/users", tag = "accounts",
    summary = "Create an account",
    description = "Within the caller's own scope, with a role that may be scoped to that level.",
    request_body = NewUser,
    responses((status = 201, description = "Created", body = UserView), (status = 403, description = "The role may not do this", body = crate::error::ErrorBody), (status = 404, description = "No such scope area in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody), (status = 409, description = "Conflicts with an existing record (e.g. a code or identity document already used)", body = crate::error::ErrorBody))
)]
async fn create_user(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    JsonBody(new): JsonBody<NewUser>,
) -> ApiResult<impl IntoResponse> {
    let user = state.service.create_user(&actor, new).await.map_err(service_error(lang))?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(
    get, path = "/api/v1/users/{id}", tag = "accounts",
    summary = "One account",
    params(("id" = Uuid, Path, description = "Account id")),
    responses((status = 200, description = "The account", body = UserView), (status = 403, description = "The role may not do this", body = crate::error::ErrorBody), (status = 404, description = "No such account in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody))
)]
async fn get_user(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id, lang)?;
    Ok(Json(state.service.get_user(&actor, id).await.map_err(service_error(lang))?))
}

#[utoipa::path(
    patch, path = "/api/v1/users/{id}", tag = "accounts",
    summary = "Change an account",
    description = "A new password, a disabled account or `revoke_sessions` ends the account's sessions.",
    params(("id" = Uuid, Path, description = "Account id")),
    request_body = UserChanges,
    responses((status = 200, description = "The changed account", body = UserView), (status = 403, description = "The role may not do this", body = crate::error::ErrorBody), (status = 404, description = "No such account or scope area in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody), (status = 409, description = "Conflicts with an existing record (e.g. a code or identity document already used)", body = crate::error::ErrorBody))
)]
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UnmaskRequest {
    field: UnmaskField,
    reason: UnmaskReason,
}

#[derive(Debug, Serialize, ToSchema)]
struct UnmaskAnswer {
    field: UnmaskField,
    value: Option<String>,
}

/// The clear value of one field. Never cached: the response says so, and the
/// value is in this one response only.
#[utoipa::path(
    post, path = "/api/v1/residents/{id}/unmask", tag = "registry",
    summary = "One field of a resident in clear",
    description = "For roles allowed to unmask, with a reason from a fixed list. Audited before the value is returned; sent `Cache-Control: no-store`.",
    params(("id" = Uuid, Path, description = "Resident id")),
    request_body = UnmaskRequest,
    responses((status = 200, description = "The clear value (`null` when the field is empty)", body = UnmaskAnswer), (status = 403, description = "The role may not do this", body = crate::error::ErrorBody), (status = 404, description = "No such resident in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody))
)]
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
    let mut response = Json(UnmaskAnswer { field: request.field, value }).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditListing {
    /// An account's username.
    actor: Option<String>,
    /// e.g. `resident.update`, `login.failed`.
    action: Option<String>,
    target_id: Option<Uuid>,
    /// The last id of the page before.
    before: Option<Uuid>,
    /// 1–200, default 50.
    limit: Option<u32>,
}

/// One audit entry. `detail` holds field names and reasons, never values.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    id: Uuid,
    at: epigrid_service::chrono::DateTime<epigrid_service::chrono::Utc>,
    actor: String,
    role: Option<epigrid_domain::Role>,
    action: String,
    target_kind: Option<String>,
    target_id: Option<Uuid>,
    client_addr: Option<String>,
    /// `ok`, `denied` or `failed`.
    outcome: String,
    detail: serde_json::Value,
}

#[utoipa::path(
    get, path = "/api/v1/audit", tag = "accounts",
    summary = "The audit log",
    description = "Newest first, within the caller's scope, a page at a time (`before` = the last id of the page before).",
    params(AuditListing),
    responses((status = 200, description = "Entries", body = Items<AuditEntry>), (status = 403, description = "The role may not do this", body = crate::error::ErrorBody))
)]
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
    let items = entries
        .into_iter()
        .map(|e| AuditEntry {
            detail: serde_json::from_str(&e.detail).unwrap_or_default(),
            id: e.id,
            at: e.at,
            actor: e.actor_name,
            role: e.actor_role,
            action: e.action,
            target_kind: e.target_kind,
            target_id: e.target_id,
            client_addr: e.client_addr,
            outcome: e.outcome,
        })
        .collect();
    Ok(Items::of(items))
}

// ---- tasks (the closed loop) ---------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReportTaskRequest {
    /// A category code of the deployment's task catalogue.
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

#[utoipa::path(
    post, path = "/api/v1/tasks", tag = "tasks",
    summary = "Report an event (a new task)",
    description = "The subject's place gives the task's grid. A retry with the same idempotency key (body or `Idempotency-Key` header) returns the first task.",
    params(("idempotency-key" = Option<String>, Header, description = "Used when the body has no `idempotency_key`")),
    request_body = ReportTaskRequest,
    responses((status = 201, description = "The task", body = TaskView), (status = 403, description = "The role may not do this", body = crate::error::ErrorBody), (status = 404, description = "No such subject in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody), (status = 409, description = "Conflicts with an existing record (e.g. a code or identity document already used)", body = crate::error::ErrorBody))
)]
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

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
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

#[utoipa::path(
    get, path = "/api/v1/tasks", tag = "tasks",
    summary = "The task board",
    description = "Tasks in scope, filtered, a page at a time (keyset by id).",
    params(BoardListing),
    responses((status = 200, description = "A page of tasks", body = TaskBoardPage), (status = 403, description = "The role may not do this", body = crate::error::ErrorBody))
)]
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
    Ok(Json(TaskBoardPage { items, next_cursor }))
}

#[derive(Debug, Serialize, ToSchema)]
struct TaskBoardPage {
    items: Vec<TaskView>,
    /// Pass back as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<Uuid>,
}

#[utoipa::path(
    get, path = "/api/v1/tasks/{id}", tag = "tasks",
    summary = "One task with its history",
    params(("id" = Uuid, Path, description = "Task id")),
    responses((status = 200, description = "The task", body = TaskDetail), (status = 403, description = "The role may not do this", body = crate::error::ErrorBody), (status = 404, description = "No such task in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody))
)]
async fn get_task(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id, lang)?;
    Ok(Json(state.service.task_detail(&actor, id).await.map_err(service_error(lang))?))
}

#[utoipa::path(
    get, path = "/api/v1/my-tasks", tag = "tasks",
    summary = "The caller's open tasks",
    responses((status = 200, description = "Tasks assigned to the caller", body = Items<TaskView>), (status = 403, description = "The role may not do this", body = crate::error::ErrorBody))
)]
async fn my_tasks(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
) -> ApiResult<impl IntoResponse> {
    let items = state.service.my_tasks(&actor).await.map_err(service_error(lang))?;
    Ok(Items::of(items))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct EvaluationQuery {
    from: epigrid_service::chrono::DateTime<epigrid_service::chrono::Utc>,
    to: epigrid_service::chrono::DateTime<epigrid_service::chrono::Utc>,
    group_by: Option<epigrid_domain::tasks::GroupBy>,
}

#[utoipa::path(
    get, path = "/api/v1/evaluation", tag = "tasks",
    summary = "Evaluation per worker, grid or community",
    params(EvaluationQuery),
    responses((status = 200, description = "Figures per group", body = EvaluationAnswer), (status = 403, description = "The role may not do this", body = crate::error::ErrorBody))
)]
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
    Ok(Json(EvaluationAnswer { group_by, rows }))
}

#[derive(Debug, Serialize, ToSchema)]
struct EvaluationAnswer {
    group_by: epigrid_domain::tasks::GroupBy,
    rows: Vec<EvaluationRow>,
}
