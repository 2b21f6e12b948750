//! The JSON API of field work, which the phone pages' offline queue posts
//! to: task steps with photos, door-to-door visits, a task contact's phone
//! for a call, and a task's photos. Every state-changing call takes an
//! idempotency key (the `Idempotency-Key` header, or `idempotency_key` in
//! the body), so a replay from the queue applies once.
//!
//! Photos travel as base64 strings in the JSON body, which is why the two
//! routes that take them read bodies up to
//! [`PhotoSettings::max_request_bytes`](epigrid_service::photos::PhotoSettings::max_request_bytes)
//! instead of the API's 64 KiB.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use epigrid_service::field_work::VisitRequest;
use epigrid_service::tasks::TransitionRequest;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{CurrentActor, JsonBody};
use crate::i18n::Lang;

type ApiResult<T> = Result<T, ApiError>;

/// A JSON body that may carry photos: read up to the photo limit of the
/// deployment, then decoded like [`JsonBody`].
#[derive(Debug)]
pub struct PhotoJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for PhotoJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let lang = Lang::from_request_parts(&mut parts, state).await.unwrap_or(Lang::ZhCn);
        let limit = state.service.settings().photos.max_request_bytes();
        let bytes: Bytes = axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request.too_large", lang))?;
        let request = Request::from_parts(parts, Body::from(bytes));
        JsonBody::<T>::from_request(request, state).await.map(|JsonBody(value)| PhotoJson(value))
    }
}

fn parse_id(text: &str, lang: Lang) -> ApiResult<Uuid> {
    Uuid::try_parse(text).map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", lang))
}

fn service_error(lang: Lang) -> impl Fn(epigrid_service::ServiceError) -> ApiError {
    move |e| ApiError::from_service(e, lang)
}

/// The `Idempotency-Key` header, when the body names no key.
pub fn idempotency_header(headers: &HeaderMap) -> Option<String> {
    headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Photos as base64 (standard alphabet, with or without padding; a
/// `data:image/…;base64,` prefix, as `FileReader` makes, is accepted and
/// ignored: the type is sniffed from the bytes).
pub fn decode_photos(photos: &[String], lang: Lang) -> ApiResult<Vec<Vec<u8>>> {
    photos
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let data = text.split_once("base64,").map_or(text.as_str(), |(_, d)| d).trim();
            let engine = base64::engine::general_purpose::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
            );
            engine.decode(data).map_err(|_| {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "photo.bad_encoding", lang)
                    .with_field(format!("photos[{i}]"))
            })
        })
        .collect()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    /// `{"kind": "verify"}`, `{"kind": "reject", "reason": "…"}`, …
    transition: epigrid_domain::tasks::Transition,
    note: Option<String>,
    idempotency_key: Option<String>,
    /// Photos for the step, base64.
    #[serde(default)]
    photos: Vec<String>,
}

#[utoipa::path(
    post, path = "/api/v1/tasks/{id}/transitions", tag = "tasks",
    summary = "Take a step of a task",
    description = "One step of the closed loop (verify, dispatch, accept, report handled, close, …) with an optional note and up to the deployment's number of photos (base64 JPEG, PNG or WebP). The state machine and the caller's part decide whether the step is allowed. A replay with the same idempotency key applies nothing and answers as before.",
    params(("id" = Uuid, Path, description = "Task id"), ("idempotency-key" = Option<String>, Header, description = "Used when the body has no `idempotency_key`")),
    request_body = TransitionBody,
    responses(
        (status = 200, description = "The task after the step (`replayed` when the key had been used)", body = epigrid_service::tasks::TransitionOutcome),
        (status = 403, description = "The step is not the caller's to take", body = crate::error::ErrorBody),
        (status = 404, description = "No such task in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody),
        (status = 409, description = "The task changed meanwhile, or the step is not possible from its state", body = crate::error::ErrorBody),
        (status = 413, description = "Photos over the deployment's limits", body = crate::error::ErrorBody),
    )
)]
pub async fn transition_task(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
    headers: HeaderMap,
    PhotoJson(body): PhotoJson<TransitionBody>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id, lang)?;
    let photos = decode_photos(&body.photos, lang)?;
    let request = TransitionRequest {
        transition: body.transition,
        note: body.note,
        idempotency_key: body.idempotency_key.or_else(|| idempotency_header(&headers)),
    };
    let outcome = state
        .service
        .transition_task_with_photos(&actor, id, request, photos)
        .await
        .map_err(service_error(lang))?;
    Ok(Json(outcome))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitBody {
    household_id: Uuid,
    note: Option<String>,
    idempotency_key: Option<String>,
    #[serde(default)]
    photos: Vec<String>,
}

/// Records a door-to-door visit: 201 with the task (handled, awaiting a
/// supervisor's check); a replay answers 200 with the same task.
#[utoipa::path(
    post, path = "/api/v1/visits", tag = "tasks",
    summary = "Record a door-to-door visit",
    description = "Creates the visit's task and takes it to handled, awaiting a supervisor's check. Each step derives its key from the visit's idempotency key, so a replay finishes an interrupted visit and repeats nothing of a finished one.",
    params(("idempotency-key" = Option<String>, Header, description = "Used when the body has no `idempotency_key`")),
    request_body = VisitBody,
    responses(
        (status = 201, description = "Recorded", body = epigrid_service::tasks::TransitionOutcome),
        (status = 200, description = "A replay: the same task", body = epigrid_service::tasks::TransitionOutcome),
        (status = 403, description = "The role may not do this", body = crate::error::ErrorBody),
        (status = 404, description = "No such household in the caller's scope", body = crate::error::ErrorBody),
        (status = 409, description = "The visit's task changed meanwhile", body = crate::error::ErrorBody),
        (status = 413, description = "Photos over the deployment's limits", body = crate::error::ErrorBody),
    )
)]
pub async fn record_visit(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    headers: HeaderMap,
    PhotoJson(body): PhotoJson<VisitBody>,
) -> ApiResult<Response> {
    let photos = decode_photos(&body.photos, lang)?;
    let visit = VisitRequest {
        household_id: body.household_id,
        note: body.note,
        idempotency_key: body.idempotency_key.or_else(|| idempotency_header(&headers)),
    };
    let outcome =
        state.service.record_visit(&actor, visit, photos).await.map_err(service_error(lang))?;
    let status = if outcome.replayed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(outcome)).into_response())
}

/// The actor's open tasks, most urgent first, with addresses and contacts
/// (phones masked).
#[utoipa::path(
    get, path = "/api/v1/field-tasks", tag = "tasks",
    summary = "The caller's open tasks for the phone",
    description = "Overdue first, then by priority, then by deadline, each with its address and contact (phone masked).",
    responses((status = 200, description = "The tasks", body = crate::api::Items<epigrid_service::field_work::FieldTask>), (status = 403, description = "The role may not do this", body = crate::error::ErrorBody))
)]
pub async fn field_tasks(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
) -> ApiResult<impl IntoResponse> {
    let items = state.service.field_tasks(&actor).await.map_err(service_error(lang))?;
    Ok(Json(crate::api::Items { items }))
}

/// The task contact's phone in clear, for a call. A POST, audited, never
/// cached.
#[utoipa::path(
    post, path = "/api/v1/tasks/{id}/contact", tag = "tasks",
    summary = "The task contact's phone in clear, for a call",
    description = "For the assignee of a task being worked (dispatched or in progress), or a role that may unmask. Audited as `resident.unmask` before the number is sent; `Cache-Control: no-store`.",
    params(("id" = Uuid, Path, description = "Task id")),
    responses((status = 200, description = "The contact", body = epigrid_service::field_work::TaskContact), (status = 403, description = "The role may not do this", body = crate::error::ErrorBody), (status = 404, description = "No such task in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody))
)]
pub async fn task_contact(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, lang)?;
    let contact = state.service.task_contact(&actor, id).await.map_err(service_error(lang))?;
    let mut response = Json(contact).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// A task's photos (without bytes); each is at `/tasks/{id}/photos/{photo}`.
#[utoipa::path(
    get, path = "/api/v1/tasks/{id}/photos", tag = "tasks",
    summary = "A task's photos",
    description = "Without the bytes: each photo is served at its `url` to those who see the task.",
    params(("id" = Uuid, Path, description = "Task id")),
    responses((status = 200, description = "The photos", body = crate::api::Items<PhotoItem>), (status = 403, description = "The role may not do this", body = crate::error::ErrorBody), (status = 404, description = "No such task in the caller's scope (or the id is not a UUID)", body = crate::error::ErrorBody))
)]
pub async fn task_photos(
    State(state): State<AppState>,
    lang: Lang,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id, lang)?;
    let photos = state.service.task_photos(&actor, id).await.map_err(service_error(lang))?;
    let items = photos
        .into_iter()
        .map(|p| PhotoItem { url: format!("/tasks/{id}/photos/{}", p.id), photo: p })
        .collect();
    Ok(Json(crate::api::Items { items }))
}

/// A photo of a task and where to fetch it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhotoItem {
    #[serde(flatten)]
    photo: epigrid_service::photos::PhotoView,
    /// The image, for those who see the task.
    url: String,
}
