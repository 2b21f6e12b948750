//! Assertions the contract tests share.

use std::fmt::Debug;

use epigrid_store::{LevelCounts, Store, StoreError, StoreResult};
use uuid::Uuid;

#[track_caller]
pub fn assert_conflict<T: Debug>(result: StoreResult<T>, constraint: &str) {
    match result {
        Err(StoreError::Conflict { constraint: got }) => assert_eq!(got, constraint),
        other => panic!("expected a conflict on {constraint}, got {other:?}"),
    }
}

#[track_caller]
pub fn assert_missing_reference<T: Debug>(result: StoreResult<T>) {
    match result {
        Err(StoreError::MissingReference { .. }) => {}
        other => panic!("expected a missing reference, got {other:?}"),
    }
}

/// Ids sorted, for comparing sets of records.
pub fn sorted(ids: impl IntoIterator<Item = Uuid>) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = ids.into_iter().collect();
    ids.sort();
    ids
}

pub async fn counts(store: &dyn Store) -> LevelCounts {
    store.level_counts(None).await.unwrap()
}

/// Follows an id-keyed cursor until a short page, checking that every page
/// is in ascending id order and starts after the one before.
pub async fn collect_pages<T, F, Fut>(
    page_size: usize,
    id_of: fn(&T) -> Uuid,
    mut fetch: F,
) -> Vec<T>
where
    F: FnMut(Option<Uuid>) -> Fut,
    Fut: std::future::Future<Output = StoreResult<Vec<T>>>,
{
    let mut all: Vec<T> = Vec::new();
    let mut after = None;
    loop {
        let page = fetch(after).await.unwrap();
        assert!(page.len() <= page_size, "a page holds at most the limit");
        let ids: Vec<Uuid> = page.iter().map(id_of).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "a page is in id order");
        if let (Some(previous), Some(first)) = (after, ids.first()) {
            assert!(*first > previous, "a page starts after the cursor");
        }
        let short = page.len() < page_size;
        after = ids.last().copied().or(after);
        all.extend(page);
        if short {
            return all;
        }
    }
}

/// Runs `statements` on the SQLite file at `path` past the store (a test
/// taking the schema back to an older migration), then opens the store
/// again, which runs the later migrations.
pub async fn reopen_sqlite_after(
    path: &std::path::Path,
    statements: impl IntoIterator<Item = String>,
) -> epigrid_store_sqlite::SqliteStore {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let raw = sqlx::SqlitePool::connect_with(options).await.unwrap();
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&raw).await.unwrap();
    }
    raw.close().await;
    epigrid_store_sqlite::SqliteStore::open_path(path).await.unwrap()
}

/// The same on PostgreSQL, in `schema`: each statement names the schema of
/// its tables itself.
pub async fn reopen_postgres_after(
    schema: &str,
    statements: impl IntoIterator<Item = String>,
) -> epigrid_store_postgres::PostgresStore {
    let url = epigrid_testkit::postgres_url().unwrap();
    let raw = sqlx::PgPool::connect(&url).await.unwrap();
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&raw).await.unwrap();
    }
    raw.close().await;
    epigrid_store_postgres::PostgresStore::open_in_schema(&url, schema).await.unwrap()
}
