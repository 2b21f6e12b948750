//! What the use cases hand back: plain, serialisable views with every
//! personal field already masked. Nothing in here can leak a clear ID number
//! or phone, because nothing in here ever holds one.

use chrono::NaiveDate;
use epigrid_domain::{AreaKind, GridKind, IdDocumentKind, Relation, Role, Sex, Tag};
use epigrid_store::{AreaRecord, HouseholdRecord, LevelCounts, UserRecord};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AreaView {
    pub id: Uuid,
    pub kind: AreaKind,
    pub parent_id: Option<Uuid>,
    pub code: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grid_kind: Option<GridKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// A GeoJSON Polygon or MultiPolygon.
    #[schema(value_type = Option<Object>)]
    pub boundary: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl From<&AreaRecord> for AreaView {
    fn from(a: &AreaRecord) -> Self {
        Self {
            id: a.id,
            kind: a.kind,
            parent_id: a.parent_id,
            code: a.code.clone(),
            name: a.name.clone(),
            grid_kind: a.grid_kind,
            boundary: a.boundary.as_ref().map(|b| b.to_json_value()),
            address: a.address.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HouseholdView {
    pub id: Uuid,
    pub community_id: Option<Uuid>,
    pub grid_id: Option<Uuid>,
    pub building_id: Option<Uuid>,
    pub unit_id: Option<Uuid>,
    pub room: String,
}

impl From<&HouseholdRecord> for HouseholdView {
    fn from(h: &HouseholdRecord) -> Self {
        Self {
            id: h.id,
            community_id: h.path.community,
            grid_id: h.path.grid,
            building_id: h.path.building,
            unit_id: h.path.unit,
            room: h.room.clone(),
        }
    }
}

/// A resident as staff see them. The name is shown in full: staff in scope
/// need it to do their work, and the scope already limits who that is. The
/// ID number and phone are always masked here; unmasking is its own, audited
/// call.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResidentView {
    pub id: Uuid,
    pub household_id: Uuid,
    pub community_id: Option<Uuid>,
    pub grid_id: Option<Uuid>,
    pub building_id: Option<Uuid>,
    pub unit_id: Option<Uuid>,
    pub name: String,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    pub age: u32,
    pub id_kind: Option<IdDocumentKind>,
    pub id_number: Option<String>,
    pub phone: Option<String>,
    pub relation: Relation,
    pub residence: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrived_on: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub phone: Option<String>,
    pub role: Role,
    pub scope_kind: AreaKind,
    pub scope_area_id: Uuid,
    pub disabled: bool,
}

impl From<&UserRecord> for UserView {
    fn from(u: &UserRecord) -> Self {
        Self {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            phone: u.phone.clone(),
            role: u.role,
            scope_kind: u.scope.kind,
            scope_area_id: u.scope.area_id,
            disabled: u.disabled,
        }
    }
}

pub type Stats = LevelCounts;
