//! The JSON API end to end: a real server on port 0 over a fresh store, a
//! real HTTP client with a cookie jar. One test binary for the crate.

mod audit;
mod audit_page;
mod board;
mod demo;
mod exports;
mod import_pages;
mod intake;
mod login_limits;
mod logs;
mod matching;
mod mobile;
mod openapi;
mod pages;
mod scope;
mod security;
mod selfservice_pages;
mod support;
mod tasks;
mod tls;
mod validation;

use reqwest::StatusCode;
use serde_json::json;
use support::{ADMIN, App, PASSWORD, WORKER_A};

#[tokio::test]
async fn probes_answer() {
    let app = App::spawn().await;
    let health = app.anonymous().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app.anonymous().get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}

#[tokio::test]
async fn login_sets_an_http_only_session_cookie_and_logout_revokes_it() {
    let app = App::spawn().await;
    let client = app.anonymous();
    let response = client
        .post(app.url("/api/v1/login"))
        .json(&json!({ "username": WORKER_A, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("epigrid_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["user"]["username"], WORKER_A);
    assert_eq!(body["user"]["role"], "grid_worker");
    let csrf = body["csrf_token"].as_str().expect("a CSRF token").to_owned();

    let me = client.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["csrf_token"], csrf.as_str(), "the token is there again after a reload");

    // The same token as a bearer header works for scripts.
    let token = cookie.split(';').next().unwrap().trim_start_matches("epigrid_session=").to_owned();
    let bearer =
        app.anonymous().get(app.url("/api/v1/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);

    let logout =
        client.post(app.url("/api/v1/logout")).header("x-csrf-token", &csrf).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let after =
        app.anonymous().get(app.url("/api/v1/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED, "a logged-out token is dead");
}

#[tokio::test]
async fn wrong_password_is_401_with_a_translated_message() {
    let app = App::spawn().await;
    let response = app
        .anonymous()
        .post(app.url("/api/v1/login"))
        .json(&json!({ "username": ADMIN, "password": "not-the-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "auth.bad_credentials");
    assert_eq!(body["error"]["message"], "用户名或密码错误");

    let english = app
        .anonymous()
        .post(app.url("/api/v1/login"))
        .header("accept-language", "en-GB,en;q=0.9")
        .json(&json!({ "username": "nobody-here", "password": "whatever-123" }))
        .send()
        .await
        .unwrap();
    assert_eq!(english.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = english.json().await.unwrap();
    assert_eq!(body["error"]["message"], "Wrong username or password");
}

#[tokio::test]
async fn requests_without_a_session_are_401() {
    let app = App::spawn().await;
    for path in ["/api/v1/residents", "/api/v1/areas", "/api/v1/stats", "/api/v1/users"] {
        let response = app.anonymous().get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "auth.required", "{path}");
    }
}

#[tokio::test]
async fn personal_fields_come_masked() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let body: serde_json::Value = admin
        .get(app.url(&format!("/api/v1/residents/{}", app.seed.resident_a)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["id_number"], "110105********002X");
    assert_eq!(body["phone"], "138****8000");
    assert_eq!(body["sex"], "female", "derived from the ID number");
    assert_eq!(body["birth_date"], "1949-12-31", "derived from the ID number");
    let text = body.to_string();
    assert!(!text.contains("11010519491231002X") && !text.contains("13800138000"));
}

#[tokio::test]
async fn residents_are_found_by_name_prefix_exact_id_phone_and_tag() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let search = |body: serde_json::Value| {
        let admin = admin.clone();
        let url = app.url("/api/v1/residents/search");
        async move {
            let response = admin.post(url).json(&body).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let page: serde_json::Value = response.json().await.unwrap();
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(search(json!({ "name": "王" })).await, vec!["王秀英"]);
    assert_eq!(
        search(json!({ "id_number": "11010519491231002x" })).await,
        vec!["王秀英"],
        "lower-case x is the same number"
    );
    assert_eq!(search(json!({ "phone": "+86 138 0013 8000" })).await, vec!["王秀英"]);
    assert_eq!(search(json!({ "tag": "aged_80_plus" })).await, vec!["王秀英"]);
    assert_eq!(search(json!({ "id_number": "370101190102039973" })).await, vec!["李建国"]);
    assert!(search(json!({ "name": "赵" })).await.is_empty());

    // The GET form takes the same filters from the query string.
    let page: serde_json::Value = admin
        .get(app.url("/api/v1/residents?name=%E6%9D%8E&limit=10"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["name"], "李建国");
}

#[tokio::test]
async fn resident_lists_page_with_keysets() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut body = json!({ "limit": 1 });
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let page: serde_json::Value = admin
            .post(app.url("/api/v1/residents/search"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 1);
        seen.extend(items.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no resident twice");
    assert_eq!(seen.len(), 3, "every resident once");
}

#[tokio::test]
async fn a_database_file_alone_reveals_no_id_number_or_phone() {
    let app = App::spawn().await;
    let dir = app.sqlite_dir().expect("this test runs on SQLite");
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let haystack = String::from_utf8_lossy(&bytes);
    assert!(haystack.contains("王秀英"), "the scan reads the real data");
    for secret in ["11010519491231002X", "13800138000", "370101190102039973", "13912345678"] {
        assert!(!haystack.contains(secret), "{secret} is stored in clear");
    }
}

#[tokio::test]
async fn the_api_speaks_json_errors_for_unknown_routes() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let response = admin.get(app.url("/api/v1/nothing-here")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let bad_id = admin.get(app.url("/api/v1/residents/not-a-uuid")).send().await.unwrap();
    assert_eq!(bad_id.status(), StatusCode::NOT_FOUND);
}
