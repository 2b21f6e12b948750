//! The grid worker's phone pages with a heavy day's load: a worker of the
//! demo sub-district holding 50 open tasks about households of their grid.
//! Server-side time over real HTTP on loopback: the list page, the same
//! list as JSON, one task's page, and a replayed step (what the offline
//! queue sends again after a lost answer).
//!
//! ```sh
//! cargo bench -p epigrid-web --bench field
//! EPIGRID_BENCH_RESIDENTS=50000 EPIGRID_BENCH_TASKS=50 …   # the defaults
//! ```

use std::sync::OnceLock;

use epigrid_domain::AreaKind;
use epigrid_domain::tasks::{Assignee, Priority, Reason, Subject, Transition};
use epigrid_service::demo::DemoOptions;
use epigrid_service::tasks::{ReportEvent, TransitionRequest};
use epigrid_service::{Actor, FieldCipher, SecretKey, Service, Settings};
use epigrid_store::HouseholdQuery;

fn main() {
    divan::main();
    if let Some(f) = FIXTURE.get() {
        let _ = std::fs::remove_dir_all(f.guard.dir());
    }
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    worker: reqwest::Client,
    csrf: String,
    base: String,
    task: uuid::Uuid,
    guard: epigrid_testkit::TempGuard,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(build)
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn build() -> Fixture {
    let residents = env_or("EPIGRID_BENCH_RESIDENTS", 50_000);
    let task_count = env_or("EPIGRID_BENCH_TASKS", 50);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (worker, csrf, base, task, guard) = runtime.block_on(async {
        let (store, guard) = epigrid_testkit::fresh_sqlite().await;
        let key = SecretKey::from_hex(&SecretKey::generate_hex()).unwrap();
        let service = Service::new(store, FieldCipher::new(&key), Settings::default());
        let options = DemoOptions {
            residents: residents as u32,
            admin_password: Some("bench-password".into()),
            ..DemoOptions::default()
        };
        let summary = service.generate_demo(&options, &|_| {}).await.unwrap();
        let account = summary.accounts.iter().find(|a| a.username == "g01").unwrap().clone();
        let me = service.store().get_user_by_username("g01").await.unwrap().unwrap();
        let admin = service.store().get_user_by_username("admin").await.unwrap().unwrap();
        let supervisor = Actor {
            user_id: Some(admin.id),
            username: admin.username.clone(),
            role: admin.role,
            scope: Some(admin.scope),
            client_addr: None,
        };
        let grid = me.scope;
        assert_eq!(grid.kind, AreaKind::Grid);
        let households = service
            .store()
            .list_households(&HouseholdQuery {
                within: Some(grid),
                limit: task_count as u32,
                ..HouseholdQuery::default()
            })
            .await
            .unwrap();
        let system = Actor::system();
        let categories = ["fever_follow_up", "quarantine_delivery", "door_to_door_check"];
        let priorities = [Priority::Urgent, Priority::High, Priority::Normal, Priority::Low];
        let mut first = None;
        for (i, household) in households.iter().cycle().take(task_count).enumerate() {
            let task = service
                .report_event(
                    &system,
                    ReportEvent {
                        category: categories[i % categories.len()].into(),
                        priority: Some(priorities[i % priorities.len()]),
                        subject: Subject::Household(household.id),
                        note: None,
                        idempotency_key: None,
                    },
                )
                .await
                .unwrap();
            let mut view = None;
            for transition in [Transition::Verify, Transition::File] {
                let request = TransitionRequest { transition, note: None, idempotency_key: None };
                view = Some(service.transition_task(&system, task.id, request).await.unwrap());
            }
            // Dispatch spreads the grid's tasks over its workers (and the
            // reserve pool); this bench wants them all on one phone.
            if view.unwrap().task.assignee != Some(Assignee::Worker { account_id: me.id }) {
                let request = TransitionRequest {
                    transition: Transition::Reassign {
                        to: Assignee::Worker { account_id: me.id },
                        reason: Reason::parse("集中由 g01 处理").unwrap(),
                    },
                    note: None,
                    idempotency_key: None,
                };
                service.transition_task(&supervisor, task.id, request).await.unwrap();
            }
            first.get_or_insert(task.id);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = epigrid_web::AppState { service, secure_cookies: false, metrics_token: None };
        tokio::spawn(epigrid_web::serve(
            listener,
            state,
            epigrid_web::connection_cap::DEFAULT_MAX_CONNECTIONS,
            std::future::pending(),
        ));
        let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let response = client
            .post(format!("{base}/api/v1/login"))
            .json(
                &serde_json::json!({ "username": account.username, "password": account.password }),
            )
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        let body: serde_json::Value = response.json().await.unwrap();
        let csrf = body["csrf_token"].as_str().unwrap().to_owned();
        let task = first.unwrap();
        // The step the replay bench sends again.
        let response = client
            .post(format!("{base}/api/v1/tasks/{task}/transitions"))
            .header("x-csrf-token", &csrf)
            .header("idempotency-key", "bench-accept")
            .json(&serde_json::json!({ "transition": { "kind": "accept" } }))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        (client, csrf, base, task, guard)
    });
    Fixture { runtime, worker, csrf, base, task, guard }
}

fn get(f: &Fixture, path: &str) {
    let url = format!("{}{path}", f.base);
    f.runtime.block_on(async {
        let response = f.worker.get(&url).send().await.unwrap();
        assert!(response.status().is_success(), "{url}: {}", response.status());
        response.bytes().await.unwrap();
    });
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn phone_list(bencher: divan::Bencher) {
    let f = fixture();
    bencher.bench_local(|| get(f, "/m/"));
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn field_tasks_json(bencher: divan::Bencher) {
    let f = fixture();
    bencher.bench_local(|| get(f, "/api/v1/field-tasks"));
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn task_page(bencher: divan::Bencher) {
    let f = fixture();
    let path = format!("/m/tasks/{}", f.task);
    bencher.bench_local(|| get(f, &path));
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn replayed_step(bencher: divan::Bencher) {
    let f = fixture();
    let url = format!("{}/api/v1/tasks/{}/transitions", f.base, f.task);
    bencher.bench_local(|| {
        f.runtime.block_on(async {
            let response = f
                .worker
                .post(&url)
                .header("x-csrf-token", &f.csrf)
                .header("idempotency-key", "bench-accept")
                .json(&serde_json::json!({ "transition": { "kind": "accept" } }))
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success());
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["replayed"], true);
        })
    });
}
