//! The grid worker's phone: "my tasks" in urgency order, accepting and
//! handling with idempotency keys (a queue replaying a step five times
//! applies it once), photos with their limits, door-to-door visits, the
//! audited call link, and scope: another grid's task is not found.

use base64::Engine;
use epigrid_domain::tasks::{Priority, Subject, Transition};
use epigrid_service::chrono::TimeDelta;
use epigrid_service::photos::PhotoSettings;
use epigrid_service::tasks::{ReportEvent, TaskView, TransitionRequest};
use epigrid_service::{Actor, Service, Settings};
use epigrid_store::{AuditQuery, TaskHistoryRecord};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{App, WORKER_A, WORKER_B};

/// The smallest valid PNG (1×1, transparent).
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A task about `subject`, reported, verified and filed by the system, so
/// it is dispatched to the grid's worker.
async fn dispatched(
    service: &Service,
    category: &str,
    priority: Priority,
    subject: Subject,
) -> TaskView {
    let system = Actor::system();
    let task = service
        .report_event(
            &system,
            ReportEvent {
                category: category.into(),
                priority: Some(priority),
                subject,
                note: None,
                idempotency_key: None,
            },
        )
        .await
        .unwrap();
    let mut last = None;
    for transition in [Transition::Verify, Transition::File] {
        let request = TransitionRequest { transition, note: None, idempotency_key: None };
        last = Some(service.transition_task(&system, task.id, request).await.unwrap().task);
    }
    last.unwrap()
}

/// Moves a task's stage deadline into the past, as time passing would.
async fn make_overdue(service: &Service, id: Uuid) {
    let store = service.store();
    let task = store.get_task(id).await.unwrap().unwrap();
    let mut late = task.clone();
    late.stage_deadline = Some(task.stage_started_at.unwrap() - TimeDelta::minutes(1));
    late.version += 1;
    let step = TaskHistoryRecord {
        id: Uuid::now_v7(),
        task_id: id,
        community_id: task.path.community.unwrap(),
        transition: "escalate".into(),
        from_state: Some(task.state),
        to_state: task.state,
        actor_account_id: None,
        actor_name: "system".into(),
        at: task.updated_at,
        note: None,
        idempotency_key: None,
    };
    store.apply_task_step(&late, task.version, &step).await.unwrap();
}

/// Every task (`TaskQuery::default()` pages one at a time).
fn all_tasks() -> epigrid_store::TaskQuery {
    epigrid_store::TaskQuery { limit: 100, ..Default::default() }
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn history(service: &Service, id: Uuid) -> Vec<String> {
    service.store().list_task_history(id).await.unwrap().into_iter().map(|h| h.transition).collect()
}

#[tokio::test]
async fn my_tasks_come_overdue_first_then_by_priority_with_address_and_masked_contact() {
    let app = App::spawn().await;
    let household = Subject::Household(app.seed.household_a);
    let low = dispatched(&app.service, "help_request", Priority::Low, household).await;
    let urgent = dispatched(&app.service, "fever_follow_up", Priority::Urgent, household).await;
    let normal = dispatched(&app.service, "door_to_door_check", Priority::Normal, household).await;
    let late_low = dispatched(
        &app.service,
        "help_request",
        Priority::Low,
        Subject::Resident(app.seed.resident_a),
    )
    .await;
    make_overdue(&app.service, late_low.id).await;
    // Another grid's task is not in worker A's list.
    dispatched(
        &app.service,
        "help_request",
        Priority::Urgent,
        Subject::Household(app.seed.household_b),
    )
    .await;

    let worker = app.login(WORKER_A).await;
    let (status, body) =
        json_of(worker.get(app.url("/api/v1/field-tasks")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|i| i["task"]["id"].as_str().unwrap()).collect();
    let expected: Vec<String> =
        [late_low.id, urgent.id, normal.id, low.id].iter().map(Uuid::to_string).collect();
    assert_eq!(ids, expected, "overdue, then urgent, normal, low");
    assert_eq!(items[0]["task"]["overdue"], true);
    assert_eq!(items[1]["address"], "1号楼 1单元 101");
    assert_eq!(items[1]["contact"]["name"], "王秀英", "the head of the household");
    assert_eq!(items[1]["contact"]["phone_masked"], "138****8000");
    assert!(!body.to_string().contains("13800138000"), "no clear phone in the list");

    // The phone page lists them in the same order, with a call button and
    // the offline script.
    let page = worker.get(app.url("/m/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["cache-control"].to_str().unwrap().contains("private"));
    let html = page.text().await.unwrap();
    let positions: Vec<usize> =
        expected.iter().map(|id| html.find(&format!("/m/tasks/{id}\"")).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "page order {positions:?}");
    assert!(
        html.contains("我的今日任务")
            && html.contains("1号楼 1单元 101")
            && html.contains("138****8000")
    );
    assert!(html.contains("/static/offline.js") && html.contains("name=\"csrf-token\""));
    assert!(!html.contains("13800138000"));
    // Their grid's reporting today, and the way to its "not reported" list.
    let grid = app.seed.grid_a;
    assert!(
        html.contains(&format!("id=\"reporting-{grid}\" href=\"/grids/{grid}/unreported\"")),
        "{html}"
    );
    assert!(html.contains("今日填报 0.0%（0/2 人）"), "{html}");
}

#[tokio::test]
async fn accept_and_handle_replayed_five_times_apply_once() {
    let app = App::spawn().await;
    let task = dispatched(
        &app.service,
        "fever_follow_up",
        Priority::High,
        Subject::Household(app.seed.household_a),
    )
    .await;
    let worker = app.login(WORKER_A).await;
    let url = app.url(&format!("/api/v1/tasks/{}/transitions", task.id));
    for (kind, key, note) in
        [("accept", "accept-v3", None), ("report_handled", "7d1c0f5e-handled", Some("体温正常"))]
    {
        for attempt in 0..5 {
            let mut body = json!({ "transition": { "kind": kind } });
            if let Some(note) = note {
                body["note"] = json!(note);
            }
            let (status, answer) = json_of(
                worker.post(&url).header("Idempotency-Key", key).json(&body).send().await.unwrap(),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{kind} #{attempt}: {answer}");
            assert_eq!(answer["replayed"], attempt > 0, "{kind} #{attempt}");
        }
    }
    assert_eq!(
        history(&app.service, task.id).await,
        ["report", "verify", "file", "dispatch", "accept", "report_handled"],
        "each step once"
    );
    let stored = app.service.store().list_task_history(task.id).await.unwrap();
    assert_eq!(stored.last().unwrap().note.as_deref(), Some("体温正常"));
    let audited = app
        .service
        .store()
        .list_audit(&AuditQuery {
            action: Some("task.report_handled".into()),
            target_id: Some(task.id),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(audited.len(), 1, "audited once");

    // Without the CSRF token a cookie session cannot post.
    let session = app.session(WORKER_A, crate::support::PASSWORD).await;
    let bare = session.client(None, true);
    let response =
        bare.post(&url).json(&json!({ "transition": { "kind": "accept" } })).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn photos_are_checked_by_type_count_and_size_and_served_privately() {
    let settings = Settings {
        photos: PhotoSettings { max_bytes: 2_000, max_per_step: 3 },
        ..Settings::default()
    };
    let app = App::spawn_with(settings).await;
    let task = dispatched(
        &app.service,
        "quarantine_delivery",
        Priority::High,
        Subject::Household(app.seed.household_a),
    )
    .await;
    let worker = app.login(WORKER_A).await;
    let url = app.url(&format!("/api/v1/tasks/{}/transitions", task.id));
    let (status, _) = json_of(
        worker
            .post(&url)
            .json(&json!({ "transition": { "kind": "accept" } }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let handle = |photos: Vec<String>| json!({ "transition": { "kind": "report_handled" }, "note": "已送达", "photos": photos });

    // A GIF labelled as anything is still a GIF.
    let (status, body) = json_of(
        worker.post(&url).json(&handle(vec![b64(b"GIF89a\x01\0\x01\0")])).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "photo.unsupported_type");
    assert_eq!(body["error"]["field"], "photos[0]");
    assert_eq!(body["error"]["message"], "只能上传 JPEG、PNG 或 WebP 格式的照片");
    let (_, body) =
        json_of(worker.post(&url).json(&handle(vec![b64(PNG); 4])).send().await.unwrap()).await;
    assert_eq!(
        (body["error"]["code"].as_str(), body["error"]["field"].as_str()),
        (Some("photo.too_many"), Some("photos"))
    );
    let mut big = PNG.to_vec();
    big.resize(2_001, 0);
    let (_, body) =
        json_of(worker.post(&url).json(&handle(vec![b64(PNG), b64(&big)])).send().await.unwrap())
            .await;
    assert_eq!(
        (body["error"]["code"].as_str(), body["error"]["field"].as_str()),
        (Some("photo.too_large"), Some("photos[1]"))
    );
    let (_, body) =
        json_of(worker.post(&url).json(&handle(vec!["not base64!".into()])).send().await.unwrap())
            .await;
    assert_eq!(body["error"]["code"], "photo.bad_encoding");
    // A body beyond what three photos can need is refused before parsing.
    let huge =
        "A".repeat(PhotoSettings { max_bytes: 2_000, max_per_step: 3 }.max_request_bytes() + 10);
    let response = worker.post(&url).json(&handle(vec![huge])).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        history(&app.service, task.id).await.last().unwrap(),
        "accept",
        "nothing kept of refused steps"
    );

    // Other routes keep the 64 KiB limit.
    let padding = "x".repeat(70 * 1024);
    let response = worker
        .post(app.url("/api/v1/tasks"))
        .json(&json!({ "category": padding }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // A PNG and a JPEG (with a data: prefix, as FileReader makes) pass.
    let jpeg = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01";
    let photos = vec![b64(PNG), format!("data:image/jpeg;base64,{}", b64(jpeg))];
    let (status, body) =
        json_of(worker.post(&url).json(&handle(photos)).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, listed) = json_of(
        worker.get(app.url(&format!("/api/v1/tasks/{}/photos", task.id))).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["content_type"], "image/png");
    assert_eq!(items[1]["content_type"], "image/jpeg");
    let step = app.service.store().list_task_history(task.id).await.unwrap().pop().unwrap();
    assert_eq!(items[0]["history_id"], json!(step.id), "linked to the report_handled step");

    let photo_url = app.url(items[0]["url"].as_str().unwrap());
    let response = worker.get(&photo_url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert!(response.headers()["cache-control"].to_str().unwrap().starts_with("private"));
    assert_eq!(response.bytes().await.unwrap().as_ref(), PNG);
    // The task page shows them.
    let html = worker
        .get(app.url(&format!("/m/tasks/{}", task.id)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(items[0]["url"].as_str().unwrap()), "the photo on the task page");

    // Worker B's scope does not cover the task: everything about it is 404.
    let other = app.login(WORKER_B).await;
    assert_eq!(other.get(&photo_url).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    for path in [format!("/api/v1/tasks/{}/photos", task.id), format!("/m/tasks/{}", task.id)] {
        assert_eq!(
            other.get(app.url(&path)).send().await.unwrap().status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let (status, _) = json_of(
        other.post(&url).json(&json!({ "transition": { "kind": "accept" } })).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let contact =
        other.post(app.url(&format!("/api/v1/tasks/{}/contact", task.id))).send().await.unwrap();
    assert_eq!(contact.status(), StatusCode::NOT_FOUND);
    // A photo id under another task's path is not found either.
    let task_b = dispatched(
        &app.service,
        "help_request",
        Priority::Normal,
        Subject::Household(app.seed.household_b),
    )
    .await;
    let mixed = format!("/tasks/{}/photos/{}", task_b.id, items[0]["id"].as_str().unwrap());
    assert_eq!(other.get(app.url(&mixed)).send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_door_to_door_visit_is_recorded_once_and_only_in_scope() {
    let app = App::spawn().await;
    let worker = app.login(WORKER_A).await;
    let visit = json!({ "household_id": app.seed.household_a, "note": "家中二人，均无症状", "photos": [b64(PNG)] });
    let (status, first) = json_of(
        worker
            .post(app.url("/api/v1/visits"))
            .header("Idempotency-Key", "visit-1")
            .json(&visit)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["task"]["category"], "door_to_door_check");
    assert_eq!(first["task"]["state"], "handled_reported");
    let worker_a = app.service.store().get_user_by_username(WORKER_A).await.unwrap().unwrap();
    assert_eq!(first["task"]["assignee"], json!({ "kind": "worker", "account_id": worker_a.id }));
    let id = Uuid::parse_str(first["task"]["id"].as_str().unwrap()).unwrap();
    for _ in 0..3 {
        let (status, again) = json_of(
            worker
                .post(app.url("/api/v1/visits"))
                .header("Idempotency-Key", "visit-1")
                .json(&visit)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(again["task"]["id"], json!(id));
        assert_eq!(again["replayed"], true);
    }
    assert_eq!(
        history(&app.service, id).await,
        ["report", "verify", "file", "dispatch", "accept", "report_handled"]
    );
    assert_eq!(app.service.store().list_task_photos(id).await.unwrap().len(), 1);
    let tasks = app.service.store().list_tasks(&all_tasks()).await.unwrap();
    assert_eq!(tasks.len(), 1, "one visit, one task");

    // Another grid's household is not found, and nothing is created.
    let (status, _) = json_of(
        worker
            .post(app.url("/api/v1/visits"))
            .json(&json!({ "household_id": app.seed.household_b }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(app.service.store().list_tasks(&all_tasks()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_call_link_reveals_the_contacts_phone_to_the_assignee_and_audits_it() {
    let app = App::spawn().await;
    let task = dispatched(
        &app.service,
        "fever_follow_up",
        Priority::Urgent,
        Subject::Household(app.seed.household_a),
    )
    .await;
    let worker = app.login(WORKER_A).await;
    let response =
        worker.post(app.url(&format!("/api/v1/tasks/{}/contact", task.id))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let contact: Value = response.json().await.unwrap();
    assert_eq!(
        (contact["name"].as_str(), contact["phone"].as_str()),
        (Some("王秀英"), Some("13800138000"))
    );
    let entries = app
        .service
        .store()
        .list_audit(&AuditQuery {
            action: Some("resident.unmask".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    let detail: Value = serde_json::from_str(&entries[0].detail).unwrap();
    assert_eq!(
        (detail["field"].as_str(), detail["reason"].as_str()),
        (Some("phone"), Some("task_contact"))
    );
    assert_eq!(entries[0].target_id, Some(app.seed.resident_a));
    assert_eq!(entries[0].actor_name, WORKER_A);

    // The page form gives a tel: link, never cached.
    let page = worker
        .post(app.url(&format!("/m/tasks/{}/call", task.id)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert!(page.text().await.unwrap().contains("href=\"tel:13800138000\""));

    // Once handled, the worker no longer holds an open task: no number.
    let url = app.url(&format!("/api/v1/tasks/{}/transitions", task.id));
    for kind in ["accept", "report_handled"] {
        let (status, _) = json_of(
            worker
                .post(&url)
                .json(&json!({ "transition": { "kind": kind } }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let refused =
        worker.post(app.url(&format!("/api/v1/tasks/{}/contact", task.id))).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_phone_pages_work_without_the_script_and_serve_the_worker() {
    let app = App::spawn().await;
    let task = dispatched(
        &app.service,
        "help_request",
        Priority::Normal,
        Subject::Household(app.seed.household_a),
    )
    .await;
    let worker = app.login_no_redirect(WORKER_A).await;
    // Handling a task not yet accepted accepts it first.
    let response = crate::support::post_form(
        &worker,
        &app,
        &format!("/m/tasks/{}/handle", task.id),
        &[("note", "已上门"), ("accept_key", "accept-v3"), ("handle_key", "handled-v3")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(history(&app.service, task.id).await[4..], ["accept", "report_handled"]);
    // A second press of the same form (same keys) changes nothing.
    let again = crate::support::post_form(
        &worker,
        &app,
        &format!("/m/tasks/{}/handle", task.id),
        &[("note", "已上门"), ("accept_key", "accept-v3"), ("handle_key", "handled-v3")],
    )
    .await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    // A visit posted twice from the same rendered form is one visit.
    for _ in 0..2 {
        let response = crate::support::post_form(
            &worker,
            &app,
            "/m/visits",
            &[
                ("household_id", &app.seed.household_a.to_string()),
                ("note", "走访"),
                ("idempotency_key", "form-7"),
            ],
        )
        .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    assert_eq!(app.service.store().list_tasks(&all_tasks()).await.unwrap().len(), 2);

    let sw = worker.get(app.url("/m/sw.js")).send().await.unwrap();
    assert_eq!(sw.status(), StatusCode::OK);
    assert!(sw.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    let text = sw.text().await.unwrap();
    assert!(!text.contains("__VERSION__"), "the cache version is filled in");
    let script = worker.get(app.url("/static/offline.js")).send().await.unwrap();
    assert!(script.text().await.unwrap().contains("Idempotency-Key"));
    // The office pages link to the phone pages for a worker.
    let home =
        app.login(WORKER_A).await.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("href=\"/m/\""), "a link to /m/ in the header");
    // Without a session: to the login page.
    let anonymous =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = anonymous.get(app.url("/m/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_visit_cut_off_halfway_is_finished_by_its_replay() {
    let app = App::spawn().await;
    let worker = app.service.store().get_user_by_username(WORKER_A).await.unwrap().unwrap();
    let actor = Actor {
        user_id: Some(worker.id),
        username: worker.username.clone(),
        role: worker.role,
        scope: Some(worker.scope),
        client_addr: None,
    };
    // The first attempt got as far as reporting and verifying (the answer
    // was lost, or the server stopped), as `record_visit` would have.
    let reported = app
        .service
        .report_event(
            &actor,
            ReportEvent {
                category: "door_to_door_check".into(),
                priority: None,
                subject: Subject::Household(app.seed.household_a),
                note: None,
                idempotency_key: Some("visit:cut-off".into()),
            },
        )
        .await
        .unwrap();
    let verify = TransitionRequest {
        transition: Transition::Verify,
        note: None,
        idempotency_key: Some("visit-verify".into()),
    };
    app.service.transition_task(&Actor::system(), reported.id, verify).await.unwrap();

    let client = app.login(WORKER_A).await;
    let body = json!({ "household_id": app.seed.household_a, "note": "补录" });
    let (status, answer) = json_of(
        client
            .post(app.url("/api/v1/visits"))
            .header("Idempotency-Key", "cut-off")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "the rest was applied: {answer}");
    assert_eq!(answer["task"]["id"], json!(reported.id), "the same visit, not a second");
    assert_eq!(answer["task"]["state"], "handled_reported");
    assert_eq!(
        history(&app.service, reported.id).await,
        ["report", "verify", "file", "dispatch", "accept", "report_handled"]
    );
    assert_eq!(app.service.store().list_tasks(&all_tasks()).await.unwrap().len(), 1);
}
