//! Logging in and out with a plain HTML form, and the language switch.

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Chrome, render};
use crate::AppState;
use crate::extract::{LANG_COOKIE, clear_session_cookie, session_cookie, session_token};
use crate::i18n::Lang;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    error: Option<String>,
    next: String,
    username: String,
}

#[derive(Debug, Deserialize, Default)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only local paths may follow a login or a language switch, so a link to
/// `/login?next=https://evil.example` cannot send anyone elsewhere.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

pub async fn form(lang: Lang, Query(query): Query<NextQuery>) -> Response {
    render(&LoginPage {
        chrome: Chrome::new(lang, None, "login", "/login"),
        error: None,
        next: safe_next(query.next.as_deref()),
        username: String::new(),
    })
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

pub async fn submit(
    State(state): State<AppState>,
    lang: Lang,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    match state.service.login(&form.username, &form.password, Some(peer.ip().to_string())).await {
        Ok(login) => {
            let mut response = Redirect::to(&next).into_response();
            response.headers_mut().insert(header::SET_COOKIE, session_cookie(&state, &login.token));
            response
        }
        Err(error) => {
            let api = crate::error::ApiError::from_service(error, lang);
            let status = api.status;
            let page = LoginPage {
                chrome: Chrome::new(lang, None, "login", "/login"),
                error: Some(api.message()),
                next,
                username: form.username,
            };
            (status, render(&page)).into_response()
        }
    }
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = session_token(&headers) {
        // A failure here still clears the browser's cookie below.
        let actor = state.service.authenticate(&token).await.ok();
        let _ = state.service.logout(actor.as_ref(), &token).await;
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(header::SET_COOKIE, clear_session_cookie());
    response
}

/// Remembers the chosen language in a cookie for a year and goes back.
pub async fn switch_language(Path(tag): Path<String>, Query(query): Query<NextQuery>) -> Response {
    let next = safe_next(query.next.as_deref());
    let lang = Lang::parse(&tag).unwrap_or(Lang::ZhCn);
    let mut response = Redirect::to(&next).into_response();
    let cookie = format!("{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000", lang.tag());
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_follow_a_login() {
        assert_eq!(safe_next(Some("/residents?name=%E7%8E%8B")), "/residents?name=%E7%8E%8B");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
