//! The registry use cases: areas, households and residents, each call checked
//! against the actor's role and scope. Anything outside the scope is
//! `NotFound`, never `Forbidden`, so that its existence does not leak.

use chrono::NaiveDate;
use epigrid_domain::{
    Action, AreaKind, Boundary, CommunityCode, GridCode, GridKind, IdDocument, MobilePhone,
    PersonName, ReasonCode, Relation, Residence, Scope, Sex, SubDistrictCode, Tag,
};
use epigrid_store::{
    AreaQuery, AreaRecord, HouseholdQuery, HouseholdRecord, RegistryWrite, ResidentCursor,
    ResidentQuery, ResidentRecord,
};
use serde::{Deserialize, Deserializer};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::audit::Target;
use crate::views::{AreaView, HouseholdView, Page, ResidentView, Stats};
use crate::{Actor, Service, ServiceError, ServiceResult};

const MAX_AREA_NAME: usize = 100;
const MAX_ROOM: usize = 20;
const MAX_ORIGIN: usize = 100;
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

/// Distinguishes "absent" (leave unchanged) from `null` (clear) in a patch.
fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewArea {
    pub kind: AreaKind,
    #[serde(default)]
    pub parent_id: Option<Uuid>,
    #[serde(default)]
    pub code: Option<String>,
    pub name: String,
    #[serde(default)]
    pub grid_kind: Option<GridKind>,
    #[serde(default)]
    /// A GeoJSON Polygon or MultiPolygon.
    #[schema(value_type = Option<Object>)]
    pub boundary: Option<serde_json::Value>,
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AreaChanges {
    pub code: Option<String>,
    pub name: Option<String>,
    pub grid_kind: Option<GridKind>,
    #[serde(default, deserialize_with = "double_option")]
    /// A GeoJSON Polygon or MultiPolygon.
    #[schema(value_type = Option<Object>)]
    pub boundary: Option<Option<serde_json::Value>>,
    #[serde(default, deserialize_with = "double_option")]
    pub address: Option<Option<String>>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHousehold {
    pub unit_id: Uuid,
    pub room: String,
}

/// A resident as entered. Sex and birth date may be left out when the
/// identity document carries them; when both are given they must agree.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewResident {
    pub household_id: Uuid,
    pub name: String,
    #[serde(default)]
    pub sex: Option<Sex>,
    #[serde(default)]
    pub birth_date: Option<NaiveDate>,
    #[serde(default)]
    pub id_number: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    pub relation: Relation,
    #[serde(default)]
    pub floating: bool,
    #[serde(default)]
    pub arrived_on: Option<NaiveDate>,
    #[serde(default)]
    pub origin: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Changes to a resident; absent fields stay, `null` clears an optional one.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResidentChanges {
    pub household_id: Option<Uuid>,
    pub name: Option<String>,
    pub sex: Option<Sex>,
    pub birth_date: Option<NaiveDate>,
    #[serde(default, deserialize_with = "double_option")]
    pub id_number: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub phone: Option<Option<String>>,
    pub relation: Option<Relation>,
    pub floating: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    pub arrived_on: Option<Option<NaiveDate>>,
    #[serde(default, deserialize_with = "double_option")]
    pub origin: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResidentSearch {
    /// Name prefix.
    pub name: Option<String>,
    /// Exact identity document number (any supported kind).
    pub id_number: Option<String>,
    /// Exact mobile number.
    pub phone: Option<String>,
    pub tag: Option<String>,
    /// Limit to this area (must lie within the caller's scope).
    pub area_id: Option<Uuid>,
    pub household_id: Option<Uuid>,
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AreaListing {
    /// Only the children of this area.
    pub parent_id: Option<Uuid>,
    pub kind: Option<AreaKind>,
    /// The `next_cursor` of the page before.
    pub cursor: Option<Uuid>,
    /// 1–200, default 50.
    pub limit: Option<u32>,
}

/// The validated, person-level content of a resident, before sealing.
struct ResidentFields {
    name: PersonName,
    sex: Sex,
    birth_date: NaiveDate,
    id_document: Option<IdDocument>,
    phone: Option<MobilePhone>,
    relation: Relation,
    residence: Residence,
    tags: Vec<Tag>,
}

fn invalid<E: ReasonCode>(field: &str) -> impl FnOnce(E) -> ServiceError + '_ {
    move |e| ServiceError::invalid(field, e.code())
}

fn page_limit(limit: Option<u32>) -> u32 {
    limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
}

fn clean_text(field: &str, value: &str, max: usize) -> ServiceResult<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ServiceError::invalid(field, "text.empty"));
    }
    if value.chars().count() > max {
        return Err(ServiceError::invalid(field, "text.too_long"));
    }
    if value.chars().any(char::is_control) {
        return Err(ServiceError::invalid(field, "text.control_character"));
    }
    Ok(value.to_owned())
}

fn optional_text(field: &str, value: Option<String>, max: usize) -> ServiceResult<Option<String>> {
    value.filter(|v| !v.trim().is_empty()).map(|v| clean_text(field, &v, max)).transpose()
}

impl Service {
    // ---- areas -------------------------------------------------------------

    /// An area the actor may see, or `NotFound`.
    pub(crate) async fn visible_area(&self, actor: &Actor, id: Uuid) -> ServiceResult<AreaRecord> {
        actor.require(Action::ReadAreas)?;
        self.store()
            .get_area(id)
            .await?
            .filter(|a| actor.covers(&a.path))
            .ok_or(ServiceError::NotFound)
    }

    pub async fn get_area(&self, actor: &Actor, id: Uuid) -> ServiceResult<AreaView> {
        Ok(AreaView::from(&self.visible_area(actor, id).await?))
    }

    /// The area record itself, for callers that draw maps or breadcrumbs.
    pub async fn area_record(&self, actor: &Actor, id: Uuid) -> ServiceResult<AreaRecord> {
        self.visible_area(actor, id).await
    }

    pub async fn list_areas(
        &self,
        actor: &Actor,
        listing: AreaListing,
    ) -> ServiceResult<Page<AreaView>> {
        actor.require(Action::ReadAreas)?;
        if let Some(parent) = listing.parent_id {
            // Listing the children of something outside the scope is as
            // unknown as reading it.
            self.store()
                .get_area(parent)
                .await?
                .filter(|a| actor.covers(&a.path))
                .ok_or(ServiceError::NotFound)?;
        }
        let limit = page_limit(listing.limit);
        let mut areas = self
            .store()
            .list_areas(&AreaQuery {
                parent_id: listing.parent_id,
                kind: listing.kind,
                within: actor.scope,
                after: listing.cursor,
                limit: limit + 1,
            })
            .await?;
        let next = if areas.len() > limit as usize {
            areas.truncate(limit as usize);
            areas.last().map(|a| a.id.to_string())
        } else {
            None
        };
        Ok(Page { items: areas.iter().map(AreaView::from).collect(), next_cursor: next })
    }

    pub async fn create_area(&self, actor: &Actor, new: NewArea) -> ServiceResult<AreaView> {
        actor.require(Action::WriteAreas)?;
        let name = clean_text("name", &new.name, MAX_AREA_NAME)?;
        let parent = match (new.kind.parent_kind(), new.parent_id) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(ServiceError::invalid("parent_id", "area.root_has_no_parent"));
            }
            (Some(_), None) => {
                return Err(ServiceError::invalid("parent_id", "area.parent_required"));
            }
            (Some(kind), Some(id)) => {
                let parent = self
                    .store()
                    .get_area(id)
                    .await?
                    .filter(|a| actor.covers(&a.path))
                    .ok_or_else(|| ServiceError::invalid("parent_id", "area.unknown_parent"))?;
                if parent.kind != kind {
                    return Err(ServiceError::invalid("parent_id", "area.wrong_parent_kind"));
                }
                Some(parent)
            }
        };
        if parent.is_none() && actor.scope.is_some() {
            // Only the system (CLI) creates a new sub-district root.
            return Err(ServiceError::Forbidden);
        }
        let code = validate_area_code(new.kind, new.code.as_deref(), parent.as_ref())?;
        let grid_kind = match new.kind {
            AreaKind::Grid => Some(new.grid_kind.unwrap_or(GridKind::Residential)),
            _ if new.grid_kind.is_some() => {
                return Err(ServiceError::invalid("grid_kind", "area.grid_kind_only_for_grids"));
            }
            _ => None,
        };
        let boundary = validate_boundary(new.kind, new.boundary)?;
        let address = optional_text("address", new.address, MAX_AREA_NAME)?;
        let id = Uuid::now_v7();
        let now = self.now();
        let record = AreaRecord {
            id,
            kind: new.kind,
            parent_id: parent.as_ref().map(|p| p.id),
            path: parent.as_ref().map(|p| p.path).unwrap_or_default().child(new.kind, id),
            code,
            name,
            grid_kind,
            boundary,
            address,
            created_at: now,
            updated_at: now,
        };
        let target = Target { kind: "area", id: record.id, path: Some(&record.path) };
        self.write_audited(
            actor,
            RegistryWrite::InsertArea(&record),
            "area.create",
            target,
            serde_json::json!({ "kind": record.kind }),
        )
        .await?;
        Ok(AreaView::from(&record))
    }

    pub async fn update_area(
        &self,
        actor: &Actor,
        id: Uuid,
        changes: AreaChanges,
    ) -> ServiceResult<AreaView> {
        actor.require(Action::WriteAreas)?;
        let mut area = self.visible_area(actor, id).await?;
        if let Some(name) = changes.name {
            area.name = clean_text("name", &name, MAX_AREA_NAME)?;
        }
        if let Some(code) = changes.code {
            let parent = match area.parent_id {
                Some(p) => self.store().get_area(p).await?,
                None => None,
            };
            area.code = validate_area_code(area.kind, Some(&code), parent.as_ref())?;
        }
        if let Some(kind) = changes.grid_kind {
            if area.kind != AreaKind::Grid {
                return Err(ServiceError::invalid("grid_kind", "area.grid_kind_only_for_grids"));
            }
            area.grid_kind = Some(kind);
        }
        if let Some(boundary) = changes.boundary {
            area.boundary = validate_boundary(area.kind, boundary)?;
        }
        if let Some(address) = changes.address {
            area.address = optional_text("address", address, MAX_AREA_NAME)?;
        }
        area.updated_at = self.now();
        let target = Target { kind: "area", id: area.id, path: Some(&area.path) };
        let write = RegistryWrite::UpdateArea(&area);
        if !self.write_audited(actor, write, "area.update", target, serde_json::json!({})).await? {
            return Err(ServiceError::NotFound);
        }
        Ok(AreaView::from(&area))
    }

    // ---- households --------------------------------------------------------

    /// A household in the actor's scope, for those who may read residents;
    /// out of scope is "not found", as if it did not exist.
    pub(crate) async fn visible_household(
        &self,
        actor: &Actor,
        id: Uuid,
    ) -> ServiceResult<HouseholdRecord> {
        actor.require(Action::ReadResidents)?;
        self.store()
            .get_household(id)
            .await?
            .filter(|h| actor.covers(&h.path))
            .ok_or(ServiceError::NotFound)
    }

    pub async fn get_household(&self, actor: &Actor, id: Uuid) -> ServiceResult<HouseholdView> {
        Ok(HouseholdView::from(&self.visible_household(actor, id).await?))
    }

    pub async fn create_household(
        &self,
        actor: &Actor,
        new: NewHousehold,
    ) -> ServiceResult<HouseholdView> {
        actor.require(Action::WriteResidents)?;
        let room = clean_text("room", &new.room, MAX_ROOM)?;
        let unit = self
            .store()
            .get_area(new.unit_id)
            .await?
            .filter(|a| a.kind == AreaKind::Unit && actor.covers(&a.path))
            .ok_or_else(|| ServiceError::invalid("unit_id", "household.unknown_unit"))?;
        let now = self.now();
        let household = HouseholdRecord {
            id: Uuid::now_v7(),
            path: unit.path,
            room,
            created_at: now,
            updated_at: now,
        };
        let target = Target { kind: "household", id: household.id, path: Some(&household.path) };
        let write = RegistryWrite::InsertHousehold(&household);
        self.write_audited(actor, write, "household.create", target, serde_json::json!({})).await?;
        Ok(HouseholdView::from(&household))
    }

    pub async fn list_households(
        &self,
        actor: &Actor,
        area_id: Option<Uuid>,
        after: Option<Uuid>,
        limit: Option<u32>,
    ) -> ServiceResult<Page<HouseholdView>> {
        actor.require(Action::ReadResidents)?;
        let within = self.search_scope(actor, area_id).await?;
        let limit = page_limit(limit);
        let mut rows = self
            .store()
            .list_households(&HouseholdQuery { within, after, limit: limit + 1 })
            .await?;
        let next = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|h| h.id.to_string())
        } else {
            None
        };
        Ok(Page { items: rows.iter().map(HouseholdView::from).collect(), next_cursor: next })
    }

    // ---- residents ---------------------------------------------------------

    async fn visible_resident(&self, actor: &Actor, id: Uuid) -> ServiceResult<ResidentRecord> {
        actor.require(Action::ReadResidents)?;
        self.store()
            .get_resident(id)
            .await?
            .filter(|r| actor.covers(&r.path))
            .ok_or(ServiceError::NotFound)
    }

    pub async fn get_resident(&self, actor: &Actor, id: Uuid) -> ServiceResult<ResidentView> {
        Ok(self.resident_view(&self.visible_resident(actor, id).await?))
    }

    pub async fn household_members(
        &self,
        actor: &Actor,
        household_id: Uuid,
    ) -> ServiceResult<Vec<ResidentView>> {
        self.visible_household(actor, household_id).await?;
        self.members_of(household_id).await
    }

    /// A household's members, for a caller that has checked the actor may
    /// see the household.
    pub(crate) async fn members_of(&self, household_id: Uuid) -> ServiceResult<Vec<ResidentView>> {
        let rows = self
            .store()
            .search_residents(&ResidentQuery {
                household_id: Some(household_id),
                limit: MAX_PAGE,
                ..ResidentQuery::default()
            })
            .await?;
        Ok(rows.iter().map(|r| self.resident_view(r)).collect())
    }

    pub async fn create_resident(
        &self,
        actor: &Actor,
        new: NewResident,
    ) -> ServiceResult<ResidentView> {
        actor.require(Action::WriteResidents)?;
        let household = self
            .store()
            .get_household(new.household_id)
            .await?
            .filter(|h| actor.covers(&h.path))
            .ok_or_else(|| ServiceError::invalid("household_id", "resident.unknown_household"))?;
        let fields = self.validate_resident(
            new.name,
            new.sex,
            new.birth_date,
            new.id_number,
            new.phone,
            new.relation,
            (new.floating, new.arrived_on, new.origin),
            new.tags,
        )?;
        let now = self.now();
        let record = self.seal_resident(Uuid::now_v7(), &household, fields, now, now);
        let target = Target { kind: "resident", id: record.id, path: Some(&record.path) };
        let write = RegistryWrite::InsertResident(&record);
        self.write_audited(actor, write, "resident.create", target, serde_json::json!({})).await?;
        Ok(self.resident_view(&record))
    }

    pub async fn update_resident(
        &self,
        actor: &Actor,
        id: Uuid,
        changes: ResidentChanges,
    ) -> ServiceResult<ResidentView> {
        actor.require(Action::WriteResidents)?;
        let current = self.visible_resident(actor, id).await?;
        let household = match changes.household_id {
            Some(h) if h != current.household_id => {
                self.store().get_household(h).await?.filter(|h| actor.covers(&h.path)).ok_or_else(
                    || ServiceError::invalid("household_id", "resident.unknown_household"),
                )?
            }
            _ => self
                .store()
                .get_household(current.household_id)
                .await?
                .ok_or_else(|| ServiceError::Internal("resident without household".into()))?,
        };
        let open = |sealed: &Option<epigrid_store::SealedField>| -> ServiceResult<Option<String>> {
            sealed
                .as_ref()
                .map(|s| self.cipher().open(s).map_err(|e| ServiceError::Internal(e.to_string())))
                .transpose()
        };
        // A changed ID number re-derives sex and birth date unless they are
        // given explicitly in the same change.
        let id_changed = matches!(&changes.id_number, Some(Some(_)));
        let id_number = match changes.id_number {
            Some(v) => v,
            None => open(&current.id_number)?,
        };
        let phone = match changes.phone {
            Some(v) => v,
            None => open(&current.phone)?,
        };
        let (was_floating, was_arrived, was_origin) = match &current.residence {
            Residence::Registered => (false, None, None),
            Residence::Floating { arrived_on, origin } => {
                (true, Some(*arrived_on), Some(origin.clone()))
            }
        };
        let fields = self.validate_resident(
            changes.name.unwrap_or_else(|| current.name.as_str().to_owned()),
            changes.sex.or((!id_changed).then_some(current.sex)),
            changes.birth_date.or((!id_changed).then_some(current.birth_date)),
            id_number,
            phone,
            changes.relation.unwrap_or(current.relation),
            (
                changes.floating.unwrap_or(was_floating),
                changes.arrived_on.unwrap_or(was_arrived),
                changes.origin.unwrap_or(was_origin),
            ),
            changes
                .tags
                .unwrap_or_else(|| current.tags.iter().map(|t| t.as_str().to_owned()).collect()),
        )?;
        let record = self.seal_resident(id, &household, fields, current.created_at, self.now());
        let target = Target { kind: "resident", id: record.id, path: Some(&record.path) };
        let detail = serde_json::json!({ "fields": changed_fields(&current, &record) });
        let write = RegistryWrite::UpdateResident(&record);
        if !self.write_audited(actor, write, "resident.update", target, detail).await? {
            return Err(ServiceError::NotFound);
        }
        Ok(self.resident_view(&record))
    }

    pub async fn search_residents(
        &self,
        actor: &Actor,
        search: ResidentSearch,
    ) -> ServiceResult<Page<ResidentView>> {
        actor.require(Action::ReadResidents)?;
        let within = self.search_scope(actor, search.area_id).await?;
        let id_blind_index =
            match search.id_number.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                Some(text) => {
                    let doc =
                        IdDocument::parse(text, self.today()).map_err(invalid("id_number"))?;
                    Some(self.cipher().blind_index("id_number", doc.match_key()))
                }
                None => None,
            };
        let phone_blind_index =
            match search.phone.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                Some(text) => {
                    let phone = MobilePhone::parse(text).map_err(invalid("phone"))?;
                    Some(self.cipher().blind_index("phone", phone.as_str()))
                }
                None => None,
            };
        let tag = match search.tag.as_deref().filter(|s| !s.is_empty()) {
            Some(t) => Some(Tag::parse(t).map_err(invalid("tag"))?),
            None => None,
        };
        let after = match search.cursor.as_deref().filter(|s| !s.is_empty()) {
            Some(c) => Some(
                ResidentCursor::decode(c)
                    .ok_or_else(|| ServiceError::invalid("cursor", "cursor.invalid"))?,
            ),
            None => None,
        };
        if let Some(household) = search.household_id {
            self.visible_household(actor, household).await?;
        }
        let limit = page_limit(search.limit);
        let mut rows = self
            .store()
            .search_residents(&ResidentQuery {
                within,
                household_id: search.household_id,
                name_prefix: search.name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
                id_blind_index,
                phone_blind_index,
                tag,
                after,
                limit: limit + 1,
            })
            .await?;
        let next = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last()
                .map(|r| ResidentCursor { name: r.name.as_str().to_owned(), id: r.id }.encode())
        } else {
            None
        };
        Ok(Page { items: rows.iter().map(|r| self.resident_view(r)).collect(), next_cursor: next })
    }

    /// The scope to search in: the requested area if the actor may see it,
    /// else the actor's own scope.
    async fn search_scope(
        &self,
        actor: &Actor,
        area_id: Option<Uuid>,
    ) -> ServiceResult<Option<Scope>> {
        match area_id {
            Some(id) => {
                let area = self.visible_area(actor, id).await?;
                Ok(Some(Scope { kind: area.kind, area_id: area.id }))
            }
            None => Ok(actor.scope),
        }
    }

    pub async fn stats(&self, actor: &Actor) -> ServiceResult<Stats> {
        actor.require(Action::ReadAreas)?;
        Ok(self.store().level_counts(actor.scope).await?)
    }

    #[allow(clippy::too_many_arguments)]
    fn validate_resident(
        &self,
        name: String,
        sex: Option<Sex>,
        birth_date: Option<NaiveDate>,
        id_number: Option<String>,
        phone: Option<String>,
        relation: Relation,
        (floating, arrived_on, origin): (bool, Option<NaiveDate>, Option<String>),
        tags: Vec<String>,
    ) -> ServiceResult<ResidentFields> {
        let today = self.today();
        let name = PersonName::parse(&name).map_err(invalid("name"))?;
        let id_document = match id_number.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(text) => Some(IdDocument::parse(text, today).map_err(invalid("id_number"))?),
            None => None,
        };
        let phone = match phone.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(text) => Some(MobilePhone::parse(text).map_err(invalid("phone"))?),
            None => None,
        };
        let derived_sex = id_document.as_ref().and_then(IdDocument::sex);
        let derived_birth = id_document.as_ref().and_then(IdDocument::birth_date);
        let sex = match (sex, derived_sex) {
            (Some(given), Some(derived)) if given != derived => {
                return Err(ServiceError::invalid("sex", "resident.sex_mismatch"));
            }
            (given, derived) => {
                given.or(derived).ok_or_else(|| ServiceError::invalid("sex", "field.required"))?
            }
        };
        let birth_date = match (birth_date, derived_birth) {
            (Some(given), Some(derived)) if given != derived => {
                return Err(ServiceError::invalid("birth_date", "resident.birth_date_mismatch"));
            }
            (given, derived) => given
                .or(derived)
                .ok_or_else(|| ServiceError::invalid("birth_date", "field.required"))?,
        };
        if birth_date > today {
            return Err(ServiceError::invalid("birth_date", "resident.birth_date_future"));
        }
        let residence = if floating {
            let arrived_on =
                arrived_on.ok_or_else(|| ServiceError::invalid("arrived_on", "field.required"))?;
            if arrived_on > today || arrived_on < birth_date {
                return Err(ServiceError::invalid("arrived_on", "resident.arrival_date"));
            }
            let origin = optional_text("origin", origin, MAX_ORIGIN)?
                .ok_or_else(|| ServiceError::invalid("origin", "field.required"))?;
            Residence::Floating { arrived_on, origin }
        } else {
            Residence::Registered
        };
        let mut parsed_tags = Vec::with_capacity(tags.len());
        for text in tags {
            let tag = Tag::parse(text.trim()).map_err(invalid("tags"))?;
            if !self.tag_known(&tag) {
                return Err(ServiceError::invalid("tags", "tag.unknown"));
            }
            if !parsed_tags.contains(&tag) {
                parsed_tags.push(tag);
            }
        }
        parsed_tags.sort();
        Ok(ResidentFields {
            name,
            sex,
            birth_date,
            id_document,
            phone,
            relation,
            residence,
            tags: parsed_tags,
        })
    }

    fn seal_resident(
        &self,
        id: Uuid,
        household: &HouseholdRecord,
        f: ResidentFields,
        created_at: chrono::DateTime<chrono::Utc>,
        updated_at: chrono::DateTime<chrono::Utc>,
    ) -> ResidentRecord {
        ResidentRecord {
            id,
            household_id: household.id,
            path: household.path,
            name: f.name,
            sex: f.sex,
            birth_date: f.birth_date,
            id_kind: f.id_document.as_ref().map(IdDocument::kind),
            id_number: f
                .id_document
                .as_ref()
                .map(|d| self.cipher().seal("id_number", d.as_str(), d.match_key())),
            phone: f.phone.as_ref().map(|p| self.cipher().seal("phone", p.as_str(), p.as_str())),
            relation: f.relation,
            residence: f.residence,
            tags: f.tags,
            created_at,
            updated_at,
        }
    }

    /// Seals a resident for bulk loading (demo, imports): the same
    /// validation-free path `create_resident` ends in, for callers that have
    /// already built valid domain values.
    #[allow(clippy::too_many_arguments)]
    pub fn sealed_resident(
        &self,
        household: &HouseholdRecord,
        name: PersonName,
        id_document: Option<&IdDocument>,
        sex: Sex,
        birth_date: NaiveDate,
        phone: Option<&MobilePhone>,
        relation: Relation,
        residence: Residence,
        tags: Vec<Tag>,
    ) -> ResidentRecord {
        let now = self.now();
        self.seal_resident(
            Uuid::now_v7(),
            household,
            ResidentFields {
                name,
                sex,
                birth_date,
                id_document: id_document.cloned(),
                phone: phone.cloned(),
                relation,
                residence,
                tags,
            },
            now,
            now,
        )
    }

    pub(crate) fn resident_view(&self, r: &ResidentRecord) -> ResidentView {
        let masked = |field: &Option<epigrid_store::SealedField>, mask: fn(&str) -> String| {
            field.as_ref().map(|s| match self.cipher().open(s) {
                Ok(clear) => mask(&clear),
                // A value we cannot open is shown as unreadable, never guessed.
                Err(_) => "????".to_owned(),
            })
        };
        let (residence, arrived_on, origin) = match &r.residence {
            Residence::Registered => ("registered", None, None),
            Residence::Floating { arrived_on, origin } => {
                ("floating", Some(*arrived_on), Some(origin.clone()))
            }
        };
        ResidentView {
            id: r.id,
            household_id: r.household_id,
            community_id: r.path.community,
            grid_id: r.path.grid,
            building_id: r.path.building,
            unit_id: r.path.unit,
            name: r.name.as_str().to_owned(),
            sex: r.sex,
            birth_date: r.birth_date,
            age: epigrid_domain::resident::age_on(r.birth_date, self.today()),
            id_kind: r.id_kind,
            id_number: masked(&r.id_number, mask_document),
            phone: masked(&r.phone, mask_phone),
            relation: r.relation,
            residence,
            arrived_on,
            origin,
            tags: r.tags.clone(),
        }
    }
}

/// Names of the fields an update changed, for the audit log: which fields,
/// never their values. Sealed fields compare by blind index, since their
/// ciphertexts differ on every write.
fn changed_fields(before: &ResidentRecord, after: &ResidentRecord) -> Vec<&'static str> {
    let blind = |f: &Option<epigrid_store::SealedField>| f.as_ref().map(|s| s.blind_index.clone());
    [
        ("household_id", before.household_id != after.household_id),
        ("name", before.name != after.name),
        ("sex", before.sex != after.sex),
        ("birth_date", before.birth_date != after.birth_date),
        ("id_number", blind(&before.id_number) != blind(&after.id_number)),
        ("phone", blind(&before.phone) != blind(&after.phone)),
        ("relation", before.relation != after.relation),
        ("residence", before.residence != after.residence),
        ("tags", before.tags != after.tags),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect()
}

fn mask_document(clear: &str) -> String {
    let (head, tail) = if clear.chars().count() == 18 { (6, 4) } else { (1, 3) };
    epigrid_domain::mask::mask_middle(clear, head, tail)
}

fn mask_phone(clear: &str) -> String {
    epigrid_domain::mask::mask_middle(clear, 3, 4)
}

fn validate_area_code(
    kind: AreaKind,
    code: Option<&str>,
    parent: Option<&AreaRecord>,
) -> ServiceResult<Option<String>> {
    let code = code.map(str::trim).filter(|c| !c.is_empty());
    let parent_code = parent.and_then(|p| p.code.as_deref());
    let required = || ServiceError::invalid("code", "field.required");
    let not_under = || ServiceError::invalid("code", "code.not_under_parent");
    match kind {
        AreaKind::SubDistrict => {
            let code =
                SubDistrictCode::parse(code.ok_or_else(required)?).map_err(invalid("code"))?;
            Ok(Some(code.to_string()))
        }
        AreaKind::Community => {
            let code = CommunityCode::parse(code.ok_or_else(required)?).map_err(invalid("code"))?;
            if parent_code.is_some_and(|p| p != code.sub_district().as_str()) {
                return Err(not_under());
            }
            Ok(Some(code.to_string()))
        }
        AreaKind::Grid => {
            let code = GridCode::parse(code.ok_or_else(required)?).map_err(invalid("code"))?;
            if parent_code.is_some_and(|p| p != code.community().as_str()) {
                return Err(not_under());
            }
            Ok(Some(code.to_string()))
        }
        AreaKind::Building | AreaKind::Unit => match code {
            Some(_) => Err(ServiceError::invalid("code", "code.not_for_this_level")),
            None => Ok(None),
        },
    }
}

fn validate_boundary(
    kind: AreaKind,
    boundary: Option<serde_json::Value>,
) -> ServiceResult<Option<Boundary>> {
    match boundary.filter(|b| !b.is_null()) {
        None => Ok(None),
        Some(_) if !matches!(kind, AreaKind::Community | AreaKind::Grid) => {
            Err(ServiceError::invalid("boundary", "boundary.only_for_communities_and_grids"))
        }
        Some(value) => Boundary::from_geojson_value(value).map(Some).map_err(invalid("boundary")),
    }
}
