//! Errors of the partition log. Each variant names the Kafka error code the broker should
//! answer with, so that no expected failure turns into a dropped connection.

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
