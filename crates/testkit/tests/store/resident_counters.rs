//! The per-grid resident counters the dashboard reads (migration 0012) stay
//! equal to a recount from the rows through every write path that adds,
//! changes or moves residents or adds households: single and bulk inserts,
//! audited registry writes, import chunks (inserts and rewrites) and the
//! import's bulk load, moves between grids and communities, tag, birth date,
//! sex and residence changes, and writes that fail and roll back. (The store
//! has no resident or household delete.) Each check compares the counters
//! with the store's own recount from the rows and with figures computed
//! here from what the test wrote.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Datelike;
use epigrid_domain::{AreaKind, Residence, Scope, Sex};
use epigrid_store::{
    AreaFigures, AreaRecord, AuditRecord, BirthYearCount, HouseholdRecord, ImportChunk,
    ImportJobRecord, RegistryWrite, ResidentRecord, Store, StoreError, TagCount,
};
use epigrid_testkit::{
    child_area, date, household, insert_area, now, resident, sealed, sub_district, tags,
};
use uuid::Uuid;

use crate::support::{reopen_postgres_after, reopen_sqlite_after};

/// What the test has written: the truth the counters must match.
#[derive(Default)]
struct Model {
    households: BTreeMap<Uuid, HouseholdRecord>,
    residents: BTreeMap<Uuid, ResidentRecord>,
}

impl Model {
    fn add(&mut self, households: &[HouseholdRecord], residents: &[ResidentRecord]) {
        for h in households {
            self.households.insert(h.id, h.clone());
        }
        for r in residents {
            self.residents.insert(r.id, r.clone());
        }
    }

    fn within(scope: Option<Scope>, path: &epigrid_domain::AreaPath) -> bool {
        scope.is_none_or(|s| path.at(s.kind) == Some(s.area_id))
    }

    fn figures(&self, scope: Option<Scope>, by: AreaKind) -> Vec<AreaFigures> {
        let mut out: BTreeMap<Uuid, AreaFigures> = BTreeMap::new();
        for h in self.households.values().filter(|h| Self::within(scope, &h.path)) {
            let id = h.path.at(by).unwrap();
            out.entry(id)
                .or_insert(AreaFigures { area_id: id, ..AreaFigures::default() })
                .households += 1;
        }
        for r in self.residents.values().filter(|r| Self::within(scope, &r.path)) {
            let id = r.path.at(by).unwrap();
            let f = out.entry(id).or_insert(AreaFigures { area_id: id, ..AreaFigures::default() });
            f.residents += 1;
            f.floating += i64::from(matches!(r.residence, Residence::Floating { .. }));
            f.key_group += i64::from(!r.tags.is_empty());
        }
        out.into_values().collect()
    }

    fn birth_years(&self, scope: Option<Scope>) -> Vec<BirthYearCount> {
        let mut out: BTreeMap<(i32, &'static str), (Sex, i64)> = BTreeMap::new();
        for r in self.residents.values().filter(|r| Self::within(scope, &r.path)) {
            let sex = if r.sex == Sex::Male { "male" } else { "female" };
            out.entry((r.birth_date.year(), sex)).or_insert((r.sex, 0)).1 += 1;
        }
        out.into_iter()
            .map(|((year, _), (sex, residents))| BirthYearCount { year, sex, residents })
            .collect()
    }

    fn tags(&self, scope: Option<Scope>) -> Vec<TagCount> {
        let mut out: BTreeMap<String, i64> = BTreeMap::new();
        for r in self.residents.values().filter(|r| Self::within(scope, &r.path)) {
            for t in &r.tags {
                *out.entry(t.as_str().to_owned()).or_default() += 1;
            }
        }
        out.into_iter().map(|(tag, residents)| TagCount { tag, residents }).collect()
    }
}

fn sorted(mut figures: Vec<AreaFigures>) -> Vec<AreaFigures> {
    figures.sort_by_key(|f| f.area_id);
    figures
}

/// The sub-district, its two communities and three grids, each grid with a
/// building and a unit.
struct Areas {
    root: AreaRecord,
    communities: [AreaRecord; 2],
    grids: [AreaRecord; 3],
    units: [AreaRecord; 3],
}

impl Areas {
    async fn insert(store: &dyn Store) -> Self {
        let root = sub_district("计数");
        let a = child_area(&root, AreaKind::Community, "甲");
        let b = child_area(&root, AreaKind::Community, "乙");
        let grids = [
            child_area(&a, AreaKind::Grid, "甲一"),
            child_area(&a, AreaKind::Grid, "甲二"),
            child_area(&b, AreaKind::Grid, "乙一"),
        ];
        for area in [&root, &a, &b] {
            insert_area(store, area).await;
        }
        let mut units = Vec::new();
        for grid in &grids {
            insert_area(store, grid).await;
            let building = child_area(grid, AreaKind::Building, "1");
            let unit = child_area(&building, AreaKind::Unit, "1");
            insert_area(store, &building).await;
            insert_area(store, &unit).await;
            units.push(unit);
        }
        Self { root, communities: [a, b], grids, units: units.try_into().unwrap() }
    }

    fn scopes(&self) -> Vec<Option<Scope>> {
        let scope = |a: &AreaRecord| Some(Scope { kind: a.kind, area_id: a.id });
        let mut all = vec![None, scope(&self.root)];
        all.extend(self.communities.iter().map(scope));
        all.extend(self.grids.iter().map(scope));
        all
    }
}

/// Checks every figure the counters answer, in every scope and grouping,
/// against the store's recount from the rows and against the model.
async fn check(store: &dyn Store, areas: &Areas, model: &Model, stage: &str) {
    for scope in areas.scopes() {
        for by in [AreaKind::SubDistrict, AreaKind::Community, AreaKind::Grid] {
            if scope.is_some_and(|s| s.kind.depth() > by.depth()) {
                continue;
            }
            let counted = sorted(store.area_figures(scope, by).await.unwrap());
            let recount = store.recount_resident_figures(scope, by).await.unwrap();
            assert_eq!(
                counted,
                sorted(recount.areas.clone()),
                "{stage}: figures by {by:?} in {scope:?}, counters vs rows"
            );
            assert_eq!(
                counted,
                model.figures(scope, by),
                "{stage}: figures by {by:?} in {scope:?}, counters vs what was written"
            );
            let years = store.birth_year_counts(scope).await.unwrap();
            assert_eq!(
                years, recount.birth_years,
                "{stage}: birth years in {scope:?}, counters vs rows"
            );
            assert_eq!(
                years,
                model.birth_years(scope),
                "{stage}: birth years in {scope:?}, counters vs what was written"
            );
            let tag_counts = store.tag_counts(scope).await.unwrap();
            assert_eq!(tag_counts, recount.tags, "{stage}: tags in {scope:?}, counters vs rows");
            assert_eq!(
                tag_counts,
                model.tags(scope),
                "{stage}: tags in {scope:?}, counters vs what was written"
            );
        }
        let counts = store.level_counts(scope).await.unwrap();
        let expected = model.figures(scope, AreaKind::Grid);
        assert_eq!(
            counts.residents,
            expected.iter().map(|f| f.residents).sum::<i64>(),
            "{stage}: residents in {scope:?}"
        );
        assert_eq!(
            counts.households,
            expected.iter().map(|f| f.households).sum::<i64>(),
            "{stage}: households in {scope:?}"
        );
    }
}

fn person(home: &HouseholdRecord, name: &str, i: usize) -> ResidentRecord {
    let mut r = resident(home, name);
    r.sex = if i.is_multiple_of(2) { Sex::Male } else { Sex::Female };
    r.birth_date = date(1935 + (i as i32 * 7) % 90, 1 + (i as u32 % 12), 1 + (i as u32 % 28));
    if i.is_multiple_of(3) {
        r.residence = Residence::Floating { arrived_on: date(2023, 5, 1), origin: "济南".into() };
    }
    r.tags = match i % 5 {
        0 => tags(&["elderly_alone"]),
        1 => tags(&["infant", "disabled"]),
        _ => Vec::new(),
    };
    r
}

fn audit(action: &str, target: Uuid) -> AuditRecord {
    AuditRecord {
        id: Uuid::now_v7(),
        at: now(),
        actor_user_id: None,
        actor_name: "tester".into(),
        actor_role: None,
        action: action.into(),
        target_kind: Some("test".into()),
        target_id: Some(target),
        community_id: None,
        client_addr: None,
        outcome: "ok".into(),
        detail: "{}".into(),
    }
}

fn import_job() -> ImportJobRecord {
    let at = now();
    ImportJobRecord {
        id: Uuid::now_v7(),
        file_sha256: vec![0xC0; 32],
        actor_user_id: None,
        actor_name: "system".into(),
        mode: "valid_only".into(),
        status: "running".into(),
        total_rows: 4,
        inserted: 0,
        updated: 0,
        unchanged: 0,
        rejected: 0,
        chunks_done: 0,
        created_at: at,
        updated_at: at,
    }
}

/// Moves `r` into `home` (another household, maybe in another grid).
fn moved(r: &ResidentRecord, home: &HouseholdRecord) -> ResidentRecord {
    ResidentRecord { household_id: home.id, path: home.path, updated_at: now(), ..r.clone() }
}

epigrid_testkit::store_contract_tests! {
    async fn resident_counters_equal_a_recount_after_every_kind_of_write(store: Arc<dyn Store>) {
        let areas = Areas::insert(&*store).await;
        let mut model = Model::default();
        check(&*store, &areas, &model, "empty").await;

        // Bulk insert: households in every grid, residents of every kind.
        let homes: Vec<HouseholdRecord> =
            (0..6).map(|i| household(&areas.units[i % 3], &format!("{}01", i + 1))).collect();
        let people: Vec<ResidentRecord> =
            (0..30).map(|i| person(&homes[i % 6], &format!("居民{i}"), i)).collect();
        store.insert_bulk(&homes, &people).await.unwrap();
        model.add(&homes, &people);
        check(&*store, &areas, &model, "bulk insert").await;

        // One household and one resident on their own, and audited.
        let lone = household(&areas.units[2], "901");
        store.insert_household(&lone).await.unwrap();
        let single = person(&lone, "单独", 1);
        store.insert_resident(&single).await.unwrap();
        let audited_home = household(&areas.units[0], "902");
        assert!(store.write_audited(RegistryWrite::InsertHousehold(&audited_home), &audit("household.create", audited_home.id)).await.unwrap());
        let audited = person(&audited_home, "审计", 5);
        assert!(store.write_audited(RegistryWrite::InsertResident(&audited), &audit("resident.create", audited.id)).await.unwrap());
        model.add(&[lone.clone(), audited_home.clone()], &[single.clone(), audited.clone()]);
        check(&*store, &areas, &model, "single inserts").await;

        // The import's bulk load.
        let loaded_home = household(&areas.units[1], "903");
        let loaded: Vec<ResidentRecord> =
            (0..7).map(|i| person(&loaded_home, &format!("导入{i}"), 40 + i)).collect();
        store.bulk_load(std::slice::from_ref(&loaded_home), &loaded).await.unwrap();
        model.add(std::slice::from_ref(&loaded_home), &loaded);
        check(&*store, &areas, &model, "bulk load").await;

        // Rewrites: a move to a grid of the other community with new tags, a
        // move within the community, a birth date and sex correction, a
        // floating resident registered, tags dropped, and a name change that
        // counts nothing.
        let mut across = moved(&people[0], &homes[2]);
        across.tags = tags(&["pregnant", "elderly_alone"]);
        let within_community = moved(&people[1], &homes[1]);
        let mut corrected = people[2].clone();
        corrected.birth_date = date(2021, 2, 3);
        corrected.sex = if corrected.sex == Sex::Male { Sex::Female } else { Sex::Male };
        let mut registered = people[3].clone();
        assert!(matches!(registered.residence, Residence::Floating { .. }));
        registered.residence = Residence::Registered;
        let mut untagged = people[6].clone();
        assert!(!untagged.tags.is_empty());
        untagged.tags.clear();
        let mut renamed = people[7].clone();
        renamed.name = epigrid_domain::PersonName::parse("改名").unwrap();
        for r in [&across, &within_community, &corrected, &registered, &untagged, &renamed] {
            assert!(store.update_resident(r).await.unwrap());
        }
        model.add(&[], &[across.clone(), within_community, corrected, registered, untagged, renamed]);
        check(&*store, &areas, &model, "rewrites").await;

        // An audited rewrite moving a resident back, and one of a resident
        // that does not exist (nothing written, nothing counted).
        let back = moved(&across, &homes[0]);
        assert!(store.write_audited(RegistryWrite::UpdateResident(&back), &audit("resident.update", back.id)).await.unwrap());
        let ghost = person(&homes[0], "无人", 9);
        assert!(!store.update_resident(&ghost).await.unwrap());
        assert!(!store.write_audited(RegistryWrite::UpdateResident(&ghost), &audit("resident.update", ghost.id)).await.unwrap());
        model.add(&[], std::slice::from_ref(&back));
        check(&*store, &areas, &model, "audited rewrite").await;

        // An import chunk: a new household with residents, and rewrites that
        // move two residents into it and re-tag another.
        let job = import_job();
        store.insert_import_job(&job).await.unwrap();
        let chunk_home = household(&areas.units[2], "904");
        let inserts: Vec<ResidentRecord> =
            (0..3).map(|i| person(&chunk_home, &format!("新{i}"), 60 + i)).collect();
        let mut retagged = people[10].clone();
        retagged.tags = tags(&["disabled"]);
        let updates = vec![moved(&people[4], &chunk_home), moved(&people[5], &chunk_home), retagged];
        let chunk = ImportChunk {
            job_id: job.id,
            areas: Vec::new(),
            households: vec![chunk_home.clone()],
            inserts: inserts.clone(),
            updates: updates.clone(),
            at: now(),
            audit: audit("import.chunk", job.id),
        };
        store.apply_import_chunk(&chunk).await.unwrap();
        model.add(std::slice::from_ref(&chunk_home), &inserts);
        model.add(&[], &updates);
        check(&*store, &areas, &model, "import chunk").await;

        // Writes that fail roll their counters back with their rows: a bulk
        // insert whose last resident reuses an ID number, and an import chunk
        // for a job that does not exist.
        let mut first = person(&homes[3], "证件一", 70);
        first.id_number = Some(sealed("counted-id"));
        store.insert_resident(&first).await.unwrap();
        model.add(&[], std::slice::from_ref(&first));
        let failed_home = household(&areas.units[0], "905");
        let mut clash = person(&failed_home, "证件二", 71);
        clash.id_number = Some(sealed("counted-id"));
        let batch = vec![person(&failed_home, "回滚", 72), clash];
        let error = store.insert_bulk(std::slice::from_ref(&failed_home), &batch).await.unwrap_err();
        assert!(matches!(error, StoreError::Conflict { .. }), "{error:?}");
        let orphan_home = household(&areas.units[1], "906");
        let orphan = ImportChunk {
            job_id: Uuid::now_v7(),
            households: vec![orphan_home.clone()],
            inserts: vec![person(&orphan_home, "孤儿", 73)],
            updates: vec![moved(&people[8], &orphan_home)],
            audit: audit("import.chunk", job.id),
            ..chunk
        };
        assert!(store.apply_import_chunk(&orphan).await.is_err());
        check(&*store, &areas, &model, "failed writes").await;
        assert!(store.get_household(failed_home.id).await.unwrap().is_none());
        assert!(store.get_household(orphan_home.id).await.unwrap().is_none());
        assert_eq!(model.residents.len(), 30 + 2 + 7 + 3 + 1);
    }

    async fn scopes_below_a_grid_still_count_from_the_rows(store: Arc<dyn Store>) {
        let areas = Areas::insert(&*store).await;
        let home = household(&areas.units[0], "101");
        let people: Vec<ResidentRecord> =
            (0..5).map(|i| person(&home, &format!("楼{i}"), i)).collect();
        store.insert_bulk(std::slice::from_ref(&home), &people).await.unwrap();
        let mut model = Model::default();
        model.add(std::slice::from_ref(&home), &people);
        let unit = Some(Scope { kind: AreaKind::Unit, area_id: areas.units[0].id });
        let building = Some(Scope { kind: AreaKind::Building, area_id: home.path.building.unwrap() });
        for scope in [unit, building] {
            assert_eq!(store.birth_year_counts(scope).await.unwrap(), model.birth_years(scope));
            assert_eq!(store.tag_counts(scope).await.unwrap(), model.tags(scope));
            assert_eq!(store.level_counts(scope).await.unwrap().residents, 5);
        }
        let by_unit = store.area_figures(building, AreaKind::Unit).await.unwrap();
        assert_eq!(by_unit, model.figures(building, AreaKind::Unit));
        let grid = Some(Scope { kind: AreaKind::Grid, area_id: areas.grids[0].id });
        assert_eq!(sorted(store.area_figures(grid, AreaKind::Building).await.unwrap()), model.figures(grid, AreaKind::Building));
    }
}

/// Fills a store, then takes it back to before migration 0012 (counter
/// tables dropped, the migrations forgotten): what `open` then finds is a
/// database of rows without counters, and its migration must backfill them.
async fn fill_and_forget_counters(store: &dyn Store) -> (Areas, Model) {
    let areas = Areas::insert(store).await;
    let homes: Vec<HouseholdRecord> =
        (0..4).map(|i| household(&areas.units[i % 3], &format!("{}02", i + 1))).collect();
    let people: Vec<ResidentRecord> =
        (0..25).map(|i| person(&homes[i % 4], &format!("旧{i}"), i)).collect();
    store.insert_bulk(&homes, &people).await.unwrap();
    let mut model = Model::default();
    model.add(&homes, &people);
    (areas, model)
}

/// Takes the database back to before migration 12 (the counters), undoing
/// the later migrations too, so that they all run again at the next open.
const FORGET_COUNTERS: [&str; 11] = [
    "DROP TABLE grid_figures",
    "DROP TABLE grid_birth_years",
    "DROP TABLE grid_tag_counts",
    "DROP TABLE intake_audit_pending",
    "DROP INDEX intake_reports_staff_grid_day",
    "CREATE INDEX intake_reports_grid_day ON intake_reports (grid_id, day, id)",
    "DROP INDEX intake_reports_key_household",
    "CREATE UNIQUE INDEX intake_reports_idempotency_key ON intake_reports (idempotency_key)",
    "CREATE INDEX intake_reports_household ON intake_reports (household_id, id)",
    "DROP INDEX tasks_subject_created",
    "DELETE FROM _sqlx_migrations WHERE version >= 12",
];

#[tokio::test]
async fn sqlite_migration_backfills_the_counters_from_existing_rows() {
    let (store, guard) = epigrid_testkit::fresh_sqlite().await;
    let (areas, model) = fill_and_forget_counters(&*store).await;
    drop(store);
    let path = guard.dir().join("epigrid.db");
    // SQLite's migration 19 (the storage room) runs again too.
    let statements =
        FORGET_COUNTERS.iter().chain(&["DROP TABLE storage_room"]).map(|s| s.to_string());
    let store = reopen_sqlite_after(&path, statements).await;
    check(&store, &areas, &model, "backfilled").await;
}

#[tokio::test]
async fn postgres_migration_backfills_the_counters_from_existing_rows() {
    let Some((store, guard)) = epigrid_testkit::fresh_postgres().await else {
        eprintln!("skipped: EPIGRID_TEST_PG is not set");
        return;
    };
    let (areas, model) = fill_and_forget_counters(&*store).await;
    let schema = guard.schema();
    let in_schema = FORGET_COUNTERS.map(|sql| {
        sql.replace("TABLE ", &format!("TABLE {schema}."))
            .replace("FROM ", &format!("FROM {schema}."))
            .replace("DROP INDEX ", &format!("DROP INDEX {schema}."))
            .replace(" ON ", &format!(" ON {schema}."))
    });
    let reopened = reopen_postgres_after(schema, in_schema).await;
    check(&reopened, &areas, &model, "backfilled").await;
    reopened.close().await;
    drop(store);
    guard.cleanup().await;
}
