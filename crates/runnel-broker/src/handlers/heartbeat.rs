//! Heartbeat: keeps a member's session alive and tells it when to rejoin.

use bytes::Bytes;
use kafka_protocol::messages::HeartbeatRequest;
use runnel_coordinator::group::GroupRequest;

use super::{group, HandlerError, RequestContext};

pub async fn handle(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: HeartbeatRequest = ctx.decode(body)?;
    group::call(ctx, GroupRequest::Heartbeat(request)).await
}
