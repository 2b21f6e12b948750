//! The web protections, route by route: every API route that takes an id
//! refuses another grid's record (404), a forged or missing CSRF token (403),
//! an expired session (401), and stores SQL meta-characters and script tags
//! literally and shows them escaped. Plus CSRF on the HTML forms, the
//! `Origin` check on logins, and the security headers on every response.

use std::time::Duration;

use epigrid_domain::{AreaKind, Role};
use epigrid_service::accounts::NewUser;
use epigrid_service::registry::NewArea;
use epigrid_service::{Actor, Settings};
use reqwest::header::LOCATION;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{ADMIN, App, PASSWORD, Session, WORKER_A, WORKER_B, form_body, post_form};

/// A community admin of a second community, and a grid leader of grid A
/// (who may unmask): actors with the permission a route needs but not the
/// scope of the record asked for.
const OTHER_ADMIN: &str = "admin_other";
const LEADER_A: &str = "leader_a";

async fn user_id(app: &App, username: &str) -> Uuid {
    app.service
        .list_users(&Actor::system(), None, 200)
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|u| u.username == username)
        .unwrap_or_else(|| panic!("no account {username}"))
        .id
}

/// Adds a second community with its own admin, and a grid leader of grid A.
async fn add_outsiders(app: &App) -> Uuid {
    let system = Actor::system();
    let community = app
        .service
        .create_area(
            &system,
            NewArea {
                kind: AreaKind::Community,
                parent_id: Some(app.seed.sub_district),
                code: Some("371602001002".into()),
                name: "长江社区".into(),
                grid_kind: None,
                boundary: Some(json!({
                    "type": "Polygon",
                    "coordinates": [[[118.0, 37.4], [118.02, 37.4], [118.02, 37.42], [118.0, 37.42], [118.0, 37.4]]]
                })),
                address: None,
            },
        )
        .await
        .unwrap()
        .id;
    for (username, role, scope) in [
        (OTHER_ADMIN, Role::CommunityAdmin, community),
        (LEADER_A, Role::GridLeader, app.seed.grid_a),
    ] {
        app.service
            .create_user(
                &system,
                NewUser {
                    username: username.into(),
                    display_name: username.into(),
                    phone: None,
                    password: PASSWORD.into(),
                    role,
                    scope_area_id: scope,
                },
            )
            .await
            .unwrap();
    }
    community
}

/// One API route that takes an id, with a request body when it changes
/// something.
struct Route {
    method: Method,
    /// With `{id}` where the id goes.
    path: &'static str,
    body: Option<Value>,
}

impl Route {
    fn url(&self, app: &App, id: Uuid) -> String {
        app.url(&self.path.replace("{id}", &id.to_string()))
    }

    fn changes(&self) -> bool {
        self.method != Method::GET
    }

    async fn send(&self, client: &reqwest::Client, app: &App, id: Uuid) -> reqwest::Response {
        let mut request = client.request(self.method.clone(), self.url(app, id));
        if let Some(body) = &self.body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }
}

/// Every API route that takes an id. A new one belongs here.
fn id_routes() -> Vec<Route> {
    let get = |path| Route { method: Method::GET, path, body: None };
    vec![
        get("/api/v1/areas/{id}"),
        Route {
            method: Method::PATCH,
            path: "/api/v1/areas/{id}",
            body: Some(json!({ "name": "改名网格" })),
        },
        get("/api/v1/areas/{id}/staff"),
        get("/api/v1/households/{id}"),
        get("/api/v1/households/{id}/members"),
        get("/api/v1/residents/{id}"),
        Route {
            method: Method::PATCH,
            path: "/api/v1/residents/{id}",
            body: Some(json!({ "name": "改名者" })),
        },
        Route {
            method: Method::POST,
            path: "/api/v1/residents/{id}/unmask",
            body: Some(json!({ "field": "id_number", "reason": "verify_identity" })),
        },
        get("/api/v1/users/{id}"),
        Route {
            method: Method::PATCH,
            path: "/api/v1/users/{id}",
            body: Some(json!({ "display_name": "改名账号" })),
        },
    ]
}

/// The id a route is tried with, out of the seeded records of grid B (or
/// of the seed's community, for accounts).
async fn grid_b_record(app: &App, route: &Route) -> Uuid {
    let s = app.seed;
    if route.path.starts_with("/api/v1/areas/") {
        s.grid_b
    } else if route.path.starts_with("/api/v1/households/") {
        s.household_b
    } else if route.path.starts_with("/api/v1/residents/") {
        s.resident_b
    } else {
        user_id(app, WORKER_B).await
    }
}

/// The same kind of record inside grid A, for the control requests.
async fn grid_a_record(app: &App, route: &Route) -> Uuid {
    let s = app.seed;
    if route.path.starts_with("/api/v1/areas/") {
        s.grid_a
    } else if route.path.starts_with("/api/v1/households/") {
        s.household_a
    } else if route.path.starts_with("/api/v1/residents/") {
        s.resident_a
    } else {
        user_id(app, WORKER_A).await
    }
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// What the admin reads at `path` now, to see that nothing changed.
async fn snapshot(admin: &reqwest::Client, app: &App, route: &Route, id: Uuid) -> Value {
    let path = route.path.trim_end_matches("/unmask").replace("{id}", &id.to_string());
    let (status, body) = json_of(admin.get(app.url(&path)).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// How many values were unmasked (audited with outcome "ok").
async fn unmask_entries(admin: &reqwest::Client, app: &App) -> usize {
    let (_, body) = json_of(
        admin.get(app.url("/api/v1/audit?action=resident.unmask&limit=200")).send().await.unwrap(),
    )
    .await;
    body["items"]
        .as_array()
        .map_or(0, |items| items.iter().filter(|e| e["outcome"] == "ok").count())
}

// ---- another grid's record -------------------------------------------------

#[tokio::test]
async fn every_id_route_answers_404_for_a_record_outside_the_scope() {
    let app = App::spawn().await;
    add_outsiders(&app).await;
    let worker = app.login(WORKER_A).await;
    let leader = app.login(LEADER_A).await;
    let other_admin = app.login(OTHER_ADMIN).await;
    for route in id_routes() {
        let foreign = grid_b_record(&app, &route).await;
        let own = grid_a_record(&app, &route).await;
        // The actor who holds the permission the route needs, scoped to
        // grid A (or to another community, for area changes and accounts).
        let (actor, name) = match route.path {
            "/api/v1/residents/{id}/unmask" => (&leader, LEADER_A),
            p if p.starts_with("/api/v1/users/") => (&other_admin, OTHER_ADMIN),
            "/api/v1/areas/{id}" if route.changes() => (&other_admin, OTHER_ADMIN),
            _ => (&worker, WORKER_A),
        };
        let (status, body) = json_of(route.send(actor, &app, foreign).await).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{} {} as {name}: {body}",
            route.method,
            route.path
        );
        assert_eq!(body["error"]["code"], "not_found", "{} {}", route.method, route.path);
        // An id that exists nowhere looks the same.
        let (status, _) = json_of(route.send(actor, &app, Uuid::now_v7()).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{} {} unknown id", route.method, route.path);
        // Control: the grid worker's own record answers (reads only; the
        // writes are tried with CSRF tokens below).
        if !route.changes() && !route.path.starts_with("/api/v1/users/") {
            let status = route.send(&worker, &app, own).await.status();
            assert_eq!(status, StatusCode::OK, "{} {} for grid A", route.method, route.path);
        }
    }
    // Roles without the permission are refused outright, in scope or not.
    let worker_a_id = user_id(&app, WORKER_A).await;
    for route in id_routes().iter().filter(|r| r.path.starts_with("/api/v1/users/")) {
        let status = route.send(&worker, &app, worker_a_id).await.status();
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{} {} as a grid worker",
            route.method,
            route.path
        );
    }
    let patch_area = &id_routes()[1];
    let status = patch_area.send(&worker, &app, app.seed.grid_a).await.status();
    assert_eq!(status, StatusCode::FORBIDDEN, "a grid worker may not change areas");
    // Nothing of grid B changed along the way.
    let admin = app.login(ADMIN).await;
    let resident_b = snapshot(&admin, &app, &id_routes()[5], app.seed.resident_b).await;
    assert_eq!(resident_b["name"], "李建国");
    let grid_b = snapshot(&admin, &app, &id_routes()[0], app.seed.grid_b).await;
    assert_eq!(grid_b["name"], "第二网格");
    assert_eq!(unmask_entries(&admin, &app).await, 0, "no value of grid B was unmasked");
}

// ---- CSRF --------------------------------------------------------------------

#[tokio::test]
async fn every_state_changing_id_route_refuses_a_missing_or_forged_csrf_token() {
    let app = App::spawn().await;
    let session = app.session(ADMIN, PASSWORD).await;
    let admin = session.client(Some(&session.csrf), true);
    let other = app.session(WORKER_A, PASSWORD).await;
    let mut forged = session.csrf.clone();
    // The same length, one hex digit off.
    let last = if forged.ends_with('0') { "1" } else { "0" };
    forged.replace_range(forged.len() - 1.., last);
    let attempts: [(&str, reqwest::Client); 5] = [
        ("no token", session.client(None, true)),
        ("an empty token", session.client(Some(""), true)),
        ("a forged token", session.client(Some(&forged), true)),
        ("a made-up token", session.client(Some(&"ab".repeat(32)), true)),
        ("another session's token", session.client(Some(&other.csrf), true)),
    ];
    for route in id_routes().into_iter().filter(Route::changes) {
        let id = grid_a_record(&app, &route).await;
        let before = snapshot(&admin, &app, &route, id).await;
        for (what, client) in &attempts {
            let (status, body) = json_of(route.send(client, &app, id).await).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{} {} with {what}",
                route.method,
                route.path
            );
            assert_eq!(body["error"]["code"], "csrf.invalid", "{} {}", route.method, route.path);
            assert!(
                !body.to_string().contains("11010519491231002X"),
                "no unmasked value with {what}"
            );
        }
        assert_eq!(
            snapshot(&admin, &app, &route, id).await,
            before,
            "{}: nothing changed",
            route.path
        );
        // Control: the real token goes through.
        let (status, body) = json_of(route.send(&admin, &app, id).await).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{} {} with the token: {body}",
            route.method,
            route.path
        );
    }
    assert_eq!(unmask_entries(&admin, &app).await, 1, "only the control unmask happened");
}

#[tokio::test]
async fn every_other_state_changing_api_call_with_the_cookie_needs_the_token() {
    let app = App::spawn().await;
    let session = app.session(ADMIN, PASSWORD).await;
    let bare = session.client(None, true);
    let s = app.seed;
    let before = app.service.stats(&Actor::system()).await.unwrap();
    for (path, body) in [
        ("/api/v1/areas", json!({ "kind": "building", "parent_id": s.grid_a, "name": "9号楼" })),
        ("/api/v1/households", json!({ "unit_id": s.unit_b, "room": "909" })),
        (
            "/api/v1/residents",
            json!({ "household_id": s.household_b, "name": "赵敏", "relation": "spouse", "sex": "female", "birth_date": "1990-01-01" }),
        ),
        ("/api/v1/residents/search", json!({ "name": "王" })),
        (
            "/api/v1/users",
            json!({ "username": "sneaky", "display_name": "x", "password": "long-enough-1", "role": "grid_worker", "scope_area_id": s.grid_a }),
        ),
        ("/api/v1/logout", json!({})),
    ] {
        let (status, answer) =
            json_of(bare.post(app.url(path)).json(&body).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "POST {path}: {answer}");
        assert_eq!(answer["error"]["code"], "csrf.invalid", "POST {path}");
    }
    let after = app.service.stats(&Actor::system()).await.unwrap();
    assert_eq!(
        (after.residents, after.buildings),
        (before.residents, before.buildings),
        "nothing was created"
    );
    assert!(app.service.authenticate(&session.token).await.is_ok(), "the logout was refused");
    let users = app.service.list_users(&Actor::system(), None, 200).await.unwrap().items;
    assert!(!users.iter().any(|u| u.username == "sneaky"));

    // A script holding only the bearer token needs no CSRF token: a browser
    // never sends that header on its own.
    let patched = app
        .anonymous()
        .patch(app.url(&format!("/api/v1/residents/{}", s.resident_a)))
        .bearer_auth(&session.token)
        .json(&json!({ "origin": "济南" }))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    // GETs never need it.
    assert_eq!(bare.get(app.url("/api/v1/me")).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn a_request_from_another_origin_is_refused_even_with_the_token() {
    let app = App::spawn().await;
    let session = app.session(ADMIN, PASSWORD).await;
    let admin = session.client(Some(&session.csrf), true);
    let path = format!("/api/v1/residents/{}", app.seed.resident_a);
    for origin in ["https://evil.example", "null", "http://127.0.0.1:1"] {
        let (status, body) = json_of(
            admin
                .patch(app.url(&path))
                .header("origin", origin)
                .json(&json!({ "name": "改名者" }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "Origin {origin}");
        assert_eq!(body["error"]["code"], "csrf.invalid");
    }
    // The browser's own origin is fine.
    let response = admin
        .patch(app.url(&path))
        .header("origin", &app.base)
        .json(&json!({ "origin": "济南" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (_, resident) = json_of(admin.get(app.url(&path)).send().await.unwrap()).await;
    assert_eq!(resident["name"], "王秀英");
}

#[tokio::test]
async fn a_login_posted_from_another_site_is_refused() {
    let app = App::spawn().await;
    let body = json!({ "username": ADMIN, "password": PASSWORD });
    let client =
        || reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let form = [("username", ADMIN), ("password", PASSWORD), ("next", "/")];
    let api = client()
        .post(app.url("/api/v1/login"))
        .header("origin", "https://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::FORBIDDEN);
    assert!(api.headers().get("set-cookie").is_none(), "no session handed out");
    let page = client()
        .post(app.url("/login"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&form))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert!(page.headers().get("set-cookie").is_none());
    assert!(page.text().await.unwrap().contains("<html"), "a page for the form");

    // From our own origin, or from a client that sends no Origin, it works,
    // even with a stale session cookie still in the browser.
    let same = client()
        .post(app.url("/login"))
        .header("origin", &app.base)
        .header("cookie", "epigrid_session=expired-or-unknown")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&form))
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), StatusCode::SEE_OTHER);
    assert!(same.headers().get("set-cookie").is_some());
    let plain = client().post(app.url("/api/v1/login")).json(&body).send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
}

// ---- expired sessions ----------------------------------------------------------

/// A client that presents `session`'s cookie and CSRF token by hand, so that
/// the cookie's own `Max-Age` does not hide the server's decision.
fn raw_client(session: &Session) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("cookie", format!("epigrid_session={}", session.token).parse().unwrap());
    headers.insert("x-csrf-token", session.csrf.parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn assert_every_id_route_is_401(app: &App, client: &reqwest::Client, why: &str) {
    for route in id_routes() {
        let id = grid_a_record(app, &route).await;
        let (status, body) = json_of(route.send(client, app, id).await).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{} {} ({why}): {body}",
            route.method,
            route.path
        );
        assert_eq!(body["error"]["code"], "auth.required", "{} {}", route.method, route.path);
    }
    // The pages send the visitor to the login instead.
    let page = client.get(app.url(&format!("/residents/{}", app.seed.resident_a))).send().await;
    let page = page.unwrap();
    assert!(page.status().is_redirection(), "{why}: {}", page.status());
    assert!(page.headers()[LOCATION].to_str().unwrap().starts_with("/login?next="));
}

#[tokio::test]
async fn an_idle_session_expires_on_every_id_route() {
    let app = App::spawn_with(Settings {
        session_idle: epigrid_service::chrono::Duration::seconds(1),
        ..Settings::default()
    })
    .await;
    let session = app.session(ADMIN, PASSWORD).await;
    let client = raw_client(&session);
    let me = client.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK, "alive at first");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_every_id_route_is_401(&app, &client, "idle").await;
}

#[tokio::test]
async fn a_session_expires_at_its_absolute_limit_even_while_in_use() {
    let limit = Duration::from_secs(3);
    let app = App::spawn_with(Settings {
        session_absolute: epigrid_service::chrono::Duration::seconds(3),
        ..Settings::default()
    })
    .await;
    let session = app.session(ADMIN, PASSWORD).await;
    let started = std::time::Instant::now();
    let client = raw_client(&session);
    // Used every 300 ms, so never idle.
    while started.elapsed() < limit - Duration::from_millis(800) {
        let me = client.get(app.url("/api/v1/me")).send().await.unwrap();
        assert_eq!(me.status(), StatusCode::OK, "in use, within the limit");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep((limit + Duration::from_millis(300)).saturating_sub(started.elapsed()))
        .await;
    assert_every_id_route_is_401(&app, &client, "absolute").await;
}

// ---- SQL meta-characters and script tags ---------------------------------------

/// Hostile text that passes validation (1–50 characters, no control
/// characters).
const HOSTILE: [&str; 4] =
    ["'; DROP TABLE residents; --", "\" OR 1=1 --", "<script>alert(1)</script>", "Robert'); --"];
/// The same for a household room (at most 20 characters).
const HOSTILE_ROOMS: [&str; 4] =
    ["1'; DROP TABLE x;--", "\" OR 1=1 --", "<script>1</script>", "Robert'); --"];

/// `text` as the pages may escape it: askama's numeric entities, or the
/// named ones (SVG written by hand).
fn escaped_forms(text: &str) -> [String; 2] {
    let numeric = text
        .replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;");
    let named = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;");
    [numeric, named]
}

/// The page at `path` shows `text` escaped, and never raw.
async fn shows_escaped(client: &reqwest::Client, app: &App, path: &str, text: &str) {
    let response = client.get(app.url(path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let html = response.text().await.unwrap();
    assert!(
        escaped_forms(text).iter().any(|form| html.contains(form.as_str())),
        "{path} does not show {text:?} escaped"
    );
    never_raw(&html, path);
}

fn never_raw(html: &str, path: &str) {
    for raw in HOSTILE.iter().chain(&HOSTILE_ROOMS).filter(|t| t.contains(['<', '"'])) {
        assert!(!html.contains(raw), "{path} shows {raw:?} unescaped");
    }
    assert!(!html.contains("<script>"), "{path} has an inline script");
}

async fn created(response: reqwest::Response, what: &str) -> Value {
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::CREATED, "{what}: {body}");
    body
}

async fn read(client: &reqwest::Client, app: &App, path: &str) -> Value {
    let (status, body) = json_of(client.get(app.url(path)).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

#[tokio::test]
async fn hostile_text_in_every_text_field_is_stored_literally_and_shown_escaped() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let s = app.seed;
    let worker_b = user_id(&app, WORKER_B).await;
    for (i, (text, room)) in HOSTILE.iter().zip(HOSTILE_ROOMS).enumerate() {
        // Padded with spaces: stored trimmed, otherwise as typed.
        let padded = format!("  {text} ");

        // Areas: name and address, created and changed.
        let building = created(
            admin
                .post(app.url("/api/v1/areas"))
                .json(&json!({ "kind": "building", "parent_id": s.grid_b, "name": padded, "address": padded }))
                .send()
                .await
                .unwrap(),
            "building",
        )
        .await;
        let building_id = building["id"].as_str().unwrap().to_owned();
        let stored = read(&admin, &app, &format!("/api/v1/areas/{building_id}")).await;
        assert_eq!(
            (stored["name"].as_str(), stored["address"].as_str()),
            (Some(*text), Some(*text))
        );
        let (status, patched) = json_of(
            admin
                .patch(app.url(&format!("/api/v1/areas/{}", s.grid_b)))
                .json(&json!({ "name": padded, "address": padded }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{patched}");
        let stored = read(&admin, &app, &format!("/api/v1/areas/{}", s.grid_b)).await;
        assert_eq!(
            (stored["name"].as_str(), stored["address"].as_str()),
            (Some(*text), Some(*text))
        );
        shows_escaped(&admin, &app, &format!("/areas/{building_id}"), text).await;
        shows_escaped(&admin, &app, &format!("/areas/{}", s.grid_b), text).await;
        // The community's dashboard draws the grid on its map.
        shows_escaped(&admin, &app, &format!("/?area={}", s.community), text).await;

        // Households: the room.
        let household = created(
            admin
                .post(app.url("/api/v1/households"))
                .json(&json!({ "unit_id": s.unit_b, "room": format!(" {room} ") }))
                .send()
                .await
                .unwrap(),
            "household",
        )
        .await;
        let household_id = household["id"].as_str().unwrap().to_owned();
        let stored = read(&admin, &app, &format!("/api/v1/households/{household_id}")).await;
        assert_eq!(stored["room"], room);
        shows_escaped(&admin, &app, &format!("/households/{household_id}"), room).await;
        shows_escaped(&admin, &app, &format!("/areas/{}", s.unit_b), room).await;

        // Residents: name and origin, created and changed.
        let resident = created(
            admin
                .post(app.url("/api/v1/residents"))
                .json(&json!({
                    "household_id": household_id, "name": padded, "relation": "head",
                    "sex": "male", "birth_date": "1980-01-01",
                    "floating": true, "arrived_on": "2024-01-01", "origin": padded,
                }))
                .send()
                .await
                .unwrap(),
            "resident",
        )
        .await;
        let resident_id = resident["id"].as_str().unwrap().to_owned();
        let stored = read(&admin, &app, &format!("/api/v1/residents/{resident_id}")).await;
        assert_eq!(
            (stored["name"].as_str(), stored["origin"].as_str()),
            (Some(*text), Some(*text))
        );
        let (status, patched) = json_of(
            admin
                .patch(app.url(&format!("/api/v1/residents/{}", s.resident_b)))
                .json(&json!({ "name": padded, "floating": true, "arrived_on": "2024-01-01", "origin": padded }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{patched}");
        let stored = read(&admin, &app, &format!("/api/v1/residents/{}", s.resident_b)).await;
        assert_eq!(
            (stored["name"].as_str(), stored["origin"].as_str()),
            (Some(*text), Some(*text))
        );
        for path in [
            format!("/residents/{resident_id}"),
            format!("/residents/{}", s.resident_b),
            format!("/residents/{}/edit", s.resident_b),
            format!("/households/{household_id}"),
        ] {
            shows_escaped(&admin, &app, &path, text).await;
        }
        // Found by it through the search (which echoes it in its box), with
        // the exact search working on the literal text.
        let query: String = form_urlencoded::byte_serialize(text.as_bytes()).collect();
        shows_escaped(&admin, &app, &format!("/residents?name={query}"), text).await;
        let (_, found) = json_of(
            admin
                .post(app.url("/api/v1/residents/search"))
                .json(&json!({ "name": text }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let names: Vec<&str> =
            found["items"].as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect();
        assert!(names.len() >= 2 && names.iter().all(|n| n == text), "{text:?}: {names:?}");

        // Accounts: the display name, created and changed.
        let account = created(
            admin
                .post(app.url("/api/v1/users"))
                .json(&json!({
                    "username": format!("hostile_{i}"), "display_name": padded,
                    "password": "long-enough-1", "role": "grid_worker", "scope_area_id": s.grid_b,
                }))
                .send()
                .await
                .unwrap(),
            "account",
        )
        .await;
        let account_id = account["id"].as_str().unwrap().to_owned();
        let stored = read(&admin, &app, &format!("/api/v1/users/{account_id}")).await;
        assert_eq!(stored["display_name"], *text);
        let (status, patched) = json_of(
            admin
                .patch(app.url(&format!("/api/v1/users/{worker_b}")))
                .json(&json!({ "display_name": padded }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{patched}");
        let stored = read(&admin, &app, &format!("/api/v1/users/{worker_b}")).await;
        assert_eq!(stored["display_name"], *text);
        shows_escaped(&admin, &app, &format!("/accounts/{account_id}"), text).await;
        shows_escaped(&admin, &app, &format!("/accounts/{worker_b}"), text).await;
    }
    // The tables are all still there, and every hostile record is in them.
    let stats = app.service.stats(&Actor::system()).await.unwrap();
    assert_eq!(stats.residents, 3 + HOSTILE.len() as i64);
    let (status, list) =
        json_of(admin.get(app.url("/api/v1/residents?limit=200")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 3 + HOSTILE.len());
    // And the listing pages show none of it raw.
    for path in ["/accounts".to_owned(), format!("/areas/{}", s.grid_b), "/residents".to_owned()] {
        let html = admin.get(app.url(&path)).send().await.unwrap().text().await.unwrap();
        never_raw(&html, &path);
    }
}

#[tokio::test]
async fn a_hostile_username_on_the_login_page_is_shown_escaped() {
    let app = App::spawn().await;
    let form =
        [("username", "<script>alert(1)</script>"), ("password", "whatever-123"), ("next", "/")];
    let response = app
        .anonymous()
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&form))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let html = response.text().await.unwrap();
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{html}");
    assert!(!html.contains("<script>alert(1)"), "{html}");
}

// ---- the HTML forms --------------------------------------------------------------

#[tokio::test]
async fn a_form_post_without_its_csrf_field_is_a_403_page_and_saves_nothing() {
    let app = App::spawn().await;
    let s = app.seed;
    let session = app.session(WORKER_A, PASSWORD).await;
    // A browser: the cookie, but no token header; the token travels in the
    // form, as the page put it there.
    let browser = session.client(None, false);
    let path = format!("/residents/{}/edit", s.resident_a);
    let edit = [
        ("name", "王秀兰"),
        ("id_number", ""),
        ("phone", ""),
        ("sex", "female"),
        ("birth_date", "1949-12-31"),
        ("relation", "head"),
        ("arrived_on", ""),
        ("origin", ""),
    ];
    let without = post_form(&browser, &app, &path, &edit).await;
    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    let html = without.text().await.unwrap();
    assert!(html.contains("<html") && html.contains("页面已过期"), "a translated page: {html}");
    let zeros = "0".repeat(64);
    let forged: Vec<(&str, &str)> =
        edit.iter().copied().chain([("_csrf", zeros.as_str())]).collect();
    assert_eq!(post_form(&browser, &app, &path, &forged).await.status(), StatusCode::FORBIDDEN);
    let admin = app.login(ADMIN).await;
    let stored = read(&admin, &app, &format!("/api/v1/residents/{}", s.resident_a)).await;
    assert_eq!(stored["name"], "王秀英", "nothing saved");

    // English visitors get the page in English.
    let english = browser
        .post(app.url(&path))
        .header("accept-language", "en")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&edit))
        .send()
        .await
        .unwrap();
    assert_eq!(english.status(), StatusCode::FORBIDDEN);
    assert!(english.text().await.unwrap().contains("This page has expired"));

    // The form as the page renders it carries the token, and goes through.
    let form_html = browser.get(app.url(&path)).send().await.unwrap().text().await.unwrap();
    let field = format!(r#"<input type="hidden" name="_csrf" value="{}">"#, session.csrf);
    assert!(form_html.contains(&field), "{form_html}");
    let with: Vec<(&str, &str)> =
        edit.iter().copied().chain([("_csrf", session.csrf.as_str())]).collect();
    let saved = post_form(&browser, &app, &path, &with).await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let stored = read(&admin, &app, &format!("/api/v1/residents/{}", s.resident_a)).await;
    assert_eq!(stored["name"], "王秀兰");

    // Logging out needs it too: without, the session lives on.
    assert_eq!(post_form(&browser, &app, "/logout", &[]).await.status(), StatusCode::FORBIDDEN);
    assert!(app.service.authenticate(&session.token).await.is_ok());
    let out = post_form(&browser, &app, "/logout", &[("_csrf", &session.csrf)]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(app.service.authenticate(&session.token).await.is_err(), "logged out");
}

#[tokio::test]
async fn the_token_also_travels_in_a_multipart_form() {
    let app = App::spawn().await;
    let session = app.session(WORKER_A, PASSWORD).await;
    let browser = session.client(None, false);
    let path = format!("/residents/{}/edit", app.seed.resident_a);
    let multipart = |token: &str| {
        format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{token}\r\n\
             --XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n王秀英\r\n--XyZ--\r\n"
        )
    };
    let send = |body: String| {
        browser
            .post(app.url(&path))
            .header("content-type", "multipart/form-data; boundary=XyZ")
            .body(body)
            .send()
    };
    let forged = send(multipart(&"0".repeat(64))).await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // With the token the request reaches the handler, which reads only
    // URL-encoded forms and says so: anything but the CSRF refusal.
    let passed = send(multipart(&session.csrf)).await.unwrap();
    assert_ne!(passed.status(), StatusCode::FORBIDDEN);
}

/// Every `<form method="post">` in `html`, each with what lies up to its end.
fn post_forms(html: &str) -> Vec<&str> {
    let mut forms = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<form") {
        let tail = &rest[start..];
        let end = tail.find("</form>").map_or(tail.len(), |e| e + "</form>".len());
        let form = &tail[..end];
        let tag = &form[..form.find('>').unwrap_or(form.len())];
        if tag.to_ascii_lowercase().contains(r#"method="post""#) {
            forms.push(form);
        }
        rest = &tail[end..];
    }
    forms
}

#[tokio::test]
async fn every_post_form_on_every_page_carries_the_token() {
    let app = App::spawn().await;
    let s = app.seed;
    let session = app.session(ADMIN, PASSWORD).await;
    let admin = session.client(Some(&session.csrf), true);
    let field = format!(r#"name="_csrf" value="{}""#, session.csrf);
    let worker_a = user_id(&app, WORKER_A).await;
    let mut checked = 0;
    let mut pages: Vec<(String, String)> = Vec::new();
    for path in [
        "/".to_owned(),
        format!("/?area={}", s.community),
        format!("/areas/{}", s.sub_district),
        format!("/areas/{}", s.community),
        format!("/areas/{}", s.grid_a),
        format!("/areas/{}", s.building_b),
        format!("/areas/{}", s.unit_b),
        format!("/households/{}", s.household_a),
        "/residents".to_owned(),
        "/residents?name=%E7%8E%8B".to_owned(),
        format!("/residents/{}", s.resident_a),
        format!("/residents/{}/edit", s.resident_a),
        "/accounts".to_owned(),
        "/accounts/new".to_owned(),
        format!("/accounts/{worker_a}"),
        format!("/areas/{}", Uuid::nil()),
        "/audit".to_owned(),
    ] {
        let response = admin.get(app.url(&path)).send().await.unwrap();
        if path == "/audit" && response.status() == StatusCode::NOT_FOUND {
            continue; // not built yet
        }
        pages.push((path, response.text().await.unwrap()));
    }
    // Pages that answer a POST: search results, an unmasked value, a form
    // shown again with its errors.
    for (path, pairs) in [
        ("/residents/search".to_owned(), vec![("id_number", "11010519491231002X")]),
        (
            format!("/residents/{}/unmask", s.resident_a),
            vec![("field", "phone"), ("reason", "verify_identity")],
        ),
        (format!("/residents/{}/edit", s.resident_a), vec![("name", " ")]),
        ("/accounts/new".to_owned(), vec![("username", "x")]),
    ] {
        let html = post_form(&admin, &app, &path, &pairs).await.text().await.unwrap();
        pages.push((format!("POST {path}"), html));
    }
    for (path, html) in &pages {
        for form in post_forms(html) {
            checked += 1;
            assert!(form.contains(&field), "{path}: a POST form without the token: {form}");
        }
    }
    assert!(checked >= 12, "only {checked} forms seen");
    // The login form is the one without: there is no session yet.
    let login = app.anonymous().get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let forms = post_forms(&login);
    assert_eq!(forms.len(), 1);
    assert!(!forms[0].contains("_csrf"));
}

/// The templates themselves, so that a form on a page no test visits is
/// caught too.
#[test]
fn every_post_form_in_the_templates_carries_the_token() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        for form in post_forms(&text) {
            if name == "login.html" {
                continue;
            }
            seen += 1;
            assert!(
                form.contains(r#"<input type="hidden" name="_csrf" value="{{ chrome.csrf }}">"#),
                "{name}: a POST form without the token: {form}"
            );
        }
    }
    assert!(seen >= 10, "{seen} forms");
}

// ---- headers and CSP -------------------------------------------------------------

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

fn assert_security_headers(response: &reqwest::Response, what: &str, referrer: &str) {
    let h = response.headers();
    let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(get("content-security-policy"), CSP, "{what}");
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(get("x-frame-options"), "DENY", "{what}");
    assert_eq!(get("referrer-policy"), referrer, "{what}");
}

#[tokio::test]
async fn every_kind_of_response_carries_the_security_headers() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let anonymous = app.anonymous();
    let s = app.seed;
    for (client, path) in [
        (&anonymous, "/login".to_owned()),
        (&admin, "/".to_owned()),
        (&admin, format!("/residents/{}", s.resident_a)),
        (&admin, format!("/areas/{}", Uuid::nil())),
        (&admin, "/api/v1/me".to_owned()),
        (&admin, format!("/api/v1/residents/{}", s.resident_a)),
        (&admin, "/api/v1/nothing-here".to_owned()),
        (&anonymous, "/api/v1/residents".to_owned()),
        (&anonymous, "/static/app.css".to_owned()),
        (&anonymous, "/static/app.js".to_owned()),
        (&anonymous, "/healthz".to_owned()),
        // The resident routes, which have a stack of their own.
        (&anonymous, "/api/v1/public/options".to_owned()),
        (&anonymous, "/api/v1/public/household".to_owned()),
        (&anonymous, "/api/v1/public/buildings/no-such-token".to_owned()),
    ] {
        let response = client.get(app.url(&path)).send().await.unwrap();
        assert_security_headers(&response, &path, "same-origin");
    }
    // A refusal by the CSRF check carries them too.
    let refused = app
        .session(ADMIN, PASSWORD)
        .await
        .client(None, true)
        .post(app.url("/api/v1/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_security_headers(&refused, "a CSRF refusal", "same-origin");
    // A resident's submission refused for want of a pass carries them too.
    let refused = anonymous
        .post(app.url("/api/v1/public/health-reports"))
        .json(&serde_json::json!({ "idempotency_key": "k", "entries": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_security_headers(&refused, "a refused submission", "same-origin");
    // The unmasked value's page keeps its stricter referrer policy.
    let unmasked = post_form(
        &admin,
        &app,
        &format!("/residents/{}/unmask", s.resident_a),
        &[("field", "phone"), ("reason", "verify_identity")],
    )
    .await;
    assert_eq!(unmasked.status(), StatusCode::OK);
    assert_security_headers(&unmasked, "the unmask page", "no-referrer");
}

/// The CSP forbids inline scripts, inline styles and event-handler
/// attributes: none may be in a page.
fn assert_csp_clean(html: &str, what: &str) {
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<style"), "{what}: a <style> element");
    assert!(!lower.contains(" style="), "{what}: a style attribute");
    assert!(!lower.contains("javascript:"), "{what}: a javascript: URL");
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("<script") {
        let tag = &rest[at..at + rest[at..].find('>').unwrap_or(rest.len() - at)];
        assert!(tag.contains(" src="), "{what}: an inline script: {tag}");
        rest = &rest[at + 7..];
    }
    for handler in [" onclick=", " onload=", " onsubmit=", " onchange=", " onerror=", " oninput="] {
        assert!(!lower.contains(handler), "{what}: an inline {handler} handler");
    }
}

#[test]
fn no_template_needs_an_inline_script_or_style() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert_csp_clean(&std::fs::read_to_string(&path).unwrap(), &path.display().to_string());
    }
}

#[tokio::test]
async fn no_rendered_page_needs_an_inline_script_or_style() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let s = app.seed;
    for path in [
        "/".to_owned(),
        format!("/?area={}", s.community),
        format!("/?area={}", s.grid_a),
        format!("/areas/{}", s.community),
        format!("/households/{}", s.household_a),
        "/residents?name=%E7%8E%8B".to_owned(),
        format!("/residents/{}", s.resident_a),
        format!("/residents/{}/edit", s.resident_a),
        "/accounts".to_owned(),
        "/accounts/new".to_owned(),
    ] {
        let html = admin.get(app.url(&path)).send().await.unwrap().text().await.unwrap();
        assert_csp_clean(&html, &path);
    }
    let login = app.anonymous().get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    assert_csp_clean(&login, "/login");
}
