//! The page of one household: where it is, and who lives there, with ID
//! numbers and phones masked.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use epigrid_domain::{Relation, Sex, Tag};
use epigrid_service::views::ResidentView;

use super::areas::{Crumb, crumbs, parse_id};
use super::{Chrome, PageActor, Tr, or_error_page, render};
use crate::AppState;
use crate::i18n::has_key;

pub fn relation_key(relation: Relation) -> String {
    format!("relation.{}", relation.as_str())
}

pub fn sex_key(sex: Sex) -> &'static str {
    match sex {
        Sex::Male => "sex.male",
        Sex::Female => "sex.female",
    }
}

/// A tag's name in the visitor's language; a tag configured without a
/// translation shows as itself.
pub fn tag_label(tr: &Tr, tag: &str) -> String {
    let key = format!("tag.{tag}");
    if has_key(tr.0, &key) { tr.t(&key) } else { tag.to_owned() }
}

pub fn tag_labels(tr: &Tr, tags: &[Tag]) -> Vec<String> {
    tags.iter().map(|t| tag_label(tr, t.as_str())).collect()
}

/// One member of a household as the tables show them.
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub href: String,
    pub name: String,
    pub relation: String,
    pub sex: String,
    pub age: u32,
    pub id_number: String,
    pub phone: String,
    pub tags: Vec<String>,
    pub floating: bool,
}

/// Household members in the order of the register: the head first, then
/// by relation, then by name.
pub fn member_rows(members: &[ResidentView], tr: &Tr) -> Vec<MemberRow> {
    let mut sorted: Vec<&ResidentView> = members.iter().collect();
    let rank = |r: Relation| Relation::ALL.iter().position(|x| *x == r).unwrap_or(usize::MAX);
    sorted
        .sort_by(|a, b| rank(a.relation).cmp(&rank(b.relation)).then_with(|| a.name.cmp(&b.name)));
    let none = tr.t("value.none");
    sorted
        .into_iter()
        .map(|r| MemberRow {
            href: format!("/residents/{}", r.id),
            name: r.name.clone(),
            relation: tr.t(&relation_key(r.relation)),
            sex: tr.t(sex_key(r.sex)),
            age: r.age,
            id_number: r.id_number.clone().unwrap_or_else(|| none.clone()),
            phone: r.phone.clone().unwrap_or_else(|| none.clone()),
            tags: tag_labels(tr, &r.tags),
            floating: r.residence == "floating",
        })
        .collect()
}

#[derive(Template)]
#[template(path = "household.html")]
struct HouseholdPage {
    chrome: Chrome,
    crumbs: Vec<Crumb>,
    title: String,
    /// "1号楼 1单元", under the title.
    place: String,
    members: Vec<MemberRow>,
    count_label: String,
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
    let household = or_error_page(lang, service.get_household(actor, id).await)?;
    let members = or_error_page(lang, service.household_members(actor, id).await)?;
    let trail = match household.unit_id {
        Some(unit) => or_error_page(lang, service.area_trail(actor, unit).await)?,
        None => Vec::new(),
    };
    // A household is the end of the drill-down from the map.
    let chrome = page.chrome("dashboard");
    let tr = chrome.tr;
    let place = trail
        .iter()
        .filter(|a| {
            matches!(a.kind, epigrid_domain::AreaKind::Building | epigrid_domain::AreaKind::Unit)
        })
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(render(&HouseholdPage {
        crumbs: crumbs(&trail, &tr),
        title: tr.fill("household.title", &[("room", household.room.clone())]),
        place,
        count_label: tr.fill("household.member_count", &[("count", members.len().to_string())]),
        members: member_rows(&members, &tr),
        chrome,
    }))
}
