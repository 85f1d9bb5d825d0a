//! AddPartitionsToTxn: partitions join a producer's ongoing transaction (v4+ batches transactions).

use bytes::Bytes;
use kafka_protocol::messages::AddPartitionsToTxnRequest;
use runnel_coordinator::txn::TxnRequest;

use super::{txn, HandlerError, RequestContext};

pub async fn handle(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: AddPartitionsToTxnRequest = ctx.decode(body)?;
    txn::call(ctx, TxnRequest::AddPartitionsToTxn(request)).await
}
