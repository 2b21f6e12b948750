//! The intake batch on PostgreSQL (issue #6): one statement, and so one
//! round trip, per batch in the common case (`ONE_STATEMENT_SQL`), else a
//! handful in a transaction, whatever its size,
//! and none that answers a row per report: an insert of the reports checked
//! by its count, a lookup of the keys only when some were already stored,
//! one insert of the day's residents, one upsert of the grids' days, the
//! audit summary, the commit. The rows go as
//! one array per column (`UNNEST`), so each statement has one text whatever
//! the batch's size: prepared once per connection, where a multi-row
//! `VALUES` list was a new statement for every size, each parsed, planned and
//! cached on its own (docs/PERFORMANCE.md, session 9). The logic shared with
//! SQLite is `epigrid_store::BatchPlan`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::NaiveDate;

use epigrid_store::{
    AuditRecord, BatchAudit, BatchPlan, GridDayDelta, IntakeOutcome, IntakeWrite, ReportRecord,
    ReportedRow, StoreError, StoreResult, StoredKeys,
};
use uuid::Uuid;

use crate::{
    AUDIT_BEGIN_SQL, AUDIT_COLUMNS, AUDIT_LOCK_SQL, DELETE_PENDING_AUDIT_SQL, Db, DbQuery,
    REPORT_COLUMNS, SqlStore, UPSERT_GRID_DAYS_HEAD, UPSERT_GRID_DAYS_TAIL,
    UPSERT_PENDING_AUDIT_TAIL, append_chained, bind_audit, get, map_error, placeholders,
};

/// One column of `rows`, bound as a PostgreSQL array for `UNNEST`.
fn column<'a, T, U>(rows: &'a [T], field: impl Fn(&'a T) -> U) -> Vec<U> {
    rows.iter().map(field).collect()
}

/// The stored `(id, reference)` of each of `keys` (household, key) that
/// exists.
async fn stored_keys(
    conn: &mut <Db as sqlx::Database>::Connection,
    keys: &[(Uuid, &str)],
) -> StoreResult<StoredKeys> {
    let mut found = StoredKeys::new();
    let rows = sqlx::query(
        "SELECT id, reference, household_id, idempotency_key FROM intake_reports \
         WHERE (idempotency_key, household_id) IN \
             (SELECT * FROM UNNEST($1::text[], $2::uuid[]))",
    )
    .bind(column(keys, |k| k.1))
    .bind(column(keys, |k| k.0))
    .fetch_all(&mut *conn)
    .await
    .map_err(map_error)?;
    for row in rows {
        found.insert(
            (get(&row, "household_id")?, get(&row, "idempotency_key")?),
            (get(&row, "id")?, get(&row, "reference")?),
        );
    }
    Ok(found)
}

/// The reports' insert: one column per array, so the statement's text is
/// the same whatever the batch's size. A multi-row `VALUES` list is a new
/// statement for each size: parsed, planned and cached per connection and
/// per size, with 17 parameters a row for PostgreSQL to bind and plan.
static INSERT_REPORTS_SQL: LazyLock<String> =
    LazyLock::new(|| format!("{}{SKIP_STORED_KEYS}", INSERT_NEW_REPORTS_SQL.as_str()));

/// How `INSERT_REPORTS_SQL` skips a key stored before.
const SKIP_STORED_KEYS: &str = " ON CONFLICT (idempotency_key, household_id) DO NOTHING";

/// The reports' insert, failing on a key stored before rather than
/// skipping it (see `ONE_STATEMENT_SQL`).
static INSERT_NEW_REPORTS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO intake_reports ({REPORT_COLUMNS}) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::uuid[], \
             $6::uuid[], $7::uuid[], $8::uuid[], $9::date[], $10::timestamptz[], $11::text[], \
             $12::text[], $13::text[], $14::uuid[], $15::text[], $16::int4[], $17::bool[])"
    )
});

/// The day's new reporting residents, in the same form.
const INSERT_REPORTED_SQL: &str = "INSERT INTO intake_reported_residents \
    (grid_id, day, resident_id, community_id) \
    SELECT * FROM UNNEST($1::uuid[], $2::date[], $3::uuid[], $4::uuid[]) \
    ON CONFLICT (grid_id, day, resident_id) DO NOTHING RETURNING grid_id, day";

/// The grids' days, in the same form.
static UPSERT_GRID_DAYS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{UPSERT_GRID_DAYS_HEAD} SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::date[], \
         $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::int8[], $9::int8[]){UPSERT_GRID_DAYS_TAIL}"
    )
});

/// Binds the reports' 17 columns, as arrays, to `$1`…`$17` of `sql`.
fn bind_reports<'q>(sql: &'static str, rows: &'q [&ReportRecord]) -> DbQuery<'q> {
    sqlx::query(sql)
        .bind(column(rows, |r| r.id))
        .bind(column(rows, |r| r.kind.as_str()))
        .bind(column(rows, |r| r.household_id))
        .bind(column(rows, |r| r.path.sub_district))
        .bind(column(rows, |r| r.path.community))
        .bind(column(rows, |r| r.path.grid))
        .bind(column(rows, |r| r.path.building))
        .bind(column(rows, |r| r.path.unit))
        .bind(column(rows, |r| r.day))
        .bind(column(rows, |r| r.created_at))
        .bind(column(rows, |r| r.idempotency_key.as_str()))
        .bind(column(rows, |r| r.reference.as_str()))
        .bind(column(rows, |r| r.source.as_str()))
        .bind(column(rows, |r| r.actor_account_id))
        .bind(column(rows, |r| r.payload.as_str()))
        .bind(column(rows, |r| i32::try_from(r.flagged).unwrap_or(i32::MAX)))
        .bind(column(rows, |r| r.tasks_pending))
}

/// Binds the day's reporting residents (grid, day, resident, community),
/// as four arrays, to the next four parameters.
fn bind_reported<'q>(query: DbQuery<'q>, rows: &[ReportedRow]) -> DbQuery<'q> {
    query
        .bind(column(rows, |r| r.0))
        .bind(column(rows, |r| r.1))
        .bind(column(rows, |r| r.2))
        .bind(column(rows, |r| r.3))
}

/// Binds the grids' days (grid, community, day, then the six counts), as
/// nine arrays, to the next nine parameters.
fn bind_grid_days<'q>(
    query: DbQuery<'q>,
    deltas: &BTreeMap<(Uuid, NaiveDate), GridDayDelta>,
) -> DbQuery<'q> {
    let counts = |f: fn(&GridDayDelta) -> i64| deltas.values().map(f).collect::<Vec<_>>();
    query
        .bind(deltas.keys().map(|k| k.0).collect::<Vec<_>>())
        .bind(deltas.values().map(|d| d.community_id).collect::<Vec<_>>())
        .bind(deltas.keys().map(|k| k.1).collect::<Vec<_>>())
        .bind(counts(|d| d.residents_reported))
        .bind(counts(|d| d.health_reports))
        .bind(counts(|d| d.flagged))
        .bind(counts(|d| d.arrivals))
        .bind(counts(|d| d.help_requests))
        .bind(counts(|d| d.volunteer_offers))
}

/// Inserts `rows` (new reports, distinct keys) in one statement; answers
/// how many were inserted (a key stored before is skipped, not an error).
async fn insert_reports(
    conn: &mut <Db as sqlx::Database>::Connection,
    rows: &[&ReportRecord],
) -> StoreResult<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let done = bind_reports(INSERT_REPORTS_SQL.as_str(), rows)
        .execute(&mut *conn)
        .await
        .map_err(map_error)?;
    Ok(done.rows_affected())
}

/// A whole batch in one statement, for the batches that keep their audit
/// summary pending (all but one a second under load): the reports, the
/// day's new reporting residents, the grids' days (raised by the residents
/// new to the table, counted from the insert's own answer) and the pending
/// summary, each a data-modifying `WITH` of one statement. One statement is
/// a transaction of its own, so the batch is one round trip to the server,
/// where `BEGIN`, the statement and `COMMIT` were three (and the batch
/// written step by step five or six).
///
/// The grids' days and the summary assume every report is new, so this
/// insert has no `ON CONFLICT`: a key stored before (a retry, or another
/// server's batch meanwhile) fails the whole statement with a unique
/// violation on `KEY_INDEX`, nothing of it is written, and the batch is
/// written step by step, where stored keys are skipped and answered with
/// their original references.
static ONE_STATEMENT_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH inserted AS ({} RETURNING 1), \
         new_residents AS (INSERT INTO intake_reported_residents \
             (grid_id, day, resident_id, community_id) \
             SELECT * FROM UNNEST($18::uuid[], $19::date[], $20::uuid[], $21::uuid[]) \
             ON CONFLICT (grid_id, day, resident_id) DO NOTHING RETURNING grid_id, day), \
         new_per_grid AS (SELECT grid_id, day, count(*) AS n FROM new_residents \
             GROUP BY grid_id, day), \
         days AS ({UPSERT_GRID_DAYS_HEAD} SELECT * FROM (SELECT d.grid_id, d.community_id, \
             d.day, d.residents_reported + COALESCE(n.n, 0), d.health_reports, d.flagged, \
             d.arrivals, d.help_requests, d.volunteer_offers \
             FROM UNNEST($22::uuid[], $23::uuid[], $24::date[], $25::int8[], $26::int8[], \
                 $27::int8[], $28::int8[], $29::int8[], $30::int8[]) \
                 AS d(grid_id, community_id, day, residents_reported, health_reports, flagged, \
                     arrivals, help_requests, volunteer_offers) \
             LEFT JOIN new_per_grid n ON n.grid_id = d.grid_id AND n.day = d.day) AS batch\
             {UPSERT_GRID_DAYS_TAIL}), \
         pending AS (INSERT INTO intake_audit_pending (writer_id, {AUDIT_COLUMNS}) \
             VALUES ($31, $32, $33, $34, $35, $36, $37, $38, $39, $40, $41, $42, $43)\
             {UPSERT_PENDING_AUDIT_TAIL}) \
         SELECT count(*) AS inserted FROM inserted",
        INSERT_NEW_REPORTS_SQL.as_str()
    )
});

/// The unique index on a report's key, which a stored key violates.
const KEY_INDEX: &str = "intake_reports_key_household";

/// Writes the batch with `ONE_STATEMENT_SQL`; `None` (nothing written)
/// when some key was stored before.
async fn write_in_one_statement(
    store: &SqlStore,
    writes: &[IntakeWrite],
    plan: &BatchPlan,
    writer: Uuid,
    summary: &AuditRecord,
) -> StoreResult<Option<Vec<IntakeOutcome>>> {
    let settled = plan.settle(writes, &StoredKeys::new())?;
    let fresh: Vec<&ReportRecord> = plan.fresh.iter().map(|&i| &writes[i].report).collect();
    let query = bind_reports(ONE_STATEMENT_SQL.as_str(), &fresh);
    let query = bind_grid_days(bind_reported(query, &settled.reported), &settled.deltas);
    let query = bind_audit(query.bind(writer), summary);
    let inserted: i64 = match query.fetch_one(&store.writer).await {
        Ok(row) => get(&row, "inserted")?,
        Err(sqlx::Error::Database(error))
            if error.code().as_deref() == Some("23505")
                && error.constraint() == Some(KEY_INDEX) =>
        {
            return Ok(None);
        }
        Err(error) => return Err(map_error(error)),
    };
    // Every report went in, or the statement failed: anything else would
    // mean the grids' days were raised for reports not stored.
    if usize::try_from(inserted).ok() != Some(fresh.len()) {
        return Err(StoreError::Other(format!(
            "intake batch on PostgreSQL: the one-statement insert stored {inserted} of {} \
             reports without failing, so the grids' day counters may count reports not stored",
            fresh.len()
        )));
    }
    Ok(Some(settled.outcomes))
}

/// Writes a batch in one transaction with its audit summary (see the module).
pub(crate) async fn write(
    store: &SqlStore,
    writes: &[IntakeWrite],
    audit: Option<BatchAudit<'_>>,
) -> StoreResult<Vec<IntakeOutcome>> {
    let plan = BatchPlan::new(writes);
    if let Some(BatchAudit { writer, summary, append: false }) = audit
        && let Some(outcomes) =
            write_in_one_statement(store, writes, &plan, writer, summary).await?
    {
        return Ok(outcomes);
    }
    // Step by step: the batch that appends its summary (holding the audit
    // chain's append lock from the start, so the batch and its entry commit
    // together), and one with a key stored before. One that keeps its
    // summary pending touches only its writer's own row, and so does not
    // wait for other servers' batches.
    let mut tx = store.writer.begin_with(AUDIT_BEGIN_SQL).await.map_err(map_error)?;
    if audit.is_some_and(|a| a.append) {
        sqlx::query(AUDIT_LOCK_SQL).execute(&mut *tx).await.map_err(map_error)?;
    }
    let fresh: Vec<&ReportRecord> = plan.fresh.iter().map(|&i| &writes[i].report).collect();
    let inserted = insert_reports(&mut tx, &fresh).await?;
    // Looking the keys up first would probe the key index twice per report;
    // they are looked up only when some were stored before (a retry) or by
    // another server meanwhile.
    let originals = if usize::try_from(inserted).ok() == Some(fresh.len()) {
        StoredKeys::new()
    } else {
        let keys: Vec<(Uuid, &str)> =
            fresh.iter().map(|r| (r.household_id, r.idempotency_key.as_str())).collect();
        stored_keys(&mut tx, &keys).await?
    };
    let mut settled = plan.settle(writes, &originals)?;
    // A resident counts once a day: only rows new to the table raise the
    // counter. The writer leaves out residents it knows have a row today,
    // so in the steady state this sends nothing.
    if !settled.reported.is_empty() {
        let rows = &settled.reported;
        let inserted = bind_reported(sqlx::query(INSERT_REPORTED_SQL), rows)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_error)?;
        for row in inserted {
            let key: (Uuid, chrono::NaiveDate) = (get(&row, "grid_id")?, get(&row, "day")?);
            if let Some(delta) = settled.deltas.get_mut(&key) {
                delta.residents_reported += 1;
            }
        }
    }
    // One upsert for every grid and day of the batch (each appears once, as
    // one statement requires).
    if !settled.deltas.is_empty() {
        bind_grid_days(sqlx::query(UPSERT_GRID_DAYS_SQL.as_str()), &settled.deltas)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
    }
    match audit {
        Some(BatchAudit { writer, summary, append: true }) => {
            append_chained(&mut tx, summary).await?;
            sqlx::query(DELETE_PENDING_AUDIT_SQL)
                .bind(writer)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
        }
        Some(BatchAudit { writer, summary, append: false }) => {
            keep_pending(&mut tx, writer, summary).await?;
        }
        None => {}
    }
    tx.commit().await.map_err(map_error)?;
    Ok(settled.outcomes)
}

/// Replaces the writer's pending summary (`BatchAudit`).
async fn keep_pending(
    conn: &mut <Db as sqlx::Database>::Connection,
    writer: Uuid,
    e: &AuditRecord,
) -> StoreResult<()> {
    bind_audit(sqlx::query(UPSERT_PENDING_AUDIT_SQL.as_str()).bind(writer), e)
        .execute(&mut *conn)
        .await
        .map_err(map_error)?;
    Ok(())
}

static UPSERT_PENDING_AUDIT_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO intake_audit_pending (writer_id, {AUDIT_COLUMNS}) VALUES ({}){UPSERT_PENDING_AUDIT_TAIL}",
        placeholders(13)
    )
});

/// Nothing is kept between batches here: each takes a pooled connection
/// of its own (PostgreSQL locks rows, not the database).
pub(crate) fn keep_turn(_: &SqlStore, _keep: bool) {}

/// PostgreSQL extends its own files (and has no checkpoint on the intake's
/// path): there is no room to keep.
pub(crate) async fn keep_room(_: &SqlStore, _target_bytes: u64) -> StoreResult<u64> {
    Ok(0)
}
