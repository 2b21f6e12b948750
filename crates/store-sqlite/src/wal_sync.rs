//! Group sync of the write-ahead log, off the intake writer's path
//! (issue #6).
//!
//! The intake connection commits with `synchronous=NORMAL`: SQLite writes
//! the batch's frames to the WAL but does not wait for the disk. Before a
//! batch is acknowledged, `WalSync::through` makes sure an `fdatasync` of
//! the WAL that *started after the batch's commit* has finished. Durability
//! is the same as `synchronous=FULL` (an acknowledged batch is on disk);
//! what changes is that the writer commits the next batch while the disk
//! works on the last, and that one sync covers every commit before it.
//! With FULL, the writer waited out each sync itself: about 400 µs of a
//! 1 ms cycle on this machine (docs/PERFORMANCE.md).
//!
//! Why this is safe with NORMAL: in WAL mode, NORMAL still syncs the WAL
//! before every checkpoint and the database after it, so the file is never
//! corrupt; the only thing NORMAL gives up is the durability of the latest
//! commits, which the sync here restores before anyone is told.
//!
//! The WAL is opened by name for each sync, so the sync always reaches the
//! file SQLite is writing, whatever became of an earlier one.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Commits counted, and synced, for the intake's connection.
#[derive(Debug)]
pub(crate) struct WalSync {
    wal: PathBuf,
    /// Commits finished so far (each batch's ticket is its number).
    committed: AtomicU64,
    /// Every commit up to this one is on disk.
    synced: AtomicU64,
    /// One sync at a time; those waiting behind it are often covered by
    /// the next one without a sync of their own.
    turn: tokio::sync::Mutex<()>,
    sync: fn(&Path) -> io::Result<()>,
}

fn sync_file(path: &Path) -> io::Result<()> {
    std::fs::File::open(path)?.sync_data()
}

impl WalSync {
    pub(crate) fn new(database: &Path) -> Self {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        Self::with_sync(PathBuf::from(wal), sync_file)
    }

    fn with_sync(wal: PathBuf, sync: fn(&Path) -> io::Result<()>) -> Self {
        Self {
            wal,
            committed: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            turn: tokio::sync::Mutex::new(()),
            sync,
        }
    }

    /// Counts a commit that has just finished: its ticket.
    pub(crate) fn committed(&self) -> u64 {
        self.committed.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Returns once commit `ticket` is on disk.
    pub(crate) async fn through(&self, ticket: u64) -> io::Result<()> {
        if self.synced.load(Ordering::Acquire) >= ticket {
            return Ok(());
        }
        let _turn = self.turn.lock().await;
        if self.synced.load(Ordering::Acquire) >= ticket {
            // The sync before ours started after our commit.
            return Ok(());
        }
        // Every commit counted by now has written its frames, so the sync
        // about to start covers them all.
        let upto = self.committed.load(Ordering::Acquire);
        let (wal, sync) = (self.wal.clone(), self.sync);
        tokio::task::spawn_blocking(move || sync(&wal))
            .await
            .map_err(|e| io::Error::other(e.to_string()))??;
        self.synced.fetch_max(upto, Ordering::AcqRel);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    static SYNCS: AtomicUsize = AtomicUsize::new(0);

    fn counting_sync(_: &Path) -> io::Result<()> {
        SYNCS.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(5));
        Ok(())
    }

    fn failing_sync(_: &Path) -> io::Result<()> {
        Err(io::Error::other("disk gone"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiters_behind_a_sync_share_the_next_and_none_returns_before_its_own_commit_is_synced()
    {
        let wal = Arc::new(WalSync::with_sync(PathBuf::from("unused"), counting_sync));
        let tickets: Vec<u64> = (0..20).map(|_| wal.committed()).collect();
        let waiting: Vec<_> = tickets
            .iter()
            .map(|&t| {
                let wal = wal.clone();
                tokio::spawn(async move { wal.through(t).await })
            })
            .collect();
        for w in waiting {
            w.await.unwrap().unwrap();
        }
        assert_eq!(wal.synced.load(Ordering::SeqCst), 20);
        let syncs = SYNCS.load(Ordering::SeqCst);
        assert!(
            (1..=2).contains(&syncs),
            "20 commits before any sync need one or two, not {syncs}"
        );
        // A commit after the last sync is not covered by it.
        let later = wal.committed();
        assert!(wal.synced.load(Ordering::SeqCst) < later);
        wal.through(later).await.unwrap();
        assert_eq!(SYNCS.load(Ordering::SeqCst), syncs + 1);
        // Already synced: no sync at all.
        wal.through(later).await.unwrap();
        assert_eq!(SYNCS.load(Ordering::SeqCst), syncs + 1);
    }

    #[tokio::test]
    async fn a_failed_sync_is_an_error_and_leaves_the_commit_unsynced() {
        let wal = WalSync::with_sync(PathBuf::from("unused"), failing_sync);
        let ticket = wal.committed();
        assert!(wal.through(ticket).await.is_err());
        assert_eq!(wal.synced.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_wal_is_the_database_file_name_with_wal_appended() {
        assert_eq!(
            WalSync::new(Path::new("/data/epigrid.db")).wal,
            Path::new("/data/epigrid.db-wal")
        );
    }
}
