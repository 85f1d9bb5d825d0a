//! OffsetFetch: committed offsets of one group (v0-7) or several (v8+).

use bytes::Bytes;
use kafka_protocol::messages::OffsetFetchRequest;
use runnel_coordinator::group::GroupRequest;

use super::{group, HandlerError, RequestContext};

pub async fn handle(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: OffsetFetchRequest = ctx.decode(body)?;
    group::call(ctx, GroupRequest::OffsetFetch(request)).await
}
