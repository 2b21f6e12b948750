//! The audit chain against the database itself: rows changed, deleted and
//! reordered behind the store's back are named by `verify_audit_chain`, and
//! entries written before the chain existed are chained by the migration.
//! These need raw SQL, so they run on each backend by hand rather than
//! through `store_contract_tests!`.

use std::sync::Arc;

use epigrid_domain::Role;
use epigrid_store::audit_chain::BreakReason;
use epigrid_store::{AuditQuery, AuditRecord, ChainVerdict, Store};
use epigrid_store_postgres::PostgresStore;
use epigrid_store_sqlite::SqliteStore;
use epigrid_testkit::{fresh_postgres, fresh_sqlite, now, postgres_url};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

/// A connection of our own to a test's database, for raw SQL.
enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Raw {
    async fn sqlite(path: &std::path::Path) -> Raw {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
        Raw::Sqlite(sqlx::SqlitePool::connect_with(options).await.unwrap())
    }

    async fn postgres(url: &str, schema: &str) -> Raw {
        let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
        let options = options.options([("search_path", schema)]);
        Raw::Postgres(sqlx::PgPool::connect_with(options).await.unwrap())
    }

    async fn exec(&self, sql: &str) {
        let sql = AssertSqlSafe(sql.to_owned());
        match self {
            Raw::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
            Raw::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        }
        .unwrap_or_else(|e| panic!("{e}"));
    }

    async fn close(self) {
        match self {
            Raw::Sqlite(pool) => pool.close().await,
            Raw::Postgres(pool) => pool.close().await,
        }
    }
}

fn entry(i: usize) -> AuditRecord {
    AuditRecord {
        id: Uuid::now_v7(),
        at: now(),
        actor_user_id: Some(Uuid::now_v7()),
        actor_name: format!("g{i:02}"),
        actor_role: Some(Role::GridWorker),
        action: "resident.update".into(),
        target_kind: Some("resident".into()),
        target_id: Some(Uuid::now_v7()),
        community_id: Some(Uuid::now_v7()),
        client_addr: Some("10.1.2.3".into()),
        outcome: "ok".into(),
        detail: format!(r#"{{"fields":["phone"],"i":{i}}}"#),
    }
}

#[track_caller]
fn assert_broken(verdict: ChainVerdict, seq: i64, id: Uuid, reason: &BreakReason) {
    match verdict {
        ChainVerdict::Broken(b) => {
            assert_eq!((b.seq, b.id), (seq, Some(id)), "{b}");
            match (&b.reason, reason) {
                (BreakReason::Unreadable(_), BreakReason::Unreadable(_)) => {}
                (got, want) => assert_eq!(got, want, "{b}"),
            }
        }
        intact => panic!("expected a break at seq={seq}, got {intact:?}"),
    }
}

#[track_caller]
fn assert_intact(verdict: ChainVerdict, n: u64) {
    assert!(matches!(verdict, ChainVerdict::Intact { entries, .. } if entries == n), "{verdict:?}");
}

/// Changes, reorders, corrupts and deletes rows one after another, each
/// time checking that the first bad entry is named and that undoing the
/// change makes the log whole again.
async fn tamper(store: Arc<dyn Store>, raw: &Raw) {
    let written: Vec<AuditRecord> = (0..6).map(entry).collect();
    for e in &written {
        store.append_audit(e).await.unwrap();
    }
    let id = |seq: usize| written[seq - 1].id;
    assert_intact(store.verify_audit_chain().await.unwrap(), 6);

    raw.exec("UPDATE audit_log SET outcome = 'denied' WHERE seq = 4").await;
    assert_broken(store.verify_audit_chain().await.unwrap(), 4, id(4), &BreakReason::HashMismatch);
    raw.exec("UPDATE audit_log SET outcome = 'ok' WHERE seq = 4").await;
    assert_intact(store.verify_audit_chain().await.unwrap(), 6);

    raw.exec("UPDATE audit_log SET detail = '{}' WHERE seq = 6").await;
    assert_broken(store.verify_audit_chain().await.unwrap(), 6, id(6), &BreakReason::HashMismatch);
    raw.exec(r#"UPDATE audit_log SET detail = '{"fields":["phone"],"i":5}' WHERE seq = 6"#).await;
    assert_intact(store.verify_audit_chain().await.unwrap(), 6);

    // Entries 5 and 6 swap places.
    for sql in [
        "UPDATE audit_log SET seq = -5 WHERE seq = 5",
        "UPDATE audit_log SET seq = 5 WHERE seq = 6",
        "UPDATE audit_log SET seq = 6 WHERE seq = -5",
    ] {
        raw.exec(sql).await;
    }
    assert_broken(
        store.verify_audit_chain().await.unwrap(),
        5,
        id(6),
        &BreakReason::PrevHashMismatch,
    );
    for sql in [
        "UPDATE audit_log SET seq = -5 WHERE seq = 6",
        "UPDATE audit_log SET seq = 6 WHERE seq = 5",
        "UPDATE audit_log SET seq = 5 WHERE seq = -5",
    ] {
        raw.exec(sql).await;
    }
    assert_intact(store.verify_audit_chain().await.unwrap(), 6);

    // A value that no longer decodes is named, not a failure of the whole run.
    raw.exec("UPDATE audit_log SET actor_role = 'emperor' WHERE seq = 3").await;
    assert_broken(
        store.verify_audit_chain().await.unwrap(),
        3,
        id(3),
        &BreakReason::Unreadable(String::new()),
    );
    raw.exec("UPDATE audit_log SET actor_role = 'grid_worker' WHERE seq = 3").await;
    assert_intact(store.verify_audit_chain().await.unwrap(), 6);

    raw.exec("DELETE FROM audit_log WHERE seq = 2").await;
    assert_broken(
        store.verify_audit_chain().await.unwrap(),
        3,
        id(3),
        &BreakReason::SeqGap { expected: 2 },
    );
    // Closing the gap by renumbering does not hide the deletion.
    for seq in 3..=6 {
        raw.exec(&format!("UPDATE audit_log SET seq = {} WHERE seq = {seq}", seq - 1)).await;
    }
    assert_broken(
        store.verify_audit_chain().await.unwrap(),
        2,
        id(3),
        &BreakReason::PrevHashMismatch,
    );
}

#[tokio::test]
async fn sqlite_rows_changed_in_the_database_are_named() {
    let (store, guard) = fresh_sqlite().await;
    let raw = Raw::sqlite(&guard.dir().join("epigrid.db")).await;
    tamper(store, &raw).await;
    raw.close().await;
}

#[tokio::test]
async fn postgres_rows_changed_in_the_database_are_named() {
    let Some((store, guard)) = fresh_postgres().await else {
        eprintln!("skipped: EPIGRID_TEST_PG is not set");
        return;
    };
    let raw = Raw::postgres(&postgres_url().unwrap(), guard.schema()).await;
    tamper(store, &raw).await;
    raw.close().await;
    guard.cleanup().await;
}

// ---- entries written before the chain ---------------------------------------

const SQLITE_BEFORE_CHAIN: &[(i64, &str, &str)] = &[
    (1, "registry", include_str!("../../../store-sqlite/migrations/0001_registry.sql")),
    (2, "audit", include_str!("../../../store-sqlite/migrations/0002_audit.sql")),
    (3, "login attempts", include_str!("../../../store-sqlite/migrations/0003_login_attempts.sql")),
];
const POSTGRES_BEFORE_CHAIN: &[(i64, &str, &str)] = &[
    (1, "registry", include_str!("../../../store-postgres/migrations/0001_registry.sql")),
    (2, "audit", include_str!("../../../store-postgres/migrations/0002_audit.sql")),
    (
        3,
        "login attempts",
        include_str!("../../../store-postgres/migrations/0003_login_attempts.sql"),
    ),
];

fn migrator(migrations: &'static [(i64, &'static str, &'static str)]) -> sqlx::migrate::Migrator {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    (*description).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Inserts entries the way migration 2's table held them: no seq, no hashes.
async fn insert_unchained(raw: &Raw, entries: &[AuditRecord]) {
    let sql = "INSERT INTO audit_log (id, at, actor_user_id, actor_name, actor_role, action, \
        target_kind, target_id, community_id, client_addr, outcome, detail) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
    macro_rules! bind_all {
        ($pool:expr, $e:expr) => {
            sqlx::query(sql)
                .bind($e.id)
                .bind($e.at)
                .bind($e.actor_user_id)
                .bind($e.actor_name.clone())
                .bind($e.actor_role.map(Role::as_str))
                .bind($e.action.clone())
                .bind($e.target_kind.clone())
                .bind($e.target_id)
                .bind($e.community_id)
                .bind($e.client_addr.clone())
                .bind($e.outcome.clone())
                .bind($e.detail.clone())
                .execute($pool)
                .await
                .unwrap()
        };
    }
    for e in entries {
        match raw {
            Raw::Sqlite(pool) => drop(bind_all!(pool, e)),
            Raw::Postgres(pool) => drop(bind_all!(pool, e)),
        }
    }
}

/// Opening the store chains the old entries in the order they were written,
/// keeps them as they were, and goes on appending after them.
async fn check_chained_at_migration(store: Arc<dyn Store>, old: &[AuditRecord]) {
    assert_intact(store.verify_audit_chain().await.unwrap(), old.len() as u64);
    let links = store.audit_chain(0, 100).await.unwrap();
    let ids: Vec<Uuid> = links.iter().map(|l| l.id.unwrap()).collect();
    assert_eq!(ids, old.iter().map(|e| e.id).collect::<Vec<_>>(), "chained in id order");
    let listed =
        store.list_audit(&AuditQuery { limit: 100, ..AuditQuery::default() }).await.unwrap();
    assert_eq!(listed, old.iter().rev().cloned().collect::<Vec<_>>(), "every field kept");
    store.append_audit(&entry(99)).await.unwrap();
    assert_intact(store.verify_audit_chain().await.unwrap(), old.len() as u64 + 1);
}

#[tokio::test]
async fn sqlite_entries_from_before_the_chain_are_chained_at_migration() {
    let dir = std::env::temp_dir().join(format!("epigrid-test-{}", Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    let path = dir.join("epigrid.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    migrator(SQLITE_BEFORE_CHAIN).run(&pool).await.unwrap();
    let raw = Raw::Sqlite(pool);
    let old: Vec<AuditRecord> = (0..5).map(entry).collect();
    // Written out of id order: the chain follows the order of writing.
    insert_unchained(
        &raw,
        &[old[2].clone(), old[0].clone(), old[4].clone(), old[1].clone(), old[3].clone()],
    )
    .await;
    raw.close().await;

    let store = SqliteStore::open_path(&path).await.unwrap();
    check_chained_at_migration(Arc::new(store.clone()), &old).await;
    drop(store);
    // Opening again finds nothing left to chain.
    let again = SqliteStore::open_path(&path).await.unwrap();
    assert_intact(again.verify_audit_chain().await.unwrap(), 6);
}

#[tokio::test]
async fn postgres_entries_from_before_the_chain_are_chained_at_migration() {
    let Some(url) = postgres_url() else {
        eprintln!("skipped: EPIGRID_TEST_PG is not set");
        return;
    };
    let schema = format!("t_{}", Uuid::now_v7().simple());
    struct Cleanup(String, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let (url, schema) = (self.0.clone(), self.1.clone());
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                runtime
                    .block_on(PostgresStore::drop_schema(&url, &schema))
                    .map_err(std::io::Error::other)
            })
            .join();
        }
    }
    let _cleanup = Cleanup(url.clone(), schema.clone());
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await.unwrap();
    admin.close().await;
    let raw = Raw::postgres(&url, &schema).await;
    if let Raw::Postgres(pool) = &raw {
        migrator(POSTGRES_BEFORE_CHAIN).run(pool).await.unwrap();
    }
    let old: Vec<AuditRecord> = (0..5).map(entry).collect();
    insert_unchained(
        &raw,
        &[old[3].clone(), old[1].clone(), old[0].clone(), old[4].clone(), old[2].clone()],
    )
    .await;
    raw.close().await;

    let store = PostgresStore::open_in_schema(&url, &schema).await.unwrap();
    check_chained_at_migration(Arc::new(store.clone()), &old).await;
    store.close().await;
    let again = PostgresStore::open_in_schema(&url, &schema).await.unwrap();
    assert_intact(again.verify_audit_chain().await.unwrap(), 6);
    again.close().await;
}
