//! Resident self-service and the intake path (issue #6), end to end: QR
//! building token, identification, submissions with a pass, replays,
//! bad input, overload, and the staff routes.

use std::time::Duration;

use epigrid_service::Settings;
use epigrid_store::{ReportQuery, TaskQuery};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{App, WORKER_A, WORKER_B, get_json};

/// The building of household B (李建国, ID …9973) and its QR token.
fn token_b(app: &App) -> String {
    app.service.building_token(app.seed.building_b)
}

async fn identify(app: &App, name: &str, last4: &str) -> reqwest::Response {
    app.anonymous()
        .post(app.url("/api/v1/public/identify"))
        .json(&json!({
            "building_token": token_b(app),
            "household_id": app.seed.household_b,
            "name": name,
            "id_last4": last4,
        }))
        .send()
        .await
        .unwrap()
}

async fn pass_b(app: &App) -> String {
    let response = identify(app, "李建国", "9973").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["pass"].as_str().unwrap().to_owned()
}

async fn post(app: &App, pass: &str, path: &str, body: Value) -> reqwest::Response {
    app.anonymous().post(app.url(path)).bearer_auth(pass).json(&body).send().await.unwrap()
}

/// The pass's household as the API gives it: members, who reported today,
/// the family's requests.
async fn household_of(app: &App, pass: &str) -> Value {
    let url = app.url("/api/v1/public/household");
    app.anonymous().get(url).bearer_auth(pass).send().await.unwrap().json().await.unwrap()
}

fn health(app: &App, key: &str, temperature: Value) -> Value {
    json!({
        "idempotency_key": key,
        "entries": [{
            "resident_id": app.seed.resident_b,
            "temperature": temperature,
            "symptoms": [],
            "whereabouts": "at_home",
        }],
    })
}

async fn error_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].clone())
}

async fn reports(app: &App) -> usize {
    app.service
        .store()
        .list_reports(&ReportQuery { limit: 500, ..Default::default() })
        .await
        .unwrap()
        .len()
}

/// Tasks are created just after the commit, off the writer's path.
async fn tasks_eventually(app: &App, category: &str, expected: usize) -> usize {
    let mut found = 0;
    for _ in 0..100 {
        let query = TaskQuery { category: Some(category.into()), limit: 500, ..Default::default() };
        found = app.service.store().list_tasks(&query).await.unwrap().len();
        if found >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    found
}

#[tokio::test]
async fn a_resident_scans_identifies_reports_a_fever_and_a_worker_sees_the_task_and_share() {
    let app = App::spawn().await;
    let client = app.anonymous();

    let building: Value =
        get_json(&client, app.url(&format!("/api/v1/public/buildings/{}", token_b(&app)))).await;
    assert_eq!(building["name"], "2号楼");
    let households = building["households"].as_array().unwrap();
    assert_eq!(households.len(), 1);
    assert_eq!(households[0]["label"], "1单元 101");
    assert!(!building.to_string().contains("李建国"), "no names before identification");

    let identified = identify(&app, "李建国", "9973").await;
    assert_eq!(identified.status(), StatusCode::OK);
    let identified: Value = identified.json().await.unwrap();
    assert_eq!(identified["members"][0]["masked_name"], "李*国");
    let pass = identified["pass"].as_str().unwrap();

    let members: Value = household_of(&app, pass).await;
    assert_eq!(members["members"][0]["id"], app.seed.resident_b.to_string());
    assert_eq!(members["reported_today"], json!([]), "nobody yet: {members}");

    let key = Uuid::now_v7().to_string();
    let first =
        post(&app, pass, "/api/v1/public/health-reports", health(&app, &key, json!(38.5))).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let reference = first["reference"].as_str().unwrap().to_owned();
    assert!(reference.starts_with("JK-"), "{reference}");
    assert_eq!(first["replayed"], false);
    // What follows: a fever follow-up, due within the catalogue's two hours.
    assert_eq!(first["follow_up"]["category"], "fever_follow_up", "{first}");
    let due: chrono::DateTime<chrono::Utc> =
        first["follow_up"]["due_by"].as_str().unwrap().parse().unwrap();
    let ahead = due - chrono::Utc::now();
    assert!(
        ahead > chrono::TimeDelta::minutes(118) && ahead <= chrono::TimeDelta::minutes(120),
        "{first}"
    );

    // A double tap: the original answer, nothing new.
    let again =
        post(&app, pass, "/api/v1/public/health-reports", health(&app, &key, json!(38.5))).await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["reference"], reference.as_str());
    assert_eq!(again["replayed"], true);
    assert_eq!(reports(&app).await, 1);
    assert_eq!(tasks_eventually(&app, "fever_follow_up", 1).await, 1);
    let household: Value = household_of(&app, pass).await;
    assert_eq!(household["reported_today"], json!([app.seed.resident_b]), "{household}");
    assert_eq!(household["requests"][0]["category"], "fever_follow_up", "{household}");
    assert_eq!(household["requests"][0]["reference"], reference.as_str(), "{household}");

    // The grid worker of grid B has the fever task on their own list at
    // once: the system verified, filed and dispatched it (auto_dispatch).
    let worker = app.login(WORKER_B).await;
    let mine: Value = get_json(&worker, app.url("/api/v1/my-tasks")).await;
    assert!(mine.to_string().contains("fever_follow_up"), "{mine}");
    assert!(mine.to_string().contains("\"dispatched\""), "{mine}");
    // The family sees it taken up: a grid worker has it.
    let household: Value = household_of(&app, pass).await;
    assert_eq!(household["requests"][0]["progress"], "assigned", "{household}");
    assert_eq!(household["requests"].as_array().unwrap().len(), 1, "{household}");
    // The task says what was reported, with the resident's reference, on
    // the API and on the worker's phone page.
    let task_id = mine["items"][0]["id"].as_str().unwrap().to_owned();
    let detail: Value = get_json(&worker, app.url(&format!("/api/v1/tasks/{task_id}"))).await;
    assert_eq!(detail["report"]["reference"], reference.as_str(), "{detail}");
    assert_eq!(detail["report"]["lines"][0]["label"], "task.reported.temperature");
    assert_eq!(detail["report"]["lines"][0]["text"], "38.5 °C");
    let phone_page = worker.get(app.url(&format!("/m/tasks/{task_id}"))).send().await.unwrap();
    let phone_page = phone_page.text().await.unwrap();
    assert!(phone_page.contains("<dt>体温</dt><dd>38.5 °C</dd>"), "{phone_page}");
    assert!(phone_page.contains(&reference), "the receipt's reference is on the page");
    // A fever follow-up holds health data: the page says how long its notes last.
    assert_eq!(detail["retention"], json!({ "kept": "while_open", "days": 28 }), "{detail}");
    assert!(
        phone_page.contains("任务结束 28 天后，处理备注和照片将被删除，所涉居民或住户将被隐去"),
        "{phone_page}"
    );
    // The step the resident took is theirs in words, not an internal id.
    assert!(phone_page.contains("居民自助") && !phone_page.contains("household:"), "{phone_page}");
    // The phone's list gives it in one line.
    let list = worker.get(app.url("/m/")).send().await.unwrap().text().await.unwrap();
    assert!(list.contains("<p class=\"m-reported\">38.5 °C · 在家</p>"), "{list}");
    let history = &detail["history"][0];
    assert_eq!(history["transition"], "report");
    assert_eq!(history["note"], reference.as_str(), "the first step names the receipt: {detail}");
    let board: Value = get_json(&worker, app.url("/api/v1/tasks")).await;
    assert!(board.to_string().contains("fever_follow_up"), "{board}");
    let unreported: Value =
        get_json(&worker, app.url(&format!("/api/v1/grids/{}/unreported", app.seed.grid_b))).await;
    assert_eq!(unreported["residents_reported"], 1);
    assert_eq!(unreported["residents_total"], 1);
    assert_eq!(unreported["reported_share"], 1.0);
    assert_eq!(unreported["residents"].as_array().unwrap().len(), 0);
    let reporting: Value = get_json(&worker, app.url("/api/v1/intake/reporting")).await;
    assert_eq!(reporting["grids"][0]["grid_id"], app.seed.grid_b.to_string());
    assert_eq!(reporting["grids"][0]["reported"], 1);

    // Grid A's worker cannot look at grid B.
    let other = app.login(WORKER_A).await;
    let hidden = other
        .get(app.url(&format!("/api/v1/grids/{}/unreported", app.seed.grid_b)))
        .send()
        .await
        .unwrap();
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);

    // Help, arrival and a volunteer offer become tasks too, each showing
    // what was reported.
    let help = json!({ "idempotency_key": Uuid::now_v7().to_string(), "kind": "medicine",
                       "urgency": "soon", "note": "降压药快吃完了" });
    assert_eq!(
        post(&app, pass, "/api/v1/public/help-requests", help).await.status(),
        StatusCode::CREATED
    );
    let today = app.service.today();
    let arrival = json!({ "idempotency_key": Uuid::now_v7().to_string(), "resident_id": app.seed.resident_b,
                          "origin": "440000", "arrived_on": today.to_string(), "travel": "train" });
    assert_eq!(
        post(&app, pass, "/api/v1/public/arrivals", arrival).await.status(),
        StatusCode::CREATED
    );
    let offer = json!({ "idempotency_key": Uuid::now_v7().to_string(), "resident_id": app.seed.resident_b,
                        "skills": ["driving"], "availability": ["weekend"] });
    assert_eq!(
        post(&app, pass, "/api/v1/public/volunteer-offers", offer).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(tasks_eventually(&app, "help_request", 1).await, 1);
    assert_eq!(tasks_eventually(&app, "arrival_verification", 1).await, 1);
    assert_eq!(tasks_eventually(&app, "volunteer_offer_contact", 1).await, 1);
    assert_eq!(reports(&app).await, 4);
    // The grid's board (an arrival waits for verification, not on a list).
    let board: Value = get_json(&worker, app.url("/api/v1/tasks")).await;
    let reported = |category: &'static str| {
        let task = board["items"].as_array().unwrap().iter().find(|t| t["category"] == category);
        let id = task.unwrap_or_else(|| panic!("no {category} in {board}"))["id"].clone();
        let (worker, url) = (&worker, app.url(&format!("/api/v1/tasks/{}", id.as_str().unwrap())));
        async move {
            let detail: Value = get_json(worker, url).await;
            detail["report"]["lines"].to_string()
        }
    };
    let help_lines = reported("help_request").await;
    assert!(help_lines.contains("intake.help_kind.medicine"), "{help_lines}");
    assert!(help_lines.contains("降压药快吃完了"), "{help_lines}");
    let arrival_lines = reported("arrival_verification").await;
    assert!(arrival_lines.contains("广东省"), "{arrival_lines}");
    assert!(arrival_lines.contains("intake.travel.train"), "{arrival_lines}");
    let offer_task = board["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["category"] == "volunteer_offer_contact");
    let offer_url =
        app.url(&format!("/api/v1/tasks/{}", offer_task.unwrap()["id"].as_str().unwrap()));
    let offer_detail: Value = get_json(&worker, offer_url).await;
    assert!(offer_detail.get("retention").is_none(), "an offer is not health data: {offer_detail}");
    let offer_lines = reported("volunteer_offer_contact").await;
    assert!(offer_lines.contains("intake.skill.driving"), "{offer_lines}");
    assert!(offer_lines.contains("intake.availability.weekend"), "{offer_lines}");
    let options: Value = get_json(&client, app.url("/api/v1/public/options")).await;
    assert!(options["symptoms"].as_array().unwrap().contains(&json!("cough")));
}

#[tokio::test]
async fn bad_input_gets_a_clear_chinese_message_naming_the_field_and_stores_nothing() {
    let app = App::spawn().await;
    let wrong_name = identify(&app, "李建", "9973").await;
    let (status, error) = error_of(wrong_name).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["code"], "intake.identity_mismatch");
    assert!(error["message"].as_str().unwrap().contains("身份证号后四位"), "{error}");
    let (_, error) = error_of(identify(&app, "李建国", "1234").await).await;
    assert_eq!(error["code"], "intake.identity_mismatch");
    let (_, error) = error_of(identify(&app, "李建国", "12a4").await).await;
    assert_eq!(error["field"], "id_last4");

    // A household of another building (or none) is unknown here.
    let unknown = app
        .anonymous()
        .post(app.url("/api/v1/public/identify"))
        .json(&json!({ "building_token": token_b(&app), "household_id": app.seed.household_a,
                       "name": "王秀英", "id_last4": "002X" }))
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(unknown).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["code"], "intake.unknown_household");
    assert!(error["message"].as_str().unwrap().contains("未找到该户"), "{error}");
    let forged =
        app.anonymous().get(app.url("/api/v1/public/buildings/00ff")).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::NOT_FOUND);

    let pass = pass_b(&app).await;
    let key = || Uuid::now_v7().to_string();
    for (temperature, code) in [
        (json!(45), "intake.temperature_out_of_range"),
        (json!("45"), "intake.temperature_out_of_range"),
        (json!("abc"), "intake.temperature_not_a_number"),
        (json!(""), "intake.temperature_required"),
    ] {
        let response = post(
            &app,
            &pass,
            "/api/v1/public/health-reports",
            health(&app, &key(), temperature.clone()),
        )
        .await;
        let (status, error) = error_of(response).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{temperature}");
        assert_eq!(error["code"], code, "{temperature}");
        assert_eq!(error["field"], "entries[0].temperature");
        assert!(error["message"].as_str().unwrap().starts_with("体温"), "{error}");
    }
    let missing = json!({ "idempotency_key": key(), "entries": [{
        "resident_id": app.seed.resident_b, "temperature": 36.5 }] });
    let (status, error) =
        error_of(post(&app, &pass, "/api/v1/public/health-reports", missing).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["code"], "field.required");
    assert_eq!(error["field"], "entries[0].whereabouts");
    let no_key = json!({ "entries": [] });
    let (_, error) =
        error_of(post(&app, &pass, "/api/v1/public/health-reports", no_key).await).await;
    assert_eq!(error["field"], "idempotency_key");
    // Somebody else's member.
    let (_, error) = error_of(
        post(&app, &pass, "/api/v1/public/health-reports", json!({ "idempotency_key": key(),
            "entries": [{ "resident_id": app.seed.resident_a, "temperature": 36.5, "whereabouts": "at_home" }] }))
        .await,
    )
    .await;
    assert_eq!(error["code"], "intake.not_a_member");
    let far = json!({ "idempotency_key": key(), "resident_id": app.seed.resident_b,
                      "origin": "999999", "arrived_on": "2026-01-01", "travel": "train" });
    let (_, error) = error_of(post(&app, &pass, "/api/v1/public/arrivals", far).await).await;
    assert_eq!(error["field"], "origin");
    // No pass, or a forged one.
    let anonymous = app
        .anonymous()
        .post(app.url("/api/v1/public/health-reports"))
        .json(&health(&app, &key(), json!(36.5)))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let mut forged = pass.clone();
    forged.replace_range(10..12, if &pass[10..12] == "00" { "11" } else { "00" });
    let forged =
        post(&app, &forged, "/api/v1/public/health-reports", health(&app, &key(), json!(36.5)))
            .await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(reports(&app).await, 0, "nothing stored");
    let counters = app
        .service
        .store()
        .grid_day_counters(&[app.seed.grid_b], app.service.today())
        .await
        .unwrap();
    assert!(counters.is_empty(), "{counters:?}");
    // The failures are audited without what was typed.
    let audit = app
        .service
        .store()
        .list_audit(&epigrid_store::AuditQuery { limit: 100, ..Default::default() })
        .await
        .unwrap();
    let failed: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "selfservice.identify" && e.outcome == "failed")
        .collect();
    // Wrong name, wrong digits, unknown household; a malformed "12a4"
    // is refused before any lookup and is no attempt.
    assert_eq!(failed.len(), 3);
    for entry in failed {
        assert!(
            !entry.detail.contains("李建") && !entry.detail.contains("1234"),
            "{}",
            entry.detail
        );
    }
}

#[tokio::test]
async fn identification_failures_are_limited_per_household() {
    let app = App::spawn().await;
    for _ in 0..5 {
        assert_eq!(
            identify(&app, "李建国", "0000").await.status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    let refused = identify(&app, "李建国", "9973").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    let (_, error) = error_of(refused).await;
    assert_eq!(error["code"], "intake.too_many_attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_submission_replayed_100_times_concurrently_stores_one_report_and_one_task() {
    let app = App::spawn().await;
    let pass = pass_b(&app).await;
    let body = health(&app, "replayed-100-times-key", json!("39.1"));
    let client = app.anonymous();
    let mut calls = Vec::new();
    for _ in 0..100 {
        let request = client
            .post(app.url("/api/v1/public/health-reports"))
            .bearer_auth(&pass)
            .json(&body)
            .send();
        calls.push(tokio::spawn(request));
    }
    let mut references = std::collections::BTreeSet::new();
    let mut created = 0;
    for call in calls {
        let response = call.await.unwrap().unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        created += usize::from(response.status() == StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        references.insert(body["reference"].as_str().unwrap().to_owned());
    }
    assert_eq!(created, 1, "exactly one answer says new");
    assert_eq!(references.len(), 1, "every answer carries the same reference");
    assert_eq!(reports(&app).await, 1);
    assert_eq!(tasks_eventually(&app, "fever_follow_up", 1).await, 1);
    // Give a second task (if there were one) time to appear, and check again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.service.intake_catch_up().await.unwrap();
    assert_eq!(tasks_eventually(&app, "fever_follow_up", 2).await, 1);
    let counters = app
        .service
        .store()
        .grid_day_counters(&[app.seed.grid_b], app.service.today())
        .await
        .unwrap();
    assert_eq!(counters[0].health_reports, 1);
    assert_eq!(counters[0].residents_reported, 1);
}

#[tokio::test]
async fn a_full_queue_is_refused_at_once_with_503_and_retry_after() {
    let mut settings = Settings::default();
    settings.intake.queue_capacity = 1;
    settings.intake.batch_max = 1;
    settings.intake.batch_window = Duration::ZERO;
    settings.intake.public.rate_per_client = 0;
    let app = App::spawn_with(settings).await;
    let pass = pass_b(&app).await;
    let client = app.anonymous();
    let mut calls = Vec::new();
    for i in 0..200 {
        let request = client
            .post(app.url("/api/v1/public/health-reports"))
            .bearer_auth(&pass)
            .json(&health(&app, &format!("burst-key-{i:04}"), json!(36.6)))
            .send();
        calls.push(tokio::spawn(request));
    }
    let (mut stored, mut refused) = (0, 0);
    for call in calls {
        let response = call.await.unwrap().unwrap();
        match response.status() {
            StatusCode::CREATED => stored += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                refused += 1;
                assert_eq!(response.headers()["retry-after"], "1");
                let (_, error) = error_of(response).await;
                assert_eq!(error["code"], "intake.busy");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(refused > 0, "a queue of one refuses part of a burst of 200");
    assert_eq!(reports(&app).await, stored, "every acknowledged report is stored, no other");
}

#[tokio::test]
async fn a_grid_worker_reports_a_whole_household_normal_in_one_call() {
    let app = App::spawn().await;
    let worker = app.login(WORKER_A).await;
    let path = format!("/api/v1/households/{}/health-reports", app.seed.household_a);
    let body = json!({ "idempotency_key": "door-visit-0001", "whole_household_normal": true });
    let response = worker.post(app.url(&path)).json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let replay = worker.post(app.url(&path)).json(&body).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::OK);
    let unreported: Value =
        get_json(&worker, app.url(&format!("/api/v1/grids/{}/unreported", app.seed.grid_a))).await;
    assert_eq!(unreported["residents_total"], 2);
    assert_eq!(unreported["residents_reported"], 2, "both members of the household");
    // Out of scope: household B is in grid B.
    let other = format!("/api/v1/households/{}/health-reports", app.seed.household_b);
    let hidden = worker.post(app.url(&other)).json(&body).send().await.unwrap();
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
    // Per person, with a fever: a task.
    let fever = json!({ "idempotency_key": "door-visit-0002", "entries": [{
        "resident_id": app.seed.resident_a, "temperature": "37.8", "symptoms": ["cough"], "whereabouts": "at_home" }] });
    assert_eq!(
        worker.post(app.url(&path)).json(&fever).send().await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(tasks_eventually(&app, "fever_follow_up", 1).await, 1);
    // The unreported list: grid B's one resident has not reported.
    let worker_b = app.login(WORKER_B).await;
    let page: Value =
        get_json(&worker_b, app.url(&format!("/api/v1/grids/{}/unreported", app.seed.grid_b)))
            .await;
    assert_eq!(page["residents"][0]["masked_name"], "李*国");
    assert_eq!(page["reported_share"], 0.0);
}

#[tokio::test]
async fn the_catch_up_pass_creates_tasks_a_crash_left_out_exactly_once() {
    let app = App::spawn().await;
    let store = app.service.store();
    let household = store.get_household(app.seed.household_b).await.unwrap().unwrap();
    // A fever report committed by a writer that died before creating its
    // task: stored with `tasks_pending`, and no task.
    let submission = epigrid_domain::intake::Submission::Health {
        entries: vec![epigrid_domain::intake::HealthEntry {
            temperature: epigrid_domain::intake::TenthsCelsius(390),
            ..epigrid_domain::intake::HealthEntry::normal(app.seed.resident_b)
        }],
    };
    let id = Uuid::now_v7();
    let write = epigrid_store::IntakeWrite {
        report: epigrid_store::ReportRecord {
            id,
            kind: "health".into(),
            household_id: household.id,
            path: household.path,
            day: app.service.today(),
            created_at: app.service.now(),
            idempotency_key: format!("{}:crashed-before-tasks", household.id),
            reference: "JK-20261129-CRASHED0".into(),
            source: "resident".into(),
            actor_account_id: None,
            payload: serde_json::to_string(&submission).unwrap(),
            flagged: 1,
            tasks_pending: true,
        },
        residents: vec![epigrid_store::ReportedResident { resident_id: app.seed.resident_b }],
    };
    store.write_intake_batch(&[write], None).await.unwrap();
    assert_eq!(tasks_eventually(&app, "fever_follow_up", 0).await, 0);

    let first = app.service.intake_catch_up().await.unwrap();
    assert_eq!((first.reports, first.tasks_created), (1, 1));
    let again = app.service.intake_catch_up().await.unwrap();
    assert_eq!((again.reports, again.tasks_created), (0, 0));
    let tasks = store
        .list_tasks(&TaskQuery {
            category: Some("fever_follow_up".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].idempotency_key, Some(format!("intake:{id}:{}", app.seed.resident_b)));
    assert_eq!(tasks[0].path.grid, Some(app.seed.grid_b));
    // Verified, filed and dispatched once each, however many passes ran.
    let history = store.list_task_history(tasks[0].id).await.unwrap();
    let steps: Vec<_> = history.iter().map(|h| h.transition.as_str()).collect();
    assert_eq!(steps, ["report", "verify", "file", "dispatch"]);
}

#[tokio::test]
async fn a_batch_window_gathers_a_burst_into_few_commits() {
    let mut settings = Settings::default();
    settings.intake.batch_window = Duration::from_millis(200);
    settings.intake.public.rate_per_client = 0;
    let app = App::spawn_with(settings).await;
    let pass = pass_b(&app).await;
    let client = app.anonymous();
    let submit = |i: usize| {
        client
            .post(app.url("/api/v1/public/health-reports"))
            .bearer_auth(&pass)
            .json(&health(&app, &format!("window-key-{i:04}"), json!(36.6)))
            .send()
    };
    // One first, so the writer is running; then 19 spread over 95 ms, each
    // of which a writer without a window would commit on its own.
    assert_eq!(submit(0).await.unwrap().status(), StatusCode::CREATED);
    let mut calls = Vec::new();
    for i in 1..20 {
        calls.push(tokio::spawn(submit(i)));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().status(), StatusCode::CREATED);
    }
    assert_eq!(reports(&app).await, 20);
    // Every commit is counted in the audit summaries (in the chain, or
    // still pending): the window gathered the burst into a few.
    let store = app.service.store();
    let mut details: Vec<String> = store
        .list_audit(&epigrid_store::AuditQuery { limit: 100, ..Default::default() })
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "intake.batch")
        .map(|e| e.detail)
        .collect();
    details.extend(store.pending_audit().await.unwrap().into_iter().map(|(_, e)| e.detail));
    let (mut batches, mut submissions) = (0, 0);
    for detail in details {
        let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
        batches += detail["batches"].as_i64().unwrap();
        submissions += detail["submissions"].as_i64().unwrap();
    }
    assert_eq!(submissions, 20);
    assert!(batches <= 4, "20 submissions within a 200 ms window took {batches} commits");
}

/// An idle writer keeps room ahead in the SQLite file (`room_bytes`): a
/// second after its last batch it writes the room's slices and frees them,
/// which leaves the room as free pages inside the file.
#[tokio::test]
async fn an_idle_writer_keeps_room_ahead_in_the_database_file() {
    let room: u64 = 2 << 20;
    let mut settings = Settings::default();
    settings.intake.room_bytes = room;
    let app = App::spawn_with(settings).await;
    let file = app.sqlite_dir().expect("a SQLite app").join("epigrid.db");
    let free_bytes = || async { epigrid_testkit::sqlite_pages(&file).await.free_bytes() };
    let pass = pass_b(&app).await;
    let report = |key: &'static str| {
        post(&app, &pass, "/api/v1/public/health-reports", health(&app, key, json!(36.6)))
    };
    assert_eq!(report("room-key-0001").await.status(), StatusCode::CREATED);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while free_bytes().await < room {
        assert!(std::time::Instant::now() < deadline, "{} bytes free", free_bytes().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And the writer still takes reports afterwards.
    assert_eq!(report("room-key-0002").await.status(), StatusCode::CREATED);
    assert_eq!(reports(&app).await, 2);
}

/// A figure of `/metrics` (the first sample line starting with `name`).
fn figure(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
}

/// `/metrics` as the scraper holding `token` reads it.
async fn scrape(app: &App, token: &str) -> String {
    let response = app.anonymous().get(app.url("/metrics")).bearer_auth(token).send().await;
    let response = response.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let kind = response.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn the_operations_figures_are_served_behind_their_token_and_count_the_intake() {
    const TOKEN: &str = "scrape-9f2c41d7e0";
    let app = App::spawn_with_metrics(TOKEN).await;
    let client = app.anonymous();
    let scrape = || scrape(&app, TOKEN);
    // Without the token, or with another, nothing is shown.
    let bare = client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(bare.headers()[reqwest::header::WWW_AUTHENTICATE], "Bearer");
    let wrong = client.get(app.url("/metrics")).bearer_auth("scrape-9f2c41d7e1").send().await;
    assert_eq!(wrong.unwrap().status(), StatusCode::UNAUTHORIZED);

    // The figures are the process's: other tests may add to them at once,
    // so each is checked to have grown by at least this test's share.
    let before = scrape().await;
    let stored = r#"epigrid_intake_submissions_total{outcome="stored"}"#;
    let duplicate = r#"epigrid_intake_submissions_total{outcome="duplicate"}"#;
    let batches = "epigrid_intake_batch_size_count";
    let pass = pass_b(&app).await;
    let body = health(&app, "metrics-counted-key", json!("36.6"));
    for expected in [StatusCode::CREATED, StatusCode::OK] {
        let response = post(&app, &pass, "/api/v1/public/health-reports", body.clone()).await;
        assert_eq!(response.status(), expected);
    }
    let after = scrape().await;
    assert!(figure(&after, stored) >= figure(&before, stored) + 1.0, "{after}");
    assert!(figure(&after, duplicate) >= figure(&before, duplicate) + 1.0, "{after}");
    assert!(figure(&after, batches) >= figure(&before, batches) + 2.0, "{after}");
    assert!(figure(&after, "epigrid_intake_commit_seconds_sum") > 0.0, "{after}");
    // This scrape's own connection is served, and the queue's size is shown.
    assert!(figure(&after, "epigrid_connections_open") >= 1.0, "{after}");
    let capacity = app.service.settings().intake.queue_capacity as f64;
    assert_eq!(figure(&after, "epigrid_intake_queue_capacity"), capacity);
    assert!(figure(&after, "epigrid_intake_queue_depth") >= 0.0);
    // The process: memory and file descriptors (the held connections').
    assert!(figure(&after, "process_resident_memory_bytes") > 1e6, "{after}");
    let (open, max) = (figure(&after, "process_open_fds"), figure(&after, "process_max_fds"));
    assert!(open >= 3.0 && max >= open, "{open} of {max}");
    // No figure names a resident, a household or a reference.
    let reference = post(&app, &pass, "/api/v1/public/health-reports", body).await;
    let reference: Value = reference.json().await.unwrap();
    let reference = reference["reference"].as_str().unwrap();
    for private in [app.seed.household_b.to_string(), reference.to_owned()] {
        assert!(!after.contains(&private), "{private} in the figures");
    }
}

#[tokio::test]
async fn staff_requests_are_counted_by_status_class_and_timed() {
    const TOKEN: &str = "scrape-41d7e09f2c";
    let app = App::spawn_with_metrics(TOKEN).await;
    let client = app.anonymous();
    let scrape = || scrape(&app, TOKEN);
    let ok = r#"epigrid_staff_requests_total{status="2xx"}"#;
    let client_errors = r#"epigrid_staff_requests_total{status="4xx"}"#;
    let timed = "epigrid_staff_request_seconds_count";
    let before = scrape().await;
    // The scrape is counted once answered, so it is in flight while its
    // own figures are read.
    assert!(figure(&before, "epigrid_staff_requests_in_flight") >= 1.0, "{before}");
    assert_eq!(client.get(app.url("/login")).send().await.unwrap().status(), StatusCode::OK);
    // The staff API without a session: refused, a 4xx.
    let refused = client.get(app.url("/api/v1/tasks")).send().await.unwrap();
    assert!(refused.status().is_client_error(), "{}", refused.status());
    let after = scrape().await;
    // Other tests of this process may add to the figures: at least ours
    // (the first scrape and the login page; the refused call).
    assert!(figure(&after, ok) >= figure(&before, ok) + 2.0, "{after}");
    assert!(figure(&after, client_errors) >= figure(&before, client_errors) + 1.0, "{after}");
    assert!(figure(&after, timed) >= figure(&before, timed) + 3.0, "{after}");
    assert!(
        figure(&after, "epigrid_staff_request_seconds_sum")
            > figure(&before, "epigrid_staff_request_seconds_sum"),
        "{after}"
    );
}

#[tokio::test]
async fn the_figures_show_the_open_work_of_this_store() {
    const TOKEN: &str = "scrape-7e0d41f2c9";
    let app = App::spawn_with_metrics(TOKEN).await;
    let scrape = || scrape(&app, TOKEN);
    let before = scrape().await;
    // One exposition, ended once, with the task figures before its end.
    assert_eq!(before.matches("# EOF").count(), 1, "{before}");
    assert!(before.ends_with("# EOF\n"), "{before}");
    // The day's figures are there (`figure` fails on a missing one); this
    // fresh store has closed nothing and escalated nothing.
    for name in ["epigrid_tasks_closed_today", "epigrid_task_escalations_today"] {
        assert_eq!(figure(&before, name), 0.0, "{before}");
    }
    // A fever makes a follow-up task, created after the report's commit:
    // the open figure goes up by one, and it is not overdue (the catalogue
    // gives a fever two hours).
    let pass = pass_b(&app).await;
    let fever = health(&app, "metrics-fever-key", json!("38.6"));
    let response = post(&app, &pass, "/api/v1/public/health-reports", fever).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let open = |text: &str| figure(text, "epigrid_tasks_open");
    let mut after = scrape().await;
    for _ in 0..100 {
        if open(&after) > open(&before) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        after = scrape().await;
    }
    assert_eq!(open(&after), open(&before) + 1.0, "{after}");
    let overdue = |text: &str| figure(text, "epigrid_tasks_overdue");
    assert_eq!(overdue(&after), overdue(&before), "{after}");
    assert_eq!(
        figure(&after, "epigrid_tasks_escalated_open"),
        figure(&before, "epigrid_tasks_escalated_open")
    );
}

#[tokio::test]
async fn without_a_token_set_the_figures_are_not_served() {
    let app = App::spawn().await;
    let response = app.anonymous().get(app.url("/metrics")).bearer_auth("").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
