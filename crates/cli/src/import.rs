//! `epigrid import residents FILE`: the import as a terminal session. It
//! prints how the columns were understood and what would change, writes an
//! error report next to the file, and shows a progress bar on stderr while
//! writing. Messages are Chinese unless `--lang en`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use epigrid_domain::import::Field;
use epigrid_service::Service;
use epigrid_service::import::{
    ImportMode, ImportOptions, ImportPhase, ImportProgress, file_digest, read_table, report,
};
use epigrid_web::i18n::{Lang, t};

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import buildings, households and residents from .xlsx, .xls or .csv
    Residents(ResidentsArgs),
}

#[derive(Debug, Args)]
pub struct ResidentsArgs {
    /// The file to import
    file: PathBuf,
    /// all-or-nothing: write nothing unless every row is valid;
    /// valid-only: write the valid rows and report the rest
    #[arg(long, default_value = "all-or-nothing")]
    mode: String,
    /// Check every row and show what would change, without writing
    #[arg(long)]
    dry_run: bool,
    /// Correct the column mapping: 列名=field (e.g. 证件=id_number, 备注=ignore);
    /// repeat for several columns
    #[arg(long = "map", value_name = "COLUMN=FIELD")]
    map: Vec<String>,
    /// Import as this account (its role and scope apply) instead of the system
    #[arg(long = "as", value_name = "USERNAME")]
    as_user: Option<String>,
    /// Where to write the error report [default: next to the file, NAME.错误报告.xlsx]
    #[arg(long)]
    errors_out: Option<PathBuf>,
    /// Rows per transaction
    #[arg(long, default_value_t = epigrid_service::import::DEFAULT_CHUNK_ROWS)]
    chunk_rows: usize,
    /// Language of messages: zh-CN or en
    #[arg(long, default_value = "zh-CN")]
    lang: String,
}

/// How many updates and errors are printed; the report file has them all.
const SHOWN: usize = 20;

fn fill(template: String, values: &[(&str, String)]) -> String {
    values.iter().fold(template, |text, (key, value)| text.replace(&format!("{{{key}}}"), value))
}

pub async fn run(service: &Service, command: ImportCommand) -> anyhow::Result<()> {
    let ImportCommand::Residents(args) = command;
    let lang =
        Lang::parse(&args.lang).with_context(|| format!("unknown language {:?}", args.lang))?;
    let tr = move |key: &str| t(lang, key);
    let mode = ImportMode::parse(&args.mode)
        .with_context(|| format!("unknown mode {:?}: all-or-nothing or valid-only", args.mode))?;
    let actor = crate::export::actor(service, args.as_user.as_deref()).await?;
    let started = Instant::now();
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let file_name = args.file.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
    let table =
        read_table(&file_name, &bytes).map_err(|e| anyhow::anyhow!("{} ({e})", tr(e.code())))?;
    let options = ImportOptions {
        mode,
        overrides: args.map.clone(),
        chunk_rows: args.chunk_rows,
        ..ImportOptions::default()
    };
    let failure = |e: epigrid_service::ServiceError| {
        let field = e
            .field()
            .map(|f| Field::parse(f).map_or_else(|| f.to_owned(), |field| tr(&field.label_key())));
        match field {
            Some(field) => anyhow::anyhow!("{field}: {}", tr(e.code())),
            None => anyhow::anyhow!("{}", tr(e.code())),
        }
    };

    // The mapping first, so a wrong guess can be corrected before the
    // (possibly long) check of every row.
    let (header_row, mapping) =
        service.import_mapping(&actor, &table, &options).map_err(failure)?;
    let data_rows = table.rows.len().saturating_sub(header_row + 1);
    eprintln!(
        "{}",
        fill(
            tr("import.cli.file"),
            &[
                ("file", args.file.display().to_string()),
                ("format", table.format.clone()),
                ("row", (header_row + 1).to_string()),
                ("rows", data_rows.to_string()),
            ]
        )
    );
    eprintln!("{}", tr("import.cli.mapping"));
    for (header, field) in mapping.headers.iter().zip(&mapping.fields) {
        let target = field.map_or_else(
            || tr("import.cli.ignored"),
            |f| format!("{} ({})", tr(&f.label_key()), f.as_str()),
        );
        eprintln!("  {header:<16} → {target}");
    }

    let progress = Arc::new(ImportProgress::default());
    let bar = progress_bar(progress.clone());
    let plan = service
        .plan_import(&actor, &table, file_digest(&bytes), &options, &progress)
        .await
        .map_err(failure);
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => {
            bar.abort();
            return Err(e);
        }
    };
    if let Some(previous) = &plan.previous_job
        && previous.status != "done"
        && previous.status != "rejected"
    {
        eprintln!(
            "{}",
            fill(
                tr("import.cli.resumed"),
                &[("at", previous.created_at.to_rfc3339()), ("status", previous.status.clone())]
            )
        );
    }
    eprintln!(
        "{}",
        fill(
            tr("import.cli.plan"),
            &[
                ("inserts", plan.inserts.to_string()),
                ("updates", plan.updates.len().to_string()),
                ("unchanged", plan.unchanged.to_string()),
                ("rejected", plan.rejected_rows.to_string()),
                ("areas", plan.new_areas.to_string()),
                ("households", plan.new_households.to_string()),
            ]
        )
    );
    if !plan.updates.is_empty() {
        eprintln!("{}", fill(tr("import.cli.changes"), &[("shown", SHOWN.to_string())]));
        for update in plan.updates.iter().take(SHOWN) {
            let changes: Vec<String> = update
                .changes
                .iter()
                .map(|c| {
                    let label = Field::parse(c.field).map_or_else(
                        || tr(&format!("import.field.{}", c.field)),
                        |f| tr(&f.label_key()),
                    );
                    format!("{label}: {} → {}", c.before, c.after)
                })
                .collect();
            let row = fill(tr("import.cli.row"), &[("row", update.row.to_string())]);
            eprintln!("  {row} {}: {}", update.name_masked, changes.join(", "));
        }
    }
    if !plan.errors.is_empty() {
        eprintln!("{}", fill(tr("import.cli.errors"), &[("shown", SHOWN.to_string())]));
        for error in plan.errors.iter().take(SHOWN) {
            let row = fill(tr("import.cli.row"), &[("row", error.row.to_string())]);
            eprintln!("  {row} {}", report::describe(error, &tr));
        }
        let out = args.errors_out.clone().unwrap_or_else(|| default_report_path(&args.file));
        let xlsx = report::error_report(&table, plan.header_row, &plan.errors, &tr)
            .context("writing the error report")?;
        std::fs::write(&out, xlsx).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("{}", fill(tr("import.cli.report"), &[("path", out.display().to_string())]));
    }
    if args.dry_run {
        bar.abort();
        eprintln!("{}", tr("import.cli.dry_run"));
        return Ok(());
    }
    let summary = service.apply_import(&actor, &plan, &progress).await.map_err(failure);
    bar.abort();
    let summary = summary?;
    if summary.status == "rejected" {
        eprintln!("{}", tr("import.cli.rejected"));
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{}",
        fill(
            tr("import.cli.done"),
            &[
                ("inserted", summary.inserted.to_string()),
                ("updated", summary.updated.to_string()),
                ("unchanged", summary.unchanged.to_string()),
                ("rejected", summary.rejected.to_string()),
                ("seconds", format!("{seconds:.1}")),
                ("rate", format!("{:.0}", plan.data_rows as f64 / seconds.max(1e-9))),
            ]
        )
    );
    // The same summary on stdout as JSON, for scripts.
    println!("{}", serde_json::to_string(&summary)?);
    if summary.status == "rejected" {
        std::process::exit(2);
    }
    Ok(())
}

/// `居民.xlsx` → `居民.错误报告.xlsx` in the same directory.
fn default_report_path(file: &Path) -> PathBuf {
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("import");
    file.with_file_name(format!("{stem}.错误报告.xlsx"))
}

/// Draws the import's counters on stderr until aborted: rows checked, then
/// rows written, with the rate.
fn progress_bar(progress: Arc<ImportProgress>) -> tokio::task::JoinHandle<()> {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    tokio::spawn(async move {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{prefix:>6} [{bar:30}] {pos}/{len} {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        let mut shown = None;
        loop {
            let phase = progress.phase();
            if shown != Some(phase) {
                // A new phase restarts the bar, so its rate is that phase's.
                bar.reset();
                bar.set_prefix(match phase {
                    ImportPhase::Checking => "check",
                    ImportPhase::Writing | ImportPhase::Done => "write",
                });
                shown = Some(phase);
            }
            let (position, length) = match phase {
                ImportPhase::Checking => (
                    progress.checked_rows.load(Ordering::Relaxed),
                    progress.total_rows.load(Ordering::Relaxed),
                ),
                ImportPhase::Writing | ImportPhase::Done => (
                    progress.written_rows.load(Ordering::Relaxed),
                    progress.to_write.load(Ordering::Relaxed),
                ),
            };
            bar.set_length(length);
            bar.set_position(position);
            if phase == ImportPhase::Done {
                bar.finish();
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}
