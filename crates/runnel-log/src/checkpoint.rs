//! Small per-partition checkpoint files holding one offset: `log-start-offset-checkpoint`
//! (DeleteRecords and retention survive restarts) and `cleaner-offset-checkpoint` (where the
//! cleaner stopped, so the dirty ratio is right after a restart).
//!
//! Kafka keeps one file per data directory listing every partition; Runnel keeps one file per
//! partition directory (deleting a partition then needs no rewrite of a shared file). The
//! format follows Kafka's: a version line `0`, an entry count `1`, then the offset. Writes go
//! to a temporary file that is fsynced and renamed over the old one, so a crash leaves either
//! the old or the new value.

use crate::offsets::Offset;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

pub(crate) const LOG_START_FILE: &str = "log-start-offset-checkpoint";
pub(crate) const CLEANER_FILE: &str = "cleaner-offset-checkpoint";

/// Reads a checkpoint; None when the file is missing or unreadable (a warning is logged: the
/// caller falls back to a safe default, as Kafka does with a corrupt checkpoint).
pub(crate) fn read(dir: &Path, name: &str) -> Option<Offset> {
    let path = dir.join(name);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read checkpoint; ignoring it");
            return None;
        }
    };
    let mut lines = text.lines().map(str::trim);
    let parsed = match (lines.next(), lines.next(), lines.next()) {
        (Some("0"), Some("1"), Some(offset)) => offset.parse().ok().map(Offset),
        _ => None,
    };
    if parsed.is_none() {
        tracing::warn!(path = %path.display(), "malformed checkpoint; ignoring it");
    }
    parsed
}

/// Atomically replaces the checkpoint with `offset`.
pub(crate) fn write(dir: &Path, name: &str, offset: Offset) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = File::create(&tmp)?;
    write!(file, "0\n1\n{}\n", offset.value())?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// Fsyncs a directory so renames and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_and_malformed() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path(), LOG_START_FILE), None);
        write(dir.path(), LOG_START_FILE, Offset(42)).unwrap();
        assert_eq!(read(dir.path(), LOG_START_FILE), Some(Offset(42)));
        write(dir.path(), LOG_START_FILE, Offset(43)).unwrap();
        assert_eq!(read(dir.path(), LOG_START_FILE), Some(Offset(43)));
        fs::write(dir.path().join(CLEANER_FILE), "garbage").unwrap();
        assert_eq!(read(dir.path(), CLEANER_FILE), None);
    }
}
