//! Registry writes together with their audit entry, in one transaction:
//! both are stored or neither is, so a crash or a failed append can never
//! leave a change the audit log does not show (nor an entry for a change
//! that did not happen).

use async_trait::async_trait;

use crate::{AreaRecord, AuditRecord, HouseholdRecord, ResidentRecord, StoreResult, UserRecord};

/// One write of the registry or of an account, as the service audits it.
#[derive(Debug, Clone, Copy)]
pub enum RegistryWrite<'a> {
    InsertArea(&'a AreaRecord),
    UpdateArea(&'a AreaRecord),
    InsertHousehold(&'a HouseholdRecord),
    UpdateHousehold(&'a HouseholdRecord),
    InsertResident(&'a ResidentRecord),
    UpdateResident(&'a ResidentRecord),
    InsertUser(&'a UserRecord),
    /// With `end_sessions`, the account's sessions end in the same
    /// transaction (a new password, role or scope, or a disabled account).
    UpdateUser {
        user: &'a UserRecord,
        end_sessions: bool,
    },
}

#[async_trait]
pub trait AuditedWrites {
    /// Applies `write` and appends `audit` (after the chain's head) in one
    /// transaction. `Ok(false)` when an update found no row: then nothing is
    /// written and no entry appended. A failed insert (e.g. a `Conflict`)
    /// appends nothing either.
    async fn write_audited(
        &self,
        write: RegistryWrite<'_>,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;
}
