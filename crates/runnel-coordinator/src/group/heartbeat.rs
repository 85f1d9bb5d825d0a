//! Heartbeat (Kafka's `handleHeartbeat`): keeps a member's session alive and tells it when a
//! rebalance is under way.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::HeartbeatRequest;

use super::join::validate_current_member;
use super::rebalance::schedule_session;
use super::responses::heartbeat_response;
use super::state::{Group, GroupState};
use super::{Ctx, RequestMeta};

pub(crate) fn handle(
    groups: &mut BTreeMap<String, Group>,
    meta: &RequestMeta,
    req: HeartbeatRequest,
    cx: &mut Ctx<'_>,
) {
    let error = heartbeat(groups, &req, cx.now_ms);
    cx.reply(meta.token, heartbeat_response(error));
}

fn heartbeat(
    groups: &mut BTreeMap<String, Group>,
    req: &HeartbeatRequest,
    now_ms: i64,
) -> Option<ResponseError> {
    if req.group_id.0.is_empty() {
        return Some(ResponseError::InvalidGroupId);
    }
    let Some(g) = groups.get_mut(&*req.group_id.0) else {
        return Some(ResponseError::UnknownMemberId);
    };
    if g.is(GroupState::Dead) {
        return Some(ResponseError::CoordinatorNotAvailable);
    }
    let instance = req.group_instance_id.as_deref();
    if let Some(error) = validate_current_member(g, &req.member_id, instance) {
        return Some(error);
    }
    if req.generation_id != g.generation_id {
        return Some(ResponseError::IllegalGeneration);
    }
    let state = g.state;
    let member = g
        .members
        .get_mut(&*req.member_id)
        .expect("validated member");
    match state {
        GroupState::Empty => Some(ResponseError::UnknownMemberId),
        // Members may heartbeat between their JoinGroup and SyncGroup responses.
        GroupState::CompletingRebalance | GroupState::Stable => {
            schedule_session(member, now_ms);
            None
        }
        GroupState::PreparingRebalance => {
            schedule_session(member, now_ms);
            Some(ResponseError::RebalanceInProgress)
        }
        GroupState::Dead => Some(ResponseError::CoordinatorNotAvailable),
    }
}
