//! Bench kit (issue #6): `hello` is the baseline server, `loadgen` the load
//! generator; `bench/intake.sh` runs both against epigrid in one go.
//!
//! Both binaries use the runtime epigrid's `serve` uses (`#[tokio::main]`:
//! the multi-threaded scheduler with one worker per core), so a ratio of
//! their figures compares the work done per request, not the runtime.
