//! The grid worker's phone pages without signal, in real Chromium at 360 px:
//! the worker opens "my tasks", the network goes (the server stops), the
//! worker marks two tasks handled (the page says two are waiting), the page
//! is reloaded from the service worker while the server is still down, and
//! when a server comes back on the same port and database the queue drains
//! and the server holds each action exactly once.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use epigrid_domain::tasks::{EventState, Priority, Subject, Transition};
use epigrid_domain::{AreaKind, Relation, Role};
use epigrid_service::accounts::NewUser;
use epigrid_service::registry::{NewArea, NewHousehold, NewResident};
use epigrid_service::tasks::{ReportEvent, TransitionRequest};
use epigrid_service::{Actor, FieldCipher, SecretKey, Service, Settings};
use serde_json::Value;
use uuid::Uuid;

use crate::support::{Browser, ONE_BROWSER, PHONE, chromedriver, serve, with_browser};

const WORKER: &str = "wang_grid";
/// The smallest valid PNG (1×1, transparent).
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";
const PASSWORD: &str = "stairwell-basement-7";

/// The app served on a fixed address, which can be stopped and started
/// again on the same port over the same store (the same `Service`).
struct Server {
    service: Service,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    async fn start(service: Service, addr: SocketAddr) -> Server {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("rebinding {addr}: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot bind {addr} again: {e}"),
            }
        };
        let addr = listener.local_addr().unwrap();
        let (tx, task) = serve(listener, service.clone());
        Server { service, addr, shutdown: Some(tx), task: Some(task) }
    }

    /// Stops serving and waits until every connection is closed, so that
    /// nothing of this server answers any more.
    async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("the server stops within 15 s")
                .unwrap();
        }
    }
}

struct Seed {
    service: Service,
    tasks: Vec<Uuid>,
}

/// One grid with three households and a worker, and three tasks about
/// those households dispatched to the worker.
async fn seed() -> (Seed, epigrid_testkit::TempGuard) {
    let (store, guard) = epigrid_testkit::fresh_sqlite().await;
    let key = SecretKey::from_hex(&SecretKey::generate_hex()).unwrap();
    let service = Service::new(store, FieldCipher::new(&key), Settings::default());
    let system = Actor::system();
    let area = |kind, parent, code: Option<&str>, name: &str| {
        let boundary = matches!(kind, AreaKind::Community | AreaKind::Grid).then(|| {
            serde_json::json!({ "type": "Polygon", "coordinates": [[[117.97, 37.37], [117.99, 37.37], [117.99, 37.39], [117.97, 37.37]]] })
        });
        service.create_area(
            &system,
            NewArea {
                kind,
                parent_id: parent,
                code: code.map(str::to_owned),
                name: name.to_owned(),
                grid_kind: None,
                boundary,
                address: None,
            },
        )
    };
    let sub = area(AreaKind::SubDistrict, None, Some("371602001"), "市中街道").await.unwrap().id;
    let community =
        area(AreaKind::Community, Some(sub), Some("371602001001"), "黄河社区").await.unwrap().id;
    let grid =
        area(AreaKind::Grid, Some(community), Some("37160200100101"), "第一网格").await.unwrap().id;
    let building = area(AreaKind::Building, Some(grid), None, "3号楼").await.unwrap().id;
    let unit = area(AreaKind::Unit, Some(building), None, "2单元").await.unwrap().id;
    service
        .create_user(
            &system,
            NewUser {
                username: WORKER.into(),
                display_name: "王网格".into(),
                phone: None,
                password: PASSWORD.into(),
                role: Role::GridWorker,
                scope_area_id: grid,
            },
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for (room, name, phone, category) in [
        ("201", "赵桂兰", "13800138001", "fever_follow_up"),
        ("202", "钱志强", "13800138002", "quarantine_delivery"),
        ("203", "孙丽", "13800138003", "door_to_door_check"),
    ] {
        let household = service
            .create_household(&system, NewHousehold { unit_id: unit, room: room.into() })
            .await
            .unwrap()
            .id;
        service
            .create_resident(
                &system,
                NewResident {
                    household_id: household,
                    name: name.into(),
                    sex: Some(epigrid_domain::Sex::Female),
                    birth_date: epigrid_service::chrono::NaiveDate::from_ymd_opt(1960, 5, 1),
                    id_number: None,
                    phone: Some(phone.into()),
                    relation: Relation::Head,
                    floating: false,
                    arrived_on: None,
                    origin: None,
                    tags: Vec::new(),
                },
            )
            .await
            .unwrap();
        let task = service
            .report_event(
                &system,
                ReportEvent {
                    category: category.into(),
                    priority: Some(Priority::High),
                    subject: Subject::Household(household),
                    note: None,
                    idempotency_key: None,
                },
            )
            .await
            .unwrap();
        for transition in [Transition::Verify, Transition::File] {
            let request = TransitionRequest { transition, note: None, idempotency_key: None };
            service.transition_task(&system, task.id, request).await.unwrap();
        }
        tasks.push(task.id);
    }
    (Seed { service, tasks }, guard)
}

/// Runs `script` (which may return a promise) until it returns `true`.
async fn wait_for(browser: &Browser, what: &str, script: &str) {
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut last = Value::Null;
    loop {
        // A page being replaced may fail the script: try again.
        if let Ok(value) = browser.client.execute(script, vec![]).await {
            if value == Value::Bool(true) {
                return;
            }
            last = value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what} (last: {last})");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn sync_text(browser: &Browser) -> String {
    let value = browser
        .client
        .execute(
            "const s = document.getElementById('sync-status'); \
             return s && !s.hidden ? document.getElementById('sync-text').textContent : '';",
            vec![],
        )
        .await
        .unwrap();
    value.as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_handles_two_tasks_offline_and_the_queue_drains_once() {
    let Some(driver) = chromedriver() else {
        return;
    };
    let _one = ONE_BROWSER.lock().await;
    let (seed, _guard) = seed().await;
    let server = Server::start(seed.service.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let origin = format!("http://{}", server.addr);
    let tasks = seed.tasks.clone();
    let service = seed.service.clone();
    let server = std::sync::Arc::new(tokio::sync::Mutex::new(server));
    let control = server.clone();
    with_browser(&driver, &origin, PHONE, move |browser| async move {
        // 1. The worker logs in and opens "my tasks".
        browser.goto("/login?next=/m/").await;
        let page = browser.log_in(WORKER, PASSWORD).await;
        assert!(page.href.ends_with("/m/"), "on the phone list after login, not {}", page.href);
        assert_eq!(browser.find_all("ul#tasks > li.m-task").await.len(), 3, "three tasks");
        let title = browser.text("h1").await;
        assert_eq!(title, "我的今日任务");
        // The service worker takes the page and keeps it, its assets and
        // each task's page.
        wait_for(
            &browser,
            "the service worker to control the page",
            "return navigator.serviceWorker.ready.then(() => !!navigator.serviceWorker.controller);",
        )
        .await;
        let kept = tasks.iter().map(|id| format!("'/m/tasks/{id}'")).collect::<Vec<_>>().join(", ");
        wait_for(
            &browser,
            "the pages to be kept for offline use",
            &format!(
                "return caches.open('epigrid-m-pages').then(c => Promise.all(['/m/', {kept}].map(u => c.match(u)))).then(r => r.every(Boolean));"
            ),
        )
        .await;
        browser.screenshot("m-tasks-360").await;

        // 2. The network goes: the server stops.
        control.lock().await.stop().await;
        wait_for(
            &browser,
            "the server to be unreachable",
            "return fetch('/healthz', {cache: 'no-store'}).then(() => false, () => true);",
        )
        .await;

        // 3. The worker marks two tasks handled, with notes.
        for (i, id) in tasks[..2].iter().enumerate() {
            browser.fill(&format!("#note-{id}"), &format!("已上门，情况正常 {i}")).await;
            browser.find(&format!("#task-{id} button.m-handle")).await.click().await.unwrap();
        }
        wait_for(
            &browser,
            "two actions waiting",
            "return document.getElementById('sync-status').dataset.count === '2';",
        )
        .await;
        let waiting = sync_text(&browser).await;
        assert_eq!(waiting, "待同步 2 项", "the page says what is waiting");
        for id in &tasks[..2] {
            let label = browser.find(&format!("#task-{id} .m-queued-label")).await;
            assert!(label.is_displayed().await.unwrap(), "task {id} marked as waiting");
        }
        browser.screenshot("m-tasks-offline-360").await;

        // 4. Reloading with the server still down: the service worker
        // serves the page, and the queue is still there.
        let page = browser.goto("/m/").await;
        assert!(page.href.ends_with("/m/"), "{}", page.href);
        assert_eq!(browser.find_all("ul#tasks > li.m-task").await.len(), 3);
        wait_for(
            &browser,
            "the waiting count after the reload",
            "return document.getElementById('sync-status').dataset.count === '2';",
        )
        .await;
        assert_eq!(sync_text(&browser).await, "待同步 2 项");
        // A task page kept while online opens too, and a door-to-door
        // visit with a photo is queued from it: the photo waits in
        // IndexedDB as a Blob.
        browser.goto(&format!("/m/tasks/{}", tasks[2])).await;
        browser.fill("#visit-note", "入户走访：三人在家，无发热").await;
        let photo = std::env::temp_dir().join(format!("epigrid-visit-{}.png", Uuid::now_v7()));
        std::fs::write(&photo, PNG).unwrap();
        browser.find("#visit-photos").await.send_keys(photo.to_str().unwrap()).await.unwrap();
        browser.find("#visit-form button[type=submit]").await.click().await.unwrap();
        wait_for(
            &browser,
            "three actions waiting",
            "return document.getElementById('sync-status').dataset.count === '3';",
        )
        .await;
        assert_eq!(sync_text(&browser).await, "待同步 3 项");
        for id in &tasks[..2] {
            let history = service.store().list_task_history(*id).await.unwrap();
            assert_eq!(history.len(), 4, "nothing reached the server while it was down");
        }

        // 5. The network is back: a server on the same port and database.
        let restarted = {
            let mut guard = control.lock().await;
            let addr = guard.addr;
            let service = guard.service.clone();
            *guard = Server::start(service, addr).await;
            guard.addr
        };
        assert_eq!(format!("http://{restarted}"), browser.origin);
        browser.goto("/m/").await;
        wait_for(
            &browser,
            "the queue to drain",
            "return window.EpigridQueue ? window.EpigridQueue.pending().then(n => n === 0) : false;",
        )
        .await;
        // After syncing the page shows the server's state: both tasks are
        // reported handled, the third still to do.
        wait_for(
            &browser,
            "the fresh list",
            "return document.querySelectorAll('ul#tasks > li.m-task').length === 1 && \
             document.querySelectorAll('#handled li').length === 3;",
        )
        .await;
        browser.screenshot("m-tasks-synced-360").await;

        // A refused action (the task is not in a state to be closed, and not
        // the worker's to close) is shown, kept on screen across a reload
        // until tapped away, and not sent again.
        let third_id = tasks[2];
        browser
            .client
            .execute(
                &format!(
                    "return window.EpigridQueue.enqueue({{url: '/api/v1/tasks/{third_id}/transitions', \
                     body: {{transition: {{kind: 'close'}}}}, label: '结案'}}).then(() => true);"
                ),
                vec![],
            )
            .await
            .unwrap();
        let refused = "return [...document.querySelectorAll('#sync-failures li')]\
            .some(li => li.textContent.includes('任务当前状态下不能进行这一步'));";
        wait_for(&browser, "the refusal on screen", refused).await;
        wait_for(
            &browser,
            "the refused action to leave the queue",
            "return window.EpigridQueue.pending().then(n => n === 0);",
        )
        .await;
        browser.goto("/m/").await;
        wait_for(&browser, "the refusal still on screen after a reload", refused).await;
        browser.find("#sync-failures li").await.click().await.unwrap();
        wait_for(
            &browser,
            "the refusal to be tapped away",
            "return document.querySelectorAll('#sync-failures li').length === 0;",
        )
        .await;

        // 6. The server has each action exactly once.
        for (i, id) in tasks[..2].iter().enumerate() {
            let history = service.store().list_task_history(*id).await.unwrap();
            let steps: Vec<&str> = history.iter().map(|h| h.transition.as_str()).collect();
            assert_eq!(steps, ["report", "verify", "file", "dispatch", "accept", "report_handled"]);
            assert_eq!(
                history.last().unwrap().note.as_deref(),
                Some(format!("已上门，情况正常 {i}").as_str())
            );
            let task = service.store().get_task(*id).await.unwrap().unwrap();
            assert_eq!(task.state, EventState::HandledReported);
        }
        let third = service.store().get_task(tasks[2]).await.unwrap().unwrap();
        assert_eq!(third.state, EventState::Dispatched, "the third task was not touched");
        assert_eq!(service.store().list_task_history(tasks[2]).await.unwrap().len(), 4);
        // The visit: one new door-to-door task, handled, with the photo.
        let all = service
            .store()
            .list_tasks(&epigrid_store::TaskQuery { limit: 100, ..Default::default() })
            .await
            .unwrap();
        let visits: Vec<_> = all.iter().filter(|t| !tasks.contains(&t.id)).collect();
        assert_eq!(visits.len(), 1, "one visit recorded");
        assert_eq!(visits[0].category, "door_to_door_check");
        assert_eq!(visits[0].subject_id, third.subject_id, "the household of the task page");
        assert_eq!(visits[0].state, EventState::HandledReported);
        let photos = service.store().list_task_photos(visits[0].id).await.unwrap();
        assert_eq!(photos.len(), 1);
        let stored = service.store().get_task_photo(photos[0].id).await.unwrap().unwrap();
        assert_eq!((stored.content_type.as_str(), stored.data.as_slice()), ("image/png", PNG));
        let _ = std::fs::remove_file(&photo);
        browser.finish();
    })
    .await;
    server.lock().await.stop().await;
}
