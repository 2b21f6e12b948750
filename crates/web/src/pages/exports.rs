//! The exports page (`/exports`) and its JSON equivalents under
//! `/api/v1/exports/…`: residents, tasks and the daily report as files.
//!
//! Masked exports are a GET on the API (nothing secret in the URL: an area
//! id, a format); an unmasked one is a POST with a reason in the body, so the
//! reason is CSRF-protected and stays out of access logs. The page posts one
//! form (with `_csrf`) for all three. Files are sent with
//! `Content-Disposition: attachment; filename*=UTF-8''…` (RFC 5987, for the
//! Chinese names) and `Cache-Control: no-store`: an export of personal data
//! must not linger in a shared cache.

use askama::Template;
use axum::Json;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use epigrid_domain::AreaKind;
use epigrid_service::ServiceError;
use epigrid_service::export::{ExportError, ExportFile, ExportFormat, check_messages};
use epigrid_service::privacy::UnmaskReason;
use serde::Deserialize;
use uuid::Uuid;

use super::residents::{Choice, FormErrors, form_body, form_status, show_date, with_status};
use super::{Chrome, PageActor, or_error_page, render};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{CurrentActor, JsonBody};
use crate::i18n::{Lang, t};

type ApiResult<T> = Result<T, ApiError>;

// ---- shared -------------------------------------------------------------------

/// The content type of an .xlsx file.
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Bytes as a download named `file_name`, never cached (the files hold
/// personal data): every download page answers through this.
pub fn attachment(bytes: Vec<u8>, content_type: &'static str, file_name: &str) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_DISPOSITION, content_disposition(file_name));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// An export as a download.
fn download(file: ExportFile) -> Response {
    attachment(file.bytes, file.content_type, &file.file_name)
}

/// `attachment; filename="…"; filename*=UTF-8''…`: an ASCII fallback for
/// old clients, and the real (Chinese) name percent-encoded per RFC 5987.
pub fn content_disposition(name: &str) -> HeaderValue {
    let extension = name.rsplit_once('.').map_or("", |(_, e)| e);
    let ascii: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    let fallback = if ascii.trim_matches(['.', '_', '-']).len() > extension.len() + 1 {
        ascii
    } else {
        format!("export.{extension}")
    };
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

fn parse_format(text: &str) -> Option<ExportFormat> {
    match text.trim() {
        "" => Some(ExportFormat::Xlsx),
        other => ExportFormat::parse(other),
    }
}

fn parse_date(text: &str, today: NaiveDate) -> Option<NaiveDate> {
    match text.trim() {
        "" => Some(today),
        other => NaiveDate::parse_from_str(other, "%Y-%m-%d").ok(),
    }
}

/// The zh-CN catalogue for file contents: offices send Chinese files
/// upward whatever language the screen is in.
fn zh(key: &str) -> String {
    t(Lang::ZhCn, key)
}

// ---- JSON API -----------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default, deny_unknown_fields)]
pub struct ApiQuery {
    /// The area to export (required).
    #[param(required = true, format = Uuid)]
    area_id: String,
    /// `xlsx` (the default) or `csv`; the daily report is `xlsx` only.
    #[param(required = false)]
    format: String,
    /// The daily report's day, `YYYY-MM-DD` (default today).
    #[param(required = false, format = Date)]
    date: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnmaskedRequest {
    area_id: Uuid,
    /// `xlsx` (the default) or `csv`.
    #[serde(default)]
    format: Option<String>,
    /// Why the clear values are needed: an unmask reason code (required).
    #[schema(value_type = Option<UnmaskReason>)]
    reason: Option<String>,
}

fn api_area(text: &str, lang: Lang) -> ApiResult<Uuid> {
    if text.trim().is_empty() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "export.area.required", lang)
            .with_field("area_id"));
    }
    // An id that is not a UUID is as unknown as an area outside the scope.
    Uuid::try_parse(text.trim())
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", lang))
}

fn api_format(text: &str, lang: Lang) -> ApiResult<ExportFormat> {
    parse_format(text).ok_or_else(|| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "export.format.unknown", lang)
            .with_field("format")
    })
}

/// The area and format of an export's query string, or the error answer.
fn api_export_query(
    query: Result<Query<ApiQuery>, QueryRejection>,
    lang: Lang,
) -> Result<(Uuid, ExportFormat), Response> {
    let q = api_query(query, lang).map_err(IntoResponse::into_response)?;
    let area = api_area(&q.area_id, lang).map_err(IntoResponse::into_response)?;
    let format = api_format(&q.format, lang).map_err(IntoResponse::into_response)?;
    Ok((area, format))
}

fn api_query(query: Result<Query<ApiQuery>, QueryRejection>, lang: Lang) -> ApiResult<ApiQuery> {
    query
        .map(|Query(q)| q)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "form.malformed", lang))
}

fn api_export_error(lang: Lang) -> impl Fn(ExportError) -> Response {
    move |error| match error {
        ExportError::Service(e) => ApiError::from_service(e, lang).into_response(),
        ExportError::Checks(failures) => {
            let messages = check_messages(&failures, &|k: &str| t(lang, k));
            let body = crate::error::ErrorBody {
                error: crate::error::ErrorDetail {
                    code: "export.daily.checks_failed".into(),
                    message: t(lang, "export.daily.checks_failed"),
                    field: None,
                    checks: Some(messages),
                },
            };
            (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
        }
    }
}

/// `GET /api/v1/exports/residents?area_id=…&format=xlsx|csv`: masked.
#[utoipa::path(
    get, path = "/api/v1/exports/residents", tag = "exports",
    summary = "Residents of an area as a file, masked",
    description = "Recorded in the audit log. ID numbers and phones masked.",
    params(ApiQuery),
    responses((status = 200, description = "The file", content(
            (crate::openapi::Download = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (crate::openapi::Download = "text/csv")
        ),
        headers(("content-disposition" = String, description = "`attachment; filename*=UTF-8''…`"))),
        (status = 400, description = "The query string does not parse", body = crate::error::ErrorBody),
        (status = 403, description = "The role may not export", body = crate::error::ErrorBody),
        (status = 404, description = "No such area in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody),
        (status = 422, description = "A field is invalid; `field` names it", body = crate::error::ErrorBody))
)]
pub async fn api_residents(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    query: Result<Query<ApiQuery>, QueryRejection>,
) -> Result<Response, Response> {
    let (area, format) = api_export_query(query, lang)?;
    let file = state
        .service
        .export_residents(&actor, area, format, None, &zh)
        .await
        .map_err(api_export_error(lang))?;
    Ok(download(file))
}

/// `POST /api/v1/exports/residents` with `{area_id, format, reason}`:
/// unmasked, for roles that may unmask, audited with the reason.
#[utoipa::path(
    post, path = "/api/v1/exports/residents", tag = "exports",
    summary = "Residents of an area as a file, unmasked",
    description = "For roles that may unmask, with a reason; audited with it before the file is made.",
    request_body = UnmaskedRequest,
    responses((status = 200, description = "The file", content(
            (crate::openapi::Download = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (crate::openapi::Download = "text/csv")
        ),
        headers(("content-disposition" = String, description = "`attachment; filename*=UTF-8''…`"))),
        (status = 400, description = "The query string does not parse", body = crate::error::ErrorBody),
        (status = 403, description = "The role may not export", body = crate::error::ErrorBody),
        (status = 404, description = "No such area in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody),
        (status = 422, description = "A field is invalid; `field` names it", body = crate::error::ErrorBody))
)]
pub async fn api_residents_unmasked(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    JsonBody(request): JsonBody<UnmaskedRequest>,
) -> Result<Response, Response> {
    let format = api_format(request.format.as_deref().unwrap_or(""), lang)
        .map_err(IntoResponse::into_response)?;
    let reason = request.reason.as_deref().and_then(UnmaskReason::parse).ok_or_else(|| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "export.reason.required", lang)
            .with_field("reason")
            .into_response()
    })?;
    let file = state
        .service
        .export_residents(&actor, request.area_id, format, Some(reason), &zh)
        .await
        .map_err(api_export_error(lang))?;
    Ok(download(file))
}

/// `GET /api/v1/exports/tasks?area_id=…&format=xlsx|csv`.
#[utoipa::path(
    get, path = "/api/v1/exports/tasks", tag = "exports",
    summary = "Tasks of an area as a file",
    params(ApiQuery),
    responses((status = 200, description = "The file", content(
            (crate::openapi::Download = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (crate::openapi::Download = "text/csv")
        ),
        headers(("content-disposition" = String, description = "`attachment; filename*=UTF-8''…`"))),
        (status = 400, description = "The query string does not parse", body = crate::error::ErrorBody),
        (status = 403, description = "The role may not export", body = crate::error::ErrorBody),
        (status = 404, description = "No such area in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody),
        (status = 422, description = "A field is invalid; `field` names it", body = crate::error::ErrorBody))
)]
pub async fn api_tasks(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    query: Result<Query<ApiQuery>, QueryRejection>,
) -> Result<Response, Response> {
    let (area, format) = api_export_query(query, lang)?;
    let file = state
        .service
        .export_tasks(&actor, area, format, &zh)
        .await
        .map_err(api_export_error(lang))?;
    Ok(download(file))
}

/// `GET /api/v1/exports/daily-report?area_id=…&date=YYYY-MM-DD`: .xlsx, or
/// 422 with the failed checks.
#[utoipa::path(
    get, path = "/api/v1/exports/daily-report", tag = "exports",
    summary = "The daily report upward (.xlsx)",
    description = "Per grid, community or sub-district. Its checks run first (tested ≤ due, cumulative = yesterday + new, totals roll up); failures answer 422 `export.daily.checks_failed` with `checks`.",
    params(ApiQuery),
    responses((status = 200, description = "The report", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", body = crate::openapi::Download,
            headers(("content-disposition" = String, description = "`attachment; filename*=UTF-8''…`"))),
        (status = 400, description = "The query string does not parse", body = crate::error::ErrorBody),
        (status = 403, description = "The role may not export", body = crate::error::ErrorBody),
        (status = 404, description = "No such area in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody),
        (status = 422, description = "A field is invalid; `field` names it", body = crate::error::ErrorBody))
)]
pub async fn api_daily_report(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    query: Result<Query<ApiQuery>, QueryRejection>,
) -> Result<Response, Response> {
    let q = api_query(query, lang).map_err(IntoResponse::into_response)?;
    let area = api_area(&q.area_id, lang).map_err(IntoResponse::into_response)?;
    if !matches!(q.format.trim(), "" | "xlsx") {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "export.format.unknown", lang)
            .with_field("format")
            .into_response());
    }
    let date = parse_date(&q.date, state.service.today()).ok_or_else(|| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "export.date.invalid", lang)
            .with_field("date")
            .into_response()
    })?;
    let file = state
        .service
        .export_daily_report(&actor, area, date, &zh)
        .await
        .map_err(api_export_error(lang))?;
    Ok(download(file))
}

// ---- the page -----------------------------------------------------------------------

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ExportForm {
    what: String,
    area_id: String,
    format: String,
    date: String,
    /// `masked` (the default) or `unmasked`.
    mode: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "exports.html")]
struct ExportsPage {
    chrome: Chrome,
    whats: Vec<Choice>,
    areas: Vec<Choice>,
    formats: Vec<Choice>,
    reasons: Vec<Choice>,
    date: String,
    may_unmask: bool,
    unmasked: bool,
    errors: FormErrors,
    /// Failed daily-report checks, each a message.
    checks: Vec<String>,
}

fn choices(values: &[&str], current: &str, label: impl Fn(&str) -> String) -> Vec<Choice> {
    values
        .iter()
        .map(|v| Choice { value: (*v).to_owned(), label: label(v), selected: *v == current })
        .collect()
}

async fn page(
    state: &AppState,
    page: &PageActor,
    form: &ExportForm,
    errors: FormErrors,
    checks: Vec<String>,
) -> Result<Response, Response> {
    let lang = page.lang;
    let service = &state.service;
    let areas = or_error_page(lang, service.export_areas(&page.actor).await)?;
    let chrome = page.chrome("exports");
    let tr = chrome.tr;
    let area_choices = areas
        .iter()
        .map(|a| {
            let indent = match a.kind {
                AreaKind::SubDistrict => "",
                AreaKind::Community => "· ",
                _ => "· · ",
            };
            let code = a.code.as_deref().map(|c| format!("（{c}）")).unwrap_or_default();
            Choice {
                value: a.id.to_string(),
                label: format!("{indent}{}{code}", a.name),
                selected: a.id.to_string() == form.area_id,
            }
        })
        .collect();
    let what = if form.what.is_empty() { "residents" } else { form.what.as_str() };
    let format = if form.format.is_empty() { "xlsx" } else { form.format.as_str() };
    let reasons = UnmaskReason::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>();
    let status =
        if checks.is_empty() { form_status(&errors) } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(with_status(
        status,
        render(&ExportsPage {
            whats: choices(&["residents", "tasks", "daily_report"], what, |v| {
                tr.t(&format!("export.what.{v}"))
            }),
            areas: area_choices,
            formats: choices(&["xlsx", "csv"], format, str::to_owned),
            reasons: choices(&reasons, &form.reason, |v| tr.t(&format!("unmask.reason.{v}"))),
            date: if form.date.trim().is_empty() {
                show_date(service.today())
            } else {
                form.date.clone()
            },
            may_unmask: service.may_unmask(page.role()),
            unmasked: form.mode == "unmasked",
            errors,
            checks,
            chrome,
        }),
    ))
}

/// `GET /exports`: the form.
pub async fn show(
    State(state): State<AppState>,
    page_actor: PageActor,
) -> Result<Response, Response> {
    if !state.service.may_export(&page_actor.actor) {
        return Err(super::error_page(page_actor.lang, ServiceError::Forbidden));
    }
    page(&state, &page_actor, &ExportForm::default(), FormErrors::default(), Vec::new()).await
}

/// `POST /exports`: the file, or the form again with what is wrong.
pub async fn submit(
    State(state): State<AppState>,
    page_actor: PageActor,
    form: Result<Form<ExportForm>, FormRejection>,
) -> Result<Response, Response> {
    let lang = page_actor.lang;
    let form = match form_body(lang, form) {
        Ok(form) => form,
        Err(errors) => {
            return page(&state, &page_actor, &ExportForm::default(), errors, Vec::new()).await;
        }
    };
    let again = |errors: FormErrors| page(&state, &page_actor, &form, errors, Vec::new());
    let Ok(area) = Uuid::try_parse(form.area_id.trim()) else {
        return again(FormErrors::field(lang, "area_id", "export.area.required")).await;
    };
    let Some(format) = parse_format(&form.format) else {
        return again(FormErrors::field(lang, "format", "export.format.unknown")).await;
    };
    let service = &state.service;
    let actor = &page_actor.actor;
    let result = match form.what.as_str() {
        "residents" => {
            let reason = if form.mode == "unmasked" {
                match UnmaskReason::parse(&form.reason) {
                    Some(r) => Some(r),
                    None => {
                        return again(FormErrors::field(lang, "reason", "export.reason.required"))
                            .await;
                    }
                }
            } else {
                None
            };
            service.export_residents(actor, area, format, reason, &zh).await
        }
        "tasks" => service.export_tasks(actor, area, format, &zh).await,
        "daily_report" => {
            let Some(date) = parse_date(&form.date, service.today()) else {
                return again(FormErrors::field(lang, "date", "export.date.invalid")).await;
            };
            service.export_daily_report(actor, area, date, &zh).await
        }
        _ => return again(FormErrors::field(lang, "what", "export.what.unknown")).await,
    };
    match result {
        Ok(file) => Ok(download(file)),
        Err(ExportError::Checks(failures)) => {
            let messages = check_messages(&failures, &|k: &str| t(lang, k));
            let errors = FormErrors::general(lang, "export.daily.checks_failed");
            page(&state, &page_actor, &form, errors, messages).await
        }
        Err(ExportError::Service(error)) => {
            match FormErrors::from_service(lang, error, &["area_id", "date", "format"]) {
                Ok(errors) => again(errors).await,
                Err(other) => Err(super::error_page(lang, other)),
            }
        }
    }
}
