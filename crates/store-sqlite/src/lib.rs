//! The embedded store: one SQLite file in WAL mode, with a single writer
//! connection (SQLite serialises writers anyway; one connection makes that
//! explicit and avoids busy-retry storms) and a small pool of readers.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

type Db = sqlx::Sqlite;

const BACKEND: &str = "sqlite";

/// Dates are ISO text here: the year is the first four characters.
const BIRTH_YEAR_SQL: &str = "CAST(substr(birth_date, 1, 4) AS INTEGER)";

/// Audit appends are serialised by SQLite's write lock, taken up front with
/// `BEGIN IMMEDIATE` (so another process writing the same file is waited
/// for, not raced); in this process the single writer connection already
/// serialises them, so the lock statement has nothing left to do.
const AUDIT_BEGIN_SQL: &str = "BEGIN IMMEDIATE";
const AUDIT_LOCK_SQL: &str = "SELECT 1";
/// 1 while entries written before the chain still wait to be chained.
const UNCHAINED_AUDIT_SQL: &str =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_log_unchained'";

/// A row read before its rewrite needs no lock: the single writer
/// connection already serialises writes.
const ROW_LOCK_SQL: &str = "";

/// How long a request may wait for a connection before the store answers
/// "unavailable" (and the server 503) instead of queueing without bound.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct SqlStore {
    reader: sqlx::Pool<Db>,
    writer: sqlx::Pool<Db>,
    /// The database file, for the intake's own connection.
    path: std::path::PathBuf,
    /// The intake writer's connection (`intake_batch`), opened at its first
    /// batch.
    intake: std::sync::Arc<std::sync::Mutex<Option<rusqlite::Connection>>>,
    /// The intake's turn at the write lock, kept between back-to-back
    /// batches (`intake_batch::KeptTurn`).
    intake_turn: std::sync::Arc<std::sync::Mutex<intake_batch::KeptTurn>>,
}

pub use SqlStore as SqliteStore;

impl SqlStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH`)
    /// and runs the migrations.
    pub async fn open(url: &str) -> epigrid_store::StoreResult<Self> {
        let options =
            SqliteConnectOptions::from_str(url).map_err(map_error)?.create_if_missing(true);
        Self::open_with(options).await
    }

    pub async fn open_path(path: &Path) -> epigrid_store::StoreResult<Self> {
        Self::open_with(SqliteConnectOptions::new().filename(path).create_if_missing(true)).await
    }

    async fn open_with(options: SqliteConnectOptions) -> epigrid_store::StoreResult<Self> {
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged write survives power loss, not only a
            // crash of the process. Group commits keep the cost small.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(ACQUIRE_TIMEOUT);
        // No ping before handing out a connection: it checks a network
        // link, and here it is a round trip to the connection's worker
        // thread on every acquire, one per intake batch (its turn at the
        // write lock) and per read.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(map_error)?;
        let store = Self {
            path: options.get_filename().to_owned(),
            intake: std::sync::Arc::default(),
            intake_turn: std::sync::Arc::default(),
            writer,
            reader: SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .test_before_acquire(false)
                .connect_lazy_with(options.read_only(true)),
        };
        epigrid_store::Store::migrate(&store).await?;
        // SQLite's advice for long-lived connections: let it analyze what
        // changed since the planner statistics were last gathered.
        sqlx::query("PRAGMA optimize=0x10002").execute(&store.writer).await.map_err(map_error)?;
        Ok(store)
    }
}

fn map_error(error: sqlx::Error) -> epigrid_store::StoreError {
    use epigrid_store::StoreError;
    match &error {
        sqlx::Error::Database(db) => {
            let message = db.message();
            if let Some(columns) = message.strip_prefix("UNIQUE constraint failed: ") {
                // "residents.id_blind" → "residents_id_blind", the name the
                // PostgreSQL index carries too.
                let table = columns.split('.').next().unwrap_or_default();
                let cols: Vec<&str> =
                    columns.split(", ").filter_map(|c| c.split('.').nth(1)).collect();
                StoreError::Conflict { constraint: format!("{table}_{}", cols.join("_")) }
            } else if message.contains("FOREIGN KEY constraint failed") {
                StoreError::MissingReference { what: "parent".into() }
            } else {
                StoreError::Other(error.to_string())
            }
        }
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
    (19, "storage room", include_str!("../migrations/0019_storage_room.sql")),
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
