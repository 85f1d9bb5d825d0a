//! DescribeTransactions: state, producer and partitions of transactional ids.

use bytes::Bytes;
use kafka_protocol::messages::DescribeTransactionsRequest;
use runnel_coordinator::txn::TxnRequest;

use super::{txn, HandlerError, RequestContext};

pub async fn handle(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: DescribeTransactionsRequest = ctx.decode(body)?;
    txn::call(ctx, TxnRequest::DescribeTransactions(request)).await
}
