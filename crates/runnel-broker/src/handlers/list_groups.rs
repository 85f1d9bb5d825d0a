//! ListGroups: every group, optionally filtered by state (v4+) and type (v5+).

use bytes::Bytes;
use kafka_protocol::messages::ListGroupsRequest;
use runnel_coordinator::group::GroupRequest;

use super::{group, HandlerError, RequestContext};

pub async fn handle(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: ListGroupsRequest = ctx.decode(body)?;
    group::call(ctx, GroupRequest::ListGroups(request)).await
}
