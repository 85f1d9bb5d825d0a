//! A partition as the broker serves it: the on-disk log behind a mutex, the offsets clients see
//! (log start, high watermark, last stable offset), and a watch channel that wakes long-polling
//! fetches when data arrives.
//!
//! On a single node the high watermark is the log end offset: the only in-sync replica is the
//! leader itself. Replication will move it separately (followers' fetch positions), which is why
//! it is tracked here and not inside the log.

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;
use runnel_log::{
    AbortedTxn, AppendError, AppendInfo, CleanOutcome, DeleteRecordsError, HighWatermark,
    LastStableOffset, LeaderEpoch, LogConfig, LogStartOffset, Offset, PartitionLog, ProducerInfo,
    ReadError, RetentionOutcome, TimestampOffset,
};
use tokio::sync::watch;

/// The offsets a fetch or list-offsets response reports, read together under one lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub log_start: LogStartOffset,
    pub high_watermark: HighWatermark,
    pub last_stable: LastStableOffset,
}

/// Which records a reader may see (Fetch `isolation_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    ReadUncommitted,
    ReadCommitted,
}

/// Records read for a fetch, with the offsets current at the time of the read.
#[derive(Debug)]
pub struct FetchedRecords {
    pub records: Bytes,
    pub offsets: PartitionOffsets,
    /// Aborted transactions overlapping the records (read_committed only), so the client can
    /// drop their records.
    pub aborted: Vec<AbortedTxn>,
}

#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error("partition was deleted")]
    Deleted,
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    DeleteRecords(#[from] DeleteRecordsError),
}

impl PartitionError {
    /// The Kafka error code a client gets for this failure.
    pub fn error_code(&self) -> ResponseError {
        match self {
            PartitionError::Deleted => ResponseError::UnknownTopicOrPartition,
            PartitionError::Append(AppendError::Corrupt(_)) => ResponseError::CorruptMessage,
            PartitionError::Append(AppendError::InvalidRecord(_)) => ResponseError::InvalidRecord,
            PartitionError::Append(AppendError::MessageTooLarge { .. }) => {
                ResponseError::MessageTooLarge
            }
            PartitionError::Append(AppendError::OutOfOrderSequence { .. }) => {
                ResponseError::OutOfOrderSequenceNumber
            }
            PartitionError::Append(AppendError::ProducerFenced { .. }) => {
                ResponseError::InvalidProducerEpoch
            }
            PartitionError::Append(AppendError::CoordinatorFenced { .. }) => {
                ResponseError::TransactionCoordinatorFenced
            }
            PartitionError::Append(AppendError::InvalidTxnState { .. }) => {
                ResponseError::InvalidTxnState
            }
            PartitionError::Read(ReadError::OffsetOutOfRange { .. })
            | PartitionError::DeleteRecords(DeleteRecordsError::OffsetOutOfRange { .. }) => {
                ResponseError::OffsetOutOfRange
            }
            PartitionError::DeleteRecords(DeleteRecordsError::PolicyViolation(_)) => {
                ResponseError::PolicyViolation
            }
            _ => ResponseError::KafkaStorageError,
        }
    }
}

pub struct Partition {
    topic: String,
    index: i32,
    log: Mutex<PartitionLog>,
    /// Publishes the high watermark after every append, for long-polling fetches.
    high_watermark_tx: watch::Sender<i64>,
    deleted: AtomicBool,
    leader_epoch: LeaderEpoch,
}

impl Partition {
    pub fn new(topic: &str, index: i32, log: PartitionLog) -> Partition {
        let high_watermark = log.log_end_offset().0.value();
        Partition {
            topic: topic.to_string(),
            index,
            log: Mutex::new(log),
            high_watermark_tx: watch::Sender::new(high_watermark),
            deleted: AtomicBool::new(false),
            leader_epoch: LeaderEpoch(0),
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn index(&self) -> i32 {
        self.index
    }

    pub fn leader_epoch(&self) -> LeaderEpoch {
        self.leader_epoch
    }

    /// Appends one produced batch and advances the high watermark (single node: on append).
    pub fn append(&self, batch: &[u8], now_ms: i64) -> Result<AppendInfo, PartitionError> {
        let mut log = self.log.lock();
        self.check_live()?;
        let info = match log.append_as_leader(batch, self.leader_epoch, now_ms) {
            // A retried batch of an idempotent producer: answer with where it already is.
            Err(AppendError::Duplicate(original)) => return Ok(original),
            result => result?,
        };
        let high_watermark = log.log_end_offset().0.value();
        drop(log);
        self.high_watermark_tx.send_replace(high_watermark);
        Ok(info)
    }

    /// Reads whole batches from `start`, bounded by the high watermark, or by the last stable
    /// offset for read_committed readers.
    pub fn read(
        &self,
        start: Offset,
        max_bytes: usize,
        isolation: Isolation,
        min_one_batch: bool,
    ) -> Result<FetchedRecords, PartitionError> {
        let log = self.log.lock();
        self.check_live()?;
        let offsets = offsets_of(&log);
        let upper_bound = match isolation {
            Isolation::ReadUncommitted => offsets.high_watermark.0,
            Isolation::ReadCommitted => offsets.last_stable.0,
        };
        let read = log.read(start, max_bytes, upper_bound, min_one_batch)?;
        let aborted = match isolation {
            Isolation::ReadCommitted if !read.records.is_empty() => {
                log.aborted_transactions(start, read.next_offset_hint)
            }
            _ => Vec::new(),
        };
        Ok(FetchedRecords {
            records: read.records,
            offsets,
            aborted,
        })
    }

    pub fn offsets(&self) -> Result<PartitionOffsets, PartitionError> {
        let log = self.log.lock();
        self.check_live()?;
        Ok(offsets_of(&log))
    }

    pub fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>, PartitionError> {
        let log = self.log.lock();
        self.check_live()?;
        Ok(log.offset_for_timestamp(timestamp)?)
    }

    pub fn max_timestamp_offset(&self) -> Result<Option<TimestampOffset>, PartitionError> {
        let log = self.log.lock();
        self.check_live()?;
        Ok(log.max_timestamp_offset())
    }

    /// OffsetForLeaderEpoch: the epoch found and its end offset, None below the earliest epoch.
    pub fn end_offset_for_epoch(
        &self,
        epoch: LeaderEpoch,
    ) -> Result<Option<(LeaderEpoch, Offset)>, PartitionError> {
        let log = self.log.lock();
        self.check_live()?;
        // The leader's own epoch ends at the log end even before anything was appended in it:
        // a Kafka leader records its epoch in the cache when it becomes leader, ours only at
        // the first append.
        if epoch == self.leader_epoch {
            return Ok(Some((epoch, log.log_end_offset().0)));
        }
        Ok(log.end_offset_for_epoch(epoch))
    }

    /// One retention pass (time and size); None when the partition was deleted.
    pub fn apply_retention(&self, now_ms: i64) -> std::io::Result<Option<RetentionOutcome>> {
        let mut log = self.log.lock();
        if self.check_live().is_err() {
            return Ok(None);
        }
        let outcome = log.apply_retention(now_ms)?;
        drop(log);
        self.wake_fetches();
        Ok(Some(outcome))
    }

    /// Compacts the log if it is dirty enough. The lock is held only to plan and to install;
    /// reading and rewriting segments happens without it, so appends carry on meanwhile.
    pub fn clean(&self, now_ms: i64) -> std::io::Result<Option<CleanOutcome>> {
        let plan = {
            let log = self.log.lock();
            if self.check_live().is_err() {
                return Ok(None);
            }
            log.prepare_clean(now_ms)
        };
        let Some(plan) = plan else { return Ok(None) };
        let cleaned = plan.execute(now_ms)?;
        let mut log = self.log.lock();
        if self.check_live().is_err() {
            return Ok(None);
        }
        log.install_cleaned(cleaned).map(Some)
    }

    /// DeleteRecords: moves the log start offset to `offset`.
    pub fn delete_records_before(&self, offset: Offset) -> Result<LogStartOffset, PartitionError> {
        let mut log = self.log.lock();
        self.check_live()?;
        let start = log.delete_records_before(offset)?;
        drop(log);
        self.wake_fetches();
        Ok(start)
    }

    /// Long polls re-read after the log start moved, so a consumer below it learns promptly.
    fn wake_fetches(&self) {
        self.high_watermark_tx.send_modify(|_| {});
    }

    /// Appends a batch written by one of this broker's coordinators (no sequence checks).
    pub fn append_from_coordinator(
        &self,
        batch: &[u8],
        now_ms: i64,
    ) -> Result<AppendInfo, PartitionError> {
        let mut log = self.log.lock();
        self.check_live()?;
        let info = log.append_as_coordinator(batch, self.leader_epoch, now_ms)?;
        let high_watermark = log.log_end_offset().0.value();
        drop(log);
        self.high_watermark_tx.send_replace(high_watermark);
        Ok(info)
    }

    /// Writes a transaction marker (commit or abort control batch) for a producer.
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, PartitionError> {
        let mut log = self.log.lock();
        self.check_live()?;
        let info = log.append_control(
            producer_id,
            producer_epoch,
            commit,
            coordinator_epoch,
            self.leader_epoch,
            now_ms,
        )?;
        let high_watermark = log.log_end_offset().0.value();
        drop(log);
        self.high_watermark_tx.send_replace(high_watermark);
        Ok(info)
    }

    /// Producers with state on this partition (DescribeProducers).
    /// Whether `producer_id` has a transaction open here (see `PartitionLog::has_open_transaction`).
    pub fn has_open_transaction(&self, producer_id: i64) -> Result<bool, PartitionError> {
        let log = self.log.lock();
        self.check_live()?;
        Ok(log.has_open_transaction(producer_id))
    }

    pub fn producers(&self) -> Result<Vec<ProducerInfo>, PartitionError> {
        let log = self.log.lock();
        self.check_live()?;
        Ok(log.producers())
    }

    /// Forgets idle producers past `producer.id.expiration.ms`.
    pub fn expire_producers(&self, now_ms: i64) -> usize {
        if self.check_live().is_err() {
            return 0;
        }
        self.log.lock().expire_producers(now_ms)
    }

    /// Applies a changed topic or broker configuration to the log.
    pub fn set_config(&self, config: LogConfig) {
        self.log.lock().set_config(config);
    }

    /// Bytes on disk, for DescribeLogDirs.
    pub fn size_bytes(&self) -> u64 {
        self.log.lock().size_bytes()
    }

    /// A receiver that changes whenever the high watermark moves.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.high_watermark_tx.subscribe()
    }

    /// Applies the `flush.ms` policy; called by the broker's flush timer.
    /// Returns how long the fsync took, if one was due.
    pub fn flush_if_due(&self, now_ms: i64) -> std::io::Result<Option<std::time::Duration>> {
        if self.deleted.load(Ordering::Acquire) {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        let flushed = self.log.lock().flush_if_due(now_ms)?;
        Ok(flushed.then(|| started.elapsed()))
    }

    pub fn flush(&self) -> std::io::Result<()> {
        if self.deleted.load(Ordering::Acquire) {
            return Ok(());
        }
        self.log.lock().flush()
    }

    /// Marks the partition deleted so in-flight requests holding it get an error instead of
    /// writing into a directory that is about to disappear.
    pub fn mark_deleted(&self) {
        let _log = self.log.lock();
        self.deleted.store(true, Ordering::Release);
        // Wake long-polls so they notice promptly.
        self.high_watermark_tx.send_modify(|_| {});
    }

    fn check_live(&self) -> Result<(), PartitionError> {
        if self.deleted.load(Ordering::Acquire) {
            return Err(PartitionError::Deleted);
        }
        Ok(())
    }
}

fn offsets_of(log: &PartitionLog) -> PartitionOffsets {
    let high_watermark = HighWatermark(log.log_end_offset().0);
    PartitionOffsets {
        log_start: log.log_start_offset(),
        high_watermark,
        // Below the first offset of any open transaction.
        last_stable: log.last_stable_offset(high_watermark),
    }
}
