//! Request extractors: the caller's language, the logged-in actor, and JSON
//! bodies and query strings whose failures become our JSON errors (naming the
//! field) instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use epigrid_service::{Actor, ServiceError};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;
use crate::i18n::Lang;

pub const SESSION_COOKIE: &str = "epigrid_session";
pub const LANG_COOKIE: &str = "epigrid_lang";

/// The `Set-Cookie` value for a new session: `HttpOnly` so scripts never see
/// it, `SameSite=Lax` so other sites cannot post with it, `Secure` when
/// served over TLS.
pub fn session_cookie(state: &AppState, token: &str) -> HeaderValue {
    let max_age = state.service.settings().session_absolute.num_seconds();
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .expect("a hex token makes a valid header value")
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn clear_session_cookie() -> HeaderValue {
    HeaderValue::from_static("epigrid_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The caller's language: an explicit choice (cookie) first, then
/// `Accept-Language`, then Chinese.
impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(lang) = cookie(&parts.headers, LANG_COOKIE).and_then(Lang::parse) {
            return Ok(lang);
        }
        let header = parts
            .headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        Ok(Lang::from_accept_language(header))
    }
}

/// The session token from the cookie, or from `Authorization: Bearer` for
/// scripts that prefer a header.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    if let Some(token) = cookie(headers, SESSION_COOKIE) {
        return Some(token.to_owned());
    }
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
}

/// The client's address as the server saw it (the proxy's, behind one).
pub fn client_addr(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip().to_string())
}

/// The logged-in caller. Rejects with 401 when there is no valid session.
#[derive(Debug, Clone)]
pub struct CurrentActor(pub Actor);

impl FromRequestParts<AppState> for CurrentActor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let lang = Lang::from_request_parts(parts, state).await.unwrap_or(Lang::ZhCn);
        let token = session_token(&parts.headers)
            .ok_or_else(|| ApiError::from_service(ServiceError::Unauthenticated, lang))?;
        let mut actor = state
            .service
            .authenticate(&token)
            .await
            .map_err(|e| ApiError::from_service(e, lang))?;
        actor.client_addr = client_addr(parts);
        Ok(CurrentActor(actor))
    }
}

/// A JSON body: 400 when it is not JSON at all, 422 naming the field when
/// the JSON does not fit (missing field, wrong type, unknown field), 413 when
/// it is over the size limit.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let lang = Lang::from_request_parts(&mut parts, state).await.unwrap_or(Lang::ZhCn);
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state).await.map_err(
            |rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request.too_large", lang)
                } else {
                    ApiError::new(StatusCode::BAD_REQUEST, "request.malformed_json", lang)
                }
            },
        )?;
        // Straight into `T` first: a well-formed body (nearly all of them,
        // and all of a storm's) is parsed once. Any error goes the slower
        // way, through a `Value`, which tells a body that is not JSON (400)
        // from JSON that does not fit (422, naming the field).
        let mut direct = serde_json::Deserializer::from_slice(&bytes);
        if let Ok(body) = T::deserialize(&mut direct)
            && direct.end().is_ok()
        {
            return Ok(JsonBody(body));
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "request.malformed_json", lang))?;
        decode(value, lang).map(JsonBody)
    }
}

/// Query parameters, with the same field-naming errors as bodies.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let lang = Lang::from_request_parts(parts, state).await.unwrap_or(Lang::ZhCn);
        let query = parts.uri.query().unwrap_or_default();
        // Empty parameters (`?tag=&name=`, as plain HTML forms send them)
        // mean "no filter", not "the empty string".
        let filled: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form_urlencoded::parse(query.as_bytes()).filter(|(_, v)| !v.is_empty()))
            .finish();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(filled.as_bytes()));
        decode_with(serde_path_to_error::deserialize(deserializer), lang).map(QueryParams)
    }
}

fn decode<T: DeserializeOwned>(value: serde_json::Value, lang: Lang) -> Result<T, ApiError> {
    decode_with(serde_path_to_error::deserialize(value), lang)
}

fn decode_with<T, E: std::fmt::Display>(
    result: Result<T, serde_path_to_error::Error<E>>,
    lang: Lang,
) -> Result<T, ApiError> {
    result.map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        // serde reports a missing field at its parent's path, naming the
        // field only in the message: "missing field `name`".
        let (code, field) = if let Some(missing) = backticked(&message, "missing field ") {
            let field = if path == "." { missing } else { format!("{path}.{missing}") };
            ("field.required", field)
        } else if let Some(unknown) = backticked(&message, "unknown field ") {
            ("request.unknown_field", unknown)
        } else {
            ("request.wrong_type", path)
        };
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, lang).with_field(field)
    })
}

fn backticked(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?.strip_prefix('`')?;
    rest.split('`').next().map(str::to_owned)
}
