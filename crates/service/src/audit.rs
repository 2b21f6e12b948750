//! Writing the audit log. Every write, unmask, export and login goes through
//! `Service::audit`, with ids, field names and reasons only: never a clear
//! ID number, phone or name.

use epigrid_domain::AreaPath;
use epigrid_store::{AuditQuery, AuditRecord};
use serde_json::Value;
use uuid::Uuid;

use crate::{Actor, Service, ServiceResult};

/// What an audit entry is about.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub kind: &'a str,
    pub id: Uuid,
    pub path: Option<&'a AreaPath>,
}

impl Service {
    /// Appends an audit entry on its own: for what changes nothing (logins,
    /// unmasks, exports). Writes go through `write_audited`, which stores the
    /// change and its entry in one transaction.
    pub async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        target: Option<Target<'_>>,
        outcome: &str,
        detail: Value,
    ) -> ServiceResult<()> {
        let entry = self.audit_record(actor, action, target, outcome, detail);
        self.store().append_audit(&entry).await?;
        Ok(())
    }

    /// Applies a registry or account write and appends its audit entry in
    /// one transaction: both or neither. `false` when an update found no row.
    pub(crate) async fn write_audited(
        &self,
        actor: &Actor,
        write: epigrid_store::RegistryWrite<'_>,
        action: &str,
        target: Target<'_>,
        detail: Value,
    ) -> ServiceResult<bool> {
        let entry = self.audit_record(actor, action, Some(target), "ok", detail);
        Ok(self.store().write_audited(write, &entry).await?)
    }

    /// The entry `audit` would append, for a caller that writes it in the
    /// same transaction as its change (see `Store::apply_task_steps_audited`).
    pub(crate) fn audit_record(
        &self,
        actor: &Actor,
        action: &str,
        target: Option<Target<'_>>,
        outcome: &str,
        detail: Value,
    ) -> AuditRecord {
        AuditRecord {
            id: Uuid::now_v7(),
            at: self.now(),
            actor_user_id: actor.user_id,
            actor_name: actor.username.clone(),
            actor_role: actor.user_id.map(|_| actor.role),
            action: action.to_owned(),
            target_kind: target.map(|t| t.kind.to_owned()),
            target_id: target.map(|t| t.id),
            community_id: target.and_then(|t| t.path).and_then(|p| p.community),
            client_addr: actor.client_addr.clone(),
            outcome: outcome.to_owned(),
            detail: detail.to_string(),
        }
    }

    /// Audit entries, newest first. Only account managers read the log,
    /// and only entries about their own scope's communities when scoped.
    pub async fn audit_log(
        &self,
        actor: &Actor,
        mut query: AuditQuery,
    ) -> ServiceResult<Vec<AuditRecord>> {
        actor.require(epigrid_domain::Action::ManageAccounts)?;
        // A community admin reads the entries about their own community;
        // only the sub-district level reads everything.
        if let Some(scope) = actor.scope.filter(|s| s.kind != epigrid_domain::AreaKind::SubDistrict)
        {
            query.community_id = Some(scope.area_id);
        }
        Ok(self.store().list_audit(&query).await?)
    }
}
