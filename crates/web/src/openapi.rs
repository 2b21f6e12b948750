//! The OpenAPI document of the JSON API, served at `/api/openapi.json`, and
//! the page that shows it (`/api/docs`, in `pages::api_docs`).
//!
//! Each handler carries its own `#[utoipa::path]` and the request and
//! response types derive their schemas, so the document is made from the
//! code it describes. What every operation shares (the security of staff
//! calls, 401 without a session, the CSRF 403 of writes, 400/413/422 of a
//! JSON body, 503 when the store is away) is added here once, by
//! [`Conventions`], rather than repeated on 40 handlers. A test checks that
//! every route of the routers is in the document.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use epigrid_service::intake::GridReporting;
use epigrid_service::selfservice::MemberView;
use serde::Serialize;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, ObjectBuilder, OneOfBuilder, Ref, RefOr, ResponseBuilder, Schema, Type,
};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};
use uuid::Uuid;

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/api/openapi.json";

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "epigrid JSON API",
        description = "The JSON API of epigrid: the registry, accounts, tasks, field work, exports, \
            and the residents' self-service intake. Staff calls take the session of `POST /api/v1/login` \
            (the `epigrid_session` cookie with the `X-CSRF-Token` header on writes, or the same token as \
            `Authorization: Bearer`); self-service calls take a resident pass from \
            `POST /api/v1/public/identify` as `Authorization: Bearer`. Errors answer \
            `{\"error\": {\"code\", \"message\", \"field\"}}` with the message in the caller's language \
            (`Accept-Language` or the `epigrid_lang` cookie). Anything outside the caller's scope is 404.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        crate::api::login,
        crate::api::logout,
        crate::api::me,
        crate::api::stats,
        crate::api::list_areas,
        crate::api::create_area,
        crate::api::get_area,
        crate::api::update_area,
        crate::api::area_staff,
        crate::api::list_households,
        crate::api::create_household,
        crate::api::get_household,
        crate::api::household_members,
        crate::api::search_residents_get,
        crate::api::create_resident,
        crate::api::search_residents_post,
        crate::api::get_resident,
        crate::api::update_resident,
        crate::api::unmask_resident,
        crate::api::audit_log,
        crate::api::list_users,
        crate::api::create_user,
        crate::api::get_user,
        crate::api::update_user,
        crate::api::task_board,
        crate::api::report_task,
        crate::api::get_task,
        crate::field_api::transition_task,
        crate::field_api::task_photos,
        crate::field_api::task_contact,
        crate::field_api::record_visit,
        crate::field_api::field_tasks,
        crate::api::my_tasks,
        crate::api::task_evaluation,
        crate::pages::exports::api_residents,
        crate::pages::exports::api_residents_unmasked,
        crate::pages::exports::api_tasks,
        crate::pages::exports::api_daily_report,
        crate::public_api::options,
        crate::public_api::building,
        crate::public_api::identify,
        crate::public_api::household,
        crate::public_api::health_report,
        crate::public_api::arrival,
        crate::public_api::help_request,
        crate::public_api::volunteer_offer,
        crate::public_api::staff_health_report,
        crate::public_api::unreported,
        crate::public_api::reporting,
        crate::healthz,
        crate::readyz,
        crate::metrics,
        openapi_json,
    ),
    modifiers(&Conventions),
    tags(
        (name = "session", description = "Logging in and out."),
        (name = "registry", description = "Areas, households and residents, within the caller's scope; ID numbers and phones masked."),
        (name = "accounts", description = "Accounts and the audit log."),
        (name = "tasks", description = "The closed loop of events and tasks, and field work from the phone."),
        (name = "intake", description = "Health reports given by staff and who has not reported today."),
        (name = "exports", description = "Residents, tasks and the daily report as files."),
        (name = "public", description = "Residents' self-service, reached by a building's QR code: no account."),
        (name = "operations", description = "Probes, the operations figures and this document."),
    )
)]
pub struct ApiDoc;

/// The document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(ApiDoc::openapi)
}

fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| document().to_pretty_json().expect("the OpenAPI document serialises"))
}

/// The OpenAPI document of this API.
#[utoipa::path(
    get, path = "/api/openapi.json", tag = "operations",
    summary = "This document",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub async fn openapi_json() -> Response {
    let mut response = document_json().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

// ---- schemas of answers built in place ------------------------------------------

/// A file download (`.xlsx` or `.csv`).
#[derive(Debug)]
pub struct Download;

impl PartialSchema for Download {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .into()
    }
}

impl ToSchema for Download {}

/// A temperature in °C, as a number or as typed.
#[derive(Debug)]
pub struct Temperature;

impl PartialSchema for Temperature {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new().schema_type(Type::Number).examples([serde_json::json!(37.5)]),
            )
            .item(ObjectBuilder::new().schema_type(Type::String).examples(["36.6"]))
            .description(Some(
                "°C, as a number or as typed (the domain names what is wrong with it)",
            ))
            .into()
    }
}

impl ToSchema for Temperature {}

/// The codes each self-service form accepts (`GET /api/v1/public/options`).
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicOptions {
    pub symptoms: Vec<String>,
    pub whereabouts: Vec<String>,
    pub travel: Vec<String>,
    pub help_kinds: Vec<String>,
    pub urgency: Vec<String>,
    pub skills: Vec<String>,
    pub availability: Vec<String>,
    /// Regions an arrival may come from.
    pub regions: Vec<Region>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Region {
    pub code: String,
    pub name: String,
}

/// The household of a resident pass (`GET /api/v1/public/household`).
#[derive(Debug, Serialize, ToSchema)]
pub struct PassHousehold {
    pub household_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub members: Vec<MemberView>,
    /// The members with a health entry today (by anyone: themselves, a
    /// relative, a grid worker at the door).
    pub reported_today: Vec<Uuid>,
    /// The household's own requests and flagged reports of the last 14
    /// days, newest first, with how far each has got.
    pub requests: Vec<epigrid_service::selfservice::HouseholdRequest>,
}

/// Today's reporting per grid (`GET /api/v1/intake/reporting`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportingAnswer {
    pub day: NaiveDate,
    pub grids: Vec<GridReporting>,
}

// ---- what every operation shares ---------------------------------------------------

/// Paths that need no account at all. The resident-pass calls say so on
/// their own handlers.
fn is_anonymous(path: &str) -> bool {
    matches!(path, "/api/v1/login" | "/healthz" | "/readyz" | DOCUMENT_PATH)
        || path.starts_with("/api/v1/public/")
}

/// Security schemes, the staff security of each operation that declares
/// none, and the error answers every operation of a kind can give.
#[derive(Debug)]
pub struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "epigrid_session",
                "The session cookie set by `POST /api/v1/login` (HttpOnly, SameSite=Lax).",
            ))),
        );
        components.add_security_scheme(
            "csrf_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "The session's CSRF token (`csrf_token` of the login and `/api/v1/me` answers). \
                 Required with the session cookie on every call other than GET, HEAD and OPTIONS; \
                 without it (or with an `Origin` of another host) the answer is 403 `csrf.invalid`.",
            ))),
        );
        components.add_security_scheme(
            "session_bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The session token as `Authorization: Bearer`, for scripts. No CSRF token \
                         is needed: a browser never adds this header by itself.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "resident_pass",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A resident pass from `POST /api/v1/public/identify`, for the self-service \
                         calls of one household until it expires.",
                    ))
                    .build(),
            ),
        );

        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The `metrics_token` setting (`EPIGRID_METRICS_TOKEN`), for the \
                         Prometheus scraper; not an account.",
                    ))
                    .build(),
            ),
        );

        for (path, item) in doc.paths.paths.iter_mut() {
            let operations = [
                ("get", &mut item.get),
                ("post", &mut item.post),
                ("patch", &mut item.patch),
                ("put", &mut item.put),
                ("delete", &mut item.delete),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    apply(path, method, operation);
                }
            }
        }
    }
}

fn staff_security(writes: bool) -> Vec<SecurityRequirement> {
    let none: [&str; 0] = [];
    let cookie = SecurityRequirement::new("session_cookie", none);
    let cookie = if writes { cookie.add("csrf_token", none) } else { cookie };
    vec![cookie, SecurityRequirement::new("session_bearer", none)]
}

fn apply(path: &str, method: &str, operation: &mut Operation) {
    let writes = method != "get";
    // The public routes share their layers (per-client rate limit, load
    // shedding, timeout) and, where a pass is asked for, its check.
    if path.starts_with("/api/v1/public/") {
        if operation.security.is_some() {
            add_error(operation, "401", "No valid resident pass");
        }
        add_retry_error(
            operation,
            "429",
            "Too many requests from this address: wait `Retry-After` seconds",
        );
        add_retry_error(
            operation,
            "503",
            "Busy (load shed, timed out or the intake queue is full): retry after \
             `Retry-After` seconds with the same body",
        );
    }
    let staff = !is_anonymous(path) && operation.security.is_none();
    if staff {
        let mut security = staff_security(writes);
        if path == "/api/v1/logout" {
            // Logging out without a session is allowed (and does nothing).
            security.insert(0, SecurityRequirement::default());
        } else {
            add_error(operation, "401", "No valid session");
        }
        operation.security = Some(security);
        if writes {
            note_error(
                operation,
                "403",
                "The CSRF token is missing or wrong, or `Origin` names another host",
            );
        }
    } else if operation.security.is_none() {
        operation.security = Some(vec![SecurityRequirement::default()]);
    }
    if path == "/api/v1/login" {
        note_error(operation, "403", "`Origin` names another host");
    }
    if operation.request_body.is_some() {
        add_error(operation, "400", "The body is not JSON");
        add_error(operation, "413", "The body is over the size limit");
        add_error(
            operation,
            "422",
            "The JSON does not fit (missing field, wrong type, unknown field); `field` names it",
        );
    }
    let mut has_query = false;
    for parameter in operation.parameters.iter_mut().flatten() {
        if let RefOr::T(parameter) = parameter
            && parameter.parameter_in == ParameterIn::Query
        {
            has_query = true;
            // `?tag=&name=`, as plain HTML forms send them: an empty value
            // is the same as leaving the parameter out.
            parameter
                .extensions
                .get_or_insert_with(Default::default)
                .insert("allowEmptyValue".into(), serde_json::Value::Bool(true));
        }
    }
    if has_query {
        add_error(operation, "422", "A query parameter is invalid; `field` names it");
    }
    if !matches!(path, "/healthz" | "/readyz" | "/metrics" | DOCUMENT_PATH) {
        add_error(
            operation,
            "503",
            "The store is unreachable or the server is busy: retry after `Retry-After` seconds",
        );
    }
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
        )
        .build()
        .into()
}

/// Adds an error answer unless the operation describes that status itself.
fn add_error(operation: &mut Operation, status: &str, description: &str) {
    operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| error_response(description));
}

/// Adds an error answer carrying `Retry-After` (seconds), unless the
/// operation describes that status itself.
fn add_retry_error(operation: &mut Operation, status: &str, description: &str) {
    operation.responses.responses.entry(status.to_owned()).or_insert_with(|| {
        ResponseBuilder::new()
            .description(description)
            .header("retry-after", utoipa::openapi::header::Header::new(u64::schema()))
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
            )
            .build()
            .into()
    });
}

/// Adds an error answer, or adds its cause to the one described.
fn note_error(operation: &mut Operation, status: &str, description: &str) {
    match operation.responses.responses.get_mut(status) {
        Some(RefOr::T(response)) => {
            response.description = format!("{}; or: {description}", response.description);
        }
        _ => add_error(operation, status, description),
    }
}
