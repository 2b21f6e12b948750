//! Login rate limits: per account and per client address, counted from the
//! audit log, answered 429 with "try again in N minutes", and lifted when
//! the window has passed.

use std::time::Duration;

use epigrid_domain::{AreaKind, Role};
use epigrid_service::accounts::NewUser;
use epigrid_service::registry::NewArea;
use epigrid_service::{Actor, FieldCipher, LoginLimits, SecretKey, Service, Settings};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "right-password-7";

/// A server with one account and the given limits.
async fn server(limits: LoginLimits) -> (String, epigrid_testkit::TempGuard) {
    let (store, guard) = epigrid_testkit::fresh_sqlite().await;
    let key = SecretKey::from_hex(&SecretKey::generate_hex()).unwrap();
    let settings = Settings { login_limits: limits, ..Settings::default() };
    let service = Service::new(store, FieldCipher::new(&key), settings);
    let system = Actor::system();
    let root = service
        .create_area(
            &system,
            NewArea {
                kind: AreaKind::SubDistrict,
                parent_id: None,
                code: Some("371602001".into()),
                name: "市中街道".into(),
                grid_kind: None,
                boundary: None,
                address: None,
            },
        )
        .await
        .unwrap();
    for username in ["clerk", "other"] {
        let user = NewUser {
            username: username.into(),
            display_name: username.into(),
            phone: None,
            password: PASSWORD.into(),
            role: Role::SubDistrictAdmin,
            scope_area_id: root.id,
        };
        service.create_user(&system, user).await.unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = epigrid_web::AppState { service, secure_cookies: false, metrics_token: None };
    tokio::spawn(epigrid_web::serve(
        listener,
        state,
        epigrid_web::connection_cap::DEFAULT_MAX_CONNECTIONS,
        std::future::pending(),
    ));
    (base, guard)
}

async fn attempt(
    base: &str,
    username: &str,
    password: &str,
) -> (StatusCode, Option<String>, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn twenty_wrong_passwords_get_429s_and_the_right_one_works_after_the_window() {
    let window = Duration::from_secs(3);
    let limits = LoginLimits {
        window: epigrid_service::chrono::Duration::from_std(window).unwrap(),
        per_account: 5,
        per_address: 1_000,
    };
    let (base, _guard) = server(limits).await;
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let (status, retry_after, body) = attempt(&base, "clerk", "wrong-password-1").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            let seconds: u64 = retry_after.expect("429 says when to come back").parse().unwrap();
            assert!((1..=3).contains(&seconds), "{seconds}");
            assert_eq!(body["error"]["code"], "auth.too_many_attempts");
            assert_eq!(body["error"]["message"], "登录失败次数过多，请在 1 分钟后再试");
        }
        statuses.push(status);
    }
    assert!(statuses[..5].iter().all(|s| *s == StatusCode::UNAUTHORIZED), "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    // Locked: even the right password waits.
    let (status, _, _) = attempt(&base, "clerk", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another account from the same address is not locked by this one.
    let (status, _, _) = attempt(&base, "other", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);

    tokio::time::sleep(window + Duration::from_millis(300)).await;
    let (status, _, body) = attempt(&base, "clerk", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn one_address_guessing_many_accounts_is_limited() {
    let limits = LoginLimits {
        window: epigrid_service::chrono::Duration::minutes(15),
        per_account: 1_000,
        per_address: 8,
    };
    let (base, _guard) = server(limits).await;
    for i in 0..8 {
        let (status, _, _) = attempt(&base, &format!("guess{i}"), "wrong-password-1").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, retry_after, body) = attempt(&base, "clerk", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let minutes = retry_after.unwrap().parse::<u64>().unwrap().div_ceil(60);
    assert_eq!(minutes, 15);
    assert!(body["error"]["message"].as_str().unwrap().contains("15 分钟"));
}
