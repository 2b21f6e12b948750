//! One error type for every handler: a status, a stable code, the field it
//! concerns, and a message in the caller's language. Internal details go to
//! the log and never to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use epigrid_service::ServiceError;
use serde::Serialize;

use crate::i18n::{Lang, t};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub field: Option<String>,
    pub lang: Lang,
    /// Seconds for `Retry-After`, when the caller should come back later.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, lang: Lang) -> Self {
        Self { status, code: code.to_owned(), field: None, lang, retry_after: None }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn from_service(error: ServiceError, lang: Lang) -> Self {
        let status = match &error {
            ServiceError::Unauthenticated | ServiceError::BadCredentials => {
                StatusCode::UNAUTHORIZED
            }
            ServiceError::Forbidden => StatusCode::FORBIDDEN,
            ServiceError::NotFound => StatusCode::NOT_FOUND,
            ServiceError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::Conflict { .. } => StatusCode::CONFLICT,
            ServiceError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            ServiceError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let retry_after = match &error {
            ServiceError::TooManyAttempts { retry_after_secs } => Some(*retry_after_secs),
            ServiceError::Unavailable => Some(5),
            _ => None,
        };
        Self {
            status,
            code: error.code().to_owned(),
            field: error.field().map(str::to_owned),
            lang,
            retry_after,
        }
    }

    /// The message in the caller's language, with `{minutes}` filled in for
    /// "try again in N minutes".
    pub fn message(&self) -> String {
        let minutes = self.retry_after.map_or(1, |s| s.div_ceil(60).max(1));
        t(self.lang, &self.code).replace("{minutes}", &minutes.to_string())
    }
}

/// The body of every error answer of the API (`{"error": {…}}`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable code (`field.required`, `not_found`, `csrf.invalid`, …): test
    /// this, not the message.
    #[schema(example = "field.required")]
    pub code: String,
    /// The code's message in the caller's language.
    pub message: String,
    /// The request field the error concerns, when it concerns one.
    pub field: Option<String>,
    /// The daily report's failed checks, worded (only with
    /// `export.daily.checks_failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<String>>,
}

impl ApiError {
    /// The JSON body this error answers with.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                message: self.message(),
                code: self.code.clone(),
                field: self.field.clone(),
                checks: None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
