//! What the group APIs share: hand the decoded request to the group coordinator runtime and
//! encode the response it eventually gives. Each API's own file only names its types.

use bytes::Bytes;
use runnel_coordinator::group::{GroupRequest, GroupResponse};

use super::{HandlerError, RequestContext};

/// Runs a group request through the coordinator and encodes its response; `Ok(None)` (no
/// answer) only when the broker shuts down while the request waits.
pub async fn call(
    ctx: &RequestContext<'_>,
    request: GroupRequest,
) -> Result<Option<Bytes>, HandlerError> {
    let broker = ctx.broker;
    let client_id = ctx.header.client_id.as_deref().unwrap_or_default();
    let client_host = format!("/{}", ctx.peer.ip());
    let offsets = || broker.offsets_topic();
    let response = broker
        .groups
        .call(
            &offsets,
            &broker.topics,
            ctx.version(),
            client_id,
            client_host,
            request,
        )
        .await;
    match response {
        Some(GroupResponse::JoinGroup(r)) => ctx.respond(&r),
        Some(GroupResponse::SyncGroup(r)) => ctx.respond(&r),
        Some(GroupResponse::Heartbeat(r)) => ctx.respond(&r),
        Some(GroupResponse::LeaveGroup(r)) => ctx.respond(&r),
        Some(GroupResponse::OffsetCommit(r)) => ctx.respond(&r),
        Some(GroupResponse::OffsetFetch(r)) => ctx.respond(&r),
        Some(GroupResponse::DescribeGroups(r)) => ctx.respond(&r),
        Some(GroupResponse::ListGroups(r)) => ctx.respond(&r),
        Some(GroupResponse::DeleteGroups(r)) => ctx.respond(&r),
        Some(GroupResponse::OffsetDelete(r)) => ctx.respond(&r),
        Some(GroupResponse::TxnOffsetCommit(r)) => ctx.respond(&r),
        None => Ok(None),
    }
}
