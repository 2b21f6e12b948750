//! Residents: search, details, the edit form, and unmasking one field for
//! roles allowed to. ID numbers and phones reach a page masked; a clear
//! value is shown only on the unmask answer, which is never cached.
//!
//! Also the small form helpers the account pages share: errors placed next
//! to their field, and malformed form bodies answered with the form page.

use std::collections::{HashMap, HashSet};

use askama::Template;
use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use epigrid_domain::{Action, AreaKind, IdDocumentKind, Relation, Sex};
use epigrid_service::privacy::{UnmaskField, UnmaskReason};
use epigrid_service::registry::{ResidentChanges, ResidentSearch};
use epigrid_service::views::ResidentView;
use epigrid_service::{Actor, Service, ServiceError};
use serde::Deserialize;
use uuid::Uuid;

use super::areas::{Crumb, crumbs, kind_key, parse_id};
use super::households::{MemberRow, member_rows, relation_key, sex_key, tag_label, tag_labels};
use super::{Chrome, PageActor, Tr, error_page, or_error_page, render};
use crate::AppState;
use crate::i18n::{Lang, t};

// ---- form helpers ----------------------------------------------------------

/// Errors of a submitted form: one per field, shown right after the field,
/// and one for the form as a whole.
#[derive(Debug, Clone, Default)]
pub struct FormErrors {
    pub general: Option<String>,
    fields: Vec<(String, String)>,
    /// The form itself could not be read (400 rather than 422).
    unreadable: bool,
}

impl FormErrors {
    pub fn field(lang: Lang, field: &str, code: &str) -> Self {
        Self { fields: vec![(field.to_owned(), t(lang, code))], ..Self::default() }
    }

    pub fn general(lang: Lang, code: &str) -> Self {
        Self { general: Some(t(lang, code)), ..Self::default() }
    }

    /// The message for `field`, if it has one.
    pub fn of(&self, field: &str) -> Option<&str> {
        self.fields.iter().find(|(f, _)| f == field).map(|(_, m)| m.as_str())
    }

    pub fn has(&self, field: &str) -> bool {
        self.of(field).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.general.is_none() && self.fields.is_empty()
    }

    /// A validation error or conflict from the service, next to its field
    /// when the form has that field, else at the top of the form. Any other
    /// error is handed back for the error page.
    pub fn from_service(
        lang: Lang,
        error: ServiceError,
        fields: &[&str],
    ) -> Result<Self, ServiceError> {
        match &error {
            ServiceError::Invalid { field, code } | ServiceError::Conflict { field, code } => {
                if fields.contains(&field.as_str()) {
                    Ok(Self::field(lang, field, code))
                } else {
                    Ok(Self::general(lang, code))
                }
            }
            _ => Err(error),
        }
    }
}

/// The body of a submitted form, or the errors to show on the form page
/// when it cannot be read (wrong content type, too large, not a form).
pub fn form_body<T>(lang: Lang, result: Result<Form<T>, FormRejection>) -> Result<T, FormErrors> {
    match result {
        Ok(Form(value)) => Ok(value),
        Err(rejection) => {
            tracing::debug!(%rejection, "unreadable form");
            let code = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                "request.too_large"
            } else {
                "form.malformed"
            };
            Err(FormErrors { unreadable: true, ..FormErrors::general(lang, code) })
        }
    }
}

/// The status of a form page shown again: 400 for an unreadable form, 422
/// for a value the rules reject.
/// 200 without errors.
pub fn form_status(errors: &FormErrors) -> StatusCode {
    if errors.unreadable {
        StatusCode::BAD_REQUEST
    } else if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

/// The page with a status other than 200.
pub fn with_status(status: StatusCode, response: Response) -> Response {
    (status, response).into_response()
}

/// A select option.
#[derive(Debug, Clone)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Dates are shown as ISO dates, the form of the `date` input and of
/// Chinese official documents alike.
pub fn show_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

fn id_kind_key(kind: IdDocumentKind) -> &'static str {
    match kind {
        IdDocumentKind::ResidentIdCard => "id_kind.resident_id_card",
        IdDocumentKind::HkMacauTaiwanPermit => "id_kind.hk_macau_taiwan_permit",
        IdDocumentKind::HomeReturnPermit => "id_kind.home_return_permit",
        IdDocumentKind::ForeignerPermanentOld | IdDocumentKind::ForeignerPermanentNew => {
            "id_kind.foreigner_permanent"
        }
    }
}

fn tag_choices(service: &Service, tr: &Tr, selected: &[String]) -> Vec<Choice> {
    service
        .tag_catalogue()
        .iter()
        .map(|tag| Choice {
            value: tag.as_str().to_owned(),
            label: tag_label(tr, tag.as_str()),
            selected: selected.iter().any(|s| s == tag.as_str()),
        })
        .collect()
}

/// Where a resident lives, for result lists: "第一网格 · 1号楼 1单元 101".
async fn addresses(
    service: &Service,
    actor: &Actor,
    residents: &[ResidentView],
    tr: &Tr,
) -> Result<HashMap<Uuid, String>, ServiceError> {
    let household_ids: Vec<Uuid> = residents.iter().map(|r| r.household_id).collect();
    let rooms = service.household_rooms(actor, &household_ids).await?;
    let area_ids: Vec<Uuid> = residents
        .iter()
        .flat_map(|r| [r.grid_id, r.building_id, r.unit_id])
        .flatten()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let names = service.area_names(actor, &area_ids).await?;
    let name = |id: Option<Uuid>| id.and_then(|id| names.get(&id)).map(|a| a.name.clone());
    Ok(residents
        .iter()
        .map(|r| {
            let room = rooms.get(&r.household_id).cloned().unwrap_or_default();
            let place = [name(r.building_id), name(r.unit_id), Some(room)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            let label = match name(r.grid_id) {
                Some(grid) => tr.fill("resident.address", &[("grid", grid), ("place", place)]),
                None => place,
            };
            (r.household_id, label)
        })
        .collect())
}

// ---- search ----------------------------------------------------------------

/// What the search form holds, as typed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SearchInput {
    name: String,
    id_number: String,
    phone: String,
    tag: String,
    area: String,
    cursor: String,
}

/// Filters that may travel in a link: no ID numbers or phones in URLs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SearchLink {
    name: String,
    tag: String,
    area: String,
    cursor: String,
}

#[derive(Debug, Clone)]
struct ResultRow {
    href: String,
    name: String,
    sex: String,
    age: u32,
    id_number: String,
    phone: String,
    household_href: String,
    address: String,
    tags: Vec<String>,
}

#[derive(Template)]
#[template(path = "residents.html")]
struct SearchPage {
    chrome: Chrome,
    input: SearchInput,
    errors: FormErrors,
    tags: Vec<Choice>,
    areas: Vec<Choice>,
    results: Option<Vec<ResultRow>>,
    /// The next page as a link (filters that may be in a URL)…
    next_href: Option<String>,
    /// …or as a form (a search by ID number or phone).
    next_cursor: Option<String>,
    first_href: Option<String>,
}

const SEARCH_FIELDS: &[&str] = &["name", "id_number", "phone", "tag", "area"];

async fn search_page(
    state: &AppState,
    page: &PageActor,
    input: SearchInput,
    mut errors: FormErrors,
) -> Response {
    let lang = page.lang;
    let service = &state.service;
    let actor = &page.actor;
    let chrome = page.chrome("residents");
    let tr = chrome.tr;
    let filled = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let area_id = match filled(&input.area) {
        Some(text) => match Uuid::try_parse(&text) {
            Ok(id) => Some(id),
            Err(_) => {
                errors = FormErrors::field(lang, "area", "not_found");
                None
            }
        },
        None => None,
    };
    let mut results = None;
    let (mut next_href, mut next_cursor) = (None, None);
    if errors.is_empty() {
        let search = ResidentSearch {
            name: filled(&input.name),
            id_number: filled(&input.id_number),
            phone: filled(&input.phone),
            tag: filled(&input.tag),
            area_id,
            cursor: filled(&input.cursor),
            ..ResidentSearch::default()
        };
        match service.search_residents(actor, search).await {
            Ok(found) => {
                let places = match addresses(service, actor, &found.items, &tr).await {
                    Ok(places) => places,
                    Err(e) => return error_page(lang, e),
                };
                let none = tr.t("value.none");
                results = Some(
                    found
                        .items
                        .iter()
                        .map(|r| ResultRow {
                            href: format!("/residents/{}", r.id),
                            name: r.name.clone(),
                            sex: tr.t(sex_key(r.sex)),
                            age: r.age,
                            id_number: r.id_number.clone().unwrap_or_else(|| none.clone()),
                            phone: r.phone.clone().unwrap_or_else(|| none.clone()),
                            household_href: format!("/households/{}", r.household_id),
                            address: places.get(&r.household_id).cloned().unwrap_or_default(),
                            tags: tag_labels(&tr, &r.tags),
                        })
                        .collect(),
                );
                if let Some(cursor) = found.next_cursor {
                    if filled(&input.id_number).is_some() || filled(&input.phone).is_some() {
                        next_cursor = Some(cursor);
                    } else {
                        next_href = Some(search_href(&input, Some(&cursor)));
                    }
                }
            }
            Err(ServiceError::NotFound) if area_id.is_some() => {
                errors = FormErrors::field(lang, "area", "not_found");
            }
            Err(error) => match FormErrors::from_service(lang, error, SEARCH_FIELDS) {
                Ok(e) => errors = e,
                Err(error) => return error_page(lang, error),
            },
        }
    }
    let choices = match service.area_choices(actor).await {
        Ok(c) => c,
        Err(e) => return error_page(lang, e),
    };
    let areas = choices
        .iter()
        .filter(|c| c.kind != AreaKind::SubDistrict)
        .map(|c| Choice {
            value: c.id.to_string(),
            label: area_choice_label(&tr, c.kind, &c.name, c.parent_name.as_deref()),
            selected: input.area.trim() == c.id.to_string(),
        })
        .collect();
    let first_href = filled(&input.cursor)
        .filter(|_| filled(&input.id_number).is_none() && filled(&input.phone).is_none())
        .map(|_| search_href(&input, None));
    let status = form_status(&errors);
    let page = SearchPage {
        tags: tag_choices(service, &tr, std::slice::from_ref(&input.tag)),
        areas,
        results,
        next_href,
        next_cursor,
        first_href,
        errors,
        input,
        chrome,
    };
    with_status(status, render(&page))
}

/// "网格 · 第一网格（黄河社区）": an area in a pick list.
pub fn area_choice_label(tr: &Tr, kind: AreaKind, name: &str, parent: Option<&str>) -> String {
    let kind = tr.t(kind_key(kind));
    match parent {
        Some(parent) => tr.fill(
            "area.choice_in",
            &[("kind", kind), ("name", name.to_owned()), ("parent", parent.to_owned())],
        ),
        None => tr.fill("area.choice", &[("kind", kind), ("name", name.to_owned())]),
    }
}

fn search_href(input: &SearchInput, cursor: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in [("name", &input.name), ("tag", &input.tag), ("area", &input.area)] {
        if !value.trim().is_empty() {
            query.append_pair(key, value.trim());
        }
    }
    if let Some(cursor) = cursor {
        query.append_pair("cursor", cursor);
    }
    let query = query.finish();
    if query.is_empty() { "/residents".to_owned() } else { format!("/residents?{query}") }
}

pub async fn search_get(
    State(state): State<AppState>,
    page: PageActor,
    query: Result<Query<SearchLink>, QueryRejection>,
) -> Response {
    let link = query.map(|Query(q)| q).unwrap_or_default();
    let input = SearchInput {
        name: link.name,
        tag: link.tag,
        area: link.area,
        cursor: link.cursor,
        ..SearchInput::default()
    };
    search_page(&state, &page, input, FormErrors::default()).await
}

pub async fn search_post(
    State(state): State<AppState>,
    page: PageActor,
    form: Result<Form<SearchInput>, FormRejection>,
) -> Response {
    match form_body(page.lang, form) {
        Ok(input) => search_page(&state, &page, input, FormErrors::default()).await,
        Err(errors) => search_page(&state, &page, SearchInput::default(), errors).await,
    }
}

// ---- details ---------------------------------------------------------------

#[derive(Debug, Clone)]
struct ResidentDetails {
    id: Uuid,
    name: String,
    sex: String,
    birth_date: String,
    /// "34岁".
    age_label: String,
    id_kind: Option<String>,
    id_number: Option<String>,
    phone: Option<String>,
    relation: String,
    floating: bool,
    residence: String,
    arrived_on: Option<String>,
    origin: Option<String>,
    tags: Vec<String>,
    household_href: String,
    household_label: String,
}

#[derive(Template)]
#[template(path = "resident.html")]
struct ResidentPage {
    chrome: Chrome,
    crumbs: Vec<Crumb>,
    r: ResidentDetails,
    members: Vec<MemberRow>,
    notice: Option<String>,
    can_edit: bool,
    /// The unmask control: fields that have a value, and the reasons.
    unmask_fields: Vec<Choice>,
    unmask_reasons: Vec<Choice>,
    unmask_errors: FormErrors,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NoticeQuery {
    saved: Option<String>,
}

async fn resident_page(
    state: &AppState,
    page: &PageActor,
    id: Uuid,
    notice: Option<String>,
    unmask_errors: FormErrors,
    unmask_input: (&str, &str),
) -> Result<Response, Response> {
    let lang = page.lang;
    let service = &state.service;
    let actor = &page.actor;
    let resident = or_error_page(lang, service.get_resident(actor, id).await)?;
    let household = or_error_page(lang, service.get_household(actor, resident.household_id).await)?;
    let members = or_error_page(lang, service.household_members(actor, household.id).await)?;
    let trail = match household.unit_id {
        Some(unit) => or_error_page(lang, service.area_trail(actor, unit).await)?,
        None => Vec::new(),
    };
    let chrome = page.chrome("residents");
    let tr = chrome.tr;
    let place: Vec<&str> = trail
        .iter()
        .filter(|a| matches!(a.kind, AreaKind::Building | AreaKind::Unit))
        .map(|a| a.name.as_str())
        .collect();
    let household_label = tr.fill("household.title", &[("room", household.room.clone())]);
    let mut crumbs = crumbs(&trail, &tr);
    crumbs.push(Crumb {
        href: format!("/households/{}", household.id),
        label: household_label.clone(),
        kind: tr.t("household.kind"),
    });
    let others: Vec<ResidentView> = members.into_iter().filter(|m| m.id != resident.id).collect();
    let can_unmask = state.service.may_unmask(actor.role);
    let mut unmask_fields = Vec::new();
    if can_unmask {
        if resident.id_number.is_some() {
            unmask_fields.push(("id_number", "resident.id_number"));
        }
        if resident.phone.is_some() {
            unmask_fields.push(("phone", "resident.phone"));
        }
    }
    let unmask_fields = unmask_fields
        .into_iter()
        .map(|(value, key)| Choice {
            value: value.to_owned(),
            label: tr.t(key),
            selected: unmask_input.0 == value,
        })
        .collect();
    let unmask_reasons = UnmaskReason::ALL
        .iter()
        .map(|r| Choice {
            value: r.as_str().to_owned(),
            label: tr.t(&format!("unmask.reason.{}", r.as_str())),
            selected: unmask_input.1 == r.as_str(),
        })
        .collect();
    let details = ResidentDetails {
        id: resident.id,
        name: resident.name.clone(),
        sex: tr.t(sex_key(resident.sex)),
        birth_date: show_date(resident.birth_date),
        age_label: tr.fill("resident.age_value", &[("age", resident.age.to_string())]),
        id_kind: resident.id_kind.map(|k| tr.t(id_kind_key(k))),
        id_number: resident.id_number.clone(),
        phone: resident.phone.clone(),
        relation: tr.t(&relation_key(resident.relation)),
        floating: resident.residence == "floating",
        residence: tr.t(&format!("residence.{}", resident.residence)),
        arrived_on: resident.arrived_on.map(show_date),
        origin: resident.origin.clone(),
        tags: tag_labels(&tr, &resident.tags),
        household_href: format!("/households/{}", household.id),
        household_label: if place.is_empty() {
            household_label
        } else {
            format!("{} {}", place.join(" "), household_label)
        },
    };
    let status = form_status(&unmask_errors);
    Ok(with_status(
        status,
        render(&ResidentPage {
            crumbs,
            r: details,
            members: member_rows(&others, &tr),
            notice,
            can_edit: actor.role.allows(Action::WriteResidents),
            unmask_fields,
            unmask_reasons,
            unmask_errors,
            chrome,
        }),
    ))
}

pub async fn show(
    State(state): State<AppState>,
    page: PageActor,
    Path(id): Path<String>,
    query: Result<Query<NoticeQuery>, QueryRejection>,
) -> Result<Response, Response> {
    let id = parse_id(&id, page.lang)?;
    let saved = query.ok().and_then(|Query(q)| q.saved).is_some();
    let notice = saved.then(|| t(page.lang, "resident.saved"));
    resident_page(&state, &page, id, notice, FormErrors::default(), ("", "")).await
}

// ---- unmask ----------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UnmaskInput {
    field: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "unmasked.html")]
struct UnmaskedPage {
    chrome: Chrome,
    resident_href: String,
    heading: String,
    value: Option<String>,
    reason: String,
    shown_at: String,
}

pub async fn unmask(
    State(state): State<AppState>,
    page: PageActor,
    Path(id): Path<String>,
    form: Result<Form<UnmaskInput>, FormRejection>,
) -> Result<Response, Response> {
    let lang = page.lang;
    let id = parse_id(&id, lang)?;
    let input = match form_body(lang, form) {
        Ok(input) => input,
        Err(errors) => return resident_page(&state, &page, id, None, errors, ("", "")).await,
    };
    let field = match input.field.as_str() {
        "id_number" => Some(UnmaskField::IdNumber),
        "phone" => Some(UnmaskField::Phone),
        _ => None,
    };
    let reason = UnmaskReason::parse(&input.reason);
    let (Some(field), Some(reason)) = (field, reason) else {
        let errors = if field.is_none() {
            FormErrors::field(lang, "unmask-field", "field.required")
        } else {
            FormErrors::field(lang, "unmask-reason", "unmask.reason_required")
        };
        return resident_page(&state, &page, id, None, errors, (&input.field, &input.reason)).await;
    };
    let service = &state.service;
    let resident = or_error_page(lang, service.get_resident(&page.actor, id).await)?;
    let value = or_error_page(lang, service.unmask_resident(&page.actor, id, field, reason).await)?;
    let chrome = page.chrome("residents");
    let tr = chrome.tr;
    let field_label = tr.t(match field {
        UnmaskField::IdNumber => "resident.id_number",
        UnmaskField::Phone => "resident.phone",
    });
    let shown_at = service
        .now()
        .with_timezone(&service.settings().time_zone_offset)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let mut response = render(&UnmaskedPage {
        resident_href: format!("/residents/{id}"),
        heading: tr.fill("unmask.heading", &[("name", resident.name), ("field", field_label)]),
        value,
        reason: tr.t(&format!("unmask.reason.{}", reason.as_str())),
        shown_at,
        chrome,
    });
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(response)
}

// ---- edit ------------------------------------------------------------------

/// The edit form as typed. ID number and phone start empty: empty means
/// unchanged, because the page never holds the clear values.
#[derive(Debug, Clone, Default)]
struct EditInput {
    name: String,
    id_number: String,
    clear_id_number: bool,
    phone: String,
    clear_phone: bool,
    sex: String,
    birth_date: String,
    relation: String,
    floating: bool,
    arrived_on: String,
    origin: String,
    tags: Vec<String>,
}

const EDIT_FIELDS: &[&str] = &[
    "name",
    "id_number",
    "phone",
    "sex",
    "birth_date",
    "relation",
    "arrived_on",
    "origin",
    "tags",
];

impl EditInput {
    fn from_view(r: &ResidentView) -> Self {
        Self {
            name: r.name.clone(),
            sex: match r.sex {
                Sex::Male => "male".into(),
                Sex::Female => "female".into(),
            },
            birth_date: show_date(r.birth_date),
            relation: r.relation.as_str().to_owned(),
            floating: r.residence == "floating",
            arrived_on: r.arrived_on.map(show_date).unwrap_or_default(),
            origin: r.origin.clone().unwrap_or_default(),
            tags: r.tags.iter().map(|t| t.as_str().to_owned()).collect(),
            ..Self::default()
        }
    }

    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut input = Self::default();
        for (key, value) in pairs {
            match key.as_str() {
                "name" => input.name = value,
                "id_number" => input.id_number = value,
                "clear_id_number" => input.clear_id_number = true,
                "phone" => input.phone = value,
                "clear_phone" => input.clear_phone = true,
                "sex" => input.sex = value,
                "birth_date" => input.birth_date = value,
                "relation" => input.relation = value,
                "floating" => input.floating = true,
                "arrived_on" => input.arrived_on = value,
                "origin" => input.origin = value,
                "tags" => input.tags.push(value),
                _ => {}
            }
        }
        input
    }

    /// The changes to send, or the error of the first field that does not
    /// even parse. Sex and birth date are sent only when changed, so that a
    /// new ID number re-derives them.
    fn changes(&self, current: &ResidentView, lang: Lang) -> Result<ResidentChanges, FormErrors> {
        let date = |field: &str, text: &str| -> Result<Option<NaiveDate>, FormErrors> {
            let text = text.trim();
            if text.is_empty() {
                return Ok(None);
            }
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| FormErrors::field(lang, field, "date.invalid"))
        };
        let sex = match self.sex.as_str() {
            "male" => Sex::Male,
            "female" => Sex::Female,
            _ => return Err(FormErrors::field(lang, "sex", "field.required")),
        };
        let birth_date = date("birth_date", &self.birth_date)?
            .ok_or_else(|| FormErrors::field(lang, "birth_date", "field.required"))?;
        let relation = Relation::parse(&self.relation)
            .ok_or_else(|| FormErrors::field(lang, "relation", "field.required"))?;
        let arrived_on = if self.floating { date("arrived_on", &self.arrived_on)? } else { None };
        let replace = |text: &str, clear: bool| match text.trim() {
            "" if clear => Some(None),
            "" => None,
            value => Some(Some(value.to_owned())),
        };
        Ok(ResidentChanges {
            name: Some(self.name.clone()),
            id_number: replace(&self.id_number, self.clear_id_number),
            phone: replace(&self.phone, self.clear_phone),
            sex: (sex != current.sex).then_some(sex),
            birth_date: (birth_date != current.birth_date).then_some(birth_date),
            relation: Some(relation),
            floating: Some(self.floating),
            arrived_on: Some(arrived_on),
            origin: Some(Some(self.origin.trim().to_owned()).filter(|o| !o.is_empty())),
            tags: Some(self.tags.clone()),
            ..ResidentChanges::default()
        })
    }
}

#[derive(Template)]
#[template(path = "resident_edit.html")]
struct EditPage {
    chrome: Chrome,
    crumbs: Vec<Crumb>,
    resident_href: String,
    title: String,
    input: EditInput,
    errors: FormErrors,
    masked_id: Option<String>,
    masked_phone: Option<String>,
    relations: Vec<Choice>,
    tags: Vec<Choice>,
}

impl EditPage {
    fn sex_is(&self, value: &str) -> bool {
        self.input.sex == value
    }
}

async fn edit_page(
    state: &AppState,
    page: &PageActor,
    resident: &ResidentView,
    input: EditInput,
    errors: FormErrors,
) -> Result<Response, Response> {
    let lang = page.lang;
    let service = &state.service;
    let trail = match resident.unit_id {
        Some(unit) => or_error_page(lang, service.area_trail(&page.actor, unit).await)?,
        None => Vec::new(),
    };
    let chrome = page.chrome("residents");
    let tr = chrome.tr;
    let mut crumbs = crumbs(&trail, &tr);
    crumbs.push(Crumb {
        href: format!("/residents/{}", resident.id),
        label: resident.name.clone(),
        kind: tr.t("resident.kind"),
    });
    let relations = Relation::ALL
        .iter()
        .map(|r| Choice {
            value: r.as_str().to_owned(),
            label: tr.t(&relation_key(*r)),
            selected: input.relation == r.as_str(),
        })
        .collect();
    let status = form_status(&errors);
    Ok(with_status(
        status,
        render(&EditPage {
            crumbs,
            resident_href: format!("/residents/{}", resident.id),
            title: tr.fill("resident.edit_title", &[("name", resident.name.clone())]),
            tags: tag_choices(service, &tr, &input.tags),
            masked_id: resident.id_number.clone(),
            masked_phone: resident.phone.clone(),
            relations,
            input,
            errors,
            chrome,
        }),
    ))
}

/// The resident, if the visitor may edit them: out of scope is 404, a role
/// that may not write is 403.
async fn editable(state: &AppState, page: &PageActor, id: &str) -> Result<ResidentView, Response> {
    let lang = page.lang;
    let id = parse_id(id, lang)?;
    let resident = or_error_page(lang, state.service.get_resident(&page.actor, id).await)?;
    if !page.actor.role.allows(Action::WriteResidents) {
        return Err(error_page(lang, ServiceError::Forbidden));
    }
    Ok(resident)
}

pub async fn edit_form(
    State(state): State<AppState>,
    page: PageActor,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let resident = editable(&state, &page, &id).await?;
    let input = EditInput::from_view(&resident);
    edit_page(&state, &page, &resident, input, FormErrors::default()).await
}

pub async fn edit_submit(
    State(state): State<AppState>,
    page: PageActor,
    Path(id): Path<String>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, Response> {
    let lang = page.lang;
    let resident = editable(&state, &page, &id).await?;
    let input = match form_body(lang, form) {
        Ok(pairs) => EditInput::from_pairs(pairs),
        Err(errors) => {
            let input = EditInput::from_view(&resident);
            return edit_page(&state, &page, &resident, input, errors).await;
        }
    };
    let changes = match input.changes(&resident, lang) {
        Ok(changes) => changes,
        Err(errors) => return edit_page(&state, &page, &resident, input, errors).await,
    };
    match state.service.update_resident(&page.actor, resident.id, changes).await {
        Ok(saved) => Ok(Redirect::to(&format!("/residents/{}?saved=1", saved.id)).into_response()),
        Err(error) => match FormErrors::from_service(lang, error, EDIT_FIELDS) {
            Ok(errors) => edit_page(&state, &page, &resident, input, errors).await,
            Err(error) => Err(error_page(lang, error)),
        },
    }
}
