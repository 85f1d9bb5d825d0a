//! ListTransactions: transactional ids, filtered by state and producer id.

use bytes::Bytes;
use kafka_protocol::messages::ListTransactionsRequest;
use runnel_coordinator::txn::TxnRequest;

use super::{txn, HandlerError, RequestContext};

pub async fn handle(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: ListTransactionsRequest = ctx.decode(body)?;
    txn::call(ctx, TxnRequest::ListTransactions(request)).await
}
