//! DescribeTransactions and ListTransactions (Kafka's TransactionStateManager
//! listTransactionStates and TransactionCoordinator.handleDescribeTransactions).

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{self, TopicData};
use kafka_protocol::messages::list_transactions_response;
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ListTransactionsRequest,
    ListTransactionsResponse, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use super::records::group_by_topic;
use super::state::{TxnMetadata, TxnStatus};
use super::{Ctx, TxnRequestMeta, TxnResponse};

pub(super) fn describe(
    txns: &BTreeMap<String, TxnMetadata>,
    meta: TxnRequestMeta,
    req: DescribeTransactionsRequest,
    cx: &mut Ctx<'_>,
) {
    let states = req
        .transactional_ids
        .into_iter()
        .map(|id| describe_one(txns.get(id.0.as_str()), id));
    let response =
        DescribeTransactionsResponse::default().with_transaction_states(states.collect());
    cx.reply(meta.token, TxnResponse::DescribeTransactions(response));
}

fn describe_one(
    txn: Option<&TxnMetadata>,
    id: TransactionalId,
) -> describe_transactions_response::TransactionState {
    let empty = id.0.is_empty();
    let state =
        describe_transactions_response::TransactionState::default().with_transactional_id(id);
    if empty {
        // Kafka's handleDescribeTransactions refuses an empty id before looking it up.
        return state.with_error_code(ResponseError::InvalidRequest.code());
    }
    let Some(txn) = txn.filter(|t| t.status != TxnStatus::Dead) else {
        return state.with_error_code(ResponseError::TransactionalIdNotFound.code());
    };
    let topics = group_by_topic(txn.partitions.iter().map(|(t, p)| (t.as_str(), *p)))
        .into_iter()
        .map(|(topic, partitions)| {
            TopicData::default()
                .with_topic(StrBytes::from_string(topic.to_owned()).into())
                .with_partitions(partitions)
        });
    state
        .with_transaction_state(StrBytes::from_static_str(txn.status.name()))
        .with_transaction_timeout_ms(txn.timeout_ms)
        .with_transaction_start_time_ms(txn.start_ms)
        .with_producer_id(txn.producer_id.into())
        .with_producer_epoch(txn.producer_epoch)
        .with_topics(topics.collect())
}

/// ListTransactions v0-1: state and producer id filters; v1's duration filter keeps
/// transactions running for longer than it (now - start > duration), as Kafka does.
pub(super) fn list(
    txns: &BTreeMap<String, TxnMetadata>,
    meta: TxnRequestMeta,
    req: ListTransactionsRequest,
    cx: &mut Ctx<'_>,
) {
    let (known, unknown): (Vec<_>, Vec<_>) = req
        .state_filters
        .into_iter()
        .partition(|s| TxnStatus::from_name(s).is_some());
    let states: Vec<TxnStatus> = known
        .iter()
        .filter_map(|s| TxnStatus::from_name(s))
        .collect();
    let duration_ms = if meta.api_version >= 1 {
        req.duration_filter
    } else {
        -1
    };
    let now_ms = cx.now_ms;
    let included = |txn: &&TxnMetadata| {
        txn.status != TxnStatus::Dead
            && (req.producer_id_filters.is_empty()
                || req
                    .producer_id_filters
                    .iter()
                    .any(|p| p.0 == txn.producer_id))
            && (states.is_empty() || states.contains(&txn.status))
            && (duration_ms < 0 || now_ms - txn.start_ms > duration_ms)
    };
    let listed = txns.iter().filter(|(_, t)| included(t)).map(|(id, txn)| {
        list_transactions_response::TransactionState::default()
            .with_transactional_id(StrBytes::from_string(id.clone()).into())
            .with_producer_id(txn.producer_id.into())
            .with_transaction_state(StrBytes::from_static_str(txn.status.name()))
    });
    let response = ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(listed.collect());
    cx.reply(meta.token, TxnResponse::ListTransactions(response));
}
