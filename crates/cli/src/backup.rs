//! `epigrid backup TARGET`: a consistent copy of the database, taken while
//! the server goes on serving (SQLite's online backup, or `pg_dump` on
//! PostgreSQL), audited as `backup.taken` whether it succeeds or fails.
//! The secret key is not in the copy, and the command says where it is.
//! Messages are Chinese unless `--lang en`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use epigrid_store::backup::check_target_free;
use epigrid_store::{AuditRecord, BackupSummary, Store, StoreResult};
use epigrid_web::i18n::{Lang, t};

pub async fn run(
    store: &dyn Store,
    database: &str,
    target: PathBuf,
    key_location: String,
    lang: Lang,
) -> anyhow::Result<()> {
    let tr = |key: &str| t(lang, key);
    let shown = target.display().to_string();
    if check_target_free(&target).is_err() {
        bail!("{shown}: {}", tr("backup.target_exists"));
    }
    let directory = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !directory.is_dir() {
        bail!("{}: {}", directory.display(), tr("backup.no_directory"));
    }
    let started = Instant::now();
    let copied = copy(database, target.clone(), tr("backup.progress")).await?;
    let seconds = started.elapsed().as_secs_f64();
    let detail = match &copied {
        Ok(summary) => {
            serde_json::json!({ "to": shown, "bytes": summary.bytes, "seconds": seconds })
        }
        Err(error) => serde_json::json!({ "to": shown, "error": error.to_string() }),
    };
    let entry = AuditRecord {
        id: uuid::Uuid::now_v7(),
        at: epigrid_service::chrono::Utc::now(),
        actor_user_id: None,
        actor_name: "epigrid backup".into(),
        actor_role: None,
        action: "backup.taken".into(),
        target_kind: None,
        target_id: None,
        community_id: None,
        client_addr: None,
        outcome: if copied.is_ok() { "ok" } else { "failed" }.into(),
        detail: detail.to_string(),
    };
    store.append_audit(&entry).await.context("recording the backup in the audit log")?;
    let summary = copied.with_context(|| format!("{shown}: {}", tr("backup.failed")))?;
    println!(
        "{}: {shown} ({:.1} MB, {seconds:.1} {})",
        tr("backup.done"),
        summary.bytes as f64 / 1e6,
        tr("backup.seconds")
    );
    println!("{} {key_location}", tr("backup.key_reminder"));
    Ok(())
}

/// The copy itself, on a blocking thread, with a progress bar (pages) on
/// SQLite and a spinner while `pg_dump` runs.
async fn copy(
    database: &str,
    target: PathBuf,
    label: String,
) -> anyhow::Result<StoreResult<BackupSummary>> {
    use indicatif::{ProgressBar, ProgressStyle};
    let sqlite = database.strip_prefix("sqlite://").map(PathBuf::from);
    let bar = match sqlite {
        Some(_) => ProgressBar::new(0).with_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {percent}% {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => {
            let spinner = ProgressBar::new_spinner();
            spinner.enable_steady_tick(std::time::Duration::from_millis(200));
            spinner
        }
    };
    bar.set_prefix(label.clone());
    bar.set_message(format!("{label} (pg_dump)"));
    let url = database.to_owned();
    let shown = bar.clone();
    let copied = tokio::task::spawn_blocking(move || match sqlite {
        Some(source) => {
            epigrid_store_sqlite::backup::backup_database(&source, &target, |done, total| {
                shown.set_length(total);
                shown.set_position(done);
            })
        }
        None => epigrid_store_postgres::backup::dump_database(&url, &target),
    })
    .await
    .context("the backup's thread")?;
    bar.finish_and_clear();
    Ok(copied)
}
