//! The baseline: axum on epigrid's runtime settings and allocator, answering
//! the intake route's shape (read a JSON body, answer a small JSON receipt)
//! with no validation, storage or durability. Usage: `hello 127.0.0.1:PORT`.

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

/// The allocator epigrid's binary uses, so the ratio compares the work done
/// per request and not two allocators.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn receipt(Json(body): Json<Value>) -> (axum::http::StatusCode, Json<Value>) {
    let key = body.get("idempotency_key").and_then(Value::as_str).unwrap_or_default().len();
    (
        axum::http::StatusCode::CREATED,
        Json(json!({ "reference": "JK-20261129-HELLO000", "replayed": key == 0 })),
    )
}

fn main() -> std::io::Result<()> {
    // epigrid's own runtime (one worker fewer than the cores), so the ratio
    // compares the work per request on the same threads.
    epigrid_web::serving_runtime()?.block_on(serve())
}

async fn serve() -> std::io::Result<()> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8090".into());
    let app = Router::new()
        .route("/api/v1/public/health-reports", post(receipt))
        .route("/", axum::routing::get(|| async { "ok" }));
    // epigrid's own listener settings (its backlog).
    let listener = epigrid_web::bind(&address).await?;
    eprintln!("hello is serving on http://{address}/");
    axum::serve(listener, app).await
}
