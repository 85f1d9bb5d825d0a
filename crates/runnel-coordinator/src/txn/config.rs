//! Transaction coordinator settings, named after Kafka's broker properties.

/// Settings of the transaction coordinator (Kafka's `transaction.*` broker properties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`: the largest `transaction_timeout_ms` InitProducerId accepts.
    pub transaction_max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`: an idle transactional id (Empty, CompleteCommit or
    /// CompleteAbort, not updated for this long) is removed with a tombstone.
    pub transactional_id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`: how often ongoing
    /// transactions are checked against their timeout.
    pub abort_timed_out_transaction_cleanup_interval_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`: how often idle
    /// transactional ids are checked against `transactional_id_expiration_ms`.
    pub remove_expired_transaction_cleanup_interval_ms: i64,
    /// `transaction.state.log.num.partitions`: partitions of `__transaction_state`.
    pub state_partitions: i32,
    /// `offsets.topic.num.partitions`: AddOffsetsToTxn adds the group's `__consumer_offsets`
    /// partition to the transaction, computed with this count.
    pub offsets_partitions: i32,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            transaction_max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 604_800_000,
            abort_timed_out_transaction_cleanup_interval_ms: 10_000,
            remove_expired_transaction_cleanup_interval_ms: 3_600_000,
            state_partitions: 50,
            offsets_partitions: 50,
        }
    }
}
