//! OffsetDelete: removes a group's offsets for topics it no longer subscribes to.

use bytes::Bytes;
use kafka_protocol::messages::OffsetDeleteRequest;
use runnel_coordinator::group::GroupRequest;

use super::{group, HandlerError, RequestContext};

pub async fn handle(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: OffsetDeleteRequest = ctx.decode(body)?;
    group::call(ctx, GroupRequest::OffsetDelete(request)).await
}
