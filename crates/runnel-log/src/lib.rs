//! One partition's append-only log on disk: segments with sparse offset and time indexes,
//! recovery of a torn tail after a crash, a leader epoch cache and Kafka's flush policy.
//!
//! All I/O is synchronous `std::fs`; the broker owns each [`PartitionLog`] behind a mutex.

mod active;
mod checkpoint;
mod cleaner;
pub mod config;
mod epoch_cache;
pub mod error;
mod index;
mod log;
pub mod offsets;
mod producer_state;
mod recovery;
mod retention;
mod segment;
mod snapshot;
mod time_index;
mod transactions;
mod txn_index;
mod validate;

pub use cleaner::{CleanOutcome, CleanPlan, CleanedSegments, CrashPoint};
pub use config::{CleanupPolicy, LogConfig, TopicCompression};
pub use error::{AppendError, DeleteRecordsError, OpenError, ReadError};
pub use log::{AppendInfo, PartitionLog, ReadInfo, TimestampOffset};
pub use offsets::{
    HighWatermark, LastStableOffset, LeaderEpoch, LogEndOffset, LogStartOffset, Offset,
};
pub use retention::RetentionOutcome;
pub use transactions::ProducerInfo;
pub use txn_index::AbortedTxn;
