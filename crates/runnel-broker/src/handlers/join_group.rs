//! JoinGroup: a member (re)joins its group; answered when the rebalance completes.

use bytes::Bytes;
use kafka_protocol::messages::JoinGroupRequest;
use runnel_coordinator::group::GroupRequest;

use super::{group, HandlerError, RequestContext};

pub async fn handle(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: JoinGroupRequest = ctx.decode(body)?;
    group::call(ctx, GroupRequest::JoinGroup(request)).await
}
