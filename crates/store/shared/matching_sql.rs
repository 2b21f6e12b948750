// The `MatchingStore` implementation both SQL backends share (issue #7,
// list matching). Included with `include!` after `sql_store.rs` and
// `import_sql.rs`, whose helpers it uses (`get`, `map_error`, `push_scope`,
// `resident_from_row`, `begin_audit_append`, `append_chained`,
// `BLIND_LOOKUP_CHUNK`).

use epigrid_store::{MatchListRecord, MatchRowRecord, MatchingStore};

const MATCH_LIST_COLUMNS: &str = "id, name, uploaded_by, uploaded_by_name, scope_kind, \
    scope_area_id, headers, total, exact, probable, unmatched, created_at, updated_at";

/// Rows per multi-row INSERT: 500 × 8 parameters stays far below SQLite's
/// limit of 32,766 and PostgreSQL's of 65,535.
const MATCH_ROW_CHUNK: usize = 500;

fn match_list_from_row(row: &DbRow) -> StoreResult<MatchListRecord> {
    let scope_kind: Option<String> = get(row, "scope_kind")?;
    Ok(MatchListRecord {
        id: get(row, "id")?,
        name: get(row, "name")?,
        uploaded_by: get(row, "uploaded_by")?,
        uploaded_by_name: get(row, "uploaded_by_name")?,
        scope_kind: match scope_kind {
            Some(k) => Some(AreaKind::parse(&k).ok_or_else(|| corrupt("list scope", &k))?),
            None => None,
        },
        scope_area_id: get(row, "scope_area_id")?,
        headers: get(row, "headers")?,
        total: get(row, "total")?,
        exact: get(row, "exact")?,
        probable: get(row, "probable")?,
        unmatched: get(row, "unmatched")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

impl SqlStore {
    /// `SELECT residents WHERE <column> IN (…)` in batches, within a scope.
    async fn residents_where_in<T>(
        &self,
        column: &'static str,
        values: &[T],
        within: Option<Scope>,
    ) -> StoreResult<Vec<ResidentRecord>>
    where
        T: Clone + Send + Sync + for<'q> sqlx::Encode<'q, Db> + sqlx::Type<Db> + 'static,
    {
        let mut found = Vec::new();
        for chunk in values.chunks(BLIND_LOOKUP_CHUNK) {
            let mut b = QueryBuilder::<Db>::new(format!(
                "SELECT {RESIDENT_COLUMNS} FROM residents WHERE {column} IN ("
            ));
            let mut list = b.separated(", ");
            for value in chunk {
                list.push_bind(value.clone());
            }
            b.push(")");
            push_scope(&mut b, within);
            let rows = b.build().fetch_all(&self.reader).await.map_err(map_error)?;
            for row in &rows {
                found.push(resident_from_row(row)?);
            }
        }
        Ok(found)
    }
}

#[async_trait::async_trait]
impl MatchingStore for SqlStore {
    async fn residents_by_phone_blind(
        &self,
        blind_indexes: &[Vec<u8>],
        within: Option<Scope>,
    ) -> StoreResult<Vec<ResidentRecord>> {
        self.residents_where_in("phone_blind", blind_indexes, within).await
    }

    async fn residents_by_names(
        &self,
        names: &[String],
        within: Option<Scope>,
    ) -> StoreResult<Vec<ResidentRecord>> {
        self.residents_where_in("name", names, within).await
    }

    async fn tasks_by_idempotency_keys(&self, keys: &[String]) -> StoreResult<Vec<TaskRecord>> {
        let mut found = Vec::new();
        for chunk in keys.chunks(BLIND_LOOKUP_CHUNK) {
            let mut b = QueryBuilder::<Db>::new(format!(
                "SELECT {TASK_COLUMNS} FROM tasks WHERE idempotency_key IN ("
            ));
            let mut list = b.separated(", ");
            for key in chunk {
                list.push_bind(key.clone());
            }
            b.push(")");
            let rows = b.build().fetch_all(&self.reader).await.map_err(map_error)?;
            for row in &rows {
                found.push(task_from_row(row)?);
            }
        }
        Ok(found)
    }

    async fn save_match_list(
        &self,
        l: &MatchListRecord,
        rows: &[MatchRowRecord],
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = begin_audit_append(&self.writer).await?;
        let sql = format!(
            "INSERT INTO match_lists ({MATCH_LIST_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (id) DO UPDATE SET total = $8, exact = $9, probable = $10, \
             unmatched = $11, updated_at = $13"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(l.id)
            .bind(l.name.clone())
            .bind(l.uploaded_by)
            .bind(l.uploaded_by_name.clone())
            .bind(l.scope_kind.map(AreaKind::as_str))
            .bind(l.scope_area_id)
            .bind(l.headers.clone())
            .bind(l.total)
            .bind(l.exact)
            .bind(l.probable)
            .bind(l.unmatched)
            .bind(l.created_at)
            .bind(l.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        sqlx::query("DELETE FROM match_rows WHERE list_id = $1")
            .bind(l.id)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        for chunk in rows.chunks(MATCH_ROW_CHUNK) {
            let mut b = QueryBuilder::<Db>::new(
                "INSERT INTO match_rows (list_id, row_number, cells, class, resident_id, \
                 grid_id, task_id, reason) ",
            );
            b.push_values(chunk, |mut v, r| {
                v.push_bind(r.list_id)
                    .push_bind(r.row_number)
                    .push_bind(r.cells.clone())
                    .push_bind(r.class.clone())
                    .push_bind(r.resident_id)
                    .push_bind(r.grid_id)
                    .push_bind(r.task_id)
                    .push_bind(r.reason.clone());
            });
            b.build().execute(&mut *tx).await.map_err(map_error)?;
        }
        append_chained(&mut tx, audit).await?;
        tx.commit().await.map_err(map_error)
    }

    async fn get_match_list(&self, id: Uuid) -> StoreResult<Option<MatchListRecord>> {
        let sql = format!("SELECT {MATCH_LIST_COLUMNS} FROM match_lists WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_error)?;
        row.as_ref().map(match_list_from_row).transpose()
    }

    async fn list_match_lists(&self, limit: u32) -> StoreResult<Vec<MatchListRecord>> {
        let sql = format!(
            "SELECT {MATCH_LIST_COLUMNS} FROM match_lists ORDER BY created_at DESC, id DESC \
             LIMIT $1"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(map_error)?;
        rows.iter().map(match_list_from_row).collect()
    }

    async fn match_rows(&self, list_id: Uuid) -> StoreResult<Vec<MatchRowRecord>> {
        let rows = sqlx::query(
            "SELECT r.list_id, r.row_number, r.cells, r.class, r.resident_id, r.grid_id, \
             r.task_id, r.reason, t.state AS task_state \
             FROM match_rows r LEFT JOIN tasks t ON t.id = r.task_id \
             WHERE r.list_id = $1 ORDER BY r.row_number",
        )
        .bind(list_id)
        .fetch_all(&self.reader)
        .await
        .map_err(map_error)?;
        rows.iter()
            .map(|row| {
                Ok(MatchRowRecord {
                    list_id: get(row, "list_id")?,
                    row_number: get(row, "row_number")?,
                    cells: get(row, "cells")?,
                    class: get(row, "class")?,
                    resident_id: get(row, "resident_id")?,
                    grid_id: get(row, "grid_id")?,
                    task_id: get(row, "task_id")?,
                    reason: get(row, "reason")?,
                    task_state: get(row, "task_state")?,
                })
            })
            .collect()
    }
}
