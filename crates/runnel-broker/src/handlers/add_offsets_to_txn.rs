//! AddOffsetsToTxn: a group's offsets partition joins the transaction (send_offsets_to_transaction).

use bytes::Bytes;
use kafka_protocol::messages::AddOffsetsToTxnRequest;
use runnel_coordinator::txn::TxnRequest;

use super::{txn, HandlerError, RequestContext};

pub async fn handle(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: AddOffsetsToTxnRequest = ctx.decode(body)?;
    txn::call(ctx, TxnRequest::AddOffsetsToTxn(request)).await
}
