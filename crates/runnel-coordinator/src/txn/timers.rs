//! Periodic work (Kafka's abortTimedOutTransactions and removeExpiredTransactionalIds).

use std::collections::BTreeMap;

use super::end_txn;
use super::state::TxnMetadata;
use super::Ctx;

/// Aborts every ongoing transaction past its timeout, fencing its producer with an epoch bump
/// (its next request gets PRODUCER_FENCED / INVALID_PRODUCER_EPOCH, as in Kafka).
pub(super) fn abort_timed_out(txns: &mut BTreeMap<String, TxnMetadata>, cx: &mut Ctx<'_>) {
    let now_ms = cx.now_ms;
    for (id, txn) in txns.iter_mut().filter(|(_, t)| t.is_timed_out(now_ms)) {
        end_txn::fence_and_abort(id, txn, cx);
    }
}

/// Removes transactional ids idle (no transaction open) for `transactional.id.expiration.ms`,
/// with a tombstone so replay forgets them too.
pub(super) fn expire_transactional_ids(txns: &mut BTreeMap<String, TxnMetadata>, cx: &mut Ctx<'_>) {
    let horizon_ms = cx.now_ms - cx.cfg.transactional_id_expiration_ms;
    let expired: Vec<String> = txns
        .iter()
        .filter(|(_, t)| t.status.is_idle() && t.last_update_ms <= horizon_ms)
        .map(|(id, _)| id.clone())
        .collect();
    for id in expired {
        txns.remove(&id);
        cx.append(&id, None);
    }
}
