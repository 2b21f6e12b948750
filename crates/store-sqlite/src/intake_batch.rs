//! The intake batch on SQLite (issue #6), the one write at the peak.
//!
//! It runs on a connection of its own (rusqlite), kept open with its
//! prepared statements, on the caller's thread: the intake writer has a
//! thread of its own. Through sqlx, every statement was a round trip to a
//! worker thread of sqlx's and a batch was one multi-row statement parsed
//! afresh for each batch size; the profile put that worker at a quarter of
//! the server's CPU under load (docs/PERFORMANCE.md).
//!
//! SQLite has one write lock per file. This process takes turns at it
//! through the pool's single writer connection: a batch holds that
//! connection (unused) while it writes on its own, so the two connections
//! never meet SQLite's busy wait; only another process can make a batch
//! wait, up to the busy timeout, as any writer here would. Under load the
//! turn is kept from one batch to the next for up to `TURN_HOLD`, while
//! the intake writer asks for it (`keep_turn`): sqlx pings a connection
//! given back to its pool, a round trip to sqlx's worker thread that cost
//! a wake-up of that thread and of the writer per batch.
//!
//! Values are stored exactly as sqlx stores them (UUIDs as 16-byte blobs,
//! dates as `%F`, timestamps as RFC 3339 with microseconds and `+00:00`,
//! booleans as 0/1), so every other query reads these rows as before. The
//! logic shared with PostgreSQL is `epigrid_store::BatchPlan`.

use std::path::Path;
use std::sync::{LazyLock, PoisonError};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, SecondsFormat, SubsecRound};
use epigrid_domain::Role;
use epigrid_store::audit_chain::{GENESIS_HASH, chain_hash};
use epigrid_store::{
    AuditRecord, BatchAudit, BatchPlan, IntakeOutcome, IntakeWrite, StoreError, StoreResult,
    StoredKeys,
};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
    params_from_iter,
};
use sqlx::Sqlite;
use sqlx::pool::PoolConnection;
use uuid::Uuid;

use crate::{
    ACQUIRE_TIMEOUT, AUDIT_COLUMNS, DELETE_PENDING_AUDIT_SQL, REPORT_COLUMNS, SqlStore,
    UPSERT_GRID_DAYS_HEAD, UPSERT_GRID_DAYS_TAIL, UPSERT_PENDING_AUDIT_TAIL, map_error,
};

/// The batch's statements, prepared once per connection (rusqlite's cache
/// is keyed by the text).
static INSERT_REPORT_SQL: LazyLock<String> = LazyLock::new(|| {
    let placeholders: Vec<String> = (1..=17).map(|n| format!("?{n}")).collect();
    format!(
        "INSERT INTO intake_reports ({REPORT_COLUMNS}) VALUES ({}) \
         ON CONFLICT (idempotency_key, household_id) DO NOTHING",
        placeholders.join(", ")
    )
});
static UPSERT_GRID_DAY_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{UPSERT_GRID_DAYS_HEAD} VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) {UPSERT_GRID_DAYS_TAIL}"
    )
});
static INSERT_AUDIT_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO audit_log ({AUDIT_COLUMNS}, seq, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    )
});
static UPSERT_PENDING_AUDIT_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO intake_audit_pending (writer_id, {AUDIT_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13){UPSERT_PENDING_AUDIT_TAIL}"
    )
});

/// How long the intake keeps its turn at the write lock across
/// back-to-back batches: every other write of this process (tasks made
/// from reports, the office's work) waits at most this long plus a batch.
const TURN_HOLD: Duration = Duration::from_millis(10);

/// The intake's turn at the write lock (the pool's writer connection, held
/// unused) and since when it has held it.
#[derive(Debug)]
struct HeldTurn {
    _writer: PoolConnection<Sqlite>,
    since: Instant,
}

/// Whether the intake writer wants its turn kept, and the turn kept.
#[derive(Debug, Default)]
pub(crate) struct KeptTurn {
    keep: bool,
    held: Option<HeldTurn>,
}

/// Writes a batch in one transaction with its audit summary (see the module).
pub(crate) async fn write(
    store: &SqlStore,
    writes: &[IntakeWrite],
    audit: Option<BatchAudit<'_>>,
) -> StoreResult<Vec<IntakeOutcome>> {
    // This process's turn at the write lock (see the module): the one kept
    // from the previous batch while it is young, else a new one, after the
    // writes queued for it meanwhile.
    let kept = store.intake_turn.lock().unwrap_or_else(PoisonError::into_inner).held.take();
    let turn = match kept {
        Some(turn) if turn.since.elapsed() < TURN_HOLD => turn,
        old => {
            drop(old);
            let writer = store.writer.acquire().await.map_err(map_error)?;
            HeldTurn { _writer: writer, since: Instant::now() }
        }
    };
    let written = on_intake_connection(store, |db| write_batch(db, writes, audit));
    let mut kept = store.intake_turn.lock().unwrap_or_else(PoisonError::into_inner);
    if kept.keep {
        kept.held = Some(turn);
    }
    written
}

/// Whether to keep the turn after a batch; no gives it back at once.
pub(crate) fn keep_turn(store: &SqlStore, keep: bool) {
    let mut kept = store.intake_turn.lock().unwrap_or_else(PoisonError::into_inner);
    kept.keep = keep;
    if !keep {
        // Given back to the pool by its drop (a task sqlx spawns).
        kept.held = None;
    }
}

/// The room `keep_room` adds in one call: a MiB written to the WAL and
/// synced, a few milliseconds even on session 21's slow virtual disk (250
/// pages synced in 1.5–4.4 ms there, docs/PERFORMANCE.md), which is what a
/// submission arriving meanwhile waits.
const ROOM_SLICE_BYTES: u64 = 1 << 20;

/// See `IntakeStore::keep_room`. On the intake's own connection, with the
/// turn at the write lock that a batch takes.
pub(crate) async fn keep_room(store: &SqlStore, target_bytes: u64) -> StoreResult<u64> {
    if target_bytes == 0 || !is_file(&store.path) {
        return Ok(0);
    }
    let _turn = store.writer.acquire().await.map_err(map_error)?;
    on_intake_connection(store, |db| add_room(db, target_bytes).map_err(sqlite_error))
}

/// Runs `work` on the intake's own connection, opened at first use. A disk
/// or lock failure drops it, so the next call opens it afresh.
fn on_intake_connection<T>(
    store: &SqlStore,
    work: impl FnOnce(&mut Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    let mut slot = store.intake.lock().unwrap_or_else(PoisonError::into_inner);
    let db = match &mut *slot {
        Some(db) => db,
        None => slot.insert(open_intake_connection(&store.path)?),
    };
    let done = work(db);
    if matches!(done, Err(StoreError::Unavailable(_))) {
        *slot = None;
    }
    done
}

fn add_room(db: &Connection, target_bytes: u64) -> rusqlite::Result<u64> {
    let bytes = |db: &Connection, sql: &str| -> rusqlite::Result<u64> {
        db.query_row::<i64, _, _>(sql, [], |row| row.get(0))
            .map(|bytes| u64::try_from(bytes).unwrap_or_default())
    };
    let filled = bytes(db, "SELECT coalesce(sum(length(filler)), 0) FROM storage_room")?;
    let free_bytes = |db: &Connection| {
        bytes(
            db,
            "SELECT f.freelist_count * p.page_size FROM pragma_freelist_count() f, pragma_page_size() p",
        )
    };
    if filled == 0 && free_bytes(db)? >= target_bytes / 2 {
        // Topped up only once half is used: a new filling first takes the
        // free pages there are (new rows reuse them before the file grows),
        // so each filling writes the whole room once.
        return Ok(0);
    }
    if filled >= target_bytes {
        // Every slice is in the file's pages (through the WAL, and into
        // the file at the next checkpoint): free them all at once.
        db.execute("DELETE FROM storage_room", [])?;
        return Ok(filled);
    }
    // One slice of zeros a call, kept as a row until the room is filled,
    // so that each call is one short commit. A crash between calls leaves
    // the rows, and the next filling goes on from them.
    let slice = ROOM_SLICE_BYTES.min(target_bytes - filled);
    db.execute(
        "INSERT INTO storage_room (filler) VALUES (zeroblob(?1))",
        [i64::try_from(slice).unwrap_or_default()],
    )?;
    Ok(slice)
}

fn is_file(path: &Path) -> bool {
    !(path.as_os_str().is_empty() || path == Path::new(":memory:"))
}

/// The intake's own connection, set up as sqlx sets up the others (the
/// file is already in WAL mode: that is a property of the file).
fn open_intake_connection(path: &Path) -> StoreResult<Connection> {
    if !is_file(path) {
        return Err(StoreError::Other("the intake needs the database in a file".into()));
    }
    let db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_error)?;
    db.busy_timeout(ACQUIRE_TIMEOUT).map_err(sqlite_error)?;
    // FULL: a batch is acknowledged only once its commit is on disk.
    db.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .map_err(sqlite_error)?;
    Ok(db)
}

fn sqlite_error(error: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match error.sqlite_error_code() {
        // Another process holds the write lock past the busy timeout, or
        // the disk failed: the caller answers "try again".
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::CannotOpen,
        ) => StoreError::Unavailable(error.to_string()),
        _ => StoreError::Other(error.to_string()),
    }
}

fn blob(id: &Uuid) -> &[u8] {
    id.as_bytes()
}

fn optional_blob(id: Option<&Uuid>) -> Option<&[u8]> {
    id.map(blob)
}

fn uuid_from(bytes: &[u8]) -> StoreResult<Uuid> {
    Uuid::from_slice(bytes).map_err(|e| StoreError::Other(format!("stored id: {e}")))
}

/// A batch's reports nearly always share one day: format it once.
#[derive(Default)]
struct DayText(Option<(NaiveDate, String)>);

impl DayText {
    fn of(&mut self, day: NaiveDate) -> &str {
        if self.0.as_ref().is_none_or(|(cached, _)| *cached != day) {
            self.0 = Some((day, day.format("%F").to_string()));
        }
        self.0.as_ref().map(|(_, text)| text.as_str()).unwrap_or_default()
    }
}

fn write_batch(
    db: &mut Connection,
    writes: &[IntakeWrite],
    audit: Option<BatchAudit<'_>>,
) -> StoreResult<Vec<IntakeOutcome>> {
    // IMMEDIATE: the write lock (which also serialises the audit chain's
    // appends) is taken up front, as every writer here does.
    let tx = db.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sqlite_error)?;
    let plan = BatchPlan::new(writes);
    let mut days = DayText::default();
    // Each fresh report is inserted on its own; a key stored before (a
    // retry) inserts nothing, and only then is its original looked up.
    let mut originals = StoredKeys::new();
    {
        let mut insert = tx.prepare_cached(&INSERT_REPORT_SQL).map_err(sqlite_error)?;
        let mut lookup = None;
        for &i in &plan.fresh {
            let r = &writes[i].report;
            let inserted = insert
                .execute(params![
                    blob(&r.id),
                    r.kind,
                    blob(&r.household_id),
                    optional_blob(r.path.sub_district.as_ref()),
                    optional_blob(r.path.community.as_ref()),
                    optional_blob(r.path.grid.as_ref()),
                    optional_blob(r.path.building.as_ref()),
                    optional_blob(r.path.unit.as_ref()),
                    days.of(r.day),
                    r.created_at.to_rfc3339_opts(SecondsFormat::AutoSi, false),
                    r.idempotency_key,
                    r.reference,
                    r.source,
                    optional_blob(r.actor_account_id.as_ref()),
                    r.payload,
                    i32::try_from(r.flagged).unwrap_or(i32::MAX),
                    r.tasks_pending,
                ])
                .map_err(sqlite_error)?;
            if inserted == 0 {
                let lookup = match &mut lookup {
                    Some(statement) => statement,
                    None => lookup.insert(
                        tx.prepare_cached(
                            "SELECT id, reference FROM intake_reports \
                             WHERE household_id = ?1 AND idempotency_key = ?2",
                        )
                        .map_err(sqlite_error)?,
                    ),
                };
                let (id, reference): (Vec<u8>, String) = lookup
                    .query_row(params![blob(&r.household_id), r.idempotency_key], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .map_err(sqlite_error)?;
                originals.insert(
                    (r.household_id, r.idempotency_key.clone()),
                    (uuid_from(&id)?, reference),
                );
            }
        }
    }
    let mut settled = plan.settle(writes, &originals)?;
    // A resident counts once a day: only a row new to the table raises the
    // counter. The writer leaves out residents it knows have a row today,
    // so in the steady state this inserts nothing.
    if !settled.reported.is_empty() {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO intake_reported_residents (grid_id, day, resident_id, community_id) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (grid_id, day, resident_id) DO NOTHING",
            )
            .map_err(sqlite_error)?;
        for (grid, day, resident, community) in &settled.reported {
            let new = insert
                .execute(params![blob(grid), days.of(*day), blob(resident), blob(community)])
                .map_err(sqlite_error)?;
            if new == 1
                && let Some(delta) = settled.deltas.get_mut(&(*grid, *day))
            {
                delta.residents_reported += 1;
            }
        }
    }
    {
        let mut upsert = tx.prepare_cached(&UPSERT_GRID_DAY_SQL).map_err(sqlite_error)?;
        for ((grid, day), d) in &settled.deltas {
            upsert
                .execute(params![
                    blob(grid),
                    blob(&d.community_id),
                    days.of(*day),
                    d.residents_reported,
                    d.health_reports,
                    d.flagged,
                    d.arrivals,
                    d.help_requests,
                    d.volunteer_offers,
                ])
                .map_err(sqlite_error)?;
        }
    }
    match audit {
        Some(BatchAudit { writer, summary, append: true }) => {
            append_chained(&tx, summary)?;
            tx.prepare_cached(DELETE_PENDING_AUDIT_SQL)
                .and_then(|mut delete| delete.execute([blob(&writer)]))
                .map_err(sqlite_error)?;
        }
        Some(BatchAudit { writer, summary, append: false }) => {
            keep_pending(&tx, writer, summary)?;
        }
        None => {}
    }
    tx.commit().map_err(sqlite_error)?;
    Ok(settled.outcomes)
}

/// The values of `AUDIT_COLUMNS` for `e`, in order, stored as sqlx stores
/// them; `at` is the entry's time as text, truncated to the microsecond the
/// chain hashes.
fn audit_values<'a>(e: &'a AuditRecord, at: &'a str) -> [ToSqlOutput<'a>; 12] {
    let null = || ToSqlOutput::Borrowed(ValueRef::Null);
    let id = |id: &'a Uuid| ToSqlOutput::Borrowed(ValueRef::Blob(id.as_bytes()));
    let text = |s: &'a str| ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes()));
    let optional_id = |v: Option<&'a Uuid>| v.map_or_else(null, id);
    let optional_text = |v: Option<&'a str>| v.map_or_else(null, text);
    [
        id(&e.id),
        text(at),
        optional_id(e.actor_user_id.as_ref()),
        text(&e.actor_name),
        optional_text(e.actor_role.map(Role::as_str)),
        text(&e.action),
        optional_text(e.target_kind.as_deref()),
        optional_id(e.target_id.as_ref()),
        optional_id(e.community_id.as_ref()),
        optional_text(e.client_addr.as_deref()),
        text(&e.outcome),
        text(&e.detail),
    ]
}

fn at_text(e: &AuditRecord) -> String {
    e.at.trunc_subsecs(6).to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// Replaces the writer's pending summary (one small row: the batch writes
/// one page for it rather than the audit log's nine b-trees).
fn keep_pending(tx: &Transaction<'_>, writer: Uuid, e: &AuditRecord) -> StoreResult<()> {
    let at = at_text(e);
    let writer = ToSqlOutput::Borrowed(ValueRef::Blob(writer.as_bytes()));
    tx.prepare_cached(&UPSERT_PENDING_AUDIT_SQL)
        .and_then(|mut upsert| {
            upsert.execute(params_from_iter(std::iter::once(writer).chain(audit_values(e, &at))))
        })
        .map_err(sqlite_error)?;
    Ok(())
}

/// Appends `e` after the newest audit entry, as the shared
/// `append_chained` does through sqlx: the transaction holds the write lock.
fn append_chained(tx: &Transaction<'_>, e: &AuditRecord) -> StoreResult<()> {
    let last: Option<(i64, Vec<u8>)> = tx
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .and_then(|mut head| head.query_row([], |row| Ok((row.get(0)?, row.get(1)?))).optional())
        .map_err(sqlite_error)?;
    let (last_seq, prev_hash) = last.unwrap_or((0, GENESIS_HASH.to_vec()));
    let seq = last_seq + 1;
    let hash = chain_hash(&prev_hash, seq, &AuditRecord { at: e.at.trunc_subsecs(6), ..e.clone() });
    let at = at_text(e);
    let chained = [
        seq.into(),
        ToSqlOutput::Borrowed(ValueRef::Blob(&prev_hash)),
        ToSqlOutput::Borrowed(ValueRef::Blob(&hash[..])),
    ];
    tx.prepare_cached(&INSERT_AUDIT_SQL)
        .and_then(|mut insert| {
            insert.execute(params_from_iter(audit_values(e, &at).into_iter().chain(chained)))
        })
        .map_err(sqlite_error)?;
    Ok(())
}
