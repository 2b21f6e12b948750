//! One error type for every handler: a status, a stable code, the field it
//! concerns, and a message in the caller's language. Internal details go to
//! the log and never to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use epigrid_service::ServiceError;
use serde_json::json;

use crate::i18n::{Lang, t};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub field: Option<String>,
    pub lang: Lang,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, lang: Lang) -> Self {
        Self { status, code: code.to_owned(), field: None, lang }
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
            ServiceError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        Self {
            status,
            code: error.code().to_owned(),
            field: error.field().map(str::to_owned),
            lang,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": {
                "code": self.code,
                "message": t(self.lang, &self.code),
                "field": self.field,
            }
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}
