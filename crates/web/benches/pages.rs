//! Server-side render time of every staff page with the demo sub-district
//! loaded (50,000 residents by default), over real HTTP on loopback: the
//! issue's bar is a median under 100 ms per page.
//!
//! ```sh
//! cargo bench -p epigrid-web --bench pages
//! EPIGRID_BENCH_RESIDENTS=50000 …   # population (default 50,000)
//! ```

use std::sync::OnceLock;

use epigrid_domain::AreaKind;
use epigrid_service::demo::DemoOptions;
use epigrid_service::{FieldCipher, SecretKey, Service, Settings};
use epigrid_store::{AreaQuery, HouseholdQuery, ResidentQuery};

fn main() {
    divan::main();
    if let Some(f) = FIXTURE.get() {
        let _ = std::fs::remove_dir_all(f.guard.dir());
    }
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    admin: reqwest::Client,
    worker: reqwest::Client,
    base: String,
    community: uuid::Uuid,
    grid: uuid::Uuid,
    building: uuid::Uuid,
    household: uuid::Uuid,
    resident: uuid::Uuid,
    guard: epigrid_testkit::TempGuard,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(build)
}

fn build() -> Fixture {
    let residents = std::env::var("EPIGRID_BENCH_RESIDENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (admin, worker, base, ids, guard) = runtime.block_on(async {
        let (store, guard) = epigrid_testkit::fresh_sqlite().await;
        let key = SecretKey::from_hex(&SecretKey::generate_hex()).unwrap();
        let service = Service::new(store, FieldCipher::new(&key), Settings::default());
        let options = DemoOptions {
            residents,
            admin_password: Some("bench-password".into()),
            ..DemoOptions::default()
        };
        let summary = service.generate_demo(&options, &|_| {}).await.unwrap();
        let worker = summary.accounts.iter().find(|a| a.username == "g01").unwrap().clone();
        let store = service.store();
        let first = |kind| AreaQuery { kind: Some(kind), limit: 1, ..AreaQuery::default() };
        let community = store.list_areas(&first(AreaKind::Community)).await.unwrap()[0].id;
        let grid = store.list_areas(&first(AreaKind::Grid)).await.unwrap()[0].id;
        let grid_scope = Some(epigrid_domain::Scope { kind: AreaKind::Grid, area_id: grid });
        let building = store
            .list_areas(&AreaQuery {
                kind: Some(AreaKind::Building),
                within: grid_scope,
                limit: 1,
                ..AreaQuery::default()
            })
            .await
            .unwrap()[0]
            .id;
        let household = store
            .list_households(&HouseholdQuery {
                within: grid_scope,
                limit: 1,
                ..HouseholdQuery::default()
            })
            .await
            .unwrap()[0]
            .id;
        let resident = store
            .search_residents(&ResidentQuery {
                household_id: Some(household),
                limit: 1,
                ..ResidentQuery::default()
            })
            .await
            .unwrap()[0]
            .id;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = epigrid_web::AppState { service, secure_cookies: false, metrics_token: None };
        tokio::spawn(epigrid_web::serve(
            listener,
            state,
            epigrid_web::connection_cap::DEFAULT_MAX_CONNECTIONS,
            std::future::pending(),
        ));
        let login = |username: String, password: String| {
            let base = base.clone();
            async move {
                let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
                let response = client
                    .post(format!("{base}/api/v1/login"))
                    .json(&serde_json::json!({ "username": username, "password": password }))
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success());
                client
            }
        };
        let admin = login("admin".into(), "bench-password".into()).await;
        let worker = login(worker.username, worker.password).await;
        (admin, worker, base, [community, grid, building, household, resident], guard)
    });
    let [community, grid, building, household, resident] = ids;
    Fixture { runtime, admin, worker, base, community, grid, building, household, resident, guard }
}

const PAGES: &[&str] = &[
    "dashboard",
    "dashboard_key_group",
    "community_dashboard",
    "grid",
    "building",
    "household",
    "resident",
    "resident_edit",
    "search_by_name",
    "accounts",
    "worker_dashboard",
];

#[divan::bench(args = PAGES, sample_count = 20, sample_size = 1)]
fn render(bencher: divan::Bencher, page: &str) {
    let f = fixture();
    let path = match page {
        "dashboard" => "/".to_owned(),
        "dashboard_key_group" => "/?measure=key_group".to_owned(),
        "community_dashboard" => format!("/?area={}", f.community),
        "grid" => format!("/areas/{}", f.grid),
        "building" => format!("/areas/{}", f.building),
        "household" => format!("/households/{}", f.household),
        "resident" => format!("/residents/{}", f.resident),
        "resident_edit" => format!("/residents/{}/edit", f.resident),
        "search_by_name" => "/residents?name=%E7%8E%8B".to_owned(),
        "accounts" => "/accounts".to_owned(),
        "worker_dashboard" => "/".to_owned(),
        other => panic!("unknown page {other}"),
    };
    let client = if page == "worker_dashboard" { &f.worker } else { &f.admin };
    let url = format!("{}{path}", f.base);
    bencher.bench_local(|| {
        f.runtime.block_on(async {
            let response = client.get(&url).send().await.unwrap();
            assert!(response.status().is_success(), "{url}: {}", response.status());
            response.bytes().await.unwrap()
        })
    });
}
