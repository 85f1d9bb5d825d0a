//! The write path: appending to, recovering and sealing the active segment.

use crate::config::LogConfig;
use crate::offsets::{LeaderEpoch, Offset};
use crate::segment::{ActiveSegment, IndexCursor, SealedSegment, Segment};
use runnel_protocol::record_batch::{set_base_offset, set_partition_leader_epoch, BatchHeader};
use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::path::Path;

/// The patched part of a batch: baseOffset, batchLength, partitionLeaderEpoch, magic.
/// Everything after it (CRC onwards) is written from the producer's buffer unchanged.
const PATCHED_PREFIX_LEN: usize = 17;

impl ActiveSegment {
    /// Starts a new, empty segment at `base_offset`.
    pub(crate) fn create(dir: &Path, base_offset: Offset, now_ms: i64) -> io::Result<Self> {
        let segment = Segment::open_files(dir, base_offset)?;
        if !segment.is_empty() || !segment.index.entries().is_empty() {
            // Only reachable if a file with this name survived from an older log; appending
            // after its bytes would break the offset order, so refuse loudly.
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("a non-empty segment already exists at offset {base_offset}"),
            ));
        }
        Ok(ActiveSegment {
            segment,
            cursor: IndexCursor::default(),
            created_ms: now_ms,
            first_batch_ts: None,
        })
    }

    /// Reopens the last segment after a restart or crash: validates every batch (CRC
    /// included), truncates the file at the first invalid or partial batch (a torn write)
    /// and rebuilds the indexes from the scan.
    pub(crate) fn recover(
        dir: &Path,
        base_offset: Offset,
        interval_bytes: u64,
        now_ms: i64,
    ) -> io::Result<Self> {
        let mut segment = Segment::open_files(dir, base_offset)?;
        let file_len = segment.size_bytes;
        let (scan_end, cursor) = segment.rebuild(file_len, true, interval_bytes)?;
        if let Some(reason) = &scan_end.stopped_because {
            tracing::warn!(dir = %dir.display(), segment = %base_offset,
                truncated_bytes = file_len - scan_end.valid_end, kept_bytes = scan_end.valid_end,
                %reason, "truncating torn or corrupt tail of the active segment");
            segment.log.set_len(scan_end.valid_end)?;
            segment.log.sync_all()?;
        }
        // After a restart the creation time is unknown; the first batch's timestamp stands
        // in for it (as in Kafka), so restarts do not postpone time-based rolls forever.
        let first_ts = segment.first_batch_timestamp()?;
        let created_ms = first_ts
            .filter(|&ts| ts >= 0)
            .map_or(now_ms, |ts| ts.min(now_ms));
        Ok(ActiveSegment {
            segment,
            cursor,
            created_ms,
            first_batch_ts: first_ts,
        })
    }

    /// Whether a batch of `batch_len` bytes ending at `last_offset` with max timestamp
    /// `max_timestamp` must go to a new segment. An empty segment never rolls, so every batch
    /// fits somewhere. As Kafka's `LogSegment.shouldRoll`, `segment.ms` is measured from the
    /// first batch's max timestamp to `max_timestamp` when the first batch has a timestamp
    /// (from the segment's creation on the wall clock otherwise), and must be exceeded.
    pub(crate) fn should_roll(
        &self,
        batch_len: usize,
        last_offset: Offset,
        max_timestamp: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> bool {
        if self.is_empty() {
            return false;
        }
        let new_size = self.size_bytes + batch_len as u64;
        let relative_last = last_offset.value() - self.base_offset.value();
        let waited_ms = match self.first_batch_ts {
            Some(first) if first >= 0 => max_timestamp.saturating_sub(first),
            _ => now_ms.saturating_sub(self.created_ms),
        };
        new_size > config.segment_bytes
            || new_size > u64::from(u32::MAX)
            || waited_ms > config.segment_ms
            || self.index.size_with_one_more() > config.segment_index_bytes
            || self.time_index.size_with_one_more() > config.segment_index_bytes
            || u32::try_from(relative_last).is_err()
    }

    /// Writes `batch` at the end of the segment with its base offset and leader epoch
    /// patched, without copying the batch, and adds the index entries that are due.
    pub(crate) fn append(
        &mut self,
        batch: &[u8],
        header: &BatchHeader,
        base_offset: Offset,
        epoch: LeaderEpoch,
        interval_bytes: u64,
    ) -> io::Result<()> {
        debug_assert!(base_offset >= self.next_offset, "offsets must grow");
        let mut prefix = [0u8; PATCHED_PREFIX_LEN];
        prefix.copy_from_slice(&batch[..PATCHED_PREFIX_LEN]);
        set_base_offset(&mut prefix, base_offset.value());
        set_partition_leader_epoch(&mut prefix, epoch.0);
        if let Err(e) = write_two(&self.segment.log, &prefix, &batch[PATCHED_PREFIX_LEN..]) {
            // Drop whatever part of the batch reached the file, so the next append does not
            // land after garbage. If this fails too, recovery truncates it on restart.
            let _ = self.segment.log.set_len(self.segment.size_bytes);
            return Err(e);
        }
        let position = self.segment.size_bytes;
        if position == 0 {
            self.first_batch_ts = Some(header.max_timestamp);
        }
        let header = BatchHeader {
            base_offset: base_offset.value(),
            ..*header
        };
        self.segment.size_bytes += batch.len() as u64;
        self.segment.next_offset = Offset(header.last_offset() + 1);
        let (offset_entry, time_entry) =
            self.cursor
                .on_batch(self.segment.base_offset, &header, position, interval_bytes);
        self.segment.max_timestamp = self.cursor.max_timestamp;
        if let Some(entry) = offset_entry {
            self.segment.index.push(entry)?;
        }
        if let Some(entry) = time_entry {
            self.segment.time_index.push(entry)?;
        }
        Ok(())
    }

    /// Writes the final time index entry (so the sealed segment's max timestamp is on
    /// disk), fsyncs everything and makes the segment read-only.
    pub(crate) fn seal(mut self) -> io::Result<SealedSegment> {
        if let Some(entry) = self.cursor.time_entry_due(self.segment.base_offset) {
            self.segment.time_index.push(entry)?;
        }
        self.segment.sync()?;
        Ok(SealedSegment::new(self.segment))
    }
}

impl Segment {
    fn first_batch_timestamp(&self) -> io::Result<Option<i64>> {
        Ok(self
            .find_batch(self.base_offset, |_| true)?
            .map(|(_, h)| h.max_timestamp))
    }
}

/// `write_all` for two buffers with one `writev` in the common case.
fn write_two(mut file: &File, mut first: &[u8], mut second: &[u8]) -> io::Result<()> {
    // Each successful call writes at least one byte, bounding the loop by the batch size.
    while !first.is_empty() || !second.is_empty() {
        match file.write_vectored(&[IoSlice::new(first), IoSlice::new(second)]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => {
                let from_first = written.min(first.len());
                first = &first[from_first..];
                second = &second[written - from_first..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
