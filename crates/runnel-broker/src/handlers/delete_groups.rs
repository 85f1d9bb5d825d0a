//! DeleteGroups: removes empty groups and their offsets.

use bytes::Bytes;
use kafka_protocol::messages::DeleteGroupsRequest;
use runnel_coordinator::group::GroupRequest;

use super::{group, HandlerError, RequestContext};

pub async fn handle(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: DeleteGroupsRequest = ctx.decode(body)?;
    group::call(ctx, GroupRequest::DeleteGroups(request)).await
}
