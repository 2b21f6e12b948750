//! Records as stored, and the queries over them.

use chrono::{DateTime, NaiveDate, Utc};
use epigrid_domain::{
    AreaKind, AreaPath, Boundary, GridKind, IdDocumentKind, PersonName, Relation, Residence, Role,
    Scope, Sex, Tag,
};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// The largest page any list query returns, whatever the caller asks for.
pub const MAX_PAGE: u32 = 500;

#[derive(Debug, Clone, PartialEq)]
pub struct AreaRecord {
    pub id: Uuid,
    pub kind: AreaKind,
    pub parent_id: Option<Uuid>,
    /// Ancestors and the area itself.
    pub path: AreaPath,
    /// Statistical code for sub-districts and communities, grid code for grids.
    pub code: Option<String>,
    pub name: String,
    pub grid_kind: Option<GridKind>,
    pub boundary: Option<Boundary>,
    /// Street address of a building.
    pub address: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct AreaQuery {
    pub parent_id: Option<Uuid>,
    pub kind: Option<AreaKind>,
    pub within: Option<Scope>,
    /// Keyset cursor: the id of the last area of the previous page.
    pub after: Option<Uuid>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HouseholdRecord {
    pub id: Uuid,
    /// The path of the unit the household lives in (unit included).
    pub path: AreaPath,
    /// Door or room number, e.g. `1201`.
    pub room: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl HouseholdRecord {
    pub fn unit_id(&self) -> Uuid {
        self.path.unit.unwrap_or_default()
    }
}

#[derive(Debug, Clone, Default)]
pub struct HouseholdQuery {
    pub within: Option<Scope>,
    pub after: Option<Uuid>,
    pub limit: u32,
}

/// A field sealed by the service: AES-GCM ciphertext (nonce first) and a
/// keyed HMAC blind index for exact-match lookup.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedField {
    pub ciphertext: Vec<u8>,
    pub blind_index: Vec<u8>,
}

impl std::fmt::Debug for SealedField {
    // Even ciphertext stays out of logs: it is nobody's business how long it is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedField(..)")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResidentRecord {
    pub id: Uuid,
    pub household_id: Uuid,
    pub path: AreaPath,
    pub name: PersonName,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    pub id_kind: Option<IdDocumentKind>,
    pub id_number: Option<SealedField>,
    pub phone: Option<SealedField>,
    pub relation: Relation,
    pub residence: Residence,
    pub tags: Vec<Tag>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Resident search. Every filter given must match; results come in
/// (name, id) order, a page at a time.
#[derive(Debug, Clone, Default)]
pub struct ResidentQuery {
    pub within: Option<Scope>,
    pub household_id: Option<Uuid>,
    pub name_prefix: Option<String>,
    pub id_blind_index: Option<Vec<u8>>,
    pub phone_blind_index: Option<Vec<u8>>,
    pub tag: Option<Tag>,
    pub after: Option<ResidentCursor>,
    pub limit: u32,
}

/// Keyset position in (name, id) order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidentCursor {
    pub name: String,
    pub id: Uuid,
}

impl ResidentCursor {
    /// An opaque, URL-safe token: hex of the name, a dot, the id.
    pub fn encode(&self) -> String {
        format!("{}.{}", hex::encode(self.name.as_bytes()), self.id.simple())
    }

    pub fn decode(token: &str) -> Option<Self> {
        let (name_hex, id) = token.split_once('.')?;
        let name = String::from_utf8(hex::decode(name_hex).ok()?).ok()?;
        Some(Self { name, id: Uuid::try_parse(id).ok()? })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    /// A work phone shown to colleagues, not a resident's personal number.
    pub phone: Option<String>,
    pub password_hash: String,
    pub role: Role,
    pub scope: Scope,
    /// The scope node's own path, so "is this account under my scope" is a
    /// comparison like any other.
    pub scope_path: AreaPath,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A page of accounts, in username order.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    pub within: Option<Scope>,
    /// Keyset cursor: only usernames after this one (usernames are unique).
    pub after: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// SHA-256 of the cookie token: a copy of the table opens no session.
    pub token_hash: Vec<u8>,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct LevelCounts {
    pub sub_districts: i64,
    pub communities: i64,
    pub grids: i64,
    pub buildings: i64,
    pub units: i64,
    pub households: i64,
    pub residents: i64,
}

/// Figures of one area, aggregated over the residents and households in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AreaFigures {
    pub area_id: Uuid,
    pub residents: i64,
    pub households: i64,
    pub floating: i64,
    /// Residents with at least one key-group tag.
    pub key_group: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BirthYearCount {
    pub year: i32,
    pub sex: Sex,
    pub residents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagCount {
    pub tag: String,
    pub residents: i64,
}

/// Clamp a requested page size into 1..=MAX_PAGE.
pub fn page_size(requested: u32) -> u32 {
    requested.clamp(1, MAX_PAGE)
}

/// The column that holds the id of a scope's level on every pathed table.
pub fn path_column(kind: AreaKind) -> &'static str {
    match kind {
        AreaKind::SubDistrict => "sub_district_id",
        AreaKind::Community => "community_id",
        AreaKind::Grid => "grid_id",
        AreaKind::Building => "building_id",
        AreaKind::Unit => "unit_id",
    }
}

/// One entry of the append-only audit log. `detail` is JSON and never holds
/// personal data in clear: ids, field names, reasons, counts.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor_user_id: Option<Uuid>,
    pub actor_name: String,
    pub actor_role: Option<Role>,
    /// What was done, e.g. `resident.update`, `resident.unmask`, `login.failed`.
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<Uuid>,
    /// The community the target lies in, when it lies in one.
    pub community_id: Option<Uuid>,
    pub client_addr: Option<String>,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
    pub detail: String,
}

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor_name: Option<String>,
    pub action: Option<String>,
    pub target_id: Option<Uuid>,
    /// Only entries about records in this community.
    pub community_id: Option<Uuid>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Keyset cursor: entries older than this id (newest first).
    pub before: Option<Uuid>,
    pub limit: u32,
}

/// Counts audit entries of one action and outcome since a time, for one
/// actor name or one client address: how login rate limits are kept in the
/// database, so that every server instance sees the same attempts.
#[derive(Debug, Clone)]
pub struct AuditCount {
    pub action: String,
    pub outcome: String,
    pub actor_name: Option<String>,
    pub client_addr: Option<String>,
    pub since: DateTime<Utc>,
}

/// How many entries matched, and when the oldest of them was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditTally {
    pub count: i64,
    pub oldest: Option<DateTime<Utc>>,
}
