//! A copy of the PostgreSQL database (`epigrid backup`): `pg_dump` in its
//! custom format, the one `pg_restore` reads selectively and in parallel.
//!
//! The dump is one transaction of PostgreSQL's (a consistent snapshot while
//! the server goes on serving). The connection comes from epigrid's own
//! database URL: the password goes to `pg_dump` through its environment,
//! never on its command line (where `ps` shows it), and a URL that puts
//! epigrid in a schema of its own (`options[search_path]=…`) dumps that
//! schema only. The archive is read back (`pg_restore --list`) before it
//! takes the target's name (`epigrid_store::backup::publish`).

use std::path::Path;
use std::process::{Command, Output};
use std::str::FromStr;

use epigrid_store::backup::{BackupSummary, write_then_publish};
use epigrid_store::{StoreError, StoreResult};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// Dumps the database `url` names to `target`, which must not exist.
pub fn dump_database(url: &str, target: &Path) -> StoreResult<BackupSummary> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Other(format!("the database URL: {e}")))?;
    write_then_publish(target, |partial| {
        let mut dump = Command::new("pg_dump");
        dump.arg("--format=custom").arg("--no-password").arg("--file").arg(partial);
        connect_to(&mut dump, &options, url);
        run(&mut dump, "pg_dump")?;
        // The archive reads back whole: its table of contents is at its end.
        run(Command::new("pg_restore").arg("--list").arg(partial), "pg_restore").map(drop)
    })
}

/// The connection's settings as `pg_dump`'s arguments and environment.
fn connect_to(command: &mut Command, options: &PgConnectOptions, url: &str) {
    let host = match options.get_socket() {
        Some(directory) => directory.display().to_string(),
        None => options.get_host().to_owned(),
    };
    command
        .arg("--host")
        .arg(host)
        .arg("--port")
        .arg(options.get_port().to_string())
        .arg("--username")
        .arg(options.get_username());
    if let Some(database) = options.get_database() {
        command.arg("--dbname").arg(database);
    }
    if let Some(schema) = options.get_options().and_then(search_path_schema) {
        // `--schema` takes a pattern: quoted, the name matches only itself.
        command.arg("--schema").arg(format!("\"{}\"", schema.replace('"', "\"\"")));
    }
    if let Some(password) = password(url) {
        command.env("PGPASSWORD", password);
    }
    let ssl_mode = match options.get_ssl_mode() {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    };
    command.env("PGSSLMODE", ssl_mode);
}

/// The first schema of a `-c search_path=…` in the connection's options,
/// as PostgreSQL reads it: folded to lower case unless double-quoted.
fn search_path_schema(options: &str) -> Option<String> {
    let value = options.split("search_path=").nth(1)?;
    let first = value.split([' ', ',']).next()?;
    let schema = match first.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
        Some(quoted) => quoted.to_owned(),
        None => first.to_lowercase(),
    };
    (!schema.is_empty()).then_some(schema)
}

/// The password in `postgres://user:password@host/…`, percent-decoded.
fn password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let encoded = userinfo.split_once(':')?.1;
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(decoded).ok()
}

/// Runs a PostgreSQL client tool, its error output in the error.
fn run(command: &mut Command, tool: &str) -> StoreResult<Output> {
    let output = command.output().map_err(|e| {
        StoreError::Other(format!(
            "{tool}: {e} (install PostgreSQL's client tools, of the server's version or newer)"
        ))
    })?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        return Err(StoreError::Other(format!("{tool}: {}", said.trim())));
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_and_the_schema_come_from_the_url() {
        assert_eq!(
            password("postgres://epi:s%40cret%2F1@db:5432/epigrid").as_deref(),
            Some("s@cret/1")
        );
        assert_eq!(password("postgres://epi@db/epigrid"), None);
        assert_eq!(password("postgres://db/epigrid?user=epi"), None);
        assert_eq!(search_path_schema("-c search_path=t_cli_1").as_deref(), Some("t_cli_1"));
        assert_eq!(
            search_path_schema("-c statement_timeout=5s -c search_path=office,public").as_deref(),
            Some("office")
        );
        assert_eq!(search_path_schema("-c search_path=Office").as_deref(), Some("office"));
        assert_eq!(search_path_schema("-c search_path=\"Office\"").as_deref(), Some("Office"));
        assert_eq!(search_path_schema("-c statement_timeout=5s"), None);
    }
}
