//! Invalid input gets the error code and the field, and nothing is written.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{ADMIN, App, WORKER_A};

async fn resident_count(app: &App) -> i64 {
    app.service.stats(&epigrid_service::Actor::system()).await.unwrap().residents
}

async fn area_count(app: &App) -> i64 {
    let c = app.service.stats(&epigrid_service::Actor::system()).await.unwrap();
    c.sub_districts + c.communities + c.grids + c.buildings + c.units
}

/// Posts `body` and checks status, code and field; returns the message.
async fn expect_error(
    client: &reqwest::Client,
    url: String,
    body: Value,
    status: StatusCode,
    code: &str,
    field: Option<&str>,
) -> String {
    let response = client.post(url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), status, "{body}");
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], code, "{body}: {error}");
    match field {
        Some(f) => assert_eq!(error["error"]["field"], f, "{body}: {error}"),
        None => assert!(error["error"]["field"].is_null(), "{error}"),
    }
    error["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn invalid_residents_are_refused_with_code_and_field_and_nothing_is_written() {
    let app = App::spawn().await;
    let worker = app.login(WORKER_A).await;
    let before = resident_count(&app).await;
    let url = || app.url("/api/v1/residents");
    let valid = json!({ "household_id": app.seed.household_a, "name": "赵敏", "relation": "spouse", "id_number": "440524188001010014" });
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    // A bad check character, with the reason in Chinese.
    let message = expect_error(
        &worker,
        url(),
        with("id_number", json!("110101202311012171")),
        unprocessable,
        "id.checksum",
        Some("id_number"),
    )
    .await;
    assert_eq!(message, "身份证号码校验位不正确");
    expect_error(
        &worker,
        url(),
        with("id_number", json!("12345")),
        unprocessable,
        "id.format",
        Some("id_number"),
    )
    .await;
    expect_error(
        &worker,
        url(),
        with("phone", json!("12345678901")),
        unprocessable,
        "phone.format",
        Some("phone"),
    )
    .await;
    expect_error(
        &worker,
        url(),
        with("name", json!("   ")),
        unprocessable,
        "name.empty",
        Some("name"),
    )
    .await;
    expect_error(
        &worker,
        url(),
        with("name", json!(123)),
        unprocessable,
        "request.wrong_type",
        Some("name"),
    )
    .await;
    expect_error(
        &worker,
        url(),
        with("sex", json!("female")),
        unprocessable,
        "resident.sex_mismatch",
        Some("sex"),
    )
    .await;
    expect_error(
        &worker,
        url(),
        with("tags", json!(["no_such_tag"])),
        unprocessable,
        "tag.unknown",
        Some("tags"),
    )
    .await;
    expect_error(
        &worker,
        url(),
        with("floating", json!(true)),
        unprocessable,
        "field.required",
        Some("arrived_on"),
    )
    .await;
    expect_error(
        &worker,
        url(),
        with("household_id", json!(uuid::Uuid::now_v7())),
        unprocessable,
        "resident.unknown_household",
        Some("household_id"),
    )
    .await;
    expect_error(
        &worker,
        url(),
        with("surprise", json!(1)),
        unprocessable,
        "request.unknown_field",
        Some("surprise"),
    )
    .await;
    let mut missing = valid.clone();
    missing.as_object_mut().unwrap().remove("name");
    expect_error(&worker, url(), missing, unprocessable, "field.required", Some("name")).await;
    let mut no_birth = valid.clone();
    no_birth.as_object_mut().unwrap().remove("id_number");
    no_birth["sex"] = json!("female");
    expect_error(&worker, url(), no_birth, unprocessable, "field.required", Some("birth_date"))
        .await;
    // Someone already registered under the same document.
    expect_error(
        &worker,
        url(),
        with("id_number", json!("11010519491231002X")),
        StatusCode::CONFLICT,
        "id.duplicate",
        Some("id_number"),
    )
    .await;
    assert_eq!(resident_count(&app).await, before, "no invalid resident was written");

    // The valid one goes in, sex and birth date derived from the number.
    let response = worker.post(url()).json(&valid).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["sex"], "male");
    assert_eq!(created["birth_date"], "1880-01-01", "an abolished address code is still accepted");
    assert_eq!(resident_count(&app).await, before + 1);
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_400_and_413() {
    let app = App::spawn().await;
    let worker = app.login(WORKER_A).await;
    let before = resident_count(&app).await;
    let response = worker
        .post(app.url("/api/v1/residents"))
        .header("content-type", "application/json")
        .body("{\"name\": \"王")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "request.malformed_json");

    let huge = json!({ "household_id": app.seed.household_a, "name": "x".repeat(100 * 1024), "relation": "other" });
    let response = worker.post(app.url("/api/v1/residents")).json(&huge).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "request.too_large");
    assert_eq!(resident_count(&app).await, before);
}

#[tokio::test]
async fn invalid_areas_are_refused_with_code_and_field_and_nothing_is_written() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let before = area_count(&app).await;
    let url = || app.url("/api/v1/areas");
    let s = app.seed;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let grid = |code: &str| json!({ "kind": "grid", "parent_id": s.community, "code": code, "name": "新网格" });
    expect_error(
        &admin,
        url(),
        grid("3716020010010"),
        unprocessable,
        "code.grid_format",
        Some("code"),
    )
    .await;
    expect_error(
        &admin,
        url(),
        grid("37160200100100"),
        unprocessable,
        "code.grid_sequence",
        Some("code"),
    )
    .await;
    expect_error(
        &admin,
        url(),
        grid("37160200100201"),
        unprocessable,
        "code.not_under_parent",
        Some("code"),
    )
    .await;
    expect_error(
        &admin,
        url(),
        grid("37160200100101"),
        StatusCode::CONFLICT,
        "code.duplicate",
        Some("code"),
    )
    .await;
    let community = json!({ "kind": "community", "parent_id": s.sub_district, "code": "371602001000", "name": "新社区" });
    expect_error(&admin, url(), community, unprocessable, "code.village_level", Some("code")).await;
    let orphan = json!({ "kind": "building", "parent_id": uuid::Uuid::now_v7(), "name": "9号楼" });
    expect_error(&admin, url(), orphan, unprocessable, "area.unknown_parent", Some("parent_id"))
        .await;
    let wrong_level = json!({ "kind": "building", "parent_id": s.community, "name": "9号楼" });
    expect_error(
        &admin,
        url(),
        wrong_level,
        unprocessable,
        "area.wrong_parent_kind",
        Some("parent_id"),
    )
    .await;
    let open_ring = json!({ "kind": "grid", "parent_id": s.community, "code": "37160200100103", "name": "新网格",
        "boundary": { "type": "Polygon", "coordinates": [[[117.0, 37.0], [117.1, 37.0], [117.1, 37.1], [117.0, 37.1]]] } });
    expect_error(&admin, url(), open_ring, unprocessable, "boundary.bad_ring", Some("boundary"))
        .await;
    let bad_kind = json!({ "kind": "planet", "name": "x" });
    expect_error(&admin, url(), bad_kind, unprocessable, "request.wrong_type", Some("kind")).await;
    assert_eq!(area_count(&app).await, before, "no invalid area was written");

    let ok = json!({ "kind": "grid", "parent_id": s.community, "code": "37160200100103", "name": "第三网格", "grid_kind": "school" });
    let response = admin.post(url()).json(&ok).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["grid_kind"], "school");
    assert_eq!(area_count(&app).await, before + 1);
}

#[tokio::test]
async fn english_callers_get_english_reasons() {
    let app = App::spawn().await;
    let worker = app.login(WORKER_A).await;
    let response = worker
        .post(app.url("/api/v1/residents"))
        .header("accept-language", "en")
        .json(&json!({ "household_id": app.seed.household_a, "name": "x", "relation": "other", "phone": "999" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "A mobile number has 11 digits starting with 1");
}
