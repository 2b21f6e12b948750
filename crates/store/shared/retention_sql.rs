// The `RetentionStore` implementation both SQL backends share (PIPL
// retention). Included with `include!` after `sql_store.rs` and
// `intake_sql.rs`, whose helpers (`map_error`, `get`, `begin_audit_append`,
// `append_chained`) it uses.

use epigrid_store::{PurgeCounts, PurgeScope, RetentionStore};

/// The kinds of report that hold health or movement data (or a request for
/// help about one): purged. Volunteer offers are not health data and serve
/// for as long as the volunteer stays available.
type CountField = fn(&mut PurgeCounts) -> &mut u64;
const PURGED_KINDS: [(&str, CountField); 3] = [
    ("health", |c| &mut c.health_reports),
    ("arrival", |c| &mut c.arrivals),
    ("help", |c| &mut c.help_requests),
];

fn as_count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

async fn count_purgeable_in(
    conn: &mut <Db as sqlx::Database>::Connection,
    scope: PurgeScope<'_>,
) -> StoreResult<PurgeCounts> {
    let before = scope.before;
    let mut counts = PurgeCounts::default();
    for (kind, field) in PURGED_KINDS {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM intake_reports \
             WHERE kind = $1 AND day < $2 AND tasks_pending = $3",
        )
        .bind(kind)
        .bind(before)
        .bind(false)
        .fetch_one(&mut *conn)
        .await
        .map_err(map_error)?;
        *field(&mut counts) = as_count(get(&row, "n")?);
    }
    let row = sqlx::query("SELECT COUNT(*) AS n FROM intake_reported_residents WHERE day < $1")
        .bind(before)
        .fetch_one(&mut *conn)
        .await
        .map_err(map_error)?;
    counts.reported_marks = as_count(get(&row, "n")?);
    let row = sqlx::query(AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM match_rows WHERE {OLD_LISTS}")))
        .bind(start_of(before))
        .fetch_one(&mut *conn)
        .await
        .map_err(map_error)?;
    counts.match_rows = as_count(get(&row, "n")?);
    if !scope.health_categories.is_empty() {
        let of_ended = "SELECT COUNT(*) AS n FROM task_history WHERE note IS NOT NULL AND task_id IN (";
        counts.task_notes = count_of_ended_health_tasks(conn, of_ended, scope).await?;
        let of_ended = "SELECT COUNT(*) AS n FROM task_photos WHERE task_id IN (";
        counts.task_photos = count_of_ended_health_tasks(conn, of_ended, scope).await?;
        let of_ended =
            format!("SELECT COUNT(*) AS n FROM tasks WHERE {NAMED_SUBJECT} AND id IN (");
        counts.task_subjects = count_of_ended_health_tasks(conn, &of_ended, scope).await?;
    }
    Ok(counts)
}

/// `select`, a count whose condition ends in `… IN (`, completed with the
/// ended health tasks of the scope.
async fn count_of_ended_health_tasks(
    conn: &mut <Db as sqlx::Database>::Connection,
    select: &str,
    scope: PurgeScope<'_>,
) -> StoreResult<u64> {
    let mut b = QueryBuilder::<Db>::new(select);
    push_ended_health_tasks(&mut b, scope);
    let row = b.push(")").build().fetch_one(&mut *conn).await.map_err(map_error)?;
    Ok(as_count(get(&row, "n")?))
}

/// A task about a person: a resident, or a household (its members).
const NAMED_SUBJECT: &str = "subject_kind IN ('resident', 'household')";

/// Makes the ended health tasks of the scope anonymous (see
/// `PurgeCounts::task_subjects`): the steps a resident took through
/// self-service no longer name the household, and a task about a resident
/// or household is about its grid instead (the community's, without one).
/// Its building and unit would narrow it to a few households, so they go
/// too; so does its idempotency key, the report's and the subject's ids,
/// whose report the purge deletes anyway. The version moves on: a page open
/// on the task must reload before it can write. The number of tasks.
async fn anonymise_ended_health_tasks(
    tx: &mut <Db as sqlx::Database>::Connection,
    scope: PurgeScope<'_>,
) -> StoreResult<u64> {
    use epigrid_domain::tasks::{HOUSEHOLD_ACTOR_PREFIX, Source, household_actor_name};
    let anonymous_household = household_actor_name(Uuid::nil());
    let mut b = QueryBuilder::<Db>::new("UPDATE task_history SET actor_name = ");
    b.push_bind(anonymous_household.clone());
    // The prefix has no `%` or `_` of its own for LIKE to read.
    b.push(" WHERE actor_name LIKE ");
    b.push_bind(format!("{HOUSEHOLD_ACTOR_PREFIX}%"));
    b.push(" AND actor_name <> ");
    b.push_bind(anonymous_household);
    b.push(" AND task_id IN (");
    push_ended_health_tasks(&mut b, scope);
    b.push(")").build().execute(&mut *tx).await.map_err(map_error)?;
    let mut b = QueryBuilder::<Db>::new(
        "UPDATE tasks SET subject_kind = 'area', subject_id = COALESCE(grid_id, community_id), \
         building_id = NULL, unit_id = NULL, idempotency_key = NULL, version = version + 1, \
         source_detail = CASE WHEN source_kind = 'resident' THEN ",
    );
    b.push_bind(Source::ANONYMOUS_RESIDENT_JSON);
    b.push(format_args!(" ELSE source_detail END WHERE {NAMED_SUBJECT} AND id IN ("));
    push_ended_health_tasks(&mut b, scope);
    let done = b.push(")").build().execute(&mut *tx).await.map_err(map_error)?;
    Ok(done.rows_affected())
}

/// Pushes `SELECT id FROM tasks WHERE …` for the tasks of the scope's
/// health categories that ended before its day: rejected, closed or
/// evaluated (a closed task is only scored after, its work is done). A
/// rejected task has no close time; its last change is when it ended.
fn push_ended_health_tasks(b: &mut QueryBuilder<Db>, scope: PurgeScope<'_>) {
    b.push(format_args!(
        "SELECT id FROM tasks WHERE state IN ('{}', '{}', '{}') \
         AND COALESCE(closed_at, updated_at) < ",
        EventState::Rejected.as_str(),
        EventState::Closed.as_str(),
        EventState::Evaluated.as_str(),
    ));
    b.push_bind(start_of(scope.before));
    b.push(" AND category IN (");
    let mut codes = b.separated(", ");
    for code in scope.health_categories {
        codes.push_bind(code.clone());
    }
    b.push(")");
}

/// Rows of the match lists uploaded before `$1`.
const OLD_LISTS: &str = "list_id IN (SELECT id FROM match_lists WHERE created_at < $1)";

/// Lists carry a timestamp, not a day: the cut-off day's first instant (UTC).
fn start_of(day: chrono::NaiveDate) -> chrono::DateTime<chrono::Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

#[async_trait::async_trait]
impl RetentionStore for SqlStore {
    async fn count_purgeable(&self, scope: PurgeScope<'_>) -> StoreResult<PurgeCounts> {
        let mut conn = self.reader.acquire().await.map_err(map_error)?;
        count_purgeable_in(&mut conn, scope).await
    }

    async fn purge_personal_records(
        &self,
        scope: PurgeScope<'_>,
        audit: &AuditRecord,
    ) -> StoreResult<PurgeCounts> {
        let before = scope.before;
        // The audit append lock is taken first: the counts recorded are the
        // rows this transaction deletes, and the entry commits with them.
        let mut tx = begin_audit_append(&self.writer).await?;
        let mut counts = PurgeCounts::default();
        for (kind, field) in PURGED_KINDS {
            let done = sqlx::query(
                "DELETE FROM intake_reports WHERE kind = $1 AND day < $2 AND tasks_pending = $3",
            )
            .bind(kind)
            .bind(before)
            .bind(false)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            *field(&mut counts) = done.rows_affected();
        }
        let done = sqlx::query("DELETE FROM intake_reported_residents WHERE day < $1")
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        counts.reported_marks = done.rows_affected();
        let done = sqlx::query(AssertSqlSafe(format!("DELETE FROM match_rows WHERE {OLD_LISTS}")))
            .bind(start_of(before))
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        counts.match_rows = done.rows_affected();
        if !scope.health_categories.is_empty() {
            // The steps stay (the evaluation counts them); only their
            // notes, and the photos taken with them, go.
            let mut b = QueryBuilder::<Db>::new("DELETE FROM task_photos WHERE task_id IN (");
            push_ended_health_tasks(&mut b, scope);
            let done = b.push(")").build().execute(&mut *tx).await.map_err(map_error)?;
            counts.task_photos = done.rows_affected();
            let mut b = QueryBuilder::<Db>::new(
                "UPDATE task_history SET note = NULL WHERE note IS NOT NULL AND task_id IN (",
            );
            push_ended_health_tasks(&mut b, scope);
            let done = b.push(")").build().execute(&mut *tx).await.map_err(map_error)?;
            counts.task_notes = done.rows_affected();
            counts.task_subjects = anonymise_ended_health_tasks(&mut tx, scope).await?;
        }
        let mut entry = audit.clone();
        // Written by hand: the backends do not depend on serde_json, and
        // these are numbers and a date, nothing to escape.
        entry.detail = format!(
            "{{\"before\":\"{before}\",\"deleted\":{{\"health_reports\":{},\"arrivals\":{},\
             \"help_requests\":{},\"reported_marks\":{},\"match_rows\":{},\
             \"task_notes\":{},\"task_photos\":{},\"task_subjects\":{}}}}}",
            counts.health_reports,
            counts.arrivals,
            counts.help_requests,
            counts.reported_marks,
            counts.match_rows,
            counts.task_notes,
            counts.task_photos,
            counts.task_subjects
        );
        append_chained(&mut tx, &entry).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(counts)
    }
}
