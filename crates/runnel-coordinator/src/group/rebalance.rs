//! The rebalance engine shared by the handlers and timers: preparing a rebalance, completing the
//! join phase into a new generation, and removing members (Kafka's `prepareRebalance`,
//! `onCompleteJoin`, `removeMemberAndUpdateGroup`).

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;

use super::member::Member;
use super::persist;
use super::responses::{s, sync_response, JoinResult};
use super::state::{Group, GroupState, JoinTimer};
use super::{Ctx, GroupResponse, RequestToken};

/// How long a brand-new member's JoinGroup may wait before it is dropped (Kafka's
/// `NewMemberJoinTimeoutMs`): its socket is muted while parked, so a client that gave up and
/// retried would otherwise leave a defunct member behind for the whole rebalance.
pub(crate) const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

/// Restarts a member's session timer.
pub(crate) fn schedule_heartbeat(member: &mut Member, now_ms: i64, timeout_ms: i64) {
    member.heartbeat_deadline_ms = Some(now_ms + timeout_ms);
}

pub(crate) fn schedule_session(member: &mut Member, now_ms: i64) {
    let timeout_ms = i64::from(member.session_timeout_ms);
    schedule_heartbeat(member, now_ms, timeout_ms);
}

pub(crate) fn maybe_prepare_rebalance(g: &mut Group, cx: &mut Ctx<'_>) {
    if g.can_rebalance() {
        prepare_rebalance(g, cx);
    }
}

/// Starts a rebalance: members parked in SyncGroup are told to rejoin, the pending-sync timer is
/// dropped, and the join phase is timed (initial delay for an empty group).
pub(crate) fn prepare_rebalance(g: &mut Group, cx: &mut Ctx<'_>) {
    if g.is(GroupState::CompletingRebalance) {
        reset_and_propagate_assignment_error(g, cx, ResponseError::RebalanceInProgress);
    }
    g.pending_sync.clear();
    g.sync_deadline = None;
    let rebalance_timeout_ms = i64::from(g.rebalance_timeout_ms());
    let timer = if g.is(GroupState::Empty) {
        let delay_ms = i64::from(cx.cfg.initial_rebalance_delay_ms);
        JoinTimer::Initial {
            deadline_ms: cx.now_ms + delay_ms,
            delay_ms,
            remaining_ms: (rebalance_timeout_ms - delay_ms).max(0),
        }
    } else {
        JoinTimer::Normal {
            deadline_ms: cx.now_ms + rebalance_timeout_ms,
        }
    };
    g.join_timer = Some(timer);
    g.transition_to(GroupState::PreparingRebalance, cx.now_ms);
    maybe_complete_join(g, cx);
}

/// Completes the join phase early when every member has rejoined (not during the initial delay,
/// which always waits so that more members can arrive).
pub(crate) fn maybe_complete_join(g: &mut Group, cx: &mut Ctx<'_>) {
    let normal = matches!(g.join_timer, Some(JoinTimer::Normal { .. }));
    if g.is(GroupState::PreparingRebalance) && normal && g.has_all_members_joined() {
        complete_join(g, cx);
    }
}

/// Clears every assignment and answers parked SyncGroups with `error`.
pub(crate) fn reset_and_propagate_assignment_error(
    g: &mut Group,
    cx: &mut Ctx<'_>,
    error: ResponseError,
) {
    for member in g.members.values_mut() {
        member.assignment = Bytes::new();
        if let Some(parked) = member.awaiting_sync.take() {
            cx.answer(parked, |v| {
                sync_response(v, None, Bytes::new(), Some(error))
            });
            schedule_session(member, cx.now_ms);
        }
    }
}

type Answer = (RequestToken, GroupResponse);

/// Answers for every parked SyncGroup with the member's assignment, restarting their sessions
/// (their timers may have lapsed while they waited).
pub(crate) fn take_sync_responses(g: &mut Group, now_ms: i64) -> (Vec<Answer>, Vec<Answer>) {
    let protocol = (&g.protocol_type, &g.protocol_name);
    let mut then = Vec::new();
    let mut on_failure = Vec::new();
    for member in g.members.values_mut() {
        let Some(parked) = member.awaiting_sync.take() else {
            continue;
        };
        schedule_session(member, now_ms);
        if parked.cancelled {
            continue;
        }
        let v = parked.api_version;
        then.push((
            parked.token,
            sync_response(v, Some(protocol), member.assignment.clone(), None),
        ));
        let failed = sync_response(
            v,
            None,
            Bytes::new(),
            Some(ResponseError::CoordinatorNotAvailable),
        );
        on_failure.push((parked.token, failed));
    }
    (then, on_failure)
}

/// Removes a member that left or expired, answering its parked JoinGroup with UNKNOWN_MEMBER_ID
/// so that a live client simply joins again.
pub(crate) fn remove_member_and_update(g: &mut Group, cx: &mut Ctx<'_>, member_id: &str) {
    let Some(mut member) = g.remove(member_id) else {
        return;
    };
    if let Some(parked) = member.awaiting_join.take() {
        let result = JoinResult::error("", ResponseError::UnknownMemberId);
        cx.answer(parked, |v| result.into_response(v));
    }
    match g.state {
        GroupState::Stable | GroupState::CompletingRebalance => maybe_prepare_rebalance(g, cx),
        GroupState::PreparingRebalance => maybe_complete_join(g, cx),
        GroupState::Empty | GroupState::Dead => {}
    }
}

/// The member list the leader receives: every member's metadata for the chosen protocol.
pub(crate) fn current_member_metadata(g: &Group) -> Vec<JoinGroupResponseMember> {
    let protocol = g.protocol_name.as_deref().unwrap_or_default();
    g.members
        .values()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(s(&m.id))
                .with_group_instance_id(m.instance_id.as_deref().map(s))
                .with_metadata(m.metadata(protocol))
        })
        .collect()
}

/// The successful JoinGroup answer for `member_id` in the current generation.
pub(crate) fn join_result_for(g: &Group, member_id: &str, with_members: bool) -> JoinResult {
    JoinResult {
        members: if with_members {
            current_member_metadata(g)
        } else {
            Vec::new()
        },
        member_id: member_id.to_owned(),
        generation_id: g.generation_id,
        protocol_type: g.protocol_type.clone(),
        protocol_name: g.protocol_name.clone(),
        leader_id: g.leader_id.clone().unwrap_or_default(),
        skip_assignment: false,
        error: None,
    }
}

/// Kafka's `maybeElectNewJoinedLeader`: keeps the leader if it rejoined, else picks any member
/// that did. False if there is no leader or nobody rejoined.
fn elect_joined_leader(g: &mut Group) -> bool {
    let Some(leader) = g.leader_id.clone() else {
        return false;
    };
    if g.members.get(&leader).is_some_and(Member::is_awaiting_join) {
        return true;
    }
    match g.members.values().find(|m| m.is_awaiting_join()) {
        Some(joined) => {
            g.leader_id = Some(joined.id.clone());
            true
        }
        None => false,
    }
}

/// Ends the join phase (Kafka's `onCompleteJoin`): dynamic members that did not rejoin are
/// dropped, then a new generation starts and every parked JoinGroup is answered, the leader
/// with the member list.
pub(crate) fn complete_join(g: &mut Group, cx: &mut Ctx<'_>) {
    g.join_timer = None;
    let laggards: Vec<String> = g
        .members
        .values()
        .filter(|m| !m.is_awaiting_join() && m.instance_id.is_none())
        .map(|m| m.id.clone())
        .collect();
    for id in laggards {
        g.remove(&id);
    }
    if !elect_joined_leader(g) && !g.members.is_empty() {
        // Only static members that did not rejoin are left: wait another rebalance timeout for
        // them to rejoin or for their sessions to expire.
        let deadline_ms = cx.now_ms + i64::from(g.rebalance_timeout_ms());
        g.join_timer = Some(JoinTimer::Normal { deadline_ms });
        return;
    }
    g.init_next_generation(cx.now_ms);
    if g.is(GroupState::Empty) {
        // Nobody is left: persist the empty generation. No one waits on this write.
        let record = persist::group_metadata_record(g);
        cx.append(&g.id.clone(), vec![record], Vec::new(), Vec::new());
        return;
    }
    let ids: Vec<String> = g.members.keys().cloned().collect();
    for id in ids {
        let result = join_result_for(g, &id, g.is_leader(&id));
        let member = g.members.get_mut(&id).expect("member listed above");
        if let Some(parked) = member.awaiting_join.take() {
            cx.answer(parked, |v| result.into_response(v));
        }
        schedule_session(member, cx.now_ms);
        member.is_new = false;
        g.pending_sync.insert(id);
    }
    let deadline_ms = cx.now_ms + i64::from(g.rebalance_timeout_ms());
    g.sync_deadline = Some((deadline_ms, g.generation_id));
}
