//! Group coordinator settings, named after Kafka's broker properties.

/// The broker properties that shape the classic group protocol. `Default` gives Kafka's defaults.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`: the smallest session timeout a member may ask for.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`: the largest session timeout a member may ask for.
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group waits
    /// for more members before completing.
    pub initial_rebalance_delay_ms: i32,
    /// `group.max.size`: members allowed in one group.
    pub max_group_size: i32,
    /// `offsets.retention.minutes` in milliseconds: how long offsets of an empty group are kept.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`: how often expired offsets are looked for.
    pub offsets_retention_check_interval_ms: i64,
    /// `offset.metadata.max.bytes`: the longest commit metadata string accepted.
    pub offset_metadata_max_bytes: usize,
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets`.
    pub offsets_partitions: i32,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_group_size: i32::MAX,
            offsets_retention_ms: 10_080 * 60 * 1000,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            offsets_partitions: 50,
        }
    }
}
