//! Errors of the partition log. Each variant names the Kafka error code the broker should
//! answer with, so that no expected failure turns into a dropped connection.

use crate::log::AppendInfo;
use crate::offsets::Offset;
use runnel_protocol::record_batch::BatchError;
use std::path::PathBuf;

/// Why an append was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Maps to `CORRUPT_MESSAGE`.
    #[error("corrupt record batch: {0}")]
    Corrupt(#[from] BatchError),
    /// Maps to `INVALID_RECORD`.
    #[error("invalid record batch: {0}")]
    InvalidRecord(String),
    /// Maps to `MESSAGE_TOO_LARGE`.
    #[error("record batch of {size} bytes exceeds max.message.bytes={max}")]
    MessageTooLarge { size: usize, max: u64 },
    /// Not an error for the producer: the batch repeats one of the producer's last five
    /// batches (a retry), so nothing was written. The broker answers success with the
    /// original offsets carried here (`records` counts them, `bytes` is 0, no append time).
    #[error("duplicate of the batch already stored at offsets {}..={}", .0.base_offset, .0.last_offset)]
    Duplicate(AppendInfo),
    /// Maps to `OUT_OF_ORDER_SEQUENCE_NUMBER`: the batch's first sequence does not follow
    /// the producer's last one (or a new epoch did not start at 0).
    #[error("out of order sequence number for producer {producer_id} (epoch {epoch}): received {received}, last appended {last_sequence}")]
    OutOfOrderSequence {
        producer_id: i64,
        epoch: i16,
        last_sequence: i32,
        received: i32,
    },
    /// Maps to `INVALID_PRODUCER_EPOCH` (Produce, and WriteTxnMarkers with an old producer
    /// epoch; Kafka 2.7+ answers produce with this instead of PRODUCER_FENCED).
    #[error("producer {producer_id} is fenced: epoch {epoch} is older than the current epoch {current_epoch}")]
    ProducerFenced {
        producer_id: i64,
        epoch: i16,
        current_epoch: i16,
    },
    /// Maps to `TRANSACTION_COORDINATOR_FENCED`: a marker from an older coordinator epoch.
    #[error("transaction marker for producer {producer_id} has coordinator epoch {coordinator_epoch}, older than {current_coordinator_epoch}")]
    CoordinatorFenced {
        producer_id: i64,
        coordinator_epoch: i32,
        current_coordinator_epoch: i32,
    },
    /// Maps to `INVALID_TXN_STATE`.
    #[error("invalid transaction state for producer {producer_id}: {reason}")]
    InvalidTxnState {
        producer_id: i64,
        reason: &'static str,
    },
    /// A disk error; the log may need the broker's attention (`KAFKA_STORAGE_ERROR`).
    #[error("I/O error appending to the log: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Maps to `OFFSET_OUT_OF_RANGE`.
    #[error("offset {requested} is out of range: the log holds offsets {log_start} to {log_end} (exclusive)")]
    OffsetOutOfRange {
        requested: Offset,
        log_start: Offset,
        log_end: Offset,
    },
    #[error("I/O error reading the log: {0}")]
    Io(#[from] std::io::Error),
}

/// Why DeleteRecords was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DeleteRecordsError {
    /// Maps to `OFFSET_OUT_OF_RANGE`.
    #[error("cannot delete records before offset {requested}: the log holds offsets {log_start} to {log_end} (exclusive)")]
    OffsetOutOfRange {
        requested: Offset,
        log_start: Offset,
        log_end: Offset,
    },
    /// Maps to `POLICY_VIOLATION` (Kafka refuses DeleteRecords on compact-only topics).
    #[error("{0}")]
    PolicyViolation(String),
    /// Maps to `KAFKA_STORAGE_ERROR`.
    #[error("I/O error deleting records: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a partition log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("I/O error opening log directory {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("corrupt leader-epoch-checkpoint {path}: {reason}")]
    BadEpochCheckpoint { path: PathBuf, reason: String },
}
