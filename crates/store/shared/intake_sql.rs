// The `IntakeStore` implementation both SQL backends share (issue #6).
//
// Included with `include!` after `sql_store.rs`, so it uses that file's
// helpers (`get`, `read_path`, `map_error`, `begin_audit_append`,
// `append_chained`, `resident_from_row`, …) and the same SQL on both
// backends. Kept in its own file so intake work never conflicts with edits
// to the registry and task queries.

use epigrid_store::{
    BatchAudit, GridDayCounter, IntakeOutcome, IntakeStore, IntakeWrite, PendingAudit,
    ReportQuery, ReportRecord,
};

const REPORT_COLUMNS: &str = "id, kind, household_id, sub_district_id, community_id, grid_id, \
    building_id, unit_id, day, created_at, idempotency_key, reference, source, \
    actor_account_id, payload, flagged, tasks_pending";
/// The columns and conflict rule of the upsert that adds a batch to its
/// grids' days (each backend sends the rows its own way).
const UPSERT_GRID_DAYS_HEAD: &str = "INSERT INTO intake_grid_days (grid_id, community_id, day, \
    residents_reported, health_reports, flagged, arrivals, help_requests, volunteer_offers) ";
const UPSERT_GRID_DAYS_TAIL: &str = " ON CONFLICT (grid_id, day) DO UPDATE SET \
    residents_reported = intake_grid_days.residents_reported + excluded.residents_reported, \
    health_reports = intake_grid_days.health_reports + excluded.health_reports, \
    flagged = intake_grid_days.flagged + excluded.flagged, \
    arrivals = intake_grid_days.arrivals + excluded.arrivals, \
    help_requests = intake_grid_days.help_requests + excluded.help_requests, \
    volunteer_offers = intake_grid_days.volunteer_offers + excluded.volunteer_offers";
/// Replaces a writer's pending audit summary (`BatchAudit`): the columns
/// are `writer_id` then `AUDIT_COLUMNS`.
const UPSERT_PENDING_AUDIT_TAIL: &str = " ON CONFLICT (writer_id) DO UPDATE SET \
    id = excluded.id, at = excluded.at, actor_user_id = excluded.actor_user_id, \
    actor_name = excluded.actor_name, actor_role = excluded.actor_role, \
    action = excluded.action, target_kind = excluded.target_kind, \
    target_id = excluded.target_id, community_id = excluded.community_id, \
    client_addr = excluded.client_addr, outcome = excluded.outcome, detail = excluded.detail";
const DELETE_PENDING_AUDIT_SQL: &str = "DELETE FROM intake_audit_pending WHERE writer_id = $1";
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

#[async_trait::async_trait]
impl IntakeStore for SqlStore {
    /// The batch's writes go through the backend's own path (`intake_batch`
    /// in each backend crate); the logic they share is `BatchPlan`.
    async fn write_intake_batch(
        &self,
        writes: &[IntakeWrite],
        audit: Option<BatchAudit<'_>>,
    ) -> StoreResult<Vec<IntakeOutcome>> {
        crate::intake_batch::write(self, writes, audit).await
    }

    fn keep_intake_turn(&self, keep: bool) {
        crate::intake_batch::keep_turn(self, keep);
    }

    async fn keep_room(&self, target_bytes: u64) -> StoreResult<u64> {
        crate::intake_batch::keep_room(self, target_bytes).await
    }

    async fn append_pending_audit(&self, which: PendingAudit) -> StoreResult<u32> {
        let chosen = || {
            let mut b = QueryBuilder::<Db>::new(format!(
                "SELECT writer_id, {AUDIT_COLUMNS} FROM intake_audit_pending"
            ));
            match which {
                PendingAudit::Of(writer) => {
                    b.push(" WHERE writer_id = ").push_bind(writer);
                }
                PendingAudit::StaleBefore { before, except } => {
                    b.push(" WHERE writer_id <> ").push_bind(except);
                    b.push(" AND at < ").push_bind(before);
                }
            }
            b.push(" ORDER BY at, writer_id");
            b
        };
        // Nothing pending is the usual case: look before taking the lock.
        if chosen().build().fetch_optional(&self.reader).await.map_err(map_error)?.is_none() {
            return Ok(0);
        }
        let mut tx = begin_audit_append(&self.writer).await?;
        // Read again under the lock: a batch or another server may have
        // appended or replaced them meanwhile.
        let rows = chosen().build().fetch_all(&mut *tx).await.map_err(map_error)?;
        for row in &rows {
            append_chained(&mut tx, &audit_from_row(row)?).await?;
            let writer: Uuid = get(row, "writer_id")?;
            sqlx::query(DELETE_PENDING_AUDIT_SQL)
                .bind(writer)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
        }
        tx.commit().await.map_err(map_error)?;
        Ok(u32::try_from(rows.len()).unwrap_or(u32::MAX))
    }

    async fn pending_audit(&self) -> StoreResult<Vec<(Uuid, AuditRecord)>> {
        let sql = format!(
            "SELECT writer_id, {AUDIT_COLUMNS} FROM intake_audit_pending ORDER BY at, writer_id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.reader)
            .await
            .map_err(map_error)?;
        rows.iter().map(|row| Ok((get(row, "writer_id")?, audit_from_row(row)?))).collect()
    }

    async fn get_report(&self, id: Uuid) -> StoreResult<Option<ReportRecord>> {
        let sql = format!("SELECT {REPORT_COLUMNS} FROM intake_reports WHERE id = $1");
        fetch_optional_by(&self.reader, sql, id, report_from_row).await
    }

    async fn get_reports(&self, ids: &[Uuid]) -> StoreResult<Vec<ReportRecord>> {
        let select = format!("SELECT {REPORT_COLUMNS} FROM intake_reports WHERE id IN (");
        fetch_by_ids(&self.reader, &select, ids, report_from_row).await
    }

    async fn get_report_by_key(
        &self,
        household_id: Uuid,
        key: &str,
    ) -> StoreResult<Option<ReportRecord>> {
        let sql = format!(
            "SELECT {REPORT_COLUMNS} FROM intake_reports \
             WHERE household_id = $1 AND idempotency_key = $2"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(household_id)
            .bind(key)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_error)?;
        row.as_ref().map(report_from_row).transpose()
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
        if q.staff_only {
            // A literal, spelled as in the partial index's WHERE, so both
            // planners can use it (a bound value would not prove it).
            b.push(" AND source = 'staff'");
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

    async fn reported_among(
        &self,
        grid_id: Uuid,
        day: NaiveDate,
        residents: &[Uuid],
    ) -> StoreResult<Vec<Uuid>> {
        if residents.is_empty() {
            return Ok(Vec::new());
        }
        let mut reported = Vec::new();
        for chunk in residents.chunks(BULK_CHUNK) {
            let mut b = QueryBuilder::<Db>::new(
                "SELECT resident_id FROM intake_reported_residents WHERE grid_id = ",
            );
            b.push_bind(grid_id).push(" AND day = ").push_bind(day).push(" AND resident_id IN (");
            push_id_list(&mut b, chunk);
            let rows = b.build().fetch_all(&self.reader).await.map_err(map_error)?;
            for row in &rows {
                reported.push(get(row, "resident_id")?);
            }
        }
        Ok(reported)
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
