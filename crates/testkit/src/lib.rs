//! Helpers for tests across the workspace: a fresh store per test on SQLite
//! (a file in its own temp directory) and on PostgreSQL (a schema of its own
//! in the database `EPIGRID_TEST_PG` names), a macro that runs one test body
//! on both, and builders for the records those tests need.
//!
//! PostgreSQL runs only when `EPIGRID_TEST_PG` is set; when it is set, a
//! database that cannot be reached fails the test rather than skipping it, so
//! CI never goes green without having run the PostgreSQL half.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, NaiveDate, SubsecRound, TimeDelta, Utc};
use epigrid_domain::tasks::{EventState, Priority};
use epigrid_domain::{
    AreaKind, AreaPath, Boundary, GridKind, PersonName, Relation, Residence, Role, Scope, Sex, Tag,
};
use epigrid_store::{
    AreaRecord, HouseholdRecord, ResidentRecord, SealedField, SessionRecord, Store, StoreError,
    TaskHistoryRecord, TaskRecord, UserRecord,
};
use epigrid_store_postgres::PostgresStore;
use epigrid_store_sqlite::SqliteStore;
use uuid::Uuid;

/// The variable that names the PostgreSQL database the contract suite uses.
pub const PG_URL_VAR: &str = "EPIGRID_TEST_PG";

// ---- fresh stores -----------------------------------------------------------

/// Removes a test's temp directory (database, WAL and shm files) on drop,
/// including when the test panics.
#[derive(Debug)]
pub struct TempGuard {
    dir: PathBuf,
}

impl TempGuard {
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("could not remove test directory {}: {error}", self.dir.display());
        }
    }
}

/// A migrated SQLite store in a new file of its own.
pub async fn fresh_sqlite() -> (Arc<dyn Store>, TempGuard) {
    let dir = std::env::temp_dir().join(format!("epigrid-test-{}", Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create test directory {}: {e}", dir.display()));
    // The guard exists before the store opens so a failed open still cleans up.
    let guard = TempGuard { dir };
    let store = SqliteStore::open_path(&guard.dir.join("epigrid.db"))
        .await
        .unwrap_or_else(|e| panic!("cannot open SQLite store in {}: {e}", guard.dir.display()));
    (Arc::new(store), guard)
}

/// Drops a test's PostgreSQL schema. `cleanup` does it in order (pool closed
/// first); if the test panics before that, `Drop` does it on a thread with a
/// runtime of its own, since `Drop` cannot await.
#[derive(Debug)]
pub struct PgGuard {
    url: String,
    schema: String,
    store: PostgresStore,
    cleaned: bool,
}

impl PgGuard {
    pub fn schema(&self) -> &str {
        &self.schema
    }

    pub async fn cleanup(mut self) {
        self.cleaned = true;
        self.store.close().await;
        if let Err(error) = PostgresStore::drop_schema(&self.url, &self.schema).await {
            eprintln!("could not drop test schema {}: {error}", self.schema);
        }
    }
}

impl Drop for PgGuard {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        let (url, schema) = (self.url.clone(), self.schema.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime
                .block_on(PostgresStore::drop_schema(&url, &schema))
                .map_err(std::io::Error::other)
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}", self.schema);
        }
    }
}

/// The PostgreSQL URL for tests: `None` when `EPIGRID_TEST_PG` is unset.
/// Set but empty is a misconfiguration (say, a CI secret that did not
/// resolve), not a request to skip, so it panics.
pub fn postgres_url() -> Option<String> {
    let value = std::env::var_os(PG_URL_VAR)?;
    match value.into_string() {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => panic!("{PG_URL_VAR} is set but holds no URL; unset it to skip the PostgreSQL tests"),
    }
}

/// A migrated PostgreSQL store in a new schema `t_<uuid>`, or `None` when
/// `EPIGRID_TEST_PG` is unset. Panics when the database cannot be reached.
pub async fn fresh_postgres() -> Option<(Arc<dyn Store>, PgGuard)> {
    let url = postgres_url()?;
    let schema = format!("t_{}", Uuid::now_v7().simple());
    let store = match PostgresStore::open_in_schema(&url, &schema).await {
        Ok(store) => store,
        Err(error) => {
            // The schema may exist even though the migration failed; when the
            // server is unreachable there is nothing to drop, and trying
            // would only wait out another connect timeout.
            if !matches!(error, StoreError::Unavailable(_)) {
                let _ = PostgresStore::drop_schema(&url, &schema).await;
            }
            panic!(
                "{PG_URL_VAR} is set but the PostgreSQL store cannot be opened \
                 (schema {schema}): {error}"
            );
        }
    };
    let guard = PgGuard { url, schema, store: store.clone(), cleaned: false };
    Some((Arc::new(store), guard))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot build a tokio runtime")
}

/// Runs `body` on a fresh SQLite store. Used by `store_contract_tests!`.
pub fn run_on_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    runtime().block_on(async {
        let (store, _guard) = fresh_sqlite().await;
        body(store).await;
    });
}

/// Runs `body` on a fresh PostgreSQL schema, or says it skipped when
/// `EPIGRID_TEST_PG` is unset. Used by `store_contract_tests!`.
pub fn run_on_postgres<F, Fut>(body: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    runtime().block_on(async {
        let Some((store, guard)) = fresh_postgres().await else {
            eprintln!("skipped: {PG_URL_VAR} is not set");
            return;
        };
        body(store).await;
        guard.cleanup().await;
    });
}

/// Declares store tests that each run on SQLite and on PostgreSQL:
///
/// ```text
/// epigrid_testkit::store_contract_tests! {
///     async fn areas_round_trip(store: Arc<dyn Store>) { ... }
/// }
/// ```
///
/// expands to the body as a plain `async fn` plus `sqlite::areas_round_trip`
/// and `postgres::areas_round_trip` tests, each on a fresh database.
/// Attributes such as `#[ignore = "why"]` apply to both variants. Invoke it
/// once per module, since it defines the `sqlite` and `postgres` modules.
#[macro_export]
macro_rules! store_contract_tests {
    ($(
        $(#[$attr:meta])*
        async fn $name:ident($store:ident : $store_ty:ty) $body:block
    )+) => {
        $(
            async fn $name($store: $store_ty) $body
        )+

        mod sqlite {
            $(
                $(#[$attr])*
                #[test]
                fn $name() {
                    $crate::run_on_sqlite(super::$name);
                }
            )+
        }

        mod postgres {
            $(
                $(#[$attr])*
                #[test]
                fn $name() {
                    $crate::run_on_postgres(super::$name);
                }
            )+
        }
    };
}

/// A SQLite file's pages, as `sqlite_pages` reads them.
#[derive(Debug, Clone, Copy)]
pub struct SqlitePages {
    /// Pages in the file, free or not.
    pub pages: i64,
    /// Free pages inside the file.
    pub free: i64,
    /// Bytes a page.
    pub page_size: i64,
}

impl SqlitePages {
    /// The free pages' bytes.
    pub fn free_bytes(&self) -> u64 {
        u64::try_from(self.free * self.page_size).unwrap()
    }
}

/// The SQLite file's pages, read beside the store on a read-only connection
/// of the caller's own: what the room kept ahead (`keep_room`) leaves in
/// the file.
pub async fn sqlite_pages(path: &Path) -> SqlitePages {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path).read_only(true);
    let raw = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let (pages, free, page_size): (i64, i64, i64) = sqlx::query_as(
        "SELECT c.page_count, f.freelist_count, s.page_size \
         FROM pragma_page_count() c, pragma_freelist_count() f, pragma_page_size() s",
    )
    .fetch_one(&raw)
    .await
    .unwrap();
    raw.close().await;
    SqlitePages { pages, free, page_size }
}

// ---- builders ---------------------------------------------------------------

/// Now, to the microsecond: PostgreSQL keeps no more, so records built with
/// it compare equal after a round trip on either backend.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A unique code for an area (`areas_code` is unique per store).
pub fn unique_code(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{prefix}{:09}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A sealed field whose ciphertext and blind index derive from `seed`. The
/// ciphertext carries NUL and 0xFF bytes so a round trip proves the column
/// is binary-safe.
pub fn sealed(seed: &str) -> SealedField {
    let mut ciphertext = vec![0x00, 0xFF];
    ciphertext.extend_from_slice(seed.as_bytes());
    let mut blind_index = b"blind:".to_vec();
    blind_index.extend_from_slice(seed.as_bytes());
    SealedField { ciphertext, blind_index }
}

pub fn tags(names: &[&str]) -> Vec<Tag> {
    names.iter().map(|t| Tag::parse(t).unwrap_or_else(|_| panic!("bad tag {t:?}"))).collect()
}

pub fn name(text: &str) -> PersonName {
    PersonName::parse(text).unwrap_or_else(|_| panic!("bad name {text:?}"))
}

pub fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("bad date")
}

/// A root area, with a code and a boundary.
pub fn sub_district(label: &str) -> AreaRecord {
    let id = Uuid::now_v7();
    let at = now();
    AreaRecord {
        id,
        kind: AreaKind::SubDistrict,
        parent_id: None,
        path: AreaPath::default().child(AreaKind::SubDistrict, id),
        code: Some(unique_code("SD")),
        name: format!("{label}街道"),
        grid_kind: None,
        boundary: Some(Boundary::rectangle(116.0, 39.0, 116.2, 39.2)),
        address: None,
        created_at: at,
        updated_at: at,
    }
}

/// An area under `parent`, with what its kind usually carries: a code and
/// boundary for communities and grids (residential), an address for
/// buildings, neither for units.
pub fn child_area(parent: &AreaRecord, kind: AreaKind, label: &str) -> AreaRecord {
    assert_eq!(
        kind.parent_kind(),
        Some(parent.kind),
        "a {kind:?} cannot hang under a {:?}",
        parent.kind
    );
    let id = Uuid::now_v7();
    let at = now();
    let (code, name, grid_kind, boundary, address) = match kind {
        AreaKind::SubDistrict => unreachable!("checked above"),
        AreaKind::Community => (
            Some(unique_code("C")),
            format!("{label}社区"),
            None,
            Some(Boundary::rectangle(116.0, 39.0, 116.1, 39.1)),
            None,
        ),
        AreaKind::Grid => (
            Some(unique_code("G")),
            format!("{label}网格"),
            Some(GridKind::Residential),
            Some(Boundary::rectangle(116.0, 39.0, 116.01, 39.01)),
            None,
        ),
        AreaKind::Building => {
            (None, format!("{label}号楼"), None, None, Some(format!("幸福路{label}号")))
        }
        AreaKind::Unit => (None, format!("{label}单元"), None, None, None),
    };
    AreaRecord {
        id,
        kind,
        parent_id: Some(parent.id),
        path: parent.path.child(kind, id),
        code,
        name,
        grid_kind,
        boundary,
        address,
        created_at: at,
        updated_at: at,
    }
}

/// A task of `category` about the chain's unit, in `state` as of `at`
/// (closed then too, when the state is closed or evaluated): version 1, no
/// assignee, no deadline.
pub fn area_task(
    chain: &Chain,
    category: &str,
    state: EventState,
    at: DateTime<Utc>,
) -> TaskRecord {
    let closed = matches!(state, EventState::Closed | EventState::Evaluated);
    TaskRecord {
        id: Uuid::now_v7(),
        category: category.into(),
        priority: Priority::Normal,
        state,
        source_kind: "staff".into(),
        source_detail: "{}".into(),
        subject_kind: "area".into(),
        subject_id: chain.unit.id,
        path: chain.unit.path,
        assignee_account_id: None,
        reserve_pool_community_id: None,
        stage: state.stage(),
        stage_started_at: Some(at),
        stage_deadline: None,
        escalation_level: 0,
        filed_at: None,
        handled_at: None,
        handled_by: None,
        handle_deadline: None,
        handling_seconds: None,
        closed_at: closed.then_some(at),
        reopened: 0,
        created_at: at,
        updated_at: at,
        version: 1,
        idempotency_key: None,
    }
}

/// A step of `task` by a grid worker at `at`, into the task's state, with `note`.
pub fn task_step(
    task: &TaskRecord,
    transition: &str,
    note: Option<&str>,
    at: DateTime<Utc>,
) -> TaskHistoryRecord {
    TaskHistoryRecord {
        id: Uuid::now_v7(),
        task_id: task.id,
        community_id: task.path.community.expect("a task in a community"),
        transition: transition.into(),
        from_state: None,
        to_state: task.state,
        actor_account_id: None,
        actor_name: "王网格".into(),
        at,
        note: note.map(str::to_owned),
        idempotency_key: None,
    }
}

/// One area of each level, each the parent of the next.
#[derive(Debug, Clone)]
pub struct Chain {
    pub sub_district: AreaRecord,
    pub community: AreaRecord,
    pub grid: AreaRecord,
    pub building: AreaRecord,
    pub unit: AreaRecord,
}

impl Chain {
    /// The records of a new chain, not yet stored.
    pub fn build(label: &str) -> Self {
        let sub_district = sub_district(label);
        let community = child_area(&sub_district, AreaKind::Community, label);
        Self::below(sub_district, community, label)
    }

    fn below(sub_district: AreaRecord, community: AreaRecord, label: &str) -> Self {
        let grid = child_area(&community, AreaKind::Grid, label);
        let building = child_area(&grid, AreaKind::Building, "1");
        let unit = child_area(&building, AreaKind::Unit, "1");
        Self { sub_district, community, grid, building, unit }
    }

    /// Builds and stores a new chain.
    pub async fn insert(store: &dyn Store, label: &str) -> Self {
        let chain = Self::build(label);
        for area in chain.areas() {
            insert_area(store, area).await;
        }
        chain
    }

    /// Stores another grid (with a building and unit) in the same community.
    pub async fn insert_sibling_grid(&self, store: &dyn Store, label: &str) -> Self {
        let sibling = Self::below(self.sub_district.clone(), self.community.clone(), label);
        for area in [&sibling.grid, &sibling.building, &sibling.unit] {
            insert_area(store, area).await;
        }
        sibling
    }

    /// Parent first.
    pub fn areas(&self) -> [&AreaRecord; 5] {
        [&self.sub_district, &self.community, &self.grid, &self.building, &self.unit]
    }

    pub fn scope(&self, kind: AreaKind) -> Scope {
        Scope { kind, area_id: self.unit.path.at(kind).expect("a chain has every level") }
    }
}

pub async fn insert_area(store: &dyn Store, area: &AreaRecord) {
    store
        .insert_area(area)
        .await
        .unwrap_or_else(|e| panic!("cannot insert area {}: {e}", area.name));
}

pub fn household(unit: &AreaRecord, room: &str) -> HouseholdRecord {
    assert_eq!(unit.kind, AreaKind::Unit, "households hang under units");
    let at = now();
    HouseholdRecord {
        id: Uuid::now_v7(),
        path: unit.path,
        room: room.to_owned(),
        created_at: at,
        updated_at: at,
    }
}

/// A registered resident with no documents, phone or tags; set what a test
/// needs on the returned record.
pub fn resident(household: &HouseholdRecord, person: &str) -> ResidentRecord {
    let at = now();
    ResidentRecord {
        id: Uuid::now_v7(),
        household_id: household.id,
        path: household.path,
        name: name(person),
        sex: Sex::Male,
        birth_date: date(1980, 1, 1),
        id_kind: None,
        id_number: None,
        phone: None,
        relation: Relation::Head,
        residence: Residence::Registered,
        tags: Vec::new(),
        created_at: at,
        updated_at: at,
    }
}

/// An account scoped to `area`.
pub fn user(username: &str, role: Role, area: &AreaRecord) -> UserRecord {
    let at = now();
    UserRecord {
        id: Uuid::now_v7(),
        username: username.to_owned(),
        display_name: format!("{username} 的名字"),
        phone: None,
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$test${username}"),
        role,
        scope: Scope { kind: area.kind, area_id: area.id },
        scope_path: area.path,
        disabled: false,
        created_at: at,
        updated_at: at,
    }
}

/// A session of `user` that expires in a day.
pub fn session(user: &UserRecord, token_hash: &[u8]) -> SessionRecord {
    let at = now();
    SessionRecord {
        token_hash: token_hash.to_vec(),
        user_id: user.id,
        created_at: at,
        last_seen_at: at,
        expires_at: at + TimeDelta::days(1),
    }
}
