//! SyncGroup (Kafka's `handleSyncGroup`): followers wait for the leader's assignment, which is
//! persisted before anyone is answered.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::SyncGroupRequest;

use super::join::validate_current_member;
use super::member::Parked;
use super::persist;
use super::rebalance::{schedule_session, take_sync_responses};
use super::responses::{sync_error, sync_response};
use super::state::{Group, GroupState};
use super::{Ctx, RequestMeta};

pub(crate) fn handle(
    groups: &mut BTreeMap<String, Group>,
    meta: &RequestMeta,
    req: SyncGroupRequest,
    cx: &mut Ctx<'_>,
) {
    let group_id = req.group_id.0.to_string();
    let error = if group_id.is_empty() {
        Some(ResponseError::InvalidGroupId)
    } else if meta.api_version >= 5 && (req.protocol_type.is_none() || req.protocol_name.is_none())
    {
        // v5 made protocol type and name mandatory so the coordinator can check them.
        Some(ResponseError::InconsistentGroupProtocol)
    } else {
        match groups.get_mut(&group_id) {
            None => Some(ResponseError::UnknownMemberId),
            Some(g) => validate(g, &req).or_else(|| sync_member(g, meta, req, cx)),
        }
    };
    if let Some(error) = error {
        cx.reply(meta.token, sync_error(error));
    }
}

fn validate(g: &Group, req: &SyncGroupRequest) -> Option<ResponseError> {
    if g.is(GroupState::Dead) {
        return Some(ResponseError::CoordinatorNotAvailable);
    }
    let instance = req.group_instance_id.as_deref();
    validate_current_member(g, &req.member_id, instance).or_else(|| {
        let type_differs = req
            .protocol_type
            .as_ref()
            .is_some_and(|t| g.protocol_type.as_deref() != Some(&**t));
        let name_differs = req
            .protocol_name
            .as_ref()
            .is_some_and(|n| g.protocol_name.as_deref() != Some(&**n));
        if req.generation_id != g.generation_id {
            Some(ResponseError::IllegalGeneration)
        } else if type_differs || name_differs {
            Some(ResponseError::InconsistentGroupProtocol)
        } else {
            None
        }
    })
}

/// Handles a validated SyncGroup; returns the error to answer with, if any.
fn sync_member(
    g: &mut Group,
    meta: &RequestMeta,
    req: SyncGroupRequest,
    cx: &mut Ctx<'_>,
) -> Option<ResponseError> {
    let member_id = req.member_id.to_string();
    match g.state {
        GroupState::Empty => Some(ResponseError::UnknownMemberId),
        GroupState::PreparingRebalance => Some(ResponseError::RebalanceInProgress),
        GroupState::Dead => Some(ResponseError::CoordinatorNotAvailable),
        GroupState::CompletingRebalance => {
            let member = g.members.get_mut(&member_id).expect("validated member");
            if let Some(old) = member
                .awaiting_sync
                .replace(Parked::new(meta.token, meta.api_version))
            {
                // Superseded by this request; see `park_join` for why it is answered.
                cx.answer(old, |_| sync_error(ResponseError::RebalanceInProgress));
            }
            remove_pending_sync(g, &member_id);
            if g.is_leader(&member_id) {
                complete_assignment(g, req, cx);
            }
            None
        }
        GroupState::Stable => {
            remove_pending_sync(g, &member_id);
            let member = g.members.get_mut(&member_id).expect("validated member");
            schedule_session(member, cx.now_ms);
            let protocol = (&g.protocol_type, &g.protocol_name);
            let response = sync_response(
                meta.api_version,
                Some(protocol),
                member.assignment.clone(),
                None,
            );
            cx.reply(meta.token, response);
            None
        }
    }
}

fn remove_pending_sync(g: &mut Group, member_id: &str) {
    g.pending_sync.remove(member_id);
    if g.pending_sync.is_empty() {
        g.sync_deadline = None;
    }
}

/// The leader's assignment: members it left out get an empty one. The group is Stable from
/// here; parked SyncGroups are answered once the group metadata record is appended.
fn complete_assignment(g: &mut Group, req: SyncGroupRequest, cx: &mut Ctx<'_>) {
    let mut assignments: BTreeMap<String, Bytes> = req
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    for member in g.members.values_mut() {
        member.assignment = assignments.remove(&member.id).unwrap_or_default();
    }
    let record = persist::group_metadata_record(g);
    g.transition_to(GroupState::Stable, cx.now_ms);
    let (then, on_failure) = take_sync_responses(g, cx.now_ms);
    cx.append(&g.id.clone(), vec![record], then, on_failure);
}
