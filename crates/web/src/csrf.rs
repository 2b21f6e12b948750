//! Cross-site request forgery protection, in one middleware for the pages
//! and the API alike.
//!
//! - A state-changing request (anything but GET, HEAD and OPTIONS) that
//!   carries the session cookie must present the session's CSRF token: in
//!   the `X-CSRF-Token` header (API calls), or in a `_csrf` form field
//!   (HTML forms, URL-encoded or multipart). Otherwise: 403.
//! - The token is an HMAC of the session token under the server's key, so
//!   nothing is stored, every instance agrees, and it dies with the session.
//!   Another site can neither read it (same-origin policy) nor compute it.
//! - Requests authenticated only by `Authorization: Bearer` are exempt: a
//!   browser never adds that header on its own. Requests without a session
//!   cookie pass: they are logins, or will be refused as anonymous.
//! - The logins (`POST /login`, `POST /api/v1/login`) have no session yet;
//!   they, and every cookie-carrying state-changing request, are refused when
//!   the browser says (`Origin`) that they come from another host.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{SESSION_COOKIE, cookie};
use crate::i18n::{Lang, t};

/// The header API clients send the token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field HTML forms send the token in.
pub const CSRF_FIELD: &str = "_csrf";
/// How far into a multipart body the `_csrf` field is looked for. Forms put
/// it first, so it arrives long before any uploaded file.
const MULTIPART_SCAN_BYTES: usize = 64 * 1024;

/// The CSRF token of a session: hex of a keyed HMAC of its token.
pub fn csrf_token(state: &AppState, session_token: &str) -> String {
    hex::encode(state.service.cipher().blind_index("csrf", session_token))
}

/// Equal in time independent of where the strings differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn is_login(path: &str) -> bool {
    path == "/login" || path == "/api/v1/login"
}

/// `host[:port]` lower-cased, without the scheme's default port.
fn normalise_authority(authority: &str, https: bool) -> String {
    let lower = authority.trim().to_ascii_lowercase();
    let default_port = if https { ":443" } else { ":80" };
    lower.strip_suffix(default_port).map(str::to_owned).unwrap_or(lower)
}

/// False when the request says it comes from a page on another host:
/// `Origin` present and naming a host other than `Host` (or, behind a
/// proxy that rewrites `Host`, `X-Forwarded-Host`). `Origin: null` (sandboxed
/// frames, some redirects) counts as another host.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some((scheme, authority)) = origin.to_str().ok().and_then(|o| o.split_once("://")) else {
        return false;
    };
    let https = scheme.eq_ignore_ascii_case("https");
    let origin = normalise_authority(authority.trim_end_matches('/'), https);
    [header::HOST.as_str(), "x-forwarded-host"]
        .iter()
        .filter_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()))
        // A proxy chain may list several hosts; the first is the client's.
        .filter_map(|v| v.split(',').next())
        .any(|host| normalise_authority(host, https) == origin)
}

/// The middleware. See the module documentation.
pub async fn protect(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    // Self-service submissions and bearer clients carry no session cookie:
    // they pass here without an allocation.
    if cookie(request.headers(), SESSION_COOKIE).is_none() && !is_login(request.uri().path()) {
        return next.run(request).await;
    }
    let path = request.uri().path().to_owned();
    let session = cookie(request.headers(), SESSION_COOKIE).map(str::to_owned);
    let (mut parts, body) = request.into_parts();
    if !same_origin(&parts.headers) {
        tracing::warn!(path, "refused: cross-origin state-changing request");
        return refuse(&mut parts, &state, &path).await;
    }
    // The logins carry no token: there is no session yet (or a dead one).
    let Some(session) = session.filter(|_| !is_login(&path)) else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let expected = csrf_token(&state, &session);
    let (presented, body) = match presented_token(&parts.headers, body).await {
        Ok(found) => found,
        Err(status) => return too_large(&mut parts, &state, &path, status).await,
    };
    match presented {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => {
            next.run(Request::from_parts(parts, body)).await
        }
        _ => {
            tracing::warn!(path, "refused: missing or wrong CSRF token");
            refuse(&mut parts, &state, &path).await
        }
    }
}

/// The token the request presents, and its body to pass on (rebuilt when
/// it had to be read).
async fn presented_token(
    headers: &HeaderMap,
    body: Body,
) -> Result<(Option<String>, Body), StatusCode> {
    if let Some(token) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return Ok((Some(token.trim().to_owned()), body));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_owned();
    if essence == "application/x-www-form-urlencoded" {
        let bytes = axum::body::to_bytes(body, crate::MAX_BODY_BYTES)
            .await
            .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE)?;
        let token = form_urlencoded::parse(&bytes)
            .find(|(name, _)| name == CSRF_FIELD)
            .map(|(_, value)| value.into_owned());
        return Ok((token, Body::from(bytes)));
    }
    if essence == "multipart/form-data"
        && let Some(boundary) = multipart_boundary(headers)
    {
        return Ok(multipart_token(body, &boundary).await);
    }
    Ok((None, body))
}

/// The `boundary` parameter of a multipart content type, as sent.
fn multipart_boundary(headers: &HeaderMap) -> Option<String> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.trim().split_once('=')?;
        name.trim().eq_ignore_ascii_case("boundary").then(|| value.trim().trim_matches('"').into())
    })
}

/// Reads a multipart body only until its `_csrf` part is complete (or
/// [`MULTIPART_SCAN_BYTES`] have passed), then passes on what was read
/// followed by the rest, unread: uploads are not buffered here.
async fn multipart_token(body: Body, boundary: &str) -> (Option<String>, Body) {
    let mut stream = body.into_data_stream();
    let mut prefix: Vec<u8> = Vec::new();
    let mut token = None;
    loop {
        match multipart_field(&prefix, boundary, CSRF_FIELD) {
            Scan::Found(value) => {
                token = Some(value);
                break;
            }
            Scan::Absent => break,
            Scan::NeedMore if prefix.len() >= MULTIPART_SCAN_BYTES => break,
            Scan::NeedMore => {}
        }
        match stream.next().await {
            Some(Ok(chunk)) => prefix.extend_from_slice(&chunk),
            // An unreadable body: the handler will see the same failure.
            Some(Err(_)) | None => break,
        }
    }
    let head = futures_util::stream::once(async move { Ok::<_, axum::Error>(Bytes::from(prefix)) });
    (token, Body::from_stream(head.chain(stream)))
}

#[derive(Debug, PartialEq, Eq)]
enum Scan {
    Found(String),
    Absent,
    NeedMore,
}

/// Looks for the text field `name` among the complete parts of a multipart
/// body's beginning.
fn multipart_field(data: &[u8], boundary: &str, name: &str) -> Scan {
    let delimiter = format!("--{boundary}").into_bytes();
    let wanted = format!("name=\"{name}\"").into_bytes();
    let mut at = match find(data, &delimiter, 0) {
        Some(at) => at + delimiter.len(),
        None => return Scan::NeedMore,
    };
    loop {
        if data.len() < at + 2 {
            return Scan::NeedMore;
        }
        if &data[at..at + 2] == b"--" {
            return Scan::Absent; // the closing delimiter
        }
        let Some(next) = find(data, &delimiter, at) else {
            return Scan::NeedMore;
        };
        let part = &data[at..next];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        if let Some(split) = find(part, b"\r\n\r\n", 0) {
            let (head, content) = (&part[..split], &part[split + 4..]);
            let disposition = head
                .split(|&b| b == b'\n')
                .find(|line| line.to_ascii_lowercase().starts_with(b"content-disposition:"));
            if disposition.is_some_and(|line| find(line, &wanted, 0).is_some()) {
                return Scan::Found(String::from_utf8_lossy(content).trim().to_owned());
            }
        }
        at = next + delimiter.len();
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

async fn lang(parts: &mut Parts, state: &AppState) -> Lang {
    Lang::from_request_parts(parts, state).await.unwrap_or(Lang::ZhCn)
}

/// 403: JSON for the API, a page in the visitor's language otherwise.
async fn refuse(parts: &mut Parts, state: &AppState, path: &str) -> Response {
    let lang = lang(parts, state).await;
    if path.starts_with("/api/") {
        ApiError::new(StatusCode::FORBIDDEN, "csrf.invalid", lang).into_response()
    } else {
        crate::pages::message_page(lang, StatusCode::FORBIDDEN, t(lang, "csrf.invalid"))
    }
}

async fn too_large(
    parts: &mut Parts,
    state: &AppState,
    path: &str,
    status: StatusCode,
) -> Response {
    let lang = lang(parts, state).await;
    if path.starts_with("/api/") {
        ApiError::new(status, "request.too_large", lang).into_response()
    } else {
        crate::pages::message_page(lang, status, t(lang, "request.too_large"))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn origins_are_compared_with_the_host() {
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8080")])), "no Origin: allowed");
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "Grid.Example"),
            ("origin", "https://grid.example:443")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "grid.example"),
            ("origin", "https://evil.example")
        ])));
        assert!(!same_origin(&headers(&[("host", "grid.example"), ("origin", "null")])));
        assert!(!same_origin(&headers(&[
            ("host", "grid.example:8080"),
            ("origin", "http://grid.example:9090")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "grid.example"),
            ("origin", "https://grid.example")
        ])));
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn the_csrf_part_is_found_in_a_multipart_beginning() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\nabc123\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\nname\r\n";
        assert_eq!(multipart_field(body, "XyZ", "_csrf"), Scan::Found("abc123".into()));
        assert_eq!(multipart_field(&body[..40], "XyZ", "_csrf"), Scan::NeedMore);
        let later = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\nt\r\n--XyZ--\r\n";
        assert_eq!(multipart_field(later, "XyZ", "_csrf"), Scan::Found("t".into()));
        let none = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ--\r\n";
        assert_eq!(multipart_field(none, "XyZ", "_csrf"), Scan::Absent);
    }

    #[tokio::test]
    async fn a_multipart_body_passes_on_whole() {
        let text = "--b\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\ntok\r\n--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--b--\r\n";
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            text.as_bytes().chunks(7).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let body = Body::from_stream(futures_util::stream::iter(chunks));
        let (token, body) = multipart_token(body, "b").await;
        assert_eq!(token.as_deref(), Some("tok"));
        let passed = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        assert_eq!(passed, text.as_bytes());
    }
}
