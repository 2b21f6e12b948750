//! "Who has not reported today" (issue #6): for one grid, the share of its
//! residents with a health report today (from the per-grid day counter the
//! intake writer keeps, not counted from the reports) and the residents
//! still without one, a page at a time, names masked, each with their
//! household and a link to their page, so the grid worker knows whose door
//! to knock on.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use epigrid_domain::{AreaKind, Role};
use serde::Deserialize;
use uuid::Uuid;

use super::areas::{Crumb, crumbs, parse_id};
use super::charts::percent;
use super::{Chrome, PageActor, error_page, or_error_page, render};
use crate::AppState;

/// Residents a page lists.
const PAGE: u32 = 50;

#[derive(Debug, Deserialize, Default)]
pub struct UnreportedQuery {
    after: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub href: String,
    pub name: String,
    pub household: String,
    pub household_href: String,
    /// The grid worker's phone page of the household, to report at the door.
    pub door_href: String,
}

#[derive(Template)]
#[template(path = "unreported.html")]
struct UnreportedPage {
    chrome: Chrome,
    crumbs: Vec<Crumb>,
    grid: String,
    grid_id: Uuid,
    day: String,
    share: String,
    summary: String,
    /// Width of the bar, 0–100.
    bar: u32,
    rows: Vec<Row>,
    next: Option<String>,
    first_page: bool,
    /// Grid workers and leaders get a link to report at the door.
    field_worker: bool,
}

pub async fn show(
    State(state): State<AppState>,
    page: PageActor,
    Path(id): Path<String>,
    Query(query): Query<UnreportedQuery>,
) -> Result<Response, Response> {
    let lang = page.lang;
    let id = parse_id(&id, lang)?;
    let after = match query.after.as_deref().filter(|a| !a.is_empty()) {
        Some(text) => Some(parse_id(text, lang)?),
        None => None,
    };
    let service = &state.service;
    let actor = &page.actor;
    let grid = or_error_page(lang, service.get_area(actor, id).await)?;
    if grid.kind != AreaKind::Grid {
        return Err(error_page(lang, epigrid_service::ServiceError::NotFound));
    }
    let trail = or_error_page(lang, service.area_trail(actor, id).await)?;
    let list = or_error_page(lang, service.unreported_today(actor, id, after, PAGE).await)?;

    // Each household's label ("1号楼 3单元 502"), read once per household
    // and once per building or unit on the page.
    let mut names: HashMap<Uuid, String> = HashMap::new();
    let mut labels: HashMap<Uuid, String> = HashMap::new();
    for r in &list.residents {
        if labels.contains_key(&r.household_id) {
            continue;
        }
        let household = or_error_page(lang, service.get_household(actor, r.household_id).await)?;
        let mut parts = Vec::new();
        for area in [household.building_id, household.unit_id].into_iter().flatten() {
            let name = match names.get(&area) {
                Some(name) => name.clone(),
                None => {
                    let name =
                        service.get_area(actor, area).await.map(|a| a.name).unwrap_or_default();
                    names.insert(area, name.clone());
                    name
                }
            };
            parts.push(name);
        }
        parts.push(household.room.clone());
        labels.insert(r.household_id, parts.join(" "));
    }
    let chrome = page.chrome("dashboard");
    let tr = chrome.tr;
    let rows = list
        .residents
        .iter()
        .map(|r| Row {
            href: format!("/residents/{}", r.id),
            name: r.masked_name.clone(),
            household: labels.get(&r.household_id).cloned().unwrap_or_default(),
            household_href: format!("/households/{}", r.household_id),
            door_href: format!("/m/households/{}", r.household_id),
        })
        .collect();
    let summary = tr.fill(
        "unreported.summary",
        &[
            ("reported", list.residents_reported.to_string()),
            ("total", list.residents_total.to_string()),
            ("missing", (list.residents_total - list.residents_reported).max(0).to_string()),
        ],
    );
    Ok(render(&UnreportedPage {
        crumbs: crumbs(&trail, &tr),
        grid: grid.name,
        grid_id: grid.id,
        day: list.day.format("%Y-%m-%d").to_string(),
        share: percent(list.reported_share),
        bar: (list.reported_share * 100.0).round().clamp(0.0, 100.0) as u32,
        summary,
        rows,
        next: list.next_after.map(|a| format!("/grids/{id}/unreported?after={a}")),
        first_page: after.is_none(),
        field_worker: matches!(actor.role, Role::GridWorker | Role::GridLeader),
        chrome,
    }))
}
