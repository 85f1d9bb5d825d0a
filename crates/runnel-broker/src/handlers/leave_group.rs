//! LeaveGroup: members (one, or a batch from v3) leave, triggering a rebalance.

use bytes::Bytes;
use kafka_protocol::messages::LeaveGroupRequest;
use runnel_coordinator::group::GroupRequest;

use super::{group, HandlerError, RequestContext};

pub async fn handle(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: LeaveGroupRequest = ctx.decode(body)?;
    group::call(ctx, GroupRequest::LeaveGroup(request)).await
}
