//! The office's task pages and the escalation pass at the size of issue #5:
//! the demo sub-district (50,000 residents) plus 20,000 open tasks spread
//! over its grids, on SQLite and, when `EPIGRID_TEST_PG` names a database,
//! PostgreSQL side by side in one run. The bars: the board renders in under
//! 100 ms (median), one escalation pass over the tasks takes under 1 s.
//!
//! ```sh
//! EPIGRID_TEST_PG=postgres://postgres@127.0.0.1:5432/test cargo bench -p epigrid-web --bench tasks
//! EPIGRID_BENCH_RESIDENTS=50000 EPIGRID_BENCH_TASKS=20000 …   # sizes (these are the defaults)
//! ```
//!
//! Tasks are seeded through the store's bulk insert, as a week of work
//! would leave them: most within their time limit, one in ten overdue and
//! already escalated to the community, and a stream of newly overdue ones.
//! Each escalation sample first adds [`NEWLY_OVERDUE`] tasks that have just
//! passed their deadline (untimed), then times one pass over everything:
//! the pass reads every candidate and escalates the new ones.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use epigrid_domain::tasks::{EventState, Priority, Source};
use epigrid_domain::{AreaKind, Role, Scope};
use epigrid_service::demo::DemoOptions;
use epigrid_service::{FieldCipher, SecretKey, Service, Settings};
use epigrid_store::{
    AreaQuery, HouseholdQuery, HouseholdRecord, Store, TaskHistoryRecord, TaskRecord, UserQuery,
};
use uuid::Uuid;

/// Tasks that pass their deadline between two escalation passes, per sample.
const NEWLY_OVERDUE: usize = 200;

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
    grid: Uuid,
    task: Uuid,
    second_page: String,
    households: Vec<HouseholdRecord>,
    workers: Vec<(Uuid, Vec<Uuid>)>,
    // Kept alive for the whole run: dropping them removes the database.
    _sqlite: Option<epigrid_testkit::TempGuard>,
    _postgres: Option<epigrid_testkit::PgGuard>,
}

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn cell(backend: &str) -> &'static OnceLock<Option<Fixture>> {
    static SQLITE: OnceLock<Option<Fixture>> = OnceLock::new();
    static POSTGRES: OnceLock<Option<Fixture>> = OnceLock::new();
    if backend == "sqlite" { &SQLITE } else { &POSTGRES }
}

fn fixture(backend: &'static str) -> Option<&'static Fixture> {
    cell(backend).get_or_init(|| build(backend)).as_ref()
}

/// One task about `household`, in `state`, its stage deadline at `deadline`.
fn task(
    household: &HouseholdRecord,
    state: EventState,
    priority: Priority,
    assignee: Option<Uuid>,
    deadline: DateTime<Utc>,
    level: u8,
    at: DateTime<Utc>,
) -> (TaskRecord, TaskHistoryRecord) {
    let source = Source::SystemRule { rule: "bench".into() };
    let t = TaskRecord {
        id: Uuid::now_v7(),
        category: ["door_to_door_check", "fever_follow_up", "help_request", "retest_visit"]
            [household.id.as_u128() as usize % 4]
            .into(),
        priority,
        state,
        source_kind: source.kind_str().into(),
        source_detail: serde_json::to_string(&source).unwrap(),
        subject_kind: "household".into(),
        subject_id: household.id,
        path: household.path,
        assignee_account_id: assignee,
        reserve_pool_community_id: None,
        stage: state.stage(),
        stage_started_at: Some(deadline - TimeDelta::hours(8)),
        stage_deadline: Some(deadline),
        escalation_level: level,
        filed_at: Some(at - TimeDelta::days(1)),
        handled_at: None,
        handled_by: None,
        handle_deadline: None,
        handling_seconds: None,
        closed_at: None,
        reopened: 0,
        created_at: at - TimeDelta::days(1),
        updated_at: at,
        version: 1,
        idempotency_key: None,
    };
    let h = TaskHistoryRecord {
        id: Uuid::now_v7(),
        task_id: t.id,
        community_id: t.path.community.unwrap(),
        transition: "report".into(),
        from_state: None,
        to_state: state,
        actor_account_id: None,
        actor_name: "system".into(),
        at: t.created_at,
        note: None,
        idempotency_key: None,
    };
    (t, h)
}

const STATES: [EventState; 5] = [
    EventState::Dispatched,
    EventState::InProgress,
    EventState::Dispatched,
    EventState::HandledReported,
    EventState::Reported,
];

/// 20,000 open tasks by default, one per household in turn: nine in ten
/// within their limit, one in ten overdue by days and already escalated to
/// the community (no longer candidates for a pass).
fn seed_tasks(
    households: &[HouseholdRecord],
    workers: &[(Uuid, Vec<Uuid>)],
    count: usize,
    now: DateTime<Utc>,
) -> Vec<(TaskRecord, TaskHistoryRecord)> {
    (0..count)
        .map(|i| {
            let household = &households[i % households.len()];
            let state = STATES[i % STATES.len()];
            let assignee = assignee_for(household, workers, i, state);
            let priority = Priority::ALL[i % 4];
            if i % 10 == 3 {
                task(household, state, priority, assignee, now - TimeDelta::days(3), 2, now)
            } else {
                let deadline = now + TimeDelta::minutes(30 + (i % 2_000) as i64);
                task(household, state, priority, assignee, deadline, 0, now)
            }
        })
        .collect()
}

fn assignee_for(
    household: &HouseholdRecord,
    workers: &[(Uuid, Vec<Uuid>)],
    i: usize,
    state: EventState,
) -> Option<Uuid> {
    if !matches!(
        state,
        EventState::Dispatched | EventState::InProgress | EventState::HandledReported
    ) {
        return None;
    }
    let grid = household.path.grid?;
    let list = &workers.iter().find(|(g, _)| *g == grid)?.1;
    (!list.is_empty()).then(|| list[i % list.len()])
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
    let (admin, base, grid, task, second_page, households, workers) = runtime.block_on(async {
        let options = DemoOptions {
            residents: env_number("EPIGRID_BENCH_RESIDENTS", 50_000),
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
        let store = service.store();
        let mut households = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .list_households(&HouseholdQuery { within: None, after, limit: 500 })
                .await
                .unwrap();
            after = page.last().map(|h| h.id);
            let short = page.len() < 500;
            households.extend(page);
            if short {
                break;
            }
        }
        let grids = store
            .list_areas(&AreaQuery {
                kind: Some(AreaKind::Grid),
                limit: 500,
                ..AreaQuery::default()
            })
            .await
            .unwrap();
        let mut workers = Vec::new();
        for grid in &grids {
            let users = store
                .list_users(&UserQuery {
                    within: Some(Scope { kind: AreaKind::Grid, area_id: grid.id }),
                    after: None,
                    limit: 100,
                })
                .await
                .unwrap();
            let ids = users.iter().filter(|u| u.role == Role::GridWorker).map(|u| u.id).collect();
            workers.push((grid.id, ids));
        }
        let count = env_number("EPIGRID_BENCH_TASKS", 20_000) as usize;
        let started = Instant::now();
        let tasks = seed_tasks(&households, &workers, count, Utc::now());
        store.insert_tasks_bulk(&tasks).await.unwrap();
        store.refresh_statistics().await.unwrap();
        eprintln!("[{backend}] {count} tasks inserted in {:.1} s", started.elapsed().as_secs_f64());
        let grid = households[0].path.grid.unwrap();
        let task = tasks[0].0.id;
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
        // The second page of the whole board: the cursor is the 50th id.
        let mut ids: Vec<Uuid> = tasks.iter().map(|(t, _)| t.id).collect();
        ids.sort_unstable();
        let second_page = format!("/tasks?cursor={}", ids[49]);
        (admin, base, grid, task, second_page, households, workers)
    });
    Some(Fixture {
        runtime,
        service,
        admin,
        base,
        grid,
        task,
        second_page,
        households,
        workers,
        _sqlite: sqlite,
        _postgres: postgres,
    })
}

const PAGES: &[&str] = &[
    "board",
    "board_second_page",
    "board_open_overdue",
    "board_grid",
    "board_category_state",
    "task_detail",
    "dashboard",
    "dashboard_overdue_map",
    "evaluation_by_worker",
    "evaluation_by_grid",
];

fn render(bencher: divan::Bencher, backend: &'static str, page: &str) {
    let Some(f) = fixture(backend) else {
        eprintln!("[{backend}] skipped: EPIGRID_TEST_PG is not set");
        return;
    };
    let path = match page {
        "board" => "/tasks".to_owned(),
        "board_second_page" => f.second_page.clone(),
        "board_open_overdue" => "/tasks?state=open&overdue=1".to_owned(),
        "board_grid" => format!("/tasks?grid={}", f.grid),
        "board_category_state" => "/tasks?state=dispatched&category=fever_follow_up".to_owned(),
        "task_detail" => format!("/tasks/{}", f.task),
        "dashboard" => "/".to_owned(),
        "dashboard_overdue_map" => "/?measure=overdue_tasks".to_owned(),
        "evaluation_by_worker" => "/evaluation?group=worker".to_owned(),
        "evaluation_by_grid" => "/evaluation?group=grid".to_owned(),
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
fn sqlite_page(bencher: divan::Bencher, page: &str) {
    render(bencher, "sqlite", page);
}

#[divan::bench(args = PAGES, sample_count = 20, sample_size = 1)]
fn postgres_page(bencher: divan::Bencher, page: &str) {
    render(bencher, "postgres", page);
}

fn escalation(bencher: divan::Bencher, backend: &'static str) {
    let Some(f) = fixture(backend) else {
        eprintln!("[{backend}] skipped: EPIGRID_TEST_PG is not set");
        return;
    };
    let mut round = 0usize;
    bencher
        .with_inputs(|| {
            // Untimed: tasks whose deadline passed a minute ago.
            round += 1;
            let now = Utc::now();
            let batch: Vec<_> = (0..NEWLY_OVERDUE)
                .map(|i| {
                    let k = round * NEWLY_OVERDUE + i;
                    let household = &f.households[(k * 7) % f.households.len()];
                    let state = STATES[k % STATES.len()];
                    let assignee = assignee_for(household, &f.workers, k, state);
                    task(
                        household,
                        state,
                        Priority::Normal,
                        assignee,
                        now - TimeDelta::minutes(1),
                        0,
                        now,
                    )
                })
                .collect();
            f.runtime.block_on(f.service.store().insert_tasks_bulk(&batch)).unwrap();
        })
        .bench_local_values(|()| {
            let counts = f.runtime.block_on(f.service.escalation_pass(Utc::now())).unwrap();
            assert!(counts.to_grid_leader as usize >= NEWLY_OVERDUE, "{counts:?}");
            counts
        });
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn sqlite_escalation_pass(bencher: divan::Bencher) {
    escalation(bencher, "sqlite");
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn postgres_escalation_pass(bencher: divan::Bencher) {
    escalation(bencher, "postgres");
}

/// The dashboard's one grouped query on its own (the whole sub-district),
/// to tell its share of the dashboard's time from the resident figures.
fn figures(bencher: divan::Bencher, backend: &'static str) {
    let Some(f) = fixture(backend) else {
        eprintln!("[{backend}] skipped: EPIGRID_TEST_PG is not set");
        return;
    };
    bencher.bench_local(|| {
        let now = Utc::now();
        f.runtime
            .block_on(f.service.store().grid_task_figures(None, now, now - TimeDelta::hours(8)))
            .unwrap()
    });
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn sqlite_dashboard_task_figures(bencher: divan::Bencher) {
    figures(bencher, "sqlite");
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn postgres_dashboard_task_figures(bencher: divan::Bencher) {
    figures(bencher, "postgres");
}
