//! The audit log, for roles that manage accounts: a search by record, actor,
//! action and date range, newest first, a page at a time. Times show in the
//! configured zone. Entries hold ids, field names and reasons only, so the
//! page shows no personal data either.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use epigrid_domain::Action;
use epigrid_service::ServiceError;
use epigrid_store::{AuditQuery, AuditRecord};
use serde::Deserialize;
use uuid::Uuid;

use super::residents::Choice;
use super::{Chrome, PageActor, Tr, error_page, or_error_page, render};
use crate::AppState;
use crate::i18n::{Lang, has_key, t};

const PAGE_SIZE: u32 = 50;

/// The actions the search offers, in the order of the select.
pub const KNOWN_ACTIONS: &[&str] = &[
    "login",
    "logout",
    "area.create",
    "area.update",
    "household.create",
    "resident.create",
    "resident.update",
    "resident.unmask",
    "account.create",
    "account.update",
];

/// Target kinds with a page of their own, and where it is.
const TARGET_PAGES: &[(&str, &str)] = &[
    ("resident", "/residents/"),
    ("household", "/households/"),
    ("area", "/areas/"),
    ("account", "/accounts/"),
];

/// The search as typed; every field may be empty.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuditFilter {
    /// The id of the record the entries are about.
    target: String,
    /// The username of who acted.
    actor: String,
    action: String,
    /// Dates (`YYYY-MM-DD`) in the configured zone, both inclusive.
    from: String,
    to: String,
    /// Keyset cursor: entries older than this id.
    before: String,
}

impl AuditFilter {
    /// The query string of this search without its cursor, or with `before`.
    fn href(&self, before: Option<Uuid>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("target", &self.target),
            ("actor", &self.actor),
            ("action", &self.action),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !value.trim().is_empty() {
                query.append_pair(name, value.trim());
            }
        }
        if let Some(before) = before {
            query.append_pair("before", &before.to_string());
        }
        let query = query.finish();
        if query.is_empty() { "/audit".to_owned() } else { format!("/audit?{query}") }
    }

    fn is_empty(&self) -> bool {
        [&self.target, &self.actor, &self.action, &self.from, &self.to]
            .iter()
            .all(|v| v.trim().is_empty())
    }
}

/// Errors of the search, each next to its field.
#[derive(Debug, Clone, Default)]
pub struct FilterErrors(Vec<(&'static str, String)>);

impl FilterErrors {
    pub fn of(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|(f, _)| *f == field).map(|(_, m)| m.as_str())
    }

    pub fn has(&self, field: &str) -> bool {
        self.of(field).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The start of `date` in the zone `offset`, as UTC.
fn start_of(date: NaiveDate, offset: FixedOffset) -> Option<DateTime<Utc>> {
    let midnight = date.and_hms_opt(0, 0, 0)?;
    offset.from_local_datetime(&midnight).single().map(|t| t.with_timezone(&Utc))
}

/// The store query for a search, or the errors to show next to its fields.
fn to_query(
    lang: Lang,
    filter: &AuditFilter,
    offset: FixedOffset,
) -> Result<AuditQuery, FilterErrors> {
    let mut errors = Vec::new();
    let text = |value: &str| Some(value.trim().to_owned()).filter(|v| !v.is_empty());
    let target_id = match text(&filter.target) {
        None => None,
        Some(v) => Uuid::try_parse(&v)
            .map_err(|_| errors.push(("target", t(lang, "audit.target_invalid"))))
            .ok(),
    };
    let mut date = |field: &'static str, value: &str| match text(value) {
        None => None,
        Some(v) => NaiveDate::parse_from_str(&v, "%Y-%m-%d")
            .map_err(|_| errors.push((field, t(lang, "audit.date_invalid"))))
            .ok(),
    };
    let (from, to) = (date("from", &filter.from), date("to", &filter.to));
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        errors.push(("to", t(lang, "audit.range_invalid")));
    }
    // A cursor comes from our own links; a broken one starts from the top.
    let before = text(&filter.before).and_then(|v| Uuid::try_parse(&v).ok());
    if !errors.is_empty() {
        return Err(FilterErrors(errors));
    }
    Ok(AuditQuery {
        actor_name: text(&filter.actor),
        action: text(&filter.action),
        target_id,
        community_id: None,
        since: from.and_then(|d| start_of(d, offset)),
        until: to.and_then(|d| d.succ_opt()).and_then(|d| start_of(d, offset)),
        before,
        limit: PAGE_SIZE,
    })
}

/// A translated label for a code, or the code itself when it has none (an
/// action added after this page was written).
fn label(tr: &Tr, prefix: &str, code: &str) -> String {
    let key = format!("{prefix}{code}");
    if has_key(tr.0, &key) { tr.t(&key) } else { code.to_owned() }
}

/// `detail` (JSON) as short text: `fields: phone, name; reason: …`.
fn detail_text(detail: &str) -> String {
    use serde_json::Value;
    fn value_text(value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(", "),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
    match serde_json::from_str::<Value>(detail) {
        Ok(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| format!("{k}: {}", value_text(v)))
            .collect::<Vec<_>>()
            .join("; "),
        Ok(Value::Null) => String::new(),
        Ok(other) => value_text(&other),
        Err(_) => detail.to_owned(),
    }
}

#[derive(Debug, Clone)]
pub struct TargetCell {
    pub kind: String,
    /// The record's own page, for kinds that have one.
    pub href: Option<String>,
    pub id: String,
    /// Every entry about this record.
    pub filter_href: String,
}

#[derive(Debug, Clone)]
pub struct EntryRow {
    pub at: String,
    pub actor: String,
    pub actor_href: String,
    pub role: Option<String>,
    pub action: String,
    pub action_code: String,
    pub target: Option<TargetCell>,
    pub outcome: String,
    pub ok: bool,
    pub client_addr: Option<String>,
    pub detail: String,
}

fn entry_row(tr: &Tr, e: &AuditRecord, offset: FixedOffset) -> EntryRow {
    let target = e.target_id.map(|id| {
        let kind = e.target_kind.clone().unwrap_or_default();
        let href =
            TARGET_PAGES.iter().find(|(k, _)| *k == kind).map(|(_, base)| format!("{base}{id}"));
        TargetCell {
            kind: label(tr, "audit.kind.", &kind),
            href,
            id: id.to_string(),
            filter_href: AuditFilter { target: id.to_string(), ..AuditFilter::default() }
                .href(None),
        }
    });
    EntryRow {
        at: e.at.with_timezone(&offset).format("%Y-%m-%d %H:%M:%S").to_string(),
        actor: e.actor_name.clone(),
        actor_href: AuditFilter { actor: e.actor_name.clone(), ..AuditFilter::default() }
            .href(None),
        role: e.actor_role.map(|r| tr.t(&format!("role.{}", r.as_str()))),
        action: label(tr, "audit.action.", &e.action),
        action_code: e.action.clone(),
        target,
        outcome: label(tr, "audit.outcome.", &e.outcome),
        ok: e.outcome == "ok",
        client_addr: e.client_addr.clone(),
        detail: detail_text(&e.detail),
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    filter: AuditFilter,
    errors: FilterErrors,
    actions: Vec<Choice>,
    /// Which zone the times are in.
    zone_note: String,
    /// `None` when the search could not be run.
    rows: Option<Vec<EntryRow>>,
    next_href: Option<String>,
    first_href: Option<String>,
}

fn action_choices(tr: &Tr, selected: &str) -> Vec<Choice> {
    let selected = selected.trim();
    let mut codes: Vec<&str> = KNOWN_ACTIONS.to_vec();
    if !selected.is_empty() && !codes.contains(&selected) {
        codes.push(selected);
    }
    codes
        .into_iter()
        .map(|code| Choice {
            value: code.to_owned(),
            label: label(tr, "audit.action.", code),
            selected: code == selected,
        })
        .collect()
}

pub async fn show(
    State(state): State<AppState>,
    page: PageActor,
    query: Result<Query<AuditFilter>, QueryRejection>,
) -> Result<Response, Response> {
    // Refused before the search is even read.
    if !page.actor.role.allows(Action::ManageAccounts) {
        return Err(error_page(page.lang, ServiceError::Forbidden));
    }
    let lang = page.lang;
    let filter = query.map(|Query(f)| f).unwrap_or_default();
    let offset = state.service.settings().time_zone_offset;
    let chrome = page.chrome("audit");
    let tr = chrome.tr;
    let mut view = AuditPage {
        actions: action_choices(&tr, &filter.action),
        zone_note: tr.fill("audit.times_in", &[("zone", format!("UTC{offset}"))]),
        filter,
        errors: FilterErrors::default(),
        rows: None,
        next_href: None,
        first_href: None,
        chrome,
    };
    let query = match to_query(lang, &view.filter, offset) {
        Ok(query) => query,
        Err(errors) => {
            view.errors = errors;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&view)).into_response());
        }
    };
    let before = query.before;
    let entries = or_error_page(lang, state.service.audit_log(&page.actor, query).await)?;
    if entries.len() == PAGE_SIZE as usize {
        view.next_href = entries.last().map(|e| view.filter.href(Some(e.id)));
    }
    if before.is_some() {
        view.first_href = Some(view.filter.href(None));
    }
    view.rows = Some(entries.iter().map(|e| entry_row(&tr, e, offset)).collect());
    Ok(render(&view))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_outcome_and_kind_is_translated() {
        let codes = KNOWN_ACTIONS
            .iter()
            .map(|a| format!("audit.action.{a}"))
            .chain(["ok", "denied", "failed"].map(|o| format!("audit.outcome.{o}")))
            .chain(TARGET_PAGES.iter().map(|(k, _)| format!("audit.kind.{k}")));
        for key in codes {
            assert!(has_key(Lang::ZhCn, &key) && has_key(Lang::En, &key), "{key}");
        }
    }

    #[test]
    fn dates_are_days_in_the_configured_zone() {
        let beijing = FixedOffset::east_opt(8 * 3600).unwrap();
        let filter = AuditFilter {
            from: "2022-11-29".into(),
            to: "2022-11-30".into(),
            ..AuditFilter::default()
        };
        let query = to_query(Lang::En, &filter, beijing).unwrap();
        assert_eq!(query.since.unwrap().to_rfc3339(), "2022-11-28T16:00:00+00:00");
        assert_eq!(
            query.until.unwrap().to_rfc3339(),
            "2022-11-30T16:00:00+00:00",
            "to is inclusive"
        );
    }

    #[test]
    fn bad_values_are_named_by_field() {
        let utc = FixedOffset::east_opt(0).unwrap();
        let filter = AuditFilter {
            target: "not-an-id".into(),
            from: "2022-13-01".into(),
            ..AuditFilter::default()
        };
        let errors = to_query(Lang::En, &filter, utc).unwrap_err();
        assert!(errors.has("target") && errors.has("from") && !errors.has("to"));
        let backwards = AuditFilter {
            from: "2022-12-02".into(),
            to: "2022-12-01".into(),
            ..AuditFilter::default()
        };
        assert!(to_query(Lang::En, &backwards, utc).unwrap_err().has("to"));
    }

    #[test]
    fn details_read_as_short_text() {
        assert_eq!(detail_text(r#"{"fields":["phone","name"]}"#), "fields: phone, name");
        assert_eq!(
            detail_text(r#"{"field":"id_number","reason":"verify_identity"}"#),
            "field: id_number; reason: verify_identity"
        );
        assert_eq!(detail_text("{}"), "");
        assert_eq!(detail_text("not json"), "not json");
    }

    #[test]
    fn links_keep_the_search_and_add_the_cursor() {
        let filter =
            AuditFilter { actor: "g01".into(), action: "login".into(), ..AuditFilter::default() };
        let id = Uuid::nil();
        assert_eq!(filter.href(None), "/audit?actor=g01&action=login");
        assert_eq!(
            filter.href(Some(id)),
            "/audit?actor=g01&action=login&before=00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(AuditFilter::default().href(None), "/audit");
        assert!(AuditFilter::default().is_empty());
    }
}
