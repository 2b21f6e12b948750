//! The closed loop through the API and the service: report, verify, file,
//! automatic dispatch, scope, illegal steps, idempotent replays, fair
//! dispatch with overload to the reserve pool, and escalation that survives
//! a restart.

use std::collections::BTreeMap;

use epigrid_domain::Role;
use epigrid_domain::tasks::{Assignee, EventState, Priority, Reason, Subject, Transition};
use epigrid_service::accounts::NewUser;
use epigrid_service::chrono::{SecondsFormat, TimeDelta, Utc};
use epigrid_service::tasks::{ReportEvent, TransitionRequest};
use epigrid_service::{Actor, Service, Settings};
use epigrid_store::AuditQuery;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{ADMIN, App, PASSWORD, WORKER_A, WORKER_B};

async fn status_and_body(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn step(client: &reqwest::Client, app: &App, id: &str, body: Value) -> (StatusCode, Value) {
    let url = app.url(&format!("/api/v1/tasks/{id}/transitions"));
    status_and_body(client.post(url).json(&body).send().await.unwrap()).await
}

#[tokio::test]
async fn a_reported_task_is_filed_and_dispatched_to_the_grids_worker() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let (status, task) = status_and_body(
        admin
            .post(app.url("/api/v1/tasks"))
            .json(&json!({
                "category": "fever_follow_up",
                "subject": { "kind": "household", "id": app.seed.household_a },
                "note": "邻居反映发热",
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    assert_eq!(task["state"], "reported");
    assert_eq!(task["grid_id"], json!(app.seed.grid_a));
    assert!(task["stage_deadline"].is_string());
    let id = task["id"].as_str().unwrap().to_owned();

    for kind in ["verify", "file"] {
        let (status, body) =
            step(&admin, &app, &id, json!({ "transition": { "kind": kind } })).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {body}");
    }
    let (_, detail) =
        status_and_body(admin.get(app.url(&format!("/api/v1/tasks/{id}"))).send().await.unwrap())
            .await;
    assert_eq!(detail["task"]["state"], "dispatched", "{detail}");
    let worker_a_id = app.service.store().get_user_by_username(WORKER_A).await.unwrap().unwrap().id;
    assert_eq!(detail["task"]["assignee"], json!({ "kind": "worker", "account_id": worker_a_id }));
    let steps: Vec<&str> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["transition"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["report", "verify", "file", "dispatch"]);

    // Worker A has it in "my tasks"; worker B cannot see it at all.
    let worker_a = app.login(WORKER_A).await;
    let (_, mine) =
        status_and_body(worker_a.get(app.url("/api/v1/my-tasks")).send().await.unwrap()).await;
    assert_eq!(mine["items"][0]["id"], json!(id), "{mine}");
    let worker_b = app.login(WORKER_B).await;
    let (status, body) = status_and_body(
        worker_b.get(app.url(&format!("/api/v1/tasks/{id}"))).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) =
        step(&worker_b, &app, &id, json!({ "transition": { "kind": "accept" } })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, board) =
        status_and_body(worker_b.get(app.url("/api/v1/tasks")).send().await.unwrap()).await;
    assert_eq!(board["items"], json!([]));

    // An illegal step is refused with its code; the assignee works it.
    let (status, body) =
        step(&worker_a, &app, &id, json!({ "transition": { "kind": "close" } })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "task.illegal_transition");
    for kind in ["accept", "report_handled"] {
        let (status, body) =
            step(&worker_a, &app, &id, json!({ "transition": { "kind": kind } })).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {body}");
    }
    // Nobody checks their own work, and a worker does not close.
    let (status, _) =
        step(&worker_a, &app, &id, json!({ "transition": { "kind": "close" } })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) =
        step(&admin, &app, &id, json!({ "transition": { "kind": "close" } })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["task"]["state"], "closed");

    let (status, board) = status_and_body(
        admin
            .get(app.url("/api/v1/tasks?state=closed&category=fever_follow_up"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(board["items"].as_array().unwrap().len(), 1);
    let from = (Utc::now() - TimeDelta::days(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let to = (Utc::now() + TimeDelta::days(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let (status, evaluation) = status_and_body(
        admin
            .get(app.url(&format!("/api/v1/evaluation?from={from}&to={to}&group_by=worker")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{evaluation}");
    assert_eq!(evaluation["rows"][0]["group_id"], json!(worker_a_id), "{evaluation}");
    assert_eq!(evaluation["rows"][0]["metrics"]["handled"], 1, "{evaluation}");
}

#[tokio::test]
async fn a_replayed_transition_applies_once() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let (_, task) = status_and_body(
        admin
            .post(app.url("/api/v1/tasks"))
            .header("Idempotency-Key", "report-7")
            .json(&json!({ "category": "help_request", "subject": { "kind": "area", "id": app.seed.grid_b } }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let id = task["id"].as_str().unwrap().to_owned();
    // The same report again is the same task.
    let (status, again) = status_and_body(
        admin
            .post(app.url("/api/v1/tasks"))
            .header("Idempotency-Key", "report-7")
            .json(&json!({ "category": "help_request", "subject": { "kind": "area", "id": app.seed.grid_b } }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["id"], json!(id));

    let body = json!({ "transition": { "kind": "verify" }, "idempotency_key": "k-verify" });
    let (status, first) = step(&admin, &app, &id, body.clone()).await;
    assert_eq!((status, &first["replayed"]), (StatusCode::OK, &json!(false)), "{first}");
    let (status, second) = step(&admin, &app, &id, body.clone()).await;
    assert_eq!((status, &second["replayed"]), (StatusCode::OK, &json!(true)), "{second}");
    // Also by header, and after the task has moved on.
    let url = app.url(&format!("/api/v1/tasks/{id}/transitions"));
    let by_header = admin
        .post(&url)
        .header("Idempotency-Key", "k-file")
        .json(&json!({ "transition": { "kind": "file" } }));
    assert_eq!(by_header.send().await.unwrap().status(), StatusCode::OK);
    let (status, third) = step(&admin, &app, &id, body).await;
    assert_eq!((status, &third["replayed"]), (StatusCode::OK, &json!(true)), "{third}");
    let replay = admin
        .post(&url)
        .header("Idempotency-Key", "k-file")
        .json(&json!({ "transition": { "kind": "file" } }));
    assert_eq!(replay.send().await.unwrap().status(), StatusCode::OK);

    let id = Uuid::parse_str(&id).unwrap();
    let history = app.service.store().list_task_history(id).await.unwrap();
    let steps: Vec<&str> = history.iter().map(|h| h.transition.as_str()).collect();
    assert_eq!(steps, ["report", "verify", "file", "dispatch"]);
    let tasks = app.service.store().list_tasks(&Default::default()).await.unwrap();
    assert_eq!(tasks.len(), 1, "the replayed report made no second task");
}

/// Reports, verifies and files a normal-priority task about grid A as the
/// system, so it is dispatched automatically.
async fn filed_task(service: &Service, grid: Uuid) -> epigrid_service::tasks::TaskView {
    let system = Actor::system();
    let task = service
        .report_event(
            &system,
            ReportEvent {
                category: "door_to_door_check".into(),
                priority: Some(Priority::Normal),
                subject: Subject::Area(grid),
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

#[tokio::test]
async fn dispatch_is_fair_and_overload_goes_to_the_reserve_pool() {
    let app = App::spawn().await;
    let system = Actor::system();
    for name in ["worker_a2", "worker_a3"] {
        let new = NewUser {
            username: name.into(),
            display_name: name.into(),
            phone: None,
            password: PASSWORD.into(),
            role: Role::GridWorker,
            scope_area_id: app.seed.grid_a,
        };
        app.service.create_user(&system, new).await.unwrap();
    }
    let mut loads: BTreeMap<Uuid, u32> = BTreeMap::new();
    for _ in 0..30 {
        let task = filed_task(&app.service, app.seed.grid_a).await;
        assert_eq!(task.state, EventState::Dispatched);
        match task.assignee {
            Some(Assignee::Worker { account_id }) => *loads.entry(account_id).or_default() += 1,
            other => panic!("dispatched to {other:?}"),
        }
    }
    assert_eq!(loads.len(), 3, "{loads:?}");
    let (min, max) = (loads.values().min().unwrap(), loads.values().max().unwrap());
    assert!(max - min <= 1, "{loads:?}");

    // Ten normal tasks each (weight 2) reach the default threshold of 20.
    let task = filed_task(&app.service, app.seed.grid_a).await;
    assert_eq!(task.assignee, Some(Assignee::ReservePool { community_id: app.seed.community }));
    // A supervisor reassigns from the pool, with a reason.
    let worker_b = app.service.store().get_user_by_username(WORKER_B).await.unwrap().unwrap();
    let request = TransitionRequest {
        transition: Transition::Reassign {
            to: Assignee::Worker { account_id: worker_b.id },
            reason: Reason::parse("网格员满负荷，调往邻近网格").unwrap(),
        },
        note: None,
        idempotency_key: None,
    };
    let moved = app.service.transition_task(&system, task.id, request).await;
    // The system may not reassign: that is a supervisor's decision.
    assert!(matches!(moved, Err(epigrid_service::ServiceError::Forbidden)), "{moved:?}");
    let admin = app.service.store().get_user_by_username(ADMIN).await.unwrap().unwrap();
    let supervisor = Actor {
        user_id: Some(admin.id),
        username: admin.username.clone(),
        role: admin.role,
        scope: Some(admin.scope),
        client_addr: None,
    };
    let request = TransitionRequest {
        transition: Transition::Reassign {
            to: Assignee::Worker { account_id: worker_b.id },
            reason: Reason::parse("网格员满负荷，调往邻近网格").unwrap(),
        },
        note: Some("已电话通知".into()),
        idempotency_key: None,
    };
    let moved = app.service.transition_task(&supervisor, task.id, request).await.unwrap();
    assert_eq!(moved.task.assignee, Some(Assignee::Worker { account_id: worker_b.id }));
    let history = app.service.store().list_task_history(task.id).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.transition, "reassign");
    assert!(last.note.as_deref().unwrap().contains("满负荷"), "{last:?}");
}

async fn escalations(service: &Service, task: Uuid) -> Vec<i64> {
    let query = AuditQuery {
        action: Some("task.escalate".into()),
        target_id: Some(task),
        limit: 100,
        ..AuditQuery::default()
    };
    let mut levels: Vec<i64> = service
        .store()
        .list_audit(&query)
        .await
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str::<Value>(&e.detail).unwrap()["level"].as_i64().unwrap())
        .collect();
    levels.sort();
    levels
}

#[tokio::test]
async fn an_overdue_task_is_escalated_once_per_level_across_a_restart() {
    let app = App::spawn().await;
    let task = filed_task(&app.service, app.seed.grid_a).await;
    let deadline = task.stage_deadline.unwrap();

    let before = app.service.escalation_pass(deadline).await.unwrap();
    assert_eq!(before.to_grid_leader, 0, "exactly at the deadline is on time");

    let late = deadline + TimeDelta::minutes(1);
    let first = app.service.escalation_pass(late).await.unwrap();
    assert_eq!(first.to_grid_leader, 1);
    let again = app.service.escalation_pass(late).await.unwrap();
    assert_eq!((again.to_grid_leader, again.to_community_admin), (0, 0));
    assert_eq!(escalations(&app.service, task.id).await, [1]);

    // A restart: a new service over the same store, nothing in memory.
    let restarted = Service::new(
        app.service.store().clone(),
        app.service.cipher().clone(),
        Settings::default(),
    );
    let after_restart = restarted.escalation_pass(late).await.unwrap();
    assert_eq!((after_restart.to_grid_leader, after_restart.to_community_admin), (0, 0));

    // Much later the community admin is due, once.
    let much_later = deadline + TimeDelta::days(30);
    let second = restarted.escalation_pass(much_later).await.unwrap();
    assert_eq!((second.to_grid_leader, second.to_community_admin), (0, 1));
    for service in [&restarted, &app.service] {
        let none = service.escalation_pass(much_later).await.unwrap();
        assert_eq!((none.to_grid_leader, none.to_community_admin), (0, 0));
    }
    assert_eq!(escalations(&app.service, task.id).await, [1, 2]);
    let stored = app.service.store().get_task(task.id).await.unwrap().unwrap();
    assert_eq!(stored.escalation_level, 2);
}
