//! What list matching (协查名单) needs from a store: residents by phone
//! blind index and by name in batches (the document lookup is the import's
//! `residents_by_id_blind`), and the lists with their matched rows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use epigrid_domain::{AreaKind, Scope};
use uuid::Uuid;

use crate::{AuditRecord, ResidentRecord, StoreResult, TaskRecord};

/// One uploaded list. The counts are those of its rows, kept with the list
/// so that the overview page reads one row per list.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchListRecord {
    pub id: Uuid,
    /// The file name as uploaded.
    pub name: String,
    pub uploaded_by: Option<Uuid>,
    pub uploaded_by_name: String,
    /// The uploader's scope: rows were matched within it, and only users
    /// whose scope covers it see the list. `None`: the whole registry.
    pub scope_kind: Option<AreaKind>,
    pub scope_area_id: Option<Uuid>,
    /// The header row as written, so that a download gives back the
    /// user's own columns: a JSON array of strings.
    pub headers: String,
    pub total: i64,
    pub exact: i64,
    pub probable: i64,
    pub unmatched: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl MatchListRecord {
    pub fn scope(&self) -> Option<Scope> {
        Some(Scope { kind: self.scope_kind?, area_id: self.scope_area_id? })
    }
}

/// One row of a list with its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchRowRecord {
    pub list_id: Uuid,
    /// The row number as the user's spreadsheet shows it.
    pub row_number: i64,
    /// The original cells: a JSON array of strings, sealed by the service
    /// (they hold names, ID numbers and phones), stored as hex.
    pub cells: String,
    /// `exact`, `probable` or `none`.
    pub class: String,
    pub resident_id: Option<Uuid>,
    pub grid_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
    /// The reason code (`matching.reason.id`, `id.checksum`, …).
    pub reason: String,
    /// The task's state now, read with the row (never stored).
    pub task_state: Option<String>,
}

#[async_trait]
pub trait MatchingStore {
    /// Residents whose phone blind index is one of `blind_indexes`, within
    /// the scope (everything when `None`).
    async fn residents_by_phone_blind(
        &self,
        blind_indexes: &[Vec<u8>],
        within: Option<Scope>,
    ) -> StoreResult<Vec<ResidentRecord>>;
    /// Residents whose name is one of `names`, within the scope.
    async fn residents_by_names(
        &self,
        names: &[String],
        within: Option<Scope>,
    ) -> StoreResult<Vec<ResidentRecord>>;

    /// Tasks whose idempotency key is one of `keys`, in batches: a re-run
    /// finds the tasks of its earlier run in a few queries.
    async fn tasks_by_idempotency_keys(&self, keys: &[String]) -> StoreResult<Vec<TaskRecord>>;

    /// Writes the list (inserted, or its counts updated on a re-run) and
    /// replaces its rows, with the audit entry, in one transaction.
    async fn save_match_list(
        &self,
        list: &MatchListRecord,
        rows: &[MatchRowRecord],
        audit: &AuditRecord,
    ) -> StoreResult<()>;
    async fn get_match_list(&self, id: Uuid) -> StoreResult<Option<MatchListRecord>>;
    /// Every list, newest first (the caller filters by scope).
    async fn list_match_lists(&self, limit: u32) -> StoreResult<Vec<MatchListRecord>>;
    /// The rows of a list in row order, each with its task's current state.
    async fn match_rows(&self, list_id: Uuid) -> StoreResult<Vec<MatchRowRecord>>;
}
