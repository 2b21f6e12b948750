//! The HTML pages: rendered on the server with askama, styled and scripted by
//! our own small embedded assets, and working without JavaScript. Every
//! string goes through the translations; every page checks its session and
//! sends a visitor without one to the login page.

pub mod accounts;
pub mod api_docs;
pub mod areas;
pub mod audit;
pub mod charts;
pub mod dashboard;
pub mod evaluation;
pub mod exports;
pub mod households;
pub mod imports;
pub mod login;
pub mod m_health;
pub mod map;
pub mod matching;
pub mod mobile;
pub mod qr;
pub mod residents;
pub mod selfservice;
pub mod tasks;
pub mod unreported;

use askama::Template;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use epigrid_domain::{Action, Role};
use epigrid_service::{Actor, ServiceError};

use crate::AppState;
use crate::extract::session_token;
use crate::i18n::{Lang, t};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::show))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", axum::routing::post(login::logout))
        .route("/lang/{lang}", get(login::switch_language))
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
        .route("/areas/{id}", get(areas::show))
        .route("/areas/{id}/qr", get(qr::show))
        .route("/grids/{id}/unreported", get(unreported::show))
        .route("/households/{id}", get(households::show))
        .route("/residents", get(residents::search_get))
        .route("/residents/search", axum::routing::post(residents::search_post))
        .route("/residents/{id}", get(residents::show))
        .route("/residents/{id}/edit", get(residents::edit_form).post(residents::edit_submit))
        .route("/residents/{id}/unmask", axum::routing::post(residents::unmask))
        .route("/accounts", get(accounts::list))
        .route("/accounts/new", get(accounts::new_form).post(accounts::create))
        .route("/accounts/{id}", get(accounts::show).post(accounts::update))
        .route("/audit", get(audit::show))
        .merge(mobile::routes())
        .merge(m_health::routes())
        .route("/tasks", get(tasks::board).post(tasks::report))
        .route("/tasks/new", get(tasks::new_form))
        .route("/tasks/{id}", get(tasks::show))
        .route("/tasks/{id}/transitions", axum::routing::post(tasks::transition))
        .route("/evaluation", get(evaluation::show))
        .route("/evaluation.csv", get(evaluation::csv))
        .route("/exports", get(exports::show).post(exports::submit))
        .merge(matching::routes())
        .merge(imports::routes())
}

/// Translations for templates: `{{ tr.t("key") }}`.
#[derive(Debug, Clone, Copy)]
pub struct Tr(pub Lang);

impl Tr {
    pub fn t(&self, key: &str) -> String {
        t(self.0, key)
    }

    /// A message with `{name}` placeholders filled in.
    pub fn fill(&self, key: &str, values: &[(&str, String)]) -> String {
        let mut text = self.t(key);
        for (name, value) in values {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }
}

/// Who is logged in, as the page header shows them.
#[derive(Debug, Clone)]
pub struct UserChrome {
    pub display_name: String,
    pub role_key: String,
    pub manages_accounts: bool,
    /// Works tasks in the field: gets the link to the phone pages.
    pub field_worker: bool,
    /// Sees the task board (every role but volunteers).
    pub sees_tasks: bool,
    /// Reads the evaluation of workers and grids.
    pub evaluates: bool,
    /// May export residents, tasks and the daily report.
    pub exports: bool,
    /// Receives lists from above and matches them (协查名单).
    pub matching: bool,
    /// May import residents from a spreadsheet.
    pub imports: bool,
}

/// What every page's frame needs: language, user, where we are.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub tr: Tr,
    pub user: Option<UserChrome>,
    /// The nav section to mark current.
    pub section: &'static str,
    /// The current path and query, URL-encoded, for `?next=` links.
    pub path_encoded: String,
    /// The session's CSRF token, for the hidden `_csrf` field of every POST
    /// form (empty without a session).
    pub csrf: String,
}

impl Chrome {
    pub fn new(lang: Lang, actor: Option<&Actor>, section: &'static str, path: &str) -> Self {
        Self {
            tr: Tr(lang),
            user: actor.map(|a| UserChrome {
                display_name: a.username.clone(),
                role_key: format!("role.{}", a.role.as_str()),
                manages_accounts: a.role.allows(Action::ManageAccounts),
                field_worker: matches!(a.role, Role::GridWorker | Role::GridLeader),
                sees_tasks: a.role != Role::Volunteer,
                evaluates: matches!(
                    a.role,
                    Role::SubDistrictAdmin | Role::CommunityAdmin | Role::GridLeader
                ),
                exports: a.role.allows(Action::ReadResidents),
                matching: matching::may_match(a.role),
                imports: imports::may_import(a.role),
            }),
            section,
            path_encoded: form_urlencoded::byte_serialize(path.as_bytes()).collect(),
            csrf: String::new(),
        }
    }

    pub fn t(&self, key: &str) -> String {
        self.tr.t(key)
    }

    pub fn lang_tag(&self) -> &'static str {
        self.tr.0.tag()
    }
}

/// A logged-in page visitor. Without a valid session the page redirects to
/// `/login?next=…` instead of failing.
#[derive(Debug, Clone)]
pub struct PageActor {
    pub actor: Actor,
    pub lang: Lang,
    /// Path and query of this request, for the language switch and `next`.
    pub path: String,
    /// The session's CSRF token (see [`crate::csrf`]).
    pub csrf: String,
}

impl PageActor {
    pub fn chrome(&self, section: &'static str) -> Chrome {
        let mut chrome = Chrome::new(self.lang, Some(&self.actor), section, &self.path);
        chrome.csrf.clone_from(&self.csrf);
        chrome
    }

    pub fn role(&self) -> Role {
        self.actor.role
    }
}

fn path_and_query(parts: &Parts) -> String {
    parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into())
}

impl FromRequestParts<AppState> for PageActor {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let lang = Lang::from_request_parts(parts, state).await.unwrap_or(Lang::ZhCn);
        let path = path_and_query(parts);
        let to_login = || {
            let next: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
            Redirect::to(&format!("/login?next={next}")).into_response()
        };
        let Some(token) = session_token(&parts.headers) else {
            return Err(to_login());
        };
        match state.service.authenticate(&token).await {
            Ok(mut actor) => {
                actor.client_addr = crate::extract::client_addr(parts);
                let csrf = crate::csrf::csrf_token(state, &token);
                Ok(PageActor { actor, lang, path, csrf })
            }
            Err(ServiceError::Unauthenticated) => Err(to_login()),
            Err(error) => Err(error_page(lang, error)),
        }
    }
}

/// Renders a template, or a plain error page if rendering fails.
pub fn render<T: Template>(template: &T) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(%error, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    message: String,
}

/// A full page for a service error: 404 for anything outside the scope, and
/// so on, with the reason in the visitor's language.
pub fn error_page(lang: Lang, error: ServiceError) -> Response {
    let api = crate::error::ApiError::from_service(error, lang);
    message_page(lang, api.status, api.message())
}

/// A full error page with `status` and a message already in the visitor's
/// language.
pub fn message_page(lang: Lang, status: StatusCode, message: String) -> Response {
    let page =
        ErrorPage { chrome: Chrome::new(lang, None, "", "/"), status: status.as_u16(), message };
    (status, render(&page)).into_response()
}

/// Shorthand for handlers: a service result or the error page.
pub fn or_error_page<T>(lang: Lang, result: Result<T, ServiceError>) -> Result<T, Response> {
    result.map_err(|e| error_page(lang, e))
}

async fn stylesheet() -> impl IntoResponse {
    asset("text/css; charset=utf-8", include_str!("../../static/app.css"))
}

async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", include_str!("../../static/app.js"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Assets change only with the binary; an hour keeps phones from
    // re-fetching on every page while a deploy still shows within the hour.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}
