//! Resident lookup by exact ID number over the JSON API, with the demo
//! sub-district loaded (50,000 residents by default): SQLite and, when
//! `EPIGRID_TEST_PG` names a database, PostgreSQL side by side in one run.
//!
//! Each iteration is one real HTTP round trip on loopback: session check,
//! blind-index lookup, decryption and masking of the hit.
//!
//! ```sh
//! EPIGRID_TEST_PG=postgres://postgres@127.0.0.1:5432/test cargo bench -p epigrid-web --bench lookup
//! EPIGRID_BENCH_RESIDENTS=50000 …   # population (default 50,000)
//! ```

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use epigrid_service::demo::DemoOptions;
use epigrid_service::{FieldCipher, SecretKey, Service, Settings};
use epigrid_store::{ResidentQuery, Store};

fn main() {
    divan::main();
    // Fixtures live in statics, which are never dropped: clean up by hand.
    for backend in ["sqlite", "postgres"] {
        if let Some(Some(f)) = cell(backend).get() {
            if let Some(guard) = &f._sqlite {
                let _ = std::fs::remove_dir_all(guard.dir());
            }
            if let (Some(guard), Some(url)) = (&f._postgres, epigrid_testkit::postgres_url()) {
                let schema = guard.schema().to_owned();
                f.runtime.block_on(async {
                    let _ = epigrid_store_postgres::PostgresStore::drop_schema(&url, &schema).await;
                });
            }
        }
    }
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    search_url: String,
    id_numbers: Vec<String>,
    // Kept alive for the whole run: dropping them removes the database.
    _sqlite: Option<epigrid_testkit::TempGuard>,
    _postgres: Option<epigrid_testkit::PgGuard>,
}

fn residents() -> u32 {
    std::env::var("EPIGRID_BENCH_RESIDENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(50_000)
}

fn cell(backend: &str) -> &'static OnceLock<Option<Fixture>> {
    static SQLITE: OnceLock<Option<Fixture>> = OnceLock::new();
    static POSTGRES: OnceLock<Option<Fixture>> = OnceLock::new();
    if backend == "sqlite" { &SQLITE } else { &POSTGRES }
}

fn fixture(backend: &'static str) -> Option<&'static Fixture> {
    cell(backend).get_or_init(|| build(backend)).as_ref()
}

fn build(backend: &'static str) -> Option<Fixture> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (store, sqlite, postgres): (Arc<dyn Store>, _, _) = runtime.block_on(async {
        if backend == "sqlite" {
            let (store, guard) = epigrid_testkit::fresh_sqlite().await;
            Some((store, Some(guard), None))
        } else {
            let (store, guard) = epigrid_testkit::fresh_postgres().await?;
            Some((store, None, Some(guard)))
        }
    })?;
    let key = SecretKey::from_hex(&SecretKey::generate_hex()).unwrap();
    let service = Service::new(store, FieldCipher::new(&key), Settings::default());
    let (client, search_url, id_numbers) = runtime.block_on(async {
        let options = DemoOptions {
            residents: residents(),
            admin_password: Some("bench-password".into()),
            ..DemoOptions::default()
        };
        let started = Instant::now();
        let summary = service.generate_demo(&options, &|_| {}).await.unwrap();
        eprintln!(
            "[{backend}] demo with {} residents generated in {:.1} s",
            summary.residents,
            started.elapsed().as_secs_f64()
        );
        let id_numbers = sample_id_numbers(&service).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = epigrid_web::AppState {
            service: service.clone(),
            secure_cookies: false,
            metrics_token: None,
        };
        tokio::spawn(epigrid_web::serve(
            listener,
            state,
            epigrid_web::connection_cap::DEFAULT_MAX_CONNECTIONS,
            std::future::pending(),
        ));
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let login = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .build()
            .unwrap()
            .post(format!("{base}/api/v1/login"))
            .json(&serde_json::json!({ "username": "admin", "password": "bench-password" }))
            .send()
            .await
            .unwrap();
        assert!(login.status().is_success());
        // The search is a POST made with the cookie: it needs the CSRF token.
        let body: serde_json::Value = login.json().await.unwrap();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-csrf-token", body["csrf_token"].as_str().unwrap().parse().unwrap());
        let client = reqwest::Client::builder()
            .cookie_provider(jar)
            .default_headers(headers)
            .build()
            .unwrap();
        (client, format!("{base}/api/v1/residents/search"), id_numbers)
    });
    Some(Fixture { runtime, client, search_url, id_numbers, _sqlite: sqlite, _postgres: postgres })
}

/// Clear ID numbers of a spread of residents, to look up one by one.
async fn sample_id_numbers(service: &Service) -> Vec<String> {
    let rows = service
        .store()
        .search_residents(&ResidentQuery { limit: 500, ..ResidentQuery::default() })
        .await
        .unwrap();
    let numbers: Vec<String> = rows
        .iter()
        .filter_map(|r| r.id_number.as_ref())
        .map(|sealed| service.cipher().open(sealed).unwrap())
        .collect();
    assert!(!numbers.is_empty());
    numbers
}

#[divan::bench(args = ["sqlite", "postgres"], sample_count = 200, sample_size = 5)]
fn lookup_by_id_number(bencher: divan::Bencher, backend: &'static str) {
    let Some(f) = fixture(backend) else {
        eprintln!("[{backend}] skipped: EPIGRID_TEST_PG is not set");
        return;
    };
    let mut next = 0usize;
    bencher.bench_local(|| {
        next = (next + 1) % f.id_numbers.len();
        let body = serde_json::json!({ "id_number": f.id_numbers[next] });
        f.runtime.block_on(async {
            let response = f.client.post(&f.search_url).json(&body).send().await.unwrap();
            assert!(response.status().is_success());
            let page: serde_json::Value = response.json().await.unwrap();
            assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
        });
    });
}
