//! The store contract: every test here runs once on SQLite and once on
//! PostgreSQL (when `EPIGRID_TEST_PG` names a database), each on a fresh
//! database, so both backends are held to the same behaviour. One binary for
//! the whole suite keeps link time down.

mod accounts;
mod areas;
mod audit;
mod audit_chain;
mod audited;
mod counts;
mod households;
mod import;
mod intake;
mod matching;
mod photos;
mod resident_counters;
mod residents;
mod retention;
mod support;
mod task_figures;
mod tasks;
