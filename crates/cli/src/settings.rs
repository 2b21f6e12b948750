//! Configuration: defaults, then `epigrid.toml` (or `--config`), then
//! `EPIGRID_…` environment variables, then command-line flags. The secret key
//! is held in a `SecretString`, so it never shows in Debug output or logs.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./epigrid-data";
const KEY_FILE: &str = "secret.key";

#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct FileSettings {
    /// `sqlite://PATH` or `postgres://…`; default `sqlite://DATA_DIR/epigrid.db`.
    pub database: Option<String>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// 64 hex characters. Prefer the environment variable in production.
    pub secret_key: Option<SecretString>,
    pub session_idle_minutes: Option<i64>,
    pub session_absolute_hours: Option<i64>,
    /// Key-group tags beyond the built-in ones.
    pub extra_tags: Vec<String>,
    /// Mark cookies `Secure` (set when served over HTTPS).
    pub secure_cookies: bool,
    /// Hours east of UTC for dates shown and "today" (default 8, China).
    pub utc_offset_hours: Option<i32>,
    /// Log filter, e.g. `info` or `epigrid=debug,sqlx=warn`.
    pub log: Option<String>,
    /// Failed logins per account, and per client address, tolerated within
    /// `login_window_minutes` before further attempts get 429.
    pub login_window_minutes: Option<i64>,
    pub login_max_failures_per_account: Option<i64>,
    pub login_max_failures_per_address: Option<i64>,
    /// argon2id cost for new password hashes.
    pub argon2_memory_kib: Option<u32>,
    pub argon2_iterations: Option<u32>,
    pub argon2_parallelism: Option<u32>,
    /// Roles allowed to unmask ID numbers and phones, e.g.
    /// `["sub_district_admin", "community_admin"]`.
    pub unmask_roles: Option<Vec<String>>,
    /// Largest photo accepted with a task step, in bytes (default 5 MiB),
    /// and most photos on one step (default 3).
    pub photo_max_bytes: Option<usize>,
    pub photo_max_per_step: Option<usize>,
    /// Served connections at most; beyond, a new one is answered 503 with
    /// `Retry-After`, then held (plain HTTP) or closed (TLS) as
    /// `epigrid_web::connection_cap` describes.
    pub max_connections: Option<usize>,
    /// The bearer token the Prometheus scraper sends for `/metrics`; unset,
    /// `/metrics` answers 404. Prefer the environment variable.
    pub metrics_token: Option<SecretString>,
    /// PEM certificate chain and private key: `serve` then speaks HTTPS itself.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Intake (self-service reports): submissions waiting for the writer at
    /// most (beyond, 503 at once), how long the writer waits to fill a batch
    /// (microseconds), the most submissions per transaction, and how often
    /// (milliseconds) the writer appends its summary to the audit chain.
    pub intake_queue_capacity: Option<usize>,
    pub intake_batch_window_micros: Option<u64>,
    pub intake_batch_max: Option<usize>,
    pub intake_audit_interval_millis: Option<u64>,
    /// Free space (MiB) kept ahead inside a SQLite database file, added
    /// by the intake writer when idle, so that the checkpoints at a peak
    /// write into blocks the file already has. 0 keeps none.
    pub storage_room_mb: Option<u64>,
    /// A temperature at or above this (°C) becomes a fever follow-up task.
    pub intake_fever_celsius: Option<f64>,
    /// The plausible range of a temperature reading (°C).
    pub intake_temperature_min: Option<f64>,
    pub intake_temperature_max: Option<f64>,
    /// How long a resident stays identified (minutes).
    pub intake_pass_minutes: Option<i64>,
    /// Tasks made by the intake rules go straight to a grid worker
    /// (default true); false leaves them for the office to verify.
    pub intake_auto_dispatch: Option<bool>,
    /// Public routes: requests in flight at once (beyond, 503), timeout,
    /// and the per-client-address rate (0: off) and burst.
    pub public_concurrency: Option<usize>,
    pub public_timeout_seconds: Option<u64>,
    pub public_rate_per_client: Option<u32>,
    pub public_burst_per_client: Option<u32>,
    /// A task catalogue (JSON, the shape of `epigrid defaults catalogue`)
    /// replacing the built-in epidemic catalogue.
    pub catalogue_file: Option<PathBuf>,
    /// A working-time calendar (JSON, the shape of `epigrid defaults
    /// calendar`) replacing the built-in one, e.g. to add next year's holidays.
    pub calendar_file: Option<PathBuf>,
    /// Days of emergency mode (every hour counts), added to the calendar:
    /// `emergency_days = ["2026-12-01"]` or `EPIGRID_EMERGENCY_DAYS=2026-12-01,…`.
    pub emergency_days: Vec<String>,
    /// Days personal health, arrival and help records are kept after the
    /// day they cover (default 28); `epigrid purge` and a daily job in
    /// `serve` delete them afterwards.
    pub retention_days: Option<u32>,
    /// The address residents reach the server at, for the QR codes of the
    /// self-service sheets (`https://epigrid.example.cn`); default: the
    /// request's host.
    pub public_base_url: Option<String>,
}

impl FileSettings {
    /// Reads `path` (if it exists) and the `EPIGRID_…` environment.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        Self::load_from(path, std::env::vars())
    }

    /// As `load`, with the environment given (so tests need not change the
    /// process environment).
    pub fn load_from(
        path: &Path,
        env: impl Iterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let builder = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml).required(false))
            .add_source(
                config::Environment::with_prefix("EPIGRID")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("extra_tags")
                    .with_list_parse_key("unmask_roles")
                    .with_list_parse_key("emergency_days")
                    // Test and tooling variables share the prefix but are not settings.
                    .source(Some(
                        env.filter(|(k, _)| {
                            k.starts_with("EPIGRID_")
                                && !k.starts_with("EPIGRID_TEST")
                                && !k.starts_with("EPIGRID_BENCH")
                                && !k.starts_with("EPIGRID_REQUIRE_")
                                && k != "EPIGRID_SCREENSHOTS"
                        })
                        .collect(),
                    )),
            );
        builder.build().and_then(|c| c.try_deserialize()).with_context(|| {
            format!("reading configuration ({} and EPIGRID_… variables)", path.display())
        })
    }
}

/// Settings after flags are applied.
#[derive(Debug)]
pub struct Resolved {
    pub database: String,
    pub listen: String,
    pub data_dir: PathBuf,
    pub file: FileSettings,
}

impl Resolved {
    /// Open connections at most (`max_connections`).
    pub fn max_connections(&self) -> usize {
        self.file
            .max_connections
            .unwrap_or(epigrid_web::connection_cap::DEFAULT_MAX_CONNECTIONS)
            .max(1)
    }

    pub fn new(
        file: FileSettings,
        database: Option<String>,
        listen: Option<String>,
        data_dir: Option<PathBuf>,
    ) -> Self {
        let data_dir = data_dir
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database = database
            .or_else(|| file.database.clone())
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("epigrid.db").display()));
        let listen =
            listen.or_else(|| file.listen.clone()).unwrap_or_else(|| DEFAULT_LISTEN.into());
        Self { database, listen, data_dir, file }
    }

    /// Where the secret key is kept, for an operator to find (the key itself
    /// is never printed).
    pub fn key_location(&self) -> String {
        if self.file.secret_key.is_some() {
            "EPIGRID_SECRET_KEY / secret_key".into()
        } else {
            self.data_dir.join(KEY_FILE).display().to_string()
        }
    }

    /// The secret key: configured, or kept in the data dir. With
    /// `create_if_missing` (the demo) a new key is written there on first run.
    pub fn secret_key(
        &self,
        create_if_missing: bool,
    ) -> anyhow::Result<epigrid_service::SecretKey> {
        if let Some(key) = &self.file.secret_key {
            return epigrid_service::SecretKey::from_hex(key.expose_secret())
                .context("EPIGRID_SECRET_KEY / secret_key");
        }
        let path = self.data_dir.join(KEY_FILE);
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            return epigrid_service::SecretKey::from_hex(&text)
                .with_context(|| format!("key in {}", path.display()));
        }
        if !create_if_missing {
            bail!(
                "no secret key: set EPIGRID_SECRET_KEY to 64 hex characters (`epigrid keygen` makes one), \
                 or put one in {}",
                path.display()
            );
        }
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating {}", self.data_dir.display()))?;
        let hex = epigrid_service::SecretKey::generate_hex();
        write_private(&path, &hex)?;
        eprintln!("generated a new secret key in {}", path.display());
        epigrid_service::SecretKey::from_hex(&hex).context("generated key")
    }

    pub fn service_settings(&self) -> anyhow::Result<epigrid_service::Settings> {
        let mut settings = epigrid_service::Settings::default();
        if let Some(minutes) = self.file.session_idle_minutes {
            settings.session_idle = chrono_minutes(minutes)?;
        }
        if let Some(hours) = self.file.session_absolute_hours {
            settings.session_absolute = chrono_minutes(hours * 60)?;
        }
        if let Some(hours) = self.file.utc_offset_hours {
            settings.time_zone_offset =
                epigrid_service::chrono::FixedOffset::east_opt(hours * 3600)
                    .context("utc_offset_hours must be between -23 and 23")?;
        }
        let limits = &mut settings.login_limits;
        if let Some(minutes) = self.file.login_window_minutes {
            limits.window = chrono_minutes(minutes)?;
        }
        if let Some(n) = self.file.login_max_failures_per_account {
            limits.per_account = positive("login_max_failures_per_account", n)?;
        }
        if let Some(n) = self.file.login_max_failures_per_address {
            limits.per_address = positive("login_max_failures_per_address", n)?;
        }
        let argon2 = &mut settings.argon2;
        argon2.memory_kib = self.file.argon2_memory_kib.unwrap_or(argon2.memory_kib);
        argon2.iterations = self.file.argon2_iterations.unwrap_or(argon2.iterations);
        argon2.parallelism = self.file.argon2_parallelism.unwrap_or(argon2.parallelism);
        if let Some(bytes) = self.file.photo_max_bytes {
            positive("photo_max_bytes", i64::try_from(bytes).unwrap_or(i64::MAX))?;
            settings.photos.max_bytes = bytes;
        }
        if let Some(count) = self.file.photo_max_per_step {
            positive("photo_max_per_step", i64::try_from(count).unwrap_or(i64::MAX))?;
            settings.photos.max_per_step = count;
        }
        if let Some(roles) = &self.file.unmask_roles {
            settings.unmask_roles = roles
                .iter()
                .map(|r| {
                    epigrid_domain::Role::parse(r.trim())
                        .ok_or_else(|| anyhow::anyhow!("unmask_roles: unknown role {r:?}"))
                })
                .collect::<anyhow::Result<_>>()?;
        }
        if let Some(days) = self.file.retention_days {
            positive("retention_days", i64::from(days))?;
            settings.retention_days = days;
        }
        if let Some(url) = &self.file.public_base_url {
            let url = url.trim().trim_end_matches('/');
            if !(url.starts_with("https://") || url.starts_with("http://"))
                || url.contains(char::is_whitespace)
            {
                anyhow::bail!("public_base_url: {url:?} is not an http(s) address");
            }
            settings.public_base_url = Some(url.to_owned());
        }
        settings.tasks.catalogue = self.catalogue()?;
        settings.tasks.calendar = self.calendar()?;
        self.apply_intake(&mut settings.intake)?;
        for tag in &self.file.extra_tags {
            settings.extra_tags.push(
                epigrid_domain::Tag::parse(tag.trim())
                    .map_err(|e| anyhow::anyhow!("extra_tags: {tag:?}: {e}"))?,
            );
        }
        Ok(settings)
    }
}

impl Resolved {
    /// The configured catalogue, or the built-in one.
    pub fn catalogue(&self) -> anyhow::Result<epigrid_domain::tasks::Catalogue> {
        match &self.file.catalogue_file {
            None => Ok(epigrid_domain::tasks::Catalogue::default_epidemic()),
            Some(path) => {
                let json = std::fs::read_to_string(path)
                    .with_context(|| format!("catalogue_file: reading {}", path.display()))?;
                epigrid_domain::tasks::Catalogue::from_json(&json)
                    .with_context(|| format!("catalogue_file {}", path.display()))
            }
        }
    }

    /// The configured calendar (or the built-in one) with the configured
    /// emergency days added.
    pub fn calendar(&self) -> anyhow::Result<epigrid_domain::tasks::WorkCalendar> {
        use epigrid_domain::tasks::WorkCalendar;
        let base = match &self.file.calendar_file {
            None => WorkCalendar::default_china(),
            Some(path) => {
                let json = std::fs::read_to_string(path)
                    .with_context(|| format!("calendar_file: reading {}", path.display()))?;
                WorkCalendar::from_json(&json)
                    .with_context(|| format!("calendar_file {}", path.display()))?
            }
        };
        if self.file.emergency_days.is_empty() {
            return Ok(base);
        }
        let mut config = base.config().clone();
        for day in &self.file.emergency_days {
            let date = epigrid_service::chrono::NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d")
                .with_context(|| {
                format!("emergency_days: {day:?} is not a date (YYYY-MM-DD)")
            })?;
            config.emergency_days.insert(date);
        }
        WorkCalendar::new(config).context("emergency_days")
    }
}

/// The room `epigrid serve` keeps by default: some twenty seconds of growth
/// at the measured peak, and days of a sub-district's ordinary reporting.
const DEFAULT_STORAGE_ROOM_MB: u64 = 64;

impl Resolved {
    fn apply_intake(
        &self,
        intake: &mut epigrid_service::intake::IntakeSettings,
    ) -> anyhow::Result<()> {
        let f = &self.file;
        if let Some(n) = f.intake_queue_capacity {
            intake.queue_capacity = usize::try_from(positive("intake_queue_capacity", n as i64)?)?;
        }
        if let Some(micros) = f.intake_batch_window_micros {
            intake.batch_window = std::time::Duration::from_micros(micros);
        }
        if let Some(n) = f.intake_batch_max {
            intake.batch_max = usize::try_from(positive("intake_batch_max", n as i64)?)?;
        }
        if let Some(millis) = f.intake_audit_interval_millis {
            let millis = positive("intake_audit_interval_millis", i64::try_from(millis)?)?;
            intake.audit_interval = std::time::Duration::from_millis(u64::try_from(millis)?);
        }
        intake.room_bytes =
            f.storage_room_mb.unwrap_or(DEFAULT_STORAGE_ROOM_MB).saturating_mul(1 << 20);
        let rules = &mut intake.rules;
        rules.fever_at = f.intake_fever_celsius.unwrap_or(rules.fever_at);
        rules.temperature_min = f.intake_temperature_min.unwrap_or(rules.temperature_min);
        rules.temperature_max = f.intake_temperature_max.unwrap_or(rules.temperature_max);
        if !(rules.temperature_min < rules.fever_at && rules.fever_at < rules.temperature_max) {
            bail!(
                "intake temperatures must satisfy temperature_min < fever_celsius < temperature_max"
            );
        }
        if let Some(minutes) = f.intake_pass_minutes {
            intake.pass_lifetime = chrono_minutes(minutes)?;
        }
        intake.auto_dispatch = f.intake_auto_dispatch.unwrap_or(intake.auto_dispatch);
        let public = &mut intake.public;
        if let Some(n) = f.public_concurrency {
            public.concurrency = usize::try_from(positive("public_concurrency", n as i64)?)?;
        }
        if let Some(seconds) = f.public_timeout_seconds {
            public.timeout = std::time::Duration::from_secs(positive(
                "public_timeout_seconds",
                seconds as i64,
            )? as u64);
        }
        public.rate_per_client = f.public_rate_per_client.unwrap_or(public.rate_per_client);
        public.burst_per_client = f.public_burst_per_client.unwrap_or(public.burst_per_client);
        Ok(())
    }
}

fn positive(name: &str, n: i64) -> anyhow::Result<i64> {
    if n <= 0 {
        bail!("{name} must be positive");
    }
    Ok(n)
}

fn chrono_minutes(minutes: i64) -> anyhow::Result<epigrid_service::chrono::Duration> {
    if minutes <= 0 {
        bail!("session and login windows must be positive");
    }
    Ok(epigrid_service::chrono::Duration::minutes(minutes))
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("creating {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>().into_iter()
    }

    #[test]
    fn environment_overrides_the_file_and_flags_override_both() {
        let dir =
            std::env::temp_dir().join(format!("epigrid-config-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("epigrid.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\ndata_dir = \"/srv/epigrid\"\nsession_idle_minutes = 30\nextra_tags = [\"dialysis\"]\n",
        )
        .unwrap();
        let file = FileSettings::load_from(
            &path,
            env(&[
                ("EPIGRID_LISTEN", "127.0.0.1:7000"),
                ("EPIGRID_TEST_PG", "ignored"),
                ("EPIGRID_REQUIRE_LIBREOFFICE", "1"),
                ("EPIGRID_REQUIRE_BROWSER", "1"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(file.listen.as_deref(), Some("127.0.0.1:7000"), "environment beats the file");
        assert_eq!(file.session_idle_minutes, Some(30));
        let resolved = Resolved::new(file, None, Some("127.0.0.1:7001".into()), None);
        assert_eq!(resolved.listen, "127.0.0.1:7001", "a flag beats both");
        assert_eq!(resolved.data_dir, PathBuf::from("/srv/epigrid"));
        assert_eq!(resolved.database, "sqlite:///srv/epigrid/epigrid.db");
        let service = resolved.service_settings().unwrap();
        assert_eq!(service.session_idle, epigrid_service::chrono::Duration::minutes(30));
        assert_eq!(service.extra_tags[0].as_str(), "dialysis");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_storage_room_is_64_mib_unless_configured() {
        let missing = Path::new("/nonexistent/epigrid.toml");
        let room = |pairs: &[(&str, &str)]| {
            let file = FileSettings::load_from(missing, env(pairs)).unwrap();
            Resolved::new(file, None, None, None).service_settings().unwrap().intake.room_bytes
        };
        assert_eq!(room(&[]), 64 << 20);
        assert_eq!(room(&[("EPIGRID_STORAGE_ROOM_MB", "0")]), 0);
        assert_eq!(room(&[("EPIGRID_STORAGE_ROOM_MB", "256")]), 256 << 20);
    }

    #[test]
    fn a_missing_file_means_defaults_and_a_bad_key_is_named() {
        let missing = Path::new("/nonexistent/epigrid.toml");
        let file =
            FileSettings::load_from(missing, env(&[("EPIGRID_SECRET_KEY", "not-hex")])).unwrap();
        let resolved = Resolved::new(file, None, None, None);
        assert_eq!(resolved.listen, DEFAULT_LISTEN);
        let error = resolved.secret_key(false).unwrap_err();
        assert!(format!("{error:#}").contains("EPIGRID_SECRET_KEY"), "{error:#}");
        // The key never shows in Debug output.
        let file =
            FileSettings::load_from(missing, env(&[("EPIGRID_SECRET_KEY", &"ab".repeat(32))]))
                .unwrap();
        assert!(!format!("{file:?}").contains("abab"));
        // Nor does the metrics token, read from the environment.
        let file = FileSettings::load_from(
            missing,
            env(&[("EPIGRID_METRICS_TOKEN", "scrape-token-5d1e")]),
        )
        .unwrap();
        assert!(!format!("{file:?}").contains("scrape-token"));
        let token = file.metrics_token.as_ref().map(ExposeSecret::expose_secret);
        assert_eq!(token, Some("scrape-token-5d1e"));
    }

    #[test]
    fn rule_files_and_emergency_days_are_read_and_bad_ones_named() {
        let dir =
            std::env::temp_dir().join(format!("epigrid-config-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let calendar = dir.join("calendar.json");
        std::fs::write(
            &calendar,
            r#"{"weekly_hours": {"sat": ["09:00-12:00"]}, "holidays": ["2026-12-05"]}"#,
        )
        .unwrap();
        let path = dir.join("epigrid.toml");
        std::fs::write(
            &path,
            format!("calendar_file = {:?}\nemergency_days = [\"2026-12-12\"]\n", calendar),
        )
        .unwrap();
        let file = FileSettings::load_from(&path, env(&[])).unwrap();
        let tasks = Resolved::new(file, None, None, None).service_settings().unwrap().tasks;
        let day = |text: &str| {
            epigrid_service::chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
        };
        use epigrid_domain::tasks::DayKind;
        assert_eq!(tasks.calendar.day_kind(day("2026-12-05")), DayKind::Holiday);
        assert_eq!(tasks.calendar.day_kind(day("2026-12-12")), DayKind::Emergency);
        // Built-in catalogue when none is configured.
        assert!(tasks.catalogue.get("door_to_door_check").is_some());

        std::fs::write(dir.join("catalogue.json"), "{\"categories\": []}").unwrap();
        let file = FileSettings::load_from(
            &path,
            env(&[("EPIGRID_CATALOGUE_FILE", dir.join("catalogue.json").to_str().unwrap())]),
        )
        .unwrap();
        let error = Resolved::new(file, None, None, None).service_settings().unwrap_err();
        assert!(format!("{error:#}").contains("catalogue_file"), "{error:#}");

        let file = FileSettings::load_from(&path, env(&[("EPIGRID_EMERGENCY_DAYS", "2026-13-01")]))
            .unwrap();
        let error = Resolved::new(file, None, None, None).service_settings().unwrap_err();
        assert!(format!("{error:#}").contains("2026-13-01"), "{error:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_public_address_for_qr_codes_is_checked() {
        let missing = Path::new("/nonexistent/epigrid.toml");
        let load = |value: &str| {
            let file = FileSettings::load_from(missing, env(&[("EPIGRID_PUBLIC_BASE_URL", value)]))
                .unwrap();
            Resolved::new(file, None, None, None).service_settings()
        };
        let settings = load("https://epigrid.example.cn/").unwrap();
        assert_eq!(settings.public_base_url.as_deref(), Some("https://epigrid.example.cn"));
        let error = load("epigrid.example.cn").unwrap_err();
        assert!(format!("{error:#}").contains("public_base_url"), "{error:#}");
        let defaults = FileSettings::load_from(missing, env(&[])).unwrap();
        let settings = Resolved::new(defaults, None, None, None).service_settings().unwrap();
        assert_eq!(settings.public_base_url, None, "the request's host by default");
    }

    #[test]
    fn photo_limits_come_from_configuration() {
        let missing = Path::new("/nonexistent/epigrid.toml");
        let file = FileSettings::load_from(
            missing,
            env(&[("EPIGRID_PHOTO_MAX_BYTES", "1048576"), ("EPIGRID_PHOTO_MAX_PER_STEP", "2")]),
        )
        .unwrap();
        let photos = Resolved::new(file, None, None, None).service_settings().unwrap().photos;
        assert_eq!((photos.max_bytes, photos.max_per_step), (1_048_576, 2));
        let defaults = FileSettings::load_from(missing, env(&[])).unwrap();
        let photos = Resolved::new(defaults, None, None, None).service_settings().unwrap().photos;
        assert_eq!((photos.max_bytes, photos.max_per_step), (5 * 1024 * 1024, 3));
        let zero =
            FileSettings::load_from(missing, env(&[("EPIGRID_PHOTO_MAX_PER_STEP", "0")])).unwrap();
        assert!(Resolved::new(zero, None, None, None).service_settings().is_err());
    }

    #[test]
    fn unknown_settings_are_refused() {
        let dir =
            std::env::temp_dir().join(format!("epigrid-config-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("epigrid.toml");
        std::fs::write(&path, "lisen = \"typo\"\n").unwrap();
        let error = FileSettings::load_from(&path, env(&[])).unwrap_err();
        assert!(format!("{error:#}").contains("lisen"), "{error:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
