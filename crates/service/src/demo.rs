//! The demo sub-district: 市中街道 in Binzhou's 滨城区, with communities,
//! grids, buildings, households and residents realistic enough to show the
//! product and to load-test it.
//!
//! Generation comes in two steps. `build_plan` is a pure function of the options
//! (seed included) and today's date that builds everything as plain data, so
//! the realism rules are unit-tested without a store. `Service::generate_demo`
//! then writes the plan: areas and accounts through the use cases (so codes,
//! boundaries and passwords pass the same checks as any other), households
//! and residents in bulk.
//!
//! Today's date enters only through its year (ages, arrival years) and a
//! clamp that keeps this year's dates in the past, so a seed gives the same
//! ID numbers all year long.

mod names;

use std::collections::HashSet;

use chrono::{Datelike, NaiveDate};
use epigrid_domain::identity::check_character;
use epigrid_domain::{
    AreaKind, AreaPath, Boundary, CommunityCode, GridCode, GridKind, IdDocument, MobilePhone,
    PersonName, Relation, Residence, Role, Sex, SubDistrictCode, Tag,
};
use epigrid_store::HouseholdRecord;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{RngExt, SeedableRng};
use uuid::Uuid;

use crate::accounts::{MIN_PASSWORD_CHARS, NewUser};
use crate::registry::NewArea;
use crate::{Actor, Service, ServiceError, ServiceResult};

const SUB_DISTRICT_NAME: &str = "市中街道";
/// 滨城区 (371602), township part 001: a 街道.
const SUB_DISTRICT_CODE: &str = "371602001";
/// Roughly the old town of 滨城区, north of the Yellow River.
const EXTENT: Rect = Rect { west: 117.95, south: 37.36, east: 118.03, north: 37.42 };
/// Far beyond any sub-district, but keeps a typo from exhausting memory.
const MAX_RESIDENTS: u32 = 2_000_000;
/// Residents per `insert_bulk` transaction: large enough that commits are
/// few, small enough that progress moves and memory stays flat.
const INSERT_CHUNK: usize = 2_000;
/// argon2 hashes in flight at once. Each takes ~19 MiB and one core; two
/// cores are the machine this has to run on, and a little oversubscription
/// hides the store round trips between hashes.
const HASH_BATCH: usize = 4;
/// Average household size the building plan assumes (the composition table
/// below gives about this), and the share of flats that are lived in.
const MEAN_HOUSEHOLD: f64 = 2.45;
const OCCUPANCY: f64 = 0.9;
/// A dedicated grid's population relative to a residential one: only the
/// staff dormitory there has households.
const DEDICATED_WEIGHT: f64 = 0.12;

// ---- public API ---------------------------------------------------------------

/// What to generate. The default is a sub-district of the usual size.
#[derive(Clone)]
pub struct DemoOptions {
    pub seed: u64,
    pub residents: u32,
    pub communities: u32,
    pub grids: u32,
    /// The `admin` password; derived from the seed when absent.
    pub admin_password: Option<String>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self { seed: 20221129, residents: 50_000, communities: 8, grids: 50, admin_password: None }
    }
}

impl std::fmt::Debug for DemoOptions {
    // A password given on the command line must not end up in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoOptions")
            .field("seed", &self.seed)
            .field("residents", &self.residents)
            .field("communities", &self.communities)
            .field("grids", &self.grids)
            .field("admin_password", &self.admin_password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// How far generation has got, reported as it goes (for a progress bar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoProgress {
    Areas { done: u32, total: u32 },
    Accounts { done: u32, total: u32 },
    Residents { done: u32, total: u32 },
}

/// An account the demo created, with its password in clear so that the CLI
/// can print the logins once.
#[derive(Clone)]
pub struct DemoAccount {
    pub username: String,
    pub password: String,
    pub role: Role,
    pub scope_name: String,
}

impl std::fmt::Debug for DemoAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoAccount")
            .field("username", &self.username)
            .field("password", &"***")
            .field("role", &self.role)
            .field("scope_name", &self.scope_name)
            .finish()
    }
}

/// What `demo_activity` added.
#[derive(Debug, Clone, Copy, Default)]
pub struct DemoActivity {
    pub households_reported: u32,
    pub fevers: u32,
}

#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub sub_district_id: Uuid,
    pub accounts: Vec<DemoAccount>,
    pub households: u32,
    pub residents: u32,
}

impl Service {
    /// Generates the demo sub-district into an empty store. Deterministic for
    /// a given seed (same names, ID numbers, structure, passwords when derived
    /// from the seed); only ids and timestamps differ between runs.
    ///
    /// Derived passwords are as public as the seed: fine for a demo, never
    /// for a real deployment.
    pub async fn generate_demo(
        &self,
        options: &DemoOptions,
        progress: &(dyn Fn(DemoProgress) + Send + Sync),
    ) -> ServiceResult<DemoSummary> {
        validate(options)?;
        let counts = self.store().level_counts(None).await?;
        if counts.sub_districts > 0 || counts.households > 0 || counts.residents > 0 {
            return Err(ServiceError::Conflict {
                field: "store".into(),
                code: "demo.store_not_empty",
            });
        }
        let today = self.today();
        let owned = options.clone();
        // Tens of thousands of people take a moment; keep that off the
        // async worker threads.
        let plan = tokio::task::spawn_blocking(move || build_plan(&owned, today))
            .await
            .map_err(|e| ServiceError::Internal(format!("demo planning failed: {e}")))??;
        // Checked before anything is written, so a clash leaves no half demo.
        for account in &plan.accounts {
            if self.store().get_user_by_username(&account.username).await?.is_some() {
                return Err(ServiceError::Conflict {
                    field: "username".into(),
                    code: "username.duplicate",
                });
            }
        }

        let areas = self.write_areas(&plan, progress).await?;
        let accounts = self.write_accounts(&plan, &areas, progress).await?;
        let (households, residents) = self.write_residents(&plan, &areas, progress).await?;
        // Fresh statistics, so the planner knows the whole load shares one
        // sub-district before the first page is served.
        self.store().refresh_statistics().await?;
        tracing::info!(
            communities = plan.communities.len(),
            grids = areas.grids.len(),
            buildings = plan.building_count(),
            units = areas.units.len(),
            households,
            residents,
            "demo sub-district generated"
        );
        Ok(DemoSummary { sub_district_id: areas.sub_district, accounts, households, residents })
    }

    /// A morning's work on top of a fresh demo, so the pages have something
    /// to show: grid workers have reported about half of the households
    /// "whole household normal" at the door, and one resident in every
    /// three hundred reported households has a fever, which the rules turn
    /// into a follow-up task dispatched to their grid's workers. Everything
    /// goes through the intake path like real reports (keys derived from the
    /// household, so a second run adds nothing).
    pub async fn demo_activity(&self, seed: u64) -> ServiceResult<DemoActivity> {
        const SHARE_REPORTED: f64 = 0.55;
        const FEVER_EVERY: usize = 300;
        const WAVE: usize = 256;
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_ac71);
        let mut chosen = Vec::new();
        let mut after = None;
        loop {
            let query = epigrid_store::HouseholdQuery { within: None, after, limit: 1000 };
            let page = self.store().list_households(&query).await?;
            // The store may cap a page below the limit asked for: stop on
            // an empty page, not a short one.
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            chosen.extend(page.iter().filter(|_| rng.random_bool(SHARE_REPORTED)).map(|h| h.id));
        }
        let mut activity = DemoActivity::default();
        // Waves of concurrent reports: each wave fills one intake batch.
        for (wave_index, wave) in chosen.chunks(WAVE).enumerate() {
            let mut running = tokio::task::JoinSet::new();
            for (i, &household) in wave.iter().enumerate() {
                let fever = (wave_index * WAVE + i) % FEVER_EVERY == FEVER_EVERY - 1;
                let form = if fever {
                    let members = self
                        .store()
                        .search_residents(&epigrid_store::ResidentQuery {
                            household_id: Some(household),
                            limit: 1,
                            ..Default::default()
                        })
                        .await?;
                    let Some(first) = members.first() else { continue };
                    activity.fevers += 1;
                    crate::intake::StaffHealthForm::Entries(vec![crate::intake::HealthEntryForm {
                        resident_id: first.id,
                        temperature: "38.2".into(),
                        symptoms: vec!["cough".into()],
                        whereabouts: "at_home".into(),
                    }])
                } else {
                    crate::intake::StaffHealthForm::WholeHouseholdNormal
                };
                let service = self.clone();
                running.spawn(async move {
                    let key = format!("demo-activity-{household}");
                    service.staff_health_report(&Actor::system(), household, form, &key).await
                });
            }
            while let Some(done) = running.join_next().await {
                done.map_err(|e| ServiceError::Internal(format!("demo report: {e}")))??;
                activity.households_reported += 1;
            }
        }
        Ok(activity)
    }

    async fn write_areas(
        &self,
        plan: &Plan,
        progress: &(dyn Fn(DemoProgress) + Send + Sync),
    ) -> ServiceResult<AreaIds> {
        let actor = Actor::system();
        let total = plan.area_count();
        let mut done = 0u32;
        let tick = |done: &mut u32| {
            *done += 1;
            if done.is_multiple_of(25) || *done == total {
                progress(DemoProgress::Areas { done: *done, total });
            }
        };
        let area = |kind, parent_id, code: Option<String>, name: &str| NewArea {
            kind,
            parent_id,
            code,
            name: name.to_owned(),
            grid_kind: None,
            boundary: None,
            address: None,
        };

        let root = self
            .create_area(
                &actor,
                area(AreaKind::SubDistrict, None, Some(plan.code.to_string()), &plan.name),
            )
            .await?;
        tick(&mut done);
        let root_path = AreaPath::default().child(AreaKind::SubDistrict, root.id);
        let mut ids = AreaIds { sub_district: root.id, ..AreaIds::default() };
        for community in &plan.communities {
            let c = self
                .create_area(
                    &actor,
                    NewArea {
                        boundary: Some(community.rect.boundary().to_json_value()),
                        ..area(
                            AreaKind::Community,
                            Some(root.id),
                            Some(community.code.to_string()),
                            &community.name,
                        )
                    },
                )
                .await?;
            tick(&mut done);
            ids.communities.push(c.id);
            let c_path = root_path.child(AreaKind::Community, c.id);
            for grid in &community.grids {
                let g = self
                    .create_area(
                        &actor,
                        NewArea {
                            grid_kind: Some(grid.kind),
                            boundary: Some(grid.rect.boundary().to_json_value()),
                            ..area(
                                AreaKind::Grid,
                                Some(c.id),
                                Some(grid.code.to_string()),
                                &grid.name,
                            )
                        },
                    )
                    .await?;
                tick(&mut done);
                ids.grids.push(g.id);
                let g_path = c_path.child(AreaKind::Grid, g.id);
                for building in &grid.buildings {
                    let b = self
                        .create_area(
                            &actor,
                            NewArea {
                                address: Some(building.address.clone()),
                                ..area(AreaKind::Building, Some(g.id), None, &building.name)
                            },
                        )
                        .await?;
                    tick(&mut done);
                    let b_path = g_path.child(AreaKind::Building, b.id);
                    for unit in &building.units {
                        let u = self
                            .create_area(&actor, area(AreaKind::Unit, Some(b.id), None, &unit.name))
                            .await?;
                        tick(&mut done);
                        ids.units.push(b_path.child(AreaKind::Unit, u.id));
                    }
                }
            }
        }
        Ok(ids)
    }

    async fn write_accounts(
        &self,
        plan: &Plan,
        areas: &AreaIds,
        progress: &(dyn Fn(DemoProgress) + Send + Sync),
    ) -> ServiceResult<Vec<DemoAccount>> {
        let total = plan.accounts.len() as u32;
        let mut done = 0;
        for batch in plan.accounts.chunks(HASH_BATCH) {
            let mut running = tokio::task::JoinSet::new();
            for account in batch {
                let scope_area_id = match account.scope {
                    ScopeRef::SubDistrict => areas.sub_district,
                    ScopeRef::Community(c) => areas.communities[c],
                    ScopeRef::Grid(g) => areas.grids[g],
                };
                let new = NewUser {
                    username: account.username.clone(),
                    display_name: account.display_name.clone(),
                    phone: account.phone.as_ref().map(|p| p.as_str().to_owned()),
                    password: account.password.clone(),
                    role: account.role,
                    scope_area_id,
                };
                let service = self.clone();
                running.spawn(async move { service.create_user(&Actor::system(), new).await });
            }
            while let Some(joined) = running.join_next().await {
                joined
                    .map_err(|e| ServiceError::Internal(format!("account task failed: {e}")))??;
                done += 1;
                progress(DemoProgress::Accounts { done, total });
            }
        }
        Ok(plan
            .accounts
            .iter()
            .map(|a| DemoAccount {
                username: a.username.clone(),
                password: a.password.clone(),
                role: a.role,
                scope_name: a.scope_name.clone(),
            })
            .collect())
    }

    async fn write_residents(
        &self,
        plan: &Plan,
        areas: &AreaIds,
        progress: &(dyn Fn(DemoProgress) + Send + Sync),
    ) -> ServiceResult<(u32, u32)> {
        let total = plan.resident_count() as u32;
        let (mut household_count, mut done) = (0u32, 0u32);
        let mut households = Vec::new();
        let mut residents = Vec::with_capacity(INSERT_CHUNK + 16);
        progress(DemoProgress::Residents { done, total });
        for (unit, path) in plan.units().zip(&areas.units) {
            for household in &unit.households {
                let now = self.now();
                let record = HouseholdRecord {
                    id: Uuid::now_v7(),
                    path: *path,
                    room: household.room.clone(),
                    created_at: now,
                    updated_at: now,
                };
                for p in &household.members {
                    residents.push(self.sealed_resident(
                        &record,
                        p.name.clone(),
                        Some(&p.document),
                        p.sex,
                        p.birth_date,
                        p.phone.as_ref(),
                        p.relation,
                        p.residence.clone(),
                        p.tags.clone(),
                    ));
                }
                households.push(record);
                if residents.len() >= INSERT_CHUNK {
                    self.store().insert_bulk(&households, &residents).await?;
                    household_count += households.len() as u32;
                    done += residents.len() as u32;
                    households.clear();
                    residents.clear();
                    progress(DemoProgress::Residents { done, total });
                }
            }
        }
        if !households.is_empty() {
            self.store().insert_bulk(&households, &residents).await?;
            household_count += households.len() as u32;
            done += residents.len() as u32;
            progress(DemoProgress::Residents { done, total });
        }
        Ok((household_count, done))
    }
}

/// Ids of what `write_areas` created, in plan order.
#[derive(Debug, Default)]
struct AreaIds {
    sub_district: Uuid,
    communities: Vec<Uuid>,
    grids: Vec<Uuid>,
    units: Vec<AreaPath>,
}

fn validate(options: &DemoOptions) -> ServiceResult<()> {
    let max_communities = names::COMMUNITIES.len() as u32;
    if !(1..=max_communities).contains(&options.communities) {
        return Err(ServiceError::invalid("communities", "demo.communities_range"));
    }
    // Grid codes have two digits per community.
    if options.grids < options.communities || options.grids > options.communities * 99 {
        return Err(ServiceError::invalid("grids", "demo.grids_range"));
    }
    if options.residents > MAX_RESIDENTS {
        return Err(ServiceError::invalid("residents", "demo.residents_range"));
    }
    if let Some(password) = &options.admin_password
        && password.chars().count() < MIN_PASSWORD_CHARS
    {
        return Err(ServiceError::invalid("admin_password", "password.too_short"));
    }
    Ok(())
}

// ---- the plan -------------------------------------------------------------------

/// A WGS-84 rectangle in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rect {
    west: f64,
    south: f64,
    east: f64,
    north: f64,
}

impl Rect {
    fn width_km(&self) -> f64 {
        let mid_latitude = (self.south + self.north) / 2.0;
        (self.east - self.west) * 111.32 * mid_latitude.to_radians().cos()
    }

    fn height_km(&self) -> f64 {
        (self.north - self.south) * 110.57
    }

    fn boundary(&self) -> Boundary {
        Boundary::rectangle(self.west, self.south, self.east, self.north)
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Plan {
    name: String,
    code: SubDistrictCode,
    communities: Vec<CommunityPlan>,
    accounts: Vec<AccountPlan>,
}

#[derive(Debug, Clone, PartialEq)]
struct CommunityPlan {
    name: String,
    code: CommunityCode,
    rect: Rect,
    grids: Vec<GridPlan>,
}

#[derive(Debug, Clone, PartialEq)]
struct GridPlan {
    name: String,
    code: GridCode,
    kind: GridKind,
    rect: Rect,
    buildings: Vec<BuildingPlan>,
}

#[derive(Debug, Clone, PartialEq)]
struct BuildingPlan {
    name: String,
    address: String,
    /// Empty for an organisation's own buildings (a school's 教学楼).
    units: Vec<UnitPlan>,
}

#[derive(Debug, Clone, PartialEq)]
struct UnitPlan {
    name: String,
    households: Vec<HouseholdPlan>,
}

#[derive(Debug, Clone, PartialEq)]
struct HouseholdPlan {
    room: String,
    members: Vec<PersonPlan>,
}

#[derive(Debug, Clone, PartialEq)]
struct PersonPlan {
    name: PersonName,
    sex: Sex,
    birth_date: NaiveDate,
    document: IdDocument,
    phone: Option<MobilePhone>,
    relation: Relation,
    residence: Residence,
    tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq)]
struct AccountPlan {
    username: String,
    display_name: String,
    phone: Option<MobilePhone>,
    password: String,
    role: Role,
    scope: ScopeRef,
    scope_name: String,
}

/// An account's scope by position in the plan (grids counted across the
/// whole sub-district), since area ids exist only once written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScopeRef {
    SubDistrict,
    Community(usize),
    Grid(usize),
}

impl Plan {
    fn grids(&self) -> impl Iterator<Item = &GridPlan> {
        self.communities.iter().flat_map(|c| &c.grids)
    }

    fn buildings(&self) -> impl Iterator<Item = &BuildingPlan> {
        self.grids().flat_map(|g| &g.buildings)
    }

    fn units(&self) -> impl Iterator<Item = &UnitPlan> {
        self.buildings().flat_map(|b| &b.units)
    }

    fn households(&self) -> impl Iterator<Item = &HouseholdPlan> {
        self.units().flat_map(|u| &u.households)
    }

    fn building_count(&self) -> usize {
        self.buildings().count()
    }

    fn resident_count(&self) -> usize {
        self.households().map(|h| h.members.len()).sum()
    }

    fn area_count(&self) -> u32 {
        (1 + self.communities.len()
            + self.grids().count()
            + self.building_count()
            + self.units().count()) as u32
    }
}

/// Builds the whole demo as data: a pure function of the options and the
/// current year.
fn build_plan(options: &DemoOptions, today: NaiveDate) -> ServiceResult<Plan> {
    validate(options)?;
    let mut g = Generator::new(options.seed, today);
    let code =
        SubDistrictCode::parse(SUB_DISTRICT_CODE).expect("the demo sub-district code is valid");
    let community_count = options.communities as usize;

    let community_weights: Vec<f64> =
        (0..community_count).map(|_| g.rng.random_range(0.8..1.25)).collect();
    let grid_counts = apportion(options.grids, &community_weights, 1, 99);
    let community_rects = tile(&mut g.rng, EXTENT, community_count);

    // One or two 专属网格, each in a community that keeps a residential grid.
    let dedicated = if options.grids >= 2 * options.communities {
        2
    } else {
        usize::from(options.grids > options.communities)
    };
    let mut eligible: Vec<usize> = (0..community_count).filter(|&c| grid_counts[c] >= 2).collect();
    eligible.shuffle(&mut g.rng);
    let mut kinds = [GridKind::School, GridKind::Hospital, GridKind::Market];
    kinds.shuffle(&mut g.rng);
    let dedicated: Vec<(usize, GridKind)> =
        eligible.into_iter().zip(kinds).take(dedicated).collect();

    let mut communities = Vec::with_capacity(community_count);
    let mut organisations = Vec::new();
    for (c, rect) in community_rects.into_iter().enumerate() {
        let name = names::COMMUNITIES[c].to_owned();
        let code =
            CommunityCode::under(&code, c as u16 + 1).expect("community sequence within 1-399");
        let count = grid_counts[c] as usize;
        let special = dedicated.iter().find(|(dc, _)| *dc == c).map(|(_, kind)| *kind);
        let mut grids = Vec::with_capacity(count);
        for (i, rect) in tile(&mut g.rng, rect, count).into_iter().enumerate() {
            let code = GridCode::under(&code, i as u8 + 1).expect("grid sequence within 1-99");
            // The dedicated grid takes the last sequence number of its community.
            let (kind, name) = match special {
                Some(kind) if i + 1 == count => {
                    let organisation = g.organisation(kind);
                    organisations.push(organisation);
                    (kind, format!("{organisation}专属网格"))
                }
                _ => (GridKind::Residential, format!("{name}第{}网格", i + 1)),
            };
            grids.push(GridPlan { name, code, kind, rect, buildings: Vec::new() });
        }
        communities.push(CommunityPlan { name, code, rect, grids });
    }

    let grid_weights: Vec<f64> = communities
        .iter()
        .flat_map(|c| &c.grids)
        .map(|grid| match grid.kind {
            GridKind::Residential => g.rng.random_range(0.7..1.3),
            _ => DEDICATED_WEIGHT,
        })
        .collect();
    let targets = apportion(options.residents, &grid_weights, 0, u32::MAX);
    let mut organisations = organisations.into_iter();
    for (grid, target) in communities.iter_mut().flat_map(|c| &mut c.grids).zip(targets) {
        let organisation = match grid.kind {
            GridKind::Residential => None,
            _ => organisations.next(),
        };
        grid.buildings = g.grid_buildings(grid.kind, organisation, target);
    }

    let accounts = g.accounts(options, SUB_DISTRICT_NAME, &communities);
    Ok(Plan { name: SUB_DISTRICT_NAME.to_owned(), code, communities, accounts })
}

/// Splits `total` into parts proportional to `weights` by largest
/// remainder, so the parts add up to `total` exactly; each part lies within
/// `min..=max` (the caller makes sure that is possible).
fn apportion(total: u32, weights: &[f64], min: u32, max: u32) -> Vec<u32> {
    let n = weights.len() as u32;
    let spare = total.saturating_sub(min * n);
    let sum: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| f64::from(spare) * w / sum).collect();
    let mut parts: Vec<u32> = exact.iter().map(|e| min + e.floor() as u32).collect();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    let mut short = total - parts.iter().sum::<u32>();
    for &i in order.iter().cycle().take(order.len() * 2) {
        if short == 0 {
            break;
        }
        parts[i] += 1;
        short -= 1;
    }
    // Move any excess over `max` to the parts furthest below it.
    while let Some(over) = parts.iter().position(|&p| p > max) {
        let under = (0..parts.len()).min_by_key(|&i| parts[i]).expect("non-empty");
        parts[over] -= 1;
        parts[under] += 1;
    }
    parts
}

/// Splits `outer` into `n` rectangles that tile it exactly: columns with
/// jittered cut lines, each cut into rows with jittered lines of its own.
/// Neighbours share the very same f64 on their common edge, so the tiling is
/// exact rather than merely close. Order: columns west to east, rows north to
/// south.
fn tile(rng: &mut StdRng, outer: Rect, n: usize) -> Vec<Rect> {
    let aspect = outer.width_km() / outer.height_km();
    let columns = ((n as f64 * aspect).sqrt().round() as usize).clamp(1, n);
    let rows: Vec<usize> =
        (0..columns).map(|c| n / columns + usize::from(c < n % columns)).collect();
    let xs = cuts(rng, outer.west, outer.east, &rows);
    let mut tiles = Vec::with_capacity(n);
    for (c, &count) in rows.iter().enumerate() {
        let ys = cuts(rng, outer.north, outer.south, &vec![1; count]);
        for r in 0..count {
            tiles.push(Rect { west: xs[c], east: xs[c + 1], north: ys[r], south: ys[r + 1] });
        }
    }
    tiles
}

/// Cut positions from `start` to `end` (both exact) that give part i a share
/// of about `weights[i]`, jittered by up to a fifth.
fn cuts(rng: &mut StdRng, start: f64, end: f64, weights: &[usize]) -> Vec<f64> {
    let jittered: Vec<f64> =
        weights.iter().map(|&w| w as f64 * rng.random_range(0.8..1.2)).collect();
    let total: f64 = jittered.iter().sum();
    let mut out = vec![start];
    let mut acc = 0.0;
    for w in &jittered[..jittered.len() - 1] {
        acc += w;
        // Six decimals is ~0.1 m: plenty, and the GeoJSON stays readable.
        out.push(((start + (end - start) * acc / total) * 1e6).round() / 1e6);
    }
    out.push(end);
    out
}

// ---- households and people ---------------------------------------------------------

/// The compositions households come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    YoungSingle,
    MiddleSingle,
    ElderAlone,
    YoungCouple,
    /// Parents whose children have left home (空巢).
    MiddleCouple,
    ElderCouple,
    SingleParent,
    CoupleOneChild,
    CoupleTwoChildren,
    /// A couple with children and one or two of their own parents.
    ThreeGenerations,
    /// An older couple (or widow) with a married child and grandchildren.
    Extended,
    /// Unrelated young people sharing a rented flat (合租).
    SharedRental,
}

/// Each kind with its share (per mille of households), the fewest members it
/// can have, and how likely such a household is to be floating (young
/// renters much more than old couples). Tuned so that a plan averages about
/// `MEAN_HOUSEHOLD` people, 15% under 15, 20% over 60 and 2–3% over 80.
const KINDS: [(Kind, u32, usize, f64); 12] = [
    (Kind::YoungSingle, 105, 1, 0.45),
    (Kind::MiddleSingle, 30, 1, 0.15),
    (Kind::ElderAlone, 85, 1, 0.02),
    (Kind::YoungCouple, 85, 2, 0.40),
    (Kind::MiddleCouple, 100, 2, 0.06),
    (Kind::ElderCouple, 140, 2, 0.03),
    (Kind::SingleParent, 30, 2, 0.12),
    (Kind::CoupleOneChild, 190, 3, 0.20),
    (Kind::CoupleTwoChildren, 55, 4, 0.12),
    (Kind::ThreeGenerations, 65, 4, 0.05),
    (Kind::Extended, 50, 4, 0.02),
    (Kind::SharedRental, 35, 2, 0.85),
];

/// How many children live with their parents at each age (relative): fewer
/// births every year since the 2016–2017 two-child peak, and young adults
/// leaving home for university and work.
const CHILD_AGES: [(u32, u32); 26] = [
    (0, 25),
    (1, 30),
    (2, 36),
    (3, 45),
    (4, 55),
    (5, 65),
    (6, 75),
    (7, 85),
    (8, 90),
    (9, 90),
    (10, 100),
    (11, 100),
    (12, 100),
    (13, 100),
    (14, 100),
    (15, 100),
    (16, 100),
    (17, 100),
    (18, 85),
    (19, 85),
    (20, 85),
    (21, 85),
    (22, 55),
    (23, 55),
    (24, 55),
    (25, 55),
];

/// Share of households from Hong Kong, Macau or Taiwan, who hold other
/// documents than a resident ID card.
const OVERSEAS_SHARE: f64 = 0.005;
/// (Home Return Permit letter, residence-permit address code, place, weight).
const OVERSEAS: [(Option<char>, &str, &str, u32); 3] = [
    (Some('H'), "810000", "香港特别行政区", 60),
    (Some('M'), "820000", "澳门特别行政区", 15),
    (None, "830000", "台湾地区", 25),
];

/// Age bands (first, last, weight) for people living alone after 60: widows
/// mostly, so older than elderly couples.
const ELDER_ALONE_AGES: [(u32, u32, u32); 8] = [
    (60, 64, 10),
    (65, 69, 15),
    (70, 74, 20),
    (75, 79, 20),
    (80, 84, 18),
    (85, 89, 11),
    (90, 94, 4),
    (95, 99, 1),
];
const ELDER_COUPLE_AGES: [(u32, u32, u32); 7] = [
    (55, 59, 16),
    (60, 64, 24),
    (65, 69, 22),
    (70, 74, 16),
    (75, 79, 11),
    (80, 84, 8),
    (85, 89, 3),
];
/// How many years arrival lies back, for floating residents.
const ARRIVAL_YEARS_AGO: [(u32, u32); 8] =
    [(0, 16), (1, 22), (2, 18), (3, 14), (4, 11), (5, 9), (6, 6), (7, 4)];

/// A household member before names and documents: who they are to the head.
#[derive(Debug, Clone, Copy)]
struct Sketch {
    relation: Relation,
    sex: Sex,
    age: u32,
    surname: &'static str,
}

#[derive(Debug, Clone, Copy)]
enum Origin {
    Registered,
    Floating { code: &'static str, place: &'static str, arrived: NaiveDate },
    Overseas { region: usize, arrived: NaiveDate },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// 1980s–90s walk-ups, 2–6 floors.
    Old,
    /// 2000s, 7–11 floors.
    Mid,
    /// Towers of 11 to 33 floors.
    High,
}

#[derive(Debug, Clone, Copy)]
struct Shape {
    floors: u32,
    units: u32,
    doors: u32,
}

impl Shape {
    fn flats(&self) -> u32 {
        self.floors * self.units * self.doors
    }
}

/// A residential compound (小区): where buildings get their address and style.
#[derive(Debug, Clone)]
struct Compound {
    address: String,
    style: Style,
    /// Prefix of building names, e.g. 教职工宿舍 for a school's dormitory.
    prefix: &'static str,
}

/// A building before households move in.
#[derive(Debug, Clone)]
struct Draft {
    name: String,
    address: String,
    shape: Shape,
}

struct Tags {
    elderly_alone: Tag,
    aged_80_plus: Tag,
    chronic_disease: Tag,
    disabled: Tag,
    pregnant: Tag,
    infant: Tag,
}

impl Tags {
    fn new() -> Self {
        let tag = |t: &str| Tag::parse(t).expect("built-in tags are valid");
        Self {
            elderly_alone: tag(Tag::ELDERLY_ALONE),
            aged_80_plus: tag(Tag::AGED_80_PLUS),
            chronic_disease: tag(Tag::CHRONIC_DISEASE),
            disabled: tag(Tag::DISABLED),
            pregnant: tag(Tag::PREGNANT),
            infant: tag(Tag::INFANT),
        }
    }
}

/// The random state of one plan, and what must stay unique across it.
struct Generator {
    rng: StdRng,
    today: NaiveDate,
    tags: Tags,
    /// Match keys of every document issued: the store's blind index on them
    /// is unique, and one collision would fail a whole bulk insert.
    documents: HashSet<String>,
    phones: HashSet<String>,
    streets: Vec<String>,
    addresses: HashSet<(usize, u32)>,
    old_compounds: Vec<&'static str>,
    new_compounds: Vec<&'static str>,
    compounds_used: (usize, usize),
}

impl Generator {
    fn new(seed: u64, today: NaiveDate) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut old_compounds = names::OLD_COMPOUNDS.to_vec();
        let mut new_compounds = names::NEW_COMPOUNDS.to_vec();
        old_compounds.shuffle(&mut rng);
        new_compounds.shuffle(&mut rng);
        Self {
            rng,
            today,
            tags: Tags::new(),
            documents: HashSet::new(),
            phones: HashSet::new(),
            streets: names::streets(),
            addresses: HashSet::new(),
            old_compounds,
            new_compounds,
            compounds_used: (0, 0),
        }
    }

    // ---- small draws -------------------------------------------------------

    fn pick<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut x = self.rng.random_range(0..total);
        for (item, weight) in items {
            if x < *weight {
                return item;
            }
            x -= weight;
        }
        &items[items.len() - 1].0
    }

    /// Always one draw, whatever `p`, so that a branch taken differently
    /// (an age that crossed a threshold) does not shift the rest of the plan.
    fn chance(&mut self, p: f64) -> bool {
        self.rng.random::<f64>() < p
    }

    /// A bell-shaped integer around `mean` with roughly standard deviation
    /// `spread`, clamped to `lo..=hi`: the sum of three uniforms is close
    /// enough to normal for ages.
    fn around(&mut self, mean: f64, spread: f64, lo: u32, hi: u32) -> u32 {
        let u: f64 = (0..3).map(|_| self.rng.random::<f64>()).sum::<f64>() - 1.5;
        (mean + u * 2.0 * spread).round().clamp(f64::from(lo), f64::from(hi)) as u32
    }

    fn in_bands(&mut self, bands: &[(u32, u32, u32)]) -> u32 {
        let weighted: Vec<((u32, u32), u32)> = bands.iter().map(|&(a, b, w)| ((a, b), w)).collect();
        let (first, last) = *self.pick(&weighted);
        self.rng.random_range(first..=last)
    }

    fn sex(&mut self, p_male: f64) -> Sex {
        if self.chance(p_male) { Sex::Male } else { Sex::Female }
    }

    fn surname(&mut self) -> &'static str {
        self.pick::<&str>(names::SURNAMES)
    }

    /// A date in the year `years_ago` years back, never after today.
    fn date_in_year(&mut self, years_ago: u32) -> NaiveDate {
        let year = self.today.year() - years_ago as i32;
        let days = if years_ago == 0 {
            self.today.ordinal()
        } else {
            NaiveDate::from_ymd_opt(year, 12, 31).expect("a real year").ordinal()
        };
        // One draw whatever `days` is, so the rest of the plan does not
        // depend on the day of the year.
        let f: f64 = self.rng.random();
        let ordinal = 1 + ((f * f64::from(days)) as u32).min(days - 1);
        NaiveDate::from_yo_opt(year, ordinal).expect("ordinal within the year")
    }

    fn given_name(&mut self, sex: Sex, birth_year: i32) -> &'static str {
        let pool = match (sex, birth_year) {
            (Sex::Male, ..1960) => names::MALE_BEFORE_1960,
            (Sex::Male, 1960..1990) => names::MALE_1960_1989,
            (Sex::Male, _) => names::MALE_SINCE_1990,
            (Sex::Female, ..1960) => names::FEMALE_BEFORE_1960,
            (Sex::Female, 1960..1990) => names::FEMALE_1960_1989,
            (Sex::Female, _) => names::FEMALE_SINCE_1990,
        };
        pool.choose(&mut self.rng).expect("name pools are not empty")
    }

    fn phone(&mut self) -> MobilePhone {
        loop {
            let prefix = names::PHONE_PREFIXES.choose(&mut self.rng).expect("prefixes exist");
            let number = format!("{prefix}{:08}", self.rng.random_range(0..100_000_000u32));
            if self.phones.insert(number.clone()) {
                return MobilePhone::parse(&number).expect("generated mobile numbers are valid");
            }
        }
    }

    /// An 18-digit number (resident ID or Hong Kong/Macau/Taiwan residence
    /// permit) whose sequence digit says `sex`.
    fn eighteen_digit(&mut self, address: &str, birth: NaiveDate, sex: Sex) -> IdDocument {
        loop {
            let sequence = self.rng.random_range(0..500u32) * 2 + u32::from(sex == Sex::Male);
            if sequence == 0 {
                continue;
            }
            let first17 = format!("{address}{}{sequence:03}", birth.format("%Y%m%d"));
            let digits: [u8; 17] = first17.as_bytes().try_into().expect("17 ASCII digits");
            let number = format!("{first17}{}", check_character(&digits));
            if self.documents.insert(number.clone()) {
                return IdDocument::parse(&number, self.today)
                    .expect("generated ID numbers are valid");
            }
        }
    }

    /// H/M + 8 digits, sometimes with the 2-digit issue count; people are
    /// matched on the first 9 characters, so those must be unique.
    fn home_return_permit(&mut self, letter: char) -> IdDocument {
        loop {
            let key = format!("{letter}{:08}", self.rng.random_range(0..100_000_000u32));
            let number = if self.chance(0.3) {
                format!("{key}{:02}", self.rng.random_range(1..=4u32))
            } else {
                key.clone()
            };
            if self.documents.insert(key) {
                return IdDocument::parse(&number, self.today)
                    .expect("generated permits are valid");
            }
        }
    }

    // ---- areas ------------------------------------------------------------

    fn organisation(&mut self, kind: GridKind) -> &'static str {
        let pool = match kind {
            GridKind::School => names::SCHOOLS,
            GridKind::Hospital => names::HOSPITALS,
            _ => names::MARKETS,
        };
        pool.choose(&mut self.rng).expect("organisation pools are not empty")
    }

    fn address(&mut self) -> String {
        loop {
            let street = self.rng.random_range(0..self.streets.len());
            let number = self.rng.random_range(1..=420u32);
            if self.addresses.insert((street, number)) {
                return format!("{}{number}号", self.streets[street]);
            }
        }
    }

    fn compound(&mut self, flats: u32) -> Compound {
        let style = match flats {
            0..40 => Style::Old,
            40..100 => *self.pick(&[(Style::Old, 60), (Style::Mid, 40)]),
            _ => *self.pick(&[(Style::Old, 50), (Style::Mid, 20), (Style::High, 30)]),
        };
        // Names run out in a large demo; a second phase (二区) is how real
        // compounds grow too.
        let (pool, used) = if style == Style::Old {
            (&self.old_compounds, &mut self.compounds_used.0)
        } else {
            (&self.new_compounds, &mut self.compounds_used.1)
        };
        let name = pool[*used % pool.len()];
        let phase = *used / pool.len();
        *used += 1;
        let name = if phase == 0 {
            name.to_owned()
        } else {
            format!("{name}{}区", names::chinese_number(phase as u32 + 1))
        };
        Compound { address: format!("{}{name}", self.address()), style, prefix: "" }
    }

    fn shape(&mut self, style: Style, need: u32) -> Shape {
        let shape = self.draw_shape(style);
        Self::fit(shape, style, need)
    }

    fn draw_shape(&mut self, style: Style) -> Shape {
        match style {
            Style::Old => Shape {
                floors: *self.pick(&[(2, 3), (3, 5), (4, 10), (5, 35), (6, 47)]),
                units: self.rng.random_range(2..=4),
                doors: 2,
            },
            Style::Mid => Shape {
                floors: self.rng.random_range(7..=11),
                units: self.rng.random_range(2..=3),
                doors: 2,
            },
            Style::High => Shape {
                floors: *self.pick(&[
                    (11, 2),
                    (15, 2),
                    (17, 2),
                    (18, 4),
                    (24, 3),
                    (26, 3),
                    (32, 2),
                    (33, 2),
                ]),
                units: self.rng.random_range(1..=2),
                doors: self.rng.random_range(2..=4),
            },
        }
    }

    /// A building only as tall as `need` flats ask for, within its style; a
    /// tiny grid gets a small walk-up, not a tower.
    fn fit(mut shape: Shape, style: Style, need: u32) -> Shape {
        if shape.flats() > need {
            let min_floors = match style {
                Style::Old => 2,
                Style::Mid => 7,
                Style::High => 11,
            };
            shape.floors = need.div_ceil(shape.units * shape.doors).clamp(min_floors, shape.floors);
        }
        if shape.flats() > need * 3 / 2 + 6 {
            shape.units = if need > 12 { 2 } else { 1 };
            shape.doors = 2;
            shape.floors = need.div_ceil(shape.units * 2).clamp(2, 6);
        }
        shape
    }

    /// The buildings of a grid, with households living in them adding up to
    /// exactly `target` people.
    fn grid_buildings(
        &mut self,
        kind: GridKind,
        organisation: Option<&'static str>,
        target: u32,
    ) -> Vec<BuildingPlan> {
        let needed = (f64::from(target) / MEAN_HOUSEHOLD / OCCUPANCY).ceil() as u32;
        let mut drafts = Vec::new();
        let mut compounds = Vec::new();
        match (kind, organisation) {
            (GridKind::Residential, _) | (_, None) => {
                if needed > 0 {
                    let count = (needed / 150).clamp(1, 3);
                    for i in 0..count {
                        let share = needed / count + u32::from(i < needed % count);
                        let compound = self.compound(share);
                        self.add_buildings(&mut drafts, &compound, share);
                        compounds.push(compound);
                    }
                }
            }
            (_, Some(organisation)) => {
                let (own, dormitory) = match kind {
                    GridKind::School => (names::SCHOOL_BUILDINGS, names::SCHOOL_DORMITORY),
                    GridKind::Hospital => (names::HOSPITAL_BUILDINGS, names::HOSPITAL_DORMITORY),
                    _ => (names::MARKET_BUILDINGS, names::MARKET_DORMITORY),
                };
                let address = format!("{}{organisation}", self.address());
                for name in own {
                    drafts.push(Draft {
                        name: (*name).to_owned(),
                        address: address.clone(),
                        shape: Shape { floors: 0, units: 0, doors: 0 },
                    });
                }
                if needed > 0 {
                    let style = if needed < 60 { Style::Old } else { Style::Mid };
                    let compound = Compound { address, style, prefix: dormitory };
                    self.add_buildings(&mut drafts, &compound, needed);
                    compounds.push(compound);
                }
            }
        }
        self.move_in(drafts, compounds.last(), target)
    }

    /// Adds buildings of a compound until they hold `flats` flats.
    fn add_buildings(&mut self, drafts: &mut Vec<Draft>, compound: &Compound, flats: u32) {
        if compound.style == Style::Old {
            // Walk-ups come in all sizes, the last one often small.
            let mut left = flats;
            while left > 0 {
                let shape = self.shape(Style::Old, left);
                left = left.saturating_sub(shape.flats());
                self.push_building(drafts, compound, shape);
            }
            return;
        }
        // Lift buildings go up as a set of similar towers, not a tower and a
        // shed for the remainder.
        let typical = self.draw_shape(compound.style).flats();
        let count = (f64::from(flats) / f64::from(typical)).round().max(1.0) as u32;
        for i in 0..count {
            let share = flats / count + u32::from(i < flats % count);
            let shape = self.shape(compound.style, share);
            self.push_building(drafts, compound, shape);
        }
    }

    fn push_building(&mut self, drafts: &mut Vec<Draft>, compound: &Compound, shape: Shape) {
        let number = drafts.iter().filter(|d| d.shape.units > 0).count() + 1;
        drafts.push(Draft {
            name: format!("{}{number}号楼", compound.prefix),
            address: compound.address.clone(),
            shape,
        });
    }

    /// Fills flats in random order (so that empty ones are scattered, as
    /// they are) until the grid holds `target` people. The last household is
    /// cut to fit, which is how the total comes out exact.
    fn move_in(
        &mut self,
        mut drafts: Vec<Draft>,
        compound: Option<&Compound>,
        target: u32,
    ) -> Vec<BuildingPlan> {
        // (building, unit, floor, door)
        let mut flats: Vec<(usize, u32, u32, u32)> = Vec::new();
        let mut listed = 0;
        let mut next = 0;
        let mut homes = Vec::new();
        let mut left = target as usize;
        while left > 0 {
            if next == flats.len() {
                if listed == drafts.len() {
                    // More small households than planned: one more building.
                    let compound = compound.cloned().unwrap_or(Compound {
                        address: self.address(),
                        style: Style::Old,
                        prefix: "",
                    });
                    let shape =
                        self.shape(compound.style, (left as f64 / MEAN_HOUSEHOLD).ceil() as u32);
                    self.push_building(&mut drafts, &compound, shape);
                }
                let start = flats.len();
                for (b, draft) in drafts.iter().enumerate().skip(listed) {
                    for unit in 1..=draft.shape.units {
                        for floor in 1..=draft.shape.floors {
                            for door in 1..=draft.shape.doors {
                                flats.push((b, unit, floor, door));
                            }
                        }
                    }
                }
                listed = drafts.len();
                flats[start..].shuffle(&mut self.rng);
                continue;
            }
            let flat = flats[next];
            next += 1;
            let members = self.household(left);
            left -= members.len();
            homes.push((flat, members));
        }
        homes.sort_by_key(|(flat, _)| *flat);
        let mut homes = homes.into_iter().peekable();
        drafts
            .into_iter()
            .enumerate()
            .map(|(b, draft)| BuildingPlan {
                name: draft.name,
                address: draft.address,
                units: (1..=draft.shape.units)
                    .map(|unit| {
                        let mut households = Vec::new();
                        while let Some(((_, _, floor, door), members)) =
                            homes.next_if(|((hb, hu, _, _), _)| *hb == b && *hu == unit)
                        {
                            households.push(HouseholdPlan {
                                room: (floor * 100 + door).to_string(),
                                members,
                            });
                        }
                        UnitPlan { name: format!("{unit}单元"), households }
                    })
                    .collect(),
            })
            .collect()
    }

    // ---- households ---------------------------------------------------------

    /// One household of at most `max` people.
    fn household(&mut self, max: usize) -> Vec<PersonPlan> {
        let candidates: Vec<((Kind, f64), u32)> = KINDS
            .iter()
            .filter(|(_, _, min, _)| *min <= max)
            .map(|&(kind, weight, _, floating)| ((kind, floating), weight))
            .collect();
        let (kind, floating) = *self.pick(&candidates);
        let mut sketches = self.sketch(kind);
        // Optional members come last in every sketch, so cutting keeps the
        // household coherent.
        sketches.truncate(max);
        let origin = if self.chance(OVERSEAS_SHARE) {
            let weighted: Vec<(usize, u32)> =
                OVERSEAS.iter().enumerate().map(|(i, o)| (i, o.3)).collect();
            let region = *self.pick(&weighted);
            Origin::Overseas { region, arrived: self.arrival() }
        } else if self.chance(floating) {
            let weighted: Vec<((&'static str, &'static str), u32)> =
                names::ORIGINS.iter().map(|&(code, place, w)| ((code, place), w)).collect();
            let (code, place) = *self.pick(&weighted);
            Origin::Floating { code, place, arrived: self.arrival() }
        } else {
            Origin::Registered
        };
        let mut people: Vec<PersonPlan> = sketches.iter().map(|s| self.person(s, origin)).collect();
        let planned: Vec<u32> = sketches.iter().map(|s| s.age).collect();
        self.tag(&mut people, &planned);
        people
    }

    fn arrival(&mut self) -> NaiveDate {
        let years_ago = *self.pick(&ARRIVAL_YEARS_AGO);
        self.date_in_year(years_ago)
    }

    fn member(
        &mut self,
        relation: Relation,
        sex: Sex,
        age: u32,
        surname: Option<&'static str>,
    ) -> Sketch {
        let surname = surname.unwrap_or_else(|| self.surname());
        Sketch { relation, sex, age, surname }
    }

    /// Years a husband is older than his wife (negative: younger).
    fn spousal_gap(&mut self) -> i32 {
        *self.pick(&[
            (-2, 5),
            (-1, 8),
            (0, 15),
            (1, 18),
            (2, 18),
            (3, 14),
            (4, 10),
            (5, 7),
            (6, 3),
            (8, 2),
        ])
    }

    /// A married couple; the husband is usually, not always, the 户主.
    fn couple(&mut self, husband_age: u32, wife_age: u32) -> [Sketch; 2] {
        let (head_sex, head_age, spouse_sex, spouse_age) = if self.chance(0.78) {
            (Sex::Male, husband_age, Sex::Female, wife_age)
        } else {
            (Sex::Female, wife_age, Sex::Male, husband_age)
        };
        [
            self.member(Relation::Head, head_sex, head_age, None),
            self.member(Relation::Spouse, spouse_sex, spouse_age, None),
        ]
    }

    fn couple_by_husband(&mut self, husband_age: u32) -> [Sketch; 2] {
        let wife_age = (husband_age as i32 - self.spousal_gap()).max(20) as u32;
        self.couple(husband_age, wife_age)
    }

    fn couple_by_wife(&mut self, wife_age: u32) -> [Sketch; 2] {
        let husband_age = (wife_age as i32 + self.spousal_gap()).max(22) as u32;
        self.couple(husband_age, wife_age)
    }

    /// A child's age within `ages`, as children living with their parents
    /// are spread over ages.
    fn child_age(&mut self, ages: std::ops::RangeInclusive<u32>) -> u32 {
        let table: Vec<(u32, u32)> =
            CHILD_AGES.iter().copied().filter(|(age, _)| ages.contains(age)).collect();
        *self.pick(&table)
    }

    /// A mother's age from her (eldest) child's: mothers are 21–40 at birth.
    fn mother_age(&mut self, child_age: u32) -> u32 {
        child_age + self.around(28.0, 4.0, 21, 40)
    }

    /// The eldest child and maybe a younger sibling, eldest first.
    fn sibling_ages(&mut self, eldest_max: u32, p_second: f64) -> Vec<u32> {
        let eldest = self.child_age(0..=eldest_max);
        let mut ages = vec![eldest];
        // The younger one follows the same spread of ages, so second
        // children do not pile up among the babies.
        if eldest >= 2 && self.chance(p_second) {
            let younger = self.child_age(eldest.saturating_sub(12)..=eldest - 1);
            ages.push(younger);
        }
        ages
    }

    fn husband(couple: &[Sketch; 2]) -> Sketch {
        if couple[0].sex == Sex::Male { couple[0] } else { couple[1] }
    }

    fn wife(couple: &[Sketch; 2]) -> Sketch {
        if couple[0].sex == Sex::Female { couple[0] } else { couple[1] }
    }

    /// Members of `relation` with the given ages and the father's surname.
    fn offspring(
        &mut self,
        relation: Relation,
        ages: &[u32],
        surname: &'static str,
    ) -> Vec<Sketch> {
        ages.iter()
            .map(|&age| {
                let sex = self.sex(0.52);
                self.member(relation, sex, age, Some(surname))
            })
            .collect()
    }

    /// A couple with their children, built from the children up so that
    /// children's ages follow `CHILD_AGES` whatever the parents' are.
    fn family(&mut self, eldest_max: u32, p_second: f64) -> (Vec<Sketch>, Vec<Sketch>) {
        let ages = self.sibling_ages(eldest_max, p_second);
        let mother = self.mother_age(ages[0]);
        let couple = self.couple_by_wife(mother);
        let children = self.offspring(Relation::Child, &ages, Self::husband(&couple).surname);
        (couple.to_vec(), children)
    }

    fn sketch(&mut self, kind: Kind) -> Vec<Sketch> {
        match kind {
            Kind::YoungSingle => {
                let (sex, age) = (self.sex(0.56), self.around(28.0, 5.0, 19, 39));
                vec![self.member(Relation::Head, sex, age, None)]
            }
            Kind::MiddleSingle => {
                let (sex, age) = (self.sex(0.5), self.around(50.0, 6.0, 40, 59));
                vec![self.member(Relation::Head, sex, age, None)]
            }
            Kind::ElderAlone => {
                let (sex, age) = (self.sex(0.32), self.in_bands(&ELDER_ALONE_AGES));
                vec![self.member(Relation::Head, sex, age, None)]
            }
            Kind::YoungCouple => {
                let age = self.around(29.0, 3.5, 22, 38);
                self.couple_by_husband(age).to_vec()
            }
            Kind::MiddleCouple => {
                let age = self.around(54.0, 5.0, 44, 64);
                self.couple_by_husband(age).to_vec()
            }
            Kind::ElderCouple => {
                let age = self.in_bands(&ELDER_COUPLE_AGES);
                self.couple_by_husband(age).to_vec()
            }
            Kind::CoupleOneChild => {
                let (mut all, children) = self.family(25, 0.0);
                all.extend(children);
                all
            }
            Kind::CoupleTwoChildren => {
                let (mut all, children) = self.family(20, 1.0);
                all.extend(children);
                all
            }
            Kind::SingleParent => {
                let ages = self.sibling_ages(18, 0.25);
                let sex = self.sex(0.3);
                let mother = self.mother_age(ages[0]);
                let age = if sex == Sex::Female {
                    mother
                } else {
                    (mother as i32 + self.spousal_gap()).max(22) as u32
                };
                let head = self.member(Relation::Head, sex, age, None);
                // Children keep their father's surname.
                let surname = if sex == Sex::Male || self.chance(0.15) {
                    head.surname
                } else {
                    self.surname()
                };
                let mut all = vec![head];
                all.extend(self.offspring(Relation::Child, &ages, surname));
                all
            }
            Kind::ThreeGenerations => {
                // Grandparents move in to help with young children.
                let (couple, children) = self.family(15, 0.35);
                let couple: [Sketch; 2] = [couple[0], couple[1]];
                // The husband's parents more often than the wife's.
                let side =
                    if self.chance(0.6) { Self::husband(&couple) } else { Self::wife(&couple) };
                let relation = if side.relation == Relation::Head {
                    Relation::Parent
                } else {
                    Relation::ParentInLaw
                };
                let mother_age = self.mother_age(side.age).min(99);
                let father_age =
                    (mother_age as i32 + self.spousal_gap()).clamp(side.age as i32 + 22, 99) as u32;
                let father = self.member(relation, Sex::Male, father_age, Some(side.surname));
                let mother = self.member(relation, Sex::Female, mother_age, None);
                let elders = match self.rng.random_range(0..100) {
                    0..50 => vec![mother, father],
                    50..85 => vec![mother],
                    _ => vec![father],
                };
                let mut all = couple.to_vec();
                all.push(children[0]);
                all.push(elders[0]);
                all.extend(children.get(1));
                all.extend(elders.get(1));
                all
            }
            Kind::Extended => {
                // From the grandchildren up: their parents, then the head's generation.
                let grandchildren = self.sibling_ages(16, 0.4);
                let young_mother = self.mother_age(grandchildren[0]);
                let young_father = (young_mother as i32 + self.spousal_gap()).max(22) as u32;
                // Usually a son living with his parents, sometimes a daughter.
                let child_sex = self.sex(0.8);
                let (child_age, in_law_age) = if child_sex == Sex::Male {
                    (young_father, young_mother)
                } else {
                    (young_mother, young_father)
                };
                let couple = {
                    let wife = self.mother_age(child_age).min(95);
                    self.couple_by_wife(wife)
                };
                let (mut all, family_surname) = if self.chance(0.25) {
                    // Widowed: the survivor heads the household.
                    let survivor = if self.chance(0.75) {
                        Self::wife(&couple)
                    } else {
                        Self::husband(&couple)
                    };
                    let head = self.member(Relation::Head, survivor.sex, survivor.age, None);
                    let surname = if head.sex == Sex::Male { head.surname } else { self.surname() };
                    (vec![head], surname)
                } else {
                    (couple.to_vec(), Self::husband(&couple).surname)
                };
                let child =
                    self.member(Relation::Child, child_sex, child_age, Some(family_surname));
                let in_law_sex = if child_sex == Sex::Male { Sex::Female } else { Sex::Male };
                let in_law = self.member(Relation::ChildInLaw, in_law_sex, in_law_age, None);
                let father = if child_sex == Sex::Male { child } else { in_law };
                let surname = if child_sex == Sex::Male || self.chance(0.85) {
                    father.surname
                } else {
                    child.surname
                };
                all.push(child);
                all.push(in_law);
                all.extend(self.offspring(Relation::Grandchild, &grandchildren, surname));
                all
            }
            Kind::SharedRental => {
                let count = if self.chance(0.35) { 3 } else { 2 };
                let first_sex = self.sex(0.55);
                (0..count)
                    .map(|i| {
                        let sex = if self.chance(0.75) { first_sex } else { self.sex(0.5) };
                        let age = self.around(27.0, 4.0, 19, 40);
                        let relation = if i == 0 { Relation::Head } else { Relation::Tenant };
                        self.member(relation, sex, age, None)
                    })
                    .collect()
            }
        }
    }

    fn person(&mut self, s: &Sketch, origin: Origin) -> PersonPlan {
        let birth_date = self.date_in_year(s.age);
        let given = self.given_name(s.sex, birth_date.year());
        let name =
            PersonName::parse(&format!("{}{given}", s.surname)).expect("generated names are valid");
        let (document, residence) = match origin {
            Origin::Registered => {
                let county = *self.pick(names::BINZHOU_COUNTIES);
                (self.eighteen_digit(county, birth_date, s.sex), Residence::Registered)
            }
            Origin::Floating { code, place, arrived } => (
                self.eighteen_digit(code, birth_date, s.sex),
                Residence::Floating {
                    arrived_on: arrived.max(birth_date),
                    origin: place.to_owned(),
                },
            ),
            Origin::Overseas { region, arrived } => {
                let (letter, code, place, _) = OVERSEAS[region];
                let document = match letter {
                    Some(letter) if self.chance(0.5) => self.home_return_permit(letter),
                    _ => self.eighteen_digit(code, birth_date, s.sex),
                };
                (
                    document,
                    Residence::Floating {
                        arrived_on: arrived.max(birth_date),
                        origin: place.to_owned(),
                    },
                )
            }
        };
        // Chances go by the planned age, not the age today, so the day of the
        // year cannot change which draws happen.
        let p_phone = match s.age {
            // Twelve planned may still be eleven today.
            0..=12 => 0.0,
            13..=15 => 0.35,
            16..=17 => 0.75,
            18..=69 => 0.97,
            70..=79 => 0.8,
            _ => 0.45,
        };
        let phone = if self.chance(p_phone) { Some(self.phone()) } else { None };
        PersonPlan {
            name,
            sex: s.sex,
            birth_date,
            document,
            phone,
            relation: s.relation,
            residence,
            tags: Vec::new(),
        }
    }

    /// Key-group tags, from real ages (a planned "80" born later this year is
    /// still 79) and the household around each person. Chances go by the
    /// planned age and are always drawn, as in `person`.
    fn tag(&mut self, people: &mut [PersonPlan], planned: &[u32]) {
        let ages: Vec<u32> = people
            .iter()
            .map(|p| epigrid_domain::resident::age_on(p.birth_date, self.today))
            .collect();
        let alone = people.len() == 1;
        let has = |relation| people.iter().any(|p| p.relation == relation);
        let (has_spouse, has_in_law) = (has(Relation::Spouse), has(Relation::ChildInLaw));
        let has_newborn = ages.contains(&0);
        for ((p, &age), &planned) in people.iter_mut().zip(&ages).zip(planned) {
            let mut tags = Vec::new();
            if age < 3 {
                tags.push(self.tags.infant.clone());
            }
            if age >= 80 {
                tags.push(self.tags.aged_80_plus.clone());
            }
            if alone && age >= 60 {
                tags.push(self.tags.elderly_alone.clone());
            }
            let p_chronic = match planned {
                0..=39 => 0.0,
                40..=59 => 0.04,
                60..=69 => 0.14,
                70..=79 => 0.22,
                _ => 0.3,
            };
            if self.chance(p_chronic) {
                tags.push(self.tags.chronic_disease.clone());
            }
            if self.chance(if planned >= 60 { 0.03 } else { 0.009 }) {
                tags.push(self.tags.disabled.clone());
            }
            let married = match p.relation {
                Relation::Spouse | Relation::ChildInLaw => true,
                Relation::Head => has_spouse,
                Relation::Child => has_in_law,
                _ => false,
            };
            let lucky = self.chance(0.04);
            if p.sex == Sex::Female && (22..=40).contains(&age) && married && !has_newborn && lucky
            {
                tags.push(self.tags.pregnant.clone());
            }
            tags.sort();
            p.tags = tags;
        }
    }

    // ---- accounts -----------------------------------------------------------

    fn accounts(
        &mut self,
        options: &DemoOptions,
        sub_district: &str,
        communities: &[CommunityPlan],
    ) -> Vec<AccountPlan> {
        let mut accounts = vec![AccountPlan {
            username: "admin".into(),
            display_name: format!("{sub_district}管理员"),
            phone: None,
            password: options
                .admin_password
                .clone()
                .unwrap_or_else(|| derived_password(options.seed, "admin")),
            role: Role::SubDistrictAdmin,
            scope: ScopeRef::SubDistrict,
            scope_name: sub_district.to_owned(),
        }];
        let width = options.grids.to_string().len().max(2);
        for (c, community) in communities.iter().enumerate() {
            let username = format!("c{:02}", c + 1);
            accounts.push(AccountPlan {
                password: derived_password(options.seed, &username),
                username,
                display_name: format!("{}管理员", community.name),
                phone: Some(self.phone()),
                role: Role::CommunityAdmin,
                scope: ScopeRef::Community(c),
                scope_name: community.name.clone(),
            });
        }
        for (g, grid) in communities.iter().flat_map(|c| &c.grids).enumerate() {
            let username = format!("g{:0width$}", g + 1);
            let sex = self.sex(0.45);
            let age = self.around(36.0, 6.0, 24, 52);
            let surname = self.surname();
            let birth_year = self.today.year() - age as i32;
            let given = self.given_name(sex, birth_year);
            accounts.push(AccountPlan {
                password: derived_password(options.seed, &username),
                username,
                display_name: format!("{surname}{given}"),
                phone: Some(self.phone()),
                role: Role::GridWorker,
                scope: ScopeRef::Grid(g),
                scope_name: grid.name.clone(),
            });
        }
        accounts
    }
}

/// A password from the seed and the username alone, so that `g01` keeps its
/// password whatever the other options are.
fn derived_password(seed: u64, username: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    // FNV-1a: a stable hash, unlike std's randomly keyed one.
    let hash = username
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let mut rng = StdRng::seed_from_u64(seed ^ hash);
    (0..10)
        .map(|_| char::from(*ALPHABET.choose(&mut rng).expect("alphabet is not empty")))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use epigrid_domain::IdDocumentKind;
    use epigrid_domain::resident::age_on;

    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
    }

    fn options(residents: u32) -> DemoOptions {
        DemoOptions { residents, ..DemoOptions::default() }
    }

    fn small() -> Plan {
        build_plan(&options(3_000), today()).unwrap()
    }

    fn people(plan: &Plan) -> impl Iterator<Item = (&HouseholdPlan, &PersonPlan)> {
        plan.households().flat_map(|h| h.members.iter().map(move |p| (h, p)))
    }

    fn age(p: &PersonPlan) -> u32 {
        age_on(p.birth_date, today())
    }

    fn has(p: &PersonPlan, tag: &str) -> bool {
        p.tags.iter().any(|t| t.as_str() == tag)
    }

    fn share(part: usize, whole: usize) -> f64 {
        part as f64 / whole as f64
    }

    fn area(r: &Rect) -> f64 {
        (r.east - r.west) * (r.north - r.south)
    }

    fn inside(inner: &Rect, outer: &Rect) -> bool {
        inner.west >= outer.west
            && inner.east <= outer.east
            && inner.south >= outer.south
            && inner.north <= outer.north
            && inner.west < inner.east
            && inner.south < inner.north
    }

    fn overlap(a: &Rect, b: &Rect) -> f64 {
        let w = (a.east.min(b.east) - a.west.max(b.west)).max(0.0);
        let h = (a.north.min(b.north) - a.south.max(b.south)).max(0.0);
        w * h
    }

    fn assert_tiles(outer: &Rect, parts: &[Rect]) {
        let sum: f64 = parts.iter().map(area).sum();
        assert!((sum - area(outer)).abs() < 1e-12, "areas {sum} vs {}", area(outer));
        for (i, a) in parts.iter().enumerate() {
            assert!(inside(a, outer), "{a:?} outside {outer:?}");
            for b in &parts[i + 1..] {
                assert_eq!(overlap(a, b), 0.0, "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn same_seed_gives_the_same_plan_and_another_seed_another() {
        let one = small();
        assert_eq!(one, small());
        let other = build_plan(&DemoOptions { seed: 7, ..options(3_000) }, today()).unwrap();
        let names = |plan: &Plan| people(plan).map(|(_, p)| p.name.clone()).collect::<Vec<_>>();
        assert_ne!(names(&one), names(&other));
        assert_ne!(
            one.accounts.iter().map(|a| &a.password).collect::<Vec<_>>(),
            other.accounts.iter().map(|a| &a.password).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_day_of_the_year_does_not_change_the_plan() {
        // Only this year's dates are clamped to today, with the same draws.
        let later = NaiveDate::from_ymd_opt(2026, 12, 30).unwrap();
        let a = build_plan(&options(1_000), today()).unwrap();
        let b = build_plan(&options(1_000), later).unwrap();
        let ids = |plan: &Plan| {
            people(plan)
                .filter(|(_, p)| p.birth_date.year() < 2026)
                .map(|(_, p)| p.document.as_str().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&a), ids(&b));
        assert_eq!(a.building_count(), b.building_count());
    }

    #[test]
    fn resident_count_is_exact_at_any_size() {
        for residents in [0, 1, 7, 2_000, 3_000] {
            let plan = build_plan(&options(residents), today()).unwrap();
            assert_eq!(plan.resident_count(), residents as usize, "{residents}");
            assert_eq!(plan.communities.len(), 8);
            assert_eq!(plan.grids().count(), 50);
        }
        let tiny = DemoOptions { communities: 1, grids: 1, ..options(5) };
        assert_eq!(build_plan(&tiny, today()).unwrap().resident_count(), 5);
    }

    #[test]
    fn the_default_sub_district_has_the_usual_sizes() {
        let plan = build_plan(&DemoOptions::default(), today()).unwrap();
        assert_eq!(plan.resident_count(), 50_000);
        for grid in plan.grids() {
            let residents: usize = grid
                .buildings
                .iter()
                .flat_map(|b| &b.units)
                .flat_map(|u| &u.households)
                .map(|h| h.members.len())
                .sum();
            let households = grid
                .buildings
                .iter()
                .flat_map(|b| &b.units)
                .map(|u| u.households.len())
                .sum::<usize>();
            if grid.kind == GridKind::Residential {
                // RULES.md §1.4: urban grids hold 300–500 households, at most
                // 2,000–2,500 people (a warning, so a little slack).
                assert!((500..=2_000).contains(&residents), "{}: {residents} people", grid.name);
                assert!(
                    (150..=650).contains(&households),
                    "{}: {households} households",
                    grid.name
                );
            } else {
                assert!(residents < 300, "{}: {residents}", grid.name);
            }
        }
        let overseas = people(&plan)
            .filter(|(_, p)| p.document.kind() != IdDocumentKind::ResidentIdCard)
            .count();
        assert!((100..=500).contains(&overseas), "{overseas} with other documents");
        assert!(
            people(&plan).any(|(_, p)| p.document.kind() == IdDocumentKind::HomeReturnPermit)
                && people(&plan)
                    .any(|(_, p)| p.document.kind() == IdDocumentKind::HkMacauTaiwanPermit)
        );
    }

    #[test]
    fn structure_has_realistic_names_codes_and_rooms() {
        let plan = small();
        assert_eq!(plan.name, "市中街道");
        assert_eq!(plan.code.as_str(), "371602001");
        assert_eq!(plan.communities[0].name, "黄河社区");
        let mut codes = HashSet::new();
        for community in &plan.communities {
            assert!(community.code.is_under(&plan.code));
            assert!(codes.insert(community.code.to_string()));
            assert!(community.grids.iter().any(|g| g.kind == GridKind::Residential));
            for (i, grid) in community.grids.iter().enumerate() {
                assert!(grid.code.is_under(&community.code));
                assert_eq!(usize::from(grid.code.sequence()), i + 1);
                assert!(codes.insert(grid.code.to_string()));
                if grid.kind == GridKind::Residential {
                    assert_eq!(grid.name, format!("{}第{}网格", community.name, i + 1));
                } else {
                    assert!(grid.name.ends_with("专属网格"), "{}", grid.name);
                    assert!(
                        grid.buildings.iter().any(|b| b.units.is_empty()),
                        "the organisation's own buildings"
                    );
                }
                let mut building_names = HashSet::new();
                for building in &grid.buildings {
                    assert!(building_names.insert(&building.name), "{} twice", building.name);
                    assert!(building.address.contains('号'), "{}", building.address);
                    let floors = building
                        .units
                        .iter()
                        .flat_map(|u| &u.households)
                        .map(|h| h.room.parse::<u32>().unwrap() / 100)
                        .max()
                        .unwrap_or(0);
                    assert!(floors <= 33);
                    for (u, unit) in building.units.iter().enumerate() {
                        assert_eq!(unit.name, format!("{}单元", u + 1));
                        let rooms: HashSet<_> = unit.households.iter().map(|h| &h.room).collect();
                        assert_eq!(rooms.len(), unit.households.len(), "rooms are unique per unit");
                        for h in &unit.households {
                            let room: u32 = h.room.parse().unwrap();
                            assert!(
                                (1..=33).contains(&(room / 100)) && (1..=4).contains(&(room % 100)),
                                "{room}"
                            );
                        }
                    }
                }
            }
        }
        let dedicated: Vec<_> = plan.grids().filter(|g| g.kind.is_dedicated()).collect();
        assert_eq!(dedicated.len(), 2);
        assert!(
            dedicated.iter().all(|g| matches!(
                g.kind,
                GridKind::School | GridKind::Hospital | GridKind::Market
            ))
        );
    }

    #[test]
    fn grids_tile_their_community_and_communities_the_sub_district() {
        for plan in [
            small(),
            build_plan(&DemoOptions { communities: 7, grids: 23, ..options(500) }, today())
                .unwrap(),
        ] {
            let communities: Vec<Rect> = plan.communities.iter().map(|c| c.rect).collect();
            assert_tiles(&EXTENT, &communities);
            for community in &plan.communities {
                let grids: Vec<Rect> = community.grids.iter().map(|g| g.rect).collect();
                assert_tiles(&community.rect, &grids);
            }
            for rect in plan.communities.iter().map(|c| c.rect).chain(plan.grids().map(|g| g.rect))
            {
                assert!(Boundary::from_geojson_value(rect.boundary().to_json_value()).is_ok());
            }
        }
    }

    #[test]
    fn every_document_is_valid_unique_and_agrees_with_the_person() {
        let plan = small();
        let binzhou: HashSet<&str> = names::BINZHOU_COUNTIES.iter().map(|(c, _)| *c).collect();
        let mut keys = HashSet::new();
        let mut floating_from_binzhou = 0;
        for (_, p) in people(&plan) {
            let reparsed = IdDocument::parse(p.document.as_str(), today()).unwrap();
            assert_eq!(reparsed, p.document);
            assert!(keys.insert(p.document.match_key().to_owned()), "{} twice", p.document);
            if p.document.as_str().len() == 18 {
                assert_eq!(p.document.sex(), Some(p.sex));
                assert_eq!(p.document.birth_date(), Some(p.birth_date));
            }
            let address = &p.document.as_str()[..6];
            match (&p.residence, p.document.kind()) {
                (Residence::Registered, kind) => {
                    assert_eq!(kind, IdDocumentKind::ResidentIdCard);
                    assert!(binzhou.contains(address), "registered resident from {address}");
                }
                (Residence::Floating { arrived_on, origin }, kind) => {
                    assert!(*arrived_on <= today() && *arrived_on >= p.birth_date);
                    assert!(*arrived_on >= NaiveDate::from_ymd_opt(2019, 1, 1).unwrap());
                    assert!(!origin.is_empty());
                    if kind == IdDocumentKind::ResidentIdCard && binzhou.contains(address) {
                        floating_from_binzhou += 1;
                    }
                }
            }
        }
        assert_eq!(floating_from_binzhou, 0);
        // Floating residents include an abolished code (RULES.md §3.1).
        let default = build_plan(&DemoOptions::default(), today()).unwrap();
        assert!(people(&default).any(|(_, p)| p.document.as_str().starts_with("440524")));
    }

    #[test]
    fn floating_residents_are_about_a_sixth() {
        let plan = small();
        let total = plan.resident_count();
        let floating = people(&plan).filter(|(_, p)| p.residence.is_floating()).count();
        assert!((0.12..=0.22).contains(&share(floating, total)), "{floating} of {total}");
        // A household moved together: all floating or none, from one place.
        for h in plan.households() {
            let origins: HashSet<_> = h
                .members
                .iter()
                .map(|p| match &p.residence {
                    Residence::Registered => None,
                    Residence::Floating { origin, .. } => Some(origin.clone()),
                })
                .collect();
            assert_eq!(origins.len(), 1);
        }
    }

    #[test]
    fn relations_are_consistent_with_ages_and_sexes() {
        for seed in 1..=4 {
            let plan = build_plan(&DemoOptions { seed, ..options(3_000) }, today()).unwrap();
            plan.households().for_each(assert_relations);
        }
    }

    fn assert_relations(h: &HouseholdPlan) {
        {
            let heads: Vec<_> = h.members.iter().filter(|p| p.relation == Relation::Head).collect();
            assert_eq!(heads.len(), 1, "one head per household");
            let head = heads[0];
            let head_age = age(head) as i32;
            let spouse_age =
                h.members.iter().find(|p| p.relation == Relation::Spouse).map(|p| age(p) as i32);
            for p in &h.members {
                let a = age(p) as i32;
                match p.relation {
                    Relation::Head => assert!(a >= 18),
                    Relation::Spouse => {
                        assert_ne!(p.sex, head.sex);
                        assert!(a >= 19 && (a - head_age).abs() <= 12, "spouse {a} of {head_age}");
                    }
                    Relation::Child => assert!(head_age - a >= 15, "child {a} of {head_age}"),
                    Relation::ChildInLaw => assert!(a >= 19 && head_age - a >= 15),
                    Relation::Grandchild => {
                        assert!(head_age - a >= 30, "grandchild {a} of {head_age}")
                    }
                    Relation::Parent => assert!(a - head_age >= 15, "parent {a} of {head_age}"),
                    Relation::ParentInLaw => {
                        let spouse = spouse_age.expect("parents-in-law come with a spouse");
                        assert!(a - spouse >= 15, "parent-in-law {a} of {spouse}");
                    }
                    Relation::Tenant => assert!(a >= 18),
                    other => panic!("unexpected relation {other:?}"),
                }
            }
        }
    }

    #[test]
    fn ages_make_a_plausible_city_pyramid() {
        let plan = build_plan(&options(20_000), today()).unwrap();
        let ages: Vec<u32> = people(&plan).map(|(_, p)| age(p)).collect();
        let n = ages.len();
        let count = |range: std::ops::RangeInclusive<u32>| {
            ages.iter().filter(|a| range.contains(a)).count()
        };
        let children = share(count(0..=14), n);
        let working = share(count(30..=59), n);
        let elderly = share(count(60..=120), n);
        let oldest = share(count(80..=120), n);
        eprintln!("0-14 {children:.3} 30-59 {working:.3} 60+ {elderly:.3} 80+ {oldest:.3}");
        assert!((0.10..=0.18).contains(&children), "0-14: {children}");
        assert!((0.40..=0.55).contains(&working), "30-59: {working}");
        assert!((0.16..=0.25).contains(&elderly), "60+: {elderly}");
        assert!((0.02..=0.035).contains(&oldest), "80+: {oldest}");
        let sizes = plan.households().map(|h| h.members.len()).sum::<usize>() as f64
            / plan.households().count() as f64;
        assert!((2.4..=3.0).contains(&sizes), "household size {sizes}");
    }

    #[test]
    fn key_group_tags_follow_ages_and_households_in_realistic_shares() {
        let plan = small();
        let (mut elderly, mut chronic, mut disabled, mut pregnant, mut total) = (0, 0, 0, 0, 0);
        for (h, p) in people(&plan) {
            let a = age(p);
            total += 1;
            assert_eq!(has(p, Tag::AGED_80_PLUS), a >= 80);
            assert_eq!(has(p, Tag::INFANT), a < 3);
            assert_eq!(has(p, Tag::ELDERLY_ALONE), a >= 60 && h.members.len() == 1);
            if has(p, Tag::PREGNANT) {
                assert!(p.sex == Sex::Female && (22..=40).contains(&a));
                pregnant += 1;
            }
            if a >= 60 {
                elderly += 1;
                chronic += usize::from(has(p, Tag::CHRONIC_DISEASE));
            }
            disabled += usize::from(has(p, Tag::DISABLED));
            let mut sorted = p.tags.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted, p.tags);
        }
        assert!((0.15..=0.25).contains(&share(chronic, elderly)), "chronic {chronic} of {elderly}");
        assert!((0.005..=0.025).contains(&share(disabled, total)), "disabled {disabled}");
        assert!((3..=40).contains(&pregnant), "pregnant {pregnant}");
        let alone = people(&plan).filter(|(_, p)| has(p, Tag::ELDERLY_ALONE)).count();
        assert!(alone > 0);
    }

    #[test]
    fn adults_mostly_have_phones_and_young_children_none() {
        let plan = small();
        let mut phones = HashSet::new();
        let (mut adults, mut with_phone) = (0, 0);
        for (_, p) in people(&plan) {
            let a = age(p);
            if a < 12 {
                assert!(p.phone.is_none());
            }
            if (18..70).contains(&a) {
                adults += 1;
                with_phone += usize::from(p.phone.is_some());
            }
            if let Some(phone) = &p.phone {
                assert!(phones.insert(phone.as_str().to_owned()), "{} twice", phone.as_str());
            }
        }
        assert!(share(with_phone, adults) >= 0.9);
    }

    #[test]
    fn names_are_chinese_with_common_surnames() {
        let plan = small();
        let mut surnames: HashMap<char, usize> = HashMap::new();
        for (_, p) in people(&plan) {
            let chars = p.name.as_str().chars().count();
            assert!((2..=4).contains(&chars), "{}", p.name.as_str());
            *surnames.entry(p.name.as_str().chars().next().unwrap()).or_default() += 1;
        }
        let top: usize = "王李张刘".chars().map(|c| surnames.get(&c).copied().unwrap_or(0)).sum();
        assert!((0.18..=0.36).contains(&share(top, plan.resident_count())), "top four {top}");
    }

    #[test]
    fn accounts_cover_every_level_with_usable_passwords() {
        let plan = small();
        let usernames: Vec<&str> = plan.accounts.iter().map(|a| a.username.as_str()).collect();
        assert_eq!(usernames.len(), 1 + 8 + 50);
        assert_eq!(&usernames[..3], ["admin", "c01", "c02"]);
        assert_eq!(usernames[9], "g01");
        assert_eq!(usernames[58], "g50");
        assert_eq!(plan.accounts[1].display_name, "黄河社区管理员");
        assert!(plan.accounts.iter().all(|a| a.password.chars().count() >= MIN_PASSWORD_CHARS));
        let distinct: HashSet<_> = plan.accounts.iter().map(|a| &a.password).collect();
        assert_eq!(distinct.len(), plan.accounts.len());
        let grid_names: Vec<&str> = plan.grids().map(|g| g.name.as_str()).collect();
        for (i, a) in plan.accounts[9..].iter().enumerate() {
            assert_eq!(a.role, Role::GridWorker);
            assert_eq!(a.scope, ScopeRef::Grid(i));
            assert_eq!(a.scope_name, grid_names[i]);
            assert!(a.phone.is_some());
            assert!(PersonName::parse(&a.display_name).is_ok());
        }
        // A grid worker's password does not move when the resident count does.
        let bigger = build_plan(&options(4_000), today()).unwrap();
        assert_eq!(bigger.accounts[9].password, plan.accounts[9].password);
        let chosen = DemoOptions { admin_password: Some("correct horse".into()), ..options(10) };
        assert_eq!(build_plan(&chosen, today()).unwrap().accounts[0].password, "correct horse");
    }

    #[test]
    fn nonsense_options_are_refused() {
        for (bad, field) in [
            (DemoOptions { communities: 0, ..options(10) }, "communities"),
            (DemoOptions { communities: 31, grids: 31, ..options(10) }, "communities"),
            (DemoOptions { communities: 8, grids: 7, ..options(10) }, "grids"),
            (DemoOptions { communities: 1, grids: 100, ..options(10) }, "grids"),
            (DemoOptions { admin_password: Some("short".into()), ..options(10) }, "admin_password"),
            (options(MAX_RESIDENTS + 1), "residents"),
        ] {
            let error = build_plan(&bad, today()).unwrap_err();
            assert_eq!(error.field(), Some(field), "{bad:?}");
        }
        assert!(
            !format!(
                "{:?}",
                DemoOptions { admin_password: Some("secret-pw".into()), ..options(1) }
            )
            .contains("secret-pw")
        );
    }
}
