//! Retention (`retention.ms`, `retention.bytes`) and DeleteRecords: both move the log start
//! offset forward and delete whole segments below it, as Kafka's `UnifiedLog.deleteOldSegments`
//! and `maybeIncrementLogStartOffset` do.
//!
//! Kafka's rules, mirrored here:
//! - by time: a segment goes when `now - its largest timestamp > retention.ms`, where a
//!   segment whose records carry no timestamp (-1) is as old as its file's last write;
//! - by size: oldest segments go while the log stays at least `retention.bytes` without them;
//! - below the log start: a segment goes when the next one starts at or below the log start;
//! - segments go oldest first, and a walk stops at the first segment that must stay;
//! - when every segment including the active one qualifies, the log rolls first, so the log
//!   keeps an (empty) active segment at the log end;
//! - time and size only apply with `cleanup.policy` delete; the log-start rule always does.

use crate::checkpoint;
use crate::error::DeleteRecordsError;
use crate::log::PartitionLog;
use crate::offsets::{LogStartOffset, Offset};
use crate::segment::{segment_path, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::txn_index::TXN_INDEX_SUFFIX;
use std::io;
use std::path::Path;

/// What one retention pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
    pub new_log_start: LogStartOffset,
}

impl PartitionLog {
    /// One retention pass (`log.retention.check.interval.ms` calls this): deletes the segments
    /// that retention by time or size, or the log start offset, no longer keeps.
    pub fn apply_retention(&mut self, now_ms: i64) -> io::Result<RetentionOutcome> {
        let mut outcome = RetentionOutcome {
            segments_deleted: 0,
            bytes_deleted: 0,
            new_log_start: LogStartOffset(self.log_start),
        };
        if self.config.cleanup_policy.delete {
            let retention_ms = self.config.retention_ms;
            if retention_ms >= 0 {
                // A sealed segment the cleaner emptied has no timestamp and nothing to keep.
                self.delete_oldest_while(&mut outcome, now_ms, |segment, _| {
                    retention_time_ms(segment)
                        .is_none_or(|time| now_ms.saturating_sub(time) > retention_ms)
                })?;
            }
            let retention_bytes = self.config.retention_bytes;
            if retention_bytes >= 0 {
                let mut excess = i128::from(self.size_bytes()) - i128::from(retention_bytes);
                self.delete_oldest_while(&mut outcome, now_ms, |segment, _| {
                    let after = excess - i128::from(segment.size_bytes);
                    let go = after >= 0;
                    if go {
                        excess = after;
                    }
                    go
                })?;
            }
        }
        let log_start = self.log_start;
        self.delete_oldest_while(&mut outcome, now_ms, |_, next_base| {
            next_base.is_some_and(|next| next <= log_start)
        })?;
        outcome.new_log_start = LogStartOffset(self.log_start);
        self.prune_snapshots_below_log_start()?;
        if outcome.segments_deleted > 0 {
            tracing::info!(dir = %self.dir.display(), segments = outcome.segments_deleted,
                bytes = outcome.bytes_deleted, log_start = %self.log_start,
                "retention deleted segments");
        }
        Ok(outcome)
    }

    /// DeleteRecords: moves the log start offset to `offset` (never backwards) and deletes
    /// the segments wholly below it. Reads below the new log start then fail with
    /// OFFSET_OUT_OF_RANGE; a read at it returns the batch that contains it, whose earlier
    /// records clients skip. The broker resolves `-1` (the high watermark) before calling.
    pub fn delete_records_before(
        &mut self,
        offset: Offset,
    ) -> Result<LogStartOffset, DeleteRecordsError> {
        if !self.config.cleanup_policy.delete {
            return Err(DeleteRecordsError::PolicyViolation(
                "records cannot be deleted from a topic whose cleanup.policy does not include delete"
                    .into(),
            ));
        }
        let log_end = self.active.next_offset;
        if offset.value() < 0 || offset > log_end {
            return Err(DeleteRecordsError::OffsetOutOfRange {
                requested: offset,
                log_start: self.log_start,
                log_end,
            });
        }
        if offset > self.log_start {
            self.set_log_start(offset)?;
            let mut outcome = RetentionOutcome {
                segments_deleted: 0,
                bytes_deleted: 0,
                new_log_start: LogStartOffset(offset),
            };
            self.delete_oldest_while(&mut outcome, i64::MIN, |_, next_base| {
                next_base.is_some_and(|next| next <= offset)
            })?;
            self.prune_snapshots_below_log_start()?;
        }
        Ok(LogStartOffset(self.log_start))
    }

    /// Moves the log start forward and persists it before anything is deleted, so a crash
    /// never shows records that a client was told are gone.
    pub(crate) fn set_log_start(&mut self, offset: Offset) -> io::Result<()> {
        debug_assert!(offset >= self.log_start, "the log start only moves forward");
        debug_assert!(
            offset <= self.active.next_offset,
            "the log start stays in the log"
        );
        self.log_start = offset;
        checkpoint::write(&self.dir, checkpoint::LOG_START_FILE, offset)?;
        self.epochs.truncate_from_start(offset)?;
        Ok(())
    }

    /// Deletes segments oldest first while `deletable(segment, next segment's base)` holds,
    /// rolling first when that includes the (non-empty) active segment.
    fn delete_oldest_while(
        &mut self,
        outcome: &mut RetentionOutcome,
        now_ms: i64,
        mut deletable: impl FnMut(&Segment, Option<Offset>) -> bool,
    ) -> io::Result<()> {
        let mut doomed = Vec::new();
        let mut all = true;
        let bases: Vec<Offset> = self.sealed.keys().copied().collect();
        for (i, base) in bases.iter().enumerate() {
            let next = bases.get(i + 1).copied().unwrap_or(self.active.base_offset);
            if !deletable(&self.sealed[base], Some(next)) {
                all = false;
                break;
            }
            doomed.push(*base);
        }
        if all && !self.active.is_empty() && deletable(&self.active, None) {
            let active_base = self.active.base_offset;
            // Kafka rolls so that the log keeps an active segment, then deletes the old one.
            self.roll(now_ms.max(self.active.created_ms))?;
            doomed.push(active_base);
        }
        if doomed.is_empty() {
            return Ok(());
        }
        let first_kept = self
            .sealed
            .range(doomed.last().expect("not empty").next()..)
            .next()
            .map_or(self.active.base_offset, |(base, _)| *base);
        if first_kept > self.log_start {
            self.set_log_start(first_kept)?;
        }
        for base in doomed {
            let segment = self.sealed.remove(&base).expect("listed above");
            outcome.segments_deleted += 1;
            outcome.bytes_deleted += segment.size_bytes;
            delete_segment_files(&self.dir, base)?;
        }
        checkpoint::sync_dir(&self.dir)?;
        outcome.new_log_start = LogStartOffset(self.log_start);
        Ok(())
    }
}

/// The time by which retention ages `segment`, as Kafka's `LogSegment.largestTimestamp`: its
/// largest record timestamp, or, when its records carry none (-1, which producers may send),
/// the last modification of its log file, so such records stay for `retention.ms` after they
/// were written instead of going at the next check. `None` for a segment without batches.
fn retention_time_ms(segment: &Segment) -> Option<i64> {
    let largest = segment.max_timestamp?.timestamp;
    if largest >= 0 {
        return Some(largest);
    }
    let modified = segment.log.metadata().and_then(|m| m.modified());
    Some(match modified {
        Ok(time) => time
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |age| i64::try_from(age.as_millis()).unwrap_or(i64::MAX)),
        // Unknown age: keep the segment rather than guess it old.
        Err(_) => i64::MAX,
    })
}

/// Removes a segment's four files; missing ones are fine (a crash may have removed some).
pub(crate) fn delete_segment_files(dir: &Path, base: Offset) -> io::Result<()> {
    for suffix in [
        LOG_SUFFIX,
        INDEX_SUFFIX,
        TIME_INDEX_SUFFIX,
        TXN_INDEX_SUFFIX,
    ] {
        match std::fs::remove_file(segment_path(dir, base, suffix)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}
