//! One transactional id's metadata (Kafka's TransactionMetadata) and its states.

use std::collections::BTreeSet;

/// Kafka's TransactionState, with the `transaction_status` byte stored in
/// `__transaction_state` and the name DescribeTransactions/ListTransactions use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TxnStatus {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnStatus {
    pub const ALL: [TxnStatus; 8] = [
        TxnStatus::Empty,
        TxnStatus::Ongoing,
        TxnStatus::PrepareCommit,
        TxnStatus::PrepareAbort,
        TxnStatus::CompleteCommit,
        TxnStatus::CompleteAbort,
        TxnStatus::Dead,
        TxnStatus::PrepareEpochFence,
    ];

    /// The `transaction_status` byte of TransactionLogValue.
    pub fn id(self) -> i8 {
        match self {
            TxnStatus::Empty => 0,
            TxnStatus::Ongoing => 1,
            TxnStatus::PrepareCommit => 2,
            TxnStatus::PrepareAbort => 3,
            TxnStatus::CompleteCommit => 4,
            TxnStatus::CompleteAbort => 5,
            TxnStatus::Dead => 6,
            TxnStatus::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<TxnStatus> {
        TxnStatus::ALL.into_iter().find(|s| s.id() == id)
    }

    /// Kafka's TransactionState.name, as shown by DescribeTransactions and ListTransactions.
    pub fn name(self) -> &'static str {
        match self {
            TxnStatus::Empty => "Empty",
            TxnStatus::Ongoing => "Ongoing",
            TxnStatus::PrepareCommit => "PrepareCommit",
            TxnStatus::PrepareAbort => "PrepareAbort",
            TxnStatus::CompleteCommit => "CompleteCommit",
            TxnStatus::CompleteAbort => "CompleteAbort",
            TxnStatus::Dead => "Dead",
            TxnStatus::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn from_name(name: &str) -> Option<TxnStatus> {
        TxnStatus::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Waiting for markers: the client must retry later (CONCURRENT_TRANSACTIONS).
    pub fn is_preparing(self) -> bool {
        matches!(self, TxnStatus::PrepareCommit | TxnStatus::PrepareAbort)
    }

    /// No transaction open: a new one may begin, and the id may expire.
    pub fn is_idle(self) -> bool {
        matches!(
            self,
            TxnStatus::Empty | TxnStatus::CompleteCommit | TxnStatus::CompleteAbort
        )
    }
}

/// Kafka's "no producer epoch" (RecordBatch.NO_PRODUCER_EPOCH).
pub const NO_EPOCH: i16 = -1;
/// Kafka's "no producer id" (RecordBatch.NO_PRODUCER_ID).
pub const NO_PRODUCER_ID: i64 = -1;

/// Kafka's TransactionMetadata.isEpochExhausted: the epoch cannot be bumped twice more (once to
/// fence, once for the next producer), so the next InitProducerId rotates the producer id.
pub fn is_epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// The state of one transactional id. Fields below the line are not persisted (as in Kafka's
/// TransactionLogValue v0) and are lost on restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub status: TxnStatus,
    /// Partitions of the open (or preparing) transaction, ordered for stable records.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the current transaction began (first AddPartitionsToTxn), -1 when none.
    pub start_ms: i64,
    pub last_update_ms: i64,
    // ---- in memory only ----
    /// The producer id before the last rotation (KIP-360 retries), -1 when none.
    pub previous_producer_id: i64,
    /// The epoch before the last bump, for recognising a retried InitProducerId (KIP-360).
    pub last_producer_epoch: i16,
    /// The marker job in flight while PrepareCommit/PrepareAbort.
    pub job: Option<u64>,
}

impl TxnMetadata {
    /// A transactional id seen for the first time: no epoch yet, InitProducerId bumps it to 0.
    pub fn new(producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        TxnMetadata {
            producer_id,
            producer_epoch: NO_EPOCH,
            timeout_ms,
            status: TxnStatus::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
            previous_producer_id: NO_PRODUCER_ID,
            last_producer_epoch: NO_EPOCH,
            job: None,
        }
    }

    /// Ongoing, past its timeout (Kafka: txnStartTimestamp + txnTimeoutMs < now).
    pub fn is_timed_out(&self, now_ms: i64) -> bool {
        self.status == TxnStatus::Ongoing && self.start_ms + i64::from(self.timeout_ms) < now_ms
    }
}

impl TxnMetadata {
    /// The metadata a replayed `TransactionLogValue` describes; in-memory-only fields start empty.
    pub fn from_record(value: super::records::TxnLogValue) -> Self {
        let partitions = value
            .partitions
            .unwrap_or_default()
            .into_iter()
            .flat_map(|(topic, ps)| ps.into_iter().map(move |p| (topic.clone(), p)))
            .collect();
        TxnMetadata {
            producer_id: value.producer_id,
            producer_epoch: value.producer_epoch,
            timeout_ms: value.timeout_ms,
            status: value.status,
            partitions,
            start_ms: value.start_ms,
            last_update_ms: value.last_update_ms,
            previous_producer_id: NO_PRODUCER_ID,
            last_producer_epoch: NO_EPOCH,
            job: None,
        }
    }
}
