//! AddPartitionsToTxn (v0-3 for one transaction from a producer, v4+ batched with verify_only
//! from brokers) and AddOffsetsToTxn (Kafka's handleAddPartitionsToTransaction and
//! handleVerifyPartitionsInTransaction).

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
};

use super::state::{TxnMetadata, TxnStatus};
use super::{error_code, Ctx, RequestToken, TxnRequestMeta, TxnResponse, APPEND_FAILED};
use crate::group::coordinator_partition;

/// AddPartitionsToTxn and AddOffsetsToTxn v2 introduced PRODUCER_FENCED (KIP-588).
const FENCED_SINCE: i16 = 2;
/// AddPartitionsToTxn v5 introduced TRANSACTION_ABORTABLE (KIP-890).
const ABORTABLE_SINCE: i16 = 5;
const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// What adding partitions to one transaction came to.
enum Outcome {
    /// Answered without a write: an error, or None when the partitions were already in.
    Done(Option<ResponseError>),
    /// The transaction's new state is the append at this index of the output.
    Appended(usize),
}

/// Answers a single-transaction request: at once when nothing was written, else once the
/// append is done (or has failed).
fn answer(
    cx: &mut Ctx<'_>,
    token: RequestToken,
    outcome: Outcome,
    response: impl Fn(Option<ResponseError>) -> TxnResponse,
) {
    match outcome {
        Outcome::Done(error) => cx.reply(token, response(error)),
        Outcome::Appended(index) => {
            let append = &mut cx.out.appends[index];
            append.then.push((token, response(None)));
            append
                .on_failure
                .push((token, response(Some(APPEND_FAILED))));
        }
    }
}

pub(super) fn handle(
    txns: &mut BTreeMap<String, TxnMetadata>,
    meta: TxnRequestMeta,
    req: AddPartitionsToTxnRequest,
    cx: &mut Ctx<'_>,
) {
    if meta.api_version <= 3 {
        single(txns, meta, req, cx);
    } else {
        batched(txns, meta, req, cx);
    }
}

/// v0-3: one transaction, every partition answered with the transaction's error.
fn single(
    txns: &mut BTreeMap<String, TxnMetadata>,
    meta: TxnRequestMeta,
    req: AddPartitionsToTxnRequest,
    cx: &mut Ctx<'_>,
) {
    let id = req.v3_and_below_transactional_id.0.to_string();
    let topics = &req.v3_and_below_topics;
    let parts = flatten(topics);
    let outcome = add(
        txns,
        &id,
        req.v3_and_below_producer_id.0,
        req.v3_and_below_producer_epoch,
        &parts,
        cx,
    );
    let response = |error| {
        let code = error_code(error, meta.api_version, FENCED_SINCE);
        TxnResponse::AddPartitionsToTxn(
            AddPartitionsToTxnResponse::default()
                .with_results_by_topic_v3_and_below(topic_results(topics, &|_, _| code)),
        )
    };
    answer(cx, meta.token, outcome, response);
}

/// v4+: several transactions; verify_only ones are only checked. The response waits for every
/// append the request made: it rides on the last one, and any failed one answers with
/// COORDINATOR_NOT_AVAILABLE for the transactions that needed a write.
fn batched(
    txns: &mut BTreeMap<String, TxnMetadata>,
    meta: TxnRequestMeta,
    req: AddPartitionsToTxnRequest,
    cx: &mut Ctx<'_>,
) {
    let version = meta.api_version;
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    let mut appended = Vec::new();
    for txn in &req.transactions {
        let id = txn.transactional_id.0.to_string();
        let result = |code: &dyn Fn(&str, i32) -> i16| {
            AddPartitionsToTxnResult::default()
                .with_transactional_id(txn.transactional_id.clone())
                .with_topic_results(topic_results(&txn.topics, code))
        };
        if txn.verify_only {
            let txns: &BTreeMap<_, _> = txns;
            let codes = |topic: &str, partition| verify(txns, txn, topic, partition, version);
            ok.push(result(&codes));
            failed.push(result(&codes));
            continue;
        }
        let parts = flatten(&txn.topics);
        match add(txns, &id, txn.producer_id.0, txn.producer_epoch, &parts, cx) {
            Outcome::Done(error) => {
                let code = error_code(error, version, FENCED_SINCE);
                ok.push(result(&|_, _| code));
                failed.push(result(&|_, _| code));
            }
            Outcome::Appended(index) => {
                appended.push(index);
                ok.push(result(&|_, _| 0));
                failed.push(result(&|_, _| APPEND_FAILED.code()));
            }
        }
    }
    let response = |results| {
        TxnResponse::AddPartitionsToTxn(
            AddPartitionsToTxnResponse::default().with_results_by_transaction(results),
        )
    };
    let (ok, failed) = (response(ok), response(failed));
    let Some(&last) = appended.last() else {
        return cx.reply(meta.token, ok);
    };
    for &index in &appended {
        cx.out.appends[index]
            .on_failure
            .push((meta.token, failed.clone()));
    }
    cx.out.appends[last].then.push((meta.token, ok));
}

pub(super) fn add_offsets(
    txns: &mut BTreeMap<String, TxnMetadata>,
    meta: TxnRequestMeta,
    req: AddOffsetsToTxnRequest,
    cx: &mut Ctx<'_>,
) {
    let id = req.transactional_id.0.to_string();
    let offsets_partition = coordinator_partition(&req.group_id.0, cx.cfg.offsets_partitions);
    let parts = [(OFFSETS_TOPIC.to_owned(), offsets_partition)];
    let outcome = add(txns, &id, req.producer_id.0, req.producer_epoch, &parts, cx);
    let response = |error| {
        let code = error_code(error, meta.api_version, FENCED_SINCE);
        TxnResponse::AddOffsetsToTxn(AddOffsetsToTxnResponse::default().with_error_code(code))
    };
    answer(cx, meta.token, outcome, response);
}

/// Checks the producer and begins or extends its transaction (Kafka's prepareAddPartitions).
fn add(
    txns: &mut BTreeMap<String, TxnMetadata>,
    id: &str,
    producer_id: i64,
    producer_epoch: i16,
    parts: &[(String, i32)],
    cx: &mut Ctx<'_>,
) -> Outcome {
    if let Err(error) = check_producer(txns.get(id), id, producer_id, producer_epoch) {
        return Outcome::Done(Some(error));
    }
    let txn = txns.get_mut(id).expect("checked above");
    let already_in = parts.iter().all(|p| txn.partitions.contains(p));
    match txn.status {
        TxnStatus::PrepareCommit | TxnStatus::PrepareAbort => {
            return Outcome::Done(Some(ResponseError::ConcurrentTransactions))
        }
        TxnStatus::Ongoing if already_in => return Outcome::Done(None),
        TxnStatus::Ongoing => {}
        // Nothing to add does not begin a transaction (Kafka would begin an empty one, which
        // could then be "committed" with no markers).
        _ if parts.is_empty() => return Outcome::Done(None),
        TxnStatus::Empty | TxnStatus::CompleteCommit | TxnStatus::CompleteAbort => {
            txn.start_ms = cx.now_ms;
        }
        TxnStatus::Dead | TxnStatus::PrepareEpochFence => {
            return Outcome::Done(Some(ResponseError::InvalidTxnState))
        }
    }
    txn.status = TxnStatus::Ongoing;
    txn.partitions.extend(parts.iter().cloned());
    txn.last_update_ms = cx.now_ms;
    cx.persist(id, txn);
    Outcome::Appended(cx.out.appends.len() - 1)
}

/// Ok when (producer_id, producer_epoch) is the current producer of transactional id `id`.
fn check_producer(
    txn: Option<&TxnMetadata>,
    id: &str,
    producer_id: i64,
    producer_epoch: i16,
) -> Result<(), ResponseError> {
    if id.is_empty() {
        return Err(ResponseError::InvalidRequest);
    }
    let txn = txn.ok_or(ResponseError::InvalidProducerIdMapping)?;
    if txn.producer_id != producer_id {
        return Err(ResponseError::InvalidProducerIdMapping);
    }
    if txn.producer_epoch != producer_epoch {
        return Err(ResponseError::ProducerFenced);
    }
    Ok(())
}

/// verify_only: is the partition in the producer's transaction? (No state change.)
fn verify(
    txns: &BTreeMap<String, TxnMetadata>,
    req: &AddPartitionsToTxnTransaction,
    topic: &str,
    partition: i32,
    version: i16,
) -> i16 {
    let id = req.transactional_id.0.as_str();
    let error = verify_partition(
        txns,
        id,
        req.producer_id.0,
        req.producer_epoch,
        topic,
        partition,
    )
    .err()
    .map(|error| match error {
        ResponseError::TransactionAbortable if version < ABORTABLE_SINCE => {
            ResponseError::InvalidTxnState
        }
        error => error,
    });
    error_code(error, version, FENCED_SINCE)
}

/// Kafka's handleVerifyPartitionsInTransaction for one partition: Ok when it is in the ongoing
/// transaction of this current producer, else TRANSACTION_ABORTABLE (not added),
/// CONCURRENT_TRANSACTIONS (completing) or the producer's error.
pub(super) fn verify_partition(
    txns: &BTreeMap<String, TxnMetadata>,
    id: &str,
    producer_id: i64,
    producer_epoch: i16,
    topic: &str,
    partition: i32,
) -> Result<(), ResponseError> {
    let txn = txns.get(id);
    check_producer(txn, id, producer_id, producer_epoch)?;
    let txn = txn.expect("checked above");
    if txn.status.is_preparing() {
        Err(ResponseError::ConcurrentTransactions)
    } else if txn.partitions.contains(&(topic.to_owned(), partition)) {
        Ok(())
    } else {
        Err(ResponseError::TransactionAbortable)
    }
}

fn flatten(topics: &[AddPartitionsToTxnTopic]) -> Vec<(String, i32)> {
    topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect()
}

fn topic_results(
    topics: &[AddPartitionsToTxnTopic],
    code: &dyn Fn(&str, i32) -> i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let topic = |t: &AddPartitionsToTxnTopic| {
        let partitions = t.partitions.iter().map(|&p| {
            AddPartitionsToTxnPartitionResult::default()
                .with_partition_index(p)
                .with_partition_error_code(code(&t.name.0, p))
        });
        AddPartitionsToTxnTopicResult::default()
            .with_name(t.name.clone())
            .with_results_by_partition(partitions.collect())
    };
    topics.iter().map(topic).collect()
}
