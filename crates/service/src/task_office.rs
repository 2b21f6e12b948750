//! What the office's task pages need around the closed loop itself: the
//! names of the people on a board, whom a task may be handed to, and the
//! audited export of the evaluation.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use epigrid_domain::tasks::GroupBy;
use epigrid_domain::{AreaKind, Role, Scope};
use epigrid_store::UserQuery;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::tasks::EvaluationRow;
use crate::{Actor, Service, ServiceResult};

/// An account a task may be reassigned to.
#[derive(Debug, Clone, Serialize)]
pub struct AssigneeChoice {
    pub account_id: Uuid,
    pub display_name: String,
    pub username: String,
    pub role: Role,
    /// The account's scope is the task's own grid.
    pub same_grid: bool,
}

/// Most accounts one community's reassign list shows.
const MAX_CHOICES: u32 = 500;

impl Service {
    /// Display names of accounts by id, for boards and histories. Accounts
    /// outside the actor's scope are left out, except the actor's own.
    pub async fn account_names(
        &self,
        actor: &Actor,
        ids: &[Uuid],
    ) -> ServiceResult<HashMap<Uuid, String>> {
        let mut unique: Vec<Uuid> = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        if unique.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(self
            .store()
            .get_users(&unique)
            .await?
            .into_iter()
            .filter(|u| actor.covers(&u.scope_path) || Some(u.id) == actor.user_id)
            .map(|u| (u.id, u.display_name))
            .collect())
    }

    /// The active accounts of the task's community that may take it over,
    /// workers of the task's own grid first. The actor must see the task.
    pub async fn reassign_choices(
        &self,
        actor: &Actor,
        task_id: Uuid,
    ) -> ServiceResult<Vec<AssigneeChoice>> {
        let detail = self.task_detail(actor, task_id).await?;
        let Some(community) = detail.task.community_id else { return Ok(Vec::new()) };
        let users = self
            .store()
            .list_users(&UserQuery {
                within: Some(Scope { kind: AreaKind::Community, area_id: community }),
                after: None,
                limit: MAX_CHOICES,
            })
            .await?;
        let mut choices: Vec<AssigneeChoice> = users
            .into_iter()
            .filter(|u| !u.disabled && u.role != Role::Volunteer)
            .map(|u| AssigneeChoice {
                account_id: u.id,
                same_grid: u.scope_path.grid.is_some() && u.scope_path.grid == detail.task.grid_id,
                display_name: u.display_name,
                username: u.username,
                role: u.role,
            })
            .collect();
        choices.sort_by(|a, b| {
            b.same_grid
                .cmp(&a.same_grid)
                .then_with(|| (a.role != Role::GridWorker).cmp(&(b.role != Role::GridWorker)))
                .then_with(|| a.username.cmp(&b.username))
        });
        Ok(choices)
    }

    /// The evaluation, for a download: the same figures as
    /// [`Service::evaluation`], with the export recorded in the audit log
    /// (who, which period and grouping, how many rows) before it is handed
    /// out.
    pub async fn export_evaluation(
        &self,
        actor: &Actor,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        group_by: GroupBy,
    ) -> ServiceResult<Vec<EvaluationRow>> {
        let rows = self.evaluation(actor, from, to, group_by).await?;
        let group = match group_by {
            GroupBy::Worker => "worker",
            GroupBy::Grid => "grid",
            GroupBy::Community => "community",
        };
        self.audit(
            actor,
            "export.evaluation",
            None,
            "ok",
            json!({ "format": "csv", "from": from, "to": to, "group_by": group, "rows": rows.len() }),
        )
        .await?;
        Ok(rows)
    }
}
