//! The audit log page: admins search it by actor, action, record and date,
//! a page at a time; other roles are refused; what it shows is escaped.

use epigrid_domain::Role;
use epigrid_store::AuditRecord;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::support::{ADMIN, App, WORKER_A, WORKER_B};

async fn page(client: &reqwest::Client, app: &App, path: &str) -> (StatusCode, String) {
    let response = client.get(app.url(path)).send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// The `data-action` of every row shown, top to bottom.
fn actions(html: &str) -> Vec<&str> {
    html.split("class=\"audit-row\" data-action=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .collect()
}

async fn failed_login(app: &App, username: &str) {
    let response = app
        .anonymous()
        .post(app.url("/api/v1/login"))
        .json(&json!({ "username": username, "password": "wrong-password-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn admins_search_the_log_by_actor_action_record_and_date() {
    let app = App::spawn().await;
    app.login(WORKER_A).await;
    failed_login(&app, WORKER_B).await;
    let admin = app.login(ADMIN).await;

    let (status, html) = page(&admin, &app, "/audit").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"audit-entries\"") && html.contains("class=\"stack\""));
    let all = actions(&html);
    assert_eq!(all.first(), Some(&"login"), "newest first: the admin's own login");
    assert!(all.contains(&"area.create") && all.contains(&"resident.create"), "{all:?}");
    assert!(html.contains("UTC+08:00"), "times are in the configured zone");
    assert!(html.contains("href=\"/audit\" aria-current=\"page\""), "the nav marks the page");

    let (_, html) = page(&admin, &app, &format!("/audit?actor={WORKER_A}")).await;
    assert_eq!(actions(&html), ["login"], "only the worker's own entries");
    assert!(html.contains(&format!("value=\"{WORKER_A}\"")), "the search stays filled in");

    let (_, html) = page(&admin, &app, "/audit?action=login").await;
    assert_eq!(actions(&html), ["login", "login", "login"], "{html}");
    assert!(html.contains("<option value=\"login\" selected>"));
    let (_, html) = page(&admin, &app, &format!("/audit?action=login&actor={WORKER_B}")).await;
    assert_eq!(actions(&html), ["login"]);
    assert!(html.contains("失败") && html.contains("reason: wrong_password"), "outcome and detail");

    let about = format!("/audit?target={}", app.seed.resident_a);
    let (_, html) = page(&admin, &app, &about).await;
    assert_eq!(actions(&html), ["resident.create"]);
    assert!(html.contains(&format!("href=\"/residents/{}\"", app.seed.resident_a)));

    // Both ends count whole days in the configured zone, `to` included.
    let today = app.service.today();
    let yesterday = today.pred_opt().unwrap();
    let (_, html) = page(&admin, &app, &format!("/audit?from={yesterday}&to={today}")).await;
    assert_eq!(actions(&html).len(), all.len(), "everything happened by today");
    let (_, html) = page(&admin, &app, &format!("/audit?to={yesterday}")).await;
    assert!(actions(&html).is_empty(), "nothing happened before today");
    let tomorrow = today.succ_opt().unwrap();
    let (status, html) = page(&admin, &app, &format!("/audit?from={tomorrow}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(actions(&html).is_empty() && html.contains("id=\"no-entries\""));

    let (status, html) = page(&admin, &app, "/audit?target=nope&from=2022-02-30").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"target-error\"") && html.contains("id=\"from-error\""));
    assert!(!html.contains("id=\"audit-entries\""));

    let english = admin
        .get(app.url("/audit?action=logout"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(english.contains("Audit log") && english.contains("No entry matches"), "{english}");
}

#[tokio::test]
async fn the_log_pages_with_a_cursor() {
    let app = App::spawn().await;
    for _ in 0..55 {
        let entry = AuditRecord {
            id: Uuid::now_v7(),
            at: app.service.now(),
            actor_user_id: None,
            actor_name: "pager".into(),
            actor_role: Some(Role::GridWorker),
            action: "logout".into(),
            target_kind: None,
            target_id: None,
            community_id: None,
            client_addr: Some("10.0.0.1".into()),
            outcome: "ok".into(),
            detail: "{}".into(),
        };
        app.service.store().append_audit(&entry).await.unwrap();
    }
    let admin = app.login(ADMIN).await;
    let (_, first) = page(&admin, &app, "/audit?actor=pager").await;
    assert_eq!(actions(&first).len(), 50);
    let next = first.split("id=\"next-page\" rel=\"next\" href=\"").nth(1).unwrap();
    let next = next.split('"').next().unwrap().replace("&#38;", "&").replace("&amp;", "&");
    assert!(next.starts_with("/audit?actor=pager&before="), "{next}");
    let (_, second) = page(&admin, &app, &next).await;
    assert_eq!(actions(&second).len(), 5);
    assert!(!second.contains("id=\"next-page\""), "the last page");
    assert!(
        second.contains("class=\"button secondary\" href=\"/audit?actor=pager\""),
        "back to the first page"
    );
}

#[tokio::test]
async fn other_roles_are_refused_and_see_no_link() {
    let app = App::spawn().await;
    let worker = app.login(WORKER_A).await;
    let (status, _) = page(&worker, &app, "/audit").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = page(&worker, &app, "/audit?actor=admin").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, home) = page(&worker, &app, "/").await;
    assert!(!home.contains("href=\"/audit\""));
    let admin = app.login(ADMIN).await;
    let (_, home) = page(&admin, &app, "/").await;
    assert!(home.contains("href=\"/audit\""));
}

#[tokio::test]
async fn what_the_log_holds_is_shown_escaped() {
    let app = App::spawn().await;
    failed_login(&app, "<script>alert(1)</script>").await;
    let admin = app.login(ADMIN).await;
    let (_, html) = page(&admin, &app, "/audit?action=login").await;
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
            || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>alert(1)"));
}
