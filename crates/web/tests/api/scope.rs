//! Grid scope through every endpoint: a grid worker reads and changes only
//! their own grid, and anything else is 404 as if it did not exist. An admin
//! sees everything.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{ADMIN, App, MEDIC, VOLUNTEER, WORKER_A, WORKER_B};

async fn status_and_body(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_grid_worker_cannot_read_another_grids_records_through_any_endpoint() {
    let app = App::spawn().await;
    let worker = app.login(WORKER_A).await;
    let s = app.seed;
    let other_grid_paths = [
        format!("/api/v1/residents/{}", s.resident_b),
        format!("/api/v1/households/{}", s.household_b),
        format!("/api/v1/households/{}/members", s.household_b),
        format!("/api/v1/areas/{}", s.grid_b),
        format!("/api/v1/areas/{}", s.building_b),
        format!("/api/v1/areas/{}", s.unit_b),
        format!("/api/v1/areas/{}/staff", s.grid_b),
        format!("/api/v1/areas/{}", s.community),
        format!("/api/v1/households?area_id={}", s.grid_b),
        format!("/api/v1/residents?area_id={}", s.grid_b),
        format!("/api/v1/residents?household_id={}", s.household_b),
        format!("/api/v1/areas?parent_id={}", s.grid_b),
    ];
    for path in &other_grid_paths {
        let (status, body) = status_and_body(worker.get(app.url(path)).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
    // The same paths answer the other grid's own worker.
    let worker_b = app.login(WORKER_B).await;
    for path in &other_grid_paths[..7] {
        let status = worker_b.get(app.url(path)).send().await.unwrap().status();
        assert_eq!(status, StatusCode::OK, "{path} for its own grid worker");
    }
}

#[tokio::test]
async fn searches_and_lists_never_return_another_grids_records() {
    let app = App::spawn().await;
    let worker = app.login(WORKER_A).await;
    for body in [
        json!({ "name": "李" }),
        json!({ "id_number": "370101190102039973" }),
        json!({ "phone": "13912345678" }),
        json!({}),
    ] {
        let (status, page) = status_and_body(
            worker.post(app.url("/api/v1/residents/search")).json(&body).send().await.unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let names: Vec<&str> =
            page["items"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert!(!names.contains(&"李建国"), "{body} leaked grid B: {names:?}");
    }
    let (_, page) =
        status_and_body(worker.get(app.url("/api/v1/areas")).send().await.unwrap()).await;
    let ids: Vec<&str> =
        page["items"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&app.seed.grid_a.to_string().as_str()));
    assert!(!ids.contains(&app.seed.grid_b.to_string().as_str()));
    assert!(!ids.contains(&app.seed.community.to_string().as_str()));
    let (_, stats) =
        status_and_body(worker.get(app.url("/api/v1/stats")).send().await.unwrap()).await;
    assert_eq!(stats["residents"], 2, "grid A has two residents: {stats}");
    assert_eq!(stats["grids"], 1);
    let (_, households) =
        status_and_body(worker.get(app.url("/api/v1/households")).send().await.unwrap()).await;
    assert_eq!(households["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_grid_worker_cannot_change_another_grids_records_through_any_endpoint() {
    let app = App::spawn().await;
    let worker = app.login(WORKER_A).await;
    let s = app.seed;
    let attempts = [
        (format!("/api/v1/residents/{}", s.resident_b), "PATCH", json!({ "name": "改名" })),
        (format!("/api/v1/areas/{}", s.grid_b), "PATCH", json!({ "name": "改名" })),
    ];
    for (path, method, body) in &attempts {
        let request = match *method {
            "PATCH" => worker.patch(app.url(path)),
            _ => worker.post(app.url(path)),
        };
        let status = request.json(body).send().await.unwrap().status();
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
            "{method} {path}: {status}"
        );
    }
    // Creating into another grid's household or unit, or moving one's own
    // resident there, is refused as an unknown parent.
    let into_b = json!({ "household_id": s.household_b, "name": "新人", "sex": "male", "birth_date": "1990-01-01", "relation": "other" });
    let (status, body) = status_and_body(
        worker.post(app.url("/api/v1/residents")).json(&into_b).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "household_id");
    let household_in_b = json!({ "unit_id": s.unit_b, "room": "999" });
    let (status, body) = status_and_body(
        worker.post(app.url("/api/v1/households")).json(&household_in_b).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "unit_id");
    let move_to_b = json!({ "household_id": s.household_b });
    let (status, body) = status_and_body(
        worker
            .patch(app.url(&format!("/api/v1/residents/{}", s.resident_a)))
            .json(&move_to_b)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "household_id");

    // Nothing changed: the admin sees grid B exactly as seeded.
    let admin = app.login(ADMIN).await;
    let (_, li) = status_and_body(
        admin.get(app.url(&format!("/api/v1/residents/{}", s.resident_b))).send().await.unwrap(),
    )
    .await;
    assert_eq!(li["name"], "李建国");
    let (_, members) = status_and_body(
        admin
            .get(app.url(&format!("/api/v1/households/{}/members", s.household_b)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(members["items"].as_array().unwrap().len(), 1);
    let (_, wang) = status_and_body(
        admin.get(app.url(&format!("/api/v1/residents/{}", s.resident_a))).send().await.unwrap(),
    )
    .await;
    assert_eq!(wang["household_id"], s.household_a.to_string());
}

#[tokio::test]
async fn a_grid_worker_edits_their_own_residents() {
    let app = App::spawn().await;
    let worker = app.login(WORKER_A).await;
    let path = format!("/api/v1/residents/{}", app.seed.resident_a);
    let (status, body) = status_and_body(
        worker
            .patch(app.url(&path))
            .json(&json!({ "phone": "13700000001", "tags": ["aged_80_plus", "chronic_disease"] }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["phone"], "137****0001");
    assert_eq!(body["tags"], json!(["aged_80_plus", "chronic_disease"]));
    assert_eq!(body["id_number"], "110105********002X", "untouched fields stay");
}

#[tokio::test]
async fn an_admin_sees_every_grid() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    for id in [app.seed.resident_a, app.seed.resident_b] {
        let status =
            admin.get(app.url(&format!("/api/v1/residents/{id}"))).send().await.unwrap().status();
        assert_eq!(status, StatusCode::OK);
    }
    let (_, stats) =
        status_and_body(admin.get(app.url("/api/v1/stats")).send().await.unwrap()).await;
    assert_eq!(stats["residents"], 3);
    assert_eq!(stats["grids"], 2);
    assert_eq!(stats["communities"], 1);
    let (_, staff) = status_and_body(
        admin
            .get(app.url(&format!("/api/v1/areas/{}/staff", app.seed.grid_a)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let staff: Vec<&str> = staff["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(staff, vec![WORKER_A]);
}

#[tokio::test]
async fn roles_limit_what_a_scope_allows() {
    let app = App::spawn().await;
    // Medical staff read residents of their community but do not edit them.
    let medic = app.login(MEDIC).await;
    let path = format!("/api/v1/residents/{}", app.seed.resident_b);
    assert_eq!(medic.get(app.url(&path)).send().await.unwrap().status(), StatusCode::OK);
    let edit = medic.patch(app.url(&path)).json(&json!({ "name": "改名" })).send().await.unwrap();
    assert_eq!(edit.status(), StatusCode::FORBIDDEN);
    // Volunteers see areas but never personal records.
    let volunteer = app.login(VOLUNTEER).await;
    assert_eq!(volunteer.get(app.url(&path)).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(
        volunteer.get(app.url("/api/v1/areas")).send().await.unwrap().status(),
        StatusCode::OK
    );
    // Only account managers manage accounts.
    let worker = app.login(WORKER_A).await;
    assert_eq!(
        worker.get(app.url("/api/v1/users")).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_community_admin_cannot_create_accounts_above_their_scope() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let new_admin = json!({ "username": "c_admin", "display_name": "社区管理员", "password": "long-enough-1", "role": "community_admin", "scope_area_id": app.seed.community });
    let response = admin.post(app.url("/api/v1/users")).json(&new_admin).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let community_admin = app.login_as("c_admin", "long-enough-1").await;
    let escalate = json!({ "username": "sneaky", "display_name": "x", "password": "long-enough-1", "role": "sub_district_admin", "scope_area_id": app.seed.sub_district });
    let (status, body) = status_and_body(
        community_admin.post(app.url("/api/v1/users")).json(&escalate).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "scope_area_id");
    let worker_in_grid = json!({ "username": "new_worker", "display_name": "新网格员", "password": "long-enough-1", "role": "grid_worker", "scope_area_id": app.seed.grid_b });
    let created =
        community_admin.post(app.url("/api/v1/users")).json(&worker_in_grid).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
}
