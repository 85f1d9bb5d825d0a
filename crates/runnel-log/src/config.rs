//! Per-partition log settings, named after Kafka's topic-level configs.

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
        }
    }
}
