//! EndTxn: commit or abort; answered once the Prepare record is durable, markers follow.

use bytes::Bytes;
use kafka_protocol::messages::EndTxnRequest;
use runnel_coordinator::txn::TxnRequest;

use super::{txn, HandlerError, RequestContext};

pub async fn handle(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: EndTxnRequest = ctx.decode(body)?;
    txn::call(ctx, TxnRequest::EndTxn(request)).await
}
