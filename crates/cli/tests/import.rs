//! `epigrid import residents` as an operator runs it: the mapping and the
//! reasons printed in Chinese (or English), `--dry-run` writing nothing,
//! all-or-nothing refusing a file with a bad row (exit 2) and leaving the
//! error report next to it, `--map` fixing a header, `--as` applying an
//! account's role and scope.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn epigrid(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_epigrid"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--config")
        .arg(data_dir.join("none.toml"))
        .args(args)
        .env_remove("EPIGRID_DATABASE")
        .env_remove("EPIGRID_SECRET_KEY")
        .env_remove("EPIGRID_LISTEN")
        .env_remove("EPIGRID_DATA_DIR")
        .env("RUST_BACKTRACE", "0")
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

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

fn residents(dir: &Path) -> i64 {
    let stats: serde_json::Value =
        serde_json::from_str(&ok(&epigrid(dir, &["stats"], None))).unwrap();
    stats["residents"].as_i64().unwrap()
}

#[test]
fn import_residents_from_the_command_line() {
    let dir = TempDir(
        std::env::temp_dir().join(format!("epigrid-import-{}", uuid::Uuid::now_v7().simple())),
    );
    std::fs::create_dir_all(&dir.0).unwrap();
    let d = dir.0.as_path();
    std::fs::write(d.join("secret.key"), "17".repeat(32)).unwrap();
    ok(&epigrid(
        d,
        &["area", "add", "--kind", "sub_district", "--name", "测试街道", "--code", "371602001"],
        None,
    ));
    ok(&epigrid(
        d,
        &[
            "area",
            "add",
            "--kind",
            "community",
            "--name",
            "永安社区",
            "--code",
            "371602001001",
            "--parent",
            "371602001",
        ],
        None,
    ));
    ok(&epigrid(
        d,
        &[
            "area",
            "add",
            "--kind",
            "grid",
            "--name",
            "一网格",
            "--code",
            "37160200100101",
            "--parent",
            "371602001001",
        ],
        None,
    ));

    let file = d.join("居民.csv");
    std::fs::write(
        &file,
        "永安社区居民表\n姓名,证件,网格,楼栋,单元,门牌号\n\
         张三,11010519491231002X,一网格,1,1,101\n\
         李四,3.7160219900101E+17,一网格,1,1,102\n\
         王五,34052419800101001X,一网格,2号楼,1,201\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();

    // The header 证件 is not one the mapping knows: the required field is named.
    let out = epigrid(d, &["import", "residents", path], None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("证件号码: 缺少必需的列"), "{}", text(&out.stderr));

    let out =
        epigrid(d, &["import", "residents", path, "--map", "证件=id_number", "--dry-run"], None);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("证件") && stderr.contains("→ 证件号码 (id_number)"), "{stderr}");
    assert!(stderr.contains("第4行 证件：身份证号被 Excel 转成了科学计数法，后几位已丢失，请把该列设为文本后重新导出"), "{stderr}");
    assert!(stderr.contains("试运行：没有写入任何数据"), "{stderr}");
    assert!(d.join("居民.错误报告.xlsx").exists(), "the report lies next to the file");
    assert_eq!(residents(d), 0);

    // All-or-nothing (the default) refuses the file as a whole.
    let out = epigrid(d, &["import", "residents", path, "--map", "证件=id_number"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(residents(d), 0);

    let report = d.join("report.xlsx");
    let out = epigrid(
        d,
        &[
            "import",
            "residents",
            path,
            "--map",
            "证件=id_number",
            "--mode",
            "valid-only",
            "--errors-out",
            report.to_str().unwrap(),
        ],
        None,
    );
    let summary: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!((summary["inserted"].as_i64(), summary["rejected"].as_i64()), (Some(2), Some(1)));
    assert!(report.exists());
    assert_eq!(residents(d), 2);

    // A grid worker may not create buildings; English on request.
    ok(&epigrid(
        d,
        &[
            "user",
            "add",
            "--username",
            "wang",
            "--role",
            "grid_worker",
            "--scope",
            "37160200100101",
            "--password-stdin",
        ],
        Some("a long enough password 1\n"),
    ));
    let other = d.join("other.csv");
    std::fs::write(&other, "姓名,身份证号,楼栋,门牌号\n赵六,370101190102039973,9号楼,901\n")
        .unwrap();
    let out = epigrid(
        d,
        &[
            "import",
            "residents",
            other.to_str().unwrap(),
            "--as",
            "wang",
            "--mode",
            "valid-only",
            "--lang",
            "en",
        ],
        None,
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Row 2 楼栋: No such building, and your account may not create buildings"),
        "{stderr}"
    );
    assert_eq!(residents(d), 2);
}
