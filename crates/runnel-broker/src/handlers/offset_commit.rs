//! OffsetCommit: member or simple commits, durable in __consumer_offsets before the answer.

use bytes::Bytes;
use kafka_protocol::messages::OffsetCommitRequest;
use runnel_coordinator::group::GroupRequest;

use super::{group, HandlerError, RequestContext};

pub async fn handle(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: OffsetCommitRequest = ctx.decode(body)?;
    group::call(ctx, GroupRequest::OffsetCommit(request)).await
}
