//! JoinGroup (Kafka's `handleJoinGroup` and helpers): KIP-394 member ids, static membership
//! (KIP-345) and the triggers of a rebalance.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::JoinGroupRequest;

use super::member::{Member, Parked};
use super::persist;
use super::rebalance::{
    current_member_metadata, join_result_for, maybe_complete_join, maybe_prepare_rebalance,
    prepare_rebalance, schedule_heartbeat, schedule_session, NEW_MEMBER_JOIN_TIMEOUT_MS,
};
use super::responses::{sync_error, JoinResult};
use super::state::{Group, GroupState, JoinTimer};
use super::{Ctx, RequestMeta};

/// One JoinGroup request, normalised across versions.
struct Join {
    parked: Parked,
    member_id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    rebalance_timeout_ms: i32,
    session_timeout_ms: i32,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
    /// v4+ dynamic members must first obtain a member id (KIP-394).
    require_known_member_id: bool,
    /// v9+ static leaders can be told to skip assignment (KIP-814).
    supports_skip_assignment: bool,
}

impl Join {
    fn from_request(meta: &RequestMeta, req: JoinGroupRequest) -> Self {
        let version = meta.api_version;
        let instance_id = req.group_instance_id.map(|i| i.to_string());
        Join {
            parked: Parked::new(meta.token, version),
            member_id: req.member_id.to_string(),
            require_known_member_id: version >= 4 && instance_id.is_none(),
            supports_skip_assignment: version >= 9,
            instance_id,
            client_id: meta.client_id.clone(),
            client_host: meta.client_host.clone(),
            // v0 has no rebalance timeout; Kafka uses the session timeout.
            rebalance_timeout_ms: if version == 0 {
                req.session_timeout_ms
            } else {
                req.rebalance_timeout_ms
            },
            session_timeout_ms: req.session_timeout_ms,
            protocol_type: req.protocol_type.to_string(),
            protocols: req
                .protocols
                .into_iter()
                .map(|p| (p.name.to_string(), p.metadata))
                .collect(),
        }
    }

    fn reply(&self, cx: &mut Ctx<'_>, result: JoinResult) {
        cx.answer(self.parked, |v| result.into_response(v));
    }
}

pub(crate) fn handle(
    groups: &mut BTreeMap<String, Group>,
    meta: &RequestMeta,
    req: JoinGroupRequest,
    cx: &mut Ctx<'_>,
) {
    let group_id = req.group_id.0.to_string();
    let join = Join::from_request(meta, req);
    if group_id.is_empty() {
        return join.reply(
            cx,
            JoinResult::error(&join.member_id, ResponseError::InvalidGroupId),
        );
    }
    let session = join.session_timeout_ms;
    if session < cx.cfg.min_session_timeout_ms || session > cx.cfg.max_session_timeout_ms {
        let result = JoinResult::error(&join.member_id, ResponseError::InvalidSessionTimeout);
        return join.reply(cx, result);
    }
    let is_unknown = join.member_id.is_empty();
    if !groups.contains_key(&group_id) {
        if !is_unknown {
            return join.reply(
                cx,
                JoinResult::error(&join.member_id, ResponseError::UnknownMemberId),
            );
        }
        groups.insert(group_id.clone(), Group::new(&group_id, cx.now_ms));
    }
    let g = groups
        .get_mut(&group_id)
        .expect("group exists or was just created");
    if !accept_joining_member(g, &join.member_id, cx.cfg.max_group_size) {
        g.remove(&join.member_id);
        join.reply(
            cx,
            JoinResult::error("", ResponseError::GroupMaxSizeReached),
        );
    } else if is_unknown {
        new_member_join(g, join, cx);
    } else {
        current_member_join(g, join, cx);
    }
    if g.is(GroupState::PreparingRebalance) {
        maybe_complete_join(g, cx);
    }
}

/// Kafka's `acceptJoiningMember`: during the join phase the members already waiting are counted
/// (so a lowered group.max.size drops the last to rejoin); otherwise the group size.
fn accept_joining_member(g: &Group, member_id: &str, max_size: i32) -> bool {
    let max = usize::try_from(max_size).unwrap_or(0);
    match g.state {
        GroupState::Empty | GroupState::Dead => true,
        GroupState::PreparingRebalance => {
            g.members
                .get(member_id)
                .is_some_and(Member::is_awaiting_join)
                || g.num_awaiting_join() < max
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            g.members.contains_key(member_id) || g.members.len() < max
        }
    }
}

fn new_member_join(g: &mut Group, join: Join, cx: &mut Ctx<'_>) {
    if g.is(GroupState::Dead) {
        return join.reply(
            cx,
            JoinResult::error("", ResponseError::CoordinatorNotAvailable),
        );
    }
    if !g.supports_protocols(&join.protocol_type, &join.protocols) {
        return join.reply(
            cx,
            JoinResult::error("", ResponseError::InconsistentGroupProtocol),
        );
    }
    let prefix = join.instance_id.as_deref().unwrap_or(&join.client_id);
    let new_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
    match join
        .instance_id
        .as_deref()
        .and_then(|i| g.static_member_id(i))
    {
        Some(old_id) => {
            let old_id = old_id.to_owned();
            update_static_member_and_rebalance(g, &old_id, new_id, join, cx);
        }
        None if join.require_known_member_id => {
            // KIP-394: hand out an id and expect the client back with it within its session.
            g.pending_members.insert(
                new_id.clone(),
                cx.now_ms + i64::from(join.session_timeout_ms),
            );
            join.reply(
                cx,
                JoinResult::error(&new_id, ResponseError::MemberIdRequired),
            );
        }
        None => add_member_and_rebalance(g, new_id, join, cx),
    }
}

/// Validates that a request's member id is current, and that a static member's instance id maps
/// to it (else FENCED_INSTANCE_ID: another process took over the instance id).
pub(crate) fn validate_current_member(
    g: &Group,
    member_id: &str,
    instance_id: Option<&str>,
) -> Option<ResponseError> {
    if let Some(instance) = instance_id {
        return match g.static_member_id(instance) {
            Some(current) if current != member_id => Some(ResponseError::FencedInstanceId),
            Some(_) => None,
            None => Some(ResponseError::UnknownMemberId),
        };
    }
    (!g.members.contains_key(member_id)).then_some(ResponseError::UnknownMemberId)
}

fn current_member_join(g: &mut Group, join: Join, cx: &mut Ctx<'_>) {
    let member_id = join.member_id.clone();
    if g.is(GroupState::Dead) {
        return join.reply(
            cx,
            JoinResult::error(&member_id, ResponseError::CoordinatorNotAvailable),
        );
    }
    if !g.supports_protocols(&join.protocol_type, &join.protocols) {
        let result = JoinResult::error(&member_id, ResponseError::InconsistentGroupProtocol);
        return join.reply(cx, result);
    }
    if g.pending_members.contains_key(&member_id) {
        if join.instance_id.is_some() {
            // Pending ids are only handed to dynamic members; Kafka fails this as a server error.
            return join.reply(
                cx,
                JoinResult::error(&member_id, ResponseError::UnknownServerError),
            );
        }
        return add_member_and_rebalance(g, member_id, join, cx);
    }
    if let Some(error) = validate_current_member(g, &member_id, join.instance_id.as_deref()) {
        return join.reply(cx, JoinResult::error(&member_id, error));
    }
    let matches = g.members[&member_id].matches(&join.protocols);
    match g.state {
        GroupState::PreparingRebalance => update_member_and_rebalance(g, join, cx),
        // Same metadata: the member probably missed the JoinGroup response; resend it.
        GroupState::CompletingRebalance if matches => {
            let result = join_result_for(g, &member_id, g.is_leader(&member_id));
            join.reply(cx, result);
        }
        GroupState::CompletingRebalance => update_member_and_rebalance(g, join, cx),
        // The leader rejoining forces a rebalance (it may have seen metadata changes); a
        // follower with unchanged metadata just gets the current generation back.
        GroupState::Stable if g.is_leader(&member_id) || !matches => {
            update_member_and_rebalance(g, join, cx)
        }
        GroupState::Stable => join.reply(cx, join_result_for(g, &member_id, false)),
        GroupState::Empty | GroupState::Dead => join.reply(
            cx,
            JoinResult::error(&member_id, ResponseError::UnknownMemberId),
        ),
    }
}

fn add_member_and_rebalance(g: &mut Group, member_id: String, join: Join, cx: &mut Ctx<'_>) {
    let mut member = Member {
        id: member_id,
        instance_id: join.instance_id,
        client_id: join.client_id,
        client_host: join.client_host,
        rebalance_timeout_ms: join.rebalance_timeout_ms,
        session_timeout_ms: join.session_timeout_ms,
        protocol_type: join.protocol_type,
        protocols: join.protocols,
        assignment: Bytes::new(),
        awaiting_join: Some(join.parked),
        awaiting_sync: None,
        is_new: true,
        heartbeat_deadline_ms: None,
    };
    schedule_heartbeat(&mut member, cx.now_ms, NEW_MEMBER_JOIN_TIMEOUT_MS);
    // Kafka 4 (`previousState() == EMPTY`): any rebalance out of Empty, which is the one timed
    // by the initial delay, not only the group's first.
    if g.is(GroupState::PreparingRebalance)
        && matches!(g.join_timer, Some(JoinTimer::Initial { .. }))
    {
        g.new_member_added = true;
    }
    g.add(member);
    maybe_prepare_rebalance(g, cx);
}

/// Records the member's new protocols and timeouts and parks its JoinGroup, then rebalances.
fn update_member_and_rebalance(g: &mut Group, join: Join, cx: &mut Ctx<'_>) {
    let id = join.member_id.clone();
    park_join(g, &id, join, cx);
    maybe_prepare_rebalance(g, cx);
}

/// Kafka's `updateMember`: the rejoining member's protocols and its rebalance and session
/// timeouts are taken from the request, and its JoinGroup is parked.
fn park_join(g: &mut Group, id: &str, join: Join, cx: &mut Ctx<'_>) {
    let parked = join.parked;
    let member = g.members.get_mut(id).expect("validated member");
    member.protocols = join.protocols;
    member.rebalance_timeout_ms = join.rebalance_timeout_ms;
    member.session_timeout_ms = join.session_timeout_ms;
    // A second JoinGroup replaces the first; Kafka drops the first silently, which would leave
    // the broker holding its token forever, so it is told to rejoin instead.
    if let Some(old) = member.awaiting_join.replace(parked) {
        let result = JoinResult::error(id, ResponseError::RebalanceInProgress);
        cx.answer(old, |v| result.into_response(v));
    }
}

/// A static member rejoined without its member id (e.g. after a restart): it takes over the
/// instance id under a new member id, and the old id is fenced.
fn update_static_member_and_rebalance(
    g: &mut Group,
    old_id: &str,
    new_id: String,
    join: Join,
    cx: &mut Ctx<'_>,
) {
    let instance = join
        .instance_id
        .clone()
        .expect("static join has an instance id");
    let previous_leader = g.leader_id.clone().unwrap_or_default();
    replace_static_member(g, &instance, old_id, &new_id, cx);
    schedule_session(
        g.members.get_mut(&new_id).expect("replaced member"),
        cx.now_ms,
    );
    let supports_skip_assignment = join.supports_skip_assignment;
    park_join(g, &new_id, join, cx);
    match g.state {
        GroupState::Stable if g.protocol_name == g.select_protocol() => {
            answer_static_rejoin_when_stable(
                g,
                &new_id,
                previous_leader,
                supports_skip_assignment,
                cx,
            )
        }
        GroupState::Stable => maybe_prepare_rebalance(g, cx),
        // The leader may already be assigning to the old id: start over.
        GroupState::CompletingRebalance => prepare_rebalance(g, cx),
        GroupState::PreparingRebalance | GroupState::Empty | GroupState::Dead => {}
    }
}

/// A stable group keeps its generation when a static member comes back unchanged: persist the
/// new member id and answer after the write (KIP-345).
fn answer_static_rejoin_when_stable(
    g: &mut Group,
    new_id: &str,
    previous_leader: String,
    supports_skip_assignment: bool,
    cx: &mut Ctx<'_>,
) {
    let record = persist::group_metadata_record(g);
    let is_leader = g.is_leader(new_id);
    let mut result = join_result_for(g, new_id, false);
    if supports_skip_assignment {
        // v9+: the leader learns it leads but must not run the assignor (KIP-814).
        if is_leader {
            result.members = current_member_metadata(g);
        }
        result.skip_assignment = is_leader;
    } else {
        // Older clients get the previous leader id so a returning leader does not assign.
        result.leader_id = previous_leader.clone();
    }
    let mut failure = join_result_for(g, "", false);
    failure.leader_id = previous_leader;
    failure.error = Some(ResponseError::CoordinatorNotAvailable);
    let parked = g
        .members
        .get_mut(new_id)
        .and_then(|m| m.awaiting_join.take());
    let (mut then, mut on_failure) = (Vec::new(), Vec::new());
    if let Some(p) = parked.filter(|p| !p.cancelled) {
        then.push((p.token, result.into_response(p.api_version)));
        on_failure.push((p.token, failure.into_response(p.api_version)));
    }
    cx.append(&g.id.clone(), vec![record], then, on_failure);
}

/// Kafka's `replaceStaticMember`: requests parked under the old id are fenced.
fn replace_static_member(
    g: &mut Group,
    instance: &str,
    old_id: &str,
    new_id: &str,
    cx: &mut Ctx<'_>,
) {
    let mut member = g
        .members
        .remove(old_id)
        .expect("static member is registered");
    if let Some(parked) = member.awaiting_join.take() {
        let result = JoinResult::error(old_id, ResponseError::FencedInstanceId);
        cx.answer(parked, |v| result.into_response(v));
    }
    if let Some(parked) = member.awaiting_sync.take() {
        cx.answer(parked, |_| sync_error(ResponseError::FencedInstanceId));
    }
    member.id = new_id.to_owned();
    // Kafka builds a fresh member object here, which is not new: waiting in a rebalance then
    // satisfies its heartbeat like any known member's.
    member.is_new = false;
    g.members.insert(new_id.to_owned(), member);
    if g.is_leader(old_id) {
        g.leader_id = Some(new_id.to_owned());
    }
    // Kafka leaves the old id in the pending-sync set (so the sync timer later forces a
    // rebalance); carrying it over lets the new id's SyncGroup satisfy it instead.
    if g.pending_sync.remove(old_id) {
        g.pending_sync.insert(new_id.to_owned());
    }
    g.static_members
        .insert(instance.to_owned(), new_id.to_owned());
}
