//! What both stores' backups share (`epigrid backup`, DESIGN.md "Backups"):
//! a copy is written beside its target under a temporary name, and only a
//! finished, checked and synced copy takes the target's name. A backup that
//! is interrupted (a full disk, a killed process) never leaves a file that
//! looks whole, and an existing file is never overwritten.

use std::fs::File;
use std::io::{Error, ErrorKind};
use std::path::{Path, PathBuf};

use crate::{StoreError, StoreResult};

/// A finished backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSummary {
    /// The copy's size on disk.
    pub bytes: u64,
}

/// Where a backup to `target` is written until it is finished:
/// `NAME.partial` in the same directory (so that the final step is a link
/// within one file system).
pub fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    target.with_file_name(name)
}

/// The whole of a backup to `target`: `write` makes the copy at the
/// temporary name (left by an interrupted backup to the same target, that
/// name is ours to replace), then `publish` gives it the target's name. On
/// any failure the temporary file is removed.
pub fn write_then_publish(
    target: &Path,
    write: impl FnOnce(&Path) -> StoreResult<()>,
) -> StoreResult<BackupSummary> {
    let partial = partial_path(target);
    let _ = std::fs::remove_file(&partial);
    let published = write(&partial).and_then(|()| {
        publish(&partial, target)
            .map_err(|e| StoreError::Other(format!("{}: {e}", target.display())))
    });
    if published.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    published
}

/// Refuses a target that exists, before any work is done; `publish`
/// checks again at the end, atomically.
pub fn check_target_free(target: &Path) -> std::io::Result<()> {
    if target.exists() {
        return Err(Error::new(ErrorKind::AlreadyExists, "the target exists"));
    }
    Ok(())
}

/// Makes the finished copy at `partial` durable and gives it `target`'s
/// name: its data synced, then a hard link (which fails if `target` exists
/// meanwhile, unlike a rename), the temporary name removed, and the
/// directory synced so that the new name survives a power cut.
pub fn publish(partial: &Path, target: &Path) -> std::io::Result<BackupSummary> {
    let file = File::open(partial)?;
    file.sync_all()?;
    let bytes = file.metadata()?.len();
    drop(file);
    std::fs::hard_link(partial, target)?;
    std::fs::remove_file(partial)?;
    let directory = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(directory)?.sync_all()?;
    Ok(BackupSummary { bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_copy_takes_the_name_and_never_overwrites() {
        let dir = std::env::temp_dir().join(format!("epigrid-backup-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("copy.db");
        let partial = partial_path(&target);
        assert_eq!(partial, dir.join("copy.db.partial"));

        std::fs::write(&partial, b"first").unwrap();
        assert_eq!(publish(&partial, &target).unwrap(), BackupSummary { bytes: 5 });
        assert!(!partial.exists(), "the temporary name is gone");
        assert_eq!(std::fs::read(&target).unwrap(), b"first");

        // A second copy to the same name is refused, up front and at the end.
        assert_eq!(check_target_free(&target).unwrap_err().kind(), ErrorKind::AlreadyExists);
        std::fs::write(&partial, b"second").unwrap();
        assert_eq!(publish(&partial, &target).unwrap_err().kind(), ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&target).unwrap(), b"first", "the first copy is untouched");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
