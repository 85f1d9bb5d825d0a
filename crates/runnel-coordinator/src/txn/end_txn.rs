//! EndTxn and two-phase completion (Kafka's TransactionCoordinator.endTransaction and the
//! completion half of TransactionMarkerChannelManager): Ongoing -> PrepareCommit/PrepareAbort
//! (record, then the answer and the marker job) -> markers durable -> CompleteCommit/CompleteAbort.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use super::state::{TxnMetadata, TxnStatus, NO_EPOCH};
use super::{error_code, Ctx, TxnAppend, TxnRequestMeta, TxnResponse, APPEND_FAILED};

/// EndTxn v2 introduced PRODUCER_FENCED (KIP-588).
const FENCED_SINCE: i16 = 2;

pub(super) fn handle(
    txns: &mut BTreeMap<String, TxnMetadata>,
    meta: TxnRequestMeta,
    req: EndTxnRequest,
    cx: &mut Ctx<'_>,
) {
    let id = req.transactional_id.0.to_string();
    let commit = req.committed;
    let checked = if id.is_empty() {
        Err(Some(ResponseError::InvalidRequest))
    } else {
        check(txns.get(&id), req.producer_id.0, req.producer_epoch, commit)
    };
    let response = |error| response(error, meta.api_version);
    match checked {
        Err(error) => cx.reply(meta.token, response(error)),
        Ok(()) => {
            let txn = txns.get_mut(&id).expect("checked above");
            let append = prepare(&id, txn, commit, cx);
            // Kafka answers once the Prepare record is durable; markers follow asynchronously.
            append.then.push((meta.token, response(None)));
            append
                .on_failure
                .push((meta.token, response(Some(APPEND_FAILED))));
        }
    }
}

/// Ok(()) when the transaction may move to PrepareCommit/PrepareAbort; otherwise the answer
/// (None, success, for a retry of an EndTxn that already completed).
fn check(
    txn: Option<&TxnMetadata>,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
) -> Result<(), Option<ResponseError>> {
    let txn = txn.ok_or(Some(ResponseError::InvalidProducerIdMapping))?;
    if txn.producer_id != producer_id {
        return Err(Some(ResponseError::InvalidProducerIdMapping));
    }
    if txn.producer_epoch != producer_epoch {
        return Err(Some(ResponseError::ProducerFenced));
    }
    let same = |status_commit: bool| status_commit == commit;
    match txn.status {
        TxnStatus::Ongoing => Ok(()),
        TxnStatus::CompleteCommit if same(true) => Err(None),
        TxnStatus::CompleteAbort if same(false) => Err(None),
        TxnStatus::PrepareCommit if same(true) => Err(Some(ResponseError::ConcurrentTransactions)),
        TxnStatus::PrepareAbort if same(false) => Err(Some(ResponseError::ConcurrentTransactions)),
        _ => Err(Some(ResponseError::InvalidTxnState)),
    }
}

fn response(error: Option<ResponseError>, version: i16) -> TxnResponse {
    TxnResponse::EndTxn(EndTxnResponse::default().with_error_code(error_code(
        error,
        version,
        FENCED_SINCE,
    )))
}

/// Ongoing -> PrepareCommit/PrepareAbort: appends the Prepare record with its marker job, which
/// the broker starts once the record is durable. Returns the append for the caller's responses.
pub(super) fn prepare<'c>(
    id: &str,
    txn: &mut TxnMetadata,
    commit: bool,
    cx: &'c mut Ctx<'_>,
) -> &'c mut TxnAppend {
    assert_eq!(
        txn.status,
        TxnStatus::Ongoing,
        "only an ongoing transaction can be prepared"
    );
    assert!(
        !txn.partitions.is_empty(),
        "an ongoing transaction has partitions"
    );
    txn.status = if commit {
        TxnStatus::PrepareCommit
    } else {
        TxnStatus::PrepareAbort
    };
    txn.last_update_ms = cx.now_ms;
    let job = cx.new_job(id, txn);
    txn.job = Some(job.id);
    let append = cx.persist(id, txn);
    append.markers.push(job);
    append
}

/// Aborts the ongoing transaction with a bumped epoch (Kafka's prepareFenceProducerEpoch then
/// endTransaction(ABORT, isFromClient = false)): the current producer is fenced, and the markers
/// carry the new epoch. Used by transaction timeouts and by a new producer's InitProducerId.
pub(super) fn fence_and_abort<'c>(
    id: &str,
    txn: &mut TxnMetadata,
    cx: &'c mut Ctx<'_>,
) -> &'c mut TxnAppend {
    // i16::MAX cannot be bumped; Kafka refuses to fence there. Abort at the same epoch instead:
    // the next InitProducerId rotates the producer id (the epoch is exhausted), which fences.
    txn.producer_epoch = txn
        .producer_epoch
        .checked_add(1)
        .unwrap_or(txn.producer_epoch);
    txn.last_producer_epoch = NO_EPOCH;
    prepare(id, txn, false, cx)
}

/// The markers of `job_id` are durable: PrepareX -> CompleteX. Stale or unknown jobs are ignored.
pub(super) fn markers_written(
    txns: &mut BTreeMap<String, TxnMetadata>,
    job_id: u64,
    cx: &mut Ctx<'_>,
) {
    let Some(id) = cx.jobs.remove(&job_id) else {
        return;
    };
    let Some(txn) = txns.get_mut(&id).filter(|t| t.job == Some(job_id)) else {
        return;
    };
    assert!(
        txn.status.is_preparing(),
        "a transaction with a marker job is preparing"
    );
    txn.status = match txn.status {
        TxnStatus::PrepareCommit => TxnStatus::CompleteCommit,
        _ => TxnStatus::CompleteAbort,
    };
    txn.partitions.clear();
    txn.job = None;
    txn.last_update_ms = cx.now_ms;
    cx.persist(&id, txn);
}

/// After replay: every PrepareCommit/PrepareAbort gets its marker job again (the Prepare record
/// is durable, so the markers may be written right away).
pub(super) fn reissue_markers(txns: &mut BTreeMap<String, TxnMetadata>, cx: &mut Ctx<'_>) {
    for (id, txn) in txns
        .iter_mut()
        .filter(|(_, t)| t.status.is_preparing() && t.job.is_none())
    {
        let job = cx.new_job(id, txn);
        txn.job = Some(job.id);
        cx.out.markers.push(job);
    }
}
