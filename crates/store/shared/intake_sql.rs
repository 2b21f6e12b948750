// The `IntakeStore` implementation both SQL backends share (issue #6).
//
// Included with `include!` after `sql_store.rs`, so it uses that file's
// helpers (`get`, `read_path`, `map_error`, `begin_audit_append`,
// `append_chained`, `resident_from_row`, …) and the same SQL on both
// backends. Kept in its own file so intake work never conflicts with edits
// to the registry and task queries.

use epigrid_store::{
    GridDayCounter, IntakeOutcome, IntakeStore, IntakeWrite, ReportQuery, ReportRecord,
};

const REPORT_COLUMNS: &str = "id, kind, household_id, sub_district_id, community_id, grid_id, \
    building_id, unit_id, day, created_at, idempotency_key, reference, source, \
    actor_account_id, payload, flagged, tasks_pending";
/// Rows per multi-row statement: 17 binds x 512 stays far below both
/// backends' bind-parameter limits.
const INTAKE_CHUNK: usize = 512;
const COUNTER_COLUMNS: &str = "grid_id, community_id, day, residents_reported, health_reports, \
    flagged, arrivals, help_requests, volunteer_offers";

fn report_from_row(row: &DbRow) -> StoreResult<ReportRecord> {
    let flagged: i32 = get(row, "flagged")?;
    Ok(ReportRecord {
        id: get(row, "id")?,
        kind: get(row, "kind")?,
        household_id: get(row, "household_id")?,
        path: read_path(row)?,
        day: get(row, "day")?,
        created_at: get(row, "created_at")?,
        idempotency_key: get(row, "idempotency_key")?,
        reference: get(row, "reference")?,
        source: get(row, "source")?,
        actor_account_id: get(row, "actor_account_id")?,
        payload: get(row, "payload")?,
        flagged: u32::try_from(flagged).unwrap_or(0),
        tasks_pending: get(row, "tasks_pending")?,
    })
}

fn counter_from_row(row: &DbRow) -> StoreResult<GridDayCounter> {
    Ok(GridDayCounter {
        grid_id: get(row, "grid_id")?,
        community_id: get(row, "community_id")?,
        day: get(row, "day")?,
        residents_reported: get(row, "residents_reported")?,
        health_reports: get(row, "health_reports")?,
        flagged: get(row, "flagged")?,
        arrivals: get(row, "arrivals")?,
        help_requests: get(row, "help_requests")?,
        volunteer_offers: get(row, "volunteer_offers")?,
    })
}

/// What one batch adds to one grid's day.
#[derive(Default)]
struct GridDayDelta {
    community_id: Uuid,
    residents_reported: i64,
    health_reports: i64,
    flagged: i64,
    arrivals: i64,
    help_requests: i64,
    volunteer_offers: i64,
}

/// The stored `(id, reference)` of each of `keys` that exists.
async fn stored_keys(
    conn: &mut <Db as sqlx::Database>::Connection,
    keys: &[&str],
) -> StoreResult<std::collections::HashMap<String, (Uuid, String)>> {
    let mut found = std::collections::HashMap::new();
    for chunk in keys.chunks(INTAKE_CHUNK) {
        let mut b = QueryBuilder::<Db>::new(
            "SELECT id, reference, idempotency_key FROM intake_reports WHERE idempotency_key IN (",
        );
        let mut list = b.separated(", ");
        for key in chunk {
            list.push_bind(*key);
        }
        b.push(")");
        for row in b.build().fetch_all(&mut *conn).await.map_err(map_error)? {
            found.insert(get(&row, "idempotency_key")?, (get(&row, "id")?, get(&row, "reference")?));
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
        let mut b = QueryBuilder::<Db>::new(format!("INSERT INTO intake_reports ({REPORT_COLUMNS}) "));
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
        b.push(" ON CONFLICT (idempotency_key) DO NOTHING");
        inserted += b.build().execute(&mut *conn).await.map_err(map_error)?.rows_affected();
    }
    Ok(inserted)
}

#[async_trait::async_trait]
impl IntakeStore for SqlStore {
    async fn write_intake_batch(
        &self,
        writes: &[IntakeWrite],
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Vec<IntakeOutcome>> {
        use std::collections::HashMap;
        // With an audit summary, the transaction holds the audit chain's
        // append lock from the start (on SQLite, `BEGIN IMMEDIATE`, which a
        // writer wants anyway), so the batch and its entry commit together.
        let mut tx = self.writer.begin_with(AUDIT_BEGIN_SQL).await.map_err(map_error)?;
        // The lock statement, where the backend has one (SQLite's is a
        // no-op: `BEGIN IMMEDIATE` already holds the write lock), as in
        // `begin_audit_append`, minus a round trip.
        if audit.is_some() && AUDIT_LOCK_SQL != "SELECT 1" {
            sqlx::query(AUDIT_LOCK_SQL).execute(&mut *tx).await.map_err(map_error)?;
        }
        // A handful of statements per batch, whatever its size, and none
        // that answers a row per report (rows sent back one by one from the
        // database thread cost more than the inserts): multi-row inserts of
        // the reports, checked by their count; a lookup of the keys only
        // when some were already stored; one insert of the day's residents;
        // one upsert per grid and day. Looking the keys up first would probe
        // the key index twice per report.
        //
        // A key repeated within the batch (a double tap) is sent once:
        // later copies answer with the first copy's outcome.
        let mut first_of: HashMap<&str, usize> = HashMap::with_capacity(writes.len());
        let mut fresh: Vec<&ReportRecord> = Vec::with_capacity(writes.len());
        for (i, w) in writes.iter().enumerate() {
            let key = w.report.idempotency_key.as_str();
            if !first_of.contains_key(key) {
                first_of.insert(key, i);
                fresh.push(&w.report);
            }
        }
        let inserted = insert_reports(&mut tx, &fresh).await?;
        let originals = if usize::try_from(inserted).ok() == Some(fresh.len()) {
            HashMap::new()
        } else {
            // Some keys were stored before (a retry), or by another writer
            // meanwhile (a second server on PostgreSQL): a stored row
            // carrying our id is ours, any other is the original.
            let keys: Vec<&str> = fresh.iter().map(|r| r.idempotency_key.as_str()).collect();
            stored_keys(&mut tx, &keys).await?
        };
        let mut outcomes = Vec::with_capacity(writes.len());
        let mut deltas: std::collections::BTreeMap<(Uuid, NaiveDate), GridDayDelta> =
            std::collections::BTreeMap::new();
        let mut day_rows: Vec<(Uuid, NaiveDate, Uuid, Uuid)> = Vec::new();
        for (i, write) in writes.iter().enumerate() {
            let r = &write.report;
            let first = &writes[first_of[r.idempotency_key.as_str()]].report;
            let stored_now = match originals.get(&r.idempotency_key) {
                Some((id, _)) => *id == first.id,
                None => true,
            };
            if first_of[r.idempotency_key.as_str()] != i || !stored_now {
                let (id, reference) = match originals.get(&r.idempotency_key) {
                    Some((id, reference)) if !stored_now => (*id, reference.clone()),
                    _ => (first.id, first.reference.clone()),
                };
                outcomes.push(IntakeOutcome::Duplicate { id, reference });
                continue;
            }
            let (Some(grid), Some(community)) = (r.path.grid, r.path.community) else {
                return Err(StoreError::Other("an intake report needs a grid and community".into()));
            };
            let delta = deltas
                .entry((grid, r.day))
                .or_insert_with(|| GridDayDelta { community_id: community, ..Default::default() });
            match r.kind.as_str() {
                "health" => {
                    delta.health_reports += 1;
                    delta.flagged += i64::from(r.flagged);
                }
                "arrival" => delta.arrivals += 1,
                "help" => delta.help_requests += 1,
                "volunteer" => delta.volunteer_offers += 1,
                _ => {}
            }
            day_rows.extend(write.residents.iter().map(|x| (grid, r.day, x.resident_id, community)));
            outcomes.push(IntakeOutcome::Stored { id: r.id, reference: r.reference.clone() });
        }
        // A resident counts once a day: only rows new to the table raise
        // the counter (a repeat within the batch conflicts with the first).
        // The writer leaves out residents it knows have a row today, so in
        // the steady state this sends nothing.
        for chunk in day_rows.chunks(INTAKE_CHUNK) {
            let mut b = QueryBuilder::<Db>::new(
                "INSERT INTO intake_reported_residents (grid_id, day, resident_id, community_id) ",
            );
            b.push_values(chunk, |mut row, (grid, day, resident, community)| {
                row.push_bind(*grid).push_bind(*day).push_bind(*resident).push_bind(*community);
            });
            b.push(" ON CONFLICT (grid_id, day, resident_id) DO NOTHING RETURNING grid_id, day");
            for row in b.build().fetch_all(&mut *tx).await.map_err(map_error)? {
                let key: (Uuid, NaiveDate) = (get(&row, "grid_id")?, get(&row, "day")?);
                if let Some(delta) = deltas.get_mut(&key) {
                    delta.residents_reported += 1;
                }
            }
        }
        // One multi-row upsert for every grid and day of the batch (each
        // appears once, as both backends require of one statement).
        let deltas: Vec<_> = deltas.into_iter().collect();
        for chunk in deltas.chunks(INTAKE_CHUNK) {
            let mut b = QueryBuilder::<Db>::new(
                "INSERT INTO intake_grid_days (grid_id, community_id, day, residents_reported, \
                 health_reports, flagged, arrivals, help_requests, volunteer_offers) ",
            );
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
            b.push(
                " ON CONFLICT (grid_id, day) DO UPDATE SET \
                 residents_reported = intake_grid_days.residents_reported + excluded.residents_reported, \
                 health_reports = intake_grid_days.health_reports + excluded.health_reports, \
                 flagged = intake_grid_days.flagged + excluded.flagged, \
                 arrivals = intake_grid_days.arrivals + excluded.arrivals, \
                 help_requests = intake_grid_days.help_requests + excluded.help_requests, \
                 volunteer_offers = intake_grid_days.volunteer_offers + excluded.volunteer_offers",
            );
            b.build().execute(&mut *tx).await.map_err(map_error)?;
        }
        if let Some(entry) = audit {
            append_chained(&mut tx, entry).await?;
        }
        tx.commit().await.map_err(map_error)?;
        Ok(outcomes)
    }

    async fn get_report(&self, id: Uuid) -> StoreResult<Option<ReportRecord>> {
        let sql = format!("SELECT {REPORT_COLUMNS} FROM intake_reports WHERE id = $1");
        fetch_optional_by(&self.reader, sql, id, report_from_row).await
    }

    async fn get_report_by_key(&self, key: &str) -> StoreResult<Option<ReportRecord>> {
        let sql = format!("SELECT {REPORT_COLUMNS} FROM intake_reports WHERE idempotency_key = $1");
        fetch_optional_by(&self.reader, sql, key.to_owned(), report_from_row).await
    }

    async fn list_reports(&self, q: &ReportQuery) -> StoreResult<Vec<ReportRecord>> {
        let mut b =
            QueryBuilder::<Db>::new(format!("SELECT {REPORT_COLUMNS} FROM intake_reports WHERE 1 = 1"));
        if let Some(household) = q.household_id {
            b.push(" AND household_id = ").push_bind(household);
        }
        if let Some(grid) = q.grid_id {
            b.push(" AND grid_id = ").push_bind(grid);
        }
        if let Some(day) = q.day {
            b.push(" AND day = ").push_bind(day);
        }
        if let Some(kind) = &q.kind {
            b.push(" AND kind = ").push_bind(kind.clone());
        }
        if let Some(after) = q.after {
            b.push(" AND id > ").push_bind(after);
        }
        b.push(" ORDER BY id LIMIT ").push_bind(i64::from(page_size(q.limit)));
        let rows = b.build().fetch_all(&self.reader).await.map_err(map_error)?;
        rows.iter().map(report_from_row).collect()
    }

    async fn reports_pending_tasks(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<ReportRecord>> {
        // `= TRUE` spelled as in the partial index, so both planners use it.
        let mut b = QueryBuilder::<Db>::new(format!(
            "SELECT {REPORT_COLUMNS} FROM intake_reports WHERE tasks_pending = TRUE"
        ));
        if let Some(after) = after {
            b.push(" AND id > ").push_bind(after);
        }
        b.push(" ORDER BY id LIMIT ").push_bind(i64::from(page_size(limit)));
        // The writer, not a reader: a reader of a replica (PostgreSQL) or a
        // snapshot could miss rows the writer just committed.
        let rows = b.build().fetch_all(&self.writer).await.map_err(map_error)?;
        rows.iter().map(report_from_row).collect()
    }

    async fn clear_tasks_pending(&self, ids: &[Uuid]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut b = QueryBuilder::<Db>::new(
            "UPDATE intake_reports SET tasks_pending = FALSE WHERE tasks_pending = TRUE AND id IN (",
        );
        push_id_list(&mut b, ids);
        b.build().execute(&self.writer).await.map_err(map_error)?;
        Ok(())
    }

    async fn grid_day_counters(
        &self,
        grid_ids: &[Uuid],
        day: NaiveDate,
    ) -> StoreResult<Vec<GridDayCounter>> {
        if grid_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut b = QueryBuilder::<Db>::new(format!(
            "SELECT {COUNTER_COLUMNS} FROM intake_grid_days WHERE day = "
        ));
        b.push_bind(day);
        b.push(" AND grid_id IN (");
        push_id_list(&mut b, grid_ids);
        b.push(" ORDER BY grid_id");
        let rows = b.build().fetch_all(&self.reader).await.map_err(map_error)?;
        rows.iter().map(counter_from_row).collect()
    }

    async fn grid_day_counters_until(
        &self,
        grid_ids: &[Uuid],
        until: NaiveDate,
    ) -> StoreResult<Vec<GridDayCounter>> {
        if grid_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut b = QueryBuilder::<Db>::new(format!(
            "SELECT {COUNTER_COLUMNS} FROM intake_grid_days WHERE day <= "
        ));
        b.push_bind(until);
        b.push(" AND grid_id IN (");
        push_id_list(&mut b, grid_ids);
        b.push(" ORDER BY grid_id, day");
        let rows = b.build().fetch_all(&self.reader).await.map_err(map_error)?;
        rows.iter().map(counter_from_row).collect()
    }

    async fn community_day_counters(
        &self,
        community_id: Option<Uuid>,
        day: NaiveDate,
    ) -> StoreResult<Vec<GridDayCounter>> {
        let mut b = QueryBuilder::<Db>::new(format!(
            "SELECT {COUNTER_COLUMNS} FROM intake_grid_days WHERE day = "
        ));
        b.push_bind(day);
        if let Some(community) = community_id {
            b.push(" AND community_id = ").push_bind(community);
        }
        b.push(" ORDER BY grid_id");
        let rows = b.build().fetch_all(&self.reader).await.map_err(map_error)?;
        rows.iter().map(counter_from_row).collect()
    }

    async fn unreported_residents(
        &self,
        grid_id: Uuid,
        day: NaiveDate,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<ResidentRecord>> {
        let mut b = QueryBuilder::<Db>::new(format!(
            "SELECT {RESIDENT_COLUMNS} FROM residents WHERE grid_id = "
        ));
        b.push_bind(grid_id);
        b.push(
            " AND NOT EXISTS (SELECT 1 FROM intake_reported_residents x \
             WHERE x.grid_id = residents.grid_id AND x.resident_id = residents.id AND x.day = ",
        );
        b.push_bind(day);
        b.push(")");
        if let Some(after) = after {
            b.push(" AND id > ").push_bind(after);
        }
        b.push(" ORDER BY id LIMIT ").push_bind(i64::from(page_size(limit)));
        let rows = b.build().fetch_all(&self.reader).await.map_err(map_error)?;
        rows.iter().map(resident_from_row).collect()
    }
}
