// The `ImportStore` implementation both SQL backends share (issue #7).
//
// Included with `include!` after `sql_store.rs`, whose helpers it uses
// (`get`, `map_error`, `push_scope`, `area_from_row`, `begin_audit_append`,
// `append_chained`, …). The one part that differs between the backends is
// how many rows go in fast: each backend crate has a module `import_bulk`
// with `insert_households` and `insert_residents` (multi-row INSERTs on
// SQLite, COPY on PostgreSQL).

use epigrid_store::{ImportChunk, ImportJobRecord, ImportStore};

const IMPORT_JOB_COLUMNS: &str = "id, file_sha256, actor_user_id, actor_name, mode, status, \
    total_rows, inserted, updated, unchanged, rejected, chunks_done, created_at, updated_at";

/// Blind indexes per `IN (…)` lookup: well under both backends' parameter limits.
const BLIND_LOOKUP_CHUNK: usize = 1_000;

fn import_job_from_row(row: &DbRow) -> StoreResult<ImportJobRecord> {
    Ok(ImportJobRecord {
        id: get(row, "id")?,
        file_sha256: get(row, "file_sha256")?,
        actor_user_id: get(row, "actor_user_id")?,
        actor_name: get(row, "actor_name")?,
        mode: get(row, "mode")?,
        status: get(row, "status")?,
        total_rows: get(row, "total_rows")?,
        inserted: get(row, "inserted")?,
        updated: get(row, "updated")?,
        unchanged: get(row, "unchanged")?,
        rejected: get(row, "rejected")?,
        chunks_done: get(row, "chunks_done")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

#[async_trait::async_trait]
impl ImportStore for SqlStore {
    async fn areas_within(&self, within: Option<Scope>) -> StoreResult<Vec<AreaRecord>> {
        let mut b =
            QueryBuilder::<Db>::new(format!("SELECT {AREA_COLUMNS} FROM areas WHERE 1 = 1"));
        push_scope(&mut b, within);
        // Parents first: a kind's depth orders the hierarchy, ids break ties.
        b.push(
            " ORDER BY CASE kind WHEN 'sub_district' THEN 0 WHEN 'community' THEN 1 \
             WHEN 'grid' THEN 2 WHEN 'building' THEN 3 ELSE 4 END, id",
        );
        let rows = b.build().fetch_all(&self.reader).await.map_err(map_error)?;
        rows.iter().map(area_from_row).collect()
    }

    async fn households_within(&self, within: Option<Scope>) -> StoreResult<Vec<HouseholdRecord>> {
        let mut b = QueryBuilder::<Db>::new(format!(
            "SELECT {HOUSEHOLD_COLUMNS} FROM households WHERE 1 = 1"
        ));
        push_scope(&mut b, within);
        let rows = b.build().fetch_all(&self.reader).await.map_err(map_error)?;
        rows.iter().map(household_from_row).collect()
    }

    async fn residents_by_id_blind(
        &self,
        blind_indexes: &[Vec<u8>],
    ) -> StoreResult<Vec<ResidentRecord>> {
        let mut found = Vec::new();
        for chunk in blind_indexes.chunks(BLIND_LOOKUP_CHUNK) {
            let mut b = QueryBuilder::<Db>::new(format!(
                "SELECT {RESIDENT_COLUMNS} FROM residents WHERE id_blind IN ("
            ));
            let mut list = b.separated(", ");
            for blind in chunk {
                list.push_bind(blind.clone());
            }
            b.push(")");
            let rows = b.build().fetch_all(&self.reader).await.map_err(map_error)?;
            for row in &rows {
                found.push(resident_from_row(row)?);
            }
        }
        Ok(found)
    }

    async fn insert_import_job(&self, j: &ImportJobRecord) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO import_jobs ({IMPORT_JOB_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(j.id)
            .bind(j.file_sha256.clone())
            .bind(j.actor_user_id)
            .bind(j.actor_name.clone())
            .bind(j.mode.clone())
            .bind(j.status.clone())
            .bind(j.total_rows)
            .bind(j.inserted)
            .bind(j.updated)
            .bind(j.unchanged)
            .bind(j.rejected)
            .bind(j.chunks_done)
            .bind(j.created_at)
            .bind(j.updated_at)
            .execute(&self.writer)
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn get_import_job(&self, id: Uuid) -> StoreResult<Option<ImportJobRecord>> {
        let sql = format!("SELECT {IMPORT_JOB_COLUMNS} FROM import_jobs WHERE id = $1");
        fetch_optional_by(&self.writer, sql, id, import_job_from_row).await
    }

    async fn latest_import_job(&self, file_sha256: &[u8]) -> StoreResult<Option<ImportJobRecord>> {
        let sql = format!(
            "SELECT {IMPORT_JOB_COLUMNS} FROM import_jobs WHERE file_sha256 = $1 \
             ORDER BY id DESC LIMIT 1"
        );
        fetch_optional_by(&self.writer, sql, file_sha256.to_vec(), import_job_from_row).await
    }

    async fn update_import_job(&self, j: &ImportJobRecord) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE import_jobs SET status = $2, total_rows = $3, unchanged = $4, rejected = $5, \
             updated_at = $6 WHERE id = $1",
        )
        .bind(j.id)
        .bind(j.status.clone())
        .bind(j.total_rows)
        .bind(j.unchanged)
        .bind(j.rejected)
        .bind(j.updated_at)
        .execute(&self.writer)
        .await
        .map_err(map_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn apply_import_chunk(&self, c: &ImportChunk) -> StoreResult<()> {
        // The audit lock is taken first, so the chunk and its audit entry
        // commit together: every committed chunk is audited, and a chunk
        // that rolls back leaves no entry claiming it was written.
        let mut tx = begin_audit_append(&self.writer).await?;
        for area in &c.areas {
            insert_area_on(&mut tx, area).await?;
        }
        import_bulk::insert_households(&mut tx, &c.households).await?;
        import_bulk::insert_residents(&mut tx, &c.inserts).await?;
        count_inserted(&mut tx, &c.households, &c.inserts).await?;
        for resident in &c.updates {
            update_resident_on(&mut tx, resident).await?;
        }
        let counted = sqlx::query(
            "UPDATE import_jobs SET inserted = inserted + $2, updated = updated + $3, \
             chunks_done = chunks_done + 1, updated_at = $4 WHERE id = $1",
        )
        .bind(c.job_id)
        .bind(c.inserts.len() as i64)
        .bind(c.updates.len() as i64)
        .bind(c.at)
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
        if counted.rows_affected() != 1 {
            return Err(StoreError::MissingReference { what: "import job".into() });
        }
        append_chained(&mut tx, &c.audit).await?;
        tx.commit().await.map_err(map_error)
    }

    async fn bulk_load(
        &self,
        households: &[HouseholdRecord],
        residents: &[ResidentRecord],
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(map_error)?;
        import_bulk::insert_households(&mut tx, households).await?;
        import_bulk::insert_residents(&mut tx, residents).await?;
        count_inserted(&mut tx, households, residents).await?;
        tx.commit().await.map_err(map_error)
    }
}
