//! The `epigrid` binary: a thin shell that reads configuration, opens the
//! store the database URL names, and hands over to the service and web
//! crates.

mod backup;
mod export;
mod import;
mod matching;
mod settings;

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use epigrid_domain::Role;
use epigrid_service::accounts::{NewUser, UserChanges};
use epigrid_service::{Actor, FieldCipher, Service};
use epigrid_store::Store;

use settings::{FileSettings, Resolved};

/// mimalloc instead of glibc's malloc: with a parsed spreadsheet on the
/// heap, glibc's free-list upkeep (consolidating fast bins on every large
/// free of a bulk INSERT's arguments) doubled the write phase of a SQLite
/// import; see docs/PERFORMANCE.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "epigrid",
    version,
    about = "Epidemic prevention and control through the grid of a sub-district office"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Common {
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://DATA_DIR/epigrid.db]
    #[arg(long, global = true)]
    database: Option<String>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, global = true)]
    listen: Option<String>,
    /// Directory for the SQLite store and the generated key [default: ./epigrid-data]
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Configuration file (TOML); EPIGRID_… environment variables override it
    #[arg(long, global = true, default_value = "epigrid.toml")]
    config: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the web UI and API
    Serve,
    /// Create a demo sub-district on first run, then serve it
    Demo(DemoArgs),
    /// Apply database migrations and exit
    Migrate,
    /// Manage accounts
    #[command(subcommand)]
    User(UserCommand),
    /// Manage areas of the hierarchy (the first sub-district is created here)
    #[command(subcommand)]
    Area(AreaCommand),
    /// Print counts per level of the hierarchy as JSON
    Stats,
    /// Check the audit log
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print a new random secret key (64 hex characters)
    Keygen,
    /// Copy the database to TARGET while the server goes on serving (SQLite's
    /// online backup, or pg_dump's custom format on PostgreSQL); the secret
    /// key is not in the copy: keep it apart
    Backup {
        /// The copy to write; an existing file is never overwritten
        target: PathBuf,
        /// Language of messages: zh-CN or en
        #[arg(long, default_value = "zh-CN")]
        lang: String,
    },
    /// Delete personal health, arrival and help records, and the notes and
    /// photos of ended health tasks, older than `retention_days` (serve also
    /// does this daily); counts, tasks and their steps are kept
    Purge {
        /// Only count what would be deleted
        #[arg(long)]
        dry_run: bool,
        /// Language of messages: zh-CN or en
        #[arg(long, default_value = "zh-CN")]
        lang: String,
    },
    /// Import residents (with their buildings and households) from a spreadsheet
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Export residents, tasks or the daily report as .xlsx or .csv (masked
    /// unless --unmask --reason)
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Match a list sent from above (协查名单) against the registry: one
    /// verification task per matched person; prints the counts
    Match(matching::MatchArgs),
    /// Print a built-in rule set as JSON, to copy and adapt
    /// (`catalogue_file`, `calendar_file`)
    Defaults {
        #[arg(value_enum)]
        which: DefaultsKind,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DefaultsKind {
    /// The task catalogue: categories, priorities, time limits, handlers
    Catalogue,
    /// The working-time calendar: office hours, holidays, make-up days
    Calendar,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Number of residents to generate
    #[arg(long, default_value_t = 50_000)]
    residents: u32,
    /// Random seed; the same seed gives the same sub-district
    #[arg(long, default_value_t = 20_221_129)]
    seed: u64,
    /// Password of the `admin` account (otherwise derived from the seed and printed)
    #[arg(long)]
    admin_password: Option<String>,
    /// Generate the data and exit instead of serving
    #[arg(long)]
    no_serve: bool,
}

#[derive(Debug, Subcommand)]
enum AreaCommand {
    /// Create an area: a sub-district (no parent), or a community, grid,
    /// building or unit under its parent
    Add {
        /// sub_district, community, grid, building or unit
        #[arg(long)]
        kind: String,
        #[arg(long)]
        name: String,
        /// Statistical code (sub-district 9 digits, community 12) or grid code (14)
        #[arg(long)]
        code: Option<String>,
        /// The parent area, by code or id
        #[arg(long)]
        parent: Option<String>,
        /// Grid kind: residential, school, market, hospital, enterprise, institution, other_dedicated
        #[arg(long)]
        grid_kind: Option<String>,
        /// Street address of a building
        #[arg(long)]
        address: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the audit log's hash chain: exits 0 when intact, 1 naming the
    /// first changed, deleted or reordered entry
    Verify,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account
    Add {
        #[arg(long)]
        username: String,
        /// sub_district_admin, community_admin, grid_leader, grid_worker, medical_staff or volunteer
        #[arg(long)]
        role: String,
        /// The area the account is scoped to: its code (e.g. 371602001001) or id
        #[arg(long)]
        scope: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        phone: Option<String>,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts
    List,
    /// Set an account's password (read from standard input) and end its sessions
    Passwd { username: String },
}

fn main() -> anyhow::Result<()> {
    // Every command runs on the server's runtime (a worker per core but one,
    // see `serving_runtime`): one runtime, measured once.
    epigrid_web::serving_runtime()?.block_on(run(Cli::parse()))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let file = FileSettings::load(&cli.common.config)?;
    init_logging(file.log.as_deref());
    let settings = Resolved::new(file, cli.common.database, cli.common.listen, cli.common.data_dir);
    match cli.command {
        Command::Import(command) => {
            let service = build_service(&settings, false).await?;
            import::run(&service, command).await
        }
        Command::Export(command) => {
            let service = build_service(&settings, false).await?;
            export::run(&service, command).await
        }
        Command::Match(args) => {
            let service = build_service(&settings, false).await?;
            matching::run(&service, args).await
        }
        Command::Keygen => {
            println!("{}", epigrid_service::SecretKey::generate_hex());
            Ok(())
        }
        Command::Backup { target, lang } => {
            let lang = epigrid_web::i18n::Lang::parse(&lang)
                .with_context(|| format!("unknown language {lang:?}"))?;
            // Opened as every command opens it (migrated), for the audit entry.
            let store = open_store(&settings).await?;
            let key = settings.key_location();
            backup::run(store.as_ref(), &settings.database, target, key, lang).await
        }
        Command::Defaults { which } => {
            let json = match which {
                DefaultsKind::Catalogue => epigrid_domain::tasks::DEFAULT_CATALOGUE_JSON,
                DefaultsKind::Calendar => epigrid_domain::tasks::DEFAULT_CALENDAR_JSON,
            };
            print!("{json}");
            Ok(())
        }
        Command::Migrate => {
            let store = open_store(&settings).await?;
            println!("migrations applied to {} store", store.backend());
            Ok(())
        }
        Command::Serve => {
            let service = build_service(&settings, false).await?;
            serve(&settings, service).await
        }
        Command::Demo(args) => demo(&settings, args).await,
        Command::Audit(AuditCommand::Verify) => {
            // The chain needs no key: only the store is opened.
            let store = open_store(&settings).await?;
            if !verify_audit(store.as_ref()).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Purge { dry_run, lang } => {
            let lang = epigrid_web::i18n::Lang::parse(&lang)
                .with_context(|| format!("unknown language {lang:?}"))?;
            let service = build_service(&settings, false).await?;
            let report = service.purge_expired("epigrid purge", dry_run).await?;
            print!("{}", purge_summary(&report, lang));
            Ok(())
        }
        Command::Stats => {
            let service = build_service(&settings, false).await?;
            let counts = service.stats(&Actor::system()).await?;
            println!("{}", serde_json::to_string_pretty(&counts)?);
            Ok(())
        }
        Command::User(command) => {
            let service = build_service(&settings, false).await?;
            user_command(&service, command).await
        }
        Command::Area(AreaCommand::Add { kind, name, code, parent, grid_kind, address }) => {
            let service = build_service(&settings, false).await?;
            let kind = epigrid_domain::AreaKind::parse(&kind)
                .with_context(|| format!("unknown area kind {kind:?}"))?;
            let parent_id = match parent {
                Some(reference) => Some(find_area(&service, &reference).await?.id),
                None => None,
            };
            let grid_kind = grid_kind
                .map(|k| {
                    epigrid_domain::GridKind::parse(&k)
                        .with_context(|| format!("unknown grid kind {k:?}"))
                })
                .transpose()?;
            let new = epigrid_service::registry::NewArea {
                kind,
                parent_id,
                code,
                name,
                grid_kind,
                boundary: None,
                address,
            };
            let area = service.create_area(&Actor::system(), new).await.map_err(describe)?;
            println!("created {} {} ({})", area.kind.as_str(), area.name, area.id);
            Ok(())
        }
    }
}

fn init_logging(filter: Option<&str>) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| filter.map(str::to_owned))
        .unwrap_or_else(|| "info,sqlx=warn".to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
}

async fn open_store(settings: &Resolved) -> anyhow::Result<Arc<dyn Store>> {
    let url = settings.database.as_str();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = epigrid_store_postgres::PostgresStore::open(url)
            .await
            .context("opening the PostgreSQL store")?;
        Ok(Arc::new(store))
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        let path = PathBuf::from(path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let store = epigrid_store_sqlite::SqliteStore::open_path(&path)
            .await
            .with_context(|| format!("opening the SQLite store {}", path.display()))?;
        Ok(Arc::new(store))
    } else {
        bail!("unsupported database URL {url:?}: use sqlite://PATH or postgres://…")
    }
}

async fn build_service(settings: &Resolved, create_key: bool) -> anyhow::Result<Service> {
    let key = settings.secret_key(create_key)?;
    let store = open_store(settings).await?;
    Ok(Service::new(store, FieldCipher::new(&key), settings.service_settings()?))
}

/// How often overdue tasks are looked for. Escalation is computed from stored
/// deadlines and levels, so a pass after a restart or a missed tick catches
/// up without escalating anything twice.
const ESCALATION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs the escalation pass every minute for as long as the server runs.
/// Several instances may run it at once: each escalation is a compare-and-set
/// on the task's version, so only one of them applies it.
fn spawn_escalation_job(service: Service) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(ESCALATION_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match service.escalation_pass(epigrid_service::chrono::Utc::now()).await {
                Ok(counts) if counts.to_grid_leader + counts.to_community_admin > 0 => {
                    tracing::info!(
                        to_grid_leader = counts.to_grid_leader,
                        to_community_admin = counts.to_community_admin,
                        "overdue tasks escalated"
                    );
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "escalation pass failed; retrying next minute")
                }
            }
        }
    });
}

/// Starts the intake writer, and creates the tasks of any report whose
/// tasks a crash left uncreated: now, then every minute.
fn spawn_intake(service: Service) {
    service.start_intake();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(ESCALATION_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match service.intake_catch_up().await {
                Ok(done) if done.tasks_created > 0 || done.audit_summaries > 0 => {
                    tracing::info!(
                        tasks = done.tasks_created,
                        audit_summaries = done.audit_summaries,
                        "intake caught up"
                    )
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "intake catch-up failed; retrying next minute")
                }
            }
        }
    });
}

/// The retention purge runs at start and then once a day. It is
/// idempotent, so a restart or a second instance only finds less to delete.
const PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// What a purge deleted (or would delete), a line per kind, in `lang`.
fn purge_summary(
    report: &epigrid_service::retention::PurgeReport,
    lang: epigrid_web::i18n::Lang,
) -> String {
    use epigrid_web::i18n::t;
    let c = report.counts;
    let head = if report.dry_run { "purge.would_delete" } else { "purge.deleted" };
    let mut text = t(lang, head).replace("{before}", &report.before.to_string());
    text.push('\n');
    let lines = [
        ("purge.health_reports", c.health_reports),
        ("purge.arrivals", c.arrivals),
        ("purge.help_requests", c.help_requests),
        ("purge.reported_marks", c.reported_marks),
        ("purge.match_rows", c.match_rows),
        ("purge.task_notes", c.task_notes),
        ("purge.task_photos", c.task_photos),
        ("purge.task_subjects", c.task_subjects),
    ];
    for (key, count) in lines {
        text.push_str(&format!("  {:>9}  {}\n", count, t(lang, key)));
    }
    if !report.dry_run {
        text.push_str(&t(lang, "purge.audited"));
        text.push('\n');
    }
    text
}

fn spawn_purge_job(service: Service) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(PURGE_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match service.purge_expired("daily retention job", false).await {
                Ok(report) => tracing::info!(
                    before = %report.before,
                    deleted = report.counts.total(),
                    "retention purge done"
                ),
                Err(error) => tracing::warn!(%error, "retention purge failed; retrying tomorrow"),
            }
        }
    });
}

async fn serve(settings: &Resolved, service: Service) -> anyhow::Result<()> {
    spawn_escalation_job(service.clone());
    spawn_purge_job(service.clone());
    spawn_intake(service.clone());
    let listener = epigrid_web::bind(&settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let address = listener.local_addr()?;
    let backend = service.store().backend();
    let state = epigrid_web::AppState {
        service: service.clone(),
        secure_cookies: settings.file.secure_cookies,
        metrics_token: settings.file.metrics_token.as_ref().and_then(|token| {
            epigrid_web::MetricsToken::new(secrecy::ExposeSecret::expose_secret(token))
        }),
    };
    match (&settings.file.tls_cert, &settings.file.tls_key) {
        (Some(cert), Some(key)) => {
            eprintln!("epigrid is serving on https://{address}/ ({backend} store)");
            let listener = listener.into_std()?;
            epigrid_web::serve_tls(
                listener,
                state,
                cert,
                key,
                settings.max_connections(),
                shutdown_signal(),
            )
            .await
            .with_context(|| {
                format!("serving TLS with {} and {}", cert.display(), key.display())
            })?;
        }
        (None, None) => {
            eprintln!("epigrid is serving on http://{address}/ ({backend} store)");
            epigrid_web::serve(listener, state, settings.max_connections(), shutdown_signal())
                .await?;
        }
        _ => bail!("set both tls_cert and tls_key (EPIGRID_TLS_CERT, EPIGRID_TLS_KEY), or neither"),
    }
    service.finish_intake().await;
    eprintln!("epigrid stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

async fn demo(settings: &Resolved, args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let service = build_service(settings, true).await?;
    let counts = service.stats(&Actor::system()).await?;
    if counts.sub_districts == 0 {
        let options = epigrid_service::demo::DemoOptions {
            seed: args.seed,
            residents: args.residents,
            admin_password: args.admin_password,
            ..Default::default()
        };
        let summary = generate_with_progress(&service, &options).await?;
        // Today's door-to-door reports and a few fevers, so the dashboard,
        // the task board and the phone pages have something to show.
        let activity = service.demo_activity(args.seed).await?;
        // The fever tasks are made right after each commit; make sure they
        // exist before a `--no-serve` run exits.
        service.intake_catch_up().await?;
        service.finish_intake().await;
        let elapsed = started.elapsed();
        eprintln!(
            "demo sub-district ready: {} households, {} residents in {:.1} s; \
             {} households reported today, {} with a fever (follow-up tasks dispatched)",
            summary.households,
            summary.residents,
            elapsed.as_secs_f64(),
            activity.households_reported,
            activity.fevers,
        );
        let listing = accounts_listing(&summary.accounts);
        let path = settings.data_dir.join("demo-accounts.txt");
        std::fs::write(&path, &listing).with_context(|| format!("writing {}", path.display()))?;
        print_accounts(&summary.accounts);
        eprintln!("(all demo accounts are listed in {})", path.display());
    } else {
        eprintln!(
            "using the existing demo data in {} ({} residents); accounts are listed in {}",
            settings.data_dir.display(),
            counts.residents,
            settings.data_dir.join("demo-accounts.txt").display()
        );
    }
    if args.no_serve {
        return Ok(());
    }
    serve(settings, service).await
}

async fn generate_with_progress(
    service: &Service,
    options: &epigrid_service::demo::DemoOptions,
) -> anyhow::Result<epigrid_service::demo::DemoSummary> {
    use epigrid_service::demo::DemoProgress;
    use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {per_sec}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let make = |prefix: &'static str| {
        let bar = bars.add(ProgressBar::new(0));
        bar.set_style(style.clone());
        bar.set_prefix(prefix);
        bar
    };
    let (areas, accounts, residents) = (make("areas"), make("accounts"), make("residents"));
    // The resident phase is timed on its own: it is the insert rate that
    // scales with the population, while areas and accounts are fixed costs.
    let resident_phase: std::sync::Mutex<(Option<Instant>, Option<Instant>)> = Default::default();
    let report = |progress: DemoProgress| {
        if let DemoProgress::Residents { done, total } = progress {
            let mut phase = resident_phase.lock().unwrap_or_else(|e| e.into_inner());
            phase.0.get_or_insert_with(Instant::now);
            if done == total {
                phase.1 = Some(Instant::now());
            }
        }
        let (bar, done, total) = match progress {
            DemoProgress::Areas { done, total } => (&areas, done, total),
            DemoProgress::Accounts { done, total } => (&accounts, done, total),
            DemoProgress::Residents { done, total } => (&residents, done, total),
        };
        bar.set_length(u64::from(total));
        bar.set_position(u64::from(done));
    };
    let summary = service.generate_demo(options, &report).await?;
    for bar in [&areas, &accounts, &residents] {
        bar.finish();
    }
    if let (Some(start), Some(end)) = *resident_phase.lock().unwrap_or_else(|e| e.into_inner()) {
        let seconds = (end - start).as_secs_f64();
        eprintln!(
            "residents and households inserted in {seconds:.1} s: {:.0} residents/s",
            f64::from(summary.residents) / seconds
        );
    }
    Ok(summary)
}

fn accounts_listing(accounts: &[epigrid_service::demo::DemoAccount]) -> String {
    let mut text = String::from("username\tpassword\trole\tscope\n");
    for a in accounts {
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            a.username,
            a.password,
            a.role.as_str(),
            a.scope_name
        ));
    }
    text
}

fn print_accounts(accounts: &[epigrid_service::demo::DemoAccount]) {
    println!("Demo accounts (username / password / role / scope):");
    let mut shown_workers = 0;
    for a in accounts {
        if a.role == Role::GridWorker {
            shown_workers += 1;
            if shown_workers > 3 {
                continue;
            }
        }
        println!("  {:<8} {:<20} {:<20} {}", a.username, a.password, a.role.as_str(), a.scope_name);
    }
    if shown_workers > 3 {
        println!("  … and {} more grid workers", shown_workers - 3);
    }
}

/// Walks the audit log's hash chain and says what it found: `true` when
/// intact. The head hash is printed so it can be written down elsewhere:
/// no chain can show on its own that its newest entries were cut off.
async fn verify_audit(store: &dyn Store) -> anyhow::Result<bool> {
    use epigrid_store::ChainVerdict;
    match store.verify_audit_chain().await.context("reading the audit log")? {
        ChainVerdict::Intact { entries, head } => {
            println!("audit log intact: {entries} entries");
            if let Some(head) = head {
                println!("head: seq={} hash={}", head.seq, hex_string(&head.hash));
            }
            Ok(true)
        }
        ChainVerdict::Broken(broken) => {
            let id = broken.id.map_or_else(|| "?".to_owned(), |id| id.to_string());
            println!("audit log broken at entry seq={} id={id} : {}", broken.seq, broken.reason);
            Ok(false)
        }
    }
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An area by its code or id.
async fn find_area(
    service: &Service,
    reference: &str,
) -> anyhow::Result<epigrid_store::AreaRecord> {
    let reference = reference.trim();
    match uuid::Uuid::try_parse(reference) {
        Ok(id) => service.store().get_area(id).await?,
        Err(_) => service.store().get_area_by_code(reference).await?,
    }
    .with_context(|| format!("no area with code or id {reference:?}"))
}

/// A service error for the terminal: the field and the reason code, which
/// name exactly what to fix.
fn describe(error: epigrid_service::ServiceError) -> anyhow::Error {
    match error.field() {
        Some(field) => anyhow::anyhow!("{field}: {} ({error})", error.code()),
        None => anyhow::anyhow!("{} ({error})", error.code()),
    }
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn user_command(service: &Service, command: UserCommand) -> anyhow::Result<()> {
    let system = Actor::system();
    match command {
        UserCommand::Add { username, role, scope, display_name, phone, password_stdin } => {
            let role = Role::parse(&role).with_context(|| format!("unknown role {role:?}"))?;
            let area = find_area(service, &scope).await?;
            let (password, generated) = if password_stdin {
                (read_password()?, false)
            } else {
                (epigrid_service::SecretKey::generate_hex()[..16].to_owned(), true)
            };
            let user = service
                .create_user(
                    &system,
                    NewUser {
                        display_name: display_name.unwrap_or_else(|| username.clone()),
                        username,
                        phone,
                        password: password.clone(),
                        role,
                        scope_area_id: area.id,
                    },
                )
                .await
                .map_err(describe)?;
            println!("created {} ({}) scoped to {}", user.username, user.role.as_str(), area.name);
            if generated {
                println!("password: {password}");
            }
            Ok(())
        }
        UserCommand::List => {
            let mut cursor = None;
            loop {
                let page = service.list_users(&system, cursor, 200).await?;
                for u in &page.items {
                    println!(
                        "{}\t{}\t{}\t{}:{}\t{}",
                        u.username,
                        u.display_name,
                        u.role.as_str(),
                        u.scope_kind.as_str(),
                        u.scope_area_id,
                        if u.disabled { "disabled" } else { "active" }
                    );
                }
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            Ok(())
        }
        UserCommand::Passwd { username } => {
            let user = service
                .store()
                .get_user_by_username(&username)
                .await?
                .with_context(|| format!("no account {username:?}"))?;
            let password = read_password()?;
            service
                .update_user(
                    &system,
                    user.id,
                    UserChanges { password: Some(password), ..Default::default() },
                )
                .await
                .map_err(describe)?;
            println!("password changed for {username}; its sessions are ended");
            Ok(())
        }
    }
}
