//! Bulk inserts on SQLite: multi-row INSERTs of `BULK_CHUNK` rows inside the
//! caller's transaction. SQLite has no COPY; one prepared statement per
//! thousand rows in one transaction is its fastest path from sqlx.

use super::*;

pub(crate) async fn insert_households(
    conn: &mut sqlx::SqliteConnection,
    households: &[HouseholdRecord],
) -> StoreResult<()> {
    for chunk in households.chunks(BULK_CHUNK) {
        let mut b =
            QueryBuilder::<Db>::new(format!("INSERT INTO households ({HOUSEHOLD_COLUMNS}) "));
        b.push_values(chunk, |mut row, h| {
            row.push_bind(h.id);
            push_path(&mut row, &h.path);
            row.push_bind(h.room.clone()).push_bind(h.created_at).push_bind(h.updated_at);
        });
        b.build().execute(&mut *conn).await.map_err(map_error)?;
    }
    Ok(())
}

pub(crate) async fn insert_residents(
    conn: &mut sqlx::SqliteConnection,
    residents: &[ResidentRecord],
) -> StoreResult<()> {
    for chunk in residents.chunks(BULK_CHUNK) {
        let mut b = QueryBuilder::<Db>::new("");
        push_resident_values(&mut b, chunk);
        b.build().execute(&mut *conn).await.map_err(map_error)?;
        insert_tag_rows(conn, &tag_rows(chunk)).await?;
    }
    Ok(())
}
