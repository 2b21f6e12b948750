//! What imports need from a store: everything in a scope at once (areas and
//! households, so that thousands of rows resolve their addresses in memory),
//! residents by blind index in batches, a job record that survives a crash,
//! and one transaction per chunk of rows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use epigrid_domain::Scope;
use uuid::Uuid;

use crate::{AreaRecord, AuditRecord, HouseholdRecord, ResidentRecord, StoreResult};

/// One import of one file. Counters grow chunk by chunk in the chunk's own
/// transaction, so after a crash they say exactly what was written.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportJobRecord {
    pub id: Uuid,
    /// SHA-256 of the file: a re-run of the same file finds its earlier job.
    pub file_sha256: Vec<u8>,
    pub actor_user_id: Option<Uuid>,
    pub actor_name: String,
    /// `all_or_nothing` or `valid_only`.
    pub mode: String,
    /// `running`, `done`, `rejected` (nothing written) or `failed`.
    pub status: String,
    pub total_rows: i64,
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub rejected: i64,
    pub chunks_done: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What one transaction writes: new areas and households first, then
/// residents, then the job's counters and the chunk's audit entry. All or
/// nothing.
#[derive(Debug, Clone)]
pub struct ImportChunk {
    pub job_id: Uuid,
    pub areas: Vec<AreaRecord>,
    pub households: Vec<HouseholdRecord>,
    pub inserts: Vec<ResidentRecord>,
    pub updates: Vec<ResidentRecord>,
    pub at: DateTime<Utc>,
    /// Ids, counts and the job only: no personal data.
    pub audit: AuditRecord,
}

#[async_trait]
pub trait ImportStore {
    /// Every area within the scope (everything when `None`), parents first.
    async fn areas_within(&self, within: Option<Scope>) -> StoreResult<Vec<AreaRecord>>;
    /// Every household within the scope.
    async fn households_within(&self, within: Option<Scope>) -> StoreResult<Vec<HouseholdRecord>>;
    /// Residents whose ID-document blind index is one of `blind_indexes`,
    /// wherever they live (the caller checks scope).
    async fn residents_by_id_blind(
        &self,
        blind_indexes: &[Vec<u8>],
    ) -> StoreResult<Vec<ResidentRecord>>;

    async fn insert_import_job(&self, job: &ImportJobRecord) -> StoreResult<()>;
    async fn get_import_job(&self, id: Uuid) -> StoreResult<Option<ImportJobRecord>>;
    /// The newest job of a file, to tell the user a re-run resumes one.
    async fn latest_import_job(&self, file_sha256: &[u8]) -> StoreResult<Option<ImportJobRecord>>;
    /// Writes status and the counters that are not kept by chunks
    /// (`unchanged`, `rejected`, `total_rows`).
    async fn update_import_job(&self, job: &ImportJobRecord) -> StoreResult<bool>;

    /// Writes one chunk in one transaction, with its audit entry.
    async fn apply_import_chunk(&self, chunk: &ImportChunk) -> StoreResult<()>;

    /// The raw bulk path the chunks use (batched multi-row inserts on
    /// SQLite, COPY on PostgreSQL), in one transaction: the baseline an
    /// import's speed is measured against.
    async fn bulk_load(
        &self,
        households: &[HouseholdRecord],
        residents: &[ResidentRecord],
    ) -> StoreResult<()>;
}
