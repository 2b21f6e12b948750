//! epigrid's use cases. Every call takes the `Actor` making it, and the role
//! and scope checks happen here, in one place, so that no handler or command
//! can forget them. Nothing here knows about HTTP.

pub mod accounts;
pub mod audit;
pub mod crypto;
pub mod dashboard;
pub mod demo;
pub mod error;
pub mod export;
pub mod field_work;
pub mod import;
pub mod intake;
mod intake_audit;
pub mod matching;
pub mod metrics;
pub mod navigation;
pub mod photos;
pub mod privacy;
pub mod registry;
pub mod retention;
pub mod selfservice;
pub mod task_office;
pub mod tasks;
pub mod views;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use epigrid_domain::{Action, AreaPath, Role, Scope, Tag};
use epigrid_store::Store;
use uuid::Uuid;

pub use chrono;
pub use crypto::{FieldCipher, SecretKey};
pub use error::{ServiceError, ServiceResult};

/// Who is calling. `scope == None` is the system itself (CLI, demo
/// generation), which sees everything.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<Uuid>,
    pub username: String,
    pub role: Role,
    pub scope: Option<Scope>,
    /// The client's address, for the audit log (set by the web layer).
    pub client_addr: Option<String>,
}

impl Actor {
    /// The name the system's own steps and writes are recorded under.
    pub const SYSTEM_NAME: &'static str = "system";

    pub fn system() -> Self {
        Self {
            user_id: None,
            username: Self::SYSTEM_NAME.into(),
            role: Role::SubDistrictAdmin,
            scope: None,
            client_addr: None,
        }
    }

    pub fn covers(&self, path: &AreaPath) -> bool {
        self.scope.is_none_or(|scope| scope.covers(path))
    }

    pub fn require(&self, action: Action) -> ServiceResult<()> {
        if self.role.allows(action) { Ok(()) } else { Err(ServiceError::Forbidden) }
    }
}

/// Settings the use cases need; the CLI fills them from configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a session lives at most, from login.
    pub session_absolute: chrono::Duration,
    /// How long a session lives without use.
    pub session_idle: chrono::Duration,
    /// Tags beyond the built-in key groups that this deployment uses.
    pub extra_tags: Vec<Tag>,
    /// The zone dates are reckoned in ("today" for birth-date checks).
    pub time_zone_offset: chrono::FixedOffset,
    pub login_limits: LoginLimits,
    pub argon2: Argon2Settings,
    /// Roles that may see ID numbers and phones in clear (with a reason,
    /// audited). A deployment decides; the default is the admins and grid
    /// leaders, who verify identities and contact families.
    pub unmask_roles: Vec<Role>,
    /// The closed loop's catalogue, calendar, dispatch and escalation rules.
    pub tasks: tasks::TaskSettings,
    /// Self-service intake: rules, queue and batching, passes.
    pub intake: intake::IntakeSettings,
    /// Limits on photos attached to task steps.
    pub photos: photos::PhotoSettings,
    /// Days personal health, arrival and help records are kept after the
    /// day they cover (PIPL Art. 19, 47); then the purge deletes them.
    pub retention_days: u32,
    /// The address residents reach the server at (`https://epigrid.example.cn`),
    /// printed in the QR codes of the self-service sheets. `None`: the
    /// request's own host, which is wrong behind a proxy that rewrites it.
    pub public_base_url: Option<String>,
}

/// How many failed logins are tolerated before further attempts are refused
/// (429) until the window has passed. Counted from the audit log, so every
/// server instance sees the same attempts and a restart forgets nothing.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub window: chrono::Duration,
    pub per_account: i64,
    pub per_address: i64,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self { window: chrono::Duration::minutes(15), per_account: 10, per_address: 50 }
    }
}

/// argon2id cost. The defaults are the argon2 crate's (19 MiB, 2 passes,
/// 1 lane, OWASP's minimum); raise them on a bigger server. Existing hashes
/// keep the parameters they were made with.
#[derive(Debug, Clone, Copy)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Settings {
    fn default() -> Self {
        Self {
            memory_kib: argon2::Params::DEFAULT_M_COST,
            iterations: argon2::Params::DEFAULT_T_COST,
            parallelism: argon2::Params::DEFAULT_P_COST,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            session_absolute: chrono::Duration::hours(12),
            session_idle: chrono::Duration::hours(2),
            extra_tags: Vec::new(),
            time_zone_offset: chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 is valid"),
            login_limits: LoginLimits::default(),
            argon2: Argon2Settings::default(),
            unmask_roles: Role::ALL.into_iter().filter(|r| r.allows(Action::Unmask)).collect(),
            tasks: tasks::TaskSettings::default(),
            intake: intake::IntakeSettings::default(),
            photos: photos::PhotoSettings::default(),
            retention_days: retention::DEFAULT_RETENTION_DAYS,
            public_base_url: None,
        }
    }
}

/// The application: cheap to clone (one `Arc`), because every request's
/// handler holds a clone; with four `Arc`s inside, the clones' and drops'
/// atomic counts showed in the intake's profile.
#[derive(Debug, Clone)]
pub struct Service {
    inner: Arc<ServiceParts>,
}

#[derive(Debug)]
struct ServiceParts {
    store: Arc<dyn Store>,
    /// The intake queue and the key self-service tokens are signed with.
    intake: intake::IntakeEngine,
    cipher: FieldCipher,
    settings: Settings,
}

impl Service {
    pub fn new(store: Arc<dyn Store>, cipher: FieldCipher, settings: Settings) -> Self {
        // A sub-key for building tokens and resident passes, derived (HMAC
        // as a PRF) from the blind-index key, so it too comes from the one
        // configured secret and can neither decrypt nor index anything.
        let intake_key: [u8; 32] = cipher
            .blind_index("epigrid intake token key", "v1")
            .try_into()
            .expect("an HMAC-SHA256 is 32 bytes");
        let intake = intake::IntakeEngine::new(intake_key);
        Self { inner: Arc::new(ServiceParts { store, intake, cipher, settings }) }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn cipher(&self) -> &FieldCipher {
        &self.inner.cipher
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    /// Today's date in the configured zone.
    pub fn today(&self) -> NaiveDate {
        self.now().with_timezone(&self.settings().time_zone_offset).date_naive()
    }

    pub fn tag_known(&self, tag: &Tag) -> bool {
        Tag::BUILT_IN.contains(&tag.as_str()) || self.settings().extra_tags.contains(tag)
    }

    /// Every tag this deployment knows, built-in ones first.
    pub fn tag_catalogue(&self) -> Vec<Tag> {
        Tag::BUILT_IN
            .iter()
            .filter_map(|t| Tag::parse(t).ok())
            .chain(self.settings().extra_tags.iter().cloned())
            .collect()
    }

    /// Whether a role may unmask personal fields in this deployment.
    pub fn may_unmask(&self, role: Role) -> bool {
        self.settings().unmask_roles.contains(&role)
    }

    /// Liveness of the store, for `/readyz`.
    pub async fn ready(&self) -> ServiceResult<()> {
        self.store().ping().await.map_err(ServiceError::from)
    }
}
