//! Runs the transaction coordinator state machine (`runnel_coordinator::txn`): appends its
//! records to `__transaction_state`, delivers its responses, and writes the transaction markers
//! it asks for to every partition of a transaction (WriteTxnMarkers, done locally on one node),
//! reporting back when they are durable so it can record the completion.
//!
//! ```text
//!   handler ─call()─▶ [mutex: handle() ─▶ append Prepare ─▶ respond ─▶ write markers ─▶ markers_written() ─▶ append Complete]
//! ```
//! Markers are written only after the Prepare record is durable: a crash in between leaves a
//! Prepare record that `finish_loading` turns into the same marker job on restart.

use std::collections::HashMap;

use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;
use runnel_coordinator::txn::records::encode_batch;
use runnel_coordinator::txn::{
    MarkerJob, ProducerIdSource, RequestToken, TxnCoordinator, TxnOutput, TxnRequest,
    TxnRequestMeta, TxnResponse,
};
use tokio::sync::{oneshot, Notify};

use crate::broker::{now_ms, Broker};
use crate::deadline_timer::run_at_deadlines;
use crate::group_runtime::OFFSETS_TOPIC;
use crate::internal_topics::{replay_partition, Logged, ReplayError};
use crate::producer_ids::ProducerIds;
use crate::topics::TopicRegistry;

/// The internal topic holding transaction state.
pub const TXN_STATE_TOPIC: &str = "__transaction_state";

struct State {
    coordinator: TxnCoordinator,
    waiting: HashMap<RequestToken, oneshot::Sender<TxnResponse>>,
    next_token: RequestToken,
}

/// Kafka's answer to a write that failed verification (`AddPartitionsToTxnManager`), for
/// Produce and TxnOffsetCommit: a fenced producer sees an epoch error, and a partition outside
/// the transaction is TRANSACTION_ABORTABLE for clients that know it (KIP-890) and
/// INVALID_TXN_STATE for older ones.
pub fn verification_error(error: ResponseError, knows_abortable: bool) -> ResponseError {
    match error {
        ResponseError::ProducerFenced => ResponseError::InvalidProducerEpoch,
        ResponseError::TransactionAbortable if !knows_abortable => ResponseError::InvalidTxnState,
        error => error,
    }
}

/// A transactional write to verify: this producer of this transactional id writes to this
/// partition.
pub struct TxnWrite<'a> {
    pub transactional_id: &'a str,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub topic: &'a str,
    pub partition: i32,
}

pub struct TxnRuntime {
    state: Mutex<State>,
    deadline_changed: Notify,
}

/// Producer ids for the coordinator, from the broker's durable allocator.
struct Ids<'a>(&'a Mutex<ProducerIds>);

impl ProducerIdSource for Ids<'_> {
    fn next_producer_id(&mut self) -> i64 {
        // An allocation failure is a disk failure; -1 makes the client retry InitProducerId.
        self.0.lock().next().unwrap_or_else(|error| {
            tracing::error!(%error, "cannot reserve producer ids");
            -1
        })
    }
}

impl TxnRuntime {
    /// Replays `__transaction_state`, if it exists. Marker jobs of transactions that were
    /// prepared but not completed are returned by `finish_loading`; `resume` runs them.
    pub fn load(
        mut coordinator: TxnCoordinator,
        topics: &TopicRegistry,
    ) -> Result<TxnRuntime, ReplayError> {
        if let Some(topic) = topics.get(TXN_STATE_TOPIC) {
            for partition in &topic.partitions {
                replay_partition(partition, |logged| match logged {
                    Logged::Record { key, value, .. } => {
                        coordinator.replay(key, value).map_err(|e| e.to_string())
                    }
                    Logged::Marker { .. } => Ok(()),
                })?;
            }
        }
        Ok(TxnRuntime {
            state: Mutex::new(State {
                coordinator,
                waiting: HashMap::new(),
                next_token: 0,
            }),
            deadline_changed: Notify::new(),
        })
    }

    /// Completes what a crash interrupted: re-issued marker jobs of prepared transactions.
    pub fn resume(&self, broker: &Broker) {
        let mut state = self.state.lock();
        let output = state.coordinator.finish_loading(now_ms());
        execute(&mut state, output, broker);
    }

    pub async fn call(
        &self,
        broker: &Broker,
        api_version: i16,
        request: TxnRequest,
    ) -> Option<TxnResponse> {
        let (sender, receiver) = oneshot::channel();
        {
            let mut state = self.state.lock();
            let token = state.next_token;
            state.next_token += 1;
            state.waiting.insert(token, sender);
            let meta = TxnRequestMeta { token, api_version };
            let mut ids = Ids(&broker.producer_ids);
            let output = state.coordinator.handle(meta, request, &mut ids, now_ms());
            execute(&mut state, output, broker);
        }
        self.deadline_changed.notify_one();
        receiver.await.ok()
    }

    /// KIP-890 verification that the write's partition is in the producer's ongoing
    /// transaction (see `TxnCoordinator::verify_partition`).
    pub fn verify(&self, write: &TxnWrite<'_>) -> Result<(), ResponseError> {
        self.write_verified(write, || false, || ())
    }

    /// Runs `write` for a transactional batch after KIP-890 verification, unless
    /// `continues_open_transaction` says the batch joins a transaction already open in that
    /// partition. Both run under this coordinator's lock, which marker writes also hold: no
    /// marker can close the transaction between the check and the write, so a write never
    /// opens a transaction that no marker will end (a "hanging" transaction that would stall
    /// read_committed consumers at the last stable offset for ever).
    pub fn write_verified<T>(
        &self,
        claim: &TxnWrite<'_>,
        continues_open_transaction: impl FnOnce() -> bool,
        write: impl FnOnce() -> T,
    ) -> Result<T, ResponseError> {
        let state = self.state.lock();
        if !continues_open_transaction() {
            state.coordinator.verify_partition(
                claim.transactional_id,
                claim.producer_id,
                claim.producer_epoch,
                claim.topic,
                claim.partition,
            )?;
        }
        Ok(write())
    }

    /// Fires timers (transaction timeouts, transactional id expiry) until shutdown.
    pub async fn run_timers(&self, broker: &Broker, shutdown: tokio::sync::watch::Receiver<bool>) {
        let next_deadline = || self.state.lock().coordinator.next_deadline();
        let fire = || {
            let mut state = self.state.lock();
            let output = state.coordinator.tick(now_ms());
            execute(&mut state, output, broker);
        };
        run_at_deadlines(next_deadline, fire, &self.deadline_changed, shutdown).await;
    }
}

/// Performs an output in the order the coordinator requires: appends (then their responses and
/// marker jobs), direct responses, immediate marker jobs. Completing a marker job produces a
/// further output (the Complete record), performed the same way.
fn execute(state: &mut State, output: TxnOutput, broker: &Broker) {
    let mut jobs = Vec::new();
    let topic = if output.appends.is_empty() {
        None
    } else {
        broker.txn_state_topic()
    };
    for append in output.appends {
        let batch = encode_batch(&append.records, now_ms());
        let partition = topic.as_ref().and_then(|t| t.partition(append.partition));
        let result = match partition {
            Some(partition) => partition
                .append(&batch, now_ms())
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Err(format!(
                "no partition {} in {TXN_STATE_TOPIC}",
                append.partition
            )),
        };
        match result {
            Ok(()) => {
                send(state, append.then);
                jobs.extend(append.markers);
            }
            Err(error) => {
                tracing::error!(partition = append.partition, %error, "cannot append to {TXN_STATE_TOPIC}");
                send(state, append.on_failure);
            }
        }
    }
    send(state, output.responses);
    jobs.extend(output.markers);
    for job in jobs {
        if write_markers(&job, broker) {
            let completed = state.coordinator.markers_written(job.id, now_ms());
            execute(state, completed, broker);
        }
    }
}

/// Writes one marker per partition of the job; false if any could not be written (the job is
/// then finished by the restart that re-issues it).
fn write_markers(job: &MarkerJob, broker: &Broker) -> bool {
    let mut all_written = true;
    for (topic_name, index) in &job.partitions {
        let Some(partition) = broker
            .topics
            .get(topic_name)
            .and_then(|t| t.partition(*index).cloned())
        else {
            // A deleted topic has nothing left to mark.
            continue;
        };
        match partition.append_marker(
            job.producer_id,
            job.producer_epoch,
            job.commit,
            job.coordinator_epoch,
            now_ms(),
        ) {
            Ok(_) if topic_name == OFFSETS_TOPIC => {
                let offsets = || broker.offsets_topic();
                broker
                    .groups
                    .complete_transaction(&offsets, *index, job.producer_id, job.commit);
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(topic = %topic_name, partition = index, %error, "cannot write transaction marker");
                all_written = false;
            }
        }
    }
    all_written
}

fn send(state: &mut State, responses: Vec<(RequestToken, TxnResponse)>) {
    for (token, response) in responses {
        if let Some(sender) = state.waiting.remove(&token) {
            let _ = sender.send(response);
        }
    }
}
