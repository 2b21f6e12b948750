//! The intake batch on SQLite (issue #6), the one write at the peak.
//!
//! It runs on the SQLite handle of the store's single writer connection,
//! locked out of sqlx for the batch: prepared single-row statements stepped
//! on the caller's thread (the intake writer has a thread of its own), in
//! one `BEGIN IMMEDIATE` transaction with the batch's audit entry. Through
//! sqlx, every statement was a round trip to its worker thread and a batch
//! was one multi-row statement parsed afresh for each batch size; the
//! profile put that worker thread at a quarter of the server's CPU under
//! load (docs/PERFORMANCE.md). Holding sqlx's own connection, rather than
//! opening a second one, keeps SQLite's one-writer rule inside this process
//! (no busy retries between two writers of the same file).
//!
//! Values are stored exactly as sqlx stores them (UUIDs as 16-byte blobs,
//! dates as `%F`, timestamps as RFC 3339 with microseconds and `+00:00`,
//! booleans as 0/1), so every other query reads these rows as before. The
//! logic shared with PostgreSQL is `epigrid_store::BatchPlan`.

use std::collections::HashMap;

use chrono::{NaiveDate, SecondsFormat, SubsecRound};
use epigrid_domain::Role;
use epigrid_store::audit_chain::{GENESIS_HASH, chain_hash};
use epigrid_store::{AuditRecord, BatchPlan, IntakeOutcome, IntakeWrite, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use sqlx::sqlite::LockedSqliteHandle;
use uuid::Uuid;

use crate::{
    AUDIT_COLUMNS, REPORT_COLUMNS, SqlStore, UPSERT_GRID_DAYS_HEAD, UPSERT_GRID_DAYS_TAIL,
    map_error,
};

/// Writes a batch in one transaction with its audit entry (see the module).
pub(crate) async fn write(
    store: &SqlStore,
    writes: &[IntakeWrite],
    audit: Option<&AuditRecord>,
) -> StoreResult<Vec<IntakeOutcome>> {
    let mut conn = store.writer.acquire().await.map_err(map_error)?;
    let mut handle = conn.lock_handle().await.map_err(map_error)?;
    with_handle(&mut handle, |db| write_batch(db, writes, audit))
}

/// Runs `work` on the locked handle through rusqlite.
#[allow(unsafe_code)]
fn with_handle<T>(
    handle: &mut LockedSqliteHandle<'_>,
    work: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    // SAFETY: `from_handle` borrows a live `sqlite3*` without owning it (it
    // is not closed when the `Connection` drops). The pointer comes from
    // sqlx's `LockedSqliteHandle`, which guarantees that while it lives
    // sqlx's worker thread makes no call on the handle or its statements;
    // `handle` is borrowed for this whole function, and the `Connection`,
    // with every statement it prepared (finalized on drop), is dropped
    // before the function returns. No transaction outlives it either:
    // `write_batch` commits, or its `Transaction` rolls back on drop.
    let db = unsafe { Connection::from_handle(handle.as_raw_handle().as_ptr()) }
        .map_err(sqlite_error)?;
    work(&db)
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
    db: &Connection,
    writes: &[IntakeWrite],
    audit: Option<&AuditRecord>,
) -> StoreResult<Vec<IntakeOutcome>> {
    // IMMEDIATE: the write lock (which also serialises the audit chain's
    // appends) is taken up front, as every writer here does.
    let tx =
        Transaction::new_unchecked(db, TransactionBehavior::Immediate).map_err(sqlite_error)?;
    let plan = BatchPlan::new(writes);
    let mut days = DayText::default();
    // Each fresh report is inserted on its own; a key stored before (a
    // retry) inserts nothing, and only then is its original looked up.
    let mut originals = HashMap::new();
    {
        let placeholders: Vec<String> = (1..=17).map(|n| format!("?{n}")).collect();
        let mut insert = tx
            .prepare(&format!(
                "INSERT INTO intake_reports ({REPORT_COLUMNS}) VALUES ({}) \
                 ON CONFLICT (idempotency_key) DO NOTHING",
                placeholders.join(", ")
            ))
            .map_err(sqlite_error)?;
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
                        tx.prepare(
                            "SELECT id, reference FROM intake_reports WHERE idempotency_key = ?1",
                        )
                        .map_err(sqlite_error)?,
                    ),
                };
                let (id, reference): (Vec<u8>, String) = lookup
                    .query_row([&r.idempotency_key], |row| Ok((row.get(0)?, row.get(1)?)))
                    .map_err(sqlite_error)?;
                originals.insert(r.idempotency_key.clone(), (uuid_from(&id)?, reference));
            }
        }
    }
    let mut settled = plan.settle(writes, &originals)?;
    // A resident counts once a day: only a row new to the table raises the
    // counter. The writer leaves out residents it knows have a row today,
    // so in the steady state this inserts nothing.
    if !settled.reported.is_empty() {
        let mut insert = tx
            .prepare(
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
        let mut upsert = tx
            .prepare(&format!(
                "{UPSERT_GRID_DAYS_HEAD} VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 {UPSERT_GRID_DAYS_TAIL}"
            ))
            .map_err(sqlite_error)?;
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
    if let Some(entry) = audit {
        append_chained(&tx, entry)?;
    }
    tx.commit().map_err(sqlite_error)?;
    Ok(settled.outcomes)
}

/// Appends `e` after the newest audit entry, as the shared
/// `append_chained` does through sqlx: the transaction holds the write lock.
fn append_chained(tx: &Transaction<'_>, e: &AuditRecord) -> StoreResult<()> {
    let last: Option<(i64, Vec<u8>)> = tx
        .query_row("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()
        .map_err(sqlite_error)?;
    let (last_seq, prev_hash) = last.unwrap_or((0, GENESIS_HASH.to_vec()));
    let seq = last_seq + 1;
    let at = e.at.trunc_subsecs(6);
    let hash = chain_hash(&prev_hash, seq, &AuditRecord { at, ..e.clone() });
    tx.execute(
        &format!(
            "INSERT INTO audit_log ({AUDIT_COLUMNS}, seq, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
        ),
        params![
            blob(&e.id),
            at.to_rfc3339_opts(SecondsFormat::AutoSi, false),
            optional_blob(e.actor_user_id.as_ref()),
            e.actor_name,
            e.actor_role.map(Role::as_str),
            e.action,
            e.target_kind,
            optional_blob(e.target_id.as_ref()),
            optional_blob(e.community_id.as_ref()),
            e.client_addr,
            e.outcome,
            e.detail,
            seq,
            prev_hash,
            &hash[..],
        ],
    )
    .map_err(sqlite_error)?;
    Ok(())
}
