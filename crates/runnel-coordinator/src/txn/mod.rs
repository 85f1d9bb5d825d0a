//! Kafka's transaction coordinator (TransactionCoordinator, TransactionStateManager and the
//! bookkeeping half of TransactionMarkerChannelManager) as a deterministic state machine.
//!
//! ```text
//!   broker runtime                           TxnCoordinator (this module, no I/O, no clock)
//!   ──────────────                           ──────────────────────────────────────────────
//!   request + now_ms ─── handle() ─────────▶ validate, change in-memory state
//!   markers durable  ─── markers_written() ▶ PrepareX -> CompleteX
//!   timer fires      ─── tick(now_ms) ─────▶ abort timed-out transactions, expire idle ids
//!                    ◀── TxnOutput ───────── responses to send now; appends to
//!                                            __transaction_state (responses to send and
//!                                            marker jobs to start once each is durable);
//!                                            marker jobs to start now
//!   start-up         ─── replay(k, v) ─────▶ rebuild transactions from the log
//!                    ─── finish_loading() ─▶ re-issue markers of PrepareCommit/PrepareAbort
//! ```
//!
//! Two-phase completion: EndTxn (or a timeout, or a fencing InitProducerId) writes a
//! PrepareCommit/PrepareAbort record; only once it is durable may the broker write the
//! transaction markers (one control batch per partition); once all markers are durable the broker
//! calls `markers_written` and the coordinator writes CompleteCommit/CompleteAbort. A crash in
//! between leaves the Prepare record as the last one, and `finish_loading` re-issues the markers.
//!
//! State is changed when a request is handled (optimistically, before its append completes), as
//! in the group coordinator, so the in-memory view equals what replaying the appended records
//! gives. If an append to `__transaction_state` fails, the in-memory state is ahead of the log:
//! the broker must rebuild the coordinator from the log (Kafka unloads the partition likewise).

mod add_partitions;
mod config;
mod describe;
mod end_txn;
mod init_producer_id;
pub mod records;
mod state;
mod timers;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_codec;
#[cfg(test)]
mod tests_init;
#[cfg(test)]
mod tests_prop;

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    EndTxnRequest, EndTxnResponse, InitProducerIdRequest, InitProducerIdResponse,
    ListTransactionsRequest, ListTransactionsResponse,
};

pub use config::TxnConfig;
pub use records::TxnRecordError;
use state::TxnMetadata;
pub use state::TxnStatus;

/// Opaque id of a request awaiting its response, chosen by the broker, unique while pending.
pub type RequestToken = u64;

/// The id of the request being handled and the API version it came with; the version decides
/// which response fields and error codes exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnRequestMeta {
    pub token: RequestToken,
    pub api_version: i16,
}

/// A decoded transaction-coordinator request. InitProducerId without a transactional id
/// (idempotent producer) is not one: the broker answers it itself.
#[derive(Debug, Clone)]
pub enum TxnRequest {
    InitProducerId(InitProducerIdRequest),
    AddPartitionsToTxn(AddPartitionsToTxnRequest),
    AddOffsetsToTxn(AddOffsetsToTxnRequest),
    EndTxn(EndTxnRequest),
    DescribeTransactions(DescribeTransactionsRequest),
    ListTransactions(ListTransactionsRequest),
}

/// A response to encode at the version of the request it answers.
#[derive(Debug, Clone, PartialEq)]
pub enum TxnResponse {
    InitProducerId(InitProducerIdResponse),
    AddPartitionsToTxn(AddPartitionsToTxnResponse),
    AddOffsetsToTxn(AddOffsetsToTxnResponse),
    EndTxn(EndTxnResponse),
    DescribeTransactions(DescribeTransactionsResponse),
    ListTransactions(ListTransactionsResponse),
}

/// Markers the broker must write (one control batch per partition, `producer_id` and
/// `producer_epoch` in the batch header, `coordinator_epoch` in the EndTxnMarker) before the
/// transaction can complete; the broker calls `markers_written(id, ..)` when all are durable.
/// A job is never withdrawn: once started it must be finished (retried until it succeeds), or
/// the coordinator rebuilt from the log (which re-issues it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerJob {
    pub id: u64,
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
    pub partitions: Vec<(String, i32)>,
}

/// What the broker must do, in this order: perform `appends` in order (each as one record batch
/// on the given `__transaction_state` partition, e.g. with `records::encode_batch`), sending an
/// append's `then` responses and starting its `markers` once it is durable, or sending its
/// `on_failure` responses if it fails; then send `responses` and start `markers`. A token is
/// answered at most once: the first response produced for a token wins, later ones are dropped.
#[derive(Debug, Default)]
pub struct TxnOutput {
    pub responses: Vec<(RequestToken, TxnResponse)>,
    pub appends: Vec<TxnAppend>,
    /// Jobs whose Prepare record is already durable (re-issued by `finish_loading`).
    pub markers: Vec<MarkerJob>,
}

/// Records for one `__transaction_state` partition, and what waits on their append.
#[derive(Debug)]
pub struct TxnAppend {
    /// The `__transaction_state` partition.
    pub partition: i32,
    /// (key, value) in Kafka's TransactionLogKey/TransactionLogValue formats; None = tombstone.
    pub records: Vec<(Bytes, Option<Bytes>)>,
    pub then: Vec<(RequestToken, TxnResponse)>,
    pub on_failure: Vec<(RequestToken, TxnResponse)>,
    /// Marker jobs to start only once this append (their Prepare record) is durable: writing
    /// markers before the Prepare record could commit a transaction the log does not know about.
    pub markers: Vec<MarkerJob>,
}

/// Where producer ids come from: the broker allocates them (from persisted blocks) so the
/// coordinator stays pure.
pub trait ProducerIdSource {
    fn next_producer_id(&mut self) -> i64;
}

/// The transaction coordinator for all `__transaction_state` partitions of this broker.
/// Single-threaded: the broker runtime owns it and calls it from one task.
///
/// Lifecycle: `new`, then `replay` every record of `__transaction_state` in log order, then
/// `finish_loading` (start the marker jobs it returns); from then on `handle` requests,
/// `markers_written` when a job's markers are durable, and `tick` whenever `next_deadline` passes.
#[derive(Debug)]
pub struct TxnCoordinator {
    config: TxnConfig,
    txns: BTreeMap<String, TxnMetadata>,
    /// Marker jobs issued and not yet completed: job id -> transactional id.
    jobs: BTreeMap<u64, String>,
    next_job_id: u64,
    /// Written into every marker; a single broker keeps its `__transaction_state` leadership.
    coordinator_epoch: i32,
    next_abort_scan_ms: Option<i64>,
    next_expire_scan_ms: Option<i64>,
}

/// What a handler needs besides the transaction map: settings, the output being built, the time.
pub(crate) struct Ctx<'a> {
    pub cfg: &'a TxnConfig,
    pub out: &'a mut TxnOutput,
    pub now_ms: i64,
    pub jobs: &'a mut BTreeMap<u64, String>,
    pub next_job_id: &'a mut u64,
    pub coordinator_epoch: i32,
}

impl Ctx<'_> {
    /// Sends a response now.
    pub fn reply(&mut self, token: RequestToken, response: TxnResponse) {
        self.out.responses.push((token, response));
    }

    /// Appends the current record of `transactional_id` (a tombstone when `value` is None).
    pub fn append(&mut self, transactional_id: &str, value: Option<Bytes>) -> &mut TxnAppend {
        let partition = transaction_partition(transactional_id, self.cfg.state_partitions);
        let key = records::encode_key(transactional_id);
        self.out.appends.push(TxnAppend {
            partition,
            records: vec![(key, value)],
            then: Vec::new(),
            on_failure: Vec::new(),
            markers: Vec::new(),
        });
        self.out.appends.last_mut().expect("just pushed")
    }

    /// Appends the current state of `txn` (TransactionLogValue v0).
    pub fn persist(&mut self, transactional_id: &str, txn: &TxnMetadata) -> &mut TxnAppend {
        self.append(transactional_id, Some(records::encode_value(txn)))
    }

    /// Registers a marker job for a transaction in PrepareCommit/PrepareAbort.
    pub fn new_job(&mut self, transactional_id: &str, txn: &TxnMetadata) -> MarkerJob {
        let id = *self.next_job_id;
        *self.next_job_id += 1;
        self.jobs.insert(id, transactional_id.to_owned());
        MarkerJob {
            id,
            transactional_id: transactional_id.to_owned(),
            producer_id: txn.producer_id,
            producer_epoch: txn.producer_epoch,
            commit: txn.status == TxnStatus::PrepareCommit,
            coordinator_epoch: self.coordinator_epoch,
            partitions: txn.partitions.iter().cloned().collect(),
        }
    }
}

impl TxnCoordinator {
    pub fn new(config: TxnConfig) -> Self {
        assert!(
            config.state_partitions > 0,
            "transaction.state.log.num.partitions must be positive"
        );
        assert!(
            config.offsets_partitions > 0,
            "offsets.topic.num.partitions must be positive"
        );
        TxnCoordinator {
            config,
            txns: BTreeMap::new(),
            jobs: BTreeMap::new(),
            next_job_id: 1,
            coordinator_epoch: 0,
            next_abort_scan_ms: None,
            next_expire_scan_ms: None,
        }
    }

    pub fn config(&self) -> &TxnConfig {
        &self.config
    }

    /// Rebuilds state from one `__transaction_state` record during start-up replay, in log order
    /// (value None = tombstone).
    pub fn replay(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), TxnRecordError> {
        let transactional_id = records::decode_key(key)?;
        let value = value.map(records::decode_value).transpose()?;
        match value {
            Some(value) if value.status != TxnStatus::Dead => {
                self.txns
                    .insert(transactional_id, TxnMetadata::from_record(value));
            }
            _ => {
                self.txns.remove(&transactional_id);
            }
        }
        Ok(())
    }

    /// End of replay: transactions in PrepareCommit/PrepareAbort get their MarkerJobs re-issued
    /// (two-phase completion survives a crash); returns them in `markers`.
    pub fn finish_loading(&mut self, now_ms: i64) -> TxnOutput {
        self.arm_timers(now_ms);
        let mut out = TxnOutput::default();
        let (txns, mut cx) = self.split(&mut out, now_ms);
        end_txn::reissue_markers(txns, &mut cx);
        out
    }

    pub fn handle(
        &mut self,
        meta: TxnRequestMeta,
        request: TxnRequest,
        ids: &mut dyn ProducerIdSource,
        now_ms: i64,
    ) -> TxnOutput {
        self.arm_timers(now_ms);
        let mut out = TxnOutput::default();
        let (txns, mut cx) = self.split(&mut out, now_ms);
        let cx = &mut cx;
        match request {
            TxnRequest::InitProducerId(r) => init_producer_id::handle(txns, meta, r, ids, cx),
            TxnRequest::AddPartitionsToTxn(r) => add_partitions::handle(txns, meta, r, cx),
            TxnRequest::AddOffsetsToTxn(r) => add_partitions::add_offsets(txns, meta, r, cx),
            TxnRequest::EndTxn(r) => end_txn::handle(txns, meta, r, cx),
            TxnRequest::DescribeTransactions(r) => describe::describe(txns, meta, r, cx),
            TxnRequest::ListTransactions(r) => describe::list(txns, meta, r, cx),
        }
        out
    }

    /// All markers of job `job_id` are durable: writes CompleteCommit/CompleteAbort. Unknown or
    /// stale job ids (e.g. reported twice) are ignored.
    pub fn markers_written(&mut self, job_id: u64, now_ms: i64) -> TxnOutput {
        self.arm_timers(now_ms);
        let mut out = TxnOutput::default();
        let (txns, mut cx) = self.split(&mut out, now_ms);
        end_txn::markers_written(txns, job_id, &mut cx);
        out
    }

    /// Fires due timers: aborts timed-out transactions (bumping the epoch, as Kafka does, so the
    /// timed-out producer is fenced) and removes expired transactional ids. Both are periodic
    /// scans, as in Kafka.
    pub fn tick(&mut self, now_ms: i64) -> TxnOutput {
        self.arm_timers(now_ms);
        let abort_due = self.next_abort_scan_ms.is_some_and(|due| due <= now_ms);
        let expire_due = self.next_expire_scan_ms.is_some_and(|due| due <= now_ms);
        let mut out = TxnOutput::default();
        let (txns, mut cx) = self.split(&mut out, now_ms);
        if abort_due {
            timers::abort_timed_out(txns, &mut cx);
        }
        if expire_due {
            timers::expire_transactional_ids(txns, &mut cx);
        }
        if abort_due {
            self.next_abort_scan_ms =
                Some(now_ms + self.config.abort_timed_out_transaction_cleanup_interval_ms);
        }
        if expire_due {
            self.next_expire_scan_ms =
                Some(now_ms + self.config.remove_expired_transaction_cleanup_interval_ms);
        }
        out
    }

    /// The earliest instant `tick` has something to do, if any: a scan is only reported while
    /// there is something it could find.
    pub fn next_deadline(&self) -> Option<i64> {
        let statuses = || self.txns.values().map(|t| t.status);
        let abort = self
            .next_abort_scan_ms
            .filter(|_| statuses().any(|s| s == TxnStatus::Ongoing));
        let expire = self
            .next_expire_scan_ms
            .filter(|_| statuses().any(TxnStatus::is_idle));
        abort.into_iter().chain(expire).min()
    }

    /// Abandons a pending request whose connection closed. Every response of this coordinator is
    /// either immediate or tied to an append, so nothing is parked: this is a no-op kept for
    /// symmetry with the group coordinator.
    pub fn cancel(&mut self, token: RequestToken) {
        let _ = token;
    }

    /// KIP-890 verification of a transactional write to `topic`-`partition` (what a verify_only
    /// AddPartitionsToTxn answers): Ok when the partition is in the ongoing transaction of this
    /// current producer; otherwise TRANSACTION_ABORTABLE (the partition was not added),
    /// CONCURRENT_TRANSACTIONS, PRODUCER_FENCED, INVALID_PRODUCER_ID_MAPPING or INVALID_REQUEST.
    pub fn verify_partition(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<(), ResponseError> {
        add_partitions::verify_partition(
            &self.txns,
            transactional_id,
            producer_id,
            producer_epoch,
            topic,
            partition,
        )
    }

    /// The state of a transactional id, if known (for tests and admin tools).
    pub fn status(&self, transactional_id: &str) -> Option<TxnStatus> {
        self.txns.get(transactional_id).map(|t| t.status)
    }

    /// Known transactional ids (for metrics).
    pub fn transaction_count(&self) -> usize {
        self.txns.len()
    }

    fn arm_timers(&mut self, now_ms: i64) {
        let cfg = &self.config;
        self.next_abort_scan_ms
            .get_or_insert(now_ms + cfg.abort_timed_out_transaction_cleanup_interval_ms);
        self.next_expire_scan_ms
            .get_or_insert(now_ms + cfg.remove_expired_transaction_cleanup_interval_ms);
    }

    /// The transaction map and a handler context over `out`, borrowed separately.
    fn split<'a>(
        &'a mut self,
        out: &'a mut TxnOutput,
        now_ms: i64,
    ) -> (&'a mut BTreeMap<String, TxnMetadata>, Ctx<'a>) {
        let cx = Ctx {
            cfg: &self.config,
            out,
            now_ms,
            jobs: &mut self.jobs,
            next_job_id: &mut self.next_job_id,
            coordinator_epoch: self.coordinator_epoch,
        };
        (&mut self.txns, cx)
    }
}

/// KIP-588: clients older than `fenced_since` do not know PRODUCER_FENCED and get
/// INVALID_PRODUCER_EPOCH instead (Kafka maps it the same way in KafkaApis).
/// None is success (error code 0).
pub(crate) fn error_code(
    error: impl Into<Option<ResponseError>>,
    api_version: i16,
    fenced_since: i16,
) -> i16 {
    match error.into() {
        None => 0,
        Some(ResponseError::ProducerFenced) if api_version < fenced_since => {
            ResponseError::InvalidProducerEpoch.code()
        }
        Some(error) => error.code(),
    }
}

/// The error for a client whose request waited on an append to `__transaction_state` that
/// failed: retriable, the client finds the coordinator again and retries.
pub(crate) const APPEND_FAILED: ResponseError = ResponseError::CoordinatorNotAvailable;

/// Kafka's `__transaction_state` partition for a transactional id: the same hash that places
/// a group on `__consumer_offsets` (`Utils.abs(id.hashCode()) % partitions`).
pub fn transaction_partition(transactional_id: &str, partitions: i32) -> i32 {
    crate::group::coordinator_partition(transactional_id, partitions)
}
