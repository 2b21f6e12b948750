//! The `epigrid` binary as an operator uses it: demo without serving, stats,
//! areas and accounts from the command line, errors that say what to fix.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir() -> TempDir {
    let dir = std::env::temp_dir().join(format!("epigrid-cli-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

fn epigrid(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_epigrid"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--config")
        .arg(data_dir.join("none.toml"))
        .args(args)
        // The tests' own environment must not configure the binary.
        .env_remove("EPIGRID_DATABASE")
        .env_remove("EPIGRID_SECRET_KEY")
        .env_remove("EPIGRID_LISTEN")
        .env_remove("EPIGRID_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn demo_then_stats_user_and_area_commands() {
    let dir = temp_dir();
    let out = epigrid(
        &dir.0,
        &["demo", "--no-serve", "--residents", "400", "--admin-password", "office-pass-1"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("admin"), "the accounts are printed");
    assert!(dir.0.join("secret.key").exists(), "demo generated a key into its data dir");
    let stderr = text(&out.stderr);
    let reported: u32 = stderr
        .split("; ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no activity line in {stderr}"));
    assert!(reported > 0, "the demo's morning of door-to-door reports: {stderr}");
    assert!(dir.0.join("demo-accounts.txt").exists());

    let out = epigrid(&dir.0, &["stats"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["residents"], 400);
    assert_eq!(stats["communities"], 8);
    assert_eq!(stats["sub_districts"], 1);

    // A second demo run keeps the data.
    let out = epigrid(&dir.0, &["demo", "--no-serve"], None);
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("existing demo data"), "{}", text(&out.stderr));

    let out = epigrid(
        &dir.0,
        &[
            "user",
            "add",
            "--username",
            "nurse1",
            "--role",
            "medical_staff",
            "--scope",
            "371602001001",
            "--password-stdin",
        ],
        Some("a-good-password\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = epigrid(&dir.0, &["user", "list"], None);
    assert!(
        text(&out.stdout).lines().any(|l| l.starts_with("nurse1\t") && l.contains("medical_staff"))
    );

    let out = epigrid(
        &dir.0,
        &[
            "area",
            "add",
            "--kind",
            "grid",
            "--parent",
            "371602001001",
            "--code",
            "37160200200101",
            "--name",
            "错网格",
        ],
        None,
    );
    assert!(!out.status.success(), "a grid code under another community is refused");
    assert!(text(&out.stderr).contains("code: code.not_under_parent"), "{}", text(&out.stderr));

    let out = epigrid(
        &dir.0,
        &["user", "add", "--username", "x", "--role", "emperor", "--scope", "371602001"],
        None,
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unknown role"), "{}", text(&out.stderr));
}

#[test]
fn serving_needs_a_key_and_says_how_to_get_one() {
    let dir = temp_dir();
    let out = epigrid(&dir.0, &["stats"], None);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("EPIGRID_SECRET_KEY") && stderr.contains("epigrid keygen"), "{stderr}");
    let out = epigrid(&dir.0, &["keygen"], None);
    assert_eq!(text(&out.stdout).trim().len(), 64);
}

#[test]
fn migrate_reports_the_backend() {
    let dir = temp_dir();
    let out = epigrid(&dir.0, &["migrate"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("sqlite"));
}

/// Runs raw SQL on the database the binary uses, returning the id of the
/// audit entry at `seq` before the statement runs.
fn audit_id_then_run(database: &str, seq: i64, statement: &str) -> uuid::Uuid {
    use sqlx::AssertSqlSafe;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let id_sql = format!("SELECT id FROM audit_log WHERE seq = {seq}");
        if let Some(path) = database.strip_prefix("sqlite://") {
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            let id: uuid::Uuid =
                sqlx::query_scalar(AssertSqlSafe(id_sql)).fetch_one(&pool).await.unwrap();
            sqlx::query(AssertSqlSafe(statement.to_owned())).execute(&pool).await.unwrap();
            pool.close().await;
            id
        } else {
            let pool = sqlx::PgPool::connect(database).await.unwrap();
            let id: uuid::Uuid =
                sqlx::query_scalar(AssertSqlSafe(id_sql)).fetch_one(&pool).await.unwrap();
            sqlx::query(AssertSqlSafe(statement.to_owned())).execute(&pool).await.unwrap();
            pool.close().await;
            id
        }
    })
}

/// Demo data (whose areas and accounts are audited), `audit verify` passes;
/// one audit row edited in the database, `audit verify` fails and names it.
fn audit_verify_names_an_edited_row(dir: &Path, database: &str) {
    let db = ["--database", database];
    let out =
        epigrid(dir, &[&db[..], &["demo", "--no-serve", "--residents", "200"]].concat(), None);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = epigrid(dir, &[&db[..], &["audit", "verify"]].concat(), None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let entries: u64 = stdout
        .strip_prefix("audit log intact: ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {stdout:?}"));
    assert!(entries > 5, "the demo's areas and accounts are audited ({entries})");
    assert!(stdout.contains(&format!("head: seq={entries} hash=")), "{stdout}");

    let id =
        audit_id_then_run(database, 5, "UPDATE audit_log SET outcome = 'denied' WHERE seq = 5");
    let out = epigrid(dir, &[&db[..], &["audit", "verify"]].concat(), None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with(&format!("audit log broken at entry seq=5 id={id} : ")), "{stdout}");
    assert!(stdout.contains("changed"), "{stdout}");
}

#[test]
fn audit_verify_detects_an_edited_row_on_sqlite() {
    let dir = temp_dir();
    let database = format!("sqlite://{}", dir.0.join("epigrid.db").display());
    audit_verify_names_an_edited_row(&dir.0, &database);
}

/// A schema of its own in the database `EPIGRID_TEST_PG` names, dropped at
/// the end; `url` puts epigrid in it.
struct PgSchema {
    admin_url: String,
    schema: String,
    url: String,
}

impl PgSchema {
    fn new() -> Option<Self> {
        let Some(admin_url) =
            std::env::var("EPIGRID_TEST_PG").ok().filter(|u| !u.trim().is_empty())
        else {
            eprintln!("skipped: EPIGRID_TEST_PG is not set");
            return None;
        };
        let schema = format!("t_cli_{}", uuid::Uuid::now_v7().simple());
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options[search_path]={schema}");
        let created = Self { admin_url, schema, url };
        created.run(format!("CREATE SCHEMA {}", created.schema));
        Some(created)
    }

    fn run(&self, sql: String) {
        use sqlx::AssertSqlSafe;
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let pool = sqlx::PgPool::connect(&self.admin_url).await.unwrap();
            sqlx::query(AssertSqlSafe(sql)).execute(&pool).await.unwrap();
            pool.close().await;
        });
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        self.run(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
    }
}

#[test]
fn audit_verify_detects_an_edited_row_on_postgres() {
    let Some(schema) = PgSchema::new() else { return };
    let dir = temp_dir();
    audit_verify_names_an_edited_row(&dir.0, &schema.url);
}

/// The `backup.taken` entries in the audit log: (outcome, detail).
fn backup_entries(database: &str) -> Vec<(String, String)> {
    let sql = "SELECT outcome, detail FROM audit_log WHERE action = 'backup.taken' ORDER BY seq";
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        if let Some(path) = database.strip_prefix("sqlite://") {
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            sqlx::query_as(sql).fetch_all(&pool).await.unwrap()
        } else {
            let pool = sqlx::PgPool::connect(database).await.unwrap();
            sqlx::query_as(sql).fetch_all(&pool).await.unwrap()
        }
    })
}

/// A backup of the demo: the copy is written and audited, the key is named
/// and not copied, and a second backup to the same name is refused in
/// Chinese, leaving the first untouched.
fn backup_then_refuse_the_same_target(dir: &Path, database: &str) -> PathBuf {
    let db = ["--database", database];
    let out =
        epigrid(dir, &[&db[..], &["demo", "--no-serve", "--residents", "200"]].concat(), None);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let target = dir.join("backups").join("office.backup");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let target_text = target.to_str().unwrap();
    let out = epigrid(dir, &[&db[..], &["backup", target_text]].concat(), None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with(&format!("备份完成: {target_text} (")), "{stdout}");
    let key = dir.join("secret.key");
    assert!(stdout.contains(&format!("密钥在： {}", key.display())), "{stdout}");
    let size = std::fs::metadata(&target).unwrap().len();
    assert!(size > 100_000, "a copy of 200 residents and their households: {size} bytes");
    let backups = std::fs::read_dir(target.parent().unwrap()).unwrap().count();
    assert_eq!(backups, 1, "nothing but the copy is left beside it");
    let key_text = std::fs::read_to_string(&key).unwrap();
    let copy = std::fs::read(&target).unwrap();
    assert!(
        !copy.windows(key_text.trim().len()).any(|w| w == key_text.trim().as_bytes()),
        "the key is not in the copy"
    );

    let out = epigrid(dir, &[&db[..], &["backup", target_text]].concat(), None);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("目标文件已存在"), "{stderr}");
    let out = epigrid(dir, &[&db[..], &["backup", target_text, "--lang", "en"]].concat(), None);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("The target exists, and a backup never overwrites it"), "{stderr}");
    assert_eq!(std::fs::read(&target).unwrap(), copy, "the first copy is untouched");

    let entries = backup_entries(database);
    assert_eq!(entries.len(), 1, "the refused one did no work: {entries:?}");
    assert_eq!(entries[0].0, "ok");
    let detail: serde_json::Value = serde_json::from_str(&entries[0].1).unwrap();
    assert_eq!(detail["to"], target_text);
    assert_eq!(detail["bytes"], size);
    let out = epigrid(dir, &[&db[..], &["audit", "verify"]].concat(), None);
    assert!(out.status.success(), "the backup's entry is chained: {}", text(&out.stdout));
    target
}

#[test]
fn a_backup_on_sqlite_is_a_database_that_opens_with_every_resident() {
    let dir = temp_dir();
    let database = format!("sqlite://{}", dir.0.join("epigrid.db").display());
    let target = backup_then_refuse_the_same_target(&dir.0, &database);
    // The copy, opened as a store of its own (with the same key), holds the
    // whole demo.
    let copy = format!("sqlite://{}", target.display());
    let out = epigrid(&dir.0, &["--database", &copy, "stats"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["residents"], 200);
}

#[test]
fn a_backup_on_postgres_is_an_archive_of_epigrids_schema() {
    let Some(schema) = PgSchema::new() else { return };
    let dir = temp_dir();
    let target = backup_then_refuse_the_same_target(&dir.0, &schema.url);
    let listed = Command::new("pg_restore").arg("--list").arg(&target).output().unwrap();
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let contents = text(&listed.stdout);
    let residents = format!("TABLE DATA {} residents ", schema.schema);
    assert!(contents.contains(&residents), "{contents}");
    assert!(
        contents.lines().filter(|l| l.contains(" TABLE DATA ")).all(|l| l.contains(&schema.schema)),
        "only epigrid's schema: {contents}"
    );
}

#[test]
fn purge_counts_then_deletes_and_keeps_the_audit_chain_intact() {
    let dir = temp_dir();
    let out = epigrid(&dir.0, &["demo", "--no-serve", "--residents", "200"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = epigrid(&dir.0, &["purge", "--dry-run"], None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with("试运行，未删除任何记录。"), "{stdout}");
    assert!(stdout.contains("条健康类任务的处理备注"), "{stdout}");
    assert!(stdout.contains("个健康类任务隐去了所涉居民或住户"), "{stdout}");
    assert!(!stdout.contains("审计日志"), "a dry run is not audited: {stdout}");

    let out = epigrid(&dir.0, &["purge", "--lang", "en"], None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with("Deleted personal records before "), "{stdout}");
    assert!(stdout.contains("photos of health tasks"), "{stdout}");
    assert!(stdout.contains("health tasks made anonymous"), "{stdout}");
    assert!(stdout.contains("(retention.purge, counts only)"), "{stdout}");

    let out = epigrid(&dir.0, &["audit", "verify"], None);
    assert!(out.status.success(), "the purge's entry is chained: {}", text(&out.stdout));
}
