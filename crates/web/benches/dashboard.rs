//! The whole-sub-district dashboard of the demo (50,000 residents and its
//! morning of activity) on SQLite and, when `EPIGRID_TEST_PG` names a
//! database, PostgreSQL side by side in one run: the page over HTTP (bar:
//! a median under 100 ms) and each of the store reads behind it on its own,
//! so their shares of the page can be told apart.
//!
//! ```sh
//! EPIGRID_TEST_PG=postgres://postgres@127.0.0.1:5432/test cargo bench -p epigrid-web --bench dashboard
//! EPIGRID_BENCH_RESIDENTS=50000 …   # population (the default)
//! ```

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use chrono::{TimeDelta, Utc};
use epigrid_domain::{AreaKind, Scope};
use epigrid_service::demo::DemoOptions;
use epigrid_service::{FieldCipher, SecretKey, Service, Settings};
use epigrid_store::{AreaQuery, Store};
use uuid::Uuid;

fn main() {
    divan::main();
    // Fixtures live in statics, which are never dropped: clean up by hand.
    for backend in ["sqlite", "postgres"] {
        if let Some(Some(f)) = cell(backend).get() {
            if let Some(guard) = &f._sqlite {
                let _ = std::fs::remove_dir_all(guard.dir());
            }
            if let (Some(guard), Some(url)) = (&f._postgres, epigrid_testkit::postgres_url()) {
                let schema = guard.schema().to_owned();
                f.runtime.block_on(async {
                    let _ = epigrid_store_postgres::PostgresStore::drop_schema(&url, &schema).await;
                });
            }
        }
    }
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    service: Service,
    admin: reqwest::Client,
    base: String,
    sub_district: Scope,
    grids: Vec<Uuid>,
    // Kept alive for the whole run: dropping them removes the database.
    _sqlite: Option<epigrid_testkit::TempGuard>,
    _postgres: Option<epigrid_testkit::PgGuard>,
}

fn cell(backend: &str) -> &'static OnceLock<Option<Fixture>> {
    static SQLITE: OnceLock<Option<Fixture>> = OnceLock::new();
    static POSTGRES: OnceLock<Option<Fixture>> = OnceLock::new();
    if backend == "sqlite" { &SQLITE } else { &POSTGRES }
}

fn fixture(backend: &'static str) -> Option<&'static Fixture> {
    let f = cell(backend).get_or_init(|| build(backend)).as_ref();
    if f.is_none() {
        eprintln!("[{backend}] skipped: EPIGRID_TEST_PG is not set");
    }
    f
}

fn build(backend: &'static str) -> Option<Fixture> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (store, sqlite, postgres): (Arc<dyn Store>, _, _) = runtime.block_on(async {
        if backend == "sqlite" {
            let (store, guard) = epigrid_testkit::fresh_sqlite().await;
            Some((store, Some(guard), None))
        } else {
            let (store, guard) = epigrid_testkit::fresh_postgres().await?;
            Some((store, None, Some(guard)))
        }
    })?;
    let key = SecretKey::from_hex(&SecretKey::generate_hex()).unwrap();
    let service = Service::new(store, FieldCipher::new(&key), Settings::default());
    let (admin, base, sub_district, grids) = runtime.block_on(async {
        let residents = std::env::var("EPIGRID_BENCH_RESIDENTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50_000);
        let options = DemoOptions {
            residents,
            admin_password: Some("bench-password".into()),
            ..DemoOptions::default()
        };
        let started = Instant::now();
        let summary = service.generate_demo(&options, &|_| {}).await.unwrap();
        eprintln!(
            "[{backend}] demo with {} residents generated in {:.1} s",
            summary.residents,
            started.elapsed().as_secs_f64()
        );
        // The morning of reports and tasks `epigrid demo` adds, so the
        // reporting and task figures have rows to read.
        let started = Instant::now();
        service.demo_activity(options.seed).await.unwrap();
        eprintln!("[{backend}] demo activity in {:.1} s", started.elapsed().as_secs_f64());
        let store = service.store();
        let first = |kind| AreaQuery { kind: Some(kind), limit: 500, ..AreaQuery::default() };
        let root = store.list_areas(&first(AreaKind::SubDistrict)).await.unwrap()[0].id;
        let grids = store.list_areas(&first(AreaKind::Grid)).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = epigrid_web::AppState {
            service: service.clone(),
            secure_cookies: false,
            metrics_token: None,
        };
        tokio::spawn(epigrid_web::serve(
            listener,
            state,
            epigrid_web::connection_cap::DEFAULT_MAX_CONNECTIONS,
            std::future::pending(),
        ));
        let admin = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let login = admin
            .post(format!("{base}/api/v1/login"))
            .json(&serde_json::json!({ "username": "admin", "password": "bench-password" }))
            .send()
            .await
            .unwrap();
        assert!(login.status().is_success());
        let scope = Scope { kind: AreaKind::SubDistrict, area_id: root };
        (admin, base, scope, grids.iter().map(|g| g.id).collect())
    });
    Some(Fixture {
        runtime,
        service,
        admin,
        base,
        sub_district,
        grids,
        _sqlite: sqlite,
        _postgres: postgres,
    })
}

const PAGES: &[&str] = &["dashboard", "dashboard_key_group"];

fn page(bencher: divan::Bencher, backend: &'static str, page: &str) {
    let Some(f) = fixture(backend) else { return };
    let path = match page {
        "dashboard" => "/",
        "dashboard_key_group" => "/?measure=key_group",
        other => panic!("unknown page {other}"),
    };
    let url = format!("{}{path}", f.base);
    bencher.bench_local(|| {
        f.runtime.block_on(async {
            let response = f.admin.get(&url).send().await.unwrap();
            assert!(response.status().is_success(), "{url}: {}", response.status());
            response.bytes().await.unwrap()
        })
    });
}

#[divan::bench(args = PAGES, sample_count = 20, sample_size = 1)]
fn sqlite_page(bencher: divan::Bencher, name: &str) {
    page(bencher, "sqlite", name);
}

#[divan::bench(args = PAGES, sample_count = 20, sample_size = 1)]
fn postgres_page(bencher: divan::Bencher, name: &str) {
    page(bencher, "postgres", name);
}

/// The store reads of the whole-sub-district dashboard, one at a time, and
/// the same resident figures aggregated from the rows (the old path).
const READS: &[&str] = &[
    "area_level_counts",
    "area_figures",
    "birth_year_counts",
    "tag_counts",
    "grid_task_figures",
    "grid_day_counters",
    "recount_from_rows",
];

fn read(bencher: divan::Bencher, backend: &'static str, name: &str) {
    let Some(f) = fixture(backend) else { return };
    let store = f.service.store();
    let within = Some(f.sub_district);
    let today = f.service.today();
    bencher.bench_local(|| {
        f.runtime.block_on(async {
            let rows = match name {
                "area_level_counts" => usize::from(store.area_level_counts(within).await.is_ok()),
                "area_figures" => {
                    store.area_figures(within, AreaKind::Community).await.unwrap().len()
                }
                "birth_year_counts" => store.birth_year_counts(within).await.unwrap().len(),
                "tag_counts" => store.tag_counts(within).await.unwrap().len(),
                "grid_task_figures" => {
                    let now = Utc::now();
                    let day_start = now - TimeDelta::hours(8);
                    store.grid_task_figures(within, now, day_start).await.unwrap().len()
                }
                "grid_day_counters" => {
                    store.grid_day_counters(&f.grids, today).await.unwrap().len()
                }
                // The three resident aggregates as the dashboard ran them
                // before the per-grid counters (one after another here).
                "recount_from_rows" => {
                    let rows = store.recount_resident_figures(within, AreaKind::Community);
                    let rows = rows.await.unwrap();
                    rows.areas.len() + rows.birth_years.len() + rows.tags.len()
                }
                other => panic!("unknown read {other}"),
            };
            assert!(rows > 0, "{name} read nothing");
            rows
        })
    });
}

#[divan::bench(args = READS, sample_count = 20, sample_size = 1)]
fn sqlite_read(bencher: divan::Bencher, name: &str) {
    read(bencher, "sqlite", name);
}

#[divan::bench(args = READS, sample_count = 20, sample_size = 1)]
fn postgres_read(bencher: divan::Bencher, name: &str) {
    read(bencher, "postgres", name);
}
