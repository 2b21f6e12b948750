//! Render time of the resident self-service pages and of the staff pages of
//! issue #6 (QR sheets, "not reported today", the dashboard's reported share)
//! with the demo sub-district loaded (50,000 residents by default), over
//! real HTTP on loopback, each request a full render; and one health report
//! posted through the page form (no script), acknowledged after its batch
//! commits (`synchronous=FULL`).
//!
//! ```sh
//! cargo bench -p epigrid-web --bench selfservice
//! EPIGRID_BENCH_RESIDENTS=50000 …   # population (default 50,000)
//! ```

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use epigrid_domain::identity::check_character;
use epigrid_domain::{AreaKind, Relation, Sex};
use epigrid_service::demo::DemoOptions;
use epigrid_service::registry::{NewHousehold, NewResident};
use epigrid_service::{Actor, FieldCipher, SecretKey, Service, Settings};
use epigrid_store::AreaQuery;

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
    /// A phone identified for the bench household (pass cookie held).
    resident: reqwest::Client,
    base: String,
    token: String,
    community: uuid::Uuid,
    grid: uuid::Uuid,
    member: uuid::Uuid,
    /// The form's pass-bound token.
    pass_token: String,
    guard: epigrid_testkit::TempGuard,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(build)
}

fn field(html: &str, form: &str, name: &str) -> String {
    let start = html.find(&format!("id=\"{form}\"")).unwrap();
    let rest = &html[start..];
    let at = rest.find(&format!("name=\"{name}\" value=\"")).unwrap() + name.len() + 15;
    rest[at..at + rest[at..].find('"').unwrap()].to_owned()
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

fn build() -> Fixture {
    let residents = std::env::var("EPIGRID_BENCH_RESIDENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let fixture = runtime.block_on(async {
        let (store, guard) = epigrid_testkit::fresh_sqlite().await;
        let key = SecretKey::from_hex(&SecretKey::generate_hex()).unwrap();
        // One loopback client sends every request: no per-client limit.
        let mut settings = Settings::default();
        settings.intake.public.rate_per_client = 0;
        let service = Service::new(store, FieldCipher::new(&key), settings);
        let options = DemoOptions {
            residents,
            admin_password: Some("bench-password".into()),
            ..DemoOptions::default()
        };
        let summary = service.generate_demo(&options, &|_| {}).await.unwrap();
        let worker = summary.accounts.iter().find(|a| a.username == "g01").unwrap().clone();
        let system = Actor::system();
        let login = service.login("g01", &worker.password, None).await.unwrap();
        let grid = login.actor.scope.unwrap().area_id;
        let community = service
            .store()
            .list_areas(&AreaQuery {
                kind: Some(AreaKind::Community),
                limit: 1,
                ..AreaQuery::default()
            })
            .await
            .unwrap()[0]
            .id;
        let building = service.area_children(&system, grid).await.unwrap()[0].area.id;
        let unit = service.area_children(&system, building).await.unwrap()[0].area.id;
        let household = service
            .create_household(&system, NewHousehold { unit_id: unit, room: "9901".into() })
            .await
            .unwrap()
            .id;
        let first17 = *b"11010519800505991";
        let id_number = format!("{}{}", "11010519800505991", check_character(&first17));
        let member = service
            .create_resident(
                &system,
                NewResident {
                    household_id: household,
                    name: "孙晓明".into(),
                    sex: Some(Sex::Male),
                    birth_date: None,
                    id_number: Some(id_number.clone()),
                    phone: None,
                    relation: Relation::Head,
                    floating: false,
                    arrived_on: None,
                    origin: None,
                    tags: Vec::new(),
                },
            )
            .await
            .unwrap()
            .id;
        let token = service.building_token(building);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = epigrid_web::AppState { service, secure_cookies: false, metrics_token: None };
        tokio::spawn(epigrid_web::serve(
            listener,
            state,
            epigrid_web::connection_cap::DEFAULT_MAX_CONNECTIONS,
            std::future::pending(),
        ));
        let staff = |username: String, password: String| {
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
        let admin = staff("admin".into(), "bench-password".into()).await;
        let worker = staff(worker.username, worker.password).await;
        let resident = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let menu = resident
            .post(format!("{base}/s/{token}/identify"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("household_id", &household.to_string()),
                ("name", "孙晓明"),
                ("id_last4", &id_number[14..]),
            ]))
            .send()
            .await
            .unwrap();
        assert!(menu.url().path().ends_with("/menu"), "identified: {}", menu.url());
        let html = resident
            .get(format!("{base}/s/{token}/health"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let pass_token = field(&html, "health-form", "_s");
        (admin, worker, resident, base, token, [community, grid, member], pass_token, guard)
    });
    let (admin, worker, resident, base, token, [community, grid, member], pass_token, guard) =
        fixture;
    Fixture {
        runtime,
        admin,
        worker,
        resident,
        base,
        token,
        community,
        grid,
        member,
        pass_token,
        guard,
    }
}

const PAGES: &[&str] = &[
    "building_picker",
    "health_form",
    "qr_community",
    "unreported",
    "dashboard",
    "dashboard_reported",
    "worker_dashboard",
];

#[divan::bench(args = PAGES, sample_count = 20, sample_size = 1)]
fn render(bencher: divan::Bencher, page: &str) {
    let f = fixture();
    let (path, client) = match page {
        "building_picker" => (format!("/s/{}", f.token), &f.resident),
        "health_form" => (format!("/s/{}/health", f.token), &f.resident),
        "qr_community" => (format!("/areas/{}/qr", f.community), &f.admin),
        "unreported" => (format!("/grids/{}/unreported", f.grid), &f.worker),
        "dashboard" => ("/".to_owned(), &f.admin),
        "dashboard_reported" => ("/?measure=reported".to_owned(), &f.admin),
        "worker_dashboard" => ("/".to_owned(), &f.worker),
        other => panic!("unknown page {other}"),
    };
    let url = format!("{}{path}", f.base);
    bencher.bench_local(|| {
        f.runtime.block_on(async {
            let response = client.get(&url).send().await.unwrap();
            assert!(response.status().is_success(), "{url}: {}", response.status());
            response.bytes().await.unwrap()
        })
    });
}

/// One health report through the page form, a new key each time: the
/// resident's wait from tap to the reference on screen.
#[divan::bench(sample_count = 50, sample_size = 1)]
fn submit_health_form(bencher: divan::Bencher) {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let f = fixture();
    let url = format!("{}/s/{}/health", f.base, f.token);
    bencher.bench_local(|| {
        let key = format!("bench-{:012}", SEQ.fetch_add(1, Ordering::Relaxed));
        f.runtime.block_on(async {
            let response = f
                .resident
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&[
                    ("_s", f.pass_token.as_str()),
                    ("idempotency_key", &key),
                    ("m0", &f.member.to_string()),
                    ("inc0", "1"),
                    ("t0", "36.5"),
                    ("w0", "at_home"),
                ]))
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            response.bytes().await.unwrap()
        })
    });
}
