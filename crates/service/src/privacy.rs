//! Unmasking: seeing a resident's ID number or phone in clear. It is a
//! permission of the role, it needs a reason from a fixed list, and every
//! unmask is audited with that reason.

use epigrid_domain::Action;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::Target;
use crate::{Actor, Service, ServiceError, ServiceResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnmaskField {
    IdNumber,
    Phone,
}

impl UnmaskField {
    pub fn as_str(self) -> &'static str {
        match self {
            UnmaskField::IdNumber => "id_number",
            UnmaskField::Phone => "phone",
        }
    }
}

/// Why someone needs the clear value. A closed list, so the audit log can be
/// reviewed by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnmaskReason {
    /// Calling the resident or their family.
    ContactResident,
    /// Checking a document against the person at the door.
    VerifyIdentity,
    /// Reporting to health authorities or a testing site.
    ReportUpward,
    /// Correcting a wrongly entered number.
    CorrectRecord,
    /// A medical or safety emergency.
    Emergency,
}

impl UnmaskReason {
    pub const ALL: [UnmaskReason; 5] = [
        UnmaskReason::ContactResident,
        UnmaskReason::VerifyIdentity,
        UnmaskReason::ReportUpward,
        UnmaskReason::CorrectRecord,
        UnmaskReason::Emergency,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UnmaskReason::ContactResident => "contact_resident",
            UnmaskReason::VerifyIdentity => "verify_identity",
            UnmaskReason::ReportUpward => "report_upward",
            UnmaskReason::CorrectRecord => "correct_record",
            UnmaskReason::Emergency => "emergency",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl Service {
    /// The clear value of one field of a resident (`None` when the resident
    /// has none). Refused for roles without the permission, and audited
    /// either way.
    pub async fn unmask_resident(
        &self,
        actor: &Actor,
        resident_id: Uuid,
        field: UnmaskField,
        reason: UnmaskReason,
    ) -> ServiceResult<Option<String>> {
        let resident = self
            .store()
            .get_resident(resident_id)
            .await?
            .filter(|r| actor.covers(&r.path) && actor.role.allows(Action::ReadResidents))
            .ok_or(ServiceError::NotFound)?;
        let target = Target { kind: "resident", id: resident.id, path: Some(&resident.path) };
        let detail = serde_json::json!({ "field": field.as_str(), "reason": reason.as_str() });
        if !self.may_unmask(actor.role) {
            self.audit(actor, "resident.unmask", Some(target), "denied", detail).await?;
            return Err(ServiceError::Forbidden);
        }
        let sealed = match field {
            UnmaskField::IdNumber => resident.id_number.as_ref(),
            UnmaskField::Phone => resident.phone.as_ref(),
        };
        let clear = sealed
            .map(|s| self.cipher().open(s).map_err(|e| ServiceError::Internal(e.to_string())))
            .transpose()?;
        // Audited before the value is handed out: no audit entry, no value.
        self.audit(actor, "resident.unmask", Some(target), "ok", detail).await?;
        Ok(clear)
    }
}
