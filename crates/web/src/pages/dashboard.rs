//! The dashboard for the visitor's scope (or an area within it): headline
//! figures, the map coloured by a chosen measure, and the charts.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use epigrid_domain::AreaKind;
use epigrid_service::dashboard::{AreaWithFigures, Dashboard};
use serde::Deserialize;
use uuid::Uuid;

use super::map::{Measure, render_map};
use super::{Chrome, PageActor, charts, or_error_page, render};
use crate::AppState;

#[derive(Debug, Deserialize, Default)]
pub struct DashboardQuery {
    area: Option<Uuid>,
    measure: Option<String>,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    dashboard: Dashboard,
    measure: &'static str,
    map_svg: String,
    pyramid_svg: String,
    tags_svg: String,
    residence_svg: String,
    /// `?area=` of the current view, kept when switching the measure.
    area_param: String,
    /// Today's health reporting per map area (issue #6).
    reporting: Vec<ReportingRow>,
}

/// One area's line of today's reporting table.
#[derive(Debug, Clone)]
pub struct ReportingRow {
    pub id: Uuid,
    pub name: String,
    /// A grid's "not reported" list for staff who read residents, else the
    /// area's own page or dashboard.
    pub href: String,
    pub residents: i64,
    pub reported: i64,
    pub share: String,
    /// Today's entries with a fever or a symptom, arrivals, help requests.
    pub flagged: i64,
    pub arrivals: i64,
    pub help: i64,
}

fn reporting_rows(areas: &[AreaWithFigures], lists: bool) -> Vec<ReportingRow> {
    areas
        .iter()
        .map(|a| ReportingRow {
            id: a.id,
            name: a.name.clone(),
            href: if lists && a.kind == AreaKind::Grid {
                format!("/grids/{}/unreported", a.id)
            } else {
                area_href(a)
            },
            residents: a.figures.residents,
            reported: a.reported,
            share: charts::percent(a.reported_share()),
            flagged: a.flagged_today,
            arrivals: a.arrivals_today,
            help: a.help_today,
        })
        .collect()
}

/// Where a click on a map area leads: the dashboard one level down for
/// communities, the grid's own page for grids.
pub fn area_href(area: &AreaWithFigures) -> String {
    match area.kind {
        AreaKind::SubDistrict | AreaKind::Community => format!("/?area={}", area.id),
        _ => format!("/areas/{}", area.id),
    }
}

pub async fn show(
    State(state): State<AppState>,
    page: PageActor,
    Query(query): Query<DashboardQuery>,
) -> Result<Response, Response> {
    let dashboard =
        or_error_page(page.lang, state.service.dashboard(&page.actor, query.area).await)?;
    let mut measure = Measure::parse(query.measure.as_deref());
    if measure.is_tasks() && dashboard.tasks.is_none() {
        measure = Measure::Population;
    }
    let chrome = page.chrome("dashboard");
    let tr = chrome.tr;
    let lists = page.actor.role.allows(epigrid_domain::Action::ReadResidents);
    Ok(render(&DashboardPage {
        reporting: reporting_rows(&dashboard.areas, lists),
        map_svg: render_map(&dashboard.areas, measure, &area_href, &tr),
        pyramid_svg: charts::age_pyramid(&dashboard.age_bands, &tr),
        tags_svg: charts::tag_bars(&dashboard.tags, &tr),
        residence_svg: charts::residence_bars(&dashboard.areas, &tr),
        measure: measure.as_str(),
        area_param: query.area.map(|a| format!("area={a}&")).unwrap_or_default(),
        dashboard,
        chrome,
    }))
}
