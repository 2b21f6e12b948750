//! Durability of intake (issue #6), scaled down for CI: reports sent at full
//! speed to the real `epigrid serve` on a SQLite file; the server is killed
//! with SIGKILL mid-stream and restarted; every acknowledged report must be
//! stored exactly once, with the reference it was acknowledged with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::Row;

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const ADMIN_PASSWORD: &str = "office-pass-1";

fn command(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_epigrid"));
    command
        .arg("--data-dir")
        .arg(dir)
        .arg("--config")
        .arg(dir.join("none.toml"))
        .env_remove("EPIGRID_DATABASE")
        .env_remove("EPIGRID_SECRET_KEY")
        .env_remove("EPIGRID_LISTEN")
        .env_remove("EPIGRID_DATA_DIR")
        .env("EPIGRID_LOG", "warn");
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn serve(dir: &Path, port: u16) -> Child {
    let mut child = command(dir)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(r) = client.get(format!("http://127.0.0.1:{port}/healthz")).send().await
            && r.status().is_success()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("epigrid serve did not come up on port {port}");
}

async fn login(base: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/login"))
        .json(&serde_json::json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "login: {}", response.status());
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    cookie.split(';').next().unwrap().trim_start_matches("epigrid_session=").to_owned()
}

async fn report(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    household: &str,
    key: &str,
) -> Option<String> {
    let response = client
        .post(format!("{base}/api/v1/households/{household}/health-reports"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "idempotency_key": key, "whole_household_normal": true }))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body: serde_json::Value = response.json().await.ok()?;
    body["reference"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_report_survives_sigkill_exactly_once() {
    let dir = TempDir(
        std::env::temp_dir().join(format!("epigrid-durability-{}", uuid::Uuid::now_v7().simple())),
    );
    std::fs::create_dir_all(&dir.0).unwrap();
    let demo = command(&dir.0)
        .args(["demo", "--no-serve", "--residents", "300", "--admin-password", ADMIN_PASSWORD])
        .output()
        .unwrap();
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
    let db_url = format!("sqlite://{}", dir.0.join("epigrid.db").display());
    let households: Vec<String> = {
        let pool = sqlx::SqlitePool::connect(&db_url).await.unwrap();
        let rows = sqlx::query("SELECT id FROM households").fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows.iter()
            .map(|r| uuid::Uuid::from_slice(&r.get::<Vec<u8>, _>("id")).unwrap().to_string())
            .collect()
    };
    assert!(households.len() > 50, "{} households", households.len());

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = serve(&dir.0, port).await;
    let token = login(&base).await;

    // Acknowledged (household, key) → reference, from 16 senders at full speed.
    let acked: Arc<Mutex<BTreeMap<(String, String), String>>> = Arc::default();
    let client = reqwest::Client::new();
    let mut senders = Vec::new();
    for sender in 0..16 {
        let (client, base, token, acked) =
            (client.clone(), base.clone(), token.clone(), acked.clone());
        let households = households.clone();
        senders.push(tokio::spawn(async move {
            for n in 0..10_000usize {
                let household = &households[(sender * 7919 + n) % households.len()];
                let key = format!("durability-{sender:02}-{n:06}");
                match report(&client, &base, &token, household, &key).await {
                    Some(reference) => {
                        acked.lock().unwrap().insert((household.clone(), key), reference);
                    }
                    // The server is gone: this sender is done.
                    None => return,
                }
            }
        }));
    }
    // Kill mid-stream, once a fair number of reports were acknowledged.
    let started = Instant::now();
    while acked.lock().unwrap().len() < 300 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().unwrap(); // SIGKILL on Unix: no shutdown, no flush
    server.wait().unwrap();
    for sender in senders {
        sender.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300, "only {} reports were acknowledged", acked.len());

    // Restart: every acknowledged report is there once, with its reference.
    let mut server = serve(&dir.0, port).await;
    let pool = sqlx::SqlitePool::connect(&db_url).await.unwrap();
    let total: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM intake_reports").fetch_one(&pool).await.unwrap();
    for ((household, key), reference) in &acked {
        let household = uuid::Uuid::parse_str(household).unwrap();
        let rows = sqlx::query(
            "SELECT reference FROM intake_reports WHERE idempotency_key = $1 AND household_id = $2",
        )
        .bind(key)
        .bind(household)
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(rows.len(), 1, "acknowledged report {key} stored exactly once");
        assert_eq!(&rows[0].get::<String, _>("reference"), reference);
    }
    // Reports committed but not acknowledged (killed before the answer
    // went out) may exist; nothing else does.
    assert!(total as usize >= acked.len());
    assert!(total as usize <= acked.len() + 16 * 512, "{total} stored for {} acked", acked.len());
    // The audit covers every stored submission exactly once: in the chain's
    // summaries, or in the pending summary the killed writer left, which
    // the catch-up pass appends later (one statement: one snapshot, though
    // the restarted server may be appending it meanwhile).
    let summaries: Vec<String> = sqlx::query_scalar(
        "SELECT detail FROM audit_log WHERE action = 'intake.batch' \
         UNION ALL SELECT detail FROM intake_audit_pending",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let audited: i64 = summaries
        .iter()
        .map(|d| {
            serde_json::from_str::<serde_json::Value>(d).unwrap()["submissions"].as_i64().unwrap()
        })
        .sum();
    assert_eq!(audited, total, "submissions in the audit summaries against reports stored");
    // A sender retrying after the restart gets the original answer.
    let token = login(&base).await;
    let ((household, key), reference) = acked.iter().next().unwrap();
    let again = report(&client, &base, &token, household, key).await;
    assert_eq!(again.as_deref(), Some(reference.as_str()));
    let after: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM intake_reports").fetch_one(&pool).await.unwrap();
    assert_eq!(after, total, "the retry stored nothing");
    pool.close().await;
    server.kill().unwrap();
    server.wait().unwrap();
}
