//! The demo sub-district end to end: generated into a real store, served,
//! and used through the API by its own accounts.

use epigrid_domain::Role;
use epigrid_service::demo::DemoOptions;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::App;

#[tokio::test]
async fn demo_accounts_log_in_and_see_their_own_part() {
    let app = App::spawn_empty().await;
    let options = DemoOptions {
        residents: 1_500,
        admin_password: Some("demo-office-1".into()),
        ..DemoOptions::default()
    };
    let summary = app.service.generate_demo(&options, &|_| {}).await.unwrap();
    assert_eq!(summary.residents, 1_500);

    let admin = app.login_as("admin", "demo-office-1").await;
    let stats: Value =
        admin.get(app.url("/api/v1/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["residents"], 1_500);
    assert_eq!(stats["communities"], 8);
    assert_eq!(stats["grids"], 50);

    let worker = summary.accounts.iter().find(|a| a.role == Role::GridWorker).unwrap();
    let client = app.login_as(&worker.username, &worker.password).await;
    let mine: Value =
        client.get(app.url("/api/v1/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(mine["grids"], 1, "a grid worker sees one grid");
    assert!(mine["residents"].as_i64().unwrap() < 1_500);
    let page: Value = client
        .post(app.url("/api/v1/residents/search"))
        .json(&serde_json::json!({ "limit": 200 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let grids: std::collections::HashSet<&str> =
        page["items"].as_array().unwrap().iter().map(|r| r["grid_id"].as_str().unwrap()).collect();
    assert!(grids.len() <= 1, "every resident from the worker's one grid: {grids:?}");
    for resident in page["items"].as_array().unwrap() {
        if let Some(id) = resident["id_number"].as_str() {
            assert!(id.contains("****"), "masked: {id}");
        }
    }

    // A second generation into the same store is refused and writes nothing.
    let again = app.service.generate_demo(&options, &|_| {}).await;
    assert!(again.is_err());
    let after: Value =
        admin.get(app.url("/api/v1/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(after["residents"], 1_500);
    let forbidden = client.get(app.url("/api/v1/users")).send().await.unwrap();
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
}
