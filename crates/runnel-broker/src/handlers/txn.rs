//! What the transaction APIs share: hand the request to the transaction coordinator runtime
//! and encode its response.

use bytes::Bytes;
use runnel_coordinator::txn::{TxnRequest, TxnResponse};

use super::{HandlerError, RequestContext};

pub async fn call(
    ctx: &RequestContext<'_>,
    request: TxnRequest,
) -> Result<Option<Bytes>, HandlerError> {
    match ctx
        .broker
        .txns
        .call(ctx.broker, ctx.version(), request)
        .await
    {
        Some(TxnResponse::InitProducerId(r)) => ctx.respond(&r),
        Some(TxnResponse::AddPartitionsToTxn(r)) => ctx.respond(&r),
        Some(TxnResponse::AddOffsetsToTxn(r)) => ctx.respond(&r),
        Some(TxnResponse::EndTxn(r)) => ctx.respond(&r),
        Some(TxnResponse::DescribeTransactions(r)) => ctx.respond(&r),
        Some(TxnResponse::ListTransactions(r)) => ctx.respond(&r),
        None => Ok(None),
    }
}
