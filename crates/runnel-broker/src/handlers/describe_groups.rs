//! DescribeGroups: state, protocol and members of groups.

use bytes::Bytes;
use kafka_protocol::messages::DescribeGroupsRequest;
use runnel_coordinator::group::GroupRequest;

use super::{group, HandlerError, RequestContext};

pub async fn handle(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: DescribeGroupsRequest = ctx.decode(body)?;
    group::call(ctx, GroupRequest::DescribeGroups(request)).await
}
