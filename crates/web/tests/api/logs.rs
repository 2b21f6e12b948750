//! Logs carry no personal data. Every log line of this test binary from the
//! moment this test starts (at TRACE level, SQL included) is captured, a full
//! journey with ID numbers and phones runs through the API, and the capture
//! is scanned for those values in clear.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::json;

use crate::support::{ADMIN, App, WORKER_A};

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn capture() -> Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER
        .get_or_init(|| {
            let buffer = Arc::new(Mutex::new(Vec::new()));
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(Capture(buffer.clone()))
                .with_ansi(false)
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
            buffer
        })
        .clone()
}

#[tokio::test]
async fn no_id_number_or_phone_reaches_the_logs() {
    let buffer = capture();
    let app = App::spawn().await;
    let worker = app.login(WORKER_A).await;
    let admin = app.login(ADMIN).await;
    let secrets = ["370102199003071234", "13612345678", "11010519491231002X", "13800138000"];

    // Create, search in every way, edit, fail validation, unmask.
    let created = worker
        .post(app.url("/api/v1/residents"))
        .json(&json!({ "household_id": app.seed.household_a, "name": "孙丽", "relation": "spouse",
                       "id_number": "37010219900307123X", "phone": "13612345678" }))
        .send()
        .await
        .unwrap();
    // The check character makes this one invalid: the rejected value must not be logged either.
    assert_eq!(created.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    let created = worker
        .post(app.url("/api/v1/residents"))
        .json(&json!({ "household_id": app.seed.household_a, "name": "孙丽", "relation": "spouse",
                       "id_number": "440524188001010014", "phone": "13612345678" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    for query in
        ["id_number=11010519491231002X", "phone=13800138000", "id_number=370102199003071234"]
    {
        let response =
            worker.get(app.url(&format!("/api/v1/residents?{query}"))).send().await.unwrap();
        assert!(response.status().is_success() || response.status().is_client_error());
    }
    worker
        .post(app.url("/api/v1/residents/search"))
        .json(&json!({ "phone": "13612345678" }))
        .send()
        .await
        .unwrap();
    worker
        .patch(app.url(&format!("/api/v1/residents/{}", app.seed.resident_a)))
        .json(&json!({ "phone": "13800138000" }))
        .send()
        .await
        .unwrap();
    let unmasked = admin
        .post(app.url(&format!("/api/v1/residents/{}/unmask", app.seed.resident_a)))
        .json(&json!({ "field": "id_number", "reason": "verify_identity" }))
        .send()
        .await
        .unwrap();
    assert!(unmasked.status().is_success());
    // Pages too: the edit form with a bad number, and the search page.
    worker
        .post(app.url(&format!("/residents/{}/edit", app.seed.resident_a)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "name={}&id_number=370102199003071234&relation=head",
            form_urlencoded::byte_serialize("王秀英".as_bytes()).collect::<String>()
        ))
        .send()
        .await
        .unwrap();

    let text = String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned();
    assert!(
        text.contains("http"),
        "the capture sees the server's request logs:\n{}",
        &text[..text.len().min(2000)]
    );
    for secret in secrets.iter().chain(["37010219900307123X", "440524188001010014"].iter()) {
        let hits: Vec<&str> = text.lines().filter(|l| l.contains(secret)).take(3).collect();
        assert!(hits.is_empty(), "{secret} is in the logs: {hits:?}");
    }
}
