//! One partition's append-only log on disk: segments with sparse offset and time indexes,
//! recovery of a torn tail after a crash, a leader epoch cache and Kafka's flush policy.
//!
//! All I/O is synchronous `std::fs`; the broker owns each [`PartitionLog`] behind a mutex.

mod active;
pub mod config;
mod epoch_cache;
pub mod error;
mod index;
mod log;
pub mod offsets;
mod recovery;
mod segment;
mod time_index;

pub use config::LogConfig;
pub use error::{AppendError, OpenError, ReadError};
pub use log::{AppendInfo, PartitionLog, ReadInfo, TimestampOffset};
pub use offsets::{
    HighWatermark, LastStableOffset, LeaderEpoch, LogEndOffset, LogStartOffset, Offset,
};
