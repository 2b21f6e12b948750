//! Import speed against the raw bulk-load speed of the same store.
//!
//! Not a divan bench: one measurement of a million rows takes longer than
//! divan's sampling model suits, and peak memory must be measured per
//! process. `bench/import.sh` runs the three steps below as separate
//! processes under `/usr/bin/time -v`:
//!
//! ```text
//! cargo bench -p epigrid-service --bench import -- gen    ROWS FILE.xlsx
//! cargo bench -p epigrid-service --bench import -- raw    ROWS sqlite|postgres
//! cargo bench -p epigrid-service --bench import -- import FILE.xlsx sqlite|postgres [CHUNK_ROWS]
//! ```
//!
//! `raw` seals the same people in memory first (untimed) and times only
//! `ImportStore::bulk_load` (multi-row INSERTs on SQLite, COPY on
//! PostgreSQL): the ceiling of the store. `import` times the whole import:
//! reading the .xlsx, checking every row, matching, sealing and writing in
//! audited chunks. PostgreSQL runs in a fresh schema of `EPIGRID_TEST_PG`.

use std::sync::Arc;
use std::time::Instant;

use epigrid_domain::identity::check_character;
use epigrid_domain::{AreaKind, IdDocument, Relation, Residence};
use epigrid_service::import::{ImportMode, ImportOptions, ImportProgress, file_digest, read_table};
use epigrid_service::{Actor, FieldCipher, SecretKey, Service, Settings};
use epigrid_store::{HouseholdRecord, ResidentRecord, Store};
use epigrid_testkit::{Chain, child_area, insert_area, now};

/// The binary's allocator (crates/cli/src/main.rs), for raw and import alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Residents per building: 2 units × 40 rooms × 2.5 people.
const PER_BUILDING: usize = 200;
const PER_ROOM: usize = 2;

struct Person {
    name: String,
    id: String,
    phone: String,
    building: usize,
    unit: usize,
    room: usize,
    relation: &'static str,
}

/// The `i`-th synthetic person: unique, valid ID numbers (birth date ×
/// sequence), two to a room.
fn person(i: usize) -> Person {
    let birth = chrono::NaiveDate::from_ymd_opt(1930, 1, 1).unwrap()
        + chrono::Duration::days((i / 1000) as i64 % 30_000);
    let first17 = format!("370102{}{:03}", birth.format("%Y%m%d"), i % 1000);
    let bytes: [u8; 17] = first17.as_bytes().try_into().unwrap();
    let building = i / PER_BUILDING;
    let within = i % PER_BUILDING;
    Person {
        name: format!("居民{i}"),
        id: format!("{first17}{}", check_character(&bytes)),
        phone: format!("13{:09}", i),
        building: building + 1,
        unit: within / (PER_BUILDING / 2) + 1,
        room: (within % (PER_BUILDING / 2)) / PER_ROOM + 101,
        relation: if i.is_multiple_of(PER_ROOM) { "户主" } else { "配偶" },
    }
}

fn service(store: Arc<dyn Store>) -> Service {
    let key = SecretKey::from_hex(&"42".repeat(32)).unwrap();
    Service::new(store, FieldCipher::new(&key), Settings::default())
}

async fn open(backend: &str) -> (Arc<dyn Store>, Box<dyn std::any::Any>) {
    match backend {
        "sqlite" => {
            let (store, guard) = epigrid_testkit::fresh_sqlite().await;
            (store, Box::new(guard))
        }
        "postgres" => {
            let (store, guard) =
                epigrid_testkit::fresh_postgres().await.expect("set EPIGRID_TEST_PG for postgres");
            (store, Box::new(guard))
        }
        other => panic!("unknown backend {other}"),
    }
}

fn gen_file(rows: usize, path: &str) {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let header = ["姓名", "身份证号", "联系电话", "网格", "楼栋", "单元", "门牌号", "与户主关系"];
    for (c, h) in header.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for i in 0..rows {
        let p = person(i);
        let r = (i + 1) as u32;
        sheet.write_string(r, 0, &p.name).unwrap();
        sheet.write_string(r, 1, &p.id).unwrap();
        sheet.write_string(r, 2, &p.phone).unwrap();
        sheet.write_string(r, 3, "基准网格").unwrap();
        sheet.write_number(r, 4, p.building as f64).unwrap();
        sheet.write_number(r, 5, p.unit as f64).unwrap();
        sheet.write_number(r, 6, p.room as f64).unwrap();
        sheet.write_string(r, 7, p.relation).unwrap();
    }
    workbook.save(path).unwrap();
    println!("wrote {rows} rows to {path}");
}

async fn grid(store: &dyn Store) -> Chain {
    let mut chain = Chain::build("基准");
    chain.grid.name = "基准网格".into();
    for area in [&chain.sub_district, &chain.community, &chain.grid] {
        insert_area(store, area).await;
    }
    chain
}

async fn raw(rows: usize, backend: &str) {
    let (store, _guard) = open(backend).await;
    let chain = grid(&*store).await;
    let service = service(store.clone());
    let today = service.today();
    // Areas and sealed records are built first and not timed.
    let mut households: Vec<HouseholdRecord> = Vec::new();
    let mut residents: Vec<ResidentRecord> = Vec::with_capacity(rows);
    let mut units = std::collections::HashMap::new();
    let mut current: Option<(usize, usize, usize)> = None;
    for i in 0..rows {
        let p = person(i);
        let unit = match units.get(&(p.building, p.unit)) {
            Some(unit) => unit,
            None => {
                let building = child_area(&chain.grid, AreaKind::Building, &p.building.to_string());
                let unit = child_area(&building, AreaKind::Unit, &p.unit.to_string());
                insert_area(&*store, &building).await;
                insert_area(&*store, &unit).await;
                units.entry((p.building, p.unit)).or_insert(unit)
            }
        };
        if current != Some((p.building, p.unit, p.room)) {
            current = Some((p.building, p.unit, p.room));
            let at = now();
            households.push(HouseholdRecord {
                id: uuid::Uuid::now_v7(),
                path: unit.path,
                room: p.room.to_string(),
                created_at: at,
                updated_at: at,
            });
        }
        let doc = IdDocument::parse(&p.id, today).unwrap();
        let phone = epigrid_domain::MobilePhone::parse(&p.phone).unwrap();
        residents.push(service.sealed_resident(
            households.last().unwrap(),
            epigrid_domain::PersonName::parse(&p.name).unwrap(),
            Some(&doc),
            doc.sex().unwrap(),
            doc.birth_date().unwrap(),
            Some(&phone),
            if i.is_multiple_of(PER_ROOM) { Relation::Head } else { Relation::Spouse },
            Residence::Registered,
            Vec::new(),
        ));
    }
    let started = Instant::now();
    store.bulk_load(&households, &residents).await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "RESULT raw backend={backend} rows={rows} seconds={seconds:.2} rows_per_s={:.0}",
        rows as f64 / seconds
    );
}

async fn import(path: &str, backend: &str, chunk_rows: usize) {
    let (store, _guard) = open(backend).await;
    grid(&*store).await;
    let service = service(store.clone());
    let started = Instant::now();
    let bytes = std::fs::read(path).unwrap();
    let table = read_table(path, &bytes).unwrap();
    let read = started.elapsed().as_secs_f64();
    let progress = ImportProgress::default();
    let options =
        ImportOptions { mode: ImportMode::AllOrNothing, chunk_rows, ..ImportOptions::default() };
    let plan = service
        .plan_import(&Actor::system(), &table, file_digest(&bytes), &options, &progress)
        .await
        .unwrap();
    let planned = started.elapsed().as_secs_f64();
    assert!(plan.errors.is_empty(), "{:?}", &plan.errors[..plan.errors.len().min(5)]);
    let summary = service.apply_import(&Actor::system(), &plan, &progress).await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let rows = summary.inserted as usize;
    assert_eq!(store.level_counts(None).await.unwrap().residents as usize, rows);
    println!(
        "RESULT import backend={backend} chunk_rows={chunk_rows} rows={rows} seconds={seconds:.2} rows_per_s={:.0} \
         read_s={read:.2} check_s={:.2} write_s={:.2}",
        rows as f64 / seconds,
        planned - read,
        seconds - planned
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["gen", rows, path] => gen_file(rows.parse().unwrap(), path),
        ["raw", rows, backend] => runtime.block_on(raw(rows.parse().unwrap(), backend)),
        ["import", path, backend] => {
            runtime.block_on(import(path, backend, ImportOptions::default().chunk_rows))
        }
        ["import", path, backend, chunk] => {
            runtime.block_on(import(path, backend, chunk.parse().unwrap()))
        }
        // `cargo bench` with no arguments (or a filter): a small smoke run
        // of both, so the bench cannot rot unnoticed.
        _ => {
            let path =
                std::env::temp_dir().join(format!("epigrid-bench-{}.xlsx", std::process::id()));
            let path = path.to_str().unwrap().to_owned();
            gen_file(2_000, &path);
            runtime.block_on(raw(2_000, "sqlite"));
            runtime.block_on(import(&path, "sqlite", 500));
            let _ = std::fs::remove_file(&path);
        }
    }
}
