//! Bulk inserts on PostgreSQL with COPY … FROM STDIN (text format) inside
//! the caller's transaction: one round trip per table instead of one
//! statement per thousand rows, and no bind-parameter limit.

use std::fmt::Write as _;

use super::*;

/// Appends one COPY text-format field: `\N` for NULL, backslash escapes for
/// the characters the format reserves.
fn field(out: &mut String, value: Option<&str>) {
    match value {
        None => out.push_str("\\N"),
        Some(text) => {
            for c in text.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        }
    }
}

/// bytea in hex form; the backslash of `\x` is itself escaped for COPY.
fn bytes_field(out: &mut String, value: Option<&[u8]>) {
    match value {
        None => out.push_str("\\N"),
        Some(bytes) => {
            out.push_str("\\\\x");
            for b in bytes {
                let _ = write!(out, "{b:02x}");
            }
        }
    }
}

fn uuid_field(out: &mut String, value: Option<Uuid>) {
    match value {
        None => out.push_str("\\N"),
        Some(id) => {
            let _ = write!(out, "{}", id.hyphenated());
        }
    }
}

fn path_fields(out: &mut String, path: &AreaPath) {
    for id in [path.sub_district, path.community, path.grid, path.building, path.unit] {
        uuid_field(out, id);
        out.push('\t');
    }
}

fn time_field(out: &mut String, at: DateTime<Utc>) {
    let _ = write!(out, "{}", at.format("%Y-%m-%d %H:%M:%S%.6f+00"));
}

async fn copy(conn: &mut sqlx::PgConnection, statement: &str, data: String) -> StoreResult<()> {
    let mut copy = conn.copy_in_raw(statement).await.map_err(map_error)?;
    copy.send(data.into_bytes()).await.map_err(map_error)?;
    copy.finish().await.map_err(map_error)?;
    Ok(())
}

/// Rows per COPY buffer: bounded memory whatever the batch size.
const COPY_ROWS: usize = 20_000;

pub(crate) async fn insert_households(
    conn: &mut sqlx::PgConnection,
    households: &[HouseholdRecord],
) -> StoreResult<()> {
    for chunk in households.chunks(COPY_ROWS) {
        let mut out = String::with_capacity(chunk.len() * 240);
        for h in chunk {
            uuid_field(&mut out, Some(h.id));
            out.push('\t');
            path_fields(&mut out, &h.path);
            field(&mut out, Some(&h.room));
            out.push('\t');
            time_field(&mut out, h.created_at);
            out.push('\t');
            time_field(&mut out, h.updated_at);
            out.push('\n');
        }
        let statement = format!("COPY households ({HOUSEHOLD_COLUMNS}) FROM STDIN");
        copy(conn, &statement, out).await?;
    }
    Ok(())
}

pub(crate) async fn insert_residents(
    conn: &mut sqlx::PgConnection,
    residents: &[ResidentRecord],
) -> StoreResult<()> {
    for chunk in residents.chunks(COPY_ROWS) {
        let mut out = String::with_capacity(chunk.len() * 600);
        let mut tags = String::new();
        for r in chunk {
            let (residence, arrived_on, origin) = residence_columns(&r.residence);
            uuid_field(&mut out, Some(r.id));
            out.push('\t');
            uuid_field(&mut out, Some(r.household_id));
            out.push('\t');
            path_fields(&mut out, &r.path);
            field(&mut out, Some(r.name.as_str()));
            out.push('\t');
            out.push_str(sex_str(r.sex));
            out.push('\t');
            let _ = write!(out, "{}", r.birth_date);
            out.push('\t');
            field(&mut out, r.id_kind.map(id_kind_str));
            out.push('\t');
            bytes_field(&mut out, r.id_number.as_ref().map(|s| s.ciphertext.as_slice()));
            out.push('\t');
            bytes_field(&mut out, r.id_number.as_ref().map(|s| s.blind_index.as_slice()));
            out.push('\t');
            bytes_field(&mut out, r.phone.as_ref().map(|s| s.ciphertext.as_slice()));
            out.push('\t');
            bytes_field(&mut out, r.phone.as_ref().map(|s| s.blind_index.as_slice()));
            out.push('\t');
            out.push_str(r.relation.as_str());
            out.push('\t');
            out.push_str(residence);
            out.push('\t');
            field(&mut out, arrived_on.map(|d| d.to_string()).as_deref());
            out.push('\t');
            field(&mut out, origin.as_deref());
            out.push('\t');
            field(&mut out, Some(&tags_text(&r.tags)));
            out.push('\t');
            time_field(&mut out, r.created_at);
            out.push('\t');
            time_field(&mut out, r.updated_at);
            out.push('\n');
            for tag in &r.tags {
                uuid_field(&mut tags, Some(r.id));
                tags.push('\t');
                field(&mut tags, Some(tag.as_str()));
                tags.push('\t');
                uuid_field(&mut tags, r.path.community);
                tags.push('\t');
                uuid_field(&mut tags, r.path.grid);
                tags.push('\n');
            }
        }
        let statement = format!("COPY residents ({RESIDENT_COLUMNS}) FROM STDIN");
        copy(conn, &statement, out).await?;
        if !tags.is_empty() {
            copy(
                conn,
                "COPY resident_tags (resident_id, tag, community_id, grid_id) FROM STDIN",
                tags,
            )
            .await?;
        }
    }
    Ok(())
}
