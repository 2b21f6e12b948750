//! `epigrid export residents|tasks|daily-report --scope CODE --out FILE`:
//! the exports of the web page from a terminal. Masked unless `--unmask
//! --reason R` (and the account given with `--as` may unmask); audited like
//! the page's. File contents are Chinese, as offices send them.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use epigrid_service::export::{ExportError, ExportFormat, check_messages};
use epigrid_service::privacy::UnmaskReason;
use epigrid_service::{Actor, Service, ServiceError};
use epigrid_web::i18n::{Lang, t};

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// The residents of an area (.xlsx or .csv), masked unless --unmask
    Residents(ExportArgs),
    /// The tasks of an area (.xlsx or .csv)
    Tasks(ExportArgs),
    /// The daily report of a sub-district, community or grid (.xlsx)
    DailyReport(ExportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The area's statistical code (sub-district, community) or grid code
    #[arg(long)]
    scope: String,
    /// xlsx or csv (the daily report is xlsx only)
    #[arg(long, default_value = "xlsx")]
    format: String,
    /// The daily report's date, YYYY-MM-DD [default: today]
    #[arg(long)]
    date: Option<String>,
    /// Where to write the file
    #[arg(long)]
    out: PathBuf,
    /// Export as this account (its role and scope apply) instead of the system
    #[arg(long = "as", value_name = "USERNAME")]
    as_user: Option<String>,
    /// Document numbers, phones and names in clear (residents only; needs --reason)
    #[arg(long)]
    unmask: bool,
    /// Why the clear values are needed: contact_resident, verify_identity,
    /// report_upward, correct_record or emergency
    #[arg(long)]
    reason: Option<String>,
}

/// The account a command acts as (`--as USERNAME`), or the system when none
/// is named; a disabled account is refused.
pub(crate) async fn actor(service: &Service, username: Option<&str>) -> anyhow::Result<Actor> {
    let Some(username) = username else { return Ok(Actor::system()) };
    let user = service
        .store()
        .get_user_by_username(username)
        .await?
        .with_context(|| format!("no account {username:?}"))?;
    if user.disabled {
        bail!("account {username:?} is disabled");
    }
    Ok(Actor {
        user_id: Some(user.id),
        username: user.username,
        role: user.role,
        scope: Some(user.scope),
        client_addr: None,
    })
}

pub async fn run(service: &Service, command: ExportCommand) -> anyhow::Result<()> {
    let tr = |key: &str| t(Lang::ZhCn, key);
    let (what, args) = match command {
        ExportCommand::Residents(a) => ("residents", a),
        ExportCommand::Tasks(a) => ("tasks", a),
        ExportCommand::DailyReport(a) => ("daily-report", a),
    };
    let format = ExportFormat::parse(&args.format)
        .with_context(|| format!("{}: {:?}", tr("export.format.unknown"), args.format))?;
    let reason = match (args.unmask, args.reason.as_deref()) {
        (false, None) => None,
        (false, Some(_)) => bail!("--reason only goes with --unmask"),
        (true, None) => bail!("{} (--reason)", tr("export.reason.required")),
        (true, Some(r)) => Some(UnmaskReason::parse(r).with_context(|| {
            let all: Vec<_> = UnmaskReason::ALL.iter().map(|r| r.as_str()).collect();
            format!("unknown reason {r:?}: one of {}", all.join(", "))
        })?),
    };
    if reason.is_some() && what != "residents" {
        bail!("--unmask applies to residents only");
    }
    let actor = actor(service, args.as_user.as_deref()).await?;
    let not_found = |e: ServiceError| match e {
        ServiceError::NotFound => {
            anyhow::anyhow!("no area with code {:?} in this scope", args.scope)
        }
        other => anyhow::anyhow!(other),
    };
    let area = service.export_area_by_code(&actor, &args.scope).await.map_err(not_found)?;
    let started = Instant::now();
    let result = match what {
        "residents" => service.export_residents(&actor, area.id, format, reason, &tr).await,
        "tasks" => service.export_tasks(&actor, area.id, format, &tr).await,
        _ => {
            if format != ExportFormat::Xlsx {
                bail!("the daily report is .xlsx only");
            }
            let date = match &args.date {
                Some(d) => epigrid_service::chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .with_context(|| format!("{}: {d:?}", tr("export.date.invalid")))?,
                None => service.today(),
            };
            service.export_daily_report(&actor, area.id, date, &tr).await
        }
    };
    let file = match result {
        Ok(file) => file,
        Err(ExportError::Checks(failures)) => {
            let messages = check_messages(&failures, &tr);
            bail!("{}\n  {}", tr("export.daily.checks_failed"), messages.join("\n  "))
        }
        Err(ExportError::Service(ServiceError::Invalid { field, code })) => {
            bail!("{field}: {}", tr(code))
        }
        Err(ExportError::Service(e)) => return Err(not_found(e)),
    };
    std::fs::write(&args.out, &file.bytes)
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "{} {} rows, {} bytes -> {} ({:.2} s)",
        area.name,
        file.rows,
        file.bytes.len(),
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
