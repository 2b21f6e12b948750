//! One error type for every use case. Each variant carries a stable code that
//! the web layer maps to a status and the user's language.

use epigrid_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("not logged in")]
    Unauthenticated,
    #[error("wrong username or password")]
    BadCredentials,
    /// The role may not do this at all. Scope violations are `NotFound`, so
    /// that nothing outside a caller's scope reveals that it exists.
    #[error("not permitted")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("invalid {field}: {code}")]
    Invalid { field: String, code: &'static str },
    #[error("conflict on {field}: {code}")]
    Conflict { field: String, code: &'static str },
    /// Too many failed logins: try again after this many seconds.
    #[error("too many attempts; retry in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("temporarily unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    pub fn invalid(field: impl Into<String>, code: &'static str) -> Self {
        Self::Invalid { field: field.into(), code }
    }

    /// The stable code clients and translations key on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "auth.required",
            Self::BadCredentials => "auth.bad_credentials",
            Self::Forbidden => "auth.forbidden",
            Self::NotFound => "not_found",
            Self::Invalid { code, .. } | Self::Conflict { code, .. } => code,
            Self::TooManyAttempts { .. } => "auth.too_many_attempts",
            Self::Unavailable => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } | Self::Conflict { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { constraint } => match constraint.as_str() {
                "residents_id_blind" => {
                    Self::Conflict { field: "id_number".into(), code: "id.duplicate" }
                }
                "areas_code" => Self::Conflict { field: "code".into(), code: "code.duplicate" },
                "households_unit_id_room" => {
                    Self::Conflict { field: "room".into(), code: "room.duplicate" }
                }
                "users_username" => {
                    Self::Conflict { field: "username".into(), code: "username.duplicate" }
                }
                _ => Self::Conflict { field: constraint, code: "conflict" },
            },
            StoreError::MissingReference { .. } => Self::NotFound,
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "store unavailable");
                Self::Unavailable
            }
            StoreError::Other(detail) => Self::Internal(detail),
        }
    }
}
