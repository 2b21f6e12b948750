//! The figures of a dashboard for the caller's scope: headline counts, the
//! areas one level down (for the map), the age pyramid, key groups, and
//! registered against floating residents per area.

use std::collections::HashMap;

use chrono::{Datelike, TimeZone, Utc};
use epigrid_domain::{Action, AreaKind, Role, Sex};
use epigrid_store::{
    AreaFigures, AreaQuery, AreaRecord, BirthYearCount, GridTaskFigures, LevelCounts, TagCount,
};
use serde::Serialize;
use uuid::Uuid;

use crate::{Actor, Service, ServiceError, ServiceResult};

/// Width of an age band in the pyramid; the last band is open-ended.
pub const AGE_BAND_YEARS: u32 = 5;
pub const OLDEST_BAND_FROM: u32 = 85;

#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    /// The node the figures are for: the actor's scope, or a chosen area.
    pub area: Option<AreaRecordView>,
    pub counts: LevelCounts,
    pub floating: i64,
    pub key_group: i64,
    /// The level the map and per-area figures are drawn at.
    pub map_level: AreaKind,
    pub areas: Vec<AreaWithFigures>,
    pub age_bands: Vec<AgeBand>,
    pub tags: Vec<TagCount>,
    /// Task figures of the whole view; `None` for roles that see no tasks.
    pub tasks: Option<TaskCounts>,
    /// Task figures per grid with tasks (open, or closed or escalated
    /// today), the most overdue first.
    pub grid_tasks: Vec<GridTasks>,
}

/// Task counts of one area or of a whole view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TaskCounts {
    pub open: i64,
    pub overdue: i64,
    pub closed_today: i64,
    /// Open tasks escalated on their current stage.
    pub escalated_open: i64,
    /// Escalation steps taken today.
    pub escalations_today: i64,
}

impl TaskCounts {
    fn add(&mut self, f: &GridTaskFigures) {
        self.open += f.open;
        self.overdue += f.overdue;
        self.closed_today += f.closed_today;
        self.escalated_open += f.escalated_open;
        self.escalations_today += f.escalations_today;
    }
}

/// One grid's row of the dashboard's task table.
#[derive(Debug, Clone, Serialize)]
pub struct GridTasks {
    pub grid_id: Uuid,
    pub name: String,
    pub community_name: Option<String>,
    pub counts: TaskCounts,
}

#[derive(Debug, Clone, Serialize)]
pub struct AreaRecordView {
    pub id: Uuid,
    pub kind: AreaKind,
    pub name: String,
    pub code: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AreaWithFigures {
    pub id: Uuid,
    pub kind: AreaKind,
    pub name: String,
    pub code: Option<String>,
    /// Outer rings as (longitude, latitude), for drawing.
    pub rings: Vec<Vec<(f64, f64)>>,
    pub figures: AreaFigures,
    /// Task counts of the area (zeros where tasks are not shown).
    pub tasks: TaskCounts,
    /// Residents with a health report today, from the per-grid day counters
    /// the intake keeps on write (issue #6).
    pub reported: i64,
    /// Today's health entries with a fever or a symptom (people, counted
    /// per entry), arrivals registered and requests for help, from the
    /// same counters.
    pub flagged_today: i64,
    pub arrivals_today: i64,
    pub help_today: i64,
}

impl AreaWithFigures {
    /// Share of residents in a key group, 0.0–1.0 (0 for an empty area).
    pub fn key_group_share(&self) -> f64 {
        ratio(self.figures.key_group, self.figures.residents)
    }

    pub fn floating_share(&self) -> f64 {
        ratio(self.figures.floating, self.figures.residents)
    }

    /// Share of residents with a health report today, 0.0–1.0.
    pub fn reported_share(&self) -> f64 {
        ratio(self.reported, self.figures.residents).min(1.0)
    }
}

fn ratio(part: i64, whole: i64) -> f64 {
    if whole <= 0 { 0.0 } else { part as f64 / whole as f64 }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AgeBand {
    pub from: u32,
    /// Exclusive upper bound; `None` for the open-ended oldest band.
    pub to: Option<u32>,
    pub male: i64,
    pub female: i64,
}

/// Sorts residents into age bands by birth year. Age is reckoned as
/// `this_year - birth_year`, which is within a year of the exact age; a
/// pyramid of 5-year bands does not show the difference, and grouping by
/// year keeps the query O(years) rather than O(residents).
pub fn age_bands(counts: &[BirthYearCount], this_year: i32) -> Vec<AgeBand> {
    let band_count = (OLDEST_BAND_FROM / AGE_BAND_YEARS + 1) as usize;
    let mut bands: Vec<AgeBand> = (0..band_count)
        .map(|i| {
            let from = i as u32 * AGE_BAND_YEARS;
            AgeBand {
                from,
                to: (from < OLDEST_BAND_FROM).then_some(from + AGE_BAND_YEARS),
                male: 0,
                female: 0,
            }
        })
        .collect();
    for c in counts {
        let age = u32::try_from(this_year - c.year).unwrap_or(0);
        let index = ((age / AGE_BAND_YEARS) as usize).min(band_count - 1);
        match c.sex {
            Sex::Male => bands[index].male += c.residents,
            Sex::Female => bands[index].female += c.residents,
        }
    }
    bands
}

impl Service {
    /// The dashboard of `area_id` (which must be within the actor's scope),
    /// or of the actor's own scope.
    pub async fn dashboard(
        &self,
        actor: &Actor,
        area_id: Option<Uuid>,
    ) -> ServiceResult<Dashboard> {
        actor.require(Action::ReadAreas)?;
        let area = match area_id.or(actor.scope.map(|s| s.area_id)) {
            Some(id) => Some(self.visible_area(actor, id).await?),
            None => self
                .store()
                .list_areas(&AreaQuery {
                    kind: Some(AreaKind::SubDistrict),
                    limit: 1,
                    ..AreaQuery::default()
                })
                .await?
                .into_iter()
                .next(),
        };
        let within = area.as_ref().map(|a| epigrid_domain::Scope { kind: a.kind, area_id: a.id });
        // One level down from the node, but never below grids: a grid's map
        // is the grid itself.
        let map_level = match area.as_ref().map(|a| a.kind) {
            None | Some(AreaKind::SubDistrict) => AreaKind::Community,
            Some(_) => AreaKind::Grid,
        };
        // The queries are independent; run them side by side so the page
        // waits for the slowest, not for their sum (SQLite has a pool of
        // readers, PostgreSQL a pool of connections).
        let personal = actor.role.allows(Action::ReadResidents);
        // Volunteers see no task board, so no task figures either.
        let sees_tasks = actor.role != Role::Volunteer;
        let store = self.store();
        let now = self.now();
        let day_start = self.day_start();
        let (counts, figures, years, tags, task_figures) = tokio::try_join!(
            store.area_level_counts(within),
            store.area_figures(within, map_level),
            async { if personal { store.birth_year_counts(within).await } else { Ok(Vec::new()) } },
            async { if personal { store.tag_counts(within).await } else { Ok(Vec::new()) } },
            async {
                if sees_tasks {
                    store.grid_task_figures(within, now, day_start).await
                } else {
                    Ok(Vec::new())
                }
            },
        )?;
        // Residents and households come from the per-area figures, which
        // read them once: the map level partitions the scope.
        let counts = LevelCounts {
            residents: figures.iter().map(|f| f.residents).sum(),
            households: figures.iter().map(|f| f.households).sum(),
            ..counts
        };
        let mut map_areas = self.map_areas(within, map_level, &figures).await?;
        let mut totals = TaskCounts::default();
        for f in &task_figures {
            totals.add(f);
            let key = match map_level {
                AreaKind::Community => Some(f.community_id),
                _ => f.grid_id,
            };
            if let Some(area) = map_areas.iter_mut().find(|a| Some(a.id) == key) {
                area.tasks.add(f);
            }
        }
        self.add_reported_today(within, map_level, &mut map_areas).await?;
        let grid_tasks = self.grid_task_rows(&task_figures).await?;
        let age_bands = if personal { age_bands(&years, self.today().year()) } else { Vec::new() };
        Ok(Dashboard {
            area: area.as_ref().map(|a| AreaRecordView {
                id: a.id,
                kind: a.kind,
                name: a.name.clone(),
                code: a.code.clone(),
            }),
            counts,
            floating: figures.iter().map(|f| f.floating).sum(),
            key_group: figures.iter().map(|f| f.key_group).sum(),
            map_level,
            areas: map_areas,
            age_bands,
            tags,
            tasks: sees_tasks.then_some(totals),
            grid_tasks,
        })
    }

    /// Today's reported residents per map area, summed from the per-grid
    /// day counters (kept on write, never counted from the reports): one
    /// read of the grids' counters, plus the list of grid ids (from the
    /// areas alone) for a map of communities.
    async fn add_reported_today(
        &self,
        within: Option<epigrid_domain::Scope>,
        map_level: AreaKind,
        map_areas: &mut [AreaWithFigures],
    ) -> ServiceResult<()> {
        let grids: Vec<Uuid> = if map_level == AreaKind::Grid {
            map_areas.iter().map(|a| a.id).collect()
        } else {
            // The grids' ids only (the areas table, not the residents).
            let mut ids = Vec::new();
            let mut after = None;
            loop {
                let page = self
                    .store()
                    .list_areas(&AreaQuery {
                        kind: Some(AreaKind::Grid),
                        within,
                        after,
                        limit: 500,
                        ..AreaQuery::default()
                    })
                    .await?;
                after = page.last().map(|a| a.id);
                ids.extend(page.iter().map(|a| a.id));
                if page.len() < 500 {
                    break ids;
                }
            }
        };
        let today = self.today();
        for chunk in grids.chunks(500) {
            for c in self.store().grid_day_counters(chunk, today).await? {
                let key = if map_level == AreaKind::Community { c.community_id } else { c.grid_id };
                if let Some(area) = map_areas.iter_mut().find(|a| a.id == key) {
                    area.reported += c.residents_reported;
                    area.flagged_today += c.flagged;
                    area.arrivals_today += c.arrivals;
                    area.help_today += c.help_requests;
                }
            }
        }
        Ok(())
    }

    /// The start of today in the configured zone, as UTC.
    pub(crate) fn day_start(&self) -> chrono::DateTime<Utc> {
        let offset = self.settings().time_zone_offset;
        let midnight = self.today().and_hms_opt(0, 0, 0).unwrap_or_default();
        offset
            .from_local_datetime(&midnight)
            .single()
            .map_or_else(|| midnight.and_utc(), |d| d.with_timezone(&Utc))
    }

    /// The per-grid rows of the task table, named in one read of the grids
    /// and their communities.
    async fn grid_task_rows(&self, figures: &[GridTaskFigures]) -> ServiceResult<Vec<GridTasks>> {
        let mut ids: Vec<Uuid> =
            figures.iter().flat_map(|f| [Some(f.community_id), f.grid_id]).flatten().collect();
        ids.sort_unstable();
        ids.dedup();
        let names: HashMap<Uuid, String> =
            self.store().get_areas(&ids).await?.into_iter().map(|a| (a.id, a.name)).collect();
        let mut rows: Vec<GridTasks> = figures
            .iter()
            .filter_map(|f| {
                let grid_id = f.grid_id?;
                let mut counts = TaskCounts::default();
                counts.add(f);
                Some(GridTasks {
                    grid_id,
                    name: names.get(&grid_id).cloned().unwrap_or_default(),
                    community_name: names.get(&f.community_id).cloned(),
                    counts,
                })
            })
            .collect();
        rows.sort_by(|a, b| {
            b.counts
                .overdue
                .cmp(&a.counts.overdue)
                .then_with(|| b.counts.open.cmp(&a.counts.open))
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(rows)
    }

    async fn map_areas(
        &self,
        within: Option<epigrid_domain::Scope>,
        level: AreaKind,
        figures: &[AreaFigures],
    ) -> ServiceResult<Vec<AreaWithFigures>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store()
                .list_areas(&AreaQuery {
                    kind: Some(level),
                    within,
                    after,
                    limit: 500,
                    ..AreaQuery::default()
                })
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            let full = page.len() == 500;
            out.extend(page.iter().map(|a: &AreaRecord| {
                AreaWithFigures {
                    id: a.id,
                    kind: a.kind,
                    name: a.name.clone(),
                    code: a.code.clone(),
                    rings: a.boundary.as_ref().map(|b| b.outer_rings()).unwrap_or_default(),
                    figures: figures
                        .iter()
                        .find(|f| f.area_id == a.id)
                        .copied()
                        .unwrap_or(AreaFigures { area_id: a.id, ..AreaFigures::default() }),
                    tasks: TaskCounts::default(),
                    reported: 0,
                    flagged_today: 0,
                    arrivals_today: 0,
                    help_today: 0,
                }
            }));
            if !full {
                break;
            }
        }
        if out.len() > 10_000 {
            return Err(ServiceError::Internal("too many areas for one map".into()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn birth_years_fall_into_five_year_bands_with_an_open_top() {
        let counts = [
            BirthYearCount { year: 2026, sex: Sex::Male, residents: 3 },
            BirthYearCount { year: 2022, sex: Sex::Female, residents: 2 },
            BirthYearCount { year: 2021, sex: Sex::Female, residents: 1 },
            BirthYearCount { year: 1930, sex: Sex::Female, residents: 4 },
            BirthYearCount { year: 1941, sex: Sex::Male, residents: 5 },
        ];
        let bands = age_bands(&counts, 2026);
        assert_eq!(bands.len(), 18);
        assert_eq!(bands[0], AgeBand { from: 0, to: Some(5), male: 3, female: 2 });
        assert_eq!(bands[1], AgeBand { from: 5, to: Some(10), male: 0, female: 1 });
        let top = bands.last().unwrap();
        assert_eq!((top.from, top.to, top.male, top.female), (85, None, 5, 4));
        let total: i64 = bands.iter().map(|b| b.male + b.female).sum();
        assert_eq!(total, 15, "nobody is lost");
    }
}
