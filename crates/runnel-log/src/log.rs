//! [`PartitionLog`]: one partition's segments, offsets, epoch cache and flush policy.

use crate::checkpoint;
use crate::config::LogConfig;
use crate::epoch_cache::EpochCache;
use crate::error::{AppendError, OpenError, ReadError};
use crate::offsets::{LeaderEpoch, LogEndOffset, LogStartOffset, Offset};
use crate::producer_state::ProducerStates;
use crate::segment::{parse_log_file_name, ActiveSegment, SealedSegment, Segment};
use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use runnel_protocol::record_batch::{validate_batch, BatchHeader, TimestampType};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Result of a successful append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: Offset,
    pub last_offset: Offset,
    pub max_timestamp: i64,
    pub log_start_offset: Offset,
    pub records: u32,
    pub bytes: usize,
    /// The broker time stamped on the batch for LogAppendTime topics, -1 for CreateTime
    /// (the Produce response's `log_append_time_ms`).
    pub log_append_time_ms: i64,
}

/// Result of a read: whole batches exactly as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadInfo {
    pub records: Bytes,
    /// Where the next read should start: one past the last returned offset, or the
    /// requested start when nothing was returned.
    pub next_offset_hint: Offset,
}

/// A record offset and its timestamp (ListOffsets answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub offset: Offset,
    pub timestamp: i64,
}

/// One partition's log on disk.
///
/// Lifecycle: [`PartitionLog::open`] recovers the directory, the owner appends and reads,
/// [`PartitionLog::close`] flushes. Not internally synchronised: the broker keeps each log
/// behind a mutex. After an `Io` error from an append or flush the on-disk state is unknown
/// and the partition should be taken offline (Kafka's `KAFKA_STORAGE_ERROR`); reopening
/// recovers it.
#[derive(Debug)]
pub struct PartitionLog {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    /// Read-only segments keyed by base offset, oldest first. Retention will pop from the
    /// front, compaction will replace entries.
    pub(crate) sealed: BTreeMap<Offset, SealedSegment>,
    /// The only segment appends can reach.
    pub(crate) active: ActiveSegment,
    pub(crate) log_start: Offset,
    pub(crate) epochs: EpochCache,
    pub(crate) unflushed_records: u64,
    pub(crate) oldest_unflushed_ms: Option<i64>,
    /// Where the last cleaning stopped (`cleaner-offset-checkpoint`): the first dirty offset.
    pub(crate) cleaner_offset: Option<Offset>,
    /// Idempotent and transactional producers, as of the log end.
    pub(crate) producers: ProducerStates,
}

impl PartitionLog {
    /// Opens (creating the dir if needed) and recovers the log. Sealed segments keep their
    /// index files when they look sane and get them rebuilt otherwise; the last segment is
    /// validated batch by batch and truncated at the first invalid or partial batch.
    pub fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<PartitionLog, OpenError> {
        let io_err = |source| OpenError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        fs::create_dir_all(dir).map_err(io_err)?;
        // An interrupted cleaner swap is completed or rolled back before segments are listed.
        crate::cleaner::recover_swaps(dir).map_err(io_err)?;
        let mut bases = segment_bases(dir).map_err(io_err)?;
        let last = bases.pop();
        let mut sealed = BTreeMap::new();
        for base in bases {
            let segment =
                SealedSegment::open(dir, base, config.index_interval_bytes).map_err(io_err)?;
            sealed.insert(base, segment);
        }
        let active = match last {
            Some(base) => ActiveSegment::recover(dir, base, config.index_interval_bytes, now_ms),
            None => ActiveSegment::create(dir, Offset(0), now_ms),
        }
        .map_err(io_err)?;
        let mut epochs = EpochCache::load(dir).map_err(|reason| OpenError::BadEpochCheckpoint {
            path: dir.join(crate::epoch_cache::CHECKPOINT_FILE),
            reason,
        })?;
        // Epochs that start beyond the recovered end belong to truncated data.
        epochs
            .truncate_from_end(active.next_offset)
            .map_err(io_err)?;
        let first_base = sealed.keys().next().copied().unwrap_or(active.base_offset);
        // DeleteRecords may have moved the log start inside the first segment. A checkpoint
        // beyond the recovered end (a torn tail) is capped there.
        let log_start = checkpoint::read(dir, checkpoint::LOG_START_FILE)
            .map_or(first_base, |c| c.max(first_base))
            .min(active.next_offset);
        // A crash between the log-start checkpoint and the epoch checkpoint left epochs below it.
        epochs.truncate_from_start(log_start).map_err(io_err)?;
        let cleaner_offset = checkpoint::read(dir, checkpoint::CLEANER_FILE);
        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            sealed,
            active,
            log_start,
            epochs,
            unflushed_records: 0,
            oldest_unflushed_ms: None,
            cleaner_offset,
            producers: ProducerStates::default(),
        };
        log.load_producer_state().map_err(io_err)?;
        tracing::debug!(dir = %dir.display(), log_start = %log.log_start,
            log_end = %log.active.next_offset, segments = log.segment_count(), "opened partition log");
        Ok(log)
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// Appends exactly one produced batch as the leader: validates it, assigns it offsets
    /// from the log end and stamps the leader epoch (both outside the CRC, so the stored
    /// CRC stays valid), rolling to a new segment first when needed.
    ///
    /// Batches of idempotent and transactional producers (`producerId >= 0`) are checked
    /// against the producer's state first (Kafka's `analyzeAndValidateProducerState`): a
    /// retry of one of its last five batches is not written again and comes back as
    /// [`AppendError::Duplicate`] with the original offsets; a stale epoch, a sequence gap or
    /// a non-transactional batch inside an open transaction are refused. A transactional
    /// batch opens a transaction at its offset, which holds the last stable offset back
    /// until a marker ([`PartitionLog::append_control`]) ends it.
    pub fn append_as_leader(
        &mut self,
        batch: &[u8],
        epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        self.append_checked(batch, epoch, now_ms, true)
    }

    /// An append written by a coordinator of this broker (transactional offset commits to
    /// `__consumer_offsets`): like Kafka's coordinator-origin appends it carries no sequence
    /// numbers, so sequence checks are skipped; the batch still opens its producer's
    /// transaction, which a marker closes.
    pub fn append_as_coordinator(
        &mut self,
        batch: &[u8],
        epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        self.append_checked(batch, epoch, now_ms, false)
    }

    fn append_checked(
        &mut self,
        batch: &[u8],
        epoch: LeaderEpoch,
        now_ms: i64,
        check_sequences: bool,
    ) -> Result<AppendInfo, AppendError> {
        let header = validate_batch(batch)?;
        check_record_count(&header)?;
        if batch.len() as u64 > self.config.max_message_bytes {
            return Err(AppendError::MessageTooLarge {
                size: batch.len(),
                max: self.config.max_message_bytes,
            });
        }
        if check_sequences {
            check_producer_fields(&header)?;
        }
        let idempotent = header.producer_id >= 0;
        if idempotent && check_sequences {
            if let Some(original) = self.producers.check_data(&header)? {
                return Err(AppendError::Duplicate(AppendInfo {
                    base_offset: original.first_offset,
                    last_offset: original.last_offset,
                    max_timestamp: original.max_timestamp,
                    log_start_offset: self.log_start,
                    records: u32::try_from(
                        original.last_offset.value() - original.first_offset.value() + 1,
                    )
                    .unwrap_or(u32::MAX),
                    bytes: 0,
                    log_append_time_ms: -1,
                }));
            }
        }
        // Only topic settings that need the records open take the slow path (a copy).
        let rewritten = crate::validate::prepare_batch(batch, &header, &self.config, now_ms)?;
        let (batch, header, log_append_time_ms) = match &rewritten {
            Some(r) => (&r.batch[..], r.header, r.log_append_time_ms),
            None => (batch, header, -1),
        };
        let (info, stored) = self.write_batch(batch, header, epoch, now_ms)?;
        if idempotent {
            self.producers.apply_data(&stored);
        }
        self.count_unflushed(info.records, now_ms)?;
        Ok(AppendInfo {
            log_append_time_ms,
            ..info
        })
    }

    /// Writes a validated batch at the log end (rolling first when due) and returns its
    /// append info and its header with the assigned base offset. Producer state and the
    /// flush policy are the caller's.
    pub(crate) fn write_batch(
        &mut self,
        batch: &[u8],
        header: BatchHeader,
        epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<(AppendInfo, BatchHeader), AppendError> {
        let base_offset = self.active.next_offset;
        let last_offset = Offset(base_offset.value() + i64::from(header.last_offset_delta));
        if self.active.should_roll(
            batch.len(),
            last_offset,
            header.max_timestamp,
            &self.config,
            now_ms,
        ) {
            self.roll(now_ms)?;
        }
        let interval = self.config.index_interval_bytes;
        self.active
            .append(batch, &header, base_offset, epoch, interval)?;
        if self.epochs.latest().is_none_or(|latest| epoch > latest) {
            self.epochs.assign(epoch, base_offset)?;
        }
        let records = u32::try_from(header.records_count).expect("validated non-negative");
        let info = AppendInfo {
            base_offset,
            last_offset,
            max_timestamp: header.max_timestamp,
            log_start_offset: self.log_start,
            records,
            bytes: batch.len(),
            log_append_time_ms: -1,
        };
        let stored = BatchHeader {
            base_offset: base_offset.value(),
            ..header
        };
        Ok((info, stored))
    }

    /// The `flush.messages` policy after an append.
    pub(crate) fn count_unflushed(&mut self, records: u32, now_ms: i64) -> std::io::Result<()> {
        self.unflushed_records += u64::from(records);
        self.oldest_unflushed_ms.get_or_insert(now_ms);
        if self.unflushed_records >= self.config.flush_messages {
            self.flush()?;
        }
        Ok(())
    }

    /// Reads whole batches from the one containing `start`, from a single segment, up to
    /// `max_bytes` (but always one whole batch when `min_one_batch`, KIP-74), stopping
    /// before any batch whose base offset is >= `upper_bound`.
    pub fn read(
        &self,
        start: Offset,
        max_bytes: usize,
        upper_bound: Offset,
        min_one_batch: bool,
    ) -> Result<ReadInfo, ReadError> {
        let log_end = self.active.next_offset;
        if start < self.log_start || start > log_end {
            return Err(ReadError::OffsetOutOfRange {
                requested: start,
                log_start: self.log_start,
                log_end,
            });
        }
        let empty = ReadInfo {
            records: Bytes::new(),
            next_offset_hint: start,
        };
        if start == log_end || start >= upper_bound {
            return Ok(empty);
        }
        for segment in self.segments_from(start) {
            if segment.next_offset <= start {
                continue;
            }
            if let Some((records, next)) =
                segment.read(start, max_bytes, upper_bound, min_one_batch)?
            {
                return Ok(ReadInfo {
                    records,
                    next_offset_hint: next,
                });
            }
        }
        Ok(empty)
    }

    pub fn log_start_offset(&self) -> LogStartOffset {
        LogStartOffset(self.log_start)
    }

    pub fn log_end_offset(&self) -> LogEndOffset {
        LogEndOffset(self.active.next_offset)
    }

    /// The first record whose timestamp is >= `ts`, exact to the record, or None.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<TimestampOffset>, ReadError> {
        for segment in self.segments() {
            if segment.max_timestamp.is_none_or(|m| m.timestamp < ts) {
                continue;
            }
            // Every record up to the last time index entry below `ts` is older than `ts`.
            let from = segment
                .time_index
                .last_before(ts)
                .map_or(segment.base_offset, |e| {
                    Offset(segment.base_offset.value() + i64::from(e.relative_offset) + 1)
                });
            let found = segment.find_batch(from, |h| h.max_timestamp >= ts)?;
            if let Some((position, header)) = found {
                let batch = segment.read_bytes(position, header.total_size())?.freeze();
                let exact = first_record_at_or_after(batch, &header, ts);
                let mut found = exact.unwrap_or(TimestampOffset {
                    offset: Offset(header.base_offset),
                    timestamp: header.max_timestamp,
                });
                // As Kafka: never answer with an offset below the log start.
                found.offset = found.offset.max(self.log_start);
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The largest timestamp in the log and the (first) record that has it.
    pub fn max_timestamp_offset(&self) -> Option<TimestampOffset> {
        let (segment, max) = self
            .segments()
            .filter_map(|s| s.max_timestamp.map(|m| (s, m)))
            .reduce(|best, next| {
                if next.1.timestamp > best.1.timestamp {
                    next
                } else {
                    best
                }
            })?;
        let fallback = TimestampOffset {
            offset: max.last_offset,
            timestamp: max.timestamp,
        };
        let exact = (|| -> std::io::Result<Option<TimestampOffset>> {
            let Some((position, header)) = segment.find_batch(max.last_offset, |_| true)? else {
                return Ok(None);
            };
            let batch = segment.read_bytes(position, header.total_size())?.freeze();
            Ok(first_record_at_or_after(batch, &header, max.timestamp))
        })();
        match exact {
            Ok(found) => Some(found.unwrap_or(fallback)),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e,
                    "reading the max-timestamp batch failed; answering with its last offset");
                Some(fallback)
            }
        }
    }

    /// OffsetForLeaderEpoch: see `EpochCache::end_offset_for`.
    pub fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        self.epochs.end_offset_for(epoch, self.active.next_offset)
    }

    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.epochs.latest()
    }

    /// Fsyncs the active segment's log and indexes. Sealed segments were fsynced when they
    /// were sealed, so there is never anything left to sync in them.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.active.sync()?;
        self.unflushed_records = 0;
        self.oldest_unflushed_ms = None;
        Ok(())
    }

    /// `flush.ms`: flushes when the oldest unflushed append is at least that old. Returns
    /// whether it flushed.
    pub fn flush_if_due(&mut self, now_ms: i64) -> std::io::Result<bool> {
        let Some(oldest) = self.oldest_unflushed_ms else {
            return Ok(false);
        };
        let age_ms = u64::try_from(now_ms.saturating_sub(oldest)).unwrap_or(0);
        if age_ms < self.config.flush_ms {
            return Ok(false);
        }
        self.flush()?;
        Ok(true)
    }

    /// Seals the active segment (fsyncing it) and starts a new one at the log end. A no-op
    /// when the active segment is empty: two segments may not share a base offset.
    pub fn roll(&mut self, now_ms: i64) -> std::io::Result<()> {
        if self.active.is_empty() {
            return Ok(());
        }
        let next = ActiveSegment::create(&self.dir, self.active.next_offset, now_ms)?;
        let old = std::mem::replace(&mut self.active, next);
        let base = old.base_offset;
        self.sealed.insert(base, old.seal()?);
        // The new segment's base is the log end: the snapshot holds every batch below it.
        self.take_snapshot()?;
        tracing::debug!(dir = %self.dir.display(), sealed = %base, new = %self.active.base_offset,
            "rolled segment");
        Ok(())
    }

    pub fn segment_count(&self) -> usize {
        self.sealed.len() + 1
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments().map(|s| s.size_bytes).sum()
    }

    /// Flushes and writes a producer-state snapshot at the log end, so the next open
    /// replays nothing.
    pub fn close(mut self) -> std::io::Result<()> {
        self.flush()?;
        self.take_snapshot()
    }

    /// All segments, oldest first.
    pub(crate) fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.sealed
            .values()
            .map(|s| &**s)
            .chain(std::iter::once(&*self.active))
    }

    /// Segments from the one that may contain `start` onwards.
    pub(crate) fn segments_from(&self, start: Offset) -> impl Iterator<Item = &Segment> {
        // With no sealed segment at or below `start`, the scan starts at the oldest segment.
        let first_base = self
            .sealed
            .range(..=start)
            .next_back()
            .map_or(Offset(i64::MIN), |(base, _)| *base);
        self.segments()
            .skip_while(move |s| s.base_offset < first_base)
    }
}

/// Kafka's LogValidator rules for the producer fields of a client's batch: markers come only
/// from transaction coordinators, and a transactional batch needs a producer id.
fn check_producer_fields(header: &BatchHeader) -> Result<(), AppendError> {
    if header.is_control() {
        return Err(AppendError::InvalidRecord(
            "clients are not allowed to write control records".into(),
        ));
    }
    if header.is_transactional() && header.producer_id < 0 {
        return Err(AppendError::InvalidRecord(
            "transactional record batch has no producer id".into(),
        ));
    }
    if header.producer_id >= 0 && header.base_sequence < 0 {
        return Err(AppendError::InvalidRecord(format!(
            "record batch of producer {} has no sequence number",
            header.producer_id
        )));
    }
    Ok(())
}

/// Kafka's LogValidator checks for v2 batches that the CRC cannot catch.
fn check_record_count(header: &BatchHeader) -> Result<(), AppendError> {
    if header.records_count == 0 {
        return Err(AppendError::InvalidRecord(
            "record batch contains no records".into(),
        ));
    }
    if i64::from(header.records_count) != i64::from(header.last_offset_delta) + 1 {
        return Err(AppendError::InvalidRecord(format!(
            "record batch has {} records but lastOffsetDelta {}",
            header.records_count, header.last_offset_delta
        )));
    }
    Ok(())
}

/// Decodes one stored batch and finds its first record with timestamp >= `ts`.
fn first_record_at_or_after(
    mut batch: Bytes,
    header: &BatchHeader,
    ts: i64,
) -> Option<TimestampOffset> {
    if header.timestamp_type() == TimestampType::LogAppendTime {
        // Every record carries the batch's append time.
        return Some(TimestampOffset {
            offset: Offset(header.base_offset),
            timestamp: header.max_timestamp,
        });
    }
    match RecordBatchDecoder::decode(&mut batch) {
        Ok(set) => set
            .records
            .iter()
            .find(|r| r.timestamp >= ts)
            .map(|r| TimestampOffset {
                offset: Offset(r.offset),
                timestamp: r.timestamp,
            }),
        Err(e) => {
            tracing::warn!(base_offset = header.base_offset, error = %e,
                "could not decode a stored batch to find a record by timestamp");
            None
        }
    }
}

/// Base offsets of the `.log` files in `dir`, sorted. Other files are left alone: future
/// cleaner files (`.cleaned`, `.swap`) and checkpoints live here too.
fn segment_bases(dir: &Path) -> std::io::Result<Vec<Offset>> {
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        if let Some(base) = name.to_str().and_then(parse_log_file_name) {
            bases.push(base);
        }
    }
    bases.sort();
    Ok(bases)
}
