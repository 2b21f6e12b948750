//! The OpenAPI document at `/api/openapi.json` and its page `/api/docs`:
//! the document is OpenAPI 3, names every route the routers serve (read
//! from the router source, so a new route without a `#[utoipa::path]`
//! fails here), and what the server answers is among what it documents.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{ADMIN, App};

/// `(METHOD, path)` of every `.route(…)` in a router source file, with
/// `prefix` before each path not already written with it.
fn routes_in(source: &str, prefix: &str) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        let call = &rest[at + ".route(".len()..];
        // The call's text, up to its closing parenthesis.
        let mut depth = 1;
        let mut end = call.len();
        for (i, c) in call.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let call = &call[..end];
        rest = &rest[at + ".route(".len() + end..];
        let Some(path) = call.trim_start().strip_prefix('"').and_then(|p| p.split('"').next())
        else {
            continue;
        };
        for method in ["get", "post", "patch", "put", "delete"] {
            let called = |sep: char| call.contains(&format!("{sep}{method}("));
            if called(' ') || called('.') || called('\n') {
                // The resident routes are written with their full path.
                let full = if path.starts_with(prefix) {
                    path.to_owned()
                } else {
                    format!("{prefix}{path}")
                };
                found.insert((method.to_uppercase(), full));
            }
        }
    }
    found
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "patch", "put", "delete"] {
            if item.get(method).is_some() {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

async fn fetch_document(app: &App) -> Value {
    let response = app.anonymous().get(app.url("/api/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.expect("the document is JSON")
}

#[tokio::test]
async fn the_document_is_openapi_3_with_the_security_the_api_uses() {
    let app = App::spawn().await;
    let doc = fetch_document(&app).await;
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3."), "OpenAPI 3.x, not {version}");
    assert_eq!(doc["info"]["title"], "epigrid JSON API");

    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["session_cookie"]["type"], "apiKey");
    assert_eq!(schemes["session_cookie"]["in"], "cookie");
    assert_eq!(schemes["session_cookie"]["name"], "epigrid_session");
    assert_eq!(schemes["csrf_token"]["in"], "header");
    assert_eq!(schemes["csrf_token"]["name"], "X-CSRF-Token");
    assert_eq!(schemes["session_bearer"]["scheme"], "bearer");
    assert_eq!(schemes["resident_pass"]["scheme"], "bearer");

    let op = |method: &str, path: &str| doc["paths"][path][method].clone();
    // A staff write: the cookie with the CSRF header, or a bearer token.
    let create = op("post", "/api/v1/residents");
    assert_eq!(
        create["security"],
        serde_json::json!([{"session_cookie": [], "csrf_token": []}, {"session_bearer": []}])
    );
    // A staff read needs no CSRF token.
    assert_eq!(
        op("get", "/api/v1/residents")["security"],
        serde_json::json!([{"session_cookie": []}, {"session_bearer": []}])
    );
    // Self-service calls take the resident pass; the login takes nothing.
    assert_eq!(
        op("post", "/api/v1/public/health-reports")["security"],
        serde_json::json!([{"resident_pass": []}])
    );
    assert_eq!(op("post", "/api/v1/login")["security"], serde_json::json!([{}]));

    // Every status the registry write can answer, errors with their body.
    let statuses: Vec<&str> =
        create["responses"].as_object().unwrap().keys().map(String::as_str).collect();
    for status in ["201", "400", "401", "403", "404", "409", "413", "422", "503"] {
        assert!(statuses.contains(&status), "POST /api/v1/residents lacks {status}: {statuses:?}");
    }
    assert_eq!(
        create["responses"]["422"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/NewResident"
    );
    let error = &doc["components"]["schemas"]["ErrorDetail"];
    assert_eq!(error["required"], serde_json::json!(["code", "message"]));
    // Answers that were ad-hoc JSON have schemas of their own.
    let resident = &doc["components"]["schemas"]["ResidentView"];
    assert_eq!(resident["properties"]["id"]["format"], "uuid");
    assert!(resident["required"].as_array().unwrap().contains(&"household_id".into()));
    assert_eq!(
        op("get", "/api/v1/tasks")["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/TaskBoardPage"
    );
    // Found by Schemathesis: an empty query value means "no filter" (as
    // HTML forms send them), a `limit` is any u32 (the service clamps it),
    // and a parent area outside the scope is 404.
    let areas = op("get", "/api/v1/areas");
    let params = areas["parameters"].as_array().unwrap();
    assert!(params.iter().all(|p| p["allowEmptyValue"] == true), "{params:?}");
    let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!(limit["schema"]["format"], "u-int32", "utoipa's unsigned format, not int32");
    assert!(areas["responses"]["404"].is_object());
    assert!(op("get", "/api/v1/households")["responses"]["404"].is_object());

    // Files are files.
    let export = op("get", "/api/v1/exports/residents");
    let content = export["responses"]["200"]["content"].as_object().unwrap();
    assert!(content.contains_key("text/csv"), "{content:?}");
    assert_eq!(content["text/csv"]["schema"]["$ref"], "#/components/schemas/Download");
    assert_eq!(doc["components"]["schemas"]["Download"]["format"], "binary");
}

#[tokio::test]
async fn every_route_of_the_api_routers_is_documented_and_nothing_else() {
    let app = App::spawn().await;
    let doc = fetch_document(&app).await;
    let mut served = routes_in(include_str!("../../src/api.rs"), "/api/v1");
    served.extend(routes_in(include_str!("../../src/public_api.rs"), "/api/v1"));
    assert!(served.len() >= 45, "the route scan found {} routes", served.len());
    assert!(served.contains(&("POST".into(), "/api/v1/tasks/{id}/transitions".into())));
    assert!(served.contains(&("POST".into(), "/api/v1/exports/residents".into())));
    for probe in ["/healthz", "/readyz", "/metrics", "/api/openapi.json"] {
        served.insert(("GET".into(), probe.into()));
    }
    let documented = documented(&doc);
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(missing.is_empty(), "served but not documented: {missing:?}");
    assert!(extra.is_empty(), "documented but not served: {extra:?}");

    // Every operation has an id (the page and its translations use it), a
    // summary and at least one success answer.
    for (method, path) in &documented {
        let op = &doc["paths"][path][method.to_lowercase()];
        assert!(op["operationId"].is_string(), "{method} {path}");
        assert!(op["summary"].is_string(), "{method} {path}");
        let ok = op["responses"].as_object().unwrap().keys().any(|s| s.starts_with('2'));
        assert!(ok, "{method} {path} has no 2xx answer");
    }
}

#[tokio::test]
async fn what_the_reads_answer_is_documented() {
    let app = App::spawn().await;
    let doc = fetch_document(&app).await;
    let admin = app.login(ADMIN).await;
    let some_id = app.seed.resident_a.to_string();
    let mut checked = 0;
    for (method, path) in documented(&doc) {
        if method != "GET" || path.contains("/public/") {
            continue;
        }
        let url = app.url(&path.replace("{id}", &some_id));
        let response = admin.get(url).send().await.unwrap();
        let status = response.status().as_u16().to_string();
        let op = &doc["paths"][&path]["get"];
        assert!(
            op["responses"].get(&status).is_some(),
            "GET {path} answered {status}, which its document does not list"
        );
        checked += 1;
    }
    assert!(checked >= 20, "{checked}");

    // The answers Schemathesis found undocumented or unexpected.
    let unknown = uuid::Uuid::now_v7();
    for (path, status) in [
        (format!("/api/v1/areas?parent_id={unknown}"), StatusCode::NOT_FOUND),
        (format!("/api/v1/households?area_id={unknown}"), StatusCode::NOT_FOUND),
        ("/api/v1/audit?target_id=".to_owned(), StatusCode::OK),
        ("/api/v1/residents?limit=4294967295".to_owned(), StatusCode::OK),
    ] {
        let response = admin.get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        let documented = &doc["paths"][path.split('?').next().unwrap()]["get"]["responses"];
        assert!(documented.get(status.as_str()).is_some(), "{path}: {status} is not documented");
    }
}

#[tokio::test]
async fn the_docs_page_shows_the_document_in_both_languages() {
    let app = App::spawn().await;
    let doc = fetch_document(&app).await;
    let page = |lang: &'static str| {
        let client = app.anonymous();
        let url = app.url("/api/docs");
        async move {
            let response = client.get(url).header("accept-language", lang).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.text().await.unwrap()
        }
    };
    let zh = page("zh-CN").await;
    assert!(zh.contains("<h1>接口文档</h1>"), "{zh}");
    assert!(zh.contains("人口登记") && zh.contains("居民自助"), "tag names are translated");
    assert!(zh.contains("登记居民"), "operation summaries are translated");
    assert!(zh.contains("href=\"/api/openapi.json\""));
    // Every operation of the document is on the page, method and path.
    for (method, path) in documented(&doc) {
        let row = format!("{method}</span> <code class=\"api-path\">{path}</code>");
        assert!(zh.contains(&row), "{method} {path} is not on the page");
    }
    // Schemas are listed and linked from where they are used.
    assert!(zh.contains("id=\"schema-NewResident\""));
    assert!(zh.contains("href=\"#schema-NewResident\""));
    assert!(zh.contains("X-CSRF-Token"));
    assert!(!zh.contains("http://") && !zh.contains("https://"), "nothing from another origin");

    let en = page("en").await;
    assert!(en.contains("<h1>API documentation</h1>"));
    assert!(en.contains("Register a resident") && en.contains("Self-service"));
    assert!(en.contains("required"));

    // The footer of every page links to it, the login page included.
    let login = app.anonymous().get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    assert!(login.contains("href=\"/api/docs\""));
}
