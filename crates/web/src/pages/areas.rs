//! The page of one area (community, grid, building or unit): breadcrumbs up
//! to the top of the visitor's scope, headline figures, the areas or
//! households below it, and who looks after it.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use epigrid_domain::{Action, AreaKind};
use epigrid_service::ServiceError;
use epigrid_service::navigation::{AreaSummary, AreaWithCounts};
use epigrid_service::views::{AreaView, HouseholdView, UserView};
use uuid::Uuid;

use super::{Chrome, PageActor, Tr, error_page, or_error_page, render};
use crate::AppState;
use crate::i18n::Lang;

/// One step of the breadcrumbs.
#[derive(Debug, Clone)]
pub struct Crumb {
    pub href: String,
    pub label: String,
    /// The level, for screen readers and tooltips ("网格").
    pub kind: String,
}

/// Breadcrumbs from a trail of areas, each a link to its area page.
pub fn crumbs(trail: &[AreaView], tr: &Tr) -> Vec<Crumb> {
    trail
        .iter()
        .map(|a| Crumb {
            href: format!("/areas/{}", a.id),
            label: a.name.clone(),
            kind: tr.t(kind_key(a.kind)),
        })
        .collect()
}

pub fn kind_key(kind: AreaKind) -> &'static str {
    match kind {
        AreaKind::SubDistrict => "area.sub_district",
        AreaKind::Community => "area.community",
        AreaKind::Grid => "area.grid",
        AreaKind::Building => "area.building",
        AreaKind::Unit => "area.unit",
    }
}

/// A path id that is not a UUID is as unknown as one that does not exist.
// The error is the page to answer with, as in every page handler.
pub fn parse_id(text: &str, lang: Lang) -> Result<Uuid, Response> {
    Uuid::try_parse(text).map_err(|_| error_page(lang, ServiceError::NotFound))
}

/// A number with its label, as the headline figures show them.
#[derive(Debug, Clone)]
pub struct Figure {
    pub value: i64,
    pub label: String,
}

#[derive(Debug, Clone)]
struct ChildLink {
    href: String,
    name: String,
    summary: String,
}

#[derive(Debug, Clone)]
struct HouseholdLink {
    href: String,
    room: String,
}

#[derive(Debug, Clone)]
struct UnitBlock {
    link: ChildLink,
    /// "Rooms of unit 1", for the list of its households.
    rooms_label: String,
    households: Vec<HouseholdLink>,
}

#[derive(Debug, Clone)]
struct StaffRow {
    name: String,
    role: String,
    phone: Option<String>,
}

#[derive(Template)]
#[template(path = "area.html")]
struct AreaPage {
    chrome: Chrome,
    crumbs: Vec<Crumb>,
    area: AreaView,
    kind_label: String,
    /// "Code 371602001001", "Address …".
    facts: Vec<String>,
    figures: Vec<Figure>,
    children_title: String,
    /// Child areas (sub-district, community, grid).
    children: Vec<ChildLink>,
    /// A building's units, each with its households.
    units: Vec<UnitBlock>,
    /// A unit's households.
    households: Vec<HouseholdLink>,
    /// The visitor may not see households (a volunteer).
    households_hidden: bool,
    staff: Option<Vec<StaffRow>>,
    dashboard_href: Option<String>,
    /// The printable self-service QR sheets (building, grid, community).
    qr_href: Option<String>,
    /// Today's "not reported" list (grids).
    unreported_href: Option<String>,
}

impl AreaPage {
    fn is_building(&self) -> bool {
        self.area.kind == AreaKind::Building
    }

    fn is_unit(&self) -> bool {
        self.area.kind == AreaKind::Unit
    }
}

fn child_summary(child: &AreaWithCounts, tr: &Tr) -> String {
    tr.fill(
        "area.child_summary",
        &[
            ("residents", child.figures.residents.to_string()),
            ("households", child.figures.households.to_string()),
        ],
    )
}

fn child_link(child: &AreaWithCounts, tr: &Tr) -> ChildLink {
    ChildLink {
        href: format!("/areas/{}", child.area.id),
        name: child.area.name.clone(),
        summary: child_summary(child, tr),
    }
}

fn household_link(h: &HouseholdView) -> HouseholdLink {
    HouseholdLink { href: format!("/households/{}", h.id), room: h.room.clone() }
}

fn figures(summary: &AreaSummary, tr: &Tr) -> Vec<Figure> {
    let figure = |value: i64, key: &str| Figure { value, label: tr.t(key) };
    let c = &summary.counts;
    let f = &summary.figures;
    let mut out = vec![
        figure(c.residents, "figure.residents"),
        figure(c.households, "figure.households"),
        figure(f.key_group, "figure.key_group"),
        figure(f.floating, "figure.floating"),
    ];
    match summary.area.kind {
        AreaKind::SubDistrict => {
            out.push(figure(c.communities, "figure.communities"));
            out.push(figure(c.grids, "figure.grids"));
        }
        AreaKind::Community => {
            out.push(figure(c.grids, "figure.grids"));
            out.push(figure(c.buildings, "figure.buildings"));
        }
        AreaKind::Grid => {
            out.push(figure(c.buildings, "figure.buildings"));
            out.push(figure(c.units, "figure.units"));
        }
        AreaKind::Building => out.push(figure(c.units, "figure.units")),
        AreaKind::Unit => {}
    }
    out
}

fn staff_row(user: &UserView, tr: &Tr) -> StaffRow {
    StaffRow {
        name: user.display_name.clone(),
        role: tr.t(&format!("role.{}", user.role.as_str())),
        phone: user.phone.clone(),
    }
}

pub async fn show(
    State(state): State<AppState>,
    page: PageActor,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let lang = page.lang;
    let id = parse_id(&id, lang)?;
    let service = &state.service;
    let actor = &page.actor;
    let summary = or_error_page(lang, service.area_summary(actor, id).await)?;
    let chrome = page.chrome("dashboard");
    let tr = chrome.tr;
    let kind = summary.area.kind;
    let may_read_households = actor.role.allows(Action::ReadResidents);

    let (mut children, mut units, mut households) = (Vec::new(), Vec::new(), Vec::new());
    match kind {
        AreaKind::Building => {
            let blocks = or_error_page(lang, service.building_units(actor, id).await)?;
            units = blocks
                .iter()
                .map(|b| UnitBlock {
                    link: child_link(&b.unit, &tr),
                    rooms_label: tr.fill("area.rooms_of", &[("unit", b.unit.area.name.clone())]),
                    households: b.households.iter().map(household_link).collect(),
                })
                .collect();
        }
        AreaKind::Unit => {
            if may_read_households {
                let list = or_error_page(lang, service.area_households(actor, id).await)?;
                households = list.iter().map(household_link).collect();
            }
        }
        _ => {
            let list = or_error_page(lang, service.area_children(actor, id).await)?;
            children = list.iter().map(|c| child_link(c, &tr)).collect();
        }
    }
    let staff = match kind {
        AreaKind::Community | AreaKind::Grid => {
            let users = or_error_page(lang, service.area_staff(actor, id).await)?;
            Some(users.iter().map(|u| staff_row(u, &tr)).collect())
        }
        _ => None,
    };
    let children_title = tr.t(match kind {
        AreaKind::SubDistrict => "area.children.communities",
        AreaKind::Community => "area.children.grids",
        AreaKind::Grid => "area.children.buildings",
        AreaKind::Building => "area.children.units",
        AreaKind::Unit => "area.children.households",
    });
    let dashboard_href = match kind {
        AreaKind::SubDistrict | AreaKind::Community => Some(format!("/?area={id}")),
        _ => None,
    };
    let qr_href = matches!(kind, AreaKind::Building | AreaKind::Grid | AreaKind::Community)
        .then(|| format!("/areas/{id}/qr"));
    let unreported_href =
        (kind == AreaKind::Grid && may_read_households).then(|| format!("/grids/{id}/unreported"));
    Ok(render(&AreaPage {
        qr_href,
        unreported_href,
        crumbs: crumbs(&summary.trail[..summary.trail.len().saturating_sub(1)], &tr),
        kind_label: tr.t(kind_key(kind)),
        facts: [
            summary.area.code.clone().map(|code| tr.fill("area.code_value", &[("code", code)])),
            summary
                .area
                .address
                .clone()
                .map(|address| tr.fill("area.address_value", &[("address", address)])),
        ]
        .into_iter()
        .flatten()
        .collect(),
        figures: figures(&summary, &tr),
        children_title,
        children,
        units,
        households,
        households_hidden: !may_read_households,
        staff,
        dashboard_href,
        area: summary.area,
        chrome,
    }))
}
