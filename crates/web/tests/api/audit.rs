//! Writes, logins and unmasks leave audit entries; unmasking needs the
//! permission and a reason, and never leaves the value anywhere but the one
//! response.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{ADMIN, App, WORKER_A};

async fn audit(app: &App, query: &str) -> Vec<Value> {
    let admin = app.login(ADMIN).await;
    let body: Value = admin
        .get(app.url(&format!("/api/v1/audit?{query}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn unmask_needs_the_permission_and_is_audited_with_its_reason() {
    let app = App::spawn().await;
    let path = format!("/api/v1/residents/{}/unmask", app.seed.resident_a);
    let worker = app.login(WORKER_A).await;
    let refused = worker
        .post(app.url(&path))
        .json(&json!({ "field": "id_number", "reason": "verify_identity" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "grid workers may not unmask");
    let denied = audit(&app, "action=resident.unmask").await;
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["outcome"], "denied");
    assert_eq!(denied[0]["actor"], WORKER_A);

    let admin = app.login(ADMIN).await;
    let missing_reason =
        admin.post(app.url(&path)).json(&json!({ "field": "phone" })).send().await.unwrap();
    assert_eq!(missing_reason.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = admin
        .post(app.url(&path))
        .json(&json!({ "field": "id_number", "reason": "verify_identity" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["value"], "11010519491231002X");

    let entries = audit(&app, "action=resident.unmask").await;
    let ok = entries.iter().find(|e| e["outcome"] == "ok").expect("the unmask is in the log");
    assert_eq!(ok["actor"], ADMIN);
    assert_eq!(ok["detail"]["reason"], "verify_identity");
    assert_eq!(ok["detail"]["field"], "id_number");
    assert_eq!(ok["target_id"], app.seed.resident_a.to_string());
    assert!(ok["client_addr"].as_str().is_some_and(|a| a == "127.0.0.1"));
    let text = serde_json::to_string(&entries).unwrap();
    assert!(!text.contains("11010519491231002X"), "the log holds the reason, never the value");
}

#[tokio::test]
async fn writes_and_logins_are_audited_without_personal_data() {
    let app = App::spawn().await;
    let worker = app.login(WORKER_A).await;
    let path = format!("/api/v1/residents/{}", app.seed.resident_a);
    let response =
        worker.patch(app.url(&path)).json(&json!({ "phone": "13700000001" })).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bad_login = app
        .anonymous()
        .post(app.url("/api/v1/login"))
        .json(&json!({ "username": WORKER_A, "password": "wrong-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_login.status(), StatusCode::UNAUTHORIZED);

    let updates = audit(&app, "action=resident.update").await;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0]["actor"], WORKER_A);
    assert_eq!(updates[0]["detail"]["fields"], json!(["phone"]));
    let logins = audit(&app, &format!("action=login&actor={WORKER_A}")).await;
    assert!(logins.iter().any(|e| e["outcome"] == "ok"));
    assert!(
        logins
            .iter()
            .any(|e| e["outcome"] == "failed" && e["detail"]["reason"] == "wrong_password")
    );
    let creates = audit(&app, "action=resident.create").await;
    assert_eq!(creates.len(), 3, "the seed's residents were audited as they were written");

    let everything = serde_json::to_string(&audit(&app, "limit=200").await).unwrap();
    for secret in ["13700000001", "11010519491231002X", "wrong-password", "王秀英"] {
        assert!(!everything.contains(secret), "{secret} leaked into the audit log");
    }
    // Only account managers read the log.
    assert_eq!(
        worker.get(app.url("/api/v1/audit")).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn an_admin_ends_every_session_of_an_account() {
    let app = App::spawn().await;
    let worker = app.login(WORKER_A).await;
    let worker_elsewhere = app.login(WORKER_A).await;
    assert_eq!(worker.get(app.url("/api/v1/me")).send().await.unwrap().status(), StatusCode::OK);
    let admin = app.login(ADMIN).await;
    let users: Value =
        admin.get(app.url("/api/v1/users?limit=200")).send().await.unwrap().json().await.unwrap();
    let id = users["items"].as_array().unwrap().iter().find(|u| u["username"] == WORKER_A).unwrap()
        ["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = admin
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .json(&json!({ "revoke_sessions": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for client in [&worker, &worker_elsewhere] {
        assert_eq!(
            client.get(app.url("/api/v1/me")).send().await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // The password still works: a new login gets a new session.
    let again = app.login(WORKER_A).await;
    assert_eq!(again.get(app.url("/api/v1/me")).send().await.unwrap().status(), StatusCode::OK);
    let entries = audit(&app, "action=account.update").await;
    assert!(entries.iter().any(|e| e["detail"]["sessions_revoked"] == true), "{entries:?}");
}
