//! The grid worker's health report at the door (issue #6), on the phone:
//! `/m/households/{id}` shows the household's members with "whole household
//! normal" in one tap and an entry per person. With the script
//! (`/static/m_health.js`) each report goes through the phone pages'
//! offline queue (`offline.js`) to `POST /api/v1/households/{id}/health-reports`
//! with an idempotency key made when the worker taps, so it survives a
//! stairwell without signal and is stored once however often it is
//! replayed. Without the script the form posts here and the page answers
//! with the reference.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use epigrid_domain::AreaKind;
use epigrid_domain::intake::{Symptom, Whereabouts};
use epigrid_service::intake::{HealthEntryForm, HouseholdAtTheDoor, StaffHealthForm};
use uuid::Uuid;

use super::mobile::PhoneChrome;
use super::{Chrome, PageActor, error_page, or_error_page, render};
use crate::AppState;
use crate::i18n::Lang;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/m/households/{id}", get(show).post(submit))
        .route("/static/m_health.js", get(script))
}

async fn script() -> Response {
    let mut response = include_str!("../../static/m_health.js").into_response();
    let headers = response.headers_mut();
    headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}

#[derive(Debug, Clone)]
pub struct SymptomChoice {
    pub value: &'static str,
    pub label: String,
}

#[derive(Debug, Clone)]
pub struct Person {
    pub index: usize,
    pub id: Uuid,
    pub name: String,
    /// A fresh key for this person's entry form.
    pub key: String,
    /// Has a health entry today (their own, a relative's or a worker's).
    pub reported_today: bool,
}

#[derive(Template)]
#[template(path = "m_household.html")]
struct HouseholdPage {
    chrome: Chrome,
    phone: PhoneChrome,
    household_id: Uuid,
    label: String,
    people: Vec<Person>,
    /// "今天已报告 1 / 3 人".
    reported_line: String,
    symptoms: Vec<SymptomChoice>,
    normal_key: String,
    notice: Option<String>,
    error: Option<String>,
}

fn fresh_key() -> String {
    Uuid::now_v7().simple().to_string()
}

fn parse_id(text: &str, lang: Lang) -> Result<Uuid, Response> {
    Uuid::try_parse(text).map_err(|_| error_page(lang, epigrid_service::ServiceError::NotFound))
}

async fn page_for(
    state: &AppState,
    page: &PageActor,
    id: Uuid,
    notice: Option<String>,
    error: Option<String>,
) -> Result<HouseholdPage, Response> {
    let lang = page.lang;
    let service = &state.service;
    let actor = &page.actor;
    let HouseholdAtTheDoor { household, members, reported_today: reported } =
        or_error_page(lang, service.household_at_the_door(actor, id).await)?;
    let trail = match household.unit_id {
        Some(unit) => or_error_page(lang, service.area_trail(actor, unit).await)?,
        None => Vec::new(),
    };
    let mut label: Vec<String> = trail
        .iter()
        .filter(|a| matches!(a.kind, AreaKind::Building | AreaKind::Unit))
        .map(|a| a.name.clone())
        .collect();
    label.push(household.room.clone());
    let phone = PhoneChrome { chrome: page.chrome("mobile"), username: actor.username.clone() };
    let tr = phone.chrome.tr;
    Ok(HouseholdPage {
        chrome: phone.chrome.clone(),
        phone,
        household_id: id,
        label: label.join(" "),
        people: members
            .iter()
            .enumerate()
            .map(|(index, m)| Person {
                index,
                id: m.id,
                name: m.name.clone(),
                key: fresh_key(),
                reported_today: reported.contains(&m.id),
            })
            .collect(),
        reported_line: tr.fill(
            "m.health.reported_today",
            &[("done", reported.len().to_string()), ("all", members.len().to_string())],
        ),
        symptoms: Symptom::ALL
            .iter()
            .map(|s| SymptomChoice {
                value: s.as_str(),
                label: tr.t(&format!("intake.symptom.{}", s.as_str())),
            })
            .collect(),
        normal_key: fresh_key(),
        notice,
        error,
    })
}

fn private(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    response
}

pub async fn show(
    State(state): State<AppState>,
    page: PageActor,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let id = parse_id(&id, page.lang)?;
    let view = page_for(&state, &page, id, None, None).await?;
    Ok(private(render(&view)))
}

/// The form without the script: `whole_household_normal=1`, or one person's
/// `resident_id`, `temperature`, `symptoms`, `whereabouts`.
pub async fn submit(
    State(state): State<AppState>,
    page: PageActor,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let lang = page.lang;
    let id = parse_id(&id, lang)?;
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let get = |name: &str| {
        fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_default()
    };
    let form = if !get("whole_household_normal").is_empty() {
        StaffHealthForm::WholeHouseholdNormal
    } else {
        StaffHealthForm::Entries(vec![HealthEntryForm {
            resident_id: Uuid::try_parse(get("resident_id").trim()).unwrap_or_default(),
            temperature: get("temperature"),
            symptoms: fields
                .iter()
                .filter(|(n, _)| n == "symptoms")
                .map(|(_, v)| v.clone())
                .collect(),
            whereabouts: Some(get("whereabouts"))
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| Whereabouts::AtHome.as_str().to_owned()),
        }])
    };
    let result =
        state.service.staff_health_report(&page.actor, id, form, &get("idempotency_key")).await;
    let tr = super::Tr(lang);
    match result {
        Ok(receipt) => {
            let notice = tr.fill("m.health.stored", &[("reference", receipt.reference)]);
            let view = page_for(&state, &page, id, Some(notice), None).await?;
            Ok(private(render(&view)))
        }
        Err(epigrid_service::ServiceError::NotFound) => {
            Err(error_page(lang, epigrid_service::ServiceError::NotFound))
        }
        Err(error) => {
            let api = crate::error::ApiError::from_service(error, lang);
            let view = page_for(&state, &page, id, None, Some(api.message())).await?;
            Ok(private((StatusCode::UNPROCESSABLE_ENTITY, render(&view)).into_response()))
        }
    }
}
