//! Small durable-file helpers for the broker's own metadata files.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

/// Writes `contents` to `path` so that a crash leaves either the old or the new file, never a
/// torn one: write a temporary file, fsync it, rename it over, fsync the directory.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let temp = path.with_extension("tmp");
    let mut file = File::create(&temp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&temp, path)?;
    sync_dir(dir)
}

/// Fsyncs a directory so that renames and deletions in it are durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
