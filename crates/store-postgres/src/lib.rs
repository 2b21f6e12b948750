//! The PostgreSQL store, for a district or a city: several stateless
//! `epigrid serve` instances share it, and sessions live in it so any
//! instance can serve any request.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

type Db = sqlx::Postgres;

const BACKEND: &str = "postgres";

const BIRTH_YEAR_SQL: &str = "CAST(EXTRACT(YEAR FROM birth_date) AS BIGINT)";

const AUDIT_BEGIN_SQL: &str = "BEGIN";
/// Audit appends hold a transaction-scoped advisory lock, so server instances
/// sharing the database never chain two entries from the same predecessor. An
/// advisory lock needs no privilege on the table, which may be granted INSERT
/// and SELECT only. Advisory locks are database-wide, so the key includes the
/// schema: deployments (or parallel tests) in separate schemas of one database
/// keep separate chains and never wait on each other.
const AUDIT_LOCK_SQL: &str = "SELECT pg_advisory_xact_lock(7309458, hashtext(current_schema()))";
/// 1 while entries written before the chain still wait to be chained.
const UNCHAINED_AUDIT_SQL: &str = "SELECT COUNT(*) FROM pg_catalog.pg_tables \
    WHERE schemaname = current_schema() AND tablename = 'audit_log_unchained'";

/// A row read before its rewrite is locked until the transaction ends, so
/// a concurrent rewrite waits and then reads the new version.
const ROW_LOCK_SQL: &str = " FOR UPDATE";

/// Bounded wait for a connection: past it the server answers 503 rather
/// than letting requests pile up behind a slow database.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct SqlStore {
    // One pool serves both roles; the split exists so a read replica can be
    // plugged in as `reader` without touching the shared query code.
    reader: sqlx::Pool<Db>,
    writer: sqlx::Pool<Db>,
}

pub use SqlStore as PostgresStore;

impl SqlStore {
    /// Connects to `url` and runs the migrations.
    pub async fn open(url: &str) -> epigrid_store::StoreResult<Self> {
        Self::open_with(PgConnectOptions::from_str(url).map_err(map_error)?).await
    }

    /// Connects with every table in `schema` (created if missing). Tests use
    /// a fresh schema each, so they run in parallel on one database.
    pub async fn open_in_schema(url: &str, schema: &str) -> epigrid_store::StoreResult<Self> {
        let valid = !schema.is_empty()
            && schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(epigrid_store::StoreError::Other(format!("bad schema name {schema:?}")));
        }
        let options = PgConnectOptions::from_str(url).map_err(map_error)?;
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(map_error)?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {schema}")))
            .execute(&admin)
            .await
            .map_err(map_error)?;
        admin.close().await;
        Self::open_with(options.options([("search_path", schema)])).await
    }

    /// Drops a schema made by `open_in_schema`.
    pub async fn drop_schema(url: &str, schema: &str) -> epigrid_store::StoreResult<()> {
        let options = PgConnectOptions::from_str(url).map_err(map_error)?;
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(map_error)?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
            .execute(&admin)
            .await
            .map_err(map_error)?;
        admin.close().await;
        Ok(())
    }

    async fn open_with(options: PgConnectOptions) -> epigrid_store::StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(map_error)?;
        let store = Self { reader: pool.clone(), writer: pool };
        epigrid_store::Store::migrate(&store).await?;
        Ok(store)
    }

    pub async fn close(&self) {
        self.writer.close().await;
    }
}

fn map_error(error: sqlx::Error) -> epigrid_store::StoreError {
    use epigrid_store::StoreError;
    match &error {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("23505") => {
                StoreError::Conflict { constraint: db.constraint().unwrap_or("unique").to_owned() }
            }
            Some("23503") => StoreError::MissingReference { what: "parent".into() },
            _ => StoreError::Other(error.to_string()),
        },
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(error.to_string())
        }
        _ => StoreError::Other(error.to_string()),
    }
}

/// The migrations of this backend, in order: (version, description, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "registry", include_str!("../migrations/0001_registry.sql")),
    (2, "audit", include_str!("../migrations/0002_audit.sql")),
    (3, "login attempts", include_str!("../migrations/0003_login_attempts.sql")),
    (4, "audit chain", include_str!("../migrations/0004_audit_chain.sql")),
    (5, "tasks", include_str!("../migrations/0005_tasks.sql")),
    (6, "dashboard index", include_str!("../migrations/0006_dashboard_index.sql")),
    (7, "task photos", include_str!("../migrations/0007_task_photos.sql")),
    (8, "intake", include_str!("../migrations/0008_intake.sql")),
    (9, "task figures", include_str!("../migrations/0009_task_figures.sql")),
    (10, "import jobs", include_str!("../migrations/0010_import_jobs.sql")),
    (11, "match lists", include_str!("../migrations/0011_match_lists.sql")),
    (12, "resident counters", include_str!("../migrations/0012_resident_counters.sql")),
    (
        13,
        "resident counter indexes",
        include_str!("../migrations/0013_resident_counter_indexes.sql"),
    ),
    (14, "intake audit pending", include_str!("../migrations/0014_intake_audit_pending.sql")),
    (15, "staff grid day index", include_str!("../migrations/0015_staff_grid_day_index.sql")),
    (16, "household key index", include_str!("../migrations/0016_household_key_index.sql")),
    (17, "key household index", include_str!("../migrations/0017_key_household_index.sql")),
    (18, "task subject index", include_str!("../migrations/0018_task_subject_index.sql")),
];

include!("../../store/shared/sql_store.rs");
include!("../../store/shared/audited_sql.rs");
include!("../../store/shared/intake_sql.rs");
include!("../../store/shared/retention_sql.rs");
include!("../../store/shared/import_sql.rs");
include!("../../store/shared/matching_sql.rs");
include!("../../store/shared/counters_sql.rs");

pub mod backup;
mod import_bulk;
mod intake_batch;
