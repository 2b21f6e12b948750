//! Read helpers for moving around the hierarchy on the staff pages:
//! breadcrumbs, an area's children with their figures, the households of a
//! building or unit, and the areas an actor may pick in a form. Every call
//! checks role and scope like the rest of the service; an actor's scope node
//! is the top of everything they see.

use std::collections::HashMap;

use epigrid_domain::{Action, AreaKind, Scope};
use epigrid_store::{AreaFigures, AreaQuery, AreaRecord, HouseholdQuery, LevelCounts};
use serde::Serialize;
use uuid::Uuid;

use crate::views::{AreaView, HouseholdView};
use crate::{Actor, Service, ServiceError, ServiceResult};

/// How many rows one store query returns while collecting a full list.
const BATCH: u32 = 500;
/// More areas than this in one pick list means something is wrong.
const MAX_CHOICES: usize = 5_000;
/// More households than this under one building is not a building.
const MAX_HOUSEHOLDS: usize = 5_000;

/// An area with the figures of everything under it.
#[derive(Debug, Clone, Serialize)]
pub struct AreaWithCounts {
    pub area: AreaView,
    pub figures: AreaFigures,
}

/// What an area page shows at the top: the area, how to get there, and its
/// headline figures.
#[derive(Debug, Clone, Serialize)]
pub struct AreaSummary {
    pub area: AreaView,
    /// From the top of the actor's scope down to the area itself.
    pub trail: Vec<AreaView>,
    pub counts: LevelCounts,
    pub figures: AreaFigures,
}

/// A unit of a building with its households, rooms in natural order.
#[derive(Debug, Clone, Serialize)]
pub struct UnitHouseholds {
    pub unit: AreaWithCounts,
    pub households: Vec<HouseholdView>,
}

/// An entry of a pick list of areas, in tree order (each community followed
/// by its grids).
#[derive(Debug, Clone, Serialize)]
pub struct AreaChoice {
    pub id: Uuid,
    pub kind: AreaKind,
    pub name: String,
    /// The name of the community a grid belongs to, to tell apart grids of
    /// the same name.
    pub parent_name: Option<String>,
}

/// Orders room numbers as people read them: `2` before `10`, `1-101`
/// before `1-1001`.
pub fn room_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            // Digits are ASCII, so a change between digit and non-digit is
            // always on a character boundary.
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[i - 1].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for ((da, xa), (db, xb)) in ca.iter().zip(cb.iter()) {
        let ord = if *da && *db {
            let (ta, tb) = (xa.trim_start_matches('0'), xb.trim_start_matches('0'));
            ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb))
        } else {
            xa.cmp(xb)
        };
        if ord != std::cmp::Ordering::Equal {
            return ord;
        }
    }
    ca.len().cmp(&cb.len()).then_with(|| a.cmp(b))
}

impl Service {
    /// Breadcrumbs: the ancestors of an area the actor may see, top first,
    /// ending with the area itself. A grid worker's trail starts at their
    /// grid; an area outside the scope is `NotFound`.
    pub async fn area_trail(&self, actor: &Actor, area_id: Uuid) -> ServiceResult<Vec<AreaView>> {
        let area = self.visible_area(actor, area_id).await?;
        self.trail_of(actor, &area).await
    }

    async fn trail_of(&self, actor: &Actor, area: &AreaRecord) -> ServiceResult<Vec<AreaView>> {
        let mut trail = Vec::with_capacity(area.kind.depth() + 1);
        for kind in AreaKind::ALL.into_iter().filter(|k| *k < area.kind) {
            let Some(id) = area.path.at(kind) else { continue };
            // Above the scope node the actor sees nothing.
            if let Some(scope) = actor.scope
                && kind < scope.kind
            {
                continue;
            }
            if let Some(ancestor) =
                self.store().get_area(id).await?.filter(|a| actor.covers(&a.path))
            {
                trail.push(AreaView::from(&ancestor));
            }
        }
        trail.push(AreaView::from(area));
        Ok(trail)
    }

    /// The top of an area page: the area, its breadcrumbs and its figures.
    pub async fn area_summary(&self, actor: &Actor, area_id: Uuid) -> ServiceResult<AreaSummary> {
        let area = self.visible_area(actor, area_id).await?;
        let trail = self.trail_of(actor, &area).await?;
        let within = Some(Scope { kind: area.kind, area_id: area.id });
        let counts = self.store().level_counts(within).await?;
        let figures = self
            .store()
            .area_figures(within, area.kind)
            .await?
            .into_iter()
            .find(|f| f.area_id == area.id)
            .unwrap_or(AreaFigures { area_id: area.id, ..AreaFigures::default() });
        Ok(AreaSummary { area: AreaView::from(&area), trail, counts, figures })
    }

    /// The areas one level below an area, each with its figures, in name
    /// order. A unit has no child areas (its households are listed by
    /// [`Service::area_households`]).
    pub async fn area_children(
        &self,
        actor: &Actor,
        area_id: Uuid,
    ) -> ServiceResult<Vec<AreaWithCounts>> {
        let area = self.visible_area(actor, area_id).await?;
        let Some(child_kind) =
            AreaKind::ALL.into_iter().find(|k| k.parent_kind() == Some(area.kind))
        else {
            return Ok(Vec::new());
        };
        let within = Scope { kind: area.kind, area_id: area.id };
        let children = self
            .all_areas(AreaQuery {
                parent_id: Some(area.id),
                within: actor.scope,
                ..AreaQuery::default()
            })
            .await?;
        let figures = self.store().area_figures(Some(within), child_kind).await?;
        let mut out: Vec<AreaWithCounts> = children
            .iter()
            .map(|child| AreaWithCounts {
                area: AreaView::from(child),
                figures: figures
                    .iter()
                    .find(|f| f.area_id == child.id)
                    .copied()
                    .unwrap_or(AreaFigures { area_id: child.id, ..AreaFigures::default() }),
            })
            .collect();
        out.sort_by(|a, b| room_order(&a.area.name, &b.area.name));
        Ok(out)
    }

    /// The households of a building or unit (or any area), rooms in natural
    /// order. Households are personal records: roles that may not read
    /// residents are refused.
    pub async fn area_households(
        &self,
        actor: &Actor,
        area_id: Uuid,
    ) -> ServiceResult<Vec<HouseholdView>> {
        actor.require(Action::ReadResidents)?;
        let area = self.visible_area(actor, area_id).await?;
        let within = Some(Scope { kind: area.kind, area_id: area.id });
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let batch = self
                .store()
                .list_households(&HouseholdQuery { within, after, limit: BATCH })
                .await?;
            let full = batch.len() == BATCH as usize;
            after = batch.last().map(|h| h.id);
            out.extend(batch.iter().map(HouseholdView::from));
            if !full {
                break;
            }
            if out.len() > MAX_HOUSEHOLDS {
                return Err(ServiceError::Internal("too many households for one page".into()));
            }
        }
        out.sort_by(|a, b| room_order(&a.room, &b.room));
        Ok(out)
    }

    /// The units of a building, each with its households.
    pub async fn building_units(
        &self,
        actor: &Actor,
        building_id: Uuid,
    ) -> ServiceResult<Vec<UnitHouseholds>> {
        let units = self.area_children(actor, building_id).await?;
        let mut households = if actor.role.allows(Action::ReadResidents) {
            self.area_households(actor, building_id).await?
        } else {
            Vec::new()
        };
        Ok(units
            .into_iter()
            .map(|unit| {
                let id = unit.area.id;
                let (mine, rest): (Vec<_>, Vec<_>) =
                    households.drain(..).partition(|h| h.unit_id == Some(id));
                households = rest;
                UnitHouseholds { unit, households: mine }
            })
            .collect())
    }

    /// The sub-district, communities and grids the actor may pick (as a
    /// search filter or an account's scope), in tree order.
    pub async fn area_choices(&self, actor: &Actor) -> ServiceResult<Vec<AreaChoice>> {
        actor.require(Action::ReadAreas)?;
        let mut levels: HashMap<AreaKind, Vec<AreaRecord>> = HashMap::new();
        for kind in [AreaKind::SubDistrict, AreaKind::Community, AreaKind::Grid] {
            if actor.scope.is_some_and(|s| kind < s.kind) {
                continue;
            }
            let mut areas = self
                .all_areas(AreaQuery {
                    kind: Some(kind),
                    within: actor.scope,
                    ..AreaQuery::default()
                })
                .await?;
            areas.sort_by(|a, b| a.code.cmp(&b.code).then_with(|| room_order(&a.name, &b.name)));
            levels.insert(kind, areas);
        }
        let take = |kind| levels.get(&kind).cloned().unwrap_or_default();
        let (sub_districts, communities, grids) =
            (take(AreaKind::SubDistrict), take(AreaKind::Community), take(AreaKind::Grid));
        let choice = |a: &AreaRecord, parent_name: Option<String>| AreaChoice {
            id: a.id,
            kind: a.kind,
            name: a.name.clone(),
            parent_name,
        };
        let mut out: Vec<AreaChoice> = sub_districts.iter().map(|a| choice(a, None)).collect();
        for community in &communities {
            out.push(choice(community, None));
            out.extend(
                grids
                    .iter()
                    .filter(|g| g.parent_id == Some(community.id))
                    .map(|g| choice(g, Some(community.name.clone()))),
            );
        }
        // Grids whose community lies outside the scope (a grid-scoped actor).
        out.extend(
            grids
                .iter()
                .filter(|g| !communities.iter().any(|c| Some(c.id) == g.parent_id))
                .map(|g| choice(g, None)),
        );
        Ok(out)
    }

    /// Names of areas by id, for lists that show where something is (an
    /// account's scope). Ids the actor may not see are left out.
    pub async fn area_names(
        &self,
        actor: &Actor,
        ids: &[Uuid],
    ) -> ServiceResult<HashMap<Uuid, AreaView>> {
        actor.require(Action::ReadAreas)?;
        let mut unique: Vec<Uuid> = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        Ok(self
            .store()
            .get_areas(&unique)
            .await?
            .iter()
            .filter(|a| actor.covers(&a.path))
            .map(|a| (a.id, AreaView::from(a)))
            .collect())
    }

    /// Room numbers of several households at once, within the scope.
    pub async fn household_rooms(
        &self,
        actor: &Actor,
        ids: &[Uuid],
    ) -> ServiceResult<HashMap<Uuid, String>> {
        actor.require(Action::ReadResidents)?;
        let mut unique: Vec<Uuid> = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        Ok(self
            .store()
            .get_households(&unique)
            .await?
            .into_iter()
            .filter(|h| actor.covers(&h.path))
            .map(|h| (h.id, h.room))
            .collect())
    }

    async fn all_areas(&self, query: AreaQuery) -> ServiceResult<Vec<AreaRecord>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let batch = self
                .store()
                .list_areas(&AreaQuery { after, limit: BATCH, ..query.clone() })
                .await?;
            let full = batch.len() == BATCH as usize;
            after = batch.last().map(|a| a.id);
            out.extend(batch);
            if !full {
                break;
            }
            if out.len() > MAX_CHOICES {
                return Err(ServiceError::Internal("too many areas for one list".into()));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::room_order;

    #[test]
    fn rooms_sort_as_people_read_them() {
        let mut rooms = vec!["1001", "201", "2", "10", "1-1001", "1-101", "B3", "B12", "101"];
        rooms.sort_by(|a, b| room_order(a, b));
        assert_eq!(rooms, ["1-101", "1-1001", "2", "10", "101", "201", "1001", "B3", "B12"]);
        let mut names = vec!["10号楼", "2号楼", "1号楼"];
        names.sort_by(|a, b| room_order(a, b));
        assert_eq!(names, ["1号楼", "2号楼", "10号楼"]);
    }
}
