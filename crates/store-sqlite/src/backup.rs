//! An online copy of the SQLite database (`epigrid backup`), taken while
//! the server goes on serving.
//!
//! SQLite's backup API copies the database page by page through a
//! connection of its own. That connection holds one read transaction from
//! the first page to the last: in WAL mode the writers go on meanwhile, and
//! the copy is the database as it was when the transaction began. (Stepping
//! without it, the backup would start over after every commit of another
//! connection, and under a steady intake never finish.) The copy is
//! checked (`PRAGMA quick_check`) before it takes the target's name
//! (`epigrid_store::backup::publish`).

use std::path::Path;
use std::time::{Duration, Instant};

use epigrid_store::backup::{BackupSummary, write_then_publish};
use epigrid_store::{StoreError, StoreResult};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::ACQUIRE_TIMEOUT;

/// Pages copied per step, between two reports of progress: 4 MiB of 4 KiB
/// pages.
const PAGES_PER_STEP: i32 = 1024;

/// Copies the database at `source` to `target`, which must not exist.
/// `progress(copied, total)` is called after each step, in pages.
pub fn backup_database(
    source: &Path,
    target: &Path,
    mut progress: impl FnMut(u64, u64),
) -> StoreResult<BackupSummary> {
    write_then_publish(target, |partial| copy(source, partial, &mut progress))
}

fn copy(source: &Path, partial: &Path, progress: &mut impl FnMut(u64, u64)) -> StoreResult<()> {
    let from = Connection::open_with_flags(
        source,
        // Read-write (nothing is written): a read-only connection cannot
        // open a WAL database whose -shm file is gone (no server running).
        // Without CREATE, a missing file is an error.
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| error(source, e))?;
    from.busy_timeout(ACQUIRE_TIMEOUT).map_err(|e| error(source, e))?;
    // The read transaction every step shares (see the module).
    from.execute_batch("BEGIN").map_err(|e| error(source, e))?;
    let _: i64 = from
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(|e| error(source, e))?;
    let mut to = Connection::open(partial).map_err(|e| error(partial, e))?;
    {
        let backup = Backup::new(&from, &mut to).map_err(|e| error(partial, e))?;
        let started = Instant::now();
        loop {
            let step = backup.step(PAGES_PER_STEP).map_err(|e| error(source, e))?;
            let at = backup.progress();
            let total = u64::try_from(at.pagecount).unwrap_or(0);
            let remaining = u64::try_from(at.remaining).unwrap_or(0);
            progress(total.saturating_sub(remaining), total);
            match step {
                StepResult::Done => break,
                StepResult::More => {}
                // Only another process's exclusive lock can do this (a
                // reader never waits in WAL mode): wait as any query would.
                _ if started.elapsed() < ACQUIRE_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    return Err(StoreError::Unavailable(format!(
                        "{}: the database stayed locked",
                        source.display()
                    )));
                }
            }
        }
    }
    from.execute_batch("COMMIT").map_err(|e| error(source, e))?;
    let verdict: String =
        to.query_row("PRAGMA quick_check", [], |row| row.get(0)).map_err(|e| error(partial, e))?;
    if verdict != "ok" {
        return Err(StoreError::Other(format!(
            "{}: the copy fails its check: {verdict}",
            partial.display()
        )));
    }
    to.close().map_err(|(_, e)| error(partial, e))
}

fn error(path: &Path, error: rusqlite::Error) -> StoreError {
    StoreError::Other(format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use epigrid_store::backup::partial_path;

    fn temp_dir() -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("epigrid-sqlite-backup-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A copy taken while another connection keeps committing is whole and
    /// consistent: the rows of a snapshot, every one intact.
    #[test]
    fn a_copy_taken_under_steady_writes_finishes_and_is_consistent() {
        let dir = temp_dir();
        let source = dir.join("live.db");
        let db = Connection::open(&source).unwrap();
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE t (n INTEGER PRIMARY KEY, pad TEXT NOT NULL, twice INTEGER NOT NULL);",
        )
        .unwrap();
        let insert = |db: &Connection, from: i64, count: i64| {
            db.execute_batch("BEGIN").unwrap();
            for n in from..from + count {
                db.execute(
                    "INSERT INTO t (n, pad, twice) VALUES (?1, ?2, ?3)",
                    rusqlite::params![n, "x".repeat(200), 2 * n],
                )
                .unwrap();
            }
            db.execute_batch("COMMIT").unwrap();
        };
        insert(&db, 0, 40_000); // about 10 MB: several steps
        // The writer counts its commits; each step of the backup waits for
        // a new one, so that every step runs after another connection's
        // commit (which restarts a backup that holds no read transaction).
        use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
        let writing = std::sync::Arc::new(AtomicBool::new(true));
        let commits = std::sync::Arc::new(AtomicI64::new(0));
        let writer = {
            let (source, writing, commits) = (source.clone(), writing.clone(), commits.clone());
            std::thread::spawn(move || {
                let db = Connection::open(&source).unwrap();
                let mut next = 40_000;
                while writing.load(Ordering::Relaxed) {
                    insert(&db, next, 50);
                    next += 50;
                    commits.fetch_add(1, Ordering::Relaxed);
                }
                next
            })
        };
        let target = dir.join("copy.db");
        let mut steps = Vec::new();
        let summary = backup_database(&source, &target, |done, total| {
            let restarted = steps.last().is_some_and(|&(before, _)| before >= done);
            assert!(!restarted, "a step started over: {steps:?} then {done}");
            steps.push((done, total));
            let seen = commits.load(Ordering::Relaxed);
            while commits.load(Ordering::Relaxed) == seen {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .expect("the backup finishes under writes");
        writing.store(false, Ordering::Relaxed);
        let written = writer.join().unwrap();
        assert!(steps.len() > 2, "progress after each step: {steps:?}");
        assert_eq!(steps.last().map(|(done, total)| done == total), Some(true));
        assert_eq!(summary.bytes, std::fs::metadata(&target).unwrap().len());
        assert!(!partial_path(&target).exists());

        let copy = Connection::open(&target).unwrap();
        let (count, max, bad): (i64, i64, i64) = copy
            .query_row("SELECT count(*), max(n), sum(twice != 2 * n) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(count, max + 1, "no gap: one snapshot");
        assert!(
            count >= 40_000 && count < written,
            "a snapshot, not the end: {count} of {written}"
        );
        assert_eq!(bad, 0);
        drop(copy);

        // The same target again: refused, and the first copy is untouched.
        let again = backup_database(&source, &target, |_, _| {});
        assert!(again.is_err());
        assert!(!partial_path(&target).exists(), "nothing half-written is left");
        let copy = Connection::open(&target).unwrap();
        let after: i64 = copy.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(after, count);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_source_is_an_error_and_leaves_nothing() {
        let dir = temp_dir();
        let target = dir.join("copy.db");
        let error = backup_database(&dir.join("nowhere.db"), &target, |_, _| {}).unwrap_err();
        assert!(error.to_string().contains("nowhere.db"), "{error}");
        assert!(!target.exists() && !partial_path(&target).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
