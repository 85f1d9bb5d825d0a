//! Per-partition log settings, named after Kafka's topic-level configs.

pub use runnel_protocol::record_batch::{Compression, TimestampType};

/// `cleanup.policy`: `delete`, `compact` or both (`compact,delete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// Retention by time and size deletes old segments.
    pub delete: bool,
    /// The cleaner keeps the latest record per key; keyless records are refused.
    pub compact: bool,
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy {
            delete: true,
            compact: false,
        }
    }
}

/// `compression.type` of a topic: keep what the producer sent, or recompress to one codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TopicCompression {
    #[default]
    Producer,
    Uncompressed,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl TopicCompression {
    /// The codec batches are stored with, None for `producer`.
    pub fn codec(self) -> Option<Compression> {
        match self {
            TopicCompression::Producer => None,
            TopicCompression::Uncompressed => Some(Compression::None),
            TopicCompression::Gzip => Some(Compression::Gzip),
            TopicCompression::Snappy => Some(Compression::Snappy),
            TopicCompression::Lz4 => Some(Compression::Lz4),
            TopicCompression::Zstd => Some(Compression::Zstd),
        }
    }
}

/// Settings for one partition log. Kafka property names are given per field; defaults match
/// Kafka's. Changing them at runtime ([`crate::PartitionLog::set_config`]) takes effect at the
/// next append or flush check.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll to a new segment when the active one would exceed this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment is at least this old.
    pub segment_ms: i64,
    /// `segment.index.bytes`: roll when the offset index would exceed this.
    pub segment_index_bytes: u64,
    /// `index.interval.bytes`: log bytes between two sparse index entries.
    pub index_interval_bytes: u64,
    /// `flush.messages`: fsync after this many unflushed records (`u64::MAX` = never).
    pub flush_messages: u64,
    /// `flush.ms`: fsync when the oldest unflushed append is this old (`u64::MAX` = never).
    pub flush_ms: u64,
    /// `max.message.bytes`: largest batch accepted.
    pub max_message_bytes: u64,
    /// `retention.ms`: sealed segments whose newest record is older than this are deleted
    /// (-1 = keep forever). Only with `cleanup.policy` delete.
    pub retention_ms: i64,
    /// `retention.bytes`: oldest segments are deleted while the log is larger than this
    /// (-1 = no limit). Only with `cleanup.policy` delete.
    pub retention_bytes: i64,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms`: how long the cleaner keeps a tombstone after it first saw it.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`: the cleaner runs once dirty bytes / cleanable bytes
    /// exceeds this.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: records younger than this are not compacted.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a log whose oldest dirty record is older than this is
    /// cleaned whatever its dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `compression.type`.
    pub compression: TopicCompression,
    /// `message.timestamp.type`: CreateTime keeps the producer's timestamps, LogAppendTime
    /// stamps batches with the broker's clock.
    pub timestamp_type: TimestampType,
    /// `producer.id.expiration.ms` (a broker setting in Kafka): producer state without an
    /// open transaction is forgotten this long after the producer's last write.
    pub producer_id_expiration_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            flush_messages: u64::MAX,
            flush_ms: u64::MAX,
            max_message_bytes: 1_048_588,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy::default(),
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            compression: TopicCompression::Producer,
            timestamp_type: TimestampType::CreateTime,
            producer_id_expiration_ms: 24 * 60 * 60 * 1000,
        }
    }
}
