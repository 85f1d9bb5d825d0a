//! SyncGroup: the leader hands out assignments; every member waits for its own.

use bytes::Bytes;
use kafka_protocol::messages::SyncGroupRequest;
use runnel_coordinator::group::GroupRequest;

use super::{group, HandlerError, RequestContext};

pub async fn handle(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: SyncGroupRequest = ctx.decode(body)?;
    group::call(ctx, GroupRequest::SyncGroup(request)).await
}
