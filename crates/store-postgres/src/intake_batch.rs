//! The intake batch on PostgreSQL (issue #6): a handful of statements per
//! batch, whatever its size, and none that answers a row per report: a
//! multi-row insert of the reports checked by its count, a lookup of the
//! keys only when some were already stored, one insert of the day's
//! residents, one upsert of the grids' days, the audit summary, the commit.
//! The logic shared with SQLite is `epigrid_store::BatchPlan`.

use std::sync::LazyLock;

use epigrid_store::{
    AuditRecord, BatchAudit, BatchPlan, IntakeOutcome, IntakeWrite, ReportRecord, StoreResult,
    StoredKeys,
};
use sqlx::QueryBuilder;
use uuid::Uuid;

use crate::{
    AUDIT_BEGIN_SQL, AUDIT_COLUMNS, AUDIT_LOCK_SQL, DELETE_PENDING_AUDIT_SQL, Db, REPORT_COLUMNS,
    SqlStore, UPSERT_GRID_DAYS_HEAD, UPSERT_GRID_DAYS_TAIL, UPSERT_PENDING_AUDIT_TAIL,
    append_chained, bind_audit, get, map_error, placeholders,
};

/// Rows per multi-row statement: 17 binds x 512 stays far below
/// PostgreSQL's 65,535 bind parameters.
const INTAKE_CHUNK: usize = 512;

/// The stored `(id, reference)` of each of `keys` (household, key) that
/// exists.
async fn stored_keys(
    conn: &mut <Db as sqlx::Database>::Connection,
    keys: &[(Uuid, &str)],
) -> StoreResult<StoredKeys> {
    let mut found = StoredKeys::new();
    for chunk in keys.chunks(INTAKE_CHUNK) {
        let mut b = QueryBuilder::<Db>::new(
            "SELECT id, reference, household_id, idempotency_key FROM intake_reports \
             WHERE (household_id, idempotency_key) IN ",
        );
        b.push_tuples(chunk, |mut pair, (household, key)| {
            pair.push_bind(*household).push_bind(*key);
        });
        for row in b.build().fetch_all(&mut *conn).await.map_err(map_error)? {
            found.insert(
                (get(&row, "household_id")?, get(&row, "idempotency_key")?),
                (get(&row, "id")?, get(&row, "reference")?),
            );
        }
    }
    Ok(found)
}

/// Inserts `rows` (new reports, distinct keys), one statement per
/// `INTAKE_CHUNK`; answers how many were inserted (a key stored before is
/// skipped, not an error). One statement rather than a few of cached sizes:
/// each statement is a round trip to the database thread, which on a busy
/// machine waits for a time slice, and that costs more than preparing it.
async fn insert_reports(
    conn: &mut <Db as sqlx::Database>::Connection,
    rows: &[&ReportRecord],
) -> StoreResult<u64> {
    let mut inserted = 0;
    for chunk in rows.chunks(INTAKE_CHUNK) {
        let mut b =
            QueryBuilder::<Db>::new(format!("INSERT INTO intake_reports ({REPORT_COLUMNS}) "));
        b.push_values(chunk, |mut row, r| {
            row.push_bind(r.id)
                .push_bind(r.kind.as_str())
                .push_bind(r.household_id)
                .push_bind(r.path.sub_district)
                .push_bind(r.path.community)
                .push_bind(r.path.grid)
                .push_bind(r.path.building)
                .push_bind(r.path.unit)
                .push_bind(r.day)
                .push_bind(r.created_at)
                .push_bind(r.idempotency_key.as_str())
                .push_bind(r.reference.as_str())
                .push_bind(r.source.as_str())
                .push_bind(r.actor_account_id)
                .push_bind(r.payload.as_str())
                .push_bind(i32::try_from(r.flagged).unwrap_or(i32::MAX))
                .push_bind(r.tasks_pending);
        });
        b.push(" ON CONFLICT (idempotency_key, household_id) DO NOTHING");
        inserted += b.build().execute(&mut *conn).await.map_err(map_error)?.rows_affected();
    }
    Ok(inserted)
}

/// Writes a batch in one transaction with its audit summary (see the module).
pub(crate) async fn write(
    store: &SqlStore,
    writes: &[IntakeWrite],
    audit: Option<BatchAudit<'_>>,
) -> StoreResult<Vec<IntakeOutcome>> {
    // A batch that appends its summary holds the audit chain's append lock
    // from the start, so the batch and its entry commit together; one that
    // keeps it pending touches only its writer's own row, and so does not
    // wait for other servers' batches.
    let mut tx = store.writer.begin_with(AUDIT_BEGIN_SQL).await.map_err(map_error)?;
    if audit.is_some_and(|a| a.append) {
        sqlx::query(AUDIT_LOCK_SQL).execute(&mut *tx).await.map_err(map_error)?;
    }
    let plan = BatchPlan::new(writes);
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
    for chunk in settled.reported.chunks(INTAKE_CHUNK) {
        let mut b = QueryBuilder::<Db>::new(
            "INSERT INTO intake_reported_residents (grid_id, day, resident_id, community_id) ",
        );
        b.push_values(chunk, |mut row, (grid, day, resident, community)| {
            row.push_bind(*grid).push_bind(*day).push_bind(*resident).push_bind(*community);
        });
        b.push(" ON CONFLICT (grid_id, day, resident_id) DO NOTHING RETURNING grid_id, day");
        for row in b.build().fetch_all(&mut *tx).await.map_err(map_error)? {
            let key: (Uuid, chrono::NaiveDate) = (get(&row, "grid_id")?, get(&row, "day")?);
            if let Some(delta) = settled.deltas.get_mut(&key) {
                delta.residents_reported += 1;
            }
        }
    }
    // One multi-row upsert for every grid and day of the batch (each
    // appears once, as one statement requires).
    let deltas: Vec<_> = settled.deltas.into_iter().collect();
    for chunk in deltas.chunks(INTAKE_CHUNK) {
        let mut b = QueryBuilder::<Db>::new(UPSERT_GRID_DAYS_HEAD);
        b.push_values(chunk, |mut row, ((grid, day), d)| {
            row.push_bind(*grid)
                .push_bind(d.community_id)
                .push_bind(*day)
                .push_bind(d.residents_reported)
                .push_bind(d.health_reports)
                .push_bind(d.flagged)
                .push_bind(d.arrivals)
                .push_bind(d.help_requests)
                .push_bind(d.volunteer_offers);
        });
        b.push(UPSERT_GRID_DAYS_TAIL);
        b.build().execute(&mut *tx).await.map_err(map_error)?;
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
