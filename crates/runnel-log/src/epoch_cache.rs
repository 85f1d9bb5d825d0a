//! The leader epoch cache: for each leader epoch, the first offset appended in it. Followers
//! ask for the end offset of their last epoch (OffsetForLeaderEpoch) to find where their log
//! diverges from the leader's.
//!
//! Persisted as `leader-epoch-checkpoint` in Kafka's text format:
//! ```text
//! 0            <- format version
//! 2            <- number of entries
//! 0 0          <- epoch start_offset
//! 3 120
//! ```
//! Written to a temporary file, fsynced and renamed, so a crash leaves the old or the new
//! checkpoint, never half of one.

use crate::offsets::{LeaderEpoch, Offset};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub(crate) const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

#[derive(Debug)]
pub(crate) struct EpochCache {
    path: PathBuf,
    /// Strictly increasing in both epoch and start offset.
    entries: Vec<(LeaderEpoch, Offset)>,
}

impl EpochCache {
    /// Loads the checkpoint in `dir`, or starts empty when there is none.
    pub(crate) fn load(dir: &Path) -> Result<EpochCache, String> {
        let path = dir.join(CHECKPOINT_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e.to_string()),
        };
        let entries = if text.trim().is_empty() {
            Vec::new()
        } else {
            parse(&text)?
        };
        Ok(EpochCache { path, entries })
    }

    pub(crate) fn latest(&self) -> Option<LeaderEpoch> {
        self.entries.last().map(|(epoch, _)| *epoch)
    }

    /// Records that `epoch` starts at `start`, if it is newer than the latest known epoch.
    pub(crate) fn assign(&mut self, epoch: LeaderEpoch, start: Offset) -> io::Result<()> {
        if self.latest().is_some_and(|latest| latest >= epoch) {
            return Ok(());
        }
        debug_assert!(self.entries.last().is_none_or(|(_, s)| *s <= start));
        // A newer epoch that starts where the previous one did replaces it: the older epoch
        // never got any records.
        if self.entries.last().is_some_and(|(_, s)| *s == start) {
            self.entries.pop();
        }
        self.entries.push((epoch, start));
        self.persist()
    }

    /// Drops epochs that start at or after `end` (the log was truncated below them).
    pub(crate) fn truncate_from_end(&mut self, end: Offset) -> io::Result<bool> {
        let before = self.entries.len();
        self.entries.retain(|(_, start)| *start < end);
        if self.entries.len() == before {
            return Ok(false);
        }
        self.persist()?;
        Ok(true)
    }

    /// Forgets what lies below a new log start (Kafka's `truncateFromStart`): epochs that
    /// ended before `start` go, and the epoch that covers `start` now begins there. Otherwise
    /// a follower asking about a deleted epoch would be sent to offsets the log no longer has.
    pub(crate) fn truncate_from_start(&mut self, start: Offset) -> io::Result<bool> {
        let covering = self.entries.iter().rposition(|(_, s)| *s <= start);
        let Some(covering) = covering else {
            return Ok(false);
        };
        if covering == 0 && self.entries[0].1 == start {
            return Ok(false);
        }
        self.entries.drain(..covering);
        self.entries[0].1 = start;
        self.persist()?;
        Ok(true)
    }

    /// Kafka's `endOffsetFor`: for the latest epoch, the log end; otherwise the start offset
    /// of the next larger epoch, paired with the largest known epoch <= the requested one.
    /// None when the requested epoch is newer than every known epoch, or below the earliest.
    pub(crate) fn end_offset_for(
        &self,
        epoch: LeaderEpoch,
        log_end: Offset,
    ) -> Option<(LeaderEpoch, Offset)> {
        if self.latest() == Some(epoch) {
            return Some((epoch, log_end));
        }
        let higher = self.entries.iter().find(|(e, _)| *e > epoch)?;
        let floor = self.entries.iter().rev().find(|(e, _)| *e <= epoch)?;
        Some((floor.0, higher.1))
    }

    fn persist(&self) -> io::Result<()> {
        let mut text = format!("0\n{}\n", self.entries.len());
        for (epoch, start) in &self.entries {
            text.push_str(&format!("{epoch} {start}\n"));
        }
        let tmp = self.path.with_extension("tmp");
        let mut file = fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            // Makes the rename itself durable.
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

fn parse(text: &str) -> Result<Vec<(LeaderEpoch, Offset)>, String> {
    let mut lines = text.lines();
    let version = lines.next().unwrap_or_default().trim();
    if version != "0" {
        return Err(format!("unsupported version line {version:?}, expected 0"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("missing or invalid entry count line")?;
    let mut entries: Vec<(LeaderEpoch, Offset)> = Vec::with_capacity(count.min(1024));
    for line in lines.by_ref().take(count) {
        let mut parts = line.split_whitespace();
        let epoch = parts.next().and_then(|p| p.parse().ok());
        let start = parts.next().and_then(|p| p.parse().ok());
        let (Some(epoch), Some(start)) = (epoch, start) else {
            return Err(format!("malformed entry line {line:?}"));
        };
        let entry = (LeaderEpoch(epoch), Offset(start));
        if entries
            .last()
            .is_some_and(|last| last.0 >= entry.0 || last.1 > entry.1)
        {
            return Err(format!("entry {line:?} is not after the previous one"));
        }
        entries.push(entry);
    }
    if entries.len() != count {
        return Err(format!(
            "count line says {count} entries, found {}",
            entries.len()
        ));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_end_offset_semantics() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = EpochCache::load(dir.path()).unwrap();
        assert_eq!(cache.end_offset_for(LeaderEpoch(0), Offset(0)), None);
        cache.assign(LeaderEpoch(1), Offset(0)).unwrap();
        cache.assign(LeaderEpoch(3), Offset(10)).unwrap();
        cache.assign(LeaderEpoch(2), Offset(12)).unwrap(); // older epoch: ignored
        let end = Offset(20);
        assert_eq!(
            cache.end_offset_for(LeaderEpoch(3), end),
            Some((LeaderEpoch(3), end))
        );
        assert_eq!(
            cache.end_offset_for(LeaderEpoch(1), end),
            Some((LeaderEpoch(1), Offset(10)))
        );
        assert_eq!(
            cache.end_offset_for(LeaderEpoch(2), end),
            Some((LeaderEpoch(1), Offset(10)))
        );
        assert_eq!(cache.end_offset_for(LeaderEpoch(0), end), None);
        assert_eq!(cache.end_offset_for(LeaderEpoch(4), end), None);
    }

    #[test]
    fn checkpoint_round_trips_in_kafka_format() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = EpochCache::load(dir.path()).unwrap();
        cache.assign(LeaderEpoch(0), Offset(0)).unwrap();
        cache.assign(LeaderEpoch(5), Offset(7)).unwrap();
        let text = fs::read_to_string(dir.path().join(CHECKPOINT_FILE)).unwrap();
        assert_eq!(text, "0\n2\n0 0\n5 7\n");
        let mut cache = EpochCache::load(dir.path()).unwrap();
        assert_eq!(cache.latest(), Some(LeaderEpoch(5)));
        assert!(cache.truncate_from_end(Offset(7)).unwrap());
        assert_eq!(
            EpochCache::load(dir.path()).unwrap().latest(),
            Some(LeaderEpoch(0))
        );
    }

    #[test]
    fn truncating_from_start_drops_epochs_that_ended_below_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = EpochCache::load(dir.path()).unwrap();
        cache.assign(LeaderEpoch(0), Offset(0)).unwrap();
        cache.assign(LeaderEpoch(1), Offset(10)).unwrap();
        cache.assign(LeaderEpoch(2), Offset(20)).unwrap();
        assert!(!cache.truncate_from_start(Offset(0)).unwrap());
        assert!(cache.truncate_from_start(Offset(15)).unwrap());
        let end = Offset(30);
        assert_eq!(cache.end_offset_for(LeaderEpoch(0), end), None);
        assert_eq!(
            cache.end_offset_for(LeaderEpoch(1), end),
            Some((LeaderEpoch(1), Offset(20)))
        );
        let text = fs::read_to_string(dir.path().join(CHECKPOINT_FILE)).unwrap();
        assert_eq!(text, "0\n2\n1 15\n2 20\n");
        // Exactly at an epoch's start: that epoch stays whole, the older ones go.
        assert!(cache.truncate_from_start(Offset(20)).unwrap());
        assert_eq!(
            EpochCache::load(dir.path()).unwrap().entries,
            vec![(LeaderEpoch(2), Offset(20))]
        );
    }

    #[test]
    fn malformed_checkpoints_are_rejected() {
        for bad in ["1\n0\n", "0\n2\n0 0\n", "0\n1\nx y\n", "0\n2\n3 0\n2 5\n"] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
