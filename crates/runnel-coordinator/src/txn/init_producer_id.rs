//! InitProducerId with a transactional id (Kafka's TransactionCoordinator.handleInitProducerId
//! and TransactionMetadata.prepareIncrementProducerEpoch / prepareProducerIdRotation).

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};

use super::state::{is_epoch_exhausted, TxnMetadata, TxnStatus, NO_EPOCH, NO_PRODUCER_ID};
use super::{
    end_txn, error_code, Ctx, ProducerIdSource, TxnRequestMeta, TxnResponse, APPEND_FAILED,
};

/// InitProducerId v4 introduced PRODUCER_FENCED (KIP-588).
const FENCED_SINCE: i16 = 4;

pub(super) fn handle(
    txns: &mut BTreeMap<String, TxnMetadata>,
    meta: TxnRequestMeta,
    req: InitProducerIdRequest,
    ids: &mut dyn ProducerIdSource,
    cx: &mut Ctx<'_>,
) {
    let version = meta.api_version;
    let reply_error =
        |cx: &mut Ctx<'_>, error| cx.reply(meta.token, error_response(error, version));
    // Idempotent producers (null id) are the broker's; an empty id is invalid, as in Kafka.
    let Some(id) = req
        .transactional_id
        .as_ref()
        .map(|t| t.0.to_string())
        .filter(|id| !id.is_empty())
    else {
        return reply_error(cx, ResponseError::InvalidRequest);
    };
    let timeout_ms = req.transaction_timeout_ms;
    if timeout_ms <= 0 || timeout_ms > cx.cfg.transaction_max_timeout_ms {
        return reply_error(cx, ResponseError::InvalidTransactionTimeout);
    }
    // The producer fields exist from v3 (KIP-360); older requests carry the defaults.
    let given = if version >= 3 {
        (req.producer_id.0, req.producer_epoch)
    } else {
        (-1, -1)
    };
    let expected = match given {
        (NO_PRODUCER_ID, NO_EPOCH) => None,
        (NO_PRODUCER_ID, _) | (_, NO_EPOCH) => {
            return reply_error(cx, ResponseError::InvalidRequest)
        }
        (producer_id, epoch) => Some((producer_id, epoch)),
    };
    let txn = txns
        .entry(id.clone())
        .or_insert_with(|| TxnMetadata::new(ids.next_producer_id(), timeout_ms, cx.now_ms));
    if let Some((producer_id, epoch)) = expected {
        if !is_valid_producer_id(txn, producer_id, epoch) {
            // PRODUCER_FENCED, as in Kafka (INVALID_PRODUCER_EPOCH below v4, see error_code).
            return reply_error(cx, ResponseError::ProducerFenced);
        }
    }
    match txn.status {
        TxnStatus::Empty | TxnStatus::CompleteCommit | TxnStatus::CompleteAbort => {
            if let Err(error) = next_producer(txn, expected, timeout_ms, ids, cx.now_ms) {
                return reply_error(cx, error);
            }
            let ok = success_response(txn);
            let append = cx.persist(&id, txn);
            append.then.push((meta.token, ok));
            append
                .on_failure
                .push((meta.token, error_response(APPEND_FAILED, version)));
        }
        TxnStatus::Ongoing => {
            // Fence the current producer and abort its transaction; the epoch given out now is
            // never returned: the client retries (CONCURRENT_TRANSACTIONS) and gets the next.
            let append = end_txn::fence_and_abort(&id, txn, cx);
            let retry = error_response(ResponseError::ConcurrentTransactions, version);
            append.then.push((meta.token, retry));
            append
                .on_failure
                .push((meta.token, error_response(APPEND_FAILED, version)));
        }
        TxnStatus::PrepareCommit | TxnStatus::PrepareAbort => {
            reply_error(cx, ResponseError::ConcurrentTransactions);
        }
        // Never kept in memory (Dead is removed, PrepareEpochFence is never entered).
        TxnStatus::Dead | TxnStatus::PrepareEpochFence => {
            reply_error(cx, ResponseError::InvalidTxnState);
        }
    }
}

/// Kafka's isValidProducerId: a request naming a producer is accepted if the metadata was just
/// created, names the current producer id (the epoch is checked later), or names the previous
/// producer id with an exhausted epoch (a retry after a rotation the client never heard of).
fn is_valid_producer_id(txn: &TxnMetadata, producer_id: i64, epoch: i16) -> bool {
    txn.producer_epoch == NO_EPOCH
        || producer_id == txn.producer_id
        || (producer_id == txn.previous_producer_id && is_epoch_exhausted(epoch))
}

/// Moves an idle transactional id to its next producer: epoch bump, or a new producer id when
/// the epoch is exhausted. `expected` is the (producer id, epoch) a v3+ client sent (KIP-360).
fn next_producer(
    txn: &mut TxnMetadata,
    expected: Option<(i64, i16)>,
    timeout_ms: i32,
    ids: &mut dyn ProducerIdSource,
    now_ms: i64,
) -> Result<(), ResponseError> {
    let current = txn.producer_epoch;
    if is_epoch_exhausted(current) && expected.is_none_or(|(_, epoch)| epoch == current) {
        txn.previous_producer_id = txn.producer_id;
        txn.producer_id = ids.next_producer_id();
        txn.producer_epoch = 0;
        txn.last_producer_epoch = if expected.is_some() {
            current
        } else {
            NO_EPOCH
        };
    } else {
        let bumped = current
            .checked_add(1)
            .filter(|_| !is_epoch_exhausted(current));
        let (next, last) = match expected {
            None => (bumped, NO_EPOCH),
            Some((_, epoch)) if current == NO_EPOCH || epoch == current => (bumped, current),
            // A retry of an InitProducerId that succeeded: return the current epoch again.
            Some((_, epoch)) if epoch == txn.last_producer_epoch => (Some(current), epoch),
            Some(_) => return Err(ResponseError::ProducerFenced),
        };
        // Exhausted but the request names another epoch: it is not the current producer.
        txn.producer_epoch = next.ok_or(ResponseError::ProducerFenced)?;
        txn.last_producer_epoch = last;
    }
    txn.status = TxnStatus::Empty;
    txn.partitions.clear();
    txn.timeout_ms = timeout_ms;
    txn.start_ms = -1;
    txn.last_update_ms = now_ms;
    Ok(())
}

fn success_response(txn: &TxnMetadata) -> TxnResponse {
    TxnResponse::InitProducerId(
        InitProducerIdResponse::default()
            .with_producer_id(txn.producer_id.into())
            .with_producer_epoch(txn.producer_epoch),
    )
}

pub(super) fn error_response(error: ResponseError, version: i16) -> TxnResponse {
    TxnResponse::InitProducerId(
        InitProducerIdResponse::default()
            .with_error_code(error_code(error, version, FENCED_SINCE))
            .with_producer_id(NO_PRODUCER_ID.into())
            .with_producer_epoch(NO_EPOCH),
    )
}
