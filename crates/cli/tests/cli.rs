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
