//! The sparse offset index (`.index`) and the file format shared with the time index.
//!
//! Files hold fixed-size big-endian entries and are sized exactly to them (Kafka preallocates
//! and mmaps; we keep a `Vec` copy of the entries for lookups and write each new entry with a
//! positional write, so a crash can leave at most one torn trailing entry, which the sanity
//! check catches and recovery then rebuilds).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// One fixed-size entry of an index file.
pub(crate) trait IndexEntry: Copy + std::fmt::Debug {
    const LEN: usize;
    fn encode(&self, out: &mut [u8]);
    fn decode(buf: &[u8]) -> Self;
}

/// An index file plus its in-memory entries. Entries are only ever appended in order, or the
/// whole file is replaced after a rebuild.
#[derive(Debug)]
pub(crate) struct EntryFile<E: IndexEntry> {
    file: File,
    entries: Vec<E>,
    /// Bytes past the last whole entry found on load (a torn write); makes the file invalid.
    torn_bytes: usize,
}

impl<E: IndexEntry> EntryFile<E> {
    /// Opens or creates the file and loads every whole entry.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "index file too large"))?;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, 0)?;
        let entries = buf.chunks_exact(E::LEN).map(E::decode).collect();
        Ok(EntryFile {
            file,
            entries,
            torn_bytes: len % E::LEN,
        })
    }

    pub(crate) fn entries(&self) -> &[E] {
        &self.entries
    }

    pub(crate) fn torn_bytes(&self) -> usize {
        self.torn_bytes
    }

    pub(crate) fn last(&self) -> Option<E> {
        self.entries.last().copied()
    }

    /// Appends one entry to the file and the in-memory copy.
    pub(crate) fn push(&mut self, entry: E) -> io::Result<()> {
        let mut buf = [0u8; 16];
        let buf = &mut buf[..E::LEN];
        entry.encode(buf);
        self.file
            .write_all_at(buf, (self.entries.len() * E::LEN) as u64)?;
        self.entries.push(entry);
        Ok(())
    }

    /// Replaces the whole file with `entries` (after a rebuild) and fsyncs it, so that a
    /// rebuilt index is never half on disk.
    pub(crate) fn replace(&mut self, entries: Vec<E>) -> io::Result<()> {
        let mut buf = vec![0u8; entries.len() * E::LEN];
        for (chunk, entry) in buf.chunks_exact_mut(E::LEN).zip(&entries) {
            entry.encode(chunk);
        }
        self.file.set_len(0)?;
        self.file.write_all_at(&buf, 0)?;
        self.file.sync_all()?;
        self.entries = entries;
        self.torn_bytes = 0;
        Ok(())
    }

    pub(crate) fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    /// Size the file would have after one more entry.
    pub(crate) fn size_with_one_more(&self) -> u64 {
        ((self.entries.len() + 1) * E::LEN) as u64
    }
}

/// `.index` entry: offset relative to the segment base (the batch's LAST offset, as Kafka
/// writes it) and the byte position of that batch in the `.log` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub(crate) relative_offset: u32,
    pub(crate) position: u32,
}

impl IndexEntry for OffsetEntry {
    const LEN: usize = 8;
    fn encode(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        out[4..8].copy_from_slice(&self.position.to_be_bytes());
    }
    fn decode(buf: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32::from_be_bytes(buf[..4].try_into().expect("4 bytes")),
            position: u32::from_be_bytes(buf[4..8].try_into().expect("4 bytes")),
        }
    }
}

pub(crate) type OffsetIndex = EntryFile<OffsetEntry>;

impl OffsetIndex {
    /// Byte position to start scanning from to find `relative_offset`: the position of the
    /// last indexed batch whose last offset is <= the target (0 when there is none). The
    /// batch containing the target is at or after that position.
    pub(crate) fn lookup(&self, relative_offset: u32) -> u32 {
        let idx = self
            .entries
            .partition_point(|e| e.relative_offset <= relative_offset);
        idx.checked_sub(1).map_or(0, |i| self.entries[i].position)
    }

    /// Checks the loaded entries against the `.log` file they describe: whole entries,
    /// strictly increasing offsets and positions, all positions inside the log, and an entry
    /// for the first batch (every segment indexes its first batch).
    pub(crate) fn sanity_check(&self, log_size: u64) -> Result<(), String> {
        if self.torn_bytes != 0 {
            return Err(format!(
                "{} trailing bytes after the last whole entry",
                self.torn_bytes
            ));
        }
        match self.entries.first() {
            None if log_size > 0 => return Err("no entries for a non-empty log".into()),
            Some(first) if first.position != 0 => {
                return Err(format!(
                    "first entry points at position {}, not 0",
                    first.position
                ))
            }
            _ => {}
        }
        for pair in self.entries.windows(2) {
            if pair[1].relative_offset <= pair[0].relative_offset
                || pair[1].position <= pair[0].position
            {
                return Err(format!(
                    "entries out of order: {:?} then {:?}",
                    pair[0], pair[1]
                ));
            }
        }
        if let Some(last) = self.entries.last() {
            if u64::from(last.position) >= log_size {
                return Err(format!(
                    "entry position {} beyond log size {log_size}",
                    last.position
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(relative_offset: u32, position: u32) -> OffsetEntry {
        OffsetEntry {
            relative_offset,
            position,
        }
    }

    #[test]
    fn entries_survive_reopen_and_lookup_finds_floor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut index = OffsetIndex::open(&path).unwrap();
        index.push(entry(4, 0)).unwrap();
        index.push(entry(9, 500)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16);
        let index = OffsetIndex::open(&path).unwrap();
        assert_eq!(index.entries(), &[entry(4, 0), entry(9, 500)]);
        assert_eq!(index.lookup(3), 0);
        assert_eq!(index.lookup(9), 500);
        assert_eq!(index.lookup(100), 500);
        assert!(index.sanity_check(600).is_ok());
        assert!(index.sanity_check(500).is_err());
    }

    #[test]
    fn torn_and_unordered_files_fail_the_sanity_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut index = OffsetIndex::open(&path).unwrap();
        index.push(entry(4, 0)).unwrap();
        index.push(entry(2, 100)).unwrap();
        assert!(index.sanity_check(1000).is_err());
        index.replace(vec![entry(1, 0)]).unwrap();
        assert!(index.sanity_check(1000).is_ok());
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &[1, 2, 3]))
            .unwrap();
        let index = OffsetIndex::open(&path).unwrap();
        assert_eq!(index.torn_bytes(), 3);
        assert!(index.sanity_check(1000).is_err());
        assert!(OffsetIndex::open(&dir.path().join("empty"))
            .unwrap()
            .sanity_check(10)
            .is_err());
    }
}
