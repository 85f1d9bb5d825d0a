//! LeaveGroup (Kafka's `handleLeaveGroup`): v0-2 name one member id; v3+ a batch of member
//! identities (member id and/or group.instance.id), each answered separately.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::join::validate_current_member;
use super::rebalance::{maybe_complete_join, remove_member_and_update};
use super::responses::code;
use super::state::{Group, GroupState};
use super::{Ctx, GroupResponse, RequestMeta};

pub(crate) fn handle(
    groups: &mut BTreeMap<String, Group>,
    meta: &RequestMeta,
    req: LeaveGroupRequest,
    cx: &mut Ctx<'_>,
) {
    let version = meta.api_version;
    let leaving: Vec<MemberIdentity> = if version >= 3 {
        req.members
    } else {
        vec![MemberIdentity::default().with_member_id(req.member_id)]
    };
    let (top, members) = if req.group_id.0.is_empty() {
        (Some(ResponseError::InvalidGroupId), Vec::new())
    } else {
        match groups.get_mut(&*req.group_id.0) {
            None => {
                let unknown = Some(ResponseError::UnknownMemberId);
                (
                    None,
                    leaving
                        .iter()
                        .map(|m| member_response(m, unknown))
                        .collect(),
                )
            }
            Some(g) if g.is(GroupState::Dead) => {
                (Some(ResponseError::CoordinatorNotAvailable), Vec::new())
            }
            Some(g) => (
                None,
                leaving
                    .iter()
                    .map(|m| member_response(m, leave(g, m, cx)))
                    .collect(),
            ),
        }
    };
    cx.reply(meta.token, leave_response(version, top, members));
}

fn member_response(identity: &MemberIdentity, error: Option<ResponseError>) -> MemberResponse {
    MemberResponse::default()
        .with_member_id(identity.member_id.clone())
        .with_group_instance_id(identity.group_instance_id.clone())
        .with_error_code(code(error))
}

/// Removes one leaving member; returns its error.
fn leave(g: &mut Group, identity: &MemberIdentity, cx: &mut Ctx<'_>) -> Option<ResponseError> {
    let member_id = identity.member_id.to_string();
    let instance = identity.group_instance_id.as_deref();
    if member_id.is_empty() {
        // Administrative removal by instance id alone (kafka-consumer-groups --remove-members).
        let current = instance
            .and_then(|i| g.static_member_id(i))
            .map(str::to_owned);
        return match current {
            Some(current) => {
                remove_member_and_update(g, cx, &current);
                None
            }
            None => Some(ResponseError::UnknownMemberId),
        };
    }
    if g.pending_members.remove(&member_id).is_some() {
        if g.is(GroupState::PreparingRebalance) {
            maybe_complete_join(g, cx);
        }
        return None;
    }
    if let Some(error) = validate_current_member(g, &member_id, instance) {
        return Some(error);
    }
    remove_member_and_update(g, cx, &member_id);
    None
}

/// Before v3 there is no member list: the first member error becomes the top-level error.
fn leave_response(
    version: i16,
    top: Option<ResponseError>,
    members: Vec<MemberResponse>,
) -> GroupResponse {
    let response = if version >= 3 {
        LeaveGroupResponse::default()
            .with_error_code(code(top))
            .with_members(members)
    } else {
        let first = members
            .iter()
            .map(|m| m.error_code)
            .find(|c| *c != 0)
            .unwrap_or(0);
        let error_code = if top.is_some() { code(top) } else { first };
        LeaveGroupResponse::default().with_error_code(error_code)
    };
    GroupResponse::LeaveGroup(response)
}
