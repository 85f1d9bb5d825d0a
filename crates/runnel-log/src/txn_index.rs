//! `.txnindex`: the aborted transactions whose abort marker lies in a segment, in Kafka's
//! `TransactionIndex` format, so that read_committed fetches can tell clients which records
//! to drop.
//!
//! ```text
//! entry (34 bytes, big endian): version i16 (0) | producerId i64 | firstOffset i64 |
//!                               lastOffset i64 (the abort marker) | lastStableOffset i64
//! ```
//!
//! Entries are appended in marker order. The file is created on the first abort only (most
//! segments never have one). Aborts are rare, so the entries are also kept in memory.

use crate::offsets::Offset;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub(crate) const TXN_INDEX_SUFFIX: &str = "txnindex";
const ENTRY_LEN: usize = 34;
const ENTRY_VERSION: i16 = 0;

/// One aborted transaction: its producer, the offsets of its first record and of its abort
/// marker, and the last stable offset when it was aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: Offset,
    /// Offset of the abort marker.
    pub last_offset: Offset,
    /// The partition's last stable offset right after the abort (Kafka stores it to know
    /// when a search over later segments can stop).
    pub last_stable_offset: Offset,
}

impl AbortedTxn {
    fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0u8; ENTRY_LEN];
        out[0..2].copy_from_slice(&ENTRY_VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.value().to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.value().to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.value().to_be_bytes());
        out
    }

    fn decode(b: &[u8]) -> Option<AbortedTxn> {
        let i64_at = |at: usize| i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        if i16::from_be_bytes([b[0], b[1]]) != ENTRY_VERSION {
            return None;
        }
        Some(AbortedTxn {
            producer_id: i64_at(2),
            first_offset: Offset(i64_at(10)),
            last_offset: Offset(i64_at(18)),
            last_stable_offset: Offset(i64_at(26)),
        })
    }
}

/// The aborted-transaction index of one segment.
#[derive(Debug)]
pub(crate) struct TxnIndex {
    path: PathBuf,
    entries: Vec<AbortedTxn>,
    /// Open for appends once the file exists.
    file: Option<File>,
}

impl TxnIndex {
    /// Loads the index at `path` (missing = empty). A trailing partial or unreadable entry
    /// (a torn write) is cut off.
    pub(crate) fn open(path: &Path) -> io::Result<TxnIndex> {
        let mut index = TxnIndex {
            path: path.to_path_buf(),
            entries: Vec::new(),
            file: None,
        };
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(index),
            Err(e) => return Err(e),
        };
        for chunk in bytes.chunks_exact(ENTRY_LEN) {
            match AbortedTxn::decode(chunk) {
                Some(entry) => index.entries.push(entry),
                None => break,
            }
        }
        if index.entries.len() * ENTRY_LEN != bytes.len() {
            tracing::warn!(path = %path.display(), kept = index.entries.len(),
                "transaction index ends in a partial or unknown entry; truncating it");
            index.rewrite()?;
        }
        Ok(index)
    }

    #[cfg(test)]
    pub(crate) fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    pub(crate) fn append(&mut self, entry: AbortedTxn) -> io::Result<()> {
        debug_assert!(
            self.entries
                .last()
                .is_none_or(|last| last.last_offset < entry.last_offset),
            "abort markers are indexed in offset order"
        );
        if self.file.is_none() {
            self.file = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
        }
        let file = self.file.as_mut().expect("opened above");
        file.write_all(&entry.encode())?;
        self.entries.push(entry);
        Ok(())
    }

    /// Drops the entries whose marker is at or after `offset` (their markers are replayed
    /// again, or were cut off with a torn tail).
    pub(crate) fn truncate_from(&mut self, offset: Offset) -> io::Result<()> {
        let keep = self.entries.partition_point(|e| e.last_offset < offset);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.rewrite()?;
        }
        Ok(())
    }

    fn rewrite(&mut self) -> io::Result<()> {
        self.file = None;
        if self.entries.is_empty() {
            return match fs::remove_file(&self.path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let mut bytes = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for entry in &self.entries {
            bytes.extend_from_slice(&entry.encode());
        }
        let mut file = File::create(&self.path)?;
        file.write_all(&bytes)?;
        file.sync_all()
    }

    pub(crate) fn sync(&self) -> io::Result<()> {
        match &self.file {
            Some(file) => file.sync_data(),
            None => Ok(()),
        }
    }

    /// Kafka's `collectAbortedTxns`: entries overlapping `[fetch_offset, upper_bound)`, and
    /// whether the search is complete (an entry's last stable offset passed `upper_bound`, so
    /// later segments cannot hold a relevant abort).
    pub(crate) fn collect(
        &self,
        fetch_offset: Offset,
        upper_bound: Offset,
        out: &mut Vec<AbortedTxn>,
    ) -> bool {
        for entry in &self.entries {
            if entry.last_offset >= fetch_offset && entry.first_offset < upper_bound {
                out.push(*entry);
            }
            if entry.last_stable_offset > upper_bound {
                return true;
            }
        }
        false
    }
}

/// Writes `entries` as a fresh index file at `path` (no file when empty).
pub(crate) fn write_file(path: &Path, entries: &[AbortedTxn]) -> io::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut file = File::create(path)?;
    for entry in entries {
        file.write_all(&entry.encode())?;
    }
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: Offset(first),
            last_offset: Offset(last),
            last_stable_offset: Offset(lso),
        }
    }

    #[test]
    fn entries_survive_reopen_truncate_and_torn_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.txnindex");
        let mut index = TxnIndex::open(&path).unwrap();
        assert!(!path.exists(), "created lazily");
        index.append(txn(1, 0, 5, 6)).unwrap();
        index.append(txn(2, 3, 9, 10)).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 68);
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(&[0, 0, 1]);
        fs::write(&path, &bytes).unwrap();
        let mut index = TxnIndex::open(&path).unwrap();
        assert_eq!(index.entries(), &[txn(1, 0, 5, 6), txn(2, 3, 9, 10)]);
        index.truncate_from(Offset(9)).unwrap();
        assert_eq!(TxnIndex::open(&path).unwrap().entries(), &[txn(1, 0, 5, 6)]);
        let mut out = Vec::new();
        assert!(!index.collect(Offset(5), Offset(6), &mut out));
        assert_eq!(out, vec![txn(1, 0, 5, 6)]);
        out.clear();
        assert!(index.collect(Offset(6), Offset(5), &mut out), "lso 6 > 5");
        assert!(out.is_empty());
    }
}
