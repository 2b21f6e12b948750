// The `AuditedWrites` implementation both SQL backends share. Included after
// `sql_store.rs`, whose `*_on` write helpers, `begin_audit_append` and
// `append_chained` it uses: the same SQL as the plain trait methods, run
// inside the audit append's transaction.

use epigrid_store::{AuditedWrites, RegistryWrite};

#[async_trait::async_trait]
impl AuditedWrites for SqlStore {
    async fn write_audited(
        &self,
        write: RegistryWrite<'_>,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = begin_audit_append(&self.writer).await?;
        let written = match write {
            RegistryWrite::InsertArea(a) => insert_area_on(&mut tx, a).await.map(|()| true),
            RegistryWrite::UpdateArea(a) => update_area_on(&mut tx, a).await,
            RegistryWrite::InsertHousehold(h) => {
                insert_bulk_on(&mut tx, std::slice::from_ref(h), &[]).await.map(|()| true)
            }
            RegistryWrite::UpdateHousehold(h) => update_household_on(&mut tx, h).await,
            RegistryWrite::InsertResident(r) => {
                insert_bulk_on(&mut tx, &[], std::slice::from_ref(r)).await.map(|()| true)
            }
            RegistryWrite::UpdateResident(r) => update_resident_on(&mut tx, r).await,
            RegistryWrite::InsertUser(u) => insert_user_on(&mut tx, u).await.map(|()| true),
            RegistryWrite::UpdateUser { user, end_sessions } => {
                let updated = update_user_on(&mut tx, user).await?;
                if updated && end_sessions {
                    delete_user_sessions_on(&mut tx, user.id).await?;
                }
                Ok(updated)
            }
        }?;
        if !written {
            // Dropping the transaction rolls it back: nothing to record.
            return Ok(false);
        }
        append_chained(&mut tx, audit).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(true)
    }
}
