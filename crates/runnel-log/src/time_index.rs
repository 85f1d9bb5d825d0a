//! The time index (`.timeindex`): entries of (max timestamp so far, relative offset of the
//! batch that holds it). A new entry is written only when the segment's max timestamp grew,
//! so timestamps in the file are strictly increasing.

use crate::index::{EntryFile, IndexEntry};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub(crate) timestamp: i64,
    /// Last offset of the batch with this max timestamp, relative to the segment base.
    pub(crate) relative_offset: u32,
}

impl IndexEntry for TimeEntry {
    const LEN: usize = 12;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn decode(buf: &[u8]) -> Self {
        TimeEntry {
            timestamp: i64::from_be_bytes(buf[..8].try_into().expect("8 bytes")),
            relative_offset: u32::from_be_bytes(buf[8..12].try_into().expect("4 bytes")),
        }
    }
}

pub(crate) type TimeIndex = EntryFile<TimeEntry>;

impl TimeIndex {
    /// The last entry whose timestamp is < `timestamp`: every record up to and including
    /// its batch is older than `timestamp`, so a search may start after it.
    pub(crate) fn last_before(&self, timestamp: i64) -> Option<TimeEntry> {
        let idx = self.entries().partition_point(|e| e.timestamp < timestamp);
        idx.checked_sub(1).map(|i| self.entries()[i])
    }

    /// Checks whole entries, strictly increasing timestamps and non-decreasing offsets no
    /// larger than `max_relative_offset` (the last offset the offset index knows about).
    pub(crate) fn sanity_check(&self, max_relative_offset: Option<u32>) -> Result<(), String> {
        if self.torn_bytes() != 0 {
            return Err(format!(
                "{} trailing bytes after the last whole entry",
                self.torn_bytes()
            ));
        }
        for pair in self.entries().windows(2) {
            if pair[1].timestamp <= pair[0].timestamp
                || pair[1].relative_offset < pair[0].relative_offset
            {
                return Err(format!(
                    "entries out of order: {:?} then {:?}",
                    pair[0], pair[1]
                ));
            }
        }
        match (self.last(), max_relative_offset) {
            (Some(last), Some(max)) if last.relative_offset > max => Err(format!(
                "entry offset {} beyond the last indexed offset {max}",
                last.relative_offset
            )),
            (Some(_), None) => Err("entries for a segment without batches".into()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(timestamp: i64, relative_offset: u32) -> TimeEntry {
        TimeEntry {
            timestamp,
            relative_offset,
        }
    }

    #[test]
    fn last_before_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.timeindex");
        let mut index = TimeIndex::open(&path).unwrap();
        index.push(entry(100, 0)).unwrap();
        index.push(entry(200, 5)).unwrap();
        let index = TimeIndex::open(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 24);
        assert_eq!(index.last_before(100), None);
        assert_eq!(index.last_before(101), Some(entry(100, 0)));
        assert_eq!(index.last_before(1000), Some(entry(200, 5)));
        assert!(index.sanity_check(Some(5)).is_ok());
        assert!(index.sanity_check(Some(4)).is_err());
    }

    #[test]
    fn non_increasing_timestamps_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = TimeIndex::open(&dir.path().join("t")).unwrap();
        index.push(entry(100, 0)).unwrap();
        index.push(entry(100, 1)).unwrap();
        assert!(index.sanity_check(Some(9)).is_err());
    }
}
