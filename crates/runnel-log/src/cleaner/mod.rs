//! The log cleaner (compaction) for `cleanup.policy=compact`, after Kafka's `LogCleaner`.
//!
//! ```text
//!   lock held         no lock                                   lock held
//!  prepare_clean ──▶ CleanPlan::execute ──────────────────────▶ install_cleaned
//!  pick segments     map key -> latest offset over the dirty    rename .cleaned -> .swap,
//!  share file        range, rewrite every planned sealed        delete the old segments,
//!  handles (Arc)     segment into <base>.log.cleaned (+indexes) .swap -> .log, checkpoint
//! ```
//!
//! The log is split at the cleaner checkpoint into a clean head (already compacted) and a dirty
//! tail; the active segment (and anything younger than `min.compaction.lag.ms`) is never
//! touched. A pass builds the key map over the dirty range only, then rewrites every sealed
//! segment from the log start to the end of that range, in groups no larger than
//! `segment.bytes`, keeping a record iff it is the latest for its key. Offsets never change:
//! a batch keeps its base offset, last offset, producer fields and codec (Kafka's v2 rules),
//! and a batch nothing was removed from is copied byte for byte.
//!
//! Tombstones (null values) follow KIP-534: the first pass that keeps one stores a delete
//! horizon (`now + delete.retention.ms`) in its batch; a pass after the horizon drops it.
//! Records without a key are dropped (the append path refuses them on compacted topics).
//! Control batches are kept as they are. A batch holding an active producer's last write (its
//! last data batch, or its last marker when it wrote no data since) is never removed: when
//! nothing of it survives it stays as an empty batch with the same offsets and producer fields
//! (Kafka's `RETAIN_EMPTY`), so producer state rebuilt from the log keeps its last sequence.
//!
//! Crash safety (Kafka's swap protocol): the `.cleaned` files are complete and fsynced before
//! `<base>.log.cleaned` is renamed to `<base>.log.swap`, which is the commit point. On open,
//! `.cleaned` files are deleted (roll back) and every `.log.swap` is completed: the segments
//! it replaces (base offsets in `[swap base, swap end)`) are deleted and it is renamed to
//! `.log` (its indexes are rebuilt).

use crate::index::OffsetIndex;
use crate::log::PartitionLog;
use crate::offsets::Offset;
use crate::segment::{
    segment_path, IndexCursor, SealedSegment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX,
};
use crate::time_index::TimeIndex;
use crate::txn_index::{AbortedTxn, TXN_INDEX_SUFFIX};
use runnel_protocol::record_batch::{BatchHeader, BatchIter, TimestampType, LOG_OVERHEAD};
use runnel_protocol::records::{delete_horizon_ms, BatchBuilder, OpenBatch};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use txn::TxnTracker;

mod install;
mod txn;

pub(crate) use install::recover_swaps;
pub use install::CrashPoint;

const CLEANED: &str = "cleaned";
const SWAP: &str = "swap";
/// Kafka's `log.cleaner.dedupe.buffer.size` default: memory for the key map of one pass.
const DEFAULT_MAP_BYTES: usize = 128 * 1024 * 1024;
/// Estimated bytes a map entry costs beyond its key.
const MAP_ENTRY_OVERHEAD: usize = 64;
const READ_CHUNK_BYTES: usize = 1 << 20;

/// Key -> offset of its latest record in the dirty range.
type KeyMap = HashMap<Box<[u8]>, i64>;

/// One sealed segment a plan reads, with a handle that stays valid without the log's lock.
#[derive(Debug, Clone)]
struct Source {
    base: Offset,
    /// Base offset of the segment after it: where this segment's offsets end.
    end: Offset,
    size_bytes: u64,
    log: Arc<File>,
}

/// What to clean, decided under the lock by [`PartitionLog::prepare_clean`]. Execute it
/// without the lock, then hand the result to [`PartitionLog::install_cleaned`].
#[derive(Debug)]
pub struct CleanPlan {
    dir: PathBuf,
    /// Every sealed segment below the first uncleanable offset, oldest first.
    sources: Vec<Source>,
    first_dirty: Offset,
    delete_retention_ms: i64,
    segment_bytes: u64,
    index_interval_bytes: u64,
    map_limit_bytes: usize,
    /// Aborted transactions overlapping the planned range.
    aborted: Vec<AbortedTxn>,
    /// Per producer id the partition remembers: where its last write is.
    last_records: HashMap<i64, LastRecord>,
}

/// Kafka's `LastRecord` of an active producer: the batch holding its last sequence (or, when
/// its last write was a marker, that marker) survives cleaning, emptied if need be, so
/// producer state rebuilt from the log still knows the producer's sequence and epoch.
#[derive(Debug, Clone, Copy)]
struct LastRecord {
    last_data_offset: Option<i64>,
    epoch: i16,
}

impl LastRecord {
    /// Kafka's `isBatchLastRecordOfProducer`.
    fn holds(&self, header: &BatchHeader) -> bool {
        match self.last_data_offset {
            Some(offset) => header.last_offset() == offset,
            None => header.is_control() && header.producer_epoch == self.epoch,
        }
    }
}

/// One rewritten group of segments, waiting in `.cleaned` files.
#[derive(Debug)]
struct CleanedGroup {
    base: Offset,
    sources: Vec<Source>,
}

/// The result of [`CleanPlan::execute`]: `.cleaned` files ready to be installed.
#[derive(Debug)]
pub struct CleanedSegments {
    dir: PathBuf,
    groups: Vec<CleanedGroup>,
    /// The next pass's first dirty offset.
    cleaned_up_to: Offset,
    stats: CleanOutcome,
}

/// What a cleaning pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CleanOutcome {
    /// Sealed segments read and replaced.
    pub segments_read: usize,
    /// Segments written in their place.
    pub segments_written: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_read: u64,
    pub records_removed: u64,
    /// The cleaner checkpoint after this pass.
    pub cleaned_up_to: Offset,
    /// The log changed under the plan (retention or DeleteRecords removed a planned segment),
    /// so nothing was installed; the next pass starts over.
    pub aborted: bool,
    /// Time spent in `execute`.
    pub execute_micros: u64,
}

impl PartitionLog {
    /// Under the lock: whether the log needs cleaning now, and what to clean. None unless the
    /// policy includes compact and either the dirty ratio exceeds
    /// `min.cleanable.dirty.ratio` or the oldest dirty record passed `max.compaction.lag.ms`.
    pub fn prepare_clean(&self, now_ms: i64) -> Option<CleanPlan> {
        if !self.config.cleanup_policy.compact || self.sealed.is_empty() {
            return None;
        }
        let active_base = self.active.base_offset;
        let first_dirty = self
            .cleaner_offset
            .filter(|&c| c >= self.log_start && c <= active_base)
            .unwrap_or(self.log_start);
        let bases: Vec<Offset> = self.sealed.keys().copied().collect();
        let mut sources = Vec::new();
        let (mut clean_bytes, mut dirty_bytes) = (0u64, 0u64);
        let lag_ms = self.config.min_compaction_lag_ms.max(0);
        // Open transactions are undecided: nothing from their first offset on is cleaned.
        let first_unstable = self.first_unstable_offset();
        for (i, base) in bases.iter().enumerate() {
            let segment = &self.sealed[base];
            let end = bases.get(i + 1).copied().unwrap_or(active_base);
            if first_unstable.is_some_and(|u| end > u) {
                break;
            }
            let dirty = end > first_dirty;
            if dirty
                && lag_ms > 0
                && segment
                    .max_timestamp
                    .is_some_and(|m| m.timestamp > now_ms.saturating_sub(lag_ms))
            {
                break; // too young: this and later segments are uncleanable
            }
            if dirty {
                dirty_bytes += segment.size_bytes;
            } else {
                clean_bytes += segment.size_bytes;
            }
            sources.push(Source {
                base: *base,
                end,
                size_bytes: segment.size_bytes,
                log: Arc::clone(&segment.log),
            });
        }
        if dirty_bytes == 0 {
            return None;
        }
        let ratio = dirty_bytes as f64 / (clean_bytes + dirty_bytes) as f64;
        let overdue = self.compaction_overdue(first_dirty, now_ms);
        if !overdue && ratio <= self.config.min_cleanable_dirty_ratio {
            return None;
        }
        let range_end = sources.last().map_or(first_dirty, |s| s.end);
        let aborted = self.aborted_transactions(sources[0].base, range_end);
        let last_records = self
            .producers
            .producers
            .values()
            .map(|e| {
                let last = LastRecord {
                    last_data_offset: e.batches.back().map(|b| b.last_offset.value()),
                    epoch: e.epoch,
                };
                (e.producer_id, last)
            })
            .collect();
        Some(CleanPlan {
            aborted,
            last_records,
            dir: self.dir.clone(),
            sources,
            first_dirty,
            delete_retention_ms: self.config.delete_retention_ms,
            segment_bytes: self.config.segment_bytes,
            index_interval_bytes: self.config.index_interval_bytes,
            map_limit_bytes: DEFAULT_MAP_BYTES,
        })
    }
}

impl PartitionLog {
    /// Kafka's `maxCompactionDelay > 0`: the earliest first-batch timestamp of the dirty
    /// sealed segments (those without a positive one ignored) is older than
    /// `now - max.compaction.lag.ms`.
    fn compaction_overdue(&self, first_dirty: Offset, now_ms: i64) -> bool {
        if self.config.max_compaction_lag_ms == i64::MAX {
            return false;
        }
        let clean_until = now_ms.saturating_sub(self.config.max_compaction_lag_ms.max(0));
        let ends = self
            .sealed
            .keys()
            .skip(1)
            .copied()
            .chain(std::iter::once(self.active.base_offset));
        self.sealed
            .values()
            .zip(ends)
            .filter(|(_, end)| *end > first_dirty)
            .filter_map(|(segment, _)| first_batch_timestamp(segment))
            .filter(|&ts| ts > 0)
            .min()
            .is_some_and(|earliest| earliest < clean_until)
    }
}

fn first_batch_timestamp(segment: &SealedSegment) -> Option<i64> {
    match segment.find_batch(segment.base_offset, |_| true) {
        Ok(found) => found.map(|(_, h)| h.max_timestamp),
        Err(_) => None,
    }
}

impl CleanPlan {
    /// Limits the memory of the key map (tests use this to force partial passes).
    #[doc(hidden)]
    pub fn with_map_limit_bytes(mut self, bytes: usize) -> CleanPlan {
        self.map_limit_bytes = bytes.max(1);
        self
    }

    /// Without the lock: builds the key map and writes the `.cleaned` files. On error the
    /// partial files are removed (and open would remove them anyway).
    pub fn execute(self, now_ms: i64) -> io::Result<CleanedSegments> {
        let started = Instant::now();
        let mut written = Vec::new();
        let result = self.execute_inner(now_ms, &mut written);
        if result.is_err() {
            for base in written {
                let _ = remove_group_files(&self.dir, base, CLEANED);
            }
        }
        let mut cleaned = result?;
        cleaned.stats.execute_micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(0);
        Ok(cleaned)
    }

    fn execute_inner(&self, now_ms: i64, written: &mut Vec<Offset>) -> io::Result<CleanedSegments> {
        let (map, cleaned_up_to) = self.build_offset_map()?;
        let sources: Vec<Source> = self
            .sources
            .iter()
            .filter(|s| s.end <= cleaned_up_to)
            .cloned()
            .collect();
        let mut stats = CleanOutcome {
            cleaned_up_to,
            ..CleanOutcome::default()
        };
        let mut groups = Vec::new();
        let mut txns =
            TxnTracker::new(&self.aborted, sources.first().map_or(Offset(0), |s| s.base));
        for group in group_by_size(sources, self.segment_bytes) {
            let base = group[0].base;
            written.push(base);
            let mut writer = CleanedWriter::create(&self.dir, base, self.index_interval_bytes)?;
            for source in &group {
                stats.segments_read += 1;
                stats.bytes_read += source.size_bytes;
                for_each_batch(&source.log, source.size_bytes, |header, bytes| {
                    let retain_empty = header.producer_id >= 0
                        && self
                            .last_records
                            .get(&header.producer_id)
                            .is_some_and(|last| last.holds(header));
                    let kept = clean_batch(
                        header,
                        bytes,
                        &map,
                        &mut txns,
                        now_ms,
                        self.delete_retention_ms,
                        retain_empty,
                    )
                    .map_err(|e| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "segment {}: batch at offset {}: {e}",
                                source.base, header.base_offset
                            ),
                        )
                    })?;
                    stats.records_read += u64::from(kept.records_read);
                    stats.records_removed += u64::from(kept.records_removed);
                    if !matches!(kept.output, Kept::Nothing) {
                        writer.aborted.extend(kept.aborted);
                    }
                    match kept.output {
                        Kept::All => writer.append(header, bytes),
                        Kept::Rewritten(batch) => {
                            let h = BatchHeader::parse(&batch).expect("builder writes a header");
                            writer.append(&h, &batch)
                        }
                        Kept::Nothing => Ok(()),
                    }
                })?;
            }
            stats.bytes_written += writer.finish()?;
            stats.segments_written += 1;
            groups.push(CleanedGroup {
                base,
                sources: group,
            });
        }
        Ok(CleanedSegments {
            dir: self.dir.clone(),
            groups,
            cleaned_up_to,
            stats,
        })
    }

    /// Key -> latest offset over the dirty segments, stopping after the segment that fills
    /// the map's memory budget. Returns the map and the offset the pass cleans up to.
    fn build_offset_map(&self) -> io::Result<(KeyMap, Offset)> {
        let mut map = KeyMap::new();
        let mut map_bytes = 0usize;
        let mut up_to = self.first_dirty;
        let mut txns = TxnTracker::new(&self.aborted, self.first_dirty);
        for source in self.sources.iter().filter(|s| s.end > self.first_dirty) {
            if map_bytes >= self.map_limit_bytes {
                break;
            }
            for_each_batch(&source.log, source.size_bytes, |header, bytes| {
                if header.last_offset() < self.first_dirty.value() {
                    return Ok(());
                }
                if header.is_control() {
                    txns.on_control(header, bytes);
                    return Ok(());
                }
                if txns.is_aborted_data(header) {
                    return Ok(());
                }
                let open = OpenBatch::open(bytes).map_err(invalid_data)?;
                for record in open.records().map_err(invalid_data)? {
                    let Some(key) = record.key else { continue };
                    let offset = header.base_offset + i64::from(record.offset_delta);
                    match map.get_mut(key) {
                        Some(latest) => *latest = (*latest).max(offset),
                        None => {
                            map_bytes += key.len() + MAP_ENTRY_OVERHEAD;
                            map.insert(key.into(), offset);
                        }
                    }
                }
                Ok(())
            })?;
            up_to = source.end;
        }
        Ok((map, up_to))
    }
}

fn invalid_data(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Consecutive segments whose sizes add up to at most `max_bytes` and whose offsets fit one
/// segment (relative offsets are u32), as Kafka's `groupSegmentsBySize`.
fn group_by_size(sources: Vec<Source>, max_bytes: u64) -> Vec<Vec<Source>> {
    let mut groups: Vec<Vec<Source>> = Vec::new();
    for source in sources {
        if let Some(group) = groups.last_mut() {
            let size: u64 = group.iter().map(|s| s.size_bytes).sum();
            let span = source.end.value() - group[0].base.value();
            if size + source.size_bytes <= max_bytes && u32::try_from(span).is_ok() {
                group.push(source);
                continue;
            }
        }
        groups.push(vec![source]);
    }
    groups
}

enum Kept {
    All,
    Rewritten(bytes::Bytes),
    Nothing,
}

struct BatchResult {
    output: Kept,
    records_read: u32,
    records_removed: u32,
    /// For a kept abort marker: its transaction-index entry.
    aborted: Option<AbortedTxn>,
}

/// What is left of a batch nothing of which survives: an empty batch when it holds its
/// producer's last write (`retain_empty`, Kafka's `RETAIN_EMPTY`), otherwise nothing.
fn emptied(
    header: &BatchHeader,
    retain_empty: bool,
) -> Result<Kept, runnel_protocol::record_batch::BatchError> {
    if !retain_empty {
        return Ok(Kept::Nothing);
    }
    if header.records_count == 0 {
        return Ok(Kept::All);
    }
    // Kafka's `writeEmptyHeader`: no records, no codec, both timestamps the batch's max
    // timestamp; offsets, producer fields and the control and transactional flags stay.
    let builder = BatchBuilder::new(
        *header,
        runnel_protocol::record_batch::Compression::None,
        header.max_timestamp,
    );
    Ok(Kept::Rewritten(
        builder.finish(header.last_offset_delta, header.max_timestamp)?,
    ))
}

/// Decides what of one batch survives: the latest record per key, tombstones until their
/// delete horizon, nothing of aborted transactions; markers as `clean_marker` decides. A
/// batch holding its producer's last write (`retain_empty`) stays, emptied if need be.
fn clean_batch(
    header: &BatchHeader,
    bytes: &[u8],
    map: &KeyMap,
    txns: &mut TxnTracker,
    now_ms: i64,
    delete_retention_ms: i64,
    retain_empty: bool,
) -> Result<BatchResult, runnel_protocol::record_batch::BatchError> {
    if header.is_control() {
        if header.records_count == 0 {
            // A marker emptied by an earlier pass.
            return Ok(BatchResult {
                output: emptied(header, retain_empty)?,
                records_read: 0,
                records_removed: 0,
                aborted: None,
            });
        }
        let mut result = clean_marker(header, bytes, txns, now_ms, delete_retention_ms)?;
        if matches!(result.output, Kept::Nothing) {
            result.output = emptied(header, retain_empty)?;
        }
        return Ok(result);
    }
    if txns.is_aborted_data(header) {
        let count = u32::try_from(header.records_count).unwrap_or(0);
        return Ok(BatchResult {
            output: emptied(header, retain_empty)?,
            records_read: count,
            records_removed: count,
            aborted: None,
        });
    }
    let open = OpenBatch::open(bytes)?;
    let records = open.records()?;
    let horizon = delete_horizon_ms(header);
    let mut retained = Vec::with_capacity(records.len());
    let mut has_tombstone = false;
    for record in &records {
        let offset = header.base_offset + i64::from(record.offset_delta);
        let Some(key) = record.key else { continue };
        if map.get(key).is_some_and(|&latest| offset < latest) {
            continue;
        }
        if record.value.is_none() {
            if horizon.is_some_and(|h| now_ms >= h) {
                continue;
            }
            has_tombstone = true;
        }
        retained.push(record);
    }
    let records_read = records.len() as u32;
    let records_removed = (records.len() - retained.len()) as u32;
    let needs_horizon = has_tombstone && horizon.is_none();
    let output = if retained.is_empty() {
        emptied(header, retain_empty)?
    } else if records_removed == 0 && !needs_horizon {
        Kept::All
    } else {
        let codec = header.compression()?;
        let mut builder = BatchBuilder::new(*header, codec, header.base_timestamp);
        match horizon {
            Some(h) => builder = builder.with_delete_horizon(h),
            None if needs_horizon => {
                builder = builder.with_delete_horizon(now_ms.saturating_add(delete_retention_ms));
            }
            None => {}
        }
        let mut max_timestamp = i64::MIN;
        for record in &retained {
            builder.push(record, header.base_timestamp);
            max_timestamp =
                max_timestamp.max(header.base_timestamp.wrapping_add(record.timestamp_delta));
        }
        if header.timestamp_type() == TimestampType::LogAppendTime {
            max_timestamp = header.max_timestamp;
        }
        Kept::Rewritten(builder.finish(header.last_offset_delta, max_timestamp)?)
    };
    Ok(BatchResult {
        output,
        records_read,
        records_removed,
        aborted: None,
    })
}

/// A marker stays while data of its transaction is left in the log. Once it is empty it
/// gets a delete horizon, and the first pass after the horizon removes it (Kafka's rule for
/// markers, KIP-534's horizon).
fn clean_marker(
    header: &BatchHeader,
    bytes: &[u8],
    txns: &mut TxnTracker,
    now_ms: i64,
    delete_retention_ms: i64,
) -> Result<BatchResult, runnel_protocol::record_batch::BatchError> {
    let kept = |output, aborted| BatchResult {
        output,
        records_read: 0,
        records_removed: 0,
        aborted,
    };
    let Some(fate) = txns.on_control(header, bytes) else {
        return Ok(kept(Kept::All, None));
    };
    if fate.has_data {
        return Ok(kept(Kept::All, fate.aborted));
    }
    match delete_horizon_ms(header) {
        Some(horizon) if now_ms >= horizon => Ok(kept(Kept::Nothing, None)),
        Some(_) => Ok(kept(Kept::All, None)),
        None => {
            let open = OpenBatch::open(bytes)?;
            let mut builder =
                BatchBuilder::new(*header, header.compression()?, header.base_timestamp)
                    .with_delete_horizon(now_ms.saturating_add(delete_retention_ms));
            for record in &open.records()? {
                builder.push(record, header.base_timestamp);
            }
            let batch = builder.finish(header.last_offset_delta, header.max_timestamp)?;
            Ok(kept(Kept::Rewritten(batch), None))
        }
    }
}

/// Writes one cleaned segment: `.log.cleaned` plus its two indexes, built by the same cursor
/// appends use, so they are identical to a rebuild.
struct CleanedWriter {
    base: Offset,
    log: BufWriter<File>,
    position: u64,
    cursor: IndexCursor,
    interval_bytes: u64,
    index: OffsetIndex,
    time_index: TimeIndex,
    txn_index_path: PathBuf,
    /// Aborted transactions whose markers the cleaned segment keeps.
    aborted: Vec<AbortedTxn>,
}

impl CleanedWriter {
    fn create(dir: &Path, base: Offset, interval_bytes: u64) -> io::Result<CleanedWriter> {
        // Leftovers of an earlier failed pass would otherwise be appended to.
        remove_group_files(dir, base, CLEANED)?;
        let log = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(suffixed(dir, base, LOG_SUFFIX, CLEANED))?;
        Ok(CleanedWriter {
            base,
            log: BufWriter::with_capacity(1 << 20, log),
            position: 0,
            cursor: IndexCursor::default(),
            interval_bytes,
            index: OffsetIndex::open(&suffixed(dir, base, INDEX_SUFFIX, CLEANED))?,
            time_index: TimeIndex::open(&suffixed(dir, base, TIME_INDEX_SUFFIX, CLEANED))?,
            txn_index_path: suffixed(dir, base, TXN_INDEX_SUFFIX, CLEANED),
            aborted: Vec::new(),
        })
    }

    fn append(&mut self, header: &BatchHeader, batch: &[u8]) -> io::Result<()> {
        self.log.write_all(batch)?;
        let (offset_entry, time_entry) =
            self.cursor
                .on_batch(self.base, header, self.position, self.interval_bytes);
        if let Some(entry) = offset_entry {
            self.index.push(entry)?;
        }
        if let Some(entry) = time_entry {
            self.time_index.push(entry)?;
        }
        self.position += batch.len() as u64;
        Ok(())
    }

    /// Flushes and fsyncs everything; returns the log size.
    fn finish(mut self) -> io::Result<u64> {
        if let Some(entry) = self.cursor.time_entry_due(self.base) {
            self.time_index.push(entry)?;
        }
        let log = self.log.into_inner().map_err(|e| e.into_error())?;
        log.sync_all()?;
        self.index.sync()?;
        self.time_index.sync()?;
        crate::txn_index::write_file(&self.txn_index_path, &self.aborted)?;
        Ok(self.position)
    }
}

/// Calls `f` for every whole batch in `file[..size]`, reading in large chunks.
fn for_each_batch(
    file: &File,
    size: u64,
    mut f: impl FnMut(&BatchHeader, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut pos = 0u64;
    let mut buf = Vec::new();
    // Each round consumes at least one batch or fails, bounding the loop by the file size.
    while pos < size {
        let want = usize::try_from(size - pos)
            .unwrap_or(usize::MAX)
            .min(READ_CHUNK_BYTES);
        buf.resize(want, 0);
        file.read_exact_at(&mut buf, pos)?;
        let mut iter = BatchIter::new(&buf);
        for item in iter.by_ref() {
            let (header, bytes) = item.map_err(invalid_data)?;
            f(&header, bytes)?;
        }
        let consumed = iter.position();
        if consumed == 0 {
            // One batch larger than the chunk: read exactly it.
            if want < LOG_OVERHEAD {
                return Err(invalid_data(format!("partial batch at position {pos}")));
            }
            let length = i32::from_be_bytes(buf[8..12].try_into().expect("4 bytes"));
            let total = usize::try_from(length).unwrap_or(0) + LOG_OVERHEAD;
            if total <= want || total as u64 > size - pos {
                return Err(invalid_data(format!("bad batch at position {pos}")));
            }
            buf.resize(total, 0);
            file.read_exact_at(&mut buf, pos)?;
            let header = BatchHeader::parse(&buf).map_err(invalid_data)?;
            f(&header, &buf)?;
            pos += total as u64;
        } else {
            pos += consumed as u64;
        }
    }
    Ok(())
}

/// `00000000000000000042.log.cleaned` and friends.
fn suffixed(dir: &Path, base: Offset, suffix: &str, extra: &str) -> PathBuf {
    let mut path = segment_path(dir, base, suffix).into_os_string();
    path.push(".");
    path.push(extra);
    PathBuf::from(path)
}

fn remove_group_files(dir: &Path, base: Offset, extra: &str) -> io::Result<()> {
    for suffix in [
        LOG_SUFFIX,
        INDEX_SUFFIX,
        TIME_INDEX_SUFFIX,
        TXN_INDEX_SUFFIX,
    ] {
        match fs::remove_file(suffixed(dir, base, suffix, extra)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}
